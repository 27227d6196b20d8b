//! `hcctl backup-status` and `hcctl backup run` against the AWS emulator.

use std::time::{Duration, Instant};

use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, Lifecycle};
use hcctl::resources::{backup_plan, backup_selection, backup_vault};
use serde_json::Value;

use crate::awsenv::AwsEnv;
use crate::util::{assert_exit, assert_success, stderr, stdout};

fn status_json(env: &AwsEnv, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["backup-status", "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let v = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "backup-status JSON: {e}\n{}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out.status.code(), v)
}

fn reasons(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn no_backup_yet_is_unhealthy_and_a_completed_run_makes_it_healthy() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);

    let out = env.run(&["backup-status"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("UNHEALTHY"), "{text}");
    assert!(text.contains("no completed backup in the vault"), "{text}");
    assert!(!text.contains("\x1b["), "no colour when piped");
    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(v["healthy"], false);
    assert_eq!(reasons(&v), ["no completed backup in the vault"]);
    assert_eq!(v["vault"]["exists"], true);
    assert_eq!(v["plan"]["drift"], serde_json::json!([]));
    assert_eq!(v["max_age_seconds"], 26 * 3600);

    // A --resource that is not an ARN is refused before any job starts.
    let bad = env.run(&["backup", "run", "--resource", "fs-0123456789abcdef0"]);
    assert_exit(&bad, 2);
    assert!(
        stderr(&bad).contains("--resource 'fs-0123456789abcdef0' is not a resource ARN"),
        "{}",
        stderr(&bad)
    );
    let (_, v) = status_json(&env, &[]);
    assert_eq!(v["jobs"], serde_json::json!([]), "no job was started: {v}");

    let run = env.run(&["backup", "run", "--wait", "--format", "json"]);
    assert_success(&run);
    let report: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["jobs"][0]["state"], "COMPLETED");
    let job_id = report["jobs"][0]["id"].as_str().unwrap().to_string();

    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["healthy"], true);
    assert_eq!(v["jobs"][0]["id"], job_id.as_str());
    assert_eq!(v["jobs"][0]["state"], "COMPLETED");
    // The file system deploy created: what the selection protects and `backup run` backs up.
    let fs = hcctl::resources::file_system::find(&env.aws, &env.parsed_config())
        .await
        .unwrap()
        .expect("the file system");
    assert_eq!(v["jobs"][0]["resource_arn"], fs.arn.as_str());
    assert_eq!(v["selection"]["resources"], serde_json::json!([fs.arn]));
    assert_eq!(v["last_completed"]["id"], job_id.as_str());
    assert!(v["vault"]["recovery_points"].as_i64().unwrap() >= 1);
    let text = stdout(&env.run(&["backup-status"]));
    assert!(text.contains("HEALTHY: last completed backup"), "{text}");
    assert!(text.contains(&job_id), "{text}");

    // Staleness without waiting: judge as of two days later, or with a short maximum age.
    let later = (epoch_now() + 2 * 86400).to_string();
    let (code, v) = status_json(&env, &["--now", &later]);
    assert_eq!(code, Some(1));
    assert!(
        reasons(&v)[0].starts_with(
            "the last completed backup is 2d 0h old, more than the maximum age of 1d 2h"
        ),
        "{v}"
    );
    let (code, _) = status_json(&env, &["--now", &later, "--max-age", "3d"]);
    assert_eq!(code, Some(0));

    // A vault holding recovery points survives destroy.
    let out = env.run(&["destroy", "--yes"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("recovery point(s): kept"),
        "{}",
        stdout(&out)
    );
    assert!(backup_vault::observe(&env.aws.backup, &env.name("vault"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_plan_changed_outside_hcctl_shows_drift_and_exits_1() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    assert_success(&env.run(&["backup", "run", "--wait"]));
    let plan = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap()
        .unwrap();
    let input = BackupPlanInput::builder()
        .backup_plan_name(env.name("daily"))
        .rules(
            BackupRuleInput::builder()
                .rule_name("daily")
                .target_backup_vault_name(env.name("vault"))
                .schedule_expression("cron(0 3 * * ? *)")
                .start_window_minutes(60)
                .completion_window_minutes(180)
                .lifecycle(Lifecycle::builder().delete_after_days(7).build())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    env.aws
        .backup
        .update_backup_plan()
        .backup_plan_id(&plan.id)
        .backup_plan(input)
        .send()
        .await
        .expect("update the plan behind hcctl's back");

    let out = env.run(&["backup-status"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("DRIFT from the config"), "{text}");
    assert!(
        text.contains("drift: rules.daily.delete_after_days: 7 → 35"),
        "{text}"
    );
    assert!(text.contains("drift: rules.monthly: (none) → {"), "{text}");
    let (_, v) = status_json(&env, &[]);
    assert!(v["plan"]["drift"].as_array().unwrap().len() >= 2, "{v}");
    // deploy brings it back, and the status is healthy again.
    env.deploy(&[]);
    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(0), "{v}");
}

#[tokio::test]
async fn a_missing_vault_or_plan_is_named() {
    let env = AwsEnv::new().await;
    // Nothing deployed: the vault, the plan and the file system they protect, all missing.
    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        reasons(&v),
        [
            format!("backup vault {} does not exist", env.name("vault")),
            format!("backup plan {} does not exist", env.name("daily")),
            format!(
                "file system {} does not exist: run hcctl deploy",
                env.name("mongo-data")
            ),
        ]
    );
    // And `backup run` has nothing to back up yet: it says so before starting any job.
    let out = env.run(&["backup", "run"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!(
            "the file system {} does not exist yet: run hcctl deploy first",
            env.name("mongo-data")
        )),
        "{}",
        stderr(&out)
    );
    let text = stdout(&env.run(&["backup-status"]));
    assert!(text.contains("MISSING"), "{text}");

    // Deployed, then the plan deleted outside hcctl.
    env.deploy(&[]);
    assert_success(&env.run(&["backup", "run", "--wait"]));
    let plan = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap()
        .unwrap();
    let sel = backup_selection::observe(&env.aws.backup, &plan.id, &env.name("data"))
        .await
        .unwrap()
        .unwrap();
    backup_selection::delete(&env.aws.backup, &plan.id, &sel.id, &sel.name)
        .await
        .unwrap();
    backup_plan::delete(&env.aws.backup, &plan.id, &plan.name)
        .await
        .unwrap();
    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        reasons(&v),
        [format!("backup plan {} does not exist", env.name("daily"))]
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_exits_3_within_seconds() {
    let env = AwsEnv::new().await;
    let started = Instant::now();
    let out = env.run(&["backup-status", "--endpoint-url", "http://127.0.0.1:9"]);
    assert_exit(&out, 3);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        stderr(&out).contains("no answer from the AWS endpoint"),
        "{}",
        stderr(&out)
    );
    // For monitoring, JSON in the verdict's shape on every exit code.
    let (code, v) = status_json(&env, &["--endpoint-url", "http://127.0.0.1:9"]);
    assert_eq!(code, Some(3));
    assert_eq!(v["healthy"], false);
    assert_eq!(v["exit_code"], 3);
    assert!(
        reasons(&v)[0].contains("no answer from the AWS endpoint"),
        "{v}"
    );
    // backup audit the same: exit 3 within seconds, saying so (and JSON on --format json).
    let started = Instant::now();
    let out = env.run(&["backup", "audit", "--endpoint-url", "http://127.0.0.1:9"]);
    assert_exit(&out, 3);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        stderr(&out).contains("no answer from the AWS endpoint"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&[
        "backup",
        "audit",
        "--format",
        "json",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]);
    assert_exit(&out, 3);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON on exit 3");
    assert_eq!(v["exit_code"], 3, "{v}");
    // A malformed endpoint is a usage error.
    let out = env.run(&["backup-status", "--endpoint-url", "notaurl"]);
    assert_exit(&out, 2);
    // A config error is exit 2, before any call.
    env.write_config("project: x\n");
    let out = env.run(&["backup-status", "--endpoint-url", "http://127.0.0.1:9"]);
    assert_exit(&out, 2);
    let (code, v) = status_json(&env, &["--endpoint-url", "http://127.0.0.1:9"]);
    assert_eq!((code, &v["exit_code"]), (Some(2), &serde_json::json!(2)));
}

/// Issue 23, item 3: with `backup.dumps`, backup-status shows the logical layer — the newest dump
/// under the drops bucket's `dumps/` and the newest restore drill's report under `drills/`, as
/// a real `backup drill --report` stored it (FerretDB and the emulator's S3) — and is unhealthy
/// when the drill failed, when none is there while one is scheduled, or when the dump is older
/// than its schedule's interval plus the grace.
#[tokio::test]
async fn backup_status_shows_the_newest_dump_and_drill_and_judges_them() {
    use crate::cloud::Bucket;
    use crate::util::TestEnv;
    let env = AwsEnv::new().await;
    let mongo = TestEnv::new("status_logical").await;
    let bucket = Bucket::new().await;
    let csv = mongo.generate("a.csv", 300, 5);
    let migrated = mongo.migrate(&csv, "patients", &[]);
    let scheduled = std::fs::read_to_string(&env.config)
        .expect("the test config")
        .replacen(
            "  selection:\n",
            "  dumps:\n    schedule: cron(0 2 * * ? *)\n    drill_schedule: cron(0 5 ? * SUN *)\n  selection:\n",
            1,
        )
        .replacen("tags:\n", &format!("drops:\n  bucket: {}\ntags:\n", bucket.name), 1);
    env.write_config(&scheduled);

    // Scheduled but nothing there yet: both named.
    let (_, v) = status_json(&env, &[]);
    let r = reasons(&v);
    assert!(
        r.iter().any(|x| x.starts_with(&format!(
            "no logical dump under s3://{}/dumps/",
            bucket.name
        ))),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|x| x.starts_with("no restore drill report under")),
        "{r:?}"
    );
    let (_, a) = audit_json(&env, &[]);
    assert_eq!(controls(&a)["restore-tested"], "fail", "{a}");
    assert_eq!(restore_evidence(&a)["found"], "no drill report", "{a}");

    // A real drill: a new dump under dumps/, its report under drills/.
    let out = mongo.run(&[
        "backup",
        "drill",
        "--db",
        &mongo.db,
        "--to",
        &bucket.url("dumps/"),
        "--report",
        &bucket.url("drills/"),
        "--format",
        "json",
    ]);
    assert_success(&out);
    let drill: Value = serde_json::from_str(&stdout(&out)).expect("drill JSON");
    let stored = drill["stored"]
        .as_str()
        .expect("where the report went")
        .to_string();
    let key = stored
        .strip_prefix(&format!("s3://{}/", bucket.name))
        .expect("in the bucket")
        .to_string();
    assert!(
        key.starts_with(&format!("drills/{}-", mongo.db)) && key.ends_with("Z.json"),
        "{key}"
    );
    assert_eq!(bucket.json(&key).await["ok"], true);
    assert!(
        bucket.encryption(&key).await.is_some(),
        "the report is encrypted at rest"
    );
    let dump_name = drill["dump"]
        .as_str()
        .and_then(|d| d.trim_end_matches('/').rsplit('/').next())
        .expect("the dump's name")
        .to_string();

    let (_, v) = status_json(&env, &[]);
    let r = reasons(&v);
    assert!(
        !r.iter().any(|x| x.contains("dump") || x.contains("drill")),
        "{r:?}"
    );
    let l = &v["logical"];
    assert_eq!(l["dump_count"], 1, "{l}");
    assert_eq!(l["last_dump"], dump_name.as_str(), "{l}");
    assert_eq!(l["last_drill"]["ok"], true, "{l}");
    assert_eq!(l["last_drill"]["report"], stored.as_str(), "{l}");
    assert_eq!(l["last_drill"]["documents"], drill["documents"], "{l}");
    assert!(
        drill["documents"].as_u64().unwrap() >= migrated["inserted"].as_u64().unwrap(),
        "{drill}"
    );
    assert_eq!(l["dump_max_age_seconds"], 26 * 3600);
    assert_eq!(l["drill_max_age_seconds"], 7 * 86400 + 2 * 3600);
    let text = stdout(&env.run(&["backup-status"]));
    assert!(text.contains(&format!("newest {dump_name}")), "{text}");
    assert!(text.contains("PASSED"), "{text}");
    // backup audit shows the last drill's result and age.
    let (_, a) = audit_json(&env, &[]);
    assert_eq!(controls(&a)["restore-tested"], "pass", "{a}");
    let e = restore_evidence(&a);
    assert_eq!(e["resource"], stored.as_str(), "{e}");
    let found = e["found"].as_str().unwrap_or_default();
    assert!(
        found.starts_with("PASSED ")
            && found.contains(" ago: ")
            && found.contains(&format!("{} documents", drill["documents"])),
        "{found}"
    );

    // Two days on, the daily dump is overdue (the weekly drill is not).
    let later = (epoch_now() + 2 * 86400).to_string();
    let (_, v) = status_json(&env, &["--now", &later]);
    let r = reasons(&v);
    assert!(
        r.iter()
            .any(|x| x.starts_with(&format!("the newest logical dump ({dump_name}) is 2d"))),
        "{r:?}"
    );
    assert!(!r.iter().any(|x| x.contains("restore drill")), "{r:?}");

    // A newer drill that failed makes it unhealthy, with the drill's own reason.
    let mut failed = bucket.json(&key).await;
    failed["ok"] = Value::Bool(false);
    failed["problems"] = serde_json::json!(["the dump did not restore: digest differs"]);
    bucket
        .put(
            &format!("drills/{}-29991231T000000Z.json", mongo.db),
            failed.to_string().into_bytes(),
        )
        .await;
    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(1));
    let r = reasons(&v);
    assert!(
        r.iter()
            .any(|x| x.contains("FAILED: the dump did not restore: digest differs")),
        "{r:?}"
    );
    let (_, a) = audit_json(&env, &[]);
    assert_eq!(controls(&a)["restore-tested"], "fail", "{a}");
    let found = restore_evidence(&a)["found"].to_string();
    assert!(
        found.contains("FAILED") && found.contains("digest differs"),
        "{found}"
    );
    mongo.drop_db().await;
}

/// The evidence of `restore-tested`.
fn restore_evidence(audit: &Value) -> Value {
    audit["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "restore-tested")
        .map(|c| c["evidence"][0].clone())
        .expect("restore-tested")
}

/// `hcctl backup audit --format json` (plus `extra`): the exit code and the parsed audit.
fn audit_json(env: &AwsEnv, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["backup", "audit", "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let v = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("backup audit JSON: {e}\n{}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

/// Each control's status, by id.
fn controls(v: &Value) -> std::collections::BTreeMap<String, String> {
    v["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                c["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn audit_judges_a_deployment_as_its_config_implies() {
    let env = AwsEnv::new().await;
    // Nothing deployed: every control that needs something fails, and says to deploy.
    let (code, v) = audit_json(&env, &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["passed"], 0, "{v}");

    env.deploy(&[]);
    let (code, v) = audit_json(&env, &[]);
    assert_eq!(code, Some(1), "{v}");
    let c = controls(&v);
    assert_eq!(c.len(), 9, "{c:?}");
    for pass in [
        "resources-protected",
        "plan-min-frequency",
        "plan-min-retention",
    ] {
        assert_eq!(c[pass], "pass", "{pass}: {v}");
    }
    // The vault has AWS's key, no lock; no rule copies out of the region; nothing backed up yet.
    for fail in [
        "vault-encrypted-cmk",
        "vault-lock",
        "cross-region-copy",
        "last-recovery-point",
        "restore-tested",
    ] {
        assert_eq!(c[fail], "fail", "{fail}: {v}");
    }
    assert_eq!(c["recovery-point-encrypted"], "unknown", "{v}");
    // Failures first; the evidence names the resources and the values.
    assert_eq!(v["controls"][0]["status"], "fail");
    let fs = hcctl::resources::file_system::find(&env.aws, &env.parsed_config())
        .await
        .expect("describe")
        .expect("the file system");
    let protected = v["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "resources-protected")
        .expect("resources-protected");
    assert_eq!(
        protected["evidence"][0]["resource"],
        fs.arn.as_str(),
        "{protected}"
    );
    assert_eq!(
        protected["evidence"][0]["found"],
        format!(
            "in selection {} while tagged Backup=daily",
            env.name("data")
        )
        .as_str()
    );
    let text = stdout(&env.run(&["backup", "audit"]));
    assert!(text.starts_with("Backup audit ("), "{text}");
    assert!(
        text.trim_end().ends_with("1 unknown")
            && text.contains("backup audit: 5 of 9 controls fail"),
        "{text}"
    );

    // A backup now: the newest recovery point is recent.
    assert_success(&env.run(&["backup", "run", "--wait"]));
    let (_, v) = audit_json(&env, &[]);
    assert_eq!(controls(&v)["last-recovery-point"], "pass", "{v}");
    // Two days later it is not.
    let later = (epoch_now() + 2 * 86400).to_string();
    let (_, v) = audit_json(&env, &["--now", &later]);
    assert_eq!(controls(&v)["last-recovery-point"], "fail", "{v}");
}

#[tokio::test]
async fn audit_fails_a_short_retention_and_passes_a_copy_out_of_the_region() {
    let env = AwsEnv::new().await;
    let text = std::fs::read_to_string(&env.config).expect("config");
    let week = text.replacen("delete_after_days: 35", "delete_after_days: 7", 1);
    assert_ne!(week, text);
    env.write_config(&week);
    env.deploy(&[]);
    let (code, v) = audit_json(&env, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(controls(&v)["plan-min-retention"], "fail", "{v}");
    assert_eq!(controls(&v)["plan-min-frequency"], "pass", "{v}");
    // The threshold is the config's.
    env.write_config(&week.replacen(
        "  selection:\n",
        "  audit:\n    min_retention_days: 7\n  selection:\n",
        1,
    ));
    let (_, v) = audit_json(&env, &[]);
    assert_eq!(controls(&v)["plan-min-retention"], "pass", "{v}");

    // copy_to on the daily rule: a vault in another region.
    let copies = "arn:aws:backup:eu-central-1:000000000000:backup-vault:copies";
    let with_copy = text.replacen(
        "        delete_after_days: 35\n",
        &format!(
            "        delete_after_days: 35\n        copy_to:\n          - vault_arn: {copies}\n            delete_after_days: 35\n"
        ),
        1,
    );
    assert_ne!(with_copy, text);
    env.write_config(&with_copy);
    let plan = env.deploy(&[]);
    let step = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "backup_plan")
        .expect("the plan's step");
    assert_eq!(step["action"], "update", "{step}");
    // Described back: the rule's copy action.
    let observed = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .expect("describe")
        .expect("the plan");
    let daily = observed
        .rules
        .iter()
        .find(|r| r.name == "daily")
        .expect("daily");
    assert_eq!(
        daily.copy_to,
        vec![backup_plan::Copy {
            vault_arn: copies.to_string(),
            delete_after_days: Some(35),
            cold_storage_after_days: None,
        }]
    );
    let (_, v) = audit_json(&env, &[]);
    assert_eq!(controls(&v)["cross-region-copy"], "pass", "{v}");
    // Converged: a second deploy changes nothing.
    let again = env.deploy(&["--dry-run"]);
    assert!(
        again["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["action"] != "update" && s["action"] != "create"),
        "{again}"
    );

    // The copy action changed behind hcctl's back: drift in backup-status, repaired by deploy.
    let rule = |name: &str, schedule: &str, keep: i64, copy: Option<&str>| {
        let mut r = BackupRuleInput::builder()
            .rule_name(name)
            .target_backup_vault_name(env.name("vault"))
            .schedule_expression(schedule)
            .start_window_minutes(60)
            .completion_window_minutes(if name == "daily" { 180 } else { 360 })
            .lifecycle(Lifecycle::builder().delete_after_days(keep).build());
        if let Some(arn) = copy {
            r = r.copy_actions(
                aws_sdk_backup::types::CopyAction::builder()
                    .destination_backup_vault_arn(arn)
                    .lifecycle(Lifecycle::builder().delete_after_days(7).build())
                    .build()
                    .expect("a copy action"),
            );
        }
        r.build().expect("a rule")
    };
    let elsewhere = "arn:aws:backup:eu-west-3:000000000000:backup-vault:same-region";
    let input = BackupPlanInput::builder()
        .backup_plan_name(env.name("daily"))
        .rules(rule("daily", "cron(0 3 * * ? *)", 35, Some(elsewhere)))
        .rules(rule("monthly", "cron(0 4 1 * ? *)", 365, None))
        .build()
        .expect("a plan");
    env.aws
        .backup
        .update_backup_plan()
        .backup_plan_id(&observed.id)
        .backup_plan(input)
        .send()
        .await
        .expect("update the plan behind hcctl's back");
    let (code, v) = status_json(&env, &[]);
    assert_eq!(code, Some(1), "{v}");
    let drift = v["plan"]["drift"].to_string();
    assert!(
        drift.contains("rules.daily.copy_to[0].vault_arn") && drift.contains(copies),
        "{drift}"
    );
    let (_, a) = audit_json(&env, &[]);
    assert_eq!(controls(&a)["cross-region-copy"], "fail", "{a}");
    env.deploy(&[]);
    let (_, v) = status_json(&env, &[]);
    assert_eq!(v["plan"]["drift"], serde_json::json!([]), "{v}");
    let (_, a) = audit_json(&env, &[]);
    assert_eq!(controls(&a)["cross-region-copy"], "pass", "{a}");
}
