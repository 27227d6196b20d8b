//! The files a run writes beside the database, the quarantine and the report: checked against
//! the input before anything is read, written privately, and put in place only when the run
//! succeeds.
//!
//! An output FILE is written as `FILE.partial`, created exclusively with mode 0600 (so a link or
//! file planted under either name is never followed nor written into) and held under an
//! exclusive lock for the whole run: a second run writing the same output is refused instead of
//! silently replacing the first one's rejected rows. When the run succeeds, the partial file is
//! renamed to FILE, which replaces whatever FILE was (a symbolic link is replaced, not followed);
//! when it fails or is interrupted, the partial file is removed, so no incomplete list of patient
//! rows is left behind. A partial file left by a run killed outright (SIGKILL) is not locked any
//! more: the next run writing that output removes it. Devices and pipes (`/dev/null`,
//! `/dev/stdout`, `>(…)`) are written in place, their mode untouched.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::read::io_reason;
use crate::error::Error;

/// An output being written: [`OutFile::commit`] puts it in place; dropped uncommitted, it is
/// removed.
#[derive(Debug)]
pub struct OutFile {
    target: PathBuf,
    file: File,
    /// Where the file is written until it is committed; `None` for a device written in place.
    partial: Option<PathBuf>,
}

/// The partial files of this process that are not committed yet: a signal removes them before
/// the process exits (destructors do not run then).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Remove every partial output file of this process, for a signal that ends it now. The
/// registry stays locked: no output is created or committed between this and the exit.
pub fn abandon_all() {
    let guard = pending();
    for path in guard.iter() {
        let _ = fs::remove_file(path);
    }
    std::mem::forget(guard);
}

/// `FILE` → `FILE.partial`, beside it (a rename does not cross file systems).
pub fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    target.with_file_name(name)
}

impl OutFile {
    /// Start writing the output `target` (`flag` names it in messages). Exit 2 when it cannot be
    /// created, or when another run is writing it.
    pub fn create(flag: &str, target: &Path) -> Result<OutFile, Error> {
        let refuse = |why: String| {
            Error::usage(format!(
                "{flag} {}: {why} (choose another path)",
                target.display()
            ))
        };
        if target.file_name().is_none() {
            return Err(refuse("that is not a file name".into()));
        }
        if let Some(file) = open_device(target).map_err(|e| refuse(io_reason(&e)))? {
            return Ok(OutFile {
                target: target.to_path_buf(),
                file,
                partial: None,
            });
        }
        let partial = partial_path(target);
        // Registered while the registry is held, so a signal cannot come between the two.
        let mut registry = pending();
        let file = match lock_partial(&partial) {
            Ok(Some(file)) => file,
            Ok(None) => {
                return Err(Error::usage(format!(
                    "{flag} {}: another hcctl run is writing it (its partial file {} is locked): \
                     wait for that run to finish, or choose another path",
                    target.display(),
                    partial.display()
                )))
            }
            Err(e) => {
                return Err(refuse(format!(
                    "cannot create {}: {}",
                    partial.display(),
                    io_reason(&e)
                )))
            }
        };
        registry.push(partial.clone());
        Ok(OutFile {
            target: target.to_path_buf(),
            file,
            partial: Some(partial),
        })
    }

    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Put the output in place: flushed to disk, then renamed over the target (atomically: the
    /// target is either the old file or the whole new one).
    pub fn commit(mut self) -> Result<(), Error> {
        let Some(partial) = self.partial.take() else {
            return Ok(());
        };
        let synced = self.file.sync_all();
        // The registry is held for the rename only: a signal waits for it, not for the sync.
        let mut registry = pending();
        let result = synced.and_then(|()| fs::rename(&partial, &self.target));
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        registry.retain(|p| p != &partial);
        drop(registry);
        result.map_err(|e| {
            Error::failed(format!(
                "cannot put {} in place: {}",
                self.target.display(),
                io_reason(&e)
            ))
        })?;
        // The rename itself survives a crash once the directory is on disk too.
        if let Ok(dir) = File::open(directory_of(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if let Some(partial) = self.partial.take() {
            // Removed while still locked (the file closes after this): a run waiting for the
            // lock finds the name gone, not an unlocked file it would take for a stale one.
            let mut registry = pending();
            let _ = fs::remove_file(&partial);
            registry.retain(|p| p != &partial);
        }
    }
}

/// An existing device or pipe at `target`, opened for writing in place; `None` when the target
/// is (to be) a regular file. A symbolic link is followed only when it is the user's own (or
/// root's, like `/dev/stdout`) and leads to a character device or a pipe: one planted by someone
/// else is replaced at the end like any other file.
#[cfg(unix)]
fn open_device(target: &Path) -> io::Result<Option<File>> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let is_device = |m: &Metadata| m.file_type().is_char_device() || m.file_type().is_fifo();
    let flags = if meta.file_type().is_symlink() {
        let owner = meta.uid();
        let own = owner == 0 || owner == rustix::process::geteuid().as_raw();
        if !(own && fs::metadata(target).is_ok_and(|m| is_device(&m))) {
            return Ok(None);
        }
        OFlags::WRONLY | OFlags::CLOEXEC
    } else if is_device(&meta) {
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW
    } else if meta.is_dir() {
        return Err(io::Error::other("it is a directory"));
    } else if meta.is_file() {
        return Ok(None);
    } else {
        return Err(io::Error::other(
            "it is neither a regular file nor a character device or pipe",
        ));
    };
    let file = File::from(rustix::fs::open(target, flags, Mode::empty())?);
    // The name may have been swapped since it was looked at: only a device is written in place.
    if !is_device(&file.metadata()?) {
        return Err(io::Error::other("it changed while being opened"));
    }
    Ok(Some(file))
}

#[cfg(not(unix))]
fn open_device(_target: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

/// How many times a partial file is taken again after another run removed it under our hands.
const LOCK_ATTEMPTS: usize = 8;

/// Create `partial` exclusively and lock it. `None` when another run holds it. A partial file
/// nobody holds is the remains of a run killed outright: it is removed, and created afresh.
fn lock_partial(partial: &Path) -> io::Result<Option<File>> {
    for _ in 0..LOCK_ATTEMPTS {
        match create_private(partial) {
            Ok(file) => {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(fs::TryLockError::Error(e)) => return Err(e),
                }
                // Another run may have found it unlocked and removed it before the lock was
                // taken: only the file that still has the name counts.
                if still_named(&file, partial) {
                    return Ok(Some(file));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let Some(existing) = open_existing(partial)? else {
                    // Not a regular file (a planted link, a pipe): never ours, so removed.
                    remove_if_present(partial)?;
                    continue;
                };
                match existing.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(fs::TryLockError::Error(e)) => return Err(e),
                }
                if still_named(&existing, partial) {
                    remove_if_present(partial)?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} keeps being replaced by another process",
        partial.display()
    )))
}

/// A new file readable by its owner only; fails if the name exists (as anything, links
/// included).
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// An existing partial file, opened to test its lock only: never through a link, never
/// waiting on a pipe. `None` when the name is not a regular file or is gone.
#[cfg(unix)]
fn open_existing(path: &Path) -> io::Result<Option<File>> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => {
            let file = File::from(fd);
            Ok(file.metadata()?.is_file().then_some(file))
        }
        Err(e) if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOENT => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(f.metadata()?.is_file().then_some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `path` still names the open `file` (not a link to it, nor a file created since).
fn still_named(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => identity(&a) == identity(&b),
        _ => false,
    }
}

#[cfg(unix)]
fn identity(m: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_m: &Metadata) -> Option<(u64, u64)> {
    None
}

/// Refuse outputs (`--quarantine`, `--report`) that would overwrite the input or each other:
/// the input (a file, or the file standard input reads) and every path a run creates or
/// replaces (each output and its partial file) must all be different files. Devices such as
/// /dev/null are not files and are left alone. Found before anything is read or written.
pub fn check_outputs(input: &str, outputs: &[(&str, &Path)]) -> Result<(), Error> {
    let input_file = if input == "-" {
        stdin_metadata()
    } else {
        fs::metadata(input).ok()
    }
    .filter(Metadata::is_file)
    .and_then(|m| identity(&m));
    // A device is written in place, without a partial file.
    let places = |path: &Path| {
        let mut places = vec![path.to_path_buf()];
        if fs::metadata(path).map_or(true, |m| m.is_file()) {
            places.push(partial_path(path));
        }
        places
    };
    for (i, (flag, path)) in outputs.iter().enumerate() {
        // Found now rather than after the load, when the report is written.
        let dir = directory_of(path);
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "{flag} {}: the directory {} does not exist (create it or choose another path)",
                path.display(),
                dir.display()
            )));
        }
        for place in places(path) {
            let is_input = input_file.is_some()
                && fs::metadata(&place)
                    .ok()
                    .filter(Metadata::is_file)
                    .and_then(|m| identity(&m))
                    == input_file;
            if !is_input {
                continue;
            }
            let what = if place.as_path() == *path {
                format!("{flag} {} is", path.display())
            } else {
                format!(
                    "{flag} {}: its partial file {} is",
                    path.display(),
                    place.display()
                )
            };
            let stdin = if input == "-" {
                " (standard input reads it)"
            } else {
                ""
            };
            return Err(Error::usage(format!(
                "{what} the input file itself{stdin}: it would be replaced while it is read \
                 (write it somewhere else)"
            )));
        }
        let clash = outputs[..i].iter().find(|(_, other)| {
            places(other)
                .iter()
                .any(|a| places(path).iter().any(|b| same_file(a, b)))
        });
        if let Some((other, _)) = clash {
            return Err(Error::usage(format!(
                "{flag} and {other} name the same file {}: give each its own",
                path.display()
            )));
        }
    }
    Ok(())
}

/// What standard input reads, if it can be told (a file redirected with `<`).
#[cfg(unix)]
fn stdin_metadata() -> Option<Metadata> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    File::from(fd).metadata().ok()
}

#[cfg(not(unix))]
fn stdin_metadata() -> Option<Metadata> {
    None
}

/// Whether two paths name one regular file (or one file yet to be created).
fn same_file(a: &Path, b: &Path) -> bool {
    let regular_or_absent = |p: &Path| fs::metadata(p).map_or(true, |m| m.file_type().is_file());
    if !(regular_or_absent(a) && regular_or_absent(b)) {
        return false;
    }
    if let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) {
        if let (Some(ia), Some(ib)) = (identity(&ma), identity(&mb)) {
            return ia == ib;
        }
    }
    // Not created yet: the same directory (links resolved) and the same name.
    let place = |p: &Path| Some(fs::canonicalize(directory_of(p)).ok()?.join(p.file_name()?));
    place(a).is_some_and(|pa| Some(pa) == place(b))
}

/// The directory a file is (to be) created in: "x.csv" → ".".
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_is_written_aside_and_put_in_place_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let partial = dir.path().join("out.csv.partial");
        let mut out = OutFile::create("--report", &target).unwrap();
        out.write_all(b"rows").unwrap();
        assert!(!target.exists() && partial.exists());
        // A second writer of the same output is refused while the first holds it.
        let busy = OutFile::create("--report", &target)
            .unwrap_err()
            .to_string();
        assert!(busy.contains("another hcctl run is writing it"), "{busy}");
        out.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"rows");
        assert!(!partial.exists());

        // Dropped uncommitted (a failed run): nothing left, the old file untouched.
        let mut out = OutFile::create("--report", &target).unwrap();
        out.write_all(b"half").unwrap();
        drop(out);
        assert!(!partial.exists());
        assert_eq!(fs::read(&target).unwrap(), b"rows");
    }

    #[test]
    fn an_output_whose_partial_file_is_the_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("q.csv.partial");
        fs::write(&input, b"rows").unwrap();
        let target = dir.path().join("q.csv");
        let err = check_outputs(input.to_str().unwrap(), &[("--quarantine", &target)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("its partial file"), "{err}");
        assert!(err.contains("is the input file itself"), "{err}");
        let report = dir.path().join("q.csv.partial.x");
        let err = check_outputs("-", &[("--quarantine", &target), ("--report", &input)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--report and --quarantine name the same file"),
            "{err}"
        );
        assert!(check_outputs("-", &[("--quarantine", &target), ("--report", &report)]).is_ok());
        let err = OutFile::create("--report", Path::new(".."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a file name"), "{err}");
    }

    #[test]
    fn a_partial_file_nobody_holds_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("q.csv");
        // Left by a run killed outright; and a link planted in its place.
        fs::write(partial_path(&target), b"old rows").unwrap();
        let out = OutFile::create("--quarantine", &target).unwrap();
        out.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"");
        #[cfg(unix)]
        {
            let victim = dir.path().join("victim");
            fs::write(&victim, b"keep").unwrap();
            std::os::unix::fs::symlink(&victim, partial_path(&target)).unwrap();
            let mut out = OutFile::create("--quarantine", &target).unwrap();
            out.write_all(b"new").unwrap();
            out.commit().unwrap();
            assert_eq!(fs::read(&victim).unwrap(), b"keep");
            assert_eq!(fs::read(&target).unwrap(), b"new");
        }
    }
}
