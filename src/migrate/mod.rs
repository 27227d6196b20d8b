//! The data path, CSV → MongoDB, and the commands built on it.
//!
//! - [`read`]: open the input (file, stdin, gzip), match the header, stream rows;
//! - [`clean`]: the cleaning contract, row → typed document or rejection reason;
//! - [`quarantine`]: where rejected rows go, untouched, with their reasons;
//! - [`outfile`]: how the quarantine and the report are written (privately, in place at the end);
//! - [`location`]: where they go, a local file or an S3 object;
//! - [`shard`]: `--shard K/N`, one of N runs sharing an input;
//! - [`sorted`]: the external sort by `_id` that `migrate` and `verify` share;
//! - [`write`]: batches into MongoDB, duplicates counted, indexes;
//! - [`report`]: the counts that prove nothing was lost;
//! - [`verify`]: check a collection against a CSV;
//! - [`generate`]: synthetic data with the real file's quirks.
//!
//! `migrate` works in two phases. (1) One blocking thread reads, cleans and sorts the input by
//! (`_id`, line) into private temporary runs; rejected rows go to the quarantine. (2) The merged
//! runs are read back in order: copies of one content meet in the sort, so the first is kept and
//! the others counted as duplicates on the spot; the distinct rows go in batches through a
//! bounded channel to `--workers` concurrent writers. No two batches share an `_id`, so they may
//! complete in any order, and the server's `_id` index grows at its end. The sort budget and the
//! channel's bound are what keep memory flat.

pub mod clean;
pub mod generate;
pub mod location;
pub mod outfile;
pub mod quarantine;
pub mod read;
pub mod report;
pub mod shard;
pub mod sorted;
pub mod verify;
pub mod write;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bson::RawDocumentBuf;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;

use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::{mongo, output};
use clean::Cleaned;
use location::{Location, ObjectTarget, Sink};
use quarantine::Quarantine;
use report::Report;
use sorted::Merge;
use write::Writer;

/// Run `hcctl migrate`. Usage and input problems are found before anything is written. The
/// quarantine and the report are put in place only when the whole run succeeds: a run that fails
/// or is interrupted leaves neither behind (an incomplete list of rejected rows, with their
/// patient data, would pass for a whole one); the rerun writes them whole.
pub async fn migrate(args: &MigrateArgs) -> Result<Report, Error> {
    let started = Instant::now();
    sorted::check_temp_dir(args.sort.temp_dir.as_deref())?;
    let shard = args.cloud.shard;
    let mut input = read::open(&args.path, args.sort.max_input_bytes)?;
    input.shard = shard;
    let quarantine_at = args
        .quarantine
        .clone()
        .unwrap_or_else(|| Location::default_quarantine(&args.path, &input.source, shard));
    let report_at = args
        .report
        .clone()
        .or_else(|| Location::default_report(&args.path, shard));
    let mut outputs = vec![("--quarantine", &quarantine_at)];
    if let Some(report) = &report_at {
        outputs.push(("--report", report));
    }
    location::check(&args.path, &outputs)?;
    let objects = ObjectTarget::for_outputs(&outputs, args.cloud.sse_kms_key_id.as_deref()).await;
    let sink = Sink::create("--quarantine", &quarantine_at, "text/csv", objects.as_ref()).await?;
    let mut quarantine = Quarantine::create(sink, &input.header)?;
    let report_file = match &report_at {
        Some(at) => Some(Sink::create("--report", at, "application/json", objects.as_ref()).await?),
        None => None,
    };
    let connection = if args.dry_run {
        None
    } else {
        Some(mongo::connect_collection(&args.conn).await?)
    };
    tracing::info!(input = %input.display, dry_run = args.dry_run, shard = %shard, "migrating");

    let mut report = Report {
        source: input.source.clone(),
        database: args.conn.server.db.clone(),
        collection: args.conn.collection.clone(),
        dry_run: args.dry_run,
        quarantine: Some(quarantine_at.to_string()),
        shard: (!shard.is_all()).then(|| shard.to_string()),
        ..Report::default()
    };
    let batch_size = args.write.batch_size as usize;
    let progress = output::row_progress("read");

    let (tally, quarantine_file) = match &connection {
        None => {
            // On a blocking thread like the sort: an S3 input waits for the network there.
            let bar = progress.clone();
            let (tally, valid, quarantine_file) = tokio::task::spawn_blocking(move || {
                let mut valid = 0u64;
                let tally = input.stream(
                    batch_size,
                    &bar,
                    |line, reason, rec| quarantine.add(line, reason, rec),
                    |batch| {
                        valid += batch.len() as u64;
                        Ok(true)
                    },
                )?;
                Ok::<_, Error>((tally, valid, quarantine.finish()?))
            })
            .await
            .map_err(|e| Error::failed(format!("reader task failed: {e}")))??;
            progress.finish_and_clear();
            report.inserted = valid;
            (tally, quarantine_file)
        }
        Some(conn) => {
            // Phase 1: read, clean, sort. Rejects are in the quarantine before any write.
            let temp_dir = args.sort.temp_dir.clone();
            let bar = progress.clone();
            let ((tally, merge), quarantine_file) = tokio::task::spawn_blocking(move || {
                let sorted = sorted::sort_input(input, temp_dir, &bar, |line, reason, rec| {
                    quarantine.add(line, reason, rec)
                })?;
                Ok::<_, Error>((sorted, quarantine.finish()?))
            })
            .await
            .map_err(|e| Error::failed(format!("reader task failed: {e}")))??;
            progress.finish_and_clear();

            // Phase 2: load in _id order, then the indexes.
            let valid = tally.rows_read - tally.rejected;
            let load_bar = output::row_bar("loaded", valid);
            // Registered as a writer first: a backup dump in progress is waited for, and none
            // starts until this run's writes are done.
            let writing = if args.writer_registered {
                None
            } else {
                Some(crate::writes::begin_writes(&conn.db, args.write.dump_wait).await?)
            };
            let writer = Arc::new(Writer::new(&conn.db, &args.conn.collection));
            let written = async {
                let early_duplicates = load(merge, &writer, args, &load_bar).await?;
                load_bar.finish_and_clear();
                let indexing = Instant::now();
                writer.ensure_indexes().await?;
                Ok::<_, Error>((early_duplicates, indexing.elapsed()))
            }
            .await;
            if let Some(lease) = writing {
                lease.end().await;
            }
            let (early_duplicates, indexing) = written?;
            report.index_seconds = (indexing.as_secs_f64() * 1000.0).round() / 1000.0;
            report.inserted = writer.inserted.load(Ordering::Relaxed);
            report.duplicates = writer.duplicates.load(Ordering::Relaxed) + early_duplicates;
            (tally, quarantine_file)
        }
    };

    report.rows_read = tally.rows_read;
    report.rejected = tally.rejected;
    report.billing_nulled = tally.billing_nulled;
    report.rejects_by_reason = tally.rejects_by_reason;
    report.set_elapsed(started.elapsed().as_secs_f64());
    if report.rejected > 0 {
        tracing::warn!(
            rejected = report.rejected,
            quarantine = %quarantine_at,
            "rows were rejected; each is in the quarantine file with its line and reason"
        );
    }
    if !report.balanced() {
        // Cannot happen unless the server misreports; say so rather than hide it.
        tracing::error!("counts do not add up: rows_read != inserted + duplicates + rejected");
    }
    // The run succeeded: its outputs go in place, the report (which names the quarantine) last.
    quarantine_file.commit().await?;
    if let Some(out) = report_file {
        report::write_json(&report, out).await?;
    }
    Ok(report)
}

/// Sorted rows → bounded channel → `workers` writer tasks. Returns the duplicates recognised
/// in the sort (the copies folded into each row).
async fn load(
    mut merge: Merge,
    writer: &Arc<Writer>,
    args: &MigrateArgs,
    progress: &indicatif::ProgressBar,
) -> Result<u64, Error> {
    let workers = args.write.workers as usize;
    let (tx, rx) = mpsc::channel::<Vec<Cleaned>>(workers);
    let rx = Arc::new(Mutex::new(rx));
    let mut writers = JoinSet::new();
    for _ in 0..workers {
        let rx = Arc::clone(&rx);
        let writer = Arc::clone(writer);
        let bar = progress.clone();
        writers.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(batch) = next else {
                    return Ok::<(), Error>(());
                };
                let n = batch.len() as u64;
                writer.write(batch).await?;
                bar.inc(n);
            }
        });
    }
    drop(rx);

    let batch_size = args.write.batch_size as usize;
    let bar = progress.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut duplicates = 0u64;
        let mut batch = Vec::with_capacity(batch_size);
        loop {
            let entry = merge
                .next_entry()
                .map_err(|e| Error::failed(format!("reading sorted rows back: {e}")))?;
            let Some(entry) = entry else { break };
            // Each id comes once, its first row standing for its later copies: that row is the
            // one stored.
            duplicates += entry.copies;
            bar.inc(entry.copies);
            let doc = RawDocumentBuf::from_bytes(entry.doc).map_err(|e| {
                Error::failed(format!(
                    "internal: sorted row at line {} is not BSON: {e}",
                    entry.line
                ))
            })?;
            batch.push(Cleaned {
                id: entry.id,
                doc,
                line: entry.line,
                billing_nulled: false,
            });
            if batch.len() >= batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                // A closed channel means the writers stopped on an error, reported below.
                if tx.blocking_send(full).is_err() {
                    return Ok(duplicates);
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok::<u64, Error>(duplicates)
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
        (None, result) => result,
    }
}
