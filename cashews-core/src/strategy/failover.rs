//! `failover`: always call; store successes; on a failure, answer with the
//! last stored success if there is one.

use std::future::Future;

use super::slot::Slot;
use super::Adapter;
use crate::cache::Cache;
use crate::ttl::Ttl;

/// The failover strategy, stored at `fail:{key}`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::strategy::{Failover, OkPart};
/// # let cache = cashews_core::Cache::new(); cache.setup("mem://")?;
/// let ttl = cashews_core::Ttl::parse("1h")?;
/// let fresh: Result<u32, &str> = Failover::new(&cache, "rate", ttl).run::<OkPart>(async { Ok(7) }).await;
/// let down: Result<u32, &str> = Failover::new(&cache, "rate", ttl).run::<OkPart>(async { Err("down") }).await;
/// assert_eq!((fresh, down), (Ok(7), Ok(7)));
/// # Ok(()) }
/// ```
pub struct Failover<'c, R> {
    slot: Slot<'c>,
    ttl: Ttl,
    on: Option<fn(&R) -> bool>,
}

impl<R> std::fmt::Debug for Failover<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failover")
            .field("key", &self.slot.key)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<'c, R> Failover<'c, R> {
    /// Fails over for `key`, keeping the last success for `ttl`.
    pub fn new(cache: &'c Cache, key: &str, ttl: Ttl) -> Self {
        Failover {
            slot: Slot::new(cache, format!("fail:{key}")),
            ttl,
            on: None,
        }
    }

    /// Fails over only for the failures `on` accepts (default: every one).
    pub fn on(mut self, on: fn(&R) -> bool) -> Self {
        self.on = Some(on);
        self
    }

    /// Calls `inner`; see the type docs.
    pub async fn run<A: Adapter<R>>(self, inner: impl Future<Output = R>) -> R {
        let output = inner.await;
        match A::stored(&output) {
            Some(value) => {
                self.slot.write(value, self.ttl).await;
                output
            }
            None if self.on.is_none_or(|on| on(&output)) => {
                match self.slot.read::<A::Stored>().await {
                    Some(last) => A::restore(last),
                    None => output,
                }
            }
            None => output,
        }
    }
}
