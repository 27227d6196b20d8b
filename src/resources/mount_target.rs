//! The file system's mount targets (EFS): one in each availability zone of the network's subnets
//! (EFS allows one per zone), each behind the `efs` security group only. What the MongoDB task
//! mounts through; kept with the file system by destroy, deleted with it by `--delete-data`.

use std::time::{Duration, Instant};

use aws_sdk_efs::types::LifeCycleState;
use aws_sdk_efs::Client;

use super::{Action, Context, Kind, Outputs, Resource, Step, AFTER_APPLY};
use crate::aws::AwsError;

pub const KIND: Kind = Kind::new("mount_target", "mount target");

/// How long deploy waits for a new mount target to become available.
const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub subnet: String,
    pub state: String,
    pub security_groups: Vec<String>,
}

/// One subnet's mount target: wanted (`wanted`: the subnet is one of the network's), and what is
/// there.
#[derive(Debug, Clone)]
pub struct Item {
    pub subnet: String,
    pub wanted: bool,
    pub observed: Option<Observed>,
}

/// The mount targets of file system `fs` (read-only), with their security groups.
pub async fn observe(client: &Client, fs: &str) -> Result<Vec<Observed>, AwsError> {
    let out = client
        .describe_mount_targets()
        .file_system_id(fs)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the mount targets of {fs}"), &e))?;
    let mut found = Vec::new();
    for mt in out.mount_targets() {
        if matches!(
            mt.life_cycle_state(),
            LifeCycleState::Deleting | LifeCycleState::Deleted
        ) {
            continue;
        }
        let id = mt.mount_target_id().to_string();
        let groups = client
            .describe_mount_target_security_groups()
            .mount_target_id(&id)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("reading the security groups of {id}"), &e))?;
        let mut security_groups = groups.security_groups().to_vec();
        security_groups.sort();
        found.push(Observed {
            id,
            subnet: mt.subnet_id().to_string(),
            state: mt.life_cycle_state().as_str().to_string(),
            security_groups,
        });
    }
    Ok(found)
}

fn desired_groups(cx: &Context<'_>) -> Vec<String> {
    vec![Outputs::show(cx.outputs.security_groups.get("efs"))]
}

/// What deploy will do to one subnet's mount target (pure).
pub fn changes(item: &Item, groups: &[String], adopted: bool) -> Step {
    match (&item.observed, item.wanted) {
        (None, _) => Step::new(
            KIND,
            &item.subnet,
            Action::Create,
            vec![format!("security groups {}", groups.join(", "))],
        ),
        (Some(o), true) if adopted && o.security_groups != groups => Step::new(
            KIND,
            &item.subnet,
            Action::Unchanged,
            vec![format!(
                "{} of the adopted file system: security groups {} left as they are (they must \
                 let NFS, port 2049, in from the mongo group)",
                o.id,
                o.security_groups.join(", ")
            )],
        ),
        (Some(o), true) => {
            let mut lines = Vec::new();
            if o.security_groups != groups {
                lines.push(format!(
                    "security groups: {} → {}",
                    o.security_groups.join(", "),
                    groups.join(", ")
                ));
            }
            Step::compared(KIND, &item.subnet, Action::Update, lines)
        }
        (Some(o), false) => Step::new(
            KIND,
            &item.subnet,
            Action::Unchanged,
            vec![format!(
                "{} is not in the network's subnets: left as it is (delete it yourself if unused)",
                o.id
            )],
        ),
    }
}

async fn wait_available(client: &Client, fs: &str, id: &str) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let state = observe(client, fs)
            .await?
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| m.state);
        match state.as_deref() {
            Some("available") => return Ok(()),
            Some("error") => {
                return Err(AwsError::other(
                    format!("creating mount target {id}"),
                    "EFS reports state error: delete it and deploy again",
                ))
            }
            _ if started.elapsed() >= AVAILABLE_TIMEOUT => {
                return Err(AwsError::other(
                    format!("creating mount target {id}"),
                    format!(
                        "not available after {}s: deploy again to continue",
                        AVAILABLE_TIMEOUT.as_secs()
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

/// The mount targets, for the engine.
pub struct MountTargets;

impl Resource for MountTargets {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let existing = match &cx.outputs.file_system_id {
            Some(fs) => observe(&cx.aws.efs, fs).await?,
            None => Vec::new(),
        };
        let mut items: Vec<Item> = cx
            .outputs
            .mount_subnets
            .iter()
            .map(|subnet| Item {
                subnet: subnet.clone(),
                wanted: true,
                observed: existing.iter().find(|m| &m.subnet == subnet).cloned(),
            })
            .collect();
        items.extend(
            existing
                .iter()
                .filter(|m| !cx.outputs.mount_subnets.contains(&m.subnet))
                .map(|m| Item {
                    subnet: m.subnet.clone(),
                    wanted: false,
                    observed: Some(m.clone()),
                }),
        );
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(
            item,
            &desired_groups(cx),
            cx.config.adopted_file_system().is_some(),
        )
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        let client = &cx.aws.efs;
        let groups = desired_groups(cx);
        let (Some(fs), false) = (
            cx.outputs.file_system_id.clone(),
            groups.iter().any(|g| g == AFTER_APPLY),
        ) else {
            return Err(AwsError::other(
                format!("mount target in {}", item.subnet),
                "the file system or its security group does not exist (a bug in hcctl's order)",
            ));
        };
        match &item.observed {
            None => {
                let out = client
                    .create_mount_target()
                    .file_system_id(&fs)
                    .subnet_id(&item.subnet)
                    .set_security_groups(Some(groups))
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::new(format!("creating a mount target in {}", item.subnet), &e)
                    })?;
                let id = out.mount_target_id().to_string();
                wait_available(client, &fs, &id).await?;
                Ok(id)
            }
            Some(o) => {
                client
                    .modify_mount_target_security_groups()
                    .mount_target_id(&o.id)
                    .set_security_groups(Some(groups))
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::new(format!("setting the security groups of {}", o.id), &e)
                    })?;
                Ok(format!("updated {}", o.id))
            }
        }
    }

    fn removal(cx: &Context<'_>, item: &Item) -> Step {
        match (
            &item.observed,
            cx.delete_data && cx.config.adopted_file_system().is_none(),
        ) {
            (None, _) => Step::new(KIND, &item.subnet, Action::Absent, vec![]),
            (Some(o), false) => Step::new(
                KIND,
                &item.subnet,
                Action::Keep,
                vec![format!("{}: kept with the file system", o.id)],
            ),
            (Some(o), true) => Step::new(KIND, &item.subnet, Action::Delete, vec![o.id.clone()]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        let Some(o) = &item.observed else {
            return Ok(());
        };
        match cx
            .aws
            .efs
            .delete_mount_target()
            .mount_target_id(&o.id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_mount_target_not_found()) =>
            {
                Ok(())
            }
            Err(e) => Err(AwsError::new(format!("deleting mount target {}", o.id), &e)),
        }
    }
}
