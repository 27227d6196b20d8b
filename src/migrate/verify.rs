//! `hcctl verify`: prove a collection holds exactly what a CSV cleans to.
//!
//! The file is streamed through the same cleaning as `migrate`, and its valid rows are sorted by
//! `_id` (the content hash) with an external sort ([`super::sorted`]); the collection is read once
//! in `_id` order; the two ordered streams are merged and compared field by field. One pass over
//! each side, memory bounded by the sort budget, and no per-row lookups (which some servers,
//! FerretDB among them, answer with a table scan).

use std::fmt;
use std::time::Instant;

use bson::{doc, Bson, Document, RawDocumentBuf};
use futures_util::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::clean::LINEAGE;
use super::location::{self, Location, ObjectTarget, Sink};
use super::read;
use super::shard::Shard;
use super::sorted::{self, Entry};
use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::output::{self, thousands};

/// At most this many differing lines are listed (all are counted).
const MAX_LISTED: usize = 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    pub source: String,
    pub database: String,
    pub collection: String,
    pub rows_read: u64,
    /// Rows the cleaning rejects: they are expected *not* to be stored.
    pub rejected: u64,
    /// Valid rows, each of which must find its document.
    pub checked: u64,
    pub found: u64,
    pub missing: u64,
    pub different: u64,
    /// Documents whose lineage names this source but that no row of the file produces.
    pub extra: u64,
    /// The first differences: line numbers and field *names* (never values).
    pub differences: Vec<String>,
    /// `K/N` for one shard (`--shard`): the counts are this shard's rows and documents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub ok: bool,
    pub elapsed_seconds: f64,
}

pub async fn verify(args: &VerifyArgs) -> Result<VerifyReport, Error> {
    let started = Instant::now();
    sorted::check_temp_dir(args.sort.temp_dir.as_deref())?;
    let shard = args.cloud.shard;
    let outputs: Vec<(&str, &Location)> = args.report.iter().map(|r| ("--report", r)).collect();
    location::check(&args.path, &outputs)?;
    let mut input = read::open(&args.path, args.sort.max_input_bytes)?;
    input.shard = shard;
    // Held from the start, so a second run writing the same report is refused before its work.
    let objects = ObjectTarget::for_outputs(&outputs, args.cloud.sse_kms_key_id.as_deref()).await;
    let report_file = match &args.report {
        Some(at) => Some(Sink::create("--report", at, "application/json", objects.as_ref()).await?),
        None => None,
    };
    let conn = crate::mongo::connect_collection(&args.conn).await?;
    let coll: Collection<RawDocumentBuf> = conn.db.collection(&args.conn.collection);
    let source = input.source.clone();

    // 1. The file, cleaned and sorted by _id.
    let progress = output::row_progress("read");
    let bar = progress.clone();
    let temp_dir = args.sort.temp_dir.clone();
    let (tally, mut expected) = tokio::task::spawn_blocking(move || {
        sorted::sort_input(input, temp_dir, &bar, |_, _, _| Ok(()))
    })
    .await
    .map_err(|e| Error::failed(format!("verify task failed: {e}")))??;
    progress.finish_and_clear();

    // 2. The collection in _id order, merged with the file.
    let mut cursor = coll
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .batch_size(args.batch_size)
        .await
        .map_err(|e| {
            Error::failed(format!(
                "reading {}: {}",
                coll.name(),
                crate::mongo::describe(&e)
            ))
        })?;
    let name = coll.name().to_string();
    let stored_err = |e: mongodb::error::Error| {
        Error::failed(format!("reading {name}: {}", crate::mongo::describe(&e)))
    };
    let next_expected = |m: &mut super::sorted::Merge| {
        m.next_entry()
            .map_err(|e| Error::failed(format!("reading sorted rows back: {e}")))
    };

    let mut check = Check::new(&source);
    let mut want = next_expected(&mut expected)?;
    let mut have = next_stored(&mut cursor, shard).await.map_err(stored_err)?;
    let mut have_matched = false;
    loop {
        match (&want, &have) {
            (None, None) => break,
            (Some(e), None) => {
                check.missing(e);
                want = next_expected(&mut expected)?;
            }
            (None, Some(d)) => {
                check.unmatched(d, have_matched);
                have = next_stored(&mut cursor, shard).await.map_err(stored_err)?;
                have_matched = false;
            }
            (Some(e), Some(d)) => match d.get_str("_id").ok().map(|id| e.id.as_str().cmp(id)) {
                Some(std::cmp::Ordering::Equal) => {
                    check.compare(e, d)?;
                    have_matched = true;
                    // The next row may be a duplicate of this one: keep the document.
                    want = next_expected(&mut expected)?;
                }
                Some(std::cmp::Ordering::Less) => {
                    check.missing(e);
                    want = next_expected(&mut expected)?;
                }
                // A stored id before this row's, or not a string (never one of ours).
                _ => {
                    check.unmatched(d, have_matched);
                    have = next_stored(&mut cursor, shard).await.map_err(stored_err)?;
                    have_matched = false;
                }
            },
        }
    }

    let ok = check.missing == 0 && check.different == 0 && check.extra == 0;
    let report = VerifyReport {
        source: source.clone(),
        database: args.conn.server.db.clone(),
        collection: args.conn.collection.clone(),
        rows_read: tally.rows_read,
        rejected: tally.rejected,
        checked: check.found + check.missing,
        found: check.found,
        missing: check.missing,
        different: check.different,
        extra: check.extra,
        differences: check.listed,
        shard: (!shard.is_all()).then(|| shard.to_string()),
        ok,
        elapsed_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    // Differences are a result like any other: the report is written for them too.
    if let Some(out) = report_file {
        super::report::write_json(&report, out).await?;
    }
    Ok(report)
}

/// The next stored document of this shard (a shard compares its own documents only).
async fn next_stored(
    cursor: &mut mongodb::Cursor<RawDocumentBuf>,
    shard: Shard,
) -> Result<Option<RawDocumentBuf>, mongodb::error::Error> {
    loop {
        let doc = cursor.try_next().await?;
        match &doc {
            Some(d) if !d.get_str("_id").map_or(true, |id| shard.owns_id(id)) => continue,
            _ => return Ok(doc),
        }
    }
}

struct Check<'a> {
    source: &'a str,
    found: u64,
    missing: u64,
    different: u64,
    extra: u64,
    listed: Vec<String>,
}

impl<'a> Check<'a> {
    fn new(source: &'a str) -> Self {
        Check {
            source,
            found: 0,
            missing: 0,
            different: 0,
            extra: 0,
            listed: Vec::new(),
        }
    }

    /// The rows an entry stands for: its own and its copies (each of which must be found too).
    fn rows(e: &Entry) -> u64 {
        1 + e.copies
    }

    fn missing(&mut self, e: &Entry) {
        self.missing += Self::rows(e);
        self.note(format!("line {}: missing{}", e.line, copies_note(e)));
    }

    /// A stored document no row matched: extra if it claims to come from this file.
    fn unmatched(&mut self, d: &bson::RawDocument, matched: bool) {
        if matched {
            return;
        }
        let ours = d
            .get_document(LINEAGE)
            .ok()
            .and_then(|l| l.get_str("source").ok())
            .is_some_and(|s| s == self.source);
        if ours {
            self.extra += 1;
            let id = d.get_str("_id").unwrap_or("?");
            self.note(format!("document {id}: not produced by any row"));
        }
    }

    fn compare(&mut self, e: &Entry, stored: &bson::RawDocument) -> Result<(), Error> {
        // Copies have the same content (the `_id` is its hash): one comparison holds for all.
        self.found += Self::rows(e);
        let expected = bson::RawDocument::from_bytes(&e.doc)
            .and_then(Document::try_from)
            .map_err(|err| Error::failed(format!("internal: sorted row is not BSON: {err}")))?;
        let actual = Document::try_from(stored)
            .map_err(|err| Error::failed(format!("reading stored document: {err}")))?;
        let fields = differing_fields(&expected, &actual);
        if !fields.is_empty() {
            self.different += Self::rows(e);
            self.note(format!(
                "line {}{}: differs in {}",
                e.line,
                copies_note(e),
                fields.join(", ")
            ));
        }
        Ok(())
    }

    fn note(&mut self, what: String) {
        tracing::info!("{what}");
        if self.listed.len() < MAX_LISTED {
            self.listed.push(what);
        }
    }
}

/// " (and its 2 later copies)" after a line whose copies share its verdict.
fn copies_note(e: &Entry) -> String {
    match e.copies {
        0 => String::new(),
        1 => " (and its later copy)".to_string(),
        n => format!(" (and its {n} later copies)"),
    }
}

/// Names of the fields that differ. The lineage's source and line may differ: a document records
/// where its content was first seen (a copy further down, the same rows read from stdin or from
/// a .gz copy, the overlap of a later export all share it); the rest of the lineage (the original
/// of a nulled Billing Amount) is content.
fn differing_fields(expected: &Document, actual: &Document) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        if k == LINEAGE {
            let strip = |d: Option<&Bson>| {
                d.and_then(Bson::as_document).map(|l| {
                    let mut l = l.clone();
                    l.remove("line");
                    l.remove("source");
                    l
                })
            };
            if strip(Some(v)) != strip(actual.get(LINEAGE)) {
                out.push(LINEAGE.to_string());
            }
        } else if field(actual, k) != Some(v) {
            out.push(k.clone());
        }
    }
    for k in actual.keys() {
        if field(expected, k).is_none() {
            out.push(k.clone());
        }
    }
    out
}

/// A field by name, or else by its name in another letter case: an extra column keeps the
/// spelling of the export that first stored the admission (`Ward`), and a later export
/// spelling it `WARD` has the same `_id` (the 15 known fields are always spelled one way).
fn field<'a>(doc: &'a Document, name: &str) -> Option<&'a Bson> {
    doc.get(name).or_else(|| {
        let name = name.to_lowercase();
        doc.iter()
            .find(|(k, _)| k.to_lowercase() == name)
            .map(|(_, v)| v)
    })
}

impl VerifyReport {
    /// The result of one verification made of its shards' results: counts summed, the listed
    /// differences concatenated (up to the usual limit), ok only if every shard is.
    pub fn combine(parts: &[VerifyReport]) -> Option<VerifyReport> {
        let first = parts.first()?;
        let mut total = VerifyReport {
            source: first.source.clone(),
            database: first.database.clone(),
            collection: first.collection.clone(),
            ok: true,
            ..VerifyReport::default()
        };
        for p in parts {
            total.rows_read += p.rows_read;
            total.rejected += p.rejected;
            total.checked += p.checked;
            total.found += p.found;
            total.missing += p.missing;
            total.different += p.different;
            total.extra += p.extra;
            total.ok &= p.ok;
            total.elapsed_seconds = total.elapsed_seconds.max(p.elapsed_seconds);
            let room = MAX_LISTED.saturating_sub(total.differences.len());
            total
                .differences
                .extend(p.differences.iter().take(room).cloned());
        }
        Some(total)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.ok { "OK" } else { "DIFFERENCES FOUND" };
        writeln!(
            f,
            "verify {} against {}.{}: {verdict}",
            self.source, self.database, self.collection
        )?;
        for (label, n) in [
            ("rows read", self.rows_read),
            ("rejected", self.rejected),
            ("checked", self.checked),
            ("found", self.found),
            ("missing", self.missing),
            ("different", self.different),
            ("extra", self.extra),
        ] {
            writeln!(f, "  {label:<12}{:>12}", thousands(n))?;
        }
        for d in &self.differences {
            writeln!(f, "  - {d}")?;
        }
        writeln!(
            f,
            "  {:<12}{:>12}",
            "elapsed",
            format!("{:.2} s", self.elapsed_seconds)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_source_and_line_may_differ_but_nothing_else() {
        let a = doc! { "_id": "x", "Age": 3, LINEAGE: { "source": "a.csv", "line": 2_i64 } };
        let mut b = a.clone();
        b.insert(LINEAGE, doc! { "source": "stdin", "line": 9_i64 });
        assert!(differing_fields(&a, &b).is_empty());
        b.insert("Age", 4);
        b.insert("Ward", "W");
        assert_eq!(differing_fields(&a, &b), vec!["Age", "Ward"]);
        let billing = |original: f64| {
            doc! { "_id": "x", LINEAGE: { "source": "a.csv", "line": 2_i64, "billing_amount_original": original } }
        };
        assert_eq!(
            differing_fields(&billing(-1.5), &billing(-2.5)),
            vec![LINEAGE]
        );
    }
}
