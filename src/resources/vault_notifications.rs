//! AWS Backup's notifications of the vault to the alerts topic (`alerts.vault_notifications`,
//! on by default): the events a person must act on — a backup, copy or restore job that failed,
//! a backup job that expired before it could run, an S3 object that could not be backed up or
//! restored. A changed topic or event list is put back (PutBackupVaultNotifications replaces
//! both); destroy deletes them (the vault may be kept, its notifications go with the topic).

use aws_sdk_backup::types::BackupVaultEvent;
use aws_sdk_backup::Client;

use super::{Action, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::AwsError;
use crate::config::Config;

pub const KIND: Kind = Kind::new("vault_notifications", "vault notifications");

/// The events sent, in AWS's names.
pub const EVENTS: [&str; 6] = [
    "BACKUP_JOB_FAILED",
    "BACKUP_JOB_EXPIRED",
    "COPY_JOB_FAILED",
    "RESTORE_JOB_FAILED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
];

pub fn wanted(config: &Config) -> bool {
    config
        .alerts
        .as_ref()
        .is_some_and(|a| a.vault_notifications)
}

/// `(topic ARN, events sorted)` as AWS Backup has them for the vault; `None` when it sends none.
pub type Observed = (String, Vec<String>);

pub async fn observe(client: &Client, vault: &str) -> Result<Option<Observed>, AwsError> {
    match client
        .get_backup_vault_notifications()
        .backup_vault_name(vault)
        .send()
        .await
    {
        Ok(out) => {
            let mut events: Vec<String> = out
                .backup_vault_events()
                .iter()
                .map(|e| e.as_str().to_string())
                .collect();
            events.sort();
            Ok(out.sns_topic_arn().map(|t| (t.to_string(), events)))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::new(
            format!("reading the notifications of vault {vault}"),
            &e,
        )),
    }
}

fn events() -> Vec<String> {
    let mut e: Vec<String> = EVENTS.iter().map(|s| s.to_string()).collect();
    e.sort();
    e
}

/// Deploy's step (pure).
pub fn changes(vault: &str, want: Option<&str>, have: Option<&Observed>) -> Step {
    match (want, have) {
        (Some(topic), None) => Step::new(
            KIND,
            vault,
            Action::Create,
            vec![format!("{} → {topic}", EVENTS.join(", "))],
        ),
        (Some(topic), Some((t, e))) => {
            let mut lines = Vec::new();
            if topic != AFTER_APPLY && t != topic {
                lines.push(format!("topic: {t} → {topic}"));
            }
            if *e != events() {
                lines.push(format!("events: {} → {}", e.join(", "), EVENTS.join(", ")));
            }
            Step::compared(KIND, vault, Action::Update, lines)
        }
        (None, Some(_)) => Step::new(
            KIND,
            vault,
            Action::Delete,
            vec!["not wanted by the config".to_string()],
        ),
        (None, None) => Step::new(KIND, vault, Action::Absent, vec![]),
    }
}

async fn delete(client: &Client, vault: &str) -> Result<(), AwsError> {
    client
        .delete_backup_vault_notifications()
        .backup_vault_name(vault)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting the notifications of vault {vault}"), &e))
}

pub struct VaultNotifications;

pub struct Item {
    pub vault: String,
    pub observed: Option<Observed>,
}

fn topic(cx: &Context<'_>) -> Option<String> {
    wanted(cx.config).then(|| {
        cx.outputs
            .alerts_topic_arn
            .clone()
            .unwrap_or_else(|| AFTER_APPLY.to_string())
    })
}

impl Resource for VaultNotifications {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let vault = cx.config.backup.vault.name.clone();
        // No vault yet: no notifications; asking would fail (and AWS Backup's answer to a
        // missing vault says so, not "none").
        let exists = super::backup_vault::observe(&cx.aws.backup, &vault)
            .await?
            .is_some();
        let observed = if exists && (wanted(cx.config) || cx.config.alerts.is_some()) {
            observe(&cx.aws.backup, &vault).await?
        } else {
            None
        };
        if observed.is_none() && !wanted(cx.config) {
            return Ok(vec![]);
        }
        Ok(vec![Item { vault, observed }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(&item.vault, topic(cx).as_deref(), item.observed.as_ref())
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        match topic(cx) {
            Some(t) if t != AFTER_APPLY => {
                let events: Vec<BackupVaultEvent> =
                    EVENTS.iter().map(|e| BackupVaultEvent::from(*e)).collect();
                cx.aws
                    .backup
                    .put_backup_vault_notifications()
                    .backup_vault_name(&item.vault)
                    .sns_topic_arn(&t)
                    .set_backup_vault_events(Some(events))
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::new(
                            format!("sending the notifications of vault {} to {t}", item.vault),
                            &e,
                        )
                    })?;
                Ok(t)
            }
            Some(_) => Err(AwsError::other(
                format!("sending the notifications of vault {}", item.vault),
                "the topic's ARN is not known",
            )),
            None => {
                delete(&cx.aws.backup, &item.vault).await?;
                Ok("deleted".into())
            }
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        Step::removal(KIND, &item.vault, item.observed.is_some())
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        delete(&cx.aws.backup, &item.vault).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failures_go_to_the_topic() {
        let t = "arn:aws:sns:eu-west-3:1:t";
        assert_eq!(changes("v", Some(t), None).action, Action::Create);
        let same = (t.to_string(), events());
        assert_eq!(changes("v", Some(t), Some(&same)).action, Action::Unchanged);
        let other = (
            "arn:aws:sns:eu-west-3:1:x".to_string(),
            vec!["BACKUP_JOB_FAILED".into()],
        );
        let s = changes("v", Some(t), Some(&other));
        assert_eq!(s.changes.len(), 2, "{:?}", s.changes);
        assert_eq!(changes("v", None, Some(&same)).action, Action::Delete);
    }
}
