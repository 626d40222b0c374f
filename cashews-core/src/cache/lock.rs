//! Distributed locks with a random token, waiting with backoff.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::Cache;
use crate::error::{Error, Result};
use crate::jitter::Jitter;
use crate::layout::random_token;
use crate::ttl::{IntoTtl, Ttl};

/// First pause between two attempts to take a held lock; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// How long a lock request waits for a held lock unless told otherwise
/// ([`LockBuilder::wait`]). Not the lock's TTL: a long TTL would hold the
/// caller as long.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(5);

/// A lock request; `.await` it. It waits for a held lock at most
/// [`DEFAULT_LOCK_WAIT`] (or [`LockBuilder::wait`]), then fails with
/// [`Error::Locked`]. A backend that fails is not a held lock: the request
/// returns the backend's error at once, without waiting.
#[must_use = "a lock request does nothing until awaited"]
#[derive(Debug)]
pub struct LockBuilder<'c> {
    cache: &'c Cache,
    key: String,
    ttl: Result<Ttl>,
    wait: Result<Duration>,
    first_backoff: Result<Duration>,
}

impl<'c> LockBuilder<'c> {
    pub(super) fn new(cache: &'c Cache, key: &str, ttl: impl IntoTtl) -> Self {
        LockBuilder {
            cache,
            key: key.to_owned(),
            ttl: ttl.into_ttl(),
            wait: Ok(DEFAULT_LOCK_WAIT),
            first_backoff: Ok(FIRST_BACKOFF),
        }
    }

    /// Waits at most `limit` (`"2s"`, a [`Duration`], zero: not at all) for
    /// a held lock, then fails with [`Error::Locked`]. An invalid limit is
    /// the request's error when awaited.
    pub fn wait(mut self, limit: impl IntoTtl) -> Self {
        self.wait = limit.into_wait();
        self
    }

    /// The first pause between two attempts (default 2 ms); pauses double up
    /// to 200 ms, with jitter.
    pub fn backoff(mut self, first: impl IntoTtl) -> Self {
        self.first_backoff = first.into_wait().map(|d| d.max(Duration::from_micros(100)));
        self
    }

    /// Fails at once with [`Error::Locked`] if the lock is held.
    pub fn no_wait(mut self) -> Self {
        self.wait = Ok(Duration::ZERO);
        self
    }
}

impl<'c> IntoFuture for LockBuilder<'c> {
    type Output = Result<LockGuard>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<LockGuard>> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let ttl = self.ttl?.duration().ok_or_else(|| Error::Ttl {
                input: "forever".into(),
                reason: "a lock needs a finite ttl, so a crashed holder cannot keep it forever",
            })?;
            let wait = self.wait?;
            let first_backoff = self.first_backoff?;
            let token = random_token();
            let started = tokio::time::Instant::now();
            let mut backoff = first_backoff;
            let mut jitter = Jitter::from_token(&token);
            loop {
                if self.cache.set_lock(&self.key, &token, ttl).await? {
                    return Ok(LockGuard {
                        cache: self.cache.clone(),
                        key: self.key,
                        token,
                        released: false,
                    });
                }
                let waited = started.elapsed();
                if waited >= wait {
                    return Err(Error::Locked { key: self.key });
                }
                // Exponential backoff with jitter, never past the deadline.
                let pause = backoff + jitter.up_to(backoff / 2);
                tokio::time::sleep(pause.min(wait - waited)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF.max(first_backoff));
            }
        })
    }
}

/// A held lock. Release it with [`LockGuard::release`]; if dropped instead,
/// it is released in the background (or expires with its TTL).
#[derive(Debug)]
pub struct LockGuard {
    cache: Cache,
    key: String,
    token: String,
    released: bool,
}

impl LockGuard {
    /// The lock's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The random token the lock is held with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Releases the lock; returns whether it was still ours (it may have
    /// expired and been taken by someone else).
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.cache.unlock(&self.key, &self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (cache, key, token) = (
            self.cache.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = cache.unlock(&key, &token).await {
                        tracing::warn!(key, %error, "could not release a dropped lock; it will expire with its ttl");
                    }
                });
            }
            Err(_) => tracing::warn!(
                key,
                "lock dropped outside a runtime; it will expire with its ttl"
            ),
        }
    }
}
