//! The resources hcctl manages (or, for references, checks), one file per kind, each with the same
//! parts:
//!
//! - `observe`: read-only SDK calls, turned once into the kind's own small struct;
//! - `desired`: what the config (or the rendered templates) asks for;
//! - `changes`: pure — desired vs observed → a [`Step`] with its action and change lines (no SDK
//!   types, so it is unit-tested without a server);
//! - `apply`: create, update or replace; `delete`: what destroy removes (or keeps).
//!
//! Each kind ties its parts together in one [`Resource`] impl, which is all the deploy engine
//! (`crate::deploy`) sees: the engine owns the order, the one plan, dry runs, apply and destroy.
//! Read-only commands (backup-status) call the same `observe`/`desired`/`changes` parts directly,
//! so this floor sits below both and imports neither.

pub mod access_point;
pub mod alarm;
pub mod alerts_key;
pub mod backup_plan;
pub mod backup_selection;
pub mod backup_vault;
pub mod bucket;
pub mod cluster;
pub mod discovery_service;
pub mod file_system;
pub mod log_group;
pub mod metric_filter;
pub mod mount_target;
pub mod namespace;
pub mod network;
pub mod reference;
pub mod role;
pub mod schedule;
pub mod secret;
pub mod security_group;
pub mod service;
pub mod step;
pub mod subscription;
pub mod task_definition;
pub mod topic;
pub mod vault_notifications;

use std::future::Future;
use std::pin::Pin;

use std::collections::BTreeMap;

use crate::aws::{Aws, AwsError};
use crate::config::{Config, RoleKind, SecretRole};
pub use step::{Action, Kind, Step};
use task_definition::TaskDef;

/// What a plan shows for a value AWS assigns when the resource is created (an id, a new
/// revision's ARN): known only once the step before it has been applied.
pub const AFTER_APPLY: &str = "(known after apply)";

/// What kinds tell later kinds: ids and ARNs, set by a kind's observe when the resource exists
/// and keeps its identity through the apply, and by its apply otherwise. A value that is absent
/// at plan time is [`AFTER_APPLY`] in the plan; the kinds that depend on it compute their desired
/// state again when they are applied, from the values the earlier steps produced.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The account the deploy runs in (STS GetCallerIdentity), for the ARNs hcctl derives.
    pub account_id: Option<String>,
    /// The VPC and the subnets the tasks, mount targets and namespace use.
    pub vpc_id: Option<String>,
    pub subnets: Vec<String>,
    /// One subnet per availability zone (EFS allows one mount target per zone).
    pub mount_subnets: Vec<String>,
    /// Security group ids by purpose: `app`, `mongo`, `efs`.
    pub security_groups: BTreeMap<&'static str, String>,
    /// The MongoDB file system (created or adopted) and its access point.
    pub file_system_id: Option<String>,
    pub file_system_arn: Option<String>,
    pub access_point_id: Option<String>,
    pub access_point_arn: Option<String>,
    /// Role ARNs, created or adopted.
    pub roles: BTreeMap<RoleKind, String>,
    /// Secret ARNs (created by hcctl, with Secrets Manager's random suffix).
    pub secrets: BTreeMap<SecretRole, String>,
    /// The Cloud Map namespace id and the `mongo` service's ARN in it.
    pub namespace_id: Option<String>,
    pub discovery_service_arn: Option<String>,
    /// Task definition ARNs (with revision) by container, once unchanged or registered.
    pub task_definitions: BTreeMap<&'static str, String>,
    /// The KMS key hcctl made for the alerts topic, once observed or created.
    pub alerts_key_arn: Option<String>,
    /// The alerts topic's ARN (derived from its name) and whether it exists yet.
    pub alerts_topic_arn: Option<String>,
    pub alerts_topic_exists: bool,
}

impl Outputs {
    /// `value`, or [`AFTER_APPLY`] for the plan.
    pub fn show(value: Option<&String>) -> String {
        value.cloned().unwrap_or_else(|| AFTER_APPLY.to_string())
    }
}

/// Renders the task definitions from the config and the outputs known so far (the deploy layer
/// owns the templates; kinds call this at plan time and again when they apply).
pub type RenderFn<'a> = dyn Fn(&Outputs) -> Result<Vec<TaskDef>, String> + 'a;

/// Which command the engine runs: deploy observes what the config wants, destroy what is there
/// to remove (task definitions: every active revision; references: nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Deploy,
    Destroy,
}

/// What every kind may read, and what one kind tells a later one. Dependencies between kinds go
/// through here, never through ad-hoc parameters.
pub struct Context<'a> {
    pub aws: &'a Aws,
    pub config: &'a Config,
    pub command: Command,
    /// Deploy: renders the task definitions from the outputs so far (destroy renders nothing: a
    /// broken template must not stop a teardown).
    pub render: &'a RenderFn<'a>,
    /// What earlier kinds observed or created.
    pub outputs: Outputs,
    /// The backup plan's id, once observed or created: the selection lives inside the plan.
    pub backup_plan_id: Option<String>,
    /// `destroy --delete-data`: remove what holds patient data (the file system, a vault with
    /// recovery points) too.
    pub delete_data: bool,
}

/// One resource kind: its parts, for the engine. `Item` is one instance as observed, with what
/// it is desired to be (two log groups are two items of one kind).
///
/// The futures need not be `Send`: hcctl drives the engine on one task and never spawns it.
#[allow(async_fn_in_trait)]
pub trait Resource {
    type Item;

    /// Observe every instance the command concerns (read-only), in plan order.
    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError>;

    /// Deploy's step for one instance (pure).
    fn step(cx: &Context<'_>, item: &Self::Item) -> Step;

    /// Bring one instance to the config; called only for a step that mutates. Says what it
    /// became ("revision 3", an ARN).
    async fn apply_step(cx: &mut Context<'_>, item: &Self::Item) -> Result<String, AwsError>;

    /// Destroy's step for one instance (pure): delete, keep or absent.
    fn removal(cx: &Context<'_>, item: &Self::Item) -> Step;

    /// Remove one instance; called only for a step that deletes.
    async fn remove(cx: &Context<'_>, item: &Self::Item) -> Result<(), AwsError>;
}

/// A boxed future: what lets the engine keep kinds of different `Item` types in one list.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A kind, type-erased: what the engine's order lists. Every [`Resource`] is one.
pub trait AnyResource: Sync {
    fn observe<'a>(
        &'a self,
        cx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, Result<Box<dyn ObservedKind>, AwsError>>;
}

/// The observed instances of one kind, type-erased; `i` indexes them in plan order.
pub trait ObservedKind {
    /// One step per instance: deploy's, or destroy's.
    fn steps(&self, cx: &Context<'_>) -> Vec<Step>;
    fn apply<'a>(
        &'a self,
        cx: &'a mut Context<'_>,
        i: usize,
    ) -> BoxFuture<'a, Result<String, AwsError>>;
    fn remove<'a>(&'a self, cx: &'a Context<'_>, i: usize) -> BoxFuture<'a, Result<(), AwsError>>;
}

struct Items<R: Resource>(Vec<R::Item>);

impl<R: Resource + Sync + 'static> AnyResource for R {
    fn observe<'a>(
        &'a self,
        cx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, Result<Box<dyn ObservedKind>, AwsError>> {
        Box::pin(async move {
            let items = R::observe_all(cx).await?;
            Ok(Box::new(Items::<R>(items)) as Box<dyn ObservedKind>)
        })
    }
}

/// An index the engine did not get from [`ObservedKind::steps`]: a bug, reported, never a panic.
fn no_item(kind: &str, i: usize) -> AwsError {
    AwsError::other(
        format!("applying the plan ({kind})"),
        format!("no resource at position {i} (a bug in hcctl)"),
    )
}

impl<R: Resource + 'static> ObservedKind for Items<R> {
    fn steps(&self, cx: &Context<'_>) -> Vec<Step> {
        self.0
            .iter()
            .map(|item| match cx.command {
                Command::Deploy => R::step(cx, item),
                Command::Destroy => R::removal(cx, item),
            })
            .collect()
    }

    fn apply<'a>(
        &'a self,
        cx: &'a mut Context<'_>,
        i: usize,
    ) -> BoxFuture<'a, Result<String, AwsError>> {
        Box::pin(async move {
            match self.0.get(i) {
                Some(item) => R::apply_step(cx, item).await,
                None => Err(no_item(std::any::type_name::<R>(), i)),
            }
        })
    }

    fn remove<'a>(&'a self, cx: &'a Context<'_>, i: usize) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            match self.0.get(i) {
                Some(item) => R::remove(cx, item).await,
                None => Err(no_item(std::any::type_name::<R>(), i)),
            }
        })
    }
}
