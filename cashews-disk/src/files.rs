//! The files of a cache directory: the directory itself (private to the user
//! running the cache) and the side files of large values. Everything a row
//! says about a file is hostile input: a side file is only ever a name this
//! backend makes, in the values directory, opened without following links,
//! a regular file of exactly the size the row records.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cashews_backend::{Error, Result};

/// The directory used when a `disk://` URL names none: `cashews` in the
/// user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`), else a
/// per-user directory in the system's temp dir (`cashews-<uid>`).
pub fn default_directory() -> PathBuf {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("cashews"))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cashews-{}", effective_uid())))
}

/// Creates `dir` (mode 0700) if missing and checks that it is private: a
/// directory owned by another user, or writable by other users, could have
/// its rows and files read or swapped, so it is refused.
pub(crate) fn prepare_directory(dir: &Path) -> Result<()> {
    let invalid = |why: String| Error::config(format!("disk directory {dir:?}: {why}"));
    create_private_dir(dir).map_err(|e| invalid(format!("cannot create it: {e}")))?;
    let meta = fs::metadata(dir).map_err(|e| invalid(format!("cannot read it: {e}")))?;
    if !meta.is_dir() {
        return Err(invalid("it is not a directory".into()));
    }
    check_private(&meta).map_err(invalid)
}

#[cfg(unix)]
fn check_private(meta: &fs::Metadata) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = effective_uid();
    if meta.uid() != me {
        return Err(format!(
            "it is owned by uid {}, not by this process's uid {me}; \
             a cache directory must be private to the user running the cache",
            meta.uid()
        ));
    }
    if meta.mode() & 0o002 != 0 {
        return Err(format!(
            "it is writable by other users (mode {:o}); use a private directory (chmod o-w)",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_meta: &fs::Metadata) -> std::result::Result<(), String> {
    Ok(())
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn effective_uid() -> u32 {
    0
}

/// `dir` and its missing parents, created 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a new file readable by its owner only.
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `path` empty with mode 0600 unless it exists (sqlite gives its
/// `-wal` and `-shm` files the database file's mode).
pub(crate) fn create_private_file(path: &Path) -> io::Result<()> {
    match private_file().open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// The side files of one shard: `values/s{shard:03}-{32 hex digits}.val`.
#[derive(Debug)]
pub(crate) struct SideFiles {
    dir: PathBuf,
    prefix: String,
    /// Reads are refused (a command running on a caller's thread must not
    /// do file I/O of any size); `refused` records that one was.
    reads_refused: Cell<bool>,
    refused: Cell<bool>,
}

/// How many hex digits the random part of a side file's name has.
const TOKEN_LEN: usize = 32;
const SUFFIX: &str = ".val";

impl SideFiles {
    pub(crate) fn new(directory: &Path, shard: u16) -> SideFiles {
        SideFiles {
            dir: directory.join("values"),
            prefix: format!("s{shard:03}-"),
            reads_refused: Cell::new(false),
            refused: Cell::new(false),
        }
    }

    /// Refuses reads from now (`true`) or allows them again; either way
    /// forgets an earlier refusal.
    pub(crate) fn refuse_reads(&self, refuse: bool) {
        self.reads_refused.set(refuse);
        self.refused.set(false);
    }

    /// Whether a read was refused since [`SideFiles::refuse_reads`].
    pub(crate) fn read_refused(&self) -> bool {
        self.refused.get()
    }

    /// Whether `name` is one this shard makes: nothing else is ever opened
    /// or removed, so a row cannot point at a path of its choosing.
    pub(crate) fn owns(&self, name: &str) -> bool {
        name.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
            .is_some_and(|token| {
                token.len() == TOKEN_LEN
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
    }

    /// Writes `value` to a new side file (a private temp file renamed into
    /// place, removed if anything fails); its name.
    pub(crate) fn write(&self, value: &[u8]) -> Result<String> {
        create_private_dir(&self.dir).map_err(io_error)?;
        let name = format!(
            "{}{}{SUFFIX}",
            self.prefix,
            cashews_backend::layout::random_token()
        );
        let temp = self.dir.join(format!(".{name}.tmp"));
        let written = private_file()
            .open(&temp)
            .and_then(|mut file| file.write_all(value))
            .and_then(|()| fs::rename(&temp, self.dir.join(&name)));
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            return Err(io_error(error));
        }
        Ok(name)
    }

    /// The bytes of side file `name`, which its row says holds `len` bytes;
    /// `None` (a miss) for a name this shard does not make, a link, anything
    /// but a regular file, or a file of another size.
    pub(crate) fn read(&self, name: &str, len: u64) -> Option<Vec<u8>> {
        if !self.owns(name) {
            return None;
        }
        if self.reads_refused.get() {
            self.refused.set(true);
            return None;
        }
        let mut file = open_no_follow(&self.dir.join(name)).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() != len {
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).ok()?);
        // One byte more than recorded tells a file that grew meanwhile.
        (&mut file).take(len + 1).read_to_end(&mut bytes).ok()?;
        (bytes.len() as u64 == len).then_some(bytes)
    }

    /// Removes side file `name` if it is one this shard makes.
    pub(crate) fn remove(&self, name: &str) {
        if self.owns(name) {
            let _ = fs::remove_file(self.dir.join(name));
        }
    }

    /// This shard's side files and temp files older than `grace` that no row
    /// names (`named` lists what the rows name, read after the listing):
    /// what a process killed between writing a file and committing its row,
    /// or a failed write, left behind. Returns how many were removed.
    pub(crate) fn sweep(
        &self,
        grace: Duration,
        named: impl FnOnce() -> Result<HashSet<String>>,
    ) -> Result<usize> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(io_error(error)),
        };
        let now = SystemTime::now();
        let candidates: Vec<(String, bool)> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let temp = name
                    .strip_prefix('.')
                    .and_then(|rest| rest.strip_suffix(".tmp"))
                    .filter(|inner| self.owns(inner))
                    .is_some();
                if !temp && !self.owns(&name) {
                    return None;
                }
                let meta = entry.metadata().ok()?;
                let age = now
                    .duration_since(meta.modified().ok()?)
                    .unwrap_or_default();
                (meta.is_file() && age >= grace).then_some((name, temp))
            })
            .collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        let named = named()?;
        let mut removed = 0;
        for (name, temp) in candidates {
            if (temp || !named.contains(&name)) && fs::remove_file(self.dir.join(&name)).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO planted under a valid name does not hang the open.
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> io::Result<File> {
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a link"));
    }
    File::open(path)
}

pub(crate) fn io_error(error: io::Error) -> Error {
    Error::backend("disk", false, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_shard_makes_are_its_own() {
        let files = SideFiles::new(Path::new("/cache"), 3);
        assert!(files.owns("s003-0123456789abcdef0123456789abcdef.val"));
        for name in [
            "s004-0123456789abcdef0123456789abcdef.val",
            "s003-0123456789abcdef0123456789abcdeF.val",
            "s003-0123456789abcdef0123456789abcde.val",
            "s003-../../../../../etc/passwd/0123.val",
            "/etc/passwd",
            "../shard-000.db",
            "s003-0123456789abcdef0123456789abcdef.val/..",
            "",
        ] {
            assert!(!files.owns(name), "{name}");
        }
    }
}
