//! The Cloud Map private DNS namespace (`service_discovery.namespace`, default
//! `<environment>.<project>.internal`) in the deploy's VPC: where the `mongo` name the app
//! connects to lives. Created with the config's tags; only its tags are brought to the config
//! afterwards (a namespace serves one VPC and cannot move: one found in another VPC is unusable).
//!
//! Cloud Map does not say which VPC a namespace serves (its Route 53 hosted zone does), so hcctl
//! records the VPC in the description it creates the namespace with and checks that; a namespace
//! made by someone else, without it, is not checked. Creating and deleting are asynchronous in
//! Cloud Map: both return an operation, which hcctl polls ([`wait_operation`]) until it ends.
//! Destroy deletes the namespace after the discovery service in it (later in the order, so
//! removed first).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_servicediscovery::types::{
    FilterCondition, NamespaceFilter, NamespaceFilterName, NamespaceSummary, NamespaceType,
    OperationStatus, OperationTargetType, Tag,
};
use aws_sdk_servicediscovery::Client;

use super::{Action, Command, Context, Kind, Outputs, Resource, Step};
use crate::aws::{tag_changes, tag_delta, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("namespace", "Cloud Map namespace");

/// How long hcctl waits for a Cloud Map operation (creating or deleting a namespace takes a
/// minute or two: Route 53 creates or deletes the hosted zone).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub arn: String,
    /// The VPC recorded in the description hcctl created it with; `None` when not recorded.
    pub vpc: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub observed: Option<Observed>,
}

/// The description hcctl creates the namespace with: it records the VPC (see the module doc).
pub fn description(config: &Config, vpc: &str) -> String {
    format!(
        "hcctl {}: MongoDB's private DNS in {vpc}",
        config.environment
    )
}

/// The VPC a description records (`vpc-…`), if any.
pub fn vpc_of_description(description: &str) -> Option<String> {
    description
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .map(|w| w.trim_end_matches(['.', ':']))
        .find(|w| {
            w.strip_prefix("vpc-")
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(str::to_string)
}

pub fn desired_tags(config: &Config) -> BTreeMap<String, String> {
    config.tags.clone()
}

pub(crate) fn sd_tags(action: &str, tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::other(action, e))
        })
        .collect()
}

/// The tags of a Cloud Map resource (read-only).
pub(crate) async fn tags_of(
    client: &Client,
    arn: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    let out = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the tags of {arn}"), &e))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// Bring the tags of a Cloud Map resource from `have` to `want`.
pub(crate) async fn retag(
    client: &Client,
    arn: &str,
    what: &str,
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let (set, remove) = tag_delta(have, want);
    if !set.is_empty() {
        let action = format!("tagging {what}");
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sd_tags(&action, &set)?))
            .send()
            .await
            .map_err(|e| AwsError::new(action, &e))?;
    }
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("untagging {what}"), &e))?;
    }
    Ok(())
}

/// An id Cloud Map uses to make a create call idempotent (its retries send the same one).
pub(crate) fn creator_request_id(prefix: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("hcctl-{prefix}-{}-{secs}", std::process::id())
}

/// Poll a Cloud Map operation (with backoff, bounded by [`OPERATION_TIMEOUT`]) until it
/// succeeds; returns the id of its `target` (the namespace an operation created), if named.
pub async fn wait_operation(
    client: &Client,
    operation_id: &str,
    target: OperationTargetType,
    action: &str,
) -> Result<Option<String>, AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        let out = client
            .get_operation()
            .operation_id(operation_id)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("{action} (operation {operation_id})"), &e))?;
        let Some(op) = out.operation() else {
            return Err(AwsError::other(
                action,
                format!("Cloud Map did not describe operation {operation_id}"),
            ));
        };
        let status = op.status().map_or("(no status)", |s| s.as_str());
        match op.status() {
            Some(OperationStatus::Success) => {
                return Ok(op.targets().and_then(|t| t.get(&target)).cloned());
            }
            Some(OperationStatus::Fail) => {
                return Err(AwsError::other(
                    action,
                    format!(
                        "Cloud Map operation {operation_id} failed: {}{}",
                        op.error_code()
                            .map(|c| format!("{c}: "))
                            .unwrap_or_default(),
                        op.error_message().unwrap_or("(no message)")
                    ),
                ));
            }
            _ => {}
        }
        if started.elapsed() >= OPERATION_TIMEOUT {
            return Err(AwsError::other(
                action,
                format!(
                    "Cloud Map operation {operation_id} still {status} after {}s; run the \
                     command again later",
                    OPERATION_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// The private DNS namespace named `name` (read-only).
pub async fn observe(client: &Client, name: &str) -> Result<Option<Observed>, AwsError> {
    let action = format!("looking up Cloud Map namespace {name}");
    let filter = NamespaceFilter::builder()
        .name(NamespaceFilterName::Type)
        .values(NamespaceType::DnsPrivate.as_str())
        .condition(FilterCondition::Eq)
        .build()
        .map_err(|e| AwsError::other(action.as_str(), e))?;
    let mut token: Option<String> = None;
    let found: Option<NamespaceSummary> = loop {
        let out = client
            .list_namespaces()
            .filters(filter.clone())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::new(action.as_str(), &e))?;
        if let Some(ns) = out.namespaces().iter().find(|ns| {
            ns.name() == Some(name) && ns.r#type().is_none_or(|t| *t == NamespaceType::DnsPrivate)
        }) {
            break Some(ns.clone());
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break None,
        }
    };
    let Some(ns) = found else {
        return Ok(None);
    };
    let (Some(id), Some(arn)) = (ns.id(), ns.arn()) else {
        return Err(AwsError::other(
            action,
            "Cloud Map listed the namespace without its id or ARN",
        ));
    };
    Ok(Some(Observed {
        id: id.to_string(),
        arn: arn.to_string(),
        vpc: ns.description().and_then(vpc_of_description),
        tags: tags_of(client, arn).await?,
    }))
}

/// What deploy will do to the namespace (pure). `vpc`: the deploy's VPC, once known.
pub fn changes(config: &Config, vpc: Option<&String>, item: &Item) -> Step {
    let tags = desired_tags(config);
    let Some(o) = &item.observed else {
        return Step::new(
            KIND,
            &item.name,
            Action::Create,
            vec![
                format!("private DNS in {}", Outputs::show(vpc)),
                format!("{} tags", tags.len()),
            ],
        );
    };
    if let (Some(have), Some(want)) = (&o.vpc, vpc) {
        if have != want {
            return Step::new(
                KIND,
                &item.name,
                Action::Unusable,
                vec![format!(
                    "{} serves {have}, not {want}: a namespace cannot move to another VPC; \
                     delete it (hcctl destroy) or name another one (service_discovery.namespace)",
                    o.id
                )],
            );
        }
    }
    Step::compared(
        KIND,
        &item.name,
        Action::Update,
        tag_changes(&o.tags, &tags),
    )
}

/// Create the namespace (waiting for Cloud Map's operation) or bring its tags to the config;
/// record its id.
pub async fn apply(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
    let client = &cx.aws.discovery;
    let name = &item.name;
    let tags = desired_tags(cx.config);
    if let Some(o) = &item.observed {
        retag(
            client,
            &o.arn,
            &format!("Cloud Map namespace {name}"),
            &o.tags,
            &tags,
        )
        .await?;
        cx.outputs.namespace_id = Some(o.id.clone());
        return Ok(format!("updated {}", o.id));
    }
    let action = format!("creating Cloud Map namespace {name}");
    let Some(vpc) = cx.outputs.vpc_id.clone() else {
        return Err(AwsError::other(
            action,
            "no VPC: see the network step of the plan",
        ));
    };
    let out = client
        .create_private_dns_namespace()
        .name(name)
        .vpc(&vpc)
        .creator_request_id(creator_request_id("ns"))
        .description(description(cx.config, &vpc))
        .set_tags(
            (!tags.is_empty())
                .then(|| sd_tags(&action, &tags))
                .transpose()?,
        )
        .send()
        .await
        .map_err(|e| AwsError::new(action.as_str(), &e))?;
    let Some(operation) = out.operation_id() else {
        return Err(AwsError::other(
            action,
            "Cloud Map returned no operation id",
        ));
    };
    let id = wait_operation(client, operation, OperationTargetType::Namespace, &action)
        .await?
        .ok_or_else(|| {
            AwsError::other(
                action.as_str(),
                format!("operation {operation} succeeded without naming the namespace"),
            )
        })?;
    cx.outputs.namespace_id = Some(id.clone());
    Ok(id)
}

/// Delete the namespace and wait for Cloud Map to finish; one already gone is fine.
pub async fn delete(client: &Client, id: &str, name: &str) -> Result<(), AwsError> {
    let action = format!("deleting Cloud Map namespace {name} ({id})");
    let out = match client.delete_namespace().id(id).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_namespace_not_found()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(AwsError::new(action, &e)),
    };
    match out.operation_id() {
        Some(operation) => {
            wait_operation(client, operation, OperationTargetType::Namespace, &action).await?;
            Ok(())
        }
        None => Ok(()),
    }
}

/// The namespace, for the engine.
pub struct Namespace;

impl Resource for Namespace {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let name = cx.config.namespace();
        let observed = observe(&cx.aws.discovery, &name).await?;
        if let Some(o) = &observed {
            // Deploy: only a namespace in the deploy's VPC keeps its identity; destroy needs the
            // id wherever it is, to find the discovery service in it.
            let same_vpc = match (&o.vpc, &cx.outputs.vpc_id) {
                (Some(have), Some(want)) => have == want,
                _ => true,
            };
            if same_vpc || cx.command == Command::Destroy {
                cx.outputs.namespace_id = Some(o.id.clone());
            }
        }
        Ok(vec![Item { name, observed }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(cx.config, cx.outputs.vpc_id.as_ref(), item)
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        apply(cx, item).await
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        match &item.observed {
            None => Step::new(KIND, &item.name, Action::Absent, vec![]),
            Some(o) => Step::new(KIND, &item.name, Action::Delete, vec![o.id.clone()]),
        }
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        match &item.observed {
            Some(o) => delete(&cx.aws.discovery, &o.id, &item.name).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(config: &Config) -> Observed {
        Observed {
            id: "ns-1".into(),
            arn: "arn:aws:servicediscovery:eu-west-3:123456789012:namespace/ns-1".into(),
            vpc: vpc_of_description(&description(config, "vpc-0abc")),
            tags: desired_tags(config),
        }
    }

    #[test]
    fn the_namespace_is_created_left_retagged_or_refused_in_another_vpc() {
        let config = crate::config::tests_support::example_config();
        let vpc = "vpc-0abc".to_string();
        let name = config.namespace();
        assert_eq!(name, "dev.hcctl.internal");

        let create = changes(
            &config,
            Some(&vpc),
            &Item {
                name: name.clone(),
                observed: None,
            },
        );
        assert_eq!(create.action, Action::Create);
        assert_eq!(
            create.changes,
            [
                "private DNS in vpc-0abc".to_string(),
                format!("{} tags", config.tags.len())
            ]
        );
        let unknown = changes(
            &config,
            None,
            &Item {
                name: name.clone(),
                observed: None,
            },
        );
        assert_eq!(unknown.changes[0], "private DNS in (known after apply)");

        let same = Item {
            name: name.clone(),
            observed: Some(observed(&config)),
        };
        let step = changes(&config, Some(&vpc), &same);
        assert_eq!(step.action, Action::Unchanged);
        assert!(step.changes.is_empty(), "{:?}", step.changes);

        let mut retagged = observed(&config);
        retagged.tags.insert("Extra".into(), "by hand".into());
        let step = changes(
            &config,
            Some(&vpc),
            &Item {
                name: name.clone(),
                observed: Some(retagged),
            },
        );
        assert_eq!(step.action, Action::Update);
        assert_eq!(step.changes, ["tag Extra: removed"]);

        let step = changes(&config, Some(&"vpc-0def".to_string()), &same);
        assert_eq!(step.action, Action::Unusable);
        assert_eq!(
            step.changes,
            [
                "ns-1 serves vpc-0abc, not vpc-0def: a namespace cannot move to another VPC; \
              delete it (hcctl destroy) or name another one (service_discovery.namespace)"
            ]
        );

        // A namespace hcctl did not create records no VPC: not checked.
        let mut foreign = observed(&config);
        foreign.vpc = None;
        let step = changes(
            &config,
            Some(&"vpc-0def".to_string()),
            &Item {
                name,
                observed: Some(foreign),
            },
        );
        assert_eq!(step.action, Action::Unchanged);
    }

    #[test]
    fn the_vpc_is_read_back_from_the_description() {
        assert_eq!(
            vpc_of_description("hcctl dev: MongoDB's private DNS in vpc-0a1b2c."),
            Some("vpc-0a1b2c".to_string())
        );
        assert_eq!(vpc_of_description("made by hand"), None);
        assert_eq!(vpc_of_description("vpc-notahex"), None);
    }
}
