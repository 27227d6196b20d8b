//! Logical backups: `backup dump` writes every collection of a database as gzip-compressed BSON
//! with a manifest, into a folder or under an S3 prefix; `backup load` checks a dump whole
//! (counts and digests) before it writes anything, loads it, rebuilds the indexes and reads the
//! result back against the manifest.
//!
//! A dump is `DEST/DB-YYYYMMDDTHHMMSSZ/`: one `COLLECTION.bson.gz` per collection (the
//! documents as the server sent them, one BSON document after the other) and `manifest.json`,
//! written last — a dump without its manifest is incomplete and is never loaded. Files are
//! 0600 in a 0700 folder; objects are multipart uploads encrypted at rest (SSE-S3 or KMS).
//!
//! The digest of a collection is the sum, modulo 2^256, of the SHA-256 of each document's BSON
//! bytes: independent of the order documents are read in (no sort of a large collection on the
//! server), and changed by any added, missing or altered document.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bson::{doc, Bson, Document, RawDocumentBuf};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use futures_util::TryStreamExt;
use mongodb::Database;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::aws::s3::{self, ObjectReader, S3Url};
use crate::error::Error;
use crate::migrate::location::{Location, ObjectTarget, Sink};
use crate::{mongo, output, writes};

/// The manifest's `format`.
pub const FORMAT: &str = "hcctl-dump/1";
pub const MANIFEST: &str = "manifest.json";

/// The largest BSON document a server stores (16 MiB), plus room for the wire's overhead.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024 + 16 * 1024;
/// The largest manifest read (a manifest is a few KiB per collection).
const MAX_MANIFEST: u64 = 16 * 1024 * 1024;
/// Documents per insert while loading, and the bytes a batch holds at most (with the channel's
/// two batches in flight, what a load holds in memory whatever the documents' size; a single
/// document larger than that is a batch of its own).
const LOAD_BATCH: usize = 1000;
const LOAD_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Where dumps are: a folder, or an S3 prefix (ending with `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Place {
    /// `s3://BUCKET/PREFIX/` or a folder.
    pub fn parse(text: &str) -> Result<Place, Error> {
        match S3Url::parse_prefix(text) {
            Some(Ok((bucket, prefix))) => {
                let prefix = if prefix.is_empty() || prefix.ends_with('/') {
                    prefix
                } else {
                    format!("{prefix}/")
                };
                Ok(Place::S3 { bucket, prefix })
            }
            Some(Err(e)) => Err(Error::usage(e)),
            None if text.is_empty() => Err(Error::usage("an empty dump location")),
            None => Ok(Place::Dir(PathBuf::from(text))),
        }
    }

    /// The place `name` inside this one.
    pub fn child(&self, name: &str) -> Place {
        match self {
            Place::Dir(d) => Place::Dir(d.join(name)),
            Place::S3 { bucket, prefix } => Place::S3 {
                bucket: bucket.clone(),
                prefix: format!("{prefix}{name}/"),
            },
        }
    }

    fn location(&self, file: &str) -> Location {
        match self {
            Place::Dir(d) => Location::File(d.join(file)),
            Place::S3 { bucket, prefix } => Location::S3(S3Url {
                bucket: bucket.clone(),
                key: format!("{prefix}{file}"),
            }),
        }
    }

    /// Open `file` of this place for reading.
    /// Open one file of the dump; for an object, also its ETag, and with `pin` only if it still
    /// has that ETag (a file replaced since it was checked is refused, never read).
    async fn open(
        &self,
        file: &str,
        client: Option<&aws_sdk_s3::Client>,
        pin: Option<&str>,
    ) -> Result<(Box<dyn Read + Send>, Option<String>), Error> {
        match (self.location(file), client) {
            (Location::File(path), _) => fs::File::open(&path)
                .map(|f| (Box::new(f) as Box<dyn Read + Send>, None))
                .map_err(|e| {
                    Error::usage(format!(
                        "cannot open {}: {}",
                        path.display(),
                        crate::migrate::read::io_reason(&e)
                    ))
                }),
            (Location::S3(url), Some(client)) => {
                match ObjectReader::open_pinned(client.clone(), url.clone(), pin).await {
                    Ok(r) => {
                        let etag = r.etag().map(str::to_string);
                        Ok((Box::new(r) as Box<dyn Read + Send>, etag))
                    }
                    Err(e) if e.code.as_deref() == Some("PreconditionFailed") => {
                        Err(Error::failed(format!(
                            "{url} was replaced after it was checked: nothing more is loaded \
                             from it; run the load again"
                        )))
                    }
                    Err(e) => Err(Error::usage(e.to_string())),
                }
            }
            (Location::S3(url), None) => {
                Err(Error::failed(format!("internal: no S3 client for {url}")))
            }
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Dir(d) => write!(f, "{}", d.display()),
            Place::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// An order-independent digest of a set of documents (see the module's documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetDigest([u64; 4]);

impl SetDigest {
    pub fn add(&mut self, bytes: &[u8]) {
        let h = Sha256::digest(bytes);
        let mut carry = 0u128;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&h[i * 8..i * 8 + 8]);
            let sum = u128::from(*limb) + u128::from(u64::from_le_bytes(word)) + carry;
            *limb = sum as u64;
            carry = sum >> 64;
        }
    }

    pub fn hex(&self) -> String {
        self.0
            .iter()
            .rev()
            .map(|l| format!("{l:016x}"))
            .collect::<String>()
    }
}

/// One collection of a dump.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DumpedCollection {
    pub name: String,
    pub file: String,
    pub documents: u64,
    /// Uncompressed BSON bytes.
    pub bytes: u64,
    /// [`SetDigest`] of the documents, hex.
    pub digest: String,
    /// The index specifications as `listIndexes` gave them (relaxed extended JSON).
    pub indexes: Vec<serde_json::Value>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub database: String,
    pub hcctl_version: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: String,
    /// hcctl's writers (migrate, ingest) were paused for the whole dump.
    pub writers_paused: bool,
    /// A collection's document count changed between the start and the end of the dump: a
    /// client other than hcctl wrote meanwhile, and the dump may mix states.
    pub writes_during_dump: bool,
    pub collections: Vec<DumpedCollection>,
}

impl Manifest {
    pub fn documents(&self) -> u64 {
        self.collections.iter().map(|c| c.documents).sum()
    }
}

/// What `backup dump` did.
#[derive(Debug, Clone, Serialize)]
pub struct DumpReport {
    pub dump: String,
    pub manifest: Manifest,
    pub elapsed_seconds: f64,
}

impl std::fmt::Display for DumpReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        writeln!(
            f,
            "dumped {} → {} ({} collection(s), {} documents, {:.2} s)",
            m.database,
            self.dump,
            m.collections.len(),
            output::thousands(m.documents()),
            self.elapsed_seconds
        )?;
        for c in &m.collections {
            writeln!(
                f,
                "  {:<24} {:>12} documents  {:>10}  {} index(es)",
                c.name,
                output::thousands(c.documents),
                output::bytes(c.bytes),
                c.indexes.len()
            )?;
        }
        if m.writes_during_dump {
            writeln!(
                f,
                "  warning: a collection changed while it was dumped (a client other than hcctl \
                 wrote): the dump may mix states; take another when nothing writes"
            )?;
        }
        Ok(())
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "loaded {} (dump of {} started {}) → {}: {} documents, every collection read back \
             and matching the manifest ({:.2} s)",
            self.dump,
            self.dumped_from,
            self.dump_started,
            self.database,
            output::thousands(self.documents),
            self.elapsed_seconds
        )?;
        for c in &self.collections {
            writeln!(
                f,
                "  {:<24} {:>12} documents  {} index(es) rebuilt",
                c.name,
                output::thousands(c.documents),
                c.indexes
            )?;
        }
        Ok(())
    }
}

pub fn rfc3339(t: bson::DateTime) -> String {
    t.try_to_rfc3339_string().unwrap_or_else(|_| t.to_string())
}

/// A collection name that is one plain file name component.
fn is_file_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

/// The collections a dump holds: all but the server's own, hcctl's leases and the staging
/// collections of a `load --drop` in progress.
async fn collections(db: &Database) -> Result<Vec<String>, Error> {
    let mut names = db
        .list_collection_names()
        .await
        .map_err(|e| failed_on("listing the collections of", db, "*", &e))?;
    names.retain(|n| {
        !n.starts_with("system.") && n != writes::COLLECTION && !n.starts_with(STAGING_PREFIX)
    });
    if let Some(bad) = names.iter().find(|n| !is_file_safe(n)) {
        return Err(Error::failed(format!(
            "the collection {bad:?} of {} cannot be dumped: its name is not usable as a file name \
             (a '/', a leading '.', or a control character); rename it",
            db.name()
        )));
    }
    names.sort();
    Ok(names)
}

/// Reads of a dump go to the primary whatever the URI's read preference: a lagging secondary
/// could lack the last writes hcctl's writers made before they paused.
fn primary() -> mongodb::options::SelectionCriteria {
    mongodb::options::SelectionCriteria::ReadPreference(mongodb::options::ReadPreference::Primary)
}

/// The collection's document count from its metadata (O(1) on MongoDB; FerretDB 1.x scans).
async fn estimated_count(db: &Database, name: &str) -> Result<u64, Error> {
    db.collection::<Document>(name)
        .estimated_document_count()
        .selection_criteria(primary())
        .await
        .map_err(|e| failed_on("counting", db, name, &e))
}

async fn index_specs(db: &Database, name: &str) -> Result<Vec<serde_json::Value>, Error> {
    let answer = db
        .run_command(doc! { "listIndexes": name })
        .await
        .map_err(|e| failed_on("listing the indexes of", db, name, &e))?;
    let batch = answer
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .cloned()
        .unwrap_or_default();
    Ok(batch
        .into_iter()
        .map(|spec| spec.into_relaxed_extjson())
        .collect())
}

/// `hcctl backup dump`: pause hcctl's writers, write every collection and the manifest.
pub async fn dump(
    server: &crate::cli::ServerArgs,
    to: &Place,
    writers_wait: std::time::Duration,
    kms_key: Option<&str>,
) -> Result<DumpReport, Error> {
    let clock = Instant::now();
    if let Place::Dir(d) = to {
        fs::create_dir_all(d).map_err(|e| {
            Error::usage(format!(
                "cannot create the dump folder {}: {}",
                d.display(),
                crate::migrate::read::io_reason(&e)
            ))
        })?;
    }
    let objects = match to {
        Place::S3 { .. } => Some(ObjectTarget::connect(kms_key).await),
        Place::Dir(_) => None,
    };
    let conn = mongo::connect(server).await?;
    let db = &conn.db;
    let lease = writes::pause_writers(db, writers_wait).await?;
    tracing::debug!("writers paused");
    let result = dump_paused(db, to, objects.as_ref(), &lease).await;
    lease.end().await;
    let (dump, manifest) = result?;
    Ok(DumpReport {
        dump: dump.to_string(),
        manifest,
        elapsed_seconds: (clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

/// A dump whose lease lapsed is never completed: hcctl's writers may have written meanwhile.
fn still_paused(lease: &writes::Lease, dump: &Place) -> Result<(), Error> {
    if lease.lost() {
        return Err(Error::failed(format!(
            "the dump lease lapsed while {dump} was written (no renewal for {} s: the process \
             was paused, or the server unreachable), so hcctl's writers may have written \
             meanwhile; no manifest was written (the dump is never loaded): run it again",
            writes::LEASE.as_secs()
        )));
    }
    Ok(())
}

async fn dump_paused(
    db: &Database,
    to: &Place,
    objects: Option<&ObjectTarget>,
    lease: &writes::Lease,
) -> Result<(Place, Manifest), Error> {
    let started = bson::DateTime::now();
    let stamp = chrono_stamp(started);
    let dump = to.child(&format!("{}-{stamp}", db.name()));
    match (&dump, objects) {
        (Place::Dir(d), _) => create_private_dir(d)?,
        (Place::S3 { bucket, prefix }, Some(objects)) => {
            // Never mixed into another dump's objects (two dumps in one second).
            let listed = s3::list(&objects.client, bucket, prefix, Some(1))
                .await
                .map_err(Error::usage)?;
            if !listed.is_empty() {
                return Err(Error::usage(format!(
                    "{dump} already holds objects (a dump of that second?): run again"
                )));
            }
        }
        (Place::S3 { .. }, None) => {
            return Err(Error::failed("internal: no S3 client for the dump"));
        }
    }
    let names = collections(db).await?;
    let mut dumped = Vec::new();
    let mut writes_during_dump = false;
    let bar = output::row_progress("dumped");
    for name in &names {
        still_paused(lease, &dump)?;
        tracing::debug!(collection = %name, "dumping");
        // Counted while the documents stream (on a server that scans to count, the two
        // overlap); compared with what was read and the count at the end.
        let before = {
            let (db, name) = (db.clone(), name.clone());
            tokio::spawn(async move { estimated_count(&db, &name).await })
        };
        let indexes = index_specs(db, name).await?;
        let file = format!("{name}.bson.gz");
        let sink = Sink::create("--to", &dump.location(&file), "application/gzip", objects).await?;
        let mut gz = GzEncoder::new(sink, flate2::Compression::new(3));
        let mut cursor = db
            .collection::<RawDocumentBuf>(name)
            .find(doc! {})
            .batch_size(1000)
            .selection_criteria(primary())
            .await
            .map_err(|e| read_failed(db, name, &e))?;
        let (mut documents, mut bytes, mut digest) = (0u64, 0u64, SetDigest::default());
        while let Some(d) = cursor
            .try_next()
            .await
            .map_err(|e| read_failed(db, name, &e))?
        {
            let raw = d.as_bytes();
            digest.add(raw);
            gz.write_all(raw)
                .map_err(|e| Error::failed(format!("writing {}: {e}", dump.location(&file))))?;
            documents += 1;
            bytes += raw.len() as u64;
            bar.inc(1);
        }
        let sink = gz
            .finish()
            .map_err(|e| Error::failed(format!("writing {}: {e}", dump.location(&file))))?;
        tracing::debug!(collection = %name, documents, "written");
        sink.commit().await?;
        let before = before
            .await
            .map_err(|e| Error::failed(format!("internal: count task: {e}")))??;
        let after = estimated_count(db, name).await?;
        tracing::debug!(collection = %name, "committed and counted");
        if before != after || after != documents {
            writes_during_dump = true;
            tracing::warn!(
                collection = %name, before, after, dumped = documents,
                "the collection changed while it was dumped (a client other than hcctl wrote)"
            );
        }
        dumped.push(DumpedCollection {
            name: name.clone(),
            file,
            documents,
            bytes,
            digest: digest.hex(),
            indexes,
        });
    }
    bar.finish_and_clear();
    // Renewed once more, then checked: a lease lost at any point leaves no manifest.
    lease.renew().await;
    still_paused(lease, &dump)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        database: db.name().to_string(),
        hcctl_version: crate::cli::VERSION.to_string(),
        started: rfc3339(started),
        finished: rfc3339(bson::DateTime::now()),
        writers_paused: true,
        writes_during_dump,
        collections: dumped,
    };
    let mut sink = Sink::create(
        "--to",
        &dump.location(MANIFEST),
        "application/json",
        objects,
    )
    .await?;
    serde_json::to_writer_pretty(&mut sink, &manifest)
        .map_err(|e| Error::failed(format!("writing {}: {e}", dump.location(MANIFEST))))?;
    sink.write_all(b"\n")
        .map_err(|e| Error::failed(format!("writing {}: {e}", dump.location(MANIFEST))))?;
    sink.commit().await?;
    Ok((dump, manifest))
}

fn read_failed(db: &Database, name: &str, e: &mongodb::error::Error) -> Error {
    failed_on("reading", db, name, e)
}

/// A refused insert, named by its code only: the server's message may quote a document's
/// values (a duplicate key, a validation failure).
fn insert_failed(db: &Database, name: &str, e: &mongodb::error::Error) -> Error {
    use mongodb::error::{ErrorKind, WriteFailure};
    let why = match &*e.kind {
        ErrorKind::InsertMany(m) => match m.write_errors.as_deref().and_then(|w| w.first()) {
            Some(w) => format!(
                "the server refused a document (code {} {})",
                w.code,
                w.code_name.as_deref().unwrap_or("")
            ),
            None => "the server refused the batch (write concern)".to_string(),
        },
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            format!(
                "the server refused a document (code {} {})",
                w.code,
                w.code_name.as_deref().unwrap_or("")
            )
        }
        ErrorKind::Write(_) => "the server refused the batch (write concern)".to_string(),
        _ => mongo::describe(e),
    };
    Error::failed(format!("inserting into {}.{name}: {why}", db.name()))
}

/// "ACTION DB.NAME: the server's error".
fn failed_on(action: &str, db: &Database, name: &str, e: &mongodb::error::Error) -> Error {
    Error::failed(format!(
        "{action} {}.{name}: {}",
        db.name(),
        mongo::describe(e)
    ))
}

/// `2026-12-04T19:05:01Z` → `20261204T190501Z`.
pub fn chrono_stamp(t: bson::DateTime) -> String {
    rfc3339(t)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .chars()
        .take(15)
        .collect::<String>()
        + "Z"
}

fn create_private_dir(d: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(d).map_err(|e| {
        Error::usage(format!(
            "cannot create the dump folder {}: {} (a dump of that second exists? run again)",
            d.display(),
            crate::migrate::read::io_reason(&e)
        ))
    })
}

// --- load -----------------------------------------------------------------------------------

/// What `backup load` did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub dump: String,
    pub database: String,
    pub dumped_from: String,
    pub dump_started: String,
    pub collections: Vec<LoadedCollection>,
    pub documents: u64,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadedCollection {
    pub name: String,
    pub documents: u64,
    pub indexes: usize,
    /// The documents read back from the server match the manifest's count and digest.
    pub verified: bool,
}

/// A dump given to `load`: its folder or prefix (or its manifest's path).
pub fn dump_place(text: &str) -> Result<Place, Error> {
    let trimmed = text
        .strip_suffix(MANIFEST)
        .filter(|rest| rest.is_empty() || rest.ends_with('/'))
        .unwrap_or(text);
    let trimmed = if trimmed.is_empty() { "." } else { trimmed };
    Place::parse(trimmed)
}

/// Read and check a dump's manifest.
pub async fn read_manifest(
    dump: &Place,
    client: Option<&aws_sdk_s3::Client>,
) -> Result<Manifest, Error> {
    let (reader, _) = dump.open(MANIFEST, client, None).await.map_err(|e| {
        Error::usage(format!(
            "{dump} is not a complete dump: its {MANIFEST} cannot be read ({e}); a dump that \
             was interrupted has none; nothing was loaded"
        ))
    })?;
    let text = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        reader
            .take(MAX_MANIFEST)
            .read_to_string(&mut text)
            .map(|_| text)
    })
    .await
    .map_err(|e| Error::failed(format!("internal: reader task: {e}")))?
    .map_err(|e| Error::usage(format!("reading {dump}{MANIFEST}: {e}")))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::usage(format!("{dump}{MANIFEST} is not a dump manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(Error::usage(format!(
            "{dump}{MANIFEST}: format {:?}, this hcctl reads {FORMAT:?}",
            manifest.format
        )));
    }
    for c in &manifest.collections {
        mongo::validate_name("collection", &c.name)
            .map_err(|e| Error::usage(format!("{dump}{MANIFEST}: {e}")))?;
        if !is_file_safe(&c.name) || c.name.starts_with("system.") || c.name == writes::COLLECTION {
            return Err(Error::usage(format!(
                "{dump}{MANIFEST}: {:?} is not a collection a dump holds",
                c.name
            )));
        }
        if c.file != format!("{}.bson.gz", c.name) {
            return Err(Error::usage(format!(
                "{dump}{MANIFEST}: collection {} names the file {:?}, not {}.bson.gz",
                c.name, c.file, c.name
            )));
        }
    }
    Ok(manifest)
}

/// Read the next BSON document of a stream: `None` at a clean end.
fn next_document(r: &mut impl Read) -> io::Result<Option<RawDocumentBuf>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut off")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let n = usize::try_from(i32::from_le_bytes(len)).unwrap_or(0);
    if !(5..=MAX_DOCUMENT).contains(&n) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a document length of {} bytes", i32::from_le_bytes(len)),
        ));
    }
    let mut buf = vec![0u8; n];
    buf[..4].copy_from_slice(&len);
    r.read_exact(&mut buf[4..])?;
    let doc = RawDocumentBuf::from_bytes(buf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    for element in doc.iter() {
        element.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    }
    Ok(Some(doc))
}

/// Stream one collection file of a dump, handing each document to `each` (on a blocking
/// thread), then `None` at its end; returns its count and digest. `each` returning false stops.
/// Read one collection's file document by document (`each` gets `None` at the end; `false`
/// stops): its count, digest and, for an object, its ETag (with `pin`: only that version).
async fn scan(
    dump: &Place,
    c: &DumpedCollection,
    client: Option<&aws_sdk_s3::Client>,
    pin: Option<&str>,
    mut each: impl FnMut(Option<RawDocumentBuf>) -> bool + Send + 'static,
) -> Result<(u64, SetDigest, Option<String>), Error> {
    let (reader, etag) = dump.open(&c.file, client, pin).await?;
    let where_ = dump.location(&c.file).to_string();
    tokio::task::spawn_blocking(move || {
        let mut gz = io::BufReader::with_capacity(1 << 16, MultiGzDecoder::new(reader));
        let (mut n, mut digest) = (0u64, SetDigest::default());
        loop {
            let doc = next_document(&mut gz).map_err(|e| {
                Error::usage(format!(
                    "{where_} is damaged after {n} document(s): {e}; nothing was loaded from \
                     this dump"
                ))
            })?;
            let Some(doc) = doc else {
                each(None);
                break;
            };
            digest.add(doc.as_bytes());
            n += 1;
            if !each(Some(doc)) {
                break;
            }
        }
        Ok((n, digest, etag))
    })
    .await
    .map_err(|e| Error::failed(format!("internal: reader task: {e}")))?
}

fn check_against(
    c: &DumpedCollection,
    n: u64,
    digest: SetDigest,
    what: &str,
) -> Result<(), String> {
    if n != c.documents {
        return Err(format!(
            "{what} {} holds {n} document(s), the manifest says {}",
            c.name, c.documents
        ));
    }
    if digest.hex() != c.digest {
        return Err(format!(
            "{what} {}: the documents' digest differs from the manifest's (a document was \
             altered)",
            c.name
        ));
    }
    Ok(())
}

/// `hcctl backup load`: check the whole dump, then load it into `db` — empty, or with
/// `replace` (`--drop`, and how long to wait for hcctl's writers) beside the live collections,
/// swapped in once checked — rebuild the indexes, read every collection back.
pub async fn load(
    server: &crate::cli::ServerArgs,
    dump: &Place,
    replace: Option<std::time::Duration>,
) -> Result<LoadReport, Error> {
    let clock = Instant::now();
    let client = match dump {
        Place::S3 { .. } => Some(s3::client(&crate::aws::Target::default()).await),
        Place::Dir(_) => None,
    };
    let manifest = read_manifest(dump, client.as_ref()).await?;
    let conn = mongo::connect(server).await?;
    let db = &conn.db;

    // 1. The whole dump, checked before any write.
    // The version of each object checked is the one loaded (pinned by its ETag).
    let mut pins = std::collections::BTreeMap::new();
    for c in &manifest.collections {
        let (n, digest, etag) = scan(dump, c, client.as_ref(), None, |_| true).await?;
        check_against(c, n, digest, &format!("{dump}{}: collection", c.file))
            .map_err(|e| Error::usage(format!("{e}; nothing was loaded from this dump")))?;
        pins.insert(c.name.clone(), etag);
    }

    // Replacing: hcctl's writers paused (an ingest writing into a collection being swapped
    // would lose its rows with the old one).
    let lease = match replace {
        Some(wait) => Some(writes::pause_writers(db, wait).await?),
        None => None,
    };
    let result = load_checked(
        db,
        dump,
        &manifest,
        client.as_ref(),
        &pins,
        replace.is_some(),
    )
    .await;
    if let Some(lease) = lease {
        lease.end().await;
    }
    let collections_out = result?;
    Ok(LoadReport {
        dump: dump.to_string(),
        database: db.name().to_string(),
        dumped_from: manifest.database.clone(),
        dump_started: manifest.started.clone(),
        documents: manifest.documents(),
        collections: collections_out,
        elapsed_seconds: (clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

/// The collection a `--drop` load fills and checks before it takes the live one's place.
fn staging_name(name: &str) -> String {
    format!("{STAGING_PREFIX}{name}")
}

/// Prefix of the staging collections (never dumped).
const STAGING_PREFIX: &str = "_hcctl_load_";

/// Load a checked dump: into the target's names when it is empty; with `replace`, into staging
/// collections, read back, then swapped in one by one (drop the live one, rename the staged).
async fn load_checked(
    db: &Database,
    dump: &Place,
    manifest: &Manifest,
    client: Option<&aws_sdk_s3::Client>,
    pins: &std::collections::BTreeMap<String, Option<String>>,
    replace: bool,
) -> Result<Vec<LoadedCollection>, Error> {
    // The target: empty, or replaced.
    let present = collections(db).await?;
    let mut in_use = Vec::new();
    for name in &present {
        if estimated_count(db, name).await? > 0 {
            in_use.push(name.clone());
        }
    }
    if !in_use.is_empty() && !replace {
        return Err(Error::usage(format!(
            "the database {} is not empty ({}); load into a new database, or give --drop to \
             replace the dump's collections (nothing was written)",
            db.name(),
            in_use.join(", ")
        )));
    }
    let target = |name: &str| {
        if replace {
            staging_name(name)
        } else {
            name.to_string()
        }
    };
    // 2. Load; a failure drops what this load wrote (with --drop: the staging collections, the
    // live ones untouched).
    if replace {
        for c in &manifest.collections {
            drop_collection(db, &staging_name(&c.name)).await?;
        }
    }
    let bar = output::row_bar("loaded", manifest.documents());
    let mut loaded = Vec::new();
    let result = async {
        for c in &manifest.collections {
            let into = target(&c.name);
            let pin = pins.get(&c.name).cloned().flatten();
            load_collection(db, &into, dump, c, client, pin.as_deref(), &bar).await?;
            let indexes = rebuild_indexes(db, &into, c).await?;
            loaded.push((c.name.clone(), indexes));
        }
        Ok::<_, Error>(())
    }
    .await;
    bar.finish_and_clear();
    let drop_written = || async {
        for c in &manifest.collections {
            let _ = db.collection::<Document>(&target(&c.name)).drop().await;
        }
    };
    if let Err(e) = result {
        drop_written().await;
        let kept = if replace {
            "; the live collections were not touched"
        } else {
            ""
        };
        return Err(Error::failed(format!(
            "{e}; the collections this load wrote were dropped again{kept}: run it again"
        )));
    }

    // 3. Read back.
    let mut out = Vec::new();
    for (c, (_, indexes)) in manifest.collections.iter().zip(&loaded) {
        let (n, digest) = read_back(db, &target(&c.name)).await?;
        if let Err(e) = check_against(c, n, digest, &format!("{}: collection", db.name())) {
            if replace {
                drop_written().await;
            }
            return Err(Error::failed(format!(
                "{e} after loading; the server did not store the dump as it is"
            )));
        }
        out.push(LoadedCollection {
            name: c.name.clone(),
            documents: n,
            indexes: *indexes,
            verified: true,
        });
    }

    // 4. With --drop: swap each checked collection in.
    if replace {
        let admin = db.client().database("admin");
        for (i, c) in manifest.collections.iter().enumerate() {
            let staged = staging_name(&c.name);
            let swapped = async {
                drop_collection(db, &c.name).await?;
                admin
                    .run_command(doc! {
                        "renameCollection": format!("{}.{staged}", db.name()),
                        "to": format!("{}.{}", db.name(), c.name),
                    })
                    .await
                    .map_err(|e| failed_on("renaming the loaded copy onto", db, &c.name, &e))
            }
            .await;
            if let Err(e) = swapped {
                let rest: Vec<String> = manifest.collections[i..]
                    .iter()
                    .map(|c| staging_name(&c.name))
                    .collect();
                return Err(Error::failed(format!(
                    "{e}; {i} collection(s) were replaced, the loaded and checked copies of the \
                     others are in {} ({}): rename them by hand, or run the load again",
                    db.name(),
                    rest.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

async fn drop_collection(db: &Database, name: &str) -> Result<(), Error> {
    db.collection::<Document>(name)
        .drop()
        .await
        .map_err(|e| failed_on("dropping", db, name, &e))
}

async fn load_collection(
    db: &Database,
    into: &str,
    dump: &Place,
    c: &DumpedCollection,
    client: Option<&aws_sdk_s3::Client>,
    pin: Option<&str>,
    bar: &indicatif::ProgressBar,
) -> Result<(), Error> {
    let coll = db.collection::<RawDocumentBuf>(into);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RawDocumentBuf>>(2);
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let mut bytes = 0usize;
    let reading = scan(dump, c, client, pin, move |d| {
        let end = d.is_none();
        if let Some(d) = d {
            bytes += d.as_bytes().len();
            batch.push(d);
        }
        let full = batch.len() >= LOAD_BATCH || bytes >= LOAD_BATCH_BYTES;
        if full || (end && !batch.is_empty()) {
            bytes = 0;
            let full = std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH));
            return tx.blocking_send(full).is_ok();
        }
        true
    });
    let writing = async {
        while let Some(docs) = rx.recv().await {
            let n = docs.len() as u64;
            coll.insert_many(docs)
                .await
                .map_err(|e| insert_failed(db, &c.name, &e))?;
            bar.inc(n);
        }
        Ok::<_, Error>(())
    };
    let (read, written) = tokio::join!(reading, writing);
    read?;
    written
}

async fn rebuild_indexes(db: &Database, into: &str, c: &DumpedCollection) -> Result<usize, Error> {
    let mut specs = Vec::new();
    for spec in &c.indexes {
        let Ok(Bson::Document(mut d)) = Bson::try_from(spec.clone()) else {
            return Err(Error::usage(format!(
                "the manifest's index {spec} of {} is not a document",
                c.name
            )));
        };
        if d.get_str("name").ok() == Some("_id_") {
            continue;
        }
        d.remove("v");
        d.remove("ns");
        specs.push(d);
    }
    if specs.is_empty() {
        return Ok(0);
    }
    let n = specs.len();
    db.run_command(doc! { "createIndexes": into, "indexes": specs })
        .await
        .map_err(|e| failed_on("creating the indexes of", db, into, &e))?;
    Ok(n)
}

/// Count and digest a collection as the server returns it.
pub async fn read_back(db: &Database, name: &str) -> Result<(u64, SetDigest), Error> {
    let mut cursor = db
        .collection::<RawDocumentBuf>(name)
        .find(doc! {})
        .batch_size(1000)
        .await
        .map_err(|e| read_failed(db, name, &e))?;
    let (mut n, mut digest) = (0u64, SetDigest::default());
    while let Some(d) = cursor
        .try_next()
        .await
        .map_err(|e| read_failed(db, name, &e))?
    {
        digest.add(d.as_bytes());
        n += 1;
    }
    Ok((n, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_order_and_sees_every_change() {
        let docs: Vec<Vec<u8>> = (0..5)
            .map(|i| bson::to_vec(&doc! { "_id": i, "x": "a" }).unwrap())
            .collect();
        let mut forward = SetDigest::default();
        docs.iter().for_each(|d| forward.add(d));
        let mut backward = SetDigest::default();
        docs.iter().rev().for_each(|d| backward.add(d));
        assert_eq!(forward, backward);
        assert_eq!(forward.hex().len(), 64);
        let mut missing = SetDigest::default();
        docs[1..].iter().for_each(|d| missing.add(d));
        assert_ne!(forward, missing);
        let mut altered = SetDigest::default();
        docs[1..].iter().for_each(|d| altered.add(d));
        altered.add(&bson::to_vec(&doc! { "_id": 0, "x": "b" }).unwrap());
        assert_ne!(forward, altered);
    }

    #[test]
    fn a_cut_or_bad_stream_is_an_error_and_a_clean_end_is_none() {
        let one = bson::to_vec(&doc! { "_id": 1 }).unwrap();
        let mut r = io::Cursor::new(one.clone());
        assert!(next_document(&mut r).unwrap().is_some());
        assert!(next_document(&mut r).unwrap().is_none());
        let mut cut = io::Cursor::new(one[..one.len() - 2].to_vec());
        assert!(next_document(&mut cut).is_err());
        let mut short_len = io::Cursor::new(vec![1u8, 0]);
        assert!(next_document(&mut short_len).is_err());
        let mut huge = io::Cursor::new(i32::MAX.to_le_bytes().to_vec());
        assert!(next_document(&mut huge).is_err());
    }

    #[test]
    fn places_and_dump_names() {
        assert_eq!(
            Place::parse("s3://drops/dumps").unwrap(),
            Place::S3 {
                bucket: "drops".into(),
                prefix: "dumps/".into()
            }
        );
        assert_eq!(
            Place::parse("s3://drops/dumps/")
                .unwrap()
                .child("h-1")
                .to_string(),
            "s3://drops/dumps/h-1/"
        );
        assert_eq!(
            dump_place("s3://drops/dumps/h-1/manifest.json")
                .unwrap()
                .to_string(),
            "s3://drops/dumps/h-1/"
        );
        assert_eq!(
            dump_place("backups/h-1").unwrap(),
            Place::Dir(PathBuf::from("backups/h-1"))
        );
        let t = bson::DateTime::parse_rfc3339_str("2026-12-04T19:05:01.123Z").unwrap();
        assert_eq!(chrono_stamp(t), "20261204T190501Z");
    }
}
