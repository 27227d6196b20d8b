//! End-user passwords: argon2id hashes in PHC string format with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1), the length rule checked before hashing, bcrypt hashes from the old
//! system accepted and flagged for upgrade, and a dummy hash so that verifying an unknown user
//! costs the same time as verifying a known one.

use std::io::{BufRead, IsTerminal, Read};
use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::Error;

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB of memory, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;
pub const MIN_LENGTH: usize = 12;
/// Longer inputs are refused rather than hashed (a multi-megabyte "password" is an attack).
pub const MAX_LENGTH: usize = 1024;

fn argon2() -> Result<Argon2<'static>, Error> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| Error::failed(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Characters that show nothing, or change how the others show: controls (NUL, tab, …), format
/// characters (zero-width spaces and joiners, bidi controls such as U+202E and U+2066, tag
/// characters U+E0000–U+E007F, the Mongolian vowel separator U+180E, the byte-order mark, the
/// soft hyphen), the other default-ignorable code points that are not combining marks (the
/// Hangul fillers U+115F, U+1160, U+3164, U+FFA0) and the blank braille pattern U+2800.
/// (Default-ignorable marks, such as variation selectors, are allowed: they add nothing to the
/// length, which counts what is seen.) init-mongo.js tests the same categories.
fn invisible(c: char) -> bool {
    let category = c.general_category();
    c.is_control()
        || category == GeneralCategory::Format
        || c == '\u{2800}'
        || (default_ignorable(c) && category != GeneralCategory::NonspacingMark)
}

/// Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt), which
/// init-mongo.js reads as `\p{Default_Ignorable_Code_Point}`.
fn default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// A combining mark with nothing before it to sit on: at the start of a word (the password's
/// start, or after a space). A string of marks shows as floating accents, if at all.
fn starts_with_mark(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.general_category_group() == GeneralCategoryGroup::Mark)
}

/// The length a password is judged by: characters as a person sees them (grapheme clusters: a
/// letter with its combining marks is one, as is an emoji), surrounding whitespace left out and
/// each run of inner whitespace counted once, so that twelve spaces, "          ab", or one
/// letter with eleven accents are not twelve characters.
pub fn effective_length(password: &str) -> usize {
    password
        .split_whitespace()
        .map(|word| word.graphemes(true).count())
        .sum::<usize>()
        + password.split_whitespace().count().saturating_sub(1)
}

/// The password rules, checked before any hashing; the same for end users and for the
/// database accounts (and init-mongo.js).
pub fn check_policy(password: &str) -> Result<(), Error> {
    if password.chars().any(invisible) {
        return Err(Error::usage(
            "the password contains control or invisible characters (NUL, tab, zero-width \
             space, bidi controls such as U+202E, fillers such as U+3164 or U+2800, tag \
             characters, …): use visible characters and spaces",
        ));
    }
    if password.split_whitespace().any(starts_with_mark) {
        return Err(Error::usage(
            "the password has a combining mark with no letter before it (at its start or after \
             a space): use visible characters and spaces",
        ));
    }
    let n = password.chars().count();
    if effective_length(password) < MIN_LENGTH {
        return Err(Error::usage(format!(
            "the password is too short: at least {MIN_LENGTH} characters are required, counted \
             as they are seen (a letter with its accents is one; surrounding and repeated spaces \
             do not count)"
        )));
    }
    if n > MAX_LENGTH {
        return Err(Error::usage(format!(
            "the password is too long: at most {MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

/// A new argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), after the rules.
pub fn hash(password: &str) -> Result<String, Error> {
    check_policy(password)?;
    hash_unchecked(password)
}

/// The hash without the length rule: only for re-hashing a legacy password that just verified.
pub fn hash_unchecked(password: &str) -> Result<String, Error> {
    if password.chars().count() > MAX_LENGTH {
        return Err(Error::usage("the password is too long"));
    }
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::failed(format!("hashing the password: {e}")))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// Matches, but the hash is bcrypt or weaker argon2 parameters: store a new one.
    MatchNeedsRehash,
    NoMatch,
}

/// Verify against an argon2 PHC string or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
pub fn verify(password: &str, stored: &str) -> Verdict {
    if password.len() > MAX_LENGTH * 4 {
        return Verdict::NoMatch;
    }
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verdict::MatchNeedsRehash,
            _ => Verdict::NoMatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verdict::NoMatch;
    };
    // Verify with the parameters the hash was made with (they are in the PHC string).
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verdict::NoMatch;
    }
    if is_current(&parsed) {
        Verdict::Match
    } else {
        Verdict::MatchNeedsRehash
    }
}

/// A hash as strong as the ones made today: argon2id version 0x13, at least today's parameters,
/// a full 32-byte tag and a salt of at least 16 bytes. Anything else is replaced at the next
/// successful login.
fn is_current(parsed: &PasswordHash<'_>) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && parsed.hash.is_some_and(|h| h.len() == 32)
        && parsed.salt.is_some_and(|salt| salt.as_str().len() >= 22)
        && Params::try_from(parsed).is_ok_and(|p| {
            p.m_cost() >= MEMORY_KIB && p.t_cost() >= ITERATIONS && p.p_cost() >= LANES
        })
}

/// [`verify`] against a user's stored hash, or against the dummy for an unknown user, taking at
/// least the time of one argon2id verification with today's parameters either way: an unknown
/// user, a wrong password and a legacy (bcrypt or weak) hash are never faster than a known user
/// with a current hash, so timing does not tell who exists.
pub fn verify_user(password: &str, stored: Option<&str>) -> Verdict {
    let dummy = dummy_hash();
    match stored {
        None => {
            let _ = verify(password, dummy);
            Verdict::NoMatch
        }
        Some(stored) => {
            let verdict = verify(password, stored);
            let current = PasswordHash::new(stored).is_ok_and(|p| is_current(&p));
            if !current {
                let _ = verify(password, dummy);
            }
            verdict
        }
    }
}

/// A valid argon2id hash of a random password, made once: verifying an unknown user runs the
/// same computation as verifying a known one, so timing does not reveal who exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random = SaltString::generate(&mut OsRng);
        argon2()
            .ok()
            .and_then(|a| a.hash_password(random.as_str().as_bytes(), &salt).ok())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// How the password reaches hcctl: never a command-line argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Prompt on the terminal without echo (asked twice when `confirm`).
    Terminal,
    /// One line from standard input (for scripts).
    Stdin,
}

/// Read a password from the terminal (no echo) or one line of standard input.
pub fn read(source: Source, prompt: &str, confirm: bool) -> Result<String, Error> {
    match source {
        Source::Stdin => {
            // At most what a password of MAX_LENGTH characters can take, plus a line end: a huge
            // input is refused without being held in memory.
            let limit = (MAX_LENGTH * 4 + 2) as u64;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .take(limit + 1)
                .read_line(&mut line)
                .map_err(|e| {
                    Error::usage(format!("reading the password from standard input: {e}"))
                })?;
            if line.len() as u64 > limit {
                return Err(Error::usage(format!(
                    "the password is too long: at most {MAX_LENGTH} characters"
                )));
            }
            let pw = line.trim_end_matches(['\n', '\r']).to_string();
            if pw.is_empty() {
                return Err(Error::usage("no password on standard input"));
            }
            Ok(pw)
        }
        Source::Terminal => {
            if !std::io::stdin().is_terminal() {
                return Err(Error::usage(
                    "no terminal to ask for the password: pipe it with --password-stdin",
                ));
            }
            let pw = rpassword::prompt_password(prompt)
                .map_err(|e| Error::usage(format!("reading the password: {e}")))?;
            if confirm {
                let again = rpassword::prompt_password("Repeat it: ")
                    .map_err(|e| Error::usage(format!("reading the password: {e}")))?;
                if again != pw {
                    return Err(Error::usage(
                        "the two passwords differ; nothing was changed",
                    ));
                }
            }
            Ok(pw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_with_owasp_parameters() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify("correct horse battery", &h), Verdict::Match);
        assert_eq!(verify("correct horse batterY", &h), Verdict::NoMatch);
        assert_ne!(hash("correct horse battery").unwrap(), h, "salted");
    }

    #[test]
    fn short_passwords_are_refused_before_hashing() {
        let err = hash("elevenchars").unwrap_err().to_string();
        assert!(err.contains("at least 12 characters"), "{err}");
        assert!(hash("twelve chars").is_ok());
        // Characters, not bytes.
        assert!(check_policy("ééééééééééé").is_err());
        // Blank, padded or invisible passwords.
        for blank in [
            " ".repeat(12),
            "\t".repeat(12),
            "\0".repeat(12),
            format!("a{}", "\u{200B}".repeat(11)),
            format!("{}ab", " ".repeat(10)),
            "ab     cd          ef".to_string(),
        ] {
            assert!(check_policy(&blank).is_err(), "{blank:?} accepted");
        }
        assert_eq!(effective_length("  correct   horse battery "), 21);
        assert!(check_policy("correct horse").is_ok());
    }

    /// Issue 24, finding 9: the rule counted code points, so twelve invisible characters, or
    /// one letter with eleven combining marks, passed. Now it counts what is seen and refuses
    /// bidi controls, fillers, tag characters and marks with nothing to sit on.
    #[test]
    fn password_length_counts_visible_characters_not_code_points() {
        for invisible in [
            '\u{202E}', '\u{2066}', '\u{3164}', '\u{2800}', '\u{180E}', '\u{FFA0}',
        ] {
            let twelve = invisible.to_string().repeat(12);
            let err = check_policy(&twelve).unwrap_err().to_string();
            assert!(err.contains("invisible characters"), "{invisible:?}: {err}");
            // Hidden inside an otherwise good password too.
            let inside = format!("correct horse{invisible}battery");
            assert!(
                check_policy(&inside).is_err(),
                "{invisible:?} inside accepted"
            );
        }
        for other in [
            '\u{115F}',
            '\u{1160}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{E0001}',
            '\u{200E}',
            '\u{061C}',
        ] {
            assert!(
                check_policy(&format!("correct horse{other}")).is_err(),
                "{other:?}"
            );
        }
        // One letter and eleven combining marks: one character as seen.
        let accented = format!("a{}", "\u{0301}".repeat(11));
        assert_eq!(effective_length(&accented), 1);
        let err = check_policy(&accented).unwrap_err().to_string();
        assert!(err.contains("at least 12 characters"), "{err}");
        // Marks alone, or after spaces, sit on nothing.
        for marks in [
            "\u{0301}".repeat(12),
            " \u{0301}".repeat(12),
            format!("password{}", " \u{20DD}".repeat(6)),
        ] {
            let err = check_policy(&marks).unwrap_err().to_string();
            assert!(
                err.contains("combining mark with no letter"),
                "{marks:?}: {err}"
            );
        }
        // Accented words, other scripts and emoji count as seen, and pass at twelve.
        assert_eq!(effective_length("ééééééééééé\u{0301}"), 11);
        assert!(check_policy("Crème brûlée!").is_ok());
        assert!(check_policy("パスワードは十二文字です").is_ok());
        assert!(check_policy(&"\u{1F600}".repeat(12)).is_ok());
        assert!(check_policy(&"\u{1F600}".repeat(11)).is_err());
        assert_eq!(effective_length("I\u{2764}\u{FE0F}my dog Rex!"), 13);
        assert!(check_policy("I\u{2764}\u{FE0F}my dog Rex!").is_ok());
    }

    #[test]
    fn only_todays_argon2id_counts_as_current() {
        let make = |version: Version, len: usize| {
            let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(len)).unwrap();
            Argon2::new(Algorithm::Argon2id, version, params)
                .hash_password(b"some long password", &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            verify("some long password", &make(Version::V0x13, 32)),
            Verdict::Match
        );
        for weaker in [make(Version::V0x10, 32), make(Version::V0x13, 10)] {
            assert_eq!(
                verify("some long password", &weaker),
                Verdict::MatchNeedsRehash,
                "{weaker}"
            );
        }
    }

    #[test]
    fn a_legacy_hash_is_never_checked_faster_than_an_unknown_user() {
        // Without the dummy verification a cost-4 bcrypt check takes about 1 ms against an
        // argon2id one's hundreds: the fastest of three alternating runs tells them apart.
        let legacy = bcrypt::hash("legacy password 1", 4).unwrap();
        dummy_hash();
        let time = |stored: Option<&str>| {
            let started = std::time::Instant::now();
            let _ = verify_user("wrong password!!", stored);
            started.elapsed()
        };
        let (mut unknown, mut bcrypt) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            unknown.push(time(None));
            bcrypt.push(time(Some(&legacy)));
        }
        let (unknown, bcrypt) = (unknown.iter().min(), bcrypt.iter().min());
        assert!(
            bcrypt
                .zip(unknown)
                .is_some_and(|(b, u)| *b >= u.mul_f64(0.8)),
            "bcrypt {bcrypt:?} vs unknown {unknown:?}"
        );
    }

    #[test]
    fn bcrypt_hashes_verify_and_ask_for_an_upgrade() {
        let old = bcrypt::hash("legacy password 1", 4).unwrap();
        assert!(old.starts_with("$2b$"));
        assert_eq!(verify("legacy password 1", &old), Verdict::MatchNeedsRehash);
        assert_eq!(verify("legacy password 2", &old), Verdict::NoMatch);
    }

    #[test]
    fn weaker_argon2_parameters_ask_for_an_upgrade() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"some long password", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            verify("some long password", &weak),
            Verdict::MatchNeedsRehash
        );
    }

    #[test]
    fn garbage_never_matches_and_the_dummy_is_a_real_hash() {
        assert_eq!(verify("x", "not a hash"), Verdict::NoMatch);
        assert!(dummy_hash().starts_with("$argon2id$"));
        assert_eq!(verify("anything at all", dummy_hash()), Verdict::NoMatch);
    }
}
