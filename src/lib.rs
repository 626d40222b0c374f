#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// ---- The user API -------------------------------------------------------

#[doc(inline)]
pub use cashews_core::{
    Cache, CacheBuilder, CacheStats, Clock, Command, CommandSet, Error, Exist, ExpireAt, Expiry,
    IntoExpireAt, IntoTtl, LockGuard, ManualClock, Result, ResultTtl, Transaction, TransactionMode,
    Ttl, DEFAULT_LOCK_WAIT, DRIVERS, MAX_FLIGHT_WAIT, TAGS_PREFIX,
};

pub use cashews_core::strategy::clear_all;

/// Sets up the default cache ([`Cache::global`]) for every key from `url`;
/// see [`Cache::setup`].
pub fn setup(url: &str) -> Result<()> {
    Cache::global().setup(url)
}

/// Sets up a backend of the default cache for the keys starting with
/// `prefix`; the longest matching prefix wins.
pub fn setup_prefix(prefix: &str, url: &str) -> Result<()> {
    Cache::global().setup_prefix(prefix, url)
}

/// What the commands of [`Cache`] return before they are awaited: each
/// takes its options as methods (`cache.set("k", &v).expire("1h").await`).
pub mod pending {
    #[doc(inline)]
    pub use cashews_core::strategy::{GetOrSetBuilder, TryGetOrSet};
    #[doc(inline)]
    pub use cashews_core::{Get, IncrBuilder, LockBuilder, SetBuilder, SetManyBuilder};
}

/// Caching strategies, usable without the attribute macros.
pub mod strategy {
    #[doc(inline)]
    pub use cashews_core::strategy::{
        function_stats, invalidate, Adapter, BloomFilter, CacheInfo, CachedStream, CircuitBreaker,
        CircuitOpen, Condition, DualBloom, Early, Failover, FunctionStats, Hit, Limit, Locked,
        Memo, OkPart, OnBackendError, RateLimit, RateLimited, Refresh, SliceRateLimit, Soft, Whole,
    };
}

/// How values become cache keys: [`KeyPart`](key::KeyPart) and the
/// formatters of key templates.
pub mod key {
    #[doc(inline)]
    pub use cashews_core::key::{fmt, render, DisplayKeyPart, KeyPart};
}

#[doc(inline)]
pub use cashews_core::scope;

#[doc(inline)]
pub use cashews_core::middleware;

/// Codecs and signing of stored values (chosen per backend by URL).
pub mod codec {
    #[cfg(feature = "python")]
    #[doc(inline)]
    pub use cashews_core::codec::Pickler;
    #[doc(inline)]
    pub use cashews_core::codec::{
        CodecKind, Compression, Decoded, Digest, Miss, Serializer, DEFAULT_COMPRESS_MIN,
    };
}

// ---- The backend kit ----------------------------------------------------

#[doc(inline)]
pub use cashews_backend as backend;

/// The Redis backend (feature `redis`).
#[cfg(feature = "redis")]
#[doc(inline)]
pub use cashews_redis as redis;

/// The disk backend (feature `disk`).
#[cfg(feature = "disk")]
#[doc(inline)]
pub use cashews_disk as disk;

/// The memcached backend (feature `memcached`).
#[cfg(feature = "memcached")]
#[doc(inline)]
pub use cashews_memcached as memcached;

/// The DynamoDB backend (feature `dynamodb`).
#[cfg(feature = "dynamodb")]
#[doc(inline)]
pub use cashews_dynamodb as dynamodb;

/// HTTP response caching for axum and tower (feature `axum`).
#[cfg(feature = "axum")]
#[doc(inline)]
pub use cashews_axum as axum;

// ---- The attribute macros -----------------------------------------------

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

// ---- The macro runtime --------------------------------------------------

/// What the attribute macros' generated code calls. Not a public API: it
/// changes in any release, semver does not cover it.
#[doc(hidden)]
pub mod __private {
    pub use cashews_core::strategy::{
        bounded_store, bypassed, cache_info, duration_of, expire_at_ttl, invalid_ttl, layer_ttl,
        result_ttl, uncached, Condition, DecodedHit, Either, FunctionStats, HitProbe, Memo, OkPart,
        TypedHit, Whole,
    };
    pub use cashews_core::{glob, key, scope, strategy};
    pub use cashews_core::{Cache, IntoTtl, Ttl};

    /// `fraction` of a TTL (early_ttl and soft_ttl default to a third of ttl).
    pub fn fraction(ttl: Ttl, fraction: f64) -> std::time::Duration {
        ttl.duration()
            .map_or(std::time::Duration::from_secs(3600), |d| {
                d.mul_f64(fraction)
            })
    }

    /// Whether a result is an `Err` (`negative_ttl`).
    pub fn is_err<T, E>(output: &::std::result::Result<T, E>) -> bool {
        output.is_err()
    }

    /// The cache of `#[cache]` functions that name none.
    pub fn default_cache() -> &'static Cache {
        Cache::global()
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
