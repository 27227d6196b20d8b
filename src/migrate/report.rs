//! The migration report: the counts that prove nothing was lost
//! (`rows_read = inserted + duplicates + rejected`), as JSON and as a readable summary.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::clean::Reason;
use super::location::Sink;
use crate::error::Error;
use crate::output::thousands;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub source: String,
    pub database: String,
    pub collection: String,
    pub dry_run: bool,
    pub rows_read: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub billing_nulled: u64,
    pub rejects_by_reason: BTreeMap<String, u64>,
    pub quarantine: Option<String>,
    /// `K/N` for one shard of a sharded run (`--shard`): the counts are this shard's rows only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub elapsed_seconds: f64,
    /// Of `elapsed_seconds`, the time spent creating missing indexes after the load.
    pub index_seconds: f64,
    pub rows_per_second: f64,
}

impl Report {
    pub fn count_reject(&mut self, reason: Reason) {
        self.rejected += 1;
        *self
            .rejects_by_reason
            .entry(reason.code().to_string())
            .or_default() += 1;
    }

    pub fn set_elapsed(&mut self, secs: f64) {
        self.elapsed_seconds = (secs * 1000.0).round() / 1000.0;
        self.rows_per_second = if secs > 0.0 {
            (self.rows_read as f64 / secs).round()
        } else {
            0.0
        };
    }

    /// The report of one run made of the reports of its shards (`--shard 1/N` … `N/N` of one
    /// input): counts and rejects by reason summed, the elapsed time the longest shard's (they
    /// run side by side), the quarantines listed. `None` for no part.
    pub fn combine(parts: &[Report]) -> Option<Report> {
        let first = parts.first()?;
        let mut total = Report {
            source: first.source.clone(),
            database: first.database.clone(),
            collection: first.collection.clone(),
            dry_run: first.dry_run,
            ..Report::default()
        };
        let mut quarantines = Vec::new();
        let mut elapsed: f64 = 0.0;
        for p in parts {
            total.rows_read += p.rows_read;
            total.inserted += p.inserted;
            total.duplicates += p.duplicates;
            total.rejected += p.rejected;
            total.billing_nulled += p.billing_nulled;
            for (reason, n) in &p.rejects_by_reason {
                *total.rejects_by_reason.entry(reason.clone()).or_default() += n;
            }
            quarantines.extend(p.quarantine.clone());
            elapsed = elapsed.max(p.elapsed_seconds);
            total.index_seconds = total.index_seconds.max(p.index_seconds);
        }
        total.quarantine = (!quarantines.is_empty()).then(|| quarantines.join(", "));
        total.set_elapsed(elapsed);
        Some(total)
    }

    /// Every row read is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.rows_read == self.inserted + self.duplicates + self.rejected
    }
}

/// Write JSON into `out` and put it in place (a report names the source file and the database:
/// it is written privately like every output, see [`Sink`]).
pub async fn write_json<T: Serialize>(value: &T, mut out: Sink) -> Result<(), Error> {
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| Error::failed(format!("writing report {}: {e}", out.name())))?;
    out.commit().await
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run of {} (nothing written to MongoDB)", self.source)?;
        } else {
            writeln!(
                f,
                "migrated {} → {}.{}",
                self.source, self.database, self.collection
            )?;
        }
        let inserted_label = if self.dry_run {
            "valid rows"
        } else {
            "inserted"
        };
        let rows = [
            ("rows read", self.rows_read),
            (inserted_label, self.inserted),
            ("duplicates", self.duplicates),
            ("rejected", self.rejected),
            ("billing nulled", self.billing_nulled),
        ];
        for (label, n) in rows {
            writeln!(f, "  {label:<16}{:>12}", thousands(n))?;
        }
        for (reason, n) in &self.rejects_by_reason {
            writeln!(f, "    {reason:<30}{:>10}", thousands(*n))?;
        }
        writeln!(
            f,
            "  {:<16}{:>12}",
            "elapsed",
            format!("{:.2} s", self.elapsed_seconds)
        )?;
        writeln!(
            f,
            "  {:<16}{:>12}",
            "rows/s",
            thousands(self.rows_per_second as u64)
        )?;
        if let Some(q) = &self.quarantine {
            writeln!(f, "  {:<16}{q}", "quarantine")?;
        }
        Ok(())
    }
}
