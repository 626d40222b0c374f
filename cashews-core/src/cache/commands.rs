//! The typed commands of [`Cache`].

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::builders::{IncrBuilder, SetBuilder, SetManyBuilder};
use super::lock::LockBuilder;
use super::tags::{is_tags_key, key_tags_key, records_of};
use super::{Cache, State};
use crate::backend::{BoxFuture, BoxStream, Expiry, Kept};
use crate::codec::{parse_counter, Decoded, Miss, Serializer};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::middleware::{Request, Response};
use crate::stream::ResultStream;
use crate::ttl::{IntoTtl, Ttl};

/// The future of [`Cache::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    cache: &'a Cache,
    key: &'a str,
    /// The hit path: decoding, or the typed tier ([`Cache::get_cloned`]).
    local: LocalRead<T>,
    slow: Option<BoxFuture<'a, Result<Option<T>>>>,
}

/// A hit path of [`Get`].
type LocalRead<T> = fn(&Cache, &str) -> Local<T>;

/// What a read from in-process state found. One flat enum (not nested
/// `Option`s and `Result`s): the hit path returns it by value through
/// several calls, and a flat value moves in one piece.
pub(crate) enum Local<T> {
    /// The backend holds no local state for the key (or a middleware or
    /// scope needs the full path): ask it.
    Remote,
    /// No live value.
    Missing,
    /// The value.
    Value(T),
    /// Bytes that are not a usable value (a miss to record).
    Unusable(Miss),
    /// The key has no backend.
    Failed(Box<Error>),
}

impl<T> Local<T> {
    /// The value, if one was found.
    #[inline]
    pub(crate) fn into_value(self) -> Option<T> {
        match self {
            Local::Value(value) => Some(value),
            _ => None,
        }
    }
}

impl<T> std::fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Get")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<'a, T: DeserializeOwned + Send + 'a> Future for Get<'a, T> {
    type Output = Result<Option<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.slow.is_none() {
            let (cache, key) = (self.cache, self.key);
            match (self.local)(cache, key) {
                Local::Value(value) => return Poll::Ready(Ok(Some(value))),
                Local::Missing => return Poll::Ready(Ok(None)),
                Local::Failed(error) => return Poll::Ready(Err(*error)),
                Local::Unusable(miss) => {
                    self.slow = Some(Box::pin(async move {
                        cache.after_miss(key, miss).await;
                        Ok(None)
                    }))
                }
                Local::Remote => self.slow = Some(Box::pin(cache.get_through_chain(key))),
            }
        }
        self.slow.as_mut().expect("set above").as_mut().poll(cx)
    }
}

/// Batch size asked of backends that scan in batches (Redis `SCAN COUNT`).
const SCAN_BATCH: usize = 100;

impl Cache {
    /// The value stored at `key`, or `None`.
    ///
    /// A stored value that does not decode as `T` (for example a struct that
    /// changed between deploys), fails signature verification, or was not
    /// written by this library, reads as `None` and is counted in
    /// [`Cache::stats`]; one that does not decode is also deleted.
    ///
    /// A memory hit completes on the first poll without allocating a future.
    pub fn get<'a, T: DeserializeOwned + Send + 'a>(&'a self, key: &'a str) -> Get<'a, T> {
        Get {
            cache: self,
            key,
            local: Cache::get_local::<T>,
            slow: None,
        }
    }

    /// [`get`](Cache::get) for a `Clone` type, through the typed tier: an
    /// in-process backend (`mem://`, Redis' client-side tier) keeps the
    /// value decoded from an entry's bytes once the entry is read again,
    /// and later hits of the same type clone it instead of decoding the
    /// bytes. The result is the same as `get`'s — the bytes stay the truth,
    /// any write replaces the copy, and each caller gets its own clone —
    /// at the cost of the kept copy's memory for entries read more than
    /// once. `#[cache]` takes this path by itself for `Clone` outputs.
    pub fn get_cloned<'a, T>(&'a self, key: &'a str) -> Get<'a, T>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Get {
            cache: self,
            key,
            local: Cache::get_local_cloned::<T>,
            slow: None,
        }
    }

    /// `get` when the backend could not answer locally: through the
    /// middleware chain.
    async fn get_through_chain<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.inner.state.load_full();
        let route = state.route(key)?;
        let bytes = if self.straight_to_backend(&state, Command::Get) {
            // No request to build, no chain to walk.
            route.backend.get(key).await?
        } else {
            self.run_on(&state, route, Request::Get { key: key.into() })
                .await?
                .into_value(Command::Get)?
        };
        Ok(match bytes {
            Some(bytes) => self.decode(&route.serializer, key, &bytes).await,
            None => None,
        })
    }

    /// What the key's backend holds in process for `key`, decoded.
    #[inline]
    pub(crate) fn get_local<T: DeserializeOwned>(&self, key: &str) -> Local<T> {
        self.read_local(key, false, |serializer, bytes, _| {
            serializer.decode(key, bytes)
        })
    }

    /// [`Cache::get_local`] through the backend's typed tier: a value of
    /// the same type decoded from the same bytes before is cloned instead
    /// of decoded again, and a value decoded here may be kept for the next
    /// hit (when the backend holds one, see [`Kept`]).
    #[inline]
    pub(crate) fn get_local_cloned<T: DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        key: &str,
    ) -> Local<T> {
        self.read_local(key, true, |serializer, bytes, kept| {
            if let Some(value) = kept.get().and_then(|v| v.downcast_ref::<T>()) {
                return Decoded::Value(value.clone());
            }
            let decoded = serializer.decode::<T>(key, bytes);
            if kept.wanted() {
                if let Decoded::Value(value) = &decoded {
                    kept.keep(Arc::new(value.clone()));
                }
            }
            decoded
        })
    }

    /// Whether nothing stands between this cache and its backends for
    /// `command`: no middleware, the command not disabled, no scope active.
    /// Any scope (disabling, detect, ...) takes the full path, which knows
    /// them all.
    #[inline]
    fn straight_to_backend(&self, state: &State, command: Command) -> bool {
        state.chain.is_empty() && !self.disabled().contains(command) && !crate::scope::any_active()
    }

    /// A local read (see [`Backend::get_local`]) decoded by `decode`, with
    /// this route's typed tier when `typed`.
    ///
    /// [`Backend::get_local`]: crate::backend::Backend::get_local
    #[inline]
    fn read_local<T>(
        &self,
        key: &str,
        typed: bool,
        decode: impl FnOnce(&Serializer, &[u8], &mut Kept<'_>) -> Decoded<T>,
    ) -> Local<T> {
        let state = self.inner.state.load();
        if !self.straight_to_backend(&state, Command::Get) {
            return Local::Remote;
        }
        let route = match state.route(key) {
            Ok(route) => route,
            Err(e) => return Local::Failed(Box::new(e)),
        };
        let mut decode = Some(decode);
        let mut found = Local::Missing;
        let decoder = if typed { route.decoder } else { 0 };
        let answered = route.backend.get_local(key, decoder, &mut |bytes, kept| {
            if let Some(decode) = decode.take() {
                found = match decode(&route.serializer, bytes, kept) {
                    Decoded::Value(value) => Local::Value(value),
                    Decoded::Miss(miss) => Local::Unusable(miss),
                };
            }
        });
        match answered {
            Some(_) => found,
            None => Local::Remote,
        }
    }

    /// Decodes stored bytes; a miss is recorded (and a corrupt value deleted).
    async fn decode<T: DeserializeOwned>(
        &self,
        serializer: &Serializer,
        key: &str,
        bytes: &[u8],
    ) -> Option<T> {
        match serializer.decode(key, bytes) {
            Decoded::Value(value) => Some(value),
            Decoded::Miss(miss) => {
                self.after_miss(key, miss).await;
                None
            }
        }
    }

    /// Decodes bytes read from `key` with the serializer of its backend.
    pub(crate) async fn decode_stored<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> Option<T> {
        let serializer = match self.inner.state.load().route(key) {
            Ok(route) => route.serializer.clone(),
            Err(_) => return None,
        };
        self.decode(&serializer, key, bytes).await
    }

    async fn after_miss(&self, key: &str, miss: Miss) {
        self.record_miss(key, miss);
        if miss == Miss::Corrupt {
            if let Err(error) = self.delete(key).await {
                tracing::debug!(key, %error, "could not delete an undecodable value");
            }
        }
    }

    /// The values at `keys`, aligned with them (`None` for each miss).
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let state = self.inner.state.load_full();
        let mut out: Vec<Option<T>> = keys.iter().map(|_| None).collect();
        for (route_index, positions) in group_by_route(&state, keys.iter().copied())? {
            let route = &state.routes[route_index];
            let request = Request::GetMany {
                keys: positions.iter().map(|i| Cow::Borrowed(keys[*i])).collect(),
            };
            let values = self
                .run_on(&state, route, request)
                .await?
                .into_values(Command::GetMany)?;
            if values.len() != positions.len() {
                return Err(Error::UnexpectedResponse {
                    command: Command::GetMany,
                    got: "a list of another length",
                });
            }
            for (i, bytes) in positions.into_iter().zip(values) {
                if let Some(bytes) = bytes {
                    out[i] = self.decode(&route.serializer, keys[i], &bytes).await;
                }
            }
        }
        Ok(out)
    }

    /// The bytes stored at `key`, as stored (envelope and signature included).
    pub async fn get_raw(&self, key: &str) -> Result<Option<Bytes>> {
        self.run_one(Request::GetRaw { key: key.into() })
            .await?
            .into_value(Command::GetRaw)
    }

    /// Stores `value` at `key`; `.await` the returned builder, optionally after
    /// `.expire(ttl)` and `.only_if_absent()` / `.only_if_present()`. Returns
    /// whether it was stored. Without `.expire`, the value never expires and
    /// any previous TTL of the key is dropped.
    pub fn set<'a, T: Serialize + ?Sized>(&'a self, key: &'a str, value: &T) -> SetBuilder<'a> {
        SetBuilder::new(self, key, self.encode(key, value), Command::Set)
    }

    /// Stores bytes as they are (no envelope, no signature).
    pub fn set_raw<'a>(&'a self, key: &'a str, value: impl Into<Bytes>) -> SetBuilder<'a> {
        SetBuilder::new(self, key, Ok(value.into()), Command::SetRaw)
    }

    /// Encodes `value` as the backend serving `key` stores it.
    pub(crate) fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        self.inner
            .state
            .load()
            .route(key)?
            .serializer
            .encode(key, value)
    }

    /// Stores several values with one expiry (`.expire(ttl)`).
    pub fn set_many<'a, T: Serialize>(&'a self, pairs: &'a [(&'a str, T)]) -> SetManyBuilder<'a> {
        let encoded = pairs
            .iter()
            .map(|(k, v)| self.encode(k, v).map(|bytes| (*k, bytes)))
            .collect();
        SetManyBuilder::new(self, encoded)
    }

    pub(crate) async fn set_many_encoded(
        &self,
        pairs: Vec<(&str, Bytes)>,
        expire: Option<Duration>,
    ) -> Result<()> {
        let state = self.inner.state.load_full();
        for (route_index, positions) in group_by_route(&state, pairs.iter().map(|(k, _)| *k))? {
            let request = Request::SetMany {
                pairs: positions
                    .iter()
                    .map(|i| (Cow::Borrowed(pairs[*i].0), pairs[*i].1.clone()))
                    .collect(),
                expire,
            };
            self.run_on(&state, &state.routes[route_index], request)
                .await?
                .into_unit(Command::SetMany)?;
        }
        Ok(())
    }

    /// Adds to the integer counter at `key` (by 1, or `.by(n)`), creating it at
    /// 0 first; returns the new value. `.expire(ttl)` applies when this call
    /// creates the counter; an existing counter keeps its TTL.
    pub fn incr<'a>(&'a self, key: &'a str) -> IncrBuilder<'a> {
        IncrBuilder::new(self, key)
    }

    /// The value of the counter at `key` (written by [`Cache::incr`]).
    /// Counters are stored as plain integers, unsigned even with a `secret`,
    /// because backends add to them in place.
    pub async fn get_counter(&self, key: &str) -> Result<Option<i64>> {
        match self.get_raw(key).await? {
            None => Ok(None),
            Some(bytes) => parse_counter(&bytes)
                .map(Some)
                .ok_or_else(|| Error::WrongType {
                    key: key.to_owned(),
                    expected: "an integer counter",
                }),
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        self.run_one(Request::Exists { key: key.into() })
            .await?
            .into_bool(Command::Exists)
    }

    /// Deletes `key`; returns whether it existed.
    ///
    /// The key's tags forget it (see [`Cache::delete_tags`]).
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let delete = async {
            self.run_one(Request::Delete { key: key.into() })
                .await?
                .into_bool(Command::Delete)
        };
        let records = records_of([key]);
        if records.is_empty() {
            return delete.await;
        }
        // A `delete_many`, so middlewares watching `delete` see the caller's
        // deletes only.
        let records: Vec<&str> = records.iter().map(String::as_str).collect();
        let (deleted, forgotten) = join(delete, self.delete_many_keys(&records)).await;
        forgotten?;
        deleted
    }

    /// Deletes `keys`; returns how many existed.
    pub async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let records = records_of(keys.iter().copied());
        let records: Vec<&str> = records.iter().map(String::as_str).collect();
        let (deleted, forgotten) =
            join(self.delete_many_keys(keys), self.delete_many_keys(&records)).await;
        forgotten?;
        deleted
    }

    async fn delete_many_keys(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let state = self.inner.state.load_full();
        let mut deleted = 0;
        for (route_index, positions) in group_by_route(&state, keys.iter().copied())? {
            let request = Request::DeleteMany {
                keys: positions.iter().map(|i| Cow::Borrowed(keys[*i])).collect(),
            };
            deleted += self
                .run_on(&state, &state.routes[route_index], request)
                .await?
                .into_count(Command::DeleteMany)?;
        }
        Ok(deleted)
    }

    /// Deletes every key matching the glob `pattern` (see [`crate::glob`]) on
    /// every backend; returns how many.
    pub async fn delete_match(&self, pattern: &str) -> Result<u64> {
        if is_tags_key(pattern) {
            return self.delete_match_keys(pattern).await;
        }
        let tags = key_tags_key(pattern);
        let (deleted, forgotten) = join(
            self.delete_match_keys(pattern),
            self.delete_match_keys(&tags),
        )
        .await;
        forgotten?;
        deleted
    }

    async fn delete_match_keys(&self, pattern: &str) -> Result<u64> {
        let mut deleted = 0;
        for response in self
            .run_all(|| Request::DeleteMatch {
                pattern: pattern.into(),
            })
            .await?
        {
            deleted += response.into_count(Command::DeleteMatch)?;
        }
        Ok(deleted)
    }

    /// Every key matching the glob `pattern`, on every backend.
    pub async fn scan(&self, pattern: &str) -> Result<ResultStream<'static, String>> {
        let mut streams = Vec::new();
        let request = || Request::Scan {
            pattern: pattern.into(),
            batch_size: SCAN_BATCH,
        };
        for response in self.run_all(request).await? {
            streams.push(response.into_keys(Command::Scan)?);
        }
        Ok(ResultStream::new(concat(streams)))
    }

    /// Every key matching `pattern` with its value; values that do not decode
    /// as `T` are skipped (and counted).
    pub async fn get_match<T: DeserializeOwned + Send + 'static>(
        &self,
        pattern: &str,
    ) -> Result<ResultStream<'static, (String, T)>> {
        let state = self.inner.state.load_full();
        let mut streams: Vec<BoxStream<'static, Result<(String, T)>>> = Vec::new();
        for route in &state.routes {
            let request = Request::GetMatch {
                pattern: pattern.into(),
                batch_size: SCAN_BATCH,
            };
            let entries = self
                .run_on(&state, route, request)
                .await?
                .into_entries(Command::GetMatch)?;
            let (cache, serializer) = (self.clone(), route.serializer.clone());
            streams.push(Box::pin(crate::stream::filter_map(
                entries,
                move |(key, bytes)| match serializer.decode(&key, &bytes) {
                    Decoded::Value(value) => Some((key, value)),
                    Decoded::Miss(miss) => {
                        cache.record_miss(&key, miss);
                        None
                    }
                },
            )));
        }
        Ok(ResultStream::new(concat(streams)))
    }

    /// Sets the TTL of an existing key; returns whether the key exists.
    pub async fn expire(&self, key: &str, ttl: impl IntoTtl) -> Result<bool> {
        let ttl = finite(ttl.into_ttl()?)?;
        self.run_one(Request::Expire {
            key: key.into(),
            ttl,
        })
        .await?
        .into_bool(Command::Expire)
    }

    /// How long `key` has left: missing, no expiry, or the remaining time.
    pub async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.run_one(Request::GetExpire { key: key.into() })
            .await?
            .into_expiry(Command::GetExpire)
    }

    /// Checks every backend answers.
    pub async fn ping(&self) -> Result<()> {
        for response in self.run_all(|| Request::Ping).await? {
            response.into_unit(Command::Ping)?;
        }
        Ok(())
    }

    /// Deletes every key of every backend.
    pub async fn clear(&self) -> Result<()> {
        for response in self.run_all(|| Request::Clear).await? {
            response.into_unit(Command::Clear)?;
        }
        Ok(())
    }

    /// The number of keys stored over all backends (may include expired keys
    /// not purged yet, like Redis' `DBSIZE`).
    pub async fn get_keys_count(&self) -> Result<u64> {
        let mut total = 0;
        for response in self.run_all(|| Request::GetKeysCount).await? {
            total += response.into_count(Command::GetKeysCount)?;
        }
        Ok(total)
    }

    /// Approximate bytes used by `key`, if it exists.
    pub async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.run_one(Request::GetSize { key: key.into() })
            .await?
            .into_size(Command::GetSize)
    }

    /// Takes the lock `key` with `token` for `ttl` unless it is held.
    pub async fn set_lock(&self, key: &str, token: &str, ttl: impl IntoTtl) -> Result<bool> {
        let ttl = finite(ttl.into_ttl()?)?;
        self.run_one(Request::SetLock {
            key: key.into(),
            token: token.into(),
            ttl,
        })
        .await?
        .into_bool(Command::SetLock)
    }

    /// Releases the lock `key` if it is held with `token`; returns whether it was.
    pub async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.run_one(Request::Unlock {
            key: key.into(),
            token: token.into(),
        })
        .await?
        .into_bool(Command::Unlock)
    }

    /// Whether the lock `key` is held.
    pub async fn is_locked(&self, key: &str) -> Result<bool> {
        self.run_one(Request::IsLocked { key: key.into() })
            .await?
            .into_bool(Command::IsLocked)
    }

    /// Takes the lock `key` with a random token, waiting with exponential
    /// backoff (never a busy loop): `cache.lock("k", "30s").await?` waits up
    /// to the TTL; `.wait(d)` or `.no_wait()` choose otherwise. Fails with
    /// [`Error::Locked`] when it cannot take the lock in time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
    /// # let cache = cashews_core::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("report", "30s").await?;
    /// assert!(cache.lock("report", "30s").no_wait().await.is_err());
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub fn lock<'a>(&'a self, key: &str, ttl: impl IntoTtl) -> LockBuilder<'a> {
        LockBuilder::new(self, key, ttl)
    }

    /// Reads the unsigned `size`-bit fields `#index` of the bit string at `key`.
    pub async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        self.run_one(Request::GetBits {
            key: key.into(),
            indexes: indexes.to_vec(),
            size,
        })
        .await?
        .into_fields(Command::GetBits)
    }

    /// Adds `by` to each field (saturating at 0 and `2^size - 1`); returns the new values.
    pub async fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> Result<Vec<u64>> {
        self.run_one(Request::IncrBits {
            key: key.into(),
            indexes: indexes.to_vec(),
            size,
            by,
        })
        .await?
        .into_fields(Command::IncrBits)
    }

    /// Sliding-window counter: counts the calls in `[start, end]` (ms), forgets
    /// older ones, and records one at `end` if fewer than `max` are present.
    /// Returns the count including the recorded call.
    pub async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: impl IntoTtl,
    ) -> Result<u64> {
        let expire = expire.into_ttl()?.duration();
        self.run_one(Request::SliceIncr {
            key: key.into(),
            start,
            end,
            max,
            expire,
        })
        .await?
        .into_count(Command::SliceIncr)
    }

    /// Adds members to the set at `key`; an expiry only ever extends the set's
    /// TTL. Returns how many members were new.
    pub async fn set_add(&self, key: &str, members: &[&str], expire: impl IntoTtl) -> Result<u64> {
        let expire = expire.into_ttl()?.duration();
        self.run_one(Request::SetAdd {
            key: key.into(),
            members: members.iter().map(|m| Cow::Borrowed(*m)).collect(),
            expire,
        })
        .await?
        .into_count(Command::SetAdd)
    }

    /// Removes members from the set at `key`; returns how many were there.
    pub async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.run_one(Request::SetRemove {
            key: key.into(),
            members: members.iter().map(|m| Cow::Borrowed(*m)).collect(),
        })
        .await?
        .into_count(Command::SetRemove)
    }

    /// Removes and returns up to `count` members of the set at `key`.
    pub async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.run_one(Request::SetPop {
            key: key.into(),
            count,
        })
        .await?
        .into_members(Command::SetPop)
    }

    /// Runs a keyless or pattern request on every backend.
    async fn run_all<'a>(&self, request: impl Fn() -> Request<'a>) -> Result<Vec<Response>> {
        let state = self.inner.state.load_full();
        if state.routes.is_empty() {
            return Err(Error::NotConfigured { key: String::new() });
        }
        let mut responses = Vec::with_capacity(state.routes.len());
        for route in &state.routes {
            responses.push(self.run_on(&state, route, request()).await?);
        }
        Ok(responses)
    }
}

/// Groups key positions by the route serving them.
fn group_by_route<'k>(
    state: &State,
    keys: impl Iterator<Item = &'k str>,
) -> Result<Vec<(usize, Vec<usize>)>> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (position, key) in keys.enumerate() {
        let route = state.route_index(key)?;
        match groups.iter_mut().find(|(r, _)| *r == route) {
            Some((_, positions)) => positions.push(position),
            None => groups.push((route, vec![position])),
        }
    }
    Ok(groups)
}

fn concat<T: Send + 'static>(mut streams: Vec<BoxStream<'static, T>>) -> BoxStream<'static, T> {
    if streams.len() == 1 {
        return streams.pop().expect("one stream");
    }
    crate::stream::concat(streams)
}

/// A TTL that must be finite (locks, `expire`).
pub(crate) fn finite(ttl: Ttl) -> Result<Duration> {
    ttl.duration().ok_or_else(|| Error::Ttl {
        input: "forever".into(),
        reason: "this command needs a finite ttl",
    })
}
