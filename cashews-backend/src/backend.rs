//! The storage interface every backend implements: bytes in, bytes out.
//!
//! The `Cache` turns typed values into bytes (codec, envelope,
//! signature) and routes each command to a backend; a backend only stores
//! bytes and implements the commands' semantics. It is used as
//! `Arc<dyn Backend>`, so every method returns a boxed future.
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
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Short name used in errors, logs and metrics (`mem`, `redis`, `disk`).
    fn name(&self) -> &'static str;

    /// The stored bytes of `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>>;

    /// The stored bytes of each key, aligned with `keys`.
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>>;

    /// Stores `value`; returns whether it was written (see [`Exist`]).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        options: SetOptions,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Stores every pair with the same expiry.
    fn set_many<'a>(
        &'a self,
        pairs: Vec<(&'a str, Bytes)>,
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Deletes `key`; returns whether it existed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Deletes the keys; returns how many existed.
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>>;

    /// Deletes every key matching the glob `pattern`; returns how many.
    fn delete_match<'a>(&'a self, pattern: &'a str) -> BoxFuture<'a, Result<u64>>;

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
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Adds `by` to the integer at `key`; returns the new value.
    fn incr<'a>(
        &'a self,
        key: &'a str,
        by: i64,
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>>;

    /// Sets the TTL of an existing key; returns whether the key exists.
    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>>;

    /// The remaining life of `key`.
    fn get_expire<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Expiry>>;

    /// Checks the backend answers.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;

    /// Deletes every key of this backend (on Redis: the configured db only).
    fn clear(&self) -> BoxFuture<'_, Result<()>>;

    /// How many keys are stored. Like Redis' `DBSIZE`, this may include expired
    /// keys that have not been purged yet.
    fn get_keys_count(&self) -> BoxFuture<'_, Result<u64>>;

    /// Approximate bytes used by `key`, if it exists.
    fn get_size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>>>;

    /// Takes the lock `key` with `token` unless it is held; returns whether taken.
    fn set_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Releases the lock `key` only if it holds `token`; returns whether released.
    fn unlock<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Whether the lock `key` is held.
    fn is_locked<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.exists(key)
    }

    /// Reads unsigned `size`-bit fields number `indexes` of the bit string at `key`.
    fn get_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        let _ = (key, indexes, size);
        unsupported(self.name(), Command::GetBits)
    }

    /// Adds `by` to each field, saturating; returns the new values.
    fn incr_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
        by: i64,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        let _ = (key, indexes, size, by);
        unsupported(self.name(), Command::IncrBits)
    }

    /// Sliding-window counter (see the [module docs](self)); times are in ms.
    fn slice_incr<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        let _ = (key, start, end, max, expire);
        unsupported(self.name(), Command::SliceIncr)
    }

    /// Applies `writes` in order, as one unit where the backend can (Redis:
    /// one `MULTI`/`EXEC`, per hash slot on a cluster). The default runs them
    /// one after the other, each atomic on its own.
    fn apply<'a>(&'a self, writes: &'a [Write<'a>]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
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
        })
    }

    /// Adds members to the set at `key`; returns how many were new.
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
        expire: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        let _ = (key, members, expire);
        unsupported(self.name(), Command::SetAdd)
    }

    /// Removes members from the set at `key`; returns how many were there.
    fn set_remove<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
    ) -> BoxFuture<'a, Result<u64>> {
        let _ = (key, members);
        unsupported(self.name(), Command::SetRemove)
    }

    /// Removes and returns up to `count` members of the set at `key`.
    fn set_pop<'a>(&'a self, key: &'a str, count: usize) -> BoxFuture<'a, Result<Vec<String>>> {
        let _ = (key, count);
        unsupported(self.name(), Command::SetPop)
    }

    /// Stops background work and releases connections.
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Answers a `get` without awaiting, if the backend holds the key's state
    /// in process (memory, a client-side cache). `visit` is called with the
    /// value's bytes on a hit. Returns `Some(hit)` when it could answer,
    /// `None` when the caller must use [`Backend::get`].
    ///
    /// This is the hit path: it must not block.
    fn get_local(&self, key: &str, visit: &mut dyn FnMut(&[u8])) -> Option<bool> {
        let _ = (key, visit);
        None
    }
}

fn unsupported<'a, T: Send + 'a>(
    backend: &'static str,
    command: Command,
) -> BoxFuture<'a, Result<T>> {
    Box::pin(async move { Err(Error::Unsupported { backend, command }) })
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
