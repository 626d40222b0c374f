//! `uncached(future)`: run cached calls without the cache.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

tokio::task_local! {
    static BYPASS: bool;
}

/// How many `uncached` scopes exist: while none does, cached calls skip the
/// task-local lookup.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Runs `future` with its outermost cached call neither reading nor writing
/// the cache: the function body runs, and cached calls *it* makes use the
/// cache as usual. This is the `uncached` helper of every cached function.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::strategy::{uncached, Memo, Whole};
/// use cashews_core::{Cache, Ttl};
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// let ttl = Ttl::parse("1h")?;
/// let cached = || Memo::new(&cache, "k".into(), ttl).run::<Whole>(async { 1u8 });
/// assert_eq!(cached().await, 1);
/// let fresh = uncached(Memo::new(&cache, "k".into(), ttl).run::<Whole>(async { 2u8 })).await;
/// assert_eq!(fresh, 2, "bypassed");
/// assert_eq!(cached().await, 1, "and not written");
/// # Ok(()) }
/// ```
pub async fn uncached<F: Future>(future: F) -> F::Output {
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let _active = Active;
    BYPASS.scope(true, future).await
}

struct Active;

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the current cached call must bypass the cache.
#[doc(hidden)]
#[inline]
pub fn bypassed() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0 && BYPASS.try_with(|b| *b).unwrap_or(false)
}

/// Runs a bypassed call's body with the cache back on for the calls it makes.
#[doc(hidden)]
pub async fn bypass_body<F: Future>(body: F) -> F::Output {
    BYPASS.scope(false, body).await
}
