//! `--shard K/N`: one of N runs over the same input, each writing its part of it. Every shard
//! reads and cleans the whole input; shard K keeps the valid rows whose `_id` (a SHA-256 of the
//! cleaned content) falls in bucket K−1 of N, so all copies of one admission meet in one shard and
//! are counted as duplicates there exactly as in one run; and the rejected rows whose line number
//! modulo N is K−1. Each row is therefore counted by exactly one shard, and the N reports add up
//! to the report of one unsharded run.

use std::fmt;
use std::str::FromStr;

/// Shard `index + 1` of `count`; `1/1` is the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// The most shards of one input.
pub const MAX_SHARDS: u32 = 256;

impl Default for Shard {
    fn default() -> Shard {
        Shard::ALL
    }
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `k` (1-based) of `n`.
    pub fn new(k: u32, n: u32) -> Result<Shard, String> {
        if n == 0 || n > MAX_SHARDS {
            return Err(format!(
                "the number of shards must be 1 to {MAX_SHARDS}, not {n}"
            ));
        }
        if k == 0 || k > n {
            return Err(format!("shard {k} of {n}: K counts from 1 to N"));
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }

    pub fn is_all(&self) -> bool {
        self.count == 1
    }

    /// K, from 1.
    pub fn number(&self) -> u32 {
        self.index + 1
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether a valid row with this `_id` is this shard's. The `_id` is hexadecimal SHA-256:
    /// its first 16 digits are an evenly spread number.
    pub fn owns_id(&self, id: &str) -> bool {
        if self.count == 1 {
            return true;
        }
        let head = id.get(..16).unwrap_or(id);
        let value = u64::from_str_radix(head, 16).unwrap_or_else(|_| {
            // Never for an id hcctl made; any stable spread will do.
            id.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        });
        value % u64::from(self.count) == u64::from(self.index)
    }

    /// Whether a rejected row starting on this line is this shard's.
    pub fn owns_line(&self, line: u64) -> bool {
        line % u64::from(self.count) == u64::from(self.index)
    }

    /// What the default output names of a shard carry: `.shard-2-of-3` (nothing for 1/1).
    pub fn suffix(&self) -> String {
        if self.is_all() {
            String::new()
        } else {
            format!(".shard-{}-of-{}", self.number(), self.count)
        }
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("\"{s}\": a shard is K/N, e.g. 2/3"))?;
        let number = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("\"{s}\": a shard is K/N with whole numbers, e.g. 2/3"))
        };
        Shard::new(number(k)?, number(n)?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number(), self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!((s.number(), s.count(), s.to_string()), (2, 3, "2/3".into()));
        assert_eq!(s.suffix(), ".shard-2-of-3");
        assert_eq!(Shard::ALL.suffix(), "");
        for (bad, says) in [
            ("0/3", "counts from 1"),
            ("4/3", "counts from 1"),
            ("1/0", "must be 1 to 256"),
            ("1/257", "must be 1 to 256"),
            ("2", "a shard is K/N"),
            ("a/3", "whole numbers"),
        ] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn every_row_has_exactly_one_shard() {
        let shards: Vec<Shard> = (1..=3).map(|k| Shard::new(k, 3).unwrap()).collect();
        let mut per_shard = [0u32; 3];
        for i in 0..3000u64 {
            let id = format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            );
            let owners: Vec<usize> = (0..3).filter(|&k| shards[k].owns_id(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            per_shard[owners[0]] += 1;
            let line_owners = shards.iter().filter(|s| s.owns_line(i)).count();
            assert_eq!(line_owners, 1);
        }
        // Evenly spread: each shard within 20% of a third.
        for n in per_shard {
            assert!((800..=1200).contains(&n), "{per_shard:?}");
        }
        assert!(Shard::ALL.owns_id("anything") && Shard::ALL.owns_line(7));
    }
}
