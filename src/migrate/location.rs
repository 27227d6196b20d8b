//! Where a run's outputs go: a local file ([`OutFile`]: private, put in place at the end) or an S3
//! object ([`ObjectWriter`]: a multipart upload, encrypted, completed at the end). Either way the
//! output appears whole when the run succeeds, and not at all when it fails.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use super::outfile::{self, OutFile};
use super::shard::Shard;
use crate::aws::s3::{self, Encryption, ObjectWriter, S3Url};
use crate::aws::Target;
use crate::error::Error;

/// A `--quarantine` or `--report` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    S3(S3Url),
}

impl Location {
    /// For clap: `s3://bucket/key` or a path.
    pub fn parse(text: &str) -> Result<Location, String> {
        match S3Url::parse(text) {
            Some(url) => url.map(Location::S3),
            None if text.is_empty() => Err("an empty path".into()),
            None => Ok(Location::File(PathBuf::from(text))),
        }
    }

    /// The default quarantine of an input: for `s3://B/incoming/D/NAME.csv[.gz]`,
    /// `s3://B/quarantine/D/NAME.quarantine.csv` (the key's `incoming/` swapped for
    /// `quarantine/`); for a local file, `NAME.quarantine.csv` in the current directory.
    pub fn default_quarantine(input: &str, source: &str, shard: Shard) -> Location {
        match S3Url::parse(input) {
            Some(Ok(url)) => Location::S3(beside(&url, "quarantine", "quarantine", "csv", shard)),
            _ => Location::File(super::quarantine::Quarantine::default_path(
                source,
                &shard.suffix(),
            )),
        }
    }

    /// The default report: for an S3 input `s3://B/reports/D/NAME.report.json`; none for a
    /// local file (it is printed).
    pub fn default_report(input: &str, shard: Shard) -> Option<Location> {
        match S3Url::parse(input) {
            Some(Ok(url)) => Some(Location::S3(beside(
                &url, "reports", "report", "json", shard,
            ))),
            _ => None,
        }
    }
}

/// Where `hcctl run verify` has each task write its result: `s3://B/reports/D/NAME.verify.json`
/// (beside migrate's report, never in its place).
pub fn default_verify_report(input: &S3Url, shard: Shard) -> S3Url {
    beside(input, "reports", "verify", "json", shard)
}

/// The object one shard writes when all N are given one location: `.shard-K-of-N` before the
/// name's extension (`x.json` → `x.shard-2-of-3.json`), or at its end; unchanged for 1/1.
pub fn for_shard(url: &S3Url, shard: Shard) -> S3Url {
    let suffix = shard.suffix();
    let name = url.file_name();
    let renamed = match name.rfind('.') {
        Some(i) if i > 0 => format!("{}{suffix}{}", &name[..i], &name[i..]),
        _ => format!("{name}{suffix}"),
    };
    url.with_key(format!("{}{renamed}", url.dir()))
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::S3(url) => write!(f, "{url}"),
        }
    }
}

/// The name of an input without `.gz` and `.csv`.
pub fn stem(name: &str) -> &str {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.strip_suffix(".csv").unwrap_or(name)
}

/// `incoming/D/NAME.csv` → `TOP/D/NAME.WHAT[.shard-K-of-N].EXT` in the same bucket.
fn beside(input: &S3Url, top: &str, what: &str, ext: &str, shard: Shard) -> S3Url {
    let dir = input.dir();
    let dir = dir.strip_prefix("incoming/").unwrap_or(dir);
    let suffix = shard.suffix();
    input.with_key(format!(
        "{top}/{dir}{}.{what}{suffix}.{ext}",
        stem(input.file_name())
    ))
}

/// Check the outputs against the input and each other before anything is read: local ones as
/// [`outfile::check_outputs`] does; an S3 output must not be the input object or another output.
pub fn check(input: &str, outputs: &[(&str, &Location)]) -> Result<(), Error> {
    let input_url = S3Url::parse(input).and_then(Result::ok);
    let mut objects: Vec<(&str, &S3Url)> = Vec::new();
    let mut files = Vec::new();
    for (flag, location) in outputs {
        match location {
            Location::File(path) => files.push((*flag, path.as_path())),
            Location::S3(url) => {
                if input_url.as_ref() == Some(url) {
                    return Err(Error::usage(format!(
                        "{flag} {url} is the input object itself (choose another key)"
                    )));
                }
                if let Some((other, _)) = objects.iter().find(|(_, u)| *u == url) {
                    return Err(Error::usage(format!(
                        "{flag} and {other} name the same object {url} (choose another key)"
                    )));
                }
                objects.push((flag, url));
            }
        }
    }
    outfile::check_outputs(input, &files)
}

/// The S3 side of a run's outputs: the client and how objects are encrypted.
#[derive(Clone)]
pub struct ObjectTarget {
    pub client: aws_sdk_s3::Client,
    pub encryption: Encryption,
}

impl ObjectTarget {
    /// The S3 side when any of `outputs` is an object.
    pub async fn for_outputs(
        outputs: &[(&str, &Location)],
        kms_key: Option<&str>,
    ) -> Option<ObjectTarget> {
        if outputs.iter().any(|(_, l)| matches!(l, Location::S3(_))) {
            Some(ObjectTarget::connect(kms_key).await)
        } else {
            None
        }
    }

    pub async fn connect(kms_key: Option<&str>) -> ObjectTarget {
        ObjectTarget {
            client: s3::client(&Target::default()).await,
            encryption: kms_key.map_or(Encryption::S3Managed, |k| Encryption::Kms(k.to_string())),
        }
    }
}

/// An output being written.
pub enum Sink {
    File(OutFile),
    S3(ObjectWriter),
}

impl Sink {
    /// Start writing `location` (`flag` names it in messages): exit 2 when it cannot be created
    /// (a missing directory, a bucket that does not exist or refuses the upload).
    pub async fn create(
        flag: &str,
        location: &Location,
        content_type: &str,
        objects: Option<&ObjectTarget>,
    ) -> Result<Sink, Error> {
        match location {
            Location::File(path) => OutFile::create(flag, path).map(Sink::File),
            Location::S3(url) => {
                let objects = match objects {
                    Some(o) => o.clone(),
                    None => ObjectTarget::connect(None).await,
                };
                ObjectWriter::create(
                    objects.client,
                    url.clone(),
                    content_type,
                    &objects.encryption,
                )
                .await
                .map(Sink::S3)
                .map_err(|e| {
                    Error::usage(format!(
                        "{flag} {url}: {e} (check that the bucket exists and that these \
                             credentials may write there)"
                    ))
                })
            }
        }
    }

    pub fn name(&self) -> String {
        match self {
            Sink::File(f) => f.path().display().to_string(),
            Sink::S3(o) => o.url().to_string(),
        }
    }

    /// Put the output in place, whole.
    pub async fn commit(self) -> Result<(), Error> {
        match self {
            Sink::File(f) => f.commit(),
            Sink::S3(o) => o.commit().await.map_err(Error::from),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::S3(o) => o.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::S3(o) => o.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_outputs_sit_beside_the_input() {
        let two = Shard::new(2, 3).unwrap();
        let q = |input, shard| Location::default_quarantine(input, "x.csv", shard).to_string();
        assert_eq!(
            q("s3://drops/incoming/2026/12/adm.csv.gz", Shard::ALL),
            "s3://drops/quarantine/2026/12/adm.quarantine.csv"
        );
        assert_eq!(
            q("s3://drops/exports/adm.csv", two),
            "s3://drops/quarantine/exports/adm.quarantine.shard-2-of-3.csv"
        );
        assert_eq!(q("data/x.csv", Shard::ALL), "x.quarantine.csv");
        assert_eq!(q("data/x.csv", two), "x.quarantine.shard-2-of-3.csv");
        let r = |input, shard| Location::default_report(input, shard).map(|l| l.to_string());
        assert_eq!(
            r("s3://drops/incoming/adm.csv", two).as_deref(),
            Some("s3://drops/reports/adm.report.shard-2-of-3.json")
        );
        assert_eq!(r("data/x.csv", Shard::ALL), None);
    }

    #[test]
    fn shard_outputs_get_the_shard_before_the_extension() {
        let url = |s: &str| S3Url::parse(s).unwrap().unwrap();
        let two = Shard::new(2, 3).unwrap();
        assert_eq!(
            for_shard(&url("s3://bkt/reports/x.json"), two).to_string(),
            "s3://bkt/reports/x.shard-2-of-3.json"
        );
        assert_eq!(
            for_shard(&url("s3://bkt/r/noext"), two).to_string(),
            "s3://bkt/r/noext.shard-2-of-3"
        );
        assert_eq!(
            for_shard(&url("s3://bkt/r/x.json"), Shard::ALL).to_string(),
            "s3://bkt/r/x.json"
        );
        assert_eq!(
            default_verify_report(&url("s3://bkt/incoming/d/a.csv.gz"), two).to_string(),
            "s3://bkt/reports/d/a.verify.shard-2-of-3.json"
        );
    }

    #[test]
    fn outputs_must_differ_from_the_input_and_each_other() {
        let input = "s3://drops/incoming/a.csv";
        let same = Location::parse(input).unwrap();
        let err = check(input, &[("--report", &same)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is the input object itself"), "{err}");
        let out = Location::parse("s3://drops/out/a").unwrap();
        let err = check(input, &[("--quarantine", &out), ("--report", &out)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--report and --quarantine name the same object"),
            "{err}"
        );
        assert!(Location::parse("s3://drops/").is_err());
        assert_eq!(
            Location::parse("q.csv").unwrap(),
            Location::File(PathBuf::from("q.csv"))
        );
    }
}
