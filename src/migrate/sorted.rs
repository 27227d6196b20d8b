//! An external sort of cleaned rows by `_id`, so that `verify` can compare a CSV with a
//! collection in one ordered pass over each, whatever their size.
//!
//! Rows are collected in memory up to a byte budget, sorted, and spilled as a run to a private
//! temporary file (mode 0600: the runs hold patient data; they are deleted when dropped). The
//! runs are then merged lazily. Memory is bounded by the budget plus one row per run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::clean::Cleaned;

/// One row, as the merge yields it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub id: String,
    pub line: u64,
    /// The expected document, raw BSON.
    pub doc: Vec<u8>,
}

/// Collects rows, spilling sorted runs to temporary files.
pub struct Sorter {
    budget: usize,
    used: usize,
    chunk: Vec<Entry>,
    runs: Vec<File>,
}

impl Sorter {
    pub fn new(budget_bytes: usize) -> Sorter {
        Sorter {
            budget: budget_bytes.max(1),
            used: 0,
            chunk: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Cleaned) -> io::Result<()> {
        let entry = Entry {
            id: row.id,
            line: row.line,
            doc: row.doc.into_bytes(),
        };
        self.used += entry.doc.len() + entry.id.len() + 64;
        self.chunk.push(entry);
        if self.used >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.chunk.sort_unstable();
        // tempfile() creates the file 0600 and unlinks it at once: nothing stays behind, even
        // after a crash.
        let mut file = tempfile::tempfile()?;
        {
            let mut w = BufWriter::with_capacity(256 * 1024, &mut file);
            for e in self.chunk.drain(..) {
                write_entry(&mut w, &e)?;
            }
            w.flush()?;
        }
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.used = 0;
        Ok(())
    }

    /// Number of runs spilled so far (for tests and logs).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// All rows in (`_id`, line) order.
    pub fn finish(mut self) -> io::Result<Merge> {
        if self.runs.is_empty() {
            // Everything fits in memory: no file at all.
            self.chunk.sort_unstable();
            self.chunk.reverse();
            return Ok(Merge::Memory(self.chunk));
        }
        self.spill()?;
        let mut readers: Vec<BufReader<File>> = self
            .runs
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
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        match self {
            Merge::Memory(v) => Ok(v.pop()),
            Merge::Runs { readers, heap } => {
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
    }
}

fn write_entry(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    let id = e.id.as_bytes();
    w.write_all(&(id.len() as u32).to_le_bytes())?;
    w.write_all(id)?;
    w.write_all(&e.line.to_le_bytes())?;
    w.write_all(&(e.doc.len() as u32).to_le_bytes())?;
    w.write_all(&e.doc)
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
    r.read_exact(&mut len)?;
    let mut doc = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut doc)?;
    let id = String::from_utf8(id).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some(Entry {
        id,
        line: u64::from_le_bytes(line),
        doc,
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

    fn drain(mut m: Merge) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        while let Some(e) = m.next_entry().unwrap() {
            out.push((e.id, e.line));
        }
        out
    }

    #[test]
    fn merges_spilled_runs_in_id_then_line_order() {
        let mut s = Sorter::new(200);
        let ids = ["d", "a", "c", "a", "b", "e", "c", "f", "a"];
        for (i, id) in ids.iter().enumerate() {
            s.push(row(id, i as u64 + 2)).unwrap();
        }
        assert!(s.runs() >= 2, "small budget must spill");
        let got = drain(s.finish().unwrap());
        let mut want: Vec<(String, u64)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i as u64 + 2))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn small_inputs_stay_in_memory() {
        let mut s = Sorter::new(1 << 20);
        s.push(row("b", 3)).unwrap();
        s.push(row("a", 2)).unwrap();
        assert_eq!(s.runs(), 0);
        assert_eq!(
            drain(s.finish().unwrap()),
            vec![("a".into(), 2), ("b".into(), 3)]
        );
    }
}
