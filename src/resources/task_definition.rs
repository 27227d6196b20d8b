//! ECS task definitions, as hcctl models them ([`TaskDef`]): one family per container (mongo,
//! app), desired from the rendered templates; destroy deregisters every active revision.
//!
//! A task definition is compared semantically: both the rendered template and the latest ACTIVE
//! revision are turned into a [`TaskDef`] (only the fields hcctl manages; what AWS adds such as
//! ARNs, revisions, status and `registeredAt` is ignored) and normalized (defaults AWS fills in,
//! list order AWS does not keep). A new revision is registered only when they differ.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, EfsAuthorizationConfig,
    EfsAuthorizationConfigIam, EfsTransitEncryption, EfsVolumeConfiguration, HealthCheck,
    KeyValuePair, LogConfiguration, LogDriver, MountPoint, NetworkMode, OsFamily, PortMapping,
    RuntimePlatform, Secret, SortOrder, Tag, TaskDefinition, TaskDefinitionField,
    TaskDefinitionStatus, TransportProtocol, Ulimit, UlimitName, Volume,
};
use aws_sdk_ecs::Client;
use serde::{Deserialize, Serialize};

use super::step::diff;
use super::{Action, Command, Context, Kind, Resource, Step};
use crate::aws::AwsError;
use crate::config::Config;

pub const KIND: Kind = Kind::new("task_definition", "task definition");

/// The containers hcctl runs, one task definition family (and one template) each, in this order.
pub const CONTAINERS: [&str; 2] = ["mongo", "app"];

/// The part of a RegisterTaskDefinition request hcctl manages, in the AWS CLI's JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDef {
    pub family: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_compatibilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<Platform>,
    pub container_definitions: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagDef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Platform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<NameValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Health>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<Logging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    pub container_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
    pub value_from: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    pub source_volume: String,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Health {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limit {
    pub name: String,
    pub soft_limit: i32,
    pub hard_limit: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Logging {
    pub log_driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<Efs>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Efs {
    pub file_system_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorization>,
}

/// Mount through an access point, authorized by the task role (IAM).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EfsAuthorization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagDef {
    pub key: String,
    pub value: String,
}

impl TaskDef {
    /// Fill in what AWS fills in and order what AWS does not keep in order, so that a
    /// definition and its registered revision compare equal.
    pub fn normalized(mut self) -> TaskDef {
        self.requires_compatibilities.sort();
        self.tags.sort_by(|a, b| a.key.cmp(&b.key));
        self.volumes.sort_by(|a, b| a.name.cmp(&b.name));
        for v in &mut self.volumes {
            if let Some(efs) = &mut v.efs_volume_configuration {
                efs.root_directory.get_or_insert_with(|| "/".to_string());
                efs.transit_encryption
                    .get_or_insert_with(|| "DISABLED".to_string());
                if let Some(a) = &mut efs.authorization_config {
                    a.iam.get_or_insert_with(|| "DISABLED".to_string());
                }
            }
        }
        let awsvpc = self.network_mode.as_deref() == Some("awsvpc");
        for c in &mut self.container_definitions {
            c.essential.get_or_insert(true);
            c.environment.sort_by(|a, b| a.name.cmp(&b.name));
            c.secrets.sort_by(|a, b| a.name.cmp(&b.name));
            for p in &mut c.port_mappings {
                if awsvpc {
                    p.host_port.get_or_insert(p.container_port);
                }
                p.protocol.get_or_insert_with(|| "tcp".to_string());
            }
            for m in &mut c.mount_points {
                m.read_only.get_or_insert(false);
            }
            if let Some(h) = &mut c.health_check {
                h.interval.get_or_insert(30);
                h.timeout.get_or_insert(5);
                h.retries.get_or_insert(3);
                h.start_period.get_or_insert(0);
            }
        }
        self
    }

    /// The differences from `self` (registered) to `desired`, one line per changed field.
    pub fn changes_to(&self, desired: &TaskDef) -> Vec<String> {
        let (Ok(old), Ok(new)) = (serde_json::to_value(self), serde_json::to_value(desired)) else {
            return vec!["(definitions could not be compared)".to_string()];
        };
        let mut out = Vec::new();
        diff("", &old, &new, &mut out);
        out
    }

    /// The hcctl view of a registered revision and its tags.
    pub fn from_aws(td: &TaskDefinition, tags: &[Tag]) -> TaskDef {
        TaskDef {
            family: td.family().unwrap_or_default().to_string(),
            requires_compatibilities: td
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            network_mode: td.network_mode().map(|m| m.as_str().to_string()),
            cpu: td.cpu().map(str::to_string),
            memory: td.memory().map(str::to_string),
            execution_role_arn: td.execution_role_arn().map(str::to_string),
            task_role_arn: td.task_role_arn().map(str::to_string),
            runtime_platform: td.runtime_platform().map(|p| Platform {
                operating_system_family: p
                    .operating_system_family()
                    .map(|f| f.as_str().to_string()),
                cpu_architecture: p.cpu_architecture().map(|a| a.as_str().to_string()),
            }),
            container_definitions: td
                .container_definitions()
                .iter()
                .map(container_from_aws)
                .collect(),
            volumes: td
                .volumes()
                .iter()
                .map(|v| VolumeDef {
                    name: v.name().unwrap_or_default().to_string(),
                    efs_volume_configuration: v.efs_volume_configuration().map(|e| Efs {
                        file_system_id: e.file_system_id().to_string(),
                        root_directory: e.root_directory().map(str::to_string),
                        transit_encryption: e.transit_encryption().map(|t| t.as_str().to_string()),
                        authorization_config: e.authorization_config().map(|a| EfsAuthorization {
                            access_point_id: a.access_point_id().map(str::to_string),
                            iam: a.iam().map(|i| i.as_str().to_string()),
                        }),
                    }),
                })
                .collect(),
            tags: tags
                .iter()
                .map(|t| TagDef {
                    key: t.key().unwrap_or_default().to_string(),
                    value: t.value().unwrap_or_default().to_string(),
                })
                .collect(),
        }
    }
}

fn container_from_aws(c: &ContainerDefinition) -> Container {
    Container {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        essential: c.essential(),
        // AWS reports 0 for "not set".
        cpu: Some(c.cpu()).filter(|&v| v != 0),
        memory: c.memory(),
        memory_reservation: c.memory_reservation(),
        command: c.command().to_vec(),
        entry_point: c.entry_point().to_vec(),
        port_mappings: c
            .port_mappings()
            .iter()
            .map(|p| Port {
                container_port: p.container_port().unwrap_or_default(),
                host_port: p.host_port(),
                protocol: p.protocol().map(|x| x.as_str().to_string()),
            })
            .collect(),
        environment: c
            .environment()
            .iter()
            .map(|kv| NameValue {
                name: kv.name().unwrap_or_default().to_string(),
                value: kv.value().unwrap_or_default().to_string(),
            })
            .collect(),
        secrets: c
            .secrets()
            .iter()
            .map(|s| SecretRef {
                name: s.name().to_string(),
                value_from: s.value_from().to_string(),
            })
            .collect(),
        mount_points: c
            .mount_points()
            .iter()
            .map(|m| Mount {
                source_volume: m.source_volume().unwrap_or_default().to_string(),
                container_path: m.container_path().unwrap_or_default().to_string(),
                read_only: m.read_only(),
            })
            .collect(),
        health_check: c.health_check().map(|h| Health {
            command: h.command().to_vec(),
            interval: h.interval(),
            timeout: h.timeout(),
            retries: h.retries(),
            start_period: h.start_period(),
        }),
        ulimits: c
            .ulimits()
            .iter()
            .map(|u| Limit {
                name: u.name().as_str().to_string(),
                soft_limit: u.soft_limit(),
                hard_limit: u.hard_limit(),
            })
            .collect(),
        log_configuration: c.log_configuration().map(|l| Logging {
            log_driver: l.log_driver().as_str().to_string(),
            options: l
                .options()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }),
        readonly_root_filesystem: c.readonly_root_filesystem(),
        user: c.user().map(str::to_string),
        working_directory: c.working_directory().map(str::to_string),
    }
}

fn build_err(what: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::other(format!("building the request for {what}"), e)
}

fn container_to_aws(c: &Container) -> Result<ContainerDefinition, AwsError> {
    let mut b = ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .set_essential(c.essential)
        .set_cpu(c.cpu)
        .set_memory(c.memory)
        .set_memory_reservation(c.memory_reservation)
        .set_readonly_root_filesystem(c.readonly_root_filesystem)
        .set_user(c.user.clone())
        .set_working_directory(c.working_directory.clone());
    if !c.command.is_empty() {
        b = b.set_command(Some(c.command.clone()));
    }
    if !c.entry_point.is_empty() {
        b = b.set_entry_point(Some(c.entry_point.clone()));
    }
    for p in &c.port_mappings {
        b = b.port_mappings(
            PortMapping::builder()
                .container_port(p.container_port)
                .set_host_port(p.host_port)
                .set_protocol(p.protocol.as_deref().map(TransportProtocol::from))
                .build(),
        );
    }
    for e in &c.environment {
        b = b.environment(
            KeyValuePair::builder()
                .name(&e.name)
                .value(&e.value)
                .build(),
        );
    }
    for s in &c.secrets {
        b = b.secrets(
            Secret::builder()
                .name(&s.name)
                .value_from(&s.value_from)
                .build()
                .map_err(|e| build_err("a container secret", e))?,
        );
    }
    for m in &c.mount_points {
        b = b.mount_points(
            MountPoint::builder()
                .source_volume(&m.source_volume)
                .container_path(&m.container_path)
                .set_read_only(m.read_only)
                .build(),
        );
    }
    if let Some(h) = &c.health_check {
        b = b.health_check(
            HealthCheck::builder()
                .set_command(Some(h.command.clone()))
                .set_interval(h.interval)
                .set_timeout(h.timeout)
                .set_retries(h.retries)
                .set_start_period(h.start_period)
                .build()
                .map_err(|e| build_err("a health check", e))?,
        );
    }
    for u in &c.ulimits {
        b = b.ulimits(
            Ulimit::builder()
                .name(UlimitName::from(u.name.as_str()))
                .soft_limit(u.soft_limit)
                .hard_limit(u.hard_limit)
                .build()
                .map_err(|e| build_err("a ulimit", e))?,
        );
    }
    if let Some(l) = &c.log_configuration {
        b = b.log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::from(l.log_driver.as_str()))
                .set_options(Some(l.options.clone().into_iter().collect()))
                .build()
                .map_err(|e| build_err("a log configuration", e))?,
        );
    }
    Ok(b.build())
}

/// ARNs of the ACTIVE revisions of exactly this family, newest first.
pub async fn active_revisions(client: &Client, family: &str) -> Result<Vec<String>, AwsError> {
    let mut pages = client
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            AwsError::new(format!("listing revisions of task definition {family}"), &e)
        })?;
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|arn| family_of(arn) == Some(family))
                .cloned(),
        );
    }
    // Newest first whatever order the service used.
    arns.sort_by_key(|arn| std::cmp::Reverse(revision_of(arn).unwrap_or(0)));
    Ok(arns)
}

/// `arn:…:task-definition/FAMILY:REV` → FAMILY.
pub fn family_of(arn: &str) -> Option<&str> {
    let tail = arn.rsplit_once("task-definition/")?.1;
    Some(tail.rsplit_once(':').map_or(tail, |(f, _)| f))
}

pub fn revision_of(arn: &str) -> Option<i64> {
    arn.rsplit_once(':')?.1.parse().ok()
}

/// The latest ACTIVE revision of a family as hcctl sees it, with its ARN.
pub async fn latest(client: &Client, family: &str) -> Result<Option<(String, TaskDef)>, AwsError> {
    let Some(arn) = active_revisions(client, family).await?.into_iter().next() else {
        return Ok(None);
    };
    let out = client
        .describe_task_definition()
        .task_definition(&arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing task definition {arn}"), &e))?;
    let Some(td) = out.task_definition() else {
        return Ok(None);
    };
    Ok(Some((arn.clone(), TaskDef::from_aws(td, out.tags()))))
}

/// What deploy will do to one family: register a first or a new revision, or nothing.
pub fn changes(desired: &TaskDef, latest: Option<&(String, TaskDef)>) -> Step {
    let desired = desired.clone().normalized();
    match latest {
        None => Step::new(
            KIND,
            &desired.family,
            Action::Create,
            vec!["first revision".to_string()],
        ),
        Some((arn, current)) => {
            let current = current.clone().normalized();
            let changes = current.changes_to(&desired);
            if changes.is_empty() {
                let rev = revision_of(arn).map_or(String::new(), |r| format!("revision {r}"));
                let mut step = Step::new(KIND, &desired.family, Action::Unchanged, vec![]);
                if !rev.is_empty() {
                    step.result = Some(rev);
                }
                step
            } else {
                let mut lines = vec![format!(
                    "new revision after {}",
                    revision_of(arn).map_or("?".to_string(), |r| r.to_string())
                )];
                lines.extend(changes);
                Step::new(KIND, &desired.family, Action::Update, lines)
            }
        }
    }
}

/// What the config would say of the family's latest revision (`hcctl cost`'s `--set` form):
/// its task size.
pub fn was(container: &str, current: &TaskDef) -> Vec<String> {
    let mut out = Vec::new();
    for (field, value) in [("cpu", &current.cpu), ("memory", &current.memory)] {
        if let Some(v) = value.as_deref().and_then(|v| v.trim().parse::<u32>().ok()) {
            out.push(format!("containers.{container}.{field}={v}"));
        }
    }
    out
}

/// Register a revision; returns its ARN.
pub async fn apply(client: &Client, td: &TaskDef) -> Result<String, AwsError> {
    let family = td.family.as_str();
    let mut req = client
        .register_task_definition()
        .family(family)
        .set_network_mode(td.network_mode.as_deref().map(NetworkMode::from))
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_task_role_arn(td.task_role_arn.clone());
    for c in &td.requires_compatibilities {
        req = req.requires_compatibilities(Compatibility::from(c.as_str()));
    }
    if let Some(p) = &td.runtime_platform {
        req = req.runtime_platform(
            RuntimePlatform::builder()
                .set_operating_system_family(
                    p.operating_system_family.as_deref().map(OsFamily::from),
                )
                .set_cpu_architecture(p.cpu_architecture.as_deref().map(CpuArchitecture::from))
                .build(),
        );
    }
    for c in &td.container_definitions {
        req = req.container_definitions(container_to_aws(c)?);
    }
    for v in &td.volumes {
        let mut vb = Volume::builder().name(&v.name);
        if let Some(e) = &v.efs_volume_configuration {
            vb = vb.efs_volume_configuration(
                EfsVolumeConfiguration::builder()
                    .file_system_id(&e.file_system_id)
                    .set_root_directory(e.root_directory.clone())
                    .set_transit_encryption(
                        e.transit_encryption
                            .as_deref()
                            .map(EfsTransitEncryption::from),
                    )
                    .set_authorization_config(e.authorization_config.as_ref().map(|a| {
                        EfsAuthorizationConfig::builder()
                            .set_access_point_id(a.access_point_id.clone())
                            .set_iam(a.iam.as_deref().map(EfsAuthorizationConfigIam::from))
                            .build()
                    }))
                    .build()
                    .map_err(|err| build_err("an EFS volume", err))?,
            );
        }
        req = req.volumes(vb.build());
    }
    for t in &td.tags {
        req = req.tags(Tag::builder().key(&t.key).value(&t.value).build());
    }
    let out = req
        .send()
        .await
        .map_err(|e| AwsError::new(format!("registering task definition {family}"), &e))?;
    Ok(out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap_or("registered")
        .to_string())
}

/// Deregister one revision (destroy).
pub async fn delete(client: &Client, arn: &str) -> Result<(), AwsError> {
    client
        .deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deregistering task definition {arn}"), &e))
}

/// The families the config names, in [`CONTAINERS`] order (what destroy looks for).
pub fn families(config: &Config) -> Vec<String> {
    CONTAINERS.iter().map(|name| config.family(name)).collect()
}

/// One family: deploy compares the rendered definition with the latest revision; destroy lists
/// the active revisions it deregisters.
pub enum Item {
    Deploy {
        desired: Box<TaskDef>,
        latest: Option<Box<(String, TaskDef)>>,
    },
    Destroy {
        family: String,
        active: Vec<String>,
    },
}

/// The task definitions, for the engine.
pub struct TaskDefinitions;

impl Resource for TaskDefinitions {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        match cx.command {
            Command::Deploy => {
                for (container, desired) in CONTAINERS.iter().zip(rendered(cx)?) {
                    let latest = latest(&cx.aws.ecs, &desired.family).await?.map(Box::new);
                    // The latest revision stays the one to run when nothing changes; otherwise
                    // the new revision's ARN is known only once it is registered.
                    if let Some(l) = latest.as_deref() {
                        if changes(&desired, Some(l)).action == Action::Unchanged {
                            cx.outputs.task_definitions.insert(container, l.0.clone());
                        }
                    }
                    items.push(Item::Deploy {
                        desired: Box::new(desired),
                        latest,
                    });
                }
            }
            Command::Destroy => {
                for family in families(cx.config) {
                    let active = active_revisions(&cx.aws.ecs, &family).await?;
                    items.push(Item::Destroy { family, active });
                }
            }
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        match item {
            Item::Deploy { desired, latest } => {
                let container = CONTAINERS
                    .iter()
                    .find(|c| cx.config.family(c) == desired.family);
                let was = match (container, latest.as_deref()) {
                    (Some(c), Some((_, current))) => was(c, current),
                    _ => vec![],
                };
                changes(desired, latest.as_deref()).was(was)
            }
            Item::Destroy { family, .. } => not_observed_for(family, "deploy"),
        }
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        match item {
            Item::Deploy { desired, .. } => {
                // Rendered again: roles, secrets and the file system created by the steps before
                // this one are known now.
                let now = rendered(cx)?
                    .into_iter()
                    .find(|td| td.family == desired.family)
                    .ok_or_else(|| wrong_command(&desired.family))?;
                let arn = apply(&cx.aws.ecs, &now).await?;
                if let Some(container) = CONTAINERS
                    .iter()
                    .find(|c| cx.config.family(c) == desired.family)
                {
                    cx.outputs.task_definitions.insert(container, arn.clone());
                }
                Ok(arn)
            }
            Item::Destroy { family, .. } => Err(wrong_command(family)),
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        match item {
            Item::Destroy { family, active } if active.is_empty() => {
                Step::new(KIND, family, Action::Absent, vec![])
            }
            Item::Destroy { family, active } => Step::new(
                KIND,
                family,
                Action::Delete,
                vec![format!("deregister {} active revision(s)", active.len())],
            ),
            Item::Deploy { desired, .. } => not_observed_for(&desired.family, "destroy"),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match item {
            Item::Destroy { active, .. } => {
                for arn in active {
                    delete(&cx.aws.ecs, arn).await?;
                }
                Ok(())
            }
            Item::Deploy { desired, .. } => Err(wrong_command(&desired.family)),
        }
    }
}

/// The task definitions as the outputs known so far make them, in [`CONTAINERS`] order.
fn rendered(cx: &Context<'_>) -> Result<Vec<TaskDef>, AwsError> {
    (cx.render)(&cx.outputs).map_err(|e| AwsError::other("rendering the task definitions", e))
}

/// An item observed for one command and asked of by the other: a bug in the engine, shown in the
/// plan (`keep`, so nothing is done to it) rather than a panic.
fn not_observed_for(family: &str, command: &str) -> Step {
    Step::new(
        KIND,
        family,
        Action::Keep,
        vec![format!("not observed for {command} (a bug in hcctl)")],
    )
}

fn wrong_command(family: &str) -> AwsError {
    AwsError::other(
        format!("task definition {family}"),
        "observed for another command (a bug in hcctl)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_revision_from_arn() {
        let arn = "arn:aws:ecs:eu-west-3:000000000000:task-definition/hcctl-dev-app:12";
        assert_eq!(family_of(arn), Some("hcctl-dev-app"));
        assert_eq!(revision_of(arn), Some(12));
        assert_eq!(family_of("nonsense"), None);
    }

    #[test]
    fn defaults_aws_fills_in_do_not_count_as_changes() {
        let desired = TaskDef {
            family: "f".into(),
            network_mode: Some("awsvpc".into()),
            container_definitions: vec![Container {
                name: "c".into(),
                image: "i:1".into(),
                port_mappings: vec![Port {
                    container_port: 27017,
                    ..Port::default()
                }],
                environment: vec![
                    NameValue {
                        name: "B".into(),
                        value: "2".into(),
                    },
                    NameValue {
                        name: "A".into(),
                        value: "1".into(),
                    },
                ],
                health_check: Some(Health {
                    command: vec!["CMD".into()],
                    ..Health::default()
                }),
                ..Container::default()
            }],
            ..TaskDef::default()
        };
        let mut registered = desired.clone();
        let c = &mut registered.container_definitions[0];
        c.essential = Some(true);
        c.port_mappings[0].host_port = Some(27017);
        c.port_mappings[0].protocol = Some("tcp".into());
        c.environment.reverse();
        c.health_check = Some(Health {
            command: vec!["CMD".into()],
            interval: Some(30),
            timeout: Some(5),
            retries: Some(3),
            start_period: Some(0),
        });
        let latest = ("arn:…:task-definition/f:3".to_string(), registered.clone());
        let step = changes(&desired, Some(&latest));
        assert_eq!(step.action, Action::Unchanged, "{:?}", step.changes);

        let mut changed = desired.clone();
        changed.container_definitions[0].image = "i:2".into();
        let step = changes(&changed, Some(&latest));
        assert_eq!(step.action, Action::Update);
        assert_eq!(
            step.changes,
            [
                "new revision after 3",
                "containerDefinitions[0].image: i:1 → i:2"
            ]
        );
    }
}
