//! The core of **cashews**: the [`Backend`] trait, the in-memory backend, the
//! typed [`Cache`] API, codecs, signing, TTLs, glob patterns and the
//! middleware chain.
//!
//! Applications use the `cashews` crate, which re-exports this one together
//! with the attribute macros and the backends chosen by cargo feature.
//! Backend crates (`cashews-redis`, `cashews-disk`) depend on this crate only.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
pub mod codec;
mod jitter;
pub mod key;
pub mod middleware;
pub mod scope;
pub mod strategy;
pub mod stream;

pub use cache::{
    Cache, CacheBuilder, CacheStats, Get, IncrBuilder, LockBuilder, LockGuard, SetBuilder,
    SetManyBuilder, Transaction, TransactionMode, DEFAULT_LOCK_WAIT, DRIVERS, MAX_FLIGHT_WAIT,
    TAGS_PREFIX,
};
pub use cashews_backend::{
    backend, bits, clock, command, driver, error, glob, layout, memory, ttl, url,
};
pub use cashews_backend::{
    Backend, BoxError, BoxFuture, BoxStream, Clock, Command, CommandSet, Driver, DriverContext,
    Error, Exist, ExpireAt, Expiry, IntoExpireAt, IntoTtl, ManualClock, MemoryBackend,
    MemoryConfig, Result, ResultTtl, SetOptions, Ttl, Write,
};
pub use codec::{CodecKind, Digest, Miss, Serializer};
pub use strategy::{GetOrSetBuilder, TryGetOrSet};
