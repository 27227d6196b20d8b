//! Watching the backups: [`status`] (is the data protected?), [`audit`] (the posture, control by
//! control) and [`run`] (take a backup now);
//! [`dump`]: logical dumps of the database, and loading them back; [`drill`]: the restore test.

pub mod audit;
pub mod drill;
pub mod dump;
pub mod logical;
pub mod run;
pub mod status;

use std::path::Path;
use std::time::Duration;

use crate::aws::{Aws, Target};
use crate::config::{Config, RoleKind};
use crate::error::Error;
use crate::resources::backup_selection::Selection;
use crate::resources::{backup_selection, AFTER_APPLY};

/// Load the config and connect: config errors are usage errors (exit 2).
async fn connect(config_path: &Path, endpoint_url: Option<String>) -> Result<(Config, Aws), Error> {
    let config = Config::load(config_path)?;
    let aws = Aws::connect(&Target {
        region: config.region.clone(),
        endpoint_url,
    })
    .await;
    Ok((config, aws))
}

/// `hcctl backup-status`: gather and judge. AWS errors are `AwsUnavailable` (exit 3).
pub async fn status_command(
    config_path: &Path,
    endpoint_url: Option<String>,
    max_age: Option<Duration>,
    show_jobs: usize,
    now: Option<i64>,
) -> Result<status::Status, Error> {
    let (config, aws) = connect(config_path, endpoint_url).await?;
    let observed = status::gather(&aws, &config)
        .await
        .map_err(|e| Error::AwsUnavailable(anyhow::Error::new(e)))?;
    let now = now.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    let max_age = max_age.map_or_else(|| status::default_max_age(&config), |d| d.as_secs() as i64);
    Ok(status::judge(
        &observed,
        &config,
        now,
        max_age,
        show_jobs,
        &aws.region,
        &aws.endpoint,
    ))
}

/// `hcctl backup audit`: gather (read-only) and judge each control. AWS unreachable, or a read
/// backup-status needs refused, is `AwsUnavailable` (exit 3).
pub async fn audit_command(
    config_path: &Path,
    endpoint_url: Option<String>,
    now: Option<i64>,
) -> Result<audit::Audit, Error> {
    let (config, aws) = connect(config_path, endpoint_url).await?;
    let unavailable = |e| Error::AwsUnavailable(anyhow::Error::new(e));
    let observed = status::gather(&aws, &config).await.map_err(unavailable)?;
    let extra = audit::gather_extra(&aws, &config, &observed)
        .await
        .map_err(unavailable)?;
    let now = now.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    Ok(audit::judge(
        &observed,
        &extra,
        &config,
        now,
        &aws.region,
        &aws.endpoint,
    ))
}

/// `hcctl backup run`.
pub async fn run_command(
    config_path: &Path,
    endpoint_url: Option<String>,
    resources: &[String],
    wait: Option<Duration>,
) -> Result<run::RunReport, Error> {
    let (config, aws) = connect(config_path, endpoint_url).await?;
    let outputs = backup_selection::resolve(&aws, &config)
        .await
        .map_err(|e| Error::AwsUnavailable(anyhow::Error::new(e)))?;
    let desired = Selection::desired(&config, &outputs);
    let resources = run::resources(&config, &desired, resources)?;
    if desired.iam_role_arn == AFTER_APPLY {
        return Err(Error::usage(format!(
            "the backup role {} does not exist yet: run hcctl deploy first",
            config.role_name(RoleKind::Backup)
        )));
    }
    Ok(run::run(&aws, &config, &desired.iam_role_arn, &resources, wait).await?)
}

/// `--now` for what-if checks and tests: RFC 3339 ("2026-11-28T12:00:00Z") or epoch seconds.
pub fn parse_now(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .map(|d| d.secs())
        .map_err(|_| format!("'{s}' is not a time: write e.g. 2026-11-28T12:00:00Z"))
}
