//! `hcctl cost`: the estimated monthly bill of what `deploy` creates from the config, line by
//! line, with no AWS call — and the same estimate in deploy's plan, with what the plan changes.
//!
//! - [`prices`]: the price table (AWS list prices per region, each with its unit, date and source);
//! - this module: the config's resources and the expected usage (`cost:` in the config) →
//!   [`Item`]s, each `quantity × unit_price`; the assumptions every estimate states; the
//!   difference a plan makes.
//!
//! Everything here is pure: the estimate is computed from the config alone, so it is unit-tested
//! line by line against figures worked out by hand.

pub mod prices;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, Job, Rule, SecretRole};
use crate::error::Error;
use crate::resources::{
    alarm, alerts_key, backup_plan, backup_selection, bucket, cluster, discovery_service,
    file_system, log_group, metric_filter, namespace, schedule, secret, service, subscription,
    task_definition, Action, Kind, Step,
};
pub use prices::Prices;

/// The plan's resources a line is the cost of: (kind, name; no name: the kind's one resource).
pub type Parts = Vec<(Kind, Option<String>)>;

/// Hours in a month, as AWS's pricing pages count them (8,760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Days in a month, for retention (365 / 12).
pub const DAYS_PER_MONTH: f64 = 365.0 / 12.0;

/// What `hcctl cost` is asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub config_path: PathBuf,
    /// `--prices FILE`: another price table.
    pub prices: Option<PathBuf>,
    /// `--set KEY=VALUE`: what-ifs put over the config.
    pub sets: Vec<String>,
}

/// One line of the estimate: `monthly = quantity × unit_price`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Item {
    pub service: &'static str,
    pub resource: String,
    pub unit: String,
    /// Units per month.
    pub quantity: f64,
    /// US dollars per unit.
    pub unit_price: f64,
    pub monthly: f64,
    /// The plan's resources this line is the cost of (kind id, name; no name: the kind's one
    /// resource), each an equal share: how a plan tells what it adds.
    #[serde(skip)]
    pub parts: Parts,
}

/// The whole estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub region: String,
    pub currency: &'static str,
    /// The oldest date any price of the table was read.
    pub prices_as_of: String,
    /// `built-in`, or the `--prices` file.
    pub price_table: String,
    pub price_sources: Vec<String>,
    pub monthly_total: f64,
    pub items: Vec<Item>,
    pub assumptions: Vec<String>,
    /// What no estimate here counts.
    pub not_counted: Vec<&'static str>,
}

/// What no line counts; the README says the same.
pub const NOT_COUNTED: [&str; 6] = [
    "taxes",
    "data transfer (between zones, out to the internet, cross-region backup copies)",
    "the AWS free tier (every unit is priced from the first)",
    "API requests to Secrets Manager, KMS, ECS and CloudWatch (cents at this stack's volume)",
    "Container Insights' performance log events (billed as log ingestion in its own group)",
    "the container images' registry and pulls",
];

/// `hcctl cost`: the estimate of the config (with `--set` applied) at the table's prices.
pub async fn command(req: &Request) -> Result<Estimate, Error> {
    let config = Config::load_with(&req.config_path, &req.sets)?;
    let region = crate::aws::resolve_region(&crate::aws::Target {
        region: config.region.clone(),
        endpoint_url: None,
    })
    .await;
    let prices = Prices::load(req.prices.as_deref(), &region)?;
    Ok(estimate(&config, &prices))
}

/// Builds the lines, in the order deploy creates what they price.
struct Lines<'a> {
    prices: &'a Prices,
    items: Vec<Item>,
}

impl Lines<'_> {
    fn add(
        &mut self,
        service: &'static str,
        resource: impl Into<String>,
        key: &str,
        quantity: f64,
        parts: Parts,
    ) {
        let price = self.prices.get(key);
        self.items.push(Item {
            service,
            resource: resource.into(),
            unit: price.unit.clone(),
            quantity,
            unit_price: price.usd,
            monthly: quantity * price.usd,
            parts,
        });
    }
}

fn one(kind: Kind, name: impl Into<String>) -> Parts {
    vec![(kind, Some(name.into()))]
}

/// How many times a month a schedule fires: `rate(N unit)` exactly; `cron(m h dom mon dow y)`
/// by counting the minutes, hours, days and months its fields name (lists, ranges, steps, `*`;
/// `L`, `W` and `#` as one day a month); `at(…)` once. `None` when it cannot be counted.
pub fn runs_per_month(expression: &str) -> Option<f64> {
    let e = expression.trim();
    if e.starts_with("at(") {
        return Some(1.0);
    }
    if e.starts_with("rate(") {
        return backup_plan::schedule_interval(e)
            .filter(|s| *s > 0)
            .map(|s| HOURS_PER_MONTH * 3600.0 / s as f64);
    }
    let body = e.strip_prefix("cron(")?.strip_suffix(')')?;
    let f: Vec<&str> = body.split_whitespace().collect();
    if f.len() != 6 {
        return None;
    }
    let any = |s: &str| s == "*" || s == "?";
    let minutes = count_field(f[0], 0, 59, &[])?;
    let hours = count_field(f[1], 0, 23, &[])?;
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let months = count_field(f[3], 1, 12, &MONTHS)? / 12.0;
    let days = if !any(f[4]) {
        if f[4].contains(['L', '#']) {
            1.0
        } else {
            count_field(f[4], 1, 7, &DAYS)? * 365.0 / 12.0 / 7.0
        }
    } else if !any(f[2]) {
        if f[2].contains(['L', 'W']) {
            1.0
        } else {
            count_field(f[2], 1, 31, &[])?.min(DAYS_PER_MONTH)
        }
    } else {
        DAYS_PER_MONTH
    };
    Some(minutes * hours * days * months)
}

/// How many values a cron field names within `lo..=hi` (`names` for JAN or MON, from `lo`).
fn count_field(field: &str, lo: u32, hi: u32, names: &[&str]) -> Option<f64> {
    let value = |s: &str| -> Option<u32> {
        s.parse::<u32>().ok().or_else(|| {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(s))
                .and_then(|i| u32::try_from(i).ok())
                .map(|i| i + lo)
        })
    };
    let mut hit = vec![false; (hi + 1) as usize];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (from, to) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if from < lo || to > hi || from > to {
            return None;
        }
        let mut v = from;
        while v <= to {
            hit[v as usize] = true;
            v += step;
        }
    }
    Some(hit.iter().filter(|h| **h).count() as f64)
}

/// The estimate of everything deploy creates from `config`, at `prices`.
pub fn estimate(config: &Config, prices: &Prices) -> Estimate {
    let u = &config.cost;
    let mut l = Lines {
        prices,
        items: Vec::new(),
    };
    let mut assumptions = vec![format!(
        "a month is {HOURS_PER_MONTH} hours; every quantity is per month"
    )];

    // ECS on Fargate: MongoDB's service runs one task all month; the app's tasks run when a
    // migration, an ingest, a dump or a drill does.
    let mongo = &config.containers.mongo;
    let app = &config.containers.app;
    let service_name = config.service_name();
    let vcpu = |c: u32| f64::from(c) / 1024.0;
    let gb = |m: u32| f64::from(m) / 1024.0;
    l.add(
        "ECS Fargate",
        format!(
            "MongoDB service {service_name}: {} vCPU, 1 task all month",
            vcpu(mongo.cpu)
        ),
        "fargate.vcpu_hour",
        vcpu(mongo.cpu) * HOURS_PER_MONTH,
        one(service::KIND, &service_name),
    );
    l.add(
        "ECS Fargate",
        format!(
            "MongoDB service {service_name}: {} GB memory",
            gb(mongo.memory)
        ),
        "fargate.gb_hour",
        gb(mongo.memory) * HOURS_PER_MONTH,
        one(service::KIND, &service_name),
    );
    let app_family = config.family("app");
    let mut app_runs: Vec<(String, f64, Parts)> = vec![(
        format!(
            "migrations: {} run(s) × {} h × {} task(s)",
            num(u.migration_runs_per_month),
            num(u.migration_hours),
            num(u.migration_tasks)
        ),
        u.migration_runs_per_month * u.migration_hours * u.migration_tasks,
        one(task_definition::KIND, &app_family),
    )];
    let mut invocations = 0.0;
    let mut schedule_parts = Vec::new();
    let mut uncounted = Vec::new();
    for job in config.jobs() {
        let Some((expression, _)) = config.job_schedule(job) else {
            continue;
        };
        let Some(runs) = runs_per_month(expression) else {
            uncounted.push(format!("{} ({expression})", job.key()));
            continue;
        };
        let minutes = match job {
            Job::Ingest => u.ingest_run_minutes,
            Job::Dump => u.dump_run_minutes,
            Job::Drill => u.drill_run_minutes,
        };
        let name = config.schedule_name(job);
        invocations += runs;
        schedule_parts.push((schedule::KIND, Some(name.clone())));
        app_runs.push((
            format!(
                "{} on {expression}: {} run(s) × {} min",
                job.id(),
                num(runs),
                num(minutes)
            ),
            runs * minutes / 60.0,
            one(schedule::KIND, name),
        ));
    }
    let mut app_task_hours = 0.0;
    for (what, hours, parts) in app_runs {
        app_task_hours += hours;
        l.add(
            "ECS Fargate",
            format!("app tasks, {what}: {} vCPU", vcpu(app.cpu)),
            "fargate.vcpu_hour",
            vcpu(app.cpu) * hours,
            parts.clone(),
        );
        l.add(
            "ECS Fargate",
            format!("app tasks, {what}: {} GB memory", gb(app.memory)),
            "fargate.gb_hour",
            gb(app.memory) * hours,
            parts,
        );
    }
    if config.network.assign_public_ip {
        l.add(
            "Amazon VPC",
            "public IPv4 addresses of the tasks (assign_public_ip)",
            "vpc.public_ipv4_hour",
            HOURS_PER_MONTH + app_task_hours,
            one(service::KIND, &service_name),
        );
    }

    // MongoDB's data.
    let adopted = mongo
        .volume
        .as_ref()
        .and_then(|v| v.efs_file_system_id.as_deref());
    l.add(
        "Amazon EFS",
        match adopted {
            Some(id) => format!("file system {id} (adopted), Standard storage"),
            None => "MongoDB's file system, Standard storage".to_string(),
        },
        "efs.standard_gb_month",
        u.data_gb,
        vec![(file_system::KIND, None)],
    );
    assumptions.push(format!(
        "MongoDB holds {} GB on EFS Standard (cost.data_gb)",
        num(u.data_gb)
    ));

    // Logs: what each group takes in, and what it holds once it keeps `retention_days` of it.
    for (group, gb_month) in [
        (&config.log_groups.mongo, u.mongo_log_gb_per_month),
        (&config.log_groups.app, u.app_log_gb_per_month),
    ] {
        l.add(
            "CloudWatch Logs",
            format!("{}: ingestion", group.name),
            "logs.ingest_gb",
            gb_month,
            one(log_group::KIND, &group.name),
        );
        l.add(
            "CloudWatch Logs",
            format!(
                "{}: storage, {} days kept",
                group.name, group.retention_days
            ),
            "logs.storage_gb_month",
            gb_month * f64::from(group.retention_days) / DAYS_PER_MONTH,
            one(log_group::KIND, &group.name),
        );
    }
    assumptions.push(format!(
        "logs: {} GB/month from MongoDB and {} GB/month from the app (cost.mongo_log_gb_per_month, \
         cost.app_log_gb_per_month); a group holds its retention's worth, stored uncompressed \
         (CloudWatch bills compressed bytes, so storage is an upper bound)",
        num(u.mongo_log_gb_per_month),
        num(u.app_log_gb_per_month)
    ));

    // Secrets: the three generated passwords.
    let secrets: Parts = SecretRole::ALL
        .into_iter()
        .map(|r| (secret::KIND, Some(config.secret_name(r))))
        .collect();
    l.add(
        "Secrets Manager",
        format!("{} generated secrets (root, writer, reader)", secrets.len()),
        "secretsmanager.secret_month",
        secrets.len() as f64,
        secrets,
    );

    // The drops bucket.
    l.add(
        "Amazon S3",
        "drops bucket: Standard storage",
        "s3.standard_gb_month",
        u.drops_gb,
        vec![(bucket::KIND, None)],
    );
    l.add(
        "Amazon S3",
        "drops bucket: PUT, COPY, POST and LIST requests",
        "s3.put_requests_1000",
        u.s3_put_requests_per_month / 1000.0,
        vec![(bucket::KIND, None)],
    );
    l.add(
        "Amazon S3",
        "drops bucket: GET requests",
        "s3.get_requests_1000",
        u.s3_get_requests_per_month / 1000.0,
        vec![(bucket::KIND, None)],
    );
    assumptions.push(format!(
        "the drops bucket holds {} GB (exports, quarantines, reports, dumps and their old \
         versions) and serves {} PUT/LIST and {} GET requests (cost.drops_gb, \
         cost.s3_put_requests_per_month, cost.s3_get_requests_per_month)",
        num(u.drops_gb),
        num(u.s3_put_requests_per_month),
        num(u.s3_get_requests_per_month)
    ));

    // Cloud Map: the private DNS namespace is a Route 53 hosted zone; MongoDB's task is one
    // registered instance.
    l.add(
        "Cloud Map",
        format!("{}: MongoDB's registered task", config.mongo_host()),
        "cloudmap.instance_month",
        1.0,
        vec![(discovery_service::KIND, None)],
    );
    l.add(
        "Route 53",
        format!(
            "private hosted zone of the namespace {}",
            config.namespace()
        ),
        "route53.hosted_zone_month",
        1.0,
        vec![(namespace::KIND, None)],
    );

    // EventBridge Scheduler.
    if !schedule_parts.is_empty() {
        l.add(
            "EventBridge Scheduler",
            format!(
                "{} schedule(s): {} invocations",
                schedule_parts.len(),
                num(invocations)
            ),
            "scheduler.invocation",
            invocations,
            schedule_parts,
        );
    }

    // AWS Backup.
    let plan_name = &config.backup.plan.name;
    for rule in &config.backup.plan.rules {
        let (warm, cold) = rule_storage(rule, u.data_gb, u.daily_change_share);
        let parts = one(backup_plan::KIND, plan_name);
        l.add(
            "AWS Backup",
            format!("rule {}: EFS warm storage", rule.name),
            "backup.efs_warm_gb_month",
            warm,
            parts.clone(),
        );
        if cold > 0.0 {
            l.add(
                "AWS Backup",
                format!("rule {}: EFS cold storage", rule.name),
                "backup.efs_cold_gb_month",
                cold,
                parts,
            );
        }
        if config.backup.selection.drops_bucket {
            // S3 recovery points have no cold tier: all of them stay warm until deleted.
            let (warm, cold) = rule_storage(rule, u.drops_gb, u.daily_change_share);
            l.add(
                "AWS Backup",
                format!("rule {}: the drops bucket's backups", rule.name),
                "backup.s3_gb_month",
                warm + cold,
                one(backup_selection::KIND, &config.backup.selection.name),
            );
        }
        // Each copy action keeps a copy of every point in its vault, for its own lifecycle.
        for copy in &rule.copy_to {
            let kept = Rule {
                delete_after_days: copy.delete_after_days.unwrap_or(rule.delete_after_days),
                cold_storage_after_days: copy.cold_storage_after_days,
                copy_to: vec![],
                ..rule.clone()
            };
            let (warm, cold) = rule_storage(&kept, u.data_gb, u.daily_change_share);
            l.add(
                "AWS Backup",
                format!(
                    "rule {}: copies in {} (warm, at {}'s price)",
                    rule.name, copy.vault_arn, prices.region
                ),
                "backup.efs_warm_gb_month",
                warm,
                one(backup_plan::KIND, plan_name),
            );
            if cold > 0.0 {
                l.add(
                    "AWS Backup",
                    format!(
                        "rule {}: copies in {} (cold, at {}'s price)",
                        rule.name, copy.vault_arn, prices.region
                    ),
                    "backup.efs_cold_gb_month",
                    cold,
                    one(backup_plan::KIND, plan_name),
                );
            }
        }
    }
    assumptions.push(format!(
        "AWS Backup: a rule running daily or more often keeps one full copy of the data plus \
         one increment per further recovery point ({}% of the data changes a day, \
         cost.daily_change_share); a rule running less often keeps a full copy per recovery \
         point; points move to cold storage after cold_storage_after_days",
        num(u.daily_change_share * 100.0)
    ));

    // Alerting.
    if config.alerts.is_some() {
        if alerts_key::wanted(config) {
            l.add(
                "AWS KMS",
                format!(
                    "key {} (encrypts the alerts topic)",
                    alerts_key::alias(config)
                ),
                "kms.key_month",
                1.0,
                vec![(alerts_key::KIND, None)],
            );
        }
        let alarms: Parts = alarm::SUFFIXES
            .iter()
            .filter(|s| alarm::desired(config, s, "arn:aws:sns:::topic").is_some())
            .map(|s| (alarm::KIND, Some(config.resource_name(s))))
            .collect();
        l.add(
            "CloudWatch",
            format!("{} alarms (standard resolution)", alarms.len()),
            "cloudwatch.alarm_month",
            alarms.len() as f64,
            alarms,
        );
        let filters: Parts = metric_filter::FILTERS
            .iter()
            .filter(|f| metric_filter::desired(config, f.0).is_some())
            .map(|f| (metric_filter::KIND, Some(config.resource_name(f.0))))
            .collect();
        l.add(
            "CloudWatch",
            format!(
                "{} custom metrics from the app log's metric filters",
                filters.len()
            ),
            "cloudwatch.metric_month",
            filters.len() as f64,
            filters,
        );
        l.add(
            "CloudWatch",
            "Container Insights metrics of the cluster",
            "cloudwatch.metric_month",
            u.container_insights_metrics,
            vec![(cluster::KIND, None)],
        );
        let subscriptions = subscription::desired(config);
        for (protocol, key) in [
            ("email", "sns.email_notification"),
            ("https", "sns.https_notification"),
        ] {
            let n = subscriptions.iter().filter(|(p, _)| p == protocol).count();
            if n > 0 {
                l.add(
                    "Amazon SNS",
                    format!("{n} {protocol} subscription(s) of the alerts topic"),
                    key,
                    n as f64 * u.notifications_per_month,
                    vec![(subscription::KIND, None)],
                );
            }
        }
        assumptions.push(format!(
            "alerts: each subscriber gets {} notifications (cost.notifications_per_month); \
             Container Insights publishes {} metrics (cost.container_insights_metrics)",
            num(u.notifications_per_month),
            num(u.container_insights_metrics)
        ));
    }

    assumptions.push(format!(
        "app tasks: {} migration run(s) a month of {} h on {} task(s) (cost.migration_runs_per_month, \
         cost.migration_hours, cost.migration_tasks); a scheduled ingest runs {} min, a dump {} \
         min, a drill {} min (cost.ingest_run_minutes, cost.dump_run_minutes, \
         cost.drill_run_minutes)",
        num(u.migration_runs_per_month),
        num(u.migration_hours),
        num(u.migration_tasks),
        num(u.ingest_run_minutes),
        num(u.dump_run_minutes),
        num(u.drill_run_minutes)
    ));
    assumptions.push(format!(
        "prices: AWS on-demand list prices for {} in USD, Linux/x86 Fargate, Standard storage \
         classes, as of {} ({} table)",
        prices.region,
        prices.as_of(),
        prices.table
    ));
    if !uncounted.is_empty() {
        assumptions.push(format!(
            "not priced, their runs a month could not be counted: {}",
            uncounted.join(", ")
        ));
    }
    let stand_ins = prices.stand_ins();
    if !stand_ins.is_empty() {
        assumptions.push(format!(
            "prices not read for {} stand in from another region or source (the table's \
             source column says which): {}",
            prices.region,
            stand_ins.join(", ")
        ));
    }
    let monthly_total = l.items.iter().map(|i| i.monthly).sum();
    Estimate {
        region: prices.region.clone(),
        currency: "USD",
        prices_as_of: prices.as_of(),
        price_table: prices.table.clone(),
        price_sources: prices.sources(),
        monthly_total,
        items: l.items,
        assumptions,
        not_counted: NOT_COUNTED.to_vec(),
    }
}

/// GB-months of warm and cold storage a rule keeps in steady state, for `data_gb` of data.
pub fn rule_storage(rule: &Rule, data_gb: f64, daily_change: f64) -> (f64, f64) {
    let interval_days = backup_plan::schedule_interval(&rule.schedule)
        .filter(|s| *s > 0)
        .map_or(1.0, |s| s as f64 / 86_400.0);
    let keep = rule.delete_after_days.max(1) as f64;
    let points = (keep / interval_days).ceil().max(1.0);
    let warm_points = match rule.cold_storage_after_days {
        Some(c) => (c.max(0) as f64 / interval_days).ceil().min(points),
        None => points,
    };
    let cold_points = points - warm_points;
    if interval_days <= 1.0 {
        // A chain: one full copy, then what changed since the point before.
        let increment = (data_gb * daily_change * interval_days).min(data_gb);
        let warm = if warm_points >= 1.0 {
            data_gb + (warm_points - 1.0) * increment
        } else {
            0.0
        };
        let cold = if warm_points >= 1.0 {
            cold_points * increment
        } else {
            data_gb + (cold_points - 1.0).max(0.0) * increment
        };
        (warm, cold)
    } else {
        (warm_points * data_gb, cold_points * data_gb)
    }
}

/// What a deploy's plan says of cost: the estimate after it, and what it adds or removes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanCost {
    pub currency: &'static str,
    pub prices_as_of: String,
    /// The estimate of the config once applied.
    pub monthly_total: f64,
    /// After minus before: what the plan's creates, updates and deletes change.
    pub monthly_change: f64,
}

/// The cost of a plan: `after` is the config's estimate, `before` the estimate of the config as
/// deployed now (the config with the values AWS holds, from the steps' `was`); what the plan
/// creates costs nothing before it.
pub fn plan_cost(after: &Estimate, before: &Estimate, steps: &[Step]) -> PlanCost {
    let total = |e: &Estimate| -> f64 {
        e.items
            .iter()
            .map(|i| {
                if i.parts.is_empty() {
                    return i.monthly;
                }
                let existing = i
                    .parts
                    .iter()
                    .filter(|(kind, name)| !created(steps, *kind, name.as_deref()))
                    .count();
                if existing == i.parts.len() {
                    i.monthly
                } else {
                    i.monthly * existing as f64 / i.parts.len() as f64
                }
            })
            .sum()
    };
    PlanCost {
        currency: after.currency,
        prices_as_of: after.prices_as_of.clone(),
        monthly_total: after.monthly_total,
        monthly_change: after.monthly_total - total(before),
    }
}

/// Whether the plan creates the resource (it costs nothing before the plan).
fn created(steps: &[Step], kind: Kind, name: Option<&str>) -> bool {
    let mut of_kind = steps
        .iter()
        .filter(|s| s.kind == kind && name.is_none_or(|n| s.name == n))
        .peekable();
    of_kind.peek().is_some() && of_kind.all(|s| s.action == Action::Create)
}

/// A quantity as a person reads it: no trailing zeros, at most 3 decimals.
pub fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Dollars: `$1,234.56`, `-$3.10`.
pub fn dollars(x: f64) -> String {
    let cents = (x.abs() * 100.0).round() as u64;
    let sign = if x < 0.0 && cents > 0 { "-" } else { "" };
    format!(
        "{sign}${}.{:02}",
        crate::output::thousands(cents / 100),
        cents % 100
    )
}

/// A price: as many decimals as it has (up to 7), at least 2.
fn price(x: f64) -> String {
    let s = format!("{x:.7}");
    let s = s.trim_end_matches('0');
    match s.split_once('.') {
        Some((_, d)) if d.len() < 2 => format!("{x:.2}"),
        _ => s.to_string(),
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Estimated monthly cost in {} ({}; prices as of {}, {} table)",
            self.region, self.currency, self.prices_as_of, self.price_table
        )?;
        writeln!(f)?;
        let rows: Vec<[String; 5]> = self
            .items
            .iter()
            .map(|i| {
                [
                    i.service.to_string(),
                    i.resource.clone(),
                    if i.unit.starts_with(|c: char| c.is_ascii_digit()) {
                        format!("{} × {}", num(i.quantity), i.unit)
                    } else {
                        format!("{} {}", num(i.quantity), i.unit)
                    },
                    price(i.unit_price),
                    dollars(i.monthly),
                ]
            })
            .collect();
        let head = ["SERVICE", "RESOURCE", "QUANTITY", "UNIT PRICE", "MONTHLY"];
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, r: [&str; 5]| {
            writeln!(
                f,
                "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3],
                w4 = width[4]
            )
        };
        line(f, head)?;
        for r in &rows {
            line(f, [&r[0], &r[1], &r[2], &r[3], &r[4]])?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  Total: {} per month (estimate)",
            dollars(self.monthly_total)
        )?;
        writeln!(f)?;
        writeln!(f, "Assumptions:")?;
        for a in &self.assumptions {
            writeln!(f, "  - {a}")?;
        }
        writeln!(f, "Not counted: {}.", self.not_counted.join("; "))
    }
}

impl fmt::Display for PlanCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let change = self.monthly_change;
        write!(
            f,
            "estimated cost: {}/month (prices as of {}; hcctl cost for the lines)",
            dollars(self.monthly_total),
            self.prices_as_of
        )?;
        if change.abs() >= 0.005 {
            let sign = if change > 0.0 { "+ " } else { "- " };
            write!(f, "; this plan: {sign}{}/month", dollars(change.abs()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::log_group;
    use std::path::Path;

    /// The shipped example config (eu-west-3), with `sets` put over it.
    fn config(sets: &[&str]) -> Config {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/hcctl.yaml"))
                .expect("infra/hcctl.yaml");
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::parse_with(&text, Path::new("hcctl.yaml"), &|_| None, &sets).expect("parses")
    }

    fn paris() -> Prices {
        Prices::parse(prices::BUILTIN, "built-in", "eu-west-3").expect("eu-west-3 is priced")
    }

    /// The one line whose resource starts with `prefix`.
    fn line<'a>(e: &'a Estimate, prefix: &str) -> &'a Item {
        let found: Vec<&Item> = e
            .items
            .iter()
            .filter(|i| i.resource.starts_with(prefix))
            .collect();
        assert_eq!(found.len(), 1, "{prefix}: {:#?}", e.items);
        found[0]
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[track_caller]
    fn assert_line(e: &Estimate, prefix: &str, quantity: f64, unit_price: f64, monthly: f64) {
        let i = line(e, prefix);
        assert!(
            close(i.quantity, quantity),
            "{prefix}: quantity {} ≠ {quantity}",
            i.quantity
        );
        assert!(
            close(i.unit_price, unit_price),
            "{prefix}: price {}",
            i.unit_price
        );
        assert!(
            close(i.monthly, monthly),
            "{prefix}: monthly {} ≠ {monthly}",
            i.monthly
        );
        assert!(close(i.monthly, i.quantity * i.unit_price), "{prefix}");
    }

    #[test]
    fn every_line_of_the_example_config_is_priced_as_worked_out_by_hand() {
        let e = estimate(&config(&[]), &paris());
        assert_eq!(e.region, "eu-west-3");
        assert_eq!(e.currency, "USD");
        // MongoDB: 1 vCPU and 2 GB all month (730 h), at 0.0486 and 0.0053.
        assert_line(
            &e,
            "MongoDB service hcctl-dev-mongo: 1 vCPU",
            730.0,
            0.0486,
            35.478,
        );
        assert_line(
            &e,
            "MongoDB service hcctl-dev-mongo: 2 GB",
            1460.0,
            0.0053,
            7.738,
        );
        // Migrations: 4 runs × 0.5 h × 1 task = 2 task-hours of 0.5 vCPU and 1 GB.
        assert_line(
            &e,
            "app tasks, migrations: 4 run(s) × 0.5 h × 1 task(s): 0.5 vCPU",
            1.0,
            0.0486,
            0.0486,
        );
        assert_line(
            &e,
            "app tasks, migrations: 4 run(s) × 0.5 h × 1 task(s): 1 GB",
            2.0,
            0.0053,
            0.0106,
        );
        // 10 GB on EFS Standard (the stand-in price 0.30).
        assert_line(&e, "MongoDB's file system", 10.0, 0.30, 3.0);
        // 1 GB a month into each group; kept 30 and 90 days: 30/30.4167 and 90/30.4167 GB.
        assert_line(&e, "/ecs/hcctl-dev/mongo: ingestion", 1.0, 0.5985, 0.5985);
        let kept = 30.0 * 12.0 / 365.0;
        assert_line(
            &e,
            "/ecs/hcctl-dev/mongo: storage",
            kept,
            0.0315,
            kept * 0.0315,
        );
        let kept = 90.0 * 12.0 / 365.0;
        assert_line(
            &e,
            "/ecs/hcctl-dev/app: storage",
            kept,
            0.0315,
            kept * 0.0315,
        );
        assert_line(&e, "3 generated secrets", 3.0, 0.40, 1.2);
        assert_line(&e, "drops bucket: Standard", 20.0, 0.024, 0.48);
        assert_line(&e, "drops bucket: PUT", 10.0, 0.0053, 0.053);
        assert_line(&e, "drops bucket: GET", 50.0, 0.00042, 0.021);
        assert_line(&e, "mongo.dev.hcctl.internal", 1.0, 0.10, 0.10);
        assert_line(&e, "private hosted zone", 1.0, 0.50, 0.50);
        // daily, kept 35 days: one full 10 GB + 34 increments of 2% (0.2 GB) = 16.8 GB warm.
        assert_line(&e, "rule daily: EFS warm", 16.8, 0.05, 0.84);
        // monthly (every 31 days), kept 365 days: 12 points, the first 30 days warm (1 point),
        // then cold (11 points), each a full copy.
        assert_line(&e, "rule monthly: EFS warm", 10.0, 0.05, 0.5);
        assert_line(&e, "rule monthly: EFS cold", 110.0, 0.01, 1.1);
        // Nothing the example does not deploy: no alerting, no schedule, no public addresses.
        for absent in [
            "CloudWatch",
            "AWS KMS",
            "Amazon SNS",
            "EventBridge Scheduler",
            "Amazon VPC",
        ] {
            assert!(e.items.iter().all(|i| i.service != absent), "{absent}");
        }
        assert_eq!(e.items.len(), 18);
        let total: f64 = e.items.iter().map(|i| i.monthly).sum();
        assert!(close(e.monthly_total, total));
        assert!(
            (e.monthly_total - 52.390473).abs() < 1e-5,
            "{}",
            e.monthly_total
        );
        assert!(e.assumptions.iter().any(|a| a.contains("cost.data_gb")));
        assert!(e
            .assumptions
            .iter()
            .any(|a| a.contains("stand in") && a.contains("efs.standard_gb_month")));
    }

    #[test]
    fn alerting_schedules_and_public_addresses_are_priced_when_deployed() {
        let e = estimate(
            &config(&[
                "alerts={email: [ops@example.org], https: [https://hooks.example.org/h]}",
                "ingest.schedule=rate(15 minutes)",
                "backup.dumps={schedule: cron(0 2 * * ? *)}",
                "network.assign_public_ip=true",
            ]),
            &paris(),
        );
        assert_line(&e, "key alias/hcctl-dev-alerts", 1.0, 1.0, 1.0);
        assert_line(&e, "7 alarms", 7.0, 0.10, 0.7);
        assert_line(&e, "2 custom metrics", 2.0, 0.30, 0.6);
        assert_line(&e, "Container Insights", 35.0, 0.30, 10.5);
        assert_line(&e, "1 email subscription", 30.0, 0.00002, 0.0006);
        assert_line(&e, "1 https subscription", 30.0, 0.0000006, 0.000018);
        // Every 15 minutes: 730 × 4 = 2,920 runs of 2 minutes = 97.33 task-hours.
        let hours = 2920.0 * 2.0 / 60.0;
        assert_line(
            &e,
            "app tasks, ingest on rate(15 minutes): 2920 run(s) × 2 min: 0.5 vCPU",
            hours * 0.5,
            0.0486,
            hours * 0.5 * 0.0486,
        );
        // A daily dump: 730 h / 24 h = 30.4167 runs of 10 minutes.
        let runs = 730.0 / 24.0;
        let dump = runs * 10.0 / 60.0;
        assert_line(
            &e,
            "app tasks, dump on cron(0 2 * * ? *): 30.417 run(s) × 10 min: 0.5 vCPU",
            dump * 0.5,
            0.0486,
            dump * 0.5 * 0.0486,
        );
        assert_line(
            &e,
            "2 schedule(s)",
            2920.0 + runs,
            0.000001,
            (2920.0 + runs) * 0.000001,
        );
        // One address for MongoDB all month, one per app task while it runs.
        let app_hours = 2.0 + hours + runs * 10.0 / 60.0;
        assert_line(
            &e,
            "public IPv4",
            730.0 + app_hours,
            0.005,
            (730.0 + app_hours) * 0.005,
        );
    }

    #[test]
    fn doubling_mongos_task_size_doubles_its_vcpu_and_memory_lines_and_nothing_else() {
        let one = estimate(&config(&[]), &paris());
        // Fargate takes 2 vCPU with 4 GB or more: both double.
        let two = estimate(
            &config(&["containers.mongo.cpu=2048", "containers.mongo.memory=4096"]),
            &paris(),
        );
        let a = line(&one, "MongoDB service hcctl-dev-mongo: 1 vCPU");
        let b = line(&two, "MongoDB service hcctl-dev-mongo: 2 vCPU");
        assert!(close(b.quantity, 2.0 * a.quantity) && close(b.monthly, 2.0 * a.monthly));
        let c = line(&one, "MongoDB service hcctl-dev-mongo: 2 GB");
        let d = line(&two, "MongoDB service hcctl-dev-mongo: 4 GB");
        assert!(close(d.monthly, 2.0 * c.monthly));
        assert!(close(
            two.monthly_total - one.monthly_total,
            a.monthly + c.monthly
        ));
    }

    #[test]
    fn a_longer_retention_raises_the_log_storage_line() {
        let short = estimate(&config(&[]), &paris());
        let long = estimate(&config(&["log_groups.app.retention_days=365"]), &paris());
        let a = line(&short, "/ecs/hcctl-dev/app: storage");
        let b = line(&long, "/ecs/hcctl-dev/app: storage");
        assert!(b.monthly > a.monthly);
        assert!(
            close(b.quantity, 12.0),
            "a year of 1 GB a month: {}",
            b.quantity
        );
        // Ingestion does not depend on retention.
        assert_eq!(
            line(&short, "/ecs/hcctl-dev/app: ingestion"),
            line(&long, "/ecs/hcctl-dev/app: ingestion")
        );
    }

    #[test]
    fn backup_storage_follows_frequency_retention_and_cold_storage() {
        let rule = |schedule: &str, keep: i64, cold: Option<i64>| Rule {
            name: "r".into(),
            schedule: schedule.into(),
            start_window_minutes: 60,
            completion_window_minutes: 180,
            delete_after_days: keep,
            cold_storage_after_days: cold,
            copy_to: vec![],
        };
        // Daily for 7 days: full + 6 increments of 1 GB (10% of 10 GB).
        assert_eq!(
            rule_storage(&rule("cron(0 3 * * ? *)", 7, None), 10.0, 0.1),
            (16.0, 0.0)
        );
        // Daily, cold after 7 of 100 days: 7 points warm, 93 increments cold.
        let (w, c) = rule_storage(&rule("cron(0 3 * * ? *)", 100, Some(7)), 10.0, 0.1);
        assert!(close(w, 16.0) && close(c, 93.0), "{w} {c}");
        // Weekly for 28 days: 4 full copies.
        assert_eq!(
            rule_storage(&rule("cron(0 3 ? * SUN *)", 28, None), 10.0, 0.1),
            (40.0, 0.0)
        );
    }

    #[test]
    fn a_plan_prices_what_it_creates_and_what_it_changes() {
        let after = estimate(&config(&["log_groups.app.retention_days=365"]), &paris());
        let before = estimate(&config(&["log_groups.app.retention_days=90"]), &paris());
        let grown = line(&after, "/ecs/hcctl-dev/app: storage").monthly
            - line(&before, "/ecs/hcctl-dev/app: storage").monthly;
        // Everything exists; only the retention changes.
        let steps = vec![Step::new(
            log_group::KIND,
            "/ecs/hcctl-dev/app",
            Action::Update,
            vec!["retention_days: 90 → 365".into()],
        )];
        let c = plan_cost(&after, &before, &steps);
        assert!(close(c.monthly_change, grown), "{}", c.monthly_change);
        assert!(close(c.monthly_total, after.monthly_total));
        // On an empty account every step creates: the change is the whole estimate.
        let all: Vec<Step> = after
            .items
            .iter()
            .flat_map(|i| i.parts.clone())
            .map(|(kind, name)| Step::new(kind, name.unwrap_or_default(), Action::Create, vec![]))
            .collect();
        let c = plan_cost(&after, &after, &all);
        assert!(
            close(c.monthly_change, after.monthly_total),
            "{}",
            c.monthly_change
        );
        assert!(c.to_string().contains("+ $"), "{c}");
        // Nothing changes: no difference is shown.
        let c = plan_cost(&after, &after, &[]);
        assert_eq!(c.monthly_change, 0.0);
        assert!(!c.to_string().contains("this plan"), "{c}");
    }

    #[test]
    fn schedules_are_counted_in_runs_a_month() {
        let runs = |e: &str| runs_per_month(e).map(|r| (r * 1000.0).round() / 1000.0);
        assert_eq!(runs("rate(15 minutes)"), Some(2920.0));
        assert_eq!(runs("rate(1 hour)"), Some(730.0));
        assert_eq!(runs("cron(0 2 * * ? *)"), Some(30.417));
        // Every 15 minutes: 4 an hour, 24 hours, every day.
        assert_eq!(runs("cron(0/15 * * * ? *)"), Some(2920.0));
        // Twice an hour from 06:00 to 20:59: 30 a day.
        assert_eq!(runs("cron(*/30 6-20 * * ? *)"), Some(912.5));
        // Weekdays at 06:00: 5 days a week, 52.14 weeks a year, over 12 months.
        assert_eq!(runs("cron(0 6 ? * MON-FRI *)"), Some(21.726));
        assert_eq!(runs("cron(0 5 ? * SUN *)"), Some(4.345));
        assert_eq!(runs("cron(0 4 1 * ? *)"), Some(1.0));
        assert_eq!(runs("cron(0 4 1,15 * ? *)"), Some(2.0));
        assert_eq!(runs("cron(0 4 1 JAN,JUL ? *)"), Some(0.167));
        assert_eq!(runs("cron(0 4 L * ? *)"), Some(1.0));
        assert_eq!(runs("at(2027-01-01T00:00:00)"), Some(1.0));
        for bad in [
            "cron(0 25 * * ? *)",
            "cron(0/0 * * * ? *)",
            "cron(1 2 3)",
            "nonsense",
        ] {
            assert_eq!(runs(bad), None, "{bad}");
        }
    }

    #[test]
    fn sets_put_values_over_the_config_and_append_to_lists() {
        let c = config(&[
            "alerts.email+=[a@example.org]",
            "alerts.email+=b@example.org",
            "backup.plan.rules[1].delete_after_days=400",
            "cost.data_gb=2.5",
        ]);
        let a = c.alerts.as_ref().expect("alerts made by the set");
        assert_eq!(a.email, ["a@example.org", "b@example.org"]);
        assert_eq!(c.backup.plan.rules[1].delete_after_days, 400);
        assert_eq!(c.cost.data_gb, 2.5);
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/hcctl.yaml"))
                .expect("config");
        for (set, says) in [
            ("backup.plan.rules[9].name=x", "has 2 item(s), no [9]"),
            ("project+=x", "is not a list"),
            ("containers.mongo.cpu", "KEY=VALUE"),
            ("=1", "the key is empty"),
            ("cost.data_gb=1e12", "cost.data_gb"),
        ] {
            let e = Config::parse_with(&text, Path::new("h.yaml"), &|_| None, &[set.to_string()])
                .expect_err(set);
            assert!(e.to_string().contains(says), "{set}: {e}");
        }
    }

    #[test]
    fn dollars_and_quantities_read_well() {
        assert_eq!(dollars(1234.567), "$1,234.57");
        assert_eq!(dollars(-3.1), "-$3.10");
        assert_eq!(dollars(-0.001), "$0.00");
        assert_eq!(num(730.0), "730");
        assert_eq!(num(0.98630137), "0.986");
        assert_eq!(price(0.1), "0.10");
        assert_eq!(price(0.0000006), "0.0000006");
    }
}
