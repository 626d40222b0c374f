//! `Cache::get_or_set`: the simple strategy as a command.

use std::future::{Future, IntoFuture};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Memo, OkPart};
use crate::backend::BoxFuture;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::ttl::{IntoTtl, Ttl};

/// A pending `get_or_set`; see [`Cache::get_or_set`]. `T` is what `init`
/// returns.
#[must_use = "a get_or_set does nothing until awaited"]
pub struct GetOrSetBuilder<'a, F, T> {
    cache: &'a Cache,
    key: &'a str,
    init: F,
    expire: Result<Ttl>,
    hooks: Hooks<'a, T>,
}

/// Hooks reading an output `R` (a value, or a load's `Result`).
pub(crate) struct Hooks<'a, R> {
    expire_with: Option<OutputFn<'a, R, Option<Ttl>>>,
    hit_if: Option<OutputFn<'a, R, bool>>,
}

type OutputFn<'a, R, O> = Box<dyn Fn(&R) -> O + Send + Sync + 'a>;

impl<R> Default for Hooks<'_, R> {
    fn default() -> Self {
        Hooks {
            expire_with: None,
            hit_if: None,
        }
    }
}

impl<'a, R: 'a> Hooks<'a, R> {
    /// The hooks seen through `part`: a hook on a value, applied to a
    /// load's output (`Ok` is the only output ever stored or read).
    fn map<O: 'a>(self, part: fn(&O) -> Option<&R>) -> Hooks<'a, O> {
        Hooks {
            expire_with: self.expire_with.map(|ttl| -> OutputFn<'a, O, Option<Ttl>> {
                Box::new(move |output| part(output).and_then(&ttl))
            }),
            hit_if: self.hit_if.map(|usable| -> OutputFn<'a, O, bool> {
                Box::new(move |output| part(output).is_some_and(&usable))
            }),
        }
    }

    fn apply<'c>(self, mut memo: Memo<'c, R>) -> Memo<'c, R>
    where
        'a: 'c,
    {
        if let Some(ttl) = self.expire_with {
            memo = memo.expire_with(ttl);
        }
        if let Some(usable) = self.hit_if {
            memo = memo.hit_if(usable);
        }
        memo
    }
}

impl<F, T> std::fmt::Debug for GetOrSetBuilder<'_, F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetOrSetBuilder")
            .field("key", &self.key)
            .field("expire_with", &self.hooks.expire_with.is_some())
            .field("hit_if", &self.hooks.hit_if.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, F, T> GetOrSetBuilder<'a, F, T> {
    fn new(cache: &'a Cache, key: &'a str, init: F) -> Self {
        GetOrSetBuilder {
            cache,
            key,
            init,
            expire: Ok(Ttl::FOREVER),
            hooks: Hooks::default(),
        }
    }

    /// Expires the computed value after `ttl`.
    pub fn expire(mut self, ttl: impl IntoTtl) -> Self {
        self.expire = ttl.into_ttl();
        self
    }

    /// Chooses the TTL from the computed value (its own lifetime: a token's
    /// expiry, a response's `max-age`) in place of [`expire`](Self::expire);
    /// `None` leaves it unstored (it is still returned, and shared with
    /// concurrent callers).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
    /// # let cache = cashews_core::Cache::new(); cache.setup("mem://")?;
    /// use cashews_core::Ttl;
    /// let (token, valid_secs): (String, u64) = cache
    ///     .get_or_set("token", || async { ("t0k3n".to_owned(), 300) })
    ///     .expire_with(|(_, valid_secs)| Ttl::from_secs(*valid_secs).ok())
    ///     .await?;
    /// # assert_eq!((token.as_str(), valid_secs), ("t0k3n", 300));
    /// # Ok(()) }
    /// ```
    pub fn expire_with(mut self, ttl: impl Fn(&T) -> Option<Ttl> + Send + Sync + 'a) -> Self {
        self.hooks.expire_with = Some(Box::new(ttl));
        self
    }

    /// Serves a stored value only when `usable` says so; one it refuses
    /// (stale by the value's own measure) counts as missing: `init` runs —
    /// once for concurrent callers — and replaces it.
    pub fn hit_if(mut self, usable: impl Fn(&T) -> bool + Send + Sync + 'a) -> Self {
        self.hooks.hit_if = Some(Box::new(usable));
        self
    }
}

impl<'a, F, T, E> GetOrSetBuilder<'a, F, Result<T, E>> {
    /// Turns this into a fallible load: `init` returns `Result<T, E>`, an
    /// `Err` is returned to its caller and not stored, and cache errors are
    /// converted with `E: From<cashews::Error>`. Hooks set before see the
    /// stored `Ok`; [`TryGetOrSet`]'s own see the value.
    pub fn fallible(self) -> TryGetOrSet<'a, F, T, E> {
        TryGetOrSet(self)
    }
}

impl<'a, F, Fut, T> IntoFuture for GetOrSetBuilder<'a, F, T>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = T> + Send + 'a,
    T: Serialize + DeserializeOwned + Send + 'a,
{
    type Output = Result<T>;
    type IntoFuture = BoxFuture<'a, Result<T>>;

    fn into_future(self) -> Self::IntoFuture {
        let init = self.init;
        let hooks = self.hooks.map(|output: &Result<T>| output.as_ref().ok());
        Box::pin(
            self.cache
                .load(self.key, self.expire, hooks, || async move {
                    Ok::<T, Error>(init().await)
                }),
        )
    }
}

/// A fallible `get_or_set`; see [`GetOrSetBuilder::fallible`].
#[must_use = "a get_or_set does nothing until awaited"]
pub struct TryGetOrSet<'a, F, T, E>(GetOrSetBuilder<'a, F, Result<T, E>>);

impl<F, T, E> std::fmt::Debug for TryGetOrSet<'_, F, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a, F, T: 'a, E: 'a> TryGetOrSet<'a, F, T, E> {
    /// [`GetOrSetBuilder::expire_with`], from the `Ok` value.
    pub fn expire_with(self, ttl: impl Fn(&T) -> Option<Ttl> + Send + Sync + 'a) -> Self {
        TryGetOrSet(
            self.0
                .expire_with(move |output| output.as_ref().ok().and_then(&ttl)),
        )
    }

    /// [`GetOrSetBuilder::hit_if`], on the stored value.
    pub fn hit_if(self, usable: impl Fn(&T) -> bool + Send + Sync + 'a) -> Self {
        TryGetOrSet(
            self.0
                .hit_if(move |output| output.as_ref().ok().is_some_and(&usable)),
        )
    }
}

impl<'a, F, Fut, T, E> IntoFuture for TryGetOrSet<'a, F, T, E>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
    T: Serialize + DeserializeOwned + Send + 'a,
    E: From<Error> + Send + 'a,
{
    type Output = Result<T, E>;
    type IntoFuture = BoxFuture<'a, Result<T, E>>;

    fn into_future(self) -> Self::IntoFuture {
        let b = self.0;
        Box::pin(b.cache.load(b.key, b.expire, b.hooks, b.init))
    }
}

impl Cache {
    /// The value at `key`, or the result of `init` — which is stored (with
    /// `.expire(ttl)`) and returned. A failing backend never fails the call:
    /// the error is logged at warn and `init`'s value returned.
    ///
    /// # Concurrent calls
    /// Concurrent calls for the same key in this process run `init` once; the
    /// others wait and decode the stored value, so `T` needs no `Clone`.
    /// If that call is cancelled or panics, one waiter runs `init` instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
    /// # let cache = cashews_core::Cache::new(); cache.setup("mem://")?;
    /// let n: u64 = cache.get_or_set("answer", || async { 42 }).expire("10m").await?;
    /// assert_eq!(n, 42);
    /// # Ok(()) }
    /// ```
    pub fn get_or_set<'a, F, Fut>(
        &'a self,
        key: &'a str,
        init: F,
    ) -> GetOrSetBuilder<'a, F, Fut::Output>
    where
        F: FnOnce() -> Fut,
        Fut: Future,
    {
        GetOrSetBuilder::new(self, key, init)
    }

    /// The load path behind `get_or_set`: the simple strategy with the `Ok`
    /// part stored. Cache failures are logged and the value is computed.
    pub(crate) async fn load<'a, T, E, F, Fut>(
        &'a self,
        key: &str,
        expire: Result<Ttl>,
        hooks: Hooks<'a, Result<T, E>>,
        init: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned + Send,
        E: From<Error>,
    {
        let ttl = expire?;
        hooks
            .apply(Memo::new(self, key.to_owned(), ttl))
            .run::<OkPart>(init())
            .await
    }
}
