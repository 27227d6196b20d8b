//! The drops bucket (S3): where exports are dropped (`incoming/`) and where runs in the cloud write
//! their quarantine and reports. Default encryption (SSE-S3, or the configured KMS key with a
//! bucket key), every public access blocked, a policy that denies any request not made over TLS,
//! versioning, a lifecycle that expires `quarantine/` and `reports/` after the configured days
//! (and, with `backup.dumps`, `dumps/` and `drills/` after its retention days) and removes
//! incomplete uploads after one, and the config's tags. Destroy deletes it only when it is
//! empty, or with `--delete-data` (every version of every object first).

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("bucket", "S3 bucket");

/// The prefixes of the bucket, by use.
pub const INCOMING: &str = "incoming/";
pub const QUARANTINE: &str = "quarantine/";
pub const REPORTS: &str = "reports/";
/// `backup dump`'s dumps (`backup.dumps`), kept `backup.dumps.retention_days`.
pub const DUMPS: &str = "dumps/";
/// The restore drills' reports, kept as long as the dumps.
pub const DRILLS: &str = "drills/";

/// Days after which an upload that was never completed (a run killed outright) is removed.
pub const ABORT_INCOMPLETE_DAYS: i32 = 1;

/// One lifecycle rule, as hcctl compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub prefix: String,
    pub enabled: bool,
    pub expire_days: Option<i32>,
    pub noncurrent_days: Option<i32>,
    pub abort_incomplete_days: Option<i32>,
}

/// What the bucket is set to.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `AES256` or `aws:kms`, and the key.
    pub encryption: Option<(String, Option<String>)>,
    /// All four public access blocks on.
    pub public_access_blocked: bool,
    pub policy: Option<Value>,
    pub versioning: Option<String>,
    pub lifecycle: Vec<Rule>,
    pub tags: BTreeMap<String, String>,
}

/// The bucket as S3 describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub settings: Settings,
    /// Whether any object version or delete marker is in it (observed for destroy only).
    pub has_objects: Option<bool>,
}

/// The bucket's tags: the config's, and with `backup.selection.drops_bucket` the selection's tag
/// conditions (which AWS Backup ANDs with the bucket's ARN).
pub fn desired_tags(config: &Config) -> BTreeMap<String, String> {
    let mut tags = config.tags.clone();
    if config.backup.selection.drops_bucket {
        tags.extend(config.backup.selection.tag_conditions.clone());
    }
    tags
}

/// The bucket the config wants, named for `account`.
pub fn desired(config: &Config, account: &str) -> (String, Settings) {
    let name = config.drops_bucket(account);
    let arn = format!("arn:aws:s3:::{name}");
    let encryption = match &config.drops.kms_key_arn {
        Some(key) => ("aws:kms".to_string(), Some(key.clone())),
        None => ("AES256".to_string(), None),
    };
    let outputs_days = config.drops.outputs_expire_days;
    let expiring = |id: &str, prefix: &str, days: i32| Rule {
        id: id.to_string(),
        prefix: prefix.to_string(),
        enabled: true,
        expire_days: Some(days),
        noncurrent_days: Some(days),
        abort_incomplete_days: None,
    };
    let settings = Settings {
        encryption: Some(encryption),
        public_access_blocked: true,
        policy: Some(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn.clone(), format!("{arn}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }]
        })),
        versioning: Some("Enabled".to_string()),
        lifecycle: vec![
            Rule {
                id: "abort-incomplete-uploads".to_string(),
                prefix: String::new(),
                enabled: true,
                expire_days: None,
                noncurrent_days: None,
                abort_incomplete_days: Some(ABORT_INCOMPLETE_DAYS),
            },
            expiring("expire-quarantine", QUARANTINE, outputs_days),
            expiring("expire-reports", REPORTS, outputs_days),
        ],
        tags: desired_tags(config),
    };
    let mut settings = settings;
    if let Some(d) = &config.backup.dumps {
        // A dump deleted or overwritten stays recoverable (a noncurrent version) as long.
        settings.lifecycle.extend([
            expiring("expire-dumps", DUMPS, d.retention_days),
            expiring("expire-drills", DRILLS, d.retention_days),
        ]);
    }
    (name, settings)
}

/// Whether an S3 error is one of `codes` (the "not configured" answers of the Get calls).
fn is_code<E: ProvideErrorMetadata>(e: &E, codes: &[&str]) -> bool {
    e.code().is_some_and(|c| codes.contains(&c))
}

/// Describe the bucket (read-only); `None` when it does not exist. `count_objects`: whether to
/// look for objects too (destroy).
pub async fn observe(
    client: &Client,
    name: &str,
    count_objects: bool,
) -> Result<Option<Observed>, AwsError> {
    match client.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
        Err(e) => {
            let err = AwsError::new(format!("looking up S3 bucket {name}"), &e);
            if e.raw_response().map(|r| r.status().as_u16()) == Some(403) {
                return Err(AwsError::other(
                    err.action,
                    "403 Forbidden: the bucket exists but these credentials may not read it (S3 \
                     bucket names are global: another account may own it; set drops.bucket to \
                     another name, or grant s3:ListBucket)",
                ));
            }
            return Err(err);
        }
    }
    let what = |aspect: &str| format!("reading the {aspect} of S3 bucket {name}");
    let encryption = match client.get_bucket_encryption().bucket(name).send().await {
        Ok(out) => out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| {
                (
                    d.sse_algorithm().as_str().to_string(),
                    d.kms_master_key_id().map(str::to_string),
                )
            }),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                is_code(s, &["ServerSideEncryptionConfigurationNotFoundError"])
            }) =>
        {
            None
        }
        Err(e) => return Err(AwsError::new(what("encryption"), &e)),
    };
    let public_access_blocked = match client.get_public_access_block().bucket(name).send().await {
        Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| is_code(s, &["NoSuchPublicAccessBlockConfiguration"])) =>
        {
            false
        }
        Err(e) => return Err(AwsError::new(what("public access block"), &e)),
    };
    let policy = match client.get_bucket_policy().bucket(name).send().await {
        Ok(out) => out.policy().and_then(|p| serde_json::from_str(p).ok()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| is_code(s, &["NoSuchBucketPolicy"])) =>
        {
            None
        }
        Err(e) => return Err(AwsError::new(what("policy"), &e)),
    };
    let versioning = client
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .map_err(|e| AwsError::new(what("versioning"), &e))?
        .status()
        .map(|s| s.as_str().to_string());
    let lifecycle = match client
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
    {
        Ok(out) => out.rules().iter().map(rule_of).collect(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| is_code(s, &["NoSuchLifecycleConfiguration"])) =>
        {
            Vec::new()
        }
        Err(e) => return Err(AwsError::new(what("lifecycle"), &e)),
    };
    let tags = match client.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| is_code(s, &["NoSuchTagSet", "NoSuchTagSetError"])) =>
        {
            BTreeMap::new()
        }
        Err(e) => return Err(AwsError::new(what("tags"), &e)),
    };
    let has_objects = if count_objects {
        let out = client
            .list_object_versions()
            .bucket(name)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing the objects of S3 bucket {name}"), &e))?;
        Some(!out.versions().is_empty() || !out.delete_markers().is_empty())
    } else {
        None
    };
    Ok(Some(Observed {
        settings: Settings {
            encryption,
            public_access_blocked,
            policy,
            versioning,
            lifecycle,
            tags,
        },
        has_objects,
    }))
}

fn rule_of(r: &LifecycleRule) -> Rule {
    #[allow(deprecated)]
    let prefix = r
        .filter()
        .and_then(|f| f.prefix())
        .or(r.prefix())
        .unwrap_or_default()
        .to_string();
    Rule {
        id: r.id().unwrap_or_default().to_string(),
        prefix,
        enabled: r.status() == &ExpirationStatus::Enabled,
        expire_days: r.expiration().and_then(|e| e.days()),
        noncurrent_days: r
            .noncurrent_version_expiration()
            .and_then(|e| e.noncurrent_days()),
        abort_incomplete_days: r
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
    }
}

fn show_rules(rules: &[Rule]) -> String {
    if rules.is_empty() {
        return "(none)".to_string();
    }
    rules
        .iter()
        .map(|r| {
            let mut what = Vec::new();
            if let Some(d) = r.expire_days {
                what.push(format!("expire {d} d"));
            }
            if let Some(d) = r.noncurrent_days {
                what.push(format!("old versions {d} d"));
            }
            if let Some(d) = r.abort_incomplete_days {
                what.push(format!("incomplete uploads {d} d"));
            }
            let prefix = if r.prefix.is_empty() { "*" } else { &r.prefix };
            format!("{prefix} {}", what.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn show_encryption(e: &Option<(String, Option<String>)>) -> String {
    match e {
        None => "(none)".to_string(),
        Some((alg, None)) => alg.clone(),
        Some((alg, Some(key))) => format!("{alg} {key}"),
    }
}

/// What differs, one line per aspect.
pub fn differences(observed: &Settings, desired: &Settings) -> Vec<String> {
    let mut changes = Vec::new();
    if observed.encryption != desired.encryption {
        changes.push(format!(
            "encryption: {} → {}",
            show_encryption(&observed.encryption),
            show_encryption(&desired.encryption)
        ));
    }
    if !observed.public_access_blocked {
        changes.push("public access: not all blocked → all four blocks on".to_string());
    }
    if observed.policy != desired.policy {
        changes.push(format!(
            "policy: {} → deny requests without TLS",
            if observed.policy.is_some() {
                "another policy"
            } else {
                "(none)"
            }
        ));
    }
    if observed.versioning != desired.versioning {
        changes.push(format!(
            "versioning: {} → Enabled",
            observed.versioning.as_deref().unwrap_or("never enabled")
        ));
    }
    if observed.lifecycle != desired.lifecycle {
        changes.push(format!(
            "lifecycle: {} → {}",
            show_rules(&observed.lifecycle),
            show_rules(&desired.lifecycle)
        ));
    }
    changes.extend(tag_changes(&observed.tags, &desired.tags));
    changes
}

/// Deploy's step for the bucket.
pub fn changes(name: &str, desired: &Settings, observed: Option<&Observed>) -> Step {
    match observed {
        None => Step::new(
            KIND,
            name,
            Action::Create,
            vec![
                format!("encryption {}", show_encryption(&desired.encryption)),
                "public access blocked, TLS only, versioning".to_string(),
                format!("lifecycle {}", show_rules(&desired.lifecycle)),
                format!("{} tags", desired.tags.len()),
            ],
        ),
        Some(o) => Step::compared(
            KIND,
            name,
            Action::Update,
            differences(&o.settings, desired),
        ),
    }
}

/// Create the bucket if missing, then bring each aspect that differs to the config.
pub async fn apply(
    client: &Client,
    name: &str,
    region: &str,
    desired: &Settings,
    observed: Option<&Settings>,
) -> Result<String, AwsError> {
    let what = |aspect: &str| format!("setting the {aspect} of S3 bucket {name}");
    if observed.is_none() {
        let mut request = client.create_bucket().bucket(name);
        // us-east-1 is the one region S3 wants no location constraint for.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        request
            .send()
            .await
            .map_err(|e| AwsError::new(format!("creating S3 bucket {name}"), &e))?;
    }
    // Private before anything else: public access blocked, then encryption and the TLS policy.
    if observed.is_none_or(|o| !o.public_access_blocked) {
        client
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::new(what("public access block"), &e))?;
    }
    if observed.is_none_or(|o| o.encryption != desired.encryption) {
        put_encryption(client, name, desired)
            .await
            .map_err(|e| AwsError::other(what("encryption"), e))??;
    }
    if observed.is_none_or(|o| o.policy != desired.policy) {
        let policy = desired
            .policy
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        client
            .put_bucket_policy()
            .bucket(name)
            .policy(policy)
            .send()
            .await
            .map_err(|e| AwsError::new(what("policy"), &e))?;
    }
    if observed.is_none_or(|o| o.versioning != desired.versioning) {
        client
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::new(what("versioning"), &e))?;
    }
    if observed.is_none_or(|o| o.lifecycle != desired.lifecycle) {
        let rules = desired
            .lifecycle
            .iter()
            .map(lifecycle_rule)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::other(what("lifecycle"), e))?;
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| AwsError::other(what("lifecycle"), e))?;
        client
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| AwsError::new(what("lifecycle"), &e))?;
    }
    // A new bucket has no tags: nothing to remove.
    let tags_now = observed.map(|o| o.tags.clone()).unwrap_or_default();
    if tags_now != desired.tags {
        if desired.tags.is_empty() {
            client
                .delete_bucket_tagging()
                .bucket(name)
                .send()
                .await
                .map_err(|e| AwsError::new(what("tags"), &e))?;
        } else {
            let tags = desired
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError::other(what("tags"), e))?;
            let tagging = Tagging::builder()
                .set_tag_set(Some(tags))
                .build()
                .map_err(|e| AwsError::other(what("tags"), e))?;
            client
                .put_bucket_tagging()
                .bucket(name)
                .tagging(tagging)
                .send()
                .await
                .map_err(|e| AwsError::new(what("tags"), &e))?;
        }
    }
    Ok(if observed.is_none() {
        format!("arn:aws:s3:::{name}")
    } else {
        "updated".to_string()
    })
}

async fn put_encryption(
    client: &Client,
    name: &str,
    desired: &Settings,
) -> Result<Result<(), AwsError>, aws_sdk_s3::error::BuildError> {
    let (alg, key) = desired
        .encryption
        .clone()
        .unwrap_or(("AES256".to_string(), None));
    let kms = key.is_some();
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(alg.as_str()))
        .set_kms_master_key_id(key)
        .build()?;
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                // A bucket key: one KMS data key per bucket and period, not one call per object.
                .bucket_key_enabled(kms)
                .build(),
        )
        .build()?;
    Ok(client
        .put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("setting the encryption of S3 bucket {name}"), &e)))
}

fn lifecycle_rule(r: &Rule) -> Result<LifecycleRule, aws_sdk_s3::error::BuildError> {
    let mut rule = LifecycleRule::builder()
        .id(&r.id)
        .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build())
        .status(if r.enabled {
            ExpirationStatus::Enabled
        } else {
            ExpirationStatus::Disabled
        });
    if let Some(days) = r.expire_days {
        rule = rule.expiration(LifecycleExpiration::builder().days(days).build());
    }
    if let Some(days) = r.noncurrent_days {
        rule = rule.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(days)
                .build(),
        );
    }
    if let Some(days) = r.abort_incomplete_days {
        rule = rule.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days)
                .build(),
        );
    }
    rule.build()
}

/// Delete every version of every object (and the delete markers), a thousand per call.
async fn empty(client: &Client, name: &str) -> Result<u64, AwsError> {
    let mut deleted = 0u64;
    loop {
        let out = client
            .list_object_versions()
            .bucket(name)
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing the objects of S3 bucket {name}"), &e))?;
        let ids: Vec<ObjectIdentifier> = out
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                out.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_string))
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(deleted);
        }
        let n = ids.len() as u64;
        let delete = aws_sdk_s3::types::Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| AwsError::other(format!("emptying S3 bucket {name}"), e))?;
        let result = client
            .delete_objects()
            .bucket(name)
            .delete(delete)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("emptying S3 bucket {name}"), &e))?;
        if let Some(failed) = result.errors().first() {
            return Err(AwsError::other(
                format!("emptying S3 bucket {name}"),
                format!(
                    "{} objects could not be deleted ({}: {})",
                    result.errors().len(),
                    failed.code().unwrap_or("error"),
                    failed.message().unwrap_or("no message")
                ),
            ));
        }
        deleted += n;
    }
}

/// The drops bucket, for the engine.
pub struct Bucket;

impl Resource for Bucket {
    type Item = (String, Settings, Option<Observed>);

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let account = cx
            .outputs
            .account_id
            .clone()
            .unwrap_or_else(|| AFTER_APPLY.to_string());
        let (name, settings) = desired(cx.config, &account);
        let destroying = cx.command == super::Command::Destroy;
        let observed = observe(&cx.aws.s3, &name, destroying).await?;
        Ok(vec![(name, settings, observed)])
    }

    fn step(_: &Context<'_>, (name, settings, observed): &Self::Item) -> Step {
        changes(name, settings, observed.as_ref())
    }

    async fn apply_step(
        cx: &mut Context<'_>,
        (name, settings, observed): &Self::Item,
    ) -> Result<String, AwsError> {
        apply(
            &cx.aws.s3,
            name,
            &cx.aws.region,
            settings,
            observed.as_ref().map(|o| &o.settings),
        )
        .await
    }

    fn removal(cx: &Context<'_>, (name, _, observed): &Self::Item) -> Step {
        match observed {
            None => Step::new(KIND, name, Action::Absent, vec![]),
            Some(o) if o.has_objects == Some(true) && !cx.delete_data => Step::new(
                KIND,
                name,
                Action::Keep,
                vec![format!(
                    "holds objects (exports and quarantines: patient data); destroy \
                     --delete-data={} deletes them",
                    cx.config.resource_name("").trim_end_matches('-')
                )],
            ),
            Some(o) => Step::new(
                KIND,
                name,
                Action::Delete,
                vec![if o.has_objects == Some(true) {
                    "every version of every object in it too".to_string()
                } else {
                    "empty".to_string()
                }],
            ),
        }
    }

    async fn remove(cx: &Context<'_>, (name, _, observed): &Self::Item) -> Result<(), AwsError> {
        if observed.as_ref().and_then(|o| o.has_objects) == Some(true) {
            let deleted = empty(&cx.aws.s3, name).await?;
            tracing::info!(bucket = %name, deleted, "emptied the drops bucket");
        }
        match cx.aws.s3.delete_bucket().bucket(name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| is_code(s, &["NoSuchBucket"])) =>
            {
                Ok(())
            }
            Err(e) => Err(AwsError::new(format!("deleting S3 bucket {name}"), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::example_config;

    #[test]
    fn a_missing_bucket_is_created_private_and_expiring() {
        let config = example_config();
        let (name, settings) = desired(&config, "111111111111");
        assert_eq!(
            name,
            format!(
                "{}-{}-drops-111111111111",
                config.project, config.environment
            )
        );
        let step = changes(&name, &settings, None);
        assert_eq!(step.action, Action::Create);
        assert!(step.changes[0].contains("AES256"), "{:?}", step.changes);
        let policy = settings.policy.as_ref().unwrap();
        assert_eq!(policy["Statement"][0]["Effect"], "Deny");
        assert_eq!(
            policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
            "false"
        );
        let expiring: Vec<&str> = settings
            .lifecycle
            .iter()
            .filter(|r| r.expire_days == Some(30))
            .map(|r| r.prefix.as_str())
            .collect();
        assert_eq!(expiring, [QUARANTINE, REPORTS]);
    }

    #[test]
    fn every_aspect_that_drifts_is_a_change_line() {
        let mut config = example_config();
        let (name, want) = desired(&config, "111111111111");
        let same = Observed {
            settings: want.clone(),
            has_objects: None,
        };
        assert_eq!(changes(&name, &want, Some(&same)).action, Action::Unchanged);
        config.drops.kms_key_arn = Some("arn:aws:kms:eu-west-3:111111111111:key/k".into());
        config.drops.outputs_expire_days = 7;
        let (_, kms) = desired(&config, "111111111111");
        let drifted = Observed {
            settings: Settings {
                public_access_blocked: false,
                policy: None,
                versioning: Some("Suspended".into()),
                ..want.clone()
            },
            has_objects: None,
        };
        let step = changes(&name, &kms, Some(&drifted));
        assert_eq!(step.action, Action::Update);
        let text = step.changes.join("\n");
        for expected in [
            "encryption: AES256 → aws:kms arn:aws:kms:eu-west-3:111111111111:key/k",
            "public access: not all blocked",
            "policy: (none) → deny requests without TLS",
            "versioning: Suspended → Enabled",
            "quarantine/ expire 30 d, old versions 30 d",
            "quarantine/ expire 7 d, old versions 7 d",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
    }
}
