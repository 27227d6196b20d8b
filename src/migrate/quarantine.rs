//! The quarantine file: every rejected row, with its line number and reason, and its original
//! fields byte for byte, so that nothing is ever lost. It holds patient data: mode 0600, written
//! as an [`OutFile`] (put in place once the run succeeds).
//!
//! People open it in a spreadsheet to fix the rows and feed it back, so a cell a spreadsheet
//! would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab or a CR, and not a number)
//! is written with a `'` in front; reading a quarantine file back removes it again
//! ([`unguard`]), so a fixed row gets the `_id` of the same row fixed in the original.

use std::io::BufWriter;
use std::path::PathBuf;

use csv::{ByteRecord, Writer};

use super::clean::{Reason, QUARANTINE_COLUMNS};
use super::location::Sink;
use crate::error::Error;

/// The longest row accepted from a quarantine file that is fed back. A row read is at most
/// [`super::read::MAX_ROW_BYTES`] plus the parser's read-ahead (1.25 MiB in all); written to the
/// quarantine it grows at most threefold (a field of a formula character and one `"` becomes
/// `"'="""`), plus its three columns. A quarantine of a quarantine writes the fields the same
/// way again, with only three more columns in front. Four times the input's limit holds them.
pub const MAX_ROW_BYTES: usize = 4 * super::read::MAX_ROW_BYTES;

pub struct Quarantine {
    writer: Writer<BufWriter<Sink>>,
    rows: u64,
    /// Where a guarded field is built.
    guarded: Vec<u8>,
}

impl Quarantine {
    /// The default path: `NAME.quarantine[SUFFIX].csv` in the current directory (the input's
    /// own directory may be read-only, and a quarantine is a work product of this run).
    pub fn default_path(source: &str, suffix: &str) -> PathBuf {
        let stem = super::location::stem(source);
        PathBuf::from(format!("{stem}.quarantine{suffix}.csv"))
    }

    /// Start the quarantine in `file` (see [`Sink::create`]). `header` is the input's header, so
    /// the quarantine reads like the input with three columns in front.
    pub fn create(file: Sink, header: &ByteRecord) -> Result<Quarantine, Error> {
        // Rows with the wrong number of fields are quarantined too: the file is ragged.
        let writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::new(file));
        let mut quarantine = Quarantine {
            writer,
            rows: 0,
            guarded: Vec::new(),
        };
        let mut first = ByteRecord::new();
        for name in QUARANTINE_COLUMNS {
            first.push_field(name.as_bytes());
        }
        quarantine.write(first, header)?;
        Ok(quarantine)
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn add(&mut self, line: u64, reason: Reason, original: &ByteRecord) -> Result<(), Error> {
        let mut rec = ByteRecord::with_capacity(256, original.len() + 3);
        rec.push_field(line.to_string().as_bytes());
        rec.push_field(reason.code().as_bytes());
        rec.push_field(reason.expectation().as_bytes());
        self.write(rec, original)?;
        self.rows += 1;
        Ok(())
    }

    /// `rec` (our own columns so far), then the row's `fields`, guarded.
    fn write(&mut self, mut rec: ByteRecord, fields: &ByteRecord) -> Result<(), Error> {
        for f in fields {
            if needs_guard(f) {
                self.guarded.clear();
                self.guarded.push(b'\'');
                self.guarded.extend_from_slice(f);
                rec.push_field(&self.guarded);
            } else {
                rec.push_field(f);
            }
        }
        self.writer
            .write_byte_record(&rec)
            .map_err(|e| Error::failed(format!("writing quarantine {}: {e}", self.name())))
    }

    fn name(&self) -> String {
        self.writer.get_ref().get_ref().name()
    }

    /// Every row written out. The output is put in place with [`Sink::commit`] once the whole
    /// run has succeeded (dropped instead, it is removed).
    pub fn finish(self) -> Result<Sink, Error> {
        let name = self.name();
        let failed = |e: std::io::Error| Error::failed(format!("writing quarantine {name}: {e}"));
        self.writer
            .into_inner()
            .map_err(|e| failed(e.into_error()))?
            .into_inner()
            .map_err(|e| failed(e.into_error()))
    }
}

/// Whether a spreadsheet could take `field` for a formula: it starts with `=`, `+`, `-`, `@`, a
/// tab or a CR and is not a plain number (`-12.5` stays as it is). Apostrophes already in front
/// count as part of the field (`'=x` is written `''=x`), so that [`unguard`] gives back exactly
/// what was read.
pub fn needs_guard(field: &[u8]) -> bool {
    let start = field.iter().take_while(|&&b| b == b'\'').count();
    let core = &field[start..];
    matches!(
        core.first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) && !is_number(core)
}

/// `[+-]digits[.digits][e[+-]digits]` (or `.digits`): what a spreadsheet reads as a number.
fn is_number(s: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let whole = digits(&s[i..]);
    i += whole;
    let mut fraction = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        fraction = digits(&s[i..]);
        i += fraction;
    }
    if whole + fraction == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(s.get(i), Some(b'+' | b'-')));
        let exponent = digits(&s[i..]);
        if exponent == 0 {
            return false;
        }
        i += exponent;
    }
    i == s.len()
}

/// Remove the formula guard from the fields of a record read from a quarantine file. Returns
/// whether anything changed (most rows have nothing to remove and are not copied).
pub fn unguard(record: &mut ByteRecord) -> bool {
    let guarded = |f: &[u8]| f.first() == Some(&b'\'') && needs_guard(f);
    if !record.iter().any(guarded) {
        return false;
    }
    let mut out = ByteRecord::with_capacity(record.as_slice().len(), record.len());
    for f in record.iter() {
        out.push_field(if guarded(f) { &f[1..] } else { f });
    }
    out.set_position(record.position().cloned());
    *record = out;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_guarded_and_read_back_unchanged() {
        for (value, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1 555", "'+1 555"),
            ("-", "'-"),
            ("-1+2", "'-1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\r=x", "'\r=x"),
            ("'=x", "''=x"),
            ("''@x", "'''@x"),
            ("-1e", "'-1e"),
            ("-.", "'-."),
            ("-12.5", "-12.5"),
            ("+3", "+3"),
            ("-.5e-3", "-.5e-3"),
            ("'-12.5", "'-12.5"),
            ("'", "'"),
            ("Bobby", "Bobby"),
            ("", ""),
        ] {
            let guarded = if needs_guard(value.as_bytes()) {
                format!("'{value}")
            } else {
                value.to_string()
            };
            assert_eq!(guarded, written, "{value:?}");
            let mut rec = ByteRecord::from(vec!["7", guarded.as_str()]);
            unguard(&mut rec);
            assert_eq!(&rec[1], value.as_bytes(), "{value:?} read back");
            assert_eq!(&rec[0], b"7");
        }
    }
}
