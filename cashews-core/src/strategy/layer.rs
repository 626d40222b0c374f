//! A strategy layer that may be skipped, without boxing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::ttl::{IntoTtl, Ttl};

/// Either a strategy's future, or the inner future it would have wrapped
/// (when the layer is skipped, e.g. its TTL computed at call time is invalid).
#[derive(Debug)]
pub enum Layer<A, B> {
    /// The strategy runs.
    Run(A),
    /// The inner future runs alone.
    Skip(B),
}

impl<A, B> Future for Layer<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    type Output = A::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<A::Output> {
        // SAFETY: structural pinning of the variant's field. `Layer` is never
        // moved out of, nor switched to another variant, after being pinned;
        // it has no `Drop` impl, and it is `Unpin` only when both fields are.
        unsafe {
            match self.get_unchecked_mut() {
                Layer::Run(a) => Pin::new_unchecked(a).poll(cx),
                Layer::Skip(b) => Pin::new_unchecked(b).poll(cx),
            }
        }
    }
}

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
