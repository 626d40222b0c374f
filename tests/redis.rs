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
        ("redis://127.0.0.1:6379/0?db=2", "path"),
        ("redis://127.0.0.1:6379/0?protocol=resp4", "protocol"),
        (
            "redis://127.0.0.1:6379/0?protocol=resp2&client_side=true",
            "resp3",
        ),
        ("redis+unix://host/run/redis.sock", "socket"),
        ("redis+unix:///run/redis.sock?cluster=true", "cluster"),
        ("unix:///run/redis.sock?db=x", "database number"),
    ] {
        let err = cache.setup(url).expect_err(url).to_string();
        assert!(err.contains(needle), "{url}: {err}");
    }
    cache
        .setup("redis://127.0.0.1:6379/2?suppress=no&connect_timeout=200ms&client_name=svc")
        .unwrap();
    cache
        .setup("redis://127.0.0.1:6379/2?protocol=resp3")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_sockets_work_as_redis_and_unix_urls() {
    let dir = std::env::temp_dir().join(format!("cashews-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let _server = RedisServer::start_unix(&socket);
    for (scheme, db) in [("redis+unix", 3), ("unix", 4)] {
        let cache = Cache::new();
        cache
            .setup(&format!(
                "{scheme}://{}?db={db}&response_timeout=2s",
                socket.display()
            ))
            .unwrap();
        cache.set("k", &scheme).await.unwrap();
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some(scheme)
        );
        assert_eq!(
            cache.get_keys_count().await.unwrap(),
            1,
            "{scheme}: its own db"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_is_built_on_an_existing_redis_rs_client_and_a_typed_config() {
    use cashews::backend::Backend;
    use cashews::codec::{CodecKind, Serializer};
    use cashews::redis::{RedisBackend, RedisConfig};
    let server = RedisServer::start();
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}/5", server.port)).unwrap();
    let config = RedisConfig::default()
        .response_timeout("500ms")
        .unwrap()
        .client_name("from-client");
    assert!(RedisConfig::default().response_timeout("0s").is_err());
    let backend: std::sync::Arc<dyn Backend> =
        std::sync::Arc::new(RedisBackend::from_client(client, config));
    let cache = Cache::new();
    cache.add_backend("", backend, Serializer::new(CodecKind::Postcard));
    cache.set("shared", &41u32).await.unwrap();
    assert_eq!(cache.get::<u32>("shared").await.unwrap(), Some(41));
    let clients = server.cli(&["CLIENT", "LIST"]);
    assert!(clients.contains("name=from-client"), "{clients}");
    assert_eq!(server.cli(&["-n", "5", "EXISTS", "shared"]).trim(), "1");
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

#[cfg(feature = "redis-tls")]
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

/// Two caches with client-side caching on one server, and a handle on each
/// backend to see its local copy.
mod client_side {
    use std::sync::Arc;

    use cashews::codec::{CodecKind, Serializer};
    use cashews::redis::{RedisBackend, RedisConfig};
    use cashews::Cache;

    use super::*;

    pub struct Side {
        pub cache: Cache,
        pub backend: Arc<RedisBackend>,
    }

    /// A cache whose only backend is a client-side Redis backend for `url`.
    pub fn side(url: &str) -> Side {
        let backend = Arc::new(RedisBackend::new(RedisConfig::parse(url).unwrap()).unwrap());
        let cache = Cache::new();
        cache.add_backend("", backend.clone(), Serializer::new(CodecKind::Bincode));
        Side { cache, backend }
    }

    /// Polls `check` every 5 ms for at most 1 s.
    pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !check().await {
            assert!(Instant::now() < deadline, "not within 1 s: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn get(side: &Side, key: &str) -> Option<u32> {
        side.cache.get::<u32>(key).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_are_local_and_another_clients_write_invalidates_them() {
        let server = RedisServer::start();
        let url = format!("{}?client_side=true", server.url());
        let (a, b) = (side(&url), side(&url));
        a.cache.set("k", &1u32).await.unwrap();
        // The report of A's write may reach B after B's read was sent; then
        // B does not keep that reply, and keeps the next one.
        eventually("B keeps what it read", async || {
            get(&b, "k").await == Some(1) && b.backend.local_len() == 1
        })
        .await;
        assert!(b.backend.is_tracking());
        // A local hit does not reach the server.
        let calls = || {
            let stats = server.cli(&["info", "commandstats"]);
            stats
                .lines()
                .find(|l| l.starts_with("cmdstat_get:"))
                .map(|l| l.to_owned())
        };
        let before = calls();
        for _ in 0..100 {
            assert_eq!(get(&b, "k").await, Some(1));
        }
        assert_eq!(calls(), before, "hits were served in process");

        a.cache.set("k", &2u32).await.unwrap();
        eventually("B sees A's write", async || get(&b, "k").await == Some(2)).await;
        for _ in 0..200 {
            assert_eq!(get(&b, "k").await, Some(2), "never the old value again");
        }
        // A writer outside cashews, and a delete, reach B the same way.
        server.cli(&["set", "raw", "x"]);
        assert_eq!(
            b.cache.get_raw("raw").await.unwrap().as_deref(),
            Some(&b"x"[..])
        );
        server.cli(&["set", "raw", "y"]);
        eventually("B sees a raw write", async || {
            b.cache.get_raw("raw").await.unwrap().as_deref() == Some(&b"y"[..])
        })
        .await;
        a.cache.delete("k").await.unwrap();
        eventually("B sees A's delete", async || get(&b, "k").await.is_none()).await;
        // A's own writes update its local copy (the server does not echo them).
        a.cache.set("mine", &7u32).await.unwrap();
        assert_eq!(a.backend.local_len(), 1);
        assert_eq!(get(&a, "mine").await, Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_keys_under_the_prefix_are_kept_locally() {
        let server = RedisServer::start();
        let url = format!(
            "{}?client_side=true&client_side_prefix=hot:&local_size=2",
            server.url()
        );
        let (a, b) = (side(&url), side(&url));
        for key in ["hot:1", "hot:2", "hot:3", "cold:1"] {
            a.cache.set(key, &1u32).await.unwrap();
            assert_eq!(get(&b, key).await, Some(1));
        }
        eventually("local_size bounds the copy", async || {
            for key in ["hot:1", "hot:2", "hot:3", "cold:1"] {
                get(&b, key).await;
            }
            b.backend.local_len() == 2
        })
        .await;
        a.cache.set("cold:1", &2u32).await.unwrap();
        assert_eq!(
            get(&b, "cold:1").await,
            Some(2),
            "cold keys are read from redis"
        );
        a.cache.set("hot:3", &2u32).await.unwrap();
        eventually("hot keys are invalidated", async || {
            get(&b, "hot:3").await == Some(2)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flushdb_empties_the_local_copy() {
        let server = RedisServer::start();
        let b = side(&format!("{}?client_side=true", server.url()));
        for n in 0..10u32 {
            b.cache.set(&format!("k{n}"), &n).await.unwrap();
            assert_eq!(get(&b, &format!("k{n}")).await, Some(n));
        }
        assert_eq!(b.backend.local_len(), 10);
        server.cli(&["flushdb"]);
        eventually("FLUSHDB reaches B", async || b.backend.local_len() == 0).await;
        assert_eq!(get(&b, "k3").await, None);
        assert!(b.backend.is_tracking(), "a flush keeps tracking on");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_connection_flushes_and_tracking_resumes_after_reconnect() {
        let server = RedisServer::start();
        let url = format!("{}?client_side=true", server.url());
        let a = side(&url);
        let b = side(&format!("{url}&client_name=side-b"));
        a.cache.set("k", &1u32).await.unwrap();
        eventually("B keeps what it read", async || {
            get(&b, "k").await == Some(1) && b.backend.local_len() == 1
        })
        .await;

        let killed = server.cli(&["client", "kill", "skipme", "no", "type", "normal"]);
        assert!(killed.trim().parse::<u32>().unwrap() >= 2, "{killed}");
        eventually("the disconnect flushes B", async || {
            b.backend.local_len() == 0 && !b.backend.is_tracking()
        })
        .await;
        // Meanwhile A writes; B must not answer from a stale copy.
        a.cache.set("k", &2u32).await.unwrap();
        eventually("B reconnects and reads", async || {
            get(&b, "k").await == Some(2)
        })
        .await;
        eventually("tracking is on again", async || {
            get(&b, "k").await == Some(2) && b.backend.is_tracking() && b.backend.local_len() == 1
        })
        .await;
        // Invalidations arrive on the new connection.
        a.cache.set("k", &3u32).await.unwrap();
        eventually("B sees writes after the reconnect", async || {
            get(&b, "k").await == Some(3)
        })
        .await;
    }

    /// Once a reply has been returned, no local read serves a value whose
    /// invalidation arrived before that reply: a writer sets `t:k` then `f`;
    /// a reader that sees `f = i` must then see `t:k >= i`, although `t:k`
    /// is served locally and `f` comes from Redis. Across `CLIENT KILL` and a
    /// server restart too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_invalidation_is_applied_before_any_later_reply_is_returned() {
        let mut server = RedisServer::start();
        let port = server.port;
        let reader = Arc::new(side(&format!(
            "{}?client_side=true&client_side_prefix=t:",
            server.url()
        )));
        let writer = Arc::new(side(&server.url()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = {
            let (writer, done) = (writer.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !done.load(Ordering::Relaxed) {
                    i += 1;
                    // Each write is retried until stored, so the order holds
                    // across the outage.
                    for key in ["t:k", "f"] {
                        while !writer.cache.set(key, &i).await.unwrap() {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            })
        };
        let (mut compared, mut violations, mut reads) = (0u64, 0u64, 0u64);
        let mut killed = false;
        let mut restarted = None;
        while compared < 50_000 {
            let f = reader.cache.get::<u64>("f").await.unwrap();
            let k = reader.cache.get::<u64>("t:k").await.unwrap();
            reads += 1;
            if let (Some(f), Some(k)) = (f, k) {
                compared += 1;
                if k < f {
                    violations += 1;
                }
            }
            if compared == 15_000 && !killed {
                killed = true;
                server.cli(&["client", "kill", "type", "normal"]);
            }
            if compared == 30_000 && restarted.is_none() {
                server.kill();
                restarted = Some(RedisServer::start_on(port));
            }
            assert!(reads < 2_000_000, "too few comparable reads: {compared}");
        }
        done.store(true, Ordering::Relaxed);
        writing.await.unwrap();
        assert!(killed && restarted.is_some());
        assert_eq!(violations, 0, "{violations} stale reads of {compared}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_writers_converge_on_the_servers_value() {
        let server = RedisServer::start();
        let url = format!("{}?client_side=true", server.url());
        let (a, b) = (Arc::new(side(&url)), Arc::new(side(&url)));
        let keys: Vec<String> = (0..4).map(|n| format!("race:{n}")).collect();
        let stop = Instant::now() + Duration::from_secs(3);
        let mut tasks = Vec::new();
        let sides = (0..16).map(|n| if n % 2 == 0 { a.clone() } else { b.clone() });
        for (worker, side) in sides.enumerate() {
            let keys = keys.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = worker as u32;
                while Instant::now() < stop {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let key = &keys[(n >> 8) as usize % keys.len()];
                    if n % 3 == 0 {
                        side.cache.set(key, &n).await.unwrap();
                    } else if n % 17 == 0 {
                        side.cache.delete(key).await.unwrap();
                    } else {
                        side.cache.get::<u32>(key).await.unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let direct = side(&server.url());
        for key in &keys {
            let truth = direct.cache.get::<u32>(key).await.unwrap();
            eventually(
                &format!("{key} agrees on A, B and the server"),
                async || get(&a, key).await == truth && get(&b, key).await == truth,
            )
            .await;
            // And stays so (no late fill of an old value).
            assert_eq!(get(&a, key).await, truth);
            assert_eq!(get(&b, key).await, truth);
        }
    }

    #[test]
    fn client_side_options_are_checked() {
        for (url, needle) in [
            ("redis://127.0.0.1:6379/0?local_size=10", "client_side=true"),
            (
                "redis://127.0.0.1:6379/0?client_side=true&local_size=0",
                "local_size",
            ),
            (
                "redis://127.0.0.1:6379/0?client_side=true&local_max_ttl=0s",
                "local_max_ttl",
            ),
            ("redis://127.0.0.1:6379/0?client_side=maybe", "client_side"),
            (
                "redis://127.0.0.1:6379/0?client_side_check=1s",
                "client_side=true",
            ),
            (
                "redis://127.0.0.1:6379/0?client_side=true&client_side_check=0s",
                "client_side_check",
            ),
            (
                "redis://127.0.0.1:6379/0?client_side=true&client_side_check=soon",
                "client_side_check",
            ),
        ] {
            let err = RedisConfig::parse(url).expect_err(url).to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }
}

mod cluster {
    use super::client_side::{eventually, side};
    use super::*;
    use support::redis::RedisCluster;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_spread_over_the_primaries_and_keyspace_commands_visit_each() {
        let cluster = RedisCluster::start();
        let cache = Cache::new();
        cache.setup(&cluster.url()).unwrap();
        let keys: Vec<String> = (0..60).map(|n| format!("item:{n}")).collect();
        let pairs: Vec<(&str, u32)> = keys.iter().zip(0..).map(|(k, n)| (k.as_str(), n)).collect();
        cache.set_many(&pairs).await.unwrap();
        for node in &cluster.nodes {
            let count: u32 = node.cli(&["dbsize"]).trim().parse().unwrap();
            assert!(count > 0, "every primary holds some keys");
        }
        assert_eq!(cache.get_keys_count().await.unwrap(), 60);
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = cache.get_many::<u32>(&refs).await.unwrap();
        assert_eq!(values, (0..60).map(Some).collect::<Vec<_>>());
        let mut scanned = cache
            .scan("item:*")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        scanned.sort();
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(scanned, expected);
        assert_eq!(cache.delete_many(&refs[..10]).await.unwrap(), 10);
        assert_eq!(cache.delete_match("item:*").await.unwrap(), 50);
        assert_eq!(cache.get_keys_count().await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_side_tracks_every_primary() {
        let cluster = RedisCluster::start();
        let url = format!("{}&client_side=true", cluster.url());
        let (a, b) = (side(&url), side(&url));
        let keys: Vec<String> = (0..30).map(|n| format!("k{n}")).collect();
        for key in &keys {
            a.cache.set(key, &1u32).await.unwrap();
        }
        eventually("B keeps what it read from every primary", async || {
            for key in &keys {
                assert_eq!(b.cache.get::<u32>(key).await.unwrap(), Some(1));
            }
            b.backend.local_len() == 30
        })
        .await;
        for key in &keys {
            a.cache.set(key, &2u32).await.unwrap();
        }
        for key in &keys {
            eventually(&format!("{key} is invalidated on B"), async || {
                b.cache.get::<u32>(key).await.unwrap() == Some(2)
            })
            .await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_gets_are_split_by_slot() {
        let cluster = RedisCluster::start();
        let cache = Cache::new();
        cache
            .setup(&format!("{}&suppress=false", cluster.url()))
            .unwrap();
        let keys: Vec<String> = (0..200).map(|n| format!("item:{n}")).collect();
        for (n, key) in keys.iter().enumerate() {
            cache.set(key, &(n as u32)).await.unwrap();
        }
        for node in &cluster.nodes {
            node.cli(&["config", "resetstat"]);
        }
        for _ in 0..5 {
            let calls: Vec<_> = keys
                .iter()
                .map(|key| {
                    let (cache, key) = (cache.clone(), key.clone());
                    tokio::spawn(async move { cache.get::<u32>(&key).await })
                })
                .collect();
            for (n, call) in calls.into_iter().enumerate() {
                assert_eq!(call.await.unwrap().unwrap(), Some(n as u32));
            }
        }
        let batches: u64 = cluster.nodes.iter().map(|node| calls(node, "mget")).sum();
        assert!(batches > 0, "no MGET reached a primary");
    }

    #[test]
    fn cluster_urls_are_checked() {
        let cache = Cache::new();
        for (url, needle) in [
            ("redis://h1:1,h2:2/0", "cluster=true"),
            ("redis://h1:1,h2:2/3?cluster=true", "database 0"),
            ("redis://h1:1,,h2:2?cluster=true", "empty host"),
        ] {
            let err = cache.setup(url).expect_err(url).to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
        cache.setup("redis://h1:1,h2:2?cluster=true").unwrap();
    }
}

/// `calls=` of `command` in `INFO commandstats`.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let stats = server.cli(&["info", "commandstats"]);
    stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_commits_in_one_multi_exec() {
    let server = RedisServer::start();
    let cache = Cache::new();
    cache.setup(&server.url()).unwrap();
    cache.set("gone", &1).await.unwrap();
    let tx = cache.transaction(cashews::TransactionMode::Fast);
    tx.set("a", &1, "1h").await.unwrap();
    tx.set("b", &2, std::time::Duration::from_millis(1500))
        .await
        .unwrap();
    tx.incr("n", 3).await.unwrap();
    assert!(tx.delete("gone").await.unwrap());
    server.cli(&["config", "resetstat"]);
    tx.commit().await.unwrap();
    assert_eq!(
        (
            calls(&server, "multi"),
            calls(&server, "exec"),
            calls(&server, "set"),
            calls(&server, "incrby"),
            calls(&server, "unlink"),
        ),
        // `unlink` twice: the key and its tags' record.
        (1, 1, 2, 1, 2)
    );
    assert_eq!(cache.get::<i32>("a").await.unwrap(), Some(1));
    assert_eq!(cache.get_counter("n").await.unwrap(), Some(3));
    assert!(!cache.exists("gone").await.unwrap());
    let pttl: i64 = server.cli(&["pttl", "b"]).trim().parse().unwrap();
    assert!(pttl > 1000 && pttl <= 1500, "{pttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_can_live_on_a_dedicated_backend() {
    let server = RedisServer::start();
    // Values in database 0, tags in database 1 (kept apart from the
    // values' eviction, for example).
    let cache = Cache::new();
    cache.setup(&server.url()).unwrap();
    let tags_url = server.url().replace("/0", "/1");
    cache.setup_tags(&tags_url).unwrap();
    cache.set("p:1", &1).tags(&["products"]).await.unwrap();
    cache.set("p:2", &2).tags(&["products"]).await.unwrap();
    cache.set("q:1", &3).await.unwrap();
    let db = |n: &str, args: &[&str]| {
        let mut all = vec!["-n", n];
        all.extend_from_slice(args);
        server.cli(&all).trim().to_owned()
    };
    assert_eq!(db("1", &["scard", "_tags:tag:products"]), "2");
    assert_eq!(db("1", &["dbsize"]), "3", "the tag and one record per key");
    assert_eq!(db("0", &["dbsize"]), "3", "values only");
    assert_eq!(cache.delete_tags(&["products"]).await.unwrap(), 2);
    assert_eq!(db("0", &["dbsize"]), "1");
    assert_eq!(db("1", &["dbsize"]), "0");
    assert_eq!(cache.get::<i32>("q:1").await.unwrap(), Some(3));
}

/// Automatic batching (`batch=true`, the default): concurrent `get`s that
/// queue while the connection is busy leave as one `MGET`.
mod batching {
    use super::*;
    use support::is_transient_backend_error;

    /// A small deterministic generator (the mixes are replayable from
    /// their seed).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Get(String),
        Set(String, u64),
        Delete(String),
    }

    const SHARED: u64 = 16;

    /// Task `task`'s operations: reads of shared keys nobody writes (many
    /// tasks read the same ones at once), of keys nobody has, and reads,
    /// writes and deletes of the task's own keys.
    fn mix(seed: u64, task: u64, ops: usize) -> Vec<Op> {
        let mut rng = Rng(seed ^ (task << 32));
        (0..ops)
            .map(|n| {
                let own = format!("own:{task}:{}", rng.below(4));
                match rng.below(10) {
                    0..=2 => Op::Get(format!("shared:{}", rng.below(SHARED))),
                    3 => Op::Get(format!("absent:{}", rng.below(8))),
                    4..=5 => Op::Get(own),
                    6..=8 => Op::Set(own, task * 1_000_000 + n as u64),
                    _ => Op::Delete(own),
                }
            })
            .collect()
    }

    async fn apply(cache: &Cache, op: &Op) -> String {
        match op {
            Op::Get(key) => format!("{:?}", cache.get::<u64>(key).await.unwrap()),
            Op::Set(key, value) => format!("{:?}", cache.set(key, value).await.unwrap()),
            Op::Delete(key) => format!("{:?}", cache.delete(key).await.unwrap()),
        }
    }

    async fn fill_shared(cache: &Cache) {
        for n in 0..SHARED {
            cache.set(&format!("shared:{n}"), &(n * 7)).await.unwrap();
        }
    }

    /// Runs `tasks` concurrent mixes on `url` (database 0) and replays each
    /// task's operations alone, unbatched, on database 1: every answer must
    /// be the same. Returns how many `MGET`s the concurrent run sent.
    async fn compare_with_replay(server: &RedisServer, params: &str, seed: u64) -> u64 {
        const TASKS: u64 = 48;
        const OPS: usize = 150;
        let cache = Cache::new();
        cache.setup(&format!("{}{params}", server.url())).unwrap();
        fill_shared(&cache).await;
        server.cli(&["config", "resetstat"]);
        let runs: Vec<_> = (0..TASKS)
            .map(|task| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut answers = Vec::with_capacity(OPS);
                    for op in mix(seed, task, OPS) {
                        answers.push(apply(&cache, &op).await);
                    }
                    answers
                })
            })
            .collect();
        let mut concurrent = Vec::new();
        for run in runs {
            concurrent.push(run.await.unwrap());
        }
        let batches = calls(server, "mget");

        let replay = Cache::new();
        replay
            .setup(&server.url().replace("/0", "/1?batch=false"))
            .unwrap();
        fill_shared(&replay).await;
        for (task, answers) in concurrent.iter().enumerate() {
            let mut alone = Vec::with_capacity(OPS);
            for op in mix(seed, task as u64, OPS) {
                alone.push(apply(&replay, &op).await);
            }
            assert_eq!(
                answers, &alone,
                "seed {seed}, task {task}: the concurrent run answered otherwise"
            );
        }
        batches
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_mixes_answer_as_a_sequential_replay() {
        let server = RedisServer::start();
        let mut batches = 0;
        for seed in [1, 2, 3] {
            server.cli(&["flushall"]);
            batches += compare_with_replay(&server, "", seed).await;
        }
        // The runs did batch (otherwise this test would say nothing).
        assert!(batches > 0, "no MGET was sent");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_side_caching_answers_as_a_sequential_replay_with_batching() {
        let server = RedisServer::start();
        // Shared keys are kept in process (read with their TTL, unbatched);
        // the tasks' own keys go through batches.
        compare_with_replay(&server, "?client_side=true&client_side_prefix=shared:", 4).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_false_sends_every_get_alone() {
        let server = RedisServer::start();
        let batches = compare_with_replay(&server, "?batch=false", 5).await;
        assert_eq!(batches, 0);
        let error = Cache::new()
            .setup(&format!("{}?batch=maybe", server.url()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("batch"), "{error}");
    }

    type Timed = (cashews::Result<Option<u32>>, Duration);

    /// Concurrent gets of `key{i}` for each `i` in `keys`, each timed.
    fn gets(cache: &Cache, keys: std::ops::Range<usize>) -> Vec<tokio::task::JoinHandle<Timed>> {
        keys.map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let got = cache.get::<u32>(&format!("key{i}")).await;
                (got, started.elapsed())
            })
        })
        .collect()
    }

    /// A cache on `server` whose failures are errors (`suppress=false`,
    /// a 5 s deadline), with `key0`..`key39` holding 0..39.
    async fn strict_with_keys(server: &RedisServer) -> Cache {
        let cache = Cache::new();
        cache
            .setup(&format!(
                "{}?suppress=false&response_timeout=5s",
                server.url()
            ))
            .unwrap();
        for i in 0..40 {
            cache.set(&format!("key{i}"), &(i as u32)).await.unwrap();
        }
        cache
    }

    /// Gives spawned gets time to reach the stopped server or the queue
    /// (they cannot be answered meanwhile, so waiting longer changes
    /// nothing).
    async fn wait_until_queued() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_caller_of_a_failed_batch_gets_the_error() {
        let mut server = RedisServer::start();
        let cache = strict_with_keys(&server).await;
        server.pause();
        let calls = gets(&cache, 0..40);
        wait_until_queued().await;
        // The server dies holding the requests sent: they fail, the queued
        // batch then finds no server, and every caller hears of it at once,
        // long before its own deadline.
        server.kill_now();
        for call in calls {
            let (got, took) = call.await.unwrap();
            assert!(is_transient_backend_error(got), "an error for every caller");
            assert!(took < Duration::from_secs(3), "took {took:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_caller_of_a_hung_batch_meets_its_deadline() {
        let server = RedisServer::start();
        let strict = Cache::new();
        strict
            .setup(&format!(
                "{}?suppress=false&response_timeout=300ms",
                server.url()
            ))
            .unwrap();
        let lenient = Cache::new();
        lenient
            .setup(&format!("{}?response_timeout=300ms", server.url()))
            .unwrap();
        for i in 0..30 {
            strict.set(&format!("key{i}"), &(i as u32)).await.unwrap();
        }
        lenient.get::<u32>("key0").await.unwrap();
        server.pause();
        let (strict_calls, lenient_calls) = (gets(&strict, 0..30), gets(&lenient, 0..30));
        for call in strict_calls {
            let (got, took) = call.await.unwrap();
            assert!(is_transient_backend_error(got));
            assert!(took < Duration::from_millis(900), "took {took:?}");
        }
        for call in lenient_calls {
            let (got, took) = call.await.unwrap();
            assert_eq!(got.unwrap(), None, "a hung server reads as a miss");
            assert!(took < Duration::from_millis(900), "took {took:?}");
        }
        server.resume();
        super::client_side::eventually("the batches flow again", async || {
            strict.get::<u32>("key7").await.ok() == Some(Some(7))
        })
        .await;
        let answers = gets(&strict, 0..30);
        for (i, call) in answers.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().0.unwrap(), Some(i as u32));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identical_queued_gets_share_one_lookup() {
        let server = RedisServer::start();
        let cache = Cache::new();
        cache
            .setup(&format!("{}?response_timeout=5s", server.url()))
            .unwrap();
        cache.set("hot", &7u32).await.unwrap();
        server.cli(&["config", "resetstat"]);
        server.pause();
        let waiting: Vec<_> = (0..64)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get::<u32>("hot").await })
            })
            .collect();
        wait_until_queued().await;
        server.resume();
        for call in waiting {
            assert_eq!(call.await.unwrap().unwrap(), Some(7));
        }
        // Redis counts a lookup per key read: the calls sent alone, plus
        // one per batch however many callers it carried.
        let hits: u64 = server
            .cli(&["info", "stats"])
            .lines()
            .find_map(|l| l.strip_prefix("keyspace_hits:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap();
        assert!(hits < 20, "{hits} lookups for 64 gets of one key");
        assert!(calls(&server, "mget") > 0);
    }

    /// Callers on a runtime that shuts down with batches queued (a
    /// short-lived runtime beside the one holding the connection): the
    /// batches it can no longer run give their places in flight back.
    #[test]
    fn a_runtime_shut_down_mid_batch_leaves_no_place_taken() {
        let server = RedisServer::start();
        let runtime = || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        };
        // The connection lives on this runtime (redis-rs runs it there).
        let main = runtime();
        let cache = main.block_on(strict_with_keys(&server));
        // More shut-downs than there are places in flight.
        for _ in 0..12 {
            let doomed = runtime();
            doomed.block_on(async {
                server.pause();
                // Sent, queued in a full batch, and queued behind them.
                drop(gets(&cache, 0..30));
                wait_until_queued().await;
            });
            drop(doomed);
            server.resume();
        }
        main.block_on(async {
            let started = Instant::now();
            for (i, call) in gets(&cache, 0..40).into_iter().enumerate() {
                assert_eq!(call.await.unwrap().0.unwrap(), Some(i as u32), "key{i}");
            }
            assert!(started.elapsed() < Duration::from_secs(2));
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_go_away_do_not_disturb_the_others() {
        let server = RedisServer::start();
        let cache = strict_with_keys(&server).await;
        server.pause();
        // The first calls take the connection's places in flight (sent to
        // the stopped server), the later ones queue.
        let mut calls = gets(&cache, 0..8);
        wait_until_queued().await;
        calls.extend(gets(&cache, 8..40));
        wait_until_queued().await;
        // All of the first go away, and every other one of the queued.
        let mut kept = Vec::new();
        for (i, call) in calls.into_iter().enumerate() {
            if i < 8 || i % 2 == 0 {
                call.abort();
                assert!(call.await.unwrap_err().is_cancelled());
            } else {
                kept.push((i, call));
            }
        }
        server.resume();
        for (i, call) in kept {
            let (got, _) = call.await.unwrap();
            assert_eq!(got.unwrap(), Some(i as u32), "key{i}");
        }
        // Nothing is left stuck: a later burst is answered as well.
        for (i, call) in gets(&cache, 0..40).into_iter().enumerate() {
            assert_eq!(call.await.unwrap().0.unwrap(), Some(i as u32));
        }
    }
}
