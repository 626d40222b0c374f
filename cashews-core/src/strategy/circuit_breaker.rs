//! `circuit_breaker`: stop calling a failing dependency for a while.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::OnBackendError;
use crate::cache::Cache;
use crate::ttl::IntoTtl;

/// A call rejected because the circuit is open; convert it into the
/// function's error with `From<CircuitOpen>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit {key:?} is open")]
pub struct CircuitOpen {
    /// The circuit's key.
    pub key: String,
}

/// A circuit breaker at `circuit_breaker:{key}`.
///
/// - Closed: calls run; calls and failures are counted over a sliding
///   `period`. When at least `min_calls` ran and failures reach `errors_rate`
///   percent, the circuit opens.
/// - Open for `ttl`: calls are rejected without running.
/// - Then, with a `half_open_ttl`, half-open for that long: up to
///   `half_open_calls` trial calls run (the others are rejected); a success
///   closes the circuit, a failure opens it again. Deterministic — no coin flip.
///
/// A call whose state cannot be read or counted (the backend fails) is
/// decided by [`OnBackendError`]: run (the default) or rejected as if open.
pub struct CircuitBreaker<'c> {
    cache: &'c Cache,
    key: String,
    errors_rate: f64,
    period: Duration,
    ttl: Duration,
    half_open_ttl: Option<Duration>,
    min_calls: u64,
    half_open_calls: u64,
    invalid: Option<String>,
    on_backend_error: OnBackendError,
}

impl fmt::Debug for CircuitBreaker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("key", &self.key)
            .field("errors_rate", &self.errors_rate)
            .field("period", &self.period)
            .field("ttl", &self.ttl)
            .field("half_open_ttl", &self.half_open_ttl)
            .field("min_calls", &self.min_calls)
            .field("on_backend_error", &self.on_backend_error)
            .finish_non_exhaustive()
    }
}

impl<'c> CircuitBreaker<'c> {
    /// Opens when `errors_rate` percent of the calls in `period` fail; stays
    /// open for `ttl`.
    pub fn new(
        cache: &'c Cache,
        key: &str,
        errors_rate: f64,
        period: impl IntoTtl,
        ttl: impl IntoTtl,
    ) -> Self {
        let mut invalid = None;
        let period = super::setting(period, "period", &mut invalid);
        let ttl = super::setting(ttl, "ttl", &mut invalid);
        CircuitBreaker {
            cache,
            key: format!("circuit_breaker:{key}"),
            errors_rate,
            period,
            ttl,
            invalid,
            half_open_ttl: None,
            min_calls: 1,
            half_open_calls: 1,
            on_backend_error: OnBackendError::default(),
        }
    }

    /// What a call gets when the circuit's state cannot be read or counted
    /// (default: it runs).
    pub fn on_backend_error(mut self, on_backend_error: OnBackendError) -> Self {
        self.on_backend_error = on_backend_error;
        self
    }

    /// After `ttl`, lets trial calls through for `half_open_ttl`.
    pub fn half_open_ttl(mut self, half_open_ttl: impl IntoTtl) -> Self {
        self.half_open_ttl = Some(super::setting(
            half_open_ttl,
            "half_open_ttl",
            &mut self.invalid,
        ));
        self
    }

    /// How many trial calls run while half-open (default 1).
    pub fn half_open_calls(mut self, calls: u64) -> Self {
        self.half_open_calls = calls.max(1);
        self
    }

    /// The fewest calls in `period` before the circuit may open (default 1).
    pub fn min_calls(mut self, calls: u64) -> Self {
        self.min_calls = calls.max(1);
        self
    }

    fn part(&self, name: &str) -> String {
        format!("{}:{name}", self.key)
    }

    /// Runs `inner` unless the circuit is open; `failed` says which outputs
    /// count as failures; `reject` answers a rejected call.
    pub async fn run<R>(
        self,
        inner: impl Future<Output = R>,
        failed: fn(&R) -> bool,
        reject: impl FnOnce(CircuitOpen) -> R,
    ) -> R {
        let rejected = || CircuitOpen {
            key: self.key.clone(),
        };
        let c = self.cache;
        // Whether a call the backend cannot account for may run.
        let unknown = |error: &crate::Error| {
            self.on_backend_error
                .allows("circuit breaker", &self.key, error)
        };
        if let Some(why) = &self.invalid {
            let error = super::invalid_setting("circuit breaker", &self.key, why);
            return if unknown(&error) {
                inner.await
            } else {
                reject(rejected())
            };
        }
        match c.is_locked(&self.part("open")).await {
            Ok(true) => return reject(rejected()),
            Ok(false) => {}
            Err(error) if unknown(&error) => return inner.await,
            Err(_) => return reject(rejected()),
        }
        if c.exists(&self.part("half_open")).await.unwrap_or(false) {
            let trial = match c.incr(&self.part("trials")).await {
                Ok(trial) => trial,
                Err(error) if unknown(&error) => return inner.await,
                Err(_) => return reject(rejected()),
            };
            if trial > self.half_open_calls as i64 {
                return reject(rejected());
            }
            let output = inner.await;
            if failed(&output) {
                self.open().await;
            } else {
                self.close().await;
            }
            return output;
        }
        let now = c.clock().unix_ms();
        let start = now.saturating_sub((self.period.as_millis() as u64).saturating_sub(1));
        let total = match c
            .slice_incr(&self.part("total"), start, now, u64::MAX, self.period)
            .await
        {
            Ok(total) => total,
            Err(error) if unknown(&error) => return inner.await,
            Err(_) => return reject(rejected()),
        };
        let output = inner.await;
        if failed(&output) {
            let fails = c
                .slice_incr(&self.part("fails"), start, now, u64::MAX, self.period)
                .await
                .unwrap_or(0);
            if total >= self.min_calls && fails as f64 * 100.0 >= self.errors_rate * total as f64 {
                self.open().await;
            }
        }
        output
    }

    async fn open(&self) {
        let c = self.cache;
        let _ = c
            .delete_many(&[
                &self.part("total"),
                &self.part("fails"),
                &self.part("trials"),
            ])
            .await;
        if let Err(error) = c.set(&self.part("open"), &1u8).expire(self.ttl).await {
            tracing::warn!(key = self.key, %error, "cannot open the circuit");
        }
        if let Some(half_open) = self.half_open_ttl {
            let _ = c
                .set(&self.part("half_open"), &1u8)
                .expire(self.ttl + half_open)
                .await;
        }
    }

    async fn close(&self) {
        let keys = [
            self.part("half_open"),
            self.part("trials"),
            self.part("total"),
            self.part("fails"),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let _ = self.cache.delete_many(&keys).await;
    }
}
