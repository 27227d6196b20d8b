//! The schedules: EventBridge Scheduler schedules, in the `default` group, each running the app's
//! latest task definition revision on the cluster with one command, in the config's network (the
//! app security group, no public IP unless the config says so), under the `scheduler` role:
//! - `<project>-<environment>-ingest` (`ingest.schedule`): `ingest s3://<drops>/incoming/`.
//!   Every run is safe however the ticks overlap: the ingest ledger gives each file to exactly
//!   one runner.
//! - `<project>-<environment>-dump` (`backup.dumps.schedule`): `backup dump --to
//!   s3://<drops>/dumps/`; a dump that finds another in progress exits without writing.
//! - `<project>-<environment>-drill` (`backup.dumps.drill_schedule`): `backup drill` of the
//!   newest dump there, its report under `drills/` (what `backup-status` shows).
//!
//! A schedule is compared as one JSON document (expression, time zone, state, target: cluster,
//! role, task definition, launch, network, the command, retry policy), so a change made outside
//! hcctl is shown field by field and put back with one UpdateSchedule (which replaces the whole
//! schedule). Removing a schedule's key from the config makes deploy delete it; destroy deletes
//! them all. Schedules take no tags (only schedule groups do).

use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::types::{
    AssignPublicIp, AwsVpcConfiguration, EcsParameters, FlexibleTimeWindow, FlexibleTimeWindowMode,
    LaunchType, NetworkConfiguration, RetryPolicy, ScheduleState, Target,
};
use aws_sdk_scheduler::Client;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Outputs, Resource, Step, AFTER_APPLY};
use crate::aws::AwsError;
use crate::config::{Config, Job, RoleKind};

pub const KIND: Kind = Kind::new("schedule", "schedule");

/// The schedule group hcctl's schedule lives in.
pub const GROUP: &str = "default";

/// A tick that could not start its task is retried this often, for at most this long: the next
/// tick comes anyway, and a stale one is pointless.
pub const RETRY_ATTEMPTS: i32 = 2;
pub const RETRY_MAX_AGE_SECONDS: i32 = 3600;

/// The container the schedule's command override names.
const CONTAINER: &str = "app";

/// The command each scheduled task of `job` runs.
pub fn command(config: &Config, job: Job, account: &str) -> Vec<String> {
    let bucket = config.drops_bucket(account);
    let at = |prefix: &str| format!("s3://{bucket}/{prefix}");
    let mut c: Vec<String> = match job {
        Job::Ingest => vec!["ingest".into(), at(super::bucket::INCOMING)],
        Job::Dump => vec![
            "backup".into(),
            "dump".into(),
            "--to".into(),
            at(super::bucket::DUMPS),
        ],
        Job::Drill => vec![
            "backup".into(),
            "drill".into(),
            "--from".into(),
            at(super::bucket::DUMPS),
            "--report".into(),
            at(super::bucket::DRILLS),
        ],
    };
    if job == Job::Ingest {
        if let Some(coll) = &config.ingest.collection {
            c.extend(["--collection".to_string(), coll.clone()]);
        }
    }
    c
}

/// The RunTask overrides the schedule passes as its target's `Input`.
pub fn input(command: &[String]) -> Value {
    json!({"containerOverrides": [{"name": CONTAINER, "command": command}]})
}

/// What the config asks for `job`, as the document [`changes`] compares; `None` when the config
/// does not schedule it.
pub fn desired(config: &Config, job: Job, region: &str, outputs: &Outputs) -> Option<Value> {
    let (expression, timezone) = config.job_schedule(job)?;
    let account = outputs.account_id.as_deref().unwrap_or(AFTER_APPLY);
    let role = config
        .adopted_role(RoleKind::Scheduler)
        .map(str::to_string)
        .or_else(|| outputs.roles.get(&RoleKind::Scheduler).cloned())
        .unwrap_or_else(|| AFTER_APPLY.to_string());
    let mut subnets = outputs.subnets.clone();
    subnets.sort();
    Some(json!({
        "expression": expression,
        "timezone": timezone,
        "state": "ENABLED",
        "flexible_time_window": "OFF",
        "description": description(config, job, account),
        "target": {
            "cluster": format!("arn:aws:ecs:{region}:{account}:cluster/{}", config.ecs.cluster),
            "role": role,
            "task_definition": Outputs::show(outputs.task_definitions.get(CONTAINER)),
            "launch_type": "FARGATE",
            "platform_version": super::service::PLATFORM_VERSION,
            "task_count": 1,
            "subnets": subnets,
            "security_groups": [Outputs::show(outputs.security_groups.get("app"))],
            "public_ip": if config.network.assign_public_ip { "ENABLED" } else { "DISABLED" },
            "input": input(&command(config, job, account)),
            "retry": {"attempts": RETRY_ATTEMPTS, "max_age_seconds": RETRY_MAX_AGE_SECONDS},
        },
    }))
}

fn description(config: &Config, job: Job, account: &str) -> String {
    let bucket = config.drops_bucket(account);
    let what = match job {
        Job::Ingest => format!("hcctl ingest of s3://{bucket}/{}", super::bucket::INCOMING),
        Job::Dump => format!(
            "hcctl backup dump to s3://{bucket}/{}",
            super::bucket::DUMPS
        ),
        Job::Drill => format!(
            "hcctl backup drill of the newest dump under s3://{bucket}/{}",
            super::bucket::DUMPS
        ),
    };
    format!(
        "{what}; {}-{}, managed by hcctl",
        config.project, config.environment
    )
}

/// GetSchedule's answer as the same document (what is absent there is null here).
pub fn observed(out: &GetScheduleOutput) -> Value {
    let target = out.target();
    let ecs = target.and_then(|t| t.ecs_parameters());
    let vpc = ecs
        .and_then(|e| e.network_configuration())
        .and_then(|n| n.awsvpc_configuration());
    let mut subnets: Vec<String> = vpc.map(|v| v.subnets().to_vec()).unwrap_or_default();
    subnets.sort();
    let input = target
        .and_then(|t| t.input())
        .map(|i| serde_json::from_str(i).unwrap_or_else(|_| Value::String(i.to_string())))
        .unwrap_or(Value::Null);
    let retry = target.and_then(|t| t.retry_policy());
    json!({
        "expression": out.schedule_expression(),
        "timezone": out.schedule_expression_timezone(),
        "state": out.state().map(|s| s.as_str()),
        "flexible_time_window": out.flexible_time_window().map(|f| f.mode().as_str()),
        "description": out.description(),
        "target": {
            "cluster": target.map(|t| t.arn()),
            "role": target.map(|t| t.role_arn()),
            "task_definition": ecs.map(|e| e.task_definition_arn()),
            "launch_type": ecs.and_then(|e| e.launch_type()).map(|l| l.as_str()),
            "platform_version": ecs.and_then(|e| e.platform_version()),
            "task_count": ecs.and_then(|e| e.task_count()),
            "subnets": subnets,
            "security_groups": vpc.map(|v| v.security_groups().to_vec()).unwrap_or_default(),
            "public_ip": vpc.and_then(|v| v.assign_public_ip()).map(|a| a.as_str()),
            "input": input,
            "retry": {
                "attempts": retry.and_then(|r| r.maximum_retry_attempts()),
                "max_age_seconds": retry.and_then(|r| r.maximum_event_age_in_seconds()),
            },
        },
    })
}

/// The schedule `name` in [`GROUP`], if it exists (read-only).
pub async fn observe(client: &Client, name: &str) -> Result<Option<Value>, AwsError> {
    match client
        .get_schedule()
        .name(name)
        .group_name(GROUP)
        .send()
        .await
    {
        Ok(out) => Ok(Some(observed(&out))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::new(format!("reading schedule {name}"), &e)),
    }
}

/// Deploy's step (pure): create, update with the fields that differ, delete one the config no
/// longer asks for, or nothing.
pub fn changes(job: Job, name: &str, want: Option<&Value>, have: Option<&Value>) -> Step {
    match (want, have) {
        (Some(w), None) => {
            let t = &w["target"];
            let lines = vec![
                format!(
                    "{} ({}), flexible window off",
                    text(&w["expression"]),
                    text(&w["timezone"])
                ),
                format!(
                    "runs {} on {} as {}",
                    text(&t["task_definition"]),
                    text(&t["cluster"]),
                    text(&t["role"])
                ),
                format!(
                    "command: {}",
                    t["input"]["containerOverrides"][0]["command"]
                        .as_array()
                        .map(|c| c.iter().map(text).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default()
                ),
                format!(
                    "subnets {}; security groups {}; public IP {}",
                    words(&t["subnets"]),
                    words(&t["security_groups"]),
                    text(&t["public_ip"])
                ),
                format!("retried {RETRY_ATTEMPTS} times within {RETRY_MAX_AGE_SECONDS} s"),
            ];
            Step::new(KIND, name, Action::Create, lines)
        }
        (Some(w), Some(h)) => {
            let mut lines = Vec::new();
            super::step::diff("", h, w, &mut lines);
            Step::compared(KIND, name, Action::Update, lines)
        }
        (None, Some(_)) => Step::new(
            KIND,
            name,
            Action::Delete,
            vec![format!("not in the config (no {})", job.key())],
        ),
        (None, None) => Step::new(KIND, name, Action::Absent, vec![]),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn words(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| text(v))
}

fn build_err(name: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::other(format!("building schedule {name}"), e)
}

/// The request parts of a desired document.
fn parts(
    name: &str,
    w: &Value,
) -> Result<(String, String, String, FlexibleTimeWindow, Target), AwsError> {
    let t = &w["target"];
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for field in ["cluster", "role", "task_definition"] {
        if s(&t[field]).is_empty() || s(&t[field]) == AFTER_APPLY {
            return Err(build_err(
                name,
                format!("its {field} is not known (a step before it did not apply)"),
            ));
        }
    }
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(strings(&t["subnets"])))
        .set_security_groups(Some(strings(&t["security_groups"])))
        .assign_public_ip(AssignPublicIp::from(s(&t["public_ip"]).as_str()))
        .build()
        .map_err(|e| build_err(name, e))?;
    let ecs = EcsParameters::builder()
        .task_definition_arn(s(&t["task_definition"]))
        .task_count(1)
        .launch_type(LaunchType::Fargate)
        .platform_version(s(&t["platform_version"]))
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        )
        .build()
        .map_err(|e| build_err(name, e))?;
    let target = Target::builder()
        .arn(s(&t["cluster"]))
        .role_arn(s(&t["role"]))
        .input(t["input"].to_string())
        .ecs_parameters(ecs)
        .retry_policy(
            RetryPolicy::builder()
                .maximum_retry_attempts(RETRY_ATTEMPTS)
                .maximum_event_age_in_seconds(RETRY_MAX_AGE_SECONDS)
                .build(),
        )
        .build()
        .map_err(|e| build_err(name, e))?;
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|e| build_err(name, e))?;
    Ok((
        s(&w["expression"]),
        s(&w["timezone"]),
        s(&w["description"]),
        window,
        target,
    ))
}

/// Create the schedule, or replace every setting of an existing one (UpdateSchedule).
pub async fn apply(
    client: &Client,
    name: &str,
    w: &Value,
    exists: bool,
) -> Result<String, AwsError> {
    let (expression, timezone, description, window, target) = parts(name, w)?;
    // CreateSchedule and UpdateSchedule take the same settings (an update replaces them all).
    macro_rules! send {
        ($request:expr, $verb:literal) => {
            $request
                .name(name)
                .group_name(GROUP)
                .schedule_expression(expression)
                .schedule_expression_timezone(timezone)
                .description(description)
                .state(ScheduleState::Enabled)
                .flexible_time_window(window)
                .target(target)
                .send()
                .await
                .map(|out| out.schedule_arn().to_string())
                .map_err(|e| AwsError::new(format!("{} schedule {name}", $verb), &e))
        };
    }
    if exists {
        send!(client.update_schedule(), "updating")
    } else {
        send!(client.create_schedule(), "creating")
    }
}

pub async fn delete(client: &Client, name: &str) -> Result<(), AwsError> {
    client
        .delete_schedule()
        .name(name)
        .group_name(GROUP)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting schedule {name}"), &e))
}

/// The schedules, for the engine: each in the plan when the config asks for it or it exists.
pub struct Schedules;

pub struct Item {
    pub job: Job,
    pub name: String,
    pub observed: Option<Value>,
}

impl Resource for Schedules {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        for job in Job::ALL {
            let name = cx.config.schedule_name(job);
            let observed = observe(&cx.aws.scheduler, &name).await?;
            if observed.is_none() && cx.config.job_schedule(job).is_none() {
                continue;
            }
            items.push(Item {
                job,
                name,
                observed,
            });
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        let want = desired(cx.config, item.job, &cx.aws.region, &cx.outputs);
        // What the config would say of the schedule as it is (`hcctl cost`'s `--set` form).
        let was = item
            .observed
            .as_ref()
            .and_then(|h| h["expression"].as_str())
            .map(|e| vec![format!("{}={}", item.job.key(), Value::from(e))])
            .unwrap_or_default();
        changes(item.job, &item.name, want.as_ref(), item.observed.as_ref()).was(was)
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        // Again now: the role, the app's new revision and the groups are known by this time.
        match desired(cx.config, item.job, &cx.aws.region, &cx.outputs) {
            Some(w) => apply(&cx.aws.scheduler, &item.name, &w, item.observed.is_some()).await,
            None => {
                delete(&cx.aws.scheduler, &item.name).await?;
                Ok("deleted".into())
            }
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        let action = if item.observed.is_some() {
            Action::Delete
        } else {
            Action::Absent
        };
        Step::new(KIND, &item.name, action, vec![])
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        delete(&cx.aws.scheduler, &item.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: Option<&str>) -> Config {
        let mut c = crate::config::tests_support::example_config();
        c.ingest.schedule = schedule.map(str::to_string);
        c
    }

    fn outputs() -> Outputs {
        let mut o = Outputs {
            account_id: Some("111111111111".into()),
            subnets: vec!["subnet-b".into(), "subnet-a".into()],
            ..Outputs::default()
        };
        o.security_groups.insert("app", "sg-app".into());
        o.roles.insert(
            RoleKind::Scheduler,
            "arn:aws:iam::111111111111:role/hcctl-dev-scheduler".into(),
        );
        o.task_definitions.insert(
            "app",
            "arn:aws:ecs:eu-west-3:111111111111:task-definition/hcctl-dev-app:3".into(),
        );
        o
    }

    #[test]
    fn no_schedule_in_the_config_wants_none() {
        for job in Job::ALL {
            assert!(desired(&config(None), job, "eu-west-3", &outputs()).is_none());
        }
        let s = changes(Job::Ingest, "n", None, None);
        assert_eq!(s.action, Action::Absent);
        let s = changes(Job::Dump, "n", None, Some(&json!({})));
        assert_eq!(s.changes, ["not in the config (no backup.dumps.schedule)"]);
        assert_eq!(s.action, Action::Delete);
    }

    #[test]
    fn the_target_runs_ingest_over_incoming_on_the_app_task_definition() {
        let mut c = config(Some("rate(15 minutes)"));
        c.ingest.collection = Some("admissions".into());
        let w = desired(&c, Job::Ingest, "eu-west-3", &outputs()).unwrap();
        let t = &w["target"];
        assert_eq!(
            t["cluster"],
            "arn:aws:ecs:eu-west-3:111111111111:cluster/hcctl-dev"
        );
        assert_eq!(
            t["task_definition"],
            "arn:aws:ecs:eu-west-3:111111111111:task-definition/hcctl-dev-app:3"
        );
        assert_eq!(t["subnets"], json!(["subnet-a", "subnet-b"]));
        assert_eq!(t["security_groups"], json!(["sg-app"]));
        assert_eq!(t["public_ip"], "DISABLED");
        assert_eq!(
            t["input"],
            json!({"containerOverrides": [{"name": "app", "command": [
                "ingest", "s3://hcctl-dev-drops-111111111111/incoming/",
                "--collection", "admissions"
            ]}]})
        );
        let s = changes(Job::Ingest, "hcctl-dev-ingest", Some(&w), None);
        assert_eq!(s.action, Action::Create);
        assert!(
            s.changes[0].starts_with("rate(15 minutes) (UTC)"),
            "{:?}",
            s.changes
        );
    }

    #[test]
    fn a_changed_field_is_an_update_naming_it() {
        let c = config(Some("rate(15 minutes)"));
        let w = desired(&c, Job::Ingest, "eu-west-3", &outputs()).unwrap();
        assert_eq!(
            changes(Job::Ingest, "n", Some(&w), Some(&w)).action,
            Action::Unchanged
        );
        let mut h = w.clone();
        h["expression"] = json!("rate(1 hour)");
        h["target"]["task_definition"] =
            json!("arn:aws:ecs:eu-west-3:111111111111:task-definition/hcctl-dev-app:2");
        let s = changes(Job::Ingest, "n", Some(&w), Some(&h));
        assert_eq!(s.action, Action::Update);
        assert_eq!(s.changes.len(), 2, "{:?}", s.changes);
        assert!(s
            .changes
            .iter()
            .any(|l| l.contains("rate(1 hour)") && l.contains("rate(15 minutes)")));
        assert!(s.changes.iter().any(|l| l.contains("hcctl-dev-app:2")));
    }

    #[test]
    fn an_unknown_role_or_revision_is_refused_before_any_call() {
        let c = config(Some("rate(15 minutes)"));
        let mut o = outputs();
        o.task_definitions.clear();
        let w = desired(&c, Job::Ingest, "eu-west-3", &o).unwrap();
        let err = parts("n", &w).unwrap_err().to_string();
        assert!(err.contains("task_definition"), "{err}");
    }

    #[test]
    fn the_dump_and_drill_schedules_run_backup_on_the_drops_bucket() {
        let mut c = config(None);
        c.backup.dumps = Some(crate::config::Dumps {
            schedule: "cron(0 2 * * ? *)".into(),
            drill_schedule: Some("cron(0 5 ? * SUN *)".into()),
            timezone: "Europe/Paris".into(),
            retention_days: 35,
        });
        assert_eq!(c.jobs(), [Job::Dump, Job::Drill]);
        assert!(c.uses_role(RoleKind::Scheduler));
        let dump = desired(&c, Job::Dump, "eu-west-3", &outputs()).unwrap();
        assert_eq!(dump["expression"], "cron(0 2 * * ? *)");
        assert_eq!(dump["timezone"], "Europe/Paris");
        assert_eq!(
            dump["target"]["input"]["containerOverrides"][0]["command"],
            json!([
                "backup",
                "dump",
                "--to",
                "s3://hcctl-dev-drops-111111111111/dumps/"
            ])
        );
        let drill = desired(&c, Job::Drill, "eu-west-3", &outputs()).unwrap();
        assert_eq!(
            drill["target"]["input"]["containerOverrides"][0]["command"],
            json!([
                "backup",
                "drill",
                "--from",
                "s3://hcctl-dev-drops-111111111111/dumps/",
                "--report",
                "s3://hcctl-dev-drops-111111111111/drills/"
            ])
        );
        assert!(desired(&c, Job::Ingest, "eu-west-3", &outputs()).is_none());
        assert_eq!(c.schedule_name(Job::Drill), "hcctl-dev-drill");
    }
}
