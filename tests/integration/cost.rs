//! `hcctl cost` (the real binary, no AWS call) and the estimate in deploy's plan (against the
//! emulator): the figures of one agree with the other.

use std::path::Path;

use serde_json::Value;

use crate::awsenv::{empty_account_config_text, AwsEnv};
use crate::util::{assert_exit, assert_success, hcctl_in, stderr, stdout};

/// `hcctl cost --format json` with `extra`, in `dir`, asserting success: the parsed estimate.
fn cost(dir: &Path, config: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["cost", "--format", "json", "--config"];
    let config = config.to_str().expect("a UTF-8 path");
    args.push(config);
    args.extend_from_slice(extra);
    let out = hcctl_in(dir, &args)
        // No endpoint, no credentials: the estimate makes no AWS call.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("HCCTL_AWS_ACCOUNT_ID", "000000000000")
        .env(
            "HCCTL_TEST_KMS_KEY",
            "arn:aws:kms:eu-west-3:000000000000:key/k",
        )
        .output()
        .expect("run hcctl");
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).expect("cost --format json is JSON")
}

fn total(e: &Value) -> f64 {
    e["monthly_total"].as_f64().expect("monthly_total")
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/hcctl.yaml")
}

#[test]
fn cost_prints_every_line_with_its_arithmetic_and_its_assumptions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let e = cost(dir.path(), &example(), &[]);
    assert_eq!(e["region"], "eu-west-3");
    assert_eq!(e["currency"], "USD");
    assert_eq!(e["price_table"], "built-in");
    assert!(e["prices_as_of"].as_str().is_some_and(|d| d.len() == 10));
    let items = e["items"].as_array().expect("items");
    let mut sum = 0.0;
    for i in items {
        for key in ["service", "resource", "unit"] {
            assert!(i[key].as_str().is_some_and(|s| !s.is_empty()), "{i}");
        }
        let (q, p, m) = (
            i["quantity"].as_f64().expect("quantity"),
            i["unit_price"].as_f64().expect("unit_price"),
            i["monthly"].as_f64().expect("monthly"),
        );
        assert!(
            (q * p - m).abs() < 1e-9,
            "monthly = quantity × unit_price: {i}"
        );
        sum += m;
    }
    assert!((sum - total(&e)).abs() < 1e-9, "{sum} vs {}", total(&e));
    // The example's figures, worked out in the unit tests line by line.
    assert_eq!(items.len(), 18);
    assert!((total(&e) - 52.390473).abs() < 1e-5, "{}", total(&e));
    let assumptions = e["assumptions"].as_array().expect("assumptions");
    assert!(assumptions.len() >= 6, "{assumptions:?}");
    assert!(e["not_counted"].to_string().contains("taxes"));

    // The text table says the same total, the date and every assumption.
    let out = hcctl_in(
        dir.path(),
        &["cost", "--config", example().to_str().expect("path")],
    )
    .output()
    .expect("run hcctl");
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("Total: $52.39 per month"), "{text}");
    assert!(text.contains(&format!(
        "prices as of {}",
        e["prices_as_of"].as_str().unwrap_or_default()
    )));
    for a in assumptions {
        assert!(text.contains(a.as_str().unwrap_or_default()), "{a}");
    }
    assert!(text.contains("Not counted: taxes"), "{text}");
}

#[test]
fn cost_what_ifs_and_price_tables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = cost(dir.path(), &example(), &[]);
    // A bigger MongoDB task, a longer retention: both raise the total.
    let big = cost(
        dir.path(),
        &example(),
        &[
            "--set",
            "containers.mongo.cpu=2048",
            "--set",
            "containers.mongo.memory=4096",
        ],
    );
    let vcpu = |e: &Value| -> f64 {
        e["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| {
                i["resource"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("MongoDB service"))
                    && i["unit"] == "vCPU-hour"
            })
            .and_then(|i| i["monthly"].as_f64())
            .expect("MongoDB's vCPU line")
    };
    assert!((vcpu(&big) - 2.0 * vcpu(&base)).abs() < 1e-9);
    let long = cost(
        dir.path(),
        &example(),
        &["--set", "log_groups.app.retention_days=365"],
    );
    assert!(total(&long) > total(&base));
    // us-east-1 is in the table too, and cheaper for Fargate.
    let virginia = cost(dir.path(), &example(), &["--set", "region=us-east-1"]);
    assert_eq!(virginia["region"], "us-east-1");
    assert!(vcpu(&virginia) < vcpu(&base));

    // --prices: a table of our own, every price doubled, doubles every line.
    let builtin =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("prices/aws.csv"))
            .expect("prices/aws.csv");
    let mut doubled = String::new();
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(builtin.as_bytes());
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(reader.headers().expect("header"))
        .expect("write");
    for row in reader.records() {
        let row = row.expect("row");
        let usd: f64 = row[3].parse().expect("a price");
        let mut fields: Vec<String> = row.iter().map(str::to_string).collect();
        fields[3] = (usd * 2.0).to_string();
        fields[4] = "2030-01-01".to_string();
        writer.write_record(&fields).expect("write");
    }
    doubled.push_str(&String::from_utf8(writer.into_inner().expect("flush")).expect("UTF-8"));
    let table = dir.path().join("prices.csv");
    std::fs::write(&table, doubled).expect("write the table");
    let twice = cost(
        dir.path(),
        &example(),
        &["--prices", table.to_str().expect("path")],
    );
    assert!((total(&twice) - 2.0 * total(&base)).abs() < 1e-6);
    assert_eq!(twice["prices_as_of"], "2030-01-01");
    assert_eq!(twice["price_table"], table.to_str().expect("path"));

    // A region the table lacks: exit 2, naming the region and --prices.
    for (args, says) in [
        (
            vec!["--set", "region=ap-south-2"],
            vec!["ap-south-2", "--prices"],
        ),
        (vec!["--set", "cost.data_gb=-1"], vec!["cost.data_gb", "-1"]),
        (vec!["--set", "cost.nonsense=1"], vec!["nonsense"]),
        (vec!["--set", "containers"], vec!["KEY=VALUE"]),
        (
            vec!["--prices", "/nonexistent/prices.csv"],
            vec!["/nonexistent/prices.csv"],
        ),
    ] {
        let config = example();
        let mut all = vec!["cost", "--config", config.to_str().expect("path")];
        all.extend(args.iter().copied());
        let out = hcctl_in(dir.path(), &all).output().expect("run hcctl");
        assert_exit(&out, 2);
        for s in says {
            assert!(stderr(&out).contains(s), "{args:?}: {}", stderr(&out));
        }
        assert_eq!(stdout(&out), "");
    }
}

/// Deploy's plan: on an empty account everything is new (the change is the whole estimate);
/// converged, nothing changes; a bigger task and a longer retention change it by exactly what
/// `hcctl cost` says they cost.
#[tokio::test]
async fn deploy_plans_show_the_estimate_and_what_a_change_adds() {
    let env = AwsEnv::new().await;
    // Every kind that costs: alerting, an ingest schedule, dumps and drills on a schedule, the
    // drops bucket backed up (the emulator has no vault notifications).
    let text = format!(
        "{}ingest:\n  schedule: rate(15 minutes)\nalerts:\n  email: [ops@example.org]\n  \
         https: [https://hooks.example.org/hcctl]\n  vault_notifications: false\n",
        empty_account_config_text(&env.project)
    )
    .replacen(
        "  selection:\n",
        "  dumps:\n    schedule: cron(0 2 * * ? *)\n    drill_schedule: cron(0 5 ? * SUN *)\n  \
         selection:\n    drops_bucket: true\n",
        1,
    );
    assert!(text.contains("  dumps:\n"), "{text}");
    env.write_config(&text);
    let before = cost(env.dir.path(), &env.config, &[]);
    let services: Vec<&str> = before["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["service"].as_str())
        .collect();
    for s in [
        "AWS KMS",
        "Amazon SNS",
        "EventBridge Scheduler",
        "CloudWatch",
        "AWS Backup",
    ] {
        assert!(services.contains(&s), "{s}: {services:?}");
    }

    let plan = env.deploy(&["--dry-run"]);
    let c = &plan["cost"];
    assert_eq!(c["currency"], "USD");
    assert!(
        (c["monthly_total"].as_f64().expect("total") - total(&before)).abs() < 1e-9,
        "{c}"
    );
    assert!(
        (c["monthly_change"].as_f64().expect("change") - total(&before)).abs() < 1e-9,
        "everything is created: {c}"
    );
    let out = env.run(&["deploy", "--dry-run"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("this plan: + ${:.2}/month", total(&before))),
        "{}",
        stdout(&out)
    );

    env.deploy(&["--no-wait"]);
    let again = env.deploy(&["--dry-run"]);
    let unchanged = again["cost"]["monthly_change"].as_f64().expect("change");
    assert!(unchanged.abs() < 1e-9, "{}", again["cost"]);
    let out = env.run(&["deploy", "--dry-run"]);
    assert!(!stdout(&out).contains("this plan:"), "{}", stdout(&out));

    // MongoDB twice as big, the MongoDB log kept a year.
    let bigger = text
        .replacen(
            "    cpu: 1024\n    memory: 2048\n",
            "    cpu: 2048\n    memory: 4096\n",
            1,
        )
        .replace(
            &format!(
                "name: /ecs/{}-dev/mongo\n    retention_days: 30",
                env.project
            ),
            &format!(
                "name: /ecs/{}-dev/mongo\n    retention_days: 365",
                env.project
            ),
        );
    assert_ne!(bigger, text);
    assert!(bigger.contains("retention_days: 365"), "{bigger}");
    env.write_config(&bigger);
    let after = cost(env.dir.path(), &env.config, &[]);
    let plan = env.deploy(&["--dry-run"]);
    let change = plan["cost"]["monthly_change"].as_f64().expect("change");
    let expected = total(&after) - total(&before);
    assert!(expected > 35.0, "{expected}");
    assert!(
        (change - expected).abs() < 1e-9,
        "plan {change} vs cost {expected}"
    );

    // Applied; then no ingest schedule and no alerting: the plan deletes them and says what
    // that saves, again exactly what hcctl cost says.
    env.deploy(&["--no-wait"]);
    let smaller = bigger
        .replacen("ingest:\n  schedule: rate(15 minutes)\n", "", 1)
        .replacen(
            "alerts:\n  email: [ops@example.org]\n  https: [https://hooks.example.org/hcctl]\n  \
             vault_notifications: false\n",
            "",
            1,
        );
    assert!(
        !smaller.contains("ingest:") && !smaller.contains("alerts:"),
        "{smaller}"
    );
    env.write_config(&smaller);
    let without = cost(env.dir.path(), &env.config, &[]);
    let plan = env.deploy(&["--dry-run"]);
    let change = plan["cost"]["monthly_change"].as_f64().expect("change");
    // The topic goes with its subscriptions, which the plan does not list when the alerting
    // goes whole: their deliveries (cents) are the one saving it leaves out (README).
    let deliveries: f64 = after["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["service"] == "Amazon SNS")
        .filter_map(|i| i["monthly"].as_f64())
        .sum();
    assert!(deliveries > 0.0 && deliveries < 0.01, "{deliveries}");
    let expected = total(&without) - total(&after) + deliveries;
    assert!(expected < -10.0, "{expected}");
    assert!(
        (change - expected).abs() < 1e-9,
        "plan {change} vs cost {expected}"
    );
    let out = env.run(&["deploy", "--dry-run"]);
    assert!(
        stdout(&out).contains(&format!("this plan: - ${:.2}/month", -change)),
        "{}",
        stdout(&out)
    );
    env.destroy(&[&format!("--delete-data={}-dev", env.project)]);
}
