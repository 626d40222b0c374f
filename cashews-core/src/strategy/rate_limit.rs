//! `rate_limit` (fixed window) and `slice_rate_limit` (sliding window).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::cache::Cache;
use crate::ttl::IntoTtl;

/// A rate limit: counts a call and says whether it may run.
pub trait Limit {
    /// Counts this call: `Err` if it is over the limit.
    fn check(&self) -> impl Future<Output = Result<(), RateLimited>> + Send;

    /// Runs `inner` if the call is within the limit, else `reject`.
    fn run<R>(
        self,
        inner: impl Future<Output = R>,
        reject: impl FnOnce(RateLimited) -> R,
    ) -> impl Future<Output = R>
    where
        Self: Sized,
    {
        async move {
            match self.check().await {
                Ok(()) => inner.await,
                Err(limited) => reject(limited),
            }
        }
    }
}

/// What a rate limit or circuit breaker does with a call when its backend
/// fails (it cannot count the call, so it cannot know the answer).
///
/// The default is [`OnBackendError::Allow`]: a cache that is down must not
/// take the service down with it, the same rule as for every other cached
/// call ("a failing cache never fails a call"). Choose
/// [`OnBackendError::Deny`] where letting calls through unlimited is worse
/// than refusing them: login attempts, a paid upstream API, a dependency a
/// circuit breaker must protect. Either way the decision is logged at warn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnBackendError {
    /// Run the call as if it were within the limit (or the circuit closed).
    #[default]
    Allow,
    /// Reject the call as over the limit (or the circuit open).
    Deny,
}

impl OnBackendError {
    /// Logs the decision for `key` after `error`; whether the call may run.
    pub(crate) fn allows(self, what: &str, key: &str, error: &crate::Error) -> bool {
        match self {
            OnBackendError::Allow => {
                tracing::warn!(key, %error, "{what} unavailable; call allowed (on_backend_error = allow)");
                true
            }
            OnBackendError::Deny => {
                tracing::warn!(key, %error, "{what} unavailable; call denied (on_backend_error = deny)");
                false
            }
        }
    }
}

/// A call rejected by a rate limit; convert it into the function's error
/// with `From<RateLimited>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded for {key:?}")]
pub struct RateLimited {
    /// The limited key.
    pub key: String,
}

/// At most `limit` calls per fixed window of `period`, counted at
/// `rate_limit:{key}`. The first call over the limit extends the window to
/// `ban` (default: `period`), so a client that exceeds it waits that long.
/// Every call counts, rejected ones included. A call that cannot be counted
/// (the backend fails) is decided by [`OnBackendError`].
pub struct RateLimit<'c> {
    cache: &'c Cache,
    key: String,
    limit: u64,
    period: Duration,
    ban: Duration,
    /// Why a setting is invalid: every call is then decided by
    /// `on_backend_error`.
    invalid: Option<String>,
    on_backend_error: OnBackendError,
}

impl fmt::Debug for RateLimit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("key", &self.key)
            .field("limit", &self.limit)
            .field("period", &self.period)
            .field("ban", &self.ban)
            .field("on_backend_error", &self.on_backend_error)
            .finish()
    }
}

impl<'c> RateLimit<'c> {
    /// `limit` calls per `period` (any TTL form) for `key`. An invalid
    /// period or ban decides every call as a failing backend does
    /// ([`OnBackendError`]).
    pub fn new(cache: &'c Cache, key: &str, limit: u64, period: impl IntoTtl) -> Self {
        let mut invalid = None;
        let period = super::setting(period, "period", &mut invalid);
        RateLimit {
            cache,
            key: format!("rate_limit:{key}"),
            limit,
            period,
            ban: period,
            invalid,
            on_backend_error: OnBackendError::default(),
        }
    }

    /// How long a client over the limit is rejected.
    pub fn ban(mut self, ban: impl IntoTtl) -> Self {
        self.ban = super::setting(ban, "ban", &mut self.invalid);
        self
    }

    /// What a call that cannot be counted gets (default: allowed).
    pub fn on_backend_error(mut self, on_backend_error: OnBackendError) -> Self {
        self.on_backend_error = on_backend_error;
        self
    }
}

impl RateLimit<'_> {
    /// A call that cannot be counted: allowed or rejected by policy.
    fn decide(&self, error: &crate::Error) -> Result<(), RateLimited> {
        if self.on_backend_error.allows("rate limit", &self.key, error) {
            Ok(())
        } else {
            Err(RateLimited {
                key: self.key.clone(),
            })
        }
    }
}

impl Limit for RateLimit<'_> {
    /// Counts this call: `Err` if it is over the limit. A failing backend
    /// decides by [`OnBackendError`].
    async fn check(&self) -> Result<(), RateLimited> {
        if let Some(why) = &self.invalid {
            return self.decide(&super::invalid_setting("rate limit", &self.key, why));
        }
        let count = match self.cache.incr(&self.key).expire(self.period).await {
            Ok(count) => count,
            Err(error)
                if self
                    .on_backend_error
                    .allows("rate limit", &self.key, &error) =>
            {
                return Ok(());
            }
            Err(_) => {
                return Err(RateLimited {
                    key: self.key.clone(),
                })
            }
        };
        if count <= self.limit as i64 {
            return Ok(());
        }
        if count == self.limit as i64 + 1 {
            if let Err(error) = self.cache.expire(&self.key, self.ban).await {
                tracing::warn!(key = self.key, %error, "cannot extend the ban");
            }
        }
        Err(RateLimited {
            key: self.key.clone(),
        })
    }
}

/// At most `limit` calls in any window of `period` (a sliding log at
/// `srl:{key}`; bounds are the same on every backend). The first call
/// rejected in a window is recorded too, so a client hitting the limit waits
/// until that call leaves the window.
pub struct SliceRateLimit<'c> {
    cache: &'c Cache,
    key: String,
    limit: u64,
    period: Duration,
    invalid: Option<String>,
    on_backend_error: OnBackendError,
}

impl fmt::Debug for SliceRateLimit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SliceRateLimit")
            .field("key", &self.key)
            .field("limit", &self.limit)
            .field("period", &self.period)
            .field("on_backend_error", &self.on_backend_error)
            .finish()
    }
}

impl<'c> SliceRateLimit<'c> {
    /// `limit` calls in any `period` (any TTL form) for `key`; an invalid
    /// period decides every call as a failing backend does.
    pub fn new(cache: &'c Cache, key: &str, limit: u64, period: impl IntoTtl) -> Self {
        let mut invalid = None;
        let period = super::setting(period, "period", &mut invalid);
        SliceRateLimit {
            cache,
            key: format!("srl:{key}"),
            limit,
            period,
            invalid,
            on_backend_error: OnBackendError::default(),
        }
    }

    /// What a call that cannot be counted gets (default: allowed).
    pub fn on_backend_error(mut self, on_backend_error: OnBackendError) -> Self {
        self.on_backend_error = on_backend_error;
        self
    }
}

impl Limit for SliceRateLimit<'_> {
    /// Counts this call: `Err` if `limit` calls happened within `period`.
    async fn check(&self) -> Result<(), RateLimited> {
        if let Some(why) = &self.invalid {
            let error = super::invalid_setting("rate limit", &self.key, why);
            return if self
                .on_backend_error
                .allows("rate limit", &self.key, &error)
            {
                Ok(())
            } else {
                Err(RateLimited {
                    key: self.key.clone(),
                })
            };
        }
        let now = self.cache.clock().unix_ms();
        let period = self.period.as_millis() as u64;
        let start = now.saturating_sub(period.saturating_sub(1));
        match self
            .cache
            .slice_incr(&self.key, start, now, self.limit + 1, self.period)
            .await
        {
            Ok(count) if count > self.limit => Err(RateLimited {
                key: self.key.clone(),
            }),
            Ok(_) => Ok(()),
            Err(error)
                if self
                    .on_backend_error
                    .allows("rate limit", &self.key, &error) =>
            {
                Ok(())
            }
            Err(_) => Err(RateLimited {
                key: self.key.clone(),
            }),
        }
    }
}
