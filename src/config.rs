//! `infra/hcctl.yaml`: the one description of the AWS side (ECS, CloudWatch Logs, AWS Backup).
//!
//! Loading happens in three steps, each failing with a message that names the file, the key and
//! what is expected: (1) YAML is parsed into a tree, (2) `${VAR}` in string values is replaced from
//! the environment (an unset variable is an error naming it and where it is used), (3) the tree is
//! deserialized into [`Config`] (unknown keys are errors) and validated against the limits AWS
//! itself enforces, so that a bad value is found before any AWS call.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::error::Error;

/// Where `--config` points by default.
pub const DEFAULT_PATH: &str = "infra/hcctl.yaml";

/// The retention values CloudWatch Logs accepts (PutRetentionPolicy), in days.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Short project name, used in resource names.
    pub project: String,
    /// Environment name (dev, staging, prod), used in resource names.
    pub environment: String,
    /// AWS region; when absent, AWS_REGION or the profile's region, then eu-west-3.
    #[serde(default)]
    pub region: Option<String>,
    /// Where the tasks run: the VPC and subnets (default: the account's default VPC and all its
    /// subnets).
    #[serde(default)]
    pub network: Network,
    pub ecs: Ecs,
    pub containers: Containers,
    /// The Cloud Map private DNS namespace the app finds MongoDB in (`mongo.<namespace>`).
    #[serde(default)]
    pub service_discovery: ServiceDiscovery,
    /// The Secrets Manager secrets hcctl creates when missing (generated passwords).
    #[serde(default)]
    pub secrets: ManagedSecrets,
    pub log_groups: LogGroups,
    pub backup: Backup,
    /// The S3 bucket exports are dropped in (`incoming/`) and runs write their quarantine and
    /// reports to.
    #[serde(default)]
    pub drops: Drops,
    /// `ingest`: a schedule on which ECS runs `hcctl ingest` over the drops bucket's `incoming/`.
    #[serde(default)]
    pub ingest: Ingest,
    /// `alerts`: an encrypted SNS topic, its subscriptions, and the CloudWatch alarms that
    /// notify it; absent: no alerting.
    #[serde(default)]
    pub alerts: Option<Alerts>,
    /// The database's technical accounts, for `hcctl db-users apply`.
    #[serde(default)]
    pub database: Option<DatabaseAccounts>,
    /// `cost`: the expected usage `hcctl cost` (and deploy's plan) estimate the bill from.
    #[serde(default)]
    pub cost: Usage,
    /// Applied to every resource that takes tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseAccounts {
    /// The database the accounts belong to (and have their roles on).
    pub name: String,
    pub accounts: Vec<Account>,
}

/// One technical account. The password comes from an environment variable or a file, never
/// from this config or the command line.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    /// Built-in roles on the database: read, readWrite, dbAdmin, userAdmin, dbOwner.
    pub roles: Vec<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// `alerts`: where the alarms notify, and when they fire.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// The SNS topic's name (default `<project>-<environment>-alerts`).
    #[serde(default)]
    pub topic: Option<String>,
    /// A customer-managed KMS key for the topic; default: the key hcctl creates
    /// (`alias/<project>-<environment>-alerts`, rotated yearly), because CloudWatch and AWS
    /// Backup cannot publish to a topic encrypted with the AWS-managed `alias/aws/sns`. A key
    /// named here must let `cloudwatch.amazonaws.com` and `backup.amazonaws.com` use it.
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// Email addresses to notify (each confirms the subscription from the mail AWS sends).
    #[serde(default)]
    pub email: Vec<String>,
    /// HTTPS endpoints to notify (each confirms the subscription SNS posts to it).
    #[serde(default)]
    pub https: Vec<String>,
    /// AWS Backup's own notifications of the vault (failed and expired jobs, failed restores
    /// and copies) to the topic too.
    #[serde(default = "yes")]
    pub vault_notifications: bool,
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// When the alarms fire.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// MongoDB's task CPU, percent of its reservation, averaged over 15 minutes (default 80).
    #[serde(default = "default_percent")]
    pub mongo_cpu_percent: f64,
    /// MongoDB's task memory, percent of its reservation, over 15 minutes (default 80).
    #[serde(default = "default_percent")]
    pub mongo_memory_percent: f64,
    /// A run (migrate, or one file of ingest) rejecting more than this share of its rows
    /// (0-1; default 0.05).
    #[serde(default = "default_rejected_share")]
    pub rejected_share: f64,
    /// How long past the backup plan's interval the newest completed backup may be (hours;
    /// default 2: 26 h for a daily plan).
    #[serde(default = "default_backup_grace_hours")]
    pub backup_grace_hours: u32,
}

fn yes() -> bool {
    true
}

fn default_percent() -> f64 {
    80.0
}

fn default_rejected_share() -> f64 {
    0.05
}

fn default_backup_grace_hours() -> u32 {
    2
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            mongo_cpu_percent: default_percent(),
            mongo_memory_percent: default_percent(),
            rejected_share: default_rejected_share(),
            backup_grace_hours: default_backup_grace_hours(),
        }
    }
}

/// `cost`: what the stack is expected to do in a month, for `hcctl cost`. Every key has a
/// default; each is stated in the estimate's assumptions.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Usage {
    /// MongoDB's data on the file system, in GB (also the size of a full backup).
    pub data_gb: f64,
    /// The share of the data that changes in a day (the size of a daily incremental backup).
    pub daily_change_share: f64,
    /// Log volume per month written by MongoDB's tasks, in GB.
    pub mongo_log_gb_per_month: f64,
    /// Log volume per month written by the app's tasks (migrations, ingests, dumps), in GB.
    pub app_log_gb_per_month: f64,
    /// Migrations run by hand (`hcctl run migrate`) in a month.
    pub migration_runs_per_month: f64,
    /// How long one migration task runs, in hours.
    pub migration_hours: f64,
    /// Tasks per migration (`hcctl run --tasks`).
    pub migration_tasks: f64,
    /// How long one scheduled ingest task runs, in minutes.
    pub ingest_run_minutes: f64,
    /// How long one scheduled dump (`backup dump`) runs, in minutes.
    pub dump_run_minutes: f64,
    /// How long one scheduled restore drill runs, in minutes.
    pub drill_run_minutes: f64,
    /// What the drops bucket holds on average (exports, quarantines, reports, dumps), in GB.
    pub drops_gb: f64,
    /// PUT/LIST requests to the drops bucket in a month.
    pub s3_put_requests_per_month: f64,
    /// GET requests to the drops bucket in a month.
    pub s3_get_requests_per_month: f64,
    /// Notifications the alerts topic sends each subscriber in a month.
    pub notifications_per_month: f64,
    /// Metrics Container Insights publishes for the cluster, the MongoDB service and the two task
    /// families (billed as custom metrics).
    pub container_insights_metrics: f64,
}

impl Default for Usage {
    fn default() -> Usage {
        Usage {
            data_gb: 10.0,
            daily_change_share: 0.02,
            mongo_log_gb_per_month: 1.0,
            app_log_gb_per_month: 1.0,
            migration_runs_per_month: 4.0,
            migration_hours: 0.5,
            migration_tasks: 1.0,
            ingest_run_minutes: 2.0,
            dump_run_minutes: 10.0,
            drill_run_minutes: 15.0,
            drops_gb: 20.0,
            s3_put_requests_per_month: 10_000.0,
            s3_get_requests_per_month: 50_000.0,
            notifications_per_month: 30.0,
            container_insights_metrics: 35.0,
        }
    }
}

impl Usage {
    /// Each key with its value, in declaration order (for the assumptions and the checks).
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("data_gb", self.data_gb),
            ("daily_change_share", self.daily_change_share),
            ("mongo_log_gb_per_month", self.mongo_log_gb_per_month),
            ("app_log_gb_per_month", self.app_log_gb_per_month),
            ("migration_runs_per_month", self.migration_runs_per_month),
            ("migration_hours", self.migration_hours),
            ("migration_tasks", self.migration_tasks),
            ("ingest_run_minutes", self.ingest_run_minutes),
            ("dump_run_minutes", self.dump_run_minutes),
            ("drill_run_minutes", self.drill_run_minutes),
            ("drops_gb", self.drops_gb),
            ("s3_put_requests_per_month", self.s3_put_requests_per_month),
            ("s3_get_requests_per_month", self.s3_get_requests_per_month),
            ("notifications_per_month", self.notifications_per_month),
            (
                "container_insights_metrics",
                self.container_insights_metrics,
            ),
        ]
    }
}

/// The roles `db-users` may grant: the database-level built-ins, nothing cluster-wide.
pub const DATABASE_ROLES: [&str; 5] = ["read", "readWrite", "dbAdmin", "userAdmin", "dbOwner"];

/// `network`: the VPC the tasks, the file system's mount targets and the namespace live in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `default` (the account's default VPC) or a VPC id (`vpc-…`).
    #[serde(default = "default_vpc")]
    pub vpc_id: String,
    /// Subnet ids (`subnet-…`) of that VPC; empty: all of its subnets.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Give the tasks public IPs (needed to pull images from a public subnet without a NAT).
    #[serde(default)]
    pub assign_public_ip: bool,
}

impl Default for Network {
    fn default() -> Network {
        Network {
            vpc_id: default_vpc(),
            subnets: Vec::new(),
            assign_public_ip: false,
        }
    }
}

fn default_vpc() -> String {
    "default".to_string()
}

/// `service_discovery`: names; both default from the project and environment.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceDiscovery {
    /// The private DNS namespace; default `<environment>.<project>.internal`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The service's name in it; default `mongo`.
    #[serde(default)]
    pub service: Option<String>,
}

/// `drops`: the bucket hcctl creates for the exports (`incoming/`) and what runs write
/// (`quarantine/`, `reports/`): encrypted, private, TLS only, versioned.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Drops {
    /// The bucket's name; default `<project>-<environment>-drops-<account id>` (bucket names are
    /// global).
    #[serde(default)]
    pub bucket: Option<String>,
    /// A customer-managed KMS key for the bucket's default encryption (default: SSE-S3).
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// Days after which objects under `quarantine/` and `reports/` expire (1-3650; default 30).
    #[serde(default = "default_outputs_expire_days")]
    pub outputs_expire_days: i32,
}

fn default_outputs_expire_days() -> i32 {
    30
}

impl Default for Drops {
    fn default() -> Drops {
        Drops {
            bucket: None,
            kms_key_arn: None,
            outputs_expire_days: default_outputs_expire_days(),
        }
    }
}

/// `ingest`: when `schedule` is set, deploy creates an EventBridge Scheduler schedule that runs the
/// app task definition with `ingest s3://<drops bucket>/incoming/`, under its own role.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// `rate(15 minutes)`, `cron(0/15 6-20 ? * MON-FRI *)`; absent: no schedule.
    #[serde(default)]
    pub schedule: Option<String>,
    /// The time zone `cron(…)` is read in (IANA name; default UTC).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The collection the scheduled runs load (default: ingest's own, `patients`).
    #[serde(default)]
    pub collection: Option<String>,
    /// Adopt this role for the schedule instead of creating `<project>-<environment>-scheduler`.
    #[serde(default)]
    pub iam_role_arn: Option<String>,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

impl Default for Ingest {
    fn default() -> Ingest {
        Ingest {
            schedule: None,
            timezone: default_timezone(),
            collection: None,
            iam_role_arn: None,
        }
    }
}

/// What a schedule runs on ECS: the app task with one of these commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    /// `ingest s3://<drops>/incoming/` (`ingest.schedule`).
    Ingest,
    /// `backup dump --to s3://<drops>/dumps/` (`backup.dumps.schedule`).
    Dump,
    /// `backup drill` of the newest dump (`backup.dumps.drill_schedule`).
    Drill,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Ingest, Job::Dump, Job::Drill];

    pub fn id(self) -> &'static str {
        match self {
            Job::Ingest => "ingest",
            Job::Dump => "dump",
            Job::Drill => "drill",
        }
    }

    /// The config key that schedules it.
    pub fn key(self) -> &'static str {
        match self {
            Job::Ingest => "ingest.schedule",
            Job::Dump => "backup.dumps.schedule",
            Job::Drill => "backup.dumps.drill_schedule",
        }
    }
}

/// What is wrong with a time zone name, if anything (IANA names: letters, digits, `/_+-`).
fn timezone_problem(tz: &str) -> Option<String> {
    let ok = !tz.is_empty()
        && tz.len() <= 50
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    (!ok).then(|| format!("'{tz}' is not a time zone name (like UTC or Europe/Paris)"))
}

/// What is wrong with a Scheduler expression, if anything: `rate(N unit)` with N ≥ 1 and the unit
/// singular for 1 (`rate(1 hour)`), `cron(…)` with six fields, or `at(yyyy-mm-ddThh:mm:ss)`.
pub fn schedule_expression_problem(e: &str) -> Option<String> {
    let inner = |prefix: &str| {
        e.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(rate) = inner("rate(") {
        let mut parts = rate.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Some(format!("'{e}': expected rate(N minutes|hours|days)"));
        };
        let Ok(n) = n.parse::<u32>() else {
            return Some(format!("'{e}': {n} is not a whole number"));
        };
        let ok = match n {
            0 => return Some(format!("'{e}': the rate must be at least 1")),
            1 => matches!(unit, "minute" | "hour" | "day"),
            _ => matches!(unit, "minutes" | "hours" | "days"),
        };
        return (!ok).then(|| {
            format!(
                "'{e}': the unit is minute, hour or day for 1, minutes, hours or days otherwise"
            )
        });
    }
    if let Some(cron) = inner("cron(") {
        let fields = cron.split_whitespace().count();
        return (fields != 6).then(|| {
            format!(
                "'{e}': a cron expression has 6 fields (minutes hours day-of-month month \
                 day-of-week year), this one has {fields}"
            )
        });
    }
    if let Some(at) = inner("at(") {
        let b = at.as_bytes();
        let shape = b.len() == 19
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                _ => c.is_ascii_digit(),
            });
        return (!shape).then(|| format!("'{e}': expected at(yyyy-mm-ddThh:mm:ss)"));
    }
    Some(format!(
        "'{e}': expected rate(15 minutes), cron(0/15 * * * ? *) or at(2026-12-31T23:00:00)"
    ))
}

/// `secrets`: the names of the secrets hcctl creates when they are missing (never overwritten).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManagedSecrets {
    /// MongoDB's root account, `{"username", "password"}`; default `<project>/<environment>/mongo-root`.
    #[serde(default)]
    pub root: Option<String>,
    /// The writer account, `{"username", "password", "uri"}`; default `…/mongo-writer`.
    #[serde(default)]
    pub writer: Option<String>,
    /// The reader account, as the writer's; default `…/mongo-reader`.
    #[serde(default)]
    pub reader: Option<String>,
    /// A customer-managed KMS key for the secrets (default: the AWS-managed key).
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// Days destroy leaves a secret recoverable (7-30; default 30).
    #[serde(default)]
    pub recovery_window_days: Option<i64>,
}

/// The secrets hcctl creates, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretRole {
    Root,
    Writer,
    Reader,
}

impl SecretRole {
    pub const ALL: [SecretRole; 3] = [SecretRole::Root, SecretRole::Writer, SecretRole::Reader];

    /// `root`, `writer`, `reader`: the config key and the account name.
    pub fn id(self) -> &'static str {
        match self {
            SecretRole::Root => "root",
            SecretRole::Writer => "writer",
            SecretRole::Reader => "reader",
        }
    }
}

/// The IAM roles the tasks and AWS Backup assume; hcctl creates each one the config does not
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleKind {
    /// ECS pulls the images, writes the logs and reads the secrets with it.
    Execution,
    /// The mongo container's: mounts the file system through its access point.
    MongoTask,
    /// The app container's.
    AppTask,
    /// AWS Backup's, for the selection.
    Backup,
    /// EventBridge Scheduler's, for the ingest schedule: starts the app's task (only when
    /// `ingest.schedule` is set).
    Scheduler,
}

impl RoleKind {
    pub const ALL: [RoleKind; 5] = [
        RoleKind::Execution,
        RoleKind::MongoTask,
        RoleKind::AppTask,
        RoleKind::Backup,
        RoleKind::Scheduler,
    ];

    /// `execution`, `mongo-task`, `app-task`, `backup`: the suffix of the role's name.
    pub fn id(self) -> &'static str {
        match self {
            RoleKind::Execution => "execution",
            RoleKind::MongoTask => "mongo-task",
            RoleKind::AppTask => "app-task",
            RoleKind::Backup => "backup",
            RoleKind::Scheduler => "scheduler",
        }
    }

    /// The config key that adopts an existing role instead.
    pub fn config_key(self) -> &'static str {
        match self {
            RoleKind::Execution => "ecs.execution_role_arn",
            RoleKind::MongoTask => "ecs.mongo_task_role_arn",
            RoleKind::AppTask => "ecs.task_role_arn",
            RoleKind::Backup => "backup.selection.iam_role_arn",
            RoleKind::Scheduler => "ingest.iam_role_arn",
        }
    }

    /// The service that assumes it.
    pub fn service(self) -> &'static str {
        match self {
            RoleKind::Backup => "backup.amazonaws.com",
            RoleKind::Scheduler => "scheduler.amazonaws.com",
            _ => "ecs-tasks.amazonaws.com",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ecs {
    pub cluster: String,
    /// Role ECS uses to pull images, write logs and read the secrets; absent: hcctl creates
    /// `<project>-<environment>-execution`.
    #[serde(default)]
    pub execution_role_arn: Option<String>,
    /// Role the app container runs with; absent: hcctl creates `…-app-task`.
    #[serde(default)]
    pub task_role_arn: Option<String>,
    /// Role the mongo container runs with; absent: hcctl creates `…-mongo-task`.
    #[serde(default)]
    pub mongo_task_role_arn: Option<String>,
    /// The ECS service that runs MongoDB; default `<project>-<environment>-mongo`.
    #[serde(default)]
    pub service: Option<String>,
    /// Directory of the task definition templates (`mongo.json`, `app.json`), relative to this
    /// file. Default: `../task-definitions`.
    #[serde(default)]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Containers {
    pub mongo: Container,
    pub app: Container,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub image: String,
    /// CPU units (1024 = one vCPU); also the Fargate task size.
    pub cpu: u32,
    /// MiB; also the Fargate task size.
    pub memory: u32,
    #[serde(default)]
    pub port: Option<u16>,
    /// Plain settings. Names that look like credentials are refused: use `secrets`.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Variable name → ARN of a Secrets Manager secret or SSM parameter.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub command: Vec<String>,
    /// Where the container's persistent data lives (the MongoDB data directory).
    #[serde(default)]
    pub volume: Option<Volume>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    /// An existing EFS file system to adopt; absent: hcctl creates one (encrypted, TLS only).
    #[serde(default)]
    pub efs_file_system_id: Option<String>,
    /// The customer-managed KMS key of the file system hcctl creates (default: AWS-managed).
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    pub container_path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogGroups {
    pub mongo: LogGroup,
    pub app: LogGroup,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogGroup {
    pub name: String,
    pub retention_days: u32,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub vault: Vault,
    pub plan: BackupPlan,
    pub selection: Selection,
    /// Logical dumps on a schedule (`backup dump` into the drops bucket's `dumps/`), and
    /// optionally a restore drill of the newest one; absent: none scheduled.
    #[serde(default)]
    pub dumps: Option<Dumps>,
    /// The thresholds of `hcctl backup audit`.
    #[serde(default)]
    pub audit: Audit,
}

/// `backup.dumps`: EventBridge Scheduler runs the app task with `backup dump --to
/// s3://<drops bucket>/dumps/` (and, with `drill_schedule`, `backup drill` of the newest dump,
/// its report under `drills/`); the bucket keeps them `retention_days`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dumps {
    /// `cron(0 2 * * ? *)`, `rate(12 hours)`: when the dump runs.
    pub schedule: String,
    /// When the restore drill runs (absent: no drill is scheduled).
    #[serde(default)]
    pub drill_schedule: Option<String>,
    /// The time zone `cron(…)` is read in (IANA name; default UTC).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Days a dump (and a drill report) is kept; one deleted or overwritten stays recoverable
    /// (a noncurrent version of the versioned bucket) as long (1-3650; default 35).
    #[serde(default = "default_dump_retention_days")]
    pub retention_days: i32,
}

fn default_dump_retention_days() -> i32 {
    35
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Vault {
    pub name: String,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupPlan {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// `cron(...)` with six fields, as AWS Backup takes it (AWS Backup has no `rate(...)`).
    pub schedule: String,
    #[serde(default = "default_start_window")]
    pub start_window_minutes: i64,
    #[serde(default = "default_completion_window")]
    pub completion_window_minutes: i64,
    pub delete_after_days: i64,
    #[serde(default)]
    pub cold_storage_after_days: Option<i64>,
    /// Copies of each recovery point to other vaults (another region, another account): the
    /// rule's copy actions.
    #[serde(default)]
    pub copy_to: Vec<CopyTo>,
}

/// One copy action of a backup rule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CopyTo {
    /// The destination vault (`arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME`).
    pub vault_arn: String,
    /// Days the copy is kept (default: as long as AWS Backup keeps it, i.e. forever).
    #[serde(default)]
    pub delete_after_days: Option<i64>,
    /// Days after which the copy moves to cold storage.
    #[serde(default)]
    pub cold_storage_after_days: Option<i64>,
}

/// `backup.audit`: the thresholds `hcctl backup audit` judges the posture against.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// `plan-min-frequency`: some rule runs at least this often.
    pub max_interval_hours: i64,
    /// `plan-min-retention`: every rule keeps its recovery points at least this long.
    pub min_retention_days: i64,
}

impl Default for Audit {
    fn default() -> Audit {
        Audit {
            max_interval_hours: 24,
            min_retention_days: 35,
        }
    }
}

fn default_start_window() -> i64 {
    60
}

fn default_completion_window() -> i64 {
    180
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub name: String,
    /// The role AWS Backup assumes; absent: hcctl creates `<project>-<environment>-backup`.
    #[serde(default)]
    pub iam_role_arn: Option<String>,
    /// More resources to protect, besides the file system the config deploys (always included).
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub tag_conditions: BTreeMap<String, String>,
    /// Also protect the drops bucket (its exports, dumps and drill reports) with the plan: AWS
    /// Backup for S3 (the bucket is versioned, as S3 backups require).
    #[serde(default)]
    pub drops_bucket: bool,
}

impl Config {
    /// Read, substitute `${VAR}` from the process environment, deserialize and validate.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the config {}: {e} (give another file with --config)",
                path.display()
            ))
        })?;
        Config::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`], with `KEY=VALUE` settings put over the file first (`hcctl cost --set`):
    /// a dotted key (`containers.mongo.cpu`, `backup.plan.rules[0].delete_after_days`,
    /// `cost.data_gb`), a YAML value. The result is checked like the file itself.
    pub fn load_with(path: &Path, sets: &[String]) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the config {}: {e} (give another file with --config)",
                path.display()
            ))
        })?;
        Config::parse_with(&text, path, &|name| std::env::var(name).ok(), sets)
    }

    /// [`Config::load`] on text, with the environment given as a lookup (tests pass their own).
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        Config::parse_with(text, path, env, &[])
    }

    /// [`Config::parse`] with `KEY=VALUE` settings (see [`Config::load_with`]).
    pub fn parse_with(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        sets: &[String],
    ) -> Result<Config, Error> {
        let file = path.display();
        let mut tree: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::usage(format!("{file}: not valid YAML: {e}")))?;
        for set in sets {
            set_value(&mut tree, set).map_err(|e| Error::usage(format!("--set {set}: {e}")))?;
        }
        let mut found = Substituted::default();
        substitute(&mut tree, &mut String::new(), env, &mut found);
        let unset = &found.unset;
        if !unset.is_empty() {
            let mut by_var: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (var, key) in unset {
                by_var.entry(var).or_default().push(key);
            }
            let list: Vec<String> = by_var
                .iter()
                .map(|(var, keys)| {
                    let shown = keys.iter().take(2).copied().collect::<Vec<_>>().join(", ");
                    match keys.len() {
                        0..=2 => format!("${{{var}}} (at {shown})"),
                        n => format!("${{{var}}} (at {shown} and {} more)", n - 2),
                    }
                })
                .collect();
            return Err(Error::usage(format!(
                "{file}: environment variable{} not set: {} (export {} or remove the reference)",
                if by_var.len() == 1 { "" } else { "s" },
                list.join("; "),
                if by_var.len() == 1 { "it" } else { "them" }
            )));
        }
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            if found.substituted_at(&key) {
                // The value may be a secret (a password set as ${VAR} by mistake): say what is
                // wrong with it without showing it.
                Error::usage(format!(
                    "{file}: {key}: {} (the value comes from the environment and is not shown)",
                    found.hide(&hide_values(&e.inner().to_string()))
                ))
            } else {
                Error::usage(format!(
                    "{file}: {key}: {}",
                    found.hide(&e.inner().to_string())
                ))
            }
        })?;
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(Error::usage(found.hide(&format!(
                "{file}: {}",
                problems.join(&format!("\n{file}: "))
            ))));
        }
        Ok(config)
    }

    /// Every rule the values break, as "key: what is wrong (what is expected)".
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        name_check(
            &mut p,
            "project",
            &self.project,
            1,
            32,
            "letters, digits and -",
        );
        name_check(
            &mut p,
            "environment",
            &self.environment,
            1,
            16,
            "letters, digits and -",
        );
        if let Some(region) = &self.region {
            let parts: Vec<&str> = region.split('-').collect();
            let valid = parts.len() >= 3
                && parts.iter().all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !valid {
                p.push(format!(
                    "region: '{region}' is not an AWS region name (e.g. eu-west-3)"
                ));
            }
        }
        name_check(
            &mut p,
            "ecs.cluster",
            &self.ecs.cluster,
            1,
            255,
            "letters, digits, - and _",
        );
        for role in RoleKind::ALL {
            if let Some(arn) = self.adopted_role(role) {
                arn_check(&mut p, role.config_key(), arn, "iam", ":role/");
            }
        }
        if let Some(name) = &self.ecs.service {
            name_check(
                &mut p,
                "ecs.service",
                name,
                1,
                255,
                "letters, digits, - and _",
            );
        }
        network_problems(&mut p, &self.network);
        if let Some(a) = &self.alerts {
            alerts_problems(&mut p, a, &self.alerts_topic());
        }
        let ns = self.namespace();
        let labels_ok = ns.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
        if ns.len() > 253 || !ns.contains('.') || !labels_ok {
            p.push(format!(
                "service_discovery.namespace: '{ns}' is not a DNS name of two labels or more \
                 (letters, digits and -, e.g. dev.hcctl.internal)"
            ));
        }
        let service = self.discovery_service();
        if service.is_empty()
            || service.len() > 63
            || !service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            p.push(format!(
                "service_discovery.service: '{service}' is not a DNS label (letters, digits and -)"
            ));
        }
        for role in SecretRole::ALL {
            let name = self.secret_name(role);
            let ok = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
            if name.is_empty() || name.len() > 512 || !ok {
                p.push(format!(
                    "secrets.{}: '{name}' is not a secret name (1-512 of letters, digits and /_+=.@-)",
                    role.id()
                ));
            }
        }
        if let Some(k) = &self.secrets.kms_key_arn {
            arn_check(&mut p, "secrets.kms_key_arn", k, "kms", ":key/");
        }
        if let Some(days) = self.secrets.recovery_window_days {
            if !(7..=30).contains(&days) {
                p.push(format!(
                    "secrets.recovery_window_days: {days} is outside Secrets Manager's 7-30 days"
                ));
            }
        }
        for (name, c) in [
            ("mongo", &self.containers.mongo),
            ("app", &self.containers.app),
        ] {
            container_problems(&mut p, &format!("containers.{name}"), c);
        }
        if self.containers.mongo.volume.is_none() {
            p.push(
                "containers.mongo.volume: missing (the MongoDB data must live on a volume: \
                 name and container_path; efs_file_system_id to adopt a file system)"
                    .to_string(),
            );
        }
        for (name, g) in [
            ("mongo", &self.log_groups.mongo),
            ("app", &self.log_groups.app),
        ] {
            let key = format!("log_groups.{name}");
            let valid = g
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
            if g.name.is_empty() || g.name.len() > 512 || !valid {
                p.push(format!(
                    "{key}.name: '{}' is not a log group name (1-512 of letters, digits, . _ - / #)",
                    g.name
                ));
            } else if g.name.starts_with("aws/") {
                p.push(format!(
                    "{key}.name: '{}': names starting with aws/ are reserved for AWS services",
                    g.name
                ));
            }
            if !RETENTION_DAYS.contains(&g.retention_days) {
                p.push(format!(
                    "{key}.retention_days: {} is not a CloudWatch retention value ({})",
                    g.retention_days,
                    join(&RETENTION_DAYS)
                ));
            }
            if let Some(arn) = &g.kms_key_arn {
                arn_check(&mut p, &format!("{key}.kms_key_arn"), arn, "kms", ":key/");
            }
        }
        if self.log_groups.mongo.name == self.log_groups.app.name {
            p.push("log_groups: mongo and app must have different names".to_string());
        }
        let b = &self.backup;
        name_check(
            &mut p,
            "backup.vault.name",
            &b.vault.name,
            2,
            50,
            "letters, digits, - and _",
        );
        if let Some(arn) = &b.vault.kms_key_arn {
            arn_check(&mut p, "backup.vault.kms_key_arn", arn, "kms", ":key/");
        }
        name_check(
            &mut p,
            "backup.plan.name",
            &b.plan.name,
            1,
            50,
            "letters, digits, - and _",
        );
        if b.plan.rules.is_empty() {
            p.push("backup.plan.rules: at least one rule is needed".to_string());
        }
        let mut rule_names = Vec::new();
        for (i, r) in b.plan.rules.iter().enumerate() {
            rule_problems(&mut p, &format!("backup.plan.rules[{i}]"), r);
            if rule_names.contains(&&r.name) {
                p.push(format!(
                    "backup.plan.rules[{i}].name: '{}' is used twice",
                    r.name
                ));
            }
            rule_names.push(&r.name);
        }
        let s = &b.selection;
        name_check(
            &mut p,
            "backup.selection.name",
            &s.name,
            1,
            50,
            "letters, digits, - and _",
        );
        for (i, arn) in s.resources.iter().enumerate() {
            if !arn.starts_with("arn:") && arn != "*" {
                p.push(format!(
                    "backup.selection.resources[{i}]: '{arn}' is not an ARN (arn:aws:…)"
                ));
            }
        }
        if let Some(d) = &self.database {
            name_check(
                &mut p,
                "database.name",
                &d.name,
                1,
                63,
                "letters, digits, - and _",
            );
            for (i, a) in d.accounts.iter().enumerate() {
                let key = format!("database.accounts[{i}]");
                name_check(
                    &mut p,
                    &format!("{key}.name"),
                    &a.name,
                    1,
                    64,
                    "letters, digits, - and _",
                );
                if a.password_env.is_some() == a.password_file.is_some() {
                    p.push(format!(
                        "{key}: give exactly one of password_env or password_file"
                    ));
                }
                if a.roles.is_empty() {
                    p.push(format!("{key}.roles: at least one role"));
                }
                for r in &a.roles {
                    if !DATABASE_ROLES.contains(&r.as_str()) {
                        p.push(format!(
                            "{key}.roles: '{r}' is not one of {} (database roles only)",
                            DATABASE_ROLES.join(", ")
                        ));
                    }
                }
            }
        }
        if let Some(bucket) = &self.drops.bucket {
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
                && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid {
                p.push(format!(
                    "drops.bucket: '{bucket}' is not an S3 bucket name (3-63 lowercase letters, \
                     digits, '-' and '.', starting and ending with a letter or digit)"
                ));
            }
        }
        if let Some(k) = &self.drops.kms_key_arn {
            arn_check(&mut p, "drops.kms_key_arn", k, "kms", ":key/");
        }
        if !(1..=3650).contains(&self.drops.outputs_expire_days) {
            p.push(format!(
                "drops.outputs_expire_days: {} (expected 1 to 3650)",
                self.drops.outputs_expire_days
            ));
        }
        if self.backup.audit.max_interval_hours < 1 {
            p.push(format!(
                "backup.audit.max_interval_hours: {} (expected 1 or more)",
                self.backup.audit.max_interval_hours
            ));
        }
        if self.backup.audit.min_retention_days < 1 {
            p.push(format!(
                "backup.audit.min_retention_days: {} (expected 1 or more)",
                self.backup.audit.min_retention_days
            ));
        }
        for (key, value) in self.cost.entries() {
            // A billion GB, runs or requests is beyond any estimate this makes sense for.
            if !value.is_finite() || !(0.0..=1e9).contains(&value) {
                p.push(format!(
                    "cost.{key}: {value} (expected a number from 0 to 1,000,000,000)"
                ));
            }
        }
        if self.cost.daily_change_share > 1.0 {
            p.push(format!(
                "cost.daily_change_share: {} (expected a share from 0 to 1, e.g. 0.02 for 2%)",
                self.cost.daily_change_share
            ));
        }
        if let Some(e) = &self.ingest.schedule {
            if let Some(problem) = schedule_expression_problem(e) {
                p.push(format!("ingest.schedule: {problem}"));
            }
        }
        if let Some(problem) = timezone_problem(&self.ingest.timezone) {
            p.push(format!("ingest.timezone: {problem}"));
        }
        if let Some(c) = &self.ingest.collection {
            if c.is_empty() || c.starts_with("system.") || c.contains('$') || c.contains('\0') {
                p.push(format!("ingest.collection: '{c}' is not a collection name"));
            }
        }
        if self.ingest.schedule.is_none() && self.ingest.collection.is_some() {
            p.push(
                "ingest: collection applies to the schedule: set ingest.schedule (for example \
                 rate(15 minutes)) or remove it"
                    .to_string(),
            );
        }
        if self.jobs().is_empty() && self.ingest.iam_role_arn.is_some() {
            p.push(
                "ingest.iam_role_arn is the role of the schedules: set ingest.schedule or \
                 backup.dumps, or remove it"
                    .to_string(),
            );
        }
        if let Some(d) = &self.backup.dumps {
            for (key, e) in [
                ("schedule", Some(&d.schedule)),
                ("drill_schedule", d.drill_schedule.as_ref()),
            ] {
                if let Some(problem) = e.and_then(|e| schedule_expression_problem(e)) {
                    p.push(format!("backup.dumps.{key}: {problem}"));
                }
            }
            if let Some(problem) = timezone_problem(&d.timezone) {
                p.push(format!("backup.dumps.timezone: {problem}"));
            }
            if !(1..=3650).contains(&d.retention_days) {
                p.push(format!(
                    "backup.dumps.retention_days: {} (expected 1 to 3650)",
                    d.retention_days
                ));
            }
        }
        tag_problems(&mut p, &self.tags);
        p
    }

    /// The drops bucket: configured, or `<project>-<environment>-drops-<account>` (lowercase).
    pub fn drops_bucket(&self, account: &str) -> String {
        self.drops.bucket.clone().unwrap_or_else(|| {
            format!("{}-{}-drops-{account}", self.project, self.environment).to_ascii_lowercase()
        })
    }

    /// The task definition family of a container: `<project>-<environment>-<name>`.
    pub fn family(&self, container: &str) -> String {
        format!("{}-{}-{}", self.project, self.environment, container)
    }

    /// `<project>-<environment>-<suffix>`: how hcctl names what it creates.
    pub fn resource_name(&self, suffix: &str) -> String {
        format!("{}-{}-{}", self.project, self.environment, suffix)
    }

    /// The role ARN the config adopts for `role`, if any.
    pub fn adopted_role(&self, role: RoleKind) -> Option<&str> {
        match role {
            RoleKind::Execution => self.ecs.execution_role_arn.as_deref(),
            RoleKind::MongoTask => self.ecs.mongo_task_role_arn.as_deref(),
            RoleKind::AppTask => self.ecs.task_role_arn.as_deref(),
            RoleKind::Backup => self.backup.selection.iam_role_arn.as_deref(),
            RoleKind::Scheduler => self.ingest.iam_role_arn.as_deref(),
        }
    }

    /// Whether this config needs `role` at all: the scheduler's only with a schedule.
    pub fn uses_role(&self, role: RoleKind) -> bool {
        role != RoleKind::Scheduler || !self.jobs().is_empty()
    }

    /// The scheduled jobs the config asks for, in [`Job::ALL`]'s order.
    pub fn jobs(&self) -> Vec<Job> {
        Job::ALL
            .into_iter()
            .filter(|j| self.job_schedule(*j).is_some())
            .collect()
    }

    /// A job's expression and time zone, when the config schedules it.
    pub fn job_schedule(&self, job: Job) -> Option<(&str, &str)> {
        match job {
            Job::Ingest => self
                .ingest
                .schedule
                .as_deref()
                .map(|e| (e, self.ingest.timezone.as_str())),
            Job::Dump => self
                .backup
                .dumps
                .as_ref()
                .map(|d| (d.schedule.as_str(), d.timezone.as_str())),
            Job::Drill => self.backup.dumps.as_ref().and_then(|d| {
                d.drill_schedule
                    .as_deref()
                    .map(|e| (e, d.timezone.as_str()))
            }),
        }
    }

    /// The roles this config uses, in [`RoleKind::ALL`]'s order.
    pub fn roles(&self) -> Vec<RoleKind> {
        RoleKind::ALL
            .into_iter()
            .filter(|r| self.uses_role(*r))
            .collect()
    }

    /// The schedule deploy creates for `job`: `<project>-<environment>-<job>`.
    /// The alerts topic's name.
    pub fn alerts_topic(&self) -> String {
        self.alerts
            .as_ref()
            .and_then(|a| a.topic.clone())
            .unwrap_or_else(|| self.resource_name("alerts"))
    }

    pub fn schedule_name(&self, job: Job) -> String {
        self.resource_name(job.id())
    }

    /// The name of the role hcctl creates for `role` (when the config adopts none).
    pub fn role_name(&self, role: RoleKind) -> String {
        self.resource_name(role.id())
    }

    /// The name of a secret hcctl creates when missing.
    pub fn secret_name(&self, role: SecretRole) -> String {
        let configured = match role {
            SecretRole::Root => &self.secrets.root,
            SecretRole::Writer => &self.secrets.writer,
            SecretRole::Reader => &self.secrets.reader,
        };
        configured
            .clone()
            .unwrap_or_else(|| format!("{}/{}/mongo-{}", self.project, self.environment, role.id()))
    }

    /// The Cloud Map namespace: configured, or `<environment>.<project>.internal`.
    pub fn namespace(&self) -> String {
        self.service_discovery
            .namespace
            .clone()
            .unwrap_or_else(|| format!("{}.{}.internal", self.environment, self.project))
    }

    /// MongoDB's name in the namespace: configured, or `mongo`.
    pub fn discovery_service(&self) -> String {
        self.service_discovery
            .service
            .clone()
            .unwrap_or_else(|| "mongo".to_string())
    }

    /// The host name the app reaches MongoDB at: `mongo.<namespace>`.
    pub fn mongo_host(&self) -> String {
        format!("{}.{}", self.discovery_service(), self.namespace())
    }

    /// The ECS service that runs MongoDB.
    pub fn service_name(&self) -> String {
        self.ecs
            .service
            .clone()
            .unwrap_or_else(|| self.resource_name("mongo"))
    }

    /// The database the app's accounts live in: `database.name`, else the mongo container's
    /// `MONGO_INITDB_DATABASE`, else `healthcare`.
    pub fn database_name(&self) -> String {
        self.database
            .as_ref()
            .map(|d| d.name.clone())
            .or_else(|| {
                self.containers
                    .mongo
                    .environment
                    .get("MONGO_INITDB_DATABASE")
                    .cloned()
            })
            .unwrap_or_else(|| "healthcare".to_string())
    }

    /// The file system the config adopts, if any.
    pub fn adopted_file_system(&self) -> Option<&str> {
        self.containers
            .mongo
            .volume
            .as_ref()
            .and_then(|v| v.efs_file_system_id.as_deref())
    }
}

fn network_problems(p: &mut Vec<String>, n: &Network) {
    let id_ok = |id: &str, prefix: &str| {
        id.strip_prefix(prefix).is_some_and(|hex| {
            (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit())
        })
    };
    if n.vpc_id != "default" && !id_ok(&n.vpc_id, "vpc-") {
        p.push(format!(
            "network.vpc_id: '{}' is neither 'default' nor a VPC id (vpc-…)",
            n.vpc_id
        ));
    }
    for (i, s) in n.subnets.iter().enumerate() {
        if !id_ok(s, "subnet-") {
            p.push(format!(
                "network.subnets[{i}]: '{s}' is not a subnet id (subnet-…)"
            ));
        }
        if n.subnets[..i].contains(s) {
            p.push(format!("network.subnets[{i}]: '{s}' is listed twice"));
        }
    }
}

fn container_problems(p: &mut Vec<String>, key: &str, c: &Container) {
    if c.image.trim().is_empty() {
        p.push(format!(
            "{key}.image: empty (an image reference such as mongo:7.0)"
        ));
    }
    if !fargate_size_ok(c.cpu, c.memory) {
        p.push(format!(
            "{key}: cpu {} with memory {} MiB is not a Fargate task size (e.g. cpu 256 with \
             512-2048, 512 with 1024-4096, 1024 with 2048-8192 in steps of 1024)",
            c.cpu, c.memory
        ));
    }
    if c.port == Some(0) {
        p.push(format!("{key}.port: 0 is not a port"));
    }
    for (i, arg) in c.command.iter().enumerate() {
        if carries_credentials(arg) {
            // e.g. `--uri mongodb://writer:…@mongo`: plaintext in the task definition. Never shown.
            p.push(format!(
                "{key}.command[{i}]: a URL with a user and password in it \
                 (scheme://user:password@host) would be plaintext in the task definition; \
                 store it in Secrets Manager and name it in {key}.secrets (HCCTL_MONGODB_URI \
                 for hcctl's own --uri)"
            ));
        }
    }
    for (name, value) in &c.environment {
        if carries_credentials(value) {
            // The value itself is never shown: it holds a password.
            p.push(format!(
                "{key}.environment.{name}: the value is a URL with a user and password in it \
                 (scheme://user:password@host); store it in Secrets Manager and name it in \
                 {key}.secrets"
            ));
        } else if looks_secret(name) {
            p.push(format!(
                "{key}.environment.{name}: looks like a credential; move it to {key}.secrets \
                 as the ARN of a Secrets Manager secret or SSM parameter"
            ));
        }
        if c.secrets.contains_key(name) {
            p.push(format!(
                "{key}.environment.{name}: also in secrets; keep one"
            ));
        }
    }
    for (name, arn) in &c.secrets {
        let kind_ok = arn_service(arn).is_some_and(|s| s == "secretsmanager" || s == "ssm");
        if !kind_ok {
            p.push(format!(
                "{key}.secrets.{name}: expected the ARN of a Secrets Manager secret or SSM \
                 parameter (arn:aws:secretsmanager:… or arn:aws:ssm:…), not a value"
            ));
        }
    }
    if let Some(v) = &c.volume {
        if v.name.is_empty() || !v.container_path.starts_with('/') {
            p.push(format!(
                "{key}.volume: needs a name and an absolute container_path"
            ));
        }
        if let Some(id) = &v.efs_file_system_id {
            if !id.starts_with("fs-") {
                p.push(format!(
                    "{key}.volume.efs_file_system_id: '{id}' is not an EFS file system id (fs-…)"
                ));
            }
        }
        if let Some(k) = &v.kms_key_arn {
            arn_check(p, &format!("{key}.volume.kms_key_arn"), k, "kms", ":key/");
            if v.efs_file_system_id.is_some() {
                p.push(format!(
                    "{key}.volume: kms_key_arn applies to the file system hcctl creates; an \
                     adopted one (efs_file_system_id) keeps its own key"
                ));
            }
        }
    }
}

/// The rules every service hcctl tags agrees on (ECS, CloudWatch Logs, AWS Backup): at most 50
/// tags; keys of 1-128 and values of 0-256 characters, both of letters, digits, spaces and
/// `_ . : / = + - @`; the prefix `aws:` (in any letter case) reserved for AWS in keys and values.
fn tag_problems(p: &mut Vec<String>, tags: &BTreeMap<String, String>) {
    const MAX_TAGS: usize = 50;
    if tags.len() > MAX_TAGS {
        p.push(format!(
            "tags: {} tags; AWS allows at most {MAX_TAGS} per resource",
            tags.len()
        ));
    }
    let reserved = |s: &str| {
        s.get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
    };
    for (k, v) in tags {
        let key_len = k.chars().count();
        if key_len == 0 || key_len > 128 || !tag_text_ok(k) {
            p.push(format!(
                "tags.{k}: a tag key is 1-128 characters of letters, digits, spaces and _ . : / = + - @"
            ));
        }
        if v.chars().count() > 256 || !tag_text_ok(v) {
            p.push(format!(
                "tags.{k}: '{v}' is not a tag value (at most 256 characters of letters, digits, \
                 spaces and _ . : / = + - @; write e.g. 'R and D - oncology' for 'R&D (oncology)')"
            ));
        }
        if reserved(k) || reserved(v) {
            p.push(format!(
                "tags.{k}: the prefix aws: (in any letter case) is reserved for AWS in tag keys and values"
            ));
        }
    }
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, the tag pattern of the AWS models: letters, separators and
/// numbers by their Unicode general category (a combining mark is none of them: `हिंदी` is
/// refused, as AWS refuses it).
fn tag_text_ok(s: &str) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    s.chars().all(|c| {
        "_.:/=+-@".contains(c)
            || matches!(
                c.general_category_group(),
                GeneralCategoryGroup::Letter
                    | GeneralCategoryGroup::Number
                    | GeneralCategoryGroup::Separator
            )
    })
}

fn rule_problems(p: &mut Vec<String>, key: &str, r: &Rule) {
    name_check(
        p,
        &format!("{key}.name"),
        &r.name,
        1,
        50,
        "letters, digits, - and _",
    );
    let s = r.schedule.trim();
    let fields = s
        .strip_prefix("cron(")
        .and_then(|b| b.strip_suffix(')'))
        .map(|b| b.split_whitespace().count());
    if s.starts_with("rate(") {
        p.push(format!(
            "{key}.schedule: '{}': AWS Backup takes only cron expressions (its model's \
             ScheduleExpression is a CronExpression); write e.g. cron(0 */12 * * ? *) for every 12 hours",
            r.schedule
        ));
    } else if fields != Some(6) {
        p.push(format!(
            "{key}.schedule: '{}' is not a cron expression of six fields \
             (minutes hours day-of-month month day-of-week year, e.g. cron(0 3 * * ? *))",
            r.schedule
        ));
    }
    // AWS Backup's maximum for the windows and the lifecycle: 100 years.
    const MAX_MINUTES: i64 = 52_560_000;
    const MAX_DAYS: i64 = 36_500;
    if r.start_window_minutes < 60 {
        p.push(format!(
            "{key}.start_window_minutes: {} is below AWS Backup's minimum of 60",
            r.start_window_minutes
        ));
    }
    for (name, value) in [
        ("start_window_minutes", r.start_window_minutes),
        ("completion_window_minutes", r.completion_window_minutes),
    ] {
        if value > MAX_MINUTES {
            p.push(format!(
                "{key}.{name}: {value} is above AWS Backup's maximum of {MAX_MINUTES} (100 years)"
            ));
        }
    }
    for (name, value) in [
        ("delete_after_days", Some(r.delete_after_days)),
        ("cold_storage_after_days", r.cold_storage_after_days),
    ] {
        if let Some(value) = value.filter(|v| *v > MAX_DAYS) {
            p.push(format!(
                "{key}.{name}: {value} is above AWS Backup's maximum of {MAX_DAYS} (100 years)"
            ));
        }
    }
    if r.completion_window_minutes < r.start_window_minutes.saturating_add(60) {
        p.push(format!(
            "{key}.completion_window_minutes: {} must be at least start_window_minutes + 60",
            r.completion_window_minutes
        ));
    }
    if r.delete_after_days < 1 {
        p.push(format!("{key}.delete_after_days: must be at least 1"));
    }
    if let Some(cold) = r.cold_storage_after_days {
        if cold < 1 || r.delete_after_days < cold.saturating_add(90) {
            p.push(format!(
                "{key}: cold_storage_after_days {cold} needs delete_after_days at least 90 days \
                 later (AWS keeps cold storage 90 days minimum)"
            ));
        }
    }
    let mut vaults = Vec::new();
    for (i, c) in r.copy_to.iter().enumerate() {
        let key = format!("{key}.copy_to[{i}]");
        arn_check(
            p,
            &format!("{key}.vault_arn"),
            &c.vault_arn,
            "backup",
            ":backup-vault:",
        );
        if vaults.contains(&&c.vault_arn) {
            p.push(format!("{key}.vault_arn: '{}' is named twice", c.vault_arn));
        }
        vaults.push(&c.vault_arn);
        for (name, value) in [
            ("delete_after_days", c.delete_after_days),
            ("cold_storage_after_days", c.cold_storage_after_days),
        ] {
            if let Some(v) = value.filter(|v| *v < 1 || *v > MAX_DAYS) {
                p.push(format!("{key}.{name}: {v} (expected 1 to {MAX_DAYS})"));
            }
        }
        if let (Some(cold), Some(delete)) = (c.cold_storage_after_days, c.delete_after_days) {
            if delete < cold.saturating_add(90) {
                p.push(format!(
                    "{key}: cold_storage_after_days {cold} needs delete_after_days at least 90 \
                     days later (AWS keeps cold storage 90 days minimum)"
                ));
            }
        }
    }
}

fn alerts_problems(p: &mut Vec<String>, a: &Alerts, topic: &str) {
    name_check(p, "alerts.topic", topic, 1, 256, "letters, digits, - and _");
    if let Some(k) = &a.kms_key_arn {
        arn_check(p, "alerts.kms_key_arn", k, "kms", ":key/");
    }
    for (i, e) in a.email.iter().enumerate() {
        let ok = e.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
        }) && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            p.push(format!("alerts.email[{i}]: '{e}' is not an email address"));
        }
    }
    for (i, u) in a.https.iter().enumerate() {
        let rest = u.strip_prefix("https://").unwrap_or_default();
        if rest.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
            p.push(format!(
                "alerts.https[{i}]: '{u}' is not an https:// URL (alerts never travel over plain HTTP)"
            ));
        }
    }
    let mut all: Vec<&String> = a.email.iter().chain(&a.https).collect();
    all.sort();
    if all.windows(2).any(|w| w[0] == w[1]) {
        p.push("alerts: an endpoint is listed twice".to_string());
    }
    let t = &a.thresholds;
    for (key, v) in [
        ("mongo_cpu_percent", t.mongo_cpu_percent),
        ("mongo_memory_percent", t.mongo_memory_percent),
    ] {
        if !(v > 0.0 && v <= 100.0) {
            p.push(format!(
                "alerts.thresholds.{key}: {v} is not a percentage (0-100]"
            ));
        }
    }
    if !(0.0..1.0).contains(&t.rejected_share) {
        p.push(format!(
            "alerts.thresholds.rejected_share: {} is not a share of rows in [0, 1) (0.05 = 5%)",
            t.rejected_share
        ));
    }
    if t.backup_grace_hours > 168 {
        p.push(format!(
            "alerts.thresholds.backup_grace_hours: {} is more than a week",
            t.backup_grace_hours
        ));
    }
}

fn name_check(p: &mut Vec<String>, key: &str, value: &str, min: usize, max: usize, allowed: &str) {
    let chars_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || (c == '_' && allowed.contains('_')));
    if value.len() < min || value.len() > max || !chars_ok {
        p.push(format!(
            "{key}: '{value}' must be {min}-{max} characters of {allowed}"
        ));
    }
}

fn arn_check(p: &mut Vec<String>, key: &str, arn: &str, service: &str, contains: &str) {
    if arn_service(arn) != Some(service) || !arn.contains(contains) {
        p.push(format!(
            "{key}: '{arn}' is not an ARN of the form arn:aws:{service}:…{contains}…"
        ));
    }
}

/// `arn:PARTITION:SERVICE:…` → SERVICE.
fn arn_service(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(4, ':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    let service = parts.next()?;
    parts.next()?;
    Some(service)
}

/// Environment variable names that should have been secrets: a credential phrase anywhere in
/// the name, or a word of it (split at `_`, `-` and `.`) that names one (`DB_PASS`,
/// `MONGO_URL`, `SENTRY_DSN`).
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    const PHRASES: [&str; 9] = [
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "API_KEY",
        "CREDENTIAL",
    ];
    // Whole words only: PASS in DB_PASS, not in PASSENGER_COUNT or BYPASS_CACHE.
    const WORDS: [&str; 10] = [
        "KEY", "PASS", "PWD", "PW", "AUTH", "DSN", "CERT", "COOKIE", "SESSION", "JWT",
    ];
    let words: Vec<&str> = n.split(['_', '-', '.']).collect();
    let has = |w: &str| words.contains(&w);
    // A KMS key's id or ARN names the key; it is no key material (HCCTL_SSE_KMS_KEY_ID).
    if n.ends_with("KMS_KEY_ID") || n.ends_with("KMS_KEY_ARN") {
        return false;
    }
    PHRASES.iter().any(|p| n.contains(p))
        || WORDS.iter().any(|w| has(w))
        // A database connection string carries its credentials.
        || (has("URI") || has("URL"))
            && (n.contains("MONGO") || has("DB") || has("DATABASE"))
}

/// Whether an environment value carries credentials in clear: a URL with a password in its
/// user information (`scheme://user:password@host`), whatever the variable is called.
pub fn carries_credentials(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    // The authority ends at the first '/', '?' or '#' after the last '@' that precedes them;
    // a password may itself contain '/', so look for '@' up to the end of the authority-ish part.
    let authority_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => authority[..at].contains(':'),
        None => false,
    }
}

fn fargate_size_ok(cpu: u32, memory: u32) -> bool {
    let gib = |g: u32| g * 1024;
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (gib(1)..=gib(4)).contains(&memory) && memory.is_multiple_of(1024),
        1024 => (gib(2)..=gib(8)).contains(&memory) && memory.is_multiple_of(1024),
        2048 => (gib(4)..=gib(16)).contains(&memory) && memory.is_multiple_of(1024),
        4096 => (gib(8)..=gib(30)).contains(&memory) && memory.is_multiple_of(1024),
        8192 => (gib(16)..=gib(60)).contains(&memory) && memory.is_multiple_of(gib(4)),
        16384 => (gib(32)..=gib(120)).contains(&memory) && memory.is_multiple_of(gib(8)),
        _ => false,
    }
}

fn join(values: &[u32]) -> String {
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{v}");
    }
    s
}

/// Replace `${VAR}` in every string of the tree; `$${` stays a literal `${`. A string that is
/// exactly one `${VAR}` takes the variable's value as a YAML scalar, so `cpu: ${CPU}` is a number.
/// What [`substitute`] found: variables that are not set (with the key that names each), and the
/// keys whose value now comes from the environment (their values are never shown in errors).
#[derive(Debug, Default)]
struct Substituted {
    unset: Vec<(String, String)>,
    /// Every substitution made: (key, variable, value).
    made: Vec<(String, String, String)>,
}

impl Substituted {
    /// Whether the value at `key` comes (in whole or in part) from the environment.
    fn substituted_at(&self, key: &str) -> bool {
        self.made.iter().any(|(k, _, _)| k == key)
    }

    /// A message with every substituted value of 4 characters or more written back as the
    /// `${VAR}` it came from: messages name the reference, never the value.
    fn hide(&self, message: &str) -> String {
        let mut made: Vec<(&str, &str)> = self
            .made
            .iter()
            .filter(|(_, _, v)| v.chars().count() >= 4)
            .map(|(_, var, v)| (var.as_str(), v.as_str()))
            .collect();
        // Longest first, so that a value containing another is replaced whole.
        made.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        made.iter().fold(message.to_string(), |m, (var, value)| {
            m.replace(value, &format!("${{{var}}}"))
        })
    }
}

/// One `KEY=VALUE` put into the YAML tree: the key's path is created where it is missing (a
/// section the file leaves out), a list index must exist. `KEY+=VALUE` appends to a list (a
/// list value: each of its items).
fn set_value(tree: &mut Value, set: &str) -> Result<(), String> {
    let (key, raw) = set
        .split_once('=')
        .ok_or("expected KEY=VALUE, e.g. containers.mongo.cpu=2048")?;
    let (key, append) = match key.trim().strip_suffix('+') {
        Some(k) => (k, true),
        None => (key, false),
    };
    let key = key.trim();
    if key.is_empty() {
        return Err("the key is empty (e.g. cost.data_gb=50)".to_string());
    }
    let value: Value =
        serde_yaml_ng::from_str(raw).map_err(|e| format!("the value is not YAML: {e}"))?;
    let mut node = tree;
    for part in key.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(format!("'{key}' has an empty part"));
        }
        if node.is_null() {
            *node = Value::Mapping(Default::default());
        }
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| format!("'{key}': {name} is not inside a section"))?;
        node = map
            .entry(Value::String(name.to_string()))
            .or_insert(Value::Null);
        let mut rest = indexes;
        while let Some(open) = rest.strip_prefix('[') {
            let (index, after) = open
                .split_once(']')
                .ok_or_else(|| format!("'{key}': an index is not closed"))?;
            let index: usize = index
                .parse()
                .map_err(|_| format!("'{key}': [{index}] is not a list index"))?;
            let list = node
                .as_sequence_mut()
                .ok_or_else(|| format!("'{key}': {name} is not a list"))?;
            let len = list.len();
            node = list
                .get_mut(index)
                .ok_or_else(|| format!("'{key}': {name} has {len} item(s), no [{index}]"))?;
            rest = after;
        }
        if !rest.is_empty() {
            return Err(format!("'{key}': unexpected '{rest}'"));
        }
    }
    if !append {
        *node = value;
        return Ok(());
    }
    if node.is_null() {
        *node = Value::Sequence(Vec::new());
    }
    let list = node
        .as_sequence_mut()
        .ok_or_else(|| format!("'{key}' is not a list: += appends to lists"))?;
    match value {
        Value::Sequence(items) => list.extend(items),
        one => list.push(one),
    }
    Ok(())
}

fn substitute(
    v: &mut Value,
    key: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    found: &mut Substituted,
) {
    match v {
        Value::String(s) => {
            let whole =
                s.starts_with("${") && s.ends_with('}') && s[2..].find('}') == Some(s.len() - 3);
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find('$') {
                out.push_str(&rest[..i]);
                let after = &rest[i..];
                if let Some(tail) = after.strip_prefix("$${") {
                    out.push_str("${");
                    rest = tail;
                } else if let Some(tail) = after.strip_prefix("${") {
                    match tail.find('}') {
                        Some(end) => {
                            let name = &tail[..end];
                            match env(name) {
                                Some(value) => {
                                    out.push_str(&value);
                                    found.made.push((key.clone(), name.to_string(), value));
                                }
                                None => found.unset.push((name.to_string(), display_key(key))),
                            }
                            rest = &tail[end + 1..];
                        }
                        None => {
                            out.push_str(after);
                            rest = "";
                        }
                    }
                } else {
                    out.push('$');
                    rest = &after[1..];
                }
            }
            out.push_str(rest);
            if whole {
                if let Ok(scalar @ (Value::Number(_) | Value::Bool(_))) =
                    serde_yaml_ng::from_str::<Value>(&out)
                {
                    *v = scalar;
                    return;
                }
            }
            *s = out;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = key.len();
                let _ = write!(key, "[{i}]");
                substitute(item, key, env, found);
                key.truncate(len);
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let len = key.len();
                if !key.is_empty() {
                    key.push('.');
                }
                match k {
                    Value::String(s) => key.push_str(s),
                    other => {
                        let _ = write!(key, "{other:?}");
                    }
                }
                substitute(item, key, env, found);
                key.truncate(len);
            }
        }
        Value::Tagged(t) => substitute(&mut t.value, key, env, found),
        _ => {}
    }
}

/// A deserializer message without the values it quotes: "invalid type: integer `42`, expected a
/// string" → "invalid type: integer, expected a string".
fn hide_values(message: &str) -> String {
    let outside: String = message
        .split('`')
        .step_by(2)
        .flat_map(|part| part.split('"').step_by(2))
        .collect();
    outside
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
}

fn display_key(key: &str) -> String {
    if key.is_empty() {
        "the top level".to_string()
    } else {
        key.to_string()
    }
}

/// The config path given, or the default one relative to the current directory.
pub fn path_or_default(path: Option<&Path>) -> PathBuf {
    path.map_or_else(|| PathBuf::from(DEFAULT_PATH), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH))
            .expect("infra/hcctl.yaml")
    }

    /// The `tags:` block of the shipped config, to replace in tests.
    fn example_tags() -> String {
        "tags:\n  Project: hcctl\n  Environment: dev\n  DataClassification: PHI\n  Owner: data-engineering\n".to_string()
    }

    fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, Error> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(text, Path::new("hcctl.yaml"), &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn schedule_expressions_are_checked_as_scheduler_reads_them() {
        for ok in [
            "rate(15 minutes)",
            "rate(1 hour)",
            "rate(2 days)",
            "cron(0/15 6-20 ? * MON-FRI *)",
            "at(2026-12-31T23:00:00)",
        ] {
            assert_eq!(schedule_expression_problem(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("rate(1 minutes)", "the unit is minute"),
            ("rate(5 minute)", "the unit is minute"),
            ("rate(0 minutes)", "at least 1"),
            ("rate(x minutes)", "not a whole number"),
            ("rate(15)", "expected rate("),
            ("cron(0 3 * * ?)", "has 5"),
            ("at(2026-12-31 23:00)", "expected at("),
            ("every 15 minutes", "expected rate(15 minutes)"),
        ] {
            let p = schedule_expression_problem(bad).unwrap_or_default();
            assert!(p.contains(says), "{bad}: {p}");
        }
    }

    #[test]
    fn the_ingest_section_is_validated_and_names_its_keys() {
        let with = |block: &str| format!("{}{block}", example());
        let c = parse(&with("ingest:\n  schedule: rate(15 minutes)\n"), &[]).unwrap();
        assert_eq!(c.ingest.timezone, "UTC");
        assert!(c.uses_role(RoleKind::Scheduler));
        assert_eq!(c.schedule_name(Job::Ingest), "hcctl-dev-ingest");
        assert_eq!(c.jobs(), [Job::Ingest]);
        let plain = parse(&example(), &[]).unwrap();
        assert!(!plain.uses_role(RoleKind::Scheduler));
        assert!(!plain.roles().contains(&RoleKind::Scheduler));
        for (block, says) in [
            ("ingest:\n  schedule: every hour\n", "ingest.schedule"),
            (
                "ingest:\n  schedule: rate(1 hour)\n  timezone: 'Europe Paris'\n",
                "ingest.timezone",
            ),
            ("ingest:\n  collection: admissions\n", "set ingest.schedule"),
            ("ingest:\n  schedule: rate(1 hour)\n  every: 2\n", "every"),
        ] {
            let err = parse(&with(block), &[]).unwrap_err().to_string();
            assert!(err.contains(says), "{block}: {err}");
        }
    }

    #[test]
    fn the_dumps_section_schedules_dumps_and_drills_and_names_its_keys() {
        let with = |block: &str| {
            example().replacen(
                "  selection:\n",
                &format!("  dumps:\n{block}  selection:\n"),
                1,
            )
        };
        let c = parse(&with("    schedule: cron(0 2 * * ? *)\n"), &[]).unwrap();
        let d = c.backup.dumps.as_ref().expect("backup.dumps");
        assert_eq!((d.retention_days, d.timezone.as_str()), (35, "UTC"));
        assert_eq!(c.jobs(), [Job::Dump]);
        assert!(c.uses_role(RoleKind::Scheduler));
        let c = parse(
            &with("    schedule: rate(12 hours)\n    drill_schedule: cron(0 5 ? * SUN *)\n    timezone: Europe/Paris\n    retention_days: 90\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.jobs(), [Job::Dump, Job::Drill]);
        assert_eq!(
            c.job_schedule(Job::Drill),
            Some(("cron(0 5 ? * SUN *)", "Europe/Paris"))
        );
        // The scheduler's role may be adopted for the dump schedule alone.
        let adopted = with("    schedule: rate(1 day)\n").replace(
            "tags:\n  Project",
            "ingest:\n  iam_role_arn: arn:aws:iam::123456789012:role/sched\n\ntags:\n  Project",
        );
        assert!(parse(&adopted, &[]).is_ok());
        for (block, says) in [
            ("    schedule: daily\n", "backup.dumps.schedule"),
            (
                "    schedule: rate(1 day)\n    drill_schedule: weekly\n",
                "backup.dumps.drill_schedule",
            ),
            (
                "    schedule: rate(1 day)\n    timezone: 'Europe Paris'\n",
                "backup.dumps.timezone",
            ),
            (
                "    schedule: rate(1 day)\n    retention_days: 0\n",
                "backup.dumps.retention_days: 0",
            ),
            ("    drill_schedule: rate(7 days)\n", "schedule"),
            ("    schedule: rate(1 day)\n    keep: 3\n", "keep"),
        ] {
            let err = parse(&with(block), &[]).unwrap_err().to_string();
            assert!(err.contains(says), "{block}: {err}");
        }
        let lone_role = example().replace(
            "tags:\n  Project",
            "ingest:\n  iam_role_arn: arn:aws:iam::123456789012:role/sched\n\ntags:\n  Project",
        );
        let err = parse(&lone_role, &[]).unwrap_err().to_string();
        assert!(
            err.contains("ingest.iam_role_arn is the role of the schedules"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let c = parse(&example(), &[]).unwrap();
        assert_eq!(c.region.as_deref(), Some("eu-west-3"));
        assert_eq!(c.family("mongo"), "hcctl-dev-mongo");
        // From an empty account: every role, secret and the file system are hcctl's to create.
        assert!(RoleKind::ALL.iter().all(|r| c.adopted_role(*r).is_none()));
        assert_eq!(c.adopted_file_system(), None);
        assert_eq!(c.secret_name(SecretRole::Writer), "hcctl/dev/mongo-writer");
        assert_eq!(c.mongo_host(), "mongo.dev.hcctl.internal");
        assert_eq!(c.backup.plan.rules.len(), 2);
    }

    /// The example with adopted roles and a secret, named through ${HCCTL_AWS_ACCOUNT_ID}.
    fn example_with_references() -> String {
        let text = example();
        assert!(text.contains("  cluster: hcctl-dev\n") && text.contains("    volume:\n"));
        text.replacen(
            "  cluster: hcctl-dev\n",
            "  cluster: hcctl-dev\n  \
             execution_role_arn: arn:aws:iam::${HCCTL_AWS_ACCOUNT_ID}:role/hcctl-dev-ecs-execution\n  \
             task_role_arn: arn:aws:iam::${HCCTL_AWS_ACCOUNT_ID}:role/hcctl-dev-task\n",
            1,
        )
        .replacen(
            "    volume:\n",
            "    secrets:\n      MONGO_INITDB_ROOT_PASSWORD: \"arn:aws:secretsmanager:eu-west-3:${HCCTL_AWS_ACCOUNT_ID}:secret:hcctl/dev/mongo-root:password::\"\n    volume:\n",
            1,
        )
    }

    #[test]
    fn unset_variables_are_all_named_with_their_keys() {
        let err = parse(&example_with_references(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "environment variable not set: ${HCCTL_AWS_ACCOUNT_ID} (at ecs.execution_role_arn, \
                 ecs.task_role_arn and 1 more) (export it or remove the reference)"
            ),
            "{err}"
        );
    }

    #[test]
    fn substitution_types_whole_values_and_keeps_escapes() {
        let mut v: Value = serde_yaml_ng::from_str("a: ${N}\nb: x-${N}\nc: $${N}\nd: $5").unwrap();
        let mut found = Substituted::default();
        substitute(
            &mut v,
            &mut String::new(),
            &|_| Some("512".to_string()),
            &mut found,
        );
        assert!(found.unset.is_empty());
        assert!(
            found.substituted_at("a") && found.substituted_at("b") && !found.substituted_at("c")
        );
        assert_eq!(v["a"], Value::Number(512.into()));
        assert_eq!(v["b"], Value::String("x-512".into()));
        assert_eq!(v["c"], Value::String("${N}".into()));
        assert_eq!(v["d"], Value::String("$5".into()));
    }

    #[test]
    fn a_value_from_the_environment_is_never_quoted_in_an_error() {
        let text = example_with_references().replace(
            "MONGO_INITDB_ROOT_PASSWORD: \"arn:aws:secretsmanager:eu-west-3:${HCCTL_AWS_ACCOUNT_ID}:secret:hcctl/dev/mongo-root:password::\"",
            "MONGO_INITDB_ROOT_PASSWORD: ${ROOT_PASSWORD}",
        );
        assert!(text.contains("${ROOT_PASSWORD}"));
        for secret in ["482913570246", "true"] {
            let err = parse(
                &text,
                &[("HCCTL_AWS_ACCOUNT_ID", "1"), ("ROOT_PASSWORD", secret)],
            )
            .unwrap_err()
            .to_string();
            assert!(!err.contains(secret), "{err}");
            assert!(
                err.contains("containers.mongo.secrets.MONGO_INITDB_ROOT_PASSWORD: invalid type: ")
                    && err.contains(", expected a string (the value comes from the environment and is not shown)"),
                "{err}"
            );
        }
        assert_eq!(
            hide_values("invalid type: integer `42`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            hide_values("invalid type: string \"S3cret\", expected u32"),
            "invalid type: string, expected u32"
        );
        // Values in rule messages are written back as their ${VAR}.
        let text = example_with_references()
            .replace(
                "execution_role_arn: arn:aws:iam::${HCCTL_AWS_ACCOUNT_ID}:role/hcctl-dev-ecs-execution",
                "execution_role_arn: ${ROLE}",
            )
            .replace("cpu: 1024", "cpu: ${CPU}");
        assert!(text.contains("${ROLE}") && text.contains("${CPU}"));
        let err = parse(
            &text,
            &[
                ("HCCTL_AWS_ACCOUNT_ID", "1"),
                ("ROLE", "S3cretPassw0rd"),
                ("CPU", "1024"),
            ],
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(!err.contains("S3cretPassw0rd"), "{err}");
        assert!(
            err.contains("ecs.execution_role_arn: '${ROLE}' is not an ARN"),
            "{err}"
        );
        let err = parse(
            &text,
            &[
                ("HCCTL_AWS_ACCOUNT_ID", "1"),
                ("ROLE", "x"),
                ("CPU", "S3cretPassw0rd"),
            ],
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(!err.contains("S3cretPassw0rd"), "{err}");
    }

    #[test]
    fn backup_values_beyond_100_years_are_refused_without_overflow() {
        let big = i64::MAX.to_string();
        let text = example()
            .replace(
                "start_window_minutes: 60",
                &format!("start_window_minutes: {big}"),
            )
            .replace(
                "delete_after_days: 365",
                &format!("delete_after_days: {big}"),
            )
            .replace(
                "cold_storage_after_days: 30",
                &format!("cold_storage_after_days: {big}"),
            );
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        for expected in [
            "backup.plan.rules[0].start_window_minutes: 9223372036854775807 is above AWS Backup's maximum of 52560000 (100 years)",
            "backup.plan.rules[0].completion_window_minutes: 180 must be at least start_window_minutes + 60",
            "backup.plan.rules[1].delete_after_days: 9223372036854775807 is above AWS Backup's maximum of 36500 (100 years)",
            "backup.plan.rules[1].cold_storage_after_days: 9223372036854775807 is above AWS Backup's maximum of 36500 (100 years)",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn values_aws_would_refuse_are_found_first() {
        let text = example()
            .replace("retention_days: 30", "retention_days: 2")
            .replace("cpu: 512", "cpu: 300")
            .replace("delete_after_days: 365", "delete_after_days: 100")
            .replace(
                "start_window_minutes: 60\n        completion_window_minutes: 180",
                "start_window_minutes: 30\n        completion_window_minutes: 180",
            );
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        for expected in [
            "log_groups.mongo.retention_days: 2 is not a CloudWatch retention value",
            "containers.app: cpu 300 with memory 1024 MiB is not a Fargate task size",
            "backup.plan.rules[1]: cold_storage_after_days 30 needs delete_after_days at least 90 days later",
            "backup.plan.rules[0].start_window_minutes: 30 is below AWS Backup's minimum of 60",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn rate_schedules_are_refused_for_aws_backup() {
        // Issue 22, finding 3: AWS Backup's ScheduleExpression takes cron only.
        let text = example().replace("cron(0 3 * * ? *)", "rate(12 hours)");
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("backup.plan.rules[0].schedule: 'rate(12 hours)': AWS Backup takes only cron expressions"),
            "{err}"
        );
        let text = example().replace("cron(0 3 * * ? *)", "cron(0 3 * * ?)");
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not a cron expression of six fields"),
            "{err}"
        );
    }

    #[test]
    fn tags_and_log_group_names_aws_would_refuse_are_found_first() {
        // Issue 22, finding 5: characters, count, reserved prefixes, reserved log group names.
        let with_tags = |tags: &str| {
            let text = example();
            assert!(
                text.contains(&example_tags()),
                "the shipped tags block changed"
            );
            text.replace(&example_tags(), &format!("{tags}\n"))
        };
        let cases = [
            (
                "tags: {CostCenter: \"R&D (oncology)\"}",
                "tags.CostCenter: 'R&D (oncology)' is not a tag value",
            ),
            (
                "tags: {AWS:Owner: x}",
                "tags.AWS:Owner: the prefix aws: (in any letter case) is reserved",
            ),
            (
                "tags: {Owner: \"Aws:x\"}",
                "tags.Owner: the prefix aws: (in any letter case) is reserved",
            ),
            (
                "tags: {\"a#b\": x}",
                "tags.a#b: a tag key is 1-128 characters",
            ),
        ];
        for (tags, expected) in cases {
            let err = parse(&with_tags(tags), &[("HCCTL_AWS_ACCOUNT_ID", "1")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected),
                "{tags}: missing {expected:?} in:\n{err}"
            );
        }
        let many: Vec<String> = (0..51).map(|i| format!("k{i}: v")).collect();
        let err = parse(
            &with_tags(&format!("tags: {{{}}}", many.join(", "))),
            &[("HCCTL_AWS_ACCOUNT_ID", "1")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("tags: 51 tags; AWS allows at most 50"),
            "{err}"
        );
        // Letters of any script, digits, spaces and the allowed signs pass.
        let fine = with_tags("tags: {Équipe: \"Oncologie 2/3 = +@_.:-\", 部門: 腫瘍科}");
        // Combining marks are not letters for AWS (review of issue 22).
        let marks = with_tags("tags: {Dept: हिंदी}");
        let err = parse(&marks, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tags.Dept: 'हिंदी' is not a tag value"),
            "{err}"
        );
        parse(&fine, &[("HCCTL_AWS_ACCOUNT_ID", "1")]).unwrap();
        let text = example().replace("name: /ecs/hcctl-dev/app", "name: aws/hcctl-dev/app");
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "log_groups.app.name: 'aws/hcctl-dev/app': names starting with aws/ are reserved"
            ),
            "{err}"
        );
    }

    #[test]
    fn credentials_in_environment_are_refused() {
        for name in [
            "DB_PASSWORD",
            "API_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "MONGO_URI",
            "SIGNING_KEY",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "HCCTL_LOG",
            "MONGO_INITDB_DATABASE",
            "KEYBOARD_LAYOUT",
            "HCCTL_SSE_KMS_KEY_ID",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn credentials_in_plaintext_task_environment_are_refused() {
        // Issue 24, finding 16: names with PASS, PWD, AUTH, DSN… and values carrying
        // `user:password@` passed the check and rendered as plaintext.
        for name in [
            "DB_PASS",
            "MONGO_PWD",
            "SMTP_AUTH",
            "SENTRY_DSN",
            "MONGO_URL",
            "DATABASE_URL",
            "TLS_CERT",
            "SESSION",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["PASSENGER_COUNT", "BYPASS_CACHE", "PUBLIC_URL", "AUTHOR"] {
            assert!(!looks_secret(name), "{name}");
        }
        for value in [
            "mongodb://writer:S3cret@db:27017",
            "postgres://u:p@h/db?sslmode=require",
            "mongodb://w:pa/ss@h:27017/x",
            "https://user:token@example.org/path",
        ] {
            assert!(carries_credentials(value), "{value}");
        }
        for value in [
            "mongodb://db:27017",
            "https://user@example.org",
            "plain",
            "a:b@c",
        ] {
            assert!(!carries_credentials(value), "{value}");
        }
        let text = example().replace(
            "MONGO_INITDB_DATABASE: healthcare",
            "MONGO_INITDB_DATABASE: healthcare\n      TARGET: \"mongodb://writer:S3cret@db:27017\"",
        );
        assert!(text.contains("S3cret"));
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "containers.mongo.environment.TARGET: the value is a URL with a user and password"
            ),
            "{err}"
        );
        assert!(!err.contains("S3cret"), "{err}");
        // The same in the command (review: `--uri` there rendered the password in plaintext).
        let text = example().replace(
            "command: [migrate, /data/healthcare_dataset.csv]",
            "command: [migrate, --uri, \"mongodb://writer:S3cretPw@mongo:27017/?authSource=admin\", /data/healthcare_dataset.csv]",
        );
        assert!(text.contains("S3cretPw"), "the shipped app command changed");
        let err = parse(&text, &[("HCCTL_AWS_ACCOUNT_ID", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("containers.app.command[2]: a URL with a user and password"),
            "{err}"
        );
        assert!(!err.contains("S3cretPw"), "{err}");
    }
}

/// The shipped example config, parsed: what unit tests of other modules start from.
#[cfg(test)]
pub mod tests_support {
    use super::*;

    pub fn example_config() -> Config {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH))
                .expect("infra/hcctl.yaml");
        Config::parse(&text, Path::new("hcctl.yaml"), &|_| None).expect("the example parses")
    }
}
