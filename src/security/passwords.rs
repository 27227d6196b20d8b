//! End-user passwords: argon2id hashes in PHC string format with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1), the length rule checked before hashing, bcrypt hashes from the old
//! system accepted and flagged for upgrade, and a dummy hash so that verifying an unknown user
//! costs the same time as verifying a known one.

use std::io::{BufRead, IsTerminal};
use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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

/// The password rules, checked before any hashing. Counted in characters, not bytes.
pub fn check_policy(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(Error::usage(format!(
            "the password is too short: at least {MIN_LENGTH} characters are required"
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
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() >= MEMORY_KIB && p.t_cost() >= ITERATIONS && p.p_cost() >= LANES
        });
    if current {
        Verdict::Match
    } else {
        Verdict::MatchNeedsRehash
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
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                Error::usage(format!("reading the password from standard input: {e}"))
            })?;
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
