//! Task-local scopes, all in one place: [`detect`] which keys a piece of
//! code was served from, [`invalidate_further`] to make its reads miss,
//! [`key_context`] for key templates, [`uncached`] to bypass cached calls,
//! `Cache::disabling` (commands off for one future), and [`Scopes`] to
//! carry the enclosing scopes into a spawned task.
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

mod bypass;
mod context;
mod disabled;
mod reads;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use bypass::{bypass_body, bypassed, uncached};
pub use context::{key_context, write_context};
pub(crate) use disabled::{disabled_here, disabling};
pub use reads::{detect, invalidate_further, Detected};
pub(crate) use reads::{reads, Reads};

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

/// The scopes of the current task (read scopes, disabled commands and key
/// context), captured to run another future — usually a spawned task's —
/// inside them. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Scopes {
    reads: reads::Reads,
    disabled: disabled::DisabledScopes,
    context: context::ContextValues,
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
            reads: reads::Reads::current(),
            disabled: disabled::DisabledScopes::current(),
            context: context::ContextValues::current(),
        }
    }

    /// Runs `future` inside these scopes.
    pub async fn run<F: Future>(self, future: F) -> F::Output {
        let _active = Active::enter();
        let future = self.context.scope(future);
        let future = self.disabled.scope(future);
        self.reads.scope(future).await
    }
}
