//! Background refreshes for `early` and `hit`.

use std::time::Duration;

use super::slot::Slot;
use super::Adapter;
use crate::backend::BoxFuture;
use crate::cache::Cache;
use crate::ttl::Ttl;

/// Makes a `'static` future recomputing a call, for a refresh that outlives
/// the caller. The `#[cache::early]` / `#[cache::hit]` macros build one from
/// owned copies of the arguments.
pub type Refresh<R> = Box<dyn FnOnce() -> BoxFuture<'static, R> + Send>;

/// What a background refresh writes.
pub(crate) struct Target {
    pub key: String,
    pub ttl: Ttl,
    /// Stores `(now + fresh_for, value)` instead of the value (`early`).
    pub fresh_for: Option<Duration>,
    /// Deleted once the refresh is done (a lock, a counter).
    pub cleanup: String,
}

/// Runs `refresh` in a task and stores its output's `A` part at `target`.
/// Without a tokio runtime, nothing happens (the value refreshes when it
/// expires).
pub(crate) fn spawn<R, A>(cache: &Cache, target: Target, refresh: Refresh<R>)
where
    R: Send + 'static,
    A: Adapter<R> + 'static,
    A::Stored: 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(key = target.key, "no tokio runtime to refresh in");
        return;
    };
    let cache = cache.clone();
    runtime.spawn(async move {
        let output = refresh().await;
        // Encoded here, so no borrow of the output lives across an await.
        let encoded = match (A::stored(&output), target.fresh_for) {
            (Some(value), None) => Some(cache.encode(&target.key, value)),
            (Some(value), Some(fresh_for)) => {
                let until = cache.clock().unix_ms() + fresh_for.as_millis() as u64;
                Some(cache.encode(&target.key, &(until, value)))
            }
            (None, _) => None,
        };
        match encoded {
            Some(Ok(bytes)) => {
                Slot::new(&cache, target.key)
                    .write_bytes(bytes, target.ttl.duration())
                    .await;
            }
            Some(Err(error)) => {
                tracing::warn!(key = target.key, %error, "cannot encode a refreshed value")
            }
            None => {}
        }
        if let Err(error) = cache.delete(&target.cleanup).await {
            tracing::warn!(key = target.cleanup, %error, "cannot clean up after a refresh");
        }
    });
}
