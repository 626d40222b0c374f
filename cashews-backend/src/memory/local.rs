//! An in-process tier in front of a remote backend whose server reports what
//! changed (Redis client-side caching).
//!
//! The remote backend answers hits from here and fills it from its replies.
//! Its server's invalidations, and the backend's own writes, remove entries.
//! A reply can race an invalidation: the value was read before a write, the
//! write's invalidation is applied, then the old value arrives and would be
//! stored. [`Ticket`]s prevent that: take one *before* sending a request, and
//! [`LocalCache::fill`] stores the reply only if no invalidation touched the
//! key's shard (and no flush happened) since. Checks and changes happen under
//! the shard's lock, so an invalidation always wins.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::store::{Change, Store};
use crate::backend::Kept;
use crate::clock::Clock;

/// The bit of [`LocalCache::state`] that says entries may be used.
const ENABLED: u64 = 1;

/// A bounded, sharded LRU of values with TTLs, invalidated from outside: the
/// in-process tier of a remote backend whose server reports changes (Redis
/// client-side caching).
///
/// A reply can race an invalidation: the value was read before a write, the
/// write's invalidation is applied, then the old value arrives and would be
/// stored. [`Ticket`]s prevent that: take one *before* sending a request, and
/// [`LocalCache::fill`] stores the reply only if no invalidation touched the
/// key's shard (and no flush happened) since. Checks and changes happen under
/// the shard's lock, so an invalidation always wins.
///
/// It starts disabled: nothing is read or stored until [`LocalCache::enable`]
/// (for Redis: once tracking is on for the connection).
pub struct LocalCache {
    store: Store,
    clock: Clock,
    /// One counter per shard, bumped by every invalidation in that shard.
    generations: Box<[AtomicU64]>,
    /// `epoch << 1 | enabled`; a flush starts a new epoch.
    state: AtomicU64,
}

/// What a request saw of the local cache before it was sent: a reply is
/// stored under it only if no invalidation or flush touched the key's shard
/// since (see [`LocalCache`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    state: u64,
    shard: usize,
    generation: u64,
}

/// The flush epoch seen while disabled; [`LocalCache::enable`] takes it, so
/// a flush between the observation and the enabling keeps the cache off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch(u64);

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("enabled", &self.is_enabled())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl LocalCache {
    /// A cache of at most `size` entries, on `clock`; disabled.
    pub fn new(size: NonZeroUsize, clock: Clock) -> LocalCache {
        let store = Store::new(size);
        let generations = (0..store.shard_count())
            .map(|_| AtomicU64::new(0))
            .collect();
        LocalCache {
            store,
            clock,
            generations,
            state: AtomicU64::new(0),
        }
    }

    /// Whether entries are used now.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.state.load(Ordering::Acquire) & ENABLED != 0
    }

    /// The current epoch if disabled (`None` when enabled): what
    /// [`LocalCache::enable`] needs after the remote side is ready.
    pub fn disabled_epoch(&self) -> Option<Epoch> {
        let state = self.state.load(Ordering::Acquire);
        (state & ENABLED == 0).then_some(Epoch(state))
    }

    /// Enables the cache unless it was flushed since `seen` was read;
    /// returns whether it is enabled now.
    pub fn enable(&self, seen: Epoch) -> bool {
        self.state
            .compare_exchange(
                seen.0,
                seen.0 | ENABLED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
            || self.is_enabled()
    }

    /// Drops every entry and disables the cache (the remote side stopped
    /// reporting changes, e.g. its connection was lost).
    pub fn disable(&self) {
        self.new_epoch(false);
    }

    /// Drops every entry and keeps the cache as enabled as it was (the
    /// server reported that everything changed, e.g. `FLUSHDB`).
    pub fn flush(&self) {
        self.new_epoch(true);
    }

    fn new_epoch(&self, keep_enabled: bool) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                let enabled = if keep_enabled { state & ENABLED } else { 0 };
                Some((((state >> 1) + 1) << 1) | enabled)
            });
        // Fills check the epoch under their shard's lock, so none lands after
        // this clear with a value read before the flush.
        self.store.clear();
    }

    /// The hit path: calls `visit` with a live value of `key` and what
    /// `decoder` kept beside it (see [`Backend::get_local`]).
    ///
    /// [`Backend::get_local`]: crate::backend::Backend::get_local
    #[inline]
    pub fn visit(
        &self,
        key: &str,
        decoder: u64,
        visit: &mut dyn FnMut(&[u8], &mut Kept<'_>),
    ) -> bool {
        self.is_enabled() && self.store.visit(key, self.clock.now_ms(), decoder, visit)
    }

    /// The value of `key`, if held.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        if !self.is_enabled() {
            return None;
        }
        self.store.get(key, self.clock.now_ms())
    }

    /// Takes a ticket for a request about `key`, before sending it; `None`
    /// when the cache is disabled (nothing will be stored).
    #[inline]
    pub fn ticket(&self, key: &str) -> Option<Ticket> {
        let state = self.state.load(Ordering::Acquire);
        if state & ENABLED == 0 {
            return None;
        }
        let shard = self.store.shard_index(key);
        Some(Ticket {
            state,
            shard,
            generation: self.generations[shard].load(Ordering::Acquire),
        })
    }

    fn unchanged(&self, ticket: &Ticket) -> bool {
        self.state.load(Ordering::Acquire) == ticket.state
            && self.generations[ticket.shard].load(Ordering::Acquire) == ticket.generation
    }

    /// Stores a value read from the server under `ticket`, unless an
    /// invalidation or flush came in between; returns whether it was stored.
    pub fn fill(&self, key: &str, value: Bytes, ttl: Option<Duration>, ticket: Ticket) -> bool {
        let mut stored = false;
        self.store.replace(key, self.clock.now_ms(), |shard| {
            debug_assert_eq!(shard, ticket.shard);
            stored = self.unchanged(&ticket);
            if stored {
                Change::Store(value, ttl)
            } else {
                Change::Keep
            }
        });
        stored
    }

    /// Records this process's own write of `key` (the server does not report
    /// it back): `Some` stores the written value if nothing changed since
    /// `ticket`, otherwise (and for `None`) the entry is dropped. Either way
    /// requests about the key that were in flight cannot fill it afterwards.
    pub fn wrote(
        &self,
        key: &str,
        value: Option<(Bytes, Option<Duration>)>,
        ticket: Option<Ticket>,
    ) {
        self.store.replace(key, self.clock.now_ms(), |shard| {
            let keep = ticket.is_some_and(|t| self.unchanged(&t));
            self.generations[shard].fetch_add(1, Ordering::AcqRel);
            match value {
                Some((value, ttl)) if keep => Change::Store(value, ttl),
                _ => Change::Remove,
            }
        });
    }

    /// Drops `key` (the server reported a change).
    pub fn invalidate(&self, key: &str) {
        self.wrote(key, None, None);
    }

    /// Drops every key matching the glob `pattern`.
    pub fn invalidate_match(&self, pattern: &str) {
        // Bump first: a fill checked before the bump is removed by the
        // delete below, one checked after it is refused.
        for generation in self.generations.iter() {
            generation.fetch_add(1, Ordering::AcqRel);
        }
        self.store.delete_match(pattern, self.clock.now_ms());
    }

    /// How many entries are held (expired ones included until evicted).
    pub fn len(&self) -> u64 {
        self.store.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> LocalCache {
        let cache = LocalCache::new(NonZeroUsize::new(100).unwrap(), Clock::system());
        let epoch = cache.disabled_epoch().unwrap();
        assert!(cache.enable(epoch));
        cache
    }

    fn read(cache: &LocalCache, key: &str) -> Option<Vec<u8>> {
        let mut out = None;
        cache.visit(key, 0, &mut |b, _| out = Some(b.to_vec()));
        out
    }

    #[test]
    fn starts_disabled_and_stores_nothing_until_enabled() {
        let cache = LocalCache::new(NonZeroUsize::new(10).unwrap(), Clock::system());
        assert!(cache.ticket("k").is_none());
        cache.wrote("k", Some((Bytes::from_static(b"v"), None)), None);
        assert_eq!(read(&cache, "k"), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_fill_after_an_invalidation_is_refused() {
        let cache = cache();
        let ticket = cache.ticket("k").unwrap();
        cache.invalidate("k");
        assert!(!cache.fill("k", Bytes::from_static(b"old"), None, ticket));
        assert_eq!(read(&cache, "k"), None);
        let ticket = cache.ticket("k").unwrap();
        assert!(cache.fill("k", Bytes::from_static(b"new"), None, ticket));
        assert_eq!(read(&cache, "k").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn an_own_write_refuses_fills_in_flight_and_stores_its_value() {
        let cache = cache();
        let get = cache.ticket("k").unwrap();
        let set = cache.ticket("k").unwrap();
        cache.wrote("k", Some((Bytes::from_static(b"mine"), None)), Some(set));
        assert!(!cache.fill("k", Bytes::from_static(b"stale"), None, get));
        assert_eq!(read(&cache, "k").as_deref(), Some(&b"mine"[..]));
        // Two writes completing out of order: neither value is kept.
        let first = cache.ticket("k").unwrap();
        let second = cache.ticket("k").unwrap();
        cache.wrote("k", Some((Bytes::from_static(b"2"), None)), Some(second));
        cache.wrote("k", Some((Bytes::from_static(b"1"), None)), Some(first));
        assert_eq!(read(&cache, "k"), None);
    }

    #[test]
    fn flush_and_disable_start_a_new_epoch() {
        let cache = cache();
        let ticket = cache.ticket("k").unwrap();
        cache.flush();
        assert!(cache.is_enabled());
        assert!(!cache.fill("k", Bytes::from_static(b"v"), None, ticket));
        cache.wrote(
            "k",
            Some((Bytes::from_static(b"v"), None)),
            cache.ticket("k"),
        );
        assert!(!cache.is_empty());
        cache.disable();
        assert!(cache.is_empty());
        assert!(!cache.is_enabled());
        // Enabling with an epoch seen before another flush fails.
        let seen = cache.disabled_epoch().unwrap();
        cache.disable();
        assert!(!cache.enable(seen));
        assert!(cache.enable(cache.disabled_epoch().unwrap()));
    }

    #[test]
    fn invalidate_match_drops_matching_keys_and_in_flight_fills() {
        let cache = cache();
        for key in ["a:1", "a:2", "b:1"] {
            cache.wrote(
                key,
                Some((Bytes::from_static(b"v"), None)),
                cache.ticket(key),
            );
        }
        let ticket = cache.ticket("a:3").unwrap();
        cache.invalidate_match("a:*");
        assert!(!cache.fill("a:3", Bytes::from_static(b"v"), None, ticket));
        assert_eq!(read(&cache, "a:1"), None);
        assert_eq!(read(&cache, "b:1").as_deref(), Some(&b"v"[..]));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let cache = LocalCache::new(NonZeroUsize::new(10).unwrap(), Clock::tokio());
        assert!(cache.enable(cache.disabled_epoch().unwrap()));
        let ticket = cache.ticket("k").unwrap();
        assert!(cache.fill(
            "k",
            Bytes::from_static(b"v"),
            Some(Duration::from_millis(50)),
            ticket
        ));
        assert!(read(&cache, "k").is_some());
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(read(&cache, "k"), None);
    }
}
