//! Transactions: writes buffered in the process and committed together.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::tags;
use super::{Cache, LockGuard};
use crate::backend::Write;
use crate::codec::parse_counter;
use crate::error::{Error, Result};
use crate::ttl::IntoTtl;

/// How a [`Transaction`] isolates itself from concurrent writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TransactionMode {
    /// Buffer and commit, nothing more: a concurrent transaction that read
    /// the same value before either committed can overwrite this one's
    /// change (a lost update). The cheapest.
    #[default]
    Fast,
    /// Take a lock (in the backend, so across processes) on every key the
    /// transaction reads or writes, when it first touches it, and hold them
    /// until commit or rollback. The lock of `key` is the key
    /// `{key}:_tx_lock`, on the backend serving `key`. A key locked by another transaction is
    /// waited for, up to [`Transaction::lock_wait`], then
    /// [`Error::Locked`]. Transactions touching keys in different orders
    /// may time out that way instead of deadlocking.
    Locked,
    /// Optimistic: nothing is locked while the transaction runs; at commit
    /// every touched key is locked, every value the transaction read is read
    /// again, and if any changed the commit writes nothing and fails with
    /// [`Error::Conflict`] (retry the transaction).
    Serializable,
}

/// A transaction: reads see its own writes; writes are buffered until
/// [`commit`](Transaction::commit) and applied together (on Redis in one
/// `MULTI`/`EXEC`, per hash slot on a cluster; on memory under the locks of
/// every shard touched, so readers see all or none; on disk in one sqlite
/// transaction per shard touched). [`rollback`](Transaction::rollback), an error returned
/// from [`run`](Transaction::run)'s body, a panic, or dropping the
/// transaction discards the writes and releases its locks.
///
/// TTLs keep their millisecond precision. Values are encoded (and signed)
/// as `Cache::set` does. A transaction is meant to be used by one task at a
/// time; clones are handles to the same transaction.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::{Cache, TransactionMode};
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// let total = cache
///     .transaction(TransactionMode::Locked)
///     .run(|tx| async move {
///         let balance: u64 = tx.get("balance").await?.unwrap_or(100);
///         tx.set("balance", &(balance - 30), "1h").await?;
///         tx.incr("withdrawals", 1).await
///     })
///     .await?;
/// assert_eq!(total, 1);
/// assert_eq!(cache.get::<u64>("balance").await?, Some(70));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Transaction {
    cache: Cache,
    mode: TransactionMode,
    /// `Err`: why the value given was not a duration.
    lock_ttl: std::result::Result<Duration, String>,
    lock_wait: std::result::Result<Duration, String>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The transaction's view of the keys it wrote (`None`: deleted).
    overlay: HashMap<String, Option<Bytes>>,
    writes: Vec<Write<'static>>,
    /// Serializable: what each key held when the transaction first read it.
    reads: HashMap<String, Option<Bytes>>,
    locks: HashMap<String, LockGuard>,
    finished: bool,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Transaction")
            .field("mode", &self.mode)
            .field("writes", &state.writes.len())
            .field("locks", &state.locks.len())
            .field("finished", &state.finished)
            .finish_non_exhaustive()
    }
}

/// The lock protecting `key` for transactions. A suffix, not a prefix, so
/// the lock lives on the backend serving `key`.
fn lock_key(key: &str) -> String {
    format!("{key}:_tx_lock")
}

impl Cache {
    /// Starts a transaction; see [`Transaction`].
    pub fn transaction(&self, mode: TransactionMode) -> Transaction {
        Transaction {
            cache: self.clone(),
            mode,
            lock_ttl: Ok(Duration::from_secs(30)),
            lock_wait: Ok(Duration::from_secs(5)),
            state: Arc::default(),
        }
    }

    /// Applies `writes`, grouped by the backend serving them (order kept
    /// within each backend).
    async fn apply(&self, writes: Vec<Write<'static>>) -> Result<()> {
        let state = self.inner.state.load_full();
        let mut groups: Vec<(usize, Vec<Write<'static>>)> = Vec::new();
        for write in writes {
            let route = state.route_index(write.key())?;
            match groups.iter_mut().find(|(r, _)| *r == route) {
                Some((_, group)) => group.push(write),
                None => groups.push((route, vec![write])),
            }
        }
        for (route, writes) in groups {
            self.run_on(
                &state,
                &state.routes[route],
                crate::middleware::Request::Apply { writes },
            )
            .await?
            .into_unit(crate::Command::Apply)?;
        }
        Ok(())
    }
}

impl Transaction {
    /// How long a lock taken by the transaction lives if its holder dies
    /// (default 30 s). Keep it longer than the transaction runs. An invalid
    /// value is the error of the first command that locks.
    pub fn lock_ttl(mut self, ttl: impl IntoTtl) -> Self {
        self.lock_ttl = crate::ttl::finite(ttl, "lock_ttl").map_err(|e| e.to_string());
        self
    }

    /// How long to wait for a key locked by another transaction before
    /// failing with [`Error::Locked`] (default 5 s).
    pub fn lock_wait(mut self, wait: impl IntoTtl) -> Self {
        self.lock_wait = wait.into_wait().map_err(|e| e.to_string());
        self
    }

    /// The transaction's mode.
    pub fn mode(&self) -> TransactionMode {
        self.mode
    }

    /// Runs `body` with the transaction, then commits if it returned `Ok`
    /// and rolls back if it returned `Err` (a panic drops the transaction,
    /// which rolls it back too).
    pub async fn run<T, E, F, Fut>(self, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Transaction) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        let handle = self.clone();
        match body(self).await {
            Ok(value) => {
                handle.commit().await?;
                Ok(value)
            }
            Err(error) => {
                handle.rollback().await;
                Err(error)
            }
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.state.lock().finished {
            return Err(Error::InvalidArgument(
                "the transaction was already committed or rolled back".into(),
            ));
        }
        Ok(())
    }

    /// Locked mode: takes the lock on `key` unless held already.
    async fn touch(&self, key: &str) -> Result<()> {
        self.check_open()?;
        if self.mode != TransactionMode::Locked || self.state.lock().locks.contains_key(key) {
            return Ok(());
        }
        let guard = self.take_lock(key).await?;
        self.state.lock().locks.insert(key.to_owned(), guard);
        Ok(())
    }

    async fn take_lock(&self, key: &str) -> Result<LockGuard> {
        let setting = |value: &std::result::Result<Duration, String>, name: &str| {
            value
                .clone()
                .map_err(|why| Error::InvalidArgument(format!("transaction {name}: {why}")))
        };
        let (ttl, wait) = (
            setting(&self.lock_ttl, "lock_ttl")?,
            setting(&self.lock_wait, "lock_wait")?,
        );
        self.cache
            .lock(&lock_key(key), ttl)
            .wait(wait)
            .await
            .map_err(|error| match error {
                Error::Locked { .. } => Error::Locked {
                    key: key.to_owned(),
                },
                other => other,
            })
    }

    /// The bytes at `key` as the transaction sees them.
    async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        self.touch(key).await?;
        {
            let state = self.state.lock();
            // Its own write, or (serializable) the version it read first and
            // the commit checks against: no second round trip.
            if let Some(seen) = state.overlay.get(key).or_else(|| state.reads.get(key)) {
                return Ok(seen.clone());
            }
        }
        let stored = self.cache.get_raw(key).await?;
        if self.mode == TransactionMode::Serializable {
            let mut state = self.state.lock();
            let first = state
                .reads
                .entry(key.to_owned())
                .or_insert_with(|| stored.clone());
            return Ok(first.clone());
        }
        Ok(stored)
    }

    fn write(&self, key: &str, view: Option<Bytes>, write: Write<'static>) {
        let mut state = self.state.lock();
        state.overlay.insert(key.to_owned(), view);
        state.writes.push(write);
    }

    /// The value at `key`: the transaction's own write if it made one,
    /// otherwise the stored value.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.read(key).await? {
            Some(bytes) => Ok(self.cache.decode_stored(key, &bytes).await),
            None => Ok(None),
        }
    }

    /// Whether `key` exists, as the transaction sees it.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.read(key).await?.is_some())
    }

    /// Stores `value` at `key` on commit, for `ttl` (`Ttl::FOREVER` for no
    /// expiry; millisecond precision is kept).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> Result<()> {
        let expire = ttl.into_ttl()?.duration();
        let bytes = self.cache.encode(key, value)?;
        self.touch(key).await?;
        self.write(
            key,
            Some(bytes.clone()),
            Write::Set {
                key: key.to_owned().into(),
                value: bytes,
                expire,
            },
        );
        Ok(())
    }

    /// Deletes `key` on commit; returns whether it exists now, as the
    /// transaction sees it.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let existed = self.read(key).await?.is_some();
        self.write(
            key,
            None,
            Write::Delete {
                key: key.to_owned().into(),
            },
        );
        Ok(existed)
    }

    /// Adds `by` to the counter at `key` (0 when missing); returns the new
    /// value as the transaction sees it. The commit adds `by` to the stored
    /// counter (Redis `INCRBY`), keeping its TTL.
    pub async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        let current = match self.read(key).await? {
            None => 0,
            Some(bytes) => parse_counter(&bytes).ok_or_else(|| Error::WrongType {
                key: key.to_owned(),
                expected: "an integer counter",
            })?,
        };
        let next = current.checked_add(by).ok_or_else(|| Error::Overflow {
            key: key.to_owned(),
        })?;
        self.write(
            key,
            Some(Bytes::from(next.to_string())),
            Write::Incr {
                key: key.to_owned().into(),
                by,
            },
        );
        Ok(next)
    }

    /// Applies the buffered writes and releases the locks.
    ///
    /// # Errors
    /// [`Error::Conflict`] in serializable mode when a value the transaction
    /// read changed meanwhile (nothing is written); [`Error::Locked`] when
    /// a key stays locked by another transaction; backend errors.
    pub async fn commit(self) -> Result<()> {
        let (writes, reads, mut locks) = {
            let mut state = self.state.lock();
            if state.finished {
                return Err(Error::InvalidArgument(
                    "the transaction was already committed or rolled back".into(),
                ));
            }
            state.finished = true;
            state.overlay.clear();
            (
                std::mem::take(&mut state.writes),
                std::mem::take(&mut state.reads),
                std::mem::take(&mut state.locks),
            )
        };
        let result = self.commit_writes(writes, reads, &mut locks).await;
        release(locks).await;
        result
    }

    async fn commit_writes(
        &self,
        mut writes: Vec<Write<'static>>,
        reads: HashMap<String, Option<Bytes>>,
        locks: &mut HashMap<String, LockGuard>,
    ) -> Result<()> {
        if self.mode == TransactionMode::Serializable {
            // Lock every touched key in one global order (no deadlock between
            // committers), then check what was read is still there.
            let keys: BTreeSet<&str> = reads
                .keys()
                .map(String::as_str)
                .chain(writes.iter().map(Write::key))
                .collect();
            for key in keys {
                let guard = self.take_lock(key).await?;
                locks.insert(key.to_owned(), guard);
            }
            for (key, seen) in &reads {
                if self.cache.get_raw(key).await? != *seen {
                    return Err(Error::Conflict { key: key.clone() });
                }
            }
        }
        // A deleted key leaves its tags, as `Cache::delete` does.
        let deleted = writes.iter().filter_map(|w| match w {
            Write::Delete { key } => Some(&**key),
            _ => None,
        });
        let forget = tags::records_of(deleted);
        writes.extend(
            forget
                .into_iter()
                .map(|key| Write::Delete { key: key.into() }),
        );
        if writes.is_empty() {
            return Ok(());
        }
        self.cache.apply(writes).await
    }

    /// Discards the buffered writes and releases the locks.
    pub async fn rollback(self) {
        let locks = {
            let mut state = self.state.lock();
            state.finished = true;
            state.overlay.clear();
            state.writes.clear();
            std::mem::take(&mut state.locks)
        };
        release(locks).await;
    }
}

async fn release(locks: HashMap<String, LockGuard>) {
    for (key, guard) in locks {
        if let Err(error) = guard.release().await {
            tracing::warn!(key, %error, "could not release a transaction lock; it expires with its ttl");
        }
    }
}
