//! Opening the input: a file, standard input, or either of them gzip-compressed; then the
//! header, resolved into [`Columns`] before anything is written anywhere.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use csv::{ByteRecord, Reader, ReaderBuilder, Terminator};
use flate2::read::MultiGzDecoder;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use super::clean::{Cleaned, Cleaner, Columns, Reason};
use super::quarantine;
use super::shard::Shard;
use crate::aws::s3::{self, ObjectReader, S3Url};
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
    line_end: LineEnd,
    /// Without the CR of a CRLF line end.
    pub header: ByteRecord,
    pub columns: Columns,
    /// A quarantine file fed back: its cells carry the formula guard, removed on reading.
    guarded: bool,
    /// The rows this run counts and hands on ([`Shard::ALL`] unless `--shard`).
    pub shard: Shard,
}

/// What reading and cleaning counted, whoever consumes the documents.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub rows_read: u64,
    pub rejected: u64,
    pub billing_nulled: u64,
    pub rejects_by_reason: BTreeMap<String, u64>,
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
            line_end,
            columns,
            guarded,
            shard,
            ..
        } = self;
        let mut cleaner = Cleaner::new(columns, &source);
        let mut tally = Tally::default();
        let mut record = ByteRecord::new();
        let mut batch = Vec::with_capacity(batch_size);
        // Rows seen, this shard's or not (the progress).
        let mut seen = 0u64;
        loop {
            // Every caller reads the whole input before it writes anything (migrate sorts
            // first), so a damaged or cut-off input is an input error: exit 2, nothing written.
            let more = reader.read_byte_record(&mut record).map_err(|e| {
                let line = lines.lock().map_or(0, |mut counter| counter.current_line());
                if is_too_large(&e) {
                    return Error::usage(format!(
                        "reading {display} near line {line}: {e}; nothing was written to the \
                         database"
                    ));
                }
                Error::usage(format!(
                    "reading {display} near line {line}: {e}; the input is damaged or cut off and \
                     nothing was written to the database (repair or re-export it and run again)"
                ))
            })?;
            if !more {
                break;
            }
            if is_blank_line(&record, line_end, raw_len(&record, &reader)) {
                // Not a row. Not passed by the line counter either: each pass looks at the line
                // breaks ahead, so a long run of blank lines would take quadratic time; the
                // next row's pass, or the row limit's skip_blank_lines, takes them all at once.
                continue;
            }
            seen += 1;
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
            let cleaned = if line_end == LineEnd::Lf && has_lone_cr(&record) {
                Err(Reason::LoneCarriageReturn)
            } else {
                cleaner.clean(&record, line)
            };
            // Every row is one shard's: a valid row by its _id (copies meet), a rejected one by
            // its line.
            let owned = match &cleaned {
                Ok(c) => shard.owns_id(&c.id),
                Err(_) => shard.owns_line(line),
            };
            if !owned {
                continue;
            }
            tally.rows_read += 1;
            match cleaned {
                Ok(cleaned) => {
                    tally.billing_nulled += u64::from(cleaned.billing_nulled);
                    batch.push(cleaned);
                    if batch.len() >= batch_size {
                        progress.set_position(seen);
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                        if !sink(full)? {
                            return Ok(tally);
                        }
                    }
                }
                Err(reason) => {
                    tally.rejected += 1;
                    *tally
                        .rejects_by_reason
                        .entry(reason.code().to_string())
                        .or_default() += 1;
                    tracing::debug!(line, reason = reason.code(), "row rejected");
                    on_reject(line, reason, &without_line_end(&record))?;
                }
            }
        }
        if !batch.is_empty() {
            progress.set_position(seen);
            sink(batch)?;
        }
        Ok(tally)
    }
}

/// Open `path` ("-" for stdin, `s3://bucket/key` for an S3 object), detect gzip by its magic
/// bytes, and read the header. Reading more than `max_bytes` of CSV (after decompression) is an
/// error naming `--max-input-bytes`.
pub fn open(path: &str, max_bytes: u64) -> Result<Input, Error> {
    let (raw, source, display): (Box<dyn Read + Send>, String, String) = if path == "-" {
        (
            Box::new(io::stdin()),
            "stdin".into(),
            "standard input".into(),
        )
    } else if let Some(url) = S3Url::parse(path) {
        let url = url.map_err(Error::usage)?;
        let object = open_object(url.clone())?;
        tracing::info!(object = %url, bytes = object.length(), "reading from S3");
        (
            Box::new(object),
            url.file_name().to_string(),
            url.to_string(),
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
    let decoded: Box<dyn Read + Send> = Box::new(CappedReader {
        inner: decoded,
        left: max_bytes,
        max: max_bytes,
    });
    let (decoded, line_end) = sniff_line_end(decoded).map_err(|e| {
        Error::usage(format!(
            "cannot read the header of {display}: {}",
            io_reason(&e)
        ))
    })?;
    let lines = Arc::new(Mutex::new(LineCounter::new(line_end)));
    let stream: Box<dyn Read + Send> = Box::new(CountingReader {
        inner: decoded,
        seen: Arc::clone(&lines),
    });

    let mut reader = csv_reader(stream, line_end);
    let mut header = ByteRecord::new();
    let got = reader
        .read_byte_record(&mut header)
        .map_err(|e| Error::usage(format!("cannot read the header of {display}: {e}")))?;
    if !got {
        return Err(Error::usage(format!(
            "{display} is empty: expected a header line naming the columns"
        )));
    }
    // Past the header: an over-long first row is then reported on its own line, not line 1.
    if let Ok(mut counter) = lines.lock() {
        counter.line_at(reader.position().byte());
    }
    if line_end == LineEnd::Lf && has_lone_cr(&header) {
        return Err(Error::usage(format!(
            "{display}: the header line holds a carriage return (CR) that does not end the line; \
             repair the header (lines end with LF or CRLF)"
        )));
    }
    let mut header = without_line_end(&header).into_owned();
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
        line_end,
        header,
        columns,
        guarded,
        shard: Shard::ALL,
    })
}

/// The first GET of an S3 input, with the standard credential and endpoint chain. What S3
/// answers (no such bucket or key, access denied) is exit 2, like a file that cannot be opened.
fn open_object(url: S3Url) -> Result<ObjectReader, Error> {
    let opened = s3::wait(async {
        let client = s3::client(&crate::aws::Target::default()).await;
        ObjectReader::open(client, url).await
    })
    .map_err(|e| Error::failed(format!("cannot read from S3: {e}")))?;
    opened.map_err(|e| {
        if e.kind == crate::aws::AwsErrorKind::Service {
            Error::usage(format!(
                "{e} (check the bucket and key, and that these credentials may read \
                 the object)"
            ))
        } else {
            Error::from(e)
        }
    })
}

/// How the lines of an input end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    /// LF or CRLF: a CR is data unless an LF follows it.
    Lf,
    /// CR alone (old Mac exports): every CR, LF or CRLF ends a line, and lines are numbered by CR.
    Cr,
}

/// How far into the input a line feed is looked for.
const SNIFF_BYTES: usize = 64 * 1024;

/// Read the first bytes (up to the first LF, at most [`SNIFF_BYTES`]) to tell how lines end: a
/// CR-only file has carriage returns and no line feed in its first [`SNIFF_BYTES`]. Returns a
/// stream that still starts at the first byte.
fn sniff_line_end(mut input: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, LineEnd)> {
    let mut prefix = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 8 * 1024];
    while prefix.len() < SNIFF_BYTES && !prefix.contains(&b'\n') {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        prefix.extend_from_slice(&chunk[..n]);
    }
    let seen = &prefix[..prefix.len().min(SNIFF_BYTES)];
    let line_end = if !seen.contains(&b'\n') && seen.contains(&b'\r') {
        LineEnd::Cr
    } else {
        LineEnd::Lf
    };
    Ok((Box::new(io::Cursor::new(prefix).chain(input)), line_end))
}

/// A blank line of a CRLF file, parsed with LF line ends: one field, the CR, read from at most
/// the two bytes CR LF (`raw_len`, from the record's start to the reader's position after it) —
/// a quoted `"\r"` is a field of a row, not a blank line. (The parser skips other blank lines
/// itself.)
fn is_blank_line(record: &ByteRecord, line_end: LineEnd, raw_len: u64) -> bool {
    line_end == LineEnd::Lf && record.len() == 1 && &record[0] == b"\r" && raw_len <= 2
}

/// The bytes a record took in the input, terminator included.
fn raw_len<R: Read>(record: &ByteRecord, reader: &Reader<R>) -> u64 {
    let start = record.position().map_or(0, |p| p.byte());
    reader.position().byte().saturating_sub(start)
}

/// Whether a record (parsed with LF line ends) holds a CR that is not followed by LF, other than
/// the CR of its own CRLF line end. Such a CR splits the row for a CR-aware reader (`Bobby`
/// and `Jackson,30,…`, the second a row of shifted meaning), so the row is rejected whole.
fn has_lone_cr(record: &ByteRecord) -> bool {
    let all = record.as_slice();
    let ends_with_cr = |f: &[u8]| f.last() == Some(&b'\r');
    let last = record.len().saturating_sub(1);
    let crs = all.iter().filter(|&&b| b == b'\r').count();
    if crs == 0 || (crs == 1 && record.get(last).is_some_and(ends_with_cr)) {
        return false;
    }
    record.iter().enumerate().any(|(i, field)| {
        let field = match field.strip_suffix(b"\r") {
            Some(rest) if i == last => rest,
            _ => field,
        };
        field
            .iter()
            .enumerate()
            .any(|(j, &b)| b == b'\r' && field.get(j + 1) != Some(&b'\n'))
    })
}

/// The record without the CR of its CRLF line end (parsed with LF line ends, the CR is the
/// last byte of the last field): what the quarantine file and the header keep.
fn without_line_end(record: &ByteRecord) -> Cow<'_, ByteRecord> {
    let last = record.len().saturating_sub(1);
    match record.get(last) {
        Some(field) if field.last() == Some(&b'\r') => {
            let mut fixed = ByteRecord::with_capacity(record.as_slice().len(), record.len());
            for (i, f) in record.iter().enumerate() {
                fixed.push_field(if i == last { &f[..f.len() - 1] } else { f });
            }
            Cow::Owned(fixed)
        }
        _ => Cow::Borrowed(record),
    }
}

/// How far the parser reads ahead of the record it returns.
const PARSER_BUFFER: usize = 256 * 1024;

/// The parser: no header handling (the header is matched by [`Columns`]), ragged rows allowed
/// (they are rejected with their field count), [`PARSER_BUFFER`] of read-ahead. With LF line
/// ends only LF ends a record: a CR is data, so a stray one cannot split a row in two (the CR
/// of CRLF stays at the end of the last field, where trimming and [`without_line_end`] take it
/// off). The csv crate's default, CR or LF or CRLF, serves CR-only files.
fn csv_reader<R: Read>(input: R, line_end: LineEnd) -> Reader<R> {
    let mut builder = ReaderBuilder::new();
    if line_end == LineEnd::Lf {
        builder.terminator(Terminator::Any(b'\n'));
    }
    builder
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(PARSER_BUFFER)
        .from_reader(input)
}

/// Physical line numbers. The csv crate's own `Position::line()` miscounts with CRLF line ends
/// and blank lines, and its byte offset points at the end of the previous record (before the
/// line break and any blank lines). So the bytes the parser reads are kept, from the start of the
/// current record on, and the line of a record is 1 + the line breaks before its first byte.
/// A line break is an LF, or in a CR-only file a CR.
struct LineCounter {
    /// Bytes read but not yet passed by a record start; `window[0]` is at offset `base`.
    window: VecDeque<u8>,
    base: u64,
    newlines_before_base: u64,
    /// Bytes a row may have beyond [`MAX_ROW_BYTES`] (a quarantine file's rows).
    allowance: usize,
    /// The byte lines are counted by.
    line_break: u8,
}

impl LineCounter {
    fn new(line_end: LineEnd) -> LineCounter {
        LineCounter {
            window: VecDeque::new(),
            base: 0,
            newlines_before_base: 0,
            allowance: 0,
            line_break: match line_end {
                LineEnd::Lf => b'\n',
                LineEnd::Cr => b'\r',
            },
        }
    }

    /// The line where the record being read starts.
    fn current_line(&mut self) -> u64 {
        self.line_at(self.base)
    }

    /// Pass the line breaks at the front of the window: blank lines between records, which the
    /// parser skips without returning a record. Called when the window outgrows the row limit,
    /// so that empty lines, which are not rows, never count toward it.
    fn skip_blank_lines(&mut self) {
        let line_break = self.line_break;
        // Up to the last line break of the leading run only: a CR after it (in an LF file) is
        // data of the row that follows, and counts toward its limit — a row of a million bare CRs
        // must not slip past as "blank lines".
        let k = self
            .window
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .enumerate()
            .filter(|(_, &b)| b == line_break)
            .last()
            .map_or(0, |(i, _)| i + 1);
        let passed = self.window.drain(..k).filter(|&b| b == line_break).count();
        self.newlines_before_base += passed as u64;
        self.base += k as u64;
    }

    /// The line of the record whose csv position is the byte offset `pos`.
    fn line_at(&mut self, pos: u64) -> u64 {
        let k = usize::try_from(pos.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.window.len());
        let (front, back) = self.window.as_slices();
        let in_front = k.min(front.len());
        let passed = count_byte(&front[..in_front], self.line_break)
            + count_byte(&back[..k - in_front], self.line_break);
        self.window.drain(..k);
        self.newlines_before_base += passed;
        self.base += k as u64;
        // Skip the rest of the previous line break and any blank lines.
        let leading = self
            .window
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .filter(|&&b| b == self.line_break)
            .count() as u64;
        1 + self.newlines_before_base + leading
    }
}

/// A plain loop over a slice, which the compiler vectorises.
fn count_byte(bytes: &[u8], byte: u8) -> u64 {
    bytes.iter().filter(|&&b| b == byte).count() as u64
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
                seen.skip_blank_lines();
            }
            if seen.window.len() > MAX_WINDOW_BYTES + seen.allowance {
                let line = seen.current_line();
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

/// The error [`CappedReader`] stops with: told apart from damage, whose advice differs.
#[derive(Debug)]
struct InputTooLarge {
    max: u64,
}

impl std::fmt::Display for InputTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the input holds more than --max-input-bytes {} of CSV once decompressed (a small \
             gzip that expands this far is a decompression bomb); if the file is genuine, raise \
             --max-input-bytes",
            crate::output::bytes(self.max)
        )
    }
}

impl std::error::Error for InputTooLarge {}

/// Whether a parser error is the input cap's, not damage.
fn is_too_large(e: &csv::Error) -> bool {
    match e.kind() {
        csv::ErrorKind::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<InputTooLarge>()),
        _ => false,
    }
}

impl Read for CappedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, InputTooLarge { max: self.max })
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

    /// A CSV reader over `input` set up as [`open`] sets it up, its line counter and line end.
    fn counted(input: &[u8]) -> (Reader<CountingReader>, Arc<Mutex<LineCounter>>, LineEnd) {
        let (inner, line_end) = sniff_line_end(Box::new(io::Cursor::new(input.to_vec()))).unwrap();
        let lines = Arc::new(Mutex::new(LineCounter::new(line_end)));
        let reader = CountingReader {
            inner,
            seen: Arc::clone(&lines),
        };
        (csv_reader(reader, line_end), lines, line_end)
    }

    /// The line and fields of each row (header included), as [`Input::stream`] sees them.
    fn rows_of(input: &str) -> Vec<(u64, Vec<String>)> {
        let (mut r, lines, line_end) = counted(input.as_bytes());
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while r.read_byte_record(&mut rec).unwrap() {
            if is_blank_line(&rec, line_end, raw_len(&rec, &r)) {
                continue;
            }
            let pos = rec.position().unwrap().byte();
            let line = lines.lock().unwrap().line_at(pos);
            lines.lock().unwrap().line_at(r.position().byte());
            let fields = without_line_end(&rec)
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((line, fields));
        }
        out
    }

    fn lines_of(input: &str) -> Vec<u64> {
        rows_of(input).into_iter().map(|(line, _)| line).collect()
    }

    #[test]
    fn a_row_longer_than_the_limit_is_a_read_error_naming_its_line() {
        let mut text = String::from("h1,h2\na,b\nc,\"never closed\n");
        while text.len() < MAX_WINDOW_BYTES + 1024 {
            text.push_str("x,y,z\n");
        }
        let (mut r, lines, _) = counted(text.as_bytes());
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

    /// Issue 24 finding 11: a CR alone inside a line of an LF or CRLF file is data (the row is
    /// then rejected whole as `lone_carriage_return`), and a CR-only file is numbered by CR.
    #[test]
    fn a_lone_cr_does_not_split_a_row_and_cr_files_count_lines_by_cr() {
        let rows = rows_of("h1,h2\nBobby\rJackson,30\nc,d\n");
        assert_eq!(
            rows,
            [
                (1, vec!["h1".into(), "h2".into()]),
                (2, vec!["Bobby\rJackson".into(), "30".into()]),
                (3, vec!["c".into(), "d".into()]),
            ]
        );
        let crlf = rows_of("h1,h2\r\nBobby\rJackson,30\r\n\r\n\"x\r\ny\",\"z\"\r\n");
        assert_eq!(
            crlf,
            [
                (1, vec!["h1".into(), "h2".into()]),
                (2, vec!["Bobby\rJackson".into(), "30".into()]),
                (4, vec!["x\r\ny".into(), "z".into()]),
            ]
        );
        let lone = |fields: &[&str]| has_lone_cr(&ByteRecord::from(fields.to_vec()));
        assert!(lone(&["Bobby\rJackson", "30\r"]));
        assert!(lone(&["Bobby\r", "30"]));
        assert!(lone(&["a", "30\r\r"]));
        assert!(!lone(&["Bobby Jackson", "30\r"]));
        assert!(!lone(&["x\r\ny", "30\r"]));
        assert!(!lone(&["x\r\ny", "30"]));
        assert_eq!(lines_of("h\ra\r\rb\rc"), [1, 2, 4, 5]);
        assert_eq!(lines_of("h\r\"x\ry\"\rb\r"), [1, 2, 4]);
    }

    /// Issue 24 finding 12: empty lines are not rows and never count toward the row limit.
    #[test]
    fn blank_lines_do_not_count_toward_the_row_limit() {
        for blank in ["\n", "\r\n"] {
            let text = format!("h1,h2\na,b\n{}c,d\n", blank.repeat(2_000_000));
            assert_eq!(lines_of(&text), [1, 2, 2_000_003], "{blank:?}");
        }
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
