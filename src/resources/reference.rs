//! References, a read-only kind (observe and changes, no apply): what the config refers to but
//! hcctl does not manage — the Secrets Manager secrets injected into the containers, the IAM roles
//! (task execution, task, backup selection) and the KMS keys of the log groups and the vault —
//! looked up with read-only calls before deploy changes anything. A task definition that names a
//! missing secret registers fine and fails only when a task starts; the plan says so first.
//! Missing references are warnings, or errors with `--strict`.
//!
//! Existence is not enough (issue 22): a role must trust the service that assumes it
//! (`ecs-tasks.amazonaws.com` for the task roles, `backup.amazonaws.com` for the backup role), the
//! execution role must be allowed to read the configured secrets and parameters and to decrypt
//! with their customer-managed keys (asked of the IAM policy simulator, which weighs the role's
//! identity policies — not resource policies, SCPs or permission boundaries), and a log group's
//! KMS key policy must let `logs.<region>.amazonaws.com` use the key. What cannot be read from
//! here is said in the plan as "not checked", never passed silently.

use super::{Action, Command, Context, Kind, Resource, Step};
use crate::aws::{Aws, AwsError, AwsErrorKind};
use crate::config::{Config, RoleKind};

pub const KIND: Kind = Kind::new("reference", "reference");

/// One referenced resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// "secret", "role", "KMS key", "SSM parameter"
    pub what: &'static str,
    pub arn: String,
    /// The config key that names it.
    pub used_by: String,
}

/// The service principal that must be able to assume the role named at a config key.
fn trusted_service(used_by: &str) -> Option<&'static str> {
    RoleKind::ALL
        .iter()
        .find(|r| r.config_key() == used_by)
        .map(|r| r.service())
}

/// Every reference in the config, each once: the roles it adopts (the others hcctl creates), the
/// secrets the containers name besides the ones hcctl manages, the KMS keys.
pub fn collect(config: &Config) -> Vec<Reference> {
    let mut refs: Vec<Reference> = Vec::new();
    let mut add = |what: &'static str, arn: &str, used_by: String| {
        let candidate = Reference {
            what,
            arn: arn.to_string(),
            used_by: String::new(),
        };
        // Two keys of one secret (":username::", ":password::") are one reference.
        if !refs.iter().any(|r| label(r) == label(&candidate)) {
            refs.push(Reference {
                what,
                arn: arn.to_string(),
                used_by,
            });
        }
    };
    for role in [RoleKind::Execution, RoleKind::MongoTask, RoleKind::AppTask] {
        if let Some(arn) = config.adopted_role(role) {
            add("role", arn, role.config_key().into());
        }
    }
    for (name, c) in [
        ("mongo", &config.containers.mongo),
        ("app", &config.containers.app),
    ] {
        for (var, arn) in &c.secrets {
            let what = if arn.split(':').nth(2) == Some("ssm") {
                "SSM parameter"
            } else {
                "secret"
            };
            add(what, arn, format!("containers.{name}.secrets.{var}"));
        }
    }
    for (name, g) in [
        ("mongo", &config.log_groups.mongo),
        ("app", &config.log_groups.app),
    ] {
        if let Some(k) = &g.kms_key_arn {
            add("KMS key", k, format!("log_groups.{name}.kms_key_arn"));
        }
    }
    if let Some(k) = &config.backup.vault.kms_key_arn {
        add("KMS key", k, "backup.vault.kms_key_arn".into());
    }
    for role in [RoleKind::Backup, RoleKind::Scheduler] {
        if let Some(arn) = config.adopted_role(role) {
            add("role", arn, role.config_key().into());
        }
    }
    refs
}

/// `arn:…:secret:NAME[:json-key:stage:version]` → NAME, for display (with the random suffix
/// Secrets Manager appends to a full ARN, when the config has one).
pub fn secret_name(arn: &str) -> &str {
    arn.split(':').nth(6).unwrap_or(arn)
}

/// `arn:…:secret:NAME[:json-key:stage:version]` → `arn:…:secret:NAME`, the `SecretId` to look it
/// up by. The name of a full ARN ends in a random 6-character suffix: looked up as a name, it is
/// not found (or refused as AccessDenied by a policy on the ARN); looked up as the ARN it is.
pub fn secret_id(arn: &str) -> String {
    let fields: Vec<&str> = arn.split(':').collect();
    match fields.get(..7) {
        Some(head) => head.join(":"),
        None => arn.to_string(),
    }
}

/// `arn:aws:iam::ACCOUNT:role/path/NAME` → NAME.
pub fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The display name in the plan.
pub fn label(r: &Reference) -> String {
    match r.what {
        "secret" => format!("secret {}", secret_name(&r.arn)),
        "role" => format!("role {}", role_name(&r.arn)),
        _ => format!("{} {}", r.what, r.arn),
    }
}

fn missing_code(e: &AwsError) -> bool {
    e.kind == AwsErrorKind::Service
        && matches!(
            e.code.as_deref(),
            Some("ResourceNotFoundException" | "NoSuchEntity" | "NotFoundException")
        )
}

/// What a lookup found.
#[derive(Debug, Default)]
struct Found {
    /// Why it cannot serve its use (empty: usable as far as can be seen).
    problems: Vec<String>,
    /// What could not be checked, and why.
    notes: Vec<String>,
    /// A secret's full ARN and its customer-managed KMS key, for the execution role's check.
    secret_arn: Option<String>,
    secret_key: Option<String>,
}

/// Found (`Some`), missing (`None`); SSM parameters are not looked up (`Ok(Some)` with a note).
async fn look_up(aws: &Aws, r: &Reference, region: &str) -> Result<Option<Found>, AwsError> {
    let mut found = Found::default();
    let result = match r.what {
        "secret" => {
            let name = secret_name(&r.arn);
            match aws
                .secrets
                .describe_secret()
                .secret_id(secret_id(&r.arn))
                .send()
                .await
            {
                Ok(out) => {
                    found.secret_arn = out.arn().map(str::to_string);
                    if out.deleted_date().is_some() {
                        found.problems.push(format!(
                            "is scheduled for deletion ({}): ECS could not read it; restore it \
                             (aws secretsmanager restore-secret) or name another",
                            r.used_by
                        ));
                    }
                    // Secrets Manager's own key (aws/secretsmanager) needs no grant. Others are
                    // named by key id or alias: IAM judges kms:Decrypt on the key's ARN.
                    if let Some(key) = out
                        .kms_key_id()
                        .filter(|k| !k.ends_with("alias/aws/secretsmanager"))
                    {
                        match aws.kms.describe_key().key_id(key).send().await {
                            Ok(k) => {
                                found.secret_key =
                                    k.key_metadata().map(|m| m.arn().unwrap_or(key).to_string())
                            }
                            Err(e) => found.notes.push(format!(
                                "its KMS key {key} not checked: {}",
                                AwsError::new("describing the key", &e)
                            )),
                        }
                    }
                    Ok(())
                }
                Err(e) => Err(AwsError::new(format!("looking up secret {name}"), &e)),
            }
        }
        "role" => {
            let name = role_name(&r.arn);
            aws.iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .map(|out| {
                    let (Some(service), Some(role)) = (trusted_service(&r.used_by), out.role())
                    else {
                        return;
                    };
                    match role.assume_role_policy_document().map(policy_json) {
                        Some(Some(doc)) if trusts(&doc, service) => {}
                        Some(Some(_)) => found.problems.push(format!(
                            "its trust policy does not let {service} assume it ({}): add \
                             {{\"Effect\": \"Allow\", \"Principal\": {{\"Service\": \"{service}\"}}, \
                             \"Action\": \"sts:AssumeRole\"}}",
                            r.used_by
                        )),
                        _ => found
                            .notes
                            .push("trust policy not checked: not readable".to_string()),
                    }
                })
                .map_err(|e| AwsError::new(format!("looking up IAM role {name}"), &e))
        }
        "KMS key" => {
            let described = aws
                .kms
                .describe_key()
                .key_id(&r.arn)
                .send()
                .await
                .map(|out| {
                    if let Some(m) = out.key_metadata() {
                        found
                            .problems
                            .extend(key_problems(m, r.used_by.starts_with("log_groups.")));
                    }
                })
                .map_err(|e| AwsError::new(format!("looking up KMS key {}", r.arn), &e));
            if described.is_ok() && r.used_by.starts_with("log_groups.") {
                let service = format!("logs.{region}.amazonaws.com");
                match aws
                    .kms
                    .get_key_policy()
                    .key_id(&r.arn)
                    .policy_name("default")
                    .send()
                    .await
                {
                    Ok(out) => match out.policy().map(policy_json) {
                        Some(Some(doc)) if allows_service(&doc, &service, LOGS_KMS_ACTIONS) => {}
                        Some(Some(_)) => found.problems.push(format!(
                            "its key policy does not allow {service} to {} ({}): CloudWatch \
                             Logs could not encrypt the group with it",
                            LOGS_KMS_ACTIONS.join(", "),
                            r.used_by
                        )),
                        _ => found
                            .notes
                            .push("key policy not checked: not readable".into()),
                    },
                    Err(e) => found.notes.push(format!(
                        "key policy not checked: {}",
                        AwsError::new("reading the key policy", &e)
                    )),
                }
            }
            described
        }
        _ => {
            found.notes.push("not checked".to_string());
            return Ok(Some(found));
        }
    };
    match result {
        Ok(()) => Ok(Some(found)),
        Err(e) if missing_code(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a key cannot encrypt what the config gives it: not enabled (disabled, pending deletion
/// or import), or, for a log group, not a symmetric key (CloudWatch Logs takes no other).
fn key_problems(m: &aws_sdk_kms::types::KeyMetadata, for_logs: bool) -> Vec<String> {
    use aws_sdk_kms::types::{KeySpec, KeyState};
    let mut problems = Vec::new();
    if let Some(state) = m.key_state().filter(|s| **s != KeyState::Enabled) {
        problems.push(format!(
            "is {}: nothing can be encrypted with it (enable it, or cancel its deletion)",
            state.as_str()
        ));
    }
    if let Some(spec) = m
        .key_spec()
        .filter(|s| for_logs && **s != KeySpec::SymmetricDefault)
    {
        problems.push(format!(
            "is a {} key: CloudWatch Logs encrypts with symmetric keys only",
            spec.as_str()
        ));
    }
    problems
}

/// What CloudWatch Logs needs of a key to encrypt a log group with it.
const LOGS_KMS_ACTIONS: &[&str] = &["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"];

/// A policy document as IAM and KMS return it: JSON, or (IAM's trust policies) URL-encoded JSON.
pub fn policy_json(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()?;
        serde_json::from_str(&decoded).ok()
    })
}

/// A field that is a string or a list of strings.
fn strings(v: &serde_json::Value) -> Vec<&str> {
    match v {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The Allow statements of a policy whose principal includes the service `service`.
fn allow_statements_for<'a>(
    doc: &'a serde_json::Value,
    service: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.iter().collect::<Vec<_>>(),
        one @ serde_json::Value::Object(_) => vec![one],
        _ => Vec::new(),
    };
    statements.into_iter().filter(move |st| {
        st["Effect"] == "Allow" && strings(&st["Principal"]["Service"]).contains(&service)
    })
}

/// `pattern` (an IAM action with `*` wildcards, case-insensitive) matches `action`.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => {
                a.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && glob(rest, &a[1..])
            }
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

/// Whether a trust policy lets `service` assume the role.
fn trusts(doc: &serde_json::Value, service: &str) -> bool {
    allows_service(doc, service, &["sts:AssumeRole"])
}

/// Whether some Allow statement for `service` grants every one of `actions`.
fn allows_service(doc: &serde_json::Value, service: &str, actions: &[&str]) -> bool {
    actions.iter().all(|action| {
        allow_statements_for(doc, service).any(|st| {
            strings(&st["Action"])
                .iter()
                .any(|p| action_matches(p, action))
        })
    })
}

/// The execution role's permissions on what the tasks read at start, asked of the IAM policy
/// simulator: problems (denied), or a note when the simulator cannot be asked from here.
async fn execution_role_access(
    aws: &Aws,
    role_arn: &str,
    needs: &[(&'static str, String)],
) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    for (action, resource) in needs {
        let out = aws
            .iam
            .simulate_principal_policy()
            .policy_source_arn(role_arn)
            .action_names(*action)
            .resource_arns(resource)
            .send()
            .await;
        match out {
            Ok(out) => {
                for r in out.evaluation_results() {
                    let decision = r.eval_decision().as_str();
                    // AWS names the statement behind an explicit deny; an answer that names
                    // none cannot be explained, so it is not taken (LocalStack's simulator
                    // denies everything this way).
                    if decision == "explicitDeny" && r.matched_statements().is_empty() {
                        notes.push(format!(
                            "permissions not checked: the IAM policy simulator answered \
                             {action} on {resource} with explicitDeny without naming a statement"
                        ));
                        continue;
                    }
                    // KMS decides by the key policy too, which the simulator is not given: a
                    // deny by the role's own policies alone is no verdict.
                    if decision != "allowed" && *action == "kms:Decrypt" {
                        notes.push(format!(
                            "kms:Decrypt on {resource}: not allowed by the role's own IAM \
                             policies ({decision}); the key policy may grant it and is not \
                             weighed here: check that it lets the execution role decrypt"
                        ));
                        continue;
                    }
                    if decision != "allowed" {
                        problems.push(format!(
                            "may not {action} on {resource} ({decision} by the IAM policy \
                             simulator): the tasks could not start"
                        ));
                    }
                }
            }
            Err(e) => {
                notes.push(format!(
                    "permissions not checked: {}",
                    AwsError::new("asking the IAM policy simulator", &e)
                ));
                break;
            }
        }
    }
    (problems, notes)
}

/// Why a secret cannot be looked up from here, if it cannot: ECS accepts a secret of another
/// region or account by its full ARN, but the lookup runs in the deploy's region and account (the
/// account of the credentials, STS GetCallerIdentity).
pub fn elsewhere(r: &Reference, region: &str, home_account: Option<&str>) -> Option<String> {
    if r.what != "secret" {
        return None;
    }
    let fields: Vec<&str> = r.arn.split(':').collect();
    let (arn_region, arn_account) = (fields.get(3)?, fields.get(4)?);
    if !arn_region.is_empty() && *arn_region != region {
        return Some(format!(
            "not checked: in region {arn_region}; references are looked up in {region}"
        ));
    }
    match home_account {
        Some(home) if !arn_account.is_empty() && *arn_account != home => Some(format!(
            "not checked: in account {arn_account}; references are looked up in {home}"
        )),
        _ => None,
    }
}

/// Observe every reference and say what it is (the kind's observe and changes in one: the
/// execution role's check needs what the secrets' lookups found): found and usable ones
/// unchanged, missing ones `missing`, unusable ones `unusable`.
pub async fn observe(
    aws: &Aws,
    config: &Config,
    home_account: Option<&str>,
) -> Result<Vec<Step>, AwsError> {
    let mut steps = Vec::new();
    // What the execution role must read when a task starts, and where its step is.
    let mut needs: Vec<(&'static str, String)> = Vec::new();
    let mut execution_role: Option<(usize, String)> = None;
    for r in collect(config) {
        if let Some(note) = elsewhere(&r, &aws.region, home_account) {
            steps.push(Step::new(KIND, label(&r), Action::Unchanged, vec![note]));
            continue;
        }
        let step = match look_up(aws, &r, &aws.region).await? {
            Some(found) => {
                if r.what == "SSM parameter" {
                    needs.push(("ssm:GetParameters", r.arn.clone()));
                }
                if let Some(arn) = &found.secret_arn {
                    needs.push(("secretsmanager:GetSecretValue", arn.clone()));
                }
                if let Some(key) = &found.secret_key {
                    needs.push(("kms:Decrypt", key.clone()));
                }
                if r.used_by == "ecs.execution_role_arn" && found.problems.is_empty() {
                    execution_role = Some((steps.len(), r.arn.clone()));
                }
                let action = if found.problems.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Unusable
                };
                let mut lines = found.problems;
                lines.extend(found.notes);
                Step::new(KIND, label(&r), action, lines)
            }
            None => Step::new(
                KIND,
                label(&r),
                Action::Missing,
                vec![format!(
                    "not found ({}): create it before the tasks start",
                    r.used_by
                )],
            ),
        };
        steps.push(step);
    }
    if let Some((at, arn)) = execution_role {
        let (problems, notes) = execution_role_access(aws, &arn, &needs).await;
        let step = &mut steps[at];
        if !problems.is_empty() {
            step.action = Action::Unusable;
        }
        step.changes.extend(problems);
        step.changes.extend(notes);
    }
    Ok(steps)
}

/// The references, for the engine: observed and judged for deploy, never changed, not part of
/// destroy (hcctl does not own them).
pub struct References;

impl Resource for References {
    type Item = Step;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Step>, AwsError> {
        match cx.command {
            Command::Deploy => observe(cx.aws, cx.config, cx.outputs.account_id.as_deref()).await,
            Command::Destroy => Ok(Vec::new()),
        }
    }

    fn step(_: &Context<'_>, step: &Step) -> Step {
        step.clone()
    }

    async fn apply_step(_: &mut Context<'_>, step: &Step) -> Result<String, AwsError> {
        Err(not_managed(step))
    }

    fn removal(_: &Context<'_>, step: &Step) -> Step {
        Step::new(
            KIND,
            &step.name,
            Action::Keep,
            vec!["not managed by hcctl".into()],
        )
    }

    async fn remove(_: &Context<'_>, step: &Step) -> Result<(), AwsError> {
        Err(not_managed(step))
    }
}

/// References are never applied (their actions do not mutate); asked to, the engine has a bug.
fn not_managed(step: &Step) -> AwsError {
    AwsError::other(
        format!("reference {}", step.name),
        "not managed by hcctl: create or fix it yourself",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_another_region_or_account_are_not_looked_up_here() {
        let secret = |arn: &str| Reference {
            what: "secret",
            arn: arn.into(),
            used_by: "containers.app.secrets.X".into(),
        };
        let home = Some("111111111111");
        let here = secret("arn:aws:secretsmanager:eu-west-3:111111111111:secret:a:password::");
        assert_eq!(elsewhere(&here, "eu-west-3", home), None);
        let other_region = secret("arn:aws:secretsmanager:us-east-1:111111111111:secret:a");
        assert_eq!(
            elsewhere(&other_region, "eu-west-3", home).as_deref(),
            Some("not checked: in region us-east-1; references are looked up in eu-west-3")
        );
        let other_account = secret("arn:aws:secretsmanager:eu-west-3:222222222222:secret:a");
        assert_eq!(
            elsewhere(&other_account, "eu-west-3", home).as_deref(),
            Some("not checked: in account 222222222222; references are looked up in 111111111111")
        );
        assert_eq!(elsewhere(&other_account, "eu-west-3", None), None);
        let role = Reference {
            what: "role",
            arn: "arn:aws:iam::222222222222:role/x".into(),
            used_by: "ecs.task_role_arn".into(),
        };
        assert_eq!(elsewhere(&role, "eu-west-3", home), None);
    }

    #[test]
    fn trust_and_key_policies_are_read_as_aws_evaluates_them() {
        // Issue 22, finding 8: roles and keys were checked for existence only.
        let ecs = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;
        let doc = policy_json(ecs).unwrap();
        assert!(trusts(&doc, "ecs-tasks.amazonaws.com"));
        assert!(!trusts(&doc, "backup.amazonaws.com"));
        // IAM returns trust policies URL-encoded.
        let encoded =
            percent_encoding::utf8_percent_encode(ecs, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(trusts(
            &policy_json(&encoded).unwrap(),
            "ecs-tasks.amazonaws.com"
        ));
        // A Deny, another action or a single statement object.
        let deny = r#"{"Statement":{"Effect":"Deny","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert!(!trusts(
            &policy_json(deny).unwrap(),
            "ecs-tasks.amazonaws.com"
        ));
        let tag_only = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:TagSession"}}"#;
        assert!(!trusts(
            &policy_json(tag_only).unwrap(),
            "ecs-tasks.amazonaws.com"
        ));
        let star = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"backup.amazonaws.com"},"Action":"sts:*"}}"#;
        assert!(trusts(&policy_json(star).unwrap(), "backup.amazonaws.com"));

        let default_key = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let logs = "logs.eu-west-3.amazonaws.com";
        assert!(!allows_service(
            &policy_json(default_key).unwrap(),
            logs,
            LOGS_KMS_ACTIONS
        ));
        let for_logs = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"logs.eu-west-3.amazonaws.com"},"Action":["kms:Encrypt*","kms:Decrypt*","kms:ReEncrypt*","kms:GenerateDataKey*","kms:Describe*"],"Resource":"*"}]}"#;
        assert!(allows_service(
            &policy_json(for_logs).unwrap(),
            logs,
            LOGS_KMS_ACTIONS
        ));
        assert!(!allows_service(
            &policy_json(for_logs).unwrap(),
            "logs.us-east-1.amazonaws.com",
            LOGS_KMS_ACTIONS
        ));

        assert!(action_matches("kms:*", "kms:Decrypt"));
        assert!(action_matches(
            "KMS:generatedatakey*",
            "kms:GenerateDataKey"
        ));
        assert!(action_matches("*", "sts:AssumeRole"));
        assert!(!action_matches("kms:Encrypt*", "kms:Decrypt"));
        assert!(!action_matches("kms:Decrypt", "kms:DecryptX"));
    }

    #[test]
    fn keys_that_cannot_encrypt_are_unusable() {
        // Review of issue 22: a key pending deletion, disabled, or asymmetric passed as usable.
        use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState};
        let key = |state: KeyState, spec: KeySpec| {
            KeyMetadata::builder()
                .key_id("k")
                .key_state(state)
                .key_spec(spec)
                .build()
                .unwrap()
        };
        assert!(key_problems(&key(KeyState::Enabled, KeySpec::SymmetricDefault), true).is_empty());
        let pending = key_problems(
            &key(KeyState::PendingDeletion, KeySpec::SymmetricDefault),
            false,
        );
        assert_eq!(
            pending,
            ["is PendingDeletion: nothing can be encrypted with it (enable it, or cancel its deletion)"]
        );
        assert_eq!(
            key_problems(&key(KeyState::Disabled, KeySpec::SymmetricDefault), true).len(),
            1
        );
        let rsa = key_problems(&key(KeyState::Enabled, KeySpec::Rsa2048), true);
        assert_eq!(
            rsa,
            ["is a RSA_2048 key: CloudWatch Logs encrypts with symmetric keys only"]
        );
        // An asymmetric key elsewhere (a vault) is AWS Backup's business, not judged here.
        assert!(key_problems(&key(KeyState::Enabled, KeySpec::Rsa2048), false).is_empty());
    }

    #[test]
    fn names_come_out_of_arns() {
        assert_eq!(
            secret_name("arn:aws:secretsmanager:eu-west-3:1:secret:hcctl/dev/root:username::"),
            "hcctl/dev/root"
        );
        assert_eq!(
            secret_name("arn:aws:secretsmanager:eu-west-3:1:secret:x"),
            "x"
        );
        // Issue 22, finding 6: a full ARN is looked up by the ARN, without the JSON-key fields.
        assert_eq!(
            secret_id("arn:aws:secretsmanager:eu-west-3:1:secret:hcctl/dev/root-AbC123:password::"),
            "arn:aws:secretsmanager:eu-west-3:1:secret:hcctl/dev/root-AbC123"
        );
        assert_eq!(
            secret_id("arn:aws:secretsmanager:eu-west-3:1:secret:x"),
            "arn:aws:secretsmanager:eu-west-3:1:secret:x"
        );
        assert_eq!(
            role_name("arn:aws:iam::1:role/service-role/AWSBackupDefaultServiceRole"),
            "AWSBackupDefaultServiceRole"
        );
    }
}
