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
        }
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
