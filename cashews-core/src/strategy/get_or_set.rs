//! `Cache::get_or_set`: the simple strategy as a command.

use std::future::{Future, IntoFuture};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Memo, OkPart};
use crate::backend::BoxFuture;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::ttl::{IntoTtl, Ttl};

/// A pending `get_or_set`; see [`Cache::get_or_set`].
#[must_use = "a get_or_set does nothing until awaited"]
pub struct GetOrSetBuilder<'a, F> {
    cache: &'a Cache,
    key: &'a str,
    init: F,
    expire: Result<Ttl>,
}

impl<F> std::fmt::Debug for GetOrSetBuilder<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetOrSetBuilder")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<'a, F> GetOrSetBuilder<'a, F> {
    fn new(cache: &'a Cache, key: &'a str, init: F) -> Self {
        GetOrSetBuilder {
            cache,
            key,
            init,
            expire: Ok(Ttl::FOREVER),
        }
    }

    /// Expires the computed value after `ttl`.
    pub fn expire(mut self, ttl: impl IntoTtl) -> Self {
        self.expire = ttl.into_ttl();
        self
    }

    /// Turns this into a fallible load: `init` returns `Result<T, E>`, an
    /// `Err` is returned to its caller and not stored, and cache errors are
    /// converted with `E: From<cashews::Error>`.
    pub fn fallible(self) -> TryGetOrSet<'a, F> {
        TryGetOrSet(self)
    }
}

impl<'a, F, Fut, T> IntoFuture for GetOrSetBuilder<'a, F>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = T> + Send + 'a,
    T: Serialize + DeserializeOwned + Send + 'a,
{
    type Output = Result<T>;
    type IntoFuture = BoxFuture<'a, Result<T>>;

    fn into_future(self) -> Self::IntoFuture {
        let init = self.init;
        Box::pin(self.cache.load(self.key, self.expire, || async move {
            Ok::<T, Error>(init().await)
        }))
    }
}

/// A fallible `get_or_set`; see [`GetOrSetBuilder::fallible`].
#[must_use = "a get_or_set does nothing until awaited"]
pub struct TryGetOrSet<'a, F>(GetOrSetBuilder<'a, F>);

impl<F> std::fmt::Debug for TryGetOrSet<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a, F, Fut, T, E> IntoFuture for TryGetOrSet<'a, F>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
    T: Serialize + DeserializeOwned + Send + 'a,
    E: From<Error> + Send + 'a,
{
    type Output = Result<T, E>;
    type IntoFuture = BoxFuture<'a, Result<T, E>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.0.cache.load(self.0.key, self.0.expire, self.0.init))
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
    pub fn get_or_set<'a, F>(&'a self, key: &'a str, init: F) -> GetOrSetBuilder<'a, F> {
        GetOrSetBuilder::new(self, key, init)
    }

    /// The load path behind `get_or_set`: the simple strategy with the `Ok`
    /// part stored. Cache failures are logged and the value is computed.
    pub(crate) async fn load<T, E, F, Fut>(
        &self,
        key: &str,
        expire: Result<Ttl>,
        init: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned + Send,
        E: From<Error>,
    {
        let ttl = expire?;
        Memo::new(self, key.to_owned(), ttl)
            .run::<OkPart>(init())
            .await
    }
}
