//! The in-process backend: `mem://?size=N&check_interval=DURATION`.
//!
//! - `size` (default 1000): the most entries kept, exactly. Beyond it an
//!   entry not read lately is evicted, by CLOCK (second-chance LRU): a read
//!   marks an entry; eviction goes round the entries in the order they were
//!   stored, clears a mark and passes a marked entry over once, and evicts
//!   the first unmarked one. Caches of up to 511 entries are one ring;
//!   larger ones are split into up to 64 shards (one per 256 entries, a
//!   power of two) with a lock each, so concurrent calls on several cores
//!   do not wait on one lock; eviction then picks from the writer's shard.
//! - `check_interval` (default `1s`, `0` to disable): how often a background
//!   task removes expired entries. Expired entries are never returned either
//!   way; the sweep only frees their memory early. The task starts with the
//!   first command run inside a tokio runtime and stops when the backend is
//!   closed or dropped.
//!
//! Values are stored as encoded bytes, so a returned value is always a fresh
//! copy: mutating it never changes the cache.

mod local;
mod shard;
mod store;
mod sweep;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::{AnyValue, Backend, BoxStream, Expiry, Kept, SetOptions, ValueStore, Write};
use crate::clock::Clock;
use crate::driver::{Driver, DriverContext};
use crate::error::Result;
use crate::stream::iter_stream;
use crate::url::{Params, SetupUrl};
pub use local::{Epoch, LocalCache, Ticket};
use store::Store;
use sweep::Sweeper;

/// Settings of a [`MemoryBackend`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// The most entries kept (LRU eviction beyond).
    pub size: NonZeroUsize,
    /// How often expired entries are purged; `None` disables the sweep.
    pub check_interval: Option<Duration>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            size: NonZeroUsize::new(1000).expect("non-zero"),
            check_interval: Some(Duration::from_secs(1)),
        }
    }
}

impl MemoryConfig {
    /// Reads `size` and `check_interval` from URL parameters.
    pub fn from_params(params: &mut Params<'_>) -> Result<MemoryConfig> {
        let mut config = MemoryConfig::default();
        if let Some(size) = params.take_with("size", "a positive integer", |s| {
            s.trim().parse::<usize>().ok().and_then(NonZeroUsize::new)
        })? {
            config.size = size;
        }
        if let Some(interval) = params.duration("check_interval")? {
            config.check_interval = (!interval.is_zero()).then_some(interval);
        }
        Ok(config)
    }
}

/// The `mem://` driver.
pub const DRIVER: Driver = Driver {
    name: "mem",
    schemes: &["mem"],
    connect,
};

fn connect(
    url: &SetupUrl,
    params: &mut Params<'_>,
    ctx: &DriverContext,
) -> Result<Arc<dyn Backend>> {
    url.parameters_only("mem://?size=1000")?;
    let config = MemoryConfig::from_params(params)?;
    Ok(Arc::new(MemoryBackend::new(config, ctx.clock.clone())))
}

/// An LRU cache with TTLs in this process. See the [module docs](self).
#[derive(Debug)]
pub struct MemoryBackend {
    store: Arc<Store>,
    clock: Clock,
    sweeper: Sweeper,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// A memory backend with `config`, reading time from `clock`.
    pub fn new(config: MemoryConfig, clock: Clock) -> MemoryBackend {
        MemoryBackend {
            store: Arc::new(Store::new(config.size)),
            sweeper: Sweeper::new(config.check_interval),
            clock,
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.sweeper.ensure_started(&self.store, &self.clock);
        self.clock.now_ms()
    }

    /// Runs a store operation at the current time.
    #[inline]
    fn ready<T>(&self, op: impl FnOnce(&Store, u64) -> Result<T>) -> Result<T> {
        op(&self.store, self.now())
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "mem"
    }

    fn in_process(&self) -> bool {
        true
    }

    async fn remove_expired(&self) -> Result<u64> {
        Ok(self.store.purge_expired(self.now()) as u64)
    }

    fn values(&self) -> Option<&dyn ValueStore> {
        Some(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.ready(move |s, now| Ok(s.get(key, now)))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.ready(move |s, now| Ok(keys.iter().map(|k| s.get(k, now)).collect()))
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.ready(move |s, now| Ok(s.set(key, &value, options, now)))
    }

    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()> {
        self.ready(move |s, now| {
            let options = SetOptions {
                expire,
                ..SetOptions::default()
            };
            for (key, value) in pairs {
                s.set(key, &value, options, now);
            }
            Ok(())
        })
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.ready(move |s, now| Ok(s.delete(key, now)))
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.ready(move |s, now| Ok(keys.iter().filter(|k| s.delete(k, now)).count() as u64))
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        self.ready(move |s, now| Ok(s.delete_match(pattern, now)))
    }

    fn scan(&self, pattern: String, _batch_size: usize) -> BoxStream<'static, Result<String>> {
        let keys = self.store.keys_matching(&pattern, self.now());
        iter_stream(keys.into_iter().map(Ok))
    }

    fn get_match(
        &self,
        pattern: String,
        _batch_size: usize,
    ) -> BoxStream<'static, Result<(String, Bytes)>> {
        let pairs = self.store.values_matching(&pattern, self.now());
        iter_stream(pairs.into_iter().map(Ok))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.ready(move |s, now| Ok(s.exists(key, now)))
    }

    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64> {
        self.ready(move |s, now| s.incr(key, by, expire, now))
    }

    /// All of `writes` at once: readers see none or all of them.
    async fn apply(&self, writes: &[Write<'_>]) -> Result<()> {
        self.ready(move |s, now| s.apply(writes, now))
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.ready(move |s, now| Ok(s.expire(key, ttl, now)))
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.ready(move |s, now| Ok(s.get_expire(key, now)))
    }

    async fn ping(&self) -> Result<()> {
        std::future::ready(Ok(())).await
    }

    async fn clear(&self) -> Result<()> {
        self.ready(|s, _| {
            s.clear();
            Ok(())
        })
    }

    async fn get_keys_count(&self) -> Result<u64> {
        self.ready(|s, _| Ok(s.len()))
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.ready(move |s, now| Ok(s.size_of(key, now)))
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let options = SetOptions {
            expire: Some(ttl),
            exist: crate::backend::Exist::IfAbsent,
        };
        self.ready(move |s, now| Ok(s.set(key, token.as_bytes(), options, now)))
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.ready(move |s, now| Ok(s.unlock(key, token, now)))
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        self.ready(move |s, now| s.get_bits(key, indexes, size, now))
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        self.ready(move |s, now| s.incr_bits(key, indexes, size, by, now))
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        self.ready(move |s, now| s.slice_incr(key, (start, end, max), expire, now))
    }

    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        self.ready(move |s, now| s.set_add(key, members, expire, now))
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.ready(move |s, now| s.set_remove(key, members, now))
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.ready(move |s, now| s.set_pop(key, count, now))
    }

    async fn close(&self) -> Result<()> {
        self.sweeper.stop();
        Ok(())
    }

    #[inline]
    fn get_local(
        &self,
        key: &str,
        decoder: u64,
        visit: &mut dyn FnMut(&[u8], &mut Kept<'_>),
    ) -> Option<bool> {
        Some(self.store.visit(key, self.now(), decoder, visit))
    }
}

impl ValueStore for MemoryBackend {
    fn get_value(&self, key: &str) -> Option<AnyValue> {
        self.store.get_value(key, self.now())
    }

    fn set_value(&self, key: &str, value: AnyValue, ttl: Option<Duration>) {
        self.store.set_value(key, value, ttl, self.now());
    }
}
