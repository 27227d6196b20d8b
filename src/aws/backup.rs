//! AWS Backup: the vault, the plan and its rules, the selection of what is protected — observed,
//! compared with the config, created or brought to it. `backup-status` reads the same views.

use std::collections::BTreeMap;

use aws_sdk_backup::types::{
    BackupPlanInput, BackupRuleInput, BackupSelection, Condition, ConditionParameter,
    ConditionType, Conditions, Lifecycle,
};
use aws_sdk_backup::Client;
use serde::Serialize;

use super::{tag_changes, tag_delta, AwsError, AwsErrorKind};
use crate::config::{self, Rule};
use crate::deploy::plan::{diff, Action, Kind, Step};

/// A vault as AWS Backup describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vault {
    pub name: String,
    pub arn: String,
    pub encryption_key_arn: Option<String>,
    pub locked: bool,
    pub recovery_points: i64,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// "Not found" as AWS Backup says it (some endpoints answer AccessDenied for a missing vault).
fn is_missing(e: &AwsError) -> bool {
    e.kind == AwsErrorKind::Service
        && matches!(
            e.code.as_deref(),
            Some("ResourceNotFoundException" | "AccessDeniedException" | "NotFoundException")
        )
}

pub async fn observe_vault(client: &Client, name: &str) -> Result<Option<Vault>, AwsError> {
    let out = match client
        .describe_backup_vault()
        .backup_vault_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let err = AwsError::new(format!("describing backup vault {name}"), &e);
            return if is_missing(&err) { Ok(None) } else { Err(err) };
        }
    };
    let arn = out.backup_vault_arn().unwrap_or_default().to_string();
    let tags = list_tags(client, &arn, &format!("backup vault {name}")).await?;
    Ok(Some(Vault {
        name: name.to_string(),
        encryption_key_arn: out.encryption_key_arn().map(str::to_string),
        locked: out.locked().unwrap_or(false),
        recovery_points: out.number_of_recovery_points(),
        arn,
        tags,
    }))
}

async fn list_tags(
    client: &Client,
    arn: &str,
    what: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    if arn.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut pages = client.list_tags().resource_arn(arn).into_paginator().send();
    let mut tags = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new(format!("listing the tags of {what}"), &e))?;
        if let Some(t) = page.tags() {
            tags.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    Ok(tags)
}

async fn retag(
    client: &Client,
    arn: &str,
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
    what: &str,
) -> Result<(), AwsError> {
    let (set, remove) = tag_delta(actual, desired);
    if !set.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("tagging {what}"), &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_key_list(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging {what}"), &e))?;
    }
    Ok(())
}

pub fn plan_vault(
    desired: &config::Vault,
    tags: &BTreeMap<String, String>,
    observed: Option<&Vault>,
) -> Step {
    let Some(v) = observed else {
        let key = desired
            .kms_key_arn
            .as_deref()
            .map_or("AWS-owned key".to_string(), |k| format!("KMS key {k}"));
        return Step::new(Kind::BackupVault, &desired.name, Action::Create, vec![key]);
    };
    if let Some(key) = &desired.kms_key_arn {
        if v.encryption_key_arn.as_ref() != Some(key) {
            return Step::new(
                Kind::BackupVault,
                &desired.name,
                Action::Keep,
                vec![format!(
                    "encryption key {} ≠ {key}: AWS cannot change the key of an existing vault \
                     (create a new vault under another name)",
                    v.encryption_key_arn.as_deref().unwrap_or("(none)")
                )],
            );
        }
    }
    let changes = tag_changes(&v.tags, tags);
    let action = if changes.is_empty() {
        Action::Unchanged
    } else {
        Action::Update
    };
    Step::new(Kind::BackupVault, &desired.name, action, changes)
}

pub async fn apply_vault(
    client: &Client,
    desired: &config::Vault,
    tags: &BTreeMap<String, String>,
    observed: Option<&Vault>,
) -> Result<String, AwsError> {
    let name = desired.name.as_str();
    match observed {
        None => {
            let out = client
                .create_backup_vault()
                .backup_vault_name(name)
                .set_encryption_key_arn(desired.kms_key_arn.clone())
                .set_backup_vault_tags(super::create_tags(tags))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("creating backup vault {name}"), &e))?;
            Ok(out.backup_vault_arn().unwrap_or("created").to_string())
        }
        Some(v) => {
            retag(
                client,
                &v.arn,
                &v.tags,
                tags,
                &format!("backup vault {name}"),
            )
            .await?;
            Ok("updated".to_string())
        }
    }
}

pub async fn delete_vault(client: &Client, name: &str) -> Result<(), AwsError> {
    client
        .delete_backup_vault()
        .backup_vault_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting backup vault {name}"), &e))
}

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
}

impl PlanRule {
    pub fn from_config(r: &Rule, vault: &str) -> PlanRule {
        PlanRule {
            name: r.name.clone(),
            target_vault: vault.to_string(),
            schedule: r.schedule.trim().to_string(),
            start_window_minutes: Some(r.start_window_minutes),
            completion_window_minutes: Some(r.completion_window_minutes),
            delete_after_days: Some(r.delete_after_days),
            cold_storage_after_days: r.cold_storage_after_days,
        }
    }
}

/// Find the plan named `name` (paginating) and describe it.
pub async fn observe_plan(client: &Client, name: &str) -> Result<Option<Plan>, AwsError> {
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

pub fn desired_rules(b: &config::Backup) -> Vec<PlanRule> {
    b.plan
        .rules
        .iter()
        .map(|r| PlanRule::from_config(r, &b.vault.name))
        .collect()
}

pub fn plan_plan(
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
        return Step::new(Kind::BackupPlan, &b.plan.name, Action::Create, rules);
    };
    let mut changes = rule_changes(&p.rules, &desired);
    changes.extend(tag_changes(&p.tags, tags));
    let action = if changes.is_empty() {
        Action::Unchanged
    } else {
        Action::Update
    };
    Step::new(Kind::BackupPlan, &b.plan.name, action, changes)
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
            .build()
            .map_err(|e| build("rule", &e))?;
        input = input.rules(rule);
    }
    input.build().map_err(|e| build("plan", &e))
}

/// Create or update the plan; returns its id.
pub async fn apply_plan(
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

pub async fn delete_plan(client: &Client, id: &str, name: &str) -> Result<(), AwsError> {
    client
        .delete_backup_plan()
        .backup_plan_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting backup plan {name}"), &e))
}

/// The tag key of a selection condition: `aws:ResourceTag/KEY`.
const RESOURCE_TAG: &str = "aws:ResourceTag/";

/// A selection as AWS Backup describes it.
///
/// AWS Backup ORs `Resources` with `ListOfTags` (every resource of the account and region
/// carrying one of those tags is selected too), and ANDs `Conditions` with `Resources`. So the
/// config's `tag_conditions` become `Conditions` (narrowing) when `resources` are named, and
/// `ListOfTags` (the whole selection) only when they are not: a PHI plan never picks up
/// whatever else in the account happens to be tagged `Backup=daily`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub id: String,
    pub name: String,
    pub iam_role_arn: String,
    pub resources: Vec<String>,
    /// `ListOfTags`: resources with any of these tags are selected (OR).
    pub list_of_tags: BTreeMap<String, String>,
    /// `Conditions.StringEquals` on `aws:ResourceTag/KEY`: only resources of `resources` that
    /// carry all of these tags (AND).
    pub conditions: BTreeMap<String, String>,
}

impl Selection {
    fn comparable(&self) -> serde_json::Value {
        let mut resources = self.resources.clone();
        resources.sort();
        serde_json::json!({
            "iam_role_arn": self.iam_role_arn,
            "resources": resources,
            "list_of_tags": self.list_of_tags,
            "conditions": self.conditions,
        })
    }

    pub fn from_config(s: &config::Selection) -> Selection {
        let (list_of_tags, conditions) = if s.resources.is_empty() {
            (s.tag_conditions.clone(), BTreeMap::new())
        } else {
            (BTreeMap::new(), s.tag_conditions.clone())
        };
        Selection {
            id: String::new(),
            name: s.name.clone(),
            iam_role_arn: s.iam_role_arn.clone(),
            resources: s.resources.clone(),
            list_of_tags,
            conditions,
        }
    }

    /// Plan and status lines: what the selection protects.
    pub fn describe(&self) -> Vec<String> {
        let mut what: Vec<String> = self
            .resources
            .iter()
            .map(|r| format!("resource {r}"))
            .collect();
        what.extend(
            self.conditions
                .iter()
                .map(|(k, v)| format!("only if tagged {k}={v}")),
        );
        what.extend(
            self.list_of_tags
                .iter()
                .map(|(k, v)| format!("any resource tagged {k}={v}")),
        );
        what
    }
}

/// The selection named `name` in the plan (paginating).
pub async fn observe_selection(
    client: &Client,
    plan_id: &str,
    name: &str,
) -> Result<Option<Selection>, AwsError> {
    let mut pages = client
        .list_backup_selections()
        .backup_plan_id(plan_id)
        .into_paginator()
        .send();
    let mut found = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new("listing backup selections", &e))?;
        if let Some(s) = page
            .backup_selections_list()
            .iter()
            .find(|s| s.selection_name() == Some(name))
        {
            found = s.selection_id().map(str::to_string);
            break;
        }
    }
    let Some(id) = found else {
        return Ok(None);
    };
    let out = client
        .get_backup_selection()
        .backup_plan_id(plan_id)
        .selection_id(&id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("reading backup selection {name}"), &e))?;
    let Some(sel) = out.backup_selection() else {
        return Ok(None);
    };
    Ok(Some(Selection {
        id,
        name: name.to_string(),
        iam_role_arn: sel.iam_role_arn().to_string(),
        resources: sel.resources().to_vec(),
        list_of_tags: sel
            .list_of_tags()
            .iter()
            .map(|c| {
                (
                    c.condition_key().to_string(),
                    c.condition_value().to_string(),
                )
            })
            .collect(),
        conditions: sel
            .conditions()
            .map(|c| c.string_equals())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| {
                let key = c.condition_key()?;
                // A condition on something else than a tag is kept whole, so it shows as drift.
                let key = key.strip_prefix(RESOURCE_TAG).unwrap_or(key);
                Some((
                    key.to_string(),
                    c.condition_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }))
}

/// Differences of a selection from the config, one line per field.
pub fn selection_changes(actual: &Selection, desired: &config::Selection) -> Vec<String> {
    let want = Selection::from_config(desired);
    let mut changes = Vec::new();
    diff("", &actual.comparable(), &want.comparable(), &mut changes);
    changes
}

pub fn plan_selection(desired: &config::Selection, observed: Option<&Selection>) -> Step {
    let want = Selection::from_config(desired);
    let Some(s) = observed else {
        return Step::new(
            Kind::BackupSelection,
            &desired.name,
            Action::Create,
            want.describe(),
        );
    };
    let changes = selection_changes(s, desired);
    let action = if changes.is_empty() {
        Action::Unchanged
    } else {
        Action::Replace
    };
    Step::new(Kind::BackupSelection, &desired.name, action, changes)
}

/// Create the selection, deleting the existing one first when it differs (selections cannot be
/// updated in place).
pub async fn apply_selection(
    client: &Client,
    plan_id: &str,
    desired: &config::Selection,
    observed: Option<&Selection>,
) -> Result<String, AwsError> {
    let name = &desired.name;
    if let Some(s) = observed {
        delete_selection(client, plan_id, &s.id, name).await?;
    }
    let want = Selection::from_config(desired);
    let mut sel = BackupSelection::builder()
        .selection_name(name)
        .iam_role_arn(&desired.iam_role_arn)
        .set_resources((!want.resources.is_empty()).then(|| want.resources.clone()));
    if !want.conditions.is_empty() {
        let equals = want
            .conditions
            .iter()
            .map(|(k, v)| {
                ConditionParameter::builder()
                    .condition_key(format!("{RESOURCE_TAG}{k}"))
                    .condition_value(v)
                    .build()
            })
            .collect();
        sel = sel.conditions(
            Conditions::builder()
                .set_string_equals(Some(equals))
                .build(),
        );
    }
    for (k, v) in &want.list_of_tags {
        sel = sel.list_of_tags(
            Condition::builder()
                .condition_type(ConditionType::Stringequals)
                .condition_key(k)
                .condition_value(v)
                .build()
                .map_err(|e| AwsError::other(format!("building backup selection {name}"), e))?,
        );
    }
    let sel = sel
        .build()
        .map_err(|e| AwsError::other(format!("building backup selection {name}"), e))?;
    let out = client
        .create_backup_selection()
        .backup_plan_id(plan_id)
        .backup_selection(sel)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("creating backup selection {name}"), &e))?;
    Ok(out.selection_id().unwrap_or("created").to_string())
}

pub async fn delete_selection(
    client: &Client,
    plan_id: &str,
    id: &str,
    name: &str,
) -> Result<(), AwsError> {
    client
        .delete_backup_selection()
        .backup_plan_id(plan_id)
        .selection_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting backup selection {name}"), &e))
}

/// A backup job as AWS Backup lists it. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: String,
    pub state: String,
    pub resource_arn: String,
    pub created: Option<i64>,
    pub completed: Option<i64>,
    pub size_bytes: Option<i64>,
    pub status_message: Option<String>,
}

impl Job {
    /// A job that ended without a recovery point.
    pub fn failed(&self) -> bool {
        matches!(self.state.as_str(), "FAILED" | "ABORTED" | "EXPIRED")
    }

    pub fn finished(&self) -> bool {
        self.failed() || matches!(self.state.as_str(), "COMPLETED" | "PARTIAL")
    }
}

/// A [`Job`] from a listed job or a described one: the SDK has two types with the same getters.
macro_rules! job_from {
    ($j:expr, $id:expr) => {
        Job {
            id: $id.to_string(),
            state: $j
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            resource_arn: $j.resource_arn().unwrap_or_default().to_string(),
            created: $j.creation_date().map(|d| d.secs()),
            completed: $j.completion_date().map(|d| d.secs()),
            size_bytes: $j.backup_size_in_bytes(),
            status_message: $j
                .status_message()
                .filter(|m| !m.is_empty())
                .map(str::to_string),
        }
    };
}

/// Every job of the vault (all pages), newest first.
pub async fn list_jobs(client: &Client, vault: &str) -> Result<Vec<Job>, AwsError> {
    let mut pages = client
        .list_backup_jobs()
        .by_backup_vault_name(vault)
        .into_paginator()
        .send();
    let mut jobs = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| AwsError::new(format!("listing the backup jobs of vault {vault}"), &e))?;
        jobs.extend(
            page.backup_jobs()
                .iter()
                .map(|j| job_from!(j, j.backup_job_id().unwrap_or_default())),
        );
    }
    jobs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    Ok(jobs)
}

/// Start an on-demand backup job; returns its id.
pub async fn start_job(
    client: &Client,
    vault: &str,
    resource_arn: &str,
    iam_role_arn: &str,
) -> Result<String, AwsError> {
    let out = client
        .start_backup_job()
        .backup_vault_name(vault)
        .resource_arn(resource_arn)
        .iam_role_arn(iam_role_arn)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("starting a backup job for {resource_arn}"), &e))?;
    Ok(out.backup_job_id().unwrap_or_default().to_string())
}

pub async fn describe_job(client: &Client, id: &str) -> Result<Job, AwsError> {
    let j = client
        .describe_backup_job()
        .backup_job_id(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing backup job {id}"), &e))?;
    Ok(job_from!(j, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_selection(resources: &[&str], tags: &[(&str, &str)]) -> config::Selection {
        config::Selection {
            name: "s".into(),
            iam_role_arn: "arn:aws:iam::1:role/r".into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            tag_conditions: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn tags_narrow_named_resources_and_select_alone_only_without_them() {
        // Issue 22, finding 2: AWS Backup ORs ListOfTags with Resources.
        let narrowed = Selection::from_config(&config_selection(
            &["arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1"],
            &[("Backup", "daily")],
        ));
        assert_eq!(
            narrowed.conditions.get("Backup").map(String::as_str),
            Some("daily")
        );
        assert!(narrowed.list_of_tags.is_empty());
        assert_eq!(
            narrowed.describe(),
            [
                "resource arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1",
                "only if tagged Backup=daily"
            ]
        );
        let by_tag = Selection::from_config(&config_selection(&[], &[("Backup", "daily")]));
        assert_eq!(
            by_tag.list_of_tags.get("Backup").map(String::as_str),
            Some("daily")
        );
        assert!(by_tag.conditions.is_empty());
        // A selection made the old way (resources OR tags) differs: deploy replaces it.
        let mut old = narrowed.clone();
        old.list_of_tags = std::mem::take(&mut old.conditions);
        let desired = config_selection(
            &["arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1"],
            &[("Backup", "daily")],
        );
        assert_eq!(plan_selection(&desired, Some(&old)).action, Action::Replace);
        assert_eq!(
            plan_selection(&desired, Some(&narrowed)).action,
            Action::Unchanged
        );
    }
}
