//! The AWS side of the harness: each test gets a config of its own (unique project name, so
//! resource names never collide and tests run in parallel) and SDK clients to describe back
//! what hcctl made. Endpoints come from the environment exactly as hcctl takes them
//! (`AWS_ENDPOINT_URL`, or per-service `AWS_ENDPOINT_URL_<SERVICE>`), so the same tests run
//! against the emulator alone or LocalStack + emulator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use hcctl::aws::{Aws, Target};
use serde_json::Value;

use crate::util::{assert_success, hcctl_in, stdout, HCCTL};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fail (never skip) when no AWS endpoint is configured.
pub fn require_endpoint() {
    let any = std::env::vars().any(|(k, _)| k.starts_with("AWS_ENDPOINT_URL"));
    assert!(
        any,
        "deploy tests need an AWS emulator: run `eval \"$(scripts/stack up)\"` (it exports \
         AWS_ENDPOINT_URL and test credentials) before `cargo test`"
    );
}

pub struct AwsEnv {
    /// The KMS key of the app log group (config `${HCCTL_TEST_KMS_KEY}`), made for this test.
    pub kms_key: String,
    pub dir: tempfile::TempDir,
    /// Unique per test: `t<pid><n>`.
    pub project: String,
    pub config: PathBuf,
    pub aws: Aws,
}

impl AwsEnv {
    pub async fn new() -> AwsEnv {
        require_endpoint();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let project = format!("t{}x{n}", std::process::id());
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("hcctl.yaml");
        std::fs::write(&config, config_text(&project, "mongo:7.0.14", 30)).expect("write config");
        let aws = Aws::connect(&Target {
            region: Some("eu-west-3".to_string()),
            endpoint_url: None,
        })
        .await;
        create_references(&aws, &project).await;
        let kms_key = create_key(
            &aws,
            &format!("hcctl test {project}: app log group"),
            Some(LOG_GROUP_KEY_POLICY),
        )
        .await;
        AwsEnv {
            kms_key,
            dir,
            project,
            config,
            aws,
        }
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Run hcctl in the test's directory with the test's config.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = hcctl_in(self.dir.path(), args);
        cmd.arg("--config")
            .arg(&self.config)
            .env("HCCTL_AWS_ACCOUNT_ID", "000000000000")
            .env("HCCTL_TEST_KMS_KEY", &self.kms_key);
        cmd
    }

    /// `hcctl deploy --format json` (plus `extra`), asserting success; the parsed plan.
    pub fn deploy(&self, extra: &[&str]) -> Value {
        let mut args = vec!["deploy", "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_success(&out);
        serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("deploy --format json is not JSON: {e}\n{}", stdout(&out)))
    }

    /// `hcctl destroy --yes --format json` (plus `extra`), asserting success; the parsed plan.
    pub fn destroy(&self, extra: &[&str]) -> Value {
        let mut args = vec!["destroy", "--yes", "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_success(&out);
        serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("destroy --format json is not JSON: {e}\n{}", stdout(&out)))
    }

    /// The test's config, parsed with the variables hcctl gets.
    pub fn parsed_config(&self) -> hcctl::config::Config {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        hcctl::config::Config::parse(&text, &self.config, &|name| match name {
            "HCCTL_AWS_ACCOUNT_ID" => Some("000000000000".to_string()),
            "HCCTL_TEST_KMS_KEY" => Some(self.kms_key.clone()),
            _ => None,
        })
        .expect("the test config parses")
    }

    pub fn name(&self, suffix: &str) -> String {
        format!("{}-dev-{suffix}", self.project)
    }

    pub fn cluster(&self) -> String {
        format!("{}-dev", self.project)
    }

    /// The drops bucket's default name (the test account is 000000000000).
    pub fn drops_bucket(&self) -> String {
        format!("{}-dev-drops-000000000000", self.project)
    }

    pub fn log_group(&self, which: &str) -> String {
        format!("/ecs/{}-dev/{which}", self.project)
    }
}

/// What the test config refers to but hcctl does not manage: the database secret and the IAM
/// roles, created where the standard variables send Secrets Manager and IAM (the emulator, or
/// LocalStack in the split configuration).
/// A key policy that lets CloudWatch Logs in eu-west-3 use the key, as AWS documents it.
pub const LOG_GROUP_KEY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logs.eu-west-3.amazonaws.com"},"Action":["kms:Encrypt*","kms:Decrypt*","kms:ReEncrypt*","kms:GenerateDataKey*","kms:Describe*"],"Resource":"*"}]}"#;

/// A new KMS key (with `policy`, else KMS's default key policy); its ARN.
pub async fn create_key(aws: &Aws, description: &str, policy: Option<&str>) -> String {
    aws.kms
        .create_key()
        .description(description)
        .set_policy(policy.map(str::to_string))
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating the test KMS key: {e:?}"))
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("the new key's ARN")
        .to_string()
}

/// A trust policy letting `service` assume a role.
pub fn trust_policy(service: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

pub async fn create_references(aws: &Aws, project: &str) {
    aws.secrets
        .create_secret()
        .name(format!("{project}/root"))
        .secret_string(r#"{"username":"root","password":"not-a-real-password-123"}"#)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating the test secret: {e:?}"));
    for (name, path, service) in [
        (format!("{project}-exec"), "/", "ecs-tasks.amazonaws.com"),
        (format!("{project}-task"), "/", "ecs-tasks.amazonaws.com"),
        (
            "AWSBackupDefaultServiceRole".to_string(),
            "/service-role/",
            "backup.amazonaws.com",
        ),
    ] {
        let trust = trust_policy(service);
        let created = aws
            .iam
            .create_role()
            .role_name(&name)
            .path(path)
            .assume_role_policy_document(&trust)
            .send()
            .await;
        if let Err(e) = created {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_entity_already_exists_exception());
            assert!(exists, "creating test role {name}: {e:?}");
            // Shared by the tests (a fixed name): made right whoever made it first.
            aws.iam
                .update_assume_role_policy()
                .role_name(&name)
                .policy_document(&trust)
                .send()
                .await
                .unwrap_or_else(|e| panic!("updating the trust of {name}: {e:?}"));
        }
    }
    // What the execution role reads when a task starts: the secret and the SSM parameter.
    let access = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:eu-west-3:000000000000:secret:{project}/root-*"}},{{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:eu-west-3:000000000000:parameter/{project}/*"}}]}}"#
    );
    aws.iam
        .put_role_policy()
        .role_name(format!("{project}-exec"))
        .policy_name("read-task-secrets")
        .policy_document(access)
        .send()
        .await
        .unwrap_or_else(|e| panic!("granting the test execution role: {e:?}"));
}

/// The repository's task definition templates.
pub fn templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("task-definitions")
}

/// The config of a deploy from an empty account: no role, secret or file system adopted; hcctl
/// creates them all.
pub fn empty_account_config_text(project: &str) -> String {
    let text = config_text(project, "mongo:7.0.14", 30);
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if skipping && indent > 4 {
            continue;
        }
        skipping = false;
        if trimmed.starts_with("execution_role_arn:")
            || trimmed.starts_with("task_role_arn:")
            || trimmed.starts_with("iam_role_arn:")
        {
            continue;
        }
        if indent == 4 && trimmed == "secrets:" {
            skipping = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        !out.contains("role_arn") && !out.contains("secretsmanager"),
        "{out}"
    );
    out
}

/// A complete config for `project`; tests edit the text for their case.
pub fn config_text(project: &str, mongo_image: &str, mongo_retention: u32) -> String {
    format!(
        r#"project: {project}
environment: dev
region: eu-west-3
ecs:
  cluster: {project}-dev
  execution_role_arn: arn:aws:iam::${{HCCTL_AWS_ACCOUNT_ID}}:role/{project}-exec
  task_role_arn: arn:aws:iam::${{HCCTL_AWS_ACCOUNT_ID}}:role/{project}-task
  templates: {templates}
containers:
  mongo:
    image: {mongo_image}
    cpu: 1024
    memory: 2048
    port: 27017
    environment:
      MONGO_INITDB_DATABASE: healthcare
    secrets:
      MONGO_INITDB_ROOT_USERNAME: "arn:aws:secretsmanager:eu-west-3:000000000000:secret:{project}/root:username::"
      MONGO_INITDB_ROOT_PASSWORD: "arn:aws:secretsmanager:eu-west-3:000000000000:secret:{project}/root:password::"
    volume:
      name: mongo-data
      container_path: /data/db
  app:
    image: hcctl:test
    cpu: 512
    memory: 1024
    command: [migrate, /data/healthcare_dataset.csv]
    environment:
      HCCTL_LOG: info
    secrets:
      HCCTL_MONGODB_URI: arn:aws:ssm:eu-west-3:000000000000:parameter/{project}/writer-uri
log_groups:
  mongo:
    name: /ecs/{project}-dev/mongo
    retention_days: {mongo_retention}
  app:
    name: /ecs/{project}-dev/app
    retention_days: 90
    kms_key_arn: ${{HCCTL_TEST_KMS_KEY}}
backup:
  vault:
    name: {project}-dev-vault
  plan:
    name: {project}-dev-daily
    rules:
      - name: daily
        schedule: cron(0 3 * * ? *)
        start_window_minutes: 60
        completion_window_minutes: 180
        delete_after_days: 35
      - name: monthly
        schedule: cron(0 4 1 * ? *)
        completion_window_minutes: 360
        delete_after_days: 365
        cold_storage_after_days: 30
  selection:
    name: {project}-dev-data
    iam_role_arn: arn:aws:iam::000000000000:role/service-role/AWSBackupDefaultServiceRole
    tag_conditions:
      Backup: daily
tags:
  Project: {project}
  DataClassification: PHI
"#,
        templates = templates().display()
    )
}
