//! The memcached backend against real servers: `#[cache]` on it, several
//! servers, keys memcached cannot take, foreign and tampered items, and
//! servers that die, hang and come back. (The conformance, strategy,
//! features, HTTP and compression suites run on it too.)
#![cfg(feature = "memcached")]

mod support;

use support::{is_transient_backend_error, remote, within};

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::{Cache, Command, Error};
use support::memcached::MemcachedServer;

/// The per-call deadline the caches below are set up with.
const DEADLINE: Duration = Duration::from_millis(400);

/// The most one command may take against a dead or hung server.
fn bound() -> Duration {
    DEADLINE * 2 + Duration::from_millis(300)
}

fn connect(servers: &[&MemcachedServer]) -> Cache {
    let hosts: Vec<String> = servers.iter().map(|s| s.address()).collect();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "memcached://{}?response_timeout={}ms&connect_timeout={}ms",
            hosts.join(","),
            DEADLINE.as_millis(),
            DEADLINE.as_millis()
        ))
        .unwrap();
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decorated_functions_cache_on_memcached() {
    let server = MemcachedServer::start();
    let cache = connect(&[&server]);
    remote::decorated_calls_run_once(&cache).await;
    assert!(cache.supports("any", Command::Get).unwrap());
    assert!(!cache.supports("any", Command::Scan).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_memcached_cannot_take_are_hashed_not_refused() {
    let server = MemcachedServer::start();
    let cache = connect(&[&server]);
    let long = "k".repeat(10_000);
    let keys = [
        long.as_str(),
        "with space",
        "with  space",
        "tab\there",
        "new\nline\r\n",
        "ünïcödé:ключ",
        "",
    ];
    for (n, key) in keys.iter().enumerate() {
        cache.set(key, &n).await.unwrap();
    }
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(cache.get::<usize>(key).await.unwrap(), Some(n), "{key:?}");
    }
    assert_eq!(cache.incr("a b c").await.unwrap(), 1);
    let lock = format!("lock {long}");
    assert!(cache.set_lock(&lock, "t", "10s").await.unwrap());
    assert!(cache.is_locked(&lock).await.unwrap());
    assert!(cache.unlock(&lock, "t").await.unwrap());
    // The server was never sent a bad command line: it still answers.
    assert_eq!(server.raw(b"mn\r\n"), b"MN\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_tampered_items_are_misses_or_clear_errors() {
    let server = MemcachedServer::start();
    let cache = connect(&[&server]);
    // Written by another client: plain bytes, no header.
    assert_eq!(server.raw(b"set foreign 0 0 5\r\nhello\r\n"), b"STORED\r\n");
    assert_eq!(cache.get::<remote::Profile>("foreign").await.unwrap(), None);
    assert_eq!(
        cache.get_raw("foreign").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert!(cache.exists("foreign").await.unwrap());
    // A decimal written by another client counts.
    server.raw(b"set counter 0 0 2\r\n41\r\n");
    assert_eq!(cache.incr("counter").await.unwrap(), 42);
    // Our header with a kind this version does not know: a miss.
    let mut unknown = vec![0xCA, 9];
    unknown.extend_from_slice(&[0; 8]);
    unknown.extend_from_slice(b"payload");
    let mut request = format!("set unknown 0 0 {}\r\n", unknown.len()).into_bytes();
    request.extend_from_slice(&unknown);
    request.extend_from_slice(b"\r\n");
    assert_eq!(server.raw(&request), b"STORED\r\n");
    assert_eq!(cache.get_raw("unknown").await.unwrap(), None);
    assert!(!cache.exists("unknown").await.unwrap());
    // A set whose payload is cut short: an error naming the key, no panic.
    let mut set = vec![0xCA, 2];
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(&[0, 0, 0, 200, b'x']);
    let mut request = format!("set tagged 0 0 {}\r\n", set.len()).into_bytes();
    request.extend_from_slice(&set);
    request.extend_from_slice(b"\r\n");
    server.raw(&request);
    assert!(matches!(
        cache.set_add("tagged", &["a"], None::<u64>).await,
        Err(Error::WrongType { key, .. }) if key == "tagged"
    ));
    // Garbage under a cached function's key is a miss, then replaced.
    let calls = AtomicUsize::new(0);
    server.raw(b"set profile:9 0 0 3\r\n\x00\x01\x02\r\n");
    assert_eq!(remote::profile(&cache, &calls, 9).await.id, 9);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(remote::profile(&cache, &calls, 9).await.id, 9);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_item_size_is_an_error_and_the_connection_goes_on() {
    let server = MemcachedServer::start();
    let cache = connect(&[&server]);
    // memcached's default item size is 1 MiB.
    let big = vec![7u8; 2 << 20];
    let refused = cache.set_raw("big", big).await;
    assert!(
        matches!(&refused, Err(error @ Error::Backend { .. }) if !error.is_transient()
            && error.to_string().contains("too large")),
        "{refused:?}"
    );
    assert_eq!(cache.get_raw("big").await.unwrap(), None);
    cache.set("after", &1u8).await.unwrap();
    assert_eq!(cache.get::<u8>("after").await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_servers_and_one_down_leaves_the_others_serving() {
    let a = MemcachedServer::start();
    let mut b = MemcachedServer::start();
    let cache = connect(&[&a, &b]);
    let keys: Vec<String> = (0..200).map(|i| format!("spread:{i}")).collect();
    let pairs: Vec<(&str, u32)> = keys.iter().map(|k| k.as_str()).zip(0..).collect();
    cache.set_many(&pairs).await.unwrap();
    let on = |server: &MemcachedServer| {
        keys.iter()
            .filter(|k| {
                server
                    .raw(format!("mg {k} v\r\n").as_bytes())
                    .starts_with(b"VA")
            })
            .count()
    };
    let (on_a, on_b) = (on(&a), on(&b));
    assert_eq!(on_a + on_b, 200, "each key on exactly one server");
    assert!(on_a > 60 && on_b > 60, "{on_a} / {on_b}");
    let refs: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    let all: Vec<Option<u32>> = cache.get_many(&refs).await.unwrap();
    assert_eq!(all, (0..200).map(Some).collect::<Vec<_>>());
    // Another process with the servers listed in another order agrees.
    let other = connect(&[&b, &a]);
    assert_eq!(other.get::<u32>("spread:17").await.unwrap(), Some(17));
    // One server dies: its keys miss, the other's keys still hit, in time.
    b.kill();
    let got: Vec<Option<u32>> = within("get_many", bound(), cache.get_many(&refs))
        .await
        .unwrap();
    let hits = got.iter().filter(|v| v.is_some()).count();
    assert_eq!(hits, on_a);
    for _ in 0..3 {
        within("get_many again", bound(), cache.get_many::<u32>(&refs))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_a_miss_then_used_again_when_it_returns() {
    let mut server = MemcachedServer::start();
    let port = server.port;
    let cache = connect(&[&server]);
    cache.set("k", &1u32).await.unwrap();
    server.kill();
    // Neutral answers for reads and writes; errors for what has none.
    remote::a_dead_backend_answers(&cache, bound()).await;
    // The same Cache uses the server again once it is back.
    let _server = MemcachedServer::start_on(port);
    remote::recovers("the restart", || async {
        cache.set("k", &3u32).await.unwrap()
    })
    .await;
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_meets_its_deadline_on_a_hung_server() {
    let server = MemcachedServer::start();
    let warm = connect(&[&server]);
    warm.set("k", &1u32).await.unwrap();
    server.pause();
    let cold = connect(&[&server]);
    for (name, cache) in [("warm", &warm), ("cold", &cold)] {
        let got = within(name, bound(), cache.get::<u32>("k")).await;
        assert_eq!(got.unwrap(), None);
        let set = within(name, bound(), cache.set("k2", &2u32).into_future()).await;
        assert!(!set.unwrap());
        let incr = within(name, bound(), cache.incr("n").into_future()).await;
        assert!(is_transient_backend_error(incr));
        let lock = within(name, bound(), cache.lock("l", "10s").into_future()).await;
        assert!(is_transient_backend_error(lock.map(drop)));
    }
    server.resume();
    remote::recovers("the hang", || async {
        warm.get::<u32>("k").await.unwrap() == Some(1)
    })
    .await;
}

#[test]
fn bad_urls_are_clear_errors() {
    for (url, says) in [
        ("memcached://user:pw@127.0.0.1:11211", "no authentication"),
        ("memcached://127.0.0.1:11211/0", "no path"),
        ("memcached://127.0.0.1:port", "host:port"),
        ("memcached://:11211", "host:port"),
        ("memcached://a:1,a:1", "twice"),
        (
            "memcached://127.0.0.1:11211?response_timeout=0",
            "response_timeout",
        ),
        ("memcached://127.0.0.1:11211?pool=3", "pool"),
    ] {
        let error = Cache::new().setup(url).unwrap_err().to_string();
        assert!(error.contains(says), "{url}: {error}");
    }
}
