//! `hcctl ingest`: load every new CSV of a folder or an S3 prefix exactly once.
//!
//! - [`source`]: list a source's files with the identity of their content;
//! - [`ledger`]: the collection that records, claims and arbitrates (see there why claims are
//!   inserted documents);
//! - here: one pass over the source (claim, migrate as `hcctl migrate` would, record), the
//!   `--watch` loop, and the run's report.

pub mod ledger;
pub mod source;

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::{CloudArgs, Format, IngestLoadArgs, MigrateArgs};
use crate::error::Error;
use crate::migrate::location::{Location, ObjectTarget, Sink};
use crate::migrate::report::Report;
use crate::migrate::shard::Shard;
use crate::output::thousands;
use crate::{migrate, mongo};
use ledger::{Claim, Held, Ledger};
use source::{Source, SourceFile};

/// The report of one `hcctl ingest` run (with --watch: of every pass until it stopped).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub source: String,
    pub database: String,
    pub collection: String,
    pub ledger: String,
    pub runner: String,
    /// Files looked at (with --watch, counted again at each pass).
    pub files_seen: u64,
    pub files_ingested: u64,
    /// Loaded before, with the same content.
    pub files_skipped: u64,
    /// Held by another runner's live claim.
    pub files_busy: u64,
    /// Parked after the maximum of failed attempts (`ingest retry FILE`).
    pub files_parked: u64,
    pub files_failed: u64,
    pub rows_read: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub elapsed_seconds: f64,
    /// The files loaded or failed by this run, with their own reports.
    pub files: Vec<FileOutcome>,
}

/// What this run did with one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub file: String,
    /// `ingested` or `failed`.
    pub outcome: String,
    pub attempt: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

impl fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.report, &self.error) {
            (Some(r), _) => write!(
                f,
                "ingested {}: {} rows read, {} inserted, {} duplicates, {} rejected ({:.2} s)",
                self.file,
                thousands(r.rows_read),
                thousands(r.inserted),
                thousands(r.duplicates),
                thousands(r.rejected),
                r.elapsed_seconds
            ),
            (None, error) => write!(
                f,
                "failed {} (attempt {} of {}): {}",
                self.file,
                self.attempt,
                ledger::MAX_ATTEMPTS,
                error.as_deref().unwrap_or("?")
            ),
        }
    }
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ingested {} → {}.{} (ledger {})",
            self.source, self.database, self.collection, self.ledger
        )?;
        let rows = [
            ("files seen", self.files_seen),
            ("ingested", self.files_ingested),
            ("already loaded", self.files_skipped),
            ("held elsewhere", self.files_busy),
            ("parked", self.files_parked),
            ("failed", self.files_failed),
            ("rows read", self.rows_read),
            ("inserted", self.inserted),
            ("duplicates", self.duplicates),
            ("rejected", self.rejected),
        ];
        for (label, n) in rows {
            writeln!(f, "  {label:<16}{:>12}", thousands(n))?;
        }
        writeln!(
            f,
            "  {:<16}{:>12}",
            "elapsed",
            format!("{:.2} s", self.elapsed_seconds)
        )
    }
}

impl IngestReport {
    fn add(&mut self, outcome: FileOutcome) {
        match &outcome.report {
            Some(r) => {
                self.files_ingested += 1;
                self.rows_read += r.rows_read;
                self.inserted += r.inserted;
                self.duplicates += r.duplicates;
                self.rejected += r.rejected;
            }
            None => self.files_failed += 1,
        }
        self.files.push(outcome);
    }
}

/// The claim being loaded, for the signal handler: released so the next run takes the file at
/// once (see [`release_active`]).
static ACTIVE: Mutex<Option<(Ledger, Held)>> = Mutex::new(None);

fn set_active(active: Option<(Ledger, Held)>) {
    if let Ok(mut a) = ACTIVE.lock() {
        *a = active;
    }
}

/// Called by the signal handler before the process exits: let go of the claim in progress, if
/// any (bounded: a server that does not answer leaves the claim to expire with its lease).
pub async fn release_active() {
    let active = ACTIVE.lock().ok().and_then(|mut a| a.take());
    if let Some((ledger, held)) = active {
        let released = tokio::time::timeout(Duration::from_secs(5), ledger.release(&held)).await;
        match released {
            Ok(Ok(())) => eprintln!(
                "hcctl: the file being loaded was released in the ledger: the next ingest run \
                 loads it (every document written so far is complete)"
            ),
            _ => eprintln!(
                "hcctl: the file being loaded could not be released in the ledger: the next \
                 ingest run takes it over when its lease expires"
            ),
        }
    }
}

/// This runner's name: `--runner`, else the ECS task's ARN on ECS, else HOST:PID.
async fn runner_name(given: Option<&str>) -> String {
    if let Some(r) = given.filter(|r| !r.trim().is_empty()) {
        return r.trim().to_string();
    }
    if let Ok(base) = std::env::var("ECS_CONTAINER_METADATA_URI_V4") {
        if let Some(arn) = ecs_task_arn(&base).await {
            return arn;
        }
    }
    crate::writes::this_process()
}

/// The task's ARN from the ECS task metadata endpoint v4 (`$ECS_CONTAINER_METADATA_URI_V4/task`:
/// plain HTTP to a link-local address inside the task), within 2 s; `None` when it cannot be
/// read (the runner is then named HOST:PID).
async fn ecs_task_arn(base: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = base.strip_prefix("http://")?;
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, format!("/{}/task", p.trim_end_matches('/'))),
        None => (rest, "/task".to_string()),
    };
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.take(1 << 20).read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?;
        if status != "200" {
            return None;
        }
        // The JSON object itself (a chunked body has its chunk sizes around it).
        let json = body.get(body.find('{')?..=body.rfind('}')?)?;
        let task: serde_json::Value = serde_json::from_str(json).ok()?;
        task.get("TaskARN")?.as_str().map(str::to_string)
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}

/// Run `hcctl ingest SOURCE`: one pass, or passes every --interval with --watch (until a
/// signal ends the process). `each` is called with every file loaded or failed, as it happens.
pub async fn ingest(
    args: &IngestLoadArgs,
    mut each: impl FnMut(&FileOutcome),
) -> Result<IngestReport, Error> {
    let started = Instant::now();
    let Some(source_text) = args.source.as_deref() else {
        return Err(Error::usage(
            "hcctl ingest: give a folder or s3://BUCKET/PREFIX/ (or: ingest status, ingest retry FILE)",
        ));
    };
    let source = Source::parse(source_text)?;
    if let Some(dir) = &args.quarantine_dir {
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "--quarantine-dir {} is not a folder",
                dir.display()
            )));
        }
    }
    mongo::validate_name("--collection", &args.conn.collection)?;
    let conn = mongo::connect(&args.conn.server).await?;
    let runner = runner_name(args.runner.as_deref()).await;
    let ledger = Ledger::open(&conn.db, &args.ledger.ledger, runner.clone(), args.lease).await?;
    let target = format!("{}.{}", args.conn.server.db, args.conn.collection);
    let mut report = IngestReport {
        source: source.to_string(),
        database: args.conn.server.db.clone(),
        collection: args.conn.collection.clone(),
        ledger: ledger.name().to_string(),
        runner,
        ..IngestReport::default()
    };
    tracing::info!(source = %source, ledger = ledger.name(), watch = args.watch, "ingesting");
    let mut hashes = source::Hashes::default();
    loop {
        let files = source.list(&mut hashes).await?;
        for file in &files {
            report.files_seen += 1;
            // A file loaded before is skipped without a write; any other is claimed, loaded and
            // recorded while registered as a writer, so a backup dump sees it either loaded
            // and recorded as done, or not touched at all.
            if ledger.is_done(file, &target).await? {
                report.files_skipped += 1;
                continue;
            }
            let writing = match crate::writes::begin_writes(ledger.db(), args.write.dump_wait).await
            {
                Ok(w) => w,
                // A long dump is no reason for a watcher to stop: the rest of this pass waits
                // for the next one.
                Err(Error::Busy(why)) if args.watch => {
                    tracing::warn!("{why}; the watcher tries again at its next pass");
                    break;
                }
                Err(e) => return Err(e),
            };
            let result = take(
                args,
                &source,
                &ledger,
                file,
                &target,
                &mut report,
                &mut each,
            )
            .await;
            writing.end().await;
            result?;
        }
        report.elapsed_seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        // With --watch, rewritten after every pass: the report so far.
        if let Some(at) = &args.report {
            write_report(&report, at, args.sse_kms_key_id.as_deref()).await?;
        }
        if !args.watch {
            break;
        }
        tokio::time::sleep(args.interval).await;
    }
    Ok(report)
}

/// Claim one file and, when this runner wins it, load it and record the outcome.
async fn take(
    args: &IngestLoadArgs,
    source: &Source,
    ledger: &Ledger,
    file: &SourceFile,
    target: &str,
    report: &mut IngestReport,
    each: &mut impl FnMut(&FileOutcome),
) -> Result<(), Error> {
    match ledger.claim(file, target).await? {
        Claim::Done => report.files_skipped += 1,
        Claim::Busy { runner } => {
            tracing::info!(file = %file.location, runner = %runner, "held by another runner");
            report.files_busy += 1;
        }
        Claim::Parked { attempts, .. } => {
            tracing::warn!(
                file = %file.location,
                attempts,
                "parked after failed attempts: see `hcctl ingest status`, then `hcctl ingest retry FILE`"
            );
            report.files_parked += 1;
        }
        Claim::Won(held) => {
            let outcome = load(args, source, ledger, file, held).await?;
            each(&outcome);
            report.add(outcome);
        }
    }
    Ok(())
}

async fn write_report(
    report: &IngestReport,
    at: &Location,
    kms_key: Option<&str>,
) -> Result<(), Error> {
    let objects = ObjectTarget::for_outputs(&[("--report", at)], kms_key).await;
    let sink = Sink::create("--report", at, "application/json", objects.as_ref()).await?;
    migrate::report::write_json(report, sink).await
}

/// Migrate one claimed file, renewing the lease meanwhile, and record the outcome. Errors of
/// the file (its content, its object) are its outcome; only the ledger's own failures end the run.
async fn load(
    args: &IngestLoadArgs,
    source: &Source,
    ledger: &Ledger,
    file: &SourceFile,
    held: Held,
) -> Result<FileOutcome, Error> {
    tracing::info!(file = %file.location, attempt = held.attempts, "loading");
    set_active(Some((ledger.clone(), held.clone())));
    let migrate_args = migrate_args(args, source, file);
    let renewing = {
        let ledger = ledger.clone();
        let held = held.clone();
        let every = (args.lease / 3).max(Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match ledger.renew(&held).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            "another runner took this file over (this claim's lease had expired); \
                             this load goes on harmlessly, the other runner records the file"
                        );
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
                }
            }
        })
    };
    let result = migrate::migrate(&migrate_args).await;
    renewing.abort();
    let outcome = match result {
        Ok(report) => {
            ledger.done(&held, &report).await?;
            FileOutcome {
                file: file.location.clone(),
                outcome: "ingested".into(),
                attempt: held.attempts,
                error: None,
                report: Some(report),
            }
        }
        Err(e) => {
            let error = e.to_string();
            ledger.failed(&held, &error).await?;
            FileOutcome {
                file: file.location.clone(),
                outcome: "failed".into(),
                attempt: held.attempts,
                error: Some(error),
                report: None,
            }
        }
    };
    set_active(None);
    Ok(outcome)
}

/// The `hcctl migrate` of one file, with ingest's flags.
fn migrate_args(args: &IngestLoadArgs, source: &Source, file: &SourceFile) -> MigrateArgs {
    let quarantine = args.quarantine_dir.as_ref().map(|dir| {
        let stem = migrate::location::stem(&file.name);
        Location::File(PathBuf::from(dir).join(format!("{stem}.quarantine.csv")))
    });
    MigrateArgs {
        path: file.location.clone(),
        conn: args.conn.clone(),
        write: args.write.clone(),
        sort: args.sort.clone(),
        dry_run: false,
        // An S3 file's report goes beside it (reports/), as migrate's default; a local file's is
        // in the ledger and in this run's report.
        report: None,
        quarantine,
        cloud: CloudArgs {
            shard: Shard::ALL,
            sse_kms_key_id: if source.is_s3() {
                args.sse_kms_key_id.clone()
            } else {
                None
            },
        },
        format: Format::Text,
        writer_registered: true,
    }
}

/// `hcctl ingest status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub ledger: String,
    pub files: Vec<ledger::Entry>,
    pub done: u64,
    pub failed: u64,
    pub parked: u64,
    pub in_progress: u64,
    pub inserted: u64,
    pub rows_read: u64,
}

pub async fn status(server: &crate::cli::ServerArgs, ledger_name: &str) -> Result<Status, Error> {
    let conn = mongo::connect(server).await?;
    let ledger = Ledger::open(&conn.db, ledger_name, String::new(), Duration::ZERO).await?;
    let files = ledger.entries().await?;
    let mut status = Status {
        ledger: ledger.name().to_string(),
        files: Vec::new(),
        done: 0,
        failed: 0,
        parked: 0,
        in_progress: 0,
        inserted: 0,
        rows_read: 0,
    };
    for e in &files {
        match e.state.as_str() {
            "done" => status.done += 1,
            "failed" => status.failed += 1,
            "parked" => status.parked += 1,
            s if s.starts_with("claimed") => status.in_progress += 1,
            _ => {}
        }
        if let Some(r) = &e.report {
            status.inserted += r.inserted;
            status.rows_read += r.rows_read;
        }
    }
    status.files = files;
    Ok(status)
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ledger {}", self.ledger)?;
        if self.files.is_empty() {
            return writeln!(f, "  no file ingested yet");
        }
        writeln!(
            f,
            "  {:<10} {:>8} {:>10} {:>10}  {:<24}  FILE",
            "STATE", "ATTEMPTS", "ROWS", "INSERTED", "FINISHED"
        )?;
        // Parked and failed first: what needs attention.
        let rank = |s: &str| match s {
            "parked" => 0,
            "failed" => 1,
            s if s.starts_with("claimed") => 2,
            _ => 3,
        };
        let mut files: Vec<&ledger::Entry> = self.files.iter().collect();
        files.sort_by_key(|e| rank(&e.state));
        for e in files {
            let (rows, inserted) = e
                .report
                .as_ref()
                .map(|r| (thousands(r.rows_read), thousands(r.inserted)))
                .unwrap_or_else(|| ("-".into(), "-".into()));
            let state = if e.state == "claimed (lease expired)" {
                "expired"
            } else {
                e.state.as_str()
            };
            writeln!(
                f,
                "  {:<10} {:>8} {:>10} {:>10}  {:<24}  {}",
                state,
                e.attempts,
                rows,
                inserted,
                e.finished.as_deref().unwrap_or("-"),
                e.file
            )?;
            if state == "claimed" || state == "expired" {
                writeln!(
                    f,
                    "             held by {} until {}",
                    e.runner.as_deref().unwrap_or("?"),
                    e.lease_expires.as_deref().unwrap_or("?")
                )?;
            }
            if matches!(state, "failed" | "parked") {
                if let Some(err) = &e.last_error {
                    writeln!(f, "             {err}")?;
                }
            }
        }
        writeln!(
            f,
            "  {} done, {} failed, {} parked, {} in progress; {} rows read, {} inserted",
            self.done,
            self.failed,
            self.parked,
            self.in_progress,
            thousands(self.rows_read),
            thousands(self.inserted)
        )?;
        if self.parked > 0 {
            writeln!(
                f,
                "  parked files wait for `hcctl ingest retry FILE` once the cause is fixed"
            )?;
        }
        Ok(())
    }
}

/// `hcctl ingest retry FILE`.
pub async fn retry(
    server: &crate::cli::ServerArgs,
    ledger_name: &str,
    file: &str,
) -> Result<u64, Error> {
    let conn = mongo::connect(server).await?;
    let ledger = Ledger::open(&conn.db, ledger_name, String::new(), Duration::ZERO).await?;
    let n = ledger.retry(file).await?;
    if n == 0 {
        return Err(Error::usage(format!(
            "{file} is not failed or parked in the ledger {} (`hcctl ingest status` lists the files \
             as they are named there)",
            ledger.name()
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-request HTTP server answering `answer`; returns its base URL and what it was asked.
    async fn serve_once(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v4/abc-123", listener.local_addr().unwrap());
        let asked = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (base, asked)
    }

    #[tokio::test]
    async fn the_runner_on_ecs_is_the_task_arn_from_the_metadata_endpoint() {
        let (base, asked) = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n\
             {\"Cluster\":\"c\",\"TaskARN\":\"arn:aws:ecs:eu-west-3:1:task/c/0f3c\",\"Family\":\"app\"}",
        )
        .await;
        assert_eq!(
            ecs_task_arn(&base).await.as_deref(),
            Some("arn:aws:ecs:eu-west-3:1:task/c/0f3c")
        );
        assert!(asked
            .await
            .unwrap()
            .starts_with("GET /v4/abc-123/task HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_and_an_error_or_no_endpoint_falls_back() {
        let (base, _) = serve_once(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n{\"TaskARN\":\"arn:x:task/1\"}\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(ecs_task_arn(&base).await.as_deref(), Some("arn:x:task/1"));
        let (base, _) = serve_once("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(ecs_task_arn(&base).await, None);
        assert_eq!(ecs_task_arn("http://127.0.0.1:1/v4/x").await, None);
        assert_eq!(ecs_task_arn("https://elsewhere/").await, None);
        assert!(runner_name(Some(" given ")).await == "given");
    }
}
