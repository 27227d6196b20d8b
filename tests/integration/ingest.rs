//! `hcctl ingest` (issue 16): every new export of a folder or an S3 prefix loaded exactly once,
//! arbitrated by the ledger. Everything is read back from the server: the documents, the
//! ledger's file and claim documents, the runners' reports.
//!
//! Folders here run against the local MongoDB-wire server; the same scenarios over `s3://` are
//! in [`s3`] (run on both emulators: `scripts/test` selects `ingest::s3::` again in the split
//! configuration).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bson::{doc, Document};
use futures_util::TryStreamExt;
use serde_json::Value;

use crate::util::{
    assert_exit, assert_success, n, read_json, real_dataset, row_with, stderr, stdout, TestEnv,
    HCCTL, HEADER,
};

/// `hcctl ingest SOURCE --db <test db> --collection COLL --report <dir>/REPORT.json` plus
/// `extra`, not run yet, and where its report will be.
fn ingest_command(
    env: &TestEnv,
    source: &str,
    coll: &str,
    report: &str,
    extra: &[&str],
) -> (Command, PathBuf) {
    let at = env.dir.path().join(format!("{report}.json"));
    let mut args = vec![
        "ingest",
        source,
        "--db",
        &env.db,
        "--collection",
        coll,
        "--report",
        at.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    (env.command(&args), at)
}

/// [`ingest_command`], run to its end: its output and its report.
fn ingest(
    env: &TestEnv,
    source: &str,
    coll: &str,
    report: &str,
    extra: &[&str],
) -> (Output, Value) {
    let (mut cmd, at) = ingest_command(env, source, coll, report, extra);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"));
    assert!(
        at.exists(),
        "ingest wrote no report; stderr:\n{}",
        stderr(&out)
    );
    let report = read_json(&at);
    (out, report)
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"))
}

/// `hcctl ingest status --format json` (its exit code asserted by the caller).
fn status(env: &TestEnv) -> (Output, Value) {
    let out = env.run(&["ingest", "status", "--db", &env.db, "--format", "json"]);
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ingest status is not JSON ({e}): {}", stdout(&out)));
    (out, value)
}

/// The real export cut into `parts` exports of consecutive rows, each with the header.
fn cut_real_export(parts: usize) -> Vec<String> {
    let text = std::fs::read_to_string(real_dataset()).expect("read the dataset");
    let mut lines = text.lines();
    let header = lines.next().expect("the dataset has a header");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 55_500, "the real export has 55,500 rows");
    rows.chunks(rows.len().div_ceil(parts))
        .map(|chunk| format!("{header}\n{}\n", chunk.join("\n")))
        .collect()
}

fn rows_of(export: &str) -> u64 {
    export.lines().count() as u64 - 1
}

/// Rows no export holds (distinct names), to append to one.
fn new_rows(count: usize) -> String {
    (0..count)
        .map(|i| row_with(&[(0, &format!("Appended Patient {i}"))]) + "\n")
        .collect()
}

/// A collection's documents in `_id` order without their `_lineage` (which names the file a
/// document was first read from, so differs between one migration and ingested parts).
async fn contents(env: &TestEnv, coll: &str) -> Vec<Document> {
    env.docs(coll)
        .await
        .into_iter()
        .map(|mut d| {
            d.remove("_lineage");
            d
        })
        .collect()
}

/// The ledger's documents of one kind (`file` or `claim`), in `_id` order.
async fn ledger(env: &TestEnv, kind: &str) -> Vec<Document> {
    env.coll("_ingest")
        .find(doc! { "kind": kind })
        .sort(doc! { "_id": 1 })
        .await
        .expect("read the ledger")
        .try_collect()
        .await
        .expect("read the ledger")
}

/// The files a report says it loaded (`outcome` ingested).
fn loaded(report: &Value) -> Vec<String> {
    report["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {report}"))
        .iter()
        .filter(|f| f["outcome"] == "ingested")
        .map(|f| f["file"].as_str().expect("file name").to_string())
        .collect()
}

/// Every report's rows add up: read = inserted + duplicates + rejected.
fn assert_accounted(report: &Value) {
    for f in report["files"].as_array().into_iter().flatten() {
        if let Some(r) = f.get("report") {
            assert_eq!(
                n(r, "rows_read"),
                n(r, "inserted") + n(r, "duplicates") + n(r, "rejected"),
                "{r}"
            );
        }
    }
}

/// The exactly-once scenario over any source: `place(name, content)` puts an export there and
/// returns its location as ingest names it. Four parts of the real export and a re-sent copy of
/// the second, ingested by two runners at once, give the documents of one migration; a third
/// run loads nothing; rows appended to one export are the only ones inserted.
async fn exactly_once(env: &TestEnv, source: &str, place: impl AsyncPlace) {
    let once = env.migrate(&real_dataset(), "once", &[]);
    let parts = cut_real_export(4);
    let mut expected = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        expected.push(
            place
                .put(&format!("part{}.csv", i + 1), part.as_bytes())
                .await,
        );
    }
    expected.push(place.put("part2-resent.csv", parts[1].as_bytes()).await);
    expected.sort();

    let (a, report_a) = ingest_command(env, source, "ingested", "a", &["--runner", "runner-a"]);
    let (b, report_b) = ingest_command(env, source, "ingested", "b", &["--runner", "runner-b"]);
    let (a, b) = (spawn(a), spawn(b));
    let (a, b) = (
        a.wait_with_output().expect("runner a"),
        b.wait_with_output().expect("runner b"),
    );
    assert_success(&a);
    assert_success(&b);
    let reports = [read_json(&report_a), read_json(&report_b)];

    // Each runner saw the five files and loaded its share; together, each file exactly once.
    let mut all_loaded = Vec::new();
    for (r, out) in reports.iter().zip([&a, &b]) {
        assert_eq!(n(r, "files_seen"), 5, "{r}");
        assert_eq!(n(r, "files_failed"), 0, "{r}");
        assert_eq!(
            n(r, "files_ingested") + n(r, "files_skipped") + n(r, "files_busy"),
            5,
            "{r}"
        );
        assert!(
            n(r, "files_ingested") >= 1,
            "both runners loaded files (they ran at once): {r}"
        );
        assert_accounted(r);
        // One line per file loaded on stdout.
        let lines = stdout(out);
        for f in loaded(r) {
            assert!(lines.contains(&format!("ingested {f}: ")), "{lines}");
        }
        all_loaded.extend(loaded(r));
    }
    all_loaded.sort();
    assert_eq!(
        all_loaded, expected,
        "each file loaded by exactly one runner"
    );
    let sum = |k: &str| n(&reports[0], k) + n(&reports[1], k);
    assert_eq!(sum("rows_read"), 55_500 + rows_of(&parts[1]));
    assert_eq!(sum("inserted"), n(&once, "inserted"));

    // Exactly the documents of one migration of the real file.
    let ingested = contents(env, "ingested").await;
    assert_eq!(ingested.len() as u64, n(&once, "inserted"));
    assert!(
        ingested == contents(env, "once").await,
        "ingested documents differ from one migration's"
    );

    // The ledger: five files done at the first attempt, one claim each, by the runner whose
    // report holds the file.
    let files = ledger(env, "file").await;
    let claims = ledger(env, "claim").await;
    assert_eq!(files.len(), 5);
    assert_eq!(claims.len(), 5, "one claim per file: {claims:?}");
    for f in &files {
        assert_eq!(f.get_str("state"), Ok("done"), "{f}");
        assert_eq!(f.get_i64("attempts"), Ok(1), "{f}");
        let name = f.get_str("file").expect("file");
        let claim = claims
            .iter()
            .find(|c| c.get_str("file_id") == f.get_str("_id"))
            .unwrap_or_else(|| panic!("no claim for {f}"));
        assert_eq!(claim.get_str("state"), Ok("done"));
        assert_eq!(claim.get_i64("attempt"), Ok(1));
        let runner = claim.get_str("runner").expect("runner");
        let by = if loaded(&reports[0]).iter().any(|l| l == name) {
            "runner-a"
        } else {
            "runner-b"
        };
        assert_eq!(runner, by, "{name}");
        // The file's own report is in the ledger, with the figures its runner reported.
        let in_ledger = f.get_document("report").expect("report in the ledger");
        let reported = reports
            .iter()
            .flat_map(|r| r["files"].as_array().into_iter().flatten())
            .find(|x| x["file"] == name)
            .expect("reported");
        assert_eq!(
            in_ledger.get_i64("inserted").ok().map(|i| i as u64),
            Some(n(&reported["report"], "inserted"))
        );
    }

    // A third run loads nothing.
    let (out, third) = ingest(env, source, "ingested", "third", &[]);
    assert_success(&out);
    assert_eq!(n(&third, "files_seen"), 5);
    assert_eq!(n(&third, "files_skipped"), 5);
    assert_eq!(n(&third, "files_ingested"), 0);
    assert_eq!(n(&third, "rows_read"), 0);
    assert_eq!(ledger(env, "claim").await.len(), 5);

    // Rows appended to one export: that file is loaded again, and only the new rows inserted.
    let grown = format!("{}{}", parts[2], new_rows(7));
    let third_part = place.put("part3.csv", grown.as_bytes()).await;
    let (out, fourth) = ingest(env, source, "ingested", "fourth", &[]);
    assert_success(&out);
    assert_eq!(loaded(&fourth), vec![third_part]);
    assert_eq!(n(&fourth, "files_skipped"), 4);
    assert_eq!(n(&fourth, "rows_read"), rows_of(&parts[2]) + 7);
    assert_eq!(n(&fourth, "inserted"), 7);
    assert_eq!(
        env.count("ingested", doc! {}).await,
        n(&once, "inserted") + 7
    );
    // The ledger keeps the earlier content's entry beside the new one.
    assert_eq!(ledger(env, "file").await.len(), 6);
}

/// The killed-runner scenario over any source holding one export, the real file, at
/// `location`: a runner killed with SIGKILL in the middle of it leaves a claim; a runner that
/// comes while the lease runs leaves the file alone; once it expired, the next runner takes the
/// file over, with the end state of one migration.
/// Waits until `runner` is in the middle of a file: its claim is there and some of the file's
/// documents are written (it must not have ended before).
async fn mid_file(env: &TestEnv, runner: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(code)) = runner.try_wait() {
            panic!("the runner ended ({code}) before it could be stopped mid-file");
        }
        let claimed = ledger(env, "claim").await.len() == 1;
        if claimed && env.count("ingested", doc! {}).await > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the runner never started loading"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn killed_runner(env: &TestEnv, source: &str, location: &str) {
    let once = env.migrate(&real_dataset(), "once", &[]);
    let lease = ["--lease", "6s"];
    let (mut doomed, _) = ingest_command(
        env,
        source,
        "ingested",
        "doomed",
        &[
            &lease[..],
            &[
                "--runner",
                "doomed",
                "--batch-size",
                "200",
                "--workers",
                "1",
            ],
        ]
        .concat(),
    );
    let mut doomed = doomed
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the doomed runner");
    mid_file(env, &mut doomed).await;
    doomed.kill().expect("SIGKILL the runner");
    let _ = doomed.wait();
    let written = env.count("ingested", doc! {}).await;
    assert!(
        written > 0 && written < n(&once, "inserted"),
        "killed mid-file: {written} of {} documents written",
        n(&once, "inserted")
    );

    // The dead runner's claim holds: status shows it, a runner arriving now leaves it alone.
    let (out, st) = status(env);
    assert_success(&out);
    assert_eq!(st["files"][0]["state"], "claimed", "{st}");
    assert_eq!(st["files"][0]["runner"], "doomed", "{st}");
    assert_eq!(st["files"][0]["file"], location, "{st}");
    let (out, early) = ingest(
        env,
        source,
        "ingested",
        "early",
        &[&lease[..], &["--runner", "early"]].concat(),
    );
    assert_success(&out);
    assert_eq!(n(&early, "files_busy"), 1, "{early}");
    assert_eq!(n(&early, "files_ingested"), 0, "{early}");

    // Once the lease expired, the next runner takes the file over.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, st) = status(env);
        if st["files"][0]["state"] == "claimed (lease expired)" {
            break;
        }
        assert!(Instant::now() < deadline, "the lease never expired: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Batches in flight when the runner died may still have landed: count what is there now,
    // long after the kill, so the heir's inserts can be checked against exactly the rest.
    let settled = env.count("ingested", doc! {}).await;
    assert!(settled >= written, "{settled} < {written}");
    let (out, heir) = ingest(
        env,
        source,
        "ingested",
        "heir",
        &[&lease[..], &["--runner", "heir"]].concat(),
    );
    assert_success(&out);
    assert_eq!(loaded(&heir), vec![location.to_string()], "{heir}");
    assert_eq!(heir["files"][0]["attempt"], 2, "{heir}");
    assert_eq!(n(&heir, "rows_read"), 55_500);
    assert_eq!(n(&heir, "inserted") + settled, n(&once, "inserted"));
    assert!(
        contents(env, "ingested").await == contents(env, "once").await,
        "the taken-over load differs from one migration"
    );
    let claims = ledger(env, "claim").await;
    let summary: Vec<(i64, &str, &str)> = claims
        .iter()
        .map(|c| {
            (
                c.get_i64("attempt").unwrap_or(0),
                c.get_str("runner").unwrap_or(""),
                c.get_str("state").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(1, "doomed", "claimed"), (2, "heir", "done")],
        "the dead runner's claim, then the heir's"
    );
    let files = ledger(env, "file").await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].get_str("state"), Ok("done"));
    assert_eq!(files[0].get_i64("attempts"), Ok(2));
}

/// The parking scenario over any source: an export that cannot be loaded (its header lacks the
/// columns) fails three runs — each exit 1, the good file beside it loaded once — then is parked:
/// a fourth run leaves it alone (exit 0), `ingest status` names it with its error (exit 1), and
/// `ingest retry` makes it eligible again.
async fn parked(env: &TestEnv, source: &str, place: impl AsyncPlace) {
    let good = format!("{HEADER}\n{}", new_rows(5));
    let good_at = place.put("good.csv", good.as_bytes()).await;
    let broken_at = place.put("broken.csv", b"Patient,Years\nA,1\n").await;

    for attempt in 1..=3 {
        let (out, r) = ingest(env, source, "ingested", &format!("run{attempt}"), &[]);
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("1 of 2 file(s) failed"),
            "{}",
            stderr(&out)
        );
        assert_eq!(n(&r, "files_failed"), 1, "{r}");
        assert_eq!(n(&r, "files_ingested"), u64::from(attempt == 1), "{r}");
        let failed = r["files"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["outcome"] == "failed"))
            .unwrap_or_else(|| panic!("no failed file in {r}"));
        assert_eq!(failed["file"], broken_at.as_str());
        assert_eq!(failed["attempt"], attempt, "{r}");
        assert!(
            failed["error"]
                .as_str()
                .is_some_and(|e| e.contains("missing column")),
            "{failed}"
        );
    }
    assert_eq!(env.count("ingested", doc! {}).await, 5);

    // Parked: left alone, and not a failure of this run.
    let (out, r) = ingest(env, source, "ingested", "run4", &[]);
    assert_success(&out);
    assert_eq!(n(&r, "files_parked"), 1, "{r}");
    assert_eq!(n(&r, "files_failed"), 0, "{r}");
    assert_eq!(
        ledger(env, "claim").await.len(),
        4,
        "good once, broken thrice: {r}"
    );
    assert!(
        stderr(&out).contains("parked") && stderr(&out).contains(&broken_at),
        "{}",
        stderr(&out)
    );

    let (out, st) = status(env);
    assert_exit(&out, 1);
    let entry = st["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["file"] == broken_at.as_str()))
        .unwrap_or_else(|| panic!("{broken_at} not in {st}"));
    assert_eq!(entry["state"], "parked");
    assert_eq!(entry["attempts"], 3);
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("missing column")),
        "{entry}"
    );
    assert_eq!(st["parked"], 1);
    assert_eq!(st["done"], 1);
    let table = env.run(&["ingest", "status", "--db", &env.db]);
    assert_exit(&table, 1);
    let text = stdout(&table);
    assert!(
        text.contains("parked") && text.contains(&broken_at),
        "{text}"
    );
    assert!(text.contains(&good_at), "{text}");
    assert!(
        stderr(&table).contains("ingest retry"),
        "{}",
        stderr(&table)
    );

    // Retry: eligible again, with attempts from 1.
    let out = env.run(&["ingest", "retry", &broken_at, "--db", &env.db]);
    assert_success(&out);
    let (out, st) = status(env);
    assert_success(&out);
    assert_eq!(st["parked"], 0, "{st}");
    let (out, r) = ingest(env, source, "ingested", "run5", &[]);
    assert_exit(&out, 1);
    assert_eq!(r["files"][0]["file"], broken_at.as_str());
    assert_eq!(r["files"][0]["attempt"], 1, "{r}");
    // A file the ledger does not hold as failed is a usage error.
    let out = env.run(&["ingest", "retry", &good_at, "--db", &env.db]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("not failed or parked"),
        "{}",
        stderr(&out)
    );
}

/// Where a scenario puts its exports.
trait AsyncPlace {
    /// Put `content` as `name` (replacing it) and return its location as ingest names it.
    async fn put(&self, name: &str, content: &[u8]) -> String;
}

/// A folder: written under a hidden name, then renamed into place, as exports should arrive.
struct Folder(PathBuf);

impl Folder {
    fn new(env: &TestEnv) -> Folder {
        let dir = env.dir.path().join("drops");
        std::fs::create_dir(&dir).expect("create the drops folder");
        Folder(dir.canonicalize().expect("canonical path"))
    }

    fn source(&self) -> String {
        self.0.to_str().expect("utf-8 path").to_string()
    }
}

impl AsyncPlace for &Folder {
    async fn put(&self, name: &str, content: &[u8]) -> String {
        let hidden = self.0.join(format!(".{name}.part"));
        let mut f = std::fs::File::create(&hidden).expect("write an export");
        f.write_all(content).expect("write an export");
        drop(f);
        let at = self.0.join(name);
        std::fs::rename(&hidden, &at).expect("rename the export into place");
        at.to_str().expect("utf-8 path").to_string()
    }
}

#[tokio::test]
async fn four_exports_and_a_resent_copy_by_two_concurrent_runners_load_each_file_once() {
    let env = TestEnv::new("ingest_once").await;
    let folder = Folder::new(&env);
    exactly_once(&env, &folder.source(), &folder).await;
    env.drop_db().await;
}

#[tokio::test]
async fn a_runner_killed_mid_file_is_taken_over_after_its_lease() {
    let env = TestEnv::new("ingest_killed").await;
    let folder = Folder::new(&env);
    let bytes = std::fs::read(real_dataset()).expect("read the dataset");
    let at = (&folder).put("admissions.csv", &bytes).await;
    killed_runner(&env, &folder.source(), &at).await;
    env.drop_db().await;
}

/// SIGTERM (what ECS sends a task it stops) in the middle of a file: the watcher releases its
/// claim and exits 143; the next runner takes the file at once — not after the lease — and the
/// end state is one migration of the file, the interrupted attempt not counted.
#[tokio::test]
async fn sigterm_mid_file_releases_the_claim_and_the_next_run_loads_it_at_once() {
    let env = TestEnv::new("ingest_sigterm").await;
    let folder = Folder::new(&env);
    let bytes = std::fs::read(real_dataset()).expect("read the dataset");
    let at = (&folder).put("admissions.csv", &bytes).await;
    let once = env.migrate(&real_dataset(), "once", &[]);
    // A lease far longer than the test: only the release can make the file claimable.
    let lease = ["--lease", "10m"];
    let (cmd, _) = ingest_command(
        &env,
        &folder.source(),
        "ingested",
        "stopped",
        &[
            &lease[..],
            &[
                "--watch",
                "--interval",
                "300ms",
                "--runner",
                "stopped",
                "--batch-size",
                "200",
                "--workers",
                "1",
            ],
        ]
        .concat(),
    );
    let mut watcher = spawn(cmd);
    mid_file(&env, &mut watcher).await;
    let pid = watcher.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let out = watcher.wait_with_output().expect("the watcher stops");
    assert_exit(&out, 143);
    assert!(
        stderr(&out).contains("the file being loaded was released in the ledger"),
        "{}",
        stderr(&out)
    );
    let written = env.count("ingested", doc! {}).await;
    assert!(
        written > 0 && written < n(&once, "inserted"),
        "stopped mid-file: {written} of {} documents written",
        n(&once, "inserted")
    );

    // Released: nobody holds it, and the next runner loads it now, as attempt 1 again.
    let (out, st) = status(&env);
    assert_success(&out);
    assert_eq!(st["files"][0]["state"], "released", "{st}");
    assert_eq!(st["files"][0]["file"], at.as_str(), "{st}");
    let (out, next) = ingest(
        &env,
        &folder.source(),
        "ingested",
        "next",
        &[&lease[..], &["--runner", "next"]].concat(),
    );
    assert_success(&out);
    assert_eq!(n(&next, "files_busy"), 0, "{next}");
    assert_eq!(loaded(&next), vec![at.clone()], "{next}");
    assert_eq!(next["files"][0]["attempt"], 1, "{next}");
    assert_eq!(n(&next, "rows_read"), 55_500);
    let settled = env.count("ingested", doc! {}).await;
    assert_eq!(settled, n(&once, "inserted"));
    assert!(
        contents(&env, "ingested").await == contents(&env, "once").await,
        "the stopped and resumed ingest differs from one migration"
    );
    let (_, st) = status(&env);
    assert_eq!(st["files"][0]["state"], "done", "{st}");
    env.drop_db().await;
}

#[tokio::test]
async fn a_file_that_keeps_failing_is_parked_until_retried() {
    let env = TestEnv::new("ingest_parked").await;
    let folder = Folder::new(&env);
    parked(&env, &folder.source(), &folder).await;
    env.drop_db().await;
}

#[tokio::test]
async fn watch_loads_each_export_as_it_arrives_and_stops_on_sigterm() {
    let env = TestEnv::new("ingest_watch").await;
    let folder = Folder::new(&env);
    let (cmd, _) = ingest_command(
        &env,
        &folder.source(),
        "ingested",
        "watch",
        &[
            "--watch",
            "--interval",
            "300ms",
            "--format",
            "json",
            "--dump-wait",
            "1s",
        ],
    );
    let mut watcher = spawn(cmd);
    let (lines_tx, lines) = mpsc::channel::<String>();
    let out = watcher.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the watcher reported a file within a minute")
    };

    let mut total = 0;
    for (name, rows, seed) in [("first.csv", 300, 1), ("second.csv", 500, 2)] {
        let generated = env.generate(name, rows, seed);
        let at = (&folder)
            .put(name, &std::fs::read(&generated).expect("read"))
            .await;
        let line: Value = serde_json::from_str(&next_line()).expect("one JSON object per line");
        assert_eq!(line["file"], at.as_str(), "{line}");
        assert_eq!(line["outcome"], "ingested", "{line}");
        assert_eq!(n(&line["report"], "rows_read"), rows, "{line}");
        total += n(&line["report"], "inserted");
        assert_eq!(env.count("ingested", doc! {}).await, total);
    }

    // A backup dump longer than --dump-wait: the watcher skips its passes, keeps watching,
    // and loads the file once the dump has ended.
    let leases = env.coll("_hcctl_writes");
    let later =
        bson::DateTime::from_system_time(std::time::SystemTime::now() + Duration::from_secs(120));
    leases
        .insert_one(
            doc! { "_id": "dump", "kind": "dump", "runner": "elsewhere:3", "expires": later },
        )
        .await
        .expect("insert a dump lease");
    let generated = env.generate("third.csv", 200, 3);
    let at = (&folder)
        .put("third.csv", &std::fs::read(&generated).expect("read"))
        .await;
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        env.count("ingested", doc! {}).await,
        total,
        "written during a dump"
    );
    assert!(
        watcher.try_wait().expect("the watcher's state").is_none(),
        "the watcher stopped on a long dump"
    );
    leases
        .delete_one(doc! { "_id": "dump" })
        .await
        .expect("end the dump");
    let line: Value = serde_json::from_str(&next_line()).expect("one JSON object per line");
    assert_eq!(line["file"], at.as_str(), "{line}");
    assert_eq!(line["outcome"], "ingested", "{line}");
    assert_eq!(n(&line["report"], "rows_read"), 200, "{line}");

    // SIGTERM between passes: it stops at once, with the signal's exit code.
    let pid = watcher.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = watcher.wait_with_output().expect("the watcher stops");
    assert_exit(&out, 143);
    let files = ledger(&env, "file").await;
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f.get_str("state") == Ok("done")));
    env.drop_db().await;
}

#[test]
fn ingest_rejects_what_is_not_a_folder_or_a_prefix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("one.csv");
    std::fs::write(&file, format!("{HEADER}\n")).expect("write");
    let cases: [(&[&str], &str); 3] = [
        (
            &["ingest", file.to_str().expect("utf-8")],
            "is not a folder",
        ),
        (&["ingest", "/no/such/folder"], "cannot read the folder"),
        (&["ingest"], "SOURCE"),
    ];
    for (args, expected) in cases {
        let out = crate::util::hcctl_in(dir.path(), args)
            .env("HCCTL_MONGODB_URI", "mongodb://127.0.0.1:1/")
            .output()
            .expect("run hcctl");
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// The same scenarios over `s3://BUCKET/incoming/`, on whichever emulator serves S3.
mod s3 {
    use super::*;
    use crate::cloud::Bucket;

    impl AsyncPlace for &Bucket {
        async fn put(&self, name: &str, content: &[u8]) -> String {
            let key = format!("incoming/{name}");
            Bucket::put(self, &key, content.to_vec()).await;
            self.url(&key)
        }
    }

    #[tokio::test]
    async fn four_exports_and_a_resent_copy_by_two_concurrent_runners_load_each_file_once() {
        let env = TestEnv::new("ingest_s3_once").await;
        let bucket = Bucket::new().await;
        exactly_once(&env, &bucket.url("incoming/"), &bucket).await;
        // Each file's report and quarantine went beside it, as migrate's do.
        let keys: BTreeSet<String> = bucket.keys().await.into_iter().collect();
        for part in ["part1", "part2", "part2-resent", "part3", "part4"] {
            let report = format!("reports/{part}.report.json");
            assert!(keys.contains(&report), "{report} not in {keys:?}");
        }
        env.drop_db().await;
    }

    #[tokio::test]
    async fn a_runner_killed_mid_file_is_taken_over_after_its_lease() {
        let env = TestEnv::new("ingest_s3_killed").await;
        let bucket = Bucket::new().await;
        let bytes = std::fs::read(real_dataset()).expect("read the dataset");
        let at = AsyncPlace::put(&&bucket, "admissions.csv", &bytes).await;
        killed_runner(&env, &bucket.url("incoming/"), &at).await;
        env.drop_db().await;
    }

    #[tokio::test]
    async fn a_file_that_keeps_failing_is_parked_until_retried() {
        let env = TestEnv::new("ingest_s3_parked").await;
        let bucket = Bucket::new().await;
        parked(&env, &bucket.url("incoming/"), &bucket).await;
        env.drop_db().await;
    }

    #[tokio::test]
    async fn a_missing_bucket_is_a_usage_error_that_says_so() {
        let env = TestEnv::new("ingest_s3_missing").await;
        crate::awsenv::require_endpoint();
        let out = env.run(&[
            "ingest",
            "s3://hcctl-no-such-bucket-for-ingest/incoming/",
            "--db",
            &env.db,
        ]);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("cannot list s3://hcctl-no-such-bucket-for-ingest/incoming/"),
            "{}",
            stderr(&out)
        );
    }
}
