//! Opening the input: a file, standard input, or either of them gzip-compressed; then the
//! header, resolved into [`Columns`] before anything is written anywhere.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use csv::{ByteRecord, Reader, ReaderBuilder};
use flate2::read::MultiGzDecoder;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use super::clean::{Cleaned, Cleaner, Columns, Reason};
use super::quarantine;
use crate::error::Error;

/// A CSV stream positioned after its header.
pub struct Input {
    /// Recorded in each document's lineage: the file name without its directory, or "stdin".
    pub source: String,
    /// For messages.
    pub display: String,
    pub reader: Reader<Box<dyn Read + Send>>,
    /// The bytes the CSV reader has consumed, for exact line numbers.
    lines: Arc<Mutex<LineCounter>>,
    pub header: ByteRecord,
    pub columns: Columns,
    /// A quarantine file fed back: its cells carry the formula guard, removed on reading.
    guarded: bool,
}

/// What reading and cleaning counted, whoever consumes the documents.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub rows_read: u64,
    pub rejected: u64,
    pub billing_nulled: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
}

impl Input {
    /// Read every remaining row, clean it, hand valid rows to `sink` in batches of
    /// `batch_size`, and give each rejected row to `on_reject`. Stops early (without error) when
    /// `sink` returns `Ok(false)`: the consumer has gone away and will report why.
    pub fn stream(
        self,
        batch_size: usize,
        progress: &ProgressBar,
        mut on_reject: impl FnMut(u64, Reason, &ByteRecord) -> Result<(), Error>,
        mut sink: impl FnMut(Vec<Cleaned>) -> Result<bool, Error>,
    ) -> Result<Tally, Error> {
        let Input {
            source,
            display,
            mut reader,
            lines,
            columns,
            guarded,
            ..
        } = self;
        let mut cleaner = Cleaner::new(columns, &source);
        let mut tally = Tally::default();
        let mut record = ByteRecord::new();
        let mut batch = Vec::with_capacity(batch_size);
        loop {
            // Every caller reads the whole input before it writes anything (migrate sorts
            // first), so a damaged or cut-off input is an input error: exit 2, nothing written.
            let more = reader.read_byte_record(&mut record).map_err(|e| {
                let line = record.position().map_or(0, |p| p.line());
                Error::usage(format!(
                    "reading {display} near line {line}: {e}; the input is damaged or cut off and \
                     nothing was written to the database (repair or re-export it and run again)"
                ))
            })?;
            if !more {
                break;
            }
            tally.rows_read += 1;
            let line = match (record.position(), lines.lock()) {
                (Some(p), Ok(mut counter)) => {
                    let line = counter.line_at(p.byte());
                    // Pass this record too, so that a read error in the next one names the
                    // line where that one starts.
                    counter.line_at(reader.position().byte());
                    line
                }
                _ => 0,
            };
            if guarded {
                quarantine::unguard(&mut record);
            }
            match cleaner.clean(&record, line) {
                Ok(cleaned) => {
                    tally.billing_nulled += u64::from(cleaned.billing_nulled);
                    batch.push(cleaned);
                    if batch.len() >= batch_size {
                        progress.set_position(tally.rows_read);
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                        if !sink(full)? {
                            return Ok(tally);
                        }
                    }
                }
                Err(reason) => {
                    tally.rejected += 1;
                    *tally.rejects_by_reason.entry(reason.code()).or_default() += 1;
                    tracing::debug!(line, reason = reason.code(), "row rejected");
                    on_reject(line, reason, &record)?;
                }
            }
        }
        if !batch.is_empty() {
            progress.set_position(tally.rows_read);
            sink(batch)?;
        }
        Ok(tally)
    }
}

/// Open `path` ("-" for stdin), detect gzip by its magic bytes, and read the header. Reading
/// more than `max_bytes` of CSV (after decompression) is an error naming `--max-input-bytes`.
pub fn open(path: &str, max_bytes: u64) -> Result<Input, Error> {
    let (raw, source, display): (Box<dyn Read + Send>, String, String) = if path == "-" {
        (
            Box::new(io::stdin()),
            "stdin".into(),
            "standard input".into(),
        )
    } else {
        let file = File::open(path).map_err(|e| {
            Error::usage(format!(
                "cannot open {path}: {} (give the CSV path as the first argument, or - for stdin)",
                io_reason(&e)
            ))
        })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::usage(format!(
                "{path} is a directory, not a CSV file"
            )));
        }
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string());
        (Box::new(file), name, path.to_string())
    };

    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let is_gzip = buffered
        .fill_buf()
        .map_err(|e| Error::usage(format!("cannot read {display}: {}", io_reason(&e))))?
        .starts_with(&[0x1f, 0x8b]);
    let decoded: Box<dyn Read + Send> = if is_gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    let decoded = Box::new(CappedReader {
        inner: decoded,
        left: max_bytes,
        max: max_bytes,
    });
    let lines = Arc::new(Mutex::new(LineCounter::default()));
    let stream: Box<dyn Read + Send> = Box::new(CountingReader {
        inner: decoded,
        seen: Arc::clone(&lines),
    });

    let mut reader = csv_reader(stream);
    let mut header = ByteRecord::new();
    let got = reader
        .read_byte_record(&mut header)
        .map_err(|e| Error::usage(format!("cannot read the header of {display}: {e}")))?;
    if !got {
        return Err(Error::usage(format!(
            "{display} is empty: expected a header line naming the columns"
        )));
    }
    let columns_of = |header: &ByteRecord| {
        Columns::from_header(header).map_err(|e| Error::usage(format!("{display}: {e}")))
    };
    let mut columns = columns_of(&header)?;
    let guarded = columns.is_quarantine();
    if guarded {
        // A quarantine fed back: its header may carry the formula guard too, and its rows may
        // be longer than the rows they were (quoting), but never longer than it writes them.
        if quarantine::unguard(&mut header) {
            columns = columns_of(&header)?;
        }
        if let Ok(mut counter) = lines.lock() {
            counter.allowance = quarantine::MAX_ROW_BYTES - MAX_ROW_BYTES;
        }
    }
    Ok(Input {
        source,
        display,
        reader,
        lines,
        header,
        columns,
        guarded,
    })
}

/// How far the parser reads ahead of the record it returns.
const PARSER_BUFFER: usize = 256 * 1024;

/// The parser: no header handling (the header is matched by [`Columns`]), ragged rows allowed
/// (they are rejected with their field count), [`PARSER_BUFFER`] of read-ahead.
fn csv_reader<R: Read>(input: R) -> Reader<R> {
    ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(PARSER_BUFFER)
        .from_reader(input)
}

/// Physical line numbers. The csv crate's own `Position::line()` miscounts with CRLF line ends
/// and blank lines, and its byte offset points at the end of the previous record (before the
/// line break and any blank lines). So the bytes the parser reads are kept, from the start of the
/// current record on, and the line of a record is 1 + the line breaks before its first byte.
#[derive(Default)]
struct LineCounter {
    /// Bytes read but not yet passed by a record start; `window[0]` is at offset `base`.
    window: VecDeque<u8>,
    base: u64,
    newlines_before_base: u64,
    /// Bytes a row may have beyond [`MAX_ROW_BYTES`] (a quarantine file's rows).
    allowance: usize,
}

impl LineCounter {
    /// The line of the record whose csv position is the byte offset `pos`.
    fn line_at(&mut self, pos: u64) -> u64 {
        let k = usize::try_from(pos.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.window.len());
        let (front, back) = self.window.as_slices();
        let in_front = k.min(front.len());
        let passed = count_newlines(&front[..in_front]) + count_newlines(&back[..k - in_front]);
        self.window.drain(..k);
        self.newlines_before_base += passed;
        self.base += k as u64;
        // Skip the rest of the previous line break and any blank lines.
        let leading = self
            .window
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .filter(|&&b| b == b'\n')
            .count() as u64;
        1 + self.newlines_before_base + leading
    }
}

/// A plain loop over a slice, which the compiler vectorises.
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Passes bytes through to the CSV parser and keeps a copy for the [`LineCounter`]. The copy
/// is trimmed at every record, so it never holds more than the parser's read-ahead.
struct CountingReader {
    inner: Box<dyn Read + Send>,
    seen: Arc<Mutex<LineCounter>>,
}

/// The longest row accepted. A real admission row is about 200 bytes; a row running on for
/// longer is an opening quote without its closing one, which would otherwise swallow the rest
/// of the file into one field (memory growing with the input, and time with its square).
pub const MAX_ROW_BYTES: usize = 1 << 20;

/// The parser reads ahead by at most its buffer: a window longer than a row plus that means the
/// current row is longer than [`MAX_ROW_BYTES`].
const MAX_WINDOW_BYTES: usize = MAX_ROW_BYTES + PARSER_BUFFER;

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.window.extend(&buf[..n]);
            if seen.window.len() > MAX_WINDOW_BYTES + seen.allowance {
                let base = seen.base;
                let line = seen.line_at(base);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the row starting on line {line} runs on for more than {} MiB (a quote \
                         opened and never closed?)",
                        (MAX_ROW_BYTES + seen.allowance) >> 20
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// Refuses to pass on more than `max` bytes: what one input may expand to (`--max-input-bytes`),
/// so that a small gzip that decompresses without end cannot fill the disk with sort runs.
struct CappedReader {
    inner: Box<dyn Read + Send>,
    left: u64,
    max: u64,
}

impl Read for CappedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the input holds more than --max-input-bytes {} of CSV once decompressed (a \
                     small gzip that expands this far is a decompression bomb); if the file is \
                     genuine, raise --max-input-bytes",
                    crate::output::bytes(self.max)
                ),
            )
        })?;
        Ok(n)
    }
}

/// The OS reason without Rust's "(os error 2)" noise.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSV reader over `input` set up as [`open`] sets it up, and its line counter.
    fn counted(input: &[u8]) -> (Reader<CountingReader>, Arc<Mutex<LineCounter>>) {
        let lines = Arc::new(Mutex::new(LineCounter::default()));
        let reader = CountingReader {
            inner: Box::new(io::Cursor::new(input.to_vec())),
            seen: Arc::clone(&lines),
        };
        (csv_reader(reader), lines)
    }

    fn lines_of(input: &str) -> Vec<u64> {
        let (mut r, lines) = counted(input.as_bytes());
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while r.read_byte_record(&mut rec).unwrap() {
            let pos = rec.position().unwrap().byte();
            out.push(lines.lock().unwrap().line_at(pos));
        }
        out
    }

    #[test]
    fn a_row_longer_than_the_limit_is_a_read_error_naming_its_line() {
        let mut text = String::from("h1,h2\na,b\nc,\"never closed\n");
        while text.len() < MAX_WINDOW_BYTES + 1024 {
            text.push_str("x,y,z\n");
        }
        let (mut r, lines) = counted(text.as_bytes());
        let mut rec = ByteRecord::new();
        let mut rows = 0;
        let err = loop {
            match r.read_byte_record(&mut rec) {
                Ok(true) => {
                    rows += 1;
                    let end = r.position().byte();
                    lines.lock().unwrap().line_at(end);
                }
                Ok(false) => panic!("the unclosed quote was accepted"),
                Err(e) => break e.to_string(),
            }
        };
        assert_eq!(rows, 2, "the header and the first row come through");
        assert!(
            err.contains("the row starting on line 3 runs on for more than 1 MiB"),
            "{err}"
        );
    }

    #[test]
    fn line_numbers_are_physical_lines() {
        assert_eq!(lines_of("h\na\nb\n"), [1, 2, 3]);
        assert_eq!(lines_of("h\r\na\r\n\r\nb\r\n"), [1, 2, 4]);
        assert_eq!(lines_of("h\n\"x\ny\"\nb"), [1, 2, 4]);
        assert_eq!(lines_of("\nh\na\n\n\n c\n"), [2, 3, 6]);
        assert_eq!(lines_of("\u{feff}h\r\na\r\n"), [1, 2]);
    }
}
