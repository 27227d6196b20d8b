//! `hcctl generate`: a deterministic synthetic admissions CSV with the real export's columns,
//! value domains and quirks (random letter casing in names, name prefixes and suffixes, ~1%
//! exact duplicate rows, a few negative billing amounts at full float precision, hospital names
//! with commas that need quoting, or that end with a comma or " and", or start with "and ").
//!
//! The same `--rows` and `--seed` always give the same bytes: SplitMix64 is spelled out here
//! rather than taken from a crate whose stream could change between versions.

use std::collections::VecDeque;
use std::io::{self, Write};

use csv::{ByteRecord, Terminator, WriterBuilder};

use super::clean::COLUMNS;

const FIRST: &[&str] = &[
    "Bobby",
    "Leslie",
    "Danny",
    "Andrew",
    "Adrienne",
    "Emily",
    "Edward",
    "Christina",
    "Jasmine",
    "Christopher",
    "Michelle",
    "Aaron",
    "Connor",
    "Robert",
    "Brooke",
    "Natalie",
    "Haley",
    "Jamie",
    "Luke",
    "Daniel",
    "Paul",
    "Keith",
    "Julie",
    "Kenneth",
    "Cheyenne",
    "Heather",
    "Timothy",
    "Stephanie",
    "Anne-Marie",
    "Patrick",
    "Kimberly",
    "Joshua",
    "Ashley",
    "Maria",
    "Jennifer",
    "Thomas",
    "Samantha",
    "Kevin",
    "Tiffany",
    "Matthew",
    "Dustin",
    "Melissa",
    "Jeffrey",
    "Laura",
    "Brian",
    "Angela",
    "Gregory",
    "Rebecca",
    "Shawn",
    "Victoria",
];
const LAST: &[&str] = &[
    "Jackson",
    "Terry",
    "Smith",
    "Watts",
    "Bell",
    "Lopez",
    "Simmons",
    "Williams",
    "Rodriguez",
    "Garcia",
    "Johnson",
    "Wells",
    "Mitchell",
    "Davies",
    "Cook",
    "Kim",
    "Miller",
    "Hernandez",
    "Rogers",
    "Vang",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "O'Neil",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
];
const PREFIXES: &[&str] = &["Mr.", "Mrs.", "Ms.", "Miss", "Dr."];
const SUFFIXES: &[&str] = &["MD", "DDS", "DVM", "Jr.", "PhD", "II", "III", "IV"];
const COMPANY: &[&str] = &["Inc", "LLC", "Ltd", "PLC", "Group", "and Sons"];
const GENDERS: &[&str] = &["Male", "Female"];
const BLOOD: &[&str] = &["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];
const CONDITIONS: &[&str] = &[
    "Arthritis",
    "Diabetes",
    "Hypertension",
    "Obesity",
    "Cancer",
    "Asthma",
];
const INSURERS: &[&str] = &[
    "Cigna",
    "Medicare",
    "UnitedHealthcare",
    "Blue Cross",
    "Aetna",
];
const ADMISSION_TYPES: &[&str] = &["Elective", "Urgent", "Emergency"];
const MEDICATIONS: &[&str] = &[
    "Lipitor",
    "Ibuprofen",
    "Aspirin",
    "Paracetamol",
    "Penicillin",
];
const RESULTS: &[&str] = &["Abnormal", "Normal", "Inconclusive"];

/// 2019-05-08, the first admission date of the real export, in days since 1970-01-01.
const FIRST_ADMISSION: i64 = 18_024;
/// Admission dates span 2019-05-08 ..= 2024-05-07.
const ADMISSION_SPAN_DAYS: u64 = 1_827;
/// Rows kept to copy duplicates from (bounded, so memory stays flat).
const RECENT: usize = 4096;

/// SplitMix64: tiny, fast, well distributed, and stable forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Write `rows` data rows (plus the header) to `out`.
pub fn generate(rows: u64, seed: u64, out: impl Write) -> io::Result<()> {
    let mut rng = Rng(seed);
    let mut w = WriterBuilder::new()
        .terminator(Terminator::CRLF)
        .from_writer(io::BufWriter::with_capacity(256 * 1024, out));
    w.write_record(COLUMNS)?;
    let mut recent: VecDeque<ByteRecord> = VecDeque::with_capacity(RECENT);
    for _ in 0..rows {
        if !recent.is_empty() && rng.chance(0.01) {
            let i = rng.below(recent.len() as u64) as usize;
            if let Some(copy) = recent.get(i) {
                w.write_byte_record(copy)?;
                continue;
            }
        }
        let record = admission(&mut rng);
        w.write_byte_record(&record)?;
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(record);
    }
    w.flush()
}

fn admission(rng: &mut Rng) -> ByteRecord {
    let admitted = FIRST_ADMISSION + rng.below(ADMISSION_SPAN_DAYS) as i64;
    let discharged = admitted + 1 + rng.below(30) as i64;
    let billing = if rng.chance(0.002) {
        -(1.0 + rng.unit() * 2000.0)
    } else {
        1000.0 + rng.unit() * 51_800.0
    };
    let fields: [String; 15] = [
        patient_name(rng),
        (13 + rng.below(77)).to_string(),
        rng.pick(GENDERS).into(),
        rng.pick(BLOOD).into(),
        rng.pick(CONDITIONS).into(),
        iso_date(admitted),
        format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
        hospital(rng),
        rng.pick(INSURERS).into(),
        format!("{billing}"),
        (101 + rng.below(400)).to_string(),
        rng.pick(ADMISSION_TYPES).into(),
        iso_date(discharged),
        rng.pick(MEDICATIONS).into(),
        rng.pick(RESULTS).into(),
    ];
    ByteRecord::from(fields.to_vec())
}

/// "Bobby JacksOn": names in random letter case, sometimes with a prefix or a suffix.
fn patient_name(rng: &mut Rng) -> String {
    let mut name = String::new();
    if rng.chance(0.03) {
        name.push_str(rng.pick(PREFIXES));
        name.push(' ');
    }
    name.push_str(rng.pick(FIRST));
    name.push(' ');
    name.push_str(rng.pick(LAST));
    if rng.chance(0.03) {
        name.push(' ');
        name.push_str(rng.pick(SUFFIXES));
    }
    name.chars()
        .map(|c| {
            if rng.chance(0.3) {
                if c.is_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// Faker-style company names, with the odd shapes of the real export.
fn hospital(rng: &mut Rng) -> String {
    let (a, b, c) = (rng.pick(LAST), rng.pick(LAST), rng.pick(LAST));
    match rng.below(10) {
        0 | 1 => format!("{a} {}", rng.pick(COMPANY)),
        2 | 3 => format!("{a}, {b} and {c}"),
        4 => format!("{a} {b} and {c},"),
        5 => format!("and {a} {b},"),
        6 => format!("{a} {b} and"),
        7 => format!("{a} and {b}"),
        8 => format!("{a}-{b}"),
        _ => format!("{a} {b}, and {c}"),
    }
}

/// Days since 1970-01-01 → "YYYY-MM-DD" (Howard Hinnant's civil_from_days).
fn iso_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::clean::parse_date;

    #[test]
    fn dates_round_trip() {
        for days in [0, 18_024, 19_782, 11_016, 19_850] {
            assert_eq!(parse_date(&iso_date(days)), Some(days));
        }
        assert_eq!(iso_date(FIRST_ADMISSION), "2019-05-08");
        assert_eq!(
            iso_date(FIRST_ADMISSION + ADMISSION_SPAN_DAYS as i64 - 1),
            "2024-05-07"
        );
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let run = |seed| {
            let mut v = Vec::new();
            generate(500, seed, &mut v).unwrap();
            v
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn has_the_quirks_of_the_real_file() {
        let mut v = Vec::new();
        generate(20_000, 42, &mut v).unwrap();
        let text = String::from_utf8(v).unwrap();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 20_001);
        let distinct: std::collections::HashSet<&str> = lines[1..].iter().copied().collect();
        let dups = 20_000 - distinct.len();
        assert!(
            (100..400).contains(&dups),
            "about 1% duplicates, got {dups}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(",\"") && l.contains(",\",")),
            "quoted hospital ending with a comma"
        );
        let negatives = lines.iter().filter(|l| l.contains(",-")).count();
        assert!(
            (5..200).contains(&negatives),
            "a few negative amounts, got {negatives}"
        );
    }
}
