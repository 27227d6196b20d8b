//! `hcctl backup run`: an on-demand backup of the configured resources with the selection's IAM
//! role, optionally waiting (with backoff, bounded) until each job ends.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::status::timestamp;
use crate::aws::backup::{self as aws_backup, Job};
use crate::aws::{Aws, AwsError};
use crate::config::Config;
use crate::error::Error;
use crate::resources::backup_selection::Selection;
use crate::resources::AFTER_APPLY;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub vault: String,
    pub waited: bool,
    pub jobs: Vec<Job>,
    /// True when waiting and every job COMPLETED.
    pub ok: bool,
}

/// The resources to back up: `--resource` ARNs, else what the selection protects (the file
/// system the deploy created or adopts, and the config's extra resources).
pub fn resources(
    config: &Config,
    desired: &Selection,
    given: &[String],
) -> Result<Vec<String>, Error> {
    if !given.is_empty() {
        if let Some(bad) = given.iter().find(|r| !is_resource_arn(r)) {
            return Err(Error::usage(format!(
                "--resource '{bad}' is not a resource ARN (e.g. \
                 arn:aws:elasticfilesystem:eu-west-3:123456789012:file-system/fs-0123456789abcdef0)"
            )));
        }
        return Ok(given.to_vec());
    }
    if desired.resources.first().map(String::as_str) == Some(AFTER_APPLY) {
        return Err(Error::usage(format!(
            "the file system {} does not exist yet: run hcctl deploy first, or name what to back \
             up with --resource ARN",
            config
                .adopted_file_system()
                .map_or_else(|| config.resource_name("mongo-data"), str::to_string)
        )));
    }
    Ok(desired
        .resources
        .iter()
        .filter(|r| is_resource_arn(r))
        .cloned()
        .collect())
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` with a partition, a service and a resource.
fn is_resource_arn(s: &str) -> bool {
    let f: Vec<&str> = s.splitn(6, ':').collect();
    f.len() == 6 && f[0] == "arn" && !f[1].is_empty() && !f[2].is_empty() && !f[5].is_empty()
}

pub async fn run(
    aws: &Aws,
    config: &Config,
    role: &str,
    resources: &[String],
    wait: Option<Duration>,
) -> Result<RunReport, AwsError> {
    let vault = &config.backup.vault.name;
    let mut ids: Vec<(String, &String)> = Vec::new();
    for arn in resources {
        match aws_backup::start_job(&aws.backup, vault, arn, role).await {
            Ok(id) => ids.push((id, arn)),
            Err(mut e) if !ids.is_empty() => {
                // The jobs already started run on: name them, so that a rerun is limited to the
                // resources that still need one instead of backing the others up twice.
                let started: Vec<String> = ids
                    .iter()
                    .map(|(id, arn)| format!("{id} for {arn}"))
                    .collect();
                e.message = format!(
                    "{}; already started before this failure: {} (follow them with `hcctl \
                     backup-status`; for the rest use --resource ARN)",
                    e.message,
                    started.join(", ")
                );
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    let mut jobs = Vec::new();
    for (id, _) in &ids {
        jobs.push(aws_backup::describe_job(&aws.backup, id).await?);
    }
    if let Some(timeout) = wait {
        let started = Instant::now();
        let mut delay = Duration::from_secs(1);
        while jobs.iter().any(|j| !j.finished()) {
            if started.elapsed() >= timeout {
                break;
            }
            tracing::info!(
                pending = jobs.iter().filter(|j| !j.finished()).count(),
                "waiting for backup jobs"
            );
            tokio::time::sleep(delay.min(timeout.saturating_sub(started.elapsed()))).await;
            delay = (delay * 2).min(Duration::from_secs(30));
            for j in jobs.iter_mut().filter(|j| !j.finished()) {
                *j = aws_backup::describe_job(&aws.backup, &j.id).await?;
            }
        }
    }
    let ok = wait.is_some() && jobs.iter().all(|j| j.state == "COMPLETED");
    Ok(RunReport {
        vault: vault.clone(),
        waited: wait.is_some(),
        jobs,
        ok,
    })
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for j in &self.jobs {
            writeln!(
                f,
                "backup job {} for {} in vault {}: {}{}{}",
                j.id,
                j.resource_arn,
                self.vault,
                j.state,
                j.completed
                    .map_or(String::new(), |t| format!(" at {}", timestamp(t))),
                j.status_message
                    .as_deref()
                    .map_or(String::new(), |m| format!(" ({m})"))
            )?;
        }
        if !self.waited {
            writeln!(
                f,
                "started; follow it with `hcctl backup-status` (or run with --wait)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resource_arns_are_backed_up() {
        assert!(is_resource_arn(
            "arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1"
        ));
        assert!(!is_resource_arn("fs-1"));
        assert!(!is_resource_arn("arn:aws:elasticfilesystem"));
        assert!(!is_resource_arn("arn::elasticfilesystem:eu-west-3:1:x"));
    }
}
