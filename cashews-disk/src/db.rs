//! One shard: a sqlite file and the side files of its large values. Every
//! method is synchronous and runs on the shard's own thread.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use cashews_backend::backend::{Exist, Expiry, SetOptions};
use cashews_backend::layout::parse_counter;
use cashews_backend::layout::TAGS_PREFIX;
use cashews_backend::{bits, glob, Clock, Error, Result};
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::files::{self, SideFiles};
use crate::{DiskConfig, Eviction};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL,
    value BLOB,
    file TEXT,
    size INTEGER NOT NULL,
    expires_at INTEGER,
    stored_at INTEGER NOT NULL,
    used_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_expiry ON cache(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 0), size INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS cache_insert AFTER INSERT ON cache
    BEGIN UPDATE meta SET size = size + NEW.size WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS cache_delete AFTER DELETE ON cache
    BEGIN UPDATE meta SET size = size - OLD.size WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS cache_update AFTER UPDATE OF size ON cache
    BEGIN UPDATE meta SET size = size - OLD.size + NEW.size WHERE id = 0; END;
";

/// A row of the types this backend writes. A row of other SQL types was
/// written by something else (a damaged file, a writer of the directory): it
/// reads as missing, is replaced by a write and goes with a delete or purge.
macro_rules! well_typed {
    () => {
        "(typeof(key) = 'text' AND typeof(kind) = 'integer' \
         AND typeof(value) IN ('blob', 'null') AND typeof(file) IN ('text', 'null') \
         AND typeof(size) = 'integer' AND typeof(expires_at) IN ('integer', 'null'))"
    };
}
const WELL_TYPED: &str = well_typed!();

/// A well-typed row that has not expired, given `?2` = now.
const LIVE: &str = concat!(
    "((expires_at IS NULL OR expires_at > ?2) AND ",
    well_typed!(),
    ")"
);

/// What a key holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Data {
    /// Values, counters, lock tokens, bit strings.
    Bytes(Vec<u8>),
    /// A set of strings (`set_add`).
    Set(BTreeSet<String>),
    /// The timestamps of a sliding window (`slice_incr`).
    Window(Vec<u64>),
}

/// A key's data and its deadline (unix ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) data: Data,
    pub(crate) expires_at: Option<u64>,
}

impl Data {
    fn kind(&self) -> i64 {
        match self {
            Data::Bytes(_) => 0,
            Data::Set(_) => 1,
            Data::Window(_) => 2,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Data::Bytes(b) => b.clone(),
            Data::Set(members) => {
                let mut out = Vec::new();
                for m in members {
                    out.extend_from_slice(&(m.len() as u32).to_le_bytes());
                    out.extend_from_slice(m.as_bytes());
                }
                out
            }
            Data::Window(stamps) => stamps.iter().flat_map(|t| t.to_le_bytes()).collect(),
        }
    }

    /// Decodes a row; `None` for bytes that are not what `kind` says (a
    /// damaged file), which reads as a missing key.
    fn decode(kind: i64, bytes: Vec<u8>) -> Option<Data> {
        match kind {
            0 => Some(Data::Bytes(bytes)),
            1 => {
                let mut members = BTreeSet::new();
                let mut rest = bytes.as_slice();
                while !rest.is_empty() {
                    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
                    let member = rest.get(4..4 + len)?;
                    members.insert(String::from_utf8(member.to_vec()).ok()?);
                    rest = &rest[4 + len..];
                }
                Some(Data::Set(members))
            }
            2 if bytes.len() % 8 == 0 => Some(Data::Window(
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            )),
            _ => None,
        }
    }
}

pub(crate) fn deadline(now: u64, ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| now.saturating_add((ttl.as_millis() as u64).max(1)))
}

pub(crate) fn sql_error(error: rusqlite::Error) -> Error {
    let transient = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    Error::backend("disk", transient, error)
}

/// The bytes a row of `key` holds: inline, or in its side file, whose size
/// is the row's `size` less the key's length. A side file that is not what
/// the row says (removed by another process meanwhile, or tampered with)
/// reads as a miss.
fn row_bytes(
    files: &SideFiles,
    key: &str,
    inline: Option<Vec<u8>>,
    file: Option<&str>,
    size: i64,
) -> Option<Vec<u8>> {
    match (inline, file) {
        (Some(bytes), _) => Some(bytes),
        (None, Some(file)) => {
            let len = u64::try_from(size).ok()?.checked_sub(key.len() as u64)?;
            files.read(file, len)
        }
        (None, None) => Some(Vec::new()),
    }
}

/// Where the bytes of a live plain value are: inline, or in a side file.
struct BytesRow {
    inline: Option<Vec<u8>>,
    file: Option<String>,
    size: i64,
}

/// The row of `key`'s live plain value at `now` (`None`: no live value, or
/// one of another kind). The one query of both `get` paths.
fn live_bytes(conn: &Connection, key: &str, now: u64) -> rusqlite::Result<Option<BytesRow>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT kind, value, file, size FROM cache WHERE key = ?1 AND {LIVE}"
        ))?
        .query_row(params![key, now as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                BytesRow {
                    inline: r.get(1)?,
                    file: r.get(2)?,
                    size: r.get(3)?,
                },
            ))
        })
        .optional()?;
    Ok(row.and_then(|(kind, row)| (kind == 0).then_some(row)))
}

/// A read-only connection to a shard's file, for `get` on the calling
/// thread: WAL lets it read beside the shard's thread (and other
/// processes) writing, and it never waits for a lock.
pub(crate) struct Reader {
    conn: Connection,
}

impl Reader {
    pub(crate) fn open(path: &Path) -> Result<Reader> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error)?;
        // A busy file is left to the shard's thread, which may wait.
        conn.busy_timeout(Duration::ZERO).map_err(sql_error)?;
        Ok(Reader { conn })
    }

    /// `key`'s value at `now` if it can be read here: `Some(None)` when
    /// there is no live value, `None` when only the shard's thread can
    /// answer (a value in a side file — reading it is file I/O of any
    /// size — or a file busy, locked or unreadable).
    pub(crate) fn get(&self, key: &str, now: u64) -> Option<Option<Vec<u8>>> {
        match live_bytes(&self.conn, key, now).ok()? {
            None => Some(None),
            Some(BytesRow {
                inline: Some(bytes),
                ..
            }) => Some(Some(bytes)),
            Some(BytesRow { file: Some(_), .. }) => None,
            Some(BytesRow { file: None, .. }) => Some(Some(Vec::new())),
        }
    }
}

/// A text column as a string; `None` for anything else.
fn text(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    value.as_str().ok().map(str::to_owned)
}

/// One write of a batch ([`Db::apply`]), owned to travel to the shard's thread.
#[derive(Debug)]
pub(crate) enum BatchWrite {
    Set {
        key: String,
        value: Bytes,
        expire: Option<Duration>,
    },
    Delete {
        key: String,
    },
    Incr {
        key: String,
        by: i64,
    },
}

/// Adds `by` to the counter `record` (created with `ttl` when missing).
fn incr_record(
    record: &mut Option<Record>,
    key: &str,
    by: i64,
    ttl: Option<Duration>,
    now: u64,
) -> Result<i64> {
    let Some(current) = record else {
        *record = Some(Record {
            data: Data::Bytes(by.to_string().into_bytes()),
            expires_at: deadline(now, ttl),
        });
        return Ok(by);
    };
    let value = match &current.data {
        Data::Bytes(b) => parse_counter(b),
        _ => None,
    }
    .ok_or_else(|| wrong_type(key, "an integer"))?;
    let new = value.checked_add(by).ok_or_else(|| Error::Overflow {
        key: key.to_owned(),
    })?;
    current.data = Data::Bytes(new.to_string().into_bytes());
    Ok(new)
}

fn wrong_type(key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
        expected,
    }
}

/// A row seen by a scan: key, kind, inline bytes, side file, size.
type ScanRow = (String, i64, Option<Vec<u8>>, Option<String>, i64);

/// Commits between two checkpoints of the write-ahead log (sqlite's own
/// automatic checkpoint, which runs on the committing thread, is off: see
/// [`Db::checkpoint`]). A small value's commit writes about four pages, so
/// this is close to sqlite's default of 1000 pages.
const CHECKPOINT_EVERY: u32 = 200;

/// One shard's database.
pub(crate) struct Db {
    conn: Connection,
    /// How long a command waits for another process's write lock.
    timeout: Duration,
    /// Running [`Db::here`]: a busy file refuses instead of waiting.
    here: bool,
    /// A command run [`Db::here`] found the file busy and changed nothing.
    refused: bool,
    /// Commits since the last checkpoint.
    commits: u32,
    /// Where values above `large_value` are kept, one file each.
    files: SideFiles,
    large_value: usize,
    /// This shard's part of `size_limit`.
    size_limit: Option<u64>,
    eviction: Eviction,
    clock: Clock,
}

impl Db {
    /// Opens shard `n` of `config.directory`, at `path`.
    pub(crate) fn open(n: u16, path: &Path, config: &DiskConfig, clock: Clock) -> Result<Db> {
        // Private to the user: sqlite gives the -wal and -shm files the same mode.
        files::create_private_file(path).map_err(files::io_error)?;
        let conn = Connection::open(path).map_err(sql_error)?;
        conn.busy_timeout(config.timeout).map_err(sql_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_error)?;
        // Checkpoints run on the shard's thread, never inside a command run
        // on a caller's thread (Db::checkpoint).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sql_error)?;
        conn.execute_batch(SCHEMA).map_err(sql_error)?;
        // Only the eviction order in use is indexed: every index costs each
        // write a page.
        if let Some(order) = config.eviction.order() {
            conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS cache_{order} ON cache({order});"
            ))
            .map_err(sql_error)?;
        }
        // Redis glob semantics (with `\` escapes, which sqlite's GLOB lacks).
        conn.create_scalar_function(
            "redis_glob",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let pattern = ctx.get_raw(0).as_str().unwrap_or_default();
                let key = ctx.get_raw(1).as_str().unwrap_or_default();
                Ok(glob::matches(pattern, key))
            },
        )
        .map_err(sql_error)?;
        Ok(Db {
            conn,
            timeout: config.timeout,
            here: false,
            refused: false,
            commits: 0,
            files: SideFiles::new(&config.directory, n),
            large_value: config.large_value,
            size_limit: config
                .size_limit
                .map(|limit| (limit / u64::from(config.shards)).max(1)),
            eviction: config.eviction,
            clock,
        })
    }

    fn now(&self) -> u64 {
        self.clock.unix_ms()
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock is taken first,
    /// so two processes never deadlock upgrading a read), then removes the
    /// side files it dropped, after the commit.
    fn write<R>(
        &mut self,
        f: impl FnOnce(&Connection, &SideFiles, &mut Vec<String>) -> Result<R>,
    ) -> Result<R> {
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(error) => {
                // Nothing was written: the lock is taken first.
                self.refused |= self.here
                    && error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
                return Err(sql_error(error));
            }
        };
        let mut dropped = Vec::new();
        let result = f(&tx, &self.files, &mut dropped);
        if self.files.read_refused() {
            // A side file to read: not on a caller's thread. Dropping the
            // transaction rolls it back; the shard's thread runs it.
            self.refused = true;
            return Err(Error::backend(
                "disk",
                true,
                "a value in a side file is read by the shard's thread",
            ));
        }
        let result = result?;
        tx.commit().map_err(sql_error)?;
        self.commits = self.commits.saturating_add(1);
        self.remove_files(dropped.iter());
        Ok(result)
    }

    /// Runs `command` on the calling thread without waiting for a lock:
    /// `None` if another process held the write lock (nothing was changed;
    /// the shard's thread, which waits up to `timeout`, should run it).
    pub(crate) fn here<R>(
        &mut self,
        command: impl FnOnce(&mut Db) -> Result<R>,
    ) -> Option<Result<R>> {
        self.conn.busy_timeout(Duration::ZERO).ok()?;
        self.here = true;
        self.refused = false;
        self.files.refuse_reads(true);
        let result = command(self);
        self.leave_here();
        (!self.refused).then_some(result)
    }

    /// Back to waiting up to `timeout` for a lock (also after a command run
    /// [`Db::here`] panicked: [`Shard::here`] calls it then).
    ///
    /// [`Shard::here`]: crate::shard::Shard::here
    pub(crate) fn leave_here(&mut self) {
        if !self.here {
            return;
        }
        self.here = false;
        self.files.refuse_reads(false);
        if let Err(error) = self.conn.busy_timeout(self.timeout) {
            tracing::warn!(%error, "disk cache: restoring the busy timeout failed");
        }
    }

    /// Whether the write-ahead log is due a checkpoint.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.commits >= CHECKPOINT_EVERY
    }

    /// Whether a checkpoint is overdue: the shard's thread, woken when one
    /// fell due, has not run it yet (a busy machine). Commands then go to
    /// the thread, which checkpoints after them, so the log's growth is
    /// bounded however late the thread runs.
    pub(crate) fn checkpoint_overdue(&self) -> bool {
        self.commits >= 2 * CHECKPOINT_EVERY
    }

    /// Copies the write-ahead log into the database file (`PASSIVE`: it
    /// waits for no reader or writer), on the shard's thread: sqlite's
    /// automatic checkpoint would run it, fsync included, inside whichever
    /// commit crossed the threshold — also one made on a caller's thread.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        self.commits = 0;
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(sql_error)
    }

    pub(crate) fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.now();
        let Some(row) = live_bytes(&self.conn, key, now).map_err(sql_error)? else {
            return Ok(None);
        };
        if self.eviction == Eviction::LeastRecentlyUsed {
            self.touch(key, now)?;
        }
        Ok(row_bytes(
            &self.files,
            key,
            row.inline,
            row.file.as_deref(),
            row.size,
        ))
    }

    /// Marks `key` as used at `now` (least-recently-used eviction).
    pub(crate) fn touch(&mut self, key: &str, now: u64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE cache SET used_at = ?2 WHERE key = ?1")
            .map_err(sql_error)?
            .execute(params![key, now as i64])
            .map_err(sql_error)?;
        Ok(())
    }

    /// The live record of `key` inside a transaction, the side file of its
    /// row (live or not), and whether a row exists. A row of the wrong SQL
    /// types exists but holds no record.
    fn load(
        conn: &Connection,
        files: &SideFiles,
        key: &str,
        now: u64,
    ) -> Result<(Option<Record>, Option<String>, bool)> {
        type Typed = (i64, Option<Vec<u8>>, i64, Option<i64>);
        let row = conn
            .prepare_cached(&format!(
                "SELECT {WELL_TYPED}, file, kind, value, size, expires_at FROM cache WHERE key = ?1"
            ))
            .map_err(sql_error)?
            .query_row(params![key], |r| {
                let file = text(r.get_ref(1)?);
                let typed: Option<Typed> = if r.get::<_, bool>(0)? {
                    Some((r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                } else {
                    None
                };
                Ok((file, typed))
            })
            .optional()
            .map_err(sql_error)?;
        let Some((file, typed)) = row else {
            return Ok((None, None, false));
        };
        let Some((kind, value, size, expires_at)) = typed else {
            return Ok((None, file, true));
        };
        let expires_at = expires_at.map(|t| t as u64);
        if expires_at.is_some_and(|t| t <= now) {
            return Ok((None, file, true));
        }
        let bytes = row_bytes(files, key, value, file.as_deref(), size);
        // Bytes that are not what the row says (a damaged file) read as missing.
        let record = bytes
            .and_then(|bytes| Data::decode(kind, bytes))
            .map(|data| Record { data, expires_at });
        Ok((record, file, true))
    }

    /// Stores `record` at `key`: inline, or in `file` (of `len` bytes) for a
    /// large value.
    fn store(
        conn: &Connection,
        key: &str,
        record: &Record,
        file: Option<(&str, usize)>,
        now: u64,
    ) -> Result<()> {
        let (inline, len) = match file {
            Some((_, len)) => (None, len),
            None => {
                let bytes = record.data.encode();
                let len = bytes.len();
                (Some(bytes), len)
            }
        };
        conn.prepare_cached(
            "INSERT INTO cache (key, kind, value, file, size, expires_at, stored_at, used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, value = excluded.value,
                 file = excluded.file, size = excluded.size, expires_at = excluded.expires_at,
                 stored_at = excluded.stored_at, used_at = excluded.used_at",
        )
        .map_err(sql_error)?
        .execute(params![
            key,
            record.data.kind(),
            inline,
            file.map(|(name, _)| name),
            (len + key.len()) as i64,
            record.expires_at.map(|t| t as i64),
            now as i64
        ])
        .map_err(sql_error)?;
        Ok(())
    }

    fn remove(conn: &Connection, key: &str) -> Result<()> {
        conn.prepare_cached("DELETE FROM cache WHERE key = ?1")
            .map_err(sql_error)?
            .execute(params![key])
            .map_err(sql_error)?;
        Ok(())
    }

    pub(crate) fn set(&mut self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        let now = self.now();
        // A large value goes to its file before the row that names it.
        let file = if value.len() > self.large_value {
            Some(self.files.write(value)?)
        } else {
            None
        };
        let record = Record {
            data: Data::Bytes(if file.is_some() {
                Vec::new()
            } else {
                value.to_vec()
            }),
            expires_at: deadline(now, options.expire),
        };
        let written = self.write(|conn, files, dropped| {
            let (current, old_file, _) = Db::load(conn, files, key, now)?;
            let allowed = match options.exist {
                Exist::Always => true,
                Exist::IfPresent => current.is_some(),
                Exist::IfAbsent => current.is_none(),
            };
            if allowed {
                let side = file.as_deref().map(|name| (name, value.len()));
                Db::store(conn, key, &record, side, now)?;
                dropped.extend(old_file);
            }
            Ok(allowed)
        });
        if let Some(file) = &file {
            // The row was not written: its file goes too.
            if !matches!(written, Ok(true)) {
                self.files.remove(file);
            }
        }
        if matches!(written, Ok(true)) {
            self.cull()?;
        }
        written
    }

    /// Reads, changes and writes back the record of `key` in one transaction:
    /// `f` gets the live record (`None` if missing) and leaves what the key
    /// holds afterwards (`None` deletes it).
    pub(crate) fn update<R>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut Option<Record>, u64) -> Result<R>,
    ) -> Result<R> {
        let now = self.now();
        let result = self.write(|conn, files, dropped| {
            let (mut record, old_file, existed) = Db::load(conn, files, key, now)?;
            let before = record.clone();
            let result = f(&mut record, now)?;
            if record != before || (existed && before.is_none()) {
                match &record {
                    Some(record) => Db::store(conn, key, record, None, now)?,
                    None => Db::remove(conn, key)?,
                }
                dropped.extend(old_file);
            }
            Ok(result)
        })?;
        self.cull()?;
        Ok(result)
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<bool> {
        self.update(key, |record, _| Ok(record.take().is_some()))
    }

    pub(crate) fn exists(&mut self, key: &str) -> Result<bool> {
        self.conn
            .prepare_cached(&format!("SELECT 1 FROM cache WHERE key = ?1 AND {LIVE}"))
            .map_err(sql_error)?
            .exists(params![key, self.now() as i64])
            .map_err(sql_error)
    }

    pub(crate) fn get_expire(&mut self, key: &str) -> Result<Expiry> {
        let now = self.now();
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT expires_at FROM cache WHERE key = ?1 AND {LIVE}"
            ))
            .map_err(sql_error)?
            .query_row(params![key, now as i64], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map_err(sql_error)?;
        Ok(match row {
            None => Expiry::Missing,
            Some(None) => Expiry::NoExpiry,
            Some(Some(at)) => {
                Expiry::Remaining(Duration::from_millis((at as u64).saturating_sub(now)))
            }
        })
    }

    pub(crate) fn expire(&mut self, key: &str, ttl: Duration) -> Result<bool> {
        let now = self.now();
        let changed = self
            .conn
            .prepare_cached(&format!(
                "UPDATE cache SET expires_at = ?3 WHERE key = ?1 AND {LIVE}"
            ))
            .map_err(sql_error)?
            .execute(params![
                key,
                now as i64,
                deadline(now, Some(ttl)).map(|t| t as i64)
            ])
            .map_err(sql_error)?;
        Ok(changed == 1)
    }

    pub(crate) fn get_size(&mut self, key: &str) -> Result<Option<u64>> {
        self.conn
            .prepare_cached(&format!("SELECT size FROM cache WHERE key = ?1 AND {LIVE}"))
            .map_err(sql_error)?
            .query_row(params![key, self.now() as i64], |r| r.get::<_, i64>(0))
            .optional()
            .map(|size| size.map(|s| s as u64))
            .map_err(sql_error)
    }

    pub(crate) fn incr(&mut self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.update(key, |record, now| incr_record(record, key, by, ttl, now))
    }

    /// Applies `writes` in one transaction, so readers see all of them or
    /// none. As in a Redis `MULTI`, a write that fails (an `incr` of a value
    /// that is not a counter) does not undo the others; its error is
    /// returned after the commit.
    pub(crate) fn apply(&mut self, writes: Vec<BatchWrite>) -> Result<()> {
        let now = self.now();
        // Large values go to their files before the rows that name them.
        let mut files = Vec::with_capacity(writes.len());
        for write in &writes {
            let file = match write {
                BatchWrite::Set { value, .. } if value.len() > self.large_value => {
                    match self.files.write(value) {
                        Ok(file) => Some(file),
                        Err(error) => {
                            self.remove_files(files.iter().flatten());
                            return Err(error);
                        }
                    }
                }
                _ => None,
            };
            files.push(file);
        }
        let applied = self.write(|conn, side, dropped| {
            let mut first_error = None;
            for (write, file) in writes.iter().zip(&files) {
                let step = match write {
                    BatchWrite::Set { key, value, expire } => Db::load(conn, side, key, now)
                        .and_then(|(_, old_file, _)| {
                            let record = Record {
                                data: Data::Bytes(if file.is_some() {
                                    Vec::new()
                                } else {
                                    value.to_vec()
                                }),
                                expires_at: deadline(now, *expire),
                            };
                            let side = file.as_deref().map(|name| (name, value.len()));
                            Db::store(conn, key, &record, side, now)?;
                            dropped.extend(old_file);
                            Ok(())
                        }),
                    BatchWrite::Delete { key } => {
                        Db::load(conn, side, key, now).and_then(|(_, old_file, existed)| {
                            if existed {
                                Db::remove(conn, key)?;
                                dropped.extend(old_file);
                            }
                            Ok(())
                        })
                    }
                    BatchWrite::Incr { key, by } => {
                        Db::load(conn, side, key, now).and_then(|(mut record, old_file, _)| {
                            incr_record(&mut record, key, *by, None, now)?;
                            if let Some(record) = &record {
                                Db::store(conn, key, record, None, now)?;
                            }
                            dropped.extend(old_file);
                            Ok(())
                        })
                    }
                };
                if let Err(error) = step {
                    first_error.get_or_insert(error);
                }
            }
            Ok(first_error)
        });
        match applied {
            Ok(first_error) => {
                self.cull()?;
                first_error.map_or(Ok(()), Err)
            }
            Err(error) => {
                // Nothing was committed: the new files name no row.
                self.remove_files(files.iter().flatten());
                Err(error)
            }
        }
    }

    fn remove_files<'f>(&self, files: impl Iterator<Item = &'f String>) {
        for file in files {
            self.files.remove(file);
        }
    }

    pub(crate) fn unlock(&mut self, key: &str, token: &str) -> Result<bool> {
        self.update(key, |record, _| {
            let holds = matches!(record, Some(Record { data: Data::Bytes(b), .. }) if b == token.as_bytes());
            if holds {
                *record = None;
            }
            Ok(holds)
        })
    }

    pub(crate) fn bits(
        &mut self,
        key: &str,
        offsets: &[u64],
        size: u8,
        by: Option<i64>,
    ) -> Result<Vec<u64>> {
        self.update(key, |record, _| {
            let mut data = match record {
                None => Vec::new(),
                Some(Record {
                    data: Data::Bytes(b),
                    ..
                }) => std::mem::take(b),
                Some(_) => return Err(wrong_type(key, "a bit string")),
            };
            let values = match by {
                None => offsets
                    .iter()
                    .map(|o| bits::read(&data, *o, size))
                    .collect(),
                Some(by) => offsets
                    .iter()
                    .map(|o| bits::incr(&mut data, *o, size, by))
                    .collect(),
            };
            match record {
                Some(Record {
                    data: Data::Bytes(b),
                    ..
                }) => *b = data,
                _ if by.is_some() => {
                    *record = Some(Record {
                        data: Data::Bytes(data),
                        expires_at: None,
                    })
                }
                _ => {}
            }
            Ok(values)
        })
    }

    pub(crate) fn slice_incr(
        &mut self,
        key: &str,
        (start, end, max): (u64, u64, u64),
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.update(key, |record, now| {
            let record = record.get_or_insert_with(|| Record {
                data: Data::Window(Vec::new()),
                expires_at: deadline(now, ttl),
            });
            let Data::Window(stamps) = &mut record.data else {
                return Err(wrong_type(key, "a sliding window"));
            };
            let (count, recorded) = cashews_backend::backend::slide_window(stamps, start, end, max);
            if recorded {
                record.expires_at = deadline(now, ttl);
            }
            Ok(count)
        })
    }

    pub(crate) fn set_add(
        &mut self,
        key: &str,
        members: &[String],
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.update(key, |record, now| {
            let record = match record {
                Some(record) => {
                    // The TTL only grows; members without one make the set persistent.
                    record.expires_at = match (record.expires_at, deadline(now, ttl)) {
                        (Some(at), Some(new)) => Some(at.max(new)),
                        _ => None,
                    };
                    record
                }
                None => record.insert(Record {
                    data: Data::Set(BTreeSet::new()),
                    expires_at: deadline(now, ttl),
                }),
            };
            let Data::Set(set) = &mut record.data else {
                return Err(wrong_type(key, "a set"));
            };
            Ok(members.iter().filter(|m| set.insert((*m).clone())).count() as u64)
        })
    }

    /// Runs `f` on the set at `key` (nothing if missing); deletes the key when
    /// the set ends up empty, as Redis does.
    pub(crate) fn with_set<R: Default>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut BTreeSet<String>) -> R,
    ) -> Result<R> {
        self.update(key, |record, _| {
            let Some(current) = record else {
                return Ok(R::default());
            };
            let Data::Set(set) = &mut current.data else {
                return Err(wrong_type(key, "a set"));
            };
            let result = f(set);
            if set.is_empty() {
                *record = None;
            }
            Ok(result)
        })
    }

    /// Up to `limit` live keys after `after` matching `pattern`, in key
    /// order, with their bytes when `values` (sets and windows skipped).
    pub(crate) fn scan(
        &mut self,
        pattern: &str,
        after: &str,
        limit: usize,
        values: bool,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let rows: Vec<ScanRow> = self
            .conn
            .prepare_cached(&format!(
                "SELECT key, kind, CASE WHEN ?5 THEN value END, file, size FROM cache
                 WHERE key > ?1 AND {LIVE} AND redis_glob(?3, key)
                 ORDER BY key LIMIT ?4"
            ))
            .map_err(sql_error)?
            .query_map(
                params![after, self.now() as i64, pattern, limit as i64, values],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(sql_error)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql_error)?;
        Ok(rows
            .into_iter()
            .map(|(key, kind, value, file, size)| {
                let bytes = match (values, kind) {
                    (true, 0) => row_bytes(&self.files, &key, value, file.as_deref(), size),
                    _ => None,
                };
                (key, bytes)
            })
            .collect())
    }

    /// Deletes the rows `condition` selects (with `?1` bound to `arg`) and
    /// their files; returns how many live ones there were.
    fn delete_where(&mut self, condition: &str, arg: &str) -> Result<u64> {
        let now = self.now() as i64;
        self.write(|conn, _, dropped| {
            let files: Vec<String> = conn
                .prepare(&format!(
                    "SELECT file FROM cache WHERE typeof(file) = 'text' AND {condition} AND ?2 = ?2"
                ))
                .map_err(sql_error)?
                .query_map(params![arg, now], |r| r.get(0))
                .map_err(sql_error)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql_error)?;
            let live = conn
                .prepare(&format!(
                    "SELECT COUNT(*) FROM cache WHERE {condition} AND {LIVE}"
                ))
                .map_err(sql_error)?
                .query_row(params![arg, now], |r| r.get::<_, i64>(0))
                .map_err(sql_error)?;
            conn.prepare(&format!("DELETE FROM cache WHERE {condition} AND ?2 = ?2"))
                .map_err(sql_error)?
                .execute(params![arg, now])
                .map_err(sql_error)?;
            dropped.extend(files);
            Ok(live as u64)
        })
    }

    pub(crate) fn delete_match(&mut self, pattern: &str) -> Result<u64> {
        self.delete_where("redis_glob(?1, key)", pattern)
    }

    pub(crate) fn clear(&mut self) -> Result<()> {
        self.delete_where("?1 = ?1", "").map(drop)
    }

    /// Removes expired rows (and rows of the wrong SQL types) and their
    /// files; returns how many live ones there were.
    pub(crate) fn purge_expired(&mut self) -> Result<u64> {
        let now = self.now().to_string();
        self.delete_where(
            &format!(
                "((expires_at IS NOT NULL AND expires_at <= CAST(?1 AS INTEGER)) \
                 OR NOT {WELL_TYPED})"
            ),
            &now,
        )
    }

    /// Removes this shard's side files and temp files older than `grace`
    /// that no row names; returns how many.
    pub(crate) fn sweep_orphans(&mut self, grace: std::time::Duration) -> Result<usize> {
        let conn = &self.conn;
        self.files.sweep(grace, || {
            conn.prepare("SELECT file FROM cache WHERE typeof(file) = 'text'")
                .map_err(sql_error)?
                .query_map([], |r| Ok(text(r.get_ref(0)?)))
                .map_err(sql_error)?
                .filter_map(|file| file.transpose())
                .collect::<rusqlite::Result<HashSet<String>>>()
                .map_err(sql_error)
        })
    }

    pub(crate) fn count(&mut self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM cache", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql_error)
    }

    /// sqlite's verdict on the file: `ok`, or what is wrong.
    pub(crate) fn integrity(&mut self) -> Result<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .map_err(sql_error)
    }

    /// Bytes stored in this shard (values and keys).
    pub(crate) fn size(&mut self) -> Result<u64> {
        self.conn
            .query_row("SELECT size FROM meta WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(sql_error)
    }

    /// Keeps the shard under its part of `size_limit`: expired rows first,
    /// then in eviction order. Tag records (under `TAGS_PREFIX`) are never
    /// evicted: a key read often must not outlive the records naming it, or
    /// `delete_tags` would miss it; they go with their TTL and with deletes.
    fn cull(&mut self) -> Result<()> {
        let (Some(limit), Some(order)) = (self.size_limit, self.eviction.order()) else {
            return Ok(());
        };
        if self.size()? <= limit {
            return Ok(());
        }
        self.purge_expired()?;
        loop {
            let excess = self.size()?.saturating_sub(limit);
            if excess == 0 {
                return Ok(());
            }
            let evicted = self.write(|conn, _, dropped| {
                let rows: Vec<(i64, Option<String>, i64)> = conn
                    .prepare_cached(&format!(
                        "SELECT rowid, file, CASE WHEN typeof(size) = 'integer' THEN size END
                         FROM cache WHERE key NOT GLOB '{TAGS_PREFIX}*'
                         ORDER BY {order}, rowid LIMIT 16"
                    ))
                    .map_err(sql_error)?
                    .query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            text(r.get_ref(1)?),
                            r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                        ))
                    })
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_error)?;
                // Only as many as it takes to get under the limit.
                let mut freed = 0u64;
                let mut evicted = 0;
                for (rowid, file, size) in rows {
                    if freed >= excess {
                        break;
                    }
                    conn.prepare_cached("DELETE FROM cache WHERE rowid = ?1")
                        .map_err(sql_error)?
                        .execute(params![rowid])
                        .map_err(sql_error)?;
                    dropped.extend(file);
                    freed += size.max(0) as u64;
                    evicted += 1;
                }
                Ok(evicted)
            })?;
            if evicted == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiskConfig;

    fn open(name: &str) -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("cashews-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::files::prepare_directory(&dir).unwrap();
        let mut config = DiskConfig::new(&dir);
        config.large_value = 16;
        let db = Db::open(0, &dir.join("shard-000.db"), &config, Clock::system()).unwrap();
        (db, dir)
    }

    #[test]
    fn a_command_run_here_never_reads_a_side_file() {
        let (mut db, dir) = open("here");
        let large = vec![7u8; 64];
        assert!(db.set("big", &large, SetOptions::default()).unwrap());
        assert!(db.set("small", b"v", SetOptions::default()).unwrap());

        // Replacing or deleting a large value reads its row, side file
        // included: refused here, nothing changed.
        assert!(db
            .here(|db| db.set("big", b"v", SetOptions::default()))
            .is_none());
        assert!(db.here(|db| db.delete("big")).is_none());
        assert_eq!(db.get("big").unwrap(), Some(large));

        // A small value is run here; afterwards side files read again.
        assert!(db.here(|db| db.delete("small")).unwrap().unwrap());
        assert!(db.delete("big").unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
