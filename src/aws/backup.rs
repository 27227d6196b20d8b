//! AWS Backup at the SDK edge: what the vault, plan and selection kinds share (tags, "not
//! found" as AWS Backup says it), and backup jobs — listed for backup-status, started and
//! followed by `hcctl backup run`. The vault, plan and selection themselves are resource kinds
//! (`crate::resources::backup_*`).

use std::collections::BTreeMap;

use aws_sdk_backup::Client;
use serde::Serialize;

use super::{tag_delta, AwsError, AwsErrorKind};

/// "Not found" as AWS Backup says it (some endpoints answer AccessDenied for a missing vault).
pub fn is_missing(e: &AwsError) -> bool {
    e.kind == AwsErrorKind::Service
        && matches!(
            e.code.as_deref(),
            Some("ResourceNotFoundException" | "AccessDeniedException" | "NotFoundException")
        )
}

/// The tags of the resource at `arn` (all pages); none for an empty ARN.
pub async fn list_tags(
    client: &Client,
    arn: &str,
    what: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    if arn.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut pages = client.list_tags().resource_arn(arn).into_paginator().send();
    let mut tags = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new(format!("listing the tags of {what}"), &e))?;
        if let Some(t) = page.tags() {
            tags.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    Ok(tags)
}

/// Bring the tags of the resource at `arn` from `actual` to `desired`.
pub async fn retag(
    client: &Client,
    arn: &str,
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
    what: &str,
) -> Result<(), AwsError> {
    let (set, remove) = tag_delta(actual, desired);
    if !set.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("tagging {what}"), &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_key_list(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging {what}"), &e))?;
    }
    Ok(())
}

/// A backup job as AWS Backup lists it. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: String,
    pub state: String,
    pub resource_arn: String,
    pub created: Option<i64>,
    pub completed: Option<i64>,
    pub size_bytes: Option<i64>,
    pub status_message: Option<String>,
}

impl Job {
    /// A job that ended without a recovery point.
    pub fn failed(&self) -> bool {
        matches!(self.state.as_str(), "FAILED" | "ABORTED" | "EXPIRED")
    }

    pub fn finished(&self) -> bool {
        self.failed() || matches!(self.state.as_str(), "COMPLETED" | "PARTIAL")
    }
}

/// A [`Job`] from a listed job or a described one: the SDK has two types with the same getters.
macro_rules! job_from {
    ($j:expr, $id:expr) => {
        Job {
            id: $id.to_string(),
            state: $j
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            resource_arn: $j.resource_arn().unwrap_or_default().to_string(),
            created: $j.creation_date().map(|d| d.secs()),
            completed: $j.completion_date().map(|d| d.secs()),
            size_bytes: $j.backup_size_in_bytes(),
            status_message: $j
                .status_message()
                .filter(|m| !m.is_empty())
                .map(str::to_string),
        }
    };
}

/// Every job of the vault (all pages), newest first.
pub async fn list_jobs(client: &Client, vault: &str) -> Result<Vec<Job>, AwsError> {
    let mut pages = client
        .list_backup_jobs()
        .by_backup_vault_name(vault)
        .into_paginator()
        .send();
    let mut jobs = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| AwsError::new(format!("listing the backup jobs of vault {vault}"), &e))?;
        jobs.extend(
            page.backup_jobs()
                .iter()
                .map(|j| job_from!(j, j.backup_job_id().unwrap_or_default())),
        );
    }
    jobs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    Ok(jobs)
}

/// Start an on-demand backup job; returns its id.
pub async fn start_job(
    client: &Client,
    vault: &str,
    resource_arn: &str,
    iam_role_arn: &str,
) -> Result<String, AwsError> {
    let out = client
        .start_backup_job()
        .backup_vault_name(vault)
        .resource_arn(resource_arn)
        .iam_role_arn(iam_role_arn)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("starting a backup job for {resource_arn}"), &e))?;
    Ok(out.backup_job_id().unwrap_or_default().to_string())
}

pub async fn describe_job(client: &Client, id: &str) -> Result<Job, AwsError> {
    let j = client
        .describe_backup_job()
        .backup_job_id(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing backup job {id}"), &e))?;
    Ok(job_from!(j, id))
}
