//! The backup plan (AWS Backup): its rules (schedule, windows, lifecycle, target vault) and tags
//! brought to the config. Its id is what the selection lives in: the engine's context carries it
//! from here to [`super::backup_selection`].

use std::collections::BTreeMap;

use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, CopyAction, Lifecycle};
use aws_sdk_backup::Client;
use serde::Serialize;

use super::step::diff;
use super::{Action, Context, Kind, Resource, Step};
use crate::aws::backup::{list_tags, retag};
use crate::aws::{tag_changes, AwsError};
use crate::config::{self, Rule};

pub const KIND: Kind = Kind::new("backup_plan", "backup plan");

/// A backup plan as AWS Backup describes it, rules in the config's terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub rules: Vec<PlanRule>,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// One rule: the config's fields plus the vault it targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRule {
    pub name: String,
    pub target_vault: String,
    pub schedule: String,
    pub start_window_minutes: Option<i64>,
    pub completion_window_minutes: Option<i64>,
    pub delete_after_days: Option<i64>,
    pub cold_storage_after_days: Option<i64>,
    /// The rule's copy actions, by destination vault ARN.
    pub copy_to: Vec<Copy>,
}

/// One copy action: where each recovery point of the rule is copied, and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Copy {
    pub vault_arn: String,
    pub delete_after_days: Option<i64>,
    pub cold_storage_after_days: Option<i64>,
}

impl PlanRule {
    pub fn from_config(r: &Rule, vault: &str) -> PlanRule {
        let mut copy_to: Vec<Copy> = r
            .copy_to
            .iter()
            .map(|c| Copy {
                vault_arn: c.vault_arn.clone(),
                delete_after_days: c.delete_after_days,
                cold_storage_after_days: c.cold_storage_after_days,
            })
            .collect();
        copy_to.sort();
        PlanRule {
            name: r.name.clone(),
            target_vault: vault.to_string(),
            schedule: r.schedule.trim().to_string(),
            start_window_minutes: Some(r.start_window_minutes),
            completion_window_minutes: Some(r.completion_window_minutes),
            delete_after_days: Some(r.delete_after_days),
            cold_storage_after_days: r.cold_storage_after_days,
            copy_to,
        }
    }
}

/// Find the plan named `name` (paginating) and describe it.
pub async fn observe(client: &Client, name: &str) -> Result<Option<Plan>, AwsError> {
    let mut pages = client.list_backup_plans().into_paginator().send();
    let mut found = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new("listing backup plans", &e))?;
        if let Some(p) = page
            .backup_plans_list()
            .iter()
            .find(|p| p.backup_plan_name() == Some(name))
        {
            found = p.backup_plan_id().map(str::to_string);
            break;
        }
    }
    let Some(id) = found else {
        return Ok(None);
    };
    let out = client
        .get_backup_plan()
        .backup_plan_id(&id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("reading backup plan {name}"), &e))?;
    let rules = out
        .backup_plan()
        .map(|p| {
            p.rules()
                .iter()
                .map(|r| PlanRule {
                    name: r.rule_name().to_string(),
                    target_vault: r.target_backup_vault_name().to_string(),
                    schedule: r.schedule_expression().unwrap_or_default().to_string(),
                    start_window_minutes: r.start_window_minutes(),
                    completion_window_minutes: r.completion_window_minutes(),
                    delete_after_days: r.lifecycle().and_then(|l| l.delete_after_days()),
                    cold_storage_after_days: r
                        .lifecycle()
                        .and_then(|l| l.move_to_cold_storage_after_days()),
                    copy_to: {
                        let mut c: Vec<Copy> = r
                            .copy_actions()
                            .iter()
                            .map(|a| Copy {
                                vault_arn: a.destination_backup_vault_arn().to_string(),
                                delete_after_days: a
                                    .lifecycle()
                                    .and_then(|l| l.delete_after_days()),
                                cold_storage_after_days: a
                                    .lifecycle()
                                    .and_then(|l| l.move_to_cold_storage_after_days()),
                            })
                            .collect();
                        c.sort();
                        c
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    let arn = out.backup_plan_arn().unwrap_or_default().to_string();
    let tags = list_tags(client, &arn, &format!("backup plan {name}")).await?;
    Ok(Some(Plan {
        id,
        name: name.to_string(),
        version_id: out.version_id().unwrap_or_default().to_string(),
        arn,
        rules,
        tags,
    }))
}

/// Rule differences, one line per changed field: `rules.daily.delete_after_days: 30 → 35`.
pub fn rule_changes(actual: &[PlanRule], desired: &[PlanRule]) -> Vec<String> {
    let as_map = |rules: &[PlanRule]| -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = rules
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("name");
                }
                (r.name.clone(), v)
            })
            .collect();
        serde_json::Value::Object(map)
    };
    let mut out = Vec::new();
    diff("rules", &as_map(actual), &as_map(desired), &mut out);
    out
}

/// The rules the config wants, in the plan's terms.
pub fn desired_rules(b: &config::Backup) -> Vec<PlanRule> {
    b.plan
        .rules
        .iter()
        .map(|r| PlanRule::from_config(r, &b.vault.name))
        .collect()
}

/// What deploy will do to the plan.
pub fn changes(
    b: &config::Backup,
    tags: &BTreeMap<String, String>,
    observed: Option<&Plan>,
) -> Step {
    let desired = desired_rules(b);
    let Some(p) = observed else {
        let rules: Vec<String> = desired
            .iter()
            .map(|r| {
                format!(
                    "rule {} {} keep {} days",
                    r.name,
                    r.schedule,
                    r.delete_after_days.unwrap_or(0)
                )
            })
            .collect();
        return Step::new(KIND, &b.plan.name, Action::Create, rules);
    };
    let mut changes = rule_changes(&p.rules, &desired);
    changes.extend(tag_changes(&p.tags, tags));
    Step::compared(KIND, &b.plan.name, Action::Update, changes)
}

/// What the config would say of the plan as it is (`hcctl cost`'s `--set` form): its rules.
/// Nothing when a rule keeps its points forever (no config says that).
pub fn was(p: &Plan) -> Vec<String> {
    let rules: Option<Vec<serde_json::Value>> = p
        .rules
        .iter()
        .map(|r| {
            let mut rule = serde_json::json!({
                "name": r.name,
                "schedule": r.schedule,
                "delete_after_days": r.delete_after_days?,
            });
            if let Some(v) = r.start_window_minutes {
                rule["start_window_minutes"] = v.into();
            }
            if let Some(v) = r.completion_window_minutes {
                rule["completion_window_minutes"] = v.into();
            }
            if let Some(v) = r.cold_storage_after_days {
                rule["cold_storage_after_days"] = v.into();
            }
            if !r.copy_to.is_empty() {
                rule["copy_to"] = serde_json::to_value(&r.copy_to).ok()?;
            }
            Some(rule)
        })
        .collect();
    match rules {
        Some(r) if !r.is_empty() => {
            vec![format!("backup.plan.rules={}", serde_json::Value::Array(r))]
        }
        _ => vec![],
    }
}

fn plan_input(b: &config::Backup) -> Result<BackupPlanInput, AwsError> {
    let build = |what: &str, e: &dyn std::fmt::Display| {
        AwsError::other(
            format!("building backup plan {}", b.plan.name),
            format!("{what}: {e}"),
        )
    };
    let mut input = BackupPlanInput::builder().backup_plan_name(&b.plan.name);
    for r in &b.plan.rules {
        let rule = BackupRuleInput::builder()
            .rule_name(&r.name)
            .target_backup_vault_name(&b.vault.name)
            .schedule_expression(r.schedule.trim())
            .start_window_minutes(r.start_window_minutes)
            .completion_window_minutes(r.completion_window_minutes)
            .lifecycle(
                Lifecycle::builder()
                    .delete_after_days(r.delete_after_days)
                    .set_move_to_cold_storage_after_days(r.cold_storage_after_days)
                    .build(),
            )
            .set_copy_actions(if r.copy_to.is_empty() {
                None
            } else {
                Some(
                    r.copy_to
                        .iter()
                        .map(|c| {
                            let lifecycle = (c.delete_after_days.is_some()
                                || c.cold_storage_after_days.is_some())
                            .then(|| {
                                Lifecycle::builder()
                                    .set_delete_after_days(c.delete_after_days)
                                    .set_move_to_cold_storage_after_days(c.cold_storage_after_days)
                                    .build()
                            });
                            CopyAction::builder()
                                .destination_backup_vault_arn(&c.vault_arn)
                                .set_lifecycle(lifecycle)
                                .build()
                                .map_err(|e| build("copy action", &e))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            })
            .build()
            .map_err(|e| build("rule", &e))?;
        input = input.rules(rule);
    }
    input.build().map_err(|e| build("plan", &e))
}

/// Create or update the plan; returns its id.
pub async fn apply(
    client: &Client,
    b: &config::Backup,
    tags: &BTreeMap<String, String>,
    observed: Option<&Plan>,
) -> Result<String, AwsError> {
    let name = &b.plan.name;
    match observed {
        None => {
            let out = client
                .create_backup_plan()
                .backup_plan(plan_input(b)?)
                .set_backup_plan_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("creating backup plan {name}"), &e))?;
            Ok(out.backup_plan_id().unwrap_or_default().to_string())
        }
        Some(p) => {
            if !rule_changes(&p.rules, &desired_rules(b)).is_empty() {
                client
                    .update_backup_plan()
                    .backup_plan_id(&p.id)
                    .backup_plan(plan_input(b)?)
                    .send()
                    .await
                    .map_err(|e| AwsError::new(format!("updating backup plan {name}"), &e))?;
            }
            retag(
                client,
                &p.arn,
                &p.tags,
                tags,
                &format!("backup plan {name}"),
            )
            .await?;
            Ok(p.id.clone())
        }
    }
}

pub async fn delete(client: &Client, id: &str, name: &str) -> Result<(), AwsError> {
    client
        .delete_backup_plan()
        .backup_plan_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting backup plan {name}"), &e))
}

/// The plan, for the engine.
pub struct BackupPlan;

impl Resource for BackupPlan {
    type Item = Option<Plan>;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let observed = observe(&cx.aws.backup, &cx.config.backup.plan.name).await?;
        cx.backup_plan_id = observed.as_ref().map(|p| p.id.clone());
        Ok(vec![observed])
    }

    fn step(cx: &Context<'_>, observed: &Self::Item) -> Step {
        changes(&cx.config.backup, &cx.config.tags, observed.as_ref())
            .was(observed.as_ref().map(was).unwrap_or_default())
    }

    async fn apply_step(cx: &mut Context<'_>, observed: &Self::Item) -> Result<String, AwsError> {
        let c = cx.config;
        let id = apply(&cx.aws.backup, &c.backup, &c.tags, observed.as_ref()).await?;
        cx.backup_plan_id = Some(id.clone());
        Ok(format!("plan id {id}"))
    }

    fn removal(cx: &Context<'_>, observed: &Self::Item) -> Step {
        let action = match observed {
            Some(_) => Action::Delete,
            None => Action::Absent,
        };
        Step::new(KIND, &cx.config.backup.plan.name, action, vec![])
    }

    async fn remove(cx: &Context<'_>, observed: &Self::Item) -> Result<(), AwsError> {
        match observed {
            Some(p) => delete(&cx.aws.backup, &p.id, &p.name).await,
            None => Ok(()),
        }
    }
}

/// How often a schedule expression fires, roughly: `rate(N unit)` exactly; `cron(m h dom mon dow
/// y)` as hourly (a step or `*` in the hour field), daily, weekly (a day of week) or monthly (a
/// day of month).
pub fn schedule_interval(expr: &str) -> Option<i64> {
    let expr = expr.trim();
    if let Some(body) = expr.strip_prefix("rate(").and_then(|b| b.strip_suffix(')')) {
        let mut parts = body.split_whitespace();
        let n: i64 = parts.next()?.parse().ok()?;
        let unit = parts.next()?.trim_end_matches('s');
        let secs = match unit {
            "minute" => 60,
            "hour" => 3600,
            "day" => 86400,
            _ => return None,
        };
        return n.checked_mul(secs).filter(|s| *s > 0);
    }
    let body = expr.strip_prefix("cron(")?.strip_suffix(')')?;
    let f: Vec<&str> = body.split_whitespace().collect();
    if f.len() != 6 {
        return None;
    }
    let (hour, dom, dow) = (f[1], f[2], f[4]);
    if hour == "*" {
        return Some(3600);
    }
    if let Some((_, step)) = hour.split_once('/') {
        return step
            .parse::<i64>()
            .ok()
            .and_then(|h| h.checked_mul(3600))
            .filter(|s| *s > 0);
    }
    if hour.contains(',') {
        let n = hour.split(',').count() as i64;
        return Some(86400 / n.max(1));
    }
    let any = |s: &str| s == "*" || s == "?";
    if any(dom) && any(dow) {
        Some(86400)
    } else if any(dom) {
        Some(7 * 86400)
    } else {
        Some(31 * 86400)
    }
}
