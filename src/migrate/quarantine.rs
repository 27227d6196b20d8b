//! The quarantine file: every rejected row, with its line number and reason, and its original
//! fields byte for byte, so that nothing is ever lost. It holds patient data: mode 0600.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use csv::{ByteRecord, Writer};

use super::clean::{Reason, QUARANTINE_COLUMNS};
use crate::error::Error;

pub struct Quarantine {
    path: PathBuf,
    writer: Writer<BufWriter<File>>,
    rows: u64,
}

impl Quarantine {
    /// The default path: `NAME.quarantine.csv` in the current directory (the input's own
    /// directory may be read-only, and a quarantine is a work product of this run).
    pub fn default_path(source: &str) -> PathBuf {
        let stem = source
            .strip_suffix(".gz")
            .unwrap_or(source)
            .strip_suffix(".csv")
            .unwrap_or(source);
        PathBuf::from(format!("{stem}.quarantine.csv"))
    }

    /// Create (or truncate) the file with mode 0600. `header` is the input's header, so the
    /// quarantine reads like the input with two columns in front.
    pub fn create(path: &Path, header: &ByteRecord) -> Result<Quarantine, Error> {
        let file = open_private(path).map_err(|e| {
            Error::usage(format!(
                "cannot create the quarantine file {}: {} (choose another with --quarantine)",
                path.display(),
                super::read::io_reason(&e)
            ))
        })?;
        // Rows with the wrong number of fields are quarantined too: the file is ragged.
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::new(file));
        let mut first = ByteRecord::new();
        for name in QUARANTINE_COLUMNS {
            first.push_field(name.as_bytes());
        }
        for f in header {
            first.push_field(f);
        }
        writer
            .write_byte_record(&first)
            .map_err(|e| Error::usage(format!("writing {}: {e}", path.display())))?;
        Ok(Quarantine {
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn add(&mut self, line: u64, reason: Reason, original: &ByteRecord) -> Result<(), Error> {
        let mut rec = ByteRecord::with_capacity(256, original.len() + 3);
        rec.push_field(line.to_string().as_bytes());
        rec.push_field(reason.code().as_bytes());
        rec.push_field(reason.expectation().as_bytes());
        for f in original {
            rec.push_field(f);
        }
        self.rows += 1;
        self.writer
            .write_byte_record(&rec)
            .map_err(|e| Error::failed(format!("writing quarantine {}: {e}", self.path.display())))
    }

    pub fn finish(mut self) -> Result<(), Error> {
        self.writer
            .flush()
            .map_err(|e| Error::failed(format!("writing quarantine {}: {e}", self.path.display())))
    }
}

/// Create or truncate a file readable by its owner only (also tightening an existing regular
/// file).
pub fn open_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // Tighten an existing file; leave devices (/dev/null, /dev/stdout) as they are.
        if file.metadata()?.file_type().is_file() {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}
