//! The cleaning contract: one CSV row in, one typed MongoDB document (or a rejection reason) out.
//!
//! Everything the README calls "the cleaning rules" is here and nowhere else: header matching,
//! trimming, title-casing, value domains, dates, billing, and the content-derived `_id` that
//! makes migrations idempotent. Nothing in this module logs or formats field values, so no
//! patient data can leak from it.

use std::collections::HashMap;
use std::fmt;

use bson::{RawBsonRef, RawDocumentBuf};
use csv::ByteRecord;
use sha2::{Digest, Sha256};

/// The 15 columns of the admissions export, in canonical order: the document field names.
pub const COLUMNS: [&str; 15] = [
    "Name",
    "Age",
    "Gender",
    "Blood Type",
    "Medical Condition",
    "Date of Admission",
    "Doctor",
    "Hospital",
    "Insurance Provider",
    "Billing Amount",
    "Room Number",
    "Admission Type",
    "Discharge Date",
    "Medication",
    "Test Results",
];

const NAME: usize = 0;
const AGE: usize = 1;
const GENDER: usize = 2;
const BLOOD_TYPE: usize = 3;
const CONDITION: usize = 4;
const ADMISSION: usize = 5;
const DOCTOR: usize = 6;
const HOSPITAL: usize = 7;
const INSURANCE: usize = 8;
const BILLING: usize = 9;
const ROOM: usize = 10;
const ADMISSION_TYPE: usize = 11;
const DISCHARGE: usize = 12;
const MEDICATION: usize = 13;
const TEST_RESULTS: usize = 14;

/// The sub-document recording where a document came from.
pub const LINEAGE: &str = "_lineage";

const BLOOD_TYPES: [&str; 8] = ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];
const GENDERS: [&str; 2] = ["Male", "Female"];
const ADMISSION_TYPES: [&str; 3] = ["Urgent", "Emergency", "Elective"];
const TEST_RESULT_VALUES: [&str; 3] = ["Normal", "Abnormal", "Inconclusive"];
/// Name suffixes found in the data that keep their conventional spelling after title-casing.
const NAME_SUFFIXES: [&str; 7] = ["MD", "DDS", "DVM", "PhD", "II", "III", "IV"];

/// Why a row was rejected. The code is stable: it is a key of the report's `rejects_by_reason`
/// and the `reason` column of the quarantine file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    WrongFieldCount,
    InvalidUtf8,
    LoneCarriageReturn,
    ControlCharacter,
    NameMissing,
    AgeInvalid,
    GenderMissing,
    BloodTypeInvalid,
    MedicalConditionMissing,
    DateOfAdmissionInvalid,
    DoctorMissing,
    HospitalMissing,
    InsuranceProviderMissing,
    BillingAmountInvalid,
    RoomNumberInvalid,
    AdmissionTypeMissing,
    DischargeDateInvalid,
    DischargeBeforeAdmission,
    MedicationMissing,
    TestResultsMissing,
}

impl Reason {
    pub const ALL: [Reason; 20] = [
        Reason::WrongFieldCount,
        Reason::InvalidUtf8,
        Reason::LoneCarriageReturn,
        Reason::ControlCharacter,
        Reason::NameMissing,
        Reason::AgeInvalid,
        Reason::GenderMissing,
        Reason::BloodTypeInvalid,
        Reason::MedicalConditionMissing,
        Reason::DateOfAdmissionInvalid,
        Reason::DoctorMissing,
        Reason::HospitalMissing,
        Reason::InsuranceProviderMissing,
        Reason::BillingAmountInvalid,
        Reason::RoomNumberInvalid,
        Reason::AdmissionTypeMissing,
        Reason::DischargeDateInvalid,
        Reason::DischargeBeforeAdmission,
        Reason::MedicationMissing,
        Reason::TestResultsMissing,
    ];

    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::WrongFieldCount => "wrong_field_count",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::LoneCarriageReturn => "lone_carriage_return",
            Reason::ControlCharacter => "control_character",
            Reason::NameMissing => "name_missing",
            Reason::AgeInvalid => "age_invalid",
            Reason::GenderMissing => "gender_missing",
            Reason::BloodTypeInvalid => "blood_type_invalid",
            Reason::MedicalConditionMissing => "medical_condition_missing",
            Reason::DateOfAdmissionInvalid => "date_of_admission_invalid",
            Reason::DoctorMissing => "doctor_missing",
            Reason::HospitalMissing => "hospital_missing",
            Reason::InsuranceProviderMissing => "insurance_provider_missing",
            Reason::BillingAmountInvalid => "billing_amount_invalid",
            Reason::RoomNumberInvalid => "room_number_invalid",
            Reason::AdmissionTypeMissing => "admission_type_missing",
            Reason::DischargeDateInvalid => "discharge_date_invalid",
            Reason::DischargeBeforeAdmission => "discharge_before_admission",
            Reason::MedicationMissing => "medication_missing",
            Reason::TestResultsMissing => "test_results_missing",
        }
    }

    /// What the rule expects, for people reading the quarantine file.
    pub fn expectation(self) -> &'static str {
        match self {
            Reason::WrongFieldCount => "the row must have as many fields as the header",
            Reason::InvalidUtf8 => "every field must be valid UTF-8",
            Reason::LoneCarriageReturn => {
                "a carriage return (CR) must end a line as CRLF; a CR alone inside a line is damage"
            }
            Reason::ControlCharacter => {
                "text must not contain control characters (tab and line breaks count as spaces)"
            }
            Reason::NameMissing => "Name is required",
            Reason::AgeInvalid => "Age must be an integer from 0 to 120",
            Reason::GenderMissing => "Gender is required",
            Reason::BloodTypeInvalid => "Blood Type must be one of A+ A- B+ B- AB+ AB- O+ O-",
            Reason::MedicalConditionMissing => "Medical Condition is required",
            Reason::DateOfAdmissionInvalid => {
                "Date of Admission must be a calendar date YYYY-MM-DD"
            }
            Reason::DoctorMissing => "Doctor is required",
            Reason::HospitalMissing => "Hospital is required",
            Reason::InsuranceProviderMissing => "Insurance Provider is required",
            Reason::BillingAmountInvalid => "Billing Amount must be a finite number",
            Reason::RoomNumberInvalid => "Room Number must be an integer from 1 to 9999",
            Reason::AdmissionTypeMissing => "Admission Type is required",
            Reason::DischargeDateInvalid => "Discharge Date must be a calendar date YYYY-MM-DD",
            Reason::DischargeBeforeAdmission => {
                "Discharge Date must not be before Date of Admission"
            }
            Reason::MedicationMissing => "Medication is required",
            Reason::TestResultsMissing => "Test Results is required",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A header that cannot be used: the run stops before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("missing column(s): {}; the header must name all of: {}", .0.join(", "), COLUMNS.join(", "))]
    Missing(Vec<&'static str>),
    /// A known column named twice: (its name, first position, second position), 1-based.
    #[error("column {0} appears more than once in the header (columns {1} and {2})")]
    Duplicate(&'static str, usize, usize),
    /// An extra column named twice. Positions only: when the first line is a data row by
    /// mistake, its "names" are patient values, which never go into a message.
    #[error("header columns {0} and {1} have the same name; give every column its own (is the first line a header?)")]
    DuplicateExtra(usize, usize),
    #[error("header column {0} is empty or not valid UTF-8; give every column a name")]
    Unnamed(usize),
    #[error("extra header column {0} cannot be a MongoDB field name (it contains '.', '$' or a control character, or is _id or _lineage; the name is not shown in case the first line is a data row)")]
    BadExtra(usize),
}

/// The columns a quarantine file puts before the row's own (see `quarantine.rs`).
pub const QUARANTINE_COLUMNS: [&str; 3] = ["line", "reason", "expected"];

/// Where each column sits in the file, resolved once from the header.
#[derive(Debug, Clone)]
pub struct Columns {
    index: [usize; 15],
    /// Extra columns in canonical order (by [`Extra::key`]), whatever their order in the header.
    extras: Vec<Extra>,
    width: usize,
    /// The header starts with a quarantine file's own columns.
    quarantine: bool,
}

/// An extra column: kept in the document under its name, hashed into the `_id` by its key, so
/// that the same admission exported with its extra columns in another order or letter case
/// is the same document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Extra {
    pos: usize,
    /// The header's name cleaned like text: format characters removed, trimmed, inner
    /// whitespace collapsed.
    name: String,
    /// `name` lower-cased: what two header columns are compared by.
    key: String,
}

impl Columns {
    /// Match the header: case-insensitive, whitespace and a UTF-8 BOM ignored, any order. A
    /// name is cleaned like a text field first ([`clean_text`]): "Blood  Type" is Blood Type.
    /// An extra column's name must be a plain MongoDB field name (no '.', no '$', not `_id` or
    /// `_lineage` in any case) and differ from every other column's: a name the server would
    /// refuse, or a second field for one column, would otherwise fail or split the load.
    pub fn from_header(header: &ByteRecord) -> Result<Columns, HeaderError> {
        let mut index = [usize::MAX; 15];
        let mut extras = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        // A quarantine file fed back after fixing starts with its own three columns (once per
        // round, if the quarantine of a quarantine is fed back): they say why the row was
        // rejected and are not part of the admission (nor of its `_id`).
        let is_quarantine_column = |i: usize| {
            header.get(i).is_some_and(|f| {
                let f = if i == 0 {
                    f.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f)
                } else {
                    f
                };
                let q = QUARANTINE_COLUMNS[i % QUARANTINE_COLUMNS.len()];
                f.trim_ascii().eq_ignore_ascii_case(q.as_bytes())
            })
        };
        let mut skip = 0;
        while (skip..skip + QUARANTINE_COLUMNS.len()).all(is_quarantine_column) {
            skip += QUARANTINE_COLUMNS.len();
        }
        for (pos, raw) in header.iter().enumerate().skip(skip) {
            let raw = if pos == 0 {
                raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
            } else {
                raw
            };
            let text = std::str::from_utf8(raw).map_err(|_| HeaderError::Unnamed(pos + 1))?;
            let mut name = String::new();
            if clean_text(text, &mut name).is_err() {
                return Err(HeaderError::BadExtra(pos + 1));
            }
            if name.is_empty() {
                return Err(HeaderError::Unnamed(pos + 1));
            }
            let known = COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(&name));
            let key = name.to_lowercase();
            if let Some(&first) = seen.get(&key) {
                return Err(match known {
                    Some(i) => HeaderError::Duplicate(COLUMNS[i], first + 1, pos + 1),
                    None => HeaderError::DuplicateExtra(first + 1, pos + 1),
                });
            }
            seen.insert(key.clone(), pos);
            match known {
                Some(i) => index[i] = pos,
                None => {
                    // '.' and '$' make a path or an operator of the name (the server refuses the
                    // document, or stores a sub-document), and the two reserved names would
                    // replace the content hash or the lineage.
                    if name.contains(['.', '$']) || key == "_id" || key == LINEAGE {
                        return Err(HeaderError::BadExtra(pos + 1));
                    }
                    extras.push(Extra { pos, name, key });
                }
            }
        }
        extras.sort_by(|a, b| a.key.cmp(&b.key));
        let missing: Vec<&'static str> = COLUMNS
            .iter()
            .zip(index)
            .filter(|(_, i)| *i == usize::MAX)
            .map(|(c, _)| *c)
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::Missing(missing));
        }
        Ok(Columns {
            index,
            extras,
            width: header.len(),
            quarantine: skip > 0,
        })
    }

    /// Whether this is a quarantine file fed back (see `quarantine.rs`).
    pub fn is_quarantine(&self) -> bool {
        self.quarantine
    }

    /// Number of fields every row must have.
    pub fn width(&self) -> usize {
        self.width
    }
}

/// A cleaned row, ready to insert.
#[derive(Debug)]
pub struct Cleaned {
    /// Content-derived identifier: 32 hex digits of SHA-256 over the cleaned values.
    pub id: String,
    pub doc: RawDocumentBuf,
    /// The line where the row starts.
    pub line: u64,
    pub billing_nulled: bool,
}

/// Turns rows into documents, reusing its buffers from row to row.
pub struct Cleaner {
    columns: Columns,
    source: String,
    text: [String; 15],
    /// The cleaned values of the extra columns, in [`Columns::extras`] order.
    extra_text: Vec<String>,
    hasher_buf: Vec<u8>,
    doc_capacity: usize,
}

/// A BSON document with no element: its length (5, little-endian) and the terminating 0.
const EMPTY_DOCUMENT: [u8; 5] = [5, 0, 0, 0, 0];

impl Cleaner {
    /// `source` is recorded in every document's lineage (the input file's name).
    pub fn new(columns: Columns, source: &str) -> Cleaner {
        Cleaner {
            extra_text: vec![String::new(); columns.extras.len()],
            columns,
            source: source.to_string(),
            text: Default::default(),
            hasher_buf: Vec::with_capacity(512),
            doc_capacity: 512,
        }
    }

    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Clean one record. `line` is the 1-based line where the record starts.
    pub fn clean(&mut self, record: &ByteRecord, line: u64) -> Result<Cleaned, Reason> {
        if record.len() != self.columns.width {
            return Err(Reason::WrongFieldCount);
        }
        let mut fields: [&str; 15] = [""; 15];
        for (slot, &pos) in fields.iter_mut().zip(&self.columns.index) {
            *slot = field_str(record, pos)?;
        }
        for (extra, out) in self.columns.extras.iter().zip(&mut self.extra_text) {
            clean_extra(field_str(record, extra.pos)?, out)?;
        }

        // Text fields: format characters removed, trimmed, inner whitespace collapsed (before
        // the required check: a Name of only zero-width spaces is no name).
        for i in [
            NAME,
            GENDER,
            CONDITION,
            DOCTOR,
            HOSPITAL,
            INSURANCE,
            ADMISSION_TYPE,
            MEDICATION,
            TEST_RESULTS,
        ] {
            clean_text(fields[i], &mut self.text[i])?;
        }
        let [name, _, gender, _, condition, _, doctor, hospital, insurance, _, _, admission_type, _, medication, test_results] =
            &mut self.text;

        if name.is_empty() {
            return Err(Reason::NameMissing);
        }
        let age = parse_int(fields[AGE], 0, 120).ok_or(Reason::AgeInvalid)?;
        canonicalize(gender, &GENDERS).ok_or(Reason::GenderMissing)?;
        let blood = BLOOD_TYPES
            .iter()
            .find(|b| b.eq_ignore_ascii_case(fields[BLOOD_TYPE].trim()))
            .ok_or(Reason::BloodTypeInvalid)?;
        require(condition, Reason::MedicalConditionMissing)?;
        let admitted = parse_date(fields[ADMISSION]).ok_or(Reason::DateOfAdmissionInvalid)?;
        require(doctor, Reason::DoctorMissing)?;
        require(hospital, Reason::HospitalMissing)?;
        require(insurance, Reason::InsuranceProviderMissing)?;
        let billing = parse_billing(fields[BILLING]).ok_or(Reason::BillingAmountInvalid)?;
        let room = parse_int(fields[ROOM], 1, 9999).ok_or(Reason::RoomNumberInvalid)?;
        canonicalize(admission_type, &ADMISSION_TYPES).ok_or(Reason::AdmissionTypeMissing)?;
        let discharged = parse_date(fields[DISCHARGE]).ok_or(Reason::DischargeDateInvalid)?;
        if discharged < admitted {
            return Err(Reason::DischargeBeforeAdmission);
        }
        require(medication, Reason::MedicationMissing)?;
        canonicalize(test_results, &TEST_RESULT_VALUES).ok_or(Reason::TestResultsMissing)?;

        let titled = title_case_name(name);
        *name = titled;

        let billing_nulled = billing < 0.0;
        let admitted_ms = admitted * 86_400_000;
        let discharged_ms = discharged * 86_400_000;

        // The _id: a hash of the cleaned content. Billing is hashed by its original value so
        // that two rows differing only in their (nulled) negative amounts stay distinct.
        let buf = &mut self.hasher_buf;
        buf.clear();
        for (i, text) in self.text.iter().enumerate() {
            match i {
                AGE => buf.extend_from_slice(&age.to_le_bytes()),
                BLOOD_TYPE => put_str(buf, blood),
                ADMISSION => buf.extend_from_slice(&admitted_ms.to_le_bytes()),
                BILLING => buf.extend_from_slice(&billing.to_bits().to_le_bytes()),
                ROOM => buf.extend_from_slice(&room.to_le_bytes()),
                DISCHARGE => buf.extend_from_slice(&discharged_ms.to_le_bytes()),
                _ => put_str(buf, text),
            }
        }
        // Extra columns by their case-folded names, in canonical order (see [`Extra`]).
        for (extra, value) in self.columns.extras.iter().zip(&self.extra_text) {
            if !value.is_empty() {
                put_str(buf, &extra.key);
                put_str(buf, value);
            }
        }
        let id = hex_id(&Sha256::digest(&buf[..]));

        let t = &self.text;
        // Sized like the previous document, so it is built without reallocating.
        let mut bytes = Vec::with_capacity(self.doc_capacity);
        bytes.extend_from_slice(&EMPTY_DOCUMENT);
        let mut doc = RawDocumentBuf::from_bytes(bytes).unwrap_or_default();
        doc.append_ref("_id", id.as_str());
        doc.append_ref(COLUMNS[NAME], t[NAME].as_str());
        doc.append_ref(COLUMNS[AGE], age);
        doc.append_ref(COLUMNS[GENDER], t[GENDER].as_str());
        doc.append_ref(COLUMNS[BLOOD_TYPE], *blood);
        doc.append_ref(COLUMNS[CONDITION], t[CONDITION].as_str());
        doc.append_ref(COLUMNS[ADMISSION], bson::DateTime::from_millis(admitted_ms));
        doc.append_ref(COLUMNS[DOCTOR], t[DOCTOR].as_str());
        doc.append_ref(COLUMNS[HOSPITAL], t[HOSPITAL].as_str());
        doc.append_ref(COLUMNS[INSURANCE], t[INSURANCE].as_str());
        if billing_nulled {
            doc.append_ref(COLUMNS[BILLING], RawBsonRef::Null);
        } else {
            doc.append_ref(COLUMNS[BILLING], billing);
        }
        doc.append_ref(COLUMNS[ROOM], room);
        doc.append_ref(COLUMNS[ADMISSION_TYPE], t[ADMISSION_TYPE].as_str());
        doc.append_ref(
            COLUMNS[DISCHARGE],
            bson::DateTime::from_millis(discharged_ms),
        );
        doc.append_ref(COLUMNS[MEDICATION], t[MEDICATION].as_str());
        doc.append_ref(COLUMNS[TEST_RESULTS], t[TEST_RESULTS].as_str());
        for (extra, value) in self.columns.extras.iter().zip(&self.extra_text) {
            if !value.is_empty() {
                doc.append_ref(extra.name.as_str(), value.as_str());
            }
        }
        let mut lineage = RawDocumentBuf::new();
        lineage.append_ref("source", self.source.as_str());
        lineage.append_ref("line", i64::try_from(line).unwrap_or(i64::MAX));
        if billing_nulled {
            lineage.append_ref("billing_amount_original", billing);
        }
        doc.append_ref(LINEAGE, &lineage);
        self.doc_capacity = doc.as_bytes().len() + 64;

        Ok(Cleaned {
            id,
            doc,
            line,
            billing_nulled,
        })
    }
}

fn field_str(record: &ByteRecord, pos: usize) -> Result<&str, Reason> {
    let bytes = record.get(pos).ok_or(Reason::WrongFieldCount)?;
    std::str::from_utf8(bytes).map_err(|_| Reason::InvalidUtf8)
}

fn require(value: &str, reason: Reason) -> Result<(), Reason> {
    if value.is_empty() {
        Err(reason)
    } else {
        Ok(())
    }
}

/// Replace a known value by its canonical spelling; keep any other non-empty value as given.
fn canonicalize(value: &mut String, known: &[&str]) -> Option<()> {
    if value.is_empty() {
        return None;
    }
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(value)) {
        if value != *k {
            value.clear();
            value.push_str(k);
        }
    }
    Some(())
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn hex_id(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in &digest[..16] {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Clean a text field into `out`: invisible characters ([`is_invisible`]) removed, trimmed, and
/// every run of inner whitespace made one space. A control character that is not whitespace
/// (NUL, U+0001, ESC, DEL, the C1 controls) refuses the row: it is damage or an attack, and
/// no cleaning can say what was meant. Tab and line breaks are whitespace.
pub fn clean_text(input: &str, out: &mut String) -> Result<(), Reason> {
    out.clear();
    if is_tidy_ascii(input.as_bytes()) {
        // The common case, already clean: one copy, no per-character work.
        out.push_str(input);
        return Ok(());
    }
    let mut pending_space = false;
    for c in input.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_control() {
            return Err(Reason::ControlCharacter);
        } else if !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    Ok(())
}

/// An extra column's value into `out`: like [`clean_text`], but inner whitespace is kept as
/// given (free text such as notes).
fn clean_extra(input: &str, out: &mut String) -> Result<(), Reason> {
    out.clear();
    let input = input.trim();
    if input.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.push_str(input);
        return Ok(());
    }
    for c in input.chars() {
        if c.is_control() && !c.is_whitespace() {
            return Err(Reason::ControlCharacter);
        }
        if !is_invisible(c) {
            out.push(c);
        }
    }
    // Removing an invisible character can uncover whitespace at either end.
    let kept = out.trim();
    if kept.len() != out.len() {
        *out = kept.to_string();
    }
    Ok(())
}

/// Characters that show nothing, removed from text before it is judged or hashed: Unicode's
/// format characters (category Cf: zero-width space, joiners, bidirectional controls such as
/// U+202E, the soft hyphen, the BOM, …) and the other default-ignorable code points (the Hangul
/// fillers U+3164 and U+FFA0, variation selectors, the combining grapheme joiner). Without this,
/// a Name of U+200B passes the required check and `Bobby Jackson` with a zero-width space is a
/// second admission. (The password rule in `security::passwords` refuses a smaller set.)
pub fn is_invisible(c: char) -> bool {
    // Unicode 15: General_Category=Cf ∪ Default_Ignorable_Code_Point, as ranges.
    const RANGES: [(u32, u32); 25] = [
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x206F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
    ];
    let c = u32::from(c);
    if c < 0xAD {
        return false;
    }
    RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// ASCII with no whitespace but single spaces between words and no control character: what
/// [`clean_text`] leaves as it is.
fn is_tidy_ascii(b: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return true;
    };
    if first == b' ' || last == b' ' {
        return false;
    }
    let mut prev_space = false;
    for &c in b {
        // Tab, line breaks and the other controls are all below 0x20.
        if !c.is_ascii() || c < 0x20 || c == 0x7f {
            return false;
        }
        let space = c == b' ';
        if space && prev_space {
            return false;
        }
        prev_space = space;
    }
    true
}

/// An integer in `lo..=hi`, surrounding whitespace ignored.
fn parse_int(s: &str, lo: i32, hi: i32) -> Option<i32> {
    let v: i32 = s.trim().parse().ok()?;
    (lo..=hi).contains(&v).then_some(v)
}

/// A finite number. Negative zero (`-0`, `-0.00`, or an amount so small it rounds to zero,
/// such as `-1e-400`) is zero: it is stored, hashed and judged by its sign as 0, so `0` and
/// `-0` are one admission and neither is nulled as negative.
fn parse_billing(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    if v == 0.0 {
        return Some(0.0);
    }
    v.is_finite().then_some(v)
}

/// A calendar date `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days_from_civil: proleptic Gregorian date → days since the Unix epoch.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Title-case like Python's `str.title()` (a letter is upper-cased when the character before it
/// is not a cased letter, lower-cased otherwise), then restore the conventional spelling of the
/// name suffixes in the data (MD, DDS, DVM, PhD, II, III, IV).
pub fn title_case_name(name: &str) -> String {
    let out = if name.is_ascii() {
        title_ascii(name)
    } else {
        title_unicode(name)
    };
    if !out.split(' ').any(|w| suffix_for(w).is_some()) {
        return out;
    }
    let mut fixed = String::with_capacity(out.len());
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            fixed.push(' ');
        }
        match suffix_for(word) {
            Some((suffix, rest)) => {
                fixed.push_str(suffix);
                fixed.push_str(rest);
            }
            None => fixed.push_str(word),
        }
    }
    fixed
}

/// `str.title()` of any text: a cased character after a cased one is lower-cased, any other is
/// title-cased.
fn title_unicode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_cased = false;
    for c in name.chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            push_titlecase(c, &mut out);
        }
        prev_cased = is_cased(c);
    }
    out
}

/// The same for ASCII, where cased means a letter and case mapping is byte to byte.
fn title_ascii(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_cased = false;
    for &b in name.as_bytes() {
        let c = if prev_cased {
            b.to_ascii_lowercase()
        } else {
            b.to_ascii_uppercase()
        };
        out.push(char::from(c));
        prev_cased = b.is_ascii_alphabetic();
    }
    out
}

/// If `word` is a known suffix (optionally followed by '.' or ','), its spelling and the tail.
fn suffix_for(word: &str) -> Option<(&'static str, &str)> {
    let core_len = word.trim_end_matches(['.', ',']).len();
    let (core, rest) = word.split_at(core_len);
    NAME_SUFFIXES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(core))
        .map(|s| (*s, rest))
}

/// Unicode "Cased": Lowercase, Uppercase, or a titlecase letter (Lt).
fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase() || is_titlecase_letter(c)
}

fn is_titlecase_letter(c: char) -> bool {
    matches!(c, '\u{01C5}' | '\u{01C8}' | '\u{01CB}' | '\u{01F2}' | '\u{1F88}'..='\u{1F8F}' | '\u{1F98}'..='\u{1F9F}' | '\u{1FA8}'..='\u{1FAF}' | '\u{1FBC}' | '\u{1FCC}' | '\u{1FFC}')
}

/// Titlecase mapping where it differs from uppercase (digraphs, ß, Latin ligatures).
fn push_titlecase(c: char, out: &mut String) {
    let special = match c {
        '\u{01C4}'..='\u{01C6}' => "\u{01C5}",
        '\u{01C7}'..='\u{01C9}' => "\u{01C8}",
        '\u{01CA}'..='\u{01CC}' => "\u{01CB}",
        '\u{01F1}'..='\u{01F3}' => "\u{01F2}",
        'ß' => "Ss",
        '\u{FB00}' => "Ff",
        '\u{FB01}' => "Fi",
        '\u{FB02}' => "Fl",
        '\u{FB03}' => "Ffi",
        '\u{FB04}' => "Ffl",
        '\u{FB05}' | '\u{FB06}' => "St",
        _ => {
            out.extend(c.to_uppercase());
            return;
        }
    };
    out.push_str(special);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of up to 4 characters from an alphabet with each kind of ASCII whitespace,
    /// letters of both cases, digits, punctuation and a non-ASCII letter: the fast paths give
    /// what the general ones give.
    fn short_strings() -> Vec<String> {
        const ALPHABET: [char; 12] = [
            ' ', '\t', '\n', '\r', '\u{0b}', '\u{0c}', 'a', 'B', '1', '\'', '-', 'é',
        ];
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| ALPHABET.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn fast_paths_agree_with_the_general_ones() {
        let mut out = String::new();
        for s in short_strings() {
            clean_text(&s, &mut out).unwrap();
            assert_eq!(
                out,
                s.split_whitespace().collect::<Vec<_>>().join(" "),
                "{s:?}"
            );
            if s.is_ascii() {
                assert_eq!(title_ascii(&s), title_unicode(&s), "{s:?}");
            }
        }
    }
    use bson::{doc, Bson, Document};

    fn header() -> ByteRecord {
        ByteRecord::from(COLUMNS.to_vec())
    }

    /// A valid row of the real export's shape.
    pub(super) const ROW: [&str; 15] = [
        "Bobby JacksOn",
        "30",
        "Male",
        "B-",
        "Cancer",
        "2024-01-31",
        "Matthew Smith",
        "Sons and Miller",
        "Blue Cross",
        "18856.281305978155",
        "328",
        "Urgent",
        "2024-02-02",
        "Paracetamol",
        "Normal",
    ];

    fn row(overrides: &[(usize, &str)]) -> ByteRecord {
        let mut fields = ROW.to_vec();
        for &(i, v) in overrides {
            fields[i] = v;
        }
        ByteRecord::from(fields)
    }

    fn cleaner() -> Cleaner {
        Cleaner::new(Columns::from_header(&header()).unwrap(), "t.csv")
    }

    fn clean(overrides: &[(usize, &str)]) -> Result<Document, Reason> {
        cleaner()
            .clean(&row(overrides), 2)
            .map(|c| c.doc.to_document().unwrap())
    }

    #[test]
    fn cleans_a_real_row_into_typed_fields() {
        let d = clean(&[]).unwrap();
        assert_eq!(d.get_str("Name").unwrap(), "Bobby Jackson");
        assert_eq!(d.get("Age"), Some(&Bson::Int32(30)));
        assert_eq!(d.get("Room Number"), Some(&Bson::Int32(328)));
        assert_eq!(
            d.get("Billing Amount"),
            Some(&Bson::Double(18856.281305978155))
        );
        assert_eq!(
            d.get_datetime("Date of Admission")
                .unwrap()
                .timestamp_millis(),
            1_706_659_200_000
        );
        assert_eq!(
            d.get_document(LINEAGE).unwrap(),
            &doc! { "source": "t.csv", "line": 2_i64 }
        );
        assert_eq!(d.get_str("_id").unwrap().len(), 32);
    }

    #[test]
    fn title_cases_like_python_with_suffixes() {
        let cases = [
            ("bobby jacksOn", "Bobby Jackson"),
            ("o'neil", "O'Neil"),
            ("anne-marie", "Anne-Marie"),
            ("john smith md", "John Smith MD"),
            ("JOHN SMITH PHD", "John Smith PhD"),
            ("henry ford iii", "Henry Ford III"),
            ("dr. jane doe dds", "Dr. Jane Doe DDS"),
            ("mr. a b jr.", "Mr. A B Jr."),
            ("émile zola", "Émile Zola"),
            ("straße", "Straße"),
            ("ivy iv", "Ivy IV"),
            ("3rd", "3Rd"),
        ];
        for (input, want) in cases {
            assert_eq!(title_case_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn trims_and_collapses_whitespace() {
        let d = clean(&[(0, "  bobby \t  jackson "), (7, " Sons   and Miller, ")]).unwrap();
        assert_eq!(d.get_str("Name").unwrap(), "Bobby Jackson");
        assert_eq!(d.get_str("Hospital").unwrap(), "Sons and Miller,");
    }

    #[test]
    fn canonicalizes_known_values_and_keeps_others() {
        let d = clean(&[
            (2, "fEMALE"),
            (3, "ab+"),
            (11, "EMERGENCY"),
            (14, "abnormal"),
        ])
        .unwrap();
        assert_eq!(d.get_str("Gender").unwrap(), "Female");
        assert_eq!(d.get_str("Blood Type").unwrap(), "AB+");
        assert_eq!(d.get_str("Admission Type").unwrap(), "Emergency");
        assert_eq!(d.get_str("Test Results").unwrap(), "Abnormal");
        let d = clean(&[(2, "Non-binary")]).unwrap();
        assert_eq!(d.get_str("Gender").unwrap(), "Non-binary");
    }

    #[test]
    fn nulls_negative_billing_and_keeps_the_original_in_lineage() {
        let mut c = cleaner();
        let cleaned = c.clean(&row(&[(9, "-502.5071654")]), 7).unwrap();
        assert!(cleaned.billing_nulled);
        let d = cleaned.doc.to_document().unwrap();
        assert_eq!(d.get("Billing Amount"), Some(&Bson::Null));
        assert_eq!(
            d.get_document(LINEAGE)
                .unwrap()
                .get("billing_amount_original"),
            Some(&Bson::Double(-502.5071654))
        );
    }

    #[test]
    fn ids_depend_on_content_only() {
        let mut c = cleaner();
        let a = c.clean(&row(&[]), 2).unwrap();
        let b = c.clean(&row(&[(0, "BOBBY  JACKSON")]), 900).unwrap();
        assert_eq!(a.id, b.id, "same cleaned content, different line");
        let n1 = c.clean(&row(&[(9, "-1.5")]), 3).unwrap();
        let n2 = c.clean(&row(&[(9, "-2.5")]), 4).unwrap();
        assert_ne!(
            n1.id, n2.id,
            "nulled amounts compare by their original value"
        );
        let other = c.clean(&row(&[(1, "31")]), 5).unwrap();
        assert_ne!(a.id, other.id);
    }

    #[test]
    fn rejects_each_rule_with_its_reason() {
        let cases: &[(usize, &str, Reason)] = &[
            (0, "  ", Reason::NameMissing),
            (1, "121", Reason::AgeInvalid),
            (1, "-1", Reason::AgeInvalid),
            (1, "30.5", Reason::AgeInvalid),
            (2, "", Reason::GenderMissing),
            (3, "C+", Reason::BloodTypeInvalid),
            (4, "", Reason::MedicalConditionMissing),
            (5, "2024-02-30", Reason::DateOfAdmissionInvalid),
            (5, "31/01/2024", Reason::DateOfAdmissionInvalid),
            (6, "", Reason::DoctorMissing),
            (7, "", Reason::HospitalMissing),
            (8, "", Reason::InsuranceProviderMissing),
            (9, "abc", Reason::BillingAmountInvalid),
            (9, "inf", Reason::BillingAmountInvalid),
            (9, "NaN", Reason::BillingAmountInvalid),
            (10, "0", Reason::RoomNumberInvalid),
            (10, "10000", Reason::RoomNumberInvalid),
            (11, "", Reason::AdmissionTypeMissing),
            (12, "2024-13-01", Reason::DischargeDateInvalid),
            (12, "2024-01-30", Reason::DischargeBeforeAdmission),
            (13, "", Reason::MedicationMissing),
            (14, "", Reason::TestResultsMissing),
        ];
        for &(i, v, want) in cases {
            assert_eq!(
                clean(&[(i, v)]).unwrap_err(),
                want,
                "column {} = {v:?}",
                COLUMNS[i]
            );
        }
        let mut c = cleaner();
        let short = ByteRecord::from(vec!["a", "b"]);
        assert_eq!(c.clean(&short, 2).unwrap_err(), Reason::WrongFieldCount);
        let mut bad = row(&[]);
        bad = bad
            .iter()
            .enumerate()
            .map(|(i, f)| if i == 4 { &b"Canc\xffer"[..] } else { f })
            .collect();
        assert_eq!(c.clean(&bad, 2).unwrap_err(), Reason::InvalidUtf8);
    }

    #[test]
    fn dates_follow_the_calendar() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("1900-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some(11_016));
        assert_eq!(parse_date("2024-1-01"), None);
    }

    #[test]
    fn header_matching_is_lenient_about_case_order_and_bom() {
        let mut names: Vec<String> = COLUMNS
            .iter()
            .rev()
            .map(|c| format!(" {} ", c.to_uppercase()))
            .collect();
        names[0] = format!("\u{feff}{}", names[0].trim());
        names.push("Ward".into());
        let cols = Columns::from_header(&ByteRecord::from(names)).unwrap();
        assert_eq!(cols.width(), 16);
        let ward = Extra {
            pos: 15,
            name: "Ward".into(),
            key: "ward".into(),
        };
        assert_eq!(cols.extras, vec![ward]);
    }

    #[test]
    fn header_names_every_missing_column() {
        let h = ByteRecord::from(COLUMNS[2..].to_vec());
        let err = Columns::from_header(&h).unwrap_err().to_string();
        assert!(err.starts_with("missing column(s): Name, Age;"), "{err}");
        let dup = ByteRecord::from([&COLUMNS[..], &["name"]].concat());
        assert_eq!(
            Columns::from_header(&dup).unwrap_err().to_string(),
            "column Name appears more than once in the header (columns 1 and 16)"
        );
    }

    #[test]
    fn a_fixed_quarantine_file_loads_as_the_same_admissions() {
        let plain = Columns::from_header(&ByteRecord::from(COLUMNS.to_vec())).unwrap();
        let mut names = QUARANTINE_COLUMNS.to_vec();
        names.extend(COLUMNS);
        let from_quarantine = Columns::from_header(&ByteRecord::from(names)).unwrap();
        assert!(from_quarantine.extras.is_empty());
        assert_eq!(from_quarantine.width(), 18);
        let mut fields: Vec<Vec<u8>> = vec![
            b"7".to_vec(),
            b"age_invalid".to_vec(),
            b"an integer 0-120".to_vec(),
        ];
        fields.extend(row(&[]).iter().map(|f| f.to_vec()));
        let fixed = Cleaner::new(from_quarantine, "t.quarantine.csv")
            .clean(&ByteRecord::from(fields), 2)
            .unwrap();
        let original = Cleaner::new(plain, "t.csv").clean(&row(&[]), 7).unwrap();
        assert_eq!(fixed.id, original.id);
        assert!(fixed.doc.get("reason").unwrap().is_none());
        assert!(fixed.doc.get("line").unwrap().is_none());
        // The quarantine of a fed-back quarantine has the three columns twice.
        let mut twice = QUARANTINE_COLUMNS.to_vec();
        twice.extend(QUARANTINE_COLUMNS);
        twice.extend(COLUMNS);
        let cols = Columns::from_header(&ByteRecord::from(twice)).unwrap();
        assert!(cols.extras.is_empty());
        assert_eq!(cols.width(), 21);
    }

    #[test]
    fn header_errors_never_quote_unknown_names() {
        // A data row taken for the header: its fields are patient values.
        let data_row = ByteRecord::from(vec!["Jane Roe", "41", "Female", "Jane Roe", "$1520.10"]);
        let err = Columns::from_header(&data_row).unwrap_err().to_string();
        assert_eq!(
            err,
            "header columns 1 and 4 have the same name; give every column its own (is the first \
             line a header?)"
        );
        let dollar = ByteRecord::from(vec!["Jane Roe", "$1520.10"]);
        let err = Columns::from_header(&dollar).unwrap_err().to_string();
        assert!(
            err.starts_with("extra header column 2 cannot be a MongoDB field name"),
            "{err}"
        );
        assert!(!err.contains("1520") && !err.contains("Jane"), "{err}");
    }

    #[test]
    fn extra_columns_are_kept_trimmed_and_omitted_when_empty() {
        let mut h: Vec<&str> = COLUMNS.to_vec();
        h.push("Ward");
        h.push("Notes");
        let mut c = Cleaner::new(Columns::from_header(&ByteRecord::from(h)).unwrap(), "t.csv");
        let mut r: Vec<Vec<u8>> = row(&[]).iter().map(|f| f.to_vec()).collect();
        r.push(b"  West  Wing ".to_vec());
        r.push(b"   ".to_vec());
        let d = c
            .clean(&ByteRecord::from(r), 2)
            .unwrap()
            .doc
            .to_document()
            .unwrap();
        assert_eq!(d.get_str("Ward").unwrap(), "West  Wing");
        assert!(!d.contains_key("Notes"));
    }
}

/// The regression tests of issue 24 (findings 3, 7, 8, 10) and the pinned `_id`s.
#[cfg(test)]
mod issue24 {
    use super::*;
    use bson::Bson;

    fn ward_row(name: &str, extras: &[&str]) -> ByteRecord {
        let mut fields: Vec<String> = tests_row().iter().map(|s| s.to_string()).collect();
        fields[NAME] = name.to_string();
        fields.extend(extras.iter().map(|s| s.to_string()));
        ByteRecord::from(fields)
    }

    fn tests_row() -> [&'static str; 15] {
        super::tests::ROW
    }

    fn cleaner_with(extras: &[&str]) -> Cleaner {
        let mut names = COLUMNS.to_vec();
        names.extend_from_slice(extras);
        Cleaner::new(
            Columns::from_header(&ByteRecord::from(names)).unwrap(),
            "t.csv",
        )
    }

    fn id_of(fields: [&str; 15]) -> String {
        cleaner_with(&[])
            .clean(&ByteRecord::from(fields.to_vec()), 2)
            .unwrap()
            .id
    }

    /// `_id`s computed by the code before issue 24's fixes (commit 85e2500): rows that hit no
    /// finding keep them, so collections loaded before reload as duplicates, not new rows.
    #[test]
    fn ids_of_ordinary_rows_are_unchanged() {
        let mut row = tests_row();
        assert_eq!(id_of(row), "168c5c21daf9e4136a7760047da895e5");
        row[BILLING] = "-502.5071654";
        assert_eq!(id_of(row), "078f46c0c6c53b06986e51811bb6cd50");
        row[BILLING] = "0";
        assert_eq!(id_of(row), "50d694d92ff4699b18300e654fefa57c");
        // Lines 3 and 4 of the real export.
        let leslie = [
            "LesLie TErRy",
            "62",
            "Male",
            "A+",
            "Obesity",
            "2019-08-20",
            "Samantha Davies",
            "Kim Inc",
            "Medicare",
            "33643.327286577885",
            "265",
            "Emergency",
            "2019-08-26",
            "Ibuprofen",
            "Inconclusive",
        ];
        assert_eq!(id_of(leslie), "6e5bdb5914977fd43fd3f289a40a51dc");
        let danny = [
            "DaNnY sMitH",
            "76",
            "Female",
            "A-",
            "Obesity",
            "2022-09-22",
            "Tiffany Mitchell",
            "Cook PLC",
            "Aetna",
            "27955.096078842456",
            "205",
            "Emergency",
            "2022-10-07",
            "Aspirin",
            "Normal",
        ];
        assert_eq!(id_of(danny), "d9615df1d4ad982446c79621ff9ddde0");
    }

    fn header_error(extras: &[&str]) -> String {
        let mut names = COLUMNS.to_vec();
        names.extend_from_slice(extras);
        match Columns::from_header(&ByteRecord::from(names)) {
            Ok(_) => panic!("header with extra columns {extras:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn extra_column_names_mongodb_cannot_store_are_refused_in_the_header() {
        for bad in [
            "Ward.Name",
            "a$b",
            "$ward",
            "_id",
            "_ID",
            " _Lineage ",
            "_lineage.source",
            "_id.x",
            "Wa\u{1}rd",
        ] {
            let err = header_error(&[bad]);
            assert!(
                err.starts_with("extra header column 16 cannot be a MongoDB field name"),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(
            header_error(&[" \u{200B} "]),
            "header column 16 is empty or not valid UTF-8; give every column a name"
        );
        // A known column spelled with other spaces or case is that column, named twice.
        assert_eq!(
            header_error(&["BLOOD  TYPE"]),
            "column Blood Type appears more than once in the header (columns 4 and 16)"
        );
        assert_eq!(
            header_error(&["Ward", "ward"]),
            "header columns 16 and 17 have the same name; give every column its own (is the \
             first line a header?)"
        );
        assert_eq!(
            header_error(&["My  Ward", " my ward"]),
            "header columns 16 and 17 have the same name; give every column its own (is the \
             first line a header?)"
        );
        // Cleaned like text: a known column with a zero-width space or inner double space.
        let mut names: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        names[BLOOD_TYPE] = "Blood \u{200B}  Type".into();
        assert!(Columns::from_header(&ByteRecord::from(names)).is_ok());
    }

    #[test]
    fn extra_column_order_and_case_do_not_change_the_id() {
        let a = cleaner_with(&["Ward", "Notes"])
            .clean(&ward_row("Bobby Jackson", &["West", "late"]), 2)
            .unwrap();
        let b = cleaner_with(&["notes", "WARD"])
            .clean(&ward_row("Bobby Jackson", &["late", "West"]), 2)
            .unwrap();
        assert_eq!(a.id, b.id);
        // The document is the same whatever the header order (names as the header spells them).
        let keys = |c: &Cleaned| -> Vec<String> {
            c.doc
                .to_document()
                .unwrap()
                .keys()
                .map(|k| k.to_lowercase())
                .collect()
        };
        assert_eq!(keys(&a), keys(&b));
        let d = a.doc.to_document().unwrap();
        assert_eq!(d.get_str("Ward").unwrap(), "West");
        assert_eq!(d.get_str("Notes").unwrap(), "late");
        // Values still count: another value, or the same value in another column, differs.
        let c = cleaner_with(&["Ward", "Notes"])
            .clean(&ward_row("Bobby Jackson", &["late", "West"]), 2)
            .unwrap();
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn invisible_and_control_characters_do_not_satisfy_required_fields() {
        let mut c = cleaner_with(&[]);
        for name in [
            "\u{200B}",
            "\u{00AD}",
            "\u{202E}",
            "\u{3164}",
            " \u{FEFF} \u{2060} ",
        ] {
            assert_eq!(
                c.clean(&ward_row(name, &[]), 2).unwrap_err(),
                Reason::NameMissing,
                "{name:?}"
            );
        }
        for name in [
            "\u{1}",
            "Bobby\u{1}Jackson",
            "Bobby \u{7f}",
            "Bobby\u{9b}",
            "\0",
        ] {
            assert_eq!(
                c.clean(&ward_row(name, &[]), 2).unwrap_err(),
                Reason::ControlCharacter,
                "{name:?}"
            );
        }
        let plain = c.clean(&ward_row("Bobby Jackson", &[]), 2).unwrap();
        for name in [
            "Bobby Jackson\u{200B}",
            "Bob\u{AD}by Jack\u{200D}son",
            "\u{202E}Bobby \u{200B} Jackson",
            "Bobby\tJackson\r\n",
        ] {
            let other = c.clean(&ward_row(name, &[]), 2).unwrap();
            assert_eq!(other.id, plain.id, "{name:?}");
            assert_eq!(
                other.doc.get_str("Name").unwrap(),
                "Bobby Jackson",
                "{name:?}"
            );
        }
        // Other text fields and extra columns follow the same rule.
        let mut r: Vec<&str> = tests_row().to_vec();
        r[DOCTOR] = "\u{200B}\u{200C}";
        assert_eq!(
            c.clean(&ByteRecord::from(r.clone()), 2).unwrap_err(),
            Reason::DoctorMissing
        );
        r[DOCTOR] = "Matthew\u{1b}[2J Smith";
        assert_eq!(
            c.clean(&ByteRecord::from(r), 2).unwrap_err(),
            Reason::ControlCharacter
        );
        let mut w = cleaner_with(&["Ward"]);
        let empty = w.clean(&ward_row("Bobby", &[" \u{200B} "]), 2).unwrap();
        assert!(empty.doc.get("Ward").unwrap().is_none());
        let kept = w
            .clean(&ward_row("Bobby", &["West\u{FEFF}  Wing"]), 2)
            .unwrap();
        assert_eq!(kept.doc.get_str("Ward").unwrap(), "West  Wing");
        assert_eq!(
            w.clean(&ward_row("Bobby", &["West\u{7}"]), 2).unwrap_err(),
            Reason::ControlCharacter
        );
    }

    #[test]
    fn the_invisible_set_is_unicode_cf_and_default_ignorables() {
        for c in [
            '\u{AD}',
            '\u{34F}',
            '\u{600}',
            '\u{61C}',
            '\u{115F}',
            '\u{180E}',
            '\u{200B}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{206F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{FEFF}',
            '\u{FFA0}',
            '\u{FFFB}',
            '\u{1343F}',
            '\u{1D173}',
            '\u{E0001}',
            '\u{E007F}',
            '\u{E01EF}',
        ] {
            assert!(is_invisible(c), "{:04X}", u32::from(c));
        }
        for c in [
            'a',
            ' ',
            '\u{AC}',
            '\u{AE}',
            'é',
            '\u{A0}',
            '\u{2010}',
            '\u{2070}',
            '\u{3000}',
            '\u{3165}',
            'ß',
            '\u{10FFFF}',
        ] {
            assert!(!is_invisible(c), "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn negative_zero_billing_is_zero() {
        let mut c = cleaner_with(&[]);
        let mut r = tests_row();
        r[BILLING] = "0";
        let zero = c.clean(&ByteRecord::from(r.to_vec()), 2).unwrap();
        for amount in ["-0", "-0.00", " -0.0 ", "-1e-400", "0e5", "+0"] {
            r[BILLING] = amount;
            let other = c.clean(&ByteRecord::from(r.to_vec()), 2).unwrap();
            assert_eq!(other.id, zero.id, "{amount}");
            assert!(!other.billing_nulled, "{amount}");
            match other.doc.get("Billing Amount").unwrap() {
                Some(RawBsonRef::Double(v)) => {
                    assert!(v == 0.0 && v.is_sign_positive(), "{amount}: {v}")
                }
                v => panic!("{amount}: {v:?}"),
            }
        }
        r[BILLING] = "-1e-300";
        let tiny = c.clean(&ByteRecord::from(r.to_vec()), 2).unwrap();
        assert!(
            tiny.billing_nulled,
            "a tiny negative amount is still negative"
        );
        assert_eq!(
            tiny.doc.to_document().unwrap().get("Billing Amount"),
            Some(&Bson::Null)
        );
    }
}
