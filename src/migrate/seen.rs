//! "Has this content been seen earlier in this run?" in fixed memory: a Bloom filter over the
//! rows' `_id`s.
//!
//! The answer "no" is certain, "maybe" is not. The writer uses it to keep the rows that are
//! certainly new apart from the suspects (true repeats, plus a small share of false positives):
//! a server that inserts an error-free batch in one transaction but falls back to one insert
//! per document when a batch holds a duplicate key (FerretDB does) then writes the bulk of the
//! data in large transactions. Correctness never depends on the filter: every row still goes to
//! the server, which decides with its unique `_id` index.
//!
//! The filter has a fixed size ([`BYTES`]), allocated once, so memory does not grow with the
//! input: at 10 million distinct rows about 0.2% of new rows are wrongly suspected, and the
//! share grows slowly beyond that, which costs time, never data.

/// Size of the bit array: 16 MiB, 2^27 bits.
pub const BYTES: usize = 16 << 20;
const WORDS: usize = BYTES / 8;
const BITS: u64 = (BYTES as u64) * 8;
/// Bits set per id: optimal for about 10 million ids in 2^27 bits.
const PROBES: u64 = 7;

pub struct Seen {
    words: Vec<u64>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen::new()
    }
}

impl Seen {
    pub fn new() -> Seen {
        Seen {
            words: vec![0; WORDS],
        }
    }

    /// Record `id`; true when it was (maybe) recorded before, false when certainly not.
    pub fn insert(&mut self, id: &str) -> bool {
        let (h1, h2) = hashes(id);
        let mut present = true;
        for i in 0..PROBES {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % BITS;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            if let Some(w) = self.words.get_mut(word) {
                present &= *w & mask != 0;
                *w |= mask;
            }
        }
        present
    }
}

/// Two independent 64-bit hashes of an id. Ids are hex digits of SHA-256, already uniformly
/// distributed, so their halves serve directly; anything else is hashed with FNV-1a.
fn hashes(id: &str) -> (u64, u64) {
    let bytes = id.as_bytes();
    match (parse_hex(bytes.get(..16)), parse_hex(bytes.get(16..32))) {
        (Some(a), Some(b)) => (a, b | 1),
        _ => {
            let a = fnv1a(bytes, 0xcbf2_9ce4_8422_2325);
            (a, fnv1a(bytes, a ^ 0x9e37_79b9_7f4a_7c15) | 1)
        }
    }
}

fn parse_hex(digits: Option<&[u8]>) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(digits?).ok()?, 16).ok()
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn id(n: u64) -> String {
        Sha256::digest(n.to_le_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn repeats_are_always_recognised() {
        let mut seen = Seen::new();
        assert!(!seen.insert(&id(1)));
        assert!(seen.insert(&id(1)));
        assert!(!seen.insert("not-hex"));
        assert!(seen.insert("not-hex"));
        assert!(!seen.insert(""));
        assert!(seen.insert(""));
    }

    #[test]
    fn false_positives_are_rare() {
        let mut seen = Seen::new();
        let n = 200_000;
        let wrong = (0..n).filter(|&i| seen.insert(&id(i))).count();
        // Expected far below 1 in 10,000 at this load.
        assert!(wrong < 20, "{wrong} false positives in {n}");
    }
}
