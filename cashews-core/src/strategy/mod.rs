//! Caching strategies: what the `#[cache]` family of attribute macros runs,
//! usable without macros too.
//!
//! A strategy stores part of a function's output. Which part is an
//! [`Adapter`]: [`Whole`] stores the output itself (`T`, `Option<T>`), and
//! [`OkPart`] stores the `Ok` value of a `Result` — an `Err` is returned but
//! never stored, and the error type needs no serde.

mod blocking;
mod bloom;
mod circuit_breaker;
mod early;
mod failover;
mod get_or_set;
mod hit;
mod invalidate;
mod iterator;
mod layer;
mod local;
mod locked;
mod none;
mod rate_limit;
mod refresh;
mod retry;
pub(crate) mod simple;
mod slot;
mod soft;
mod stats;

pub use blocking::{drive, SyncBody};
pub use bloom::{BloomFilter, DualBloom};
pub use circuit_breaker::{CircuitBreaker, CircuitOpen};
pub use early::Early;
pub use failover::Failover;
pub use get_or_set::{GetOrSetBuilder, TryGetOrSet};
pub use hit::Hit;
pub use invalidate::invalidate;
pub use iterator::CachedStream;
pub use layer::{expire_at_ttl, invalid_ttl, layer_ttl, result_ttl, Either};
pub use local::{local_memo, local_value};
pub use locked::Locked;
pub use rate_limit::{Limit, OnBackendError, RateLimit, RateLimited, SliceRateLimit};
pub use refresh::Refresh;
pub use retry::{Retry, DEFAULT_MAX_BACKOFF};
pub use soft::Soft;

pub use crate::scope::{bypass_body, bypassed, uncached};
pub use none::is_none;
pub use simple::{Condition, Memo, ShareClonedFailures, ShareNoFailures, ShareProbe};
pub use stats::{bounded_store, cache_info, clear_all, function_stats, CacheInfo, FunctionStats};

use std::time::Duration;

use crate::cache::Cache;
use crate::ttl::IntoTtl;

/// The hit path of a cached call — the stored output if the backend holds
/// it in process (a memory hit), without building the call's future
/// machinery; `None` means "take the full path" (a miss, a remote backend,
/// a middleware, a value to discard) — picked by the stored type, for the
/// macros: written
/// `(&HitProbe::<A, R>::new()).hit(cache, key)` with [`TypedHit`] and
/// [`DecodedHit`] in scope, a stored type that is `Clone + Send + Sync +
/// 'static` takes the backend's typed tier (a clone of the value decoded
/// from the same bytes before), any other type decodes.
/// Method resolution tries `TypedHit` (implemented on the probe itself)
/// before `DecodedHit` (on a reference to it), and skips an impl whose
/// bounds do not hold.
#[doc(hidden)]
#[derive(Debug)]
pub struct HitProbe<A, R>(std::marker::PhantomData<fn() -> (A, R)>);

impl<A, R> HitProbe<A, R> {
    #[doc(hidden)]
    #[inline]
    pub fn new() -> Self {
        HitProbe(std::marker::PhantomData)
    }
}

impl<A, R> Default for HitProbe<A, R> {
    fn default() -> Self {
        Self::new()
    }
}

/// The typed-tier hit of [`HitProbe`].
#[doc(hidden)]
pub trait TypedHit<R> {
    /// The stored output, if the backend answers in process.
    fn hit(&self, cache: &Cache, key: &str) -> Option<R>;
}

impl<A: Adapter<R>, R> TypedHit<R> for HitProbe<A, R>
where
    A::Stored: Clone + Sync + 'static,
{
    #[inline]
    fn hit(&self, cache: &Cache, key: &str) -> Option<R> {
        cache
            .get_local_cloned::<A::Stored>(key)
            .into_value()
            .map(A::restore)
    }
}

/// The decoding hit of [`HitProbe`]. Its impl holds for any probe, the
/// bound sits on the method: a stored type that is not serde is then
/// reported as exactly that, not as a missing method.
#[doc(hidden)]
pub trait DecodedHit<A, R> {
    /// The stored output, if the backend answers in process.
    fn hit(&self, cache: &Cache, key: &str) -> Option<R>
    where
        A: Adapter<R>;
}

impl<A, R> DecodedHit<A, R> for &HitProbe<A, R> {
    #[inline]
    fn hit(&self, cache: &Cache, key: &str) -> Option<R>
    where
        A: Adapter<R>,
    {
        cache
            .get_local::<A::Stored>(key)
            .into_value()
            .map(A::restore)
    }
}

/// A strategy's duration setting from any TTL form: the duration, or zero
/// and the reason recorded in `invalid` (the first one wins). A strategy
/// with an invalid setting treats every call as it treats a failing
/// backend, and logs why.
pub(crate) fn setting(value: impl IntoTtl, name: &str, invalid: &mut Option<String>) -> Duration {
    match crate::ttl::finite(value, name) {
        Ok(duration) => duration,
        Err(error) => {
            invalid.get_or_insert_with(|| format!("{name}: {error}"));
            Duration::ZERO
        }
    }
}

/// Logs a strategy's invalid setting for the call on `key`.
pub(crate) fn invalid_setting(what: &str, key: &str, why: &str) -> crate::Error {
    tracing::warn!(key, why, "{what} has an invalid setting");
    crate::Error::InvalidArgument(format!("{what} for {key:?}: {why}"))
}

/// A duration from any TTL form (`time_condition`); invalid forms log and
/// read as zero, so every call is stored.
#[doc(hidden)]
pub fn duration_of(value: impl IntoTtl) -> Duration {
    match value.into_ttl() {
        Ok(ttl) => ttl.duration().unwrap_or(Duration::MAX),
        Err(error) => {
            tracing::warn!(%error, "invalid time_condition; ignored");
            Duration::ZERO
        }
    }
}

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Which part of a function's output `R` is stored.
pub trait Adapter<R> {
    /// The stored type.
    type Stored: Serialize + DeserializeOwned + Send;
    /// The part to store, or `None` if this output is not stored.
    fn stored(output: &R) -> Option<&Self::Stored>;
    /// Rebuilds an output from a stored value.
    fn restore(stored: Self::Stored) -> R;
}

/// Stores the whole output.
#[derive(Debug, Clone, Copy)]
pub struct Whole;

impl<R: Serialize + DeserializeOwned + Send> Adapter<R> for Whole {
    type Stored = R;
    fn stored(output: &R) -> Option<&R> {
        Some(output)
    }
    fn restore(stored: R) -> R {
        stored
    }
}

/// Stores the `Ok` value of a `Result`; errors are not stored.
#[derive(Debug, Clone, Copy)]
pub struct OkPart;

impl<T: Serialize + DeserializeOwned + Send, E> Adapter<Result<T, E>> for OkPart {
    type Stored = T;
    fn stored(output: &Result<T, E>) -> Option<&T> {
        output.as_ref().ok()
    }
    fn restore(stored: T) -> Result<T, E> {
        Ok(stored)
    }
}
