//! hcctl: the hospital-admissions data tool.
//!
//! `main.rs` parses the command line and maps errors to exit codes; everything else lives here,
//! one module per concern:
//!
//! - [`migrate`]: CSV → cleaning → MongoDB, and the commands built on that path (verify, generate);
//! - [`config`]: `infra/hcctl.yaml`, loaded and validated before any AWS call;
//! - [`deploy`]: the engine: config → rendered task definitions → plan → AWS (deploy, destroy,
//!   render);
//! - [`cost`]: `hcctl cost`, the monthly bill estimated from the config and a price table (no AWS
//!   call), also in deploy's plan;
//! - [`ingest`]: every new CSV of a folder or S3 prefix loaded exactly once, with a ledger;
//! - [`run`]: `hcctl run migrate|verify`, the migration as ECS tasks followed to their exit code;
//! - [`monitor`]: `hcctl logs`, the containers' log events (followed);
//! - [`backup`]: backup-status (is the data protected?) and on-demand backups;
//! - [`resources`]: the resource kinds (log group, cluster, task definition, backup vault, plan,
//!   selection, references), one file each, below deploy and backup-status alike;
//! - [`aws`]: the one SDK configuration, the call counter, AWS errors, backup jobs;
//! - [`mongo`]: connecting to the server, with credentials redacted from every message;
//! - [`writes`]: hcctl's writers and the backup dump that pauses them (leases in the database);
//! - [`error`]: the error kinds that decide exit codes;
//! - [`cli`]: the command-line surface (every flag's `--help` text lives there);
//! - [`output`]: progress bars and numbers formatted for reading;
//! - [`logging`]: the log on stderr, text or JSON lines (`HCCTL_LOG_FORMAT`), and a run's last line.

pub mod aws;
pub mod backup;
pub mod cli;
pub mod config;
pub mod cost;
pub mod deploy;
pub mod error;
pub mod ingest;
pub mod logging;
pub mod migrate;
pub mod mongo;
pub mod monitor;
pub mod output;
pub mod resources;
pub mod run;
pub mod security;
pub mod writes;
