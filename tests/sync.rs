//! `#[cache]` on plain (sync) functions: with no runtime, in a multi-thread
//! runtime and in a current-thread runtime; on memory, Redis and disk;
//! single flight across threads.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cashews::{cache, Cache};
use support::Harness;

/// A plain function, cached; `calls` counts its runs.
#[cache(ttl = "1h", cache = cache, key = "square:{x}")]
fn square(cache: &Cache, calls: &AtomicUsize, x: u64) -> u64 {
    calls.fetch_add(1, Ordering::SeqCst);
    x * x
}

/// A slow one, for single flight.
#[cache(ttl = "1h", cache = cache, key = "slow:{x}")]
fn slow(cache: &Cache, calls: &AtomicUsize, x: u64) -> u64 {
    calls.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    x + 1
}

/// A cached plain function calling another (nested cached calls).
#[cache(ttl = "1h", cache = cache, key = "outer:{x}")]
fn outer(cache: &Cache, calls: &AtomicUsize, x: u64) -> Result<u64, String> {
    let inner = square(cache, calls, x);
    if inner > 1_000_000 {
        return Err("too large".into());
    }
    Ok(inner + 1)
}

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Down,
    Limited,
    Open,
    Cache(String),
}

impl From<cashews::strategy::RateLimited> for ApiError {
    fn from(_: cashews::strategy::RateLimited) -> Self {
        ApiError::Limited
    }
}

impl From<cashews::strategy::CircuitOpen> for ApiError {
    fn from(_: cashews::strategy::CircuitOpen) -> Self {
        ApiError::Open
    }
}

impl From<cashews::Error> for ApiError {
    fn from(e: cashews::Error) -> Self {
        ApiError::Cache(e.to_string())
    }
}

#[cache::failover(ttl = "1h", cache = cache, key = "failover")]
fn last_good(cache: &Cache, fail: bool, n: u64) -> Result<u64, ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(n)
    }
}

#[cache::rate_limit(limit = 2, period = "1m", cache = cache, key = "limited")]
fn limited(cache: &Cache) -> Result<u64, ApiError> {
    Ok(1)
}

#[cache::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", min_calls = 2, cache = cache, key = "fragile")]
fn fragile(cache: &Cache, fail: bool) -> Result<(), ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

#[cache::locked(ttl = "10s", cache = cache, key = "exclusive")]
fn exclusive(
    cache: &Cache,
    running: &AtomicUsize,
    overlaps: &AtomicUsize,
) -> Result<u64, ApiError> {
    if running.fetch_add(1, Ordering::SeqCst) > 0 {
        overlaps.fetch_add(1, Ordering::SeqCst);
    }
    std::thread::sleep(Duration::from_millis(20));
    running.fetch_sub(1, Ordering::SeqCst);
    Ok(1)
}

#[cache::soft(ttl = "1h", soft_ttl = "30m", cache = cache, key = "soft")]
fn soft_value(cache: &Cache, fail: bool) -> Result<u64, ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(5)
    }
}

#[cache::invalidate("square:*", cache = cache)]
fn forget_squares(cache: &Cache) -> Result<(), ApiError> {
    Ok(())
}

/// The strategy attributes on plain functions.
fn strategies(cache: &Cache) {
    assert_eq!(last_good(cache, false, 1), Ok(1));
    assert_eq!(
        last_good(cache, true, 2),
        Ok(1),
        "failover: the last success"
    );
    assert_eq!(limited(cache), Ok(1));
    assert_eq!(limited(cache), Ok(1));
    assert_eq!(limited(cache), Err(ApiError::Limited));
    assert_eq!(fragile(cache, false), Ok(()));
    assert_eq!(fragile(cache, true), Err(ApiError::Down));
    assert_eq!(fragile(cache, false), Err(ApiError::Open));
    assert_eq!(soft_value(cache, false), Ok(5));
    assert_eq!(soft_value(cache, false), Ok(5));
    // locked: four threads, never two inside at once.
    let (running, overlaps) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (cache, running, overlaps) = (cache.clone(), running.clone(), overlaps.clone());
            std::thread::spawn(move || exclusive(&cache, &running, &overlaps))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Ok(1));
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    // invalidate: deletes after success.
    let calls = AtomicUsize::new(0);
    square(cache, &calls, 4);
    forget_squares(cache).unwrap();
    square(cache, &calls, 4);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the entry was invalidated");
}

/// The cases, each run with no runtime, in a multi-thread runtime and in a
/// current-thread runtime (where the backend allows).
fn cached_once(cache: &Cache) {
    let calls = AtomicUsize::new(0);
    assert_eq!(square(cache, &calls, 7), 49);
    assert_eq!(square(cache, &calls, 7), 49);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Nested: the inner call is cached too.
    assert_eq!(outer(cache, &calls, 7), Ok(50));
    assert_eq!(outer(cache, &calls, 7), Ok(50));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "square(7) was a hit inside"
    );
    assert_eq!(outer(cache, &calls, 2000), Err("too large".into()));
    assert_eq!(outer(cache, &calls, 2000), Err("too large".into()));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the Err is not cached, square(2000) is"
    );
}

/// 16 threads call a cold 100 ms function at once: it runs once.
fn single_flight(cache: &Cache) {
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            std::thread::spawn(move || slow(&cache, &calls, 1))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 2);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

fn no_runtime(h: &Harness) {
    cached_once(&h.cache);
    single_flight(&h.cache);
    strategies(&h.cache);
}

fn multi_thread_runtime(h: &Harness) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = h.cache.clone();
    runtime.block_on(async move {
        // Called from a task, as a handler would.
        tokio::spawn(async move {
            cached_once(&cache);
            single_flight(&cache);
            strategies(&cache);
        })
        .await
        .unwrap();
    });
}

fn current_thread_runtime_in_process(h: &Harness) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { cached_once(&h.cache) });
}

/// On a backend the runtime must drive, waiting would deadlock: the call
/// runs uncached instead, and at once.
#[cfg(any(feature = "redis", feature = "disk"))]
fn current_thread_runtime_remote(h: &Harness) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    runtime.block_on(async {
        let calls = AtomicUsize::new(0);
        assert_eq!(square(&h.cache, &calls, 3), 9);
        assert_eq!(square(&h.cache, &calls, 3), 9);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "uncached");
    });
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn memory_without_a_runtime() {
    no_runtime(&Harness::memory("mem://"));
}

#[test]
fn memory_in_a_multi_thread_runtime() {
    multi_thread_runtime(&Harness::memory("mem://"));
}

#[test]
fn memory_in_a_current_thread_runtime() {
    current_thread_runtime_in_process(&Harness::memory("mem://"));
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    #[test]
    fn without_a_runtime() {
        no_runtime(&Harness::redis(""));
    }

    #[test]
    fn in_a_multi_thread_runtime() {
        multi_thread_runtime(&Harness::redis(""));
    }

    #[test]
    fn in_a_current_thread_runtime() {
        current_thread_runtime_remote(&Harness::redis(""));
    }
}

#[cfg(feature = "disk")]
mod disk {
    use super::*;

    #[test]
    fn without_a_runtime() {
        no_runtime(&Harness::disk(""));
    }

    #[test]
    fn in_a_multi_thread_runtime() {
        multi_thread_runtime(&Harness::disk(""));
    }

    #[test]
    fn in_a_current_thread_runtime() {
        current_thread_runtime_remote(&Harness::disk(""));
    }
}
