//! `hcctl migrate`, end to end: documents are read back from the server.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use bson::{doc, Bson};

use crate::util::*;

/// Issue 24 findings 3, 7, 8, 10, 11, 12: reading and cleaning rows.
mod cleaning;

#[tokio::test]
async fn real_export_loads_exactly_once() {
    let env = TestEnv::new("real").await;
    let data = real_dataset();

    let first = env.migrate(&data, "patients", &[]);
    assert_eq!(n(&first, "rows_read"), 55_500);
    assert_eq!(n(&first, "inserted"), 54_966);
    assert_eq!(n(&first, "duplicates"), 534);
    assert_eq!(n(&first, "rejected"), 0);
    assert_eq!(n(&first, "billing_nulled"), 108);
    assert_eq!(first["rejects_by_reason"], serde_json::json!({}));
    assert!(first["elapsed_seconds"].as_f64().unwrap() > 0.0);
    assert!(first["rows_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(env.count("patients", doc! {}).await, 54_966);

    // Typed fields, title-cased names, nulled billing with its original kept in the lineage.
    let bobby = env
        .coll("patients")
        .find_one(doc! { "Name": "Bobby Jackson", "Room Number": 328 })
        .await
        .unwrap()
        .expect("the first row of the export, title-cased");
    assert!(matches!(bobby.get("Age"), Some(Bson::Int32(30))));
    assert!(matches!(bobby.get("Room Number"), Some(Bson::Int32(328))));
    assert_eq!(
        bobby.get("Billing Amount"),
        Some(&Bson::Double(18856.281305978155))
    );
    assert_eq!(
        bobby
            .get_datetime("Date of Admission")
            .unwrap()
            .try_to_rfc3339_string()
            .unwrap(),
        "2024-01-31T00:00:00Z"
    );
    assert!(matches!(
        bobby.get("Discharge Date"),
        Some(Bson::DateTime(_))
    ));
    assert_eq!(
        bobby.get_document("_lineage").unwrap(),
        &doc! { "source": "healthcare_dataset.csv", "line": 2_i64 }
    );
    let nulled = env
        .count("patients", doc! { "Billing Amount": Bson::Null })
        .await;
    assert_eq!(nulled, 106, "108 negative rows, 106 distinct");
    let with_original = env
        .count(
            "patients",
            doc! { "_lineage.billing_amount_original": { "$lt": 0.0 } },
        )
        .await;
    assert_eq!(with_original, 106);
    // No name keeps random casing; suffixes keep their spelling.
    let mixed = env
        .count("patients", doc! { "Name": { "$regex": "[a-z][A-Z]" } })
        .await;
    let phd = env
        .count("patients", doc! { "Name": { "$regex": " PhD$" } })
        .await;
    assert!(phd > 0);
    assert_eq!(mixed, phd, "only PhD keeps an inner capital");
    assert_eq!(
        env.count(
            "patients",
            doc! { "Name": { "$regex": " Md$| Phd$| Ii$| Dds$" } }
        )
        .await,
        0
    );
    assert!(
        env.count("patients", doc! { "Name": { "$regex": " MD$" } })
            .await
            > 0
    );
    // Hospital names keep their odd commas.
    assert!(
        env.count(
            "patients",
            doc! { "Hospital": "Hernandez Rogers and Vang," }
        )
        .await
            > 0
    );

    // Indexes for the common queries.
    let names = env.coll("patients").list_index_names().await.unwrap();
    for idx in [
        "name",
        "medical_condition",
        "date_of_admission",
        "hospital",
        "doctor",
    ] {
        assert!(
            names.iter().any(|n| n == idx),
            "index {idx} missing: {names:?}"
        );
    }

    // Idempotent: the second run inserts nothing.
    let second = env.migrate(&data, "patients", &[]);
    assert_eq!(n(&second, "inserted"), 0);
    assert_eq!(n(&second, "duplicates"), 55_500);
    assert_eq!(env.count("patients", doc! {}).await, 54_966);

    let out = env.run(&[
        "verify",
        data.to_str().unwrap(),
        "--db",
        &env.db,
        "--format",
        "json",
    ]);
    assert_success(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["found"], 55_500);
    env.drop_db().await;
}

#[tokio::test]
async fn generated_rows_add_up_and_duplicates_match_repeated_lines() {
    let env = TestEnv::new("generated").await;
    let data = env.generate("gen.csv", 20_000, 7);
    let text = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<&str> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    let distinct: HashSet<&str> = lines.iter().copied().collect();
    let repeated = (lines.len() - distinct.len()) as u64;
    assert!(
        repeated > 100,
        "the generator makes ~1% duplicates, got {repeated}"
    );

    let r = env.migrate(&data, "gen", &["--batch-size", "500", "--workers", "3"]);
    assert_eq!(n(&r, "rows_read"), 20_000);
    assert_eq!(n(&r, "rejected"), 0);
    assert_eq!(n(&r, "duplicates"), repeated);
    assert_eq!(n(&r, "inserted"), distinct.len() as u64);
    assert_eq!(
        n(&r, "rows_read"),
        n(&r, "inserted") + n(&r, "duplicates") + n(&r, "rejected")
    );
    assert!(n(&r, "billing_nulled") > 0);
    assert_eq!(env.count("gen", doc! {}).await, n(&r, "inserted"));
    env.drop_db().await;
}

/// Every duplicate's stored lineage names its first line, however batches raced.
#[tokio::test]
async fn first_copy_of_a_duplicate_is_the_one_stored() {
    let env = TestEnv::new("firstcopy").await;
    let data = env.generate("gen.csv", 6_000, 11);
    let text = std::fs::read_to_string(&data).unwrap();
    let mut first_line = std::collections::HashMap::new();
    for (i, l) in text
        .split("\r\n")
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.is_empty())
    {
        first_line.entry(l.to_string()).or_insert(i as i64 + 1);
    }
    env.migrate(&data, "c", &["--batch-size", "7", "--workers", "8"]);
    let lines: HashSet<i64> = env
        .docs("c")
        .await
        .iter()
        .map(|d| d.get_document("_lineage").unwrap().get_i64("line").unwrap())
        .collect();
    let firsts: HashSet<i64> = first_line.values().copied().collect();
    assert_eq!(lines, firsts);
    env.drop_db().await;
}

/// Start a slow migrate of `data` into `coll` (small batches, one writer) and return it once
/// at least 500 documents are stored, well before the end.
async fn start_slow_run(env: &TestEnv, data: &Path, coll: &str) -> std::process::Child {
    let mut child = env
        .command(&[
            "migrate",
            data.to_str().unwrap(),
            "--db",
            &env.db,
            "--collection",
            coll,
            "--batch-size",
            "20",
            "--workers",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.count(coll, doc! {}).await < 500 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "the run never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

#[tokio::test]
async fn interrupted_run_finished_by_a_rerun_equals_one_clean_run() {
    let env = TestEnv::new("interrupt").await;
    let data = env.generate("gen.csv", 12_000, 3);
    env.migrate(&data, "clean", &[]);
    let clean = env.docs("clean").await;

    // Killed outright (a crash, an OOM kill): no chance to say anything.
    let mut child = start_slow_run(&env, &data, "cut").await;
    child.kill().unwrap();
    child.wait().unwrap();
    // Stopped with SIGTERM (what ECS sends): exit 143 and one line saying a rerun is safe.
    let child = start_slow_run(&env, &data, "term").await;
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 143);
    let err = stderr(&out);
    assert!(
        err.contains("hcctl: interrupted; running the same command again is safe"),
        "{err}"
    );

    for coll in ["cut", "term"] {
        let partial = env.count(coll, doc! {}).await;
        assert!(
            partial < clean.len() as u64,
            "{coll}: interrupted before the end ({partial} stored)"
        );
        let rerun = env.migrate(&data, coll, &[]);
        assert_eq!(n(&rerun, "rows_read"), 12_000);
        assert_eq!(
            env.docs(coll).await,
            clean,
            "{coll}: same documents, same lineage, as one clean run"
        );
    }
    env.drop_db().await;
}

/// A file whose every row is rejected, into a collection that does not exist yet: the load
/// inserts nothing, so listing the (absent) collection's indexes answered NamespaceNotFound and
/// the run failed with exit 1 after quarantining every row (and then removed the quarantine).
#[tokio::test]
async fn a_file_with_every_row_rejected_into_a_new_collection_succeeds() {
    let env = TestEnv::new("allrejected").await;
    let mut csv = Vec::from(format!("{HEADER}\n"));
    for age in ["200", "-1", "abc"] {
        csv.extend_from_slice(row_with(&[(1, age)]).as_bytes());
        csv.push(b'\n');
    }
    let path = env.write("all-bad.csv", &csv);
    let report = env.migrate(&path, "fresh", &[]);
    assert_eq!(report["rows_read"], 3, "{report}");
    assert_eq!(report["inserted"], 0, "{report}");
    assert_eq!(report["rejected"], 3, "{report}");
    assert_eq!(report["rejects_by_reason"]["age_invalid"], 3, "{report}");
    let quarantine = report["quarantine"].as_str().expect("quarantine path");
    let text = std::fs::read_to_string(env.dir.path().join(quarantine))
        .or_else(|_| std::fs::read_to_string(quarantine))
        .expect("the quarantine is kept");
    assert_eq!(text.lines().count(), 4, "header and three rows:\n{text}");
    env.drop_db().await;
}

#[tokio::test]
async fn each_rule_rejects_into_the_quarantine_with_its_reason() {
    let env = TestEnv::new("rejects").await;
    let rows = [
        (row_with(&[]), None),
        (row_with(&[(0, " ")]), Some("name_missing")),
        (row_with(&[(1, "121")]), Some("age_invalid")),
        (row_with(&[(2, "")]), Some("gender_missing")),
        (row_with(&[(3, "Z+")]), Some("blood_type_invalid")),
        (row_with(&[(4, "")]), Some("medical_condition_missing")),
        (
            row_with(&[(5, "2024-02-30")]),
            Some("date_of_admission_invalid"),
        ),
        (row_with(&[(6, "")]), Some("doctor_missing")),
        (row_with(&[(7, "\"\"")]), Some("hospital_missing")),
        (row_with(&[(8, "")]), Some("insurance_provider_missing")),
        (row_with(&[(9, "12,5")]), Some("wrong_field_count")),
        (row_with(&[(9, "n/a")]), Some("billing_amount_invalid")),
        (row_with(&[(10, "0")]), Some("room_number_invalid")),
        (row_with(&[(11, "")]), Some("admission_type_missing")),
        (row_with(&[(12, "2024-02")]), Some("discharge_date_invalid")),
        (
            row_with(&[(12, "2024-01-01")]),
            Some("discharge_before_admission"),
        ),
        (row_with(&[(13, "")]), Some("medication_missing")),
        (row_with(&[(14, "")]), Some("test_results_missing")),
        (row_with(&[(1, "31")]), None),
    ];
    let mut csv = Vec::from(format!("{HEADER}\n"));
    for (r, _) in &rows {
        csv.extend_from_slice(r.as_bytes());
        csv.push(b'\n');
    }
    // Invalid UTF-8 in a field.
    let mut data = csv;
    data.extend(row_with(&[(4, "CANCERX")]).into_bytes());
    let pos = data.windows(7).rposition(|w| w == b"CANCERX").unwrap();
    data.splice(pos..pos + 7, b"Canc\xFFer".iter().copied());
    data.push(b'\n');
    let path = env.write("rejects.csv", &data);
    let quarantine = env.dir.path().join("q.csv");

    let r = env.migrate(&path, "r", &["--quarantine", quarantine.to_str().unwrap()]);
    let expected_rejects = rows.iter().filter(|(_, reason)| reason.is_some()).count() as u64 + 1;
    assert_eq!(n(&r, "rows_read"), rows.len() as u64 + 1);
    assert_eq!(n(&r, "rejected"), expected_rejects);
    assert_eq!(n(&r, "inserted"), 2);
    assert_eq!(env.count("r", doc! {}).await, 2);
    let by_reason = r["rejects_by_reason"].as_object().unwrap();
    for (_, reason) in &rows {
        if let Some(reason) = reason {
            assert_eq!(by_reason[*reason], 1, "{reason}");
        }
    }
    assert_eq!(by_reason["invalid_utf8"], 1);
    assert_eq!(by_reason.len() as u64, expected_rejects);

    // The quarantine: private, one row per reject, line number + reason + original fields.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&quarantine).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut q = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&quarantine)
        .unwrap();
    let head: Vec<String> = q
        .headers()
        .unwrap()
        .iter()
        .take(3)
        .map(String::from)
        .collect();
    assert_eq!(head, ["line", "reason", "expected"]);
    let recs: Vec<csv::ByteRecord> = q.byte_records().map(|r| r.unwrap()).collect();
    assert_eq!(recs.len() as u64, expected_rejects);
    let age = recs.iter().find(|r| &r[1] == b"age_invalid").unwrap();
    assert_eq!(&age[0], b"4", "line number of the row");
    assert_eq!(&age[4], b"121", "original field kept as given");
    let utf8 = recs.iter().find(|r| &r[1] == b"invalid_utf8").unwrap();
    assert_eq!(&utf8[7], b"Canc\xFFer", "original bytes kept");
    let wrong = recs.iter().find(|r| &r[1] == b"wrong_field_count").unwrap();
    assert_eq!(wrong.len(), 3 + 16);
    env.drop_db().await;
}

#[tokio::test]
async fn rfc4180_quoting_crlf_bom_blank_lines_extra_columns_gzip_and_stdin() {
    let env = TestEnv::new("csvshapes").await;
    // Columns shuffled and in odd case, a BOM, an extra column, CRLF, quoted commas, doubled
    // quotes, a line break inside quotes, blank lines.
    let header = "\u{feff} name ,AGE,gender,Blood Type,Medical Condition,Date of Admission,Doctor,Ward,Hospital,Insurance Provider,Billing Amount,Room Number,Admission Type,Discharge Date,Medication,test results";
    let a = "o'neil  ANNE-marie,45,female,ab+,Asthma,2020-02-28,Kevin Wells,  West Wing ,\"Hernandez Rogers and Vang,\",Medicare,-502.5071654,101,EMERGENCY,2020-03-01,Aspirin,abnormal";
    let b = "john smith md,50,Male,O-,Diabetes,2021-01-01,Kevin Wells,,\"St. \"\"Mary\"\"\nNorth, Campus\",Aetna,1000.5,102,Elective,2021-01-02,Lipitor,Normal";
    let csv = format!("{header}\r\n{a}\r\n\r\n{b}\r\n\r\n");
    let path = env.write("shapes.csv", &csv);

    let r = env.migrate(&path, "s", &[]);
    assert_eq!(n(&r, "rows_read"), 2, "blank lines are not rows");
    assert_eq!(n(&r, "inserted"), 2);
    assert_eq!(n(&r, "billing_nulled"), 1);
    let anne = env
        .coll("s")
        .find_one(doc! { "Age": 45 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(anne.get_str("Name").unwrap(), "O'Neil Anne-Marie");
    assert_eq!(anne.get_str("Gender").unwrap(), "Female");
    assert_eq!(anne.get_str("Blood Type").unwrap(), "AB+");
    assert_eq!(anne.get_str("Admission Type").unwrap(), "Emergency");
    assert_eq!(anne.get_str("Test Results").unwrap(), "Abnormal");
    assert_eq!(
        anne.get_str("Hospital").unwrap(),
        "Hernandez Rogers and Vang,"
    );
    assert_eq!(anne.get_str("Ward").unwrap(), "West Wing");
    assert_eq!(anne.get("Billing Amount"), Some(&Bson::Null));
    assert_eq!(
        anne.get_document("_lineage").unwrap(),
        &doc! { "source": "shapes.csv", "line": 2_i64, "billing_amount_original": -502.5071654 }
    );
    let john = env
        .coll("s")
        .find_one(doc! { "Age": 50 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(john.get_str("Name").unwrap(), "John Smith MD");
    assert_eq!(
        john.get_str("Hospital").unwrap(),
        "St. \"Mary\" North, Campus"
    );
    assert!(!john.contains_key("Ward"), "empty extra fields are omitted");
    assert_eq!(
        john.get_document("_lineage")
            .unwrap()
            .get_i64("line")
            .unwrap(),
        4
    );

    // The same bytes gzip-compressed, and through stdin: the same documents (by _id).
    let gz_path = env.dir.path().join("shapes.csv.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz_path).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(csv.as_bytes()).unwrap();
        gz.finish().unwrap();
    }
    let g = env.migrate(&gz_path, "s", &[]);
    assert_eq!((n(&g, "rows_read"), n(&g, "duplicates")), (2, 2));

    let mut child = env
        .command(&[
            "migrate",
            "-",
            "--db",
            &env.db,
            "--collection",
            "stdin",
            "--format",
            "json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(csv.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["inserted"], 2);
    let ids = |docs: Vec<bson::Document>| {
        docs.iter()
            .map(|d| d.get_str("_id").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(env.docs("stdin").await), ids(env.docs("s").await));
    env.drop_db().await;
}

#[tokio::test]
async fn missing_columns_stop_the_run_before_anything_is_written() {
    let env = TestEnv::new("missingcol").await;
    let header = HEADER.replace("Age,", "").replace(",Doctor", "");
    let path = env.write("bad.csv", format!("{header}\n"));
    let out = env.run(&[
        "migrate",
        path.to_str().unwrap(),
        "--db",
        &env.db,
        "--collection",
        "x",
    ]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("missing column(s): Age, Doctor"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    env.assert_nothing_written().await;
}

#[tokio::test]
async fn a_cut_off_gzip_file_is_an_input_error_and_writes_nothing() {
    let env = TestEnv::new("cutgz").await;
    let csv = env.generate("big.csv", 60_000, 11);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&csv).unwrap()).unwrap();
    let mut bytes = gz.finish().unwrap();
    // cut near the end: tens of thousands of good rows come first, more than one sort run
    bytes.truncate(bytes.len() - 1_000);
    let path = env.write("cut.csv.gz", bytes);
    let out = env.run(&["migrate", path.to_str().unwrap(), "--db", &env.db]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("incomplete deflate stream"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    env.assert_nothing_written().await;
    for left in ["cut.quarantine.csv", "cut.quarantine.csv.partial"] {
        assert!(
            !env.dir.path().join(left).exists(),
            "a failed run leaves no partial quarantine behind"
        );
    }
    env.drop_db().await;
}

#[tokio::test]
async fn unreachable_server_fails_fast_with_exit_1() {
    let env = TestEnv::new("unreachable").await;
    let path = env.write("one.csv", format!("{HEADER}\n{}\n", row_with(&[])));
    let started = Instant::now();
    let out = env.run(&[
        "migrate",
        path.to_str().unwrap(),
        "--uri",
        "mongodb://writer:hunter2-secret@127.0.0.1:9/?connectTimeoutMS=500",
        "--connect-timeout",
        "1s",
    ]);
    assert_exit(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect to MongoDB at mongodb://writer:****@127.0.0.1:9/"),
        "{err}"
    );
    assert!(
        err.contains(": connection refused (no server answered within 1s;"),
        "{err}"
    );
    assert!(!err.contains("Topology"), "no driver dump: {err}");
    assert!(!err.contains("hunter2-secret"), "password leaked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(!env.dir.path().join("one.quarantine.csv").exists());
}

/// Migrate one valid row with a variant of the test server's URI, made from its scheme,
/// credentials and host part. `None` (and a loud NOT APPLICABLE) when the test URI has no
/// credentials, so the server's authentication cannot be exercised.
fn migrate_one_row_with(
    env: &TestEnv,
    test: &str,
    variant: impl Fn(&str, &str, &str) -> String,
) -> Option<std::process::Output> {
    let (scheme, rest) = env.uri.split_once("://").expect("a mongodb:// URI");
    let Some((userinfo, host)) = rest.split_once('@') else {
        not_applicable(
            test,
            "the test server URI has no credentials, so authentication cannot be tested",
        );
        return None;
    };
    let uri = variant(scheme, userinfo, host);
    let path = env.write("one.csv", format!("{HEADER}\n{}\n", row_with(&[])));
    Some(env.run(&[
        "migrate",
        path.to_str().unwrap(),
        "--uri",
        &uri,
        "--db",
        &env.db,
    ]))
}

#[tokio::test]
async fn wrong_password_fails_with_exit_1() {
    let env = TestEnv::new("auth").await;
    let Some(out) = migrate_one_row_with(&env, "wrong_password_fails_with_exit_1", |s, u, h| {
        let user = u.split(':').next().unwrap_or(u);
        format!("{s}://{user}:not-the-password@{h}")
    }) else {
        return;
    };
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("hcctl: error: authentication failed at "),
        "{err}"
    );
    assert!(err.contains(":****@"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(!err.contains("CommandError"), "no driver dump: {err}");
}

#[tokio::test]
async fn no_credentials_on_an_auth_server_fail_with_one_clear_line() {
    let env = TestEnv::new("noauth").await;
    let test = "no_credentials_on_an_auth_server_fail_with_one_clear_line";
    let Some(out) = migrate_one_row_with(&env, test, |s, _, h| {
        format!("{s}://{}", h.split('?').next().unwrap_or(h))
    }) else {
        return;
    };
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("server error 13 (Unauthorized)"), "{err}");
    assert!(err.contains("HCCTL_MONGODB_URI"), "says what to do: {err}");
    assert!(!err.contains("RawDocument"), "no raw server reply: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}

#[tokio::test]
async fn dry_run_touches_no_server() {
    let env = TestEnv::new("dry").await;
    let data = env.generate("gen.csv", 3_000, 5);
    let out = env.run(&[
        "migrate",
        data.to_str().unwrap(),
        "--dry-run",
        "--uri",
        "mongodb://127.0.0.1:9",
        "--format",
        "json",
    ]);
    assert_success(&out);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["rows_read"], 3_000);
    assert_eq!(n(&r, "inserted") + n(&r, "rejected"), 3_000);
}

#[tokio::test]
async fn logs_never_show_patient_values_or_passwords() {
    let env = TestEnv::new("nolog").await;
    let path = env.write(
        "leak.csv",
        format!(
            "{HEADER}\n{}\n{}\n",
            row_with(&[(0, "Zebulon Quartermaine")]),
            row_with(&[(0, "Xavier Leakcheck"), (1, "-48213")])
        ),
    );
    let password = env
        .uri
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(u, _)| u.split_once(':'))
        .map(|(_, p)| p.to_lowercase());
    // Both log formats (issue 17: JSON lines for CloudWatch), the most verbose level.
    for format in ["text", "json"] {
        let out = env
            .command(&["-vvv", "migrate", path.to_str().unwrap(), "--db", &env.db])
            .env("HCCTL_LOG_FORMAT", format)
            .output()
            .unwrap();
        assert_success(&out);
        let all = format!("{}{}", stdout(&out), stderr(&out)).to_lowercase();
        assert!(
            all.contains("age_invalid"),
            "{format}: the reject is logged with its reason"
        );
        for secret in ["zebulon", "quartermaine", "xavier", "leakcheck", "-48213"] {
            assert!(
                !all.contains(secret),
                "{format}: {secret} leaked into the output"
            );
        }
        if let Some(pw) = &password {
            assert!(
                !all.contains(pw),
                "{format}: the password leaked into the output"
            );
        }
    }
    env.drop_db().await;
}

/// The JSON lines of a run's stderr, each parsed (a line that is not JSON fails the test).
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stderr(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn json_log_lines_parse_and_the_last_carries_the_runs_figures() {
    let env = TestEnv::new("jsonlog").await;
    let data = env.generate("gen.csv", 500, 21);
    let mut body = std::fs::read(&data).unwrap();
    body.extend_from_slice(row_with(&[(1, "abc")]).as_bytes());
    body.push(b'\n');
    let path = env.write("with-reject.csv", body);
    let out = env
        .command(&[
            "migrate",
            path.to_str().unwrap(),
            "--db",
            &env.db,
            "--format",
            "json",
        ])
        .env("HCCTL_LOG_FORMAT", "json")
        .env_remove("HCCTL_LOG")
        .output()
        .unwrap();
    assert_success(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = json_lines(&out);
    // Info by default in JSON: the run's events are in the log, each with the same keys.
    assert!(lines.len() >= 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["command"], "migrate", "{l}");
        for key in ["timestamp", "level", "message"] {
            assert!(l[key].is_string(), "{key} in {l}");
        }
    }
    assert!(lines
        .iter()
        .any(|l| l["message"] == "migrating" && l["level"] == "INFO"));
    let last = lines.last().unwrap();
    assert_eq!(last["message"], "finished", "{last}");
    assert_eq!(last["level"], "INFO");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["rows_read"], 501);
    assert_eq!(last["rejected"], 1);
    assert_eq!(last["inserted"], report["inserted"]);
    assert_eq!(last["duplicates"], report["duplicates"]);
    assert_eq!(n(&report, "inserted") + n(&report, "duplicates"), 500);
    assert_eq!(last["rejected_share"], 0.002);
    assert!(
        last["elapsed_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{last}"
    );

    // A failed run ends with an ERROR line carrying its exit code, and nothing else on stderr.
    let out = env
        .command(&[
            "verify",
            path.to_str().unwrap(),
            "--db",
            &env.db,
            "--collection",
            "none",
            "--format",
            "json",
        ])
        .env("HCCTL_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert_exit(&out, 4);
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing = n(&verified, "missing");
    assert!(missing > 0, "{verified}");
    let lines = json_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["exit_code"], 4);
    assert_eq!(last["command"], "verify");
    assert_eq!(last["missing"], missing, "{last}");
    assert_eq!(last["rows_read"], 501, "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{missing} missing")),
        "{last}"
    );

    // A typo in the variable is a usage error, not an unreadable log.
    let out = env
        .command(&["migrate", path.to_str().unwrap(), "--db", &env.db])
        .env("HCCTL_LOG_FORMAT", "jsno")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("HCCTL_LOG_FORMAT=\"jsno\": the log format is text or json"),
        "{}",
        stderr(&out)
    );
    env.drop_db().await;
}

#[tokio::test]
async fn external_sort_spills_into_temp_dir_and_leaves_nothing_behind() {
    let env = TestEnv::new("tempdir").await;
    // 60,000 rows clean to about 33 MB of documents: more than one 16 MiB sort run.
    let data = env.generate("gen.csv", 60_000, 11);
    let runs = tempfile::tempdir().unwrap();
    // TMPDIR points nowhere: were --temp-dir ignored, the sort could not create its runs.
    let (mut cmd, report_path) = env.migrate_command(
        &data,
        "patients",
        &["--temp-dir", runs.path().to_str().unwrap()],
    );
    let out = cmd
        .env("TMPDIR", "/nonexistent/hcctl-tmp")
        .env_remove("HCCTL_TEMP_DIR")
        .env("HCCTL_LOG", "info")
        .output()
        .unwrap();
    assert_success(&out);
    let log = stderr(&out);
    let sorted_runs: u64 = log
        .lines()
        .find(|l| l.contains(" sorted ") && l.contains("gen.csv runs="))
        .and_then(|l| l.split("runs=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no 'sorted … runs=N' line in:\n{log}"));
    assert!(
        sorted_runs >= 2,
        "{sorted_runs} sort run(s): nothing spilled"
    );
    let report = read_json(&report_path);
    assert_eq!(n(&report, "rows_read"), 60_000);
    assert_eq!(
        n(&report, "inserted") + n(&report, "duplicates"),
        60_000,
        "{report}"
    );
    assert!(
        n(&report, "duplicates") > 0,
        "the generator repeats ~1% of rows"
    );
    assert_eq!(env.count("patients", doc! {}).await, n(&report, "inserted"));
    let left: Vec<_> = std::fs::read_dir(runs.path()).unwrap().collect();
    assert!(left.is_empty(), "sort runs left behind: {left:?}");

    // A --temp-dir that does not exist is a usage error, before anything is written.
    let out = env.run(&[
        "migrate",
        data.to_str().unwrap(),
        "--db",
        &env.db,
        "--collection",
        "never",
        "--temp-dir",
        "/nonexistent/hcctl-runs",
    ]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("--temp-dir /nonexistent/hcctl-runs: not an existing directory"),
        "{err}"
    );
    assert_eq!(env.count("never", doc! {}).await, 0);
    env.drop_db().await;
}

/// The bytes of the still-open, unlinked files of process `pid` under `dir` (sort runs).
fn open_file_bytes_under(pid: u32, dir: &Path) -> u64 {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(dir)))
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .map(|m| m.len())
        .sum()
}

/// Issue 24, finding 15: 2.79 MB of gzip (5 million identical rows) spilled 2.6 GB of sort
/// runs. Copies are now dropped before a run is written: the temporary files (watched through
/// /proc while the run lasts) stay empty, and the report and the stored lineage are what they
/// were (one row stored with its first line, every other row a duplicate).
#[tokio::test]
async fn a_gzip_bomb_of_identical_rows_spills_no_sort_runs() {
    let env = TestEnv::new("gzbomb").await;
    const ROWS: u64 = 300_000;
    // ~50 MB of CSV in a few hundred KB of gzip: ~170 MB of runs before the fix.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let line = format!("{}\n", row_with(&[]));
    gz.write_all(format!("{HEADER}\n").as_bytes()).unwrap();
    for _ in 0..ROWS {
        gz.write_all(line.as_bytes()).unwrap();
    }
    let path = env.write("bomb.csv.gz", gz.finish().unwrap());
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let runs = tempfile::tempdir().unwrap();
    let runs_dir = std::fs::canonicalize(runs.path()).unwrap();
    let log_path = env.dir.path().join("bomb.log");
    let (mut cmd, report_path) =
        env.migrate_command(&path, "bomb", &["--temp-dir", runs_dir.to_str().unwrap()]);
    let mut child = cmd
        .env("HCCTL_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut most = 0;
    let status = loop {
        most = most.max(open_file_bytes_under(child.id(), &runs_dir));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(most, 0, "{most} bytes of sort runs for one distinct row");
    assert!(
        log.lines()
            .any(|l| l.contains(" sorted ") && l.contains("runs=0 spilled_bytes=0")),
        "{log}"
    );
    let report = read_json(&report_path);
    assert_eq!(n(&report, "rows_read"), ROWS);
    assert_eq!(n(&report, "inserted"), 1);
    assert_eq!(n(&report, "duplicates"), ROWS - 1);
    assert_eq!(n(&report, "rejected"), 0);
    let docs = env.docs("bomb").await;
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0].get_document("_lineage").unwrap(),
        &doc! { "source": "bomb.csv.gz", "line": 2_i64 }
    );
    env.drop_db().await;
}

/// Issue 24, finding 15: nothing bounded what one input may expand to. `--max-input-bytes`
/// (default 8 GiB) caps the CSV after decompression: past it, migrate (dry run included) and
/// verify stop with exit 2 and a line naming the flag, before anything is written.
#[tokio::test]
async fn max_input_bytes_stops_an_input_that_expands_past_it() {
    let env = TestEnv::new("maxinput").await;
    let csv = env.generate("gen.csv", 20_000, 5);
    let plain = std::fs::read(&csv).unwrap();
    assert!(plain.len() > 2 << 20, "{} bytes", plain.len());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).unwrap();
    let path = env.write("gen.csv.gz", gz.finish().unwrap());
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let path_s = path.to_str().unwrap();

    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec![
            "migrate",
            path_s,
            "--db",
            &env.db,
            "--max-input-bytes",
            "1MiB",
        ];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains("more than --max-input-bytes 1 MiB of CSV once decompressed"),
            "{err}"
        );
        assert!(err.contains("raise --max-input-bytes"), "{err}");
        // Not the advice for a damaged file: nothing is wrong with it but its size.
        assert!(!err.contains("damaged or cut off"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
        assert!(!env.dir.path().join("gen.csv.quarantine.csv").exists());
    }
    env.assert_nothing_written().await;
    let out = env.run(&[
        "verify",
        path_s,
        "--db",
        &env.db,
        "--max-input-bytes",
        "1MiB",
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--max-input-bytes 1 MiB"),
        "{}",
        stderr(&out)
    );

    // Under the cap the same file loads whole.
    let r = env.migrate(&path, "patients", &["--max-input-bytes", "64MiB"]);
    assert_eq!(n(&r, "rows_read"), 20_000);
    assert_eq!(
        env.count("patients", doc! {}).await,
        n(&r, "inserted"),
        "{r}"
    );
    // The default is documented in --help.
    let help = stdout(&env.run(&["migrate", "--help"]));
    assert!(help.contains("[default: 8GiB]"), "{help}");
    env.drop_db().await;
}

/// Issue 24, finding 6: every duplicate-key error was counted as a duplicate, so with another
/// unique index on the collection (here on Medication) distinct admissions were dropped as
/// "duplicates" with exit 0 and a balanced report, and `verify` then found them missing. Only
/// the `_id` index makes a duplicate now: copies of stored rows still count as duplicates, and
/// a conflict in the other index fails the run naming the index (and no patient value).
#[tokio::test]
async fn duplicate_key_errors_from_another_unique_index_are_failures_not_duplicates() {
    use mongodb::options::IndexOptions;
    use mongodb::IndexModel;
    let env = TestEnv::new("uniqidx").await;
    env.coll("p")
        .create_index(
            IndexModel::builder()
                .keys(doc! { "Medication": 1 })
                .options(
                    IndexOptions::builder()
                        .name("medication_unique".to_string())
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .expect("FerretDB and MongoDB both support unique secondary indexes");
    let first = row_with(&[]);
    let other = row_with(&[(0, "Zebulon Quartermaine"), (13, "Ibuprofen")]);
    // A distinct admission with the first one's medication.
    let clash = row_with(&[(0, "Xavier Leakcheck")]);
    let a = env.write("a.csv", format!("{HEADER}\n{first}\n{other}\n"));
    let r = env.migrate(&a, "p", &[]);
    assert_eq!((n(&r, "inserted"), n(&r, "duplicates")), (2, 0));
    // Copies of stored rows (refused by both indexes) are still duplicates.
    let r = env.migrate(&a, "p", &[]);
    assert_eq!((n(&r, "inserted"), n(&r, "duplicates")), (0, 2));

    let b = env.write("b.csv", format!("{HEADER}\n{first}\n{clash}\n"));
    let (mut cmd, _) = env.migrate_command(&b, "p", &[]);
    let out = cmd.output().unwrap();
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the row at line 3 conflicts with a stored document in the unique index \
             medication_unique of {}.p",
            env.db
        )),
        "{err}"
    );
    assert!(err.contains("not counted as a duplicate"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    for value in ["Paracetamol", "Xavier", "Leakcheck", "Bobby"] {
        assert!(!err.contains(value), "{value} leaked: {err}");
    }
    assert_eq!(env.count("p", doc! {}).await, 2);
    assert_eq!(env.count("p", doc! { "Name": "Xavier Leakcheck" }).await, 0);
    env.drop_db().await;
}

/// CI run of cb507f9: two ingest runners finished files into one collection at once, both
/// found the query indexes missing and both created them; FerretDB drops the connection on
/// the second creation ("unexpected end of file") and one file failed. Runners that create the
/// indexes at the same time now all succeed, and every index is there once.
#[tokio::test]
async fn runners_creating_the_query_indexes_at_once_all_succeed() {
    use hcctl::migrate::write::{ensure_indexes, index_name, INDEXED_FIELDS};
    let env = TestEnv::new("idxrace").await;
    env.coll("p")
        .insert_one(doc! { "_id": "x" })
        .await
        .expect("insert a document to create the collection");
    let mut runners = Vec::new();
    for _ in 0..6 {
        // One client each: separate connections, as separate runners have.
        let client = mongodb::Client::with_uri_str(&env.uri)
            .await
            .expect("test client");
        let coll = client.database(&env.db).collection::<bson::Document>("p");
        runners.push(tokio::spawn(async move { ensure_indexes(&coll).await }));
    }
    for runner in runners {
        let result = runner.await.expect("the runner task completes");
        assert!(result.is_ok(), "{:?}", result.err().map(|e| e.to_string()));
    }
    let mut names = env
        .coll("p")
        .list_index_names()
        .await
        .expect("list indexes");
    names.sort();
    let mut want: Vec<String> = INDEXED_FIELDS.iter().map(|f| index_name(f)).collect();
    want.push("_id_".to_string());
    want.sort();
    assert_eq!(names, want);
    env.drop_db().await;
}
