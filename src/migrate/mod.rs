//! The data path, CSV → MongoDB, and the commands built on it.
//!
//! - [`read`]: open the input (file, stdin, gzip), match the header, stream rows;
//! - [`clean`]: the cleaning contract, row → typed document or rejection reason;
//! - [`quarantine`]: where rejected rows go, untouched, with their reasons;
//! - [`write`]: batches into MongoDB, duplicates counted, indexes;
//! - [`report`]: the counts that prove nothing was lost;
//! - [`verify`]: check a collection against a CSV ([`sorted`]: the external sort it uses);
//! - [`generate`]: synthetic data with the real file's quirks.
//!
//! `migrate` runs one blocking reader thread (parse + clean) feeding a bounded channel drained by
//! `--workers` concurrent writers: the channel's bound is what keeps memory flat.

pub mod clean;
pub mod generate;
pub mod order;
pub mod quarantine;
pub mod read;
pub mod report;
pub mod seen;
pub mod sorted;
pub mod verify;
pub mod write;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;

use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::{mongo, output};
use order::{Batch, Completion, Window};
use quarantine::Quarantine;
use report::Report;
use write::Writer;

/// Run `hcctl migrate`. Usage and input problems are found before anything is written.
pub async fn migrate(args: &MigrateArgs) -> Result<Report, Error> {
    let started = Instant::now();
    let input = read::open(&args.path)?;
    let quarantine_path = args
        .quarantine
        .clone()
        .unwrap_or_else(|| Quarantine::default_path(&input.source));
    let mut quarantine = Quarantine::create(&quarantine_path, &input.header)?;
    let connection = if args.dry_run {
        None
    } else {
        Some(mongo::connect_collection(&args.conn).await?)
    };
    tracing::info!(input = %input.display, dry_run = args.dry_run, "migrating");

    let mut report = Report {
        source: input.source.clone(),
        database: args.conn.server.db.clone(),
        collection: args.conn.collection.clone(),
        dry_run: args.dry_run,
        quarantine: Some(quarantine_path.display().to_string()),
        ..Report::default()
    };
    let batch_size = args.batch_size as usize;
    let progress = output::row_progress("read");

    let tally = match &connection {
        None => {
            let mut valid = 0u64;
            let tally = input.stream(
                batch_size,
                &progress,
                |line, reason, rec| quarantine.add(line, reason, rec),
                |batch| {
                    valid += batch.len() as u64;
                    Ok(true)
                },
            )?;
            report.inserted = valid;
            tally
        }
        Some(conn) => {
            let writer = Arc::new(Writer::new(&conn.db, &args.conn.collection));
            let (tally, q, early_duplicates) =
                pipeline(input, quarantine, &writer, args, &progress).await?;
            quarantine = q;
            let indexing = Instant::now();
            writer.ensure_indexes().await?;
            report.index_seconds = (indexing.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
            report.inserted = writer.inserted.load(Ordering::Relaxed);
            report.duplicates = writer.duplicates.load(Ordering::Relaxed) + early_duplicates;
            tally
        }
    };
    progress.finish_and_clear();
    quarantine.finish()?;

    report.rows_read = tally.rows_read;
    report.rejected = tally.rejected;
    report.billing_nulled = tally.billing_nulled;
    report.rejects_by_reason = tally.rejects_by_reason;
    report.set_elapsed(started.elapsed().as_secs_f64());
    if report.rejected > 0 {
        tracing::warn!(
            rejected = report.rejected,
            quarantine = %quarantine_path.display(),
            "rows were rejected; each is in the quarantine file with its line and reason"
        );
    }
    if !report.balanced() {
        // Cannot happen unless the server misreports; say so rather than hide it.
        tracing::error!("counts do not add up: rows_read != inserted + duplicates + rejected");
    }
    Ok(report)
}

/// Reader thread → bounded channel → `workers` writer tasks. Returns the reader's tally, the
/// quarantine, and the duplicates the reader recognised itself (see [`order`]).
async fn pipeline(
    input: read::Input,
    mut quarantine: Quarantine,
    writer: &Arc<Writer>,
    args: &MigrateArgs,
    progress: &indicatif::ProgressBar,
) -> Result<(read::Tally, Quarantine, u64), Error> {
    let workers = args.workers as usize;
    let (tx, rx) = mpsc::channel::<Batch>(workers);
    let rx = Arc::new(Mutex::new(rx));
    let completion = Arc::new(Completion::default());
    let mut writers = JoinSet::new();
    for _ in 0..workers {
        let rx = Arc::clone(&rx);
        let writer = Arc::clone(writer);
        let completion = Arc::clone(&completion);
        writers.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(batch) = next else {
                    return Ok::<(), Error>(());
                };
                let seq = batch.seq;
                // The certainly new rows first, in one insert that a server can commit at once;
                // then the suspects, whose duplicates the server reports.
                let mut result = writer.write(batch.fresh).await;
                if result.is_ok() && !batch.suspects.is_empty() {
                    result = writer.write(batch.suspects).await;
                }
                if let Err(e) = result {
                    completion.abort();
                    return Err(e);
                }
                completion.done(seq);
            }
        });
    }
    drop(rx);

    let batch_size = args.batch_size as usize;
    let bar = progress.clone();
    let done = Arc::clone(&completion);
    // Batches in flight at most: those queued in the channel plus those being written.
    let mut window = Window::new(2 * workers + 1);
    let reader = tokio::task::spawn_blocking(move || {
        let mut early_duplicates = 0;
        let tally = input.stream(
            batch_size,
            &bar,
            |line, reason, rec| quarantine.add(line, reason, rec),
            |rows| {
                let (batch, dropped) = window.admit(rows);
                let seq = batch.seq;
                early_duplicates += dropped;
                // A false wait or a closed channel means the writers stopped on an error,
                // which is reported below.
                if !done.wait_through(seq.saturating_sub(window.span())) {
                    return Ok(false);
                }
                if batch.is_empty() {
                    done.done(seq);
                    return Ok(true);
                }
                Ok(tx.blocking_send(batch).is_ok())
            },
        );
        tally.map(|t| (t, quarantine, early_duplicates))
    });

    let mut write_error = None;
    while let Some(joined) = writers.join_next().await {
        let result = joined.map_err(|e| Error::failed(format!("writer task failed: {e}")));
        if let Err(e) = result.and_then(|r| r) {
            if write_error.is_none() {
                write_error = Some(e);
            }
            // Stop the other writers; dropping their receivers stops the reader.
            writers.abort_all();
        }
    }
    let read_result = reader
        .await
        .map_err(|e| Error::failed(format!("reader task failed: {e}")))?;
    match (write_error, read_result) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(e),
        (None, Ok(done)) => Ok(done),
    }
}
