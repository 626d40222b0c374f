//! aquiche's row: expiry chosen from the result, negative caching, caching
//! turned off per call — through `#[cache]`, on every backend compiled in.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use cashews::{cache, Cache, ExpireAt, Expiry};
use serde::{Deserialize, Serialize};
use support::Harness;

/// A token that says how long it is valid, as an OAuth answer does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Token {
    value: String,
    expires_in: u64,
}

fn token_ttl(out: &Result<Token, Upstream>, _cache: &Cache, _calls: &AtomicUsize) -> Option<u64> {
    out.as_ref().ok().map(|token| token.expires_in)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Upstream {
    NotFound,
}

#[cache(ttl = token_ttl, cache = cache, key = "token")]
async fn token(cache: &Cache, calls: &AtomicUsize) -> Result<Token, Upstream> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(Token {
        value: format!("t{n}"),
        expires_in: 30 * n as u64,
    })
}

/// `Err(NotFound)` is remembered for a second, `Ok` for an hour.
#[cache(ttl = "1h", negative_ttl = "1s", cache = cache, key = "user:{id}")]
async fn user(cache: &Cache, calls: &AtomicUsize, id: u64) -> Result<String, Upstream> {
    calls.fetch_add(1, Ordering::SeqCst);
    match id {
        0 => Err(Upstream::NotFound),
        _ => Ok(format!("user {id}")),
    }
}

#[cache(ttl = "1h", enabled = *on, cache = cache, key = "switch:{id}")]
async fn switched(cache: &Cache, calls: &AtomicUsize, on: &bool, id: u64) -> u64 {
    calls.fetch_add(1, Ordering::SeqCst);
    id
}

#[cache(expire_at = "00:00", cache = cache, key = "daily:{id}")]
async fn daily(cache: &Cache, id: u64) -> u64 {
    id
}

/// When a value expires, from the arguments: `secs` from now, or (negative)
/// already past.
fn moment(_cache: &Cache, calls: &AtomicUsize, secs: &i64) -> SystemTime {
    let _ = calls;
    let now = SystemTime::now();
    if *secs >= 0 {
        now + Duration::from_secs(secs.unsigned_abs())
    } else {
        now - Duration::from_secs(secs.unsigned_abs())
    }
}

#[cache(expire_at = moment, cache = cache, key = "moment:{secs}")]
async fn until(cache: &Cache, calls: &AtomicUsize, secs: i64) -> i64 {
    calls.fetch_add(1, Ordering::SeqCst);
    secs
}

/// Fails `failures` times, then answers the attempt number; retried up to
/// three times before the result is cached or returned.
#[cache(ttl = "1h", retry = 3, backoff = "20ms", cache = cache, key = "flaky:{failures}:{tag}")]
async fn flaky(
    cache: &Cache,
    calls: &AtomicUsize,
    failures: usize,
    tag: String,
) -> Result<String, Upstream> {
    let n = calls.fetch_add(1, Ordering::SeqCst);
    if n < failures {
        Err(Upstream::NotFound)
    } else {
        Ok(format!("{tag} after {n} failures"))
    }
}

/// A client: not serde, not even `Debug` — kept as itself.
struct Client {
    id: u64,
}

#[cache(ttl = "1h", local, cache = cache, key = "client:{id}")]
async fn client(cache: &Cache, calls: &AtomicUsize, id: u64) -> std::sync::Arc<Client> {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::sync::Arc::new(Client { id })
}

fn remaining(expiry: Expiry) -> Duration {
    match expiry {
        Expiry::Remaining(d) => d,
        other => panic!("{other:?}"),
    }
}

/// The cases, run on every backend below.
mod cases {
    use super::*;

    pub async fn the_result_chooses_its_ttl(h: &Harness) {
        let calls = AtomicUsize::new(0);
        let first = token(&h.cache, &calls).await.unwrap();
        assert_eq!(first.value, "t1");
        let ttl = remaining(h.cache.get_expire("token").await.unwrap());
        assert!(
            ttl <= Duration::from_secs(30) && ttl > Duration::from_secs(20),
            "{ttl:?}"
        );
        assert_eq!(token(&h.cache, &calls).await.unwrap(), first);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    pub async fn errors_are_cached_for_their_own_ttl(h: &Harness) {
        let calls = AtomicUsize::new(0);
        assert_eq!(user(&h.cache, &calls, 0).await, Err(Upstream::NotFound));
        assert_eq!(user(&h.cache, &calls, 0).await, Err(Upstream::NotFound));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the Err was a hit");
        let negative = remaining(h.cache.get_expire("user:0").await.unwrap());
        assert!(negative <= Duration::from_secs(1), "{negative:?}");
        assert_eq!(user(&h.cache, &calls, 7).await.unwrap(), "user 7");
        let positive = remaining(h.cache.get_expire("user:7").await.unwrap());
        assert!(positive > Duration::from_secs(3000), "{positive:?}");
        // Once the negative entry expires the function is asked again.
        h.advance(Duration::from_millis(1100)).await;
        assert_eq!(user(&h.cache, &calls, 0).await, Err(Upstream::NotFound));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    pub async fn values_expire_at_a_time_of_day_or_a_moment(h: &Harness) {
        // Every day at midnight UTC: what is left of today.
        daily(&h.cache, 1).await;
        let left = remaining(h.cache.get_expire("daily:1").await.unwrap());
        let expected = ExpireAt::parse("00:00")
            .unwrap()
            .remaining(h.cache.clock().unix_ms())
            .unwrap();
        assert!(
            left.abs_diff(expected) < Duration::from_secs(5),
            "{left:?} vs {expected:?}"
        );
        // A moment from the arguments.
        let calls = AtomicUsize::new(0);
        until(&h.cache, &calls, 600).await;
        let left = remaining(h.cache.get_expire("moment:600").await.unwrap());
        // (The memory harness' clock and SystemTime may differ by a tick.)
        assert!(
            left.abs_diff(Duration::from_secs(600)) < Duration::from_secs(5),
            "{left:?}"
        );
        // A moment that has passed: the call runs without the cache.
        until(&h.cache, &calls, -5).await;
        until(&h.cache, &calls, -5).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            h.cache.get_expire("moment:-5").await.unwrap(),
            Expiry::Missing
        );
        // The same on `set`: a future moment is its TTL; a past one deletes
        // the key and stores nothing.
        assert!(h
            .cache
            .set("report", &1u8)
            .expire_at("2999-01-01T00:00:00Z")
            .await
            .unwrap());
        let left = remaining(h.cache.get_expire("report").await.unwrap());
        assert!(left > Duration::from_secs(86_400 * 365 * 900), "{left:?}");
        assert!(!h
            .cache
            .set("report", &2u8)
            .expire_at("2020-01-01")
            .await
            .unwrap());
        assert_eq!(h.cache.get::<u8>("report").await.unwrap(), None);
        // Not an expiry: an error naming it.
        let error = h
            .cache
            .set("report", &3u8)
            .expire_at("tomorrow")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("tomorrow"), "{error}");
    }

    pub async fn failures_are_retried_before_caching(h: &Harness) {
        let calls = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let answer = flaky(&h.cache, &calls, 2, "t".into()).await;
        assert_eq!(answer.as_deref(), Ok("t after 2 failures"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Two pauses: 20 ms then 40 ms, each between half and all of it.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        // Only the final answer is cached.
        assert_eq!(
            flaky(&h.cache, &calls, 2, "t".into()).await.as_deref(),
            Ok("t after 2 failures")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Retries spent: the last error is returned, and not cached.
        let calls = AtomicUsize::new(0);
        assert_eq!(
            flaky(&h.cache, &calls, 10, "u".into()).await,
            Err(Upstream::NotFound)
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "one attempt and three retries"
        );
        assert_eq!(
            h.cache.get_expire("flaky:10:u").await.unwrap(),
            Expiry::Missing
        );
    }

    /// `local` results are kept as themselves on `mem://`; elsewhere the
    /// call runs uncached (an error reported once).
    pub async fn local_results_are_kept_as_themselves(h: &Harness) {
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let first = client(&h.cache, &calls, 1).await;
        let again = client(&h.cache, &calls, 1).await;
        assert_eq!((first.id, again.id), (1, 1));
        if !h.cache.in_process("client:1") {
            assert_eq!(calls.load(Ordering::SeqCst), 2, "uncached off mem://");
            assert!(h.cache.get_value::<u8>("client:1").is_err());
            return;
        }
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "the same value, cloned"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Concurrent cold calls run once; every caller gets the value.
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, calls) = (h.cache.clone(), calls.clone());
                tokio::spawn(async move { client(&cache, &calls, 2).await.id })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 2);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Commands see the key as any other: delete drops it.
        assert!(h.cache.delete("client:1").await.unwrap());
        client(&h.cache, &calls, 1).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// aquiche's `remove_expired()`: frees expired entries now (the memory
    /// backend; Redis and disk expire entries themselves).
    pub async fn expired_entries_are_freed_on_demand(h: &Harness) {
        h.cache.set("short", &1u8).expire(h.ttl(1.0)).await.unwrap();
        h.cache.set("long", &2u8).expire("1h").await.unwrap();
        h.advance(h.secs(1.5)).await;
        let freed = h.cache.remove_expired().await.unwrap();
        if h.cache.in_process("short") {
            assert_eq!(freed, 1);
        }
        assert_eq!(h.cache.get::<u8>("short").await.unwrap(), None);
        assert_eq!(h.cache.get::<u8>("long").await.unwrap(), Some(2));
    }

    pub async fn caching_is_switched_per_call(h: &Harness) {
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            assert_eq!(switched(&h.cache, &calls, &false, 1).await, 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "off: every call runs");
        assert_eq!(h.cache.get::<u64>("switch:1").await.unwrap(), None);
        for _ in 0..2 {
            switched(&h.cache, &calls, &true, 1).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "on: cached");
        // Off again: the stored value is not read either.
        switched(&h.cache, &calls, &false, 1).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}

macro_rules! aquiche_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        backend_suite!(cases, $backend, [$attr], $make;
            the_result_chooses_its_ttl, errors_are_cached_for_their_own_ttl,
            caching_is_switched_per_call, values_expire_at_a_time_of_day_or_a_moment,
            failures_are_retried_before_caching, local_results_are_kept_as_themselves,
            expired_entries_are_freed_on_demand);
    };
}

// No background sweep: `remove_expired` is what frees expired entries here.
aquiche_suite!(
    memory,
    [tokio::test(start_paused = true)],
    Harness::memory("mem://?check_interval=0")
);

#[cfg(feature = "redis")]
aquiche_suite!(
    redis,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::redis("")
);

#[cfg(feature = "disk")]
aquiche_suite!(
    disk,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::disk("")
);

#[cfg(feature = "memcached")]
aquiche_suite!(
    memcached,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::memcached("")
);

#[cfg(feature = "dynamodb")]
aquiche_suite!(
    dynamodb,
    [tokio::test(flavor = "multi_thread", worker_threads = 2)],
    Harness::dynamodb("")
);

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("aquiche.rs"), memory::CASES);
}
