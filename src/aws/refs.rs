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

/// Plan steps for the references: found ones unchanged, missing ones `missing`.
pub async fn plan(aws: &Aws, config: &Config) -> Result<Vec<Step>, AwsError> {
    let mut steps = Vec::new();
    for r in collect(config) {
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
