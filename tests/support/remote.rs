#![allow(dead_code)]
//! What every network backend's own test file checks the same way:
//! `#[cache]` on it, and the answers of a backend that is down.

use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::{cache, Cache};

use super::{is_transient_backend_error, within};

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: u64,
    pub name: String,
}

#[cache(ttl = "1h", cache = cache, key = "profile:{id}")]
pub async fn profile(cache: &Cache, calls: &AtomicUsize, id: u64) -> Profile {
    calls.fetch_add(1, Ordering::SeqCst);
    Profile {
        id,
        name: format!("user {id}"),
    }
}

/// A decorated function computes once, then hits; 16 concurrent cold
/// calls run it once.
pub async fn decorated_calls_run_once(cache: &Cache) {
    let calls = AtomicUsize::new(0);
    assert_eq!(profile(cache, &calls, 7).await.name, "user 7");
    assert_eq!(profile(cache, &calls, 7).await.name, "user 7");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let cold = (0..16).map(|_| profile(cache, &calls, 8));
    let all = futures_util::future::join_all(cold).await;
    assert!(all.iter().all(|p| p.id == 8));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A killed backend: reads and writes give their neutral answers within
/// `bound`; counters, windows, locks and `ping` return transient errors.
pub async fn a_dead_backend_answers(cache: &Cache, bound: Duration) {
    let got = within("get", bound, cache.get::<u32>("k")).await;
    assert_eq!(got.unwrap(), None);
    let set = within("set", bound, cache.set("k", &2u32).into_future()).await;
    assert!(!set.unwrap());
    assert!(is_transient_backend_error(cache.incr("n").await));
    assert!(is_transient_backend_error(
        cache.slice_incr("w", 0, 10, 5, "1m").await
    ));
    assert!(is_transient_backend_error(
        cache.set_lock("l", "token", "10s").await
    ));
    assert!(is_transient_backend_error(cache.ping().await));
}

/// Waits (up to 5 s) until `works` says the backend answers again.
pub async fn recovers<F, Fut>(what: &str, mut works: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..50 {
        if works().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cache works again after {what}");
}
