//! `hcctl verify`: passes on a faithful collection, and finds what was changed behind its back.

use bson::doc;

use crate::util::*;

#[tokio::test]
async fn verify_finds_missing_changed_and_extra_documents() {
    let env = TestEnv::new("verify").await;
    let data = env.generate("gen.csv", 2_000, 9);
    let path = data.to_str().unwrap();
    env.migrate(&data, "v", &[]);

    let ok = env.run(&["verify", path, "--db", &env.db, "--collection", "v"]);
    assert_success(&ok);
    assert!(stdout(&ok).contains(": OK"), "{}", stdout(&ok));

    let coll = env.coll("v");
    let docs = env.docs("v").await;
    coll.delete_one(doc! { "_id": docs[0].get_str("_id").unwrap() })
        .await
        .unwrap();
    coll.update_one(
        doc! { "_id": docs[1].get_str("_id").unwrap() },
        doc! { "$set": { "Age": 117 } },
    )
    .await
    .unwrap();
    coll.insert_one(
        doc! { "_id": "zzzz-extra", "_lineage": { "source": "gen.csv", "line": 1_i64 } },
    )
    .await
    .unwrap();
    coll.insert_one(
        doc! { "_id": "zzzz-other", "_lineage": { "source": "other.csv", "line": 1_i64 } },
    )
    .await
    .unwrap();

    let report = env.dir.path().join("verify.json");
    let out = env.run(&[
        "verify",
        path,
        "--db",
        &env.db,
        "--collection",
        "v",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_exit(&out, 4);
    let r = read_json(&report);
    assert_eq!(n(&r, "missing"), 1);
    assert_eq!(n(&r, "different"), 1);
    assert_eq!(
        n(&r, "extra"),
        1,
        "documents of other sources are not this file's business"
    );
    assert_eq!(r["ok"], false);
    let listed = r["differences"].to_string();
    assert!(listed.contains("differs in Age"), "{listed}");
    assert!(!listed.contains("117"), "values are never shown: {listed}");
    env.drop_db().await;
}

#[tokio::test]
async fn verify_of_an_empty_collection_reports_every_row_missing() {
    let env = TestEnv::new("verifyempty").await;
    let data = env.generate("gen.csv", 300, 2);
    let out = env.run(&[
        "verify",
        data.to_str().unwrap(),
        "--db",
        &env.db,
        "--format",
        "json",
    ]);
    assert_exit(&out, 4);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["missing"], 300);
    assert_eq!(r["found"], 0);
}

#[tokio::test]
async fn a_fixed_quarantine_fed_back_stores_the_admission_the_fixed_original_verifies() {
    let env = TestEnv::new("verifyfixed").await;
    // Line 3 has an impossible age: rejected into the quarantine.
    let original = env.write(
        "adm.csv",
        format!(
            "{HEADER}\n{}\n{}\n",
            row_with(&[(0, "ann lee")]),
            row_with(&[(0, "bob ray"), (1, "300")])
        ),
    );
    let quarantine = env.dir.path().join("adm.quarantine.csv");
    let r = env.migrate(
        &original,
        "p",
        &["--quarantine", quarantine.to_str().unwrap()],
    );
    assert_eq!((n(&r, "inserted"), n(&r, "rejected")), (1, 1));

    // Fix the quarantined row (age 300 → 30) and feed the quarantine file back.
    let q = std::fs::read_to_string(&quarantine).unwrap();
    assert!(q.starts_with("line,reason,expected,Name,"), "{q}");
    let fixed_q = env.write("fixed.csv", q.replace(",300,", ",30,"));
    let r = env.migrate(&fixed_q, "p", &[]);
    assert_eq!((n(&r, "inserted"), n(&r, "rejected")), (1, 0));
    let docs = env.docs("p").await;
    assert_eq!(docs.len(), 2);
    for d in &docs {
        for column in ["line", "reason", "expected"] {
            assert!(!d.contains_key(column), "{column} stored: {d:?}");
        }
    }

    // The corrected original holds the same two admissions: verify passes although one
    // document's lineage names fixed.csv, and loading it inserts nothing.
    let corrected = env.write(
        "adm-corrected.csv",
        std::fs::read_to_string(&original)
            .unwrap()
            .replace(",300,", ",30,"),
    );
    let path = corrected.to_str().unwrap();
    let out = env.run(&["verify", path, "--db", &env.db, "--collection", "p"]);
    assert_success(&out);
    assert!(stdout(&out).contains(": OK"), "{}", stdout(&out));
    let r = env.migrate(&corrected, "p", &[]);
    assert_eq!((n(&r, "inserted"), n(&r, "duplicates")), (0, 2));
    env.drop_db().await;
}
