//! Keeping "the first copy of a row is the one stored" true while several batches are in flight.
//!
//! Two copies of the same content can only race when their batches are written concurrently.
//! So the reader (1) drops a row whose `_id` already appears in a batch that may still be in
//! flight — it is a duplicate of an earlier row, whatever the server holds — and (2) sends
//! batch `j` only once every batch up to `j - span` has been written. A later copy therefore
//! always reaches the server after the earlier copy is stored, and re-running an interrupted
//! migration ends in exactly the state of one clean run. Memory is bounded by `span` batches of
//! ids.
//!
//! The rows that pass are split into the certainly new ones and the suspects (see [`Seen`]), so
//! that the writer can insert them separately.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

use super::clean::Cleaned;
use super::seen::Seen;

/// One batch on its way to the writers.
pub struct Batch {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Rows whose content certainly did not occur earlier in this run.
    pub fresh: Vec<Cleaned>,
    /// Rows whose content may have occurred earlier in this run (older than the window).
    pub suspects: Vec<Cleaned>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.suspects.is_empty()
    }
}

/// The ids of the most recent `span` batches, and a filter over all earlier ones.
pub struct Window {
    span: usize,
    recent: VecDeque<Vec<String>>,
    /// id → number of recent batches holding it (always 1, since duplicates are dropped).
    ids: HashMap<String, u32>,
    seen: Seen,
    next_seq: u64,
}

impl Window {
    pub fn new(span: usize) -> Window {
        Window {
            span: span.max(1),
            recent: VecDeque::new(),
            ids: HashMap::new(),
            seen: Seen::new(),
            next_seq: 0,
        }
    }

    pub fn span(&self) -> u64 {
        self.span as u64
    }

    /// Drop the rows that repeat a row of a recent batch or an earlier row of this batch, then
    /// remember this batch. Returns the batch to write and how many rows were dropped as
    /// duplicates.
    pub fn admit(&mut self, rows: Vec<Cleaned>) -> (Batch, u64) {
        let before = rows.len();
        let mut kept_ids = Vec::with_capacity(rows.len());
        let (mut fresh, mut suspects) = (Vec::with_capacity(rows.len()), Vec::new());
        for c in rows {
            if self.ids.contains_key(&c.id) {
                continue;
            }
            self.ids.insert(c.id.clone(), 1);
            kept_ids.push(c.id.clone());
            if self.seen.insert(&c.id) {
                suspects.push(c);
            } else {
                fresh.push(c);
            }
        }
        let dropped = (before - fresh.len() - suspects.len()) as u64;
        // In `_id` order, consecutive inserts touch neighbouring pages of the server's `_id`
        // index instead of random ones: far fewer pages written per transaction. Which copy of
        // a content is stored does not depend on it (repeats were dropped above).
        fresh.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        self.recent.push_back(kept_ids);
        while self.recent.len() > self.span {
            if let Some(old) = self.recent.pop_front() {
                for id in old {
                    self.ids.remove(&id);
                }
            }
        }
        self.next_seq += 1;
        let batch = Batch {
            seq: self.next_seq,
            fresh,
            suspects,
        };
        (batch, dropped)
    }
}

/// Which batches have been written: "everything up to N is done", shared by the writers (which
/// report) and the reader (which waits).
#[derive(Default)]
pub struct Completion {
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    done_through: u64,
    done_later: BTreeSet<u64>,
    aborted: bool,
}

impl Completion {
    /// Batch `seq` is written.
    pub fn done(&self, seq: u64) {
        if let Ok(mut p) = self.state.lock() {
            p.done_later.insert(seq);
            loop {
                let next = p.done_through + 1;
                if !p.done_later.remove(&next) {
                    break;
                }
                p.done_through = next;
            }
        }
        self.changed.notify_all();
    }

    /// The writers stopped: wake the reader so that it stops too.
    pub fn abort(&self) {
        if let Ok(mut p) = self.state.lock() {
            p.aborted = true;
        }
        self.changed.notify_all();
    }

    /// Block until every batch up to `seq` is written. False if the writers stopped.
    pub fn wait_through(&self, seq: u64) -> bool {
        let Ok(mut p) = self.state.lock() else {
            return false;
        };
        while p.done_through < seq && !p.aborted {
            p = match self.changed.wait(p) {
                Ok(p) => p,
                Err(_) => return false,
            };
        }
        !p.aborted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::RawDocumentBuf;

    fn rows(ids: &[&str]) -> Vec<Cleaned> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Cleaned {
                id: id.to_string(),
                doc: RawDocumentBuf::new(),
                line: i as u64 + 2,
                billing_nulled: false,
            })
            .collect()
    }

    fn ids(rows: &[Cleaned]) -> Vec<&str> {
        rows.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn drops_repeats_within_the_window_only() {
        let mut w = Window::new(2);
        let (b1, dropped) = w.admit(rows(&["a", "b", "a"]));
        assert_eq!((b1.seq, dropped), (1, 1));
        assert_eq!(ids(&b1.fresh), ["a", "b"]);
        assert!(b1.suspects.is_empty());
        let (b2, dropped) = w.admit(rows(&["b", "c"]));
        assert_eq!((b2.seq, dropped), (2, 1));
        let (b3, dropped) = w.admit(rows(&["d"]));
        assert_eq!((b3.seq, dropped), (3, 0));
        // Batch 1 left the window: "a" goes to the server, which reports it as a duplicate,
        // and it is sent apart from the rows that are certainly new.
        let (b4, dropped) = w.admit(rows(&["a", "c", "e"]));
        assert_eq!((b4.seq, dropped), (4, 1));
        assert_eq!(ids(&b4.suspects), ["a"]);
        assert_eq!(ids(&b4.fresh), ["e"]);
        let (b5, _) = w.admit(Vec::new());
        assert!(b5.is_empty());
    }

    #[test]
    fn completion_advances_only_over_contiguous_batches() {
        let c = Completion::default();
        assert!(c.wait_through(0));
        c.done(2);
        c.done(3);
        assert_eq!(c.state.lock().unwrap().done_through, 0);
        c.done(1);
        assert_eq!(c.state.lock().unwrap().done_through, 3);
        assert!(c.wait_through(3));
        c.abort();
        assert!(!c.wait_through(10));
    }
}
