//! Log groups (CloudWatch Logs): the groups the containers write to — retention, KMS key and tags
//! brought to the config. Destroy deletes them with their log events.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::Client;

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::{create_tags, tag_changes, tag_delta, AwsError};
use crate::config::{Config, LogGroup};

pub const KIND: Kind = Kind::new("log_group", "log group");

/// A log group as CloudWatch describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub retention_days: Option<i32>,
    pub kms_key_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Describe the group named exactly `name` (read-only).
pub async fn observe(client: &Client, name: &str) -> Result<Option<Observed>, AwsError> {
    let action = || format!("describing log group {name}");
    let mut pages = client
        .describe_log_groups()
        .log_group_name_prefix(name)
        .into_paginator()
        .send();
    let mut found = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new(action(), &e))?;
        if let Some(g) = page
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
        {
            found = Some(g.clone());
            break;
        }
    }
    let Some(g) = found else {
        return Ok(None);
    };
    // Tagging APIs want the ARN without the trailing ":*" that DescribeLogGroups' `arn` has.
    let arn = g
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default();
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the tags of log group {name}"), &e))?
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Some(Observed {
        arn,
        retention_days: g.retention_in_days(),
        kms_key_arn: g.kms_key_id().map(str::to_string),
        tags,
    }))
}

/// The groups the config wants, mongo's first.
pub fn desired(config: &Config) -> [&LogGroup; 2] {
    [&config.log_groups.mongo, &config.log_groups.app]
}

/// What deploy will do to one log group.
pub fn changes(
    desired: &LogGroup,
    tags: &BTreeMap<String, String>,
    observed: Option<&Observed>,
) -> Step {
    let Some(o) = observed else {
        let mut changes = vec![format!("retention {} days", desired.retention_days)];
        if let Some(k) = &desired.kms_key_arn {
            changes.push(format!("KMS key {k}"));
        }
        changes.push(format!("{} tags", tags.len()));
        return Step::new(KIND, &desired.name, Action::Create, changes);
    };
    let mut changes = Vec::new();
    if o.retention_days != Some(desired.retention_days as i32) {
        changes.push(format!(
            "retention_days: {} → {}",
            o.retention_days
                .map_or("never expire".to_string(), |d| d.to_string()),
            desired.retention_days
        ));
    }
    if o.kms_key_arn != desired.kms_key_arn {
        changes.push(format!(
            "kms_key_arn: {} → {}",
            o.kms_key_arn.as_deref().unwrap_or("(none)"),
            desired.kms_key_arn.as_deref().unwrap_or("(none)")
        ));
    }
    changes.extend(tag_changes(&o.tags, tags));
    Step::compared(KIND, &desired.name, Action::Update, changes)
}

/// What the config would say of the group as it is (`hcctl cost`'s `--set` form): its
/// retention, when it has one CloudWatch lets the config say.
pub fn was(config_key: &str, observed: Option<&Observed>) -> Vec<String> {
    observed
        .and_then(|o| o.retention_days)
        .and_then(|d| u32::try_from(d).ok())
        .filter(|d| crate::config::RETENTION_DAYS.contains(d))
        .map(|d| vec![format!("{config_key}.retention_days={d}")])
        .unwrap_or_default()
}

/// Bring the group to the config. `observed` is what [`observe`] saw.
pub async fn apply(
    client: &Client,
    desired: &LogGroup,
    tags: &BTreeMap<String, String>,
    observed: Option<&Observed>,
) -> Result<String, AwsError> {
    let name = desired.name.as_str();
    let Some(o) = observed else {
        client
            .create_log_group()
            .log_group_name(name)
            .set_kms_key_id(desired.kms_key_arn.clone())
            .set_tags(create_tags(tags))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("creating log group {name}"), &e))?;
        put_retention(client, desired).await?;
        return Ok("created".to_string());
    };
    if o.retention_days != Some(desired.retention_days as i32) {
        put_retention(client, desired).await?;
    }
    if o.kms_key_arn != desired.kms_key_arn {
        match &desired.kms_key_arn {
            Some(key) => client
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    AwsError::new(format!("associating the KMS key with log group {name}"), &e)
                })?,
            None => client
                .disassociate_kms_key()
                .log_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    AwsError::new(
                        format!("disassociating the KMS key from log group {name}"),
                        &e,
                    )
                })?,
        }
    }
    let (set, remove) = tag_delta(&o.tags, tags);
    if !set.is_empty() {
        client
            .tag_resource()
            .resource_arn(&o.arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("tagging log group {name}"), &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(&o.arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging log group {name}"), &e))?;
    }
    Ok("updated".to_string())
}

async fn put_retention(client: &Client, desired: &LogGroup) -> Result<(), AwsError> {
    client
        .put_retention_policy()
        .log_group_name(&desired.name)
        .retention_in_days(desired.retention_days as i32)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            AwsError::new(
                format!("setting the retention of log group {}", desired.name),
                &e,
            )
        })
}

/// Delete the group (destroy). Missing is fine.
pub async fn delete(client: &Client, name: &str) -> Result<(), AwsError> {
    match client.delete_log_group().log_group_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(AwsError::new(format!("deleting log group {name}"), &e)),
    }
}

/// The log groups, for the engine.
pub struct LogGroups;

impl Resource for LogGroups {
    type Item = (LogGroup, Option<Observed>);

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let mut items = Vec::new();
        for group in desired(cx.config) {
            let observed = observe(&cx.aws.logs, &group.name).await?;
            items.push((group.clone(), observed));
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, (group, observed): &Self::Item) -> Step {
        let key = if group.name == cx.config.log_groups.mongo.name {
            "log_groups.mongo"
        } else {
            "log_groups.app"
        };
        changes(group, &cx.config.tags, observed.as_ref()).was(was(key, observed.as_ref()))
    }

    async fn apply_step(
        cx: &mut Context<'_>,
        (group, observed): &Self::Item,
    ) -> Result<String, AwsError> {
        apply(&cx.aws.logs, group, &cx.config.tags, observed.as_ref()).await
    }

    fn removal(_: &Context<'_>, (group, observed): &Self::Item) -> Step {
        match observed {
            Some(_) => Step::new(
                KIND,
                &group.name,
                Action::Delete,
                vec!["its log events too".to_string()],
            ),
            None => Step::new(KIND, &group.name, Action::Absent, vec![]),
        }
    }

    async fn remove(cx: &Context<'_>, (group, _): &Self::Item) -> Result<(), AwsError> {
        delete(&cx.aws.logs, &group.name).await
    }
}
