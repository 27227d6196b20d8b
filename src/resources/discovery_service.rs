//! The Cloud Map service MongoDB is found by (`service_discovery.service`, default `mongo`) in
//! the namespace: one A record, TTL [`TTL`] seconds, multivalue answers, no health check of its
//! own (ECS registers the running task's address and deregisters it when the task stops). The
//! ECS service names it in its service registries. Only the TTL and the tags can be brought to
//! the config; a service with other records or another routing policy is unusable (Cloud Map
//! cannot change them). Destroy deletes it after the ECS service (which comes later in the order)
//! is gone, retrying while instances are still being deregistered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_servicediscovery::types::{
    DnsConfig, DnsConfigChange, DnsRecord, FilterCondition, OperationTargetType, RecordType,
    RoutingPolicy, ServiceChange, ServiceFilter, ServiceFilterName,
};
use aws_sdk_servicediscovery::Client;

use super::namespace::{creator_request_id, retag, sd_tags, tags_of, wait_operation};
use super::{Action, Context, Kind, Outputs, Resource, Step};
use crate::aws::{tag_changes, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("discovery_service", "Cloud Map service");

/// The A record's TTL, in seconds: short, so a restarted task's new address is found quickly.
pub const TTL: i64 = 10;

/// How long destroy retries a service that still has instances registered.
const IN_USE_TIMEOUT: Duration = Duration::from_secs(120);

/// The DNS settings, as Cloud Map describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// `(record type, TTL)`, in Cloud Map's order.
    pub records: Vec<(String, i64)>,
    pub routing: Option<String>,
}

impl Dns {
    /// What hcctl creates: one A record, multivalue.
    pub fn desired() -> Dns {
        Dns {
            records: vec![("A".into(), TTL)],
            routing: Some("MULTIVALUE".into()),
        }
    }

    /// Whether the record types and the routing policy are hcctl's (what Cloud Map cannot
    /// change).
    fn same_shape(&self, other: &Dns) -> bool {
        self.routing == other.routing
            && self.records.len() == other.records.len()
            && self
                .records
                .iter()
                .zip(&other.records)
                .all(|((a, _), (b, _))| a == b)
    }

    fn describe(&self) -> String {
        let records: Vec<String> = self
            .records
            .iter()
            .map(|(t, ttl)| format!("{t} TTL {ttl}s"))
            .collect();
        format!(
            "{} record{}, {} routing",
            if records.is_empty() {
                "no".to_string()
            } else {
                records.join(", ")
            },
            if self.records.len() == 1 { "" } else { "s" },
            self.routing.as_deref().unwrap_or("(no)")
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub arn: String,
    pub dns: Dns,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub observed: Option<Observed>,
}

pub fn desired_tags(config: &Config) -> BTreeMap<String, String> {
    config.tags.clone()
}

/// The service named `name` in namespace `namespace_id` (read-only).
pub async fn observe(
    client: &Client,
    namespace_id: &str,
    name: &str,
) -> Result<Option<Observed>, AwsError> {
    let action = format!("looking up Cloud Map service {name}");
    let filter = ServiceFilter::builder()
        .name(ServiceFilterName::NamespaceId)
        .values(namespace_id)
        .condition(FilterCondition::Eq)
        .build()
        .map_err(|e| AwsError::other(action.as_str(), e))?;
    // Some servers ignore the filter (ministack lists every namespace's services), and the
    // summaries do not say which namespace they are in: every service of that name is described,
    // and the one in this namespace kept.
    let mut token: Option<String> = None;
    let mut candidates: Vec<String> = Vec::new();
    loop {
        let out = client
            .list_services()
            .filters(filter.clone())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::new(action.as_str(), &e))?;
        candidates.extend(
            out.services()
                .iter()
                .filter(|s| s.name() == Some(name))
                .filter_map(|s| s.id().map(str::to_string)),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    let mut found = None;
    for id in candidates {
        let out = match client.get_service().id(&id).send().await {
            Ok(out) => out,
            // Deleted between the two calls.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_service_not_found()) =>
            {
                continue
            }
            Err(e) => {
                return Err(AwsError::new(
                    format!("describing Cloud Map service {name}"),
                    &e,
                ))
            }
        };
        if let Some(s) = out.service {
            if s.namespace_id() == Some(namespace_id) {
                found = Some((id, s));
                break;
            }
        }
    }
    let Some((id, s)) = found else {
        return Ok(None);
    };
    let Some(arn) = s.arn() else {
        return Err(AwsError::other(
            action,
            "Cloud Map described the service without its ARN",
        ));
    };
    let dns = Dns {
        records: s
            .dns_config()
            .map(|d| {
                d.dns_records()
                    .iter()
                    .map(|r| (r.r#type().as_str().to_string(), r.ttl()))
                    .collect()
            })
            .unwrap_or_default(),
        routing: s
            .dns_config()
            .and_then(|d| d.routing_policy())
            .map(|p| p.as_str().to_string()),
    };
    Ok(Some(Observed {
        id: id.clone(),
        arn: arn.to_string(),
        dns,
        tags: tags_of(client, arn).await?,
    }))
}

/// What deploy will do to the service (pure). `namespace_id`: the namespace's, once known.
pub fn changes(config: &Config, namespace_id: Option<&String>, item: &Item) -> Step {
    let want = Dns::desired();
    let tags = desired_tags(config);
    let Some(o) = &item.observed else {
        return Step::new(
            KIND,
            &item.name,
            Action::Create,
            vec![
                format!(
                    "{} in namespace {}",
                    want.describe(),
                    Outputs::show(namespace_id)
                ),
                format!("{} tags", tags.len()),
            ],
        );
    };
    if !o.dns.same_shape(&want) {
        return Step::new(
            KIND,
            &item.name,
            Action::Unusable,
            vec![format!(
                "{}: {} where hcctl needs {} (Cloud Map cannot change them): delete the \
                 service (hcctl destroy) to let hcctl create it",
                o.id,
                o.dns.describe(),
                want.describe()
            )],
        );
    }
    let mut lines: Vec<String> = o
        .dns
        .records
        .iter()
        .filter(|(_, ttl)| *ttl != TTL)
        .map(|(t, ttl)| format!("{t} record ttl: {ttl} → {TTL}"))
        .collect();
    lines.extend(tag_changes(&o.tags, &tags));
    Step::compared(KIND, &item.name, Action::Update, lines)
}

fn records(action: &str) -> Result<Vec<DnsRecord>, AwsError> {
    let record = DnsRecord::builder()
        .r#type(RecordType::A)
        .ttl(TTL)
        .build()
        .map_err(|e| AwsError::other(action, e))?;
    Ok(vec![record])
}

/// Create the service or bring its TTL and tags to the config; record its ARN.
pub async fn apply(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
    let client = &cx.aws.discovery;
    let name = &item.name;
    let tags = desired_tags(cx.config);
    if let Some(o) = &item.observed {
        if o.dns.records.iter().any(|(_, ttl)| *ttl != TTL) {
            let action = format!("updating the TTL of Cloud Map service {name}");
            let change = DnsConfigChange::builder()
                .set_dns_records(Some(records(&action)?))
                .build()
                .map_err(|e| AwsError::other(action.as_str(), e))?;
            let out = client
                .update_service()
                .id(&o.id)
                .service(ServiceChange::builder().dns_config(change).build())
                .send()
                .await
                .map_err(|e| AwsError::new(action.as_str(), &e))?;
            if let Some(operation) = out.operation_id() {
                wait_operation(client, operation, OperationTargetType::Service, &action).await?;
            }
        }
        retag(
            client,
            &o.arn,
            &format!("Cloud Map service {name}"),
            &o.tags,
            &tags,
        )
        .await?;
        cx.outputs.discovery_service_arn = Some(o.arn.clone());
        return Ok(format!("updated {}", o.id));
    }
    let action = format!("creating Cloud Map service {name}");
    let Some(namespace_id) = cx.outputs.namespace_id.clone() else {
        return Err(AwsError::other(
            action,
            "the namespace does not exist (a bug in hcctl's order)",
        ));
    };
    let dns = DnsConfig::builder()
        .set_dns_records(Some(records(&action)?))
        .routing_policy(RoutingPolicy::Multivalue)
        .build()
        .map_err(|e| AwsError::other(action.as_str(), e))?;
    let out = client
        .create_service()
        .name(name)
        .namespace_id(&namespace_id)
        .creator_request_id(creator_request_id("sd"))
        .description(format!(
            "hcctl {}: the MongoDB task's address",
            cx.config.environment
        ))
        .dns_config(dns)
        .set_tags(
            (!tags.is_empty())
                .then(|| sd_tags(&action, &tags))
                .transpose()?,
        )
        .send()
        .await
        .map_err(|e| AwsError::new(action.as_str(), &e))?;
    let Some(arn) = out.service().and_then(|s| s.arn()) else {
        return Err(AwsError::other(action, "Cloud Map returned no service ARN"));
    };
    cx.outputs.discovery_service_arn = Some(arn.to_string());
    Ok(arn.to_string())
}

/// Delete the service, retrying (bounded, with backoff) while instances are registered: ECS
/// deregisters the task's address some time after the ECS service is deleted.
pub async fn delete(client: &Client, id: &str, name: &str) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_secs(2);
    loop {
        match client.delete_service().id(id).send().await {
            Ok(_) => return Ok(()),
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_service_not_found() => return Ok(()),
                Some(s) if s.is_resource_in_use() && started.elapsed() < IN_USE_TIMEOUT => {
                    tracing::info!(
                        service = name,
                        "Cloud Map service still has instances; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                _ => {
                    return Err(AwsError::new(
                        format!("deleting Cloud Map service {name} ({id})"),
                        &e,
                    ))
                }
            },
        }
    }
}

/// The discovery service, for the engine.
pub struct DiscoveryService;

impl Resource for DiscoveryService {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let name = cx.config.discovery_service();
        let observed = match cx.outputs.namespace_id.clone() {
            Some(ns) => observe(&cx.aws.discovery, &ns, &name).await?,
            None => None,
        };
        if let Some(o) = &observed {
            if o.dns.same_shape(&Dns::desired()) {
                cx.outputs.discovery_service_arn = Some(o.arn.clone());
            }
        }
        Ok(vec![Item { name, observed }])
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        changes(cx.config, cx.outputs.namespace_id.as_ref(), item)
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
            id: "srv-1".into(),
            arn: "arn:aws:servicediscovery:eu-west-3:123456789012:service/srv-1".into(),
            dns: Dns::desired(),
            tags: desired_tags(config),
        }
    }

    #[test]
    fn the_service_is_created_left_updated_or_refused_with_other_records() {
        let config = crate::config::tests_support::example_config();
        let ns = "ns-1".to_string();
        let name = config.discovery_service();

        let create = changes(
            &config,
            Some(&ns),
            &Item {
                name: name.clone(),
                observed: None,
            },
        );
        assert_eq!(create.action, Action::Create);
        assert_eq!(
            create.changes,
            [
                "A TTL 10s record, MULTIVALUE routing in namespace ns-1".to_string(),
                format!("{} tags", config.tags.len())
            ]
        );
        let later = changes(
            &config,
            None,
            &Item {
                name: name.clone(),
                observed: None,
            },
        );
        assert_eq!(
            later.changes[0],
            "A TTL 10s record, MULTIVALUE routing in namespace (known after apply)"
        );

        let same = Item {
            name: name.clone(),
            observed: Some(observed(&config)),
        };
        let step = changes(&config, Some(&ns), &same);
        assert_eq!(step.action, Action::Unchanged);
        assert!(step.changes.is_empty(), "{:?}", step.changes);

        let mut slow = observed(&config);
        slow.dns.records = vec![("A".into(), 60)];
        let step = changes(
            &config,
            Some(&ns),
            &Item {
                name: name.clone(),
                observed: Some(slow),
            },
        );
        assert_eq!(step.action, Action::Update);
        assert_eq!(step.changes, ["A record ttl: 60 → 10"]);

        let mut weighted = observed(&config);
        weighted.dns.routing = Some("WEIGHTED".into());
        let step = changes(
            &config,
            Some(&ns),
            &Item {
                name,
                observed: Some(weighted),
            },
        );
        assert_eq!(step.action, Action::Unusable);
        assert_eq!(
            step.changes,
            [
                "srv-1: A TTL 10s record, WEIGHTED routing where hcctl needs A TTL 10s record, \
              MULTIVALUE routing (Cloud Map cannot change them): delete the service (hcctl \
              destroy) to let hcctl create it"
            ]
        );
    }
}
