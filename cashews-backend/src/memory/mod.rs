//! The in-process backend: `mem://?size=N&check_interval=DURATION`.
//!
//! - `size` (default 1000): the most entries kept, exactly. Beyond it the
//!   least recently used entry is evicted, with second-chance LRU: a read
//!   marks an entry instead of moving it, and a marked entry is moved to the
//!   front once more before it can be evicted. Caches of up to 511 entries are
//!   one list; larger ones are split into up to 64 shards (one per 256
//!   entries, a power of two) with a lock each, so concurrent calls on several
//!   cores do not wait on one lock; eviction then picks from the writer's
//!   shard.
//! - `check_interval` (default `1s`, `0` to disable): how often a background
//!   task removes expired entries. Expired entries are never returned either
//!   way; the sweep only frees their memory early. The task starts with the
//!   first command run inside a tokio runtime and stops when the backend is
//!   closed or dropped.
//!
//! Values are stored as encoded bytes, so a returned value is always a fresh
//! copy: mutating it never changes the cache.

mod local;
mod store;
mod sweep;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::{Backend, BoxFuture, BoxStream, Expiry, SetOptions, Write};
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

    /// Wraps a synchronous store operation in the boxed future the trait needs.
    fn ready<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&Store, u64) -> Result<T> + Send + 'a,
    ) -> BoxFuture<'a, Result<T>> {
        let result = op(&self.store, self.now());
        Box::pin(std::future::ready(result))
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "mem"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        self.ready(move |s, now| Ok(s.get(key, now)))
    }

    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        self.ready(move |s, now| Ok(keys.iter().map(|k| s.get(k, now)).collect()))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        options: SetOptions,
    ) -> BoxFuture<'a, Result<bool>> {
        self.ready(move |s, now| Ok(s.set(key, value, options, now)))
    }

    fn set_many<'a>(
        &'a self,
        pairs: Vec<(&'a str, Bytes)>,
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.ready(move |s, now| {
            let options = SetOptions {
                expire,
                ..SetOptions::default()
            };
            for (key, value) in pairs {
                s.set(key, value, options, now);
            }
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.ready(move |s, now| Ok(s.delete(key, now)))
    }

    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        self.ready(move |s, now| Ok(keys.iter().filter(|k| s.delete(k, now)).count() as u64))
    }

    fn delete_match<'a>(&'a self, pattern: &'a str) -> BoxFuture<'a, Result<u64>> {
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

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.ready(move |s, now| Ok(s.exists(key, now)))
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        by: i64,
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        self.ready(move |s, now| s.incr(key, by, expire, now))
    }

    /// All of `writes` at once: readers see none or all of them.
    fn apply<'a>(&'a self, writes: &'a [Write<'a>]) -> BoxFuture<'a, Result<()>> {
        self.ready(move |s, now| s.apply(writes, now))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>> {
        self.ready(move |s, now| Ok(s.expire(key, ttl, now)))
    }

    fn get_expire<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Expiry>> {
        self.ready(move |s, now| Ok(s.get_expire(key, now)))
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn clear(&self) -> BoxFuture<'_, Result<()>> {
        self.ready(|s, _| {
            s.clear();
            Ok(())
        })
    }

    fn get_keys_count(&self) -> BoxFuture<'_, Result<u64>> {
        self.ready(|s, _| Ok(s.len()))
    }

    fn get_size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>>> {
        self.ready(move |s, now| Ok(s.size_of(key, now)))
    }

    fn set_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        let options = SetOptions {
            expire: Some(ttl),
            exist: crate::backend::Exist::IfAbsent,
        };
        let token = Bytes::copy_from_slice(token.as_bytes());
        self.ready(move |s, now| Ok(s.set(key, token, options, now)))
    }

    fn unlock<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.ready(move |s, now| Ok(s.unlock(key, token, now)))
    }

    fn get_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        self.ready(move |s, now| s.get_bits(key, indexes, size, now))
    }

    fn incr_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
        by: i64,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        self.ready(move |s, now| s.incr_bits(key, indexes, size, by, now))
    }

    fn slice_incr<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        self.ready(move |s, now| s.slice_incr(key, (start, end, max), expire, now))
    }

    fn set_add<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        self.ready(move |s, now| s.set_add(key, members, expire, now))
    }

    fn set_remove<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
    ) -> BoxFuture<'a, Result<u64>> {
        self.ready(move |s, now| s.set_remove(key, members, now))
    }

    fn set_pop<'a>(&'a self, key: &'a str, count: usize) -> BoxFuture<'a, Result<Vec<String>>> {
        self.ready(move |s, now| s.set_pop(key, count, now))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.sweeper.stop();
        Box::pin(std::future::ready(Ok(())))
    }

    #[inline]
    fn get_local(&self, key: &str, visit: &mut dyn FnMut(&[u8])) -> Option<bool> {
        Some(self.store.visit(key, self.now(), visit))
    }
}
