//! The logical layer in `backup-status`: with `backup.dumps` in the config, the newest dump under
//! the drops bucket's `dumps/` and the newest restore drill report under `drills/` (what the
//! schedules write), each judged against its schedule's interval plus a grace; a failed drill is
//! unhealthy whatever the schedule. Listing and one small read: a dump itself is never read.

use serde::Serialize;
use serde_json::Value;

use super::status::{human_duration, schedule_interval, timestamp};
use crate::aws::{s3, Aws, AwsError};
use crate::config::Config;
use crate::resources::bucket::{DRILLS, DUMPS};

/// Slack added to a schedule's interval before a dump or drill counts as overdue: the task's
/// start and its own duration.
pub const GRACE_SECS: i64 = 2 * 3600;

/// The largest drill report read (they are a few KiB).
const MAX_REPORT_BYTES: usize = 1 << 20;

/// What S3 holds, before judging.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub bucket: String,
    /// The bucket does not exist (or cannot be listed): why.
    pub error: Option<String>,
    /// The newest complete dump: its folder (`DB-YYYYMMDDTHHMMSSZ`) and start (epoch seconds).
    pub newest_dump: Option<(String, i64)>,
    pub dumps: usize,
    /// The newest drill report: its key and content (or why it could not be read).
    pub newest_drill: Option<(String, Result<Value, String>)>,
}

/// The logical layer as `backup-status` reports it (`logical` in `--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct LogicalStatus {
    /// `s3://BUCKET/dumps/`.
    pub dumps: String,
    /// Complete dumps there (with a manifest).
    pub dump_count: usize,
    pub last_dump: Option<String>,
    /// When it started (epoch seconds).
    pub last_dump_at: Option<i64>,
    /// The dump schedule's interval plus the grace.
    pub dump_max_age_seconds: Option<i64>,
    /// `s3://BUCKET/drills/`.
    pub drills: String,
    pub last_drill: Option<DrillSeen>,
    /// The drill schedule's interval plus the grace; absent when no drill is scheduled.
    pub drill_max_age_seconds: Option<i64>,
}

/// The newest drill's report, in short.
#[derive(Debug, Clone, Serialize)]
pub struct DrillSeen {
    pub report: String,
    pub ok: bool,
    pub problems: Vec<String>,
    /// When it finished (epoch seconds).
    pub finished_at: Option<i64>,
    pub dump: String,
    pub documents: u64,
    pub rto_seconds: f64,
    pub rpo_seconds: f64,
}

/// `DB-YYYYMMDDTHHMMSSZ` (a dump's folder, or a drill report's name without `.json`) → its time.
pub fn stamp_time(name: &str) -> Option<i64> {
    let (_, stamp) = name.rsplit_once('-')?;
    let b = stamp.as_bytes();
    let ok = b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    if !ok {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    aws_smithy_types::DateTime::from_str(&text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

fn rfc3339_secs(text: &str) -> Option<i64> {
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

/// List `dumps/` and `drills/` of the drops bucket and read the newest drill report; `None`
/// without `backup.dumps`.
pub async fn gather(aws: &Aws, config: &Config) -> Result<Option<Observed>, AwsError> {
    if config.backup.dumps.is_none() {
        return Ok(None);
    }
    let account = match &config.drops.bucket {
        Some(_) => String::new(),
        None => crate::aws::account_id(aws).await?,
    };
    let bucket = config.drops_bucket(&account);
    let mut o = Observed {
        bucket: bucket.clone(),
        ..Observed::default()
    };
    let dumps = match s3::list(&aws.s3, &bucket, DUMPS, None).await {
        Ok(l) => l,
        Err(e) if e.code.as_deref() == Some("NoSuchBucket") => {
            o.error = Some(format!("{e} (run hcctl deploy to create the drops bucket)"));
            return Ok(Some(o));
        }
        Err(e) => return Err(e),
    };
    let complete: Vec<(String, i64)> = dumps
        .iter()
        .filter_map(|l| {
            let rest = l.key.strip_prefix(DUMPS)?;
            let (name, file) = rest.split_once('/')?;
            (file == super::dump::MANIFEST)
                .then(|| stamp_time(name).map(|t| (name.to_string(), t)))
                .flatten()
        })
        .collect();
    o.dumps = complete.len();
    o.newest_dump = complete.into_iter().max_by_key(|(n, t)| (*t, n.clone()));
    let drills = s3::list(&aws.s3, &bucket, DRILLS, None).await?;
    let newest = drills
        .iter()
        .filter_map(|l| {
            let name = l.key.strip_prefix(DRILLS)?.strip_suffix(".json")?;
            (!name.contains('/'))
                .then(|| stamp_time(name).map(|t| (t, l.key.clone())))
                .flatten()
        })
        .max();
    if let Some((_, key)) = newest {
        o.newest_drill = Some((key.clone(), read_report(aws, &bucket, &key).await?));
    }
    Ok(Some(o))
}

/// The report's content, or why it is not one; a refused or failed call is the error (a report
/// deleted since the listing is a reason, not an error).
async fn read_report(
    aws: &Aws,
    bucket: &str,
    key: &str,
) -> Result<Result<Value, String>, AwsError> {
    let out = match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) => {
            let e = AwsError::new(format!("reading s3://{bucket}/{key}"), &e);
            if e.code.as_deref() == Some("NoSuchKey") {
                return Ok(Err(e.to_string()));
            }
            return Err(e);
        }
    };
    if out.content_length().unwrap_or(0) > MAX_REPORT_BYTES as i64 {
        return Ok(Err(format!(
            "s3://{bucket}/{key} is larger than a drill report"
        )));
    }
    let bytes = match out.body.collect().await {
        Ok(b) => b.into_bytes(),
        Err(e) => return Err(AwsError::other(format!("reading s3://{bucket}/{key}"), e)),
    };
    Ok(serde_json::from_slice(&bytes)
        .map_err(|e| format!("s3://{bucket}/{key} is not a drill report: {e}")))
}

/// Judge the logical layer; the reasons it is unhealthy go to `reasons`.
pub fn judge(
    observed: &Observed,
    config: &Config,
    now: i64,
    reasons: &mut Vec<String>,
) -> LogicalStatus {
    let dumps_cfg = config.backup.dumps.as_ref();
    let interval = |e: Option<&str>| {
        e.and_then(schedule_interval)
            .map(|i| i.saturating_add(GRACE_SECS))
    };
    let dump_max = interval(dumps_cfg.map(|d| d.schedule.as_str()));
    let drill_max = interval(dumps_cfg.and_then(|d| d.drill_schedule.as_deref()));
    let mut status = LogicalStatus {
        dumps: format!("s3://{}/{DUMPS}", observed.bucket),
        dump_count: observed.dumps,
        last_dump: observed.newest_dump.as_ref().map(|(n, _)| n.clone()),
        last_dump_at: observed.newest_dump.as_ref().map(|(_, t)| *t),
        dump_max_age_seconds: dump_max,
        drills: format!("s3://{}/{DRILLS}", observed.bucket),
        last_drill: None,
        drill_max_age_seconds: drill_max,
    };
    if let Some(e) = &observed.error {
        reasons.push(format!("the logical dumps cannot be listed: {e}"));
        return status;
    }
    match &observed.newest_dump {
        None => reasons.push(format!(
            "no logical dump under {} (backup.dumps.schedule runs backup dump there)",
            status.dumps
        )),
        Some((name, at)) => {
            let age = now.saturating_sub(*at);
            if let Some(max) = dump_max.filter(|m| age > *m) {
                reasons.push(format!(
                    "the newest logical dump ({name}) is {} old, more than {} (its schedule's \
                     interval plus {})",
                    human_duration(age),
                    human_duration(max),
                    human_duration(GRACE_SECS)
                ));
            }
        }
    }
    match &observed.newest_drill {
        None => {
            if drill_max.is_some() {
                reasons.push(format!(
                    "no restore drill report under {} (backup.dumps.drill_schedule writes one \
                     there)",
                    status.drills
                ));
            }
        }
        Some((key, Err(e))) => {
            reasons.push(format!("the newest restore drill report ({key}): {e}"));
        }
        Some((key, Ok(v))) => {
            let seen = DrillSeen {
                report: format!("s3://{}/{key}", observed.bucket),
                ok: v["ok"].as_bool().unwrap_or(false),
                problems: v["problems"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                finished_at: v["finished"].as_str().and_then(rfc3339_secs),
                dump: v["dump"].as_str().unwrap_or("").to_string(),
                documents: v["documents"].as_u64().unwrap_or(0),
                rto_seconds: v["rto_seconds"].as_f64().unwrap_or(0.0),
                rpo_seconds: v["rpo_seconds"].as_f64().unwrap_or(0.0),
            };
            if !seen.ok {
                let why = if seen.problems.is_empty() {
                    "no reason recorded".to_string()
                } else {
                    seen.problems.join("; ")
                };
                reasons.push(format!(
                    "the newest restore drill ({}) FAILED: {why}",
                    seen.report
                ));
            }
            if let (Some(max), Some(at)) = (drill_max, seen.finished_at) {
                let age = now.saturating_sub(at);
                if age > max {
                    reasons.push(format!(
                        "the newest restore drill is {} old, more than {} (its schedule's \
                         interval plus {})",
                        human_duration(age),
                        human_duration(max),
                        human_duration(GRACE_SECS)
                    ));
                }
            }
            status.last_drill = Some(seen);
        }
    }
    status
}

impl LogicalStatus {
    /// The two lines of the readable report.
    pub fn render(&self, now: i64, ok: &dyn Fn(bool, &str) -> String) -> String {
        let mut o = String::new();
        let max =
            |m: Option<i64>| m.map_or(String::new(), |m| format!(" (max {})", human_duration(m)));
        match (&self.last_dump, self.last_dump_at) {
            (Some(name), Some(at)) => o.push_str(&format!(
                "dumps      {:<28} {} dump(s); newest {name}, {} ago{}\n",
                self.dumps,
                self.dump_count,
                human_duration(now.saturating_sub(at)),
                max(self.dump_max_age_seconds)
            )),
            _ => o.push_str(&format!(
                "dumps      {:<28} {}\n",
                self.dumps,
                ok(false, "NONE")
            )),
        }
        match &self.last_drill {
            Some(d) => o.push_str(&format!(
                "drill      {:<28} {} {}: {} documents, RTO {:.1} s, RPO {}{}\n",
                self.drills,
                ok(d.ok, if d.ok { "PASSED" } else { "FAILED" }),
                d.finished_at
                    .map_or("at an unknown time".to_string(), |t| format!(
                        "{} ({} ago)",
                        timestamp(t),
                        human_duration(now.saturating_sub(t))
                    )),
                crate::output::thousands(d.documents),
                d.rto_seconds,
                human_duration(d.rpo_seconds as i64),
                max(self.drill_max_age_seconds)
            )),
            None => o.push_str(&format!(
                "drill      {:<28} {}\n",
                self.drills,
                if self.drill_max_age_seconds.is_some() {
                    ok(false, "NONE")
                } else {
                    "none (no drill_schedule)".to_string()
                }
            )),
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(drill: Option<&str>) -> Config {
        let mut c = crate::config::tests_support::example_config();
        c.backup.dumps = Some(crate::config::Dumps {
            schedule: "cron(0 2 * * ? *)".into(),
            drill_schedule: drill.map(str::to_string),
            timezone: "UTC".into(),
            retention_days: 35,
        });
        c
    }

    const T: i64 = 1_796_000_000;

    fn observed(dump_age: Option<i64>, drill: Option<(i64, bool)>) -> Observed {
        Observed {
            bucket: "b".into(),
            error: None,
            newest_dump: dump_age.map(|a| ("healthcare-X".into(), T - a)),
            dumps: usize::from(dump_age.is_some()),
            newest_drill: drill.map(|(age, ok)| {
                let finished = aws_smithy_types::DateTime::from_secs(T - age)
                    .fmt(aws_smithy_types::date_time::Format::DateTime)
                    .unwrap();
                (
                    "drills/healthcare-20261205T010000Z.json".into(),
                    Ok(json!({
                        "ok": ok, "problems": if ok { json!([]) } else { json!(["digest differs"]) },
                        "finished": finished, "dump": "s3://b/dumps/healthcare-X",
                        "documents": 55500, "rto_seconds": 21.5, "rpo_seconds": 3600.0,
                    })),
                )
            }),
        }
    }

    #[test]
    fn dump_folder_and_report_names_give_their_time() {
        assert_eq!(
            stamp_time("healthcare-20261205T010203Z"),
            rfc3339_secs("2026-12-05T01:02:03Z")
        );
        assert!(stamp_time("my-db-20261205T010203Z").is_some());
        for bad in [
            "healthcare",
            "healthcare-20261205",
            "x-20261205T0102035Z",
            "x-2026120XT010203Z",
        ] {
            assert_eq!(stamp_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_recent_dump_and_a_passed_drill_are_healthy() {
        let mut reasons = Vec::new();
        let s = judge(
            &observed(Some(3600), Some((600, true))),
            &config(Some("cron(0 5 ? * SUN *)")),
            T,
            &mut reasons,
        );
        assert!(reasons.is_empty(), "{reasons:?}");
        assert_eq!(s.dump_max_age_seconds, Some(86400 + GRACE_SECS));
        assert_eq!(s.drill_max_age_seconds, Some(7 * 86400 + GRACE_SECS));
        let d = s.last_drill.as_ref().unwrap();
        assert!(d.ok);
        assert_eq!(d.documents, 55_500);
        assert_eq!(d.finished_at, Some(T - 600));
        let text = s.render(T, &|_, w| w.to_string());
        assert!(
            text.contains("newest healthcare-X, 1h 0m ago (max 1d 2h)"),
            "{text}"
        );
        assert!(text.contains("PASSED"), "{text}");
        assert!(
            text.contains("55,500 documents, RTO 21.5 s, RPO 1h 0m"),
            "{text}"
        );
    }

    #[test]
    fn an_old_dump_a_failed_drill_or_none_at_all_are_named() {
        let c = config(Some("cron(0 5 ? * SUN *)"));
        let mut reasons = Vec::new();
        judge(
            &observed(Some(2 * 86400), Some((600, false))),
            &c,
            T,
            &mut reasons,
        );
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].contains("the newest logical dump (healthcare-X) is 2d 0h old"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("FAILED: digest differs"), "{reasons:?}");
        let mut reasons = Vec::new();
        judge(&observed(None, None), &c, T, &mut reasons);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].starts_with("no logical dump under s3://b/dumps/"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("no restore drill report under s3://b/drills/"),
            "{reasons:?}"
        );
        // Without a drill schedule, no drill is not a problem, an old one is not either; a
        // failed one still is.
        let c = config(None);
        let mut reasons = Vec::new();
        judge(&observed(Some(60), None), &c, T, &mut reasons);
        assert!(reasons.is_empty(), "{reasons:?}");
        judge(
            &observed(Some(60), Some((90 * 86400, true))),
            &c,
            T,
            &mut reasons,
        );
        assert!(reasons.is_empty(), "{reasons:?}");
        judge(&observed(Some(60), Some((60, false))), &c, T, &mut reasons);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
    }
}
