//! `hcctl run migrate|verify` (issue 15): migrations as ECS tasks. The emulator runs no
//! container (a started task stays RUNNING until StopTask), so the test plays the container's
//! part: it reads the started task's command override and environment back from ECS, runs that
//! same hcctl command itself against the local MongoDB-wire server, writes its output into the
//! task's awslogs stream and stops the task — and checks that `hcctl run` streamed those lines,
//! read the reports back from S3, combined them and exited with the container's code.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_ecs::types::Task;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use crate::awsenv::AwsEnv;
use crate::util::{
    assert_exit, assert_success, hcctl_in, n, row_with, stderr, stdout, TestEnv, HCCTL,
};

/// The running tasks `hcctl run` started on the test's cluster.
async fn run_tasks(env: &AwsEnv) -> Vec<String> {
    env.aws
        .ecs
        .list_tasks()
        .cluster(env.cluster())
        .started_by("hcctl-run")
        .send()
        .await
        .expect("list tasks")
        .task_arns()
        .to_vec()
}

/// The tasks `arns` as ECS describes them.
async fn describe(env: &AwsEnv, arns: Vec<String>) -> Vec<Task> {
    env.aws
        .ecs
        .describe_tasks()
        .cluster(env.cluster())
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("describe tasks")
        .tasks()
        .to_vec()
}

/// The tasks `hcctl run` started on the test's cluster, once there are `count` of them.
async fn started_tasks(env: &AwsEnv, count: usize, child: &mut Child) -> Vec<Task> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let arns = run_tasks(env).await;
        if arns.len() >= count {
            return describe(env, arns).await;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("hcctl run ended ({status}) before starting {count} task(s): {err}");
        }
        assert!(Instant::now() < deadline, "no task started within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The command override of the app container, and its environment.
fn override_of(task: &Task) -> (Vec<String>, Vec<(String, String)>) {
    let o = task
        .overrides()
        .expect("the task has overrides")
        .container_overrides()
        .iter()
        .find(|c| c.name() == Some("app"))
        .expect("an override of the app container");
    (
        o.command().to_vec(),
        o.environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap_or_default().to_string(),
                    kv.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    )
}

/// Write `lines` into the task's awslogs stream, as the awslogs driver would.
async fn write_log(env: &AwsEnv, stream: &str, lines: &[String]) {
    let group = env.log_group("app");
    env.aws
        .logs
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create log stream {stream}: {e:?}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let events: Vec<InputLogEvent> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(l)
                .build()
                .expect("a log event")
        })
        .collect();
    env.aws
        .logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put log events into {stream}: {e:?}"));
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().expect("a task id")
}

async fn put(env: &AwsEnv, key: &str, body: Vec<u8>) {
    env.aws
        .s3
        .put_object()
        .bucket(env.drops_bucket())
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

async fn stop(env: &AwsEnv, arn: &str) {
    env.aws
        .ecs
        .stop_task()
        .cluster(env.cluster())
        .task(arn)
        .reason("Essential container in task exited")
        .send()
        .await
        .unwrap_or_else(|e| panic!("stop {arn}: {e:?}"));
}

fn finish(child: Child) -> std::process::Output {
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for hcctl run: {e}"))
}

#[tokio::test]
async fn a_followed_run_of_two_shards_streams_their_logs_and_prints_the_combined_report() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    let db = TestEnv::new("run").await;
    let csv = db.generate("admissions.csv", 3_000, 15);
    // Two rejected rows, so the quarantine and the per-shard accounting are exercised.
    let mut body = std::fs::read(&csv).expect("read generated CSV");
    for bad in [row_with(&[(1, "abc")]), row_with(&[(5, "not-a-date")])] {
        body.extend_from_slice(bad.as_bytes());
        body.push(b'\n');
    }
    put(&env, "incoming/2026/12/admissions.csv", body.clone()).await;
    let local = db.write("local.csv", &body);
    let input = format!(
        "s3://{}/incoming/2026/12/admissions.csv",
        env.drops_bucket()
    );

    let mut child = env
        .command(&[
            "run",
            "migrate",
            &input,
            "--db",
            &db.db,
            "--collection",
            "cloud",
            "--batch-size",
            "700",
            "--tasks",
            "2",
            "--format",
            "json",
        ])
        // The local machine's connection string never reaches a task.
        .env(
            "HCCTL_MONGODB_URI",
            "mongodb://local-user:local-secret@127.0.0.1:1",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"));
    let tasks = started_tasks(&env, 2, &mut child).await;
    assert_eq!(tasks.len(), 2);
    let latest = hcctl::resources::task_definition::latest(&env.aws.ecs, &env.name("app"))
        .await
        .expect("describe the app family")
        .expect("deploy registered it")
        .0;
    let mut run_ids = Vec::new();
    let mut shards = Vec::new();
    for task in &tasks {
        assert_eq!(task.started_by(), Some("hcctl-run"));
        assert_eq!(task.task_definition_arn(), Some(latest.as_str()));
        let (command, environment) = override_of(task);
        assert!(
            !command.iter().any(|c| c.contains("local-secret")),
            "{command:?}"
        );
        assert_eq!(command[0], "migrate");
        assert_eq!(command[1], input);
        let shard = command
            .iter()
            .find_map(|c| c.strip_prefix("--shard="))
            .expect("a --shard")
            .to_string();
        let k = &shard[..1];
        assert!(command.contains(&format!("--db={}", db.db)), "{command:?}");
        assert!(command.contains(&"--collection=cloud".to_string()));
        assert!(command.contains(&"--batch-size=700".to_string()));
        assert!(
            command.contains(&format!(
                "--report=s3://{}/reports/2026/12/admissions.report.shard-{k}-of-2.json",
                env.drops_bucket()
            )),
            "{command:?}"
        );
        assert!(!command
            .iter()
            .any(|c| c.starts_with("--tasks") || c.starts_with("--format")));
        let id = environment
            .iter()
            .find(|(k, _)| k == "HCCTL_RUN_ID")
            .map(|(_, v)| v.clone())
            .expect("HCCTL_RUN_ID in the task's environment");
        run_ids.push(id);
        shards.push(shard.clone());

        // The container's part: the same command, here, against the test server.
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let out = hcctl_in(db.dir.path(), &args)
            .env("HCCTL_MONGODB_URI", &db.uri)
            .output()
            .expect("run the task's command");
        assert_success(&out);
        let mut lines: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
        lines.extend(stdout(&out).lines().map(str::to_string));
        lines.push(format!("container of shard {shard} done"));
        let arn = task.task_arn().expect("a task ARN");
        write_log(&env, &format!("app/app/{}", task_id(arn)), &lines).await;
        stop(&env, arn).await;
    }
    shards.sort();
    assert_eq!(shards, ["1/2", "2/2"]);
    assert_eq!(run_ids[0], run_ids[1], "one run id for the run's tasks");
    assert_eq!(run_ids[0].len(), 12);

    let out = finish(child);
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("[1/2] container of shard 1/2 done"), "{err}");
    assert!(err.contains("[2/2] container of shard 2/2 done"), "{err}");
    assert!(err.contains(": STOPPED"), "{err}");
    let result: Value = serde_json::from_str(&stdout(&out)).expect("run --format json is JSON");
    assert_eq!(result["job"], "migrate");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["tasks"].as_array().expect("tasks").len(), 2);
    for t in result["tasks"].as_array().expect("tasks") {
        assert_eq!(t["exit_code"], 0, "{t}");
        assert_eq!(t["last_status"], "STOPPED");
    }
    let combined = &result["report"];
    // The combined report is one unsharded run's: the same file migrated locally agrees.
    let alone = db.migrate(&local, "alone", &[]);
    for key in crate::util::MIGRATE_FIGURES {
        assert_eq!(
            n(combined, key),
            n(&alone, key),
            "{key}: {combined} vs {alone}"
        );
    }
    assert_eq!(n(combined, "rows_read"), 3_002);
    assert_eq!(n(combined, "rejected"), 2);
    assert_eq!(combined["rejects_by_reason"], alone["rejects_by_reason"]);
    assert_eq!(
        db.count("cloud", bson::doc! {}).await,
        n(&alone, "inserted")
    );
    db.drop_db().await;
    env.destroy(&[&format!("--delete-data={}-dev", env.project)]);
}

#[tokio::test]
async fn run_refuses_what_a_task_cannot_do_returns_at_once_with_no_wait_and_stops_at_the_timeout() {
    let env = AwsEnv::new().await;
    let input = format!("s3://{}/incoming/x.csv", env.drops_bucket());
    // Nothing deployed: nothing to run.
    let out = env.run(&["run", "migrate", &input]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("run `hcctl deploy` first"),
        "{}",
        stderr(&out)
    );

    env.deploy(&[]);
    let count = || async { run_tasks(&env).await.len() };
    for (args, says) in [
        (vec!["run", "migrate", "data/x.csv"], "is not an s3:// URL"),
        (
            vec!["run", "migrate", &input, "--uri", "mongodb://u:pw-secret@h"],
            "--uri is not passed to a task",
        ),
        (
            vec!["run", "verify", &input, "--report", "local.json"],
            "--report local.json is a local path",
        ),
        (
            vec!["run", "migrate", &input, "--shard", "1/2", "--tasks", "2"],
            "give one of them",
        ),
    ] {
        let out = env.run(&args);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("pw-secret"), "{}", stderr(&out));
    }
    assert_eq!(count().await, 0, "a refused run starts no task");

    // --no-wait: the ARN on stdout, the task left running.
    let out = env.run(&["run", "verify", &input, "--no-wait"]);
    assert_success(&out);
    let arns: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(arns.len(), 1, "{}", stdout(&out));
    assert!(arns[0].contains(":task/"), "{arns:?}");
    let described = describe(&env, arns.clone()).await;
    let task = &described[0];
    assert_eq!(task.last_status(), Some("RUNNING"));
    let (command, _) = override_of(task);
    assert_eq!(
        command,
        [
            "verify".to_string(),
            input.clone(),
            format!("--report=s3://{}/reports/x.verify.json", env.drops_bucket())
        ]
    );
    stop(&env, &arns[0]).await;

    // A task that does not end in time is stopped, and the run is exit 1.
    let out = env.run(&["run", "migrate", &input, "--timeout", "2s"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("did not end within 2s"),
        "{}",
        stderr(&out)
    );
    let arns = env
        .aws
        .ecs
        .list_tasks()
        .cluster(env.cluster())
        .started_by("hcctl-run")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("list stopped tasks")
        .task_arns()
        .to_vec();
    let described = describe(&env, arns).await;
    assert!(
        described
            .iter()
            .any(|t| t.stopped_reason() == Some("hcctl run: --timeout 2s reached")),
        "{described:?}"
    );
    assert_eq!(count().await, 0, "nothing left running");
    env.destroy(&[&format!("--delete-data={}-dev", env.project)]);
}
