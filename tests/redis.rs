//! What only the Redis backend does: outages, suppress, URLs, signing with
//! values written by other clients. The shared suites run in conformance.rs.
#![cfg(feature = "redis")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cashews::{cache, Cache, Error};
use support::redis::RedisServer;

#[test]
fn redis_urls_are_checked() {
    let cache = Cache::new();
    for (url, needle) in [
        ("redis://127.0.0.1:6379/0?colour=red", "colour"),
        ("redis://127.0.0.1:6379/0?suppress=maybe", "suppress"),
        (
            "redis://127.0.0.1:6379/0?response_timeout=soon",
            "response_timeout",
        ),
        ("redis://127.0.0.1:6379/db", "database number"),
        ("redis://h1:1,h2:2/0", "cluster"),
    ] {
        let err = cache.setup(url).expect_err(url).to_string();
        assert!(err.contains(needle), "{url}: {err}");
    }
    cache
        .setup("redis://127.0.0.1:6379/2?suppress=no&connect_timeout=200ms&client_name=svc")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_written_by_another_client_are_misses_under_a_secret() {
    let server = RedisServer::start();
    let signed = Cache::new();
    signed
        .setup(&format!("{}?secret=s3cret", server.url()))
        .unwrap();
    let plain = Cache::new();
    plain.setup(&server.url()).unwrap();
    signed.set("price", &100u32).await.unwrap();
    assert_eq!(signed.get::<u32>("price").await.unwrap(), Some(100));
    // Another client overwrites the value with raw bytes.
    plain.set_raw("price", "999").await.unwrap();
    assert_eq!(signed.get::<u32>("price").await.unwrap(), None);
    plain.set("price", &5u32).await.unwrap();
    assert_eq!(signed.get::<u32>("price").await.unwrap(), None, "unsigned");
    assert_eq!(signed.stats().unsigned, 2);
}

static OUTAGE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_degrades_to_no_cache_and_recovery_needs_no_new_cache() {
    let mut server = RedisServer::start();
    let port = server.port;
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?response_timeout=300ms&connect_timeout=300ms",
            server.url()
        ))
        .unwrap();
    cache.set("k", &1).await.unwrap();

    #[cache(ttl = "1m", cache = cache, key = "computed:{n}")]
    async fn computed(cache: &Cache, n: u32) -> u32 {
        let _ = cache;
        OUTAGE_CALLS.fetch_add(1, Ordering::SeqCst);
        n * 2
    }
    assert_eq!(computed(&cache, 1).await, 2);
    assert_eq!(computed(&cache, 1).await, 2);
    assert_eq!(OUTAGE_CALLS.load(Ordering::SeqCst), 1);

    server.kill();
    let started = Instant::now();
    assert_eq!(
        cache.get::<i32>("k").await.unwrap(),
        None,
        "a miss, not an error"
    );
    assert!(!cache.set("k", &2).await.unwrap());
    assert_eq!(
        cache.get_many::<i32>(&["a", "b"]).await.unwrap(),
        vec![None, None]
    );
    assert!(cache
        .scan("*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(computed(&cache, 1).await, 2, "the function still answers");
    assert_eq!(OUTAGE_CALLS.load(Ordering::SeqCst), 2);
    assert!(cache.ping().await.is_err(), "ping reports the outage");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let _restarted = RedisServer::start_on(port);
    let mut recovered = false;
    for _ in 0..50 {
        if cache.set("k", &3).await.unwrap() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the same cache works again after the restart");
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_suppress_errors_surface_as_transient() {
    let mut server = RedisServer::start();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?suppress=false&response_timeout=300ms&connect_timeout=300ms",
            server.url()
        ))
        .unwrap();
    cache.init().await.unwrap();
    server.kill();
    match cache.get::<i32>("k").await {
        Err(
            error @ Error::Backend {
                backend: "redis", ..
            },
        ) => assert!(error.is_transient(), "{error}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_connects_with_the_right_ca_and_fails_clearly_with_a_wrong_one() {
    use support::redis::TestCertificates;
    let certs = TestCertificates::create("good");
    let other = TestCertificates::create("other");
    let server = RedisServer::start_tls(&certs);
    let url = format!("rediss://127.0.0.1:{}/0", server.port);

    let cache = Cache::new();
    cache
        .setup(&format!("{url}?ssl_ca_certs={}", certs.path("ca.crt")))
        .unwrap();
    cache.init().await.unwrap();
    cache.set("secure", &"yes").await.unwrap();
    assert_eq!(
        cache.get::<String>("secure").await.unwrap().as_deref(),
        Some("yes")
    );

    let wrong = Cache::new();
    wrong
        .setup(&format!(
            "{url}?ssl_ca_certs={}&suppress=false",
            other.path("ca.crt")
        ))
        .unwrap();
    let error = wrong
        .init()
        .await
        .expect_err("an unknown CA is refused")
        .to_string();
    assert!(
        error.to_lowercase().contains("certificate")
            || error.to_lowercase().contains("unknownissuer"),
        "{error}"
    );

    let missing = Cache::new()
        .setup(&format!("{url}?ssl_ca_certs=/no/such/ca.pem"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("ssl_ca_certs") && missing.contains("/no/such/ca.pem"),
        "{missing}"
    );
    let plain = Cache::new()
        .setup(&format!(
            "redis://127.0.0.1:{}/0?ssl_ca_certs={}",
            server.port,
            certs.path("ca.crt")
        ))
        .unwrap_err()
        .to_string();
    assert!(plain.contains("rediss://"), "{plain}");
}
