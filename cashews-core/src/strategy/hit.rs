//! `hit`: serve a value for a number of hits, then recompute; optionally
//! refresh in the background when the count reaches `update_after`.

use std::future::Future;

use super::refresh::{spawn, Refresh, Target};
use super::slot::Slot;
use super::Adapter;
use crate::cache::Cache;
use crate::ttl::Ttl;

/// The hit-count strategy, stored at `hit:{key}` with its counter at
/// `hit:{key}:hits`.
pub struct Hit<'c, R> {
    slot: Slot<'c>,
    counter: String,
    ttl: Ttl,
    cache_hits: u64,
    update_after: u64,
    refresh: Option<Refresh<R>>,
}

impl<R> std::fmt::Debug for Hit<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hit")
            .field("key", &self.slot.key)
            .field("cache_hits", &self.cache_hits)
            .field("update_after", &self.update_after)
            .finish_non_exhaustive()
    }
}

impl<'c, R: Send + 'static> Hit<'c, R> {
    /// Serves the value of `key` for `cache_hits` hits within `ttl`.
    pub fn new(cache: &'c Cache, key: &str, ttl: Ttl, cache_hits: u64) -> Self {
        Hit {
            slot: Slot::new(cache, format!("hit:{key}")),
            counter: format!("hit:{key}:hits"),
            ttl,
            cache_hits,
            update_after: 0,
            refresh: None,
        }
    }

    /// At hit number `n`, refreshes the value (in the background with
    /// [`Hit::refresh`], else in line) while returning the stored one.
    pub fn update_after(mut self, n: u64) -> Self {
        self.update_after = n;
        self
    }

    /// How to recompute in the background (a `'static` future).
    pub fn refresh(mut self, refresh: Refresh<R>) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// Runs the call; see the module docs.
    pub async fn run<A: Adapter<R> + 'static>(self, inner: impl Future<Output = R>) -> R
    where
        A::Stored: 'static,
    {
        let cache = self.slot.cache;
        if let Some(value) = self.slot.read::<A::Stored>().await {
            let hits = cache.incr(&self.counter).expire(self.ttl).await;
            let hits = self.slot.or_log(hits, "hit count", 0).max(0) as u64;
            if (1..=self.cache_hits).contains(&hits) {
                if self.update_after > 0 && hits == self.update_after {
                    self.refresh_now::<A>(inner).await;
                }
                return A::restore(value);
            }
        }
        let output = inner.await;
        if let Some(value) = A::stored(&output) {
            self.store(value).await;
        }
        output
    }

    async fn store<S: serde::Serialize + ?Sized>(&self, value: &S) {
        let cache = self.slot.cache;
        let _ = cache.delete(&self.counter).await;
        self.slot.write(value, self.ttl).await;
    }

    async fn refresh_now<A: Adapter<R> + 'static>(self, inner: impl Future<Output = R>)
    where
        A::Stored: 'static,
    {
        match self.refresh {
            Some(refresh) => {
                let target = Target {
                    key: self.slot.key.clone(),
                    ttl: self.ttl,
                    fresh_for: None,
                    cleanup: self.counter.clone(),
                };
                spawn::<R, A>(self.slot.cache, target, refresh);
            }
            None => {
                let output = inner.await;
                if let Some(value) = A::stored(&output) {
                    self.store(value).await;
                }
            }
        }
    }
}
