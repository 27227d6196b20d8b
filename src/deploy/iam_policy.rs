//! `hcctl iam-policy`: the IAM policy the person or pipeline running `hcctl deploy`, `destroy`,
//! `run`, `logs`, `backup-status` and `backup run` needs — the actions hcctl calls, on the resources this config
//! names (derived the way deploy derives them). `*` appears only where the action cannot be
//! scoped to a resource (AWS's service authorization reference lists no resource type for it) or
//! where the resource's id is assigned by AWS at creation; each such statement says why.
//!
//! Pure: the config, the region and the account in, the policy out (the account comes from
//! `--account-id` or STS GetCallerIdentity, which needs no permission).

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Config, Job, RoleKind, SecretRole};

/// One statement, with why it is there (the text form prints it; JSON has no comments).
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub sid: &'static str,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    /// `Condition`, when the statement has one.
    pub condition: Option<Value>,
    /// What it is for, and why `*` where it is used.
    pub why: &'static str,
    /// Checked by AWS on hcctl's behalf (a role passed, a network interface EFS creates, the
    /// hosted zone Cloud Map makes), not an action hcctl calls itself.
    pub indirect: bool,
}

impl Statement {
    fn json(&self) -> Value {
        let mut s = json!({
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": if self.resources.len() == 1 { json!(self.resources[0]) } else { json!(self.resources) },
        });
        if let Some(c) = &self.condition {
            s["Condition"] = c.clone();
        }
        s
    }
}

/// Every statement, in the order deploy touches the services.
pub fn statements(config: &Config, region: &str, account: &str) -> Vec<Statement> {
    let r = region;
    let a = account;
    let star = || vec!["*".to_string()];
    let prefix = config.resource_name("");
    let mut out =
        vec![
        Statement {
            sid: "ReadTheNetwork",
            actions: vec!["ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
            resources: star(),
            condition: None,
            indirect: false,
        why: "the VPC, subnets and security groups; EC2's Describe actions cannot be scoped \
                  to a resource (AWS requires *)",
        },
        Statement {
            sid: "CreateSecurityGroups",
            actions: vec!["ec2:CreateSecurityGroup"],
            resources: vec![
                format!("arn:aws:ec2:{r}:{a}:vpc/*"),
                format!("arn:aws:ec2:{r}:{a}:security-group/*"),
            ],
            condition: None,
            indirect: false,
        why: "the app, mongo and efs groups; their ids are assigned by EC2 at creation, so \
                  the ARN ends in *",
        },
        Statement {
            sid: "TagSecurityGroupsOnCreation",
            actions: vec!["ec2:CreateTags"],
            resources: vec![format!("arn:aws:ec2:{r}:{a}:security-group/*")],
            condition: Some(json!({"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}})),
            indirect: true,
        why: "the tags a new group is created with, and no other tagging",
        },
        Statement {
            sid: "ManageSecurityGroups",
            actions: vec![
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:CreateTags",
                "ec2:DeleteTags",
                "ec2:DeleteSecurityGroup",
            ],
            resources: vec![format!("arn:aws:ec2:{r}:{a}:security-group/*")],
            condition: Some(json!({"StringLike": {"aws:ResourceTag/Name": format!("{prefix}*")}})),
            indirect: false,
        why: "only the groups hcctl tagged Name=<project>-<environment>-…",
        },
        Statement {
            sid: "ReadFileSystems",
            actions: vec![
                "elasticfilesystem:DescribeFileSystems",
                "elasticfilesystem:DescribeMountTargets",
                "elasticfilesystem:DescribeMountTargetSecurityGroups",
                "elasticfilesystem:DescribeAccessPoints",
                "elasticfilesystem:DescribeBackupPolicy",
                "elasticfilesystem:DescribeFileSystemPolicy",
            ],
            resources: vec![
                format!("arn:aws:elasticfilesystem:{r}:{a}:file-system/*"),
                format!("arn:aws:elasticfilesystem:{r}:{a}:access-point/*"),
            ],
            condition: None,
            indirect: false,
        why: "finding MongoDB's file system by its creation token needs every file system of \
                  the account (its id is assigned by EFS)",
        },
        Statement {
            sid: "ManageTheFileSystem",
            actions: vec![
                "elasticfilesystem:CreateFileSystem",
                "elasticfilesystem:TagResource",
                "elasticfilesystem:UntagResource",
                "elasticfilesystem:PutBackupPolicy",
                "elasticfilesystem:PutFileSystemPolicy",
                "elasticfilesystem:CreateMountTarget",
                "elasticfilesystem:ModifyMountTargetSecurityGroups",
                "elasticfilesystem:DeleteMountTarget",
                "elasticfilesystem:CreateAccessPoint",
                "elasticfilesystem:DeleteAccessPoint",
                "elasticfilesystem:DeleteFileSystem",
            ],
            resources: vec![
                format!("arn:aws:elasticfilesystem:{r}:{a}:file-system/*"),
                format!("arn:aws:elasticfilesystem:{r}:{a}:access-point/*"),
            ],
            condition: None,
            indirect: false,
        why: "MongoDB's file system, mount targets and access point (ids assigned by EFS)",
        },
        Statement {
            sid: "MountTargetNetworkInterfaces",
            actions: vec![
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeNetworkInterfaceAttribute",
                "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:DeleteNetworkInterface",
            ],
            resources: star(),
            condition: None,
            indirect: true,
        why: "EFS creates a mount target's network interface with the caller's permissions; \
                  AWS documents these on * for CreateMountTarget",
        },
    ];
    let groups: Vec<String> = [&config.log_groups.mongo, &config.log_groups.app]
        .iter()
        .map(|g| format!("arn:aws:logs:{r}:{a}:log-group:{}", g.name))
        .collect();
    out.push(Statement {
        sid: "ReadLogGroups",
        actions: vec!["logs:DescribeLogGroups"],
        resources: vec![format!("arn:aws:logs:{r}:{a}:log-group:*")],
        condition: None,
        indirect: false,
        why: "DescribeLogGroups is authorized on the account's log groups as a whole",
    });
    out.push(Statement {
        sid: "ManageLogGroups",
        actions: vec![
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "logs:AssociateKmsKey",
            "logs:DisassociateKmsKey",
            "logs:ListTagsForResource",
            "logs:TagResource",
            "logs:UntagResource",
            "logs:DeleteLogGroup",
        ],
        resources: groups
            .iter()
            .flat_map(|g| [g.clone(), format!("{g}:*")])
            .collect(),
        condition: None,
        indirect: false,
        why: "the two log groups",
    });
    // A secret's ARN ends in -?????? (Secrets Manager's random suffix) once it exists; before,
    // CreateSecret and the lookup are authorized on the name alone.
    let secrets: Vec<String> = SecretRole::ALL
        .iter()
        .flat_map(|s| {
            let arn = format!(
                "arn:aws:secretsmanager:{r}:{a}:secret:{}",
                config.secret_name(*s)
            );
            [arn.clone(), format!("{arn}-??????")]
        })
        .collect();
    out.push(Statement {
        sid: "ManageGeneratedSecrets",
        actions: vec![
            "secretsmanager:DescribeSecret",
            "secretsmanager:CreateSecret",
            "secretsmanager:UpdateSecret",
            "secretsmanager:TagResource",
            "secretsmanager:UntagResource",
            "secretsmanager:RestoreSecret",
            "secretsmanager:DeleteSecret",
        ],
        resources: secrets,
        condition: None,
        indirect: false,
        why: "the root, writer and reader secrets (the -?????? is Secrets Manager's random \
              suffix); never GetSecretValue: hcctl writes a password once and never reads it",
    });
    let bucket = format!("arn:aws:s3:::{}", config.drops_bucket(a));
    out.push(Statement {
        sid: "TheDropsBucket",
        actions: vec![
            "s3:ListBucket",
            "s3:CreateBucket",
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "s3:GetBucketVersioning",
            "s3:PutBucketVersioning",
            "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:GetBucketTagging",
            "s3:PutBucketTagging",
            "s3:ListBucketVersions",
            "s3:DeleteBucket",
        ],
        resources: vec![bucket.clone()],
        condition: None,
        indirect: false,
        why: "the drops bucket and its settings (HeadBucket is s3:ListBucket); destroy deletes \
              it only when empty or with --delete-data",
    });
    out.push(Statement {
        sid: "EmptyTheDropsBucket",
        actions: vec!["s3:DeleteObject", "s3:DeleteObjectVersion"],
        resources: vec![format!("{bucket}/*")],
        condition: None,
        indirect: false,
        why: "destroy --delete-data only: every version of every object, before the bucket",
    });
    out.push(Statement {
        sid: "ReadTheRunReports",
        actions: vec!["s3:GetObject"],
        resources: vec![format!("{bucket}/reports/*")],
        condition: None,
        indirect: false,
        why: "hcctl run reads the reports its tasks wrote (a --report elsewhere needs \
              s3:GetObject there too)",
    });
    if config.backup.dumps.is_some() {
        out.push(Statement {
            sid: "ReadTheDrillReports",
            actions: vec!["s3:GetObject"],
            resources: vec![format!("{bucket}/drills/*")],
            condition: None,
            indirect: false,
            why: "backup-status reads the newest restore drill's report (it lists dumps/ and \
                  drills/ with TheDropsBucket's s3:ListBucket; it never reads a dump)",
        });
    }
    let mut referenced: Vec<String> = [&config.containers.mongo, &config.containers.app]
        .iter()
        .flat_map(|c| c.secrets.values())
        .filter(|arn| arn.split(':').nth(2) == Some("secretsmanager"))
        .map(|arn| format!("{}*", crate::resources::reference::secret_id(arn)))
        .collect();
    referenced.sort();
    referenced.dedup();
    if !referenced.is_empty() {
        out.push(Statement {
            sid: "LookUpReferencedSecrets",
            actions: vec!["secretsmanager:DescribeSecret"],
            resources: referenced,
            condition: None,
            indirect: false,
            why: "the secrets the containers name: checked to exist before deploy changes anything",
        });
    }
    let roles: Vec<String> = RoleKind::ALL
        .iter()
        .filter(|k| config.adopted_role(**k).is_none())
        .map(|k| format!("arn:aws:iam::{a}:role/{}", config.role_name(*k)))
        .collect();
    if !roles.is_empty() {
        out.push(Statement {
            sid: "ManageRoles",
            actions: vec![
                "iam:GetRole",
                "iam:CreateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListRoleTags",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:DetachRolePolicy",
                "iam:DeleteRole",
            ],
            resources: roles.clone(),
            condition: None,
            indirect: false,
            why: "the roles hcctl creates (<project>-<environment>-execution, -mongo-task, \
                  -app-task, -backup, and -scheduler, which deploy also deletes once no \
                  schedule is left)",
        });
    }
    let adopted: Vec<String> = RoleKind::ALL
        .iter()
        .filter_map(|k| config.adopted_role(*k).map(str::to_string))
        .collect();
    if !adopted.is_empty() {
        out.push(Statement {
            sid: "CheckAdoptedRoles",
            actions: vec![
                "iam:GetRole",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:SimulatePrincipalPolicy",
            ],
            resources: adopted.clone(),
            condition: None,
            indirect: false,
            why: "the roles the config adopts: their trust and permissions are checked",
        });
    }
    // The scheduler's role is passed to EventBridge Scheduler (below), never to ECS or Backup.
    let scheduler_role = match config.adopted_role(RoleKind::Scheduler) {
        Some(arn) => arn.to_string(),
        None => format!(
            "arn:aws:iam::{a}:role/{}",
            config.role_name(RoleKind::Scheduler)
        ),
    };
    let mut passed: Vec<String> = roles;
    passed.extend(adopted);
    passed.retain(|r| *r != scheduler_role);
    out.push(Statement {
        sid: "PassRolesToEcsAndBackup",
        actions: vec!["iam:PassRole"],
        resources: passed,
        condition: Some(json!({"StringEquals": {"iam:PassedToService": [
            "ecs-tasks.amazonaws.com", "backup.amazonaws.com"
        ]}})),
        indirect: true,
        why: "task definitions (and the tasks hcctl run starts) name the task roles, the \
              selection the backup role: only to those two services",
    });
    let cluster = &config.ecs.cluster;
    out.push(Statement {
        sid: "ManageTheCluster",
        actions: vec![
            "ecs:DescribeClusters",
            "ecs:CreateCluster",
            "ecs:UpdateClusterSettings",
            "ecs:DeleteCluster",
            "ecs:TagResource",
            "ecs:UntagResource",
        ],
        resources: vec![format!("arn:aws:ecs:{r}:{a}:cluster/{cluster}")],
        condition: None,
        indirect: false,
        why: "the cluster",
    });
    out.push(Statement {
        sid: "TaskDefinitions",
        actions: vec![
            "ecs:RegisterTaskDefinition",
            "ecs:DeregisterTaskDefinition",
            "ecs:DescribeTaskDefinition",
            "ecs:ListTaskDefinitions",
        ],
        resources: star(),
        condition: None,
        indirect: false,
        why: "ECS authorizes these four on * only (AWS requires it)",
    });
    out.push(Statement {
        sid: "TagTaskDefinitions",
        actions: vec!["ecs:TagResource", "ecs:UntagResource"],
        resources: ["mongo", "app"]
            .iter()
            .map(|c| format!("arn:aws:ecs:{r}:{a}:task-definition/{}:*", config.family(c)))
            .collect(),
        condition: None,
        indirect: true,
        why: "tags on the two families' revisions",
    });
    let service = config.service_name();
    out.push(Statement {
        sid: "TheMongoService",
        actions: vec![
            "ecs:DescribeServices",
            "ecs:CreateService",
            "ecs:UpdateService",
            "ecs:DeleteService",
            "ecs:TagResource",
            "ecs:UntagResource",
        ],
        resources: vec![format!("arn:aws:ecs:{r}:{a}:service/{cluster}/{service}")],
        condition: None,
        indirect: false,
        why: "the MongoDB service",
    });
    out.push(Statement {
        sid: "FollowTheTasks",
        actions: vec!["ecs:ListTasks", "ecs:DescribeTasks"],
        resources: vec![
            format!("arn:aws:ecs:{r}:{a}:container-instance/{cluster}/*"),
            format!("arn:aws:ecs:{r}:{a}:task/{cluster}/*"),
        ],
        condition: None,
        indirect: false,
        why: "the tasks hcctl run follows, and why a failed rollout's tasks stopped (task ids \
              are assigned by ECS)",
    });
    let cluster_arn = format!("arn:aws:ecs:{r}:{a}:cluster/{cluster}");
    out.push(Statement {
        sid: "RunTasks",
        actions: vec!["ecs:RunTask"],
        resources: vec![format!(
            "arn:aws:ecs:{r}:{a}:task-definition/{}:*",
            config.family("app")
        )],
        condition: Some(json!({"ArnEquals": {"ecs:cluster": cluster_arn}})),
        indirect: false,
        why: "hcctl run: the app's task definition, on this cluster only",
    });
    out.push(Statement {
        sid: "StopRunTasks",
        actions: vec!["ecs:StopTask"],
        resources: vec![format!("arn:aws:ecs:{r}:{a}:task/{cluster}/*")],
        condition: None,
        indirect: false,
        why: "hcctl run --timeout stops what did not end in time, and the shards already started \
              when another could not start",
    });
    out.push(Statement {
        sid: "TagRunTasksOnStart",
        actions: vec!["ecs:TagResource"],
        resources: vec![format!("arn:aws:ecs:{r}:{a}:task/{cluster}/*")],
        condition: Some(json!({"StringEquals": {"ecs:CreateAction": "RunTask"}})),
        indirect: true,
        why: "the tags a started task carries (the config's, the run id, the shard): only when \
              RunTask creates it",
    });
    out.push(Statement {
        sid: "ReadTheRunLogs",
        actions: vec!["logs:GetLogEvents"],
        resources: {
            let group = format!(
                "arn:aws:logs:{r}:{a}:log-group:{}",
                config.log_groups.app.name
            );
            vec![group.clone(), format!("{group}:*")]
        },
        condition: None,
        indirect: false,
        why: "hcctl run streams its tasks' lines from the app log group (its streams)",
    });
    out.push(Statement {
        sid: "ReadTheContainerLogs",
        actions: vec!["logs:DescribeLogStreams", "logs:FilterLogEvents"],
        resources: [&config.log_groups.mongo.name, &config.log_groups.app.name]
            .iter()
            .flat_map(|g| {
                let group = format!("arn:aws:logs:{r}:{a}:log-group:{g}");
                [group.clone(), format!("{group}:*")]
            })
            .collect(),
        condition: None,
        indirect: false,
        why: "hcctl logs mongo|app: the two log groups' streams and events",
    });
    out.push(Statement {
        sid: "TheSchedules",
        actions: vec![
            "scheduler:GetSchedule",
            "scheduler:CreateSchedule",
            "scheduler:UpdateSchedule",
            "scheduler:DeleteSchedule",
        ],
        resources: Job::ALL
            .iter()
            .map(|j| {
                format!(
                    "arn:aws:scheduler:{r}:{a}:schedule/{}/{}",
                    crate::resources::schedule::GROUP,
                    config.schedule_name(*j)
                )
            })
            .collect(),
        condition: None,
        indirect: false,
        why: "the ingest, dump and drill schedules (deploy reads each even when the config \
              does not ask for it, to delete one it no longer asks for)",
    });
    if !config.jobs().is_empty() {
        out.push(Statement {
            sid: "PassTheSchedulerRole",
            actions: vec!["iam:PassRole"],
            resources: vec![scheduler_role],
            condition: Some(json!({"StringEquals": {
                "iam:PassedToService": "scheduler.amazonaws.com"
            }})),
            indirect: true,
            why: "the schedule names its role: only to EventBridge Scheduler",
        });
    }
    out.push(Statement {
        sid: "FindCloudMap",
        actions: vec![
            "servicediscovery:ListNamespaces",
            "servicediscovery:ListServices",
            "servicediscovery:GetOperation",
            "servicediscovery:CreatePrivateDnsNamespace",
        ],
        resources: star(),
        condition: None,
        indirect: false,
        why: "Cloud Map authorizes listing, operations and namespace creation on * only",
    });
    out.push(Statement {
        sid: "ManageCloudMap",
        actions: vec![
            "servicediscovery:GetNamespace",
            "servicediscovery:GetService",
            "servicediscovery:CreateService",
            "servicediscovery:UpdateService",
            "servicediscovery:DeleteService",
            "servicediscovery:DeleteNamespace",
            "servicediscovery:ListTagsForResource",
            "servicediscovery:TagResource",
            "servicediscovery:UntagResource",
        ],
        resources: vec![
            format!("arn:aws:servicediscovery:{r}:{a}:namespace/*"),
            format!("arn:aws:servicediscovery:{r}:{a}:service/*"),
        ],
        condition: None,
        indirect: false,
        why: "the namespace and the mongo service in it (ids assigned by Cloud Map)",
    });
    out.push(Statement {
        sid: "CloudMapPrivateDns",
        actions: vec![
            "route53:CreateHostedZone",
            "route53:GetHostedZone",
            "route53:ListHostedZonesByName",
            "route53:DeleteHostedZone",
            "route53:ChangeResourceRecordSets",
            "route53:AssociateVPCWithHostedZone",
            "ec2:DescribeVpcAttribute",
        ],
        resources: star(),
        condition: None,
        indirect: true,
        why: "Cloud Map makes the private hosted zone with the caller's permissions (AWS \
              documents these on *)",
    });
    let vault = format!(
        "arn:aws:backup:{r}:{a}:backup-vault:{}",
        config.backup.vault.name
    );
    out.push(Statement {
        sid: "TheVault",
        actions: vec![
            "backup:DescribeBackupVault",
            "backup:CreateBackupVault",
            "backup:DeleteBackupVault",
            "backup:ListTags",
            "backup:TagResource",
            "backup:UntagResource",
            "backup:ListRecoveryPointsByBackupVault",
            "backup:DeleteRecoveryPoint",
            "backup:StartBackupJob",
            "backup:GetBackupVaultNotifications",
            "backup:PutBackupVaultNotifications",
            "backup:DeleteBackupVaultNotifications",
        ],
        resources: vec![vault, format!("arn:aws:backup:{r}:{a}:recovery-point:*")],
        condition: None,
        indirect: false,
        why: "the vault and its recovery points (deleted only by destroy --delete-data)",
    });
    out.push(Statement {
        sid: "ThePlan",
        actions: vec![
            "backup:GetBackupPlan",
            "backup:CreateBackupPlan",
            "backup:UpdateBackupPlan",
            "backup:DeleteBackupPlan",
            "backup:ListBackupSelections",
            "backup:GetBackupSelection",
            "backup:CreateBackupSelection",
            "backup:DeleteBackupSelection",
        ],
        resources: vec![format!("arn:aws:backup:{r}:{a}:backup-plan:*")],
        condition: None,
        indirect: false,
        why: "the plan and its selection (the plan's id is assigned by AWS Backup)",
    });
    out.push(Statement {
        sid: "ListBackups",
        actions: vec![
            "backup:ListBackupPlans",
            "backup:ListBackupJobs",
            "backup:DescribeBackupJob",
        ],
        resources: star(),
        condition: None,
        indirect: false,
        why: "AWS Backup authorizes listing plans and jobs on * only (AWS requires *)",
    });
    out.push(Statement {
        sid: "BackupVaultStorage",
        actions: vec!["backup-storage:MountCapsule"],
        resources: star(),
        condition: None,
        indirect: true,
        why: "CreateBackupVault needs backup-storage:MountCapsule, on * (AWS requires *)",
    });
    let app_group = format!(
        "arn:aws:logs:{r}:{a}:log-group:{}",
        config.log_groups.app.name
    );
    out.push(Statement {
        sid: "TheMetricFilters",
        actions: vec![
            "logs:DescribeMetricFilters",
            "logs:PutMetricFilter",
            "logs:DeleteMetricFilter",
        ],
        resources: vec![app_group.clone(), format!("{app_group}:*")],
        condition: None,
        indirect: false,
        why: "the app log group's metric filters (its JSON lines → the alarms' metrics)",
    });
    let topic = format!("arn:aws:sns:{r}:{a}:{}", config.alerts_topic());
    out.push(Statement {
        sid: "TheAlertsTopic",
        actions: vec![
            "sns:CreateTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:DeleteTopic",
            "sns:ListTagsForResource",
            "sns:TagResource",
            "sns:UntagResource",
            "sns:ListSubscriptionsByTopic",
            "sns:Subscribe",
        ],
        resources: vec![topic.clone()],
        condition: None,
        indirect: false,
        why: "the alerts topic and its subscriptions",
    });
    out.push(Statement {
        sid: "UnsubscribeFromTheAlertsTopic",
        actions: vec!["sns:Unsubscribe"],
        resources: vec![format!("{topic}:*")],
        condition: None,
        indirect: false,
        why: "an email or HTTPS subscription the config no longer lists (subscription ids are \
              assigned by SNS)",
    });
    out.push(Statement {
        sid: "TheAlarms",
        actions: vec![
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:ListTagsForResource",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
        ],
        resources: crate::resources::alarm::names(config)
            .iter()
            .map(|n| format!("arn:aws:cloudwatch:{r}:{a}:alarm:{n}"))
            .collect(),
        condition: None,
        indirect: false,
        why: "the seven alarms hcctl names",
    });
    out.push(Statement {
        sid: "ReadTheAlarms",
        actions: vec!["cloudwatch:DescribeAlarms"],
        resources: star(),
        condition: None,
        indirect: false,
        why: "DescribeAlarms is authorized on * only (AWS requires *); hcctl asks for its own \
              alarms by name",
    });
    let alias = crate::resources::alerts_key::alias(config);
    let tag = crate::resources::alerts_key::TAG;
    let owner = config.resource_name("alerts");
    out.push(Statement {
        sid: "CreateTheAlertsKey",
        actions: vec!["kms:CreateKey", "kms:TagResource"],
        resources: star(),
        condition: Some(json!({"StringEquals": {format!("aws:RequestTag/{tag}"): owner}})),
        indirect: false,
        why: "the alerts topic's key, created with its tag (CreateKey has no resource: AWS \
              requires *, so the tag it must carry is the condition)",
    });
    out.push(Statement {
        sid: "TheAlertsKey",
        actions: vec![
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:PutKeyPolicy",
            "kms:GetKeyRotationStatus",
            "kms:EnableKeyRotation",
            "kms:ListResourceTags",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:EnableKey",
            "kms:CancelKeyDeletion",
            "kms:ScheduleKeyDeletion",
            "kms:CreateAlias",
            "kms:DeleteAlias",
        ],
        resources: vec![format!("arn:aws:kms:{r}:{a}:key/*")],
        condition: Some(json!({"StringEquals": {format!("aws:ResourceTag/{tag}"): owner}})),
        indirect: false,
        why: "the alerts key only: KMS assigns its id (the ARN ends in *), so the tag hcctl \
              creates it with is the condition",
    });
    out.push(Statement {
        sid: "TheAlertsKeyAlias",
        actions: vec!["kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey"],
        resources: vec![format!("arn:aws:kms:{r}:{a}:{alias}")],
        condition: None,
        indirect: false,
        why: "the alerts key's alias",
    });
    let mut keys: Vec<String> = [
        config.log_groups.mongo.kms_key_arn.clone(),
        config.log_groups.app.kms_key_arn.clone(),
        config.backup.vault.kms_key_arn.clone(),
        config.secrets.kms_key_arn.clone(),
        config
            .containers
            .mongo
            .volume
            .as_ref()
            .and_then(|v| v.kms_key_arn.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    keys.sort();
    keys.dedup();
    if !keys.is_empty() {
        out.push(Statement {
            sid: "UseTheConfiguredKeys",
            actions: vec![
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:CreateGrant",
                "kms:GenerateDataKey",
                "kms:Decrypt",
            ],
            resources: keys,
            condition: None,
            indirect: false,
            why: "the customer-managed keys the config names: checked, and used by EFS, Secrets \
                  Manager and AWS Backup on the caller's behalf",
        });
    }
    out
}

/// The policy document.
pub fn document(config: &Config, region: &str, account: &str) -> Value {
    let statements: Vec<Value> = statements(config, region, account)
        .iter()
        .map(Statement::json)
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The text form: each statement, why it is there, its actions and resources.
pub fn text(config: &Config, region: &str, account: &str) -> String {
    let mut out = format!(
        "The IAM policy hcctl deploy, destroy, run, backup-status, backup audit and backup run \
         need for {}-{} in {region}, account {account}\n(JSON: hcctl iam-policy --format \
         json)\n\n",
        config.project, config.environment
    );
    for s in statements(config, region, account) {
        out.push_str(&format!(
            "{}: {}\n",
            s.sid,
            s.why.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
        if s.indirect {
            out.push_str("  (checked by AWS on hcctl's behalf, not called by hcctl itself)\n");
        }
        out.push_str(&format!("  allow {}\n", s.actions.join(", ")));
        out.push_str(&format!("  on    {}\n", s.resources.join(", ")));
        if let Some(c) = &s.condition {
            out.push_str(&format!("  if    {c}\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_this_configs_resources_and_star_only_where_explained() {
        let config = crate::config::tests_support::example_config();
        let doc = document(&config, "eu-west-3", "111111111111");
        let text = doc.to_string();
        assert!(
            text.contains("arn:aws:ecs:eu-west-3:111111111111:service/hcctl-dev/hcctl-dev-mongo")
        );
        assert!(text.contains("arn:aws:iam::111111111111:role/hcctl-dev-execution"));
        assert!(text.contains("secret:hcctl/dev/mongo-root-??????"));
        assert!(
            !text.contains("GetSecretValue"),
            "hcctl never reads a secret's value"
        );
        // Every statement on "*" says why AWS requires it.
        for s in statements(&config, "eu-west-3", "111111111111") {
            if s.resources.iter().any(|r| r == "*") {
                assert!(s.why.contains("*"), "{} is on * without saying why", s.sid);
            }
        }
        // A policy document IAM takes: at most 6144 characters without whitespace for a managed
        // policy is not required here, but the statement ids are unique.
        let sids: Vec<&str> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        let mut unique = sids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(sids.len(), unique.len());
    }
}
