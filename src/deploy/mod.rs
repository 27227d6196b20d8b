//! `hcctl deploy` and `hcctl destroy`: config → desired state → plan → AWS, one engine for every
//! resource kind.
//!
//! - [`render`]: task definition templates filled from the config;
//! - [`plan`]: the plan as data (one step per resource), printed as text or JSON;
//! - this module, the engine: [`ORDER`] (the kinds, in dependency order), observing all of them
//!   with read-only calls, the one plan, `--dry-run`, `--strict`, the call counter, applying in
//!   order, destroying in reverse order, confirming. What each kind observes, wants, compares
//!   and changes lives in its own file under `crate::resources`.
//!
//! Everything that can be wrong in the config or the templates is found before the first AWS
//! call. Applying is ordered so that a failure halfway leaves a state the next run converges from
//! (each step re-observes nothing; the next run's plan does).

pub mod iam_policy;
pub mod plan;
pub mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::aws::{self, Aws, Target};
use crate::config::Config;
use crate::cost;
use crate::error::Error;
use crate::resources::task_definition::TaskDef;
use crate::resources::{
    access_point, alarm, alerts_key, backup_plan, backup_selection, backup_vault, bucket, cluster,
    discovery_service, file_system, log_group, metric_filter, mount_target, namespace, network,
    reference, role, schedule, secret, security_group, service, subscription, task_definition,
    topic, vault_notifications, Action, AnyResource, Command, Context, ObservedKind, Outputs, Step,
};
use plan::Plan;
use render::Templates;

/// Settings shared by deploy and destroy.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub endpoint_url: Option<String>,
}

/// Load the config and the templates, and render them once (values AWS assigns left as
/// placeholders): every input error, before any AWS call.
pub async fn prepare(settings: &Settings) -> Result<(Config, Target, String, Templates), Error> {
    let config = Config::load(&settings.config_path)?;
    let target = Target {
        region: config.region.clone(),
        endpoint_url: settings.endpoint_url.clone(),
    };
    let region = aws::resolve_region(&target).await;
    let templates = Templates::load(&config, &settings.config_path)?;
    templates.render(&config, &region, &Outputs::default())?;
    Ok((config, target, region, templates))
}

/// The outputs every command starts from: the account (STS GetCallerIdentity, read-only), for
/// the ARNs hcctl derives.
async fn initial_outputs(aws: &Aws) -> Result<Outputs, Error> {
    let account_id = aws::account_id(aws).await?;
    Ok(Outputs {
        account_id: Some(account_id),
        ..Outputs::default()
    })
}

/// Every kind, in the order deploy brings them up; destroy walks it backwards. What depends on
/// what:
/// - the network (read only) first: the security groups live in its VPC, each group's rule names
///   the group before it (app → mongo → efs);
/// - the file system, then its mount targets (in the network's subnets, behind the efs group) and
///   its access point;
/// - log groups and secrets before the roles (the execution role's policy names their ARNs, the
///   mongo task role's the file system and access point, the backup role's the file system);
/// - roles, secrets, the file system and the log groups before the task definitions that name
///   them, and the cluster they run in;
/// - the network before the Cloud Map namespace (a private DNS namespace lives in the VPC), the
///   namespace before the discovery service in it;
/// - the ECS service last of what runs: after the task definitions (it runs the mongo one), the
///   `mongo` security group and the subnets (its network), the discovery service (its registry)
///   and the cluster. Destroy, walking backwards, deletes the ECS service first (ECS then
///   deregisters its task from Cloud Map), the discovery service after it, the namespace last;
/// - the vault before the plan (its rules target the vault), the plan before the selection (the
///   selection lives in the plan: its id goes through the context);
/// - the alerting after everything it watches: the alerts key before the topic encrypted with
///   it, the topic before its subscriptions, the app log group's metric filters and the alarms
///   (which notify the topic), the vault's notifications (to the topic) after the vault;
/// - references last: read-only, they change nothing and only report (`--strict` stops on them
///   before anything is applied).
///
/// Adding a kind: one file under `src/resources/` (and its `pub mod` line there) and one line here.
pub const ORDER: &[&dyn AnyResource] = &[
    &network::Network,
    &security_group::SecurityGroups,
    &file_system::FileSystem,
    &mount_target::MountTargets,
    &access_point::AccessPoint,
    &log_group::LogGroups,
    &secret::Secrets,
    &bucket::Bucket,
    &role::Roles,
    &cluster::Cluster,
    &namespace::Namespace,
    &discovery_service::DiscoveryService,
    &task_definition::TaskDefinitions,
    &service::Service,
    &schedule::Schedules,
    &backup_vault::BackupVault,
    &backup_plan::BackupPlan,
    &backup_selection::BackupSelection,
    &alerts_key::AlertsKey,
    &topic::Topic,
    &subscription::Subscriptions,
    &metric_filter::MetricFilters,
    &alarm::Alarms,
    &vault_notifications::VaultNotifications,
    &reference::References,
];

/// Observe every kind in [`ORDER`] (read-only; dependencies flow through `cx`), and the plan's
/// steps in the command's order — ORDER for deploy, reversed for destroy — each with the kind
/// and instance it belongs to.
async fn observe_all(
    cx: &mut Context<'_>,
) -> Result<(Vec<Box<dyn ObservedKind>>, Vec<(Step, usize, usize)>), Error> {
    let mut observed = Vec::with_capacity(ORDER.len());
    for kind in ORDER {
        observed.push(kind.observe(cx).await?);
    }
    let mut kinds: Vec<usize> = (0..observed.len()).collect();
    if cx.command == Command::Destroy {
        kinds.reverse();
    }
    let mut steps = Vec::new();
    for k in kinds {
        for (i, step) in observed[k].steps(cx).into_iter().enumerate() {
            steps.push((step, k, i));
        }
    }
    Ok((observed, steps))
}

/// Compute the plan (read-only calls only), print it through `show`, and apply it unless
/// `dry_run`. The returned plan carries the outcome; `outcome.error` is set when a step failed.
pub async fn deploy(
    settings: &Settings,
    dry_run: bool,
    strict: bool,
    wait: Option<std::time::Duration>,
    show: impl FnOnce(&Plan),
) -> Result<Plan, Error> {
    let started = Instant::now();
    let (config, target, region, templates) = prepare(settings).await?;
    let aws = Aws::connect(&target).await;
    let render = |outputs: &Outputs| -> Result<Vec<TaskDef>, String> {
        templates
            .render(&config, &region, outputs)
            .map(|r| r.into_iter().map(|r| r.task_def).collect())
            .map_err(|e| e.to_string())
    };
    let mut cx = Context {
        aws: &aws,
        config: &config,
        command: Command::Deploy,
        render: &render,
        outputs: initial_outputs(&aws).await?,
        backup_plan_id: None,
        delete_data: false,
    };
    let (observed, located) = observe_all(&mut cx).await?;
    let mut plan = Plan {
        command: "deploy",
        region: aws.region.clone(),
        endpoint: aws.endpoint.clone(),
        dry_run,
        steps: located.iter().map(|(s, _, _)| s.clone()).collect(),
        cost: None,
        cost_note: None,
        outcome: None,
    };
    match plan_cost(settings, &config, &aws.region, &plan.steps) {
        Ok(c) => plan.cost = Some(c),
        Err(note) => plan.cost_note = Some(note),
    }
    show(&plan);
    let missing: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Missing | Action::Unusable))
        .collect();
    // What hcctl manages but cannot bring to the config (no VPC, a file system that is not
    // encrypted) stops the deploy, with or without --strict; references only warn without it.
    let blocking: Vec<String> = missing
        .iter()
        .filter(|s| s.kind != reference::KIND)
        .map(|s| format!("{} {}: {}", s.kind.label(), s.name, s.changes.join("; ")))
        .collect();
    if !blocking.is_empty() {
        let error = format!("cannot deploy: {}", blocking.join(" | "));
        conclude(&mut plan, &aws, started, false, Some(error));
        return Ok(plan);
    }
    if strict && !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.name.as_str()).collect();
        let error = format!("{}: {}", plan::STRICT_STOP, names.join(", "));
        conclude(&mut plan, &aws, started, false, Some(error));
        return Ok(plan);
    }
    if dry_run {
        conclude(&mut plan, &aws, started, false, None);
        return Ok(plan);
    }

    let mut error = None;
    for (n, (step, k, i)) in located.iter().enumerate() {
        if !step.action.mutates() {
            continue;
        }
        match observed[*k].apply(&mut cx, *i).await {
            Ok(r) => plan.steps[n].result = Some(r),
            Err(e) => {
                plan.steps[n].result = Some(format!("FAILED: {e}"));
                error = Some(e.to_string());
                break;
            }
        }
    }
    let mut service_state = None;
    if let (None, Some(timeout)) = (&error, wait) {
        let progress = |m: &str| eprintln!("  service {}: {m}", config.service_name());
        match service::wait_stable(&aws, &config, timeout, &progress).await {
            Ok(state) => service_state = Some(format!("{} {state}", config.service_name())),
            Err(e) => error = Some(e.to_string()),
        }
    }
    if error.is_none() {
        if let Some(kept) = plan.steps.iter().find(|s| s.action == Action::Keep) {
            error = Some(format!(
                "{} {} cannot be brought to the config: {}",
                kept.kind.label(),
                kept.name,
                kept.changes.join("; ")
            ));
        }
    }
    let applied = error.is_none();
    conclude(&mut plan, &aws, started, applied, error);
    if let Some(o) = plan.outcome.as_mut() {
        o.service = service_state;
    }
    Ok(plan)
}

/// The plan's cost: the config's estimate, and the estimate of what is deployed now — the config
/// with the settings AWS holds (each step's `was`), without what the plan creates. No AWS call:
/// a region the price table lacks gives a note instead.
fn plan_cost(
    settings: &Settings,
    config: &Config,
    region: &str,
    steps: &[Step],
) -> Result<cost::PlanCost, String> {
    let prices = cost::Prices::load(None, region).map_err(|e| e.to_string())?;
    let after = cost::estimate(config, &prices);
    // Each setting as AWS holds it, put over the config; one that no config could say (a rule
    // drifted out of bounds) is left out, and that resource is priced as the config says.
    let mut held: Vec<String> = Vec::new();
    let mut now = config.clone();
    for was in steps.iter().flat_map(|s| s.was.iter()) {
        held.push(was.clone());
        match Config::load_with(&settings.config_path, &held) {
            Ok(c) => now = c,
            Err(_) => {
                held.pop();
            }
        }
    }
    let before = cost::estimate(&now, &prices);
    Ok(cost::plan_cost(&after, &before, steps))
}

/// Record the outcome: counts, API calls so far, elapsed time, the error that stopped it.
fn conclude(plan: &mut Plan, aws: &Aws, started: Instant, applied: bool, error: Option<String>) {
    let elapsed = started.elapsed().as_secs_f64();
    plan.outcome = Some(plan.outcome(applied, aws.calls.count(), elapsed, error));
}

/// Plan the removal of everything deploy creates (in reverse [`ORDER`]); confirm unless `yes`;
/// apply. `delete_data`: `--delete-data[=<project>-<environment>]` — the typed confirmation, or
/// empty to be asked on the terminal.
pub async fn destroy(
    settings: &Settings,
    yes: bool,
    delete_data: Option<&str>,
    dry_run: bool,
    show: impl FnOnce(&Plan),
) -> Result<Plan, Error> {
    let started = Instant::now();
    let config = Config::load(&settings.config_path)?;
    let expected = format!("{}-{}", config.project, config.environment);
    match delete_data {
        Some(typed) if !typed.is_empty() && typed != expected => {
            return Err(Error::usage(format!(
                "--delete-data={typed} does not name this deployment: type \
                 --delete-data={expected} to delete its patient data"
            )))
        }
        Some("") if !dry_run && !std::io::stdin().is_terminal() => {
            return Err(Error::usage(format!(
                "--delete-data deletes the patient data: confirm by typing the deployment's name, \
                 --delete-data={expected}, when standard input is not a terminal"
            )))
        }
        _ => {}
    }
    let target = Target {
        region: config.region.clone(),
        endpoint_url: settings.endpoint_url.clone(),
    };
    let aws = Aws::connect(&target).await;
    let render = |_: &Outputs| -> Result<Vec<TaskDef>, String> { Ok(Vec::new()) };
    let mut cx = Context {
        aws: &aws,
        config: &config,
        command: Command::Destroy,
        render: &render,
        outputs: initial_outputs(&aws).await?,
        backup_plan_id: None,
        delete_data: delete_data.is_some(),
    };
    let (observed, located) = observe_all(&mut cx).await?;
    let mut plan = Plan {
        command: "destroy",
        region: aws.region.clone(),
        endpoint: aws.endpoint.clone(),
        dry_run,
        steps: located.iter().map(|(s, _, _)| s.clone()).collect(),
        cost: None,
        cost_note: None,
        outcome: None,
    };
    show(&plan);
    let deletions = plan.count(Action::Delete);
    if dry_run || deletions == 0 {
        conclude(&mut plan, &aws, started, false, None);
        return Ok(plan);
    }
    if delete_data == Some("") {
        confirm_data(&expected)?;
    } else if !yes {
        confirm(deletions)?;
    }
    let mut error = None;
    for (n, (step, k, i)) in located.iter().enumerate() {
        if step.action != Action::Delete {
            continue;
        }
        match observed[*k].remove(&cx, *i).await {
            Ok(()) => plan.steps[n].result = Some("deleted".to_string()),
            Err(e) => {
                plan.steps[n].result = Some(format!("FAILED: {e}"));
                error = Some(e.to_string());
                break;
            }
        }
    }
    let applied = error.is_none();
    conclude(&mut plan, &aws, started, applied, error);
    Ok(plan)
}

/// Ask on the terminal; refuse when there is none (scripts say `--yes`).
fn confirm(deletions: usize) -> Result<(), Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::usage(
            "destroy deletes resources: confirm with --yes when standard input is not a terminal",
        ));
    }
    eprint!("Delete these {deletions} resource(s)? Type 'yes' to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::usage(format!("reading the confirmation: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::usage("destroy cancelled: nothing was deleted"))
    }
}

/// `--delete-data` without a value: the deployment's name, typed on the terminal.
fn confirm_data(expected: &str) -> Result<(), Error> {
    eprint!(
        "This deletes the MongoDB data of {expected} (not recoverable once its backups expire). \
         Type '{expected}' to confirm: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::usage(format!("reading the confirmation: {e}")))?;
    if answer.trim() == expected {
        Ok(())
    } else {
        Err(Error::usage("destroy cancelled: nothing was deleted"))
    }
}

/// `hcctl iam-policy`: the policy document (JSON) or its explanation (text). The account is
/// `account_id`, else the credentials' (STS GetCallerIdentity: needs no permission).
pub async fn iam_policy_command(
    config_path: &Path,
    endpoint_url: Option<String>,
    account_id: Option<String>,
    json: bool,
) -> Result<String, Error> {
    let config = Config::load(config_path)?;
    let target = Target {
        region: config.region.clone(),
        endpoint_url,
    };
    let region = aws::resolve_region(&target).await;
    let account = match account_id {
        Some(a) => a,
        None => aws::account_id(&Aws::connect(&target).await).await?,
    };
    Ok(if json {
        let doc = iam_policy::document(&config, &region, &account);
        serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::failed(format!("writing the policy: {e}")))?
            + "\n"
    } else {
        iam_policy::text(&config, &region, &account)
    })
}

/// `hcctl render`: the rendered task definitions, as a JSON object keyed by container.
pub async fn render_command(config_path: &Path) -> Result<serde_json::Value, Error> {
    let config = Config::load(config_path)?;
    let target = Target {
        region: config.region.clone(),
        endpoint_url: None,
    };
    let region = aws::resolve_region(&target).await;
    let rendered = render::render_all(&config, config_path, &region)?;
    let mut out = serde_json::Map::new();
    for r in rendered {
        out.insert(r.container.to_string(), r.json);
    }
    Ok(serde_json::Value::Object(out))
}
