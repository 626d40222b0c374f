//! The storage interface every backend implements: bytes in, bytes out.
//!
//! The `Cache` turns typed values into bytes (codec, envelope,
//! signature) and routes each command to a backend; a backend only stores
//! bytes and implements the commands' semantics. It is used as
//! `Arc<dyn Backend>`; its methods are `async fn`s under
//! [`#[async_trait]`](crate::async_trait), one boxed future per call. The
//! hit path does not await at all: [`Backend::get_local`].
//!
//! ```
//! use bytes::Bytes;
//! use cashews_backend::{async_trait, Backend, BoxStream, Expiry, Result, SetOptions};
//! # use std::time::Duration;
//!
//! /// A backend that stores nothing.
//! #[derive(Debug)]
//! struct Nothing;
//!
//! #[async_trait]
//! impl Backend for Nothing {
//!     fn name(&self) -> &'static str { "nothing" }
//!     async fn get(&self, _key: &str) -> Result<Option<Bytes>> { Ok(None) }
//!     async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> { Ok(vec![None; keys.len()]) }
//!     async fn set(&self, _key: &str, _value: Bytes, _options: SetOptions) -> Result<bool> { Ok(false) }
//!     async fn set_many(&self, _pairs: Vec<(&str, Bytes)>, _expire: Option<Duration>) -> Result<()> { Ok(()) }
//!     async fn delete(&self, _key: &str) -> Result<bool> { Ok(false) }
//!     async fn delete_many(&self, _keys: &[&str]) -> Result<u64> { Ok(0) }
//!     async fn delete_match(&self, _pattern: &str) -> Result<u64> { Ok(0) }
//!     fn scan(&self, _pattern: String, _batch: usize) -> BoxStream<'static, Result<String>> {
//!         cashews_backend::stream::iter_stream(std::iter::empty())
//!     }
//!     fn get_match(&self, _pattern: String, _batch: usize) -> BoxStream<'static, Result<(String, Bytes)>> {
//!         cashews_backend::stream::iter_stream(std::iter::empty())
//!     }
//!     async fn exists(&self, _key: &str) -> Result<bool> { Ok(false) }
//!     async fn incr(&self, _key: &str, by: i64, _expire: Option<Duration>) -> Result<i64> { Ok(by) }
//!     async fn expire(&self, _key: &str, _ttl: Duration) -> Result<bool> { Ok(false) }
//!     async fn get_expire(&self, _key: &str) -> Result<Expiry> { Ok(Expiry::Missing) }
//!     async fn ping(&self) -> Result<()> { Ok(()) }
//!     async fn clear(&self) -> Result<()> { Ok(()) }
//!     async fn get_keys_count(&self) -> Result<u64> { Ok(0) }
//!     async fn get_size(&self, _key: &str) -> Result<Option<u64>> { Ok(None) }
//!     async fn set_lock(&self, _key: &str, _token: &str, _ttl: Duration) -> Result<bool> { Ok(true) }
//!     async fn unlock(&self, _key: &str, _token: &str) -> Result<bool> { Ok(false) }
//! }
//! # let _ = Nothing;
//! ```
//!
//! # Semantics every backend shares (tested by the conformance suite)
//! - `set` without an expiry stores a value with no TTL, replacing any old TTL.
//! - `incr` on a missing key starts from 0; the expiry is applied only when this
//!   increment creates the key (an existing counter keeps its TTL).
//! - `set_add` only ever *extends* the set's TTL: a set without TTL keeps
//!   none, and members added without an expiry make the set persistent (the
//!   set lives as long as its longest-lived member).
//! - `slice_incr` counts the members in the inclusive window `[start, end]`,
//!   drops older ones, and adds one member at `end` when fewer than `max` are
//!   present; members are unique even at the same timestamp.
//! - Glob patterns follow [`crate::glob`].
//! - Bits use Redis' `BITFIELD` layout (bit 0 is the high bit of byte 0) and
//!   saturate at `0` and `2^size - 1`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use crate::command::Command;
use crate::error::{Error, Result};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed, sendable stream.
pub type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;

/// When a `set` may write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Exist {
    /// Always write (the default).
    #[default]
    Always,
    /// Write only if the key already holds a value (Redis `XX`).
    IfPresent,
    /// Write only if the key is absent (Redis `NX`).
    IfAbsent,
}

/// One write of a batch for [`Backend::apply`] (a transaction's commit).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Write<'a> {
    /// Stores `value` (with `expire`, or without TTL).
    Set {
        /// The key.
        key: Cow<'a, str>,
        /// The bytes to store.
        value: Bytes,
        /// The TTL, `None` for none.
        expire: Option<Duration>,
    },
    /// Deletes the key.
    Delete {
        /// The key.
        key: Cow<'a, str>,
    },
    /// Adds `by` to the counter at the key (keeping its TTL).
    Incr {
        /// The key.
        key: Cow<'a, str>,
        /// The amount.
        by: i64,
    },
}

impl<'a> Write<'a> {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Write::Set { key, .. } | Write::Delete { key } | Write::Incr { key, .. } => key,
        }
    }

    pub(crate) fn key_mut(&mut self) -> &mut Cow<'a, str> {
        match self {
            Write::Set { key, .. } | Write::Delete { key } | Write::Incr { key, .. } => key,
        }
    }
}

/// Options of a `set`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetOptions {
    /// Time to live; `None` stores the value without expiry.
    pub expire: Option<Duration>,
    /// When the write may happen.
    pub exist: Exist,
}

/// The remaining life of a key, as returned by `get_expire`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and never expires.
    NoExpiry,
    /// The key expires after this long.
    Remaining(Duration),
}

/// A storage backend. See the [module docs](self) for the shared semantics.
///
/// Methods with a default body answer [`Error::Unsupported`]; a backend that
/// ships with this library implements all of them.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Short name used in errors, logs and metrics (`mem`, `redis`, `disk`).
    fn name(&self) -> &'static str;

    /// The stored bytes of `key`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// The stored bytes of each key, aligned with `keys`.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>>;

    /// Stores `value`; returns whether it was written (see [`Exist`]).
    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool>;

    /// Stores every pair with the same expiry.
    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()>;

    /// Deletes `key`; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Deletes the keys; returns how many existed.
    async fn delete_many(&self, keys: &[&str]) -> Result<u64>;

    /// Deletes every key matching the glob `pattern`; returns how many.
    async fn delete_match(&self, pattern: &str) -> Result<u64>;

    /// Every key matching `pattern`, each once, fetched `batch_size` at a time.
    /// The stream owns what it needs (it may outlive this borrow).
    fn scan(&self, pattern: String, batch_size: usize) -> BoxStream<'static, Result<String>>;

    /// Every key matching `pattern` with its stored bytes (keys holding a set
    /// or a window are skipped).
    fn get_match(
        &self,
        pattern: String,
        batch_size: usize,
    ) -> BoxStream<'static, Result<(String, Bytes)>>;

    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Adds `by` to the integer at `key`; returns the new value.
    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64>;

    /// Sets the TTL of an existing key; returns whether the key exists.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// The remaining life of `key`.
    async fn get_expire(&self, key: &str) -> Result<Expiry>;

    /// Checks the backend answers.
    async fn ping(&self) -> Result<()>;

    /// Deletes every key of this backend (on Redis: the configured db only).
    async fn clear(&self) -> Result<()>;

    /// How many keys are stored. Like Redis' `DBSIZE`, this may include expired
    /// keys that have not been purged yet.
    async fn get_keys_count(&self) -> Result<u64>;

    /// Approximate bytes used by `key`, if it exists.
    async fn get_size(&self, key: &str) -> Result<Option<u64>>;

    /// Takes the lock `key` with `token` unless it is held; returns whether taken.
    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool>;

    /// Releases the lock `key` only if it holds `token`; returns whether released.
    async fn unlock(&self, key: &str, token: &str) -> Result<bool>;

    /// Whether the lock `key` is held.
    async fn is_locked(&self, key: &str) -> Result<bool> {
        self.exists(key).await
    }

    /// Reads unsigned `size`-bit fields number `indexes` of the bit string at `key`.
    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let _ = (key, indexes, size);
        unsupported(self.name(), Command::GetBits)
    }

    /// Adds `by` to each field, saturating; returns the new values.
    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let _ = (key, indexes, size, by);
        unsupported(self.name(), Command::IncrBits)
    }

    /// Sliding-window counter (see the [module docs](self)); times are in ms.
    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        let _ = (key, start, end, max, expire);
        unsupported(self.name(), Command::SliceIncr)
    }

    /// Applies `writes` in order, as one unit where the backend can (Redis:
    /// one `MULTI`/`EXEC`, per hash slot on a cluster). The default runs them
    /// one after the other, each atomic on its own.
    async fn apply(&self, writes: &[Write<'_>]) -> Result<()> {
        {
            for write in writes {
                match write {
                    Write::Set { key, value, expire } => {
                        let options = SetOptions {
                            expire: *expire,
                            ..SetOptions::default()
                        };
                        self.set(key, value.clone(), options).await?;
                    }
                    Write::Delete { key } => {
                        self.delete(key).await?;
                    }
                    Write::Incr { key, by } => {
                        self.incr(key, *by, None).await?;
                    }
                }
            }
            Ok(())
        }
    }

    /// Adds members to the set at `key`; returns how many were new.
    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        let _ = (key, members, expire);
        unsupported(self.name(), Command::SetAdd)
    }

    /// Removes members from the set at `key`; returns how many were there.
    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let _ = (key, members);
        unsupported(self.name(), Command::SetRemove)
    }

    /// Removes and returns up to `count` members of the set at `key`.
    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let _ = (key, count);
        unsupported(self.name(), Command::SetPop)
    }

    /// The commands this backend cannot run: they answer
    /// [`Error::Unsupported`] (memcached cannot list keys, so `scan` and
    /// what is built on it). A backend that leaves a default method above
    /// unimplemented lists its command here.
    fn unsupported(&self) -> &'static [Command] {
        &[]
    }

    /// Stops background work and releases connections.
    async fn close(&self) -> Result<()> {
        Ok(())
    }

    /// Frees the entries whose TTL has passed now, instead of at the next
    /// background sweep; returns how many. Backends that expire entries
    /// themselves (Redis) free nothing here.
    async fn remove_expired(&self) -> Result<u64> {
        Ok(0)
    }

    /// The store of values kept as themselves (`Cache::set_value`), if this
    /// backend keeps values in process (the memory backend).
    fn values(&self) -> Option<&dyn ValueStore> {
        None
    }

    /// Whether every command completes in this process, without I/O that a
    /// runtime must drive (the memory backend). A plain function's cached
    /// call inside a current-thread runtime can then run in line.
    fn in_process(&self) -> bool {
        false
    }

    /// Answers a `get` without awaiting, if the backend holds the key's state
    /// in process (memory, a client-side cache). `visit` is called with the
    /// value's bytes on a hit. Returns `Some(hit)` when it could answer,
    /// `None` when the caller must use [`Backend::get`].
    ///
    /// `decoder` names who decodes the bytes (`0`: no one in particular):
    /// a backend with a typed tier hands `visit` the copy that decoder kept
    /// beside these bytes before ([`Kept`]), and keeps the one it is given.
    /// The bytes stay the truth: any write replaces both.
    ///
    /// This is the hit path: it must not block.
    fn get_local(
        &self,
        key: &str,
        decoder: u64,
        visit: &mut dyn FnMut(&[u8], &mut Kept<'_>),
    ) -> Option<bool> {
        let _ = (key, decoder, visit);
        None
    }
}

/// A value kept as itself, shared by every reader (each gets a clone of
/// the value inside).
pub type AnyValue = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// What the hit path ([`Backend::get_local`]) offers besides the bytes: the
/// copy decoded from them earlier by the same decoder, and whether a new one
/// is worth keeping (the entry is being read again).
#[derive(Debug)]
pub struct Kept<'a> {
    current: Option<&'a AnyValue>,
    new: Option<AnyValue>,
    wanted: bool,
}

impl<'a> Kept<'a> {
    /// What a backend offers: the copy kept by the reading decoder, and
    /// whether a new one would be kept.
    pub fn new(current: Option<&'a AnyValue>, wanted: bool) -> Kept<'a> {
        Kept {
            current,
            new: None,
            wanted,
        }
    }

    /// Nothing kept, nothing wanted (backends without a typed tier).
    pub fn none() -> Kept<'static> {
        Kept::new(None, false)
    }

    /// The copy given to [`Kept::keep`], for the backend to keep after the
    /// visit.
    pub fn into_new(self) -> Option<AnyValue> {
        self.new
    }

    /// The copy kept by this decoder, if any.
    #[inline]
    pub fn get(&self) -> Option<&AnyValue> {
        self.current
    }

    /// Whether [`Kept::keep`] would keep a value (the entry holds none and
    /// is read often enough to be worth one).
    #[inline]
    pub fn wanted(&self) -> bool {
        self.wanted && self.current.is_none()
    }

    /// Keeps `value`, decoded from the bytes just visited, beside them.
    #[inline]
    pub fn keep(&mut self, value: AnyValue) {
        if self.wanted() {
            self.new = Some(value);
        }
    }
}

/// Values kept as themselves, never encoded: what a backend that keeps its
/// data in process offers besides bytes ([`Backend::values`]). Every other
/// command (delete, expire, scan, ...) sees these keys as any other.
pub trait ValueStore: Send + Sync {
    /// The value under `key`, if it holds one kept as itself.
    fn get_value(&self, key: &str) -> Option<AnyValue>;

    /// Keeps `value` under `key` for `ttl` (`None`: no expiry).
    fn set_value(&self, key: &str, value: AnyValue, ttl: Option<std::time::Duration>);
}

fn unsupported<T>(backend: &'static str, command: Command) -> Result<T> {
    Err(Error::Unsupported { backend, command })
}

/// The sliding-window step every backend shares (`slice_incr`): drops the
/// stamps older than `start`, counts those in `[start, end]` and records
/// `end` if that count is under `max`. Returns the count (with the new stamp)
/// and whether it was recorded (the window's TTL is renewed then).
pub fn slide_window(stamps: &mut Vec<u64>, start: u64, end: u64, max: u64) -> (u64, bool) {
    stamps.retain(|t| *t >= start);
    let count = stamps.iter().filter(|t| **t <= end).count() as u64;
    if count < max {
        stamps.push(end);
        (count + 1, true)
    } else {
        (count, false)
    }
}
