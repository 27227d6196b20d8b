//! Preflight: what the config refers to but hcctl does not manage — the Secrets Manager secrets
//! injected into the containers, the IAM roles (task execution, task, backup selection) and the KMS
//! keys of the log groups and the vault — looked up with read-only calls before deploy changes
//! anything. A task definition that names a missing secret registers fine and fails only when a
//! task starts; the plan says so first. Missing references are warnings, or errors with
//! `--strict`.

use super::{Aws, AwsError, AwsErrorKind};
use crate::config::Config;
use crate::deploy::plan::{Action, Kind, Step};

/// One referenced resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// "secret", "role", "KMS key", "SSM parameter"
    pub what: &'static str,
    pub arn: String,
    /// The config key that names it.
    pub used_by: String,
}

/// Every reference in the config, each once.
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
    add(
        "role",
        &config.ecs.execution_role_arn,
        "ecs.execution_role_arn".into(),
    );
    if let Some(arn) = &config.ecs.task_role_arn {
        add("role", arn, "ecs.task_role_arn".into());
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
    add(
        "role",
        &config.backup.selection.iam_role_arn,
        "backup.selection.iam_role_arn".into(),
    );
    refs
}

/// `arn:…:secret:NAME[:json-key:stage:version]` → NAME (looked up by name in this account).
pub fn secret_name(arn: &str) -> &str {
    arn.split(':').nth(6).unwrap_or(arn)
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

/// Found (`Some(true)`), missing (`Some(false)`), or not checked (`None`: SSM parameters).
pub async fn exists(aws: &Aws, r: &Reference) -> Result<Option<bool>, AwsError> {
    let result = match r.what {
        "secret" => {
            let name = secret_name(&r.arn);
            aws.secrets
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::new(format!("looking up secret {name}"), &e))
        }
        "role" => {
            let name = role_name(&r.arn);
            aws.iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::new(format!("looking up IAM role {name}"), &e))
        }
        "KMS key" => aws
            .kms
            .describe_key()
            .key_id(&r.arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new(format!("looking up KMS key {}", r.arn), &e)),
        _ => return Ok(None),
    };
    match result {
        Ok(()) => Ok(Some(true)),
        Err(e) if missing_code(&e) => Ok(Some(false)),
        Err(e) => Err(e),
    }
}

/// Why a secret cannot be looked up from here, if it cannot: ECS accepts a secret of another
/// region or account by its full ARN, but the lookup runs in the deploy's region and account (the
/// account of `ecs.execution_role_arn`, which must be the task's own).
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

/// Plan steps for the references: found ones unchanged, missing ones `missing`.
pub async fn plan(aws: &Aws, config: &Config) -> Result<Vec<Step>, AwsError> {
    let home_account = config.ecs.execution_role_arn.split(':').nth(4);
    let mut steps = Vec::new();
    for r in collect(config) {
        if let Some(note) = elsewhere(&r, &aws.region, home_account) {
            steps.push(Step::new(
                Kind::Reference,
                label(&r),
                Action::Unchanged,
                vec![note],
            ));
            continue;
        }
        let step = match exists(aws, &r).await? {
            Some(true) => Step::new(Kind::Reference, label(&r), Action::Unchanged, vec![]),
            Some(false) => Step::new(
                Kind::Reference,
                label(&r),
                Action::Missing,
                vec![format!(
                    "not found ({}): create it before the tasks start",
                    r.used_by
                )],
            ),
            None => Step::new(
                Kind::Reference,
                label(&r),
                Action::Unchanged,
                vec!["not checked".to_string()],
            ),
        };
        steps.push(step);
    }
    Ok(steps)
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
    fn names_come_out_of_arns() {
        assert_eq!(
            secret_name("arn:aws:secretsmanager:eu-west-3:1:secret:hcctl/dev/root:username::"),
            "hcctl/dev/root"
        );
        assert_eq!(
            secret_name("arn:aws:secretsmanager:eu-west-3:1:secret:x"),
            "x"
        );
        assert_eq!(
            role_name("arn:aws:iam::1:role/service-role/AWSBackupDefaultServiceRole"),
            "AWSBackupDefaultServiceRole"
        );
    }
}
