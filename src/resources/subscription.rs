//! The alerts topic's subscriptions: one per `alerts.email` address and `alerts.https` URL.
//! SNS sends each new endpoint a confirmation (a mail, a POST) and delivers nothing before it is
//! confirmed; the plan shows such a subscription as pending. An email or HTTPS subscription the
//! config no longer lists is removed (Unsubscribe) once confirmed — an unconfirmed one cannot be
//! removed through the API and lapses by itself after three days, which the plan says. Other
//! protocols (an SQS queue, a Lambda function someone subscribed) are not hcctl's and are left
//! alone. Destroy deletes the topic, and its subscriptions with it.

use aws_sdk_sns::Client;

use super::{Action, Context, Kind, Resource, Step, AFTER_APPLY};
use crate::aws::AwsError;
use crate::config::Config;

pub const KIND: Kind = Kind::new("subscription", "subscription");

/// What SNS lists as the ARN of a subscription not confirmed yet.
const PENDING: &str = "PendingConfirmation";

/// The protocols hcctl manages.
const MANAGED: [&str; 2] = ["email", "https"];

/// `(protocol, endpoint)` the config asks for.
pub fn desired(config: &Config) -> Vec<(String, String)> {
    let Some(a) = &config.alerts else {
        return vec![];
    };
    a.email
        .iter()
        .map(|e| ("email".to_string(), e.clone()))
        .chain(a.https.iter().map(|u| ("https".to_string(), u.clone())))
        .collect()
}

/// One subscription of the topic, as SNS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub protocol: String,
    pub endpoint: String,
    /// The ARN, or [`PENDING`].
    pub arn: String,
}

/// The topic's email and HTTPS subscriptions (read-only).
pub async fn observe(client: &Client, topic_arn: &str) -> Result<Vec<Observed>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing the subscriptions of {topic_arn}"), &e))?;
        for s in page.subscriptions() {
            let protocol = s.protocol().unwrap_or_default();
            if MANAGED.contains(&protocol) {
                out.push(Observed {
                    protocol: protocol.to_string(),
                    endpoint: s.endpoint().unwrap_or_default().to_string(),
                    arn: s.subscription_arn().unwrap_or(PENDING).to_string(),
                });
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

pub struct Item {
    pub protocol: String,
    pub endpoint: String,
    pub wanted: bool,
    pub observed: Option<Observed>,
}

impl Item {
    fn name(&self) -> String {
        format!("{}:{}", self.protocol, self.endpoint)
    }
}

/// Deploy's step (pure).
pub fn changes(item: &Item) -> Step {
    let name = item.name();
    let pending = item.observed.as_ref().is_some_and(|o| o.arn == PENDING);
    match (item.wanted, &item.observed) {
        (true, None) => Step::new(
            KIND,
            &name,
            Action::Create,
            vec![format!(
                "SNS sends {} a confirmation: nothing is delivered before it is confirmed",
                item.endpoint
            )],
        ),
        (true, Some(_)) if pending => Step::new(
            KIND,
            &name,
            Action::Unchanged,
            vec!["pending confirmation (the endpoint has not confirmed yet)".to_string()],
        ),
        (true, Some(_)) => Step::new(KIND, &name, Action::Unchanged, vec![]),
        (false, Some(_)) if pending => Step::new(
            KIND,
            &name,
            Action::Unchanged,
            vec![
                "not in the config, but unconfirmed: SNS cannot remove it, it lapses after 3 days"
                    .to_string(),
            ],
        ),
        (false, Some(_)) => Step::new(
            KIND,
            &name,
            Action::Delete,
            vec!["not in the config".to_string()],
        ),
        (false, None) => Step::new(KIND, &name, Action::Absent, vec![]),
    }
}

/// The subscriptions, for the engine.
pub struct Subscriptions;

impl Resource for Subscriptions {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let observed = match (&cx.outputs.alerts_topic_arn, cx.outputs.alerts_topic_exists) {
            (Some(arn), true) => observe(&cx.aws.sns, arn).await?,
            _ => vec![],
        };
        let mut items: Vec<Item> = desired(cx.config)
            .into_iter()
            .map(|(protocol, endpoint)| {
                let found = observed
                    .iter()
                    .find(|o| o.protocol == protocol && o.endpoint == endpoint)
                    .cloned();
                Item {
                    protocol,
                    endpoint,
                    wanted: true,
                    observed: found,
                }
            })
            .collect();
        for o in observed {
            if !items
                .iter()
                .any(|i| i.protocol == o.protocol && i.endpoint == o.endpoint)
            {
                items.push(Item {
                    protocol: o.protocol.clone(),
                    endpoint: o.endpoint.clone(),
                    wanted: false,
                    observed: Some(o),
                });
            }
        }
        Ok(items)
    }

    fn step(_: &Context<'_>, item: &Item) -> Step {
        let step = changes(item);
        // No longer in the config (removed now, or with its topic): what the config said of it
        // (`hcctl cost`'s `--set` form).
        if !item.wanted && item.observed.is_some() && MANAGED.contains(&item.protocol.as_str()) {
            let was = format!(
                "alerts.{}+=[{}]",
                item.protocol,
                serde_json::Value::from(item.endpoint.as_str())
            );
            step.was(vec![was])
        } else {
            step
        }
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        match (item.wanted, &item.observed) {
            (true, None) => {
                let topic = cx
                    .outputs
                    .alerts_topic_arn
                    .clone()
                    .unwrap_or_else(|| AFTER_APPLY.to_string());
                let out = cx
                    .aws
                    .sns
                    .subscribe()
                    .topic_arn(&topic)
                    .protocol(&item.protocol)
                    .endpoint(&item.endpoint)
                    .return_subscription_arn(true)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::new(format!("subscribing {} to {topic}", item.name()), &e)
                    })?;
                Ok(out
                    .subscription_arn()
                    .unwrap_or("pending confirmation")
                    .to_string())
            }
            (false, Some(o)) if o.arn != PENDING => {
                cx.aws
                    .sns
                    .unsubscribe()
                    .subscription_arn(&o.arn)
                    .send()
                    .await
                    .map_err(|e| AwsError::new(format!("unsubscribing {}", item.name()), &e))?;
                Ok("unsubscribed".into())
            }
            _ => Ok("unchanged".into()),
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        // The topic's deletion removes them all.
        let action = if item.observed.is_some() {
            Action::Delete
        } else {
            Action::Absent
        };
        Step::new(
            KIND,
            item.name(),
            action,
            vec!["with the topic".to_string()],
        )
    }

    async fn remove(_: &Context<'_>, _: &Item) -> Result<(), AwsError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(wanted: bool, arn: Option<&str>) -> Item {
        Item {
            protocol: "email".into(),
            endpoint: "ops@example.org".into(),
            wanted,
            observed: arn.map(|a| Observed {
                protocol: "email".into(),
                endpoint: "ops@example.org".into(),
                arn: a.into(),
            }),
        }
    }

    #[test]
    fn subscriptions_follow_the_config_and_unconfirmed_ones_are_said_so() {
        let s = changes(&item(true, None));
        assert_eq!(
            (s.action, s.name.as_str()),
            (Action::Create, "email:ops@example.org")
        );
        let s = changes(&item(true, Some(PENDING)));
        assert_eq!(s.action, Action::Unchanged);
        assert!(s.changes[0].starts_with("pending confirmation"));
        assert_eq!(changes(&item(true, Some("arn:aws:sns:x"))).changes.len(), 0);
        assert_eq!(
            changes(&item(false, Some("arn:aws:sns:x"))).action,
            Action::Delete
        );
        let s = changes(&item(false, Some(PENDING)));
        assert_eq!(s.action, Action::Unchanged);
        assert!(s.changes[0].contains("lapses after 3 days"));
    }
}
