//! aquiche's row: expiry chosen from the result, negative caching, caching
//! turned off per call — through `#[cache]`, on every backend compiled in.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::{cache, Cache, Expiry};
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
            caching_is_switched_per_call);
    };
}

aquiche_suite!(
    memory,
    [tokio::test(start_paused = true)],
    Harness::memory("mem://")
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

#[test]
fn every_case_of_the_suite_is_listed() {
    support::assert_every_case_listed(include_str!("aquiche.rs"), memory::CASES);
}
