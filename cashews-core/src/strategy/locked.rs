//! `locked`: one execution at a time per key, across processes.

use std::future::Future;
use std::time::Duration;

use crate::cache::Cache;
use crate::error::Error;
use crate::ttl::IntoTtl;
use crate::ttl::Ttl;

/// The lock strategy: holds `locked:{key}` while the call runs. Caches nothing.
#[derive(Debug)]
pub struct Locked<'c> {
    cache: &'c Cache,
    key: String,
    ttl: Ttl,
    wait: Option<std::result::Result<Duration, String>>,
    step: Option<std::result::Result<Duration, String>>,
}

impl<'c> Locked<'c> {
    /// Locks `key` for at most `ttl` (a crashed holder frees it then);
    /// waits for a held lock as long as a lock request does by default
    /// ([`crate::cache::DEFAULT_LOCK_WAIT`]), or [`Locked::wait`].
    pub fn new(cache: &'c Cache, key: &str, ttl: Ttl) -> Self {
        Locked {
            cache,
            key: format!("locked:{key}"),
            ttl,
            wait: None,
            step: None,
        }
    }

    /// Waits at most `limit` (any TTL form, zero included: not at all). An
    /// invalid limit makes the call run without the lock (logged).
    pub fn wait(mut self, limit: impl IntoTtl) -> Self {
        self.wait = Some(limit.into_wait().map_err(|e| e.to_string()));
        self
    }

    /// Does not wait for a held lock.
    pub fn no_wait(mut self) -> Self {
        self.wait = Some(Ok(Duration::ZERO));
        self
    }

    /// The first pause between attempts to take a held lock (then doubling).
    pub fn step(mut self, step: impl IntoTtl) -> Self {
        self.step = Some(step.into_wait().map_err(|e| e.to_string()));
        self
    }

    /// Runs `inner` under the lock. If the lock cannot be taken in time,
    /// returns `locked(Error::Locked)` without running `inner`; if the
    /// backend fails, runs `inner` without the lock (logged).
    pub async fn run<R>(
        self,
        inner: impl Future<Output = R>,
        locked: impl FnOnce(Error) -> R,
    ) -> R {
        let (wait, step) = match (self.wait.transpose(), self.step.transpose()) {
            (Ok(wait), Ok(step)) => (wait, step),
            (Err(why), _) | (_, Err(why)) => {
                super::invalid_setting("locked", &self.key, &why);
                return inner.await;
            }
        };
        let mut request = self.cache.lock(&self.key, self.ttl);
        if let Some(wait) = wait {
            request = request.wait(wait);
        }
        if let Some(step) = step {
            request = request.backoff(step);
        }
        let guard = match request.await {
            Ok(guard) => Some(guard),
            Err(error @ Error::Locked { .. }) => return locked(error),
            Err(error) => {
                tracing::warn!(key = self.key, %error, "cannot take the lock; running without it");
                None
            }
        };
        let output = inner.await;
        if let Some(guard) = guard {
            if let Err(error) = guard.release().await {
                tracing::warn!(key = self.key, %error, "cannot release the lock; it expires with its ttl");
            }
        }
        output
    }
}
