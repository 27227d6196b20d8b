//! `hcctl deploy`, `destroy` and `render` against a real AWS emulator: every resource is
//! described back from the service and compared with the config.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::TaskDefinitionField;
use hcctl::deploy::plan;
use hcctl::resources::{
    backup_plan, backup_selection, backup_vault, bucket, cluster, file_system, log_group, secret,
    security_group, task_definition,
};
use serde_json::Value;

use crate::awsenv::{config_text, create_key, empty_account_config_text, trust_policy, AwsEnv};
use crate::util::{assert_exit, assert_success, stderr, stdout};

/// The split configuration: the log group, the database secret, the execution role and the KMS
/// key exist where the standard variables send their services (LocalStack) and not on the
/// emulator that serves ECS.
async fn assert_only_on_localstack(env: &AwsEnv, logs_url: &str, ecs_url: &str) {
    let emulator = hcctl::aws::Aws::connect(&hcctl::aws::Target {
        region: Some("eu-west-3".into()),
        endpoint_url: Some(ecs_url.to_string()),
    })
    .await;
    let group = env.log_group("mongo");
    assert!(log_group::observe(&env.aws.logs, &group)
        .await
        .unwrap()
        .is_some());
    assert!(
        log_group::observe(&emulator.logs, &group)
            .await
            .unwrap()
            .is_none(),
        "log group found on {ecs_url}, expected only on {logs_url}"
    );
    let secret = format!("{}/root", env.project);
    let described = |aws: &hcctl::aws::Aws| aws.secrets.describe_secret().secret_id(&secret).send();
    assert!(
        described(&env.aws).await.is_ok(),
        "secret {secret} on LocalStack"
    );
    let err = described(&emulator)
        .await
        .expect_err("the secret is not on the emulator");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
    let role = format!("{}-exec", env.project);
    let got = |aws: &hcctl::aws::Aws| aws.iam.get_role().role_name(&role).send();
    assert!(got(&env.aws).await.is_ok(), "role {role} on LocalStack");
    let err = got(&emulator)
        .await
        .expect_err("the role is not on the emulator");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_no_such_entity_exception()),
        "{err:?}"
    );
    let key = |aws: &hcctl::aws::Aws| aws.kms.describe_key().key_id(&env.kms_key).send();
    assert!(key(&env.aws).await.is_ok(), "KMS key on LocalStack");
    assert!(
        key(&emulator).await.is_err(),
        "KMS key {} found on {ecs_url}, expected only on {logs_url}",
        env.kms_key
    );
}

/// The managed resources' actions (references — secrets, roles — apart).
fn actions(plan: &Value) -> BTreeMap<String, String> {
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] != "reference")
        .map(|s| {
            (
                format!(
                    "{} {}",
                    s["kind"].as_str().unwrap(),
                    s["name"].as_str().unwrap()
                ),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Described from each service: none of the test's resources exists.
async fn assert_nothing_exists(env: &AwsEnv) {
    for which in ["mongo", "app"] {
        let group = log_group::observe(&env.aws.logs, &env.log_group(which))
            .await
            .unwrap();
        assert!(group.is_none(), "log group {which} exists");
        let revisions = task_definition::active_revisions(&env.aws.ecs, &env.name(which))
            .await
            .unwrap();
        assert!(revisions.is_empty(), "{revisions:?}");
    }
    assert!(!cluster::observe(&env.aws.ecs, &env.cluster())
        .await
        .unwrap());
    let vault = backup_vault::observe(&env.aws.backup, &env.name("vault"))
        .await
        .unwrap();
    assert!(vault.is_none(), "{vault:?}");
    let plan = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap();
    assert!(plan.is_none(), "{plan:?}");
    let drops = bucket::observe(&env.aws.s3, &env.drops_bucket(), false)
        .await
        .unwrap();
    assert!(drops.is_none(), "{drops:?}");
    let config = env.parsed_config();
    let fs = file_system::find(&env.aws, &config).await.unwrap();
    assert!(fs.is_none(), "{fs:?}");
    let vpc = hcctl::resources::network::observe(&env.aws, &config)
        .await
        .unwrap()
        .vpc_id
        .expect("the emulator's default VPC");
    for tier in security_group::TIERS {
        let g = security_group::observe(&env.aws.ec2, &vpc, &env.name(tier))
            .await
            .unwrap();
        assert!(g.is_none(), "security group {tier}: {g:?}");
    }
}

/// What the test config creates on an empty account: 3 security groups, the file system, its 3
/// mount targets (one per zone of the emulator's default VPC) and access point, 2 log groups,
/// 3 secrets, the drops bucket, the mongo task role (the others are adopted), the cluster, the Cloud Map namespace
/// and service, 2 task definitions, the ECS service, the vault, plan and selection. The network is
/// only read.
const CREATED: u64 = 24;

fn mutating(plan: &Value) -> u64 {
    plan["outcome"]["api_calls"]["mutating"]
        .as_u64()
        .expect("mutating count")
}

#[tokio::test]
async fn deploy_creates_what_the_config_says_and_a_second_deploy_changes_nothing() {
    let env = AwsEnv::new().await;
    let first = env.deploy(&["--strict"]);
    let refs: Vec<(&str, &str)> = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "reference")
        .map(|s| (s["name"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    let root = format!("secret {}/root", env.project);
    let exec = format!("role {}-exec", env.project);
    assert!(refs.contains(&(root.as_str(), "unchanged")), "{refs:?}");
    assert!(refs.contains(&(exec.as_str(), "unchanged")), "{refs:?}");
    assert!(
        refs.contains(&("role AWSBackupDefaultServiceRole", "unchanged")),
        "{refs:?}"
    );
    let acts = actions(&first);
    assert_eq!(acts.len() as u64, CREATED + 1, "{acts:?}");
    assert_eq!(
        acts.get("network default").map(String::as_str),
        Some("unchanged")
    );
    assert!(
        acts.iter()
            .all(|(k, a)| a == "create" || k == "network default"),
        "{acts:?}"
    );
    assert_eq!(first["outcome"]["created"], CREATED);

    // Log groups: retention and tags.
    for (which, days) in [("mongo", 30), ("app", 90)] {
        let g = log_group::observe(&env.aws.logs, &env.log_group(which))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("log group {which} missing"));
        assert_eq!(g.retention_days, Some(days));
        let key = (which == "app").then(|| env.kms_key.clone());
        assert_eq!(g.kms_key_arn, key, "log group {which} KMS key");
        assert_eq!(g.tags.get("Project"), Some(&env.project));
        assert_eq!(
            g.tags.get("DataClassification").map(String::as_str),
            Some("PHI")
        );
    }

    // In the split configuration (LocalStack for Logs, Secrets Manager, KMS and IAM; the emulator
    // for ECS and Backup), what lives on LocalStack is absent from the emulator. scripts/test sets
    // HCCTL_TEST_EXPECT_SPLIT there, so that a routing that fell back to one endpoint fails.
    let split = (
        std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"),
        std::env::var("AWS_ENDPOINT_URL_ECS"),
    );
    if std::env::var("HCCTL_TEST_EXPECT_SPLIT").as_deref() == Ok("1") {
        assert!(
            matches!(&split, (Ok(logs), Ok(ecs)) if logs != ecs),
            "HCCTL_TEST_EXPECT_SPLIT=1 but the per-service endpoints are not split: {split:?}"
        );
    }
    if let (Ok(logs_url), Ok(ecs_url)) = split {
        if logs_url != ecs_url {
            assert_only_on_localstack(&env, &logs_url, &ecs_url).await;
        }
    }

    // The drops bucket, described back: as the config wants it, and, asked of S3 directly,
    // private, encrypted, TLS-only and versioned.
    let config = env.parsed_config();
    let (name, wanted) = bucket::desired(&config, "000000000000");
    assert_eq!(name, env.drops_bucket());
    let seen = bucket::observe(&env.aws.s3, &name, false)
        .await
        .unwrap()
        .expect("the drops bucket");
    assert_eq!(seen.settings, wanted);
    let s3 = &env.aws.s3;
    let block = s3
        .get_public_access_block()
        .bucket(&name)
        .send()
        .await
        .expect("public access block");
    let block = block
        .public_access_block_configuration()
        .expect("a public access block");
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc = s3
        .get_bucket_encryption()
        .bucket(&name)
        .send()
        .await
        .expect("bucket encryption");
    let rule = &enc
        .server_side_encryption_configuration()
        .expect("encryption configuration")
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().as_str()),
        Some("AES256")
    );
    let policy = s3
        .get_bucket_policy()
        .bucket(&name)
        .send()
        .await
        .expect("bucket policy");
    let policy: Value = serde_json::from_str(policy.policy().unwrap_or("")).expect("JSON policy");
    assert_eq!(policy["Statement"][0]["Effect"], "Deny", "{policy}");
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"], "false",
        "{policy}"
    );
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&name)
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status().map(|v| v.as_str()), Some("Enabled"));
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&name)
        .send()
        .await
        .expect("lifecycle");
    let expiring: Vec<(Option<&str>, Option<i32>)> = lifecycle
        .rules()
        .iter()
        .filter_map(|r| {
            r.expiration()
                .map(|e| (r.filter().and_then(|f| f.prefix()), e.days()))
        })
        .collect();
    assert!(
        expiring.contains(&(Some("quarantine/"), Some(30))),
        "{expiring:?}"
    );
    assert!(
        expiring.contains(&(Some("reports/"), Some(30))),
        "{expiring:?}"
    );

    // Cluster.
    assert!(cluster::observe(&env.aws.ecs, &env.cluster())
        .await
        .unwrap());

    // MongoDB as an ECS service, reachable by name, followed until stable (--wait, the default).
    let state = first["outcome"]["service"].as_str().unwrap_or("");
    assert!(
        state.starts_with(&format!("{} stable: 1/1 running ", env.name("mongo"))),
        "{state}"
    );
    let described = env
        .aws
        .ecs
        .describe_services()
        .cluster(env.cluster())
        .services(env.name("mongo"))
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .expect("describe the service");
    let svc = &described.services()[0];
    assert_eq!(svc.status(), Some("ACTIVE"));
    assert_eq!(svc.desired_count(), 1);
    assert_eq!(svc.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let dc = svc
        .deployment_configuration()
        .expect("deployment configuration");
    assert_eq!(dc.minimum_healthy_percent(), Some(0));
    assert_eq!(dc.maximum_percent(), Some(100));
    let breaker = dc.deployment_circuit_breaker().expect("circuit breaker");
    assert!(breaker.enable() && breaker.rollback());
    assert_eq!(svc.propagate_tags().map(|p| p.as_str()), Some("SERVICE"));
    let vpc_conf = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("awsvpc configuration");
    let mut subnets = vpc_conf.subnets().to_vec();
    subnets.sort();
    assert_eq!(
        subnets,
        ["subnet-00000001", "subnet-00000002", "subnet-00000003"]
    );
    assert_eq!(
        vpc_conf.assign_public_ip().map(|a| a.as_str()),
        Some("DISABLED")
    );
    let config = env.parsed_config();
    let vpc = hcctl::resources::network::observe(&env.aws, &config)
        .await
        .unwrap()
        .vpc_id
        .expect("the default VPC");
    let mongo_group = security_group::observe(&env.aws.ec2, &vpc, &env.name("mongo"))
        .await
        .unwrap()
        .expect("the mongo security group");
    assert_eq!(
        vpc_conf.security_groups(),
        std::slice::from_ref(&mongo_group.id)
    );
    assert!(
        svc.task_definition()
            .is_some_and(|t| t.ends_with(&format!("{}:1", env.name("mongo")))),
        "{svc:?}"
    );
    let ns = hcctl::resources::namespace::observe(&env.aws.discovery, &config.namespace())
        .await
        .unwrap()
        .expect("the Cloud Map namespace");
    let discovery =
        hcctl::resources::discovery_service::observe(&env.aws.discovery, &ns.id, "mongo")
            .await
            .unwrap()
            .expect("the Cloud Map service");
    assert_eq!(
        svc.service_registries()
            .iter()
            .filter_map(|r| r.registry_arn())
            .collect::<Vec<_>>(),
        [discovery.arn.as_str()]
    );
    assert_eq!(config.namespace(), format!("dev.{}.internal", env.project));

    // Task definitions, described from ECS.
    let out = env
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(env.name("mongo"))
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe mongo task definition");
    let td = out.task_definition().expect("task definition");
    assert_eq!(td.revision(), 1);
    assert_eq!(td.cpu(), Some("1024"));
    assert_eq!(td.memory(), Some("2048"));
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(
        td.requires_compatibilities()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["FARGATE"]
    );
    let c = &td.container_definitions()[0];
    assert_eq!(c.image(), Some("mongo:7.0.14"));
    let log = c.log_configuration().expect("log configuration");
    assert_eq!(log.log_driver().as_str(), "awslogs");
    let opts = log.options().expect("awslogs options");
    assert_eq!(opts.get("awslogs-group"), Some(&env.log_group("mongo")));
    assert_eq!(
        opts.get("awslogs-region").map(String::as_str),
        Some("eu-west-3")
    );
    let mut secrets: Vec<(&str, &str)> = c
        .secrets()
        .iter()
        .map(|s| (s.name(), s.value_from()))
        .collect();
    secrets.sort();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].0, "MONGO_INITDB_ROOT_PASSWORD");
    assert!(
        secrets[0].1.starts_with("arn:aws:secretsmanager:"),
        "{secrets:?}"
    );
    assert!(
        c.environment()
            .iter()
            .all(|e| !e.name().unwrap_or("").contains("PASSWORD")),
        "no credential in plaintext environment"
    );
    let hc = c.health_check().expect("health check");
    assert_eq!(hc.command()[0], "CMD-SHELL");
    assert_eq!(hc.retries(), Some(5));
    assert_eq!(c.mount_points()[0].container_path(), Some("/data/db"));
    // The file system hcctl created, mounted through its access point with IAM and TLS.
    let config = env.parsed_config();
    let fs = file_system::observe(&env.aws, &config)
        .await
        .unwrap()
        .expect("the file system");
    let efs = td.volumes()[0]
        .efs_volume_configuration()
        .expect("an EFS volume");
    assert_eq!(efs.file_system_id(), fs.id);
    assert_eq!(
        efs.transit_encryption().map(|t| t.as_str()),
        Some("ENABLED")
    );
    let auth = efs.authorization_config().expect("authorization config");
    assert_eq!(auth.iam().map(|i| i.as_str()), Some("ENABLED"));
    let ap = hcctl::resources::access_point::observe(&env.aws.efs, &fs.id, &env.name("mongo"))
        .await
        .unwrap()
        .expect("the access point");
    assert_eq!(auth.access_point_id(), Some(ap.id.as_str()));
    assert_eq!(
        ap.settings,
        hcctl::resources::access_point::Settings {
            uid: 999,
            gid: 999,
            path: "/mongo".into(),
            creation: Some((999, 999, "0700".into())),
        }
    );
    assert!(fs.encrypted, "the file system is encrypted");
    assert_eq!(fs.automatic_backups.as_deref(), Some("DISABLED"));
    assert!(
        fs.policy
            .as_ref()
            .is_some_and(file_system::denies_insecure_transport),
        "{:?}",
        fs.policy
    );
    assert_eq!(fs.tags.get("Backup").map(String::as_str), Some("daily"));
    // Network: one mount target per zone, behind the efs group, which lets in NFS from the mongo
    // group only; the mongo group lets in 27017 from the app group only.
    let net = hcctl::resources::network::observe(&env.aws, &config)
        .await
        .unwrap();
    let vpc = net.vpc_id.clone().expect("the default VPC");
    let group = |tier: &'static str| {
        let (ec2, vpc, name) = (env.aws.ec2.clone(), vpc.clone(), env.name(tier));
        async move {
            security_group::observe(&ec2, &vpc, &name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("security group {tier}"))
        }
    };
    let (app_sg, mongo_sg, efs_sg) = (group("app").await, group("mongo").await, group("efs").await);
    assert!(app_sg.ingress.is_empty(), "{:?}", app_sg.ingress);
    let only = |g: &security_group::Observed| -> Vec<(i32, String)> {
        g.ingress
            .iter()
            .map(|r| (r.from_port, r.source.clone()))
            .collect()
    };
    assert_eq!(only(&mongo_sg), [(27017, app_sg.id.clone())]);
    assert_eq!(only(&efs_sg), [(2049, mongo_sg.id.clone())]);
    let mts = hcctl::resources::mount_target::observe(&env.aws.efs, &fs.id)
        .await
        .unwrap();
    assert_eq!(mts.len(), 3, "{mts:?}");
    assert!(
        mts.iter().all(|m| m.security_groups == [efs_sg.id.clone()]),
        "{mts:?}"
    );
    // Generated secrets: never printed, URI-safe 32-character passwords, the writer's URI names
    // MongoDB's Cloud Map name.
    let plan_text = first.to_string();
    for role in ["root", "writer", "reader"] {
        let value = env
            .aws
            .secrets
            .get_secret_value()
            .secret_id(format!("{}/dev/mongo-{role}", env.project))
            .send()
            .await
            .unwrap_or_else(|e| panic!("secret {role}: {e:?}"));
        let v: Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
        let password = v["password"].as_str().unwrap();
        assert_eq!(password.len(), 32);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!plan_text.contains(password), "a password is in the plan");
        assert_eq!(v["username"], role);
        if role == "writer" {
            assert_eq!(
                v["uri"],
                format!(
                    "mongodb://writer:{password}@mongo.dev.{}.internal:27017/healthcare?authSource=healthcare",
                    env.project
                )
            );
        }
    }
    // The mongo task role may mount that file system through that access point, nothing else.
    let role = env.name("mongo-task");
    let doc = env
        .aws
        .iam
        .get_role_policy()
        .role_name(&role)
        .policy_name("hcctl")
        .send()
        .await
        .expect("the mongo task role's policy");
    let doc = hcctl::resources::reference::policy_json(doc.policy_document()).unwrap();
    assert_eq!(doc["Statement"][0]["Resource"], fs.arn);
    assert_eq!(
        doc["Statement"][0]["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"],
        ap.arn
    );
    assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(1));
    let tags: BTreeMap<_, _> = out
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert_eq!(tags.get("Project"), Some(&env.project.as_str()));
    let app = task_definition::latest(&env.aws.ecs, &env.name("app"))
        .await
        .unwrap()
        .expect("app task definition");
    let app_c = &app.1.container_definitions[0];
    assert_eq!(app_c.image, "hcctl:test");
    assert_eq!(app_c.command, ["migrate", "/data/healthcare_dataset.csv"]);
    assert_eq!(app_c.secrets[0].name, "HCCTL_MONGODB_URI");
    assert_eq!(app.1.cpu.as_deref(), Some("512"));

    // Backup vault, plan rules, selection.
    let vault = backup_vault::observe(&env.aws.backup, &env.name("vault"))
        .await
        .unwrap()
        .expect("vault");
    assert_eq!(vault.tags.get("Project"), Some(&env.project));
    let plan = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap()
        .expect("backup plan");
    let daily = plan
        .rules
        .iter()
        .find(|r| r.name == "daily")
        .expect("daily rule");
    assert_eq!(daily.schedule, "cron(0 3 * * ? *)");
    assert_eq!(daily.target_vault, env.name("vault"));
    assert_eq!(daily.start_window_minutes, Some(60));
    assert_eq!(daily.completion_window_minutes, Some(180));
    assert_eq!(daily.delete_after_days, Some(35));
    let monthly = plan
        .rules
        .iter()
        .find(|r| r.name == "monthly")
        .expect("monthly rule");
    assert_eq!(monthly.cold_storage_after_days, Some(30));
    assert_eq!(monthly.delete_after_days, Some(365));
    let sel = backup_selection::observe(&env.aws.backup, &plan.id, &env.name("data"))
        .await
        .unwrap()
        .expect("selection");
    // The selection protects the file system deploy created: derived, never typed.
    assert_eq!(sel.resources, std::slice::from_ref(&fs.arn));
    // Issue 22, finding 2: with resources named, the tag narrows them (Conditions, AND); as
    // ListOfTags it would add every resource of the account tagged Backup=daily (OR).
    assert_eq!(
        sel.conditions.get("Backup").map(String::as_str),
        Some("daily")
    );
    assert!(
        sel.list_of_tags.is_empty(),
        "ListOfTags would widen the PHI selection: {:?}",
        sel.list_of_tags
    );
    assert!(sel.iam_role_arn.ends_with("AWSBackupDefaultServiceRole"));

    // Converged: the second deploy changes nothing and makes no mutating call.
    let second = env.deploy(&[]);
    let acts = actions(&second);
    assert!(acts.values().all(|a| a == "unchanged"), "{acts:?}");
    assert_eq!(mutating(&second), 0, "{second}");
    let revisions = task_definition::active_revisions(&env.aws.ecs, &env.name("mongo"))
        .await
        .unwrap();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
}

/// Issue 14: from an empty account, deploy creates the roles and the secrets the tasks use too,
/// wires them into the task definitions, and converges. Issue 22, finding 9: a file system
/// adopted with EFS's automatic backups on is reported.
#[tokio::test]
async fn an_empty_account_gets_roles_and_secrets_wired_into_the_tasks() {
    let env = AwsEnv::new().await;
    env.write_config(&empty_account_config_text(&env.project));
    let first = env.deploy(&["--strict"]);
    let acts = actions(&first);
    for role in ["execution", "mongo-task", "app-task", "backup"] {
        assert_eq!(
            acts.get(&format!("role {}", env.name(role)))
                .map(String::as_str),
            Some("create"),
            "{acts:?}"
        );
    }
    assert_eq!(first["outcome"]["created"], CREATED + 3, "{first}");
    let refs: Vec<&Value> = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "reference")
        .collect();
    assert_eq!(
        refs.len(),
        1,
        "only the log group's KMS key is referenced: {refs:?}"
    );

    let role_arn = |name: &str| format!("arn:aws:iam::000000000000:role/{}", env.name(name));
    let secret_arn = |role: &str| {
        let (secrets, name) = (
            env.aws.secrets.clone(),
            format!("{}/dev/mongo-{role}", env.project),
        );
        async move {
            secret::observe(&secrets, &name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("secret {name}"))
                .arn
        }
    };
    let (root, writer) = (secret_arn("root").await, secret_arn("writer").await);
    let mongo = task_definition::latest(&env.aws.ecs, &env.name("mongo"))
        .await
        .unwrap()
        .expect("mongo task definition")
        .1;
    assert_eq!(mongo.execution_role_arn, Some(role_arn("execution")));
    assert_eq!(mongo.task_role_arn, Some(role_arn("mongo-task")));
    let mut injected: Vec<(String, String)> = mongo.container_definitions[0]
        .secrets
        .iter()
        .map(|s| (s.name.clone(), s.value_from.clone()))
        .collect();
    injected.sort();
    assert_eq!(
        injected,
        [
            (
                "MONGO_INITDB_ROOT_PASSWORD".to_string(),
                format!("{root}:password::")
            ),
            (
                "MONGO_INITDB_ROOT_USERNAME".to_string(),
                format!("{root}:username::")
            ),
        ]
    );
    let app = task_definition::latest(&env.aws.ecs, &env.name("app"))
        .await
        .unwrap()
        .expect("app task definition")
        .1;
    assert_eq!(app.task_role_arn, Some(role_arn("app-task")));
    assert_eq!(app.container_definitions[0].secrets.len(), 1);
    assert_eq!(
        app.container_definitions[0].secrets[0].name,
        "HCCTL_MONGODB_URI"
    );
    assert_eq!(
        app.container_definitions[0].secrets[0].value_from,
        format!("{writer}:uri::")
    );
    // The execution role reads exactly the generated secrets and writes the two log groups.
    let doc = env
        .aws
        .iam
        .get_role_policy()
        .role_name(env.name("execution"))
        .policy_name("hcctl")
        .send()
        .await
        .expect("the execution role's policy");
    let doc = hcctl::resources::reference::policy_json(doc.policy_document()).unwrap();
    let read = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "secretsmanager:GetSecretValue")
        .expect("the secrets statement");
    let mut want = vec![root.clone(), writer.clone(), secret_arn("reader").await];
    want.sort();
    assert_eq!(read["Resource"], serde_json::json!(want));
    // The backup selection uses the backup role hcctl made.
    let plan = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap()
        .expect("backup plan");
    let sel = backup_selection::observe(&env.aws.backup, &plan.id, &env.name("data"))
        .await
        .unwrap()
        .expect("selection");
    assert_eq!(sel.iam_role_arn, role_arn("backup"));

    let second = env.deploy(&["--strict"]);
    assert_eq!(mutating(&second), 0, "{second}");

    // Adopting a file system made elsewhere, with EFS's automatic backups on: reported, and
    // left as it is.
    let fs = file_system::find(&env.aws, &env.parsed_config())
        .await
        .unwrap()
        .expect("the file system");
    env.aws
        .efs
        .put_backup_policy()
        .file_system_id(&fs.id)
        .backup_policy(
            aws_sdk_efs::types::BackupPolicy::builder()
                .status(aws_sdk_efs::types::Status::Enabled)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("turning automatic backups on");
    let adopting = empty_account_config_text(&env.project).replace(
        "      container_path: /data/db\n",
        &format!(
            "      container_path: /data/db\n      efs_file_system_id: {}\n",
            fs.id
        ),
    );
    env.write_config(&adopting);
    let plan = env.deploy(&["--dry-run"]);
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "file_system")
        .expect("the file system step");
    assert_eq!(step["name"], fs.id.as_str());
    assert_eq!(step["action"], "unchanged", "{step}");
    assert!(
        step["changes"].as_array().unwrap().iter().any(|l| l
            .as_str()
            .unwrap_or("")
            .starts_with("automatic backups ENABLED")),
        "{step}"
    );
    assert_eq!(mutating(&plan), 0);
}

#[tokio::test]
async fn a_changed_image_registers_exactly_one_revision_and_touches_nothing_else() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    env.write_config(&config_text(&env.project, "mongo:7.0.15", 30));
    let plan = env.deploy(&[]);
    let acts = actions(&plan);
    let changed: Vec<_> = acts.iter().filter(|(_, a)| *a != "unchanged").collect();
    assert_eq!(
        changed,
        [
            (
                &format!("ecs_service {}", env.name("mongo")),
                &"update".to_string()
            ),
            (
                &format!("task_definition {}", env.name("mongo")),
                &"update".to_string()
            )
        ],
        "{acts:?}"
    );
    assert_eq!(
        plan["outcome"]["api_calls"]["mutating_operations"],
        serde_json::json!(["ecs:RegisterTaskDefinition", "ecs:UpdateService"])
    );
    // The plan says what the new revision does to the running database.
    let service_step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "ecs_service")
        .unwrap();
    assert!(
        service_step["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap_or("").starts_with("restarts MongoDB")),
        "{service_step}"
    );
    let described = env
        .aws
        .ecs
        .describe_services()
        .cluster(env.cluster())
        .services(env.name("mongo"))
        .send()
        .await
        .expect("describe the service");
    assert!(
        described.services()[0]
            .task_definition()
            .is_some_and(|td| td.ends_with(&format!("{}:2", env.name("mongo")))),
        "{described:?}"
    );
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "update" && s["kind"] == "task_definition")
        .unwrap();
    assert!(
        step["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "containerDefinitions[0].image: mongo:7.0.14 → mongo:7.0.15"),
        "{step}"
    );
    let mongo = task_definition::active_revisions(&env.aws.ecs, &env.name("mongo"))
        .await
        .unwrap();
    assert_eq!(mongo.len(), 2);
    let latest = task_definition::latest(&env.aws.ecs, &env.name("mongo"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.1.container_definitions[0].image, "mongo:7.0.15");
    assert_eq!(
        task_definition::active_revisions(&env.aws.ecs, &env.name("app"))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn changed_retention_and_rules_are_updated_in_place() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    let text = config_text(&env.project, "mongo:7.0.14", 60)
        .replace("delete_after_days: 35", "delete_after_days: 42")
        .replace("Backup: daily", "Backup: hourly");
    env.write_config(&text);
    let plan = env.deploy(&[]);
    let acts = actions(&plan);
    assert_eq!(
        acts[&format!("log_group {}", env.log_group("mongo"))],
        "update"
    );
    assert_eq!(
        acts[&format!("backup_plan {}", env.name("daily"))],
        "update"
    );
    assert_eq!(
        acts[&format!("backup_selection {}", env.name("data"))],
        "replace"
    );
    assert_eq!(
        acts[&format!("task_definition {}", env.name("mongo"))],
        "unchanged"
    );
    let g = log_group::observe(&env.aws.logs, &env.log_group("mongo"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.retention_days, Some(60));
    let p = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.rules
            .iter()
            .find(|r| r.name == "daily")
            .unwrap()
            .delete_after_days,
        Some(42)
    );
    let s = backup_selection::observe(&env.aws.backup, &p.id, &env.name("data"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.conditions.get("Backup").map(String::as_str),
        Some("hourly")
    );
    // And converged again.
    let again = env.deploy(&[]);
    assert_eq!(mutating(&again), 0, "{again}");
}

#[tokio::test]
async fn missing_references_are_warnings_and_stop_a_strict_deploy() {
    let env = AwsEnv::new().await;
    let text = config_text(&env.project, "mongo:7.0.14", 30).replace(
        &format!("secret:{}/root:password::", env.project),
        &format!("secret:{}/nope:password::", env.project),
    );
    env.write_config(&text);
    let out = env.run(&["deploy", "--strict"]);
    assert_exit(&out, 1);
    let text_out = stdout(&out);
    assert!(
        text_out.contains(&format!("? reference secret {}/nope", env.project)),
        "{text_out}"
    );
    assert!(
        stderr(&out)
            .contains("--strict: referenced resource(s) missing or unusable, nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_nothing_exists(&env).await;
    // A dry run stopped by --strict still counts what the plan would do (it said "0" before).
    let out = env.run(&["deploy", "--strict", "--dry-run"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains(&format!(
            "would create {CREATED}, update 0, replace 0, delete 0"
        )),
        "{}",
        stdout(&out)
    );
    // Without --strict: a warning, and the deploy goes on.
    let plan = env.deploy(&[]);
    assert_eq!(plan["outcome"]["missing"], 1, "{plan}");
    assert_eq!(plan["outcome"]["created"], CREATED);
}

/// Issue 22, finding 6: a secret named by its full ARN (with the random suffix Secrets Manager
/// appends) was looked up by "name-suffix" and reported missing, stopping `--strict`.
#[tokio::test]
async fn a_secret_named_by_its_full_arn_is_found() {
    let env = AwsEnv::new().await;
    let full_arn = env
        .aws
        .secrets
        .describe_secret()
        .secret_id(format!("{}/root", env.project))
        .send()
        .await
        .expect("the test secret")
        .arn()
        .expect("its ARN")
        .to_string();
    assert!(
        !full_arn.ends_with(&format!("{}/root", env.project)),
        "the ARN should carry a random suffix: {full_arn}"
    );
    let text = config_text(&env.project, "mongo:7.0.14", 30).replace(
        &format!(
            "arn:aws:secretsmanager:eu-west-3:000000000000:secret:{}/root:",
            env.project
        ),
        &format!("{full_arn}:"),
    );
    assert!(text.contains(&format!("{full_arn}:password::")));
    env.write_config(&text);
    let plan = env.deploy(&["--strict", "--dry-run"]);
    assert_eq!(plan["outcome"]["missing"], 0, "{plan}");
    let secret_steps: Vec<&Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| {
            s["kind"] == "reference" && s["name"].as_str().is_some_and(|n| n.starts_with("secret "))
        })
        .collect();
    assert_eq!(secret_steps.len(), 1, "{plan}");
    assert_eq!(secret_steps[0]["action"], "unchanged", "{plan}");
}

/// Issue 22, finding 4: with no tags configured, hcctl sent `tags: {}` to CreateLogGroup,
/// which the Logs model refuses (minimum one entry). The model check in front of the emulator
/// (scripts/modelcheck) answers such a request with an error, so this deploy fails there.
#[tokio::test]
async fn a_config_without_tags_deploys_without_empty_tag_maps() {
    let env = AwsEnv::new().await;
    let text = config_text(&env.project, "mongo:7.0.14", 30);
    let block = format!(
        "tags:\n  Project: {}\n  DataClassification: PHI\n",
        env.project
    );
    assert!(text.ends_with(&block), "the test config's tags changed");
    let text = text.replace(&block, "");
    assert!(!text.contains("\ntags:"), "{text}");
    env.write_config(&text);
    let plan = env.deploy(&[]);
    assert_eq!(plan["outcome"]["created"], CREATED, "{plan}");
    let group = log_group::observe(&env.aws.logs, &env.log_group("mongo"))
        .await
        .unwrap()
        .expect("the mongo log group");
    assert!(group.tags.is_empty(), "{:?}", group.tags);
    let again = env.deploy(&[]);
    assert_eq!(mutating(&again), 0, "{again}");
}

/// Issue 22, finding 8: a role that does not trust the service assuming it, an execution role
/// that may not read the task secrets, a log group key CloudWatch Logs may not use — each was
/// "found" before; each is `unusable` now, and `--strict` stops before any change.
#[tokio::test]
async fn references_that_exist_but_cannot_serve_are_unusable() {
    let env = AwsEnv::new().await;
    // On a fresh environment every reference is usable, and checked (no "not checked" note
    // where the service is the emulator's own, which answers the policy simulator).
    let plan = env.deploy(&["--strict", "--dry-run"]);
    assert_eq!(plan["outcome"]["unusable"], 0, "{plan}");
    let references: Vec<&Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "reference")
        .collect();
    assert!(
        references.iter().all(|s| s["action"] == "unchanged"),
        "{plan}"
    );

    let project = &env.project;
    env.aws
        .iam
        .update_assume_role_policy()
        .role_name(format!("{project}-task"))
        .policy_document(trust_policy("backup.amazonaws.com"))
        .send()
        .await
        .expect("changing the task role's trust");
    env.aws
        .iam
        .delete_role_policy()
        .role_name(format!("{project}-exec"))
        .policy_name("read-task-secrets")
        .send()
        .await
        .expect("taking the execution role's grant away");
    let default_key = create_key(&env.aws, "hcctl test: a key with the default policy", None).await;
    let text =
        config_text(project, "mongo:7.0.14", 30).replace("${HCCTL_TEST_KMS_KEY}", &default_key);
    env.write_config(&text);
    let out = env.run(&["deploy", "--strict", "--dry-run"]);
    assert_exit(&out, 1);
    let text_out = stdout(&out);
    let mut expected = vec![
        format!("? reference role {project}-task"),
        "its trust policy does not let ecs-tasks.amazonaws.com assume it (ecs.task_role_arn)"
            .to_string(),
        format!("? reference KMS key {default_key}"),
        "its key policy does not allow logs.eu-west-3.amazonaws.com".to_string(),
    ];
    if std::env::var_os("HCCTL_TEST_EXPECT_SPLIT").is_some() {
        // IAM on LocalStack: its policy simulator answers explicitDeny to everything, naming no
        // statement; hcctl says it could not check rather than calling the role unusable.
        expected.extend([
            format!("= reference role {project}-exec"),
            "permissions not checked: the IAM policy simulator answered secretsmanager:GetSecretValue".to_string(),
            "2 referenced resource(s) UNUSABLE".to_string(),
        ]);
    } else {
        expected.extend([
            format!("? reference role {project}-exec"),
            "may not secretsmanager:GetSecretValue on arn:aws:secretsmanager:eu-west-3:000000000000:secret:".to_string(),
            "may not ssm:GetParameters on".to_string(),
            "3 referenced resource(s) UNUSABLE".to_string(),
        ]);
    }
    for expected in expected {
        assert!(
            text_out.contains(&expected),
            "missing {expected:?} in:\n{text_out}"
        );
    }
    assert!(stderr(&out).contains(plan::STRICT_STOP), "{}", stderr(&out));
    assert_nothing_exists(&env).await;
}

/// Tags changed in the config are brought to it in place: TagResource and UntagResource are
/// sent (and so checked against their models by the model check), the result described back.
#[tokio::test]
async fn changed_tags_are_applied_in_place() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    let project = &env.project;
    let text = config_text(project, "mongo:7.0.14", 30)
        .replace("  DataClassification: PHI\n", "  CostCenter: oncology\n");
    assert!(text.contains("CostCenter: oncology"), "{text}");
    env.write_config(&text);
    let plan = env.deploy(&[]);
    let acts = actions(&plan);
    for group in ["mongo", "app"] {
        assert_eq!(
            acts[&format!("log_group {}", env.log_group(group))],
            "update",
            "{plan}"
        );
    }
    assert_eq!(
        acts[&format!("backup_vault {}", env.name("vault"))],
        "update",
        "{plan}"
    );
    let want: BTreeMap<String, String> = [
        ("CostCenter".to_string(), "oncology".to_string()),
        ("Project".to_string(), project.clone()),
    ]
    .into();
    for group in ["mongo", "app"] {
        let g = log_group::observe(&env.aws.logs, &env.log_group(group))
            .await
            .unwrap()
            .expect("log group");
        assert_eq!(g.tags, want, "{group}");
    }
    let vault = backup_vault::observe(&env.aws.backup, &env.name("vault"))
        .await
        .unwrap()
        .expect("vault");
    assert_eq!(vault.tags, want);
    let again = env.deploy(&[]);
    assert_eq!(mutating(&again), 0, "{again}");
}

/// Review of issue 22: a secret scheduled for deletion and a log group key pending deletion were
/// "found" and passed `--strict`; a secret encrypted with a customer key named by its alias had
/// its kms:Decrypt judged on the alias (never what IAM evaluates).
#[tokio::test]
async fn secrets_and_keys_that_cannot_serve_are_unusable() {
    let env = AwsEnv::new().await;
    let project = &env.project;
    // A secret of its own, encrypted with a customer key named by alias.
    let key_arn = create_key(&env.aws, "hcctl test: a secret's key", None).await;
    let alias = format!("alias/{project}-secrets");
    env.aws
        .kms
        .create_alias()
        .alias_name(&alias)
        .target_key_id(&key_arn)
        .send()
        .await
        .expect("alias");
    env.aws
        .secrets
        .create_secret()
        .name(format!("{project}/root-keyed"))
        .kms_key_id(&alias)
        .secret_string(r#"{"password":"not-a-real-password-456"}"#)
        .send()
        .await
        .expect("keyed secret");
    let text = config_text(project, "mongo:7.0.14", 30).replace(
        &format!("secret:{project}/root:password::"),
        &format!("secret:{project}/root-keyed:password::"),
    );
    env.write_config(&text);
    let plan = env.deploy(&["--strict", "--dry-run"]);
    assert_eq!(plan["outcome"]["unusable"], 0, "{plan}");
    let exec = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == format!("role {project}-exec"))
        .expect("the execution role's step")
        .clone();
    let notes = exec["changes"].to_string();
    if std::env::var_os("HCCTL_TEST_EXPECT_SPLIT").is_none() {
        // Judged on the key's ARN, not the alias; the role's own policies do not grant it, and
        // the key policy is not weighed: a note, not a verdict.
        assert!(
            notes.contains(&format!(
                "kms:Decrypt on {key_arn}: not allowed by the role's own IAM policies"
            )),
            "{exec}"
        );
    }
    assert!(!notes.contains(&alias), "{exec}");

    // Now the secret scheduled for deletion and the app log group's key pending deletion.
    env.aws
        .secrets
        .delete_secret()
        .secret_id(format!("{project}/root-keyed"))
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("scheduling the secret's deletion");
    env.aws
        .kms
        .schedule_key_deletion()
        .key_id(&env.kms_key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("scheduling the key's deletion");
    let out = env.run(&["deploy", "--strict", "--dry-run"]);
    assert_exit(&out, 1);
    let text_out = stdout(&out);
    for expected in [
        format!("? reference secret {project}/root-keyed"),
        "is scheduled for deletion (containers.mongo.secrets.".to_string(),
        format!("? reference KMS key {}", env.kms_key),
        "is PendingDeletion: nothing can be encrypted with it".to_string(),
    ] {
        assert!(
            text_out.contains(&expected),
            "missing {expected:?} in:\n{text_out}"
        );
    }
}

#[tokio::test]
async fn dry_run_on_an_empty_account_changes_nothing() {
    let env = AwsEnv::new().await;
    let out = env.run(&["deploy", "--dry-run"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("+ ECS cluster {}", env.cluster())),
        "{text}"
    );
    assert!(text.contains("dry run, nothing changed"), "{text}");
    let plan = env.deploy(&["--dry-run"]);
    assert_eq!(mutating(&plan), 0);
    assert!(actions(&plan)
        .iter()
        .all(|(k, a)| a == "create" || k == "network default"));
    // Described afterwards: nothing exists.
    assert_nothing_exists(&env).await;
}

/// Config errors stop the run before any AWS call: the endpoint given is unreachable, so an
/// attempted call would fail with exit 1 instead of the config error's exit 2.
#[tokio::test]
async fn config_errors_fail_before_any_aws_call_naming_the_problem() {
    let env = AwsEnv::new().await;
    let good = config_text(&env.project, "mongo:7.0.14", 30);
    let cases = [
        (
            good.replace("environment: dev", "environment: dev\nsurprise: 1"),
            "unknown field `surprise`",
        ),
        (
            config_text(&env.project, "mongo:7.0.14", 45),
            "log_groups.mongo.retention_days: 45 is not a CloudWatch retention value",
        ),
        (
            good.replace("image: hcctl:test", "image: ${HCCTL_TEST_UNSET_IMAGE}"),
            "environment variable not set: ${HCCTL_TEST_UNSET_IMAGE} (at containers.app.image)",
        ),
        (
            good.replace(
                "      HCCTL_LOG: info",
                "      HCCTL_LOG: info\n      DB_PASSWORD: hunter2",
            ),
            "containers.app.environment.DB_PASSWORD: looks like a credential",
        ),
    ];
    for (text, expected) in cases {
        env.write_config(&text);
        let started = Instant::now();
        let out = env.run(&["deploy", "--endpoint-url", "http://127.0.0.1:9"]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
        assert!(err.contains("hcctl.yaml"), "the file is named: {err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_within_seconds_with_exit_1() {
    let env = AwsEnv::new().await;
    let started = Instant::now();
    let out = env.run(&["deploy", "--endpoint-url", "http://127.0.0.1:9"]);
    assert_exit(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(err.contains("no answer from the AWS endpoint"), "{err}");
    assert!(
        err.contains("finding the AWS account of these credentials"),
        "names what it was doing: {err}"
    );
}

#[tokio::test]
async fn destroy_keeps_the_patient_data_unless_told_and_then_removes_it_too() {
    let env = AwsEnv::new().await;
    env.deploy(&[]);
    // An export in the drops bucket (two versions of it): the bucket now holds patient data.
    let bucket = env.drops_bucket();
    for body in ["a", "b"] {
        env.aws
            .s3
            .put_object()
            .bucket(&bucket)
            .key("incoming/export.csv")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                body.as_bytes(),
            ))
            .send()
            .await
            .expect("put an export");
    }
    // Not on a terminal and no --yes: refuses, deletes nothing.
    let out = env.run(&["destroy"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--yes"));
    assert!(backup_vault::observe(&env.aws.backup, &env.name("vault"))
        .await
        .unwrap()
        .is_some());
    // --delete-data must name this deployment, or be confirmed on a terminal.
    let out = env.run(&["destroy", "--yes", "--delete-data=other-dev"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!(
            "--delete-data=other-dev does not name this deployment: type --delete-data={}-dev",
            env.project
        )),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["destroy", "--yes", "--delete-data"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("when standard input is not a terminal"),
        "{}",
        stderr(&out)
    );

    // Without --delete-data: everything but the data and what guards or opens it.
    let plan = env.destroy(&[]);
    assert_eq!(plan["outcome"]["deleted"], 12, "{plan}");
    let kept: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "keep")
        .map(|s| {
            format!(
                "{} {}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(kept.len(), 13, "{kept:?}");
    assert!(
        kept.contains(&format!("file_system {}", env.name("mongo-data"))),
        "{kept:?}"
    );
    assert!(kept.contains(&format!("bucket {bucket}")), "{kept:?}");
    assert!(bucket::observe(&env.aws.s3, &bucket, false)
        .await
        .unwrap()
        .is_some());
    let config = env.parsed_config();
    let fs = file_system::find(&env.aws, &config)
        .await
        .unwrap()
        .expect("the file system is kept");
    assert!(
        secret::observe(&env.aws.secrets, &format!("{}/dev/mongo-root", env.project))
            .await
            .unwrap()
            .is_some_and(|s| !s.scheduled_deletion)
    );

    // With it: the file system (mount targets and access point first), the secrets (recoverable
    // for the window) and the security groups.
    let delete_data = format!("--delete-data={}-dev", env.project);
    let plan = env.destroy(&[&delete_data]);
    assert_eq!(plan["outcome"]["deleted"], 12, "{plan}");
    assert!(bucket::observe(&env.aws.s3, &bucket, false)
        .await
        .unwrap()
        .is_none());
    assert!(file_system::find(&env.aws, &config)
        .await
        .unwrap()
        .is_none());
    let mts = env
        .aws
        .efs
        .describe_mount_targets()
        .file_system_id(&fs.id)
        .send()
        .await;
    assert!(
        mts.as_ref().map_or(true, |m| m.mount_targets().is_empty()),
        "{mts:?}"
    );
    for role in ["root", "writer", "reader"] {
        let s = secret::observe(
            &env.aws.secrets,
            &format!("{}/dev/mongo-{role}", env.project),
        )
        .await
        .unwrap();
        assert!(
            s.as_ref().is_none_or(|s| s.scheduled_deletion),
            "secret {role} not scheduled for deletion: {s:?}"
        );
    }
    assert_nothing_exists(&env).await;

    // Nothing left: a second destroy deletes nothing, and deploy converges from scratch.
    let plan = env.destroy(&[&delete_data]);
    assert_eq!(plan["outcome"]["api_calls"]["mutating"], 0, "{plan}");
    let redeploy = env.deploy(&[]);
    let restored = redeploy["outcome"]["updated"].as_u64().unwrap_or(0);
    assert_eq!(
        redeploy["outcome"]["created"].as_u64().unwrap_or(0) + restored,
        CREATED,
        "{redeploy}"
    );
}

#[tokio::test]
async fn render_prints_task_definitions_with_credentials_only_as_secrets() {
    let env = AwsEnv::new().await;
    let out = env.run(&["render"]);
    assert_success(&out);
    let all: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for name in ["mongo", "app"] {
        let td = &all[name];
        assert_eq!(td["family"], env.name(name));
        for c in td["containerDefinitions"].as_array().unwrap() {
            for e in c["environment"].as_array().into_iter().flatten() {
                let n = e["name"].as_str().unwrap().to_ascii_uppercase();
                for word in ["PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"] {
                    assert!(
                        !n.contains(word),
                        "{name}: {n} has a value in plaintext environment"
                    );
                }
            }
            assert!(!c["secrets"].as_array().unwrap().is_empty());
        }
    }
    let one = env.run(&["render", "--container", "app"]);
    assert_success(&one);
    let app: Value = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(app["family"], env.name("app"));
}

/// Issue 16: `ingest.schedule` makes deploy create an EventBridge Scheduler schedule that runs
/// the app's latest revision with `ingest s3://<drops>/incoming/` in the config's network, under
/// its own role (RunTask of the app family on this cluster, PassRole of the two task roles to
/// ECS, nothing else) — described back from the emulator; a second deploy changes nothing; a
/// new expression and a new revision update it in place; removing `ingest` deletes the
/// schedule and its role; destroy deletes it. (The emulator stores schedules and never fires
/// them: the task it would start is what `hcctl run` tests start.)
#[tokio::test]
async fn ingest_schedule_runs_the_app_task_on_the_drops_bucket_and_follows_the_config() {
    use hcctl::resources::{role, schedule};
    let env = AwsEnv::new().await;
    let base = empty_account_config_text(&env.project);
    let with = |text: &str, expression: &str| {
        format!("{text}ingest:\n  schedule: {expression}\n  collection: admissions\n")
    };
    let fetch = |name: &str| {
        let (client, name) = (env.aws.scheduler.clone(), name.to_string());
        async move {
            client
                .get_schedule()
                .name(&name)
                .group_name(schedule::GROUP)
                .send()
                .await
                .expect("the schedule")
        }
    };
    env.write_config(&with(&base, "rate(15 minutes)"));
    let first = env.deploy(&[]);
    let acts = actions(&first);
    let name = env.name("ingest");
    assert_eq!(
        acts.get(&format!("schedule {name}")).map(String::as_str),
        Some("create"),
        "{acts:?}"
    );
    assert_eq!(
        acts.get(&format!("role {}", env.name("scheduler")))
            .map(String::as_str),
        Some("create"),
        "{acts:?}"
    );

    // Described back from the emulator.
    let config = env.parsed_config();
    let got = fetch(&name).await;
    assert_eq!(got.schedule_expression(), Some("rate(15 minutes)"));
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(got.state().map(|s| s.as_str()), Some("ENABLED"));
    assert_eq!(
        got.flexible_time_window().map(|f| f.mode().as_str()),
        Some("OFF")
    );
    let target = got.target().expect("a target");
    assert_eq!(
        target.arn(),
        format!(
            "arn:aws:ecs:eu-west-3:000000000000:cluster/{}",
            env.cluster()
        )
    );
    let scheduler_role = role::observe(&env.aws.iam, &env.name("scheduler"))
        .await
        .unwrap()
        .expect("the scheduler role");
    assert_eq!(target.role_arn(), scheduler_role.arn);
    let (app_td, _) = task_definition::latest(&env.aws.ecs, &env.name("app"))
        .await
        .unwrap()
        .expect("the app task definition");
    let ecs = target.ecs_parameters().expect("ECS parameters");
    assert_eq!(ecs.task_definition_arn(), app_td);
    assert_eq!(ecs.task_count(), Some(1));
    assert_eq!(ecs.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let vpc_conf = ecs
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("awsvpc configuration");
    let net = hcctl::resources::network::observe(&env.aws, &config)
        .await
        .unwrap();
    let vpc = net.vpc_id.clone().expect("the default VPC");
    let mut subnets: Vec<String> = net.subnets.iter().map(|(s, _)| s.clone()).collect();
    subnets.sort();
    let mut scheduled: Vec<String> = vpc_conf.subnets().to_vec();
    scheduled.sort();
    assert_eq!(scheduled, subnets);
    assert_eq!(scheduled.len(), 3);
    let app_sg = security_group::observe(&env.aws.ec2, &vpc, &env.name("app"))
        .await
        .unwrap()
        .expect("the app security group");
    assert_eq!(vpc_conf.security_groups(), std::slice::from_ref(&app_sg.id));
    assert_eq!(
        vpc_conf.assign_public_ip().map(|a| a.as_str()),
        Some("DISABLED")
    );
    let input: Value = serde_json::from_str(target.input().expect("an input")).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"containerOverrides": [{"name": "app", "command": [
            "ingest",
            format!("s3://{}/incoming/", env.drops_bucket()),
            "--collection",
            "admissions",
        ]}]})
    );
    let retry = target.retry_policy().expect("a retry policy");
    assert_eq!(retry.maximum_retry_attempts(), Some(2));
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));

    // Its role: trusted by EventBridge Scheduler only, allowed exactly RunTask and PassRole.
    assert_eq!(
        scheduler_role.trust.as_ref().unwrap()["Statement"][0]["Principal"]["Service"],
        "scheduler.amazonaws.com"
    );
    let policy = scheduler_role.policy.expect("the hcctl policy");
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{policy}");
    assert_eq!(statements[0]["Action"], "ecs:RunTask");
    assert_eq!(
        statements[0]["Resource"],
        format!(
            "arn:aws:ecs:eu-west-3:000000000000:task-definition/{}:*",
            env.name("app")
        )
    );
    assert_eq!(
        statements[0]["Condition"]["ArnEquals"]["ecs:cluster"],
        target.arn()
    );
    assert_eq!(statements[1]["Action"], "iam:PassRole");
    let mut passed: Vec<String> = statements[1]["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    passed.sort();
    let mut task_roles = Vec::new();
    for r in ["app-task", "execution"] {
        let o = role::observe(&env.aws.iam, &env.name(r))
            .await
            .unwrap()
            .expect("a task role");
        task_roles.push(o.arn);
    }
    task_roles.sort();
    assert_eq!(passed, task_roles);
    assert_eq!(
        statements[1]["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );

    // Converged: nothing to do.
    let again = env.deploy(&[]);
    assert_eq!(mutating(&again), 0, "{again}");

    // A new expression and a new revision of the app: the schedule is updated in place.
    let changed = with(&base, "rate(1 hour)").replace("image: hcctl:test\n", "image: hcctl:next\n");
    assert_ne!(
        changed,
        with(&base, "rate(1 hour)"),
        "the test config's app image changed"
    );
    env.write_config(&changed);
    let update = env.deploy(&[]);
    let step = update["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "schedule")
        .expect("the schedule's step")
        .clone();
    assert_eq!(step["action"], "update", "{step}");
    let lines: Vec<&str> = step["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("expression: rate(15 minutes) → rate(1 hour)")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("target.task_definition:")),
        "{lines:?}"
    );
    let (app_td2, _) = task_definition::latest(&env.aws.ecs, &env.name("app"))
        .await
        .unwrap()
        .expect("the app task definition");
    assert_ne!(app_td2, app_td);
    let got = fetch(&name).await;
    assert_eq!(got.schedule_expression(), Some("rate(1 hour)"));
    assert_eq!(
        got.target()
            .and_then(|t| t.ecs_parameters())
            .map(|e| e.task_definition_arn()),
        Some(app_td2.as_str())
    );

    // No ingest section: the schedule and its role go.
    let without: String = changed.replace(
        "ingest:\n  schedule: rate(1 hour)\n  collection: admissions\n",
        "",
    );
    assert!(!without.contains("ingest:"), "{without}");
    env.write_config(&without);
    let removal = env.deploy(&[]);
    let acts = actions(&removal);
    assert_eq!(
        acts.get(&format!("schedule {name}")).map(String::as_str),
        Some("delete"),
        "{acts:?}"
    );
    assert_eq!(
        acts.get(&format!("role {}", env.name("scheduler")))
            .map(String::as_str),
        Some("delete"),
        "{acts:?}"
    );
    assert!(schedule::observe(&env.aws.scheduler, &name)
        .await
        .unwrap()
        .is_none());
    assert!(role::observe(&env.aws.iam, &env.name("scheduler"))
        .await
        .unwrap()
        .is_none());
    // And then nothing of it is in the plan at all.
    let quiet = env.deploy(&[]);
    assert!(!actions(&quiet).keys().any(|k| k.starts_with("schedule ")));
    assert_eq!(mutating(&quiet), 0, "{quiet}");

    // Back, then destroy: deleted with the rest.
    env.write_config(&changed);
    env.deploy(&[]);
    assert!(schedule::observe(&env.aws.scheduler, &name)
        .await
        .unwrap()
        .is_some());
    let gone = env.destroy(&[]);
    assert_eq!(
        actions(&gone)
            .get(&format!("schedule {name}"))
            .map(String::as_str),
        Some("delete"),
        "{gone}"
    );
    assert!(schedule::observe(&env.aws.scheduler, &name)
        .await
        .unwrap()
        .is_none());
}

/// Issue 23, item 4: `backup.dumps` makes deploy schedule `backup dump` into the drops bucket's
/// `dumps/` and `backup drill` of the newest dump (its report under `drills/`), both on the
/// app's latest revision under the scheduler role — described back; the bucket keeps dumps and
/// drill reports `retention_days` (and a deleted or overwritten one as long, as a noncurrent
/// version); the app role may list, read and write `dumps/` and write `drills/`, never delete.
/// A second deploy changes nothing; dropping `drill_schedule` deletes that schedule only;
/// dropping `backup.dumps` deletes the dump schedule, the scheduler role (no schedule is left)
/// and the two lifecycle rules.
#[tokio::test]
async fn dump_and_drill_schedules_run_backup_on_the_drops_bucket_which_keeps_them() {
    use hcctl::resources::{role, schedule};
    let env = AwsEnv::new().await;
    let base = empty_account_config_text(&env.project);
    let dumps = "  dumps:\n    schedule: cron(0 2 * * ? *)\n    drill_schedule: cron(0 5 ? * SUN *)\n    timezone: Europe/Paris\n    retention_days: 7\n";
    let with = |block: &str| base.replacen("  selection:\n", &format!("{block}  selection:\n"), 1);
    env.write_config(&with(dumps));
    let first = env.deploy(&[]);
    let acts = actions(&first);
    let (dump_name, drill_name) = (env.name("dump"), env.name("drill"));
    for n in [&dump_name, &drill_name] {
        assert_eq!(
            acts.get(&format!("schedule {n}")).map(String::as_str),
            Some("create"),
            "{acts:?}"
        );
    }
    assert!(
        !acts.contains_key(&format!("schedule {}", env.name("ingest"))),
        "{acts:?}"
    );
    assert_eq!(
        acts.get(&format!("role {}", env.name("scheduler")))
            .map(String::as_str),
        Some("create"),
        "{acts:?}"
    );

    // Described back.
    let bucket = env.drops_bucket();
    let (app_td, _) = task_definition::latest(&env.aws.ecs, &env.name("app"))
        .await
        .unwrap()
        .expect("the app task definition");
    let scheduler_role = role::observe(&env.aws.iam, &env.name("scheduler"))
        .await
        .unwrap()
        .expect("the scheduler role");
    for (name, expression, command) in [
        (
            &dump_name,
            "cron(0 2 * * ? *)",
            serde_json::json!(["backup", "dump", "--to", format!("s3://{bucket}/dumps/")]),
        ),
        (
            &drill_name,
            "cron(0 5 ? * SUN *)",
            serde_json::json!([
                "backup",
                "drill",
                "--from",
                format!("s3://{bucket}/dumps/"),
                "--report",
                format!("s3://{bucket}/drills/")
            ]),
        ),
    ] {
        let got = env
            .aws
            .scheduler
            .get_schedule()
            .name(name)
            .group_name(schedule::GROUP)
            .send()
            .await
            .expect("the schedule");
        assert_eq!(got.schedule_expression(), Some(expression));
        assert_eq!(got.schedule_expression_timezone(), Some("Europe/Paris"));
        assert_eq!(got.state().map(|s| s.as_str()), Some("ENABLED"));
        let target = got.target().expect("a target");
        assert_eq!(target.role_arn(), scheduler_role.arn);
        let ecs = target.ecs_parameters().expect("ECS parameters");
        assert_eq!(ecs.task_definition_arn(), app_td);
        let input: Value = serde_json::from_str(target.input().expect("an input")).unwrap();
        assert_eq!(
            input,
            serde_json::json!({"containerOverrides": [{"name": "app", "command": command}]}),
            "{name}"
        );
    }

    // The bucket keeps dumps and drill reports 7 days, and a replaced or deleted one as long.
    let lifecycle =
        |seen: &bucket::Observed| -> BTreeMap<String, (String, Option<i32>, Option<i32>)> {
            seen.settings
                .lifecycle
                .iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        (r.prefix.clone(), r.expire_days, r.noncurrent_days),
                    )
                })
                .collect()
        };
    let seen = bucket::observe(&env.aws.s3, &bucket, false)
        .await
        .unwrap()
        .expect("the drops bucket");
    let rules = lifecycle(&seen);
    assert_eq!(
        rules["expire-dumps"],
        ("dumps/".to_string(), Some(7), Some(7)),
        "{rules:?}"
    );
    assert_eq!(
        rules["expire-drills"],
        ("drills/".to_string(), Some(7), Some(7)),
        "{rules:?}"
    );
    assert_eq!(rules["expire-reports"].1, Some(30), "{rules:?}");
    assert_eq!(seen.settings.versioning.as_deref(), Some("Enabled"));

    // The app role: dumps/ listed, read and written, drills/ written; nothing deleted.
    let app = role::observe(&env.aws.iam, &env.name("app-task"))
        .await
        .unwrap()
        .expect("the app role")
        .policy
        .expect("its policy");
    let by_sid: BTreeMap<String, Value> = app["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["Sid"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    let arn = format!("arn:aws:s3:::{bucket}");
    assert_eq!(
        by_sid["ListWhatItReads"]["Condition"]["StringLike"]["s3:prefix"],
        serde_json::json!(["incoming/", "incoming/*", "dumps/", "dumps/*"])
    );
    assert_eq!(by_sid["ListWhatItReads"]["Resource"], arn);
    assert_eq!(
        by_sid["ReadAndWriteDumps"]["Resource"],
        format!("{arn}/dumps/*")
    );
    assert_eq!(
        by_sid["WriteDrillReports"]["Resource"],
        format!("{arn}/drills/*")
    );
    assert!(!app.to_string().contains("Delete"), "{app}");

    // Converged.
    let again = env.deploy(&[]);
    assert_eq!(mutating(&again), 0, "{again}");

    // No drill schedule: that schedule goes, the dump's stays.
    env.write_config(&with(
        &dumps.replace("    drill_schedule: cron(0 5 ? * SUN *)\n", ""),
    ));
    let acts = actions(&env.deploy(&[]));
    assert_eq!(
        acts.get(&format!("schedule {drill_name}"))
            .map(String::as_str),
        Some("delete"),
        "{acts:?}"
    );
    assert_eq!(
        acts.get(&format!("schedule {dump_name}"))
            .map(String::as_str),
        Some("unchanged"),
        "{acts:?}"
    );
    assert!(schedule::observe(&env.aws.scheduler, &drill_name)
        .await
        .unwrap()
        .is_none());
    assert!(schedule::observe(&env.aws.scheduler, &dump_name)
        .await
        .unwrap()
        .is_some());

    // No backup.dumps: the dump schedule, the scheduler role and the two rules go.
    env.write_config(&base);
    let acts = actions(&env.deploy(&[]));
    assert_eq!(
        acts.get(&format!("schedule {dump_name}"))
            .map(String::as_str),
        Some("delete"),
        "{acts:?}"
    );
    assert_eq!(
        acts.get(&format!("role {}", env.name("scheduler")))
            .map(String::as_str),
        Some("delete"),
        "{acts:?}"
    );
    assert!(schedule::observe(&env.aws.scheduler, &dump_name)
        .await
        .unwrap()
        .is_none());
    let seen = bucket::observe(&env.aws.s3, &bucket, false)
        .await
        .unwrap()
        .expect("the drops bucket");
    let rules = lifecycle(&seen);
    assert!(
        !rules.contains_key("expire-dumps") && !rules.contains_key("expire-drills"),
        "{rules:?}"
    );
    let app = role::observe(&env.aws.iam, &env.name("app-task"))
        .await
        .unwrap()
        .expect("the app role")
        .policy
        .expect("its policy");
    assert!(!app.to_string().contains("dumps/"), "{app}");
    env.destroy(&[]);
}

/// Issue 23, item 4: `backup.selection.drops_bucket` puts the drops bucket (exports, dumps,
/// drill reports) in the AWS Backup selection after the file system, tags the bucket with the
/// selection's tag conditions (which AWS Backup ANDs with the ARN), and gives the backup role
/// read access to that bucket only; `backup run --wait` backs both up and backup-status is
/// healthy. Without it again the selection is replaced without the bucket and the role's S3
/// statements go.
#[tokio::test]
async fn the_selection_protects_the_drops_bucket_when_asked() {
    use hcctl::resources::role;
    let env = AwsEnv::new().await;
    let base = empty_account_config_text(&env.project);
    let with = base.replacen(
        "  selection:\n",
        "  selection:\n    drops_bucket: true\n",
        1,
    );
    assert_ne!(with, base);
    env.write_config(&with);
    env.deploy(&[]);
    let bucket = env.drops_bucket();
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let fs = file_system::observe(&env.aws, &env.parsed_config())
        .await
        .unwrap()
        .expect("the file system");
    let plan = backup_plan::observe(&env.aws.backup, &env.name("daily"))
        .await
        .unwrap()
        .expect("backup plan");
    let sel = backup_selection::observe(&env.aws.backup, &plan.id, &env.name("data"))
        .await
        .unwrap()
        .expect("selection");
    assert_eq!(sel.resources, [fs.arn.clone(), bucket_arn.clone()]);
    assert_eq!(
        sel.conditions.get("Backup").map(String::as_str),
        Some("daily")
    );
    let seen = bucket::observe(&env.aws.s3, &bucket, false)
        .await
        .unwrap()
        .expect("the drops bucket");
    assert_eq!(
        seen.settings.tags.get("Backup").map(String::as_str),
        Some("daily"),
        "{:?}",
        seen.settings.tags
    );
    let backup_role = role::observe(&env.aws.iam, &env.name("backup"))
        .await
        .unwrap()
        .expect("the backup role");
    let policy = backup_role.policy.expect("its policy");
    let statement = |sid: &str| {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
    };
    let read = statement("BackUpTheDropsBucket").expect("the bucket statement");
    assert_eq!(read["Resource"], bucket_arn.as_str());
    let objects = statement("ReadTheDropsObjects").expect("the objects statement");
    assert_eq!(objects["Resource"], format!("{bucket_arn}/*").as_str());
    assert!(!policy.to_string().contains("s3:PutObject"), "{policy}");
    let again = env.deploy(&[]);
    assert_eq!(again["outcome"]["api_calls"]["mutating"], 0, "{again}");

    // Backed up: one job per resource, both completed, and the verdict healthy.
    let run = env.run(&["backup", "run", "--wait", "--format", "json"]);
    assert_success(&run);
    let report: Value = serde_json::from_str(&stdout(&run)).unwrap();
    let mut backed_up: Vec<(String, String)> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["resource_arn"].as_str().unwrap_or("").to_string(),
                j["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    backed_up.sort();
    let mut expected = vec![
        (fs.arn.clone(), "COMPLETED".to_string()),
        (bucket_arn.clone(), "COMPLETED".to_string()),
    ];
    expected.sort();
    assert_eq!(backed_up, expected, "{report}");
    let status = env.run(&["backup-status", "--format", "json"]);
    assert_success(&status);

    // Not asked any more: the selection without the bucket, the role without S3.
    env.write_config(&base);
    let acts = actions(&env.deploy(&[]));
    assert_eq!(
        acts.get(&format!("backup_selection {}", env.name("data")))
            .map(String::as_str),
        Some("replace"),
        "{acts:?}"
    );
    let sel = backup_selection::observe(&env.aws.backup, &plan.id, &env.name("data"))
        .await
        .unwrap()
        .expect("selection");
    assert_eq!(sel.resources, std::slice::from_ref(&fs.arn));
    let backup_role = role::observe(&env.aws.iam, &env.name("backup"))
        .await
        .unwrap()
        .expect("the backup role");
    let policy = backup_role.policy.expect("its policy").to_string();
    assert!(!policy.contains("arn:aws:s3"), "{policy}");
    env.destroy(&[&format!("--delete-data={}-dev", env.project)]);
}
