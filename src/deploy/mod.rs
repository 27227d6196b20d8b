//! `hcctl deploy` and `hcctl destroy`: config → desired state → plan → AWS.
//!
//! - [`render`]: task definition templates filled from the config;
//! - [`plan`]: the plan as data (one step per resource), printed as text or JSON;
//! - this module: observe AWS with read-only calls, compute the plan, apply it step by step.
//!
//! Everything that can be wrong in the config or the templates is found before the first AWS
//! call. Applying is ordered so that a failure halfway leaves a state the next run converges from
//! (each step re-observes nothing; the next run's plan does).

pub mod plan;
pub mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::aws::{self, backup, ecs, logs, Aws, Target};
use crate::config::{self, Config};
use crate::error::Error;
use plan::{Action, Kind, Plan, Step};
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

/// What one step needs to be applied.
enum Op {
    LogGroup(config::LogGroup, Option<logs::Observed>),
    Cluster,
    TaskDefinition(Box<ecs::TaskDef>),
    Vault(Option<backup::Vault>),
    BackupPlan(Option<backup::Plan>),
    Selection(Option<backup::Selection>),
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
    let mut ops: Vec<(Step, Op)> = Vec::new();

    for (group, _) in [
        (&config.log_groups.mongo, "mongo"),
        (&config.log_groups.app, "app"),
    ] {
        let observed = logs::observe(&aws.logs, &group.name).await?;
        let step = logs::plan(group, &config.tags, observed.as_ref());
        ops.push((step, Op::LogGroup(group.clone(), observed)));
    }
    let cluster = &config.ecs.cluster;
    let exists = ecs::cluster_exists(&aws.ecs, cluster).await?;
    ops.push((ecs::plan_cluster(cluster, exists), Op::Cluster));
    for r in &rendered {
        let latest = ecs::latest(&aws.ecs, &r.task_def.family).await?;
        let step = ecs::plan_task_definition(&r.task_def, latest.as_ref());
        ops.push((step, Op::TaskDefinition(Box::new(r.task_def.clone()))));
    }
    let b = &config.backup;
    let vault = backup::observe_vault(&aws.backup, &b.vault.name).await?;
    ops.push((
        backup::plan_vault(&b.vault, &config.tags, vault.as_ref()),
        Op::Vault(vault),
    ));
    let bplan = backup::observe_plan(&aws.backup, &b.plan.name).await?;
    let selection = match &bplan {
        Some(p) => backup::observe_selection(&aws.backup, &p.id, &b.selection.name).await?,
        None => None,
    };
    ops.push((
        backup::plan_plan(b, &config.tags, bplan.as_ref()),
        Op::BackupPlan(bplan.clone()),
    ));
    ops.push((
        backup::plan_selection(&b.selection, selection.as_ref()),
        Op::Selection(selection),
    ));

    let references = aws::refs::plan(&aws, &config).await?;
    let mut plan = Plan {
        command: "deploy",
        region: aws.region.clone(),
        endpoint: aws.endpoint.clone(),
        dry_run,
        steps: ops
            .iter()
            .map(|(s, _)| s.clone())
            .chain(references.iter().cloned())
            .collect(),
        outcome: None,
    };
    show(&plan);
    let missing: Vec<&Step> = references
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
    let mut plan_id = bplan.as_ref().map(|p| p.id.clone());
    for (i, (step, op)) in ops.iter().enumerate() {
        if !step.action.mutates() {
            continue;
        }
        let result = apply(&aws, &config, op, &mut plan_id).await;
        match result {
            Ok(r) => plan.steps[i].result = Some(r),
            Err(e) => {
                plan.steps[i].result = Some(format!("FAILED: {e}"));
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

async fn apply(
    aws: &Aws,
    config: &Config,
    op: &Op,
    plan_id: &mut Option<String>,
) -> Result<String, aws::AwsError> {
    match op {
        Op::LogGroup(desired, observed) => {
            logs::apply(&aws.logs, desired, &config.tags, observed.as_ref()).await
        }
        Op::Cluster => ecs::create_cluster(&aws.ecs, &config.ecs.cluster, &config.tags).await,
        Op::TaskDefinition(td) => ecs::register(&aws.ecs, td).await,
        Op::Vault(observed) => {
            backup::apply_vault(
                &aws.backup,
                &config.backup.vault,
                &config.tags,
                observed.as_ref(),
            )
            .await
        }
        Op::BackupPlan(observed) => {
            let id =
                backup::apply_plan(&aws.backup, &config.backup, &config.tags, observed.as_ref())
                    .await?;
            *plan_id = Some(id.clone());
            Ok(format!("plan id {id}"))
        }
        Op::Selection(observed) => {
            let Some(id) = plan_id.as_deref() else {
                return Err(aws::AwsError::other(
                    format!("creating backup selection {}", config.backup.selection.name),
                    "the backup plan has no id (it was not created)",
                ));
            };
            backup::apply_selection(&aws.backup, id, &config.backup.selection, observed.as_ref())
                .await
                .map(|sid| format!("selection id {sid}"))
        }
    }
}

/// Record the outcome: counts, API calls so far, elapsed time, the error that stopped it.
fn conclude(plan: &mut Plan, aws: &Aws, started: Instant, applied: bool, error: Option<String>) {
    let elapsed = started.elapsed().as_secs_f64();
    plan.outcome = Some(plan.outcome(applied, aws.calls.count(), elapsed, error));
}

/// What destroy removes, and how.
enum Removal {
    Selection { plan_id: String, id: String },
    BackupPlan { id: String },
    Vault,
    TaskDefinitions(Vec<String>),
    Cluster,
    LogGroup,
}

/// Plan the removal of everything deploy creates; confirm unless `yes`; apply.
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
    let b = &config.backup;
    let mut items: Vec<(Step, Option<Removal>)> = Vec::new();
    let absent = |kind, name: &str| (Step::new(kind, name, Action::Absent, vec![]), None);

    let bplan = backup::observe_plan(&aws.backup, &b.plan.name).await?;
    match &bplan {
        Some(p) => match backup::observe_selection(&aws.backup, &p.id, &b.selection.name).await? {
            Some(s) => items.push((
                Step::new(
                    Kind::BackupSelection,
                    &b.selection.name,
                    Action::Delete,
                    vec![],
                ),
                Some(Removal::Selection {
                    plan_id: p.id.clone(),
                    id: s.id,
                }),
            )),
            None => items.push(absent(Kind::BackupSelection, &b.selection.name)),
        },
        None => items.push(absent(Kind::BackupSelection, &b.selection.name)),
    }
    match &bplan {
        Some(p) => items.push((
            Step::new(Kind::BackupPlan, &b.plan.name, Action::Delete, vec![]),
            Some(Removal::BackupPlan { id: p.id.clone() }),
        )),
        None => items.push(absent(Kind::BackupPlan, &b.plan.name)),
    }
    match backup::observe_vault(&aws.backup, &b.vault.name).await? {
        Some(v) if v.recovery_points > 0 => items.push((
            Step::new(
                Kind::BackupVault,
                &b.vault.name,
                Action::Keep,
                vec![format!(
                    "holds {} recovery point(s): kept; delete them deliberately (AWS console or \
                     `aws backup delete-recovery-point`) if they must go",
                    v.recovery_points
                )],
            ),
            None,
        )),
        Some(_) => items.push((
            Step::new(
                Kind::BackupVault,
                &b.vault.name,
                Action::Delete,
                vec!["empty".to_string()],
            ),
            Some(Removal::Vault),
        )),
        None => items.push(absent(Kind::BackupVault, &b.vault.name)),
    }
    for name in render::CONTAINERS {
        let family = config.family(name);
        let arns = ecs::active_revisions(&aws.ecs, &family).await?;
        if arns.is_empty() {
            items.push(absent(Kind::TaskDefinition, &family));
        } else {
            items.push((
                Step::new(
                    Kind::TaskDefinition,
                    &family,
                    Action::Delete,
                    vec![format!("deregister {} active revision(s)", arns.len())],
                ),
                Some(Removal::TaskDefinitions(arns)),
            ));
        }
    }
    if ecs::cluster_exists(&aws.ecs, &config.ecs.cluster).await? {
        items.push((
            Step::new(
                Kind::EcsCluster,
                &config.ecs.cluster,
                Action::Delete,
                vec![],
            ),
            Some(Removal::Cluster),
        ));
    } else {
        items.push(absent(Kind::EcsCluster, &config.ecs.cluster));
    }
    for group in [&config.log_groups.mongo, &config.log_groups.app] {
        if logs::observe(&aws.logs, &group.name).await?.is_some() {
            items.push((
                Step::new(
                    Kind::LogGroup,
                    &group.name,
                    Action::Delete,
                    vec!["its log events too".to_string()],
                ),
                Some(Removal::LogGroup),
            ));
        } else {
            items.push(absent(Kind::LogGroup, &group.name));
        }
    }

    let mut plan = Plan {
        command: "destroy",
        region: aws.region.clone(),
        endpoint: aws.endpoint.clone(),
        dry_run,
        steps: items.iter().map(|(s, _)| s.clone()).collect(),
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
    for (i, (step, removal)) in items.iter().enumerate() {
        let Some(removal) = removal else { continue };
        let result = match removal {
            Removal::Selection { plan_id, id } => {
                backup::delete_selection(&aws.backup, plan_id, id, &step.name).await
            }
            Removal::BackupPlan { id } => backup::delete_plan(&aws.backup, id, &step.name).await,
            Removal::Vault => backup::delete_vault(&aws.backup, &step.name).await,
            Removal::TaskDefinitions(arns) => {
                let mut r = Ok(());
                for arn in arns {
                    r = ecs::deregister(&aws.ecs, arn).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Removal::Cluster => ecs::delete_cluster(&aws.ecs, &step.name).await,
            Removal::LogGroup => logs::delete(&aws.logs, &step.name).await,
        };
        match result {
            Ok(()) => plan.steps[i].result = Some("deleted".to_string()),
            Err(e) => {
                plan.steps[i].result = Some(format!("FAILED: {e}"));
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
