//! `early`: once a value is older than `early_ttl`, exactly one caller
//! (across processes: a backend lock) starts a recompute; every caller gets
//! the current value at once.

use std::future::Future;
use std::time::Duration;

use super::refresh::{spawn, Refresh, Target};
use super::simple::single_flight;
use super::slot::Slot;
use super::Adapter;
use crate::cache::flight::Share;
use crate::cache::Cache;
use crate::layout::random_token;
use crate::ttl::{IntoTtl, Ttl};

/// The early-refresh strategy, stored at `early:{key}` as
/// `(fresh_until_ms, value)`; the refresh lock is `early:{key}:lock`.
pub struct Early<'c, R> {
    slot: Slot<'c>,
    ttl: Ttl,
    early_ttl: Duration,
    invalid: Option<String>,
    refresh: Option<Refresh<R>>,
}

impl<R> std::fmt::Debug for Early<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Early")
            .field("key", &self.slot.key)
            .field("ttl", &self.ttl)
            .field("early_ttl", &self.early_ttl)
            .finish_non_exhaustive()
    }
}

impl<'c, R: Send + 'static> Early<'c, R> {
    /// Values of `key` live `ttl` and are refreshed once older than `early_ttl`.
    /// `early_ttl` takes any TTL form; an invalid one makes every call run
    /// straight through (logged).
    pub fn new(cache: &'c Cache, key: &str, ttl: Ttl, early_ttl: impl IntoTtl) -> Self {
        let mut invalid = None;
        let early_ttl = super::setting(early_ttl, "early_ttl", &mut invalid);
        Early {
            slot: Slot::new(cache, format!("early:{key}")),
            ttl,
            early_ttl,
            invalid,
            refresh: None,
        }
    }

    /// How to recompute in the background. Without it, the caller that wins
    /// the refresh lock recomputes in line (the others still answer at once).
    pub fn refresh(mut self, refresh: Refresh<R>) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// Runs the call; see the module docs.
    pub async fn run<A: Adapter<R> + 'static>(self, inner: impl Future<Output = R>) -> R
    where
        A::Stored: 'static,
    {
        if let Some(why) = &self.invalid {
            super::invalid_setting("early", &self.slot.key, why);
            return inner.await;
        }
        if let Some(why) = &self.invalid {
            super::invalid_setting("early", &self.slot.key, why);
            return inner.await;
        }
        let cache = self.slot.cache;
        let read = || async {
            self.slot
                .read::<(u64, A::Stored)>()
                .await
                .map(|(until, value)| (until, A::restore(value)))
        };
        if let Some((fresh_until, output)) = read().await {
            if cache.clock().unix_ms() >= fresh_until {
                self.refresh_once::<A>(inner).await;
            }
            return output;
        }
        // A miss: one computation per key in this process.
        let key = self.slot.key.clone();
        let computed = single_flight(
            cache,
            &key,
            || async { read().await.map(|(_, output)| output) },
            |_| async {
                let output = inner.await;
                let shared = match A::stored(&output) {
                    Some(value) => {
                        let until = cache.clock().unix_ms() + self.early_ttl.as_millis() as u64;
                        self.slot.write(&(until, value), self.ttl).await;
                        match cache.encode(&self.slot.key, &(until, value)) {
                            Ok(bytes) => Share::Value(bytes),
                            Err(_) => Share::Nothing(None),
                        }
                    }
                    None => Share::Nothing(None),
                };
                (output, shared)
            },
            |bytes| {
                cache
                    .decode_shared::<(u64, A::Stored)>(&self.slot.key, bytes)
                    .map(|(_, value)| A::restore(value))
            },
            |_| None,
        );
        computed.await
    }

    /// Takes the refresh lock; the winner refreshes.
    async fn refresh_once<A: Adapter<R> + 'static>(self, inner: impl Future<Output = R>)
    where
        A::Stored: 'static,
    {
        let cache = self.slot.cache;
        let lock = format!("{}:lock", self.slot.key);
        let lock_ttl = self.early_ttl.max(Duration::from_millis(1));
        let token = random_token();
        let won = cache.set_lock(&lock, &token, lock_ttl).await;
        if !self.slot.or_log(won, "refresh lock", false) {
            return;
        }
        match self.refresh {
            Some(refresh) => {
                let target = Target {
                    key: self.slot.key.clone(),
                    ttl: self.ttl,
                    fresh_for: Some(self.early_ttl),
                    cleanup: lock,
                };
                spawn::<R, A>(cache, target, refresh);
            }
            None => {
                let output = inner.await;
                if let Some(value) = A::stored(&output) {
                    let until = cache.clock().unix_ms() + self.early_ttl.as_millis() as u64;
                    self.slot.write(&(until, value), self.ttl).await;
                }
                let _ = cache.unlock(&lock, &token).await;
            }
        }
    }
}
