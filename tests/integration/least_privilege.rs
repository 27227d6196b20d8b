//! `hcctl iam-policy` proven against an emulator that enforces IAM (ministack with AUTH=true, an
//! instance of its own started here): an IAM user holding exactly that policy deploys from an
//! empty account, redeploys without a change, starts and follows a migration task (`hcctl run`),
//! reads the backup status, runs a backup and destroys everything; the same user without any one of the statements hcctl's own calls need is
//! refused, and the refusal names an action of that statement. The emulator serves HTTPS (a test
//! CA, trusted through `AWS_CA_BUNDLE`), so the drops bucket's TLS-only policy holds as on AWS.
//!
//! ministack authorizes each request against one resource ARN, not always the one AWS uses (ECS
//! service calls on the cluster's ARN; EFS, AWS Backup, Cloud Map tagging and some EC2 calls on
//! `*`; see
//! README "Differences between the emulators and AWS"): for the statements of those services the
//! test adds `*` to the policy's resources, so there the emulator proves the actions, not the
//! resource scoping (and, for EC2, not the tag conditions: the emulator resolves no EC2 tag; nor
//! the alerts key's `aws:ResourceTag` condition: it resolves no resource tag at all).
//! IAM, Secrets Manager, CloudWatch Logs and Cloud Map statements are used exactly as printed. Statements AWS checks on hcctl's behalf (`iam:PassRole`, the network
//! interfaces EFS creates, Cloud Map's hosted zone) are never checked by the emulator.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::awsenv::{empty_account_config_text, require_endpoint};
use crate::util::{stderr, stdout, HCCTL};

/// A ministack process with AUTH=true, serving HTTPS with a certificate of a test CA (so that
/// requests are `aws:SecureTransport` ones, as to AWS: the drops bucket's policy denies any
/// other), stopped on drop.
struct AuthEmulator {
    child: Child,
    url: String,
    /// The test CA, which hcctl trusts through `AWS_CA_BUNDLE`.
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for AuthEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Listening (the TLS listener binds once the emulator is up; the first call retries anyway).
fn healthy(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A test CA and a certificate it signs for 127.0.0.1, written into `dir`: (ca, cert, key).
fn tls_material(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (ca, ca_key) = crate::security::make_ca("hcctl least-privilege test CA");
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate parameters")
            .signed_by(&key, &ca, &ca_key)
            .expect("a certificate");
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write TLS material");
        p
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", cert.pem()),
        write("server.key", key.serialize_pem()),
    )
}

fn start_auth_emulator() -> AuthEmulator {
    let bin = std::env::var("HCCTL_MINISTACK_BIN").unwrap_or_else(|_| {
        panic!("HCCTL_MINISTACK_BIN is not set: run `eval \"$(scripts/stack up)\"` (it exports the emulator the least-privilege test starts with AUTH=true)")
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = tls_material(dir.path());
    for _attempt in 0..3 {
        let port = free_port();
        let mut cmd = Command::new(&bin);
        // Nothing of the test's AWS environment: ministack treats the access key in its own
        // environment as root.
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("LOG_LEVEL", "WARNING")
            .env("IOT_MTLS_ENABLED", "0")
            .env("AUTH", "true")
            .env("USE_SSL", "1")
            .env("MINISTACK_SSL_CERT", &cert)
            .env("MINISTACK_SSL_KEY", &key)
            .env("MINISTACK_ACCOUNT_ID", "000000000000")
            .env("S3_DATA_DIR", dir.path().join("s3"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if healthy(port) {
                return AuthEmulator {
                    child,
                    url: format!("https://127.0.0.1:{port}"),
                    ca: ca.clone(),
                    _dir: dir,
                };
            }
            if child.try_wait().ok().flatten().is_some() {
                break; // exited (the port was taken meanwhile): another port
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("ministack with AUTH=true did not answer on 127.0.0.1:{port} in 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    panic!("ministack with AUTH=true exited at start three times");
}

/// The services ministack authorizes on another ARN than AWS (see the module's comment).
fn emulator_scopes_differently(action: &str) -> bool {
    ["ec2:", "ecs:", "elasticfilesystem:", "backup:"]
        .iter()
        .any(|p| action.starts_with(p))
        || [
            "logs:DescribeLogGroups",
            // CreateAlias names its key as TargetKeyId, SNS's tagging calls the topic as
            // ResourceArn: the emulator reads neither.
            "kms:CreateAlias",
            "sns:ListTagsForResource",
            "sns:TagResource",
            "sns:UntagResource",
            "servicediscovery:ListTagsForResource",
            "servicediscovery:TagResource",
            "servicediscovery:UntagResource",
        ]
        .contains(&action)
}

/// The policy as the emulator can check it: `*` added where it authorizes on another ARN.
fn for_the_emulator(doc: &Value) -> Value {
    let mut doc = doc.clone();
    for s in doc["Statement"].as_array_mut().expect("statements") {
        // The emulator resolves no resource tag (`aws:ResourceTag/…`, the alerts key's scope):
        // such a condition never holds there, so it proves the actions, not the tag scoping.
        if s["Condition"].to_string().contains("aws:ResourceTag/") {
            if let Some(o) = s.as_object_mut() {
                o.remove("Condition");
            }
        }
        let actions: Vec<String> = match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if actions.iter().any(|a| emulator_scopes_differently(a)) {
            let mut resources: Vec<Value> = match &s["Resource"] {
                Value::Array(r) => r.clone(),
                r => vec![r.clone()],
            };
            if !resources.contains(&Value::from("*")) {
                resources.push(Value::from("*"));
            }
            s["Resource"] = Value::Array(resources);
            // The emulator resolves no tag of an EC2 resource, and no ECS condition key
            // (`ecs:cluster` of RunTask): a condition on one never holds.
            if actions
                .iter()
                .any(|a| a.starts_with("ec2:") || a.starts_with("ecs:"))
            {
                if let Some(o) = s.as_object_mut() {
                    o.remove("Condition");
                }
            }
        }
    }
    doc
}

struct User {
    key: String,
    secret: String,
}

async fn create_user(root: &aws_sdk_iam::Client, name: &str, policy: &Value) -> User {
    root.create_user()
        .user_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating user {name}: {e:?}"));
    root.put_user_policy()
        .user_name(name)
        .policy_name("hcctl")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("putting the policy of {name}: {e:?}"));
    let key = root
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a key for {name}: {e:?}"));
    let key = key.access_key().expect("the access key");
    User {
        key: key.access_key_id().to_string(),
        secret: key.secret_access_key().to_string(),
    }
}

/// One project's config, written into `dir`: the empty-account config without the log group's
/// KMS key (this emulator instance has none), with an ingest schedule, scheduled dumps and
/// drills (their role, schedules and reports are part of the lifecycle), the drops bucket in
/// the backup selection (backup run backs it up too), and alerts (key, topic, subscription,
/// metric filters, alarms; the emulator has no vault notifications).
fn write_config(dir: &Path, project: &str) -> std::path::PathBuf {
    let text: String = empty_account_config_text(project)
        .lines()
        .filter(|l| !l.contains("kms_key_arn"))
        .map(|l| format!("{l}\n"))
        .chain([
            "ingest:\n  schedule: rate(15 minutes)\n".to_string(),
            "alerts:\n  email: [ops@example.org]\n  vault_notifications: false\n".to_string(),
        ])
        .collect::<String>()
        .replacen(
            "  selection:\n",
            "  dumps:\n    schedule: cron(0 2 * * ? *)\n    drill_schedule: cron(0 5 * * ? *)\n  selection:\n    drops_bucket: true\n",
            1,
        );
    assert!(text.contains("  dumps:\n"), "{text}");
    let path = dir.join(format!("{project}.yaml"));
    std::fs::write(&path, text).expect("write config");
    path
}

/// The emulator's CA, for every hcctl run (`AWS_CA_BUNDLE`).
static CA_BUNDLE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// The SDK configuration of the emulator's root (the test environment's credentials), trusting
/// the test CA.
async fn root_config(emulator: &AuthEmulator) -> aws_config::SdkConfig {
    let pem = std::fs::read(&emulator.ca).expect("read the test CA");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-3"))
        .endpoint_url(&emulator.url)
        .http_client(hcctl::aws::trusting(pem).expect("an HTTPS client trusting the test CA"))
        .load()
        .await
}

/// IAM as the emulator's root (the test environment's credentials), trusting the test CA; the
/// first call retried until the emulator answers it.
async fn root_iam(emulator: &AuthEmulator) -> aws_sdk_iam::Client {
    let config = root_config(emulator).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match iam.list_users().send().await {
            Ok(_) => return iam,
            Err(e) if Instant::now() >= deadline => {
                panic!("the emulator does not answer IAM over TLS: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

fn run_as(user: &User, url: &str, config: &Path, args: &[&str]) -> Output {
    let mut cmd = command_as(user, url, args);
    cmd.arg("--config")
        .arg(config)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"))
}

/// hcctl with `args` and `user`'s credentials, sending every AWS request to the emulator.
fn command_as(user: &User, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(HCCTL);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_ENDPOINT_URL") || k == "AWS_PROFILE" || k == "AWS_SESSION_TOKEN" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", &user.key)
        .env("AWS_SECRET_ACCESS_KEY", &user.secret)
        .env("AWS_REGION", "eu-west-3")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "AWS_CA_BUNDLE",
            CA_BUNDLE
                .get()
                .expect("the emulator's CA, set at its start"),
        )
        .env_remove("HCCTL_LOG")
        .stdin(Stdio::null());
    cmd
}

/// deploy, redeploy, run migrate, backup-status, backup run, destroy --delete-data: the first refusal, or
/// `None` when all of it went through.
fn lifecycle(user: &User, url: &str, config: &Path, project: &str) -> Result<(), String> {
    let check = |what: &str, out: &Output, ok: &[i32]| -> Result<(), String> {
        if out.status.code().is_some_and(|c| ok.contains(&c)) {
            return Ok(());
        }
        Err(format!(
            "{what}: exit {:?}\n{}\n{}",
            out.status.code(),
            stdout(out),
            stderr(out)
        ))
    };
    let first = run_as(user, url, config, &["deploy", "--format", "json"]);
    check("deploy", &first, &[0])?;
    let second = run_as(user, url, config, &["deploy", "--format", "json"]);
    check("redeploy", &second, &[0])?;
    let plan: Value = serde_json::from_str(&stdout(&second)).map_err(|e| e.to_string())?;
    if plan["outcome"]["api_calls"]["mutating"] != 0 {
        return Err(format!("the redeploy changed something: {plan}"));
    }
    // The containers' logs (nothing written yet: exit 0, said on stderr).
    let logs = run_as(user, url, config, &["logs", "app"]);
    check("logs app", &logs, &[0])?;
    // What the dump and drill schedules would have written (the emulator never fires them), so
    // that backup-status reads a drill report and destroy --delete-data empties the bucket.
    let drops = format!("{project}-dev-drops-000000000000");
    seed_logical_backups(url, &drops);
    // A migration task: started, followed (its status, its log stream), and — the emulator runs
    // no container, so it never ends — stopped at the timeout (exit 1, but not for a refusal).
    let input = format!("s3://{project}-dev-drops-000000000000/incoming/x.csv");
    let run = run_as(
        user,
        url,
        config,
        &["run", "migrate", &input, "--timeout", "3s"],
    );
    if !(run.status.code() == Some(1) && stderr(&run).contains("did not end within 3s")) {
        return Err(format!(
            "run migrate: exit {:?}\n{}\n{}",
            run.status.code(),
            stdout(&run),
            stderr(&run)
        ));
    }
    // Unhealthy (no backup yet) is exit 1; a refused call is exit 3.
    let status = run_as(user, url, config, &["backup-status", "--format", "json"]);
    check("backup-status", &status, &[0, 1])?;
    // One screen: unhealthy (no backup yet) is exit 1; a refused read is exit 3.
    let status = run_as(user, url, config, &["status", "--format", "json"]);
    check("status", &status, &[0, 1])?;
    let run = run_as(user, url, config, &["backup", "run", "--wait"]);
    check("backup run", &run, &[0])?;
    let status = run_as(user, url, config, &["backup-status", "--format", "json"]);
    check("backup-status after the backup", &status, &[0])?;
    let confirm = format!("--delete-data={project}-dev");
    let destroy = run_as(user, url, config, &["destroy", "--yes", &confirm]);
    check("destroy --delete-data", &destroy, &[0])?;
    Ok(())
}

/// A complete dump (its manifest) and a passed drill report of it, both just now, in the drops
/// bucket's `dumps/` and `drills/`, put by the emulator's root (on a runtime of their own: the
/// lifecycles run on plain threads).
fn seed_logical_backups(url: &str, bucket: &str) {
    let (url, bucket) = (url.to_string(), bucket.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let pem = std::fs::read(CA_BUNDLE.get().expect("the emulator's CA")).expect("the CA");
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-3"))
                .endpoint_url(&url)
                .http_client(hcctl::aws::trusting(pem).expect("an HTTPS client"))
                .load()
                .await;
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            );
            let now = mongodb::bson::DateTime::now();
            let name = format!("healthcare-{}", hcctl::backup::dump::chrono_stamp(now));
            let at = hcctl::backup::dump::rfc3339(now);
            let report = serde_json::json!({
                "ok": true, "problems": [], "started": at, "finished": at,
                "dump": format!("s3://{bucket}/dumps/{name}/"), "documents": 2,
                "rto_seconds": 1.5, "rpo_seconds": 2.0,
            });
            for (key, body) in [
                (format!("dumps/{name}/manifest.json"), "{}".to_string()),
                (format!("drills/{name}.json"), report.to_string()),
            ] {
                s3.put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(aws_sdk_s3::primitives::ByteStream::from(body.into_bytes()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
            }
        });
    })
    .join()
    .expect("seeding the drops bucket");
}

/// `hcctl iam-policy` for `config` (no AWS call: the account is given).
fn policy_for(nobody: &User, url: &str, config: &Path) -> Value {
    let out = run_as(
        nobody,
        url,
        config,
        &["iam-policy", "--account-id", "000000000000"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("iam-policy prints JSON")
}

/// A user holding exactly the app task role's policy (as deploy wrote it) migrates an export
/// from `incoming/` — quarantine and report written under `quarantine/` and `reports/` —,
/// ingests `incoming/` (listing it), and runs the scheduled drill (a dump into `dumps/`, loaded
/// back, its report into `drills/`); it is refused reading or listing another bucket, writing
/// under `incoming/` and dumping anywhere else.
async fn app_task_role_reads_incoming_and_writes_outputs_only(
    emulator: &AuthEmulator,
    root: &aws_sdk_iam::Client,
    deployer: &User,
    config: &Path,
    project: &str,
) {
    let deploy = run_as(
        deployer,
        &emulator.url,
        config,
        &["deploy", "--format", "json"],
    );
    assert!(deploy.status.success(), "{}", stderr(&deploy));
    let role = hcctl::resources::role::observe(root, &format!("{project}-dev-app-task"))
        .await
        .expect("read the app task role")
        .expect("deploy created it");
    let policy = role.policy.expect("the role's hcctl policy");
    let app = create_user(root, "lp-app-task", &policy).await;

    let s3 = root_s3(emulator).await;
    let drops = format!("{project}-dev-drops-000000000000");
    let other = format!("{project}-elsewhere");
    crate::util::create_bucket(&s3, &other).await;
    let csv = format!(
        "{}\n{}\n{}\n",
        crate::util::HEADER,
        crate::util::row_with(&[]),
        crate::util::row_with(&[(1, "abc")])
    );
    for (bucket, key) in [(&drops, "incoming/x.csv"), (&other, "x.csv")] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(
                csv.clone().into_bytes(),
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
    }
    let db = format!("lp_app_{}", std::process::id());
    let migrate = |extra: &[&str]| {
        let mut args = vec!["migrate"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--db", &db, "--collection", "c"]);
        command_as(&app, &emulator.url, &args)
            .env("HCCTL_MONGODB_URI", crate::util::mongo_uri())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"))
    };
    let ok = migrate(&[&format!("s3://{drops}/incoming/x.csv")]);
    assert!(ok.status.success(), "{}\n{}", stdout(&ok), stderr(&ok));
    let inserted = stdout(&ok)
        .lines()
        .any(|l| l.split_whitespace().eq(["inserted", "1"]));
    assert!(inserted, "{}", stdout(&ok));
    for key in ["quarantine/x.quarantine.csv", "reports/x.report.json"] {
        s3.head_object()
            .bucket(&drops)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the run wrote s3://{drops}/{key}: {e:?}"));
    }
    let elsewhere = migrate(&[&format!("s3://{other}/x.csv")]);
    assert!(!elsewhere.status.success(), "read another bucket");
    assert!(
        stderr(&elsewhere).contains("not authorized"),
        "{}",
        stderr(&elsewhere)
    );
    let into_incoming = migrate(&[
        &format!("s3://{drops}/incoming/x.csv"),
        "--report",
        &format!("s3://{drops}/incoming/report.json"),
    ]);
    assert!(!into_incoming.status.success(), "wrote under incoming/");
    assert!(
        stderr(&into_incoming).contains("not authorized"),
        "{}",
        stderr(&into_incoming)
    );
    // The scheduled ingest lists incoming/ and loads what is new there.
    let run = |args: &[&str]| {
        command_as(&app, &emulator.url, args)
            .env("HCCTL_MONGODB_URI", crate::util::mongo_uri())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"))
    };
    let incoming = format!("s3://{drops}/incoming/");
    let ingest = run(&["ingest", &incoming, "--db", &db, "--collection", "c"]);
    assert!(
        ingest.status.success(),
        "{}\n{}",
        stdout(&ingest),
        stderr(&ingest)
    );
    let elsewhere = run(&[
        "ingest",
        &format!("s3://{other}/"),
        "--db",
        &db,
        "--collection",
        "c",
    ]);
    assert!(!elsewhere.status.success(), "listed another bucket");
    assert!(
        stderr(&elsewhere).contains("not authorized"),
        "{}",
        stderr(&elsewhere)
    );
    // The scheduled drill: a dump into dumps/, loaded back, its report into drills/.
    let drill = run(&[
        "backup",
        "drill",
        "--db",
        &db,
        "--collection",
        "c",
        "--to",
        &format!("s3://{drops}/dumps/"),
        "--report",
        &format!("s3://{drops}/drills/"),
    ]);
    assert!(
        drill.status.success(),
        "{}\n{}",
        stdout(&drill),
        stderr(&drill)
    );
    for (prefix, suffix) in [("dumps/", "/manifest.json"), ("drills/", ".json")] {
        let listed = s3
            .list_objects_v2()
            .bucket(&drops)
            .prefix(prefix)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list s3://{drops}/{prefix}: {e:?}"));
        let found = listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .any(|k| k.starts_with(&format!("{prefix}{db}-")) && k.ends_with(suffix));
        assert!(found, "nothing like {prefix}{db}-…{suffix}: {listed:?}");
    }
    let dump_elsewhere = run(&[
        "backup",
        "dump",
        "--db",
        &db,
        "--to",
        &format!("s3://{other}/dumps/"),
    ]);
    assert!(
        !dump_elsewhere.status.success(),
        "dumped into another bucket"
    );
    assert!(
        stderr(&dump_elsewhere).contains("not authorized"),
        "{}",
        stderr(&dump_elsewhere)
    );
    mongodb::Client::with_uri_str(crate::util::mongo_uri())
        .await
        .expect("a client")
        .database(&db)
        .drop()
        .await
        .expect("drop the test database");
    let destroy = run_as(
        deployer,
        &emulator.url,
        config,
        &["destroy", "--yes", &format!("--delete-data={project}-dev")],
    );
    assert!(destroy.status.success(), "{}", stderr(&destroy));
}

/// S3 as the emulator's root, trusting the test CA (path-style, as hcctl with an endpoint).
async fn root_s3(emulator: &AuthEmulator) -> aws_sdk_s3::Client {
    let config = root_config(emulator).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

/// Statements the lifecycle above does not exercise, and why.
const NOT_EXERCISED: &[(&str, &str)] = &[
    (
        "TheAlertsKeyAlias",
        "the emulator authorizes CreateAlias on * (it reads no TargetKeyId), so TheAlertsKey, \
         widened to * here for it, covers the alias too",
    ),
    (
        "TheAlarms",
        "the emulator does not enforce IAM on CloudWatch's Smithy RPC v2 CBOR requests: the \
         alarms' calls go through without any statement (README, Differences)",
    ),
    (
        "ReadTheAlarms",
        "as TheAlarms: DescribeAlarms goes through without any statement on the emulator",
    ),
    (
        "UnsubscribeFromTheAlertsTopic",
        "only a confirmed subscription the config no longer lists is unsubscribed; the \
         lifecycle keeps its config, and an email subscription is never confirmed here",
    ),
    (
        "ReadTheRunReports",
        "the reports are read when the tasks have ended, and the emulator's never end on their own (run::a_followed_run_of_two_shards_streams_their_logs_and_prints_the_combined_report reads them)",
    ),
];

#[tokio::test]
async fn a_user_with_exactly_the_iam_policy_can_run_everything_and_without_a_statement_cannot() {
    require_endpoint();
    let emulator = start_auth_emulator();
    CA_BUNDLE
        .set(emulator.ca.clone())
        .expect("one emulator per test run");
    let root = root_iam(&emulator).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let project = format!("lp{}", std::process::id());
    let config = write_config(dir.path(), &project);

    // The policy, as hcctl prints it for this config.
    let nobody = User {
        key: "AKIAIOSFODNN7NOBODY0".into(),
        secret: "x".into(),
    };
    let policy = policy_for(&nobody, &emulator.url, &config);
    let text = run_as(
        &nobody,
        &emulator.url,
        &config,
        &[
            "iam-policy",
            "--account-id",
            "000000000000",
            "--format",
            "text",
        ],
    );
    let explained = stdout(&text);
    let indirect: Vec<String> = explained
        .split("\n\n")
        .filter(|block| block.contains("checked by AWS on hcctl's behalf"))
        .filter_map(|block| block.split(':').next().map(|s| s.trim().to_string()))
        .collect();
    assert!(
        indirect.contains(&"PassRolesToEcsAndBackup".to_string()),
        "{explained}"
    );

    // A user without any permission is refused at the first call that needs one.
    let none = create_user(&root, "lp-none", &serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})).await;
    let refused = run_as(&none, &emulator.url, &config, &["deploy", "--dry-run"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("not authorized"),
        "{}",
        stderr(&refused)
    );

    // Exactly the policy: the whole lifecycle.
    let full = create_user(&root, "lp-full", &for_the_emulator(&policy)).await;
    lifecycle(&full, &emulator.url, &config, &project)
        .unwrap_or_else(|e| panic!("with the whole policy: {e}"));

    // The app task role: what a migration task may do with the drops bucket, and no more.
    app_task_role_reads_incoming_and_writes_outputs_only(
        &emulator, &root, &full, &config, &project,
    )
    .await;

    // Without one statement: refused, naming an action of that statement.
    let statements = policy["Statement"].as_array().expect("statements").clone();
    let mut jobs = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let sid = s["Sid"].as_str().expect("a Sid").to_string();
        if indirect.contains(&sid) || NOT_EXERCISED.iter().any(|(n, _)| *n == sid) {
            continue;
        }
        // Each lifecycle its own project, so the policy printed for that project's config.
        let project = format!("lp{}x{i}", std::process::id());
        let config = write_config(dir.path(), &project);
        let mut without = policy_for(&nobody, &emulator.url, &config);
        without["Statement"]
            .as_array_mut()
            .expect("statements")
            .retain(|st| st["Sid"] != sid.as_str());
        let user = create_user(&root, &format!("lp-{i}"), &for_the_emulator(&without)).await;
        let actions: Vec<String> = match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        jobs.push((sid, actions, user, config, project));
    }
    let url = emulator.url.clone();
    let results: Vec<(String, Vec<String>, Result<(), String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(sid, actions, user, config, project)| {
                let url = &url;
                scope.spawn(move || {
                    (
                        sid.clone(),
                        actions.clone(),
                        lifecycle(user, url, config, project),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a lifecycle thread"))
            .collect()
    });
    let mut checked = Vec::new();
    for (sid, actions, result) in results {
        let err = match result {
            Ok(()) => panic!("without statement {sid} the whole lifecycle still went through"),
            Err(e) => e,
        };
        assert!(err.contains("not authorized"), "without {sid}: {err}");
        assert!(
            actions.iter().any(|a| err.contains(a.as_str())),
            "without {sid}, the refusal names none of its actions {actions:?}: {err}"
        );
        checked.push(sid);
    }
    assert!(checked.len() >= 15, "{checked:?}");
    assert!(
        [
            "TheSchedules",
            "ReadTheDrillReports",
            "EmptyTheDropsBucket",
            "TheAlertsTopic",
            "TheMetricFilters",
            "ReadTheContainerLogs"
        ]
        .iter()
        .all(|sid| checked.iter().any(|s| s == sid)),
        "a statement was not checked: {checked:?}"
    );
}
