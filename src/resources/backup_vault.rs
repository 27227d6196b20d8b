//! The backup vault (AWS Backup): created with the config's KMS key and tags; a key that differs
//! is kept (AWS cannot change it). Destroy deletes an empty vault and keeps one that holds
//! recovery points.

use std::collections::BTreeMap;

use aws_sdk_backup::Client;
use serde::Serialize;

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::backup::{is_missing, list_tags, retag};
use crate::aws::{create_tags, tag_changes, AwsError};
use crate::config;

pub const KIND: Kind = Kind::new("backup_vault", "backup vault");

/// A vault as AWS Backup describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vault {
    pub name: String,
    pub arn: String,
    pub encryption_key_arn: Option<String>,
    pub locked: bool,
    pub recovery_points: i64,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// The vault named `name` (read-only), with its recovery-point count and tags.
pub async fn observe(client: &Client, name: &str) -> Result<Option<Vault>, AwsError> {
    let out = match client
        .describe_backup_vault()
        .backup_vault_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let err = AwsError::new(format!("describing backup vault {name}"), &e);
            return if is_missing(&err) { Ok(None) } else { Err(err) };
        }
    };
    let arn = out.backup_vault_arn().unwrap_or_default().to_string();
    let tags = list_tags(client, &arn, &format!("backup vault {name}")).await?;
    Ok(Some(Vault {
        name: name.to_string(),
        encryption_key_arn: out.encryption_key_arn().map(str::to_string),
        locked: out.locked().unwrap_or(false),
        recovery_points: out.number_of_recovery_points(),
        arn,
        tags,
    }))
}

/// What deploy will do to the vault.
pub fn changes(
    desired: &config::Vault,
    tags: &BTreeMap<String, String>,
    observed: Option<&Vault>,
) -> Step {
    let Some(v) = observed else {
        let key = desired
            .kms_key_arn
            .as_deref()
            .map_or("AWS-owned key".to_string(), |k| format!("KMS key {k}"));
        return Step::new(KIND, &desired.name, Action::Create, vec![key]);
    };
    if let Some(key) = &desired.kms_key_arn {
        if v.encryption_key_arn.as_ref() != Some(key) {
            return Step::new(
                KIND,
                &desired.name,
                Action::Keep,
                vec![format!(
                    "encryption key {} ≠ {key}: AWS cannot change the key of an existing vault \
                     (create a new vault under another name)",
                    v.encryption_key_arn.as_deref().unwrap_or("(none)")
                )],
            );
        }
    }
    let changes = tag_changes(&v.tags, tags);
    Step::compared(KIND, &desired.name, Action::Update, changes)
}

pub async fn apply(
    client: &Client,
    desired: &config::Vault,
    tags: &BTreeMap<String, String>,
    observed: Option<&Vault>,
) -> Result<String, AwsError> {
    let name = desired.name.as_str();
    match observed {
        None => {
            let out = client
                .create_backup_vault()
                .backup_vault_name(name)
                .set_encryption_key_arn(desired.kms_key_arn.clone())
                .set_backup_vault_tags(create_tags(tags))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("creating backup vault {name}"), &e))?;
            Ok(out.backup_vault_arn().unwrap_or("created").to_string())
        }
        Some(v) => {
            retag(
                client,
                &v.arn,
                &v.tags,
                tags,
                &format!("backup vault {name}"),
            )
            .await?;
            Ok("updated".to_string())
        }
    }
}

pub async fn delete(client: &Client, name: &str) -> Result<(), AwsError> {
    client
        .delete_backup_vault()
        .backup_vault_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting backup vault {name}"), &e))
}

/// Delete every recovery point in the vault (`destroy --delete-data`), paginating; a vault lock
/// refuses it, and that error is reported as AWS words it.
pub async fn delete_recovery_points(client: &Client, name: &str) -> Result<usize, AwsError> {
    let mut arns = Vec::new();
    let mut pages = client
        .list_recovery_points_by_backup_vault()
        .backup_vault_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| AwsError::new(format!("listing the recovery points of {name}"), &e))?;
        arns.extend(
            page.recovery_points()
                .iter()
                .filter_map(|p| p.recovery_point_arn().map(str::to_string)),
        );
    }
    for arn in &arns {
        client
            .delete_recovery_point()
            .backup_vault_name(name)
            .recovery_point_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("deleting recovery point {arn}"), &e))?;
    }
    Ok(arns.len())
}

/// What destroy does with the vault: delete it when empty; when it holds recovery points, keep
/// it, unless `delete_data` (then its recovery points go first).
pub fn removal(name: &str, observed: Option<&Vault>, delete_data: bool) -> Step {
    match observed {
        Some(v) if v.recovery_points > 0 && delete_data => Step::new(
            KIND,
            name,
            Action::Delete,
            vec![format!(
                "with its {} recovery point(s): the backups of the patient data",
                v.recovery_points
            )],
        ),
        Some(v) if v.recovery_points > 0 => Step::new(
            KIND,
            name,
            Action::Keep,
            vec![format!(
                "holds {} recovery point(s): kept (destroy --delete-data deletes them with it)",
                v.recovery_points
            )],
        ),
        Some(_) => Step::new(KIND, name, Action::Delete, vec!["empty".to_string()]),
        None => Step::new(KIND, name, Action::Absent, vec![]),
    }
}

/// The vault, for the engine.
pub struct BackupVault;

impl Resource for BackupVault {
    type Item = Option<Vault>;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let name = &cx.config.backup.vault.name;
        Ok(vec![observe(&cx.aws.backup, name).await?])
    }

    fn step(cx: &Context<'_>, observed: &Self::Item) -> Step {
        changes(&cx.config.backup.vault, &cx.config.tags, observed.as_ref())
    }

    async fn apply_step(cx: &mut Context<'_>, observed: &Self::Item) -> Result<String, AwsError> {
        let c = cx.config;
        apply(&cx.aws.backup, &c.backup.vault, &c.tags, observed.as_ref()).await
    }

    fn removal(cx: &Context<'_>, observed: &Self::Item) -> Step {
        removal(
            &cx.config.backup.vault.name,
            observed.as_ref(),
            cx.delete_data,
        )
    }

    async fn remove(cx: &Context<'_>, observed: &Self::Item) -> Result<(), AwsError> {
        let name = &cx.config.backup.vault.name;
        if cx.delete_data && observed.as_ref().is_some_and(|v| v.recovery_points > 0) {
            delete_recovery_points(&cx.aws.backup, name).await?;
        }
        delete(&cx.aws.backup, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destroy_keeps_a_vault_that_holds_recovery_points() {
        let vault = |recovery_points| Vault {
            name: "v".into(),
            arn: "arn:aws:backup:eu-west-3:1:backup-vault:v".into(),
            encryption_key_arn: None,
            locked: false,
            recovery_points,
            tags: BTreeMap::new(),
        };
        let kept = removal("v", Some(&vault(3)), false);
        assert_eq!(kept.action, Action::Keep);
        assert!(kept.changes[0].starts_with("holds 3 recovery point(s): kept"));
        assert_eq!(removal("v", Some(&vault(3)), true).action, Action::Delete);
        assert_eq!(removal("v", Some(&vault(0)), false).action, Action::Delete);
        assert_eq!(removal("v", None, false).action, Action::Absent);
    }
}
