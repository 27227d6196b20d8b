//! `hcctl backup-status`: is the patient data protected? One verdict from the vault, the plan
//! (and its drift from the config), the selection and the latest backup jobs.
//!
//! Gathering (read-only AWS calls) and judging are separate: [`judge`] is a pure function of
//! what was observed, the config, the clock and the maximum age, so staleness and failed jobs are
//! tested without waiting hours or breaking a backup.

use std::fmt;
use std::io::IsTerminal;

use serde::Serialize;

use crate::aws::backup::{list_jobs, Job};
use crate::aws::{Aws, AwsError};
use crate::config::Config;
use crate::resources::backup_plan::{self, PlanRule};
use crate::resources::backup_selection::{self, Selection};
use crate::resources::backup_vault::{self, Vault};

/// Slack added to the interval of the most frequent rule to get the default maximum age
/// (a daily rule → 26 hours): the backup window and the job's own duration.
const GRACE_SECS: i64 = 2 * 3600;

/// What AWS said, before judging.
#[derive(Debug, Clone)]
pub struct Observed {
    pub vault: Option<Vault>,
    pub plan: Option<backup_plan::Plan>,
    pub selection: Option<Selection>,
    /// The selection the config resolves to: the file system hcctl created or adopts (found by
    /// read-only lookups) and the backup role.
    pub desired_selection: Selection,
    /// The MongoDB file system's id, when it exists.
    pub file_system: Option<String>,
    /// Newest first.
    pub jobs: Vec<Job>,
    /// The logical dumps and drills, with `backup.dumps`.
    pub logical: Option<super::logical::Observed>,
}

pub async fn gather(aws: &Aws, config: &Config) -> Result<Observed, AwsError> {
    let b = &config.backup;
    let outputs = backup_selection::resolve(aws, config).await?;
    let vault = backup_vault::observe(&aws.backup, &b.vault.name).await?;
    let plan = backup_plan::observe(&aws.backup, &b.plan.name).await?;
    let selection = match &plan {
        Some(p) => backup_selection::observe(&aws.backup, &p.id, &b.selection.name).await?,
        None => None,
    };
    let jobs = match &vault {
        Some(_) => list_jobs(&aws.backup, &b.vault.name).await?,
        None => Vec::new(),
    };
    Ok(Observed {
        vault,
        plan,
        selection,
        desired_selection: Selection::desired(config, &outputs),
        file_system: outputs.file_system_id,
        jobs,
        logical: super::logical::gather(aws, config).await?,
    })
}

/// The verdict and everything it rests on; its JSON form is the documented `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub healthy: bool,
    /// Why not healthy, one sentence each; empty when healthy.
    pub reasons: Vec<String>,
    pub region: String,
    pub endpoint: String,
    /// Seconds since the Unix epoch.
    pub checked_at: i64,
    pub max_age_seconds: i64,
    pub vault: VaultStatus,
    pub plan: PlanStatus,
    pub selection: SelectionStatus,
    /// The newest COMPLETED job, whether or not it is listed in `jobs`.
    pub last_completed: Option<Job>,
    /// Newest first, at most `--jobs`.
    pub jobs: Vec<Job>,
    pub jobs_total: usize,
    /// The logical layer (dumps and restore drills), with `backup.dumps`.
    pub logical: Option<super::logical::LogicalStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VaultStatus {
    pub name: String,
    pub exists: bool,
    pub arn: Option<String>,
    pub encryption_key_arn: Option<String>,
    pub locked: Option<bool>,
    pub recovery_points: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    pub name: String,
    pub exists: bool,
    pub id: Option<String>,
    pub rules: Vec<PlanRule>,
    /// Differences from the config, one per field: "rules.daily.delete_after_days: 35 → 42".
    pub drift: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SelectionStatus {
    pub name: String,
    pub exists: bool,
    pub iam_role_arn: Option<String>,
    pub resources: Vec<String>,
    pub tag_conditions: std::collections::BTreeMap<String, String>,
    /// True when the tags narrow `resources` (AWS Backup `Conditions`: AND); false when they
    /// select every tagged resource of the account and region (`ListOfTags`: OR).
    pub tags_narrow_resources: bool,
    /// What it protects, in words (as the text report prints it).
    #[serde(skip)]
    pub protects: Vec<String>,
    pub drift: Vec<String>,
}

/// Failed jobs (newest first) created within `max_age` of `now` whose resource has no COMPLETED
/// job created after them. Judged per resource: one run starts a job per resource at the same
/// moment, so a failure on one file system is not excused by a success on another that merely
/// finished later. Older failures are left out so that a resource since removed from the
/// selection does not keep the verdict unhealthy.
fn unrecovered_failures(jobs: &[Job], now: i64, max_age: i64) -> Vec<&Job> {
    jobs.iter()
        .filter(|f| f.failed() && f.created.unwrap_or(0) >= now.saturating_sub(max_age))
        .filter(|f| {
            let failed_at = f.created.unwrap_or(0);
            !jobs.iter().any(|j| {
                j.state == "COMPLETED"
                    && j.resource_arn == f.resource_arn
                    && j.created.unwrap_or(0) > failed_at
            })
        })
        .collect()
}

/// The default maximum age: the interval of the most frequent rule, plus [`GRACE_SECS`].
pub fn default_max_age(config: &Config) -> i64 {
    config
        .backup
        .plan
        .rules
        .iter()
        .filter_map(|r| schedule_interval(&r.schedule))
        .min()
        .unwrap_or(24 * 3600)
        .saturating_add(GRACE_SECS)
}

pub use crate::resources::backup_plan::schedule_interval;

/// Judge what was observed. Pure: everything it needs is an argument.
pub fn judge(
    observed: &Observed,
    config: &Config,
    now: i64,
    max_age: i64,
    show_jobs: usize,
    region: &str,
    endpoint: &str,
) -> Status {
    let b = &config.backup;
    let mut reasons = Vec::new();

    let vault = match &observed.vault {
        Some(v) => VaultStatus {
            name: v.name.clone(),
            exists: true,
            arn: Some(v.arn.clone()),
            encryption_key_arn: v.encryption_key_arn.clone().filter(|k| !k.is_empty()),
            locked: Some(v.locked),
            recovery_points: Some(v.recovery_points),
        },
        None => {
            reasons.push(format!("backup vault {} does not exist", b.vault.name));
            VaultStatus {
                name: b.vault.name.clone(),
                exists: false,
                arn: None,
                encryption_key_arn: None,
                locked: None,
                recovery_points: None,
            }
        }
    };

    let plan = match &observed.plan {
        Some(p) => {
            let drift = backup_plan::rule_changes(&p.rules, &backup_plan::desired_rules(b));
            if !drift.is_empty() {
                reasons.push(format!(
                    "backup plan {} differs from the config: {}",
                    b.plan.name,
                    drift.join("; ")
                ));
            }
            PlanStatus {
                name: p.name.clone(),
                exists: true,
                id: Some(p.id.clone()),
                rules: p.rules.clone(),
                drift,
            }
        }
        None => {
            reasons.push(format!("backup plan {} does not exist", b.plan.name));
            PlanStatus {
                name: b.plan.name.clone(),
                exists: false,
                id: None,
                rules: Vec::new(),
                drift: Vec::new(),
            }
        }
    };

    if observed.file_system.is_none() {
        reasons.push(match config.adopted_file_system() {
            Some(id) => format!(
                "file system {id} (containers.mongo.volume.efs_file_system_id) does not exist"
            ),
            None => format!(
                "file system {} does not exist: run hcctl deploy",
                config.resource_name("mongo-data")
            ),
        });
    }

    let selection = match &observed.selection {
        Some(s) => {
            let drift = backup_selection::selection_changes(s, &observed.desired_selection);
            if !drift.is_empty() {
                reasons.push(format!(
                    "backup selection {} differs from the config: {}",
                    b.selection.name,
                    drift.join("; ")
                ));
            }
            SelectionStatus {
                name: s.name.clone(),
                exists: true,
                iam_role_arn: Some(s.iam_role_arn.clone()),
                resources: s.resources.clone(),
                tag_conditions: s
                    .list_of_tags
                    .iter()
                    .chain(&s.conditions)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                tags_narrow_resources: !s.conditions.is_empty(),
                protects: s.describe(),
                drift,
            }
        }
        None => {
            if observed.plan.is_some() {
                reasons.push(format!(
                    "backup selection {} does not exist: nothing is protected",
                    b.selection.name
                ));
            }
            SelectionStatus {
                name: b.selection.name.clone(),
                exists: false,
                iam_role_arn: None,
                resources: Vec::new(),
                tag_conditions: Default::default(),
                tags_narrow_resources: false,
                protects: Vec::new(),
                drift: Vec::new(),
            }
        }
    };

    let last_completed = observed
        .jobs
        .iter()
        .filter(|j| j.state == "COMPLETED")
        .max_by_key(|j| j.completed.or(j.created))
        .cloned();
    if vault.exists {
        match &last_completed {
            None => reasons.push("no completed backup in the vault".to_string()),
            Some(j) => {
                let at = j.completed.or(j.created).unwrap_or(0);
                let age = now.saturating_sub(at);
                if age > max_age {
                    reasons.push(format!(
                        "the last completed backup is {} old, more than the maximum age of {}",
                        human_duration(age),
                        human_duration(max_age)
                    ));
                }
                let failures = unrecovered_failures(&observed.jobs, now, max_age);
                if let Some(f) = failures.first() {
                    reasons.push(format!(
                        "{} job(s) failed with no later completed backup of their resource; \
                         newest: {} {} on {}{}",
                        failures.len(),
                        f.id,
                        f.state,
                        f.resource_arn,
                        f.status_message
                            .as_deref()
                            .map_or(String::new(), |m| format!(" ({m})"))
                    ));
                }
            }
        }
    }

    let logical = observed
        .logical
        .as_ref()
        .map(|l| super::logical::judge(l, config, now, &mut reasons));
    Status {
        healthy: reasons.is_empty(),
        reasons,
        region: region.to_string(),
        endpoint: endpoint.to_string(),
        checked_at: now,
        max_age_seconds: max_age,
        vault,
        plan,
        selection,
        last_completed,
        jobs: observed.jobs.iter().take(show_jobs).cloned().collect(),
        jobs_total: observed.jobs.len(),
        logical,
    }
}

/// 90061 → "1d 1h", 3700 → "1h 1m", 59 → "59s".
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Seconds since the epoch → "2026-11-28 17:20:01Z".
pub fn timestamp(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .map(|s| s.replace('T', " "))
        .unwrap_or_else(|_| secs.to_string())
}

fn size(bytes: Option<i64>) -> String {
    match bytes {
        None => "-".to_string(),
        Some(b) if b < 1024 => format!("{b} B"),
        Some(b) if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        Some(b) => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

struct Paint(bool);

impl Paint {
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

impl Status {
    /// The readable report; `colour` adds ANSI colours.
    pub fn render(&self, colour: bool) -> String {
        let p = Paint(colour);
        let mut o = String::new();
        let ok = |b: bool, s: &str| if b { p.green(s) } else { p.red(s) };
        o.push_str(&format!(
            "{} ({}, {}) at {}\n\n",
            p.bold("hcctl backup-status"),
            self.region,
            self.endpoint,
            timestamp(self.checked_at)
        ));
        let v = &self.vault;
        if v.exists {
            o.push_str(&format!(
                "vault      {:<28} {} · key {} · {} · {} recovery point(s)\n",
                v.name,
                ok(true, "exists"),
                v.encryption_key_arn.as_deref().unwrap_or("AWS-managed"),
                if v.locked == Some(true) {
                    "locked"
                } else {
                    "not locked"
                },
                v.recovery_points.unwrap_or(0)
            ));
        } else {
            o.push_str(&format!(
                "vault      {:<28} {}\n",
                v.name,
                ok(false, "MISSING")
            ));
        }
        let pl = &self.plan;
        if pl.exists {
            let state = if pl.drift.is_empty() {
                ok(true, "matches the config")
            } else {
                ok(false, "DRIFT from the config")
            };
            o.push_str(&format!("plan       {:<28} {state}\n", pl.name));
            o.push_str(&format!(
                "           {:<10} {:<22} {:>6} {:>9} {:>8} {:>8}\n",
                "rule", "schedule", "start", "complete", "delete", "cold"
            ));
            for r in &pl.rules {
                let m = |v: Option<i64>, u: &str| v.map_or("-".to_string(), |x| format!("{x}{u}"));
                o.push_str(&format!(
                    "           {:<10} {:<22} {:>6} {:>9} {:>8} {:>8}\n",
                    r.name,
                    r.schedule,
                    m(r.start_window_minutes, "m"),
                    m(r.completion_window_minutes, "m"),
                    m(r.delete_after_days, "d"),
                    m(r.cold_storage_after_days, "d")
                ));
            }
            for d in &pl.drift {
                o.push_str(&format!("           {} {d}\n", p.red("drift:")));
            }
        } else {
            o.push_str(&format!(
                "plan       {:<28} {}\n",
                pl.name,
                ok(false, "MISSING")
            ));
        }
        let s = &self.selection;
        if s.exists {
            let what = &s.protects;
            o.push_str(&format!(
                "selection  {:<28} {}: {}\n",
                s.name,
                if s.drift.is_empty() {
                    ok(true, "protects")
                } else {
                    ok(false, "DRIFT; protects")
                },
                what.join(", ")
            ));
            for d in &s.drift {
                o.push_str(&format!("           {} {d}\n", p.red("drift:")));
            }
        } else {
            o.push_str(&format!(
                "selection  {:<28} {}\n",
                s.name,
                ok(false, "MISSING")
            ));
        }
        if let Some(l) = &self.logical {
            o.push_str(&l.render(self.checked_at, &ok));
        }
        o.push_str(&format!(
            "\njobs ({} of {}, newest first)\n",
            self.jobs.len(),
            self.jobs_total
        ));
        if self.jobs.is_empty() {
            o.push_str("  (none)\n");
        } else {
            o.push_str(&format!(
                "  {:<10} {:<20} {:<20} {:>9}  {:<38} {}\n",
                "state", "started", "completed", "size", "job", "resource / message"
            ));
            for j in &self.jobs {
                let state = if j.failed() {
                    p.red(&format!("{:<10}", j.state))
                } else if j.state == "COMPLETED" {
                    p.green(&format!("{:<10}", j.state))
                } else {
                    format!("{:<10}", j.state)
                };
                o.push_str(&format!(
                    "  {state} {:<20} {:<20} {:>9}  {:<38} {}{}\n",
                    j.created.map_or("-".to_string(), timestamp),
                    j.completed.map_or("-".to_string(), timestamp),
                    size(j.size_bytes),
                    j.id,
                    j.resource_arn,
                    j.status_message
                        .as_deref()
                        .map_or(String::new(), |m| format!(" — {m}"))
                ));
            }
        }
        o.push('\n');
        if self.healthy {
            let age = self
                .last_completed
                .as_ref()
                .and_then(|j| j.completed.or(j.created))
                .map_or(String::new(), |at| {
                    format!(
                        ": last completed backup {} ago (maximum age {})",
                        human_duration(self.checked_at - at),
                        human_duration(self.max_age_seconds)
                    )
                });
            o.push_str(&format!("{}{age}\n", p.bold(&p.green("HEALTHY"))));
        } else {
            o.push_str(&format!("{}\n", p.bold(&p.red("UNHEALTHY"))));
            for r in &self.reasons {
                o.push_str(&format!("  - {r}\n"));
            }
        }
        o
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoleKind;
    use std::path::Path;

    fn config() -> Config {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/hcctl.yaml"))
                .unwrap();
        Config::parse(&text, Path::new("hcctl.yaml"), &|_| {
            Some("000000000000".into())
        })
        .unwrap()
    }

    fn desired_selection(c: &Config) -> Selection {
        let outputs = crate::resources::Outputs {
            file_system_arn: Some("arn:aws:elasticfilesystem:eu-west-3:0:file-system/fs-1".into()),
            roles: [(RoleKind::Backup, "arn:aws:iam::0:role/b".to_string())].into(),
            ..Default::default()
        };
        Selection::desired(c, &outputs)
    }

    fn job(id: &str, state: &str, created: i64) -> Job {
        Job {
            id: id.into(),
            state: state.into(),
            resource_arn: "arn:aws:elasticfilesystem:eu-west-3:0:file-system/fs-1".into(),
            created: Some(created),
            completed: Some(created + 60),
            size_bytes: Some(2048),
            status_message: (state == "FAILED").then(|| "role cannot read the file system".into()),
        }
    }

    fn healthy_observed(c: &Config) -> Observed {
        Observed {
            vault: Some(Vault {
                name: c.backup.vault.name.clone(),
                arn: "arn:vault".into(),
                encryption_key_arn: None,
                locked: false,
                recovery_points: 1,
                tags: Default::default(),
            }),
            plan: Some(backup_plan::Plan {
                id: "p1".into(),
                arn: "arn:plan".into(),
                name: c.backup.plan.name.clone(),
                version_id: "v1".into(),
                rules: backup_plan::desired_rules(&c.backup),
                tags: Default::default(),
            }),
            selection: Some(desired_selection(c)),
            desired_selection: desired_selection(c),
            file_system: Some("fs-1".into()),
            jobs: vec![job("j1", "COMPLETED", 1_000_000)],
            logical: None,
        }
    }

    #[test]
    fn default_max_age_follows_the_most_frequent_rule() {
        assert_eq!(default_max_age(&config()), 26 * 3600);
        assert_eq!(schedule_interval("cron(0 */6 * * ? *)"), Some(6 * 3600));
        assert_eq!(schedule_interval("cron(0 5 ? * MON *)"), Some(7 * 86400));
        assert_eq!(schedule_interval("rate(12 hours)"), Some(12 * 3600));
        assert_eq!(schedule_interval("nonsense"), None);
        // Values no schedule can have are not intervals (and do not overflow).
        assert_eq!(schedule_interval("rate(9223372036854775807 days)"), None);
        assert_eq!(schedule_interval("rate(0 hours)"), None);
        assert_eq!(
            schedule_interval("cron(0 */9223372036854775807 * * ? *)"),
            None
        );
    }

    #[test]
    fn fresh_completed_backup_is_healthy_and_stale_one_is_not() {
        let c = config();
        let o = healthy_observed(&c);
        let s = judge(&o, &c, 1_000_000 + 3600, 26 * 3600, 10, "r", "e");
        assert!(s.healthy, "{:?}", s.reasons);
        assert!(
            s.to_string()
                .contains("HEALTHY: last completed backup 59m ago"),
            "{s}"
        );
        let stale = judge(&o, &c, 1_000_000 + 30 * 3600, 26 * 3600, 10, "r", "e");
        assert!(!stale.healthy);
        assert_eq!(
            stale.reasons,
            ["the last completed backup is 1d 5h old, more than the maximum age of 1d 2h"]
        );
    }

    #[test]
    fn a_failed_job_after_the_last_success_is_unhealthy() {
        let c = config();
        let mut o = healthy_observed(&c);
        o.jobs.insert(0, job("j2", "FAILED", 1_000_500));
        let s = judge(&o, &c, 1_000_600, 26 * 3600, 10, "r", "e");
        assert!(!s.healthy);
        assert!(
            s.reasons[0].starts_with(
                "1 job(s) failed with no later completed backup of their resource; newest: j2 FAILED"
            ),
            "{:?}",
            s.reasons
        );
        assert!(s.reasons[0].ends_with("(role cannot read the file system)"));
        // A failure before the last success of the same resource does not count.
        let mut older = healthy_observed(&c);
        older.jobs.push(job("j0", "FAILED", 900_000));
        assert!(judge(&older, &c, 1_000_600, 26 * 3600, 10, "r", "e").healthy);
    }

    #[test]
    fn a_failure_is_not_excused_by_another_resource_finishing_later() {
        // One run starts a job per resource at once: fs-1 completes an hour later, fs-2 fails
        // after five minutes. The completion time of fs-1 must not hide fs-2's failure.
        let c = config();
        let mut o = healthy_observed(&c);
        let mut slow = job("j1", "COMPLETED", 1_000_000);
        slow.completed = Some(1_003_600);
        let mut other = job("j2", "FAILED", 1_000_001);
        other.resource_arn = "arn:aws:elasticfilesystem:eu-west-3:0:file-system/fs-2".into();
        other.completed = Some(1_000_300);
        o.jobs = vec![other, slow];
        let s = judge(&o, &c, 1_004_000, 26 * 3600, 10, "r", "e");
        assert!(!s.healthy);
        assert!(
            s.reasons[0].contains(
                "newest: j2 FAILED on arn:aws:elasticfilesystem:eu-west-3:0:file-system/fs-2"
            ),
            "{:?}",
            s.reasons
        );
        // A later successful run of fs-2 clears it.
        let mut retry = job("j3", "COMPLETED", 1_002_000);
        retry.resource_arn = "arn:aws:elasticfilesystem:eu-west-3:0:file-system/fs-2".into();
        o.jobs.insert(0, retry);
        assert!(judge(&o, &c, 1_004_000, 26 * 3600, 10, "r", "e").healthy);
    }

    #[test]
    fn missing_vault_plan_and_drift_are_named() {
        let c = config();
        let mut o = healthy_observed(&c);
        o.vault = None;
        o.jobs.clear();
        if let Some(p) = &mut o.plan {
            p.rules[0].delete_after_days = Some(7);
        }
        let s = judge(&o, &c, 1_000_000, 26 * 3600, 10, "r", "e");
        assert_eq!(
            s.reasons,
            [
                "backup vault hcctl-dev-vault does not exist",
                "backup plan hcctl-dev-daily differs from the config: rules.daily.delete_after_days: 7 → 35"
            ]
        );
        let mut none = healthy_observed(&c);
        none.plan = None;
        none.selection = None;
        let s = judge(&none, &c, 1_000_000, 26 * 3600, 10, "r", "e");
        assert_eq!(s.reasons, ["backup plan hcctl-dev-daily does not exist"]);
    }
}
