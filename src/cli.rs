//! The command-line surface. Every `///` line below is `--help` text: keep it useful.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::migrate::location::Location;
use crate::migrate::shard::Shard;

/// hcctl — migrate hospital admission CSVs into MongoDB, safely and repeatably, and run their
/// AWS infrastructure (ECS, CloudWatch Logs, AWS Backup) from one config.
///
/// Logs go to stderr (raise with -v or HCCTL_LOG=debug); results go to stdout.
/// Exit codes: 0 success; 1 failure during the run (safe to repeat); 2 usage or input error,
/// nothing written; 4 `verify` found differences; 75 busy (a backup dump and the writers wait for
/// each other), try again later.
/// `hcctl --version`: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HCCTL_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "hcctl",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace. HCCTL_LOG (e.g. "debug")
    /// takes precedence. Logs never contain patient field values or credentials.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream an admissions CSV into MongoDB: typed, cleaned, deduplicated, idempotent.
    ///
    /// Every row ends up inserted, counted as a duplicate (its content is already stored), or
    /// rejected into the quarantine file with its line number and reason. Re-running the same
    /// file inserts nothing; an interrupted run is finished by running it again.
    Migrate(MigrateArgs),
    /// Check that every row of a CSV is stored in MongoDB with the same cleaned content.
    ///
    /// Streams the file through the same cleaning as `migrate` and looks each document up by
    /// its content-derived _id. Exits 4 when documents are missing or different.
    Verify(VerifyArgs),
    /// Load every new CSV under a folder or an s3:// prefix exactly once, remembering what was
    /// loaded in a ledger collection; `ingest status` shows it, `ingest retry FILE` unparks a file.
    ///
    /// Each file (*.csv, *.csv.gz) the ledger does not hold as done with the same content
    /// (S3: key, ETag and size; a folder: path, size, modification time and a hash of its first
    /// and last MiB) is migrated as `hcctl migrate` would, with its own quarantine and report.
    /// Runners claim a file atomically in the ledger, so two runners over one source never load
    /// the same file twice; the claim of a runner that died is taken over when its lease
    /// expires; a file that fails is retried on the next run and parked after 3 attempts. A file
    /// whose content changed is loaded again: only its new rows are inserted.
    ///
    /// Exit codes: 0 every file seen is loaded (or was before); 1 a file failed this run (the
    /// others are loaded; running again retries it); 2 usage error.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Ingest(IngestArgs),
    /// Run a migration or a verification in the cloud, as one-off ECS tasks of the app's task
    /// definition, and follow them to their exit code.
    ///
    /// `hcctl run migrate s3://BUCKET/incoming/x.csv [migrate flags]` starts the latest app task
    /// definition on the cluster (network and security group from the config, the task's command
    /// overridden, started by "hcctl-run"), prints the task ARN, streams its CloudWatch log
    /// stream to stderr while following it, prints the report it wrote to S3, and exits with the
    /// container's exit code. --tasks N starts shards 1/N … N/N and prints their combined report.
    #[command(subcommand)]
    Run(RunCommand),
    /// Write a deterministic synthetic admissions CSV (same columns, domains and quirks as the
    /// real export) for tests, demos and load tests.
    Generate(GenerateArgs),
    /// Converge AWS to infra/hcctl.yaml, from an empty account: security groups, MongoDB's
    /// encrypted EFS file system (mount targets, access point), log groups, generated secrets,
    /// least-privilege IAM roles, the ECS cluster, task definitions and the MongoDB service
    /// (reachable as mongo.<namespace> through Cloud Map), AWS Backup vault, plan and selection;
    /// with `alerts`, an encrypted SNS topic, its subscriptions and the CloudWatch alarms.
    ///
    /// Prints the plan (one line per resource: create / update / replace / unchanged, with what
    /// changes), applies it, then follows the MongoDB service until it is stable (--no-wait to
    /// skip). Only what differs is changed: a second deploy makes no mutating call. A deploy that
    /// stopped on an error converges when run again.
    Deploy(DeployArgs),
    /// Remove what deploy created, in reverse order: the backup selection and plan, the MongoDB
    /// service, Cloud Map, task definitions, cluster, roles, log groups.
    ///
    /// What holds or opens the patient data — the file system (with its mount targets and access
    /// point), the security groups guarding it, the generated secrets, a vault holding recovery
    /// points — is kept and reported unless --delete-data=<project>-<environment>; secrets are
    /// then scheduled for deletion with a recovery window, never force-deleted. Asks for
    /// confirmation on a terminal; scripts pass --yes.
    Destroy(DestroyArgs),
    /// Print the task definitions rendered from task-definitions/*.json and the config, as
    /// `aws ecs register-task-definition --cli-input-json` takes them. No AWS call.
    Render(RenderArgs),
    /// Show the log of MongoDB's or the app's tasks (CloudWatch Logs), each line with its time
    /// and task; --follow keeps printing new lines as they arrive.
    ///
    /// The streams with the newest events come first (at most 100, the container's only: the
    /// awslogs streams <prefix>/<container>/<task id> of its task definition); their events of
    /// the --since window are printed in time order. --follow polls with backoff (1 s, up to
    /// 10 s while nothing comes) and picks up tasks started meanwhile; Ctrl-C stops it.
    ///
    /// Exit codes: 0 done (also when there was nothing to show); 1 AWS refused a call; 2 usage
    /// error or no such log group (run deploy); 3 AWS cannot be reached.
    Logs(LogsArgs),
    /// One screen: is everything well? The MongoDB service (desired / running / pending, its
    /// deployments and last events), every alarm hcctl manages with its state (ALARM first),
    /// the app's recent runs (the last lines of its JSON log in the last 24 hours: command, exit
    /// code, rows), and the verdict of backup-status.
    ///
    /// With --ledger, the ingest ledger too (from MongoDB).
    ///
    /// Exit codes: 0 all is well; 1 something needs attention (an alarm in ALARM, the service
    /// below its desired count or its rollout failed, backups unhealthy, a parked file), each
    /// named, or the server of --ledger cannot be read; 2 usage error; 3 AWS cannot be reached
    /// or refused a read.
    Status(StatusArgs),
    /// Estimate the monthly bill of what deploy creates from the config, line by line: Fargate
    /// (MongoDB all month, the app's runs), EFS, CloudWatch Logs, AWS Backup, S3, Secrets
    /// Manager, KMS, alarms, SNS, EventBridge Scheduler, Cloud Map. No AWS call.
    ///
    /// Prices come from the table hcctl ships (AWS list prices for eu-west-3 and us-east-1, each
    /// with its unit, date and source) or --prices FILE; the expected usage from the config's
    /// `cost:` section (data size, log volume, migration runs…; every key has a default). Every
    /// assumption is printed with the estimate. Taxes, data transfer and the free tier are not
    /// counted. --set KEY=VALUE changes the config for a what-if:
    /// `hcctl cost --set containers.mongo.cpu=2048 --set cost.data_gb=200`.
    ///
    /// Exit codes: 0 the estimate; 2 usage error (a bad config or --set, no prices for the
    /// region).
    Cost(CostArgs),
    /// Print the IAM policy that whoever runs deploy, destroy, run, backup-status and backup run
    /// for this config needs: the actions hcctl calls, on the resources the config names.
    ///
    /// JSON by default (aws iam put-user-policy --policy-document file://…); --format text says
    /// what each statement is for and why `*` where AWS requires it. The account is --account-id,
    /// else the credentials' (STS GetCallerIdentity, which needs no permission).
    #[command(name = "iam-policy")]
    IamPolicy(IamPolicyArgs),
    /// Is the patient data protected? Vault, plan (and drift from the config), selection, the
    /// latest backup jobs, and a verdict.
    ///
    /// Healthy when the newest COMPLETED backup job is younger than --max-age, no recent FAILED,
    /// ABORTED or EXPIRED job lacks a later COMPLETED one of the same resource, and vault, plan
    /// and selection exist as configured.
    /// Exit codes: 0 healthy, 1 unhealthy, 2 usage or config error, 3 could not query AWS.
    #[command(name = "backup-status")]
    BackupStatus(BackupStatusArgs),
    /// On-demand backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Print a shell completion script: `hcctl completions bash > /etc/bash_completion.d/hcctl`,
    /// `hcctl completions zsh > "${fpath[1]}/_hcctl"`, `hcctl completions fish >
    /// ~/.config/fish/completions/hcctl.fish`.
    Completions(CompletionsArgs),
    /// The application's end users (staff who query the data): passwords stored only as
    /// argon2id hashes in the `app_users` collection.
    ///
    /// Passwords are read from the terminal without echo, or from standard input with
    /// --password-stdin; never from arguments. At least 12 characters.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The database's technical accounts (admin, writer, reader) on a running server, from the
    /// `database` section of the config.
    #[command(subcommand, name = "db-users")]
    DbUsers(DbUsersCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user with a role.
    Add(UserAddArgs),
    /// Check a user's password: exit 0 when it matches, 1 otherwise (same answer, same time,
    /// for an unknown user). Upgrades a matching bcrypt hash to argon2id.
    Verify(UserPasswordArgs),
    /// Set a new password.
    Passwd(UserPasswordArgs),
    /// Remove a user.
    Remove(UserNameArgs),
    /// List users and roles (never passwords or hashes).
    List(UsersListArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The user name.
    pub name: String,
    #[arg(long, value_enum, default_value_t = crate::security::app_users::Role::Reader)]
    pub role: crate::security::app_users::Role,
    /// Read the password from one line of standard input instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UserPasswordArgs {
    /// The user name.
    pub name: String,
    /// Read the password from one line of standard input instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UserNameArgs {
    /// The user name.
    pub name: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UsersListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum DbUsersCommand {
    /// Create the missing accounts, update roles and passwords that differ (idempotent).
    /// Connect with an account allowed to manage users (userAdmin); passwords come from the
    /// environment variables or files the config names. The accounts are made in the config's
    /// `database.name`; --db is not used by this command.
    Apply(DbUsersApplyArgs),
    /// List the database's accounts and roles (never passwords or hashes).
    List(DbUsersListArgs),
}

#[derive(Debug, Args)]
pub struct DbUsersApplyArgs {
    /// The config file (its `database` section).
    #[arg(long, default_value = "infra/hcctl.yaml")]
    pub config: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DbUsersListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Start a backup job now for the configured resources (or --resource), with the selection's
    /// IAM role; --wait follows it until it ends. Exit 1 when a waited-for job did not complete.
    Run(BackupRunArgs),
    /// Judge the backup posture control by control, as AWS Backup Audit Manager does, with
    /// read-only calls only: resources-protected, plan-min-frequency, plan-min-retention,
    /// vault-encrypted-cmk, vault-lock, cross-region-copy, last-recovery-point,
    /// recovery-point-encrypted, restore-tested (the newest scheduled restore drill passed and
    /// is recent). Each is pass, fail, or unknown (with why), with its evidence.
    ///
    /// Thresholds: backup.audit in the config (max_interval_hours 24, min_retention_days 35).
    /// Exit codes: 0 no control fails; 1 one fails; 2 usage error; 3 AWS cannot be reached or
    /// refused a read the verdict needs.
    Audit(BackupAuditArgs),
    /// A logical backup of the database: every collection (documents, indexes, the ingest
    /// ledger) as gzip-compressed BSON plus a manifest (counts, digests, times), into a folder
    /// (files 0600) or under an s3:// prefix (encrypted multipart uploads).
    ///
    /// hcctl's writers are paused for the dump: it waits for migrate and ingest runs in
    /// progress to finish (--writers-wait), and they wait for it; the manifest says whether
    /// another client changed a collection meanwhile. Memory stays flat whatever the size. Needs
    /// an account that may write (it takes a lease in the database): the writer's URI.
    Dump(BackupDumpArgs),
    /// Restore a dump into a database: the whole dump is checked against its manifest (counts,
    /// digests) before anything is written, then loaded, its indexes rebuilt, and every
    /// collection read back and compared. Refuses a database that is not empty unless --drop.
    Load(BackupLoadArgs),
    /// The restore test in one command: take a dump (or use --from: a dump, or the newest under
    /// a prefix), load it into a fresh scratch database with every check of `backup load`,
    /// `verify` each --verify CSV against the restored documents, report the time to restore
    /// (RTO) and the age of the restored data (RPO), then drop the scratch database.
    ///
    /// Exit 0 only when everything matched; 1 when the dump did not restore, a count or digest
    /// differed, or a verify found differences (the report says which).
    Drill(DrillArgs),
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The live database (--db) whose dump is drilled; the scratch database is
    /// DB_drill_YYYYMMDDHHMMSS on the same server.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Drill this dump (its folder, s3:// prefix or manifest), or the newest dump of the
    /// database under this folder or prefix, instead of taking a new one.
    #[arg(long, value_name = "DUMP|DIR|S3-PREFIX")]
    pub from: Option<String>,

    /// Without --from: where the new dump goes (as `backup dump --to`).
    #[arg(long, value_name = "DIR|S3-PREFIX", default_value = "dumps")]
    pub to: String,

    /// A CSV (path or s3:// URL) whose rows must all be in the restored --collection, as
    /// `hcctl verify` checks them (repeatable).
    #[arg(long, value_name = "CSV")]
    pub verify: Vec<String>,

    /// The collection the --verify files are checked against.
    #[arg(long, default_value = "patients")]
    pub collection: String,

    /// The ingest ledger in the dump: every file it records as loaded that is still reachable
    /// with the same content is verified against its collection too (the others are listed
    /// as not verified, with why).
    #[arg(long, value_name = "COLLECTION", default_value = "_ingest")]
    pub ledger: String,

    /// The server the scratch database is created on (default: --uri's). On MongoDB with roles,
    /// the writer account may write only its own database: give an account that may create the
    /// scratch database (readWriteAnyDatabase), or better a separate restore-test server.
    #[arg(
        long,
        value_name = "URI",
        env = "HCCTL_DRILL_MONGODB_URI",
        hide_env_values = true
    )]
    pub scratch_uri: Option<String>,

    /// Keep the scratch database (to look at it); drop it yourself afterwards.
    #[arg(long)]
    pub keep: bool,

    /// Also store the report (JSON) here: a file or s3:// object, or a folder or prefix ending
    /// in / (named DB-YYYYMMDDTHHMMSSZ.json, the drill's start). `backup-status` shows the
    /// newest one under the drops bucket's drills/ (the scheduled drill writes there).
    #[arg(long, value_name = "FILE|DIR/|S3-PREFIX/")]
    pub report: Option<String>,

    /// Without --from: as `backup dump --writers-wait`.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_wait)]
    pub writers_wait: Duration,

    /// The KMS key (ARN, id or alias) the new dump (without --from) and an s3:// --report are
    /// encrypted with, as `backup dump --sse-kms-key-id` (default: SSE-S3).
    #[arg(long, value_name = "KEY", env = "HCCTL_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,

    #[command(flatten)]
    pub sort: SortArgs,

    /// A readable report, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupDumpArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Where the dump goes: a folder, or s3://BUCKET/PREFIX/. The dump is DB-YYYYMMDDTHHMMSSZ/
    /// inside it.
    #[arg(long, value_name = "DIR|S3-PREFIX", default_value = "dumps")]
    pub to: String,

    /// How long to wait for the migrate and ingest runs writing to the database to finish
    /// before the dump starts; then exit 75, nothing dumped.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_wait)]
    pub writers_wait: Duration,

    /// Encrypt the dump's objects with this KMS key (ARN, id or alias/NAME) instead of
    /// S3-managed keys (SSE-S3, AES-256).
    #[arg(long, value_name = "KEY", env = "HCCTL_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,

    /// A summary, or the JSON report with the whole manifest.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupLoadArgs {
    /// The dump: its folder or s3://BUCKET/PREFIX/DB-YYYYMMDDTHHMMSSZ/ (or its manifest.json).
    #[arg(value_name = "DUMP")]
    pub dump: String,

    /// The database to load into is --db (default healthcare): use a new name to restore
    /// beside the live data.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Replace the dump's collections in the target database (a database that is not empty is
    /// refused without it): each is loaded and checked beside the live one first, then swapped
    /// in; a load that fails leaves the live collections as they were. hcctl's writers are
    /// paused meanwhile (as for a dump).
    #[arg(long)]
    pub drop: bool,

    /// With --drop: how long to wait for the migrate and ingest runs writing to the database to
    /// finish before the load starts; then exit 75, nothing loaded.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_wait)]
    pub writers_wait: Duration,

    /// A summary, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupStatusArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Unhealthy when the last completed backup is older than this (e.g. 26h, 90m, 2d). Default:
    /// the interval of the plan's most frequent rule plus 2 hours (26h for a daily rule).
    #[arg(long, value_parser = parse_duration)]
    pub max_age: Option<Duration>,

    /// How many of the newest jobs to list.
    #[arg(long, default_value_t = 10)]
    pub jobs: usize,

    /// Judge as if it were this time (RFC 3339 or epoch seconds): for what-if checks and tests.
    #[arg(long, value_parser = crate::backup::parse_now, hide = true)]
    pub now: Option<i64>,

    /// Output: a readable report (coloured on a terminal; NO_COLOR disables colour), or JSON.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupAuditArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Judge as if it were this time (RFC 3339 or epoch seconds): for what-if checks and tests.
    #[arg(long, value_parser = crate::backup::parse_now, hide = true)]
    pub now: Option<i64>,

    /// Output: a table (failures first) and a verdict, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupRunArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Back up this resource ARN instead of the selection's resources (repeatable).
    #[arg(long = "resource", value_name = "ARN")]
    pub resources: Vec<String>,

    /// Wait until every job ends (polling with backoff) and report its final state.
    #[arg(long)]
    pub wait: bool,

    /// Give up waiting after this long.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Output: text, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Where the AWS side is described and reached: shared by deploy, destroy and backup commands.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The config file.
    #[arg(long, default_value = "infra/hcctl.yaml")]
    pub config: PathBuf,

    /// Send every AWS request to this endpoint (an emulator such as LocalStack). Without it the
    /// standard AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> variables apply, per service.
    /// Credentials come from the standard AWS chain (environment, profile, SSO, instance role).
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    pub endpoint_url: Option<String>,
}

/// An endpoint URL: http:// or https:// and a host (a malformed one is a usage error, exit 2,
/// not a network failure).
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("'{s}' is not an endpoint URL: write http://HOST:PORT or https://HOST")
        })?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!(
            "'{s}' has no host: write e.g. http://127.0.0.1:4566"
        ));
    }
    Ok(s.to_string())
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Print the plan and stop: no mutating AWS call at all.
    #[arg(long)]
    pub dry_run: bool,

    /// Stop before changing anything when a resource the config refers to (a secret, an IAM
    /// role, a KMS key) does not exist. Without it, missing references are warnings in the plan.
    #[arg(long)]
    pub strict: bool,

    /// After applying, follow the MongoDB service until it is stable (one primary deployment,
    /// running = desired, rollout completed), printing its events to stderr; a failed rollout is
    /// exit 1 with the stopped tasks' reasons. The default.
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,

    /// Return once the changes are applied, without following the service.
    #[arg(long, overrides_with = "wait")]
    pub no_wait: bool,

    /// How long --wait follows the service before giving up (exit 1): 90s, 15m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub wait_timeout: Duration,

    /// Output: the plan and result as text, or one JSON object for pipelines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Do not ask for confirmation (required when standard input is not a terminal).
    #[arg(long, short)]
    pub yes: bool,

    /// Print what would be removed and stop.
    #[arg(long)]
    pub dry_run: bool,

    /// Also delete what holds the patient data or gives access to it: MongoDB's file system
    /// (with its mount targets and access point), the generated secrets and the security groups
    /// the file system uses. Kept otherwise. Confirm by typing `<project>-<environment>` as the
    /// value (`--delete-data=hcctl-dev`), or give the flag alone to be asked on the terminal.
    #[arg(
        long,
        value_name = "PROJECT-ENVIRONMENT",
        num_args = 0..=1,
        default_missing_value = "",
        require_equals = true
    )]
    pub delete_data: Option<String>,

    /// Output: the plan and result as text, or one JSON object for pipelines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// The config file.
    #[arg(long, default_value = "infra/hcctl.yaml")]
    pub config: PathBuf,

    /// A price table to use instead of the built-in one (CSV: region,key,unit,usd,as_of,source;
    /// the built-in table is prices/aws.csv in the repository).
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,

    /// Put a value over the config for this estimate (repeatable): a dotted key and a YAML
    /// value, e.g. containers.mongo.cpu=2048, log_groups.app.retention_days=365,
    /// backup.plan.rules[0].delete_after_days=90, cost.data_gb=200, region=us-east-1.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,

    /// Output: a table with the assumptions, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// The AWS account the policy's ARNs name (12 digits); default: the credentials' account.
    #[arg(long, value_name = "ID", value_parser = parse_account_id)]
    pub account_id: Option<String>,

    /// The policy document (json), or what each statement is for (text).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// A 12-digit AWS account id.
pub fn parse_account_id(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not an AWS account id (12 digits)"))
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Also read the ingest ledger from MongoDB (--uri, or HCCTL_MONGODB_URI: the reader
    /// account is enough): files done, failed, parked and in progress; a parked file needs
    /// attention. Without it, no database connection is made.
    #[arg(long)]
    pub ledger: bool,

    /// The ledger collection, with --ledger.
    #[arg(long, value_name = "COLLECTION", default_value = "_ingest")]
    pub ledger_collection: String,

    #[command(flatten)]
    pub server: ServerArgs,

    /// A readable screen, or one JSON object (`healthy`, `attention`, `service`, `alarms`,
    /// `runs`, `backup`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Whose log: MongoDB's service tasks or the app's (migrate, verify, ingest, backup dump).
    #[arg(value_parser = ["mongo", "app"])]
    pub container: String,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// Keep printing new events until stopped (Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Events from this long ago (e.g. 10m, 1h, 2d).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub since: Duration,

    /// Only events containing this text (case-sensitive; sent to CloudWatch as a quoted
    /// phrase, and checked here too).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,

    /// Only the task(s) whose id starts with this (a task id, a prefix of one, or a task ARN).
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,

    /// One line per event (time, task, message), or JSON Lines: one object per event with
    /// timestamp, task, stream and message.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The config file.
    #[arg(long, default_value = "infra/hcctl.yaml")]
    pub config: PathBuf,

    /// Print only this container's task definition (as the AWS CLI takes it).
    #[arg(long, value_parser = ["mongo", "app"])]
    pub container: Option<String>,
}

/// The MongoDB server and database: shared by every command that talks to MongoDB.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// MongoDB connection string. Prefer the environment variable so that passwords never
    /// appear on a command line; use the writer account's URI for `migrate` and the reader's
    /// for `verify` and `users verify`. TLS options may be given in the URI as well
    /// (`tls=true&tlsCAFile=…&tlsCertificateKeyFile=…`).
    #[arg(
        long,
        env = "HCCTL_MONGODB_URI",
        default_value = "mongodb://127.0.0.1:27017",
        hide_env_values = true
    )]
    pub uri: String,

    /// Database name.
    #[arg(long, default_value = "healthcare")]
    pub db: String,

    /// Give up connecting after this long (e.g. 5s, 500ms, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Turn TLS on and verify the server's certificate against this CA file (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_ca_file: Option<PathBuf>,

    /// Turn TLS on and present this client certificate and key (one PEM file) to the server.
    #[arg(long, value_name = "PEM")]
    pub tls_cert_key_file: Option<PathBuf>,
}

/// Where the data goes: the server plus the collection.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Collection name.
    #[arg(long, default_value = "patients")]
    pub collection: String,
}

/// Output format of the final summary on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable summary.
    Text,
    /// One JSON object on stdout (for migrate and verify, the same as --report writes; on a
    /// failure, an object with `error` and `exit_code`).
    Json,
}

/// How rows are written: migrate's and ingest's.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Rows per insert batch. Rows are loaded in `_id` order (after an external sort), so the
    /// server's `_id` index grows at its end rather than at random pages.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Batches written concurrently. Two suit a single-node server on a small machine; raise it
    /// for a MongoDB cluster with more cores.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,

    /// How long to wait, before the first write, for a `backup dump` of the database in
    /// progress to end (hcctl does not write while one reads). Then exit 75, nothing written;
    /// 0s: do not wait.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_wait)]
    pub dump_wait: Duration,
}

/// Where the external sort spills, and how much input it may take.
#[derive(Debug, Clone, Args)]
pub struct SortArgs {
    /// Directory for the temporary sorted runs: private files (mode 0600, unlinked as soon as
    /// they are created) needing about as much space as the documents, while the rows held in
    /// memory stay under 16 MiB whatever the input size. Default: $TMPDIR, else /tmp.
    #[arg(long, value_name = "DIR", env = "HCCTL_TEMP_DIR")]
    pub temp_dir: Option<PathBuf>,

    /// The most CSV one input may hold, counted after decompression (e.g. 500MiB, 20GiB, or
    /// bytes). A larger input stops the run with exit 2 before anything is written: a small
    /// gzip can expand without end and fill the disk with sort runs.
    #[arg(long, value_name = "SIZE", default_value = "8GiB", value_parser = parse_size, env = "HCCTL_MAX_INPUT_BYTES")]
    pub max_input_bytes: u64,
}

/// What migrate and verify share for a run in the cloud: its shard, and how its S3 outputs are
/// encrypted.
#[derive(Debug, Args, Clone, Default)]
pub struct CloudArgs {
    /// Run shard K of N (e.g. 2/3): the whole input is read, and this run writes and counts only
    /// its part of it — the valid rows whose _id falls in shard K (so every copy of an admission
    /// meets in one shard and duplicates are counted exactly), and the rejected rows whose line
    /// number modulo N is K−1. The N reports add up to the report of one run; default outputs get
    /// .shard-K-of-N in their names. `hcctl run migrate --tasks N` starts all N.
    #[arg(long, value_name = "K/N", default_value = "1/1", env = "HCCTL_SHARD")]
    pub shard: Shard,

    /// Encrypt the S3 objects this run writes (quarantine, report) with this KMS key (ARN, id or
    /// alias/NAME) instead of S3-managed keys (SSE-S3, AES-256).
    #[arg(long, value_name = "KEY", env = "HCCTL_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The CSV file to load: a path, "-" for standard input, or s3://BUCKET/KEY (streamed,
    /// resumed where it stopped if the connection drops; credentials and endpoint from the
    /// standard AWS chain). Gzip-compressed input is detected and decompressed transparently.
    #[arg(default_value = "data/healthcare_dataset.csv")]
    pub path: String,

    #[command(flatten)]
    pub conn: ConnectionArgs,

    #[command(flatten)]
    pub write: WriteArgs,

    #[command(flatten)]
    pub sort: SortArgs,

    /// Parse, clean and count without connecting to any server (and without sorting): a dry
    /// run counts every valid row as "inserted", duplicates included.
    #[arg(long)]
    pub dry_run: bool,

    /// Write a JSON report (counts, rejects by reason, timing) to this file or s3://BUCKET/KEY.
    /// Default for an s3:// input: s3://BUCKET/reports/…/NAME.report.json beside it (the key's
    /// incoming/ swapped for reports/); none for a local input.
    #[arg(long, value_name = "FILE|S3-URL", value_parser = Location::parse)]
    pub report: Option<Location>,

    /// Write every rejected row (line number, reason, original fields) to this CSV file,
    /// created with mode 0600 because it holds patient data, as FILE.partial until the run
    /// succeeds; cells a spreadsheet would run as formulas get a leading '. Default:
    /// INPUT-NAME.quarantine.csv in the current directory (stdin.quarantine.csv for standard
    /// input); a second run writing the same file at the same time is refused. An s3:// location
    /// is written as an encrypted multipart upload that appears only when the run succeeds;
    /// default for an s3:// input: s3://BUCKET/quarantine/…/NAME.quarantine.csv.
    #[arg(long, value_name = "FILE|S3-URL", value_parser = Location::parse)]
    pub quarantine: Option<Location>,

    #[command(flatten)]
    pub cloud: CloudArgs,

    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Set by `ingest`, which registers as a writer around the whole file (the ledger's record
    /// included) so that a dump sees every file either loaded and recorded or not started.
    #[arg(skip)]
    pub writer_registered: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(subcommand)]
    pub command: Option<IngestCommand>,

    #[command(flatten)]
    pub load: IngestLoadArgs,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// The ledger: every file with its state (done, failed with the reason, parked after 3
    /// attempts, in progress with its runner and lease), its counts, and the totals.
    /// Exit 0, or 1 when a file is parked (it needs `ingest retry` once its problem is fixed).
    Status(IngestStatusArgs),
    /// Make a failed or parked file eligible again: its attempts are reset, so the next ingest
    /// run loads it. FILE as `ingest status` names it (a path or an s3:// URL).
    Retry(IngestRetryArgs),
}

/// The ledger's place: a collection in the database of --db.
#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// The ledger collection (one document per file and content, in the --db database).
    #[arg(long, value_name = "COLLECTION", default_value = "_ingest")]
    pub ledger: String,
}

#[derive(Debug, Clone, Args)]
pub struct IngestLoadArgs {
    /// A folder (its *.csv and *.csv.gz files, not its subfolders) or s3://BUCKET/PREFIX/
    /// (every *.csv and *.csv.gz object under the prefix; quarantine/ and reports/ are skipped).
    #[arg(value_name = "SOURCE", required = true)]
    pub source: Option<String>,

    #[command(flatten)]
    pub conn: ConnectionArgs,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub write: WriteArgs,

    #[command(flatten)]
    pub sort: SortArgs,

    /// Where each file's rejected rows go, as NAME.quarantine.csv (mode 0600). Default: for a
    /// folder, the current directory; for s3:// files, beside them under quarantine/ in the
    /// bucket (encrypted), as migrate does.
    #[arg(long, value_name = "DIR")]
    pub quarantine_dir: Option<PathBuf>,

    /// Write one JSON report of the run: files seen, ingested, skipped, failed, parked, the
    /// summed counts and every file's own report.
    #[arg(long, value_name = "FILE|S3-URL", value_parser = Location::parse)]
    pub report: Option<Location>,

    /// How long a claim holds without news from its runner. The runner renews it every third of
    /// this while it loads; a runner that died leaves a claim the next runner takes over once
    /// it has expired.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub lease: Duration,

    /// Who claims the files, as the ledger records it. Default: the ECS task ARN on ECS, else
    /// HOST:PID.
    #[arg(long, value_name = "NAME", env = "HCCTL_RUNNER")]
    pub runner: Option<String>,

    /// Keep going: look at the source again every --interval and load what is new, one line per
    /// file. Ctrl-C or SIGTERM stops it; a file being loaded is released in the ledger (claimable
    /// at once by the next run, which finishes it: every document written is complete).
    #[arg(long)]
    pub watch: bool,

    /// With --watch: the time between two looks at the source.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Encrypt the S3 objects this run writes (quarantines, reports) with this KMS key (ARN, id
    /// or alias/NAME) instead of S3-managed keys (SSE-S3, AES-256).
    #[arg(long, value_name = "KEY", env = "HCCTL_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,

    /// Summary format on stdout (with --watch, one line per file either way, then the summary).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct IngestStatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// Table or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct IngestRetryArgs {
    /// The file, as `ingest status` shows it.
    #[arg(value_name = "FILE")]
    pub file: String,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub ledger: LedgerArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The CSV file that was migrated: a path, "-" for standard input, or s3://BUCKET/KEY; gzip
    /// is detected.
    #[arg(default_value = "data/healthcare_dataset.csv")]
    pub path: String,

    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// Documents fetched per round trip while reading the collection in `_id` order.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    #[command(flatten)]
    pub sort: SortArgs,

    /// Write the JSON result to this file or s3://BUCKET/KEY as well.
    #[arg(long, value_name = "FILE|S3-URL", value_parser = Location::parse)]
    pub report: Option<Location>,

    #[command(flatten)]
    pub cloud: CloudArgs,

    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// `hcctl migrate` as ECS tasks: every migrate flag is passed to the task as typed (the
    /// connection comes from the task definition's writer secret: --uri and the TLS file flags
    /// are refused). The input, and --report / --quarantine when given, must be s3:// URLs.
    Migrate(RunMigrateArgs),
    /// `hcctl verify` as ECS tasks: each writes its result to s3://BUCKET/reports/…/NAME.verify
    /// [.shard-K-of-N].json (or --report), which run reads back and combines; exit 4 when
    /// documents are missing or different.
    Verify(RunVerifyArgs),
}

#[derive(Debug, Args)]
pub struct RunMigrateArgs {
    #[command(flatten)]
    pub migrate: MigrateArgs,
    #[command(flatten)]
    pub task: TaskArgs,
}

#[derive(Debug, Args)]
pub struct RunVerifyArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub task: TaskArgs,
}

/// How `hcctl run` starts and follows its tasks.
#[derive(Debug, Clone, Args)]
pub struct TaskArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Start N tasks, shards 1/N … N/N of the input (`--shard K/N` each): every task reads the
    /// whole input and writes only its part, the N reports add up to one run's; run prints the
    /// combined report.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub tasks: u32,

    /// Return once the tasks are started, printing their ARNs, without following them.
    #[arg(long)]
    pub no_wait: bool,

    /// Stop the tasks (StopTask) and exit 1 when they have not ended after this long.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Options of `hcctl run` itself, never passed to the task.
const RUN_ONLY: &[&str] = &[
    "config",
    "endpoint_url",
    "tasks",
    "no_wait",
    "timeout",
    "format",
    "verbose",
];

/// Options a task cannot be given: the task connects with the secret its task definition names.
const NOT_FOR_TASKS: &[(&str, &str)] = &[
    (
        "uri",
        "the task connects with the writer secret its task definition names (HCCTL_MONGODB_URI); \
         a URI on the command line would show credentials in the task's description",
    ),
    (
        "tls_ca_file",
        "a local file is not in the task: put TLS options in the secret's URI",
    ),
    (
        "tls_cert_key_file",
        "a local file is not in the task: put TLS options in the secret's URI",
    ),
];

/// What a `hcctl run migrate|verify` task is given: the migrate or verify arguments typed on the
/// command line (never values from the local environment, such as HCCTL_MONGODB_URI), each
/// option as `--name=value` so that no value is taken for a flag; without run's own options.
/// `None` when the command is not `run`.
pub fn task_arguments(matches: &ArgMatches) -> Option<Result<Vec<String>, String>> {
    let (_, run) = matches.subcommand().filter(|(name, _)| *name == "run")?;
    let (job, sub) = run.subcommand()?;
    let cli = Cli::command();
    let definition = cli.find_subcommand("run")?.find_subcommand(job)?;
    let mut out = Vec::new();
    for arg in definition.get_arguments() {
        let id = arg.get_id().as_str();
        if RUN_ONLY.contains(&id) || sub.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        if let Some((_, why)) = NOT_FOR_TASKS.iter().find(|(n, _)| *n == id) {
            let long = arg.get_long().unwrap_or(id);
            return Some(Err(format!(
                "hcctl run: --{long} is not passed to a task: {why}"
            )));
        }
        let raw: Vec<String> = match sub.get_raw(id) {
            Some(values) => match values.map(|v| v.to_str().map(str::to_string)).collect() {
                Some(v) => v,
                None => return Some(Err(format!("hcctl run: the value of {id} is not UTF-8"))),
            },
            None => Vec::new(),
        };
        match (arg.is_positional(), arg.get_long(), arg.get_action()) {
            (true, _, _) => out.extend(raw),
            (false, Some(long), ArgAction::SetTrue) => out.push(format!("--{long}")),
            (false, Some(long), _) => out.extend(raw.iter().map(|v| format!("--{long}={v}"))),
            (false, None, _) => {}
        }
    }
    Some(Ok(out))
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of data rows (the header is not counted).
    #[arg(long, default_value_t = 55_500)]
    pub rows: u64,

    /// Seed: the same seed and row count always give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Output file; "-" writes to standard output. Add ".gz" to compress.
    #[arg(long, short, default_value = "-")]
    pub output: String,
}

/// Parse "5s", "250ms", "2m", "1h" or a bare number of seconds.
/// [`parse_duration`], or zero (`0`, `0s`): "do not wait".
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    let digits = s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if !digits.is_empty() && digits.chars().all(|c| c == '0' || c == '.') {
        return parse_duration(&format!("1{}", &s.trim()[digits.len()..])).map(|_| Duration::ZERO);
    }
    parse_duration(s)
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration: write e.g. 5s, 500ms, 2m, 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}': use ms, s, m, h or d"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("'{s}' must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse "8GiB", "500MiB", "1.5GB", "4096" (bytes): binary units KiB, MiB, GiB, TiB (also
/// K, M, G, T) and decimal units KB, MB, GB, TB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("'{s}' is not a size: write e.g. 8GiB, 500MiB or a number of bytes")
    })?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}': use KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
            ))
        }
    };
    let bytes = (value * factor).round();
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("'{s}' must be a positive size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1GiB").is_err());
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    fn task_args(line: &[&str]) -> Result<Vec<String>, String> {
        let matches = Cli::command().try_get_matches_from(line).expect("parses");
        task_arguments(&matches).expect("a run command")
    }

    #[test]
    fn a_run_passes_what_was_typed_to_the_task_without_its_own_options() {
        let args = task_args(&[
            "hcctl",
            "run",
            "migrate",
            "s3://b/incoming/x.csv",
            "--tasks",
            "3",
            "--batch-size",
            "500",
            "--config",
            "c.yaml",
            "--dry-run",
            "--format",
            "json",
            "--db=-odd-",
            "--timeout",
            "1h",
            "--no-wait",
        ])
        .unwrap();
        assert_eq!(
            args,
            [
                "s3://b/incoming/x.csv",
                "--db=-odd-",
                "--batch-size=500",
                "--dry-run"
            ]
        );
        // Values from the environment are the local machine's, not the task's.
        // (A variable no other unit test reads.)
        std::env::set_var("HCCTL_SSE_KMS_KEY_ID", "alias/local");
        let args = task_args(&["hcctl", "run", "verify", "s3://b/incoming/x.csv"]).unwrap();
        std::env::remove_var("HCCTL_SSE_KMS_KEY_ID");
        assert_eq!(args, ["s3://b/incoming/x.csv"]);
        let err = task_args(&[
            "hcctl",
            "run",
            "migrate",
            "s3://b/x.csv",
            "--uri",
            "mongodb://u:p@h",
        ])
        .unwrap_err();
        assert!(err.contains("--uri is not passed to a task"), "{err}");
        assert!(!err.contains("u:p"), "{err}");
        let matches = Cli::command()
            .try_get_matches_from(["hcctl", "migrate", "x.csv"])
            .unwrap();
        assert!(task_arguments(&matches).is_none());
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn endpoints_need_a_scheme_and_a_host() {
        assert!(parse_endpoint("http://127.0.0.1:4566").is_ok());
        assert!(parse_endpoint("https://ecs.eu-west-3.amazonaws.com").is_ok());
        assert!(parse_endpoint("notaurl").is_err());
        assert!(parse_endpoint("127.0.0.1:4566").is_err());
        assert!(parse_endpoint("http://").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_wait("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_wait("0parsecs").is_err());
        assert!(parse_wait("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
