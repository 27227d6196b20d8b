//! The alerts topic (SNS), when the config has `alerts`: `<project>-<environment>-alerts` (or
//! `alerts.topic`), encrypted with the alerts key (or `alerts.kms_key_arn`), with a policy that
//! lets the account manage it, CloudWatch alarms and AWS Backup of this account publish to it,
//! and refuses any publication not made over TLS; tagged. The alarms notify it on ALARM and OK;
//! the subscriptions (`subscription` kind) deliver it. A changed attribute is set back; destroy
//! deletes the topic and with it its subscriptions.

use std::collections::BTreeMap;

use aws_sdk_sns::types::Tag;
use aws_sdk_sns::Client;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, tag_delta, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("topic", "SNS topic");

/// The topic's ARN (SNS topic ARNs are derived from the name).
pub fn arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sns:{region}:{account}:{name}")
}

/// What the config wants: the key and the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub kms_key: String,
    pub policy: Value,
}

pub fn desired(config: &Config, topic_arn: &str, account: &str, key: Option<&str>) -> Desired {
    let kms_key = config
        .alerts
        .as_ref()
        .and_then(|a| a.kms_key_arn.clone())
        .or_else(|| key.map(str::to_string))
        .unwrap_or_else(|| AFTER_APPLY.to_string());
    let publish = |sid: &str, service: &str| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        })
    };
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountManages",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": [
                    "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic", "SNS:Publish", "SNS:DeleteTopic"
                ],
                "Resource": topic_arn,
            },
            publish("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com"),
            publish("BackupNotificationsPublish", "backup.amazonaws.com"),
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    });
    Desired { kms_key, policy }
}

/// The topic as SNS describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub kms_key: Option<String>,
    pub policy: Value,
    pub tags: BTreeMap<String, String>,
}

/// The topic `arn`, if it exists (read-only).
pub async fn observe(client: &Client, arn: &str) -> Result<Option<Observed>, AwsError> {
    let out = match client.get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::new(format!("describing SNS topic {arn}"), &e)),
    };
    let attributes = out.attributes().cloned().unwrap_or_default();
    let tags = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the tags of SNS topic {arn}"), &e))?
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok(Some(Observed {
        kms_key: attributes
            .get("KmsMasterKeyId")
            .filter(|k| !k.is_empty())
            .cloned(),
        policy: attributes
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null),
        tags,
    }))
}

/// Deploy's step (pure).
pub fn changes(
    name: &str,
    want: Option<&Desired>,
    tags: &BTreeMap<String, String>,
    have: Option<&Observed>,
) -> Step {
    match (want, have) {
        (None, None) => Step::new(KIND, name, Action::Absent, vec![]),
        (None, Some(_)) => Step::new(
            KIND,
            name,
            Action::Delete,
            vec!["no alerts in the config: the topic and its subscriptions".to_string()],
        ),
        (Some(w), None) => Step::new(
            KIND,
            name,
            Action::Create,
            vec![
                format!("encrypted with {}", w.kms_key),
                "CloudWatch alarms and AWS Backup of this account may publish; TLS only"
                    .to_string(),
                format!("{} tags", tags.len()),
            ],
        ),
        (Some(w), Some(h)) => {
            let mut lines = Vec::new();
            if w.kms_key != AFTER_APPLY && h.kms_key.as_deref() != Some(w.kms_key.as_str()) {
                lines.push(format!(
                    "kms key: {} → {}",
                    h.kms_key.as_deref().unwrap_or("(none: not encrypted)"),
                    w.kms_key
                ));
            }
            if h.policy != w.policy {
                super::step::diff("policy", &h.policy, &w.policy, &mut lines);
            }
            lines.extend(tag_changes(&h.tags, tags));
            Step::compared(KIND, name, Action::Update, lines)
        }
    }
}

fn sns_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::other("building the topic's tags", e))
        })
        .collect()
}

/// Create the topic (CreateTopic is idempotent) or set back what drifted.
pub async fn apply(
    client: &Client,
    name: &str,
    arn: &str,
    w: &Desired,
    tags: &BTreeMap<String, String>,
    have: Option<&Observed>,
) -> Result<String, AwsError> {
    if w.kms_key == AFTER_APPLY {
        return Err(AwsError::other(
            format!("creating SNS topic {name}"),
            "its KMS key is not known (the key's step did not apply)",
        ));
    }
    let Some(h) = have else {
        let out = client
            .create_topic()
            .name(name)
            .attributes("KmsMasterKeyId", &w.kms_key)
            .attributes("Policy", w.policy.to_string())
            .set_tags((!tags.is_empty()).then(|| sns_tags(tags)).transpose()?)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("creating SNS topic {name}"), &e))?;
        return Ok(out.topic_arn().unwrap_or(arn).to_string());
    };
    let set = |attribute: &'static str, value: String| {
        client
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(attribute)
            .attribute_value(value)
            .send()
    };
    if h.kms_key.as_deref() != Some(w.kms_key.as_str()) {
        set("KmsMasterKeyId", w.kms_key.clone())
            .await
            .map_err(|e| AwsError::new(format!("setting the key of SNS topic {name}"), &e))?;
    }
    if h.policy != w.policy {
        set("Policy", w.policy.to_string())
            .await
            .map_err(|e| AwsError::new(format!("setting the policy of SNS topic {name}"), &e))?;
    }
    let (add, remove) = tag_delta(&h.tags, tags);
    if !add.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sns_tags(&add)?))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("tagging SNS topic {name}"), &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging SNS topic {name}"), &e))?;
    }
    Ok(arn.to_string())
}

pub async fn delete(client: &Client, name: &str, arn: &str) -> Result<(), AwsError> {
    client
        .delete_topic()
        .topic_arn(arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting SNS topic {name}"), &e))
}

/// The alerts topic, for the engine.
pub struct Topic;

pub struct Item {
    pub name: String,
    pub arn: String,
    pub observed: Option<Observed>,
}

fn want(cx: &Context<'_>, item: &Item) -> Option<Desired> {
    cx.config.alerts.as_ref()?;
    let account = cx.outputs.account_id.as_deref().unwrap_or(AFTER_APPLY);
    Some(desired(
        cx.config,
        &item.arn,
        account,
        cx.outputs.alerts_key_arn.as_deref(),
    ))
}

impl Resource for Topic {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let name = cx.config.alerts_topic();
        let Some(account) = cx.outputs.account_id.clone() else {
            return Ok(vec![]);
        };
        let arn = arn(&cx.aws.region, &account, &name);
        let observed = observe(&cx.aws.sns, &arn).await?;
        if observed.is_none() && cx.config.alerts.is_none() {
            return Ok(vec![]);
        }
        if cx.config.alerts.is_some() {
            cx.outputs.alerts_topic_arn = Some(arn.clone());
            cx.outputs.alerts_topic_exists = observed.is_some();
        }
        Ok(vec![Item {
            name,
            arn,
            observed,
        }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(
            &item.name,
            want(cx, item).as_ref(),
            &cx.config.tags,
            item.observed.as_ref(),
        )
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        match want(cx, item) {
            Some(w) => {
                let arn = apply(
                    &cx.aws.sns,
                    &item.name,
                    &item.arn,
                    &w,
                    &cx.config.tags,
                    item.observed.as_ref(),
                )
                .await?;
                cx.outputs.alerts_topic_exists = true;
                Ok(arn)
            }
            None => {
                delete(&cx.aws.sns, &item.name, &item.arn).await?;
                Ok("deleted".into())
            }
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        match item.observed {
            Some(_) => Step::new(
                KIND,
                &item.name,
                Action::Delete,
                vec!["its subscriptions too".to_string()],
            ),
            None => Step::new(KIND, &item.name, Action::Absent, vec![]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        delete(&cx.aws.sns, &item.name, &item.arn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = crate::config::tests_support::example_config();
        c.alerts = Some(serde_yaml_ng::from_str("email: [ops@example.org]").expect("alerts"));
        c
    }

    #[test]
    fn the_policy_admits_cloudwatch_and_backup_of_this_account_over_tls_only() {
        let arn = arn("eu-west-3", "111111111111", "hcctl-dev-alerts");
        assert_eq!(arn, "arn:aws:sns:eu-west-3:111111111111:hcctl-dev-alerts");
        let d = desired(&config(), &arn, "111111111111", Some("arn:aws:kms:k"));
        assert_eq!(d.kms_key, "arn:aws:kms:k");
        let s = d.policy["Statement"].as_array().unwrap();
        let services: Vec<&Value> = s.iter().map(|x| &x["Principal"]["Service"]).collect();
        assert_eq!(services[1], "cloudwatch.amazonaws.com");
        assert_eq!(services[2], "backup.amazonaws.com");
        assert_eq!(s[3]["Effect"], "Deny");
        assert_eq!(s[3]["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert!(s.iter().all(|x| x["Resource"] == arn.as_str()));
    }

    #[test]
    fn an_unencrypted_or_opened_topic_is_put_back() {
        let arn = arn("eu-west-3", "111111111111", "t");
        let d = desired(&config(), &arn, "111111111111", Some("arn:aws:kms:k"));
        let tags = BTreeMap::new();
        let same = Observed {
            kms_key: Some("arn:aws:kms:k".into()),
            policy: d.policy.clone(),
            tags: BTreeMap::new(),
        };
        assert_eq!(
            changes("t", Some(&d), &tags, Some(&same)).action,
            Action::Unchanged
        );
        let open = Observed {
            kms_key: None,
            policy: json!({"Version": "2012-10-17", "Statement": []}),
            tags: BTreeMap::new(),
        };
        let s = changes("t", Some(&d), &tags, Some(&open));
        assert_eq!(s.action, Action::Update);
        assert!(
            s.changes[0].starts_with("kms key: (none: not encrypted) →"),
            "{:?}",
            s.changes
        );
        assert!(s.changes.iter().any(|l| l.starts_with("policy")));
        assert_eq!(
            changes("t", None, &tags, Some(&same)).action,
            Action::Delete
        );
    }
}
