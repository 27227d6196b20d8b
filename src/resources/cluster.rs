//! The ECS cluster the tasks run in: created with the config's tags when it is missing; destroy
//! deletes it (after the task definitions). With `alerts`, Container Insights is turned on: the
//! alarm on MongoDB's running tasks reads its `RunningTaskCount` and `DesiredTaskCount` (AWS
//! charges for these metrics; without alerts hcctl leaves the setting as it is).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName, Tag};
use aws_sdk_ecs::Client;

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::AwsError;

pub const KIND: Kind = Kind::new("ecs_cluster", "ECS cluster");

/// Whether the cluster exists and is ACTIVE (read-only).
pub async fn observe(client: &Client, name: &str) -> Result<bool, AwsError> {
    let out = client
        .describe_clusters()
        .clusters(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing ECS cluster {name}"), &e))?;
    Ok(out
        .clusters()
        .iter()
        .any(|c| c.cluster_name() == Some(name) && c.status() == Some("ACTIVE")))
}

/// The cluster's Container Insights setting (`enabled`, `enhanced`, `disabled`), when it exists
/// (read-only); `Some(None)` when it exists without the setting.
pub async fn observe_insights(
    client: &Client,
    name: &str,
) -> Result<Option<Option<String>>, AwsError> {
    let out = client
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing ECS cluster {name}"), &e))?;
    Ok(out
        .clusters()
        .iter()
        .find(|c| c.cluster_name() == Some(name) && c.status() == Some("ACTIVE"))
        .map(|c| {
            c.settings()
                .iter()
                .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
                .and_then(|s| s.value())
                .map(str::to_string)
        }))
}

/// Container Insights is wanted on (`enhanced` counts as on).
fn insights_on(value: Option<&str>) -> bool {
    matches!(value, Some("enabled") | Some("enhanced"))
}

/// What deploy will do to the cluster: create it, turn Container Insights on, or nothing
/// (hcctl sets only its name, tags and that setting).
pub fn changes(name: &str, observed: Option<Option<&str>>, insights: bool) -> Step {
    match observed {
        None if insights => Step::new(
            KIND,
            name,
            Action::Create,
            vec!["Container Insights on (the running-tasks alarm reads it)".to_string()],
        ),
        None => Step::new(KIND, name, Action::Create, vec![]),
        Some(v) if insights && !insights_on(v) => Step::new(
            KIND,
            name,
            Action::Update,
            vec![format!(
                "containerInsights: {} → enabled (the running-tasks alarm reads it)",
                v.unwrap_or("(unset)")
            )],
        ),
        Some(_) => Step::new(KIND, name, Action::Unchanged, vec![]),
    }
}

fn insights_setting() -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value("enabled")
        .build()
}

pub async fn apply(
    client: &Client,
    name: &str,
    tags: &BTreeMap<String, String>,
    exists: bool,
    insights: bool,
) -> Result<String, AwsError> {
    if exists {
        client
            .update_cluster_settings()
            .cluster(name)
            .settings(insights_setting())
            .send()
            .await
            .map_err(|e| {
                AwsError::new(
                    format!("turning on Container Insights of ECS cluster {name}"),
                    &e,
                )
            })?;
        return Ok("Container Insights on".to_string());
    }
    let out = client
        .create_cluster()
        .cluster_name(name)
        .set_tags((!tags.is_empty()).then(|| aws_tags(tags)))
        .set_settings(insights.then(|| vec![insights_setting()]))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("creating ECS cluster {name}"), &e))?;
    Ok(out
        .cluster()
        .and_then(|c| c.cluster_arn())
        .unwrap_or("created")
        .to_string())
}

pub async fn delete(client: &Client, name: &str) -> Result<(), AwsError> {
    client
        .delete_cluster()
        .cluster(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting ECS cluster {name}"), &e))
}

fn aws_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The cluster, for the engine.
pub struct Cluster;

impl Resource for Cluster {
    /// The cluster's name and, when it exists, its Container Insights setting.
    type Item = (String, Option<Option<String>>);

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let name = &cx.config.ecs.cluster;
        Ok(vec![(
            name.clone(),
            observe_insights(&cx.aws.ecs, name).await?,
        )])
    }

    fn step(cx: &Context<'_>, (name, observed): &Self::Item) -> Step {
        let o = observed.as_ref().map(|v| v.as_deref());
        // What the config would say of the cluster as it is: no Container Insights, no metrics.
        let was = match o {
            Some(v) if !insights_on(v) => vec!["cost.container_insights_metrics=0".to_string()],
            _ => vec![],
        };
        changes(name, o, cx.config.alerts.is_some()).was(was)
    }

    async fn apply_step(
        cx: &mut Context<'_>,
        (name, observed): &Self::Item,
    ) -> Result<String, AwsError> {
        apply(
            &cx.aws.ecs,
            name,
            &cx.config.tags,
            observed.is_some(),
            cx.config.alerts.is_some(),
        )
        .await
    }

    fn removal(_: &Context<'_>, (name, observed): &Self::Item) -> Step {
        let action = if observed.is_some() {
            Action::Delete
        } else {
            Action::Absent
        };
        Step::new(KIND, name, action, vec![])
    }

    async fn remove(cx: &Context<'_>, (name, _): &Self::Item) -> Result<(), AwsError> {
        delete(&cx.aws.ecs, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_turn_container_insights_on() {
        assert_eq!(changes("c", None, false).changes.len(), 0);
        assert_eq!(changes("c", None, true).changes.len(), 1);
        let s = changes("c", Some(Some("disabled")), true);
        assert_eq!(s.action, Action::Update);
        assert_eq!(
            s.changes[0],
            "containerInsights: disabled → enabled (the running-tasks alarm reads it)"
        );
        assert_eq!(
            changes("c", Some(Some("enhanced")), true).action,
            Action::Unchanged
        );
        assert_eq!(changes("c", Some(None), false).action, Action::Unchanged);
    }
}
