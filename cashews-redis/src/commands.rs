//! Every cache command with its Redis primitive.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cashews_backend::backend::{Backend, BoxStream, Exist, Expiry, Kept, SetOptions, Write};
use cashews_backend::{glob, Command, Error, Result};

use crate::connection::{Conn, Node};
use crate::scripts::{INCR, INCR_SOURCE, SET_ADD, SLICE_INCR, UNLOCK};
use crate::{RedisBackend, Shared};

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// One plain `GET`: an unbatched `get`, or a batched one sent alone.
pub(crate) async fn plain_get(conn: &mut Conn, key: &str) -> redis::RedisResult<Option<Bytes>> {
    let value: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(conn).await?;
    Ok(value.map(Bytes::from))
}

#[cashews_backend::async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let shared = &self.shared;
        let got = if shared.tracking.is_some() {
            // Its future is large (enabling tracking, the TTL pipeline):
            // boxed, so a plain get's future stays small.
            Box::pin(shared.get_tracked(key)).await
        } else {
            shared.get_untracked(shared.deadline(), key).await
        };
        match got {
            // A set or a window holds no value: a miss, as on every backend.
            Err(cashews_backend::Error::WrongType { .. }) => Ok(None),
            other => other,
        }
    }

    fn get_local(
        &self,
        key: &str,
        decoder: u64,
        visit: &mut dyn FnMut(&[u8], &mut Kept<'_>),
    ) -> Option<bool> {
        // A local miss is not a miss: Redis is asked.
        self.shared.local(key, decoder, visit).then_some(true)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut found: Vec<Option<Bytes>> = keys
            .iter()
            .map(|key| {
                self.shared
                    .tracked(key)
                    .and_then(|tracking| tracking.cache.get(key))
            })
            .collect();
        let missing: Vec<&str> = keys
            .iter()
            .zip(&found)
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| *key)
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let count = missing.len();
        let values = self
            .shared
            .run(
                Command::GetMany,
                missing[0],
                || vec![None; count],
                |mut c| async move {
                    redis::cmd("MGET")
                        .arg(&missing)
                        .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                        .await
                },
            )
            .await?;
        let mut values = values.into_iter();
        for slot in found.iter_mut().filter(|v| v.is_none()) {
            *slot = values.next().flatten().map(Bytes::from);
        }
        Ok(found)
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        let deadline = self.shared.deadline();
        self.shared.ensure_tracking(deadline).await;
        let mut guard = self.shared.write_guard(key);
        let local = value.clone();
        let stored = self
            .shared
            .run_by(
                deadline,
                Command::Set,
                key,
                || false,
                move |mut c| async move {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(key).arg(value.as_ref());
                    if let Some(expire) = options.expire {
                        cmd.arg("PX").arg(ms(expire));
                    }
                    match options.exist {
                        Exist::Always => {}
                        Exist::IfPresent => {
                            cmd.arg("XX");
                        }
                        Exist::IfAbsent => {
                            cmd.arg("NX");
                        }
                    }
                    Ok(cmd.query_async::<Option<String>>(&mut c).await?.is_some())
                },
            )
            .await;
        if let Ok(true) = stored {
            guard.stored(local, options.expire);
        }
        stored
    }

    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()> {
        let writes = pairs
            .into_iter()
            .map(|(key, value)| Write::Set {
                key: key.into(),
                value,
                expire,
            })
            .collect();
        (self.shared.apply(Command::SetMany, writes)).await
    }

    async fn apply(&self, writes: &[Write<'_>]) -> Result<()> {
        self.shared.apply(Command::Apply, writes.to_vec()).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.shared
            .guarded(
                key,
                self.shared.run(
                    Command::Delete,
                    key,
                    || false,
                    move |mut c| async move {
                        Ok(redis::cmd("UNLINK")
                            .arg(key)
                            .query_async::<u64>(&mut c)
                            .await?
                            > 0)
                    },
                ),
            )
            .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let _guards: Vec<_> = keys.iter().map(|k| self.shared.write_guard(k)).collect();
        self.shared
            .run(
                Command::DeleteMany,
                keys[0],
                || 0,
                move |mut c| async move {
                    redis::cmd("UNLINK")
                        .arg(keys)
                        .query_async::<u64>(&mut c)
                        .await
                },
            )
            .await
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        let deleted = self
            .shared
            .run(
                Command::DeleteMatch,
                pattern,
                || 0,
                move |mut c| async move {
                    if !glob::is_pattern(pattern) {
                        return redis::cmd("UNLINK")
                            .arg(pattern)
                            .query_async::<u64>(&mut c)
                            .await;
                    }
                    let mut deleted = 0;
                    for node in c.clone().primaries().await? {
                        let mut cursor = 0u64;
                        loop {
                            let (next, keys): (u64, Vec<String>) =
                                c.query_on(&node, &scan(cursor, pattern, 100)).await?;
                            if !keys.is_empty() {
                                deleted += redis::cmd("UNLINK")
                                    .arg(&keys)
                                    .query_async::<u64>(&mut c)
                                    .await?;
                            }
                            // The scan ends at cursor 0: no extra pass after the last batch.
                            if next == 0 {
                                break;
                            }
                            cursor = next;
                        }
                    }
                    Ok(deleted)
                },
            )
            .await;
        self.shared.wrote_matching(pattern);
        deleted
    }

    fn scan(&self, pattern: String, batch_size: usize) -> BoxStream<'static, Result<String>> {
        let stream = Scanner::new(self.shared.clone(), pattern, batch_size).keys();
        Box::pin(stream)
    }

    fn get_match(
        &self,
        pattern: String,
        batch_size: usize,
    ) -> BoxStream<'static, Result<(String, Bytes)>> {
        let stream = Scanner::new(self.shared.clone(), pattern, batch_size).entries();
        Box::pin(stream)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.shared
            .run(
                Command::Exists,
                key,
                || false,
                move |mut c| async move {
                    Ok(redis::cmd("EXISTS")
                        .arg(key)
                        .query_async::<u64>(&mut c)
                        .await?
                        > 0)
                },
            )
            .await
    }

    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64> {
        self.shared
            .guarded(
                key,
                self.shared
                    .run_strict(Command::Incr, key, move |mut c| async move {
                        INCR.key(key)
                            .arg(by)
                            .arg(expire.map_or(0, ms))
                            .invoke_async::<i64>(&mut c)
                            .await
                    }),
            )
            .await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.shared
            .guarded(
                key,
                self.shared.run(
                    Command::Expire,
                    key,
                    || false,
                    move |mut c| async move {
                        Ok(redis::cmd("PEXPIRE")
                            .arg(key)
                            .arg(ms(ttl))
                            .query_async::<u64>(&mut c)
                            .await?
                            == 1)
                    },
                ),
            )
            .await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.shared
            .run(
                Command::GetExpire,
                key,
                || Expiry::Missing,
                move |mut c| async move {
                    Ok(
                        match redis::cmd("PTTL")
                            .arg(key)
                            .query_async::<i64>(&mut c)
                            .await?
                        {
                            -2 => Expiry::Missing,
                            -1 => Expiry::NoExpiry,
                            left => Expiry::Remaining(Duration::from_millis(left.max(0) as u64)),
                        },
                    )
                },
            )
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.shared
            .run(
                Command::Ping,
                "",
                || (),
                move |mut c| async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .map(drop)
                },
            )
            .await
    }

    async fn clear(&self) -> Result<()> {
        let cleared = self
            .shared
            .run(
                Command::Clear,
                "",
                || (),
                move |mut c| async move { redis::cmd("FLUSHDB").query_async::<()>(&mut c).await },
            )
            .await;
        self.shared.wrote_everything();
        cleared
    }

    async fn get_keys_count(&self) -> Result<u64> {
        self.shared
            .run(
                Command::GetKeysCount,
                "",
                || 0,
                move |mut c| async move { redis::cmd("DBSIZE").query_async::<u64>(&mut c).await },
            )
            .await
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.shared
            .run(
                Command::GetSize,
                key,
                || None,
                move |mut c| async move {
                    redis::cmd("MEMORY")
                        .arg("USAGE")
                        .arg(key)
                        .query_async::<Option<u64>>(&mut c)
                        .await
                },
            )
            .await
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        self.shared
            .guarded(
                key,
                self.shared
                    .run_strict(Command::SetLock, key, move |mut c| async move {
                        let taken = redis::cmd("SET")
                            .arg(key)
                            .arg(token)
                            .arg("NX")
                            .arg("PX")
                            .arg(ms(ttl))
                            .query_async::<Option<String>>(&mut c)
                            .await?;
                        Ok(taken.is_some())
                    }),
            )
            .await
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.shared
            .guarded(
                key,
                self.shared
                    .run_strict(Command::Unlock, key, move |mut c| async move {
                        Ok(UNLOCK
                            .key(key)
                            .arg(token)
                            .invoke_async::<u64>(&mut c)
                            .await?
                            == 1)
                    }),
            )
            .await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        self.shared
            .bitfield(Command::GetBits, key, indexes, size, &[], |cmd, field| {
                cmd.arg("GET").arg(field.0).arg(field.1);
            })
            .await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        self.shared
            .guarded(
                key,
                self.shared.bitfield(
                    Command::IncrBits,
                    key,
                    indexes,
                    size,
                    &["OVERFLOW", "SAT"],
                    move |cmd, field| {
                        cmd.arg("INCRBY").arg(field.0).arg(field.1).arg(by);
                    },
                ),
            )
            .await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        // Scores are unix seconds, as Python cashews writes them (to the
        // microsecond), so a window is shared with it: millisecond `end`
        // counts scores up to its last microsecond, and the new member is
        // scored at its first (never later than the call). A unique member
        // per call, so calls at the same millisecond all count.
        let seconds = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
        let (score, start) = (seconds(end), seconds(start));
        let last = format!("{score}999");
        let member = format!("{score}:{}", unique());
        self.shared
            .guarded(
                key,
                self.shared
                    .run_strict(Command::SliceIncr, key, move |mut c| async move {
                        SLICE_INCR
                            .key(key)
                            .arg(start)
                            .arg(last)
                            .arg(max.min(i64::MAX as u64))
                            .arg(expire.map_or(0, ms))
                            .arg(member)
                            .arg(score)
                            .invoke_async::<u64>(&mut c)
                            .await
                    }),
            )
            .await
    }

    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        self.shared
            .guarded(key, async move {
                if members.is_empty() {
                    return Ok(0);
                }
                self.shared
                    .run(
                        Command::SetAdd,
                        key,
                        || 0,
                        move |mut c| async move {
                            SET_ADD
                                .key(key)
                                .arg(expire.map_or(0, ms))
                                .arg(members)
                                .invoke_async::<u64>(&mut c)
                                .await
                        },
                    )
                    .await
            })
            .await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.shared
            .guarded(key, async move {
                if members.is_empty() {
                    return Ok(0);
                }
                self.shared
                    .run(
                        Command::SetRemove,
                        key,
                        || 0,
                        move |mut c| async move {
                            redis::cmd("SREM")
                                .arg(key)
                                .arg(members)
                                .query_async::<u64>(&mut c)
                                .await
                        },
                    )
                    .await
            })
            .await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.shared
            .guarded(
                key,
                self.shared
                    .run(Command::SetPop, key, Vec::new, move |mut c| async move {
                        redis::cmd("SPOP")
                            .arg(key)
                            .arg(count)
                            .query_async::<Vec<String>>(&mut c)
                            .await
                    }),
            )
            .await
    }
}

impl Shared {
    /// `writes` in one `MULTI`/`EXEC` (one per slot on a cluster, which
    /// refuses a transaction across slots), order kept within each.
    async fn apply(&self, command: Command, writes: Vec<Write<'_>>) -> Result<()> {
        let known = |w: &Write<'_>| {
            matches!(
                w,
                Write::Set { .. } | Write::Delete { .. } | Write::Incr { .. }
            )
        };
        if !writes.iter().all(known) {
            return Err(Error::Unsupported {
                backend: "redis",
                command: Command::Apply,
            });
        }
        let deadline = self.deadline();
        self.ensure_tracking(deadline).await;
        // The local copy keeps a value set by the last write to its key
        // (found walking back, so a large `set_many` stays linear).
        let mut seen = HashSet::with_capacity(writes.len());
        let mut guards: Vec<_> = writes
            .iter()
            .rev()
            .map(|write| {
                let last = seen.insert(write.key());
                let value = match write {
                    Write::Set { value, expire, .. } if last => Some((value.clone(), *expire)),
                    _ => None,
                };
                (self.write_guard(write.key()), value)
            })
            .collect();
        // Back in write order: guards report in order, the last write last.
        guards.reverse();
        let first = writes.first().map_or("", Write::key);
        let writes = &writes;
        let call = |c: Conn| async move {
            let groups = c.by_slot(writes.iter().collect(), |w| w.key());
            let transactions = groups.into_iter().map(|group| {
                let mut c = c.clone();
                async move {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for write in group {
                        match write {
                            Write::Set { key, value, expire } => {
                                let cmd = pipe.cmd("SET").arg(&**key).arg(value.as_ref());
                                if let Some(expire) = expire {
                                    cmd.arg("PX").arg(ms(*expire));
                                }
                                cmd.ignore();
                            }
                            Write::Delete { key } => {
                                pipe.cmd("UNLINK").arg(&**key).ignore();
                            }
                            Write::Incr { key, by } => {
                                // The incr script, so a transaction's counter
                                // errors carry the same codes as `incr`'s.
                                pipe.cmd("EVAL")
                                    .arg(INCR_SOURCE)
                                    .arg(1)
                                    .arg(&**key)
                                    .arg(*by)
                                    .arg(0)
                                    .ignore();
                            }
                            // Refused before the connection was asked for.
                            _ => {}
                        }
                    }
                    pipe.query_async::<()>(&mut c).await
                }
            });
            futures_util::future::try_join_all(transactions).await?;
            Ok(true)
        };
        // A commit that cannot be written is an error even under `suppress`
        // ("committed" would be a lie); `set_many` is a cache write like
        // `set`, so a failure stores nothing.
        let applied = if command == Command::Apply {
            self.run_strict_by(deadline, command, first, call).await?
        } else {
            self.run_by(deadline, command, first, || false, call)
                .await?
        };
        if applied {
            for (guard, value) in &mut guards {
                if let Some((value, expire)) = value.take() {
                    guard.stored(value, expire);
                }
            }
        }
        Ok(())
    }

    /// One `BITFIELD` with an operation per field (`u{size}`, `#{index}`),
    /// after checking every field as the memory backend does.
    async fn bitfield(
        &self,
        command: Command,
        key: &str,
        indexes: &[u64],
        size: u8,
        prefix: &[&str],
        op: impl Fn(&mut redis::Cmd, (String, String)) + Send,
    ) -> Result<Vec<u64>> {
        for index in indexes {
            cashews_backend::bits::field_offset(*index, size)?;
        }
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("BITFIELD");
        cmd.arg(key).arg(prefix);
        for index in indexes {
            op(&mut cmd, (format!("u{size}"), format!("#{index}")));
        }
        self.run_strict(command, key, move |mut c| async move {
            cmd.query_async::<Vec<u64>>(&mut c).await
        })
        .await
    }
}

/// `SCAN cursor MATCH pattern COUNT count`.
fn scan(cursor: u64, pattern: &str, count: usize) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count);
    cmd
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = u64::from(std::process::id());
    (pid << 40)
        ^ NEXT.fetch_add(1, Ordering::Relaxed)
        ^ cashews_backend::Clock::system().unix_ms().rotate_left(20)
}

/// A SCAN over the keys matching a pattern, each key once, on every primary
/// in turn, each ending at cursor 0.
struct Scanner {
    shared: Arc<Shared>,
    pattern: String,
    batch: usize,
    /// The primaries still to scan (the current one last), once known.
    nodes: Option<Vec<Node>>,
    cursor: u64,
    seen: HashSet<String>,
    ready: VecDeque<String>,
}

impl Scanner {
    fn new(shared: Arc<Shared>, pattern: String, batch: usize) -> Scanner {
        Scanner {
            shared,
            pattern,
            batch: batch.max(1),
            nodes: None,
            cursor: 0,
            seen: HashSet::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next batch of new keys; `Ok(None)` at the end.
    async fn next_batch(&mut self) -> Result<Option<Vec<String>>> {
        while self.ready.is_empty() {
            if self.nodes.is_none() {
                let mut nodes = self
                    .shared
                    .run(
                        Command::Scan,
                        &self.pattern,
                        Vec::new,
                        |mut c: Conn| async move { c.primaries().await },
                    )
                    .await?;
                nodes.reverse();
                self.nodes = Some(nodes);
            }
            let Some(node) = self.nodes.as_ref().and_then(|n| n.last()).cloned() else {
                return Ok(None);
            };
            let command = scan(self.cursor, &self.pattern, self.batch);
            let (next, keys) =
                self.shared
                    .run(
                        Command::Scan,
                        &self.pattern,
                        || (0, Vec::new()),
                        move |mut c| async move {
                            c.query_on::<(u64, Vec<String>)>(&node, &command).await
                        },
                    )
                    .await?;
            self.cursor = next;
            if next == 0 {
                self.nodes.as_mut().map(Vec::pop);
            }
            for key in keys {
                if self.seen.insert(key.clone()) {
                    self.ready.push_back(key);
                }
            }
        }
        Ok(Some(self.ready.drain(..).collect()))
    }

    /// A stream of what `fetch` makes of each batch of keys; an error ends it.
    fn stream<T, F, Fut>(
        self,
        fetch: F,
    ) -> impl futures_core::Stream<Item = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn(Arc<Shared>, Vec<String>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Vec<T>>> + Send,
    {
        let state = (self, VecDeque::new(), false, fetch);
        futures_util::stream::unfold(
            state,
            |(mut scanner, mut buffer, failed, fetch)| async move {
                if failed {
                    return None;
                }
                while buffer.is_empty() {
                    let batch = match scanner.next_batch().await {
                        Ok(Some(keys)) => fetch(scanner.shared.clone(), keys).await,
                        Ok(None) => return None,
                        Err(error) => Err(error),
                    };
                    match batch {
                        Ok(items) => buffer.extend(items),
                        Err(error) => return Some((Err(error), (scanner, buffer, true, fetch))),
                    }
                }
                buffer
                    .pop_front()
                    .map(|item| (Ok(item), (scanner, buffer, false, fetch)))
            },
        )
    }

    fn keys(self) -> impl futures_core::Stream<Item = Result<String>> + Send + 'static {
        self.stream(|_, keys| async move { Ok(keys) })
    }

    fn entries(self) -> impl futures_core::Stream<Item = Result<(String, Bytes)>> + Send + 'static {
        self.stream(|shared, keys| async move {
            let first = keys[0].clone();
            let request = keys.clone();
            let values = shared
                .run(
                    Command::GetMatch,
                    &first,
                    || vec![None; keys.len()],
                    move |mut c: Conn| async move {
                        redis::cmd("MGET")
                            .arg(&request)
                            .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                            .await
                    },
                )
                .await?;
            Ok(keys
                .into_iter()
                .zip(values)
                .filter_map(|(k, v)| v.map(|v| (k, Bytes::from(v))))
                .collect())
        })
    }
}

impl Shared {
    /// `get` with client-side caching on: a local copy, or the value with
    /// its TTL for a key kept locally, or a plain `GET`.
    async fn get_tracked(&self, key: &str) -> Result<Option<Bytes>> {
        let deadline = self.deadline();
        if let Some(tracking) = self.tracked(key) {
            self.ensure_tracking(deadline).await;
            if let Some(value) = tracking.cache.get(key) {
                return Ok(Some(value));
            }
        }
        let Some(ticket) = self.ticket(key) else {
            return self.get_untracked(deadline, key).await;
        };
        // Kept locally: the reply carries the TTL the copy may live.
        self.run_by(
            deadline,
            Command::Get,
            key,
            || None,
            move |mut c| async move {
                let (value, pttl) = redis::pipe()
                    .cmd("GET")
                    .arg(key)
                    .cmd("PTTL")
                    .arg(key)
                    .query_async::<(Option<Vec<u8>>, i64)>(&mut c)
                    .await?;
                Ok(value.map(|v| (Bytes::from(v), pttl)))
            },
        )
        .await
        .map(|got| {
            got.map(|(value, pttl)| {
                self.fill(key, &value, pttl, Some(ticket));
                value
            })
        })
    }

    /// A `GET` of a key not kept in process: batched (`batch=true`) or
    /// alone.
    async fn get_untracked(
        &self,
        deadline: tokio::time::Instant,
        key: &str,
    ) -> Result<Option<Bytes>> {
        match &self.batcher {
            Some(batcher) => {
                self.run_by(
                    deadline,
                    Command::Get,
                    key,
                    || None,
                    |c| self.batched_get(batcher, c, key),
                )
                .await
            }
            None => {
                self.run_by(
                    deadline,
                    Command::Get,
                    key,
                    || None,
                    move |mut c| async move { plain_get(&mut c, key).await },
                )
                .await
            }
        }
    }
}
