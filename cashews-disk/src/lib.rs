//! The disk backend of [cashews](https://docs.rs/cashews):
//! `disk://?directory=/var/cache/app&shards=8&size_limit=1GiB`.
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `directory` | [`default_directory()`] | where the shard files live (created 0700 if missing; refused if another user owns it or others may write to it) |
//! | `shards` | `8` | how many sqlite files keys are spread over (fixed for a directory) |
//! | `size_limit` | none | the most bytes of keys and values kept (`1GiB`, `500MB`, `4096`); each shard keeps its share |
//! | `eviction` | `least-recently-stored` | what goes first beyond `size_limit`: `least-recently-stored`, `least-recently-used` (a read updates the row) or `none` |
//! | `timeout` | `10s` | how long a command waits for another process's write lock |
//! | `large_value` | `32KiB` | values above this live in their own file beside the database |
//! | `check_interval` | `60s` | how often expired rows and orphaned side files are purged (`0` disables) |
//! | `orphan_grace` | `10min` | how old a side file that no row names must be before the purge removes it (a write in another process may not have committed its row yet) |
//! | `inline` | `true` | `get`, `set` and `delete` run on the calling thread when they can (see below); `false` sends every command to the shard's thread |
//!
//! Each shard is a sqlite file in WAL mode with `synchronous=NORMAL`: a
//! committed write survives the process being killed. Keys go to a shard by a
//! stable hash (FNV-1a), so every process that opens the directory finds them.
//! Several processes may share a directory: every read-modify-write command
//! (`incr`, locks, sets, windows, bits) runs in one `IMMEDIATE` transaction.
//!
//! Large values are written to a temporary file that is renamed into place
//! before the row naming it is committed, and removed after the row is
//! deleted or replaced. A failed write removes its temporary file; a file
//! left by a process killed before its row was committed is removed by the
//! purge once `orphan_grace` has passed.
//!
//! Everything read from a row is treated as hostile input (SECURITY.md): a
//! side file is only ever a name this backend makes in `values/`, opened
//! without following links, a regular file of exactly the recorded size; a
//! row of the wrong SQL types reads as missing and is replaced or deleted
//! like any other. The directory and its files are private to the user
//! (0700 and 0600). Pattern commands (`scan`, `get_match`,
//! `delete_match`) visit every shard and match with Redis' glob rules
//! (sqlite's `GLOB` has no `\` escape).
//!
//! Each shard has its own thread that owns its connection; commands are sent
//! to it and run in order. `get`, `set` and `delete` run on the calling
//! thread instead when they can, which saves the two thread wake-ups that
//! cost several times the command itself:
//! - a `get` reads through one of the shard's read-only connections (WAL
//!   lets it read beside the writer and other processes);
//! - a `set` of a value up to `large_value`, or a `delete`, takes the shard's
//!   connection when its thread is not using it, in the same `IMMEDIATE`
//!   transaction the thread would run.
//!
//! Neither ever waits: a connection in use, a write lock held by another
//! process or a busy file sends the command to the shard's thread (which
//! waits up to `timeout`); so do values in side files (file I/O of any
//! size) and every write while a `size_limit` is set (culling may take
//! long). What runs on the caller is one indexed point lookup, or one small
//! transaction committed to the write-ahead log without an fsync
//! (`synchronous=NORMAL`) — a few to a few tens of microseconds with the
//! pages in the OS cache, well under tokio's guidance for time between
//! awaits. Checkpoints of the log (and their fsync) run on the shard's
//! thread, every 200 commits. On storage where a page read or write can
//! block for long (a network file system), set `inline=false`. With
//! `least-recently-used` eviction a read's `used_at` update is sent to the
//! shard's thread without waiting.
#![warn(missing_docs)]

mod db;
mod files;
mod shard;

pub use files::default_directory;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cashews_backend::backend::{Backend, BoxStream, Expiry, SetOptions, Write};
use cashews_backend::driver::{Driver, DriverContext};
use cashews_backend::url::{parse_bytes, Params, SetupUrl};
use cashews_backend::{bits, Clock, Command, Error, Result};

use shard::Shard;

/// The `disk://` driver.
pub const DRIVER: Driver = Driver {
    name: "disk",
    schemes: &["disk"],
    connect,
};

fn connect(
    url: &SetupUrl,
    params: &mut Params<'_>,
    ctx: &DriverContext,
) -> Result<Arc<dyn Backend>> {
    url.parameters_only("disk://?directory=/var/cache/app")?;
    let config = DiskConfig::from_params(params)?;
    // Setup does no I/O: the files are opened by the first command.
    Ok(Arc::new(DiskBackend::lazy(config, ctx.clock.clone())))
}

/// What goes first when a shard is over its part of `size_limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// The entry written longest ago.
    LeastRecentlyStored,
    /// The entry read or written longest ago (every read writes).
    LeastRecentlyUsed,
    /// Nothing: `size_limit` is not enforced.
    None,
}

impl Eviction {
    /// The `ORDER BY` of the victims, if any are evicted.
    fn order(self) -> Option<&'static str> {
        match self {
            Eviction::LeastRecentlyStored => Some("stored_at"),
            Eviction::LeastRecentlyUsed => Some("used_at"),
            Eviction::None => None,
        }
    }
}

/// Settings of a [`DiskBackend`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskConfig {
    /// Where the shard files live.
    pub directory: PathBuf,
    /// How many shard files.
    pub shards: u16,
    /// The most bytes kept, over all shards.
    pub size_limit: Option<u64>,
    /// What goes first beyond `size_limit`.
    pub eviction: Eviction,
    /// How long to wait for another process's lock.
    pub timeout: Duration,
    /// Values above this many bytes live in their own file.
    pub large_value: usize,
    /// How often expired rows are purged; `None` disables it.
    pub check_interval: Option<Duration>,
    /// How old a side file that no row names must be before it is removed.
    pub orphan_grace: Duration,
    /// Whether `get`, `set` and `delete` run on the calling thread when
    /// they can (see the [crate docs](crate)).
    pub inline: bool,
}

impl DiskConfig {
    /// The defaults, in `directory`.
    pub fn new(directory: impl Into<PathBuf>) -> DiskConfig {
        DiskConfig {
            directory: directory.into(),
            shards: 8,
            size_limit: None,
            eviction: Eviction::LeastRecentlyStored,
            timeout: Duration::from_secs(10),
            large_value: 32 * 1024,
            check_interval: Some(Duration::from_secs(60)),
            orphan_grace: Duration::from_secs(600),
            inline: true,
        }
    }

    /// Reads the parameters of a `disk://` URL.
    pub fn from_params(params: &mut Params<'_>) -> Result<DiskConfig> {
        let directory = params
            .take("directory")
            .map(PathBuf::from)
            .unwrap_or_else(default_directory);
        let mut config = DiskConfig::new(directory);
        if let Some(shards) = params.take_with("shards", "an integer from 1 to 256", |s| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|n| (1..=256).contains(n))
        })? {
            config.shards = shards;
        }
        config.size_limit =
            params.take_with("size_limit", "a size such as 1GiB or 500MB", |s| {
                parse_bytes(s).filter(|n| *n > 0)
            })?;
        if let Some(eviction) = params.take_with(
            "eviction",
            "least-recently-stored, least-recently-used or none",
            |s| match s.trim() {
                "least-recently-stored" => Some(Eviction::LeastRecentlyStored),
                "least-recently-used" => Some(Eviction::LeastRecentlyUsed),
                "none" => Some(Eviction::None),
                _ => None,
            },
        )? {
            config.eviction = eviction;
        }
        if let Some(timeout) = params.duration("timeout")? {
            config.timeout = timeout;
        }
        if let Some(large) = params.take_with("large_value", "a size such as 32KiB", parse_bytes)? {
            config.large_value = large as usize;
        }
        if let Some(interval) = params.duration("check_interval")? {
            config.check_interval = (!interval.is_zero()).then_some(interval);
        }
        if let Some(grace) = params.duration("orphan_grace")? {
            config.orphan_grace = grace;
        }
        if let Some(inline) = params.bool("inline")? {
            config.inline = inline;
        }
        Ok(config)
    }
}

/// Sharded sqlite files as a cache backend. See the [crate docs](crate).
#[derive(Debug)]
pub struct DiskBackend {
    config: DiskConfig,
    clock: Clock,
    shards: OnceLock<Arc<[Shard]>>,
    opening: Mutex<()>,
}

impl DiskBackend {
    /// Opens (or creates) the shard files of `config.directory` now; expiry
    /// is read from `clock`'s wall time, which every process shares.
    pub fn open(config: DiskConfig, clock: Clock) -> Result<DiskBackend> {
        let backend = DiskBackend::lazy(config, clock);
        backend.shards()?;
        Ok(backend)
    }

    /// A backend that opens its files with the first command (a problem with
    /// the directory is that command's error).
    pub fn lazy(config: DiskConfig, clock: Clock) -> DiskBackend {
        DiskBackend {
            config,
            clock,
            shards: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// The shards, opened on first use.
    fn shards(&self) -> Result<&Arc<[Shard]>> {
        if let Some(shards) = self.shards.get() {
            return Ok(shards);
        }
        let _opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shards) = self.shards.get() {
            return Ok(shards);
        }
        let shards = open_shards(&self.config, &self.clock)?;
        Ok(self.shards.get_or_init(|| shards))
    }

    /// Runs sqlite's `PRAGMA integrity_check` on every shard: `Ok` if each
    /// file is intact, otherwise an error naming what sqlite found.
    pub async fn check_integrity(&self) -> Result<()> {
        let reports = self.each(|db| db.integrity()).await?;
        match reports.into_iter().find(|report| report != "ok") {
            None => Ok(()),
            Some(report) => Err(Error::backend(
                "disk",
                false,
                format!("integrity check: {report}"),
            )),
        }
    }

    /// Runs `f` on `key`'s shard.
    async fn on<R: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce(&mut db::Db, &str) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let owned = key.to_owned();
        self.shard(key)?.call(move |db| f(db, &owned)).await
    }

    /// `key`'s shard.
    fn shard(&self, key: &str) -> Result<&Shard> {
        let shards = self.shards()?;
        Ok(&shards[shard_of(key, shards.len())])
    }

    /// Runs `command` on this thread if it can ([`Shard::here`]; `here`
    /// says the command's own size allows it), else on the key's shard.
    async fn here_or_on<R: Send + 'static>(
        &self,
        key: &str,
        here: bool,
        command: impl Fn(&mut db::Db, &str) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        // Culling to a size limit may take long: it stays on the thread.
        if here && self.config.inline && self.config.size_limit.is_none() {
            if let Some(result) = self.shard(key)?.here(|db| command(db, key)) {
                return result;
            }
        }
        self.on(key, command).await
    }

    /// Runs `f` on every shard at once; the results in shard order.
    async fn each<R: Send + 'static>(
        &self,
        f: impl Fn(&mut db::Db) -> Result<R> + Send + Sync + Clone + 'static,
    ) -> Result<Vec<R>> {
        let calls = self.shards()?.iter().map(|shard| {
            let f = f.clone();
            shard.call(move |db| f(db))
        });
        futures_util::future::try_join_all(calls).await
    }

    /// Every live key matching `pattern` (with its bytes when `values`),
    /// shard by shard, `batch` rows per query.
    fn scan_stream(
        &self,
        pattern: String,
        batch: usize,
        values: bool,
    ) -> impl futures_util::Stream<Item = Result<(String, Option<Vec<u8>>)>> + Send + 'static {
        // A directory that cannot be opened reads as no keys here; every
        // other command reports it.
        let shards = self
            .shards()
            .cloned()
            .unwrap_or_else(|_| Arc::from(Vec::new()));
        let state = (shards, 0usize, String::new(), Vec::new(), false);
        let batch = batch.max(1);
        futures_util::stream::unfold(
            state,
            move |(shards, mut index, mut after, mut ready, done)| {
                let pattern = pattern.clone();
                async move {
                    if done {
                        return None;
                    }
                    while ready.is_empty() {
                        let shard = shards.get(index)?;
                        let (p, a) = (pattern.clone(), after.clone());
                        match shard.call(move |db| db.scan(&p, &a, batch, values)).await {
                            Ok(rows) if rows.is_empty() => {
                                index += 1;
                                after.clear();
                            }
                            Ok(rows) => {
                                after = rows.last().map(|(k, _)| k.clone()).unwrap_or_default();
                                ready = rows;
                                ready.reverse();
                            }
                            Err(error) => {
                                return Some((Err(error), (shards, index, after, ready, true)))
                            }
                        }
                    }
                    let row = ready.pop()?;
                    Some((Ok(row), (shards, index, after, ready, false)))
                }
            },
        )
    }
}

/// Opens every shard of `config.directory`.
fn open_shards(config: &DiskConfig, clock: &Clock) -> Result<Arc<[Shard]>> {
    let invalid =
        |why: String| Error::config(format!("disk directory {:?}: {why}", config.directory));
    files::prepare_directory(&config.directory)?;
    // A directory written with more shards would hide their keys.
    let existing = std::fs::read_dir(&config.directory)
        .map_err(|e| invalid(format!("cannot read it: {e}")))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_prefix("shard-")?
                .strip_suffix(".db")?
                .parse::<u16>()
                .ok()
        })
        .max();
    if let Some(last) = existing.filter(|last| *last >= config.shards) {
        return Err(invalid(format!(
            "it holds {} shards, the url says {}; use shards={}",
            last + 1,
            config.shards,
            last + 1
        )));
    }
    let shards = (0..config.shards)
        .map(|n| Shard::open(n, config, clock.clone()))
        .collect::<Result<Vec<_>>>()?;
    Ok(shards.into())
}

/// The shard of `key`: FNV-1a, stable across processes and builds.
fn shard_of(key: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards as u64) as usize
}

#[cashews_backend::async_trait]
impl Backend for DiskBackend {
    fn name(&self) -> &'static str {
        "disk"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if self.config.inline {
            let shard = self.shard(key)?;
            let now = self.clock.unix_ms();
            if let Some(found) = shard.read(|reader| reader.get(key, now)).flatten() {
                if found.is_some() && self.config.eviction == Eviction::LeastRecentlyUsed {
                    let owned = key.to_owned();
                    // Sent now, run in order before any later command;
                    // not awaited.
                    drop(shard.call(move |db| db.touch(&owned, now)));
                }
                return Ok(found.map(Bytes::from));
            }
        }
        let get = self.on(key, |db, key| db.get(key));
        Ok(get.await?.map(Bytes::from))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let gets = keys.iter().map(|key| self.get(key));
        futures_util::future::try_join_all(gets).await
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        // A large value's file is written by the shard's thread.
        let here = value.len() <= self.config.large_value;
        self.here_or_on(key, here, move |db, key| db.set(key, &value, options))
            .await
    }

    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()> {
        // One transaction per shard, as a commit.

        let writes: Vec<Write<'_>> = pairs
            .into_iter()
            .map(|(key, value)| Write::Set {
                key: key.into(),
                value,
                expire,
            })
            .collect();
        self.apply(&writes).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.here_or_on(key, true, |db, key| db.delete(key)).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let deletes = keys.iter().map(|key| self.delete(key));
        let deleted = futures_util::future::try_join_all(deletes).await?;
        Ok(deleted.into_iter().filter(|d| *d).count() as u64)
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        let pattern = pattern.to_owned();

        let counts = self.each(move |db| db.delete_match(&pattern)).await?;
        Ok(counts.into_iter().sum())
    }

    fn scan(&self, pattern: String, batch_size: usize) -> BoxStream<'static, Result<String>> {
        use futures_util::StreamExt;
        Box::pin(
            self.scan_stream(pattern, batch_size, false)
                .map(|row| row.map(|(key, _)| key)),
        )
    }

    fn get_match(
        &self,
        pattern: String,
        batch_size: usize,
    ) -> BoxStream<'static, Result<(String, Bytes)>> {
        use futures_util::StreamExt;
        Box::pin(
            self.scan_stream(pattern, batch_size, true)
                .filter_map(|row| async move {
                    match row {
                        Ok((key, Some(value))) => Some(Ok((key, Bytes::from(value)))),
                        Ok((_, None)) => None,
                        Err(error) => Some(Err(error)),
                    }
                }),
        )
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.on(key, |db, key| db.exists(key)).await
    }

    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64> {
        self.on(key, move |db, key| db.incr(key, by, expire)).await
    }

    /// One sqlite transaction per shard touched (shards commit at once, not
    /// as one unit).
    async fn apply(&self, writes: &[Write<'_>]) -> Result<()> {
        let shards = self.shards()?;
        let mut groups: Vec<Vec<db::BatchWrite>> = shards.iter().map(|_| Vec::new()).collect();
        for write in writes {
            let batch = match write {
                Write::Set { key, value, expire } => db::BatchWrite::Set {
                    key: key.to_string(),
                    value: value.clone(),
                    expire: *expire,
                },
                Write::Delete { key } => db::BatchWrite::Delete {
                    key: key.to_string(),
                },
                Write::Incr { key, by } => db::BatchWrite::Incr {
                    key: key.to_string(),
                    by: *by,
                },
                _ => {
                    return Err(Error::Unsupported {
                        backend: "disk",
                        command: Command::Apply,
                    })
                }
            };
            groups[shard_of(write.key(), shards.len())].push(batch);
        }
        let calls = groups
            .into_iter()
            .zip(shards.iter())
            .filter(|(group, _)| !group.is_empty())
            .map(|(group, shard)| shard.call(move |db| db.apply(group)));
        futures_util::future::try_join_all(calls).await.map(drop)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.on(key, move |db, key| db.expire(key, ttl)).await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.on(key, |db, key| db.get_expire(key)).await
    }

    async fn ping(&self) -> Result<()> {
        self.each(|db| db.count().map(drop)).await.map(drop)
    }

    async fn clear(&self) -> Result<()> {
        self.each(|db| db.clear()).await.map(drop)
    }

    async fn get_keys_count(&self) -> Result<u64> {
        Ok(self.each(|db| db.count()).await?.into_iter().sum())
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.on(key, |db, key| db.get_size(key)).await
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let options = SetOptions {
            expire: Some(ttl),
            exist: cashews_backend::Exist::IfAbsent,
        };
        self.set(key, Bytes::copy_from_slice(token.as_bytes()), options)
            .await
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let token = token.to_owned();
        self.on(key, move |db, key| db.unlock(key, &token)).await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        self.on(key, move |db, key| db.bits(key, &offsets, size, None))
            .await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        self.on(key, move |db, key| db.bits(key, &offsets, size, Some(by)))
            .await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        self.on(key, move |db, key| {
            db.slice_incr(key, (start, end, max), expire)
        })
        .await
    }

    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        self.on(key, move |db, key| {
            if members.is_empty() {
                return Ok(0);
            }
            db.set_add(key, &members, expire)
        })
        .await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        self.on(key, move |db, key| {
            db.with_set(key, |set| {
                members.iter().filter(|m| set.remove(*m)).count() as u64
            })
        })
        .await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.on(key, move |db, key| {
            db.with_set(key, |set| {
                let popped: Vec<String> = set.iter().take(count).cloned().collect();
                for member in &popped {
                    set.remove(member);
                }
                popped
            })
        })
        .await
    }
}
