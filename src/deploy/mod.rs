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

pub mod plan;
pub mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::aws::{self, Aws, Target};
use crate::config::Config;
use crate::error::Error;
use crate::resources::{
    backup_plan, backup_selection, backup_vault, cluster, log_group, reference, task_definition,
    Action, AnyResource, Command, Context, ObservedKind, Step,
};
use plan::Plan;
use render::Rendered;

/// Settings shared by deploy and destroy.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub endpoint_url: Option<String>,
}

/// Load the config and render the templates: every input error, before any AWS call.
pub async fn prepare(
    settings: &Settings,
) -> Result<(Config, Target, String, Vec<Rendered>), Error> {
    let config = Config::load(&settings.config_path)?;
    let target = Target {
        region: config.region.clone(),
        endpoint_url: settings.endpoint_url.clone(),
    };
    let region = aws::resolve_region(&target).await;
    let rendered = render::render_all(&config, &settings.config_path, &region)?;
    Ok((config, target, region, rendered))
}

/// Every kind, in the order deploy brings them up; destroy walks it backwards. What depends on
/// what:
/// - log groups before the task definitions (the awslogs driver writes to them) and the cluster
///   they run in;
/// - the vault before the plan (its rules target the vault), the plan before the selection (the
///   selection lives in the plan: its id goes through the context);
/// - references last: read-only, they change nothing and only report (`--strict` stops on them
///   before anything is applied).
///
/// Kinds still to come slot in by the same rule: network and roles before storage, storage and
/// secrets before the task definitions, the namespace before the service. Adding a kind: one file
/// under `src/resources/` (and its `pub mod` line there) and one line here.
pub const ORDER: &[&dyn AnyResource] = &[
    &log_group::LogGroups,
    &cluster::Cluster,
    &task_definition::TaskDefinitions,
    &backup_vault::BackupVault,
    &backup_plan::BackupPlan,
    &backup_selection::BackupSelection,
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
    show: impl FnOnce(&Plan),
) -> Result<Plan, Error> {
    let started = Instant::now();
    let (config, target, _, rendered) = prepare(settings).await?;
    let aws = Aws::connect(&target).await;
    let mut cx = Context {
        aws: &aws,
        config: &config,
        command: Command::Deploy,
        task_definitions: rendered.into_iter().map(|r| r.task_def).collect(),
        backup_plan_id: None,
    };
    let (observed, located) = observe_all(&mut cx).await?;
    let mut plan = Plan {
        command: "deploy",
        region: aws.region.clone(),
        endpoint: aws.endpoint.clone(),
        dry_run,
        steps: located.iter().map(|(s, _, _)| s.clone()).collect(),
        outcome: None,
    };
    show(&plan);
    let missing: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Missing | Action::Unusable))
        .collect();
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
    Ok(plan)
}

/// Record the outcome: counts, API calls so far, elapsed time, the error that stopped it.
fn conclude(plan: &mut Plan, aws: &Aws, started: Instant, applied: bool, error: Option<String>) {
    let elapsed = started.elapsed().as_secs_f64();
    plan.outcome = Some(plan.outcome(applied, aws.calls.count(), elapsed, error));
}

/// Plan the removal of everything deploy creates (in reverse [`ORDER`]); confirm unless `yes`;
/// apply.
pub async fn destroy(
    settings: &Settings,
    yes: bool,
    dry_run: bool,
    show: impl FnOnce(&Plan),
) -> Result<Plan, Error> {
    let started = Instant::now();
    let config = Config::load(&settings.config_path)?;
    let target = Target {
        region: config.region.clone(),
        endpoint_url: settings.endpoint_url.clone(),
    };
    let aws = Aws::connect(&target).await;
    let mut cx = Context {
        aws: &aws,
        config: &config,
        command: Command::Destroy,
        task_definitions: Vec::new(),
        backup_plan_id: None,
    };
    let (observed, located) = observe_all(&mut cx).await?;
    let mut plan = Plan {
        command: "destroy",
        region: aws.region.clone(),
        endpoint: aws.endpoint.clone(),
        dry_run,
        steps: located.iter().map(|(s, _, _)| s.clone()).collect(),
        outcome: None,
    };
    show(&plan);
    let deletions = plan.count(Action::Delete);
    if dry_run || deletions == 0 {
        conclude(&mut plan, &aws, started, false, None);
        return Ok(plan);
    }
    if !yes {
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
