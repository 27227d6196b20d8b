//! The app log group's metric filters, when the config has `alerts`: they turn hcctl's JSON log
//! lines (`HCCTL_LOG_FORMAT=json`, the app's default) into the metrics two alarms watch, in the
//! namespace `hcctl/<project>-<environment>`:
//! - `<project>-<environment>-app-errors`: `{ $.level = "ERROR" }` → `AppErrors`, 1 per line;
//! - `<project>-<environment>-rejected-share`: `{ $.rejected_share >= 0 }` → `RejectedShare`,
//!   the share of rejected rows of each run (migrate's last line) and each ingested file.
//!
//! PutMetricFilter replaces a filter whole, so a drifted one is put back with the same call.
//! Destroy deletes them (their log group goes after them).

use aws_sdk_cloudwatchlogs::types::{MetricTransformation, StandardUnit};
use aws_sdk_cloudwatchlogs::Client;
use serde_json::{json, Value};

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::AwsError;
use crate::config::Config;

pub const KIND: Kind = Kind::new("metric_filter", "metric filter");

/// The metrics the filters emit, by filter suffix: (suffix, pattern, metric, value, unit).
pub const FILTERS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "app-errors",
        "{ $.level = \"ERROR\" }",
        "AppErrors",
        "1",
        "Count",
    ),
    (
        "rejected-share",
        "{ $.rejected_share >= 0 }",
        "RejectedShare",
        "$.rejected_share",
        "None",
    ),
];

/// The metrics' namespace.
pub fn namespace(config: &Config) -> String {
    format!("hcctl/{}-{}", config.project, config.environment)
}

/// One filter as a document: what [`changes`] compares.
pub fn desired(config: &Config, suffix: &str) -> Option<Value> {
    config.alerts.as_ref()?;
    let (_, pattern, metric, value, unit) = FILTERS.iter().find(|f| f.0 == suffix)?;
    Some(json!({
        "pattern": pattern,
        "metric": metric,
        "namespace": namespace(config),
        "value": value,
        "unit": unit,
    }))
}

/// The filter `name` of `group`, if it exists (read-only).
pub async fn observe(client: &Client, group: &str, name: &str) -> Result<Option<Value>, AwsError> {
    let out = match client
        .describe_metric_filters()
        .log_group_name(group)
        .filter_name_prefix(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(AwsError::new(
                format!("describing metric filter {name} of {group}"),
                &e,
            ))
        }
    };
    Ok(out
        .metric_filters()
        .iter()
        .find(|f| f.filter_name() == Some(name))
        .map(|f| {
            let t = f.metric_transformations().first();
            json!({
                "pattern": f.filter_pattern(),
                "metric": t.map(|t| t.metric_name()),
                "namespace": t.map(|t| t.metric_namespace()),
                "value": t.map(|t| t.metric_value()),
                "unit": t.and_then(|t| t.unit()).map_or("None", |u| u.as_str()),
            })
        }))
}

pub struct Item {
    pub name: String,
    pub suffix: &'static str,
    pub group: String,
    pub observed: Option<Value>,
}

/// Deploy's step (pure).
pub fn changes(name: &str, want: Option<&Value>, have: Option<&Value>) -> Step {
    match (want, have) {
        (Some(w), None) => Step::new(
            KIND,
            name,
            Action::Create,
            vec![format!(
                "{} → {}/{} (value {})",
                w["pattern"].as_str().unwrap_or_default(),
                w["namespace"].as_str().unwrap_or_default(),
                w["metric"].as_str().unwrap_or_default(),
                w["value"].as_str().unwrap_or_default()
            )],
        ),
        (Some(w), Some(h)) => {
            let mut lines = Vec::new();
            super::step::diff("", h, w, &mut lines);
            Step::compared(KIND, name, Action::Update, lines)
        }
        (None, Some(_)) => Step::new(
            KIND,
            name,
            Action::Delete,
            vec!["no alerts in the config".to_string()],
        ),
        (None, None) => Step::new(KIND, name, Action::Absent, vec![]),
    }
}

async fn put(client: &Client, item: &Item, w: &Value) -> Result<(), AwsError> {
    let s = |k: &str| w[k].as_str().unwrap_or_default().to_string();
    let transformation = MetricTransformation::builder()
        .metric_name(s("metric"))
        .metric_namespace(s("namespace"))
        .metric_value(s("value"))
        .unit(StandardUnit::from(s("unit").as_str()))
        .build()
        .map_err(|e| AwsError::other(format!("building metric filter {}", item.name), e))?;
    client
        .put_metric_filter()
        .log_group_name(&item.group)
        .filter_name(&item.name)
        .filter_pattern(s("pattern"))
        .metric_transformations(transformation)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("putting metric filter {}", item.name), &e))
}

async fn delete(client: &Client, item: &Item) -> Result<(), AwsError> {
    match client
        .delete_metric_filter()
        .log_group_name(&item.group)
        .filter_name(&item.name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(AwsError::new(
            format!("deleting metric filter {}", item.name),
            &e,
        )),
    }
}

/// The metric filters, for the engine.
pub struct MetricFilters;

impl Resource for MetricFilters {
    type Item = Item;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Item>, AwsError> {
        let group = cx.config.log_groups.app.name.clone();
        let mut items = Vec::new();
        for (suffix, ..) in FILTERS {
            let name = cx.config.resource_name(suffix);
            let observed = observe(&cx.aws.logs, &group, &name).await?;
            if observed.is_none() && cx.config.alerts.is_none() {
                continue;
            }
            items.push(Item {
                name,
                suffix,
                group: group.clone(),
                observed,
            });
        }
        Ok(items)
    }

    fn step(cx: &Context<'_>, item: &Item) -> Step {
        let step = changes(
            &item.name,
            desired(cx.config, item.suffix).as_ref(),
            item.observed.as_ref(),
        );
        // Deleted because the config has no alerts any more: alerting, as it is now.
        if step.action == Action::Delete && cx.config.alerts.is_none() {
            step.was(vec!["alerts.vault_notifications=false".to_string()])
        } else {
            step
        }
    }

    async fn apply_step(cx: &mut Context<'_>, item: &Item) -> Result<String, AwsError> {
        match desired(cx.config, item.suffix) {
            Some(w) => {
                put(&cx.aws.logs, item, &w).await?;
                Ok("put".into())
            }
            None => {
                delete(&cx.aws.logs, item).await?;
                Ok("deleted".into())
            }
        }
    }

    fn removal(_: &Context<'_>, item: &Item) -> Step {
        Step::removal(KIND, &item.name, item.observed.is_some())
    }

    async fn remove(cx: &Context<'_>, item: &Item) -> Result<(), AwsError> {
        delete(&cx.aws.logs, item).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_read_hcctls_json_lines() {
        let mut c = crate::config::tests_support::example_config();
        assert!(desired(&c, "app-errors").is_none());
        c.alerts = Some(serde_yaml_ng::from_str("{}").expect("alerts"));
        let errors = desired(&c, "app-errors").unwrap();
        assert_eq!(errors["pattern"], "{ $.level = \"ERROR\" }");
        assert_eq!(
            errors["namespace"],
            format!("hcctl/{}-{}", c.project, c.environment)
        );
        let share = desired(&c, "rejected-share").unwrap();
        assert_eq!(share["value"], "$.rejected_share");
        let s = changes("f", Some(&share), Some(&share));
        assert_eq!(s.action, Action::Unchanged);
        let mut h = share.clone();
        h["pattern"] = json!("{ $.x = 1 }");
        let s = changes("f", Some(&share), Some(&h));
        assert_eq!(s.action, Action::Update);
        assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
    }
}
