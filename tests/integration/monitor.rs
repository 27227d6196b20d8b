//! Monitoring (issue 17): `hcctl logs`, over what deploy made. The emulator runs no container,
//! so the test writes the log events the awslogs driver would (streams
//! `<prefix>/<container>/<task id>` in the container's log group) and reads them back through
//! hcctl. In the second configuration CloudWatch Logs is LocalStack's, whose FilterLogEvents
//! ignores filter patterns: `--filter` must still show only matching lines.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;

use crate::awsenv::AwsEnv;
use crate::util::{assert_exit, assert_success, stderr, stdout, HCCTL};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Events `(ms, message)` into `stream` of `group`, creating the stream if needed.
async fn put(env: &AwsEnv, group: &str, stream: &str, events: &[(i64, &str)]) {
    let created = env
        .aws
        .logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .is_some_and(|s| s.is_resource_already_exists_exception());
        assert!(exists, "create log stream {stream}: {e:?}");
    }
    let events: Vec<InputLogEvent> = events
        .iter()
        .map(|(ms, m)| {
            InputLogEvent::builder()
                .timestamp(*ms)
                .message(*m)
                .build()
                .expect("a log event")
        })
        .collect();
    env.aws
        .logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put log events into {stream}: {e:?}"));
}

/// The messages of `hcctl logs` text output (after the time and the task).
fn messages(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.split_once("  ")
                .map(|(_, m)| m.to_string())
                .unwrap_or_else(|| panic!("not `TIME TASK  MESSAGE`: {l}"))
        })
        .collect()
}

#[tokio::test]
async fn logs_show_the_containers_events_in_time_order_filtered_and_followed() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    let group = env.log_group("app");
    let (a, b) = (
        "aaaa1111aaaa1111aaaa1111aaaa1111",
        "bbbb2222bbbb2222bbbb2222bbbb2222",
    );
    let now = now_ms();
    put(
        &env,
        &group,
        &format!("app/app/{a}"),
        &[
            (now - 600_000, "first line of a"),
            (now - 300_000, "migrate finished\nsecond part"),
        ],
    )
    .await;
    put(
        &env,
        &group,
        &format!("app/app/{b}"),
        &[(now - 400_000, "only line of b")],
    )
    .await;
    // Two hours ago: outside the default window of one hour.
    put(
        &env,
        &group,
        "app/app/cccc3333",
        &[(now - 7_200_000, "an old line")],
    )
    .await;
    // Not the app container's stream (another prefix): never shown.
    put(
        &env,
        &group,
        "other/sidecar/dddd4444",
        &[(now - 200_000, "not the app's")],
    )
    .await;

    let out = env.run(&["logs", "app"]);
    assert_success(&out);
    let text = stdout(&out);
    assert_eq!(
        messages(&text),
        vec![
            "first line of a",
            "only line of b",
            "migrate finished",
            "second part"
        ],
        "{text}"
    );
    // Each line names its task (the id's first 12 characters).
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains(" aaaa1111aaaa  "), "{first}");

    let out = env.run(&["logs", "app", "--since", "3h"]);
    assert_success(&out);
    assert_eq!(messages(&stdout(&out))[0], "an old line");
    assert_eq!(messages(&stdout(&out)).len(), 5);

    let out = env.run(&["logs", "app", "--task", "bbbb2222"]);
    assert_success(&out);
    assert_eq!(messages(&stdout(&out)), vec!["only line of b"]);
    let arn = format!(
        "arn:aws:ecs:eu-west-3:000000000000:task/{}/{a}",
        env.cluster()
    );
    let out = env.run(&["logs", "app", "--task", &arn, "--filter", "finished"]);
    assert_success(&out);
    assert_eq!(
        messages(&stdout(&out)),
        vec!["migrate finished", "second part"]
    );
    // Case-sensitive, like CloudWatch's patterns (LocalStack ignores the pattern: hcctl checks).
    let out = env.run(&["logs", "app", "--filter", "Finished"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "");

    let out = env.run(&["logs", "app", "--task", a, "--format", "json"]);
    assert_success(&out);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["task"], a);
    assert_eq!(lines[0]["stream"], format!("app/app/{a}"));
    assert_eq!(lines[0]["message"], "first line of a");
    assert!(lines[0]["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // MongoDB's group has no stream yet: nothing, said on stderr, exit 0.
    let out = env.run(&["logs", "mongo"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains(&format!(
            "no log stream of mongo in {} has events since",
            env.log_group("mongo")
        )),
        "{}",
        stderr(&out)
    );

    // --follow: the lines so far, then new ones — of a running task and of one started since.
    let mut child = env
        .command(&["logs", "app", "--follow", "--since", "15m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"));
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |want: usize, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        while seen.len() < want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("logs --follow printed only {seen:?}"),
            }
        }
    };
    wait_for(4, &mut seen);
    put(
        &env,
        &group,
        &format!("app/app/{b}"),
        &[(now_ms(), "b goes on")],
    )
    .await;
    let e = "eeee5555eeee5555eeee5555eeee5555";
    put(
        &env,
        &group,
        &format!("app/app/{e}"),
        &[(now_ms(), "a new task speaks")],
    )
    .await;
    wait_for(6, &mut seen);
    // Nothing printed twice by the polls that follow (each reads 30 s back).
    std::thread::sleep(Duration::from_secs(4));
    let again: Vec<String> = rx.try_iter().collect();
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(again.is_empty(), "printed again: {again:?} after {text}");
    let got = messages(&text);
    assert_eq!(
        got[..4],
        [
            "first line of a",
            "only line of b",
            "migrate finished",
            "second part"
        ]
    );
    let mut new = got[4..].to_vec();
    new.sort();
    assert_eq!(new, ["a new task speaks", "b goes on"], "{text}");
}

#[tokio::test]
async fn logs_say_what_to_do_when_there_is_no_deployment_or_no_aws() {
    let env = AwsEnv::new().await;
    let out = env.run(&["logs", "app"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!(
            "log group {} does not exist: run `hcctl deploy` first",
            env.log_group("app")
        )),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["logs", "app", "--endpoint-url", "http://127.0.0.1:9"]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("no answer from the AWS endpoint"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["logs", "postgres"]);
    assert_exit(&out, 2);
}

/// The test config with alerts: two endpoints, no vault notifications (the emulator has no
/// route for them: README, "Differences between the emulators and AWS").
fn alerts_config(env: &AwsEnv) -> String {
    format!(
        "{}alerts:\n  email: [ops@example.org]\n  https: [https://hooks.example.org/hcctl]\n  \
         vault_notifications: false\n  thresholds:\n    rejected_share: 0.1\n",
        crate::awsenv::config_text(&env.project, "mongo:7.0.14", 30)
    )
}

/// The plan's steps as `kind name` → action.
fn actions(plan: &Value) -> std::collections::BTreeMap<String, String> {
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                format!(
                    "{} {}",
                    s["kind"].as_str().unwrap(),
                    s["name"].as_str().unwrap()
                ),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn deploy_creates_the_alerting_an_alarm_reaches_a_subscribed_queue_and_status_names_it() {
    let env = AwsEnv::new().await;
    env.write_config(&alerts_config(&env));
    let plan = env.deploy(&[]);
    let a = actions(&plan);
    let alias = format!("alias/{}", env.name("alerts"));
    let topic_name = env.name("alerts");
    for step in [
        format!("key {alias}"),
        format!("topic {topic_name}"),
        "subscription email:ops@example.org".to_string(),
        "subscription https:https://hooks.example.org/hcctl".to_string(),
        format!("metric_filter {}", env.name("app-errors")),
        format!("metric_filter {}", env.name("rejected-share")),
    ] {
        assert_eq!(
            a.get(&step).map(String::as_str),
            Some("create"),
            "{step}: {a:?}"
        );
    }
    let alarm_names: Vec<String> = hcctl::resources::alarm::SUFFIXES
        .iter()
        .map(|s| env.name(s))
        .collect();
    for n in &alarm_names {
        assert_eq!(
            a.get(&format!("alarm {n}")).map(String::as_str),
            Some("create"),
            "{n}"
        );
    }
    assert!(
        !a.keys().any(|k| k.starts_with("vault_notifications")),
        "{a:?}"
    );

    // Described back. The key: rotated, for CloudWatch and AWS Backup of this account.
    let key = env
        .aws
        .kms
        .describe_key()
        .key_id(&alias)
        .send()
        .await
        .expect("the key");
    let key_arn = key
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("key ARN")
        .to_string();
    let rotation = env
        .aws
        .kms
        .get_key_rotation_status()
        .key_id(&alias)
        .send()
        .await
        .expect("rotation");
    assert!(rotation.key_rotation_enabled());
    let policy = env
        .aws
        .kms
        .get_key_policy()
        .key_id(&key_arn)
        .policy_name("default")
        .send()
        .await
        .expect("key policy");
    let policy = policy.policy().unwrap_or_default();
    assert!(policy.contains("cloudwatch.amazonaws.com"), "{policy}");

    // The topic: encrypted with that key, its policy admitting CloudWatch, TLS only.
    let topic = format!("arn:aws:sns:eu-west-3:000000000000:{topic_name}");
    let attrs = env
        .aws
        .sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .expect("the topic");
    let attrs = attrs.attributes().expect("attributes");
    assert_eq!(attrs.get("KmsMasterKeyId"), Some(&key_arn));
    let topic_policy: Value =
        serde_json::from_str(attrs.get("Policy").expect("a policy")).expect("JSON");
    let statements = topic_policy["Statement"].as_array().expect("statements");
    assert!(statements
        .iter()
        .any(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com"));
    assert!(
        statements
            .iter()
            .any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
    );
    let subs = env
        .aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .expect("subscriptions");
    let mut endpoints: Vec<(String, String)> = subs
        .subscriptions()
        .iter()
        .map(|s| {
            (
                s.protocol().unwrap_or_default().to_string(),
                s.endpoint().unwrap_or_default().to_string(),
            )
        })
        .collect();
    endpoints.sort();
    assert_eq!(
        endpoints,
        [
            ("email".to_string(), "ops@example.org".to_string()),
            (
                "https".to_string(),
                "https://hooks.example.org/hcctl".to_string()
            )
        ]
    );

    // The metric filters read hcctl's JSON lines.
    let filters = env
        .aws
        .logs
        .describe_metric_filters()
        .log_group_name(env.log_group("app"))
        .send()
        .await
        .expect("metric filters");
    let mut patterns: Vec<&str> = filters
        .metric_filters()
        .iter()
        .filter_map(|f| f.filter_pattern())
        .collect();
    patterns.sort();
    assert_eq!(
        patterns,
        ["{ $.level = \"ERROR\" }", "{ $.rejected_share >= 0 }"]
    );

    // Every alarm notifies the topic on ALARM and OK.
    let alarms = env
        .aws
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alarm_names.clone()))
        .send()
        .await
        .expect("alarms");
    assert_eq!(alarms.metric_alarms().len(), 7);
    for alarm in alarms.metric_alarms() {
        assert_eq!(
            alarm.alarm_actions(),
            std::slice::from_ref(&topic),
            "{:?}",
            alarm.alarm_name()
        );
        assert_eq!(
            alarm.ok_actions(),
            std::slice::from_ref(&topic),
            "{:?}",
            alarm.alarm_name()
        );
    }
    let rejected = alarms
        .metric_alarms()
        .iter()
        .find(|x| x.alarm_name() == Some(env.name("rejected-rows").as_str()))
        .expect("the rejected-rows alarm");
    assert_eq!(rejected.threshold(), Some(0.1));

    // Container Insights on, for the running-tasks alarm.
    let cluster = env
        .aws
        .ecs
        .describe_clusters()
        .clusters(env.cluster())
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .expect("cluster");
    let insights = cluster.clusters()[0]
        .settings()
        .iter()
        .find(|s| s.name() == Some(&aws_sdk_ecs::types::ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .map(str::to_string);
    assert_eq!(insights.as_deref(), Some("enabled"));

    // Converged: a second deploy changes nothing.
    let second = env.deploy(&[]);
    let changed: Vec<(String, String)> = actions(&second)
        .into_iter()
        .filter(|(k, v)| v != "unchanged" && !k.starts_with("reference"))
        .collect();
    let lines: Vec<&Value> = second["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["action"] != "unchanged" && s["kind"] != "reference")
        .collect();
    assert!(changed.is_empty(), "{changed:?}: {lines:?}");
    assert_eq!(second["outcome"]["api_calls"]["mutating"], 0, "{second}");

    // An alarm forced to ALARM reaches a queue subscribed to the topic.
    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-3"))
            .load()
            .await,
    );
    let queue = sqs
        .create_queue()
        .queue_name(env.name("alerts-probe"))
        .send()
        .await
        .expect("create queue");
    let queue_url = queue.queue_url().expect("queue URL").to_string();
    let queue_arn = format!(
        "arn:aws:sqs:eu-west-3:000000000000:{}",
        env.name("alerts-probe")
    );
    env.aws
        .sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("subscribe the queue");
    let app_errors = env.name("app-errors");
    env.aws
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&app_errors)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test: forced")
        .send()
        .await
        .expect("set alarm state");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut found = None;
    while found.is_none() && std::time::Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(2)
            .send()
            .await
            .expect("receive");
        for m in got.messages() {
            let body = m.body().unwrap_or_default().to_string();
            if body.contains(&app_errors) {
                found = Some(body);
            }
        }
    }
    let body = found.expect("the alarm's notification reached the queue within 30 s");
    let envelope: Value = serde_json::from_str(&body).expect("an SNS envelope");
    assert_eq!(envelope["TopicArn"], topic.as_str(), "{body}");
    let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())
        .unwrap_or_else(|_| Value::String(envelope["Message"].to_string()));
    assert_eq!(message["AlarmName"], app_errors.as_str(), "{body}");
    assert_eq!(message["NewStateValue"], "ALARM", "{body}");

    // hcctl status names the alarm and says attention is needed (exit 1).
    let out = env.run(&["status"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("! alarm {app_errors} is in ALARM")),
        "{text}"
    );
    let out = env.run(&["status", "--format", "json"]);
    assert_exit(&out, 1);
    let status: Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
    assert_eq!(status["healthy"], false);
    assert_eq!(
        status["alarms"][0]["name"],
        app_errors.as_str(),
        "ALARM first: {status}"
    );
    assert_eq!(status["alarms"][0]["state"], "ALARM");
    assert_eq!(status["alarms"].as_array().map(Vec::len), Some(7));
    assert_eq!(
        status["service"]["name"],
        env.name("mongo").as_str(),
        "{status}"
    );

    // Back to OK, with a backup taken and a run in the app's log: healthy, exit 0.
    env.aws
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&app_errors)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("test: resolved")
        .send()
        .await
        .expect("set alarm state");
    let backup = env.run(&["backup", "run", "--wait"]);
    assert_success(&backup);
    let line = format!(
        r#"{{"timestamp":"{}","level":"INFO","command":"migrate","message":"finished","exit_code":0,"rows_read":55500,"inserted":54966,"duplicates":534,"rejected":0}}"#,
        "2026-12-06T21:38:14.871Z"
    );
    put(
        &env,
        &env.log_group("app"),
        "app/app/ffff6666",
        &[(now_ms(), &line), (now_ms(), "not a run")],
    )
    .await;
    let out = env.run(&["status", "--format", "json"]);
    assert_success(&out);
    let status: Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["attention"], serde_json::json!([]));
    assert_eq!(status["runs"].as_array().map(Vec::len), Some(1), "{status}");
    assert_eq!(status["runs"][0]["command"], "migrate");
    assert_eq!(status["runs"][0]["figures"]["inserted"], 54966);
    let out = env.run(&["status"]);
    assert_success(&out);
    assert!(
        stdout(&out).starts_with("status: healthy\n"),
        "{}",
        stdout(&out)
    );

    // The queue is not hcctl's: the next deploy leaves it subscribed.
    let third = env.deploy(&[]);
    assert!(!actions(&third).values().any(|v| v == "delete"), "{third}");

    // Destroy removes the alerting (the key's deletion is scheduled).
    env.destroy(&[]);
    let left = env
        .aws
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alarm_names))
        .send()
        .await
        .expect("alarms");
    assert!(left.metric_alarms().is_empty());
    assert!(env
        .aws
        .sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .is_err());
    let key = env
        .aws
        .kms
        .describe_key()
        .key_id(&key_arn)
        .send()
        .await
        .expect("the key");
    assert_eq!(
        key.key_metadata().and_then(|m| m.key_state()),
        Some(&aws_sdk_kms::types::KeyState::PendingDeletion)
    );
    assert!(env
        .aws
        .kms
        .describe_key()
        .key_id(&alias)
        .send()
        .await
        .is_err());
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
}
