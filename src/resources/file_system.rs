//! MongoDB's file system (EFS): created by hcctl — encrypted (the config's KMS key or the
//! AWS-managed one), EFS's own automatic backups off (the backup plan covers it), a file-system
//! policy that denies every request not made over TLS, tagged with what the backup selection
//! matches — or adopted by id (`containers.mongo.volume.efs_file_system_id`), checked to exist
//! and left as it is, with what hcctl would want said in the plan.
//!
//! It holds the patient data: destroy keeps it unless `--delete-data` (and then it deletes the
//! access point and mount targets first, waiting until they are gone).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_efs::types::{
    BackupPolicy, FileSystemDescription, LifeCycleState, PerformanceMode, Status, Tag,
    ThroughputMode,
};
use aws_sdk_efs::Client;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::{tag_changes, tag_delta, Aws, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("file_system", "file system");

/// How long deploy waits for a new file system to become available, and destroy for its mount
/// targets to go.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(600);

/// A file system as EFS describes it, with its policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub arn: String,
    pub encrypted: bool,
    /// The key EFS reports (empty on some emulators: then not compared).
    pub kms_key_id: Option<String>,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    /// `ENABLED` / `DISABLED` / …; `None` when EFS has no backup policy for it.
    pub automatic_backups: Option<String>,
    /// The file-system policy, parsed; `None` when it has none.
    pub policy: Option<Value>,
}

/// One instance: the configured identity (creation token, or the adopted id), and what is there.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub adopted: bool,
    pub observed: Option<Observed>,
}

/// The creation token (and `Name` tag) of the file system hcctl creates.
pub fn creation_token(config: &Config) -> String {
    config.resource_name("mongo-data")
}

/// The tags hcctl puts on the file system: the config's, `Name`, and the selection's tag
/// conditions (so that the selection, which ANDs them with the file system's ARN, matches it).
pub fn desired_tags(config: &Config) -> BTreeMap<String, String> {
    let mut tags = config.tags.clone();
    tags.extend(config.backup.selection.tag_conditions.clone());
    tags.insert("Name".into(), creation_token(config));
    tags
}

/// The file-system policy: no request that is not over TLS, from anyone.
pub fn desired_policy(arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

fn describe(fs: &FileSystemDescription) -> Observed {
    Observed {
        id: fs.file_system_id().to_string(),
        arn: fs.file_system_arn().unwrap_or_default().to_string(),
        encrypted: fs.encrypted().unwrap_or(false),
        kms_key_id: fs
            .kms_key_id()
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        state: fs.life_cycle_state().as_str().to_string(),
        tags: fs
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        automatic_backups: None,
        policy: None,
    }
}

/// The file system of the config (read-only): the adopted id, or hcctl's creation token.
pub async fn find(aws: &Aws, config: &Config) -> Result<Option<Observed>, AwsError> {
    let client = &aws.efs;
    let (action, req) = match config.adopted_file_system() {
        Some(id) => (
            format!("describing file system {id}"),
            client.describe_file_systems().file_system_id(id),
        ),
        None => {
            let token = creation_token(config);
            (
                format!("looking up file system {token}"),
                client.describe_file_systems().creation_token(token),
            )
        }
    };
    let out = match req.send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_file_system_not_found()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(AwsError::new(action, &e)),
    };
    // A file system being deleted is as good as gone: deploy creates a new one.
    Ok(out
        .file_systems()
        .iter()
        .find(|fs| {
            !matches!(
                fs.life_cycle_state(),
                LifeCycleState::Deleted | LifeCycleState::Deleting
            )
        })
        .map(describe))
}

/// [`find`], with the backup policy and the file-system policy.
pub async fn observe(aws: &Aws, config: &Config) -> Result<Option<Observed>, AwsError> {
    let Some(mut fs) = find(aws, config).await? else {
        return Ok(None);
    };
    let client = &aws.efs;
    fs.automatic_backups = match client
        .describe_backup_policy()
        .file_system_id(&fs.id)
        .send()
        .await
    {
        Ok(out) => out.backup_policy().map(|p| p.status().as_str().to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_policy_not_found()) =>
        {
            None
        }
        Err(e) => {
            return Err(AwsError::new(
                format!("reading the backup policy of file system {}", fs.id),
                &e,
            ))
        }
    };
    fs.policy = match client
        .describe_file_system_policy()
        .file_system_id(&fs.id)
        .send()
        .await
    {
        Ok(out) => out.policy().and_then(|p| serde_json::from_str(p).ok()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_policy_not_found()) =>
        {
            None
        }
        Err(e) => {
            return Err(AwsError::new(
                format!("reading the policy of file system {}", fs.id),
                &e,
            ))
        }
    };
    Ok(Some(fs))
}

/// Is `observed` the desired policy? Statements compared; what EFS adds around them (an `Id`)
/// does not count.
pub fn policy_matches(observed: Option<&Value>, desired: &Value) -> bool {
    let statements = |v: &Value| match &v["Statement"] {
        Value::Array(s) => s.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    observed.is_some_and(|o| statements(o) == statements(desired))
}

/// Does `policy` deny non-TLS access to everyone (a statement as [`desired_policy`]'s)?
pub fn denies_insecure_transport(policy: &Value) -> bool {
    let statements = match &policy["Statement"] {
        Value::Array(s) => s.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        s["Effect"] == "Deny"
            && (s["Principal"] == "*" || s["Principal"]["AWS"] == "*")
            && (s["Action"] == "*" || s["Action"] == json!(["*"]))
            && matches!(
                &s["Condition"]["Bool"]["aws:SecureTransport"],
                Value::String(v) if v == "false"
            )
    })
}

/// What deploy will do to the file system (pure).
pub fn changes(config: &Config, item: &Item) -> Step {
    let tags = desired_tags(config);
    let kms = config
        .containers
        .mongo
        .volume
        .as_ref()
        .and_then(|v| v.kms_key_arn.clone());
    let Some(o) = &item.observed else {
        if item.adopted {
            return Step::new(
                KIND,
                &item.name,
                Action::Missing,
                vec![
                    "not found (containers.mongo.volume.efs_file_system_id): name an existing \
                     file system, or remove the key to let hcctl create one"
                        .into(),
                ],
            );
        }
        return Step::new(
            KIND,
            &item.name,
            Action::Create,
            vec![
                format!(
                    "encrypted with {}",
                    kms.as_deref()
                        .unwrap_or("the AWS-managed key (aws/elasticfilesystem)")
                ),
                "general purpose, elastic throughput".into(),
                "automatic backups off (the backup plan protects it)".into(),
                "policy: deny access without TLS".into(),
                format!("{} tags", tags.len()),
            ],
        );
    };
    let mut lines = Vec::new();
    let mut unusable = Vec::new();
    if !o.encrypted {
        unusable.push(
            "not encrypted at rest: EFS cannot encrypt an existing file system; copy the data \
             to an encrypted one (or let hcctl create it) before it holds patient data"
                .to_string(),
        );
    }
    if item.adopted {
        // Adopted: reported, never changed.
        if o.automatic_backups.as_deref() == Some("ENABLED") {
            lines.push(
                "automatic backups ENABLED: EFS also copies it daily into the default \
                 aws/efs/automatic-backup-vault, a second copy of the patient data outside this \
                 plan's vault and retention; turn them off (aws efs put-backup-policy \
                 --backup-policy Status=DISABLED) unless that copy is wanted"
                    .into(),
            );
        }
        if !o.policy.as_ref().is_some_and(denies_insecure_transport) {
            lines.push(
                "its policy does not deny access without TLS (adopted: not changed; add a \
                 Deny on aws:SecureTransport=false)"
                    .into(),
            );
        }
        let missing: Vec<String> = config
            .backup
            .selection
            .tag_conditions
            .iter()
            .filter(|(k, v)| o.tags.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !missing.is_empty() {
            unusable.push(format!(
                "not tagged {}: the backup selection (only if tagged …) would not protect it",
                missing.join(", ")
            ));
        }
        if unusable.is_empty() {
            lines.insert(0, format!("adopted ({})", o.arn));
            return Step::new(KIND, &item.name, Action::Unchanged, lines);
        }
        unusable.extend(lines);
        return Step::new(KIND, &item.name, Action::Unusable, unusable);
    }
    if let (Some(want), Some(have)) = (&kms, &o.kms_key_id) {
        if want != have {
            unusable.push(format!(
                "encrypted with {have}, not {want}: EFS cannot change the key of a file system"
            ));
        }
    }
    if !unusable.is_empty() {
        return Step::new(KIND, &item.name, Action::Unusable, unusable);
    }
    if o.automatic_backups.as_deref() != Some("DISABLED") {
        lines.push(format!(
            "automatic backups: {} → DISABLED",
            o.automatic_backups.as_deref().unwrap_or("(none)")
        ));
    }
    if !policy_matches(o.policy.as_ref(), &desired_policy(&o.arn)) {
        lines.push(match &o.policy {
            None => "policy: (none) → deny access without TLS".into(),
            Some(_) => "policy: differs → deny access without TLS".into(),
        });
    }
    lines.extend(tag_changes(&o.tags, &tags));
    Step::compared(KIND, &item.name, Action::Update, lines)
}

fn efs_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::other("building file system tags", e))
        })
        .collect()
}

/// Create the file system (and wait until it is available), or bring it to the config.
pub async fn apply(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
    let client = &cx.aws.efs;
    let config = cx.config;
    let tags = desired_tags(config);
    let name = &item.name;
    let (id, arn, observed) = match &item.observed {
        Some(o) => (o.id.clone(), o.arn.clone(), Some(o)),
        None => {
            let kms = config
                .containers
                .mongo
                .volume
                .as_ref()
                .and_then(|v| v.kms_key_arn.clone());
            let out = client
                .create_file_system()
                .creation_token(creation_token(config))
                .encrypted(true)
                .set_kms_key_id(kms)
                .performance_mode(PerformanceMode::GeneralPurpose)
                .throughput_mode(ThroughputMode::Elastic)
                .backup(false)
                .set_tags(Some(efs_tags(&tags)?))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("creating file system {name}"), &e))?;
            let id = out.file_system_id().to_string();
            let arn = out.file_system_arn().unwrap_or_default().to_string();
            wait_available(client, &id).await?;
            (id, arn, None)
        }
    };
    cx.outputs.file_system_id = Some(id.clone());
    cx.outputs.file_system_arn = Some(arn.clone());
    if observed.and_then(|o| o.automatic_backups.as_deref()) != Some("DISABLED") {
        client
            .put_backup_policy()
            .file_system_id(&id)
            .backup_policy(
                BackupPolicy::builder()
                    .status(Status::Disabled)
                    .build()
                    .map_err(|e| AwsError::other("building the backup policy", e))?,
            )
            .send()
            .await
            .map_err(|e| AwsError::new(format!("turning off automatic backups of {id}"), &e))?;
    }
    let policy = desired_policy(&arn);
    if !policy_matches(observed.and_then(|o| o.policy.as_ref()), &policy) {
        client
            .put_file_system_policy()
            .file_system_id(&id)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|e| AwsError::new(format!("setting the policy of file system {id}"), &e))?;
    }
    if let Some(o) = observed {
        let (set, remove) = tag_delta(&o.tags, &tags);
        if !set.is_empty() {
            client
                .tag_resource()
                .resource_id(&id)
                .set_tags(Some(efs_tags(&set)?))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("tagging file system {id}"), &e))?;
        }
        if !remove.is_empty() {
            client
                .untag_resource()
                .resource_id(&id)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("untagging file system {id}"), &e))?;
        }
        return Ok(format!("updated {id}"));
    }
    Ok(id)
}

/// Poll (with backoff, bounded) until the new file system is available.
async fn wait_available(client: &Client, id: &str) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let out = client
            .describe_file_systems()
            .file_system_id(id)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("waiting for file system {id}"), &e))?;
        let state = out
            .file_systems()
            .first()
            .map(|fs| fs.life_cycle_state().clone());
        match state {
            Some(LifeCycleState::Available) => return Ok(()),
            Some(LifeCycleState::Error) => {
                return Err(AwsError::other(
                    format!("creating file system {id}"),
                    "EFS reports state error: see the EFS console, delete it, and deploy again",
                ))
            }
            _ if started.elapsed() >= SETTLE_TIMEOUT => {
                return Err(AwsError::other(
                    format!("creating file system {id}"),
                    format!(
                        "not available after {}s: deploy again to continue",
                        SETTLE_TIMEOUT.as_secs()
                    ),
                ))
            }
            _ => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Delete the file system (`destroy --delete-data`): its access points and mount targets first,
/// waiting until the mount targets are gone (EFS refuses to delete a file system that has any).
pub async fn delete(client: &Client, id: &str) -> Result<(), AwsError> {
    let aps = client
        .describe_access_points()
        .file_system_id(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the access points of {id}"), &e))?;
    for ap in aps.access_points() {
        if let Some(ap_id) = ap.access_point_id() {
            client
                .delete_access_point()
                .access_point_id(ap_id)
                .send()
                .await
                .map_err(|e| AwsError::new(format!("deleting access point {ap_id}"), &e))?;
        }
    }
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    let mut deleted: Vec<String> = Vec::new();
    loop {
        let mts = client
            .describe_mount_targets()
            .file_system_id(id)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing the mount targets of {id}"), &e))?;
        let left: Vec<String> = mts
            .mount_targets()
            .iter()
            .map(|m| m.mount_target_id().to_string())
            .collect();
        if left.is_empty() {
            break;
        }
        let fresh: Vec<&String> = left.iter().filter(|m| !deleted.contains(m)).collect();
        for mt in fresh {
            client
                .delete_mount_target()
                .mount_target_id(mt)
                .send()
                .await
                .map_err(|e| AwsError::new(format!("deleting mount target {mt}"), &e))?;
            deleted.push(mt.clone());
        }
        if started.elapsed() >= SETTLE_TIMEOUT {
            return Err(AwsError::other(
                format!("deleting file system {id}"),
                format!(
                    "mount targets {} still there after {}s: destroy again to continue",
                    left.join(", "),
                    SETTLE_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    client
        .delete_file_system()
        .file_system_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting file system {id}"), &e))
}

/// The file system, for the engine.
pub struct FileSystem;

impl Resource for FileSystem {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let observed = observe(cx.aws, cx.config).await?;
        if let Some(o) = &observed {
            cx.outputs.file_system_id = Some(o.id.clone());
            cx.outputs.file_system_arn = Some(o.arn.clone());
        }
        let adopted = cx.config.adopted_file_system();
        Ok(vec![Item {
            name: adopted.map_or_else(|| creation_token(cx.config), str::to_string),
            adopted: adopted.is_some(),
            observed,
        }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(cx.config, item)
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        apply(cx, item).await
    }

    fn removal(cx: &Context<'_>, item: &Item) -> Step {
        match (&item.observed, item.adopted, cx.delete_data) {
            (None, _, _) => Step::new(KIND, &item.name, Action::Absent, vec![]),
            (Some(_), true, _) => Step::new(
                KIND,
                &item.name,
                Action::Keep,
                vec![
                    "adopted (containers.mongo.volume.efs_file_system_id): not hcctl's to delete"
                        .into(),
                ],
            ),
            (Some(o), false, false) => Step::new(
                KIND,
                &item.name,
                Action::Keep,
                vec![format!(
                    "{} holds the patient data: kept (destroy --delete-data={} deletes it, with \
                     its mount targets and access point)",
                    o.id,
                    cx.config.resource_name("").trim_end_matches('-')
                )],
            ),
            (Some(o), false, true) => Step::new(
                KIND,
                &item.name,
                Action::Delete,
                vec![format!(
                    "{}: the MongoDB data, with its mount targets and access point",
                    o.id
                )],
            ),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match &item.observed {
            Some(o) => delete(&cx.aws.efs, &o.id).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_policy_is_recognised_in_the_forms_iam_accepts() {
        let arn = "arn:aws:elasticfilesystem:eu-west-3:1:file-system/fs-1";
        assert!(denies_insecure_transport(&desired_policy(arn)));
        let single = json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": ["*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}});
        assert!(denies_insecure_transport(&single));
        let allow = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(!denies_insecure_transport(&allow));
        let narrow = json!({"Statement": [{"Effect": "Deny", "Principal": "*",
            "Action": "elasticfilesystem:ClientWrite",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(!denies_insecure_transport(&narrow));
    }
}
