//! Security groups (EC2): one per tier, each letting in only the tier in front of it —
//!
//! - `app` (the migration tasks): no ingress at all;
//! - `mongo` (the MongoDB service): its port from the `app` group only;
//! - `efs` (the file system's mount targets): NFS (2049) from the `mongo` group only.
//!
//! No rule opens anything to an address range (no 0.0.0.0/0): an extra rule found on a group is
//! revoked by the next deploy, and shown in the plan first. Egress stays EC2's default (the tasks
//! pull images and read secrets over HTTPS). They guard the patient data's file system: destroy
//! keeps them with it, and deletes them with `--delete-data` (after the file system's mount
//! targets, retrying while ECS releases the tasks' network interfaces).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    Filter, IpPermission, ResourceType, SecurityGroup as SdkGroup, Tag, TagSpecification,
    UserIdGroupPair,
};
use aws_sdk_ec2::Client;

use super::{Action, Command, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::{tag_changes, tag_delta, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("security_group", "security group");

/// NFS, what EFS mount targets listen on.
pub const NFS_PORT: i32 = 2049;

/// How long destroy retries a group that is still in use (network interfaces being released).
const IN_USE_TIMEOUT: Duration = Duration::from_secs(300);

/// The tiers, in deploy order (each group's rule names the one before it).
pub const TIERS: [&str; 3] = ["app", "mongo", "efs"];

/// One ingress rule: TCP `port` from the group `source` (a tier's group id, or a CIDR when found
/// on AWS: never desired).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub source: String,
}

impl Rule {
    fn show(&self) -> String {
        let ports = if self.from_port == self.to_port {
            self.from_port.to_string()
        } else {
            format!("{}-{}", self.from_port, self.to_port)
        };
        format!("{} {ports} from {}", self.protocol, self.source)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub ingress: BTreeSet<Rule>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub tier: &'static str,
    pub name: String,
    pub observed: Option<Observed>,
}

pub fn group_name(config: &Config, tier: &str) -> String {
    config.resource_name(tier)
}

fn description(config: &Config, tier: &str) -> String {
    let port = config.containers.mongo.port.unwrap_or(27017);
    match tier {
        "app" => format!("hcctl {}: migration tasks (no ingress)", config.environment),
        "mongo" => format!(
            "hcctl {}: MongoDB, port {port} from the app group only",
            config.environment
        ),
        _ => format!(
            "hcctl {}: MongoDB's file system, NFS from the mongo group only",
            config.environment
        ),
    }
}

pub fn desired_tags(config: &Config, tier: &str) -> BTreeMap<String, String> {
    let mut tags = config.tags.clone();
    tags.insert("Name".into(), group_name(config, tier));
    tags
}

/// The rules a tier's group must have, given the ids known so far ([`AFTER_APPLY`] for a group
/// not created yet).
pub fn desired_rules(
    config: &Config,
    tier: &str,
    ids: &BTreeMap<&'static str, String>,
) -> BTreeSet<Rule> {
    let from = |t: &str| {
        ids.get(t)
            .cloned()
            .unwrap_or_else(|| AFTER_APPLY.to_string())
    };
    let rule = |port: i32, source: String| Rule {
        protocol: "tcp".into(),
        from_port: port,
        to_port: port,
        source,
    };
    match tier {
        "mongo" => [rule(
            i32::from(config.containers.mongo.port.unwrap_or(27017)),
            from("app"),
        )]
        .into(),
        "efs" => [rule(NFS_PORT, from("mongo"))].into(),
        _ => BTreeSet::new(),
    }
}

fn rules_of(permissions: &[IpPermission]) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in permissions {
        let protocol = match p.ip_protocol().unwrap_or("-1") {
            "6" => "tcp".to_string(),
            other => other.to_string(),
        };
        let (from_port, to_port) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let mut rule = |source: String| {
            rules.insert(Rule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                source,
            });
        };
        for g in p.user_id_group_pairs() {
            rule(g.group_id().unwrap_or_default().to_string());
        }
        for r in p.ip_ranges() {
            rule(r.cidr_ip().unwrap_or_default().to_string());
        }
        for r in p.ipv6_ranges() {
            rule(r.cidr_ipv6().unwrap_or_default().to_string());
        }
        for r in p.prefix_list_ids() {
            rule(r.prefix_list_id().unwrap_or_default().to_string());
        }
    }
    rules
}

fn observed_of(g: &SdkGroup) -> Observed {
    Observed {
        id: g.group_id().unwrap_or_default().to_string(),
        ingress: rules_of(g.ip_permissions()),
        tags: g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

/// The group named `name` in `vpc` (read-only).
pub async fn observe(client: &Client, vpc: &str, name: &str) -> Result<Option<Observed>, AwsError> {
    let out = client
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(Filter::builder().name("group-name").values(name).build())
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up security group {name}"), &e))?;
    Ok(out
        .security_groups()
        .iter()
        .find(|g| g.group_name() == Some(name))
        .map(observed_of))
}

/// What deploy will do to one group (pure).
pub fn changes(config: &Config, ids: &BTreeMap<&'static str, String>, item: &Item) -> Step {
    let want = desired_rules(config, item.tier, ids);
    let tags = desired_tags(config, item.tier);
    let Some(o) = &item.observed else {
        let mut lines: Vec<String> = want
            .iter()
            .map(|r| format!("ingress {}", r.show()))
            .collect();
        if lines.is_empty() {
            lines.push("no ingress".into());
        }
        lines.push(format!("{} tags", tags.len()));
        return Step::new(KIND, &item.name, Action::Create, lines);
    };
    let mut lines: Vec<String> = want
        .difference(&o.ingress)
        .map(|r| format!("ingress {}: add", r.show()))
        .collect();
    lines.extend(
        o.ingress
            .difference(&want)
            .map(|r| format!("ingress {}: revoke (not in the config)", r.show())),
    );
    lines.extend(tag_changes(&o.tags, &tags));
    Step::compared(KIND, &item.name, Action::Update, lines)
}

fn permission(r: &Rule) -> IpPermission {
    let mut p = IpPermission::builder()
        .ip_protocol(&r.protocol)
        .from_port(r.from_port)
        .to_port(r.to_port);
    p = if r.source.starts_with("sg-") {
        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(&r.source).build())
    } else if r.source.contains(':') {
        p.ipv6_ranges(
            aws_sdk_ec2::types::Ipv6Range::builder()
                .cidr_ipv6(&r.source)
                .build(),
        )
    } else if r.source.starts_with("pl-") {
        p.prefix_list_ids(
            aws_sdk_ec2::types::PrefixListId::builder()
                .prefix_list_id(&r.source)
                .build(),
        )
    } else {
        p.ip_ranges(
            aws_sdk_ec2::types::IpRange::builder()
                .cidr_ip(&r.source)
                .build(),
        )
    };
    p.build()
}

fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Create the group or bring it to the config; record its id.
pub async fn apply(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
    let client = &cx.aws.ec2;
    let config = cx.config;
    let name = &item.name;
    let tags = desired_tags(config, item.tier);
    let (id, have) = match &item.observed {
        Some(o) => (o.id.clone(), o.ingress.clone()),
        None => {
            let Some(vpc) = cx.outputs.vpc_id.clone() else {
                return Err(AwsError::other(
                    format!("creating security group {name}"),
                    "no VPC: see the network step of the plan",
                ));
            };
            let out = client
                .create_security_group()
                .group_name(name)
                .description(description(config, item.tier))
                .vpc_id(vpc)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .set_tags(Some(ec2_tags(&tags)))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::new(format!("creating security group {name}"), &e))?;
            let id = out.group_id().unwrap_or_default().to_string();
            (id, BTreeSet::new())
        }
    };
    cx.outputs.security_groups.insert(item.tier, id.clone());
    let want = desired_rules(config, item.tier, &cx.outputs.security_groups);
    if let Some(r) = want.iter().find(|r| r.source == AFTER_APPLY) {
        return Err(AwsError::other(
            format!("security group {name}"),
            format!(
                "the group of rule {} does not exist yet (a bug in hcctl's order)",
                r.show()
            ),
        ));
    }
    let add: Vec<IpPermission> = want.difference(&have).map(permission).collect();
    if !add.is_empty() {
        client
            .authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(add))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("adding the ingress rules of {name}"), &e))?;
    }
    let revoke: Vec<IpPermission> = have.difference(&want).map(permission).collect();
    if !revoke.is_empty() {
        client
            .revoke_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(revoke))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("revoking ingress rules of {name}"), &e))?;
    }
    if let Some(o) = &item.observed {
        let (set, remove) = tag_delta(&o.tags, &tags);
        if !set.is_empty() {
            client
                .create_tags()
                .resources(&id)
                .set_tags(Some(ec2_tags(&set)))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("tagging security group {name}"), &e))?;
        }
        if !remove.is_empty() {
            client
                .delete_tags()
                .resources(&id)
                .set_tags(Some(
                    remove
                        .iter()
                        .map(|k| Tag::builder().key(k).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| AwsError::new(format!("untagging security group {name}"), &e))?;
        }
        return Ok(format!("updated {id}"));
    }
    Ok(id)
}

/// Delete a group, retrying (bounded, with backoff) while it is in use: ECS and EFS release their
/// network interfaces some time after the task or mount target is gone.
pub async fn delete(client: &Client, id: &str, name: &str) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_secs(2);
    loop {
        match client.delete_security_group().group_id(id).send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let code = e.as_service_error().and_then(|s| s.meta().code());
                match code {
                    Some("InvalidGroup.NotFound") => return Ok(()),
                    Some("DependencyViolation") if started.elapsed() < IN_USE_TIMEOUT => {
                        tracing::info!(group = name, "security group still in use; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(20));
                    }
                    _ => {
                        return Err(AwsError::new(
                            format!("deleting security group {name} ({id})"),
                            &e,
                        ))
                    }
                }
            }
        }
    }
}

/// The security groups, for the engine.
pub struct SecurityGroups;

impl Resource for SecurityGroups {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        for tier in TIERS {
            let name = group_name(cx.config, tier);
            let observed = match cx.outputs.vpc_id.clone() {
                Some(vpc) => observe(&cx.aws.ec2, &vpc, &name).await?,
                None => None,
            };
            if let Some(o) = &observed {
                cx.outputs.security_groups.insert(tier, o.id.clone());
            }
            items.push(Item {
                tier,
                name,
                observed,
            });
        }
        // Destroy removes the groups whose rules name the others first.
        if cx.command == Command::Destroy {
            items.reverse();
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(cx.config, &cx.outputs.security_groups, item)
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        apply(cx, item).await
    }

    fn removal(cx: &Context<'_>, item: &Item) -> Step {
        // An adopted file system keeps its mount targets (mount_target.rs), and they keep the
        // groups in use: deleting those would only fail on DependencyViolation.
        let delete = cx.delete_data && cx.config.adopted_file_system().is_none();
        match (&item.observed, delete) {
            (None, _) => Step::new(KIND, &item.name, Action::Absent, vec![]),
            (Some(o), false) => Step::new(
                KIND,
                &item.name,
                Action::Keep,
                vec![format!("{}: kept with the file system it guards", o.id)],
            ),
            (Some(o), true) => Step::new(KIND, &item.name, Action::Delete, vec![o.id.clone()]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match &item.observed {
            Some(o) => delete(&cx.aws.ec2, &o.id, &item.name).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tier_lets_in_only_the_tier_in_front_of_it() {
        let config = crate::config::tests_support::example_config();
        let ids: BTreeMap<&'static str, String> =
            [("app", "sg-a".to_string()), ("mongo", "sg-m".to_string())].into();
        assert!(desired_rules(&config, "app", &ids).is_empty());
        let mongo: Vec<String> = desired_rules(&config, "mongo", &ids)
            .iter()
            .map(Rule::show)
            .collect();
        assert_eq!(mongo, ["tcp 27017 from sg-a"]);
        let efs: Vec<String> = desired_rules(&config, "efs", &ids)
            .iter()
            .map(Rule::show)
            .collect();
        assert_eq!(efs, ["tcp 2049 from sg-m"]);
        // A rule someone added by hand (open to the internet) is revoked.
        let item = Item {
            tier: "mongo",
            name: "hcctl-dev-mongo".into(),
            observed: Some(Observed {
                id: "sg-m".into(),
                ingress: [
                    Rule {
                        protocol: "tcp".into(),
                        from_port: 27017,
                        to_port: 27017,
                        source: "sg-a".into(),
                    },
                    Rule {
                        protocol: "tcp".into(),
                        from_port: 27017,
                        to_port: 27017,
                        source: "0.0.0.0/0".into(),
                    },
                ]
                .into(),
                tags: desired_tags(&config, "mongo"),
            }),
        };
        let step = changes(&config, &ids, &item);
        assert_eq!(step.action, Action::Update);
        assert_eq!(
            step.changes,
            ["ingress tcp 27017 from 0.0.0.0/0: revoke (not in the config)"]
        );
    }
}
