//! The command table: every cache command once, with its name, its
//! arguments, where its keys are, how a backend runs it and what it answers
//! when disabled. [`Command`], [`Request`], the key accessors and
//! [`dispatch`] are generated from it; adding a command is one entry here,
//! one [`Backend`] method and one `Cache` method.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::{Backend, BoxFuture, Expiry, SetOptions, Write};
use crate::error::Result;
use crate::response::Response;
use crate::stream::iter_stream;

/// Where a request's keys are: `one` field, `many` in a list, `pairs` of
/// key and value, `writes` of a transaction, or none.
macro_rules! keys_mut {
    () => {
        Vec::new()
    };
    (one $k:ident) => {
        vec![$k]
    };
    (many $k:ident) => {
        $k.iter_mut().collect()
    };
    (pairs $k:ident) => {
        $k.iter_mut().map(|(k, _)| k).collect()
    };
    (writes $k:ident) => {
        $k.iter_mut().map(Write::key_mut).collect()
    };
}

macro_rules! first_key {
    () => {
        None
    };
    (one $k:ident) => {
        Some(&**$k)
    };
    (many $k:ident) => {
        $k.first().map(|k| &**k)
    };
    (pairs $k:ident) => {
        $k.first().map(|(k, _)| &**k)
    };
    (writes $k:ident) => {
        $k.first().map(Write::key)
    };
}

/// How a request runs: `call` awaits the backend; `stream` builds a stream
/// that borrows nothing from the request, right away.
macro_rules! run {
    (call $backend:ident $b:ident $run:expr) => {
        Box::pin(async move {
            let $b = $backend;
            Ok($run)
        })
    };
    (stream $backend:ident $b:ident $run:expr) => {{
        let $b = $backend;
        Box::pin(std::future::ready(Ok($run)))
    }};
}

macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal $({ $($field:ident: $ty:ty),* $(,)? })?
            keys [$($how:ident $key:ident)?]
            => $mode:ident |$b:ident| $run:expr,
            disabled $disabled:expr;
    )*) => {
        /// A cache command, as seen by middlewares and by `Cache::disable`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Command {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Command {
            /// Every command.
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            /// The command's name, as in the method name (`get_many`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Command::$variant => $name,)*
                }
            }
        }

        /// A command with its arguments, as a middleware sees it. Keys are
        /// [`Cow`]s so a middleware can rewrite them (e.g. add a prefix).
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum Request<'a> {
            $(
                $(#[$doc])*
                #[allow(missing_docs)]
                $variant $({ $($field: $ty),* })?,
            )*
        }

        impl<'a> Request<'a> {
            /// The command.
            pub fn command(&self) -> Command {
                match self {
                    $(Request::$variant { .. } => Command::$variant,)*
                }
            }

            /// Every key (or pattern) the request names, for middlewares
            /// that inspect or rewrite them.
            pub fn keys_mut(&mut self) -> Vec<&mut Cow<'a, str>> {
                match self {
                    $(Request::$variant { $($key,)? .. } => keys_mut!($($how $key)?),)*
                }
            }

            /// The first key (or the pattern) of the request, if it names one.
            pub fn key(&self) -> Option<&str> {
                match self {
                    $(Request::$variant { $($key,)? .. } => first_key!($($how $key)?),)*
                }
            }

            /// What a disabled command answers: what an empty backend that
            /// keeps nothing would answer (reads miss, writes store nothing,
            /// a lock is granted, a counter starts afresh).
            #[allow(unused_variables)]
            pub fn disabled_response(&self) -> Response {
                match self {
                    $(Request::$variant { $($($field,)*)? } => $disabled,)*
                }
            }
        }

        /// Runs `request` on `backend`: the end of every middleware chain.
        pub fn dispatch<'a>(
            backend: &'a dyn Backend,
            request: Request<'a>,
        ) -> BoxFuture<'a, Result<Response>> {
            match request {
                $(Request::$variant { $($($field,)*)? } => run!($mode backend $b $run),)*
            }
        }
    };
}

fn strs<'s>(keys: &'s [Cow<'_, str>]) -> Vec<&'s str> {
    keys.iter().map(|k| &**k).collect()
}

commands! {
    /// Reads a value.
    Get = "get" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Value(b.get(&key).await?),
        disabled Response::Value(None);
    /// Reads several values.
    GetMany = "get_many" { keys: Vec<Cow<'a, str>> } keys [many keys]
        => call |b| Response::Values(b.get_many(&strs(&keys)).await?),
        disabled Response::Values(vec![None; keys.len()]);
    /// Reads a value's bytes as stored.
    GetRaw = "get_raw" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Value(b.get(&key).await?),
        disabled Response::Value(None);
    /// Stores a value.
    Set = "set" { key: Cow<'a, str>, value: Bytes, options: SetOptions } keys [one key]
        => call |b| Response::Bool(b.set(&key, value, options).await?),
        disabled Response::Bool(false);
    /// Stores several values.
    SetMany = "set_many" { pairs: Vec<(Cow<'a, str>, Bytes)>, expire: Option<Duration> } keys [pairs pairs]
        => call |b| {
            b.set_many(pairs.iter().map(|(k, v)| (&**k, v.clone())).collect(), expire).await?;
            Response::Unit
        },
        disabled Response::Unit;
    /// Stores bytes as they are.
    SetRaw = "set_raw" { key: Cow<'a, str>, value: Bytes, options: SetOptions } keys [one key]
        => call |b| Response::Bool(b.set(&key, value, options).await?),
        disabled Response::Bool(false);
    /// Deletes a key.
    Delete = "delete" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Bool(b.delete(&key).await?),
        disabled Response::Bool(false);
    /// Deletes several keys.
    DeleteMany = "delete_many" { keys: Vec<Cow<'a, str>> } keys [many keys]
        => call |b| Response::Count(b.delete_many(&strs(&keys)).await?),
        disabled Response::Count(0);
    /// Deletes the keys matching a glob pattern.
    DeleteMatch = "delete_match" { pattern: Cow<'a, str> } keys [one pattern]
        => call |b| Response::Count(b.delete_match(&pattern).await?),
        disabled Response::Count(0);
    /// Streams the keys matching a glob pattern.
    Scan = "scan" { pattern: Cow<'a, str>, batch_size: usize } keys [one pattern]
        => stream |b| Response::Keys(b.scan(pattern.into_owned(), batch_size)),
        disabled Response::Keys(iter_stream(std::iter::empty()));
    /// Streams the keys matching a glob pattern with their values.
    GetMatch = "get_match" { pattern: Cow<'a, str>, batch_size: usize } keys [one pattern]
        => stream |b| Response::Entries(b.get_match(pattern.into_owned(), batch_size)),
        disabled Response::Entries(iter_stream(std::iter::empty()));
    /// Whether a key exists.
    Exists = "exists" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Bool(b.exists(&key).await?),
        disabled Response::Bool(false);
    /// Adds to a counter.
    Incr = "incr" { key: Cow<'a, str>, by: i64, expire: Option<Duration> } keys [one key]
        => call |b| Response::Int(b.incr(&key, by, expire).await?),
        disabled Response::Int(*by);
    /// Sets a key's TTL.
    Expire = "expire" { key: Cow<'a, str>, ttl: Duration } keys [one key]
        => call |b| Response::Bool(b.expire(&key, ttl).await?),
        disabled Response::Bool(false);
    /// Reads a key's TTL.
    GetExpire = "get_expire" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Expiry(b.get_expire(&key).await?),
        disabled Response::Expiry(Expiry::Missing);
    /// Checks the backend answers.
    Ping = "ping" keys []
        => call |b| {
            b.ping().await?;
            Response::Unit
        },
        disabled Response::Unit;
    /// Deletes every key.
    Clear = "clear" keys []
        => call |b| {
            b.clear().await?;
            Response::Unit
        },
        disabled Response::Unit;
    /// Counts the keys.
    GetKeysCount = "get_keys_count" keys []
        => call |b| Response::Count(b.get_keys_count().await?),
        disabled Response::Count(0);
    /// The stored size of a value.
    GetSize = "get_size" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Size(b.get_size(&key).await?),
        disabled Response::Size(None);
    /// Takes a lock.
    SetLock = "set_lock" { key: Cow<'a, str>, token: Cow<'a, str>, ttl: Duration } keys [one key]
        => call |b| Response::Bool(b.set_lock(&key, &token, ttl).await?),
        disabled Response::Bool(true);
    /// Releases a lock held with a token.
    Unlock = "unlock" { key: Cow<'a, str>, token: Cow<'a, str> } keys [one key]
        => call |b| Response::Bool(b.unlock(&key, &token).await?),
        disabled Response::Bool(false);
    /// Whether a lock is held.
    IsLocked = "is_locked" { key: Cow<'a, str> } keys [one key]
        => call |b| Response::Bool(b.is_locked(&key).await?),
        disabled Response::Bool(false);
    /// Reads bit fields.
    GetBits = "get_bits" { key: Cow<'a, str>, indexes: Vec<u64>, size: u8 } keys [one key]
        => call |b| Response::Fields(b.get_bits(&key, &indexes, size).await?),
        disabled Response::Fields(vec![0; indexes.len()]);
    /// Adds to bit fields.
    IncrBits = "incr_bits" { key: Cow<'a, str>, indexes: Vec<u64>, size: u8, by: i64 } keys [one key]
        => call |b| Response::Fields(b.incr_bits(&key, &indexes, size, by).await?),
        disabled {
            let max = (1u64 << (*size).clamp(1, 63)) - 1;
            Response::Fields(vec![(*by).clamp(0, max as i64) as u64; indexes.len()])
        };
    /// Counts a call in a sliding window.
    SliceIncr = "slice_incr" { key: Cow<'a, str>, start: u64, end: u64, max: u64, expire: Option<Duration> } keys [one key]
        => call |b| Response::Count(b.slice_incr(&key, start, end, max, expire).await?),
        disabled Response::Count(u64::from(*max > 0));
    /// Adds members to a set.
    SetAdd = "set_add" { key: Cow<'a, str>, members: Vec<Cow<'a, str>>, expire: Option<Duration> } keys [one key]
        => call |b| Response::Count(b.set_add(&key, &strs(&members), expire).await?),
        disabled Response::Count(members.len() as u64);
    /// Removes members from a set.
    SetRemove = "set_remove" { key: Cow<'a, str>, members: Vec<Cow<'a, str>> } keys [one key]
        => call |b| Response::Count(b.set_remove(&key, &strs(&members)).await?),
        disabled Response::Count(0);
    /// Removes and returns members of a set.
    SetPop = "set_pop" { key: Cow<'a, str>, count: usize } keys [one key]
        => call |b| Response::Members(b.set_pop(&key, count).await?),
        disabled Response::Members(Vec::new());
    /// A transaction's writes (see [`Backend::apply`]).
    Apply = "apply" { writes: Vec<Write<'a>> } keys [writes writes]
        => call |b| {
            b.apply(&writes).await?;
            Response::Unit
        },
        disabled Response::Unit;
}

impl Command {
    fn bit(self) -> u64 {
        1 << (self as u64)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of commands, as a bit set (cheap to copy and test).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CommandSet(u64);

impl CommandSet {
    /// No command.
    pub const EMPTY: CommandSet = CommandSet(0);

    /// Every command.
    pub fn all() -> CommandSet {
        Command::ALL.iter().copied().collect()
    }

    /// Whether `command` is in the set.
    #[inline]
    pub fn contains(self, command: Command) -> bool {
        self.0 & command.bit() != 0
    }

    /// Whether the set is empty.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of both sets.
    pub fn union(self, other: CommandSet) -> CommandSet {
        CommandSet(self.0 | other.0)
    }

    /// This set without the commands of `other`.
    pub fn difference(self, other: CommandSet) -> CommandSet {
        CommandSet(self.0 & !other.0)
    }

    /// The set as bits (to keep it in an atomic).
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The set [`bits`](Self::bits) gave.
    pub fn from_bits(bits: u64) -> CommandSet {
        CommandSet(bits)
    }
}

impl From<Command> for CommandSet {
    fn from(command: Command) -> Self {
        CommandSet(command.bit())
    }
}

impl<const N: usize> From<[Command; N]> for CommandSet {
    fn from(commands: [Command; N]) -> Self {
        commands.into_iter().collect()
    }
}

impl From<&[Command]> for CommandSet {
    fn from(commands: &[Command]) -> Self {
        commands.iter().copied().collect()
    }
}

impl FromIterator<Command> for CommandSet {
    fn from_iter<I: IntoIterator<Item = Command>>(iter: I) -> Self {
        CommandSet(iter.into_iter().fold(0, |acc, c| acc | c.bit()))
    }
}

impl fmt::Debug for CommandSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(Command::ALL.iter().filter(|c| self.contains(**c)))
            .finish()
    }
}
