//! `#[cache(local)]`: results kept as themselves in process — a client, a
//! pool, anything `Clone + Send + Sync` that is not serde — and cloned on a
//! hit; never encoded. Only `mem://` keeps them: on another backend the
//! call runs uncached and the error is reported once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::simple::{single_flight, Lead};
use super::{bypass_body, bypassed, FunctionStats};
use crate::cache::flight::Share;
use crate::cache::Cache;
use crate::ttl::Ttl;

/// Runs a cached call whose result is kept as itself: a clone of the kept
/// one, or `body`'s (kept when `keep` says so). Concurrent calls for one
/// key run `body` once; the others get clones of its result.
pub async fn local_memo<R, Fut>(
    cache: &Cache,
    key: String,
    ttl: Ttl,
    keep: fn(&R) -> bool,
    stats: &'static FunctionStats,
    body: Fut,
) -> R
where
    R: Clone + Send + Sync + 'static,
    Fut: Future<Output = R>,
{
    if bypassed() {
        return bypass_body(body).await;
    }
    match cache.get_value::<R>(&key) {
        Ok(Some(hit)) => {
            stats.hit();
            return hit;
        }
        Ok(None) => {}
        Err(error) => {
            static REPORTED: AtomicBool = AtomicBool::new(false);
            if !REPORTED.swap(true, Ordering::Relaxed) {
                tracing::error!(function = stats.name(), key, %error, "local results need an in-process backend; calls run uncached");
            }
            stats.miss();
            return body.await;
        }
    }
    let read = || async { cache.get_value::<R>(&key).ok().flatten() };
    let compute = |_: Lead| async {
        stats.miss();
        let output = body.await;
        if keep(&output) {
            if let Err(error) = cache.set_value(&key, output.clone(), ttl) {
                tracing::warn!(key, %error, "cannot keep the result");
            }
        }
        let shared: crate::cache::flight::Erased = Arc::new(output.clone());
        (output, Share::Nothing(Some(shared)))
    };
    single_flight(
        cache,
        &key,
        read,
        compute,
        |_| None,
        |erased| erased.downcast_ref::<R>().cloned(),
    )
    .await
}

/// The hit path of a `local` result: a clone of the kept one, if any.
#[doc(hidden)]
#[inline]
pub fn local_value<R: Clone + 'static>(cache: &Cache, key: &str) -> Option<R> {
    cache.get_value::<R>(key).ok().flatten()
}
