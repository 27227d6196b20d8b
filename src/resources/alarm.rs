//! The CloudWatch alarms, when the config has `alerts`; each notifies the alerts topic when it
//! goes to ALARM and when it is back to OK. Named `<project>-<environment>-<suffix>`:
//! - `mongo-tasks-below-desired`: the MongoDB service runs fewer tasks than desired for 3
//!   minutes (Container Insights' `RunningTaskCount` below the desired count hcctl gives the
//!   service; no data counts as breaching: a service that reports nothing is not running);
//! - `mongo-cpu-high`, `mongo-memory-high`: the service's CPU or memory (AWS/ECS, percent of its
//!   reservation) above the threshold, averaged over 3 periods of 5 minutes;
//! - `backup-job-failed`: a backup job of the vault failed (AWS/Backup
//!   `NumberOfBackupJobsFailed`);
//! - `backup-overdue`: no backup job of the vault completed within the plan's most frequent
//!   interval plus `backup_grace_hours` (hourly sums of `NumberOfBackupJobsCompleted`, missing
//!   data breaching) — only when that window fits CloudWatch's 7-day evaluation range;
//! - `app-errors`: an `ERROR` line in the app's log (the `app-errors` metric filter);
//! - `rejected-rows`: a run or an ingested file rejected more than `rejected_share` of its rows
//!   (the `rejected-share` metric filter).
//!
//! An alarm is compared as one document (metric or metric math, statistic, period, threshold,
//! evaluation, missing data, actions, description); PutMetricAlarm replaces an alarm whole, so
//! a drifted one is put back with the same call. Tags are compared and set separately.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, Statistic, Tag,
};
use aws_sdk_cloudwatch::Client;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, tag_delta, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("alarm", "alarm");

/// The alarms, by suffix, in plan order.
pub const SUFFIXES: [&str; 7] = [
    "mongo-tasks-below-desired",
    "mongo-cpu-high",
    "mongo-memory-high",
    "backup-job-failed",
    "backup-overdue",
    "app-errors",
    "rejected-rows",
];

/// CloudWatch evaluates at most 7 days of data for an alarm.
const MAX_EVALUATION_HOURS: i64 = 168;

/// The names of every alarm hcctl may manage for this config.
pub fn names(config: &Config) -> Vec<String> {
    SUFFIXES.iter().map(|s| config.resource_name(s)).collect()
}

/// The hours without a completed backup after which `backup-overdue` fires.
pub fn overdue_hours(config: &Config) -> i64 {
    let interval = config
        .backup
        .plan
        .rules
        .iter()
        .filter_map(|r| super::backup_plan::schedule_interval(&r.schedule))
        .min()
        .unwrap_or(24 * 3600);
    let grace = config
        .alerts
        .as_ref()
        .map_or(2, |a| i64::from(a.thresholds.backup_grace_hours));
    (interval + 3599) / 3600 + grace
}

fn metric(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Value {
    let mut dims: Vec<Value> = dimensions
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    dims.sort_by_key(|d| d["name"].as_str().unwrap_or_default().to_string());
    json!({"namespace": namespace, "name": name, "dimensions": dims})
}

/// What the config wants of the alarm `suffix`; `None` when it wants none (no alerts, or a
/// backup window CloudWatch cannot evaluate).
pub fn desired(config: &Config, suffix: &str, topic_arn: &str) -> Option<Value> {
    let a = config.alerts.as_ref()?;
    let t = &a.thresholds;
    let cluster = config.ecs.cluster.as_str();
    let service = config.service_name();
    let ecs_dims = [("ClusterName", cluster), ("ServiceName", service.as_str())];
    let vault = [("BackupVaultName", config.backup.vault.name.as_str())];
    let ns = super::metric_filter::namespace(config);
    let single =
        |m: Value, stat: &str, period: i64| json!({"metric": m, "stat": stat, "period": period});
    let (description, query, comparison, threshold, periods, missing) = match suffix {
        "mongo-tasks-below-desired" => {
            // hcctl sets the service's desired count (MongoDB on one file system runs one
            // task): the alarm compares the running count to it, a single metric.
            let desired = f64::from(super::service::DESIRED_COUNT);
            (
                format!("MongoDB service {service} runs fewer than its {desired} desired task(s)"),
                single(
                    metric("ECS/ContainerInsights", "RunningTaskCount", &ecs_dims),
                    "Minimum",
                    60,
                ),
                "LessThanThreshold",
                desired,
                3,
                "breaching",
            )
        }
        "mongo-cpu-high" | "mongo-memory-high" => {
            let (name, limit) = if suffix == "mongo-cpu-high" {
                ("CPUUtilization", t.mongo_cpu_percent)
            } else {
                ("MemoryUtilization", t.mongo_memory_percent)
            };
            (
                format!("MongoDB service {service}: {name} above {limit}% for 15 minutes"),
                single(metric("AWS/ECS", name, &ecs_dims), "Average", 300),
                "GreaterThanThreshold",
                limit,
                3,
                "notBreaching",
            )
        }
        "backup-job-failed" => (
            format!("a backup job of vault {} failed", config.backup.vault.name),
            single(
                metric("AWS/Backup", "NumberOfBackupJobsFailed", &vault),
                "Sum",
                300,
            ),
            "GreaterThanThreshold",
            0.0,
            1,
            "notBreaching",
        ),
        "backup-overdue" => {
            let hours = overdue_hours(config);
            if hours > MAX_EVALUATION_HOURS {
                return None;
            }
            (
                format!(
                    "no backup job of vault {} completed in {hours} hours",
                    config.backup.vault.name
                ),
                single(
                    metric("AWS/Backup", "NumberOfBackupJobsCompleted", &vault),
                    "Sum",
                    3600,
                ),
                "LessThanThreshold",
                1.0,
                hours,
                "breaching",
            )
        }
        "app-errors" => (
            format!(
                "an ERROR line in the app's log ({})",
                config.log_groups.app.name
            ),
            single(metric(&ns, "AppErrors", &[]), "Sum", 300),
            "GreaterThanOrEqualToThreshold",
            1.0,
            1,
            "notBreaching",
        ),
        "rejected-rows" => (
            format!(
                "a migration or an ingested file rejected more than {} of its rows",
                t.rejected_share
            ),
            single(metric(&ns, "RejectedShare", &[]), "Maximum", 300),
            "GreaterThanThreshold",
            t.rejected_share,
            1,
            "notBreaching",
        ),
        _ => return None,
    };
    Some(json!({
        "description": format!("{description} ({}-{}, managed by hcctl)", config.project, config.environment),
        "query": query,
        "comparison": comparison,
        "threshold": threshold,
        "evaluation_periods": periods,
        "datapoints_to_alarm": periods,
        "treat_missing_data": missing,
        "actions_enabled": true,
        "alarm_actions": [topic_arn],
        "ok_actions": [topic_arn],
    }))
}

fn observed_metric(m: Option<&Metric>) -> Value {
    let dims: Vec<(&str, &str)> = m
        .map(|m| {
            m.dimensions()
                .iter()
                .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    metric(
        m.and_then(|m| m.namespace()).unwrap_or_default(),
        m.and_then(|m| m.metric_name()).unwrap_or_default(),
        &dims,
    )
}

/// DescribeAlarms' alarm as the same document.
pub fn observed(a: &MetricAlarm) -> Value {
    let query = if a.metrics().is_empty() {
        let dims: Vec<(&str, &str)> = a
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
            .collect();
        json!({
            "metric": metric(
                a.namespace().unwrap_or_default(),
                a.metric_name().unwrap_or_default(),
                &dims,
            ),
            "stat": a.statistic().map(|s| s.as_str()),
            "period": a.period(),
        })
    } else {
        let metrics: Vec<Value> = a
            .metrics()
            .iter()
            .map(|q| match q.expression() {
                Some(e) => json!({
                    "id": q.id(), "expression": e, "label": q.label(),
                    "return_data": q.return_data().unwrap_or(true),
                }),
                None => json!({
                    "id": q.id(),
                    "metric": observed_metric(q.metric_stat().and_then(|s| s.metric())),
                    "stat": q.metric_stat().map(|s| s.stat()),
                    "period": q.metric_stat().map(|s| s.period()),
                    "return_data": q.return_data().unwrap_or(true),
                }),
            })
            .collect();
        json!({"metrics": metrics})
    };
    json!({
        "description": a.alarm_description(),
        "query": query,
        "comparison": a.comparison_operator().map(|c| c.as_str()),
        "threshold": a.threshold(),
        "evaluation_periods": a.evaluation_periods(),
        "datapoints_to_alarm": a.datapoints_to_alarm(),
        "treat_missing_data": a.treat_missing_data(),
        "actions_enabled": a.actions_enabled(),
        "alarm_actions": a.alarm_actions(),
        "ok_actions": a.ok_actions(),
    })
}

/// An alarm as CloudWatch has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub doc: Value,
    pub state: String,
    /// CloudWatch's reason for the state.
    pub reason: String,
    pub tags: BTreeMap<String, String>,
}

/// The alarms among `names` that exist (one DescribeAlarms), with their tags (read-only).
pub async fn observe(
    client: &Client,
    names: &[String],
) -> Result<BTreeMap<String, Observed>, AwsError> {
    let out = client
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::new("describing the alarms", &e))?;
    let mut found = BTreeMap::new();
    for a in out.metric_alarms() {
        let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else {
            continue;
        };
        if !names.iter().any(|n| n == name) {
            continue;
        }
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing the tags of alarm {name}"), &e))?
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        found.insert(
            name.to_string(),
            Observed {
                arn: arn.to_string(),
                doc: observed(a),
                state: a
                    .state_value()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: a.state_reason().unwrap_or_default().to_string(),
                tags,
            },
        );
    }
    Ok(found)
}

/// Deploy's step (pure).
pub fn changes(
    name: &str,
    want: Option<&Value>,
    tags: &BTreeMap<String, String>,
    have: Option<&Observed>,
) -> Step {
    match (want, have) {
        (Some(w), None) => Step::new(
            KIND,
            name,
            Action::Create,
            vec![
                w["description"].as_str().unwrap_or_default().to_string(),
                format!(
                    "notifies {} on ALARM and OK",
                    w["alarm_actions"][0].as_str().unwrap_or(AFTER_APPLY)
                ),
            ],
        ),
        (Some(w), Some(h)) => {
            let mut lines = Vec::new();
            super::step::diff("", &h.doc, w, &mut lines);
            lines.extend(tag_changes(&h.tags, tags));
            Step::compared(KIND, name, Action::Update, lines)
        }
        (None, Some(_)) => Step::new(
            KIND,
            name,
            Action::Delete,
            vec!["not wanted by the config".to_string()],
        ),
        (None, None) => Step::new(KIND, name, Action::Absent, vec![]),
    }
}

fn build_err(name: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::other(format!("building alarm {name}"), e)
}

fn sdk_metric(m: &Value) -> Metric {
    let dims: Vec<Dimension> = m["dimensions"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| {
                    Dimension::builder()
                        .name(d["name"].as_str().unwrap_or_default())
                        .value(d["value"].as_str().unwrap_or_default())
                        .build()
                })
                .collect()
        })
        .unwrap_or_default();
    Metric::builder()
        .namespace(m["namespace"].as_str().unwrap_or_default())
        .metric_name(m["name"].as_str().unwrap_or_default())
        .set_dimensions((!dims.is_empty()).then_some(dims))
        .build()
}

/// PutMetricAlarm with the whole desired document (create or replace).
pub async fn put(
    client: &Client,
    name: &str,
    w: &Value,
    tags: &BTreeMap<String, String>,
    create: bool,
) -> Result<(), AwsError> {
    let topic = w["alarm_actions"][0].as_str().unwrap_or(AFTER_APPLY);
    if topic == AFTER_APPLY {
        return Err(build_err(name, "the topic's ARN is not known"));
    }
    let q = &w["query"];
    let mut req = client
        .put_metric_alarm()
        .alarm_name(name)
        .alarm_description(w["description"].as_str().unwrap_or_default())
        .comparison_operator(ComparisonOperator::from(
            w["comparison"].as_str().unwrap_or_default(),
        ))
        .threshold(w["threshold"].as_f64().unwrap_or_default())
        .evaluation_periods(w["evaluation_periods"].as_i64().unwrap_or(1) as i32)
        .datapoints_to_alarm(w["datapoints_to_alarm"].as_i64().unwrap_or(1) as i32)
        .treat_missing_data(w["treat_missing_data"].as_str().unwrap_or("missing"))
        .actions_enabled(true)
        .alarm_actions(topic)
        .ok_actions(topic);
    // hcctl's alarms are single-metric ones (`desired` makes no metric math).
    let m = sdk_metric(&q["metric"]);
    req = req
        .namespace(m.namespace().unwrap_or_default())
        .metric_name(m.metric_name().unwrap_or_default())
        .set_dimensions(Some(m.dimensions().to_vec()).filter(|d| !d.is_empty()))
        .statistic(Statistic::from(q["stat"].as_str().unwrap_or("Average")))
        .period(q["period"].as_i64().unwrap_or(300) as i32);
    if create && !tags.is_empty() {
        req = req.set_tags(Some(cw_tags(tags)));
    }
    req.send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("putting alarm {name}"), &e))
}

fn cw_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

async fn retag(
    client: &Client,
    name: &str,
    o: &Observed,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let (set, remove) = tag_delta(&o.tags, tags);
    if !set.is_empty() {
        client
            .tag_resource()
            .resource_arn(&o.arn)
            .set_tags(Some(cw_tags(&set)))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("tagging alarm {name}"), &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(&o.arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging alarm {name}"), &e))?;
    }
    Ok(())
}

pub async fn delete(client: &Client, name: &str) -> Result<(), AwsError> {
    client
        .delete_alarms()
        .alarm_names(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting alarm {name}"), &e))
}

/// The alarms, for the engine.
pub struct Alarms;

pub struct Item {
    pub name: String,
    pub suffix: &'static str,
    pub observed: Option<Observed>,
}

fn want(cx: &Context<'_>, suffix: &str) -> Option<Value> {
    let topic = cx
        .outputs
        .alerts_topic_arn
        .clone()
        .unwrap_or_else(|| AFTER_APPLY.to_string());
    desired(cx.config, suffix, &topic)
}

impl Resource for Alarms {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let names = names(cx.config);
        let mut found = observe(&cx.aws.cloudwatch, &names).await?;
        let mut items = Vec::new();
        for (suffix, name) in SUFFIXES.iter().zip(names) {
            let observed = found.remove(&name);
            if observed.is_none() && want(cx, suffix).is_none() {
                continue;
            }
            items.push(Item {
                name,
                suffix,
                observed,
            });
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        let mut step = changes(
            &item.name,
            want(cx, item.suffix).as_ref(),
            &cx.config.tags,
            item.observed.as_ref(),
        );
        if item.suffix == "backup-overdue" && step.action == Action::Delete {
            step.changes = vec![format!(
                "the plan's interval plus grace ({} h) is beyond CloudWatch's 7-day evaluation \
                 range: backup-status judges the age of the last backup instead",
                overdue_hours(cx.config)
            )];
        }
        // Deleted because the config has no alerts any more: alerting, as it is now.
        if step.action == Action::Delete && cx.config.alerts.is_none() {
            step.was = vec!["alerts.vault_notifications=false".to_string()];
        }
        step
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        let client = &cx.aws.cloudwatch;
        match want(cx, item.suffix) {
            Some(w) => {
                let changed = item.observed.as_ref().is_none_or(|o| o.doc != w);
                if changed {
                    put(
                        client,
                        &item.name,
                        &w,
                        &cx.config.tags,
                        item.observed.is_none(),
                    )
                    .await?;
                }
                if let Some(o) = &item.observed {
                    retag(client, &item.name, o, &cx.config.tags).await?;
                }
                Ok(if item.observed.is_some() {
                    "updated".into()
                } else {
                    "created".into()
                })
            }
            None => {
                delete(client, &item.name).await?;
                Ok("deleted".into())
            }
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        Step::removal(KIND, &item.name, item.observed.is_some())
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        delete(&cx.aws.cloudwatch, &item.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(alerts: &str) -> Config {
        let mut c = crate::config::tests_support::example_config();
        c.alerts = Some(serde_yaml_ng::from_str(alerts).expect("alerts"));
        c
    }

    const TOPIC: &str = "arn:aws:sns:eu-west-3:111111111111:hcctl-dev-alerts";

    #[test]
    fn every_alarm_notifies_the_topic_on_alarm_and_ok() {
        let c = config("{}");
        for suffix in SUFFIXES {
            let w = desired(&c, suffix, TOPIC).unwrap_or_else(|| panic!("{suffix}"));
            assert_eq!(w["alarm_actions"], json!([TOPIC]), "{suffix}");
            assert_eq!(w["ok_actions"], json!([TOPIC]), "{suffix}");
        }
        let mut none = c.clone();
        none.alerts = None;
        assert!(desired(&none, "app-errors", TOPIC).is_none());
    }

    #[test]
    fn thresholds_come_from_the_config() {
        let c = config(
            "thresholds: {mongo_cpu_percent: 70, rejected_share: 0.1, backup_grace_hours: 4}",
        );
        let cpu = desired(&c, "mongo-cpu-high", TOPIC).unwrap();
        assert_eq!(cpu["threshold"], 70.0);
        assert_eq!(cpu["evaluation_periods"], 3);
        assert_eq!(cpu["query"]["period"], 300);
        assert_eq!(
            desired(&c, "rejected-rows", TOPIC).unwrap()["threshold"],
            0.1
        );
        // The example plan's most frequent rule is daily: 24 + 4 hourly periods.
        let overdue = desired(&c, "backup-overdue", TOPIC).unwrap();
        assert_eq!(overdue["evaluation_periods"], 28);
        assert_eq!(overdue["treat_missing_data"], "breaching");
        assert_eq!(overdue["comparison"], "LessThanThreshold");
    }

    #[test]
    fn a_weekly_plan_gets_no_overdue_alarm_cloudwatch_cannot_evaluate() {
        let mut c = config("{}");
        for r in &mut c.backup.plan.rules {
            r.schedule = "cron(0 3 ? * SUN *)".into();
        }
        assert_eq!(overdue_hours(&c), 170);
        assert!(desired(&c, "backup-overdue", TOPIC).is_none());
    }

    #[test]
    fn the_running_task_alarm_reads_container_insights() {
        let c = config("{}");
        let w = desired(&c, "mongo-tasks-below-desired", TOPIC).unwrap();
        let m = &w["query"]["metric"];
        assert_eq!(m["namespace"], "ECS/ContainerInsights");
        assert_eq!(m["name"], "RunningTaskCount");
        assert_eq!(m["dimensions"][0]["name"], "ClusterName");
        assert_eq!(m["dimensions"][1]["name"], "ServiceName");
        assert_eq!(w["threshold"], 1.0);
        assert_eq!(w["comparison"], "LessThanThreshold");
        assert_eq!(w["treat_missing_data"], "breaching");
        let same = Observed {
            arn: "a".into(),
            doc: w.clone(),
            state: "OK".into(),
            reason: String::new(),
            tags: BTreeMap::new(),
        };
        assert_eq!(
            changes("n", Some(&w), &BTreeMap::new(), Some(&same)).action,
            Action::Unchanged
        );
    }
}
