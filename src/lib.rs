#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::ops::Deref;
use std::sync::LazyLock;

#[doc(inline)]
pub use cashews_core::{
    backend, bits, clock, codec, driver, glob, key, memory, middleware, scope, strategy, stream,
    ttl, url, Backend, BoxError, BoxFuture, BoxStream, CacheStats, Clock, CodecKind, Command,
    CommandSet, Digest, Driver, Error, Exist, Expiry, IntoTtl, LockGuard, ManualClock,
    MemoryBackend, MemoryConfig, Miss, Result, Serializer, SetOptions, Transaction,
    TransactionMode, Ttl, Write, DEFAULT_LOCK_WAIT, MAX_FLIGHT_WAIT, TAGS_PREFIX,
};

/// The backends compiled into this build, by cargo feature. `mem://` is
/// always there.
pub const DRIVERS: &[Driver] = &[
    cashews_core::memory::DRIVER,
    #[cfg(feature = "redis")]
    cashews_redis::DRIVER,
    #[cfg(feature = "disk")]
    cashews_disk::DRIVER,
];

/// The Redis backend (feature `redis`).
#[cfg(feature = "redis")]
#[doc(inline)]
pub use cashews_redis::{self as redis, RedisBackend};

/// The disk backend (feature `disk`).
#[cfg(feature = "disk")]
#[doc(inline)]
pub use cashews_disk::{self as disk, DiskBackend};

/// HTTP response caching for axum and tower (feature `axum`).
#[cfg(feature = "axum")]
#[doc(inline)]
pub use cashews_axum as axum;

/// A cache that can set up every backend compiled in. It dereferences to
/// [`cashews_core::Cache`], where the commands are documented; cloning gives
/// another handle to the same cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://?size=10000")?;
/// cache.set("k", &"v").expire("1m").await?;
/// assert_eq!(cache.get::<String>("k").await?.as_deref(), Some("v"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Cache(cashews_core::Cache);

impl Cache {
    /// A cache with no backend yet; call [`setup`](cashews_core::Cache::setup).
    pub fn new() -> Cache {
        Cache::with_clock(Clock::system())
    }

    /// A cache reading time from `clock` — [`Clock::tokio`] makes expiry
    /// follow `tokio::time::pause()` / `advance()` in tests.
    pub fn with_clock(clock: Clock) -> Cache {
        Cache(
            cashews_core::Cache::builder()
                .drivers(DRIVERS.iter().copied())
                .clock(clock)
                .build(),
        )
    }
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new()
    }
}

impl Deref for Cache {
    type Target = cashews_core::Cache;
    fn deref(&self) -> &cashews_core::Cache {
        &self.0
    }
}

impl AsRef<cashews_core::Cache> for Cache {
    fn as_ref(&self) -> &cashews_core::Cache {
        &self.0
    }
}

impl From<Cache> for cashews_core::Cache {
    fn from(cache: Cache) -> Self {
        cache.0
    }
}

#[cfg(feature = "macros")]
#[doc(inline)]
pub use cashews_macros::cache;

/// The strategy attributes, used as `#[cache::failover(...)]`, stacked over
/// and under `#[cache]`: the first attribute is the outermost wrapper.
#[cfg(feature = "macros")]
pub mod cache {
    #[doc(inline)]
    pub use cashews_macros::{
        bloom, circuit_breaker, dual_bloom, early, failover, hit, invalidate, iterator, locked,
        rate_limit, slice_rate_limit, soft,
    };
}

pub use cashews_core::key::{key_context, KeyPart};
pub use cashews_core::strategy::{uncached, CircuitOpen, OnBackendError, RateLimited};

static GLOBAL: LazyLock<Cache> = LazyLock::new(Cache::new);

/// The process-wide default cache, used by `#[cache]` functions that name no
/// other. Configure it once at start-up with [`setup`].
pub fn cache() -> &'static Cache {
    &GLOBAL
}

/// Sets up the default cache's backend for every key from `url`; see
/// [`cashews_core::Cache::setup`].
pub fn setup(url: &str) -> Result<()> {
    cache().setup(url)
}

/// Sets up a backend of the default cache for the keys starting with
/// `prefix`; the longest matching prefix wins.
pub fn setup_prefix(prefix: &str, url: &str) -> Result<()> {
    cache().setup_prefix(prefix, url)
}

/// What generated code uses; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use cashews_core::strategy::{
        bypassed, cache_info, duration_of, invalid_ttl, local_hit, uncached, Condition,
        FunctionStats, Memo, OkPart, Whole,
    };
    pub use cashews_core::strategy::{layer_ttl, Either};
    pub use cashews_core::{glob, key, strategy};
    pub use cashews_core::{Cache, IntoTtl, Ttl};

    /// `fraction` of a TTL (early_ttl and soft_ttl default to a third of ttl).
    pub fn fraction(ttl: Ttl, fraction: f64) -> std::time::Duration {
        ttl.duration()
            .map_or(std::time::Duration::from_secs(3600), |d| {
                d.mul_f64(fraction)
            })
    }

    /// The cache of `#[cache]` functions that name none.
    pub fn default_cache() -> &'static Cache {
        &super::cache().0
    }

    /// The cache named by `cache = EXPR`.
    pub fn as_cache<C: AsCache + ?Sized>(cache: &C) -> &Cache {
        cache.as_cache()
    }

    /// What `cache = EXPR` accepts: a cache, or anything that leads to one.
    pub trait AsCache {
        /// The cache.
        fn as_cache(&self) -> &Cache;
    }

    impl AsCache for Cache {
        fn as_cache(&self) -> &Cache {
            self
        }
    }

    impl AsCache for super::Cache {
        fn as_cache(&self) -> &Cache {
            &self.0
        }
    }

    impl<T: AsCache + ?Sized> AsCache for &T {
        fn as_cache(&self) -> &Cache {
            (**self).as_cache()
        }
    }

    impl<T: AsCache + ?Sized> AsCache for std::sync::Arc<T> {
        fn as_cache(&self) -> &Cache {
            (**self).as_cache()
        }
    }

    impl<T: AsCache> AsCache for std::sync::LazyLock<T> {
        fn as_cache(&self) -> &Cache {
            (**self).as_cache()
        }
    }
}
