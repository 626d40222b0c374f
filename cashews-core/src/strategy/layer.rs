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

/// Logs a TTL computed at call time that is invalid.
#[doc(hidden)]
pub fn invalid_ttl(key: &str, error: &Error) {
    tracing::warn!(key, %error, "invalid ttl; this call runs without the cache");
}
