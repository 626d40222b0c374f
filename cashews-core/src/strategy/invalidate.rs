//! `invalidate`: after a successful call, delete the keys matching a pattern.

use std::future::Future;

use crate::cache::Cache;

/// Runs `inner`; if `succeeded` says so, deletes every key matching the glob
/// `pattern` (a failure to delete is logged). Values rendered into a pattern
/// by `#[cache::invalidate]` are escaped, so an argument cannot widen it.
pub async fn invalidate<R>(
    cache: &Cache,
    pattern: &str,
    inner: impl Future<Output = R>,
    succeeded: fn(&R) -> bool,
) -> R {
    let output = inner.await;
    if succeeded(&output) {
        if let Err(error) = cache.delete_match(pattern).await {
            tracing::warn!(pattern, %error, "cannot invalidate");
        }
    }
    output
}
