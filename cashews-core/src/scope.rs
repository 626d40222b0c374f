//! Task-local scopes: [`detect`] which keys a piece of code was served from,
//! [`invalidate_further`] to make its reads miss, and [`Scopes`] to carry the
//! enclosing scopes into a spawned task.
//!
//! # Across `.await` and `tokio::spawn`
//! A scope is a tokio task-local: it covers everything the scoped future
//! does, across every `.await` inside it, including the calls it awaits in
//! other functions. It does not cover tasks spawned inside it
//! (`tokio::spawn` starts a task with no scope), nor code running on other
//! tasks meanwhile: two requests served concurrently never see each other's
//! scopes. To carry the scopes into a spawned task, capture them with
//! [`Scopes::current`] and run the task's future in them:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
//! use cashews_core::{scope, Cache};
//! let cache = Cache::new();
//! cache.setup("mem://")?;
//! cache.set("k", &1).await?;
//! let (_, detected) = scope::detect(async {
//!     let scopes = scope::Scopes::current();
//!     let cache = cache.clone();
//!     tokio::spawn(scopes.run(async move { cache.get::<i32>("k").await }))
//!         .await
//!         .unwrap()
//! })
//! .await;
//! assert_eq!(detected[0].key, "k");
//! # Ok(()) }
//! ```
//!
//! The same holds for [`Cache::disabling`](crate::Cache::disabling) and
//! [`key_context`], which [`Scopes`] also carries.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::backend::Expiry;
pub use crate::key::key_context;

/// How many scopes exist in the process: while none does, commands skip the
/// task-local lookups (the hit path pays one relaxed load).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts a scope while it lives.
pub(crate) struct Active;

impl Active {
    pub(crate) fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether any scope exists (anywhere in the process).
#[inline]
pub(crate) fn any_active() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
}

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

/// The read scopes of the current task, if any scope exists at all.
#[inline]
pub(crate) fn reads() -> Option<Reads> {
    if !any_active() {
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

/// The scopes of the current task (read scopes, disabled commands and key
/// context), captured to run another future — usually a spawned task's —
/// inside them. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Scopes {
    reads: Reads,
    disabled: crate::cache::DisabledScopes,
    context: crate::key::ContextValues,
}

impl std::fmt::Debug for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scopes")
            .field("detecting", &!self.reads.detectors.is_empty())
            .field("invalidating", &self.reads.invalidate)
            .finish_non_exhaustive()
    }
}

impl Scopes {
    /// The scopes the current task is in.
    pub fn current() -> Scopes {
        Scopes {
            reads: READS.try_with(Clone::clone).unwrap_or_default(),
            disabled: crate::cache::DisabledScopes::current(),
            context: crate::key::ContextValues::current(),
        }
    }

    /// Runs `future` inside these scopes.
    pub async fn run<F: Future>(self, future: F) -> F::Output {
        let _active = Active::enter();
        let future = self.context.scope(future);
        let future = self.disabled.scope(future);
        READS.scope(self.reads, future).await
    }
}
