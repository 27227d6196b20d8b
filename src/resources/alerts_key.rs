//! The alerts key: the customer-managed KMS key the alerts topic is encrypted with, when the
//! config has `alerts` and names no key of its own. CloudWatch alarms and AWS Backup cannot
//! publish to a topic encrypted with the AWS-managed `alias/aws/sns` (its policy cannot be
//! changed), so hcctl makes one, found again by its alias `alias/<project>-<environment>-alerts`:
//! its policy lets the account administer it through IAM and lets CloudWatch and AWS Backup —
//! from this account only — generate data keys and decrypt with it; rotated yearly; tagged.
//! A changed policy, rotation turned off, or a deletion scheduled outside hcctl are put back.
//! Destroy deletes the alias and schedules the key's deletion after 7 days (KMS's minimum: it
//! can be cancelled until then); the alerts it protected carry no patient data.

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyState, Tag};
use aws_sdk_kms::Client;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, tag_delta, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("key", "KMS key");

/// The tag hcctl creates the key with (value `<project>-<environment>-alerts`): what the IAM
/// policy of `hcctl iam-policy` scopes the key's actions to (KMS assigns the key's id).
pub const TAG: &str = "hcctl-alerts-key";

/// Days before a key scheduled for deletion is deleted.
pub const DELETION_WINDOW_DAYS: i32 = 7;

/// The key's alias.
pub fn alias(config: &Config) -> String {
    format!("alias/{}", config.resource_name("alerts"))
}

/// Whether hcctl makes the key: alerts are configured, with no key of their own.
pub fn wanted(config: &Config) -> bool {
    config
        .alerts
        .as_ref()
        .is_some_and(|a| a.kms_key_arn.is_none())
}

/// The key as KMS describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub key_id: String,
    pub arn: String,
    pub state: String,
    pub policy: Value,
    pub rotation: bool,
    pub tags: BTreeMap<String, String>,
}

/// The key policy hcctl wants (AWS's documented statements for CloudWatch and AWS Backup
/// publishing to an encrypted topic).
pub fn policy(account: &str) -> Value {
    let service = |sid: &str, principal: &str| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": principal},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        })
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": "kms:*",
                "Resource": "*",
            },
            service("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com"),
            service("BackupNotificationsPublish", "backup.amazonaws.com"),
        ],
    })
}

fn description(config: &Config) -> String {
    format!(
        "hcctl alerts topic {} ({}-{}), managed by hcctl",
        config.alerts_topic(),
        config.project,
        config.environment
    )
}

/// The key behind the alias, if any (read-only).
pub async fn observe(client: &Client, alias: &str) -> Result<Option<Observed>, AwsError> {
    let described = match client.describe_key().key_id(alias).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::new(format!("describing KMS key {alias}"), &e)),
    };
    let Some(meta) = described.key_metadata() else {
        return Ok(None);
    };
    let key_id = meta.key_id().to_string();
    let policy = client
        .get_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| AwsError::new(format!("reading the policy of KMS key {alias}"), &e))?
        .policy()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    let rotation = client
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("reading the rotation of KMS key {alias}"), &e))?
        .key_rotation_enabled();
    let tags = client
        .list_resource_tags()
        .key_id(&key_id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the tags of KMS key {alias}"), &e))?
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect();
    Ok(Some(Observed {
        key_id,
        arn: meta.arn().unwrap_or_default().to_string(),
        state: meta
            .key_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        policy,
        rotation,
        tags,
    }))
}

/// Deploy's step (pure).
pub fn changes(
    alias: &str,
    want: bool,
    policy: &Value,
    tags: &BTreeMap<String, String>,
    observed: Option<&Observed>,
) -> Step {
    match (want, observed) {
        (false, None) => Step::new(KIND, alias, Action::Absent, vec![]),
        (false, Some(_)) => Step::new(
            KIND,
            alias,
            Action::Delete,
            vec![format!(
                "no longer used by the alerts topic: deletion scheduled after \
                 {DELETION_WINDOW_DAYS} days"
            )],
        ),
        (true, None) => Step::new(
            KIND,
            alias,
            Action::Create,
            vec![
                "symmetric, rotated yearly".to_string(),
                "CloudWatch and AWS Backup of this account may encrypt alerts with it".to_string(),
                format!("{} tags", tags.len()),
            ],
        ),
        (true, Some(o)) => {
            let mut lines = Vec::new();
            if o.state == KeyState::PendingDeletion.as_str() {
                lines.push("deletion scheduled: cancelled, key enabled".to_string());
            } else if o.state == KeyState::Disabled.as_str() {
                lines.push("disabled: enabled".to_string());
            }
            if !o.rotation {
                lines.push("rotation: off → yearly".to_string());
            }
            if o.policy != *policy {
                super::step::diff("policy", &o.policy, policy, &mut lines);
            }
            lines.extend(tag_changes(&o.tags, tags));
            Step::compared(KIND, alias, Action::Update, lines)
        }
    }
}

/// The key's tags: the config's, and [`TAG`].
pub fn tags(config: &Config) -> BTreeMap<String, String> {
    let mut t = config.tags.clone();
    t.insert(TAG.to_string(), config.resource_name("alerts"));
    t
}

fn kms_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| AwsError::other("building the KMS key's tags", e))
        })
        .collect()
}

/// Create the key (and its alias), or bring an existing one back to the config. Returns the
/// key's ARN.
pub async fn apply(
    client: &Client,
    config: &Config,
    account: &str,
    observed: Option<&Observed>,
) -> Result<String, AwsError> {
    let alias = alias(config);
    let policy = policy(account);
    let tags = &tags(config);
    macro_rules! err {
        ($what:literal) => {
            |e| AwsError::new(format!(concat!($what, " KMS key {}"), alias), &e)
        };
    }
    let Some(o) = observed else {
        let created = client
            .create_key()
            .description(description(config))
            .policy(policy.to_string())
            .set_tags(Some(kms_tags(tags)?))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("creating KMS key {alias}"), &e))?;
        let meta = created
            .key_metadata()
            .ok_or_else(|| AwsError::other(format!("creating KMS key {alias}"), "no key id"))?;
        let key_id = meta.key_id().to_string();
        client
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&key_id)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("naming KMS key {key_id} {alias}"), &e))?;
        client
            .enable_key_rotation()
            .key_id(&key_id)
            .send()
            .await
            .map_err(err!("turning on the rotation of"))?;
        return Ok(meta.arn().unwrap_or_default().to_string());
    };
    if o.state == KeyState::PendingDeletion.as_str() {
        client
            .cancel_key_deletion()
            .key_id(&o.key_id)
            .send()
            .await
            .map_err(err!("cancelling the deletion of"))?;
    }
    if o.state == KeyState::PendingDeletion.as_str() || o.state == KeyState::Disabled.as_str() {
        client
            .enable_key()
            .key_id(&o.key_id)
            .send()
            .await
            .map_err(err!("enabling"))?;
    }
    if !o.rotation {
        client
            .enable_key_rotation()
            .key_id(&o.key_id)
            .send()
            .await
            .map_err(err!("turning on the rotation of"))?;
    }
    if o.policy != policy {
        client
            .put_key_policy()
            .key_id(&o.key_id)
            .policy_name("default")
            .policy(policy.to_string())
            .send()
            .await
            .map_err(err!("setting the policy of"))?;
    }
    let (set, remove) = tag_delta(&o.tags, tags);
    if !set.is_empty() {
        client
            .tag_resource()
            .key_id(&o.key_id)
            .set_tags(Some(kms_tags(&set)?))
            .send()
            .await
            .map_err(err!("tagging"))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .key_id(&o.key_id)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(err!("untagging"))?;
    }
    Ok(o.arn.clone())
}

/// Delete the alias and schedule the key's deletion.
pub async fn delete(client: &Client, alias: &str, o: &Observed) -> Result<(), AwsError> {
    client
        .delete_alias()
        .alias_name(alias)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("deleting the alias {alias}"), &e))?;
    if o.state == KeyState::PendingDeletion.as_str() {
        return Ok(());
    }
    client
        .schedule_key_deletion()
        .key_id(&o.key_id)
        .pending_window_in_days(DELETION_WINDOW_DAYS)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("scheduling the deletion of KMS key {alias}"), &e))
}

/// The alerts key, for the engine.
pub struct AlertsKey;

pub struct Item {
    pub alias: String,
    pub observed: Option<Observed>,
}

impl Resource for AlertsKey {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let alias = alias(cx.config);
        let observed = observe(&cx.aws.kms, &alias).await?;
        if observed.is_none() && !wanted(cx.config) {
            return Ok(vec![]);
        }
        if wanted(cx.config) {
            cx.outputs.alerts_key_arn = observed.as_ref().map(|o| o.arn.clone());
        }
        Ok(vec![Item { alias, observed }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        let account = cx.outputs.account_id.as_deref().unwrap_or(AFTER_APPLY);
        changes(
            &item.alias,
            wanted(cx.config),
            &policy(account),
            &tags(cx.config),
            item.observed.as_ref(),
        )
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        match (wanted(cx.config), &item.observed) {
            (false, Some(o)) => {
                delete(&cx.aws.kms, &item.alias, o).await?;
                Ok("deletion scheduled".into())
            }
            (false, None) => Ok("absent".into()),
            (true, observed) => {
                let account = cx.outputs.account_id.clone().ok_or_else(|| {
                    AwsError::other(
                        format!("creating KMS key {}", item.alias),
                        "the account id is not known",
                    )
                })?;
                let arn = apply(&cx.aws.kms, cx.config, &account, observed.as_ref()).await?;
                cx.outputs.alerts_key_arn = Some(arn.clone());
                Ok(arn)
            }
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        match &item.observed {
            Some(_) => Step::new(
                KIND,
                &item.alias,
                Action::Delete,
                vec![format!(
                    "deletion scheduled after {DELETION_WINDOW_DAYS} days (cancellable until then)"
                )],
            ),
            None => Step::new(KIND, &item.alias, Action::Absent, vec![]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match &item.observed {
            Some(o) => delete(&cx.aws.kms, &item.alias, o).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(policy: Value) -> Observed {
        Observed {
            key_id: "k".into(),
            arn: "arn:aws:kms:eu-west-3:111111111111:key/k".into(),
            state: "Enabled".into(),
            policy,
            rotation: true,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn the_policy_lets_only_this_accounts_cloudwatch_and_backup_use_the_key() {
        let p = policy("111111111111");
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3);
        for s in &statements[1..] {
            assert_eq!(s["Action"], json!(["kms:Decrypt", "kms:GenerateDataKey*"]));
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:SourceAccount"],
                "111111111111"
            );
        }
        assert_eq!(
            statements[1]["Principal"]["Service"],
            "cloudwatch.amazonaws.com"
        );
        assert_eq!(
            statements[2]["Principal"]["Service"],
            "backup.amazonaws.com"
        );
    }

    #[test]
    fn drift_is_put_back_and_an_unused_key_is_scheduled_for_deletion() {
        let tags = BTreeMap::new();
        let p = policy("111111111111");
        let same = observed(p.clone());
        assert_eq!(
            changes("alias/a", true, &p, &tags, Some(&same)).action,
            Action::Unchanged
        );
        let mut drifted = observed(json!({"Version": "2012-10-17", "Statement": []}));
        drifted.rotation = false;
        drifted.state = "PendingDeletion".into();
        let s = changes("alias/a", true, &p, &tags, Some(&drifted));
        assert_eq!(s.action, Action::Update);
        assert!(s.changes.contains(&"rotation: off → yearly".to_string()));
        assert!(s
            .changes
            .iter()
            .any(|l| l.starts_with("deletion scheduled")));
        assert!(
            s.changes.iter().any(|l| l.starts_with("policy")),
            "{:?}",
            s.changes
        );
        let s = changes("alias/a", false, &p, &tags, Some(&same));
        assert_eq!(s.action, Action::Delete);
        assert_eq!(
            changes("alias/a", false, &p, &tags, None).action,
            Action::Absent
        );
        assert_eq!(
            changes("alias/a", true, &p, &tags, None).action,
            Action::Create
        );
    }
}
