//! The network, a read-only kind: the VPC (`network.vpc_id`, or the account's default VPC) and
//! the subnets the tasks and the file system's mount targets use (`network.subnets`, or all of
//! the VPC's). hcctl never creates or changes a VPC; it checks that what the config names exists
//! and belongs together, and tells later kinds the ids.

use aws_sdk_ec2::types::Filter;

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::{Aws, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("network", "network");

/// The VPC and its subnets, as EC2 describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub vpc_id: Option<String>,
    pub default_vpc: bool,
    /// `(subnet id, availability zone)`, in the config's order (or EC2's, sorted by zone).
    pub subnets: Vec<(String, String)>,
    /// Subnets the config names that EC2 does not know, or that lie in another VPC.
    pub problems: Vec<String>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Look the VPC and the subnets up (read-only).
pub async fn observe(aws: &Aws, config: &Config) -> Result<Observed, AwsError> {
    let n = &config.network;
    let vpcs = if n.vpc_id == "default" {
        aws.ec2
            .describe_vpcs()
            .filters(filter("is-default", "true"))
            .send()
            .await
            .map_err(|e| AwsError::new("looking up the default VPC", &e))?
    } else {
        match aws.ec2.describe_vpcs().vpc_ids(&n.vpc_id).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().and_then(|s| s.meta().code())
                    == Some("InvalidVpcID.NotFound") =>
            {
                return Ok(Observed {
                    vpc_id: None,
                    default_vpc: false,
                    subnets: Vec::new(),
                    problems: Vec::new(),
                })
            }
            Err(e) => return Err(AwsError::new(format!("describing VPC {}", n.vpc_id), &e)),
        }
    };
    let Some(vpc) = vpcs.vpcs().first() else {
        return Ok(Observed {
            vpc_id: None,
            default_vpc: false,
            subnets: Vec::new(),
            problems: Vec::new(),
        });
    };
    let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
    let out = aws
        .ec2
        .describe_subnets()
        .filters(filter("vpc-id", &vpc_id))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the subnets of {vpc_id}"), &e))?;
    let mut in_vpc: Vec<(String, String)> = out
        .subnets()
        .iter()
        .filter_map(|s| {
            Some((
                s.subnet_id()?.to_string(),
                s.availability_zone().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    in_vpc.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let mut problems = Vec::new();
    let subnets = if n.subnets.is_empty() {
        in_vpc
    } else {
        n.subnets
            .iter()
            .filter_map(|id| {
                let found = in_vpc.iter().find(|(s, _)| s == id).cloned();
                if found.is_none() {
                    problems.push(format!("network.subnets: {id} is not a subnet of {vpc_id}"));
                }
                found
            })
            .collect()
    };
    Ok(Observed {
        vpc_id: Some(vpc_id),
        default_vpc: vpc.is_default().unwrap_or(false),
        subnets,
        problems,
    })
}

/// The plan's step: what the deploy will use, or why it cannot.
pub fn changes(config: &Config, o: &Observed) -> Step {
    let name = &config.network.vpc_id;
    let Some(vpc) = &o.vpc_id else {
        let why = if name == "default" {
            "this account and region have no default VPC: set network.vpc_id and network.subnets"
                .to_string()
        } else {
            format!("VPC {name} not found (network.vpc_id)")
        };
        return Step::new(KIND, name, Action::Missing, vec![why]);
    };
    if !o.problems.is_empty() {
        return Step::new(KIND, name, Action::Unusable, o.problems.clone());
    }
    if o.subnets.is_empty() {
        return Step::new(
            KIND,
            name,
            Action::Unusable,
            vec![format!(
                "{vpc} has no subnets: create some, or name another VPC"
            )],
        );
    }
    let zones: std::collections::BTreeSet<&str> =
        o.subnets.iter().map(|(_, z)| z.as_str()).collect();
    let mut lines = vec![
        format!("vpc {vpc}{}", if o.default_vpc { " (default)" } else { "" }),
        format!(
            "subnets {} ({} availability zone{})",
            o.subnets
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            zones.len(),
            if zones.len() == 1 { "" } else { "s" }
        ),
    ];
    if config.network.assign_public_ip {
        lines.push("tasks get public IPs (network.assign_public_ip)".into());
    }
    Step::new(KIND, name, Action::Unchanged, lines)
}

/// The network, for the engine: observed (and its ids put into the outputs), never changed.
pub struct Network;

impl Resource for Network {
    type Item = Observed;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Observed>, AwsError> {
        let o = observe(cx.aws, cx.config).await?;
        cx.outputs.vpc_id = o.vpc_id.clone();
        cx.outputs.subnets = o.subnets.iter().map(|(s, _)| s.clone()).collect();
        let mut zones = std::collections::BTreeSet::new();
        cx.outputs.mount_subnets = o
            .subnets
            .iter()
            .filter(|(_, zone)| zones.insert(zone.clone()))
            .map(|(s, _)| s.clone())
            .collect();
        Ok(vec![o])
    }

    fn step(cx: &Context<'_>, o: &Observed) -> Step {
        changes(cx.config, o)
    }

    async fn apply_step(_: &mut Context<'_>, o: &Observed) -> Result<String, AwsError> {
        Err(AwsError::other(
            "network",
            format!(
                "hcctl does not create or change VPCs ({}): fix network.vpc_id / network.subnets",
                o.vpc_id.as_deref().unwrap_or("no VPC")
            ),
        ))
    }

    fn removal(cx: &Context<'_>, _: &Observed) -> Step {
        Step::new(
            KIND,
            &cx.config.network.vpc_id,
            Action::Keep,
            vec!["not managed by hcctl".into()],
        )
    }

    async fn remove(_: &Context<'_>, _: &Observed) -> Result<(), AwsError> {
        Err(AwsError::other("network", "not managed by hcctl"))
    }
}
