//! A Redis that is down (killed) or hung (SIGSTOP), with the default
//! `suppress=true`: no command waits past its deadline, no command with no
//! neutral answer makes one up, locks never stall their callers, and the
//! strategies that count decide openly what a failing backend means.
//!
//! The latency bounds here are upper bounds on real time against a real
//! server: they are generous (twice the deadline plus slack), so a loaded
//! machine does not make them flake, yet far below what the library did
//! before (whole lock TTLs, retries with backoff).
#![cfg(feature = "redis")]

mod support;

use support::{is_transient_backend_error, within};

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::{cache, Cache};
use support::redis::RedisServer;
use support::strategies::Failure;

/// The per-call deadline the caches below are set up with.
const DEADLINE: Duration = Duration::from_millis(400);

/// The most one command may take against a dead or hung server.
fn bound() -> Duration {
    DEADLINE * 2 + Duration::from_millis(300)
}

fn connect(server: &RedisServer, extra: &str) -> Cache {
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?response_timeout={}ms&connect_timeout={}ms{extra}",
            server.url(),
            DEADLINE.as_millis(),
            DEADLINE.as_millis()
        ))
        .unwrap();
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_without_a_neutral_answer_fail_instead_of_making_one_up() {
    let mut server = RedisServer::start();
    let cache = connect(&server, "");
    cache.init().await.unwrap();
    server.kill();
    // Reads and writes have a neutral answer: a miss, "not stored".
    assert_eq!(cache.get::<u32>("k").await.unwrap(), None);
    assert!(!cache.set("k", &1u32).await.unwrap());
    // Counters, windows, locks and bits do not: any number would be made up.
    assert!(is_transient_backend_error(cache.incr("n").await));
    assert!(is_transient_backend_error(
        cache.slice_incr("w", 0, 10, 5, "1m").await
    ));
    assert!(is_transient_backend_error(
        cache.set_lock("l", "token", "10s").await
    ));
    assert!(is_transient_backend_error(cache.unlock("l", "token").await));
    assert!(is_transient_backend_error(
        cache.get_bits("b", &[1, 2], 1).await
    ));
    assert!(is_transient_backend_error(
        cache.incr_bits("b", &[1], 1, 1).await
    ));
}

async fn rate_limited_default(cache: &Cache) -> Result<u32, Failure> {
    #[cache::rate_limit(limit = 3, period = "1m", cache = cache, key = "allow")]
    async fn call(cache: &Cache) -> Result<u32, Failure> {
        let _ = cache;
        Ok(1)
    }
    call(cache).await
}

async fn rate_limited_deny(cache: &Cache) -> Result<u32, Failure> {
    #[cache::rate_limit(limit = 3, period = "1m", cache = cache, key = "deny", on_backend_error = deny)]
    async fn call(cache: &Cache) -> Result<u32, Failure> {
        let _ = cache;
        Ok(1)
    }
    call(cache).await
}

async fn slice_limited_deny(cache: &Cache) -> Result<u32, Failure> {
    #[cache::slice_rate_limit(limit = 3, period = "1m", cache = cache, key = "sdeny", on_backend_error = deny)]
    async fn call(cache: &Cache) -> Result<u32, Failure> {
        let _ = cache;
        Ok(1)
    }
    call(cache).await
}

static BREAKER_CALLS: AtomicUsize = AtomicUsize::new(0);

async fn guarded_deny(cache: &Cache) -> Result<u32, Failure> {
    #[cache::circuit_breaker(errors_rate = 50, period = "1m", ttl = "10s", cache = cache, key = "cb-deny", on_backend_error = deny)]
    async fn call(cache: &Cache) -> Result<u32, Failure> {
        let _ = cache;
        BREAKER_CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(1)
    }
    call(cache).await
}

async fn guarded_allow(cache: &Cache) -> Result<u32, Failure> {
    #[cache::circuit_breaker(errors_rate = 50, period = "1m", ttl = "10s", cache = cache, key = "cb-allow", on_backend_error = allow)]
    async fn call(cache: &Cache) -> Result<u32, Failure> {
        let _ = cache;
        BREAKER_CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(1)
    }
    call(cache).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_circuit_breakers_say_what_an_outage_means() {
    let mut server = RedisServer::start();
    let cache = connect(&server, "");
    // Up: the limit holds.
    let up: Vec<_> =
        futures_util::future::join_all((0..5).map(|_| rate_limited_deny(&cache))).await;
    assert_eq!(up.iter().filter(|r| r.is_ok()).count(), 3, "{up:?}");
    server.kill();
    // Down, `on_backend_error = deny`: nothing is let through.
    for _ in 0..10 {
        assert_eq!(rate_limited_deny(&cache).await, Err(Failure::Limited));
        assert_eq!(slice_limited_deny(&cache).await, Err(Failure::Limited));
        assert_eq!(guarded_deny(&cache).await, Err(Failure::Open));
    }
    assert_eq!(BREAKER_CALLS.load(Ordering::SeqCst), 0);
    // Down, the default (`allow`): calls run, as with no cache at all.
    for _ in 0..10 {
        assert_eq!(rate_limited_default(&cache).await, Ok(1));
        assert_eq!(guarded_allow(&cache).await, Ok(1));
    }
    assert_eq!(BREAKER_CALLS.load(Ordering::SeqCst), 10);
}

static LOCK_CALLS: AtomicUsize = AtomicUsize::new(0);

async fn under_cache_lock(cache: &Cache, n: u32) -> u32 {
    #[cache(ttl = "15s", lock, cache = cache, key = "cl:{n}")]
    async fn call(cache: &Cache, n: u32) -> u32 {
        let _ = cache;
        LOCK_CALLS.fetch_add(1, Ordering::SeqCst);
        n
    }
    call(cache, n).await
}

async fn under_locked(cache: &Cache) -> Result<u32, Failure> {
    #[cache::locked(ttl = "15s", cache = cache, key = "locked")]
    async fn call(cache: &Cache) -> Result<u32, Failure> {
        let _ = cache;
        LOCK_CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(7)
    }
    call(cache).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_never_hold_callers_for_their_ttl_when_the_backend_fails() {
    for hung in [false, true] {
        let mut server = RedisServer::start();
        let cache = connect(&server, "");
        cache.init().await.unwrap();
        if hung {
            server.pause();
        } else {
            server.kill();
        }
        let before = LOCK_CALLS.load(Ordering::SeqCst);
        // The lock request itself reports the failure; it is not "held".
        let taken = within("lock", bound(), cache.lock("job", "15s").into_future()).await;
        assert!(
            is_transient_backend_error(taken.map(drop)),
            "hung={hung}: a backend error, not Locked"
        );
        // Decorators run the body without the lock (a read, a lock attempt
        // and a write each meet the deadline at most once).
        assert_eq!(
            within("#[cache(lock)]", bound() * 3, under_cache_lock(&cache, 5)).await,
            5
        );
        assert_eq!(
            within("#[cache::locked]", bound() * 2, under_locked(&cache)).await,
            Ok(7)
        );
        assert_eq!(LOCK_CALLS.load(Ordering::SeqCst), before + 2, "hung={hung}");
        if hung {
            server.resume();
        }
    }
}

async fn decorated(cache: &Cache, n: u32) -> u32 {
    #[cache(ttl = "1m", cache = cache, key = "d:{n}")]
    async fn call(cache: &Cache, n: u32) -> u32 {
        let _ = cache;
        n + 1
    }
    call(cache, n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_meets_its_deadline_on_a_hung_server() {
    for extra in ["", "&client_side=true"] {
        let server = RedisServer::start();
        // One cache connected before the server hangs, one that connects to
        // the hung server (the TCP handshake succeeds; nothing answers).
        let warm = connect(&server, extra);
        warm.set("k", &1u32).await.unwrap();
        assert_eq!(warm.get::<u32>("k").await.unwrap(), Some(1));
        server.pause();
        let cold = connect(&server, extra);
        for (name, cache) in [("warm", &warm), ("cold", &cold)] {
            let what = |command: &str| format!("{name} {command} {extra}");
            let got = within(&what("get"), bound(), cache.get::<u32>("other")).await;
            assert_eq!(got.unwrap(), None);
            let set = within(&what("set"), bound(), cache.set("k2", &2u32).into_future()).await;
            assert!(!set.unwrap());
            let incr = within(&what("incr"), bound(), cache.incr("n").into_future()).await;
            assert!(is_transient_backend_error(incr));
            let lock = within(&what("lock"), bound(), cache.lock("l", "10s").into_future()).await;
            assert!(is_transient_backend_error(lock.map(drop)));
            // A decorated call: a read and a write, each within the deadline.
            let answer = within(&what("#[cache]"), bound() * 2, decorated(cache, 1)).await;
            assert_eq!(answer, 2);
        }
        server.resume();
        // And the warm cache works again once the server does.
        let mut recovered = false;
        for _ in 0..50 {
            if warm.set("k", &3u32).await.unwrap() {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(recovered, "{extra}: the cache works again after the hang");
    }
}

#[test]
fn a_zero_timeout_is_refused() {
    let cache = Cache::new();
    for param in [
        "response_timeout=0",
        "response_timeout=0s",
        "connect_timeout=0ms",
    ] {
        let url = format!("redis://127.0.0.1:6379/0?{param}");
        let err = cache.setup(&url).expect_err(&url).to_string();
        assert!(
            err.contains(param.split('=').next().unwrap()),
            "{url}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_commit_that_cannot_be_written_is_an_error() {
    let mut server = RedisServer::start();
    let cache = connect(&server, "");
    cache.init().await.unwrap();
    server.kill();
    let tx = cache.transaction(cashews::TransactionMode::Fast);
    tx.set("a", &1u32, cashews::Ttl::FOREVER).await.unwrap();
    tx.incr("n", 1).await.unwrap();
    // Nothing was written: "committed" would be a lie.
    assert!(is_transient_backend_error(tx.commit().await));
}
