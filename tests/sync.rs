//! `#[cache]` on plain (sync) functions: with no runtime, in a multi-thread
//! runtime and in a current-thread runtime; on memory, Redis and disk;
//! single flight across threads.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
fn current_thread_runtime_remote(h: &Harness) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
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
