//! "No panics on any input": generated files damaged at random (seeded, so a failure is
//! reproducible from its case number) go through `hcctl migrate --dry-run`. Every run must end
//! with a documented exit code and one clear error line or a report whose counts add up, with
//! every rejected row in the quarantine; none may panic.

use std::io::Write;
use std::path::Path;
use std::process::Output;

use crate::util::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to eight damages of the kinds real exports show: stray quotes, commas and line breaks,
/// bytes that are not UTF-8, lost and repeated stretches, a cut-off end. Either the rows are
/// damaged and the header left alone, or (`header`) the damage lands in the header line.
fn mangle(clean: &[u8], rng: &mut Rng, header: bool) -> Vec<u8> {
    let header_end = clean.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
    let start = if header { 0 } else { header_end };
    let mut v = clean.to_vec();
    for _ in 0..1 + rng.below(8) {
        let span = if header { header_end } else { v.len() - start };
        let at = start + rng.below(span.min(v.len() - start));
        match rng.below(9) {
            0 => v[at] = rng.next() as u8,
            1 => v.insert(at, b'"'),
            2 => v.insert(at, b','),
            3 => v.insert(at, b'\n'),
            4 => v.insert(at, b'\r'),
            5 => v.splice(at..at, [0xff, 0xfe, 0xc3]).for_each(drop),
            6 => {
                let end = (at + rng.below(200)).min(v.len());
                v.drain(at..end);
            }
            7 => {
                let end = (at + rng.below(300)).min(v.len());
                let copy = v[at..end].to_vec();
                v.splice(at..at, copy).for_each(drop);
            }
            _ => v.truncate(at.max(start)),
        }
        if v.len() <= start {
            break;
        }
    }
    v
}

/// The records after the header as the README's CSV contract counts them: RFC 4180 where LF
/// (or CRLF) ends a line and a CR alone is data, or, when the first 64 KiB hold no LF, CR ends
/// the lines; empty lines are not records.
fn records_after_header(data: &[u8]) -> u64 {
    let start = &data[..data.len().min(64 * 1024)];
    let cr_only = !start.contains(&b'\n') && start.contains(&b'\r');
    let mut builder = csv::ReaderBuilder::new();
    if !cr_only {
        builder.terminator(csv::Terminator::Any(b'\n'));
    }
    let mut r = builder.flexible(true).has_headers(true).from_reader(data);
    let mut rec = csv::ByteRecord::new();
    let mut n = 0;
    while r.read_byte_record(&mut rec).unwrap() {
        // The blank line of a CRLF file: its CR, alone.
        if !(rec.len() == 1 && &rec[0] == b"\r") {
            n += 1;
        }
    }
    n
}

fn data_rows(quarantine: &Path) -> u64 {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(quarantine)
        .unwrap();
    let mut n = 0;
    for rec in r.byte_records() {
        rec.unwrap();
        n += 1;
    }
    n
}

/// `hcctl generate` output, in memory.
fn generate(rows: u32, seed: u32) -> Vec<u8> {
    let rows = rows.to_string();
    let seed = seed.to_string();
    let out = hcctl_in(
        Path::new("."),
        &[
            "generate", "--rows", &rows, "--seed", &seed, "--output", "-",
        ],
    )
    .output()
    .unwrap();
    assert_success(&out);
    out.stdout
}

fn assert_no_panic(case: &str, out: &Output) {
    let err = stderr(out);
    assert_ne!(
        out.status.code(),
        Some(101),
        "{case}: hcctl panicked:\n{err}"
    );
    assert!(!err.contains("panicked"), "{case}: hcctl panicked:\n{err}");
}

/// A refused run: exit `code`, and one line saying why.
fn assert_refused(case: &str, out: &Output, codes: &[i32]) {
    let code = out.status.code().unwrap_or(-1);
    assert!(
        codes.contains(&code),
        "{case}: exit {code}, expected one of {codes:?}\n{}",
        stderr(out)
    );
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{case}: one clear error line:\n{err}");
}

#[test]
fn damaged_files_never_panic_and_every_row_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let clean = generate(400, 7);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut completed, mut refused, mut rejected_total) = (0, 0, 0);
    for case in 0..160 {
        let header = case % 10 == 9;
        let data = mangle(&clean, &mut rng, header);
        let name = format!("case{case}");
        let input = dir.path().join(format!("{name}.csv"));
        std::fs::write(&input, &data).unwrap();
        let report = dir.path().join(format!("{name}.json"));
        let quarantine = dir.path().join(format!("{name}.q.csv"));
        let out = hcctl_in(
            dir.path(),
            &[
                "migrate",
                input.to_str().unwrap(),
                "--dry-run",
                "--report",
                report.to_str().unwrap(),
                "--quarantine",
                quarantine.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
        assert_no_panic(&name, &out);
        if !out.status.success() {
            // Only a damaged header (or nothing left of it) may stop a run, before anything.
            assert!(header, "{name}: a body-only damage stopped the run");
            assert_refused(&name, &out, &[2]);
            refused += 1;
            continue;
        }
        let r = read_json(&report);
        let read = n(&r, "rows_read");
        assert_eq!(read, records_after_header(&data), "{name}: rows_read");
        assert_eq!(
            read,
            n(&r, "inserted") + n(&r, "duplicates") + n(&r, "rejected"),
            "{name}: counts add up"
        );
        let by_reason: u64 = r["rejects_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(by_reason, n(&r, "rejected"), "{name}: rejects_by_reason");
        assert_eq!(
            data_rows(&quarantine),
            n(&r, "rejected"),
            "{name}: every rejected row is in the quarantine"
        );
        completed += 1;
        rejected_total += n(&r, "rejected");
    }
    eprintln!("{completed} runs completed ({rejected_total} rows rejected), {refused} refused");
    // The damage is real: runs completed with rejects, and damaged headers were refused.
    assert!(completed >= 140, "{completed} runs completed");
    assert!(refused >= 5, "{refused} damaged headers refused");
    assert!(
        rejected_total > 100,
        "{rejected_total} rows rejected in all"
    );
}

#[test]
fn a_damaged_gzip_file_fails_with_one_line_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let generated = generate(2000, 3);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&generated).unwrap();
    let gz = gz.finish().unwrap();
    let mut rng = Rng(42);
    for case in 0..24 {
        let mut data = gz.clone();
        if case % 2 == 0 {
            // cut off: the stream ends inside a deflate block
            data.truncate(20 + rng.below(data.len() - 40));
        } else {
            for _ in 0..1 + rng.below(4) {
                let at = 20 + rng.below(data.len() - 40);
                data[at] ^= 1 + rng.next() as u8 % 255;
            }
        }
        let name = format!("gz{case}");
        let input = dir.path().join(format!("{name}.csv.gz"));
        std::fs::write(&input, &data).unwrap();
        let out = hcctl_in(
            dir.path(),
            &["migrate", input.to_str().unwrap(), "--dry-run"],
        )
        .output()
        .unwrap();
        assert_no_panic(&name, &out);
        // Every damage lands in the deflate data (after the 10-byte header, before the 8-byte
        // trailer), where the member's CRC-32 or the deflate format catches it: an input error
        // (exit 2, migrate reads everything before it writes), never a silent partial read.
        assert_refused(&name, &out, &[2]);
        assert!(
            stderr(&out).contains(input.to_str().unwrap()),
            "{name}: names the file:\n{}",
            stderr(&out)
        );
    }
}
