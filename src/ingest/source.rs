//! What an ingest source holds: the CSV files of a folder, or the CSV objects under an S3
//! prefix, each with the identity of its content (what tells the ledger "already loaded").

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::s3::S3Url;
use crate::aws::Target;
use crate::error::Error;
use crate::migrate::read::io_reason;

/// How much of each end of a local file is hashed into its identity.
const END_BYTES: u64 = 1 << 20;

/// A folder or an S3 prefix.
#[derive(Debug, Clone)]
pub enum Source {
    Folder(PathBuf),
    S3 { bucket: String, prefix: String },
}

/// One file of a source.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// What migrate is given and the ledger records: an absolute path or an s3:// URL.
    pub location: String,
    pub name: String,
    pub identity: Identity,
}

/// The identity of a file's content. S3: the ETag and size; a local file: size, modification
/// time and a SHA-256 of its first and last MiB (the whole file when it is smaller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_sha256: Option<String>,
}

impl Identity {
    /// A stable text for hashing into the ledger's ids.
    pub fn key(&self) -> String {
        format!(
            "size={};etag={};modified_ns={};ends_sha256={}",
            self.size,
            self.etag.as_deref().unwrap_or(""),
            self.modified_ns.map(|n| n.to_string()).unwrap_or_default(),
            self.ends_sha256.as_deref().unwrap_or("")
        )
    }
}

impl Source {
    /// A folder path or `s3://BUCKET/PREFIX`. A missing folder is a usage error.
    pub fn parse(text: &str) -> Result<Source, Error> {
        if let Some(url) = S3Url::parse_prefix(text) {
            let (bucket, prefix) = url.map_err(Error::usage)?;
            return Ok(Source::S3 { bucket, prefix });
        }
        let path = Path::new(text);
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the folder {text}: {} (give a folder of CSV exports or s3://BUCKET/PREFIX/)",
                io_reason(&e)
            ))
        })?;
        if !meta.is_dir() {
            return Err(Error::usage(format!(
                "{text} is not a folder: ingest takes a folder or s3://BUCKET/PREFIX/ (hcctl migrate loads one file)"
            )));
        }
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| Error::usage(format!("cannot resolve {text}: {}", io_reason(&e))))?;
        Ok(Source::Folder(canonical))
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Source::S3 { .. })
    }

    /// The source's CSV files, oldest first (then by name): a folder's *.csv and *.csv.gz
    /// regular files (hidden names, quarantine files and subfolders left out); an S3 prefix's
    /// *.csv and *.csv.gz objects (quarantine/ and reports/ at the top of the bucket left out).
    ///
    /// `hashes` carries a folder's content hashes from one listing to the next (`--watch`): a
    /// file whose size and modification time are unchanged is not read again.
    pub async fn list(&self, hashes: &mut Hashes) -> Result<Vec<SourceFile>, Error> {
        match self {
            Source::Folder(dir) => {
                let dir = dir.clone();
                let mut known = std::mem::take(hashes);
                let (listed, known) = tokio::task::spawn_blocking(move || {
                    let listed = list_folder(&dir, &mut known);
                    (listed, known)
                })
                .await
                .map_err(|e| Error::failed(format!("listing task failed: {e}")))?;
                *hashes = known;
                listed
            }
            Source::S3 { bucket, prefix } => list_s3(bucket, prefix).await,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Folder(p) => write!(f, "{}", p.display()),
            Source::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Is this a name ingest loads? `x.csv`, `x.CSV.gz`; not `.x.csv` (a file being written under a
/// hidden name, to be renamed when complete) nor `x.quarantine.csv` (hcctl's own output).
pub fn is_export_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let csv = lower.ends_with(".csv") || lower.ends_with(".csv.gz");
    csv && !lower.starts_with('.')
        && !lower.ends_with(".quarantine.csv")
        && !lower.ends_with(".quarantine.csv.gz")
}

/// The content hashes of a folder's files by path, with the size and modification time they
/// were computed for.
#[derive(Debug, Default)]
pub struct Hashes(HashMap<PathBuf, (u64, Option<i64>, String)>);

fn list_folder(dir: &Path, hashes: &mut Hashes) -> Result<Vec<SourceFile>, Error> {
    let mut seen = HashMap::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::failed(format!("cannot list {}: {}", dir.display(), io_reason(&e))))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Error::failed(format!("cannot list {}: {}", dir.display(), io_reason(&e)))
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_export_name(&name) {
            continue;
        }
        let path = entry.path();
        // Follows a link to a regular file (an export linked into the folder); anything else
        // (a folder named x.csv, a device, a dangling link) is not an export.
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(file = %path.display(), reason = io_reason(&e), "skipped: cannot read it");
                continue;
            }
        };
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok());
        let cached = hashes
            .0
            .get(&path)
            .filter(|(size, modified, _)| *size == meta.len() && *modified == modified_ns)
            .map(|(_, _, h)| h.clone());
        let ends_sha256 = match cached.map_or_else(|| hash_ends(&path, meta.len()), Ok) {
            Ok(h) => h,
            // Gone or unreadable since the listing: the next look sees it as it is then.
            Err(e) => {
                tracing::warn!(file = %path.display(), reason = io_reason(&e), "skipped: cannot read it");
                continue;
            }
        };
        seen.insert(path.clone(), (meta.len(), modified_ns, ends_sha256.clone()));
        files.push(SourceFile {
            location: path.to_string_lossy().into_owned(),
            name,
            identity: Identity {
                size: meta.len(),
                etag: None,
                modified_ns,
                ends_sha256: Some(ends_sha256),
            },
        });
    }
    files.sort_by(|a, b| (a.identity.modified_ns, &a.name).cmp(&(b.identity.modified_ns, &b.name)));
    // Only what is there now: a file gone from the folder leaves the cache.
    hashes.0 = seen;
    Ok(files)
}

/// SHA-256 over the size, the first MiB and the last MiB (the whole file once when smaller).
fn hash_ends(path: &Path, len: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    hasher.update(len.to_le_bytes());
    let mut buf = Vec::with_capacity(END_BYTES as usize);
    (&mut file).take(END_BYTES).read_to_end(&mut buf)?;
    hasher.update(&buf);
    if len > END_BYTES {
        let tail_start = len.saturating_sub(END_BYTES).max(END_BYTES);
        file.seek(SeekFrom::Start(tail_start))?;
        buf.clear();
        file.take(END_BYTES).read_to_end(&mut buf)?;
        hasher.update(&buf);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn list_s3(bucket: &str, prefix: &str) -> Result<Vec<SourceFile>, Error> {
    let client = crate::aws::s3::client(&Target::default()).await;
    let listed = crate::aws::s3::list(&client, bucket, prefix, None)
        .await
        .map_err(|err| {
            if err.kind == crate::aws::AwsErrorKind::Service {
                let code = err
                    .code
                    .as_deref()
                    .map_or(String::new(), |c| format!("{c}: "));
                Error::usage(format!(
                    "cannot list s3://{bucket}/{prefix}: {code}{} (check the bucket, and that \
                     these credentials may list it)",
                    err.message
                ))
            } else {
                Error::from(err)
            }
        })?;
    let mut files = Vec::new();
    for object in listed {
        let key = object.key.as_str();
        // hcctl's own outputs beside the inputs, when the prefix is the whole bucket.
        if key.starts_with("quarantine/") || key.starts_with("reports/") {
            continue;
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        if !is_export_name(name) {
            continue;
        }
        files.push(SourceFile {
            location: format!("s3://{bucket}/{key}"),
            name: name.to_string(),
            identity: Identity {
                size: object.size,
                etag: object.etag,
                modified_ns: object.modified_ns,
                ends_sha256: None,
            },
        });
    }
    // S3's modification time is not part of an object's identity (the ETag is): it only orders.
    files.sort_by(|a, b| {
        (a.identity.modified_ns, &a.location).cmp(&(b.identity.modified_ns, &b.location))
    });
    for f in &mut files {
        f.identity.modified_ns = None;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exports_are_loaded() {
        for name in ["a.csv", "A.CSV", "2026-12-01.csv.gz"] {
            assert!(is_export_name(name), "{name}");
        }
        for name in [
            ".a.csv",
            "a.csv.partial",
            "a.quarantine.csv",
            "a.txt",
            "a.csv.tmp",
            "a.quarantine.csv.gz",
        ] {
            assert!(!is_export_name(name), "{name}");
        }
    }

    #[test]
    fn a_watched_folder_rehashes_only_files_whose_size_or_time_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, b"abc").unwrap();
        let mut hashes = Hashes::default();
        let hash = |h: &mut Hashes| {
            list_folder(dir.path(), h).unwrap()[0]
                .identity
                .ends_sha256
                .clone()
        };
        let first = hash(&mut hashes);
        // Same size and modification time: the cached hash stands (the file is not read; the
        // changed byte shows it).
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, b"abd").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(hash(&mut hashes), first);
        // A fresh listing reads it, and so does the cache once the time moves.
        let fresh = hash(&mut Hashes::default());
        assert_ne!(fresh, first);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified + std::time::Duration::from_secs(1))
            .unwrap();
        assert_eq!(hash(&mut hashes), fresh);
        // A file gone leaves the cache.
        std::fs::remove_file(&path).unwrap();
        assert!(list_folder(dir.path(), &mut hashes).unwrap().is_empty());
        assert!(hashes.0.is_empty());
    }

    #[test]
    fn identity_changes_with_either_end_of_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut content = vec![b'x'; 3 << 20];
        std::fs::write(&path, &content).unwrap();
        let first = hash_ends(&path, content.len() as u64).unwrap();
        content[10] = b'y';
        std::fs::write(&path, &content).unwrap();
        let head_changed = hash_ends(&path, content.len() as u64).unwrap();
        let last = content.len() - 10;
        content[last] = b'y';
        std::fs::write(&path, &content).unwrap();
        let tail_changed = hash_ends(&path, content.len() as u64).unwrap();
        assert_ne!(first, head_changed);
        assert_ne!(head_changed, tail_changed);
        // A small file is hashed whole, once.
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(hash_ends(&path, 3).unwrap(), hash_ends(&path, 3).unwrap());
    }
}
