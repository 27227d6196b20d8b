//! `hcctl status`: one screen over the running system — the MongoDB service (desired, running,
//! pending, its deployments and last events), the recent runs of the app (the `finished` and
//! error lines its JSON log ends each run with, from CloudWatch Logs), every alarm hcctl manages
//! with its state (ALARM first), and the verdict of `backup-status`. Healthy (exit 0) when the
//! service runs what it should, no alarm is in ALARM and the backups are healthy; anything else
//! needs attention (exit 1); AWS not reachable or refusing a read is exit 3.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::aws::{Aws, AwsError, Target};
use crate::config::Config;
use crate::error::Error;
use crate::resources::alarm;

/// How far back the recent runs are looked for, and how many are shown.
const RUNS_WINDOW_MS: i64 = 24 * 3_600_000;
const RUNS_SHOWN: usize = 10;
/// The service's newest events shown.
const EVENTS_SHOWN: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub healthy: bool,
    /// What needs attention, one line each; empty when healthy.
    pub attention: Vec<String>,
    pub service: Option<Service>,
    /// ALARM first, then INSUFFICIENT_DATA, then OK.
    pub alarms: Vec<Alarm>,
    /// Newest first.
    pub runs: Vec<Run>,
    /// The ingest ledger, with `--ledger`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Ingest>,
    pub backup: BackupVerdict,
}

/// The ingest ledger's totals.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ingest {
    pub ledger: String,
    pub done: u64,
    pub failed: u64,
    pub parked: u64,
    pub in_progress: u64,
    pub rows_read: u64,
    pub inserted: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub cluster: String,
    pub status: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub deployments: Vec<Deployment>,
    /// Newest first.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub status: String,
    pub rollout: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub state: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Run {
    pub timestamp: String,
    pub command: String,
    pub exit_code: i64,
    pub message: String,
    /// The run's figures (rows_read, inserted, …) as its last line carries them.
    pub figures: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupVerdict {
    pub healthy: bool,
    pub reasons: Vec<String>,
}

fn unavailable(e: AwsError) -> Error {
    Error::AwsUnavailable(anyhow::Error::new(e))
}

/// Gather and judge.
pub async fn status(
    config_path: &Path,
    endpoint_url: Option<String>,
    ledger: Option<(&crate::cli::ServerArgs, &str)>,
) -> Result<Status, Error> {
    let config = Config::load(config_path)?;
    let aws = Aws::connect(&Target {
        region: config.region.clone(),
        endpoint_url: endpoint_url.clone(),
    })
    .await;
    let service = service(&aws, &config).await.map_err(unavailable)?;
    let names = alarm::names(&config);
    let mut alarms: Vec<Alarm> = alarm::observe(&aws.cloudwatch, &names)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|(name, o)| Alarm {
            name,
            state: o.state,
            reason: o.reason,
        })
        .collect();
    sort_alarms(&mut alarms);
    let runs = runs(&aws, &config).await.map_err(unavailable)?;
    let backup = crate::backup::status_command(config_path, endpoint_url, None, 0, None).await?;
    let backup = BackupVerdict {
        healthy: backup.healthy,
        reasons: backup.reasons,
    };
    let ingest = match ledger {
        Some((server, name)) => {
            let s = crate::ingest::status(server, name).await?;
            Some(Ingest {
                ledger: s.ledger,
                done: s.done,
                failed: s.failed,
                parked: s.parked,
                in_progress: s.in_progress,
                rows_read: s.rows_read,
                inserted: s.inserted,
            })
        }
        None => None,
    };
    let mut status = judge(service, alarms, runs, backup);
    if let Some(i) = &ingest {
        if i.parked > 0 {
            status.attention.push(format!(
                "{} file(s) parked in the ingest ledger {}: fix the cause, then hcctl ingest \
                 retry FILE",
                i.parked, i.ledger
            ));
            status.healthy = false;
        }
    }
    status.ingest = ingest;
    Ok(status)
}

/// Pure: what needs attention.
pub fn judge(
    service: Option<Service>,
    alarms: Vec<Alarm>,
    runs: Vec<Run>,
    backup: BackupVerdict,
) -> Status {
    let mut attention = Vec::new();
    match &service {
        None => attention.push("the MongoDB service does not exist: run hcctl deploy".to_string()),
        Some(s) if s.status != "ACTIVE" => {
            attention.push(format!("the MongoDB service {} is {}", s.name, s.status))
        }
        Some(s) if s.running < s.desired => attention.push(format!(
            "the MongoDB service {} runs {} of {} desired task(s) ({} pending)",
            s.name, s.running, s.desired, s.pending
        )),
        Some(s) if s.deployments.iter().any(|d| d.rollout == "FAILED") => attention.push(format!(
            "a deployment of the MongoDB service {} failed",
            s.name
        )),
        Some(_) => {}
    }
    for a in alarms.iter().filter(|a| a.state == "ALARM") {
        attention.push(format!("alarm {} is in ALARM", a.name));
    }
    if !backup.healthy {
        attention.push(format!("backups unhealthy: {}", backup.reasons.join("; ")));
    }
    Status {
        healthy: attention.is_empty(),
        attention,
        service,
        alarms,
        runs,
        ingest: None,
        backup,
    }
}

fn sort_alarms(alarms: &mut [Alarm]) {
    let rank = |s: &str| match s {
        "ALARM" => 0,
        "INSUFFICIENT_DATA" => 1,
        _ => 2,
    };
    alarms.sort_by(|a, b| {
        rank(&a.state)
            .cmp(&rank(&b.state))
            .then(a.name.cmp(&b.name))
    });
}

async fn service(aws: &Aws, config: &Config) -> Result<Option<Service>, AwsError> {
    let name = config.service_name();
    let cluster = config.ecs.cluster.clone();
    let out = match aws
        .ecs
        .describe_services()
        .cluster(&cluster)
        .services(&name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_cluster_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(AwsError::new(
                format!("describing the MongoDB service {name}"),
                &e,
            ))
        }
    };
    let Some(s) = out
        .services()
        .iter()
        .find(|s| s.service_name() == Some(name.as_str()) && s.status() != Some("INACTIVE"))
    else {
        return Ok(None);
    };
    Ok(Some(Service {
        name: name.clone(),
        cluster,
        status: s.status().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| Deployment {
                status: d.status().unwrap_or_default().to_string(),
                rollout: d
                    .rollout_state()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
                task_definition: d
                    .task_definition()
                    .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
                    .unwrap_or_default(),
                desired: d.desired_count(),
                running: d.running_count(),
                pending: d.pending_count(),
            })
            .collect(),
        events: s
            .events()
            .iter()
            .take(EVENTS_SHOWN)
            .map(|e| e.message().unwrap_or_default().to_string())
            .collect(),
    }))
}

/// A run's last line, when `message` is one (hcctl's JSON log: a line with `exit_code`).
pub fn run_of(message: &str) -> Option<Run> {
    let v: Value = serde_json::from_str(message.trim()).ok()?;
    let Value::Object(mut o) = v else {
        return None;
    };
    let exit_code = o.remove("exit_code")?.as_i64()?;
    let text = |o: &mut serde_json::Map<String, Value>, k: &str| match o.remove(k) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let timestamp = text(&mut o, "timestamp");
    let command = text(&mut o, "command");
    let message = text(&mut o, "message");
    o.remove("level");
    Some(Run {
        timestamp,
        command,
        exit_code,
        message,
        figures: o,
    })
}

/// The app's recent runs: the last lines of its JSON log in the last day, newest first.
async fn runs(aws: &Aws, config: &Config) -> Result<Vec<Run>, AwsError> {
    let group = &config.log_groups.app.name;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut runs = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..50 {
        let out = aws
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(now - RUNS_WINDOW_MS)
            .filter_pattern("{ $.exit_code >= 0 }")
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(vec![])
            }
            Err(e) => return Err(AwsError::new(format!("reading the runs in {group}"), &e)),
        };
        // Emulators ignore the pattern: only hcctl's last lines are runs.
        runs.extend(out.events().iter().filter_map(|e| run_of(e.message()?)));
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    runs.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    runs.truncate(RUNS_SHOWN);
    Ok(runs)
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.healthy {
            "healthy".to_string()
        } else {
            format!("NEEDS ATTENTION ({})", self.attention.len())
        };
        writeln!(f, "status: {verdict}")?;
        for a in &self.attention {
            writeln!(f, "  ! {a}")?;
        }
        writeln!(f)?;
        match &self.service {
            None => writeln!(f, "MongoDB service: not deployed")?,
            Some(s) => {
                writeln!(
                    f,
                    "MongoDB service {} on {}: {}, {} running / {} desired / {} pending",
                    s.name, s.cluster, s.status, s.running, s.desired, s.pending
                )?;
                for d in &s.deployments {
                    writeln!(
                        f,
                        "  deployment {} {} ({}): {} running / {} desired / {} pending",
                        d.status, d.rollout, d.task_definition, d.running, d.desired, d.pending
                    )?;
                }
                for e in &s.events {
                    writeln!(f, "  event: {e}")?;
                }
            }
        }
        writeln!(f)?;
        if self.alarms.is_empty() {
            writeln!(f, "alarms: none (add alerts to the config)")?;
        } else {
            writeln!(f, "alarms:")?;
            for a in &self.alarms {
                let mut line = format!("  {:<17} {}", a.state, a.name);
                if a.state != "OK" && !a.reason.is_empty() {
                    let _ = write!(line, " — {}", a.reason);
                }
                writeln!(f, "{line}")?;
            }
        }
        writeln!(f)?;
        if self.runs.is_empty() {
            writeln!(f, "runs: none in the app's log in the last 24 hours")?;
        } else {
            writeln!(f, "runs (the app's log, last 24 hours, newest first):")?;
            for r in &self.runs {
                let figures: Vec<String> = ["rows_read", "inserted", "duplicates", "rejected"]
                    .iter()
                    .filter_map(|k| r.figures.get(*k).map(|v| format!("{k} {v}")))
                    .collect();
                writeln!(
                    f,
                    "  {} {} exit {}{}{}",
                    r.timestamp,
                    r.command,
                    r.exit_code,
                    if figures.is_empty() { "" } else { ": " },
                    figures.join(", ")
                )?;
                if r.exit_code != 0 {
                    writeln!(f, "    {}", r.message)?;
                }
            }
        }
        writeln!(f)?;
        if let Some(i) = &self.ingest {
            writeln!(
                f,
                "ingest ledger {}: {} done, {} failed, {} parked, {} in progress ({} rows read, \
                 {} inserted)",
                i.ledger, i.done, i.failed, i.parked, i.in_progress, i.rows_read, i.inserted
            )?;
            writeln!(f)?;
        }
        if self.backup.healthy {
            writeln!(f, "backups: healthy")
        } else {
            writeln!(f, "backups: UNHEALTHY: {}", self.backup.reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(running: i32) -> Service {
        Service {
            name: "m".into(),
            cluster: "c".into(),
            status: "ACTIVE".into(),
            desired: 1,
            running,
            pending: 1 - running,
            deployments: vec![],
            events: vec![],
        }
    }

    fn healthy_backup() -> BackupVerdict {
        BackupVerdict {
            healthy: true,
            reasons: vec![],
        }
    }

    fn alarm(name: &str, state: &str) -> Alarm {
        Alarm {
            name: name.into(),
            state: state.into(),
            reason: String::new(),
        }
    }

    #[test]
    fn an_alarm_a_missing_task_or_unhealthy_backups_need_attention() {
        let ok = judge(
            Some(service(1)),
            vec![alarm("a", "OK")],
            vec![],
            healthy_backup(),
        );
        assert!(ok.healthy, "{:?}", ok.attention);
        let s = judge(Some(service(0)), vec![], vec![], healthy_backup());
        assert_eq!(
            s.attention,
            ["the MongoDB service m runs 0 of 1 desired task(s) (1 pending)"]
        );
        let s = judge(
            Some(service(1)),
            vec![alarm("x", "ALARM")],
            vec![],
            healthy_backup(),
        );
        assert_eq!(s.attention, ["alarm x is in ALARM"]);
        let s = judge(
            None,
            vec![],
            vec![],
            BackupVerdict {
                healthy: false,
                reasons: vec!["no backup".into()],
            },
        );
        assert_eq!(s.attention.len(), 2);
        assert!(!s.healthy);
    }

    #[test]
    fn alarms_in_alarm_come_first() {
        let mut a = vec![
            alarm("b", "OK"),
            alarm("c", "INSUFFICIENT_DATA"),
            alarm("a", "ALARM"),
        ];
        sort_alarms(&mut a);
        let names: Vec<&str> = a.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
    }

    #[test]
    fn a_runs_last_line_is_read_and_other_lines_are_not() {
        let r = run_of(
            r#"{"timestamp":"2026-12-06T21:38:14.871Z","level":"INFO","command":"migrate","message":"finished","exit_code":0,"rows_read":10,"rejected":1}"#,
        )
        .unwrap();
        assert_eq!((r.command.as_str(), r.exit_code), ("migrate", 0));
        assert_eq!(r.figures["rows_read"], 10);
        assert!(run_of(r#"{"level":"INFO","message":"migrating"}"#).is_none());
        assert!(run_of("plain text").is_none());
    }
}
