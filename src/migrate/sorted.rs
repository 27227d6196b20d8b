//! An external sort of cleaned rows by (`_id`, line), whatever the input size.
//!
//! `migrate` loads in this order (copies of a row become neighbours, so the first is kept and
//! the others are counted without a round trip, and the server's `_id` index grows at its right
//! edge instead of at random pages); `verify` compares a CSV with a collection in one ordered
//! pass over each.
//!
//! Rows are collected in memory up to a byte budget, sorted, and spilled as a run to a private
//! temporary file (mode 0600: the runs hold patient data; the file is unlinked as soon as it is
//! created, so nothing stays behind, even after a crash). Every [`FAN_IN`] runs of one size are
//! merged into one larger run, so the number of open runs, and with them memory and file
//! handles, grows only with the logarithm of the input. The runs are then merged lazily.
//!
//! Copies of one `_id` are folded into their first (lowest-line) row wherever they meet — in
//! memory before a spill, in every merge — and counted in its [`Entry::copies`]: the disk a run
//! takes grows with the distinct rows, not with the input (a small gzip of millions of identical
//! rows spills nothing), and every row is still counted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use indicatif::ProgressBar;

use super::clean::{Cleaned, Reason};
use super::read::{Input, Tally};
use crate::error::Error;

/// Rows held in memory before a sorted run is spilled to a temporary file.
pub const BUDGET_BYTES: usize = 16 * 1024 * 1024;

/// Runs of one level merged together into one run of the next level.
pub const FAN_IN: usize = 64;

/// `--temp-dir` must be an existing directory: a usage error (exit 2) before anything happens.
pub fn check_temp_dir(dir: Option<&std::path::Path>) -> Result<(), Error> {
    match dir {
        Some(d) if !d.is_dir() => Err(Error::usage(format!(
            "--temp-dir {}: not an existing directory; create it or choose another one",
            d.display()
        ))),
        _ => Ok(()),
    }
}

/// Read, clean and sort a whole input: phase one of `migrate` and `verify`. Rejected rows go to
/// `on_reject`; the valid ones come back in (`_id`, line) order.
pub fn sort_input(
    input: Input,
    dir: Option<PathBuf>,
    progress: &ProgressBar,
    on_reject: impl FnMut(u64, Reason, &csv::ByteRecord) -> Result<(), Error>,
) -> Result<(Tally, Merge), Error> {
    let spill_err = |e: io::Error| {
        let place = dir
            .as_ref()
            .map_or("the temporary directory (TMPDIR)".to_string(), |d| {
                d.display().to_string()
            });
        Error::failed(format!(
            "sorting rows in a temporary file in {place}: {e}; free some space there or choose \
             another directory with --temp-dir"
        ))
    };
    let mut sorter = Sorter::new(BUDGET_BYTES, dir.clone());
    let input_name = input.display.clone();
    let tally = input.stream(4096, progress, on_reject, |batch| {
        for row in batch {
            sorter.push(row).map_err(spill_err)?;
        }
        Ok(true)
    })?;
    tracing::info!(
        runs = sorter.runs(),
        spilled_bytes = sorter.spilled_bytes(),
        "sorted {input_name}"
    );
    let merge = sorter.finish().map_err(spill_err)?;
    Ok((tally, merge))
}

/// One row, as the merge yields it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub id: String,
    pub line: u64,
    /// The expected document, raw BSON.
    pub doc: Vec<u8>,
    /// Later rows with the same `_id` folded into this one (the duplicates it stands for).
    pub copies: u64,
}

impl Entry {
    /// Take `later` (the same `_id`, a later line) in as copies of this row.
    fn absorb(&mut self, later: &Entry) {
        self.copies += 1 + later.copies;
    }
}

/// Fold neighbours with the same `_id` of a sorted list into the first (lowest line) of them;
/// returns the [`held_bytes`] of the entries dropped.
fn fold_sorted(entries: &mut Vec<Entry>) -> usize {
    let mut freed = 0;
    entries.dedup_by(|later, first| {
        let same = later.id == first.id;
        if same {
            first.absorb(later);
            freed += held_bytes(later);
        }
        same
    });
    freed
}

/// Heap bytes an entry holds (capacity, not length), plus the entry itself.
fn held_bytes(e: &Entry) -> usize {
    e.doc.capacity() + e.id.capacity() + 64
}

/// Collects rows, spilling sorted runs to temporary files.
pub struct Sorter {
    budget: usize,
    used: usize,
    chunk: Vec<Entry>,
    /// Spilled runs with their level (0: one budget's worth; n + 1: FAN_IN runs of level n).
    runs: Vec<(u32, File)>,
    /// Where the runs go; `None`: the system's temporary directory (`TMPDIR`).
    dir: Option<PathBuf>,
    spilled: usize,
    /// Bytes written to run files so far (level-0 runs and merges).
    spilled_bytes: u64,
}

impl Sorter {
    pub fn new(budget_bytes: usize, dir: Option<PathBuf>) -> Sorter {
        Sorter {
            budget: budget_bytes.max(1),
            used: 0,
            chunk: Vec::new(),
            runs: Vec::new(),
            dir,
            spilled: 0,
            spilled_bytes: 0,
        }
    }

    pub fn push(&mut self, row: Cleaned) -> io::Result<()> {
        let entry = Entry {
            id: row.id,
            line: row.line,
            doc: row.doc.into_bytes(),
            copies: 0,
        };
        self.used += held_bytes(&entry);
        self.chunk.push(entry);
        if self.used >= self.budget {
            self.compact();
            // Copies folded away half the budget or more: keep collecting instead of writing a
            // run (each pass at least halves what it sorts, so the sorting stays n log n).
            if self.used.saturating_mul(2) >= self.budget {
                self.write_run()?;
            }
        }
        Ok(())
    }

    /// Sort the rows in memory and fold the copies of each `_id` into its first row.
    fn compact(&mut self) {
        self.chunk.sort_unstable();
        let freed = fold_sorted(&mut self.chunk);
        self.used = self.used.saturating_sub(freed);
    }

    fn spill(&mut self) -> io::Result<()> {
        self.compact();
        self.write_run()
    }

    /// Write the (compacted) rows in memory as a run of level 0.
    fn write_run(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let mut file = self.temp_file()?;
        {
            let mut w = BufWriter::with_capacity(256 * 1024, &mut file);
            for e in self.chunk.drain(..) {
                self.spilled_bytes += write_entry(&mut w, &e)?;
            }
            w.flush()?;
        }
        file.seek(SeekFrom::Start(0))?;
        self.runs.push((0, file));
        self.spilled += 1;
        self.used = 0;
        // Keep the number of runs logarithmic: merge the last FAN_IN runs when they are all of
        // one level (they are contiguous at the end, since runs only ever grow by one level).
        while self.runs.len() >= FAN_IN {
            let tail = self.runs.len() - FAN_IN;
            let level = self.runs[tail].0;
            if self.runs[tail..].iter().any(|(l, _)| *l != level) {
                break;
            }
            let group: Vec<File> = self.runs.drain(tail..).map(|(_, f)| f).collect();
            let mut merged = self.temp_file()?;
            {
                let mut w = BufWriter::with_capacity(256 * 1024, &mut merged);
                // The merge folds copies met across the runs.
                let mut m = Merge::of_runs(group)?;
                while let Some(e) = m.next_entry()? {
                    self.spilled_bytes += write_entry(&mut w, &e)?;
                }
                w.flush()?;
            }
            merged.seek(SeekFrom::Start(0))?;
            self.runs.push((level + 1, merged));
        }
        Ok(())
    }

    /// A private file (0600), unlinked at once.
    fn temp_file(&self) -> io::Result<File> {
        match &self.dir {
            Some(dir) => tempfile::tempfile_in(dir),
            None => tempfile::tempfile(),
        }
    }

    /// Number of runs spilled so far (for tests and logs).
    pub fn runs(&self) -> usize {
        self.spilled
    }

    /// Bytes written to temporary files so far (for tests and logs).
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// Number of runs currently open.
    pub fn open_runs(&self) -> usize {
        self.runs.len()
    }

    /// All rows in (`_id`, line) order, one entry per `_id` with its copies counted.
    pub fn finish(mut self) -> io::Result<Merge> {
        if self.runs.is_empty() {
            // Everything fits in memory: no file at all.
            self.compact();
            self.chunk.reverse();
            return Ok(Merge::Memory(self.chunk));
        }
        self.spill()?;
        Merge::of_runs(self.runs.into_iter().map(|(_, f)| f).collect())
    }
}

/// A sorted stream of entries.
pub enum Merge {
    /// Sorted in reverse, popped from the end.
    Memory(Vec<Entry>),
    Runs {
        readers: Vec<BufReader<File>>,
        heap: BinaryHeap<Reverse<(Entry, usize)>>,
    },
}

impl Merge {
    /// Merge sorted run files, each positioned at its start.
    fn of_runs(runs: Vec<File>) -> io::Result<Merge> {
        let mut readers: Vec<BufReader<File>> = runs
            .into_iter()
            .map(|f| BufReader::with_capacity(64 * 1024, f))
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(e) = read_entry(r)? {
                heap.push(Reverse((e, i)));
            }
        }
        Ok(Merge::Runs { readers, heap })
    }

    /// The next `_id` in order: its first row, with the copies of it from every run folded in.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        match self {
            Merge::Memory(v) => Ok(v.pop()),
            Merge::Runs { readers, heap } => {
                let Some(mut entry) = Self::pop(readers, heap)? else {
                    return Ok(None);
                };
                // Runs hold distinct ids each, but one id may be in several of them.
                while heap
                    .peek()
                    .is_some_and(|Reverse((next, _))| next.id == entry.id)
                {
                    if let Some(copy) = Self::pop(readers, heap)? {
                        entry.absorb(&copy);
                    }
                }
                Ok(Some(entry))
            }
        }
    }

    /// The smallest entry of the heap, refilled from the run it came from.
    fn pop(
        readers: &mut [BufReader<File>],
        heap: &mut BinaryHeap<Reverse<(Entry, usize)>>,
    ) -> io::Result<Option<Entry>> {
        let Some(Reverse((entry, i))) = heap.pop() else {
            return Ok(None);
        };
        if let Some(r) = readers.get_mut(i) {
            if let Some(next) = read_entry(r)? {
                heap.push(Reverse((next, i)));
            }
        }
        Ok(Some(entry))
    }
}

/// Write one entry; returns the bytes written.
fn write_entry(w: &mut impl Write, e: &Entry) -> io::Result<u64> {
    let id = e.id.as_bytes();
    w.write_all(&(id.len() as u32).to_le_bytes())?;
    w.write_all(id)?;
    w.write_all(&e.line.to_le_bytes())?;
    w.write_all(&e.copies.to_le_bytes())?;
    w.write_all(&(e.doc.len() as u32).to_le_bytes())?;
    w.write_all(&e.doc)?;
    Ok((4 + id.len() + 8 + 8 + 4 + e.doc.len()) as u64)
}

fn read_entry(r: &mut impl Read) -> io::Result<Option<Entry>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut id = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut id)?;
    let mut line = [0u8; 8];
    r.read_exact(&mut line)?;
    let mut copies = [0u8; 8];
    r.read_exact(&mut copies)?;
    r.read_exact(&mut len)?;
    let mut doc = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut doc)?;
    let id = String::from_utf8(id).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some(Entry {
        id,
        line: u64::from_le_bytes(line),
        doc,
        copies: u64::from_le_bytes(copies),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::RawDocumentBuf;

    fn row(id: &str, line: u64) -> Cleaned {
        let mut doc = RawDocumentBuf::new();
        doc.append("_id", id);
        Cleaned {
            id: id.into(),
            doc,
            line,
            billing_nulled: false,
        }
    }

    /// (id, first line, copies) of every entry, in order.
    fn drain(mut m: Merge) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        while let Some(e) = m.next_entry().unwrap() {
            out.push((e.id, e.line, e.copies));
        }
        out
    }

    /// What the merge must yield for these (id, line) rows: sorted, each id once with its lowest
    /// line and the number of its other rows.
    fn folded(mut rows: Vec<(String, u64)>) -> Vec<(String, u64, u64)> {
        rows.sort();
        let mut out: Vec<(String, u64, u64)> = Vec::new();
        for (id, line) in rows {
            match out.last_mut() {
                Some(last) if last.0 == id => last.2 += 1,
                _ => out.push((id, line, 0)),
            }
        }
        out
    }

    #[test]
    fn merges_spilled_runs_in_id_then_line_order() {
        let mut s = Sorter::new(200, None);
        let ids = ["d", "a", "c", "a", "b", "e", "c", "f", "a"];
        for (i, id) in ids.iter().enumerate() {
            s.push(row(id, i as u64 + 2)).unwrap();
        }
        assert!(s.runs() >= 2, "small budget must spill");
        let got = drain(s.finish().unwrap());
        let want = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i as u64 + 2))
            .collect();
        assert_eq!(got, folded(want));
    }

    #[test]
    fn many_runs_are_merged_level_by_level() {
        // A budget of one row: every row is a run. 32 runs of level 0 become one of level 1,
        // and 32 of those one of level 2: few files stay open, the order stays exact.
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sorter::new(1, Some(dir.path().to_path_buf()));
        let n = FAN_IN * FAN_IN + 7;
        let mut want = Vec::new();
        for i in 0..n {
            let id = format!("{:08x}", (i as u64).wrapping_mul(2_654_435_761) % 100_000);
            want.push((id.clone(), i as u64 + 2));
            s.push(row(&id, i as u64 + 2)).unwrap();
        }
        assert_eq!(s.runs(), n);
        assert!(s.open_runs() < 2 * FAN_IN, "{} runs open", s.open_runs());
        // Unlinked at creation: nothing is left in the directory, even while the runs live.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(drain(s.finish().unwrap()), folded(want));
    }

    /// Issue 24, finding 15: 5 million identical rows (a 2.79 MB gzip) spilled 2.6 GB of runs.
    /// Copies are folded before a run is written and in every merge: identical rows write
    /// nothing, and rows repeated across runs are written once per run at most, with the
    /// first line kept and every copy counted, as the load's duplicates.
    #[test]
    fn duplicates_are_dropped_when_a_run_is_spilled_and_counted() {
        let one_row = held_bytes(&Entry {
            id: "x".repeat(32),
            line: 0,
            doc: row(&"x".repeat(32), 0).doc.into_bytes(),
            copies: 0,
        });
        // Identical rows: a budget of ten rows, a hundred thousand rows, no run at all.
        let mut s = Sorter::new(10 * one_row, None);
        let id = "7".repeat(32);
        for line in 2..100_002 {
            s.push(row(&id, line)).unwrap();
        }
        assert_eq!((s.runs(), s.spilled_bytes()), (0, 0));
        assert_eq!(drain(s.finish().unwrap()), [(id.clone(), 2, 99_999)]);

        // Groups of three rows a, b, b (a third are copies: not enough to skip a spill), through
        // runs of about ninety rows: the runs hold the 2,000 distinct rows (plus a copy where a
        // group straddles two runs), not the 3,000 pushed, and the merge folds across runs.
        let mut entry_bytes = Vec::new();
        let probe = row(&"0".repeat(32), 0);
        let written = write_entry(
            &mut entry_bytes,
            &Entry {
                id: probe.id,
                line: 0,
                doc: probe.doc.into_bytes(),
                copies: 0,
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sorter::new(90 * one_row, Some(dir.path().to_path_buf()));
        let mut rows = Vec::new();
        for k in 0..3_000u64 {
            let id = format!("{:032}", k - u64::from(k % 3 == 2));
            rows.push((id.clone(), k + 2));
            s.push(row(&id, k + 2)).unwrap();
        }
        let runs = s.runs() as u64;
        assert!((2..FAN_IN as u64).contains(&runs), "{runs} runs");
        assert!(
            s.spilled_bytes() <= (2_000 + runs) * written,
            "{} bytes spilled for {runs} runs",
            s.spilled_bytes()
        );
        let got = drain(s.finish().unwrap());
        assert_eq!(got.len(), 2_000);
        assert_eq!(got.iter().map(|e| e.2 + 1).sum::<u64>(), 3_000);
        assert_eq!(got, folded(rows));
    }

    #[test]
    fn small_inputs_stay_in_memory() {
        let mut s = Sorter::new(1 << 20, None);
        s.push(row("b", 3)).unwrap();
        s.push(row("a", 2)).unwrap();
        assert_eq!(s.runs(), 0);
        assert_eq!(
            drain(s.finish().unwrap()),
            vec![("a".into(), 2, 0), ("b".into(), 3, 0)]
        );
    }
}
