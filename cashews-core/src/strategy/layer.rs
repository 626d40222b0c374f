//! TTLs of strategy layers computed at call time. A layer whose TTL is
//! invalid is skipped without boxing: generated code picks
//! `futures_util::future::Either::Left(strategy)` or `Right(inner)`.

use crate::error::Error;
use crate::ttl::{IntoTtl, Ttl};

#[doc(hidden)]
pub use futures_util::future::Either;

/// A TTL computed at call time for a layer: `None` (logged) if invalid, so
/// the layer is skipped and the function still runs.
#[doc(hidden)]
pub fn layer_ttl(value: impl IntoTtl, key: &str) -> Option<Ttl> {
    match value.into_ttl() {
        Ok(ttl) => Some(ttl),
        Err(error) => {
            invalid_ttl(key, &error);
            None
        }
    }
}

/// The TTL a function chose for a result (`#[cache(ttl = ttl_for)]`):
/// `None` — not stored — when it said so, or when its answer is not a valid
/// TTL (logged against `function`).
#[doc(hidden)]
pub fn result_ttl(value: impl crate::ResultTtl, function: &str) -> Option<Ttl> {
    match value.result_ttl() {
        Ok(ttl) => ttl,
        Err(error) => {
            tracing::warn!(function, %error, "invalid ttl for a result; not cached");
            None
        }
    }
}

/// The TTL left until `at` on `cache`'s clock (`#[cache(expire_at = ...)]`):
/// `None` — this call runs without the cache — when that moment has passed
/// or `at` is not an expiry (logged against `key`).
#[doc(hidden)]
pub fn expire_at_ttl(at: impl crate::IntoExpireAt, cache: &crate::Cache, key: &str) -> Option<Ttl> {
    match crate::ttl::ttl_until(at, cache.clock().unix_ms()) {
        Ok(Some(ttl)) => Some(ttl),
        Ok(None) => {
            tracing::debug!(
                key,
                "expire_at has passed; this call runs without the cache"
            );
            None
        }
        Err(error) => {
            invalid_ttl(key, &error);
            None
        }
    }
}

/// Logs a TTL computed at call time that is invalid.
#[doc(hidden)]
pub fn invalid_ttl(key: &str, error: &Error) {
    tracing::warn!(key, %error, "invalid ttl; this call runs without the cache");
}
