//! `invalidate`: after a successful call, delete the keys matching a pattern.

use std::future::Future;

use crate::cache::Cache;

/// Runs `inner`; if `succeeded` says so, deletes every key matching the glob
/// `pattern` (a failure to delete is logged; a pattern without wildcards
/// deletes that one key). Values rendered into a pattern
/// by `#[cache::invalidate]` are escaped, so an argument cannot widen it.
pub async fn invalidate<R>(
    cache: &Cache,
    pattern: &str,
    inner: impl Future<Output = R>,
    succeeded: fn(&R) -> bool,
) -> R {
    let output = inner.await;
    if succeeded(&output) {
        // A pattern without wildcards names one key: a plain delete, which
        // every backend runs (memcached cannot match patterns).
        let deleted = if cashews_backend::glob::is_pattern(pattern) {
            cache.delete_match(pattern).await.map(drop)
        } else {
            cache.delete(pattern).await.map(drop)
        };
        if let Err(error) = deleted {
            tracing::warn!(pattern, %error, "cannot invalidate");
        }
    }
    output
}
