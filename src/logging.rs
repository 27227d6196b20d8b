//! hcctl's log on stderr, for a person (text, the default) or for CloudWatch Logs Insights
//! (`HCCTL_LOG_FORMAT=json`, the default in the app's task definition): one JSON object per
//! line with `timestamp`, `level`, `command`, `message` and the event's fields. The last line of
//! a run (`finished`, or the error) carries its exit code, its elapsed time and the figures the
//! command set ([`set_figures`]: rows read, inserted, duplicates, rejected, …), so one query finds
//! every run that rejected rows. Events name files, counts and codes, never a value of a row nor
//! a credential (the mongo module redacts every URI it reports).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The variable that picks the format.
pub const FORMAT_VARIABLE: &str = "HCCTL_LOG_FORMAT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `HCCTL_LOG_FORMAT`'s value: unset or empty is text; anything but text / json is an error
    /// (a typo must not leave a task's logs unparseable without a word).
    pub fn parse(value: Option<&str>) -> Result<LogFormat, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(format!(
                "{FORMAT_VARIABLE}={v:?}: the log format is text or json"
            )),
        }
    }
}

struct Run {
    format: LogFormat,
    command: String,
    started: Instant,
    figures: Map<String, Value>,
}

static RUN: Mutex<Option<Run>> = Mutex::new(None);

/// Sets up the log for `command` ("migrate", "backup dump"). `HCCTL_LOG` (an `EnvFilter`
/// directive such as `debug` or `hcctl=trace`) wins; otherwise `-v` raises the level from
/// warnings only in text, from info in JSON (a task's log is read afterwards: the run's events
/// belong in it).
pub fn init(verbose: u8, format: LogFormat, command: &str) {
    let floor = match format {
        LogFormat::Text => 0,
        LogFormat::Json => 1,
    };
    let default = match verbose.max(floor) {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // Only hcctl's own events: dependencies' debug output could echo connection details.
    let filter = || match std::env::var("HCCTL_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(scope(spec.trim()))
            .unwrap_or_else(|_| EnvFilter::new(format!("hcctl={default}"))),
        _ => EnvFilter::new(format!("hcctl={default}")),
    };
    if let Ok(mut run) = RUN.lock() {
        *run = Some(Run {
            format,
            command: command.to_string(),
            started: Instant::now(),
            figures: Map::new(),
        });
    }
    // A second initialisation (tests) keeps the first.
    match format {
        LogFormat::Text => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false)
                .try_init();
        }
        LogFormat::Json => {
            let _ = tracing_subscriber::registry()
                .with(JsonLines.with_filter(filter()))
                .try_init();
        }
    }
}

/// The format in use (text before [`init`]).
pub fn format() -> LogFormat {
    RUN.lock()
        .ok()
        .and_then(|r| r.as_ref().map(|r| r.format))
        .unwrap_or(LogFormat::Text)
}

/// The run's figures, carried by its last line (merged: a later call adds and replaces keys).
pub fn set_figures(figures: Value) {
    let Value::Object(new) = figures else {
        return;
    };
    if let Ok(mut run) = RUN.lock() {
        if let Some(run) = run.as_mut() {
            run.figures.extend(new);
        }
    }
}

/// The last line of a run: in JSON, `finished` (exit 0) or the error, with the exit code, the
/// elapsed seconds and the figures; in text, `hcctl: error: …` for a failure and nothing else.
/// Written whatever the level filter says: it is the run's outcome.
pub fn finish(code: u8, error: Option<&str>) {
    let (format, line) = match RUN
        .lock()
        .ok()
        .and_then(|r| r.as_ref().map(last_line(code, error)))
    {
        Some(pair) => pair,
        None => (LogFormat::Text, Map::new()),
    };
    let mut err = std::io::stderr().lock();
    match format {
        LogFormat::Json => {
            let _ = writeln!(err, "{}", Value::Object(line));
        }
        LogFormat::Text => {
            if let Some(e) = error {
                let _ = writeln!(err, "hcctl: error: {e}");
            }
        }
    }
}

fn last_line(
    code: u8,
    error: Option<&str>,
) -> impl Fn(&Run) -> (LogFormat, Map<String, Value>) + '_ {
    move |run| {
        let mut line = header(
            if code == 0 { Level::INFO } else { Level::ERROR },
            &run.command,
            error.unwrap_or("finished"),
        );
        line.insert("exit_code".into(), Value::from(code));
        line.insert(
            "elapsed_seconds".into(),
            Value::from(round3(run.started.elapsed().as_secs_f64())),
        );
        for (k, v) in &run.figures {
            line.entry(k.clone()).or_insert_with(|| v.clone());
        }
        (run.format, line)
    }
}

/// A line outside tracing's events (the interrupt notice), in the format in use.
pub fn notice(level: Level, text: &str, fields: Value) {
    let mut err = std::io::stderr().lock();
    match format() {
        LogFormat::Text => {
            let _ = writeln!(err, "hcctl: {text}");
        }
        LogFormat::Json => {
            let command = RUN
                .lock()
                .ok()
                .and_then(|r| r.as_ref().map(|r| r.command.clone()))
                .unwrap_or_default();
            let mut line = header(level, &command, text);
            if let Value::Object(fields) = fields {
                for (k, v) in fields {
                    line.entry(k).or_insert(v);
                }
            }
            let _ = writeln!(err, "{}", Value::Object(line));
        }
    }
}

/// `rejected / rows_read`, rounded to 4 places (0 for an empty run): what the app's alarm on
/// rejected rows compares to its threshold (a metric filter cannot divide two fields).
pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn header(level: Level, command: &str, message: &str) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("timestamp".into(), Value::from(timestamp()));
    line.insert("level".into(), Value::from(level.as_str()));
    line.insert("command".into(), Value::from(command));
    line.insert("message".into(), Value::from(message));
    line
}

/// Now, as RFC 3339 in UTC to the millisecond: "2026-12-06T21:38:09.123Z".
fn timestamp() -> String {
    let now = std::time::SystemTime::now();
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    bson::DateTime::from_millis(millis)
        .try_to_rfc3339_string()
        .unwrap_or_default()
}

/// A bare level ("debug") applies to hcctl only; explicit directives pass through.
fn scope(spec: &str) -> String {
    if ["error", "warn", "info", "debug", "trace", "off"]
        .contains(&spec.to_ascii_lowercase().as_str())
    {
        format!("hcctl={spec}")
    } else {
        spec.to_string()
    }
}

/// tracing's events as JSON lines.
struct JsonLines;

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        let message = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let command = RUN
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.command.clone()))
            .unwrap_or_default();
        let mut line = header(*event.metadata().level(), &command, &message);
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        let _ = writeln!(std::io::stderr().lock(), "{}", Value::Object(line));
    }
}

/// An event's fields as JSON values: numbers and booleans stay typed (Logs Insights compares
/// them), everything else is its display text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_text_or_json() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some(" text ")), Ok(LogFormat::Text));
        assert_eq!(
            LogFormat::parse(Some("jsn")).unwrap_err(),
            "HCCTL_LOG_FORMAT=\"jsn\": the log format is text or json"
        );
    }

    #[test]
    fn bare_levels_are_scoped_to_hcctl() {
        assert_eq!(scope("debug"), "hcctl=debug");
        assert_eq!(scope("mongodb=trace"), "mongodb=trace");
    }

    #[test]
    fn shares_are_rounded_and_never_divide_by_zero() {
        assert_eq!(share(0, 0), 0.0);
        assert_eq!(share(1, 3), 0.3333);
        assert_eq!(share(5, 5), 1.0);
    }

    #[test]
    fn the_last_line_carries_the_code_the_time_and_the_figures() {
        let mut figures = Map::new();
        figures.insert("rows_read".into(), Value::from(10u64));
        // A figure never replaces the line's own keys.
        figures.insert("exit_code".into(), Value::from(99u64));
        let run = Run {
            format: LogFormat::Json,
            command: "migrate".into(),
            started: Instant::now(),
            figures,
        };
        let (_, line) = last_line(4, Some("2 missing"))(&run);
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["command"], "migrate");
        assert_eq!(line["message"], "2 missing");
        assert_eq!(line["exit_code"], 4);
        assert_eq!(line["rows_read"], 10);
        assert!(line["elapsed_seconds"].as_f64().is_some());
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(
            stamp.ends_with('Z') && bson::DateTime::parse_rfc3339_str(stamp).is_ok(),
            "{stamp}"
        );
        let (_, ok) = last_line(0, None)(&run);
        assert_eq!(ok["level"], "INFO");
        assert_eq!(ok["message"], "finished");
    }
}
