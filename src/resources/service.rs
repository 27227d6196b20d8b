//! The ECS service that runs MongoDB (`ecs.service`, default `<project>-<environment>-mongo`)
//! in the cluster: one Fargate task of the mongo task definition, in the deploy's subnets behind
//! the `mongo` security group, registered in Cloud Map under the discovery service's name.
//!
//! One MongoDB on one file system must never run twice: deployments stop the old task before
//! they start the new one (minimum healthy 0%, maximum 100%), so a new task definition or a
//! network change means a short outage, and the plan says so. The deployment circuit breaker
//! rolls a deployment that cannot start back to the last one that worked. Tags are the config's,
//! propagated from the service to its tasks, with ECS's managed tags.
//!
//! Destroy scales the service to 0, deletes it and waits until ECS has stopped its task (the
//! discovery service, the task definitions and the security groups are removed after it).
//! [`wait_stable`] waits for a deployment to finish, for the command that wants to.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration,
    LaunchType, NetworkConfiguration, PropagateTags, Service as SdkService, ServiceField,
    ServiceRegistry, Tag,
};
use aws_sdk_ecs::Client;

use super::{Action, Context, Kind, Outputs, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, tag_delta, Aws, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("ecs_service", "ECS service");

pub const LAUNCH_TYPE: &str = "FARGATE";
pub const PLATFORM_VERSION: &str = "LATEST";
pub const DESIRED_COUNT: i32 = 1;
/// Stop the old task before starting the new one: never two MongoDB on one file system.
pub const MINIMUM_HEALTHY_PERCENT: i32 = 0;
pub const MAXIMUM_PERCENT: i32 = 100;

/// The plan's line for a change that replaces the running task.
pub const RESTART_LINE: &str =
    "restarts MongoDB: one task at a time on one file system — a short outage";

/// How long destroy waits for ECS to stop the service's task.
const DELETE_TIMEOUT: Duration = Duration::from_secs(600);

/// How ECS rolls out a new version of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `None`: not set (ECS's defaults, 100% and 200%).
    pub minimum_healthy_percent: Option<i32>,
    pub maximum_percent: Option<i32>,
    pub circuit_breaker: bool,
    pub rollback: bool,
}

impl Deployment {
    pub fn desired() -> Deployment {
        Deployment {
            minimum_healthy_percent: Some(MINIMUM_HEALTHY_PERCENT),
            maximum_percent: Some(MAXIMUM_PERCENT),
            circuit_breaker: true,
            rollback: true,
        }
    }

    fn show(&self) -> String {
        let percent =
            |p: Option<i32>| p.map_or_else(|| "(default)".to_string(), |p| format!("{p}%"));
        let breaker = match (self.circuit_breaker, self.rollback) {
            (true, true) => "circuit breaker with rollback",
            (true, false) => "circuit breaker without rollback",
            (false, _) => "no circuit breaker",
        };
        format!(
            "minimum healthy {}, maximum {}, {breaker}",
            percent(self.minimum_healthy_percent),
            percent(self.maximum_percent)
        )
    }
}

/// What hcctl manages of the service (lists sorted: ECS does not keep their order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub task_definition: String,
    pub desired_count: i32,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub registries: Vec<String>,
    pub deployment: Deployment,
}

impl Settings {
    /// Whether a change from `self` to `other` makes ECS replace the running task.
    fn restarts(&self, other: &Settings) -> bool {
        self.task_definition != other.task_definition
            || self.subnets != other.subnets
            || self.security_groups != other.security_groups
            || self.assign_public_ip != other.assign_public_ip
            || self.registries != other.registries
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    /// `None` when the service uses a capacity provider strategy (or the emulator says nothing).
    pub launch_type: Option<String>,
    pub capacity_providers: Vec<String>,
    pub settings: Settings,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub cluster: String,
    /// The ACTIVE service; `None` when absent, draining or inactive.
    pub observed: Option<Observed>,
    /// A service of this name is still DRAINING (deleted, its task stopping).
    pub draining: bool,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}

fn public_ip(enabled: bool) -> &'static str {
    if enabled {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

pub fn desired_tags(config: &Config) -> BTreeMap<String, String> {
    config.tags.clone()
}

/// What the service must be, given the outputs known so far ([`AFTER_APPLY`] for what is not
/// created yet).
pub fn desired(config: &Config, outputs: &Outputs) -> Settings {
    Settings {
        task_definition: Outputs::show(outputs.task_definitions.get("mongo")),
        desired_count: DESIRED_COUNT,
        subnets: sorted(outputs.subnets.clone()),
        security_groups: vec![Outputs::show(outputs.security_groups.get("mongo"))],
        assign_public_ip: config.network.assign_public_ip,
        registries: vec![Outputs::show(outputs.discovery_service_arn.as_ref())],
        deployment: Deployment::desired(),
    }
}

fn observed_of(s: &SdkService) -> Observed {
    let vpc = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let dc = s.deployment_configuration();
    let breaker = dc.and_then(|d| d.deployment_circuit_breaker());
    Observed {
        arn: s.service_arn().unwrap_or_default().to_string(),
        launch_type: s.launch_type().map(|l| l.as_str().to_string()),
        capacity_providers: s
            .capacity_provider_strategy()
            .iter()
            .map(|c| c.capacity_provider().to_string())
            .collect(),
        settings: Settings {
            task_definition: s.task_definition().unwrap_or_default().to_string(),
            desired_count: s.desired_count(),
            subnets: sorted(vpc.map(|v| v.subnets().to_vec()).unwrap_or_default()),
            security_groups: sorted(
                vpc.map(|v| v.security_groups().to_vec())
                    .unwrap_or_default(),
            ),
            assign_public_ip: vpc.and_then(|v| v.assign_public_ip())
                == Some(&AssignPublicIp::Enabled),
            registries: sorted(
                s.service_registries()
                    .iter()
                    .filter_map(|r| r.registry_arn().map(str::to_string))
                    .collect(),
            ),
            deployment: Deployment {
                minimum_healthy_percent: dc.and_then(|d| d.minimum_healthy_percent()),
                maximum_percent: dc.and_then(|d| d.maximum_percent()),
                circuit_breaker: breaker.is_some_and(|b| b.enable()),
                rollback: breaker.is_some_and(|b| b.rollback()),
            },
        },
        tags: s
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

/// The service as ECS describes it, whatever its status (read-only); `None` when ECS does not
/// know it, or the cluster does not exist.
async fn describe(
    client: &Client,
    cluster: &str,
    name: &str,
    with_tags: bool,
) -> Result<Option<SdkService>, AwsError> {
    let mut req = client.describe_services().cluster(cluster).services(name);
    if with_tags {
        req = req.include(ServiceField::Tags);
    }
    match req.send().await {
        Ok(out) => Ok(out
            .services()
            .iter()
            .find(|s| s.service_name() == Some(name) || s.service_arn() == Some(name))
            .cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_cluster_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::new(
            format!("describing ECS service {name} in cluster {cluster}"),
            &e,
        )),
    }
}

/// The service named `name` in `cluster` (read-only): the ACTIVE one, and whether one is
/// draining.
pub async fn observe(
    client: &Client,
    cluster: &str,
    name: &str,
) -> Result<(Option<Observed>, bool), AwsError> {
    let service = describe(client, cluster, name, true).await?;
    Ok(match service.as_ref().and_then(|s| s.status()) {
        Some("ACTIVE") => (service.as_ref().map(observed_of), false),
        Some("DRAINING") => (None, true),
        _ => (None, false),
    })
}

/// The launch type a service runs with, when it is not hcctl's (pure).
fn other_launch(o: &Observed) -> Option<String> {
    match &o.launch_type {
        Some(l) if l != LAUNCH_TYPE => Some(format!("launch type {l}")),
        Some(_) => None,
        None if !o.capacity_providers.is_empty() => Some(format!(
            "capacity providers {}",
            o.capacity_providers.join(", ")
        )),
        None => None,
    }
}

/// What deploy will do to the service (pure).
pub fn changes(config: &Config, outputs: &Outputs, item: &Item) -> Step {
    let want = desired(config, outputs);
    let tags = desired_tags(config);
    let Some(o) = &item.observed else {
        let mut lines = vec![
            format!("task definition {}", want.task_definition),
            format!(
                "{LAUNCH_TYPE} platform {PLATFORM_VERSION}, desired count {}",
                want.desired_count
            ),
            format!("subnets {}", list(&want.subnets)),
            format!("security groups {}", list(&want.security_groups)),
            format!("public IP {}", public_ip(want.assign_public_ip)),
            format!("service registries {}", list(&want.registries)),
            format!(
                "deployment {} (MongoDB never runs twice on one file system)",
                want.deployment.show()
            ),
            format!("{} tags, propagated to the task", tags.len()),
        ];
        if item.draining {
            lines.push(
                "a service of this name is still draining (deleted recently): creating it fails \
                 until ECS has stopped its task; run deploy again in a few minutes"
                    .into(),
            );
        }
        return Step::new(KIND, &item.name, Action::Create, lines);
    };
    if let Some(other) = other_launch(o) {
        return Step::new(
            KIND,
            &item.name,
            Action::Unusable,
            vec![format!(
                "runs with {other}, not {LAUNCH_TYPE} (ECS cannot change it): delete the \
                 service (hcctl destroy, or the ECS console) to let hcctl create it"
            )],
        );
    }
    let have = &o.settings;
    let mut lines = Vec::new();
    // One line per differing setting: "label: old → new".
    let mut differs = |label: &str, differ: bool, old: String, new: String| {
        if differ {
            lines.push(format!("{label}: {old} → {new}"));
        }
    };
    differs(
        "task definition",
        have.task_definition != want.task_definition,
        have.task_definition.clone(),
        want.task_definition.clone(),
    );
    differs(
        "desired count",
        have.desired_count != want.desired_count,
        have.desired_count.to_string(),
        want.desired_count.to_string(),
    );
    differs(
        "subnets",
        have.subnets != want.subnets,
        list(&have.subnets),
        list(&want.subnets),
    );
    differs(
        "security groups",
        have.security_groups != want.security_groups,
        list(&have.security_groups),
        list(&want.security_groups),
    );
    differs(
        "public IP",
        have.assign_public_ip != want.assign_public_ip,
        public_ip(have.assign_public_ip).to_string(),
        public_ip(want.assign_public_ip).to_string(),
    );
    differs(
        "service registries",
        have.registries != want.registries,
        list(&have.registries),
        list(&want.registries),
    );
    differs(
        "deployment",
        have.deployment != want.deployment,
        have.deployment.show(),
        want.deployment.show(),
    );
    if have.restarts(&want) {
        lines.push(RESTART_LINE.into());
    }
    lines.extend(tag_changes(&o.tags, &tags));
    Step::compared(KIND, &item.name, Action::Update, lines)
}

fn ecs_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The settings as the outputs make them now, refusing any value still unknown (the steps
/// before this one create them).
fn known(cx: &Context<'_>, action: &str) -> Result<Settings, AwsError> {
    let want = desired(cx.config, &cx.outputs);
    let unknown: Vec<&str> = [
        (
            "the mongo task definition",
            want.task_definition == AFTER_APPLY,
        ),
        (
            "the mongo security group",
            want.security_groups.iter().any(|s| s == AFTER_APPLY),
        ),
        (
            "the Cloud Map service",
            want.registries.iter().any(|r| r == AFTER_APPLY),
        ),
    ]
    .into_iter()
    .filter_map(|(what, missing)| missing.then_some(what))
    .collect();
    if !unknown.is_empty() {
        return Err(AwsError::other(
            action,
            format!(
                "{} not known yet (a bug in hcctl's order)",
                unknown.join(", ")
            ),
        ));
    }
    if want.subnets.is_empty() {
        return Err(AwsError::other(
            action,
            "no subnets: see the network step of the plan",
        ));
    }
    Ok(want)
}

fn network(want: &Settings, action: &str) -> Result<NetworkConfiguration, AwsError> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(want.subnets.clone()))
        .set_security_groups(Some(want.security_groups.clone()))
        .assign_public_ip(if want.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| AwsError::other(action, e))?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

fn deployment(d: &Deployment) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .set_minimum_healthy_percent(d.minimum_healthy_percent)
        .set_maximum_percent(d.maximum_percent)
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(d.circuit_breaker)
                .rollback(d.rollback)
                .build(),
        )
        .build()
}

fn registries(want: &Settings) -> Vec<ServiceRegistry> {
    want.registries
        .iter()
        .map(|arn| ServiceRegistry::builder().registry_arn(arn).build())
        .collect()
}

/// Create the service, or bring it to the config (a new deployment only when what runs
/// changes: ECS starts one for a new task definition, network or registries).
pub async fn apply(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
    let client = &cx.aws.ecs;
    let name = &item.name;
    let cluster = &item.cluster;
    let tags = desired_tags(cx.config);
    let Some(o) = &item.observed else {
        let action = format!("creating ECS service {name}");
        let want = known(cx, &action)?;
        let out = client
            .create_service()
            .cluster(cluster)
            .service_name(name)
            .task_definition(&want.task_definition)
            .desired_count(want.desired_count)
            .launch_type(LaunchType::Fargate)
            .platform_version(PLATFORM_VERSION)
            .network_configuration(network(&want, &action)?)
            .set_service_registries(Some(registries(&want)))
            .deployment_configuration(deployment(&want.deployment))
            .propagate_tags(PropagateTags::Service)
            .enable_ecs_managed_tags(true)
            .set_tags((!tags.is_empty()).then(|| ecs_tags(&tags)))
            .send()
            .await
            .map_err(|e| AwsError::new(action.as_str(), &e))?;
        return Ok(out
            .service()
            .and_then(|s| s.service_arn())
            .unwrap_or("created")
            .to_string());
    };
    let action = format!("updating ECS service {name}");
    let want = known(cx, &action)?;
    if o.settings != want {
        client
            .update_service()
            .cluster(cluster)
            .service(name)
            .task_definition(&want.task_definition)
            .desired_count(want.desired_count)
            .network_configuration(network(&want, &action)?)
            .deployment_configuration(deployment(&want.deployment))
            .set_service_registries(Some(registries(&want)))
            .force_new_deployment(false)
            .send()
            .await
            .map_err(|e| AwsError::new(action.as_str(), &e))?;
    }
    let (set, remove) = tag_delta(&o.tags, &tags);
    if !set.is_empty() {
        client
            .tag_resource()
            .resource_arn(&o.arn)
            .set_tags(Some(ecs_tags(&set)))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("tagging ECS service {name}"), &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(&o.arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging ECS service {name}"), &e))?;
    }
    Ok(format!("updated {}", o.arn))
}

/// Scale the service to 0, delete it, and wait (bounded, with backoff) until ECS reports it
/// INACTIVE: its task stopped, its address deregistered, its network interface released.
pub async fn delete(client: &Client, cluster: &str, name: &str) -> Result<(), AwsError> {
    let action = format!("deleting ECS service {name}");
    match client
        .update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(0)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_service_not_found_exception() || s.is_cluster_not_found_exception()
            }) =>
        {
            return Ok(())
        }
        // Already draining: the delete below says what it is.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_service_not_active_exception()) => {}
        Err(e) => {
            return Err(AwsError::new(
                format!("scaling ECS service {name} to 0"),
                &e,
            ))
        }
    }
    match client
        .delete_service()
        .cluster(cluster)
        .service(name)
        .force(true)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_service_not_found_exception() || s.is_cluster_not_found_exception()
            }) =>
        {
            return Ok(())
        }
        Err(e) => return Err(AwsError::new(action.as_str(), &e)),
    }
    let started = Instant::now();
    let mut delay = Duration::from_secs(2);
    loop {
        let status = describe(client, cluster, name, false)
            .await?
            .and_then(|s| s.status().map(str::to_string));
        match status.as_deref() {
            None | Some("INACTIVE") => return Ok(()),
            Some(other) if started.elapsed() >= DELETE_TIMEOUT => {
                return Err(AwsError::other(
                    action,
                    format!(
                        "still {other} after {}s (its task is stopping): run destroy again later",
                        DELETE_TIMEOUT.as_secs()
                    ),
                ))
            }
            Some(_) => {
                tracing::info!(service = name, "ECS service still draining; waiting");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(15));
            }
        }
    }
}

/// The ECS service, for the engine.
pub struct Service;

impl Resource for Service {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let name = cx.config.service_name();
        let cluster = cx.config.ecs.cluster.clone();
        let (observed, draining) = observe(&cx.aws.ecs, &cluster, &name).await?;
        Ok(vec![Item {
            name,
            cluster,
            observed,
            draining,
        }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        // What the config would say of the service as it is: its public IP setting.
        let was = item
            .observed
            .as_ref()
            .map(|o| {
                vec![format!(
                    "network.assign_public_ip={}",
                    o.settings.assign_public_ip
                )]
            })
            .unwrap_or_default();
        changes(cx.config, &cx.outputs, item).was(was)
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        apply(cx, item).await
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        match (&item.observed, item.draining) {
            (Some(o), _) => Step::new(
                KIND,
                &item.name,
                Action::Delete,
                vec![format!(
                    "desired count {} → 0, then deleted: MongoDB stops",
                    o.settings.desired_count
                )],
            ),
            (None, true) => Step::new(
                KIND,
                &item.name,
                Action::Absent,
                vec!["already deleted, its task stopping (draining)".into()],
            ),
            (None, false) => Step::new(KIND, &item.name, Action::Absent, vec![]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match &item.observed {
            Some(_) => delete(&cx.aws.ecs, &item.cluster, &item.name).await,
            None => Ok(()),
        }
    }
}

/// One of a service's deployments, as [`judge`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSummary {
    /// `PRIMARY` (the newest), `ACTIVE` (older, being replaced), `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`; `None` when ECS (or an emulator) does not say.
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub task_definition: Option<String>,
}

/// The service's state at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Option<String>,
    pub running: i32,
    pub desired: i32,
    pub deployments: Vec<DeploymentSummary>,
}

/// Whether a service's deployment is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Stable,
    Failed(String),
    Pending,
}

/// Stable when the PRIMARY deployment has COMPLETED with the desired count running (or, where
/// rolloutState is not reported, when it is the only deployment and the desired count runs);
/// failed when the service is no longer ACTIVE or a deployment's rollout FAILED (also the one a
/// circuit breaker is rolling back from, while the rollback is the PRIMARY one) (pure).
pub fn judge(s: &Snapshot) -> Judgement {
    if let Some(status) = s.status.as_deref().filter(|st| *st != "ACTIVE") {
        return Judgement::Failed(format!("the service is {status}"));
    }
    if let Some(failed) = s
        .deployments
        .iter()
        .find(|d| d.rollout_state.as_deref() == Some("FAILED"))
    {
        let rolled_back = failed.status != "PRIMARY";
        return Judgement::Failed(format!(
            "the deployment failed{}{}",
            failed
                .rollout_state_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            if rolled_back {
                " (the circuit breaker is rolling back to the previous deployment)"
            } else {
                ""
            }
        ));
    }
    let Some(primary) = s.deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Judgement::Pending;
    };
    let all_running = s.running == s.desired;
    match primary.rollout_state.as_deref() {
        Some("COMPLETED") if all_running => Judgement::Stable,
        None if s.deployments.len() == 1 && all_running => Judgement::Stable,
        _ => Judgement::Pending,
    }
}

/// A service event: id, creation time (seconds since the epoch), message.
pub type Event = (String, Option<i64>, String);

/// The events (newest first, as ECS lists them) not reported yet, oldest first; marks them seen.
/// `since`: on the first poll, only events from the current deployment on (ECS keeps the last
/// hundred, however old), at most `first_limit` of them (pure).
pub fn new_events(
    events: &[Event],
    seen: &mut HashSet<String>,
    since: Option<i64>,
    first_limit: Option<usize>,
) -> Vec<String> {
    let mut fresh: Vec<String> = Vec::new();
    for (id, at, message) in events {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let (Some(since), Some(at)) = (since, at) {
            if *at < since {
                continue;
            }
        }
        fresh.push(message.clone());
    }
    if let Some(limit) = first_limit {
        fresh.truncate(limit);
    }
    fresh.reverse();
    fresh
}

fn snapshot(s: &SdkService) -> Snapshot {
    Snapshot {
        status: s.status().map(str::to_string),
        running: s.running_count(),
        desired: s.desired_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| DeploymentSummary {
                status: d.status().unwrap_or_default().to_string(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_string),
                task_definition: d.task_definition().map(str::to_string),
            })
            .collect(),
    }
}

fn events_of(s: &SdkService) -> Vec<Event> {
    s.events()
        .iter()
        .filter_map(|e| {
            Some((
                e.id()?.to_string(),
                e.created_at().map(|t| t.secs()),
                e.message().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The last few events, oldest first, for an error message.
fn last_events(events: &[Event]) -> String {
    let mut last: Vec<&str> = events.iter().take(3).map(|(_, _, m)| m.as_str()).collect();
    last.reverse();
    if last.is_empty() {
        "(none)".to_string()
    } else {
        last.join(" | ")
    }
}

/// Wait until the service's deployment is over: poll DescribeServices with backoff (1 s doubling
/// to 15 s), report each new service event through `progress`, and say what runs once stable.
/// Fails when the rollout FAILED (the circuit breaker stopped it) or `timeout` passes, with the
/// last events.
/// Why the service's latest stopped tasks stopped (at most five), for a failed rollout's error;
/// what could not be read is said, never an error of its own.
async fn stopped_reasons(aws: &Aws, cluster: &str, service: &str) -> String {
    let listed = aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .max_results(5)
        .send()
        .await;
    let arns = match listed {
        Ok(out) => out.task_arns().to_vec(),
        Err(e) => {
            return format!(
                "(not listed: {})",
                AwsError::new("listing stopped tasks", &e)
            )
        }
    };
    if arns.is_empty() {
        return "none listed".to_string();
    }
    match aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
    {
        Ok(out) => out
            .tasks()
            .iter()
            .map(|t| {
                let id = t
                    .task_arn()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or("?");
                let reason = t.stopped_reason().unwrap_or("no reason given");
                let exits: Vec<String> = t
                    .containers()
                    .iter()
                    .filter_map(|c| {
                        let code = c.exit_code()?;
                        Some(format!("{} exited {code}", c.name().unwrap_or("container")))
                    })
                    .collect();
                if exits.is_empty() {
                    format!("{id}: {reason}")
                } else {
                    format!("{id}: {reason} ({})", exits.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!(
            "(not described: {})",
            AwsError::new("describing stopped tasks", &e)
        ),
    }
}

pub async fn wait_stable(
    aws: &Aws,
    config: &Config,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<String, AwsError> {
    let name = config.service_name();
    let cluster = &config.ecs.cluster;
    let action = format!("waiting for ECS service {name} to become stable");
    let look = format!(
        "see the container logs in {} and the service's events (aws ecs describe-services \
         --cluster {cluster} --services {name})",
        config.log_groups.mongo.name
    );
    let started = Instant::now();
    let mut delay = Duration::from_secs(1);
    let mut seen: HashSet<String> = HashSet::new();
    let mut first = true;
    let mut last_state = String::new();
    loop {
        let Some(service) = describe(&aws.ecs, cluster, &name, false).await? else {
            return Err(AwsError::other(
                action,
                format!("the service does not exist in cluster {cluster}"),
            ));
        };
        let snap = snapshot(&service);
        let events = events_of(&service);
        let since = first
            .then(|| {
                service
                    .deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
                    .and_then(|d| d.created_at())
                    .map(|t| t.secs())
            })
            .flatten();
        for message in new_events(&events, &mut seen, since, first.then_some(10)) {
            progress(&message);
        }
        first = false;
        match judge(&snap) {
            Judgement::Stable => {
                let td = snap
                    .deployments
                    .iter()
                    .find(|d| d.status == "PRIMARY")
                    .and_then(|d| d.task_definition.clone())
                    .or_else(|| service.task_definition().map(str::to_string))
                    .unwrap_or_default();
                return Ok(format!(
                    "stable: {}/{} running {td}",
                    snap.running, snap.desired
                ));
            }
            Judgement::Failed(reason) => {
                let stopped = stopped_reasons(aws, cluster, &name).await;
                return Err(AwsError::other(
                    action,
                    format!(
                        "{reason}. Stopped tasks: {stopped}. Last events: {}. {look}",
                        last_events(&events)
                    ),
                ));
            }
            Judgement::Pending => {}
        }
        let state = format!(
            "{}/{} running{}",
            snap.running,
            snap.desired,
            snap.deployments
                .iter()
                .find(|d| d.status == "PRIMARY")
                .and_then(|d| d.rollout_state.as_deref())
                .map(|r| format!(", rollout {r}"))
                .unwrap_or_default()
        );
        if state != last_state {
            progress(&state);
            last_state = state;
        }
        if started.elapsed() >= timeout {
            return Err(AwsError::other(
                action,
                format!(
                    "not stable after {}s ({last_state}). Last events: {}. {look}; raise \
                     --wait-timeout to wait longer",
                    timeout.as_secs(),
                    last_events(&events)
                ),
            ));
        }
        let left = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(delay.min(left.max(Duration::from_millis(100)))).await;
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "arn:aws:ecs:eu-west-3:123456789012:task-definition/hcctl-dev-mongo:3";
    const SD: &str = "arn:aws:servicediscovery:eu-west-3:123456789012:service/srv-1";

    fn outputs() -> Outputs {
        let mut o = Outputs {
            subnets: vec!["subnet-b".into(), "subnet-a".into()],
            discovery_service_arn: Some(SD.into()),
            ..Outputs::default()
        };
        o.security_groups.insert("mongo", "sg-m".into());
        o.task_definitions.insert("mongo", TD.into());
        o
    }

    fn item(config: &Config, observed: Option<Observed>) -> Item {
        Item {
            name: config.service_name(),
            cluster: config.ecs.cluster.clone(),
            observed,
            draining: false,
        }
    }

    fn running(config: &Config) -> Observed {
        Observed {
            arn: "arn:aws:ecs:eu-west-3:123456789012:service/hcctl-dev/hcctl-dev-mongo".into(),
            launch_type: Some("FARGATE".into()),
            capacity_providers: vec![],
            settings: desired(config, &outputs()),
            tags: desired_tags(config),
        }
    }

    #[test]
    fn a_new_service_lists_its_settings_unknown_values_after_apply() {
        let config = crate::config::tests_support::example_config();
        let step = changes(&config, &outputs(), &item(&config, None));
        assert_eq!(step.name, "hcctl-dev-mongo");
        assert_eq!(step.action, Action::Create);
        assert_eq!(
            step.changes,
            [
                format!("task definition {TD}"),
                "FARGATE platform LATEST, desired count 1".to_string(),
                "subnets subnet-a, subnet-b".to_string(),
                "security groups sg-m".to_string(),
                "public IP DISABLED".to_string(),
                format!("service registries {SD}"),
                "deployment minimum healthy 0%, maximum 100%, circuit breaker with rollback \
                 (MongoDB never runs twice on one file system)"
                    .to_string(),
                format!("{} tags, propagated to the task", config.tags.len()),
            ]
        );
        let fresh = Outputs {
            subnets: vec!["subnet-a".into()],
            ..Outputs::default()
        };
        let step = changes(&config, &fresh, &item(&config, None));
        assert_eq!(step.changes[0], format!("task definition {AFTER_APPLY}"));
        assert_eq!(step.changes[3], format!("security groups {AFTER_APPLY}"));
        assert_eq!(step.changes[5], format!("service registries {AFTER_APPLY}"));
    }

    #[test]
    fn a_matching_service_is_unchanged() {
        let config = crate::config::tests_support::example_config();
        let step = changes(&config, &outputs(), &item(&config, Some(running(&config))));
        assert_eq!(step.action, Action::Unchanged);
        assert!(step.changes.is_empty(), "{:?}", step.changes);
    }

    #[test]
    fn a_new_task_definition_restarts_mongodb_and_says_so() {
        let config = crate::config::tests_support::example_config();
        let mut old = running(&config);
        old.settings.task_definition = TD.replace(":3", ":2");
        let step = changes(&config, &outputs(), &item(&config, Some(old.clone())));
        assert_eq!(step.action, Action::Update);
        assert_eq!(
            step.changes,
            [
                format!("task definition: {} → {TD}", TD.replace(":3", ":2")),
                RESTART_LINE.to_string(),
            ]
        );
        // A revision still to be registered: known after apply.
        let mut later = outputs();
        later.task_definitions.clear();
        let step = changes(&config, &later, &item(&config, Some(old)));
        assert_eq!(
            step.changes[0],
            format!(
                "task definition: {} → {AFTER_APPLY}",
                TD.replace(":3", ":2")
            )
        );
    }

    #[test]
    fn a_scaled_down_service_with_ecs_defaults_is_brought_back_without_a_restart() {
        let config = crate::config::tests_support::example_config();
        let mut o = running(&config);
        o.settings.desired_count = 0;
        o.settings.deployment = Deployment {
            minimum_healthy_percent: Some(100),
            maximum_percent: Some(200),
            circuit_breaker: false,
            rollback: false,
        };
        let step = changes(&config, &outputs(), &item(&config, Some(o)));
        assert_eq!(step.action, Action::Update);
        assert_eq!(
            step.changes,
            [
                "desired count: 0 → 1",
                "deployment: minimum healthy 100%, maximum 200%, no circuit breaker → minimum \
                 healthy 0%, maximum 100%, circuit breaker with rollback",
            ]
        );
    }

    #[test]
    fn a_service_on_another_launch_type_is_unusable() {
        let config = crate::config::tests_support::example_config();
        let mut o = running(&config);
        o.launch_type = Some("EC2".into());
        let step = changes(&config, &outputs(), &item(&config, Some(o)));
        assert_eq!(step.action, Action::Unusable);
        assert_eq!(
            step.changes,
            ["runs with launch type EC2, not FARGATE (ECS cannot change it): delete the service \
              (hcctl destroy, or the ECS console) to let hcctl create it"]
        );
    }

    fn deployment(status: &str, rollout: Option<&str>) -> DeploymentSummary {
        DeploymentSummary {
            status: status.into(),
            rollout_state: rollout.map(str::to_string),
            rollout_state_reason: None,
            task_definition: Some(TD.into()),
        }
    }

    fn snap(running: i32, deployments: Vec<DeploymentSummary>) -> Snapshot {
        Snapshot {
            status: Some("ACTIVE".into()),
            running,
            desired: 1,
            deployments,
        }
    }

    #[test]
    fn a_deployment_is_judged_by_its_rollout_state_or_its_counts() {
        let done = snap(1, vec![deployment("PRIMARY", Some("COMPLETED"))]);
        assert_eq!(judge(&done), Judgement::Stable);
        let starting = snap(0, vec![deployment("PRIMARY", Some("IN_PROGRESS"))]);
        assert_eq!(judge(&starting), Judgement::Pending);
        let replacing = snap(
            1,
            vec![
                deployment("PRIMARY", Some("IN_PROGRESS")),
                deployment("ACTIVE", Some("COMPLETED")),
            ],
        );
        assert_eq!(judge(&replacing), Judgement::Pending);
        // An emulator without rollout states: one deployment, all running.
        assert_eq!(
            judge(&snap(1, vec![deployment("PRIMARY", None)])),
            Judgement::Stable
        );
        assert_eq!(
            judge(&snap(
                1,
                vec![deployment("PRIMARY", None), deployment("ACTIVE", None)]
            )),
            Judgement::Pending
        );
        let mut failed = deployment("PRIMARY", Some("FAILED"));
        failed.rollout_state_reason = Some("tasks failed to start".into());
        assert_eq!(
            judge(&snap(0, vec![failed.clone()])),
            Judgement::Failed("the deployment failed: tasks failed to start".into())
        );
        failed.status = "ACTIVE".into();
        assert_eq!(
            judge(&snap(
                0,
                vec![deployment("PRIMARY", Some("IN_PROGRESS")), failed]
            )),
            Judgement::Failed(
                "the deployment failed: tasks failed to start (the circuit breaker is rolling \
                 back to the previous deployment)"
                    .into()
            )
        );
        let mut gone = done;
        gone.status = Some("DRAINING".into());
        assert_eq!(
            judge(&gone),
            Judgement::Failed("the service is DRAINING".into())
        );
    }

    #[test]
    fn events_are_reported_once_oldest_first_from_the_current_deployment_on() {
        let events: Vec<Event> = vec![
            ("e3".into(), Some(300), "has reached a steady state.".into()),
            ("e2".into(), Some(200), "has started 1 tasks.".into()),
            ("e1".into(), Some(100), "an old deployment's event".into()),
        ];
        let mut seen = HashSet::new();
        assert_eq!(
            new_events(&events[1..], &mut seen, Some(150), Some(10)),
            ["has started 1 tasks."]
        );
        assert_eq!(
            new_events(&events, &mut seen, None, None),
            ["has reached a steady state."]
        );
        assert!(new_events(&events, &mut seen, None, None).is_empty());
    }
}
