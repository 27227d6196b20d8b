//! The backup selection (AWS Backup): what the plan protects — named resources, narrowed by tag
//! conditions, or everything carrying the tags. AWS cannot update a selection in place, so a
//! selection that differs is replaced. It lives inside the plan: its id comes from the engine's
//! context, set by [`super::backup_plan`].

use std::collections::BTreeMap;

use aws_sdk_backup::types::{
    BackupSelection as SdkSelection, Condition, ConditionParameter, ConditionType, Conditions,
};
use aws_sdk_backup::Client;
use serde::Serialize;

use super::step::diff;
use super::{file_system, Action, Context, Kind, Outputs, Resource, Step, AFTER_APPLY};
use crate::aws::{Aws, AwsError};
use crate::config::{self, Config, RoleKind};

pub const KIND: Kind = Kind::new("backup_selection", "backup selection");

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

    /// The selection the config asks for: the file system the deploy creates or adopts first,
    /// the drops bucket with `drops_bucket`, then the config's extra `resources`, protected under the backup role (created or adopted).
    /// A value not known yet (a file system or role still to be created) is [`AFTER_APPLY`].
    pub fn desired(config: &Config, outputs: &Outputs) -> Selection {
        let s = &config.backup.selection;
        let role = match config.adopted_role(RoleKind::Backup) {
            Some(arn) => arn.to_string(),
            None => Outputs::show(outputs.roles.get(&RoleKind::Backup)),
        };
        let mut resources = vec![Outputs::show(outputs.file_system_arn.as_ref())];
        if s.drops_bucket {
            let account = outputs.account_id.as_deref().unwrap_or(AFTER_APPLY);
            resources.push(format!("arn:aws:s3:::{}", config.drops_bucket(account)));
        }
        for r in &s.resources {
            if !resources.contains(r) {
                resources.push(r.clone());
            }
        }
        Selection::from_parts(s, role, resources)
    }

    /// `resources` and the tag conditions as AWS Backup combines them (see [`Selection`]).
    pub fn from_parts(s: &config::Selection, role: String, resources: Vec<String>) -> Selection {
        let (list_of_tags, conditions) = if resources.is_empty() {
            (s.tag_conditions.clone(), BTreeMap::new())
        } else {
            (BTreeMap::new(), s.tag_conditions.clone())
        };
        Selection {
            id: String::new(),
            name: s.name.clone(),
            iam_role_arn: role,
            resources,
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

/// What the selection protects and with which role, found by read-only lookups (for
/// backup-status and `backup run`, which do not deploy): the file system the config creates or
/// adopts, the account (for the drops bucket's name, when the selection protects it), and the
/// backup role (adopted, or hcctl's when it exists).
pub async fn resolve(aws: &Aws, config: &Config) -> Result<Outputs, AwsError> {
    let mut outputs = Outputs::default();
    // The drops bucket's default name holds the account (GetCallerIdentity needs no permission).
    if config.backup.selection.drops_bucket && config.drops.bucket.is_none() {
        outputs.account_id = Some(crate::aws::account_id(aws).await?);
    }
    if let Some(fs) = file_system::find(aws, config).await? {
        outputs.file_system_id = Some(fs.id);
        outputs.file_system_arn = Some(fs.arn);
    }
    if config.adopted_role(RoleKind::Backup).is_none() {
        let name = config.role_name(RoleKind::Backup);
        match aws.iam.get_role().role_name(&name).send().await {
            Ok(out) => {
                if let Some(role) = out.role() {
                    outputs
                        .roles
                        .insert(RoleKind::Backup, role.arn().to_string());
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(AwsError::new(format!("looking up role {name}"), &e)),
        }
    }
    Ok(outputs)
}

/// The selection named `name` in the plan (paginating).
pub async fn observe(
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

/// Differences of a selection from the desired one, one line per field.
pub fn selection_changes(actual: &Selection, want: &Selection) -> Vec<String> {
    let mut changes = Vec::new();
    diff("", &actual.comparable(), &want.comparable(), &mut changes);
    changes
}

/// What deploy will do to the selection.
pub fn changes(want: &Selection, observed: Option<&Selection>) -> Step {
    let Some(s) = observed else {
        return Step::new(KIND, &want.name, Action::Create, want.describe());
    };
    let changes = selection_changes(s, want);
    Step::compared(KIND, &want.name, Action::Replace, changes)
}

/// Create the selection, deleting the existing one first when it differs (selections cannot be
/// updated in place).
pub async fn apply(
    client: &Client,
    plan_id: &str,
    want: &Selection,
    observed: Option<&Selection>,
) -> Result<String, AwsError> {
    let name = &want.name;
    if let Some(bad) = std::iter::once(&want.iam_role_arn)
        .chain(&want.resources)
        .find(|v| *v == AFTER_APPLY)
    {
        return Err(AwsError::other(
            format!("creating backup selection {name}"),
            format!("a value it needs is still {bad} (a bug in hcctl's order)"),
        ));
    }
    if let Some(s) = observed {
        delete(client, plan_id, &s.id, name).await?;
    }
    let mut sel = SdkSelection::builder()
        .selection_name(name)
        .iam_role_arn(&want.iam_role_arn)
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

/// Delete the selection (destroy, and before a replacement).
pub async fn delete(client: &Client, plan_id: &str, id: &str, name: &str) -> Result<(), AwsError> {
    client
        .delete_backup_selection()
        .backup_plan_id(plan_id)
        .selection_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting backup selection {name}"), &e))
}

/// The error of a selection step when the plan has no id (it was not created).
fn no_plan_id(doing: &str, name: &str) -> AwsError {
    AwsError::other(
        format!("{doing} backup selection {name}"),
        "the backup plan has no id (it was not created)",
    )
}

/// The selection, for the engine.
pub struct BackupSelection;

impl Resource for BackupSelection {
    type Item = Option<Selection>;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let name = &cx.config.backup.selection.name;
        let observed = match &cx.backup_plan_id {
            Some(id) => observe(&cx.aws.backup, id, name).await?,
            None => None,
        };
        Ok(vec![observed])
    }

    fn step(cx: &Context<'_>, observed: &Self::Item) -> Step {
        // What the config would say of the selection as it is: whether it backs up the bucket.
        let was = observed
            .as_ref()
            .map(|o| {
                let bucket = o.resources.iter().any(|r| r.starts_with("arn:aws:s3:::"));
                vec![format!("backup.selection.drops_bucket={bucket}")]
            })
            .unwrap_or_default();
        changes(
            &Selection::desired(cx.config, &cx.outputs),
            observed.as_ref(),
        )
        .was(was)
    }

    async fn apply_step(cx: &mut Context<'_>, observed: &Self::Item) -> Result<String, AwsError> {
        let want = Selection::desired(cx.config, &cx.outputs);
        let Some(id) = cx.backup_plan_id.as_deref() else {
            return Err(no_plan_id("creating", &want.name));
        };
        apply(&cx.aws.backup, id, &want, observed.as_ref())
            .await
            .map(|sid| format!("selection id {sid}"))
    }

    fn removal(cx: &Context<'_>, observed: &Self::Item) -> Step {
        let action = match observed {
            Some(_) => Action::Delete,
            None => Action::Absent,
        };
        Step::new(KIND, &cx.config.backup.selection.name, action, vec![])
    }

    async fn remove(cx: &Context<'_>, observed: &Self::Item) -> Result<(), AwsError> {
        let name = &cx.config.backup.selection.name;
        let (Some(s), Some(plan_id)) = (observed, cx.backup_plan_id.as_deref()) else {
            return Err(no_plan_id("deleting", name));
        };
        delete(&cx.aws.backup, plan_id, &s.id, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(resources: &[&str], tags: &[(&str, &str)]) -> Selection {
        let s = config::Selection {
            name: "s".into(),
            iam_role_arn: None,
            resources: Vec::new(),
            drops_bucket: false,
            tag_conditions: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Selection::from_parts(
            &s,
            "arn:aws:iam::1:role/r".into(),
            resources.iter().map(|r| r.to_string()).collect(),
        )
    }

    #[test]
    fn tags_narrow_named_resources_and_select_alone_only_without_them() {
        // Issue 22, finding 2: AWS Backup ORs ListOfTags with Resources.
        let narrowed = selection(
            &["arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1"],
            &[("Backup", "daily")],
        );
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
        let by_tag = selection(&[], &[("Backup", "daily")]);
        assert_eq!(
            by_tag.list_of_tags.get("Backup").map(String::as_str),
            Some("daily")
        );
        assert!(by_tag.conditions.is_empty());
        // A selection made the old way (resources OR tags) differs: deploy replaces it.
        let mut old = narrowed.clone();
        old.list_of_tags = std::mem::take(&mut old.conditions);
        let desired = narrowed.clone();
        assert_eq!(changes(&desired, Some(&old)).action, Action::Replace);
        assert_eq!(changes(&desired, Some(&narrowed)).action, Action::Unchanged);
    }

    #[test]
    fn drops_bucket_adds_the_bucket_after_the_file_system_and_tags_it_for_the_conditions() {
        let mut config = crate::config::tests_support::example_config();
        let outputs = Outputs {
            account_id: Some("111111111111".into()),
            file_system_arn: Some("arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1".into()),
            ..Default::default()
        };
        let without = Selection::desired(&config, &outputs);
        assert!(!without
            .resources
            .iter()
            .any(|r| r.starts_with("arn:aws:s3")));
        config.backup.selection.drops_bucket = true;
        let with = Selection::desired(&config, &outputs);
        assert_eq!(
            with.resources[..2],
            [
                "arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1".to_string(),
                "arn:aws:s3:::hcctl-dev-drops-111111111111".to_string()
            ]
        );
        let tags = crate::resources::bucket::desired_tags(&config);
        for (k, v) in &config.backup.selection.tag_conditions {
            assert_eq!(tags.get(k), Some(v), "{tags:?}");
        }
        assert!(!config.backup.selection.tag_conditions.is_empty());
    }
}
