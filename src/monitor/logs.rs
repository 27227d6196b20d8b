//! `hcctl logs mongo|app`: the CloudWatch log events of one container's tasks. The streams are
//! chosen newest first (DescribeLogStreams by last event time, as `copilot svc logs` does): the
//! streams of that container (`<prefix>/<container>/<task id>`, the awslogs driver's names)
//! with events in the window, at most [`MAX_STREAMS`]; their events are then read in time order
//! (FilterLogEvents, page by page: memory does not grow with the log) and each line is labelled
//! with its task. `--follow` polls for new events with backoff (1 s, doubling to 10 s while
//! nothing comes), choosing the streams again each time (tasks started since have their own).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::OrderBy;
use serde::Serialize;

use crate::aws::{Aws, AwsError, AwsErrorKind, Target};
use crate::config::Config;
use crate::error::Error;
use crate::resources::task_definition;

/// FilterLogEvents takes at most 100 stream names.
pub const MAX_STREAMS: usize = 100;
/// CloudWatch updates a stream's last event time "on an eventual consistency basis, typically
/// in less than an hour": a stream whose last event looks older than the window by less than
/// this may still hold events in it.
const LAST_EVENT_LAG_MS: i64 = 3_600_000;
const MIN_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Request {
    pub config_path: std::path::PathBuf,
    pub endpoint_url: Option<String>,
    /// `mongo` or `app`.
    pub container: String,
    pub since: Duration,
    /// Only events containing this text (case-sensitive).
    pub filter: Option<String>,
    /// Only the task(s) whose id starts with this (an id or a task ARN).
    pub task: Option<String>,
    pub follow: bool,
}

/// One log line of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// RFC 3339, UTC, to the millisecond: when the container wrote it.
    pub timestamp: String,
    #[serde(skip)]
    pub timestamp_ms: i64,
    /// The task id (the stream name's last part).
    pub task: String,
    pub stream: String,
    pub message: String,
}

/// Where a container's tasks log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub group: String,
    /// `app/app/`: the start of its streams' names, when the task definition says.
    pub stream_prefix: Option<String>,
}

/// Prints (through `line`) the events of the window and, with `follow`, every new one until
/// the process is stopped. `note` says what a person should know (no streams, the cap).
pub async fn logs(
    req: &Request,
    line: &mut dyn FnMut(&Line) -> Result<(), Error>,
    note: &dyn Fn(&str),
) -> Result<(), Error> {
    let config = Config::load(&req.config_path)?;
    let aws = Aws::connect(&Target {
        region: config.region.clone(),
        endpoint_url: req.endpoint_url.clone(),
    })
    .await;
    let source = source(&aws, &config, &req.container)
        .await
        .map_err(classify)?;
    let task = req.task.as_deref().map(task_id);
    let since_ms = now_ms() - i64::try_from(req.since.as_millis()).unwrap_or(i64::MAX / 2);
    let mut streams = select(&aws, &source, since_ms, task).await?;
    if streams.is_empty() {
        note(&format!(
            "no log stream of {} in {} has events since {}{}",
            req.container,
            source.group,
            rfc3339(since_ms),
            if req.follow {
                "; waiting for new ones"
            } else {
                ""
            }
        ));
    } else if streams.len() == MAX_STREAMS {
        note(&format!(
            "showing the {MAX_STREAMS} streams with the newest events (use --task or a shorter \
             --since for the others)"
        ));
    }
    let mut seen = Seen::default();
    read(
        &aws,
        &source,
        &streams,
        since_ms,
        req.filter.as_deref(),
        &mut seen,
        line,
    )
    .await?;
    if !req.follow {
        return Ok(());
    }
    let mut delay = MIN_POLL;
    loop {
        tokio::time::sleep(delay).await;
        // Chosen again at each poll: a task started since has a stream of its own.
        streams = select(&aws, &source, seen.from(since_ms), task).await?;
        let before = seen.count;
        read(
            &aws,
            &source,
            &streams,
            seen.from(since_ms),
            req.filter.as_deref(),
            &mut seen,
            line,
        )
        .await?;
        delay = if seen.count > before {
            MIN_POLL
        } else {
            (delay * 2).min(MAX_POLL)
        };
    }
}

/// The container's log group and stream prefix: from the latest task definition of its family
/// (what its tasks write to), else the config's log group.
pub async fn source(aws: &Aws, config: &Config, container: &str) -> Result<Source, AwsError> {
    let configured = match container {
        "mongo" => config.log_groups.mongo.name.clone(),
        _ => config.log_groups.app.name.clone(),
    };
    let family = config.family(container);
    let from_definition = task_definition::latest(&aws.ecs, &family)
        .await?
        .and_then(|(_, td)| {
            let c = td
                .container_definitions
                .into_iter()
                .find(|c| c.name == container)?;
            let l = c.log_configuration.filter(|l| l.log_driver == "awslogs")?;
            Some(Source {
                group: l
                    .options
                    .get("awslogs-group")
                    .cloned()
                    .unwrap_or_else(|| configured.clone()),
                stream_prefix: l
                    .options
                    .get("awslogs-stream-prefix")
                    .map(|p| format!("{p}/{container}/")),
            })
        });
    Ok(from_definition.unwrap_or(Source {
        group: configured,
        stream_prefix: None,
    }))
}

/// The streams of the container (and task) with events since `since_ms`, newest first.
async fn select(
    aws: &Aws,
    source: &Source,
    since_ms: i64,
    task: Option<&str>,
) -> Result<Vec<String>, Error> {
    let mut chosen = Vec::new();
    let mut token: Option<String> = None;
    // 20 pages of 50: beyond a thousand streams, the newest hundred are long found.
    'pages: for _ in 0..20 {
        let out = aws
            .logs
            .describe_log_streams()
            .log_group_name(&source.group)
            .order_by(OrderBy::LastEventTime)
            .descending(true)
            .limit(50)
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Err(Error::usage(format!(
                    "log group {} does not exist: run `hcctl deploy` first",
                    source.group
                )))
            }
            Err(e) => {
                return Err(classify(AwsError::new(
                    format!("listing the log streams of {}", source.group),
                    &e,
                )))
            }
        };
        for s in out.log_streams() {
            let Some(name) = s.log_stream_name() else {
                continue;
            };
            let last = s.last_event_timestamp().or(s.creation_time()).unwrap_or(0);
            if last < since_ms - LAST_EVENT_LAG_MS {
                break 'pages;
            }
            if wanted(source, name, task) {
                chosen.push(name.to_string());
                if chosen.len() == MAX_STREAMS {
                    break 'pages;
                }
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(chosen)
}

/// Whether a stream is the container's (and the task's, when one is asked for).
fn wanted(source: &Source, stream: &str, task: Option<&str>) -> bool {
    if let Some(prefix) = &source.stream_prefix {
        if !stream.starts_with(prefix.as_str()) {
            return false;
        }
    }
    match task {
        Some(t) => task_id(stream).starts_with(t),
        None => true,
    }
}

/// What a follow has printed. Each read (a pass) starts [`LATE_MS`] before the newest event
/// seen (the awslogs driver sends batches: an event of one task can arrive after a newer one of
/// another) and skips the events it already printed. The server may return a pass's events in
/// any order (LocalStack returns them stream by stream), so an event is judged against where its
/// pass started, never against a newer event of the same pass. Only the ids that a later pass
/// can return again are kept: those within [`LATE_MS`] of the newest event.
#[derive(Debug, Default)]
struct Seen {
    last_ms: Option<i64>,
    /// Where the pass under way started (nothing older comes back).
    pass_from: Option<i64>,
    /// Printed by earlier passes, still within reach of this one: left alone until it ends.
    earlier: HashMap<String, i64>,
    /// Printed by this pass, within [`LATE_MS`] of its newest event so far.
    recent: HashMap<String, i64>,
    count: u64,
}

const LATE_MS: i64 = 30_000;

impl Seen {
    /// Starts a pass that reads from `from_ms`.
    fn start(&mut self, from_ms: i64) {
        self.pass_from = Some(from_ms);
    }

    /// True when the event is new (and records it when a later pass may return it again).
    fn admit(&mut self, ms: i64, id: String) -> bool {
        if self.pass_from.is_some_and(|from| ms < from)
            || self.earlier.contains_key(&id)
            || self.recent.contains_key(&id)
        {
            return false;
        }
        if self.last_ms.is_none_or(|last| ms > last) {
            self.last_ms = Some(ms);
            let floor = ms.saturating_sub(LATE_MS);
            self.recent.retain(|_, t| *t >= floor);
        }
        // Older than the next pass's start: it cannot come back (this pass returns it once).
        if self
            .last_ms
            .is_none_or(|last| ms >= last.saturating_sub(LATE_MS))
        {
            self.recent.insert(id, ms);
        }
        true
    }

    /// Ends a pass: what the next one may return again is all that is kept.
    fn finish(&mut self) {
        let floor = self
            .last_ms
            .map_or(i64::MIN, |last| last.saturating_sub(LATE_MS));
        let mut kept = std::mem::take(&mut self.recent);
        kept.extend(self.earlier.drain().filter(|(_, t)| *t >= floor));
        kept.retain(|_, t| *t >= floor);
        self.earlier = kept;
    }

    /// Where the next read starts.
    fn from(&self, since_ms: i64) -> i64 {
        // Never before the window asked for.
        self.last_ms
            .map_or(since_ms, |last| last.saturating_sub(LATE_MS).max(since_ms))
    }
}

/// The streams' events from `from_ms`, in time order, page by page.
async fn read(
    aws: &Aws,
    source: &Source,
    streams: &[String],
    from_ms: i64,
    filter: Option<&str>,
    seen: &mut Seen,
    line: &mut dyn FnMut(&Line) -> Result<(), Error>,
) -> Result<(), Error> {
    if streams.is_empty() {
        return Ok(());
    }
    let pattern = filter.and_then(pattern);
    let mut token: Option<String> = None;
    seen.start(from_ms);
    loop {
        let out = aws
            .logs
            .filter_log_events()
            .log_group_name(&source.group)
            .set_log_stream_names(Some(streams.to_vec()))
            .start_time(from_ms)
            .set_filter_pattern(pattern.clone())
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                classify(AwsError::new(
                    format!("reading the log events of {}", source.group),
                    &e,
                ))
            })?;
        // AWS interleaves the streams' events in time order; LocalStack returns them stream by
        // stream. A page (at most 10,000 events or 1 MB) is put in time order here.
        let mut events: Vec<_> = out.events().iter().collect();
        events.sort_by_key(|e| e.timestamp().unwrap_or(0));
        for event in events {
            let stream = event.log_stream_name().unwrap_or_default();
            let ms = event.timestamp().unwrap_or(0);
            let message = event.message().unwrap_or_default();
            if !streams.iter().any(|s| s == stream) {
                continue;
            }
            let id = event
                .event_id()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{stream}\u{0}{ms}\u{0}{message}"));
            // The emulators ignore or loosen filter patterns; real AWS matches the same text.
            if !seen.admit(ms, id) || filter.is_some_and(|f| !message.contains(f)) {
                continue;
            }
            seen.count += 1;
            for text in message.trim_end_matches(['\n', '\r']).split('\n') {
                line(&Line {
                    timestamp: rfc3339(ms),
                    timestamp_ms: ms,
                    task: task_id(stream).to_string(),
                    stream: stream.to_string(),
                    message: text.trim_end_matches('\r').to_string(),
                })?;
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            seen.finish();
            return Ok(());
        }
    }
}

/// The filter as a CloudWatch pattern: the exact phrase, quoted. Text with a double quote or a
/// backslash is filtered here only (the pattern language has no escape AWS documents).
fn pattern(text: &str) -> Option<String> {
    (!text.is_empty() && !text.contains(['"', '\\'])).then(|| format!("\"{text}\""))
}

/// The task id of a task ARN, an id, or a stream name (their last part).
fn task_id(text: &str) -> &str {
    text.rsplit('/').next().unwrap_or(text)
}

/// An unreachable endpoint is exit 3, like backup-status; AWS's refusals are failures (exit 1).
fn classify(e: AwsError) -> Error {
    if e.kind == AwsErrorKind::Unreachable {
        Error::AwsUnavailable(anyhow::Error::new(e))
    } else {
        Error::from(e)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    let t = bson::DateTime::from_millis(ms);
    t.try_to_rfc3339_string().unwrap_or_else(|_| t.to_string())
}

/// A line as text: `2026-12-06T21:38:09.123Z 3f2a9c1d0b4e  message`.
pub fn text(line: &Line) -> String {
    let short: String = line.task.chars().take(12).collect();
    format!("{} {short}  {}", line.timestamp, line.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Source {
        Source {
            group: "/ecs/hcctl-dev/app".into(),
            stream_prefix: Some("app/app/".into()),
        }
    }

    #[test]
    fn only_the_containers_streams_and_the_tasks_are_wanted() {
        let s = app();
        assert!(wanted(&s, "app/app/0123abcd", None));
        assert!(!wanted(&s, "other/app/0123abcd", None));
        assert!(wanted(&s, "app/app/0123abcd", Some("0123")));
        assert!(!wanted(&s, "app/app/0123abcd", Some("9")));
        let arn = "arn:aws:ecs:eu-west-3:1:task/hcctl-dev/0123abcd";
        assert!(wanted(&s, "app/app/0123abcd", Some(task_id(arn))));
        let any = Source {
            stream_prefix: None,
            ..app()
        };
        assert!(wanted(&any, "whatever/stream", None));
    }

    #[test]
    fn a_follow_prints_each_event_once() {
        let mut seen = Seen::default();
        assert_eq!(seen.from(5), 5);
        seen.start(5);
        assert!(seen.admit(100_000, "a".into()));
        assert!(seen.admit(100_000, "b".into()));
        seen.finish();
        assert_eq!(seen.from(5), 70_000);
        // The next read starts 30 s earlier: a and b come back and are skipped; an event that
        // arrived late (older than b, within the window) is printed.
        seen.start(seen.from(5));
        assert!(!seen.admit(100_000, "a".into()));
        assert!(seen.admit(80_000, "late".into()));
        assert!(!seen.admit(80_000, "late".into()));
        assert!(!seen.admit(60_000, "too old".into()));
        assert!(seen.admit(140_000, "c".into()));
        // a and b, printed by the first pass, come back in this one after c: still skipped.
        assert!(!seen.admit(100_000, "b".into()));
        seen.finish();
        // Only what the next pass can return again is remembered.
        assert_eq!(seen.earlier.len(), 1);
        assert!(seen.recent.is_empty());
    }

    #[test]
    fn events_of_one_pass_in_any_order_are_all_printed() {
        // LocalStack returns a pass's events stream by stream: a's newer event before b's older
        // one. Both are printed (the second was dropped as "older than the last" before).
        let mut seen = Seen::default();
        seen.start(0);
        assert!(seen.admit(300_000, "a2".into()));
        assert!(seen.admit(100_000, "a1".into()));
        assert!(seen.admit(200_000, "b1".into()));
        seen.finish();
        assert_eq!(seen.from(0), 270_000);
        // The next pass returns only a2 again (the server filters by its start).
        seen.start(seen.from(0));
        assert!(!seen.admit(300_000, "a2".into()));
        assert!(seen.admit(290_000, "b2".into()));
        seen.finish();
    }

    #[test]
    fn filters_become_quoted_phrases_when_they_can() {
        assert_eq!(
            pattern("migrate finished"),
            Some("\"migrate finished\"".into())
        );
        assert_eq!(pattern("say \"hi\""), None);
        assert_eq!(pattern(""), None);
    }

    #[test]
    fn lines_read_with_their_time_and_task() {
        let l = Line {
            timestamp: rfc3339(1_780_000_000_123),
            timestamp_ms: 1_780_000_000_123,
            task: "0123456789abcdef".into(),
            stream: "app/app/0123456789abcdef".into(),
            message: "hello".into(),
        };
        assert_eq!(text(&l), format!("{} 0123456789ab  hello", l.timestamp));
        assert!(l.timestamp.ends_with(".123Z"), "{}", l.timestamp);
    }
}
