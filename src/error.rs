//! The error kinds hcctl distinguishes, because each one maps to a documented exit code.
//!
//! Errors carry an `anyhow` chain so that messages say what failed and where; the *kind* only
//! decides the exit code and whether anything may have been written.

use std::fmt;

/// An error that ends a command.
#[derive(Debug)]
pub enum Error {
    /// Bad usage or input found before anything was written (exit 2): a missing file, a missing
    /// column, an invalid flag value.
    Usage(anyhow::Error),
    /// A failure while running (exit 1): server unreachable, authentication failed, a write
    /// refused. The command is safe to repeat.
    Failed(anyhow::Error),
    /// `hcctl verify` found documents missing or different (exit 4).
    Differences(String),
    /// `hcctl backup-status`: the data is not protected as configured (exit 1).
    Unhealthy(String),
    /// `hcctl backup-status` could not query AWS (exit 3): unreachable, or AWS refused.
    AwsUnavailable(anyhow::Error),
    /// `hcctl run`: the task's container ended with this exit code (passed on as hcctl's own,
    /// so a pipeline sees the migration's 2, or verify's 4, as if it had run locally).
    Exit(u8, String),
    /// Another hcctl process holds what this one needs (a backup dump pauses the writers):
    /// nothing was done; try again later (exit 75, EX_TEMPFAIL).
    Busy(String),
}

impl Error {
    pub fn usage(msg: impl fmt::Display) -> Self {
        Error::Usage(anyhow::anyhow!("{msg}"))
    }

    pub fn failed(msg: impl fmt::Display) -> Self {
        Error::Failed(anyhow::anyhow!("{msg}"))
    }

    /// The documented exit code (README, "Exit codes").
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Failed(_) => 1,
            Error::Differences(_) => 4,
            Error::Unhealthy(_) => 1,
            Error::AwsUnavailable(_) => 3,
            Error::Exit(code, _) => *code,
            Error::Busy(_) => 75,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#}` prints the whole context chain on one line: "reading x.csv: line 3: …".
        match self {
            Error::Usage(e) | Error::Failed(e) | Error::AwsUnavailable(e) => write!(f, "{e:#}"),
            Error::Differences(msg)
            | Error::Unhealthy(msg)
            | Error::Exit(_, msg)
            | Error::Busy(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// Attach context to a result and classify it in one step.
pub trait Classify<T> {
    /// A failure during the run (exit 1), with `what` as context.
    fn failed(self, what: impl FnOnce() -> String) -> Result<T, Error>;
    /// A usage/input error (exit 2), with `what` as context.
    fn usage(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T, E> Classify<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn failed(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::Failed(e.into().context(what())))
    }

    fn usage(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::Usage(e.into().context(what())))
    }
}
