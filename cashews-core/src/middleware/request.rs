//! A command as data ([`Request`]), its result ([`Response`]), and the one
//! place that turns a request into a backend call ([`dispatch`]).

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::{Backend, BoxFuture, BoxStream, Expiry, SetOptions, Write};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::stream::iter_stream;

/// A command with its arguments, as a middleware sees it. Keys are
/// [`Cow`]s so a middleware can rewrite them (e.g. add a prefix).
#[derive(Debug)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Request<'a> {
    Get {
        key: Cow<'a, str>,
    },
    GetMany {
        keys: Vec<Cow<'a, str>>,
    },
    GetRaw {
        key: Cow<'a, str>,
    },
    Set {
        key: Cow<'a, str>,
        value: Bytes,
        options: SetOptions,
    },
    SetRaw {
        key: Cow<'a, str>,
        value: Bytes,
        options: SetOptions,
    },
    SetMany {
        pairs: Vec<(Cow<'a, str>, Bytes)>,
        expire: Option<Duration>,
    },
    Delete {
        key: Cow<'a, str>,
    },
    DeleteMany {
        keys: Vec<Cow<'a, str>>,
    },
    DeleteMatch {
        pattern: Cow<'a, str>,
    },
    Scan {
        pattern: Cow<'a, str>,
        batch_size: usize,
    },
    GetMatch {
        pattern: Cow<'a, str>,
        batch_size: usize,
    },
    Exists {
        key: Cow<'a, str>,
    },
    Incr {
        key: Cow<'a, str>,
        by: i64,
        expire: Option<Duration>,
    },
    Expire {
        key: Cow<'a, str>,
        ttl: Duration,
    },
    GetExpire {
        key: Cow<'a, str>,
    },
    Ping,
    Clear,
    GetKeysCount,
    GetSize {
        key: Cow<'a, str>,
    },
    SetLock {
        key: Cow<'a, str>,
        token: Cow<'a, str>,
        ttl: Duration,
    },
    Unlock {
        key: Cow<'a, str>,
        token: Cow<'a, str>,
    },
    IsLocked {
        key: Cow<'a, str>,
    },
    GetBits {
        key: Cow<'a, str>,
        indexes: Vec<u64>,
        size: u8,
    },
    IncrBits {
        key: Cow<'a, str>,
        indexes: Vec<u64>,
        size: u8,
        by: i64,
    },
    SliceIncr {
        key: Cow<'a, str>,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    },
    SetAdd {
        key: Cow<'a, str>,
        members: Vec<Cow<'a, str>>,
        expire: Option<Duration>,
    },
    SetRemove {
        key: Cow<'a, str>,
        members: Vec<Cow<'a, str>>,
    },
    SetPop {
        key: Cow<'a, str>,
        count: usize,
    },
    /// A transaction's writes (see [`Backend::apply`]).
    Apply {
        writes: Vec<Write<'a>>,
    },
}

/// The result of a [`Request`].
#[non_exhaustive]
pub enum Response {
    /// `get`, `get_raw`.
    Value(Option<Bytes>),
    /// `get_many`, aligned with the keys.
    Values(Vec<Option<Bytes>>),
    /// `set`, `delete`, `exists`, `expire`, locks.
    Bool(bool),
    /// `incr`.
    Int(i64),
    /// `delete_many`, `delete_match`, `get_keys_count`, `slice_incr`, `set_add`, `set_remove`.
    Count(u64),
    /// `get_expire`.
    Expiry(Expiry),
    /// `get_size`.
    Size(Option<u64>),
    /// `get_bits`, `incr_bits`.
    Fields(Vec<u64>),
    /// `set_pop`.
    Members(Vec<String>),
    /// `scan`.
    Keys(BoxStream<'static, Result<String>>),
    /// `get_match`.
    Entries(BoxStream<'static, Result<(String, Bytes)>>),
    /// `set_many`, `apply`, `ping`, `clear`.
    Unit,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Response::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Response::Values(v) => f.debug_tuple("Values").field(v).finish(),
            Response::Bool(v) => f.debug_tuple("Bool").field(v).finish(),
            Response::Int(v) => f.debug_tuple("Int").field(v).finish(),
            Response::Count(v) => f.debug_tuple("Count").field(v).finish(),
            Response::Expiry(v) => f.debug_tuple("Expiry").field(v).finish(),
            Response::Size(v) => f.debug_tuple("Size").field(v).finish(),
            Response::Fields(v) => f.debug_tuple("Fields").field(v).finish(),
            Response::Members(v) => f.debug_tuple("Members").field(v).finish(),
            Response::Keys(_) => f.write_str("Keys(..)"),
            Response::Entries(_) => f.write_str("Entries(..)"),
            Response::Unit => f.write_str("Unit"),
        }
    }
}

impl<'a> Request<'a> {
    /// The command's name.
    pub fn command(&self) -> Command {
        use Request as R;
        match self {
            R::Get { .. } => Command::Get,
            R::GetMany { .. } => Command::GetMany,
            R::GetRaw { .. } => Command::GetRaw,
            R::Set { .. } => Command::Set,
            R::SetRaw { .. } => Command::SetRaw,
            R::SetMany { .. } => Command::SetMany,
            R::Delete { .. } => Command::Delete,
            R::DeleteMany { .. } => Command::DeleteMany,
            R::DeleteMatch { .. } => Command::DeleteMatch,
            R::Scan { .. } => Command::Scan,
            R::GetMatch { .. } => Command::GetMatch,
            R::Exists { .. } => Command::Exists,
            R::Incr { .. } => Command::Incr,
            R::Expire { .. } => Command::Expire,
            R::GetExpire { .. } => Command::GetExpire,
            R::Ping => Command::Ping,
            R::Clear => Command::Clear,
            R::GetKeysCount => Command::GetKeysCount,
            R::GetSize { .. } => Command::GetSize,
            R::SetLock { .. } => Command::SetLock,
            R::Unlock { .. } => Command::Unlock,
            R::IsLocked { .. } => Command::IsLocked,
            R::GetBits { .. } => Command::GetBits,
            R::IncrBits { .. } => Command::IncrBits,
            R::SliceIncr { .. } => Command::SliceIncr,
            R::SetAdd { .. } => Command::SetAdd,
            R::SetRemove { .. } => Command::SetRemove,
            R::SetPop { .. } => Command::SetPop,
            R::Apply { .. } => Command::Apply,
        }
    }

    /// Every key (or pattern) the request names, for middlewares that
    /// inspect or rewrite them.
    pub fn keys_mut(&mut self) -> Vec<&mut Cow<'a, str>> {
        use Request as R;
        match self {
            R::GetMany { keys } | R::DeleteMany { keys } => keys.iter_mut().collect(),
            R::SetMany { pairs, .. } => pairs.iter_mut().map(|(k, _)| k).collect(),
            R::Apply { writes } => writes.iter_mut().map(Write::key_mut).collect(),
            R::Ping | R::Clear | R::GetKeysCount => Vec::new(),
            R::DeleteMatch { pattern } | R::Scan { pattern, .. } | R::GetMatch { pattern, .. } => {
                vec![pattern]
            }
            R::Get { key }
            | R::GetRaw { key }
            | R::Set { key, .. }
            | R::SetRaw { key, .. }
            | R::Delete { key }
            | R::Exists { key }
            | R::Incr { key, .. }
            | R::Expire { key, .. }
            | R::GetExpire { key }
            | R::GetSize { key }
            | R::SetLock { key, .. }
            | R::Unlock { key, .. }
            | R::IsLocked { key }
            | R::GetBits { key, .. }
            | R::IncrBits { key, .. }
            | R::SliceIncr { key, .. }
            | R::SetAdd { key, .. }
            | R::SetRemove { key, .. }
            | R::SetPop { key, .. } => vec![key],
        }
    }

    /// The first key (or the pattern) of the request, if it names one.
    pub fn key(&self) -> Option<&str> {
        use Request as R;
        match self {
            R::GetMany { keys } | R::DeleteMany { keys } => keys.first().map(|k| &**k),
            R::SetMany { pairs, .. } => pairs.first().map(|(k, _)| &**k),
            R::Apply { writes } => writes.first().map(Write::key),
            R::Ping | R::Clear | R::GetKeysCount => None,
            R::DeleteMatch { pattern } | R::Scan { pattern, .. } | R::GetMatch { pattern, .. } => {
                Some(pattern)
            }
            R::Get { key }
            | R::GetRaw { key }
            | R::Set { key, .. }
            | R::SetRaw { key, .. }
            | R::Delete { key }
            | R::Exists { key }
            | R::Incr { key, .. }
            | R::Expire { key, .. }
            | R::GetExpire { key }
            | R::GetSize { key }
            | R::SetLock { key, .. }
            | R::Unlock { key, .. }
            | R::IsLocked { key }
            | R::GetBits { key, .. }
            | R::IncrBits { key, .. }
            | R::SliceIncr { key, .. }
            | R::SetAdd { key, .. }
            | R::SetRemove { key, .. }
            | R::SetPop { key, .. } => Some(key),
        }
    }

    /// What a disabled command answers: what an empty backend that keeps
    /// nothing would answer (reads miss, writes store nothing, a lock is
    /// granted, a counter starts afresh).
    pub fn disabled_response(&self) -> Response {
        use Request as R;
        match self {
            R::Get { .. } | R::GetRaw { .. } => Response::Value(None),
            R::GetMany { keys } => Response::Values(vec![None; keys.len()]),
            R::Set { .. }
            | R::SetRaw { .. }
            | R::Delete { .. }
            | R::Exists { .. }
            | R::Expire { .. } => Response::Bool(false),
            R::Unlock { .. } | R::IsLocked { .. } => Response::Bool(false),
            R::SetLock { .. } => Response::Bool(true),
            R::Incr { by, .. } => Response::Int(*by),
            R::DeleteMany { .. }
            | R::DeleteMatch { .. }
            | R::GetKeysCount
            | R::SetRemove { .. } => Response::Count(0),
            R::SetAdd { members, .. } => Response::Count(members.len() as u64),
            R::SliceIncr { max, .. } => Response::Count(u64::from(*max > 0)),
            R::GetExpire { .. } => Response::Expiry(Expiry::Missing),
            R::GetSize { .. } => Response::Size(None),
            R::GetBits { indexes, .. } => Response::Fields(vec![0; indexes.len()]),
            R::IncrBits {
                indexes, size, by, ..
            } => {
                let max = (1u64 << (*size).clamp(1, 63)) - 1;
                Response::Fields(vec![(*by).clamp(0, max as i64) as u64; indexes.len()])
            }
            R::SetPop { .. } => Response::Members(Vec::new()),
            R::Scan { .. } => Response::Keys(iter_stream(std::iter::empty())),
            R::GetMatch { .. } => Response::Entries(iter_stream(std::iter::empty())),
            R::SetMany { .. } | R::Apply { .. } | R::Ping | R::Clear => Response::Unit,
        }
    }
}

fn strs<'s>(keys: &'s [Cow<'_, str>]) -> Vec<&'s str> {
    keys.iter().map(|k| &**k).collect()
}

/// Runs `request` on `backend`: the end of every middleware chain.
pub fn dispatch<'a>(
    backend: &'a dyn Backend,
    request: Request<'a>,
) -> BoxFuture<'a, Result<Response>> {
    use Request as R;
    use Response as S;
    match request {
        // Streams borrow nothing from the request, so they are built here.
        R::Scan {
            pattern,
            batch_size,
        } => {
            let stream = backend.scan(pattern.into_owned(), batch_size);
            Box::pin(std::future::ready(Ok(S::Keys(stream))))
        }
        R::GetMatch {
            pattern,
            batch_size,
        } => {
            let stream = backend.get_match(pattern.into_owned(), batch_size);
            Box::pin(std::future::ready(Ok(S::Entries(stream))))
        }
        request => Box::pin(async move {
            Ok(match request {
                R::Get { key } | R::GetRaw { key } => S::Value(backend.get(&key).await?),
                R::GetMany { keys } => S::Values(backend.get_many(&strs(&keys)).await?),
                R::Set {
                    key,
                    value,
                    options,
                }
                | R::SetRaw {
                    key,
                    value,
                    options,
                } => S::Bool(backend.set(&key, value, options).await?),
                R::SetMany { pairs, expire } => {
                    let pairs = pairs.iter().map(|(k, v)| (&**k, v.clone())).collect();
                    backend.set_many(pairs, expire).await?;
                    S::Unit
                }
                R::Delete { key } => S::Bool(backend.delete(&key).await?),
                R::DeleteMany { keys } => S::Count(backend.delete_many(&strs(&keys)).await?),
                R::DeleteMatch { pattern } => S::Count(backend.delete_match(&pattern).await?),
                R::Exists { key } => S::Bool(backend.exists(&key).await?),
                R::Incr { key, by, expire } => S::Int(backend.incr(&key, by, expire).await?),
                R::Expire { key, ttl } => S::Bool(backend.expire(&key, ttl).await?),
                R::GetExpire { key } => S::Expiry(backend.get_expire(&key).await?),
                R::Ping => {
                    backend.ping().await?;
                    S::Unit
                }
                R::Clear => {
                    backend.clear().await?;
                    S::Unit
                }
                R::GetKeysCount => S::Count(backend.get_keys_count().await?),
                R::GetSize { key } => S::Size(backend.get_size(&key).await?),
                R::SetLock { key, token, ttl } => {
                    S::Bool(backend.set_lock(&key, &token, ttl).await?)
                }
                R::Unlock { key, token } => S::Bool(backend.unlock(&key, &token).await?),
                R::IsLocked { key } => S::Bool(backend.is_locked(&key).await?),
                R::GetBits { key, indexes, size } => {
                    S::Fields(backend.get_bits(&key, &indexes, size).await?)
                }
                R::IncrBits {
                    key,
                    indexes,
                    size,
                    by,
                } => S::Fields(backend.incr_bits(&key, &indexes, size, by).await?),
                R::SliceIncr {
                    key,
                    start,
                    end,
                    max,
                    expire,
                } => S::Count(backend.slice_incr(&key, start, end, max, expire).await?),
                R::SetAdd {
                    key,
                    members,
                    expire,
                } => S::Count(backend.set_add(&key, &strs(&members), expire).await?),
                R::SetRemove { key, members } => {
                    S::Count(backend.set_remove(&key, &strs(&members)).await?)
                }
                R::SetPop { key, count } => S::Members(backend.set_pop(&key, count).await?),
                R::Apply { writes } => {
                    backend.apply(&writes).await?;
                    S::Unit
                }
                R::Scan { .. } | R::GetMatch { .. } => unreachable!("streams are handled above"),
            })
        }),
    }
}

macro_rules! accessors {
    ($($name:ident => $variant:ident($t:ty)),* $(,)?) => {
        impl Response {
            fn kind(&self) -> &'static str {
                match self {
                    $(Response::$variant(..) => stringify!($variant),)*
                    Response::Unit => "Unit",
                }
            }
            $(
                #[doc = concat!("The `", stringify!($variant), "` payload, or an error naming what came instead.")]
                pub fn $name(self, command: Command) -> Result<$t> {
                    match self {
                        Response::$variant(v) => Ok(v),
                        other => Err(Error::UnexpectedResponse { command, got: other.kind() }),
                    }
                }
            )*
            /// Checks the response is `Unit`.
            pub fn into_unit(self, command: Command) -> Result<()> {
                match self {
                    Response::Unit => Ok(()),
                    other => Err(Error::UnexpectedResponse { command, got: other.kind() }),
                }
            }
        }
    };
}

accessors! {
    into_value => Value(Option<Bytes>),
    into_values => Values(Vec<Option<Bytes>>),
    into_bool => Bool(bool),
    into_int => Int(i64),
    into_count => Count(u64),
    into_expiry => Expiry(Expiry),
    into_size => Size(Option<u64>),
    into_fields => Fields(Vec<u64>),
    into_members => Members(Vec<String>),
    into_keys => Keys(BoxStream<'static, Result<String>>),
    into_entries => Entries(BoxStream<'static, Result<(String, Bytes)>>),
}
