//! Read scopes: `detect` and `invalidate_further`.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Active;
use crate::backend::Expiry;

/// A key a read was served from, recorded by [`detect`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Detected {
    /// The key, as the cache was asked for it.
    pub key: String,
    /// The name of the backend that served it (`"memory"`, `"redis"`, ...).
    pub backend: &'static str,
    /// Its remaining time to live when it was read.
    pub ttl: Expiry,
}

/// What reads do in the current task.
#[derive(Clone, Default)]
pub(crate) struct Reads {
    pub(crate) detectors: Vec<Arc<Mutex<Vec<Detected>>>>,
    pub(crate) invalidate: bool,
}

impl Reads {
    pub(crate) fn is_plain(&self) -> bool {
        self.detectors.is_empty() && !self.invalidate
    }

    pub(crate) fn record(&self, detected: Detected) {
        if let Some((last, rest)) = self.detectors.split_last() {
            for detector in rest {
                detector.lock().push(detected.clone());
            }
            last.lock().push(detected);
        }
    }
}

tokio::task_local! {
    static READS: Reads;
}

impl Reads {
    pub(super) fn current() -> Reads {
        READS.try_with(Clone::clone).unwrap_or_default()
    }

    pub(super) async fn scope<F: Future>(self, future: F) -> F::Output {
        READS.scope(self, future).await
    }
}

/// The read scopes of the current task, if any scope exists at all.
#[inline]
pub(crate) fn reads() -> Option<Reads> {
    if !super::any_active() {
        return None;
    }
    READS.try_with(Clone::clone).ok().filter(|r| !r.is_plain())
}

async fn with_reads<F: Future>(change: impl FnOnce(&mut Reads), future: F) -> F::Output {
    let mut reads = READS.try_with(Clone::clone).unwrap_or_default();
    change(&mut reads);
    let _active = Active::enter();
    READS.scope(reads, future).await
}

/// Runs `future` and returns, with its output, every key a read inside it
/// (`get`, `get_many`, `get_raw`, and the reads of cached functions and
/// strategies) was served from: the key, the backend and its remaining TTL,
/// in the order of the reads. Misses are not listed. Scopes nest: an outer
/// scope also sees what an inner one detects.
///
/// Reads inside a `detect` scope skip the memory hit path and ask for the
/// TTL of every hit (one more command), so keep it for debugging, tests and
/// response headers rather than every call.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::{scope::detect, Cache, Expiry};
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// cache.set("user:1", &"Ann").await?;
/// let (name, detected) = detect(cache.get::<String>("user:1")).await;
/// assert_eq!(name?.as_deref(), Some("Ann"));
/// assert_eq!(detected[0].key, "user:1");
/// assert_eq!(detected[0].ttl, Expiry::NoExpiry);
/// # Ok(()) }
/// ```
pub async fn detect<F: Future>(future: F) -> (F::Output, Vec<Detected>) {
    let detector = Arc::new(Mutex::new(Vec::new()));
    let output = with_reads(|r| r.detectors.push(detector.clone()), future).await;
    let detected = std::mem::take(&mut *detector.lock());
    (output, detected)
}

/// Runs `future` with every read inside it deleting the keys it reads and
/// answering a miss, so cached functions called inside recompute and store
/// fresh values (for example after a write the caller knows about).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
/// use cashews_core::{scope::invalidate_further, Cache};
/// let cache = Cache::new();
/// cache.setup("mem://")?;
/// cache.set("k", &1).await?;
/// assert_eq!(invalidate_further(cache.get::<i32>("k")).await?, None);
/// assert!(!cache.exists("k").await?, "the read deleted it");
/// # Ok(()) }
/// ```
pub async fn invalidate_further<F: Future>(future: F) -> F::Output {
    with_reads(|r| r.invalidate = true, future).await
}
