//! `Cache::disabling`: commands turned off for one future.

use std::future::Future;

use super::{any_active, Active};
use crate::command::{Command, CommandSet};

tokio::task_local! {
    /// Commands disabled for the current task, per cache id.
    static DISABLED: Vec<(u64, CommandSet)>;
}

/// The `disabling` scopes of a task, captured by [`super::Scopes`].
#[derive(Clone, Default)]
pub(super) struct DisabledScopes(Vec<(u64, CommandSet)>);

impl DisabledScopes {
    pub(super) fn current() -> DisabledScopes {
        DisabledScopes(DISABLED.try_with(Clone::clone).unwrap_or_default())
    }

    pub(super) async fn scope<F: Future>(self, future: F) -> F::Output {
        DISABLED.scope(self.0, future).await
    }
}

/// Whether an enclosing scope disables `command` on the cache `cache_id`.
#[inline]
pub(crate) fn disabled_here(cache_id: u64, command: Command) -> bool {
    any_active()
        && DISABLED
            .try_with(|scopes| {
                scopes
                    .iter()
                    .any(|(id, set)| *id == cache_id && set.contains(command))
            })
            .unwrap_or(false)
}

/// Runs `future` with `commands` disabled on the cache `cache_id`.
pub(crate) async fn disabling<F: Future>(
    cache_id: u64,
    commands: CommandSet,
    future: F,
) -> F::Output {
    let mut scopes = DISABLED.try_with(Clone::clone).unwrap_or_default();
    scopes.push((cache_id, commands));
    let _active = Active::enter();
    DISABLED.scope(scopes, future).await
}
