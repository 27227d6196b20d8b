//! Logical dumps (issue 23): `backup dump` of the real export's collection into S3, loaded into
//! another database by `backup load` and verified against the CSV; damaged, cut or incomplete
//! dumps refused with nothing written; hcctl's writers and the dump waiting for each other.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bson::{doc, Document};
use serde_json::Value;

use crate::cloud::Bucket;
use crate::util::{assert_exit, assert_success, n, real_dataset, stderr, stdout, TestEnv};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// `hcctl backup dump --db <env.db> --to TO --format json`, asserted successful.
fn dump(env: &TestEnv, to: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "backup", "dump", "--db", &env.db, "--to", to, "--format", "json",
    ];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_success(&out);
    json(&out)
}

fn load(env: &TestEnv, dump: &str, db: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["backup", "load", dump, "--db", db, "--format", "json"];
    args.extend_from_slice(extra);
    env.run(&args)
}

async fn drop_database(env: &TestEnv, db: &str) {
    let _ = env.client.database(db).drop().await;
}

async fn collections_of(env: &TestEnv, db: &str) -> Vec<String> {
    let mut names = env
        .client
        .database(db)
        .list_collection_names()
        .await
        .expect("list collections");
    names.sort();
    names
}

#[tokio::test]
async fn the_real_exports_dump_in_s3_loads_into_another_database_and_verifies_against_the_csv() {
    let env = TestEnv::new("dump_real").await;
    let bucket = Bucket::new().await;
    let dataset = real_dataset();
    let migrated = env.migrate(&dataset, "patients", &[]);
    let stored = env.count("patients", doc! {}).await;
    assert_eq!(stored, n(&migrated, "inserted"));

    let report = dump(&env, &bucket.url("dumps/"), &[]);
    let at = report["dump"]
        .as_str()
        .expect("the dump's location")
        .to_string();
    let prefix = at
        .strip_prefix(&format!("s3://{}/", bucket.name))
        .expect("the dump is in the bucket")
        .to_string();
    assert!(
        prefix.starts_with(&format!("dumps/{}-", env.db)),
        "{prefix}"
    );
    let manifest = &report["manifest"];
    assert_eq!(manifest["format"], "hcctl-dump/1");
    assert_eq!(manifest["writes_during_dump"], false);
    assert_eq!(manifest["writers_paused"], true);
    let colls = manifest["collections"].as_array().expect("collections");
    assert_eq!(colls.len(), 1, "{manifest}");
    assert_eq!(colls[0]["name"], "patients");
    assert_eq!(n(&colls[0], "documents"), stored);
    assert_eq!(
        colls[0]["indexes"].as_array().map(Vec::len),
        Some(6),
        "_id and the 5 query indexes"
    );
    // What is in the bucket: the manifest (as printed) and the documents, encrypted at rest.
    let keys = bucket.keys().await;
    assert_eq!(
        keys,
        vec![
            format!("{prefix}manifest.json"),
            format!("{prefix}patients.bson.gz")
        ]
    );
    for key in &keys {
        assert_eq!(
            bucket.encryption(key).await.as_deref(),
            Some("AES256"),
            "{key}"
        );
    }
    assert_eq!(
        &bucket.json(&format!("{prefix}manifest.json")).await,
        manifest
    );

    let restored = format!("{}_restored", env.db);
    let out = load(&env, &at, &restored, &[]);
    assert_success(&out);
    let loaded = json(&out);
    assert_eq!(n(&loaded, "documents"), stored);
    assert_eq!(loaded["collections"][0]["verified"], true);
    assert_eq!(loaded["collections"][0]["indexes"], 5);
    let mut indexes = env
        .client
        .database(&restored)
        .collection::<Document>("patients")
        .list_index_names()
        .await
        .expect("indexes of the restored collection");
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "_id_",
            "date_of_admission",
            "doctor",
            "hospital",
            "medical_condition",
            "name"
        ]
    );

    // The restored documents are the CSV's, row for row.
    let out = env.run(&[
        "verify",
        dataset.to_str().expect("utf-8 path"),
        "--db",
        &restored,
        "--collection",
        "patients",
        "--format",
        "json",
    ]);
    assert_success(&out);
    let verified = json(&out);
    assert_eq!(
        (
            n(&verified, "missing"),
            n(&verified, "different"),
            n(&verified, "extra")
        ),
        (0, 0, 0),
        "{verified}"
    );
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(n(&verified, "rows_read"), 55_500);
    drop_database(&env, &restored).await;
    env.drop_db().await;
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn gzip(path: &Path, bytes: &[u8]) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).expect("create"),
        flate2::Compression::default(),
    );
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip");
}

/// A copy of the dump folder `from` as `to`, for damaging.
fn copy_dump(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dump") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A copy of the dump `good` as `to` with one byte changed `offset` bytes after the first
/// `field` name of patients.bson.gz (inside its string value: every length stays right).
fn alter_a_value(good: &Path, to: &Path, field: &[u8], offset: usize) {
    copy_dump(good, to);
    let mut bytes = gunzip(&good.join("patients.bson.gz"));
    let at = bytes
        .windows(field.len())
        .position(|w| w == field)
        .expect("the field in the dump")
        + offset;
    bytes[at] = if bytes[at] == b'q' { b'r' } else { b'q' };
    gzip(&to.join("patients.bson.gz"), &bytes);
}

#[tokio::test]
async fn damaged_cut_or_incomplete_dumps_are_refused_with_nothing_written() {
    let env = TestEnv::new("dump_bad").await;
    let csv = env.generate("a.csv", 1500, 11);
    env.migrate(&csv, "patients", &[]);
    let stored = env.count("patients", doc! {}).await;
    let dumps = env.dir.path().join("dumps");
    let report = dump(&env, dumps.to_str().expect("utf-8"), &[]);
    let good = PathBuf::from(report["dump"].as_str().expect("dump"));
    let good = if good.is_absolute() {
        good
    } else {
        env.dir.path().join(good)
    };
    assert_eq!(mode(&good), 0o700);
    for file in ["manifest.json", "patients.bson.gz"] {
        assert_eq!(mode(&good.join(file)), 0o600, "{file}");
    }
    let target = format!("{}_target", env.db);
    let refused = |dump: &Path, why: &str| {
        let out = load(&env, dump.to_str().expect("utf-8"), &target, &[]);
        assert_exit(&out, 2);
        let err = json(&out)["error"].as_str().unwrap_or_default().to_string();
        assert!(err.contains(why), "{why}: {err}");
        assert!(err.contains("nothing was"), "{err}");
        for name in ["Leakcheck", "@"] {
            assert!(!err.contains(name), "{err}");
        }
    };

    // An altered document: one byte of a value changed, lengths intact.
    let altered = env.dir.path().join("altered");
    alter_a_value(&good, &altered, b"Hospital", 20);
    refused(&altered, "digest differs");

    // Cut in the middle of a document.
    let cut = env.dir.path().join("cut");
    copy_dump(&good, &cut);
    let whole = gunzip(&good.join("patients.bson.gz"));
    gzip(&cut.join("patients.bson.gz"), &whole[..whole.len() / 2]);
    refused(&cut, "is damaged after");

    // The compressed file itself cut short.
    let short = env.dir.path().join("short");
    copy_dump(&good, &short);
    let gz = std::fs::read(good.join("patients.bson.gz")).expect("read");
    std::fs::write(short.join("patients.bson.gz"), &gz[..gz.len() - 100]).expect("write");
    refused(&short, "is damaged after");

    // A dump without its manifest (interrupted).
    let partial = env.dir.path().join("partial");
    copy_dump(&good, &partial);
    std::fs::remove_file(partial.join("manifest.json")).expect("rm");
    refused(&partial, "is not a complete dump");
    assert!(
        collections_of(&env, &target).await.is_empty(),
        "nothing written"
    );

    // The good dump loads; a second load into the same database is refused, --drop replaces.
    let out = load(&env, good.to_str().expect("utf-8"), &target, &[]);
    assert_success(&out);
    assert_eq!(n(&json(&out), "documents"), stored);
    let out = load(&env, good.to_str().expect("utf-8"), &target, &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("is not empty (patients)"),
        "{}",
        stderr(&out)
    );
    // The live collection changed since (one more document): a --drop whose load fails (an
    // index the data cannot satisfy, added to the manifest) leaves it exactly as it was, with
    // no staging collection left; a good one replaces it.
    let live = env
        .client
        .database(&target)
        .collection::<Document>("patients");
    live.insert_one(doc! { "_id": "written-after-the-dump" })
        .await
        .expect("insert");
    let unsatisfiable = env.dir.path().join("unsatisfiable");
    copy_dump(&good, &unsatisfiable);
    let manifest_path = unsatisfiable.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("JSON");
    let patients = manifest["collections"]
        .as_array_mut()
        .expect("collections")
        .iter_mut()
        .find(|c| c["name"] == "patients")
        .expect("patients in the manifest");
    patients["indexes"]
        .as_array_mut()
        .expect("indexes")
        .push(serde_json::json!({"key": {"Gender": 1}, "name": "Gender_1", "unique": true}));
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let out = load(
        &env,
        unsatisfiable.to_str().expect("utf-8"),
        &target,
        &["--drop"],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("the live collections were not touched"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        live.count_documents(doc! {}).await.expect("count"),
        stored + 1
    );
    assert_eq!(
        collections_of(&env, &target).await,
        ["_hcctl_writes", "patients"],
        "the leases (the writers were paused) and the data, no staging collection"
    );
    let out = load(
        &env,
        good.join("manifest.json").to_str().expect("utf-8"),
        &target,
        &["--drop"],
    );
    assert_success(&out);
    assert_eq!(live.count_documents(doc! {}).await.expect("count"), stored);
    assert_eq!(
        live.count_documents(doc! { "_id": "written-after-the-dump" })
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        collections_of(&env, &target).await,
        ["_hcctl_writes", "patients"],
        "the leases (the writers were paused) and the data, no staging collection"
    );
    drop_database(&env, &target).await;
    env.drop_db().await;
}

#[tokio::test]
async fn a_dump_waits_for_hcctls_writers_and_they_wait_for_it() {
    let env = TestEnv::new("dump_wait").await;
    let leases = env.coll("_hcctl_writes");
    let later =
        bson::DateTime::from_system_time(std::time::SystemTime::now() + Duration::from_secs(120));

    // A live writer (a migrate in progress elsewhere): the dump waits, then gives up with 75.
    leases
        .insert_one(doc! { "_id": "writer:elsewhere:1:ab", "kind": "writer", "runner": "elsewhere:1", "expires": later })
        .await
        .expect("insert a writer lease");
    let out = env.run(&[
        "backup",
        "dump",
        "--db",
        &env.db,
        "--to",
        "dumps",
        "--writers-wait",
        "2s",
    ]);
    assert_exit(&out, 75);
    assert!(
        stderr(&out).contains("1 hcctl writer(s) (migrate or ingest) still writing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("dumps"))
            .expect("dumps")
            .count(),
        0
    );
    assert_eq!(
        env.count("_hcctl_writes", doc! { "_id": "dump" }).await,
        0,
        "the dump lease let go"
    );
    leases.delete_many(doc! {}).await.expect("clear");

    // A live dump: migrate waits, then gives up with 75, nothing written, registration withdrawn.
    leases
        .insert_one(
            doc! { "_id": "dump", "kind": "dump", "runner": "elsewhere:2", "expires": later },
        )
        .await
        .expect("insert a dump lease");
    let csv = env.generate("a.csv", 200, 3);
    let (mut cmd, _) = env.migrate_command(&csv, "patients", &["--dump-wait", "2s"]);
    let out = cmd.output().expect("run hcctl");
    assert_exit(&out, 75);
    assert!(
        stderr(&out).contains("a backup dump of"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("by elsewhere:2 is in progress"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.count("patients", doc! {}).await, 0);
    assert_eq!(
        env.count("_hcctl_writes", doc! { "kind": "writer" }).await,
        0
    );
    // An expired dump lease (its holder died) holds nobody back.
    leases
        .update_one(
            doc! { "_id": "dump" },
            doc! { "$set": { "expires": bson::DateTime::now() } },
        )
        .await
        .expect("expire");
    env.migrate(&csv, "patients", &["--dump-wait", "0s"]);
    assert!(env.count("patients", doc! {}).await > 0);
    env.drop_db().await;
}

/// Issue 23 review: a lease document carries its holder's token and the server's times; once it
/// lapsed and another holder took it over, the old holder's renewal fails (its lease is then
/// `lost`, which makes a dump leave no manifest) and its end deletes nothing of the new holder's.
#[tokio::test]
async fn a_lease_taken_over_is_never_renewed_nor_deleted_by_its_old_holder() {
    let env = TestEnv::new("lease_token").await;
    let db = env.client.database(&env.db);
    let leases = env.coll("_hcctl_writes");
    let server_before = hcctl::writes::Clock::of(&db).await.now();
    let lease = hcctl::writes::pause_writers(&db, Duration::from_secs(0))
        .await
        .expect("the dump lease");
    let mine = leases
        .find_one(doc! { "_id": "dump" })
        .await
        .expect("read the lease")
        .expect("the lease document");
    let token = mine.get_str("token").expect("a token").to_string();
    assert_eq!(token.len(), 32, "{mine}");
    let started = *mine.get_datetime("started").expect("started");
    let expires = *mine.get_datetime("expires").expect("expires");
    assert!(
        (started.timestamp_millis() - server_before.timestamp_millis()).abs() < 5_000,
        "{mine}"
    );
    let lease_ms = expires.timestamp_millis() - started.timestamp_millis();
    assert!((89_000..=91_000).contains(&lease_ms), "{mine}");
    assert!(lease.renew().await);
    assert!(!lease.lost());

    // Taken over by another dump (as after an expiry): its token now.
    leases
        .update_one(
            doc! { "_id": "dump" },
            doc! { "$set": { "token": "another-holder", "runner": "elsewhere:9" } },
        )
        .await
        .expect("take over");
    assert!(!lease.renew().await, "renewed a lease it no longer holds");
    assert!(lease.lost());
    lease.end().await;
    let left = leases
        .find_one(doc! { "_id": "dump" })
        .await
        .expect("read the lease")
        .expect("the other holder's lease is still there");
    assert_eq!(left.get_str("token").ok(), Some("another-holder"));
    // An expired lease cannot be renewed by its holder either.
    leases.delete_many(doc! {}).await.expect("clear");
    let writer = hcctl::writes::begin_writes(&db, Duration::from_secs(0))
        .await
        .expect("a writer lease");
    leases
        .update_many(
            doc! { "kind": "writer" },
            doc! { "$set": { "expires": bson::DateTime::from_millis(0) } },
        )
        .await
        .expect("expire");
    assert!(!writer.renew().await);
    assert!(writer.lost());
    writer.end().await;
    env.drop_db().await;
}

/// An ingest of several files with a dump taken in its middle: the dump holds whole files only,
/// each recorded as done in the dumped ledger (its documents exactly the done files' inserts),
/// and the ingest waited for it and then finished every file.
#[tokio::test]
async fn a_dump_during_an_ingest_holds_whole_recorded_files_only() {
    let env = TestEnv::new("dump_ingest").await;
    let exports = env.dir.path().join("exports");
    std::fs::create_dir(&exports).expect("mkdir");
    for i in 0..4u64 {
        env.generate(&format!("exports/day{i}.csv"), 2500, 100 + i);
    }
    let mut ingest = env.command(&[
        "ingest",
        exports.to_str().expect("utf-8"),
        "--db",
        &env.db,
        "--collection",
        "patients",
        "--quarantine-dir",
        env.dir.path().to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    let child = ingest
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ingest");
    // Once the first file is recorded as done, dump.
    let deadline = Instant::now() + Duration::from_secs(120);
    while env
        .count("_ingest", doc! { "kind": "file", "state": "done" })
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the ingest recorded no file in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = dump(&env, "dumps", &[]);
    let out = child.wait_with_output().expect("ingest ends");
    assert_success(&out);
    let manifest = &report["manifest"];
    assert_eq!(manifest["writes_during_dump"], false, "{manifest}");
    let at = env.dir.path().join(report["dump"].as_str().expect("dump"));

    let restored = format!("{}_r", env.db);
    let out = load(&env, at.to_str().expect("utf-8"), &restored, &[]);
    assert_success(&out);
    let db = env.client.database(&restored);
    let files: Vec<Document> = {
        use futures_util::TryStreamExt;
        db.collection::<Document>("_ingest")
            .find(doc! { "kind": "file" })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("read the restored ledger")
    };
    let done: Vec<&Document> = files
        .iter()
        .filter(|f| f.get_str("state") == Ok("done"))
        .collect();
    assert!(
        !done.is_empty() && done.len() < 4,
        "the dump fell inside the ingest: {} done",
        done.len()
    );
    let inserted: i64 = done
        .iter()
        .map(|f| {
            let report = f.get_document("report").expect("a done file's report");
            report
                .get_i64("inserted")
                .or_else(|_| report.get_i32("inserted").map(i64::from))
                .expect("inserted")
        })
        .sum();
    let documents = db
        .collection::<Document>("patients")
        .count_documents(doc! {})
        .await
        .expect("count");
    assert_eq!(
        documents,
        u64::try_from(inserted).expect("positive"),
        "only whole, recorded files"
    );
    // And the ingest finished all four after the dump.
    assert_eq!(
        env.count("_ingest", doc! { "kind": "file", "state": "done" })
            .await,
        4
    );
    drop_database(&env, &restored).await;
    env.drop_db().await;
}

async fn scratch_databases(env: &TestEnv) -> Vec<String> {
    let names = env
        .client
        .list_database_names()
        .await
        .expect("list databases");
    names
        .into_iter()
        .filter(|n| n.starts_with(&format!("{}_drill_", env.db)))
        .collect()
}

#[tokio::test]
async fn a_restore_drill_reports_rto_and_rpo_and_fails_on_an_altered_dump_or_a_difference() {
    let env = TestEnv::new("drill").await;
    let csv = env.generate("a.csv", 1200, 21);
    let migrated = env.migrate(&csv, "patients", &[]);
    let csv_arg = csv.to_str().expect("utf-8");

    // A new dump, restored, checked and verified against the CSV; the scratch database dropped.
    let out = env.run(&[
        "backup", "drill", "--db", &env.db, "--verify", csv_arg, "--format", "json",
    ]);
    assert_success(&out);
    let r = json(&out);
    assert_eq!(
        (r["ok"].clone(), r["dumped_now"].clone()),
        (Value::Bool(true), Value::Bool(true)),
        "{r}"
    );
    assert_eq!(n(&r, "documents"), n(&migrated, "inserted"));
    assert!(r["rto_seconds"].as_f64().is_some_and(|s| s > 0.0), "{r}");
    assert!(
        r["rpo_seconds"]
            .as_f64()
            .is_some_and(|s| (0.0..600.0).contains(&s)),
        "{r}"
    );
    assert_eq!(r["verified"][0]["ok"], true);
    assert_eq!(
        n(&r["verified"][0], "checked"),
        n(&migrated, "inserted") + n(&migrated, "duplicates")
    );
    assert_eq!(r["scratch_dropped"], true);
    assert!(scratch_databases(&env).await.is_empty());
    let first = r["dump"].as_str().expect("dump").to_string();

    // --from a folder of dumps: the newest one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newer = dump(&env, "dumps", &[]);
    let out = env.run(&[
        "backup", "drill", "--db", &env.db, "--from", "dumps", "--format", "json",
    ]);
    assert_success(&out);
    let r = json(&out);
    assert_eq!(
        r["dump"], newer["dump"],
        "the newest of {first} and {}",
        newer["dump"]
    );
    assert_eq!(r["dumped_now"], false);

    // An altered dump fails the drill (exit 1), and says why.
    let good = env.dir.path().join(newer["dump"].as_str().expect("dump"));
    let altered = env.dir.path().join("altered");
    alter_a_value(&good, &altered, b"Doctor", 14);
    let out = env.run(&[
        "backup",
        "drill",
        "--db",
        &env.db,
        "--from",
        altered.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    assert_exit(&out, 1);
    let r = json(&out);
    assert_eq!(r["ok"], false);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("the dump did not restore") && problems.contains("digest differs"),
        "{problems}"
    );
    assert!(scratch_databases(&env).await.is_empty());

    // A CSV the restored data does not hold fails the drill.
    let other = env.generate("b.csv", 50, 99);
    let out = env.run(&[
        "backup",
        "drill",
        "--db",
        &env.db,
        "--from",
        "dumps",
        "--verify",
        other.to_str().expect("utf-8"),
    ]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("FAILED") && stdout(&out).contains("50 missing"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("the restore drill failed: verify"),
        "{}",
        stderr(&out)
    );
    assert!(scratch_databases(&env).await.is_empty());
    env.drop_db().await;
}

/// The drill verifies, against the restored documents, every file the restored ingest ledger
/// records as loaded that is still there unchanged; a file changed since is listed as not
/// verified, with why (and is no failure: the dump holds what was loaded then).
#[tokio::test]
async fn the_drill_verifies_the_ledgers_files_that_are_still_there_unchanged() {
    let env = TestEnv::new("drill_ledger").await;
    let exports = env.dir.path().join("exports");
    std::fs::create_dir(&exports).expect("mkdir");
    env.generate("exports/day1.csv", 400, 31);
    env.generate("exports/day2.csv", 300, 32);
    let out = env.run(&[
        "ingest",
        exports.to_str().expect("utf-8"),
        "--db",
        &env.db,
        "--collection",
        "admissions",
        "--quarantine-dir",
        env.dir.path().to_str().expect("utf-8"),
    ]);
    assert_success(&out);
    let dumped = dump(&env, "dumps", &[]);
    let at = dumped["dump"].as_str().expect("dump");

    let drill = |env: &TestEnv| {
        let out = env.run(&[
            "backup", "drill", "--db", &env.db, "--from", at, "--format", "json",
        ]);
        assert_success(&out);
        json(&out)
    };
    let r = drill(&env);
    let mut files: Vec<(String, String, bool)> = r["verified"]
        .as_array()
        .expect("verified")
        .iter()
        .map(|v| {
            let file = v["file"].as_str().unwrap_or_default();
            let name = file.rsplit('/').next().unwrap_or_default().to_string();
            (
                name,
                v["collection"].as_str().unwrap_or_default().to_string(),
                v["ok"] == true,
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            ("day1.csv".to_string(), "admissions".to_string(), true),
            ("day2.csv".to_string(), "admissions".to_string(), true)
        ],
        "{r}"
    );
    assert_eq!(r["not_verified"], serde_json::json!([]));

    // day2 changed after the dump: listed as not verified, the drill still passes.
    let mut text = std::fs::read_to_string(exports.join("day2.csv")).expect("read");
    let last = text.lines().last().expect("a row").to_string();
    text.push_str(&last.replacen(|c: char| c.is_ascii_alphabetic(), "Q", 1));
    text.push('\n');
    std::fs::write(exports.join("day2.csv"), text).expect("append");
    let r = drill(&env);
    assert_eq!(r["verified"].as_array().map(Vec::len), Some(1), "{r}");
    let skipped = r["not_verified"].to_string();
    assert!(
        skipped.contains("day2.csv: changed since it was loaded"),
        "{skipped}"
    );
    assert_eq!(r["ok"], true);
    env.drop_db().await;
}
