//! Turning commands off and on, and the counters of values not returned.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Cache;
use crate::codec::Miss;
use crate::command::{Command, CommandSet};
use crate::scope;

impl Cache {
    /// Disables `commands` for every task until [`Cache::enable`]. A disabled
    /// command does not reach the backend and answers as an empty backend
    /// that keeps nothing would: reads miss, writes store nothing, a lock is
    /// granted, `incr` returns `by`. Decorated functions then simply run.
    ///
    /// `cache.disable(CommandSet::all())` turns the cache off entirely.
    pub fn disable(&self, commands: impl Into<CommandSet>) {
        self.inner
            .disabled
            .fetch_or(commands.into().bits(), Ordering::Relaxed);
    }

    /// Enables `commands` again.
    pub fn enable(&self, commands: impl Into<CommandSet>) {
        self.inner
            .disabled
            .fetch_and(!commands.into().bits(), Ordering::Relaxed);
    }

    /// The commands disabled for every task.
    pub fn disabled(&self) -> CommandSet {
        CommandSet::from_bits(self.inner.disabled.load(Ordering::Relaxed))
    }

    /// Whether `command` is disabled here, globally or by an enclosing
    /// [`Cache::disabling`] scope.
    #[inline]
    pub fn is_disabled(&self, command: Command) -> bool {
        self.disabled().contains(command) || scope::disabled_here(self.inner.id, command)
    }

    /// Runs `future` with `commands` disabled for it alone.
    ///
    /// The scope is task-local: it covers everything `future` awaits, across
    /// `.await` points, but not tasks it spawns with `tokio::spawn` (they
    /// start outside the scope; see [`crate::scope::Scopes`] to carry it).
    /// Scopes nest; leaving one restores exactly what was disabled before it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cashews_core::Result<()> {
    /// use cashews_core::{Cache, Command};
    /// let cache = Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", &1).await?;
    /// let inside: Option<i32> = cache.disabling(Command::Get, cache.get("k")).await?;
    /// assert_eq!(inside, None);
    /// assert_eq!(cache.get::<i32>("k").await?, Some(1));
    /// # Ok(()) }
    /// ```
    pub async fn disabling<F: Future>(
        &self,
        commands: impl Into<CommandSet>,
        future: F,
    ) -> F::Output {
        scope::disabling(self.inner.id, commands.into(), future).await
    }

    /// Counters of stored values that were not returned.
    pub fn stats(&self) -> CacheStats {
        let s = &self.inner.stats;
        CacheStats {
            corrupt: s.corrupt.load(Ordering::Relaxed),
            bad_signature: s.bad_signature.load(Ordering::Relaxed),
            unsigned: s.unsigned.load(Ordering::Relaxed),
            unknown_format: s.unknown_format.load(Ordering::Relaxed),
            foreign: s.foreign.load(Ordering::Relaxed),
        }
    }

    /// Counts and logs a stored value that reads as a miss.
    pub(crate) fn record_miss(&self, key: &str, miss: Miss) {
        let s = &self.inner.stats;
        let counter = match miss {
            Miss::Corrupt => &s.corrupt,
            Miss::BadSignature => &s.bad_signature,
            Miss::Unsigned => &s.unsigned,
            Miss::UnknownFormat => &s.unknown_format,
            Miss::Foreign => &s.foreign,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match miss {
            Miss::BadSignature | Miss::Unsigned => {
                tracing::warn!(
                    key,
                    ?miss,
                    "cached value failed signature verification; treated as a miss"
                )
            }
            _ => tracing::debug!(
                key,
                ?miss,
                "cached value could not be decoded; treated as a miss"
            ),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    corrupt: AtomicU64,
    bad_signature: AtomicU64,
    unsigned: AtomicU64,
    unknown_format: AtomicU64,
    foreign: AtomicU64,
}

/// How many stored values were read as misses, by reason (see [`Miss`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Values that did not decode as the requested type (deleted).
    pub corrupt: u64,
    /// Values whose signature did not verify.
    pub bad_signature: u64,
    /// Unsigned values read while a secret is configured.
    pub unsigned: u64,
    /// Values of another format version or an unknown codec.
    pub unknown_format: u64,
    /// Bytes not written by this library.
    pub foreign: u64,
}
