//! The ECS cluster the tasks run in: created with the config's tags when it is missing; destroy
//! deletes it (after the task definitions).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::Tag;
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

/// What deploy will do to the cluster: create it, or nothing (hcctl sets only its name and tags
/// at creation).
pub fn changes(name: &str, exists: bool) -> Step {
    if exists {
        Step::new(KIND, name, Action::Unchanged, vec![])
    } else {
        Step::new(KIND, name, Action::Create, vec![])
    }
}

pub async fn apply(
    client: &Client,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let out = client
        .create_cluster()
        .cluster_name(name)
        .set_tags((!tags.is_empty()).then(|| aws_tags(tags)))
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
    /// The cluster's name and whether it exists.
    type Item = (String, bool);

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let name = &cx.config.ecs.cluster;
        Ok(vec![(name.clone(), observe(&cx.aws.ecs, name).await?)])
    }

    fn step(_: &Context<'_>, (name, exists): &Self::Item) -> Step {
        changes(name, *exists)
    }

    async fn apply_step(cx: &mut Context<'_>, (name, _): &Self::Item) -> Result<String, AwsError> {
        apply(&cx.aws.ecs, name, &cx.config.tags).await
    }

    fn removal(_: &Context<'_>, (name, exists): &Self::Item) -> Step {
        let action = if *exists {
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
