//! `locked`: one execution at a time per key, across processes.

use std::future::Future;
use std::time::Duration;

use crate::cache::Cache;
use crate::error::Error;
use crate::ttl::Ttl;

/// The lock strategy: holds `locked:{key}` while the call runs. Caches nothing.
#[derive(Debug)]
pub struct Locked<'c> {
    cache: &'c Cache,
    key: String,
    ttl: Ttl,
    wait: Option<Duration>,
    step: Option<Duration>,
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

    /// Waits at most `limit` (`Duration::ZERO`: not at all).
    pub fn wait(mut self, limit: Duration) -> Self {
        self.wait = Some(limit);
        self
    }

    /// The first pause between attempts to take a held lock (then doubling).
    pub fn step(mut self, step: Duration) -> Self {
        self.step = Some(step);
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
        let mut request = self.cache.lock(&self.key, self.ttl);
        if let Some(wait) = self.wait {
            request = request.wait(wait);
        }
        if let Some(step) = self.step {
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
