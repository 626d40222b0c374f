//! Hits and misses per cached function (`cache_info`).
//!
//! Every `#[cache]` function counts its calls answered from the cache
//! (hits) and those that ran its body (misses) in a static of its own,
//! registered under its name (`module::function`) on its first call.
//! [`function_stats`] lists them; with `helpers`, `name::cache_info()` also
//! counts the keys the function has stored.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Cells of a counter: increments from different threads mostly land on
/// different cache lines, so a hot cached function does not serialise its
/// callers on one atomic.
const CELLS: usize = 8;

#[repr(align(128))]
struct Cell64(AtomicU64);

struct Counter([Cell64; CELLS]);

impl Counter {
    const fn new() -> Counter {
        Counter([const { Cell64(AtomicU64::new(0)) }; CELLS])
    }

    #[inline]
    fn add(&self) {
        thread_local! {
            static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let slot = SLOT.with(|slot| {
            if slot.get() == usize::MAX {
                slot.set(NEXT.fetch_add(1, Ordering::Relaxed) % CELLS);
            }
            slot.get()
        });
        self.0[slot].0.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
    }
}

/// The counters of one cached function; the `#[cache]` macro declares one
/// per function.
pub struct FunctionStats {
    name: &'static str,
    hits: Counter,
    misses: Counter,
    registered: AtomicBool,
    /// The cache and key pattern of the function's entries, as its first
    /// miss in this process saw them (for [`clear_all`]).
    entries: Mutex<Option<(crate::Cache, String)>>,
    has_entries: AtomicBool,
}

impl std::fmt::Debug for FunctionStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionStats")
            .field("name", &self.name)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

static REGISTRY: Mutex<Vec<&'static FunctionStats>> = Mutex::new(Vec::new());

impl FunctionStats {
    /// Counters for the function `name`.
    pub const fn new(name: &'static str) -> FunctionStats {
        FunctionStats {
            name,
            hits: Counter::new(),
            misses: Counter::new(),
            registered: AtomicBool::new(false),
            entries: Mutex::new(None),
            has_entries: AtomicBool::new(false),
        }
    }

    /// Records where the function keeps its entries (on a miss: the first
    /// one wins), so [`clear_all`] can delete them.
    #[inline]
    pub fn remember(&'static self, cache: &crate::Cache, pattern: impl FnOnce() -> String) {
        if self.has_entries.load(Ordering::Relaxed) {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.is_none() {
            *entries = Some((cache.clone(), pattern()));
            self.has_entries.store(true, Ordering::Relaxed);
        }
        drop(entries);
        self.register();
    }

    /// The function's name (`module::function`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Calls answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.sum()
    }

    /// Calls that ran the function's body.
    pub fn misses(&self) -> u64 {
        self.misses.sum()
    }

    /// Counts a call answered from the cache.
    #[inline]
    pub fn hit(&'static self) {
        self.register();
        self.hits.add();
    }

    /// Counts a call that ran the body.
    #[inline]
    pub fn miss(&'static self) {
        self.register();
        self.misses.add();
    }

    #[inline]
    fn register(&'static self) {
        if !self.registered.load(Ordering::Relaxed) && !self.registered.swap(true, Ordering::AcqRel)
        {
            REGISTRY.lock().push(self);
        }
    }
}

/// Every cached function called so far in this process, in the order of
/// their first calls.
pub fn function_stats() -> Vec<&'static FunctionStats> {
    REGISTRY.lock().clone()
}

/// Deletes the entries of every `#[cache]` function that has missed in
/// this process (in the cache and under the key pattern its first miss
/// used; a scan per function); returns how many. aquiche's `clear_all`.
///
/// # Errors
/// The first backend error; the other functions are cleared all the same.
pub async fn clear_all() -> crate::Result<u64> {
    let targets: Vec<(crate::Cache, String)> = REGISTRY
        .lock()
        .iter()
        .filter_map(|stats| stats.entries.lock().clone())
        .collect();
    let mut deleted = 0;
    let mut failure = None;
    for (cache, pattern) in targets {
        match cache.delete_match(&pattern).await {
            Ok(n) => deleted += n,
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    failure.map_or(Ok(deleted), Err)
}

/// What `name::cache_info()` reports for a cached function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheInfo {
    /// Calls answered from the cache (in this process).
    pub hits: u64,
    /// Calls that ran the body (in this process).
    pub misses: u64,
    /// Keys of the function's stored results now in the backend (every
    /// process's), counted by a scan of the function's key pattern; `None`
    /// if the backend could not be scanned.
    pub size: Option<u64>,
}

/// The [`CacheInfo`] of the function `name` whose keys match `pattern` in
/// `cache` (the `cache_info` helper of `#[cache(helpers)]`). Sums the
/// counters of every function registered under `name`.
pub async fn cache_info(cache: &crate::Cache, name: &str, pattern: &str) -> CacheInfo {
    let (hits, misses) = function_stats()
        .iter()
        .filter(|s| s.name == name)
        .fold((0, 0), |(h, m), s| (h + s.hits(), m + s.misses()));
    let size = match cache.scan(pattern).await {
        // Counted as they come, not collected.
        Ok(mut keys) => {
            let mut count = 0u64;
            loop {
                match keys.next().await {
                    Some(Ok(_)) => count += 1,
                    Some(Err(_)) => break None,
                    None => break Some(count),
                }
            }
        }
        Err(_) => None,
    };
    CacheInfo { hits, misses, size }
}

/// The bounded in-process store of the function `name` (`#[cache(max_size =
/// n)]`): a `mem://?size=n` cache of its own, made on first use and kept
/// for the process. The size of the first call wins.
#[doc(hidden)]
pub fn bounded_store(name: &'static str, size: usize) -> &'static crate::Cache {
    static STORES: Mutex<Vec<(&'static str, &'static crate::Cache)>> = Mutex::new(Vec::new());
    let mut stores = STORES.lock();
    if let Some((_, cache)) = stores.iter().find(|(n, _)| *n == name) {
        return cache;
    }
    let cache = crate::Cache::new();
    if let Err(error) = cache.setup(&format!("mem://?size={}", size.max(1))) {
        // Unreachable for a mem:// URL with a size; never a panic.
        tracing::error!(function = name, %error, "cannot make the function's store");
    }
    let cache: &'static crate::Cache = Box::leak(Box::new(cache));
    stores.push((name, cache));
    cache
}
