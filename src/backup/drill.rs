//! `hcctl backup drill`: the restore test in one command. Take a dump (or use the one given, or
//! the newest under a prefix), load it into a fresh scratch database with every check of
//! `backup load`, `verify` the given CSVs against the restored documents, measure the time to
//! restore (RTO) and the age of the restored data (RPO), drop the scratch database.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::dump::{self, Place, MANIFEST};
use crate::aws::s3::{self, S3Url};
use crate::cli::{ConnectionArgs, DrillArgs, Format, VerifyArgs};
use crate::error::Error;
use crate::ingest::source::{Hashes, Identity, Source};
use crate::migrate::location::{Location, ObjectTarget, Sink};
use crate::migrate::shard::Shard;
use crate::{migrate, mongo, output};

/// One `--verify` of the drill.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub file: String,
    pub collection: String,
    pub ok: bool,
    pub checked: u64,
    pub missing: u64,
    pub different: u64,
    pub extra: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The drill's result.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub ok: bool,
    /// What went wrong, one line each (empty when ok).
    pub problems: Vec<String>,
    pub dump: String,
    /// Whether this drill took the dump itself.
    pub dumped_now: bool,
    pub database: String,
    pub scratch_database: String,
    pub scratch_dropped: bool,
    /// When the dump started (RFC 3339): the restored data is as of then.
    pub dump_started: String,
    /// Recovery point: how old the restored data is, now.
    pub rpo_seconds: f64,
    /// Recovery time: reading, checking, loading and reading back the dump.
    pub rto_seconds: f64,
    pub documents: u64,
    pub collections: usize,
    pub verified: Vec<Verified>,
    /// Files the restored ledger records as loaded that could not be verified, and why.
    pub not_verified: Vec<String>,
    /// When the drill started and finished (RFC 3339).
    pub started: String,
    pub finished: String,
    pub elapsed_seconds: f64,
    /// Where `--report` stored this report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<String>,
}

impl fmt::Display for DrillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "restore drill of {} from {}{}: {}",
            self.database,
            self.dump,
            if self.dumped_now { " (dumped now)" } else { "" },
            if self.ok { "PASSED" } else { "FAILED" }
        )?;
        writeln!(
            f,
            "  restored          {} documents in {} collection(s) into {}{}",
            output::thousands(self.documents),
            self.collections,
            self.scratch_database,
            if self.scratch_dropped {
                " (dropped after)"
            } else {
                " (kept)"
            }
        )?;
        writeln!(
            f,
            "  RTO               {:.2} s (check, load, indexes, read back)",
            self.rto_seconds
        )?;
        writeln!(
            f,
            "  RPO               {} (the dump started {})",
            output::duration(std::time::Duration::from_secs_f64(
                self.rpo_seconds.max(0.0)
            )),
            self.dump_started
        )?;
        for v in &self.verified {
            match &v.error {
                Some(e) => writeln!(f, "  verify {}: {e}", v.file)?,
                None => writeln!(
                    f,
                    "  verify {} → {}: {} checked, {} missing, {} different, {} extra",
                    v.file,
                    v.collection,
                    output::thousands(v.checked),
                    v.missing,
                    v.different,
                    v.extra
                )?,
            }
        }
        for n in &self.not_verified {
            writeln!(f, "  not verified {n}")?;
        }
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        Ok(())
    }
}

/// `DB_drill_STAMP`, within MongoDB's 63 bytes: the database's name cut (on a character
/// boundary) to leave room for the suffix.
fn scratch_name(db: &str, stamp: &str) -> String {
    let suffix = format!("_drill_{stamp}");
    let room = 63usize.saturating_sub(suffix.len());
    let mut prefix = String::new();
    for c in db.chars() {
        if prefix.len() + c.len_utf8() > room {
            break;
        }
        prefix.push(c);
    }
    format!("{prefix}{suffix}")
}

/// A dump's folder name for `db`: `DB-YYYYMMDDTHHMMSSZ`, exactly.
fn is_dump_name(name: &str, db: &str) -> bool {
    let Some(stamp) = name.strip_prefix(db).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
}

/// The newest complete dump of `db` under `prefix` (the greatest `DB-YYYYMMDDTHHMMSSZ` holding
/// a manifest).
async fn newest(prefix: &Place, db: &str) -> Result<Option<Place>, Error> {
    let start = format!("{db}-");
    let mut names: Vec<String> = Vec::new();
    match prefix {
        Place::Dir(d) => {
            let entries = std::fs::read_dir(d).map_err(|e| {
                Error::usage(format!(
                    "cannot read the dump folder {}: {}",
                    d.display(),
                    migrate::read::io_reason(&e)
                ))
            })?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_dump_name(&name, db) && entry.path().join(MANIFEST).is_file() {
                    names.push(name);
                }
            }
        }
        Place::S3 { bucket, prefix: p } => {
            let client = s3::client(&crate::aws::Target::default()).await;
            let listed = s3::list(&client, bucket, &format!("{p}{start}"), None)
                .await
                .map_err(Error::usage)?;
            for o in listed {
                let Some(rest) = o.key.strip_prefix(p.as_str()) else {
                    continue;
                };
                if let Some((name, MANIFEST)) = rest.split_once('/') {
                    if is_dump_name(name, db) {
                        names.push(name.to_string());
                    }
                }
            }
        }
    }
    Ok(names.into_iter().max().map(|n| prefix.child(&n)))
}

/// Where the drill's dump is: `--from` a dump, `--from` a prefix (its newest), or a new one.
async fn the_dump(args: &DrillArgs) -> Result<(Place, bool), Error> {
    let Some(from) = &args.from else {
        let to = Place::parse(&args.to)?;
        let report = dump::dump(
            &args.server,
            &to,
            args.writers_wait,
            args.sse_kms_key_id.as_deref(),
        )
        .await?;
        return Ok((Place::parse(&report.dump)?, true));
    };
    let given = dump::dump_place(from)?;
    let has_manifest = match &given {
        Place::Dir(d) => d.join(MANIFEST).is_file(),
        // A prefix given with its trailing dump name is tried as a dump first.
        Place::S3 { .. } => newest(&given, &args.server.db).await?.is_none(),
    };
    if has_manifest {
        return Ok((given, false));
    }
    match newest(&given, &args.server.db).await? {
        Some(place) => Ok((place, false)),
        None => Err(Error::usage(format!(
            "{given} holds no dump of {} (no {}-…/{MANIFEST}); give a dump, or a prefix of dumps",
            args.server.db, args.server.db
        ))),
    }
}

/// Run the drill. Its failures (a damaged dump, a difference) are the report's problems (exit 1
/// after the report); errors before the drill could start are returned.
pub async fn drill(args: &DrillArgs) -> Result<DrillReport, Error> {
    let clock = Instant::now();
    mongo::validate_name("database", &args.server.db)?;
    let started = bson::DateTime::now();
    let (place, dumped_now) = the_dump(args).await?;
    let stamp: String = bson::DateTime::now()
        .try_to_rfc3339_string()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let scratch = scratch_name(&args.server.db, &stamp);
    let mut scratch_server = args.server.clone();
    scratch_server.db = scratch.clone();
    if let Some(uri) = &args.scratch_uri {
        scratch_server.uri = uri.clone();
    }
    // Never the live database, never one that exists: the drill drops what it loaded, and only
    // that.
    let same_server = args
        .scratch_uri
        .as_ref()
        .is_none_or(|u| *u == args.server.uri);
    if scratch == args.server.db && same_server {
        return Err(Error::usage(format!(
            "internal: the scratch database would be {scratch} itself"
        )));
    }
    let existing = mongo::connect(&scratch_server)
        .await?
        .client
        .list_database_names()
        .await
        .map_err(|e| Error::failed(format!("listing the databases: {}", mongo::describe(&e))))?;
    if existing.contains(&scratch) {
        return Err(Error::usage(format!(
            "the scratch database {scratch} exists already (a kept drill, or one in this second): \
             drop it, or run again in a moment; nothing was changed"
        )));
    }

    let mut report = DrillReport {
        ok: false,
        problems: Vec::new(),
        dump: place.to_string(),
        dumped_now,
        database: args.server.db.clone(),
        scratch_database: scratch.clone(),
        scratch_dropped: false,
        dump_started: String::new(),
        rpo_seconds: 0.0,
        rto_seconds: 0.0,
        documents: 0,
        collections: 0,
        verified: Vec::new(),
        not_verified: Vec::new(),
        started: dump::rfc3339(started),
        finished: String::new(),
        elapsed_seconds: 0.0,
        stored: None,
    };
    let restore = Instant::now();
    match dump::load(&scratch_server, &place, None).await {
        Ok(loaded) if loaded.dumped_from != args.server.db => report.problems.push(format!(
            "{} is a dump of {}, not of {}",
            place, loaded.dumped_from, args.server.db
        )),
        Ok(loaded) => {
            report.rto_seconds = round(restore.elapsed().as_secs_f64());
            report.documents = loaded.documents;
            report.collections = loaded.collections.len();
            report.dump_started = loaded.dump_started.clone();
            if let Ok(t) = bson::DateTime::parse_rfc3339_str(&loaded.dump_started) {
                let age = SystemTime::now()
                    .duration_since(t.to_system_time())
                    .unwrap_or_default();
                report.rpo_seconds = round(age.as_secs_f64());
            }
            let mut checks: Vec<(String, String)> = args
                .verify
                .iter()
                .map(|f| (f.clone(), args.collection.clone()))
                .collect();
            match ledger_files(&scratch_server, &args.ledger).await {
                Ok((files, skipped)) => {
                    checks.extend(files);
                    report.not_verified = skipped;
                }
                Err(e) => report
                    .not_verified
                    .push(format!("the ledger {}: {e}", args.ledger)),
            }
            for (file, collection) in &checks {
                report
                    .verified
                    .push(verify(args, &scratch_server, file, collection).await);
            }
        }
        Err(e) => report
            .problems
            .push(format!("the dump did not restore: {e}")),
    }
    for v in &report.verified {
        if !v.ok {
            report.problems.push(match &v.error {
                Some(e) => format!("verify {}: {e}", v.file),
                None => format!(
                    "verify {}: {} missing, {} different, {} extra",
                    v.file, v.missing, v.different, v.extra
                ),
            });
        }
    }
    if !args.keep {
        match mongo::connect(&scratch_server).await {
            Ok(conn) => match conn.db.drop().await {
                Ok(()) => report.scratch_dropped = true,
                Err(e) => report.problems.push(format!(
                    "could not drop the scratch database {scratch}: {}; drop it by hand",
                    mongo::describe(&e)
                )),
            },
            Err(e) => report.problems.push(format!(
                "could not drop the scratch database {scratch}: {e}; drop it by hand"
            )),
        }
    }
    report.ok = report.problems.is_empty();
    report.finished = dump::rfc3339(bson::DateTime::now());
    report.elapsed_seconds = round(clock.elapsed().as_secs_f64());
    Ok(report)
}

/// The name a drill's report is stored under in a `--report` folder or prefix:
/// `DB-YYYYMMDDTHHMMSSZ.json`, the drill's start (what `backup-status` looks for).
pub fn report_name(database: &str, started: &str) -> String {
    let stamp = bson::DateTime::parse_rfc3339_str(started)
        .map(dump::chrono_stamp)
        .unwrap_or_else(|_| "unknown".into());
    format!("{database}-{stamp}.json")
}

/// Store the report (`--report`): a file or object as given, or, given a folder (that exists)
/// or a prefix ending in `/`, [`report_name`] in it. Private: a 0600 file, or an object
/// encrypted at rest. Returns where it went.
pub async fn store(report: &DrillReport, at: &str, kms_key: Option<&str>) -> Result<String, Error> {
    let name = report_name(&report.database, &report.started);
    let text = if at.ends_with('/') || (!at.starts_with("s3://") && Path::new(at).is_dir()) {
        format!("{}/{name}", at.trim_end_matches('/'))
    } else {
        at.to_string()
    };
    let location = Location::parse(&text).map_err(|e| Error::usage(format!("--report: {e}")))?;
    let objects = ObjectTarget::for_outputs(&[("--report", &location)], kms_key).await;
    let sink = Sink::create("--report", &location, "application/json", objects.as_ref()).await?;
    migrate::report::write_json(report, sink).await?;
    Ok(text)
}

/// The files the restored ledger records as done that are still reachable with the content
/// they were loaded with (for a file loaded in several versions, its newest), each with its
/// target collection; and, one line each, the done files that are not (changed since, gone,
/// or their folder or bucket not readable from here).
async fn ledger_files(
    scratch: &crate::cli::ServerArgs,
    ledger: &str,
) -> Result<(Vec<(String, String)>, Vec<String>), Error> {
    use futures_util::TryStreamExt;
    let conn = mongo::connect(scratch).await?;
    let docs: Vec<bson::Document> = conn
        .db
        .collection::<bson::Document>(ledger)
        .find(bson::doc! { "kind": "file", "state": "done" })
        .await
        .map_err(|e| Error::failed(mongo::describe(&e)))?
        .try_collect()
        .await
        .map_err(|e| Error::failed(mongo::describe(&e)))?;
    // The newest done version of each file.
    let mut newest: BTreeMap<String, (bson::DateTime, Identity, String)> = BTreeMap::new();
    for d in docs {
        let (Ok(file), Ok(target), Ok(identity)) = (
            d.get_str("file"),
            d.get_str("target"),
            d.get_document("identity"),
        ) else {
            continue;
        };
        let Ok(identity) = bson::from_document::<Identity>(identity.clone()) else {
            continue;
        };
        let finished = d
            .get_datetime("finished")
            .copied()
            .unwrap_or(bson::DateTime::MIN);
        let collection = target
            .split_once('.')
            .map_or(target, |(_, c)| c)
            .to_string();
        if newest.get(file).is_none_or(|(t, _, _)| finished > *t) {
            newest.insert(file.to_string(), (finished, identity, collection));
        }
    }
    // List each file's folder or prefix once, for the files' current identities.
    let mut current: BTreeMap<String, Identity> = BTreeMap::new();
    let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
    let parents: BTreeSet<String> = newest.keys().map(|f| parent_of(f)).collect();
    for parent in parents {
        let listed = match Source::parse(&parent) {
            Ok(source) => source.list(&mut Hashes::default()).await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(files) => current.extend(files.into_iter().map(|f| (f.location, f.identity))),
            Err(e) => {
                unreadable.insert(parent, e.to_string());
            }
        }
    }
    let (mut reachable, mut skipped) = (Vec::new(), Vec::new());
    for (file, (_, identity, collection)) in newest {
        match current.get(&file) {
            Some(now) if *now == identity => reachable.push((file, collection)),
            Some(_) => skipped.push(format!("{file}: changed since it was loaded")),
            None => match unreadable.get(&parent_of(&file)) {
                Some(e) => skipped.push(format!("{file}: not reachable ({e})")),
                None => skipped.push(format!("{file}: no longer there")),
            },
        }
    }
    Ok((reachable, skipped))
}

/// The folder or S3 prefix a ledger location is in (with its trailing `/` for a prefix).
fn parent_of(location: &str) -> String {
    match S3Url::parse(location) {
        Some(Ok(url)) => format!("s3://{}/{}", url.bucket, url.dir()),
        _ => std::path::Path::new(location)
            .parent()
            .map_or_else(|| ".".into(), |p| p.display().to_string()),
    }
}

async fn verify(
    args: &DrillArgs,
    scratch: &crate::cli::ServerArgs,
    file: &str,
    collection: &str,
) -> Verified {
    let verify_args = VerifyArgs {
        path: file.to_string(),
        conn: ConnectionArgs {
            server: scratch.clone(),
            collection: collection.to_string(),
        },
        batch_size: 1000,
        sort: args.sort.clone(),
        report: None,
        cloud: crate::cli::CloudArgs {
            shard: Shard::ALL,
            sse_kms_key_id: None,
        },
        format: Format::Text,
    };
    match migrate::verify::verify(&verify_args).await {
        Ok(r) => Verified {
            file: file.to_string(),
            collection: collection.to_string(),
            ok: r.ok,
            checked: r.checked,
            missing: r.missing,
            different: r.different,
            extra: r.extra,
            error: None,
        },
        Err(e) => Verified {
            file: file.to_string(),
            collection: collection.to_string(),
            ok: false,
            checked: 0,
            missing: 0,
            different: 0,
            extra: 0,
            error: Some(e.to_string()),
        },
    }
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_name_fits_and_is_never_the_database() {
        let stamp = "20261204203000";
        assert_eq!(
            scratch_name("healthcare", stamp),
            "healthcare_drill_20261204203000"
        );
        let long = "d".repeat(63);
        let s = scratch_name(&long, stamp);
        assert_eq!(s.len(), 63);
        assert_ne!(s, long);
        assert!(s.ends_with("_drill_20261204203000"));
        // Cut on a character boundary, never inside one.
        let wide = "é".repeat(40);
        let s = scratch_name(&wide, stamp);
        assert!(s.len() <= 63 && s.ends_with("_drill_20261204203000"), "{s}");
    }

    #[test]
    fn only_this_databases_dumps_are_its_dumps() {
        assert!(is_dump_name("hospital-20261204T190501Z", "hospital"));
        assert!(!is_dump_name("hospital-test-20261204T190501Z", "hospital"));
        assert!(!is_dump_name("hospital-20261204T190501", "hospital"));
        assert!(!is_dump_name("hospitals-20261204T190501Z", "hospital"));
    }
}
