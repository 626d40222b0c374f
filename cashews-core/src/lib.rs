//! The core of **cashews**: the [`Backend`] trait, the in-memory backend, the
//! typed [`Cache`] API, codecs, signing, TTLs, glob patterns and the
//! middleware chain.
//!
//! Applications use the `cashews` crate, which re-exports this one together
//! with the attribute macros and the backends chosen by cargo feature.
//! Backend crates (`cashews-redis`, `cashews-disk`) depend on this crate only.
#![warn(missing_docs)]

pub mod backend;
pub mod bits;
mod cache;
pub mod clock;
pub mod codec;
mod command;
pub mod driver;
mod error;
pub mod glob;
pub mod key;
pub mod memory;
pub mod middleware;
pub mod scope;
pub mod strategy;
pub mod stream;
pub mod ttl;
pub mod url;

pub use backend::{Backend, BoxFuture, BoxStream, Exist, Expiry, SetOptions, Write};
pub use cache::lock::random_token;
pub use cache::{
    Cache, CacheBuilder, CacheStats, Get, GetOrSetBuilder, IncrBuilder, LockBuilder, LockGuard,
    SetBuilder, SetManyBuilder, Transaction, TransactionMode, TryGetOrSet, DEFAULT_LOCK_WAIT,
    MAX_FLIGHT_WAIT, TAGS_PREFIX,
};
pub use clock::{Clock, ManualClock};
pub use codec::{CodecKind, Digest, Miss, Serializer};
pub use command::{Command, CommandSet};
pub use driver::{Driver, DriverContext};
pub use error::{BoxError, Error, Result};
pub use memory::{MemoryBackend, MemoryConfig};
pub use ttl::{IntoTtl, Ttl};
