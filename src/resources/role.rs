//! The IAM roles hcctl creates when the config adopts none, each trusted by the one service that
//! assumes it (only from this account) and allowed exactly what its task needs, on the ARNs this
//! deploy made — one inline policy, `hcctl`, and nothing attached:
//!
//! - `execution` (ECS, for both task definitions): pull the images from their ECR repositories
//!   (when they are in ECR); write to the two log groups; read the generated secrets and the ones
//!   the containers name; decrypt with the secrets' key when the config sets one.
//! - `mongo-task` (the MongoDB container): mount and write MongoDB's file system, only through
//!   its access point.
//! - `app-task` (the migration container): its own log group; of the drops bucket, list and
//!   read `incoming/`, write `quarantine/` and `reports/` (and, with `backup.dumps`, list, read
//!   and write `dumps/`, write `drills/`) — no delete, no other prefix.
//! - `backup` (AWS Backup): back up the file system (and the selection's extra EFS resources)
//!   into the vault.
//! - `scheduler` (EventBridge Scheduler, only with a schedule): run the app's task
//!   definition on the cluster, passing it its two roles (execution and app task) — nothing else.
//!
//! A policy or trust that differs is put back; a managed policy someone attached is detached.
//! Destroy deletes them (they hold no data).

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use aws_sdk_iam::Client;
use serde_json::{json, Value};

use super::reference::{policy_json, secret_id};
use super::{Action, Context, Kind, Outputs, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, tag_delta, AwsError};
use crate::config::{Config, RoleKind, SecretRole};

pub const KIND: Kind = Kind::new("role", "role");

/// The inline policy's name.
pub const POLICY_NAME: &str = "hcctl";

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub trust: Option<Value>,
    /// The `hcctl` inline policy.
    pub policy: Option<Value>,
    /// Other inline policies, and attached managed policies (ARNs): not hcctl's, removed.
    pub other_inline: Vec<String>,
    pub attached: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub role: RoleKind,
    pub name: String,
    pub observed: Option<Observed>,
}

/// The trust policy: `service` may assume it, on behalf of this account only.
pub fn trust_policy(service: &str, account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    })
}

/// A secret's ARN as an IAM resource: a full ARN as is, a partial one (no random suffix) with
/// the `-??????` Secrets Manager appends.
fn secret_resource(arn: &str) -> String {
    let id = secret_id(arn);
    let name = id.rsplit(':').next().unwrap_or_default();
    let has_suffix = name
        .rsplit_once('-')
        .is_some_and(|(_, s)| s.len() == 6 && s.chars().all(|c| c.is_ascii_alphanumeric()));
    if has_suffix {
        id
    } else {
        format!("{id}-??????")
    }
}

/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]` → the repository's ARN.
pub fn ecr_repository(image: &str) -> Option<String> {
    let (host, path) = image.split_once('/')?;
    let mut parts = host.split('.');
    let (account, dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if dkr != "dkr" || ecr != "ecr" || !account.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let repo = path.split(['@', ':']).next()?;
    Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}"))
}

/// The statements of a role's `hcctl` policy, from the config and what earlier steps made
/// ([`AFTER_APPLY`] in place of an ARN not known yet). Empty: the role gets no inline policy.
pub fn statements(config: &Config, role: RoleKind, region: &str, outputs: &Outputs) -> Vec<Value> {
    let account = outputs.account_id.as_deref().unwrap_or(AFTER_APPLY);
    let fs = Outputs::show(outputs.file_system_arn.as_ref());
    match role {
        RoleKind::Execution => {
            let groups: Vec<String> = [&config.log_groups.mongo, &config.log_groups.app]
                .iter()
                .map(|g| {
                    format!(
                        "arn:aws:logs:{region}:{account}:log-group:{}:log-stream:*",
                        g.name
                    )
                })
                .collect();
            let mut out = vec![json!({
                "Sid": "WriteContainerLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": groups,
            })];
            let mut secrets: Vec<String> = SecretRole::ALL
                .iter()
                .map(|r| Outputs::show(outputs.secrets.get(r)))
                .collect();
            let mut parameters = Vec::new();
            for c in [&config.containers.mongo, &config.containers.app] {
                for arn in c.secrets.values() {
                    if arn.split(':').nth(2) == Some("ssm") {
                        parameters.push(arn.clone());
                    } else {
                        secrets.push(secret_resource(arn));
                    }
                }
            }
            // Images in ECR (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG): pull those
            // repositories. Public registries need no permission.
            let mut repos: Vec<String> = [&config.containers.mongo, &config.containers.app]
                .iter()
                .filter_map(|c| ecr_repository(&c.image))
                .collect();
            repos.sort();
            repos.dedup();
            if !repos.is_empty() {
                // AWS requires "*": GetAuthorizationToken is not resource-scoped.
                out.push(json!({
                    "Sid": "EcrLogin",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                }));
                out.push(json!({
                    "Sid": "PullImages",
                    "Effect": "Allow",
                    "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Resource": repos,
                }));
            }
            secrets.sort();
            secrets.dedup();
            out.push(json!({
                "Sid": "ReadSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secrets,
            }));
            if !parameters.is_empty() {
                parameters.sort();
                parameters.dedup();
                out.push(json!({
                    "Sid": "ReadParameters",
                    "Effect": "Allow",
                    "Action": "ssm:GetParameters",
                    "Resource": parameters,
                }));
            }
            if let Some(key) = &config.secrets.kms_key_arn {
                out.push(json!({
                    "Sid": "DecryptSecrets",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key,
                    "Condition": {"StringEquals": {
                        "kms:ViaService": format!("secretsmanager.{region}.amazonaws.com")
                    }}
                }));
            }
            out
        }
        RoleKind::MongoTask => vec![json!({
            "Sid": "MountThroughTheAccessPoint",
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            "Resource": fs,
            "Condition": {"StringEquals": {
                "elasticfilesystem:AccessPointArn": Outputs::show(outputs.access_point_arn.as_ref())
            }}
        })],
        // The app writes its own log group, lists and reads the exports dropped under incoming/
        // and writes quarantines and reports; with backup.dumps it also lists, reads and writes
        // the dumps and writes the drills' reports: nothing else of the bucket (no deleting).
        RoleKind::AppTask => {
            let bucket = format!("arn:aws:s3:::{}", config.drops_bucket(account));
            let mut out = vec![
                json!({
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": format!(
                        "arn:aws:logs:{region}:{account}:log-group:{}:log-stream:*",
                        config.log_groups.app.name
                    ),
                }),
                json!({
                    "Sid": "ReadDroppedExports",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": format!("{bucket}/{}*", super::bucket::INCOMING),
                }),
                json!({
                    "Sid": "WriteQuarantinesAndReports",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": [
                        format!("{bucket}/{}*", super::bucket::QUARANTINE),
                        format!("{bucket}/{}*", super::bucket::REPORTS),
                    ],
                }),
            ];
            // Listing is on the bucket, narrowed to the prefixes the app reads.
            let mut listed = vec![super::bucket::INCOMING];
            if config.backup.dumps.is_some() {
                listed.push(super::bucket::DUMPS);
                out.push(json!({
                    "Sid": "ReadAndWriteDumps",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": format!("{bucket}/{}*", super::bucket::DUMPS),
                }));
                out.push(json!({
                    "Sid": "WriteDrillReports",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": format!("{bucket}/{}*", super::bucket::DRILLS),
                }));
            }
            let prefixes: Vec<String> = listed
                .iter()
                .flat_map(|p| [p.to_string(), format!("{p}*")])
                .collect();
            out.insert(
                2,
                json!({
                    "Sid": "ListWhatItReads",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket,
                    "Condition": {"StringLike": {"s3:prefix": prefixes}}
                }),
            );
            if let Some(key) = &config.drops.kms_key_arn {
                out.push(json!({
                    "Sid": "UseTheBucketKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": key,
                    "Condition": {"StringEquals": {
                        "kms:ViaService": format!("s3.{region}.amazonaws.com")
                    }}
                }));
            }
            out
        }
        RoleKind::Scheduler => {
            let cluster = format!(
                "arn:aws:ecs:{region}:{account}:cluster/{}",
                config.ecs.cluster
            );
            let passed: Vec<String> = [RoleKind::Execution, RoleKind::AppTask]
                .iter()
                .map(|r| match config.adopted_role(*r) {
                    Some(arn) => arn.to_string(),
                    None => format!("arn:aws:iam::{account}:role/{}", config.role_name(*r)),
                })
                .collect();
            vec![
                json!({
                    "Sid": "RunTheAppTask",
                    "Effect": "Allow",
                    "Action": "ecs:RunTask",
                    "Resource": format!(
                        "arn:aws:ecs:{region}:{account}:task-definition/{}:*",
                        config.family("app")
                    ),
                    "Condition": {"ArnEquals": {"ecs:cluster": cluster}}
                }),
                json!({
                    "Sid": "PassTheTaskRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": passed,
                    "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
                }),
            ]
        }
        RoleKind::Backup => {
            let mut file_systems = vec![fs];
            file_systems.extend(
                config
                    .backup
                    .selection
                    .resources
                    .iter()
                    .filter(|r| r.starts_with("arn:aws:elasticfilesystem:"))
                    .cloned(),
            );
            let mut out = vec![
                json!({
                    "Sid": "BackUpTheFileSystem",
                    "Effect": "Allow",
                    "Action": ["elasticfilesystem:Backup", "elasticfilesystem:DescribeTags"],
                    "Resource": file_systems,
                }),
                json!({
                    "Sid": "WriteTheVault",
                    "Effect": "Allow",
                    "Action": ["backup:DescribeBackupVault", "backup:CopyIntoBackupVault"],
                    "Resource": format!(
                        "arn:aws:backup:{region}:{account}:backup-vault:{}",
                        config.backup.vault.name
                    ),
                }),
                // AWS requires "*": tag:GetResources is not resource-scoped (AWS Backup calls it
                // to match the selection's tag conditions).
                json!({
                    "Sid": "MatchTheSelectionsTags",
                    "Effect": "Allow",
                    "Action": "tag:GetResources",
                    "Resource": "*",
                }),
            ];
            // The rules' copy actions: AWS Backup copies each recovery point into these vaults
            // under this role (a vault of another account must also admit it in its policy).
            let mut copies: Vec<&str> = config
                .backup
                .plan
                .rules
                .iter()
                .flat_map(|r| r.copy_to.iter().map(|c| c.vault_arn.as_str()))
                .collect();
            copies.sort();
            copies.dedup();
            if !copies.is_empty() {
                out.push(json!({
                    "Sid": "CopyIntoTheCopyVaults",
                    "Effect": "Allow",
                    "Action": "backup:CopyIntoBackupVault",
                    "Resource": copies,
                }));
            }
            if config.backup.selection.drops_bucket {
                out.extend(drops_bucket_backup(config, region, account));
            }
            out
        }
    }
}

/// What AWS Backup needs to back up the drops bucket (AWS's S3 backup policy, scoped to this
/// bucket, this region and account): read the bucket and every object version, keep its
/// inventory configuration and change notifications, its managed EventBridge rules, and the
/// bucket's KMS key through S3 only.
fn drops_bucket_backup(config: &Config, region: &str, account: &str) -> Vec<Value> {
    let bucket = format!("arn:aws:s3:::{}", config.drops_bucket(account));
    let mut out = vec![
        json!({
            "Sid": "BackUpTheDropsBucket",
            "Effect": "Allow",
            "Action": [
                "s3:GetInventoryConfiguration",
                "s3:PutInventoryConfiguration",
                "s3:ListBucketVersions",
                "s3:ListBucket",
                "s3:GetBucketVersioning",
                "s3:GetBucketNotification",
                "s3:PutBucketNotification",
                "s3:GetBucketLocation",
                "s3:GetBucketTagging",
            ],
            "Resource": bucket,
        }),
        json!({
            "Sid": "ReadTheDropsObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:GetObjectAcl",
                "s3:GetObjectTagging",
                "s3:GetObjectVersion",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            "Resource": format!("{bucket}/*"),
        }),
        json!({
            "Sid": "TheBackupManagedRules",
            "Effect": "Allow",
            "Action": [
                "events:DescribeRule",
                "events:PutRule",
                "events:EnableRule",
                "events:DisableRule",
                "events:DeleteRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:ListTargetsByRule",
            ],
            "Resource": format!("arn:aws:events:{region}:{account}:rule/AwsBackupManagedRule*"),
        }),
        // AWS requires "*": none of these is resource-scoped.
        json!({
            "Sid": "ListRulesBucketsAndMetrics",
            "Effect": "Allow",
            "Action": ["events:ListRules", "s3:ListAllMyBuckets", "cloudwatch:GetMetricData"],
            "Resource": "*",
        }),
    ];
    if let Some(key) = &config.drops.kms_key_arn {
        out.push(json!({
            "Sid": "DecryptTheDropsThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")}},
        }));
    }
    out
}

/// The whole policy document, or `None` when the role needs no permission.
pub fn policy(config: &Config, role: RoleKind, region: &str, outputs: &Outputs) -> Option<Value> {
    let s = statements(config, role, region, outputs);
    (!s.is_empty()).then(|| json!({"Version": "2012-10-17", "Statement": s}))
}

fn description(config: &Config, role: RoleKind) -> String {
    let what = match role {
        RoleKind::Execution => "ECS task execution (logs, secrets)",
        RoleKind::MongoTask => "MongoDB container (its file system, through the access point)",
        RoleKind::AppTask => "hcctl app container",
        RoleKind::Backup => "AWS Backup (MongoDB's file system)",
        RoleKind::Scheduler => "EventBridge Scheduler (the schedules' tasks)",
    };
    format!(
        "{what}; {}-{}, managed by hcctl",
        config.project, config.environment
    )
}

pub fn desired_tags(config: &Config) -> BTreeMap<String, String> {
    config.tags.clone()
}

/// The role named `name`, with its policies (read-only).
pub async fn observe(client: &Client, name: &str) -> Result<Option<Observed>, AwsError> {
    let role = match client.get_role().role_name(name).send().await {
        Ok(out) => match out.role {
            Some(r) => r,
            None => return Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::new(format!("reading role {name}"), &e)),
    };
    let inline = client
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the policies of role {name}"), &e))?;
    let mut policy = None;
    let mut other_inline = Vec::new();
    for p in inline.policy_names() {
        if p == POLICY_NAME {
            let doc = client
                .get_role_policy()
                .role_name(name)
                .policy_name(p)
                .send()
                .await
                .map_err(|e| AwsError::new(format!("reading policy {p} of role {name}"), &e))?;
            policy = policy_json(doc.policy_document());
        } else {
            other_inline.push(p.clone());
        }
    }
    let attached = client
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the managed policies of role {name}"), &e))?
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    let tags = client
        .list_role_tags()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the tags of role {name}"), &e))?
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok(Some(Observed {
        arn: role.arn().to_string(),
        trust: role.assume_role_policy_document().and_then(policy_json),
        policy,
        other_inline,
        attached,
        tags,
    }))
}

/// A policy field (a string or a list of strings) as plan words: `a, b`.
fn words(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// What deploy will do to one role (pure).
pub fn changes(config: &Config, region: &str, outputs: &Outputs, item: &Item) -> Step {
    let account = outputs.account_id.as_deref().unwrap_or(AFTER_APPLY);
    let trust = trust_policy(item.role.service(), account);
    let want = policy(config, item.role, region, outputs);
    let tags = desired_tags(config);
    let Some(o) = &item.observed else {
        let mut lines = vec![format!(
            "trusted by {} (this account only)",
            item.role.service()
        )];
        match &want {
            None => lines.push("no permissions".into()),
            Some(p) => {
                lines.extend(
                    p["Statement"].as_array().into_iter().flatten().map(|s| {
                        format!("allow {} on {}", words(&s["Action"]), words(&s["Resource"]))
                    }),
                )
            }
        }
        lines.push(format!("{} tags", tags.len()));
        return Step::new(KIND, &item.name, Action::Create, lines);
    };
    let mut lines = Vec::new();
    if o.trust.as_ref() != Some(&trust) {
        lines.push(format!("trust policy → {} only", item.role.service()));
    }
    if o.policy != want {
        let mut diff = Vec::new();
        super::step::diff(
            "policy",
            o.policy.as_ref().unwrap_or(&Value::Null),
            want.as_ref().unwrap_or(&Value::Null),
            &mut diff,
        );
        if diff.is_empty() {
            diff.push("policy differs".into());
        }
        lines.extend(diff);
    }
    lines.extend(
        o.other_inline
            .iter()
            .map(|p| format!("inline policy {p}: removed (not hcctl's)")),
    );
    lines.extend(
        o.attached
            .iter()
            .map(|p| format!("managed policy {p}: detached (not hcctl's)")),
    );
    lines.extend(tag_changes(&o.tags, &tags));
    Step::compared(KIND, &item.name, Action::Update, lines)
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::other("building role tags", e))
        })
        .collect()
}

/// Create the role or bring it to the config; record its ARN.
pub async fn apply(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
    let client = &cx.aws.iam;
    let config = cx.config;
    let name = &item.name;
    let Some(account) = cx.outputs.account_id.clone() else {
        return Err(AwsError::other(
            format!("role {name}"),
            "the account id is not known",
        ));
    };
    let trust = trust_policy(item.role.service(), &account);
    let want = policy(config, item.role, &cx.aws.region, &cx.outputs);
    if let Some(p) = &want {
        if p.to_string().contains(AFTER_APPLY) {
            return Err(AwsError::other(
                format!("putting the policy of role {name}"),
                "an ARN it names does not exist yet (a bug in hcctl's order)",
            ));
        }
    }
    let tags = desired_tags(config);
    let arn = match &item.observed {
        None => {
            let out = client
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .description(description(config, item.role))
                .set_tags((!tags.is_empty()).then(|| iam_tags(&tags)).transpose()?)
                .send()
                .await
                .map_err(|e| AwsError::new(format!("creating role {name}"), &e))?;
            out.role().map(|r| r.arn().to_string()).unwrap_or_default()
        }
        Some(o) => {
            if o.trust.as_ref() != Some(&trust) {
                client
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .map_err(|e| AwsError::new(format!("setting the trust of role {name}"), &e))?;
            }
            remove_policies(client, name, &o.other_inline, &o.attached).await?;
            if want.is_none() && o.policy.is_some() {
                client
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(POLICY_NAME)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::new(format!("removing policy {POLICY_NAME} of {name}"), &e)
                    })?;
            }
            let (set, remove) = tag_delta(&o.tags, &tags);
            if !set.is_empty() {
                client
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(iam_tags(&set)?))
                    .send()
                    .await
                    .map_err(|e| AwsError::new(format!("tagging role {name}"), &e))?;
            }
            if !remove.is_empty() {
                client
                    .untag_role()
                    .role_name(name)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .map_err(|e| AwsError::new(format!("untagging role {name}"), &e))?;
            }
            o.arn.clone()
        }
    };
    if let Some(p) = &want {
        if item.observed.as_ref().and_then(|o| o.policy.as_ref()) != Some(p) {
            client
                .put_role_policy()
                .role_name(name)
                .policy_name(POLICY_NAME)
                .policy_document(p.to_string())
                .send()
                .await
                .map_err(|e| AwsError::new(format!("putting the policy of role {name}"), &e))?;
        }
    }
    cx.outputs.roles.insert(item.role, arn.clone());
    Ok(arn)
}

/// Delete the inline policies `inline` and detach the managed policies `attached` of role `name`.
async fn remove_policies(
    client: &Client,
    name: &str,
    inline: &[String],
    attached: &[String],
) -> Result<(), AwsError> {
    for p in inline {
        client
            .delete_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("removing policy {p} of {name}"), &e))?;
    }
    for p in attached {
        client
            .detach_role_policy()
            .role_name(name)
            .policy_arn(p)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("detaching {p} from {name}"), &e))?;
    }
    Ok(())
}

/// Delete a role: its inline policies and attachments first (IAM refuses otherwise).
pub async fn delete(client: &Client, name: &str, o: &Observed) -> Result<(), AwsError> {
    let mut inline = o.other_inline.clone();
    if o.policy.is_some() {
        inline.push(POLICY_NAME.to_string());
    }
    remove_policies(client, name, &inline, &o.attached).await?;
    client
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("deleting role {name}"), &e))
}

/// The roles, for the engine: the ones the config does not adopt.
pub struct Roles;

impl Resource for Roles {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        for role in RoleKind::ALL {
            if cx.config.adopted_role(role).is_some() {
                continue;
            }
            let name = cx.config.role_name(role);
            let observed = observe(&cx.aws.iam, &name).await?;
            // A role the config no longer uses (the scheduler's, once no schedule is left) is in the plan only when it exists: deploy deletes it.
            if !cx.config.uses_role(role) && observed.is_none() {
                continue;
            }
            if let Some(o) = &observed {
                cx.outputs.roles.insert(role, o.arn.clone());
            }
            items.push(Item {
                role,
                name,
                observed,
            });
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        if !cx.config.uses_role(item.role) {
            return Step::new(
                KIND,
                &item.name,
                Action::Delete,
                vec![
                    "not used: the config schedules nothing (ingest.schedule, backup.dumps)".into(),
                ],
            );
        }
        changes(cx.config, &cx.aws.region, &cx.outputs, item)
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        if !cx.config.uses_role(item.role) {
            if let Some(o) = &item.observed {
                delete(&cx.aws.iam, &item.name, o).await?;
            }
            cx.outputs.roles.remove(&item.role);
            return Ok("deleted".into());
        }
        apply(cx, item).await
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        match &item.observed {
            Some(_) => Step::new(KIND, &item.name, Action::Delete, vec![]),
            None => Step::new(KIND, &item.name, Action::Absent, vec![]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match &item.observed {
            Some(o) => delete(&cx.aws.iam, &item.name, o).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Outputs {
        Outputs {
            account_id: Some("111111111111".into()),
            file_system_arn: Some("arn:aws:elasticfilesystem:eu-west-3:111111111111:file-system/fs-1".into()),
            access_point_arn: Some("arn:aws:elasticfilesystem:eu-west-3:111111111111:access-point/fsap-1".into()),
            secrets: SecretRole::ALL
                .iter()
                .map(|r| (*r, format!("arn:aws:secretsmanager:eu-west-3:111111111111:secret:hcctl/dev/mongo-{}-AbCdEf", r.id())))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn each_role_may_do_only_what_its_task_needs_on_this_deploys_arns() {
        let config = crate::config::tests_support::example_config();
        let o = outputs();
        let exec = policy(&config, RoleKind::Execution, "eu-west-3", &o).unwrap();
        let text = exec.to_string();
        assert!(text.contains(
            "arn:aws:logs:eu-west-3:111111111111:log-group:/ecs/hcctl-dev/mongo:log-stream:*"
        ));
        assert!(text.contains("secret:hcctl/dev/mongo-writer-AbCdEf"));
        assert!(!text.contains("\"*\""), "no wildcard resource: {text}");
        let mongo = policy(&config, RoleKind::MongoTask, "eu-west-3", &o).unwrap();
        assert_eq!(
            mongo["Statement"][0]["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"],
            "arn:aws:elasticfilesystem:eu-west-3:111111111111:access-point/fsap-1"
        );
        let app = policy(&config, RoleKind::AppTask, "eu-west-3", &o).unwrap();
        assert_eq!(app["Statement"].as_array().map(Vec::len), Some(4));
        let bucket = "arn:aws:s3:::hcctl-dev-drops-111111111111";
        assert_eq!(app["Statement"][1]["Action"], "s3:GetObject");
        assert_eq!(
            app["Statement"][1]["Resource"],
            format!("{bucket}/incoming/*")
        );
        // Ingest lists incoming/, and only that.
        assert_eq!(app["Statement"][2]["Action"], "s3:ListBucket");
        assert_eq!(app["Statement"][2]["Resource"], bucket);
        assert_eq!(
            app["Statement"][2]["Condition"]["StringLike"]["s3:prefix"],
            serde_json::json!(["incoming/", "incoming/*"])
        );
        assert_eq!(
            app["Statement"][3]["Resource"],
            serde_json::json!([
                format!("{bucket}/quarantine/*"),
                format!("{bucket}/reports/*")
            ])
        );
        assert!(!app.to_string().contains("dumps/"), "{app}");
        assert!(!app.to_string().contains("s3:DeleteObject"), "{app}");
        // With scheduled dumps: dumps/ listed, read and written; drills/ written.
        let mut dumping = config.clone();
        dumping.backup.dumps = Some(crate::config::Dumps {
            schedule: "cron(0 2 * * ? *)".into(),
            drill_schedule: None,
            timezone: "UTC".into(),
            retention_days: 35,
        });
        let app = policy(&dumping, RoleKind::AppTask, "eu-west-3", &o).unwrap();
        let statements = app["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 6, "{app}");
        assert_eq!(
            statements[2]["Condition"]["StringLike"]["s3:prefix"],
            serde_json::json!(["incoming/", "incoming/*", "dumps/", "dumps/*"])
        );
        assert_eq!(statements[4]["Resource"], format!("{bucket}/dumps/*"));
        assert_eq!(
            statements[4]["Action"],
            serde_json::json!(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"])
        );
        assert_eq!(statements[5]["Resource"], format!("{bucket}/drills/*"));
        assert!(!app.to_string().contains("s3:DeleteObject"), "{app}");
        // The backup role reads the drops bucket only when the selection protects it.
        let backup = policy(&config, RoleKind::Backup, "eu-west-3", &o).unwrap();
        assert!(!backup.to_string().contains("arn:aws:s3"), "{backup}");
        let mut protecting = config.clone();
        protecting.backup.selection.drops_bucket = true;
        protecting.drops.kms_key_arn = Some("arn:aws:kms:eu-west-3:111111111111:key/k-1".into());
        let backup = policy(&protecting, RoleKind::Backup, "eu-west-3", &o).unwrap();
        let by_sid = |sid: &str| {
            backup["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .cloned()
                .unwrap_or_else(|| panic!("no {sid} in {backup}"))
        };
        assert_eq!(by_sid("BackUpTheDropsBucket")["Resource"], bucket);
        assert_eq!(
            by_sid("ReadTheDropsObjects")["Resource"],
            format!("{bucket}/*")
        );
        assert_eq!(
            by_sid("TheBackupManagedRules")["Resource"],
            "arn:aws:events:eu-west-3:111111111111:rule/AwsBackupManagedRule*"
        );
        assert_eq!(
            by_sid("DecryptTheDropsThroughS3")["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.eu-west-3.amazonaws.com"
        );
        let text = backup.to_string();
        for never in ["s3:PutObject", "s3:DeleteObject", "s3:PutBucketPolicy"] {
            assert!(!text.contains(never), "{never} in {text}");
        }
        assert_eq!(
            ecr_repository("123456789012.dkr.ecr.eu-west-3.amazonaws.com/hcctl/app:0.1.0")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-3:123456789012:repository/hcctl/app")
        );
        assert_eq!(ecr_repository("mongo:7.0.14"), None);
        assert_eq!(ecr_repository("ghcr.io/hospital-group/hcctl:0.1.0"), None);
        // A policy someone widened is put back, and an attached managed policy detached.
        let item = Item {
            role: RoleKind::MongoTask,
            name: "hcctl-dev-mongo-task".into(),
            observed: Some(Observed {
                arn: "arn:aws:iam::111111111111:role/hcctl-dev-mongo-task".into(),
                trust: Some(trust_policy("ecs-tasks.amazonaws.com", "111111111111")),
                policy: Some(mongo.clone()),
                other_inline: vec![],
                attached: vec!["arn:aws:iam::aws:policy/AdministratorAccess".into()],
                tags: desired_tags(&config),
            }),
        };
        let step = changes(&config, "eu-west-3", &o, &item);
        assert_eq!(step.action, Action::Update);
        assert_eq!(
            step.changes,
            ["managed policy arn:aws:iam::aws:policy/AdministratorAccess: detached (not hcctl's)"]
        );
        assert_eq!(
            secret_resource("arn:aws:secretsmanager:eu-west-3:1:secret:hcctl/dev/x:password::"),
            "arn:aws:secretsmanager:eu-west-3:1:secret:hcctl/dev/x-??????"
        );
    }
}
