//! Redis Cluster failover: a local cluster of three primaries with a
//! replica each (a node fails after 1 s without answers), a primary lost
//! mid-traffic. One cluster at a time: six servers and a failover each.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cashews::codec::{CodecKind, Serializer};
use cashews::redis::{RedisBackend, RedisConfig};
use cashews::{Cache, Clock};
use support::redis::RedisCluster;
use support::traffic::{self, Traffic};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Traffic from 16 tasks; the primary of one task's key is killed; its
/// replica takes over and the same `Cache` writes to it, every call
/// answering within its deadline meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_promoted_replica_when_a_primary_dies() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start_with(1);
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}&response_timeout=500ms&connect_timeout=500ms&suppress=false",
            cluster.url()
        ))
        .unwrap();
    // A client-side reader reads every task's key meanwhile.
    let (reader, _backend) = reader(
        &format!(
            "{}&response_timeout=500ms&connect_timeout=500ms&client_side=true&local_max_ttl=1h",
            cluster.url()
        ),
        Clock::system(),
    );
    let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reads = tokio::spawn({
        let (reader, reading) = (reader.clone(), reading.clone());
        async move {
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                for task in 0..16 {
                    let _ = reader.get::<u64>(&traffic::key(task)).await;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let traffic = Traffic::start(&cache, 16);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = traffic::key(0);
    let old = cluster.kill_primary_of(&victim);
    traffic.outage();
    traffic.wait_for_recovery(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = traffic.stop().await;
    println!(
        "cluster failover (primary killed): writes to every key succeed again {:?} after the primary died; slowest call {:?}",
        report.recovery.expect("every task wrote again"),
        report.slowest
    );
    assert_ne!(cluster.primary_of(&victim), old);
    // Every call met its 500 ms deadline (with room for a loaded machine).
    assert!(report.slowest < Duration::from_secs(3), "{report:?}");
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    reads.await.unwrap();
    for (task, acknowledged) in report.acknowledged.iter().enumerate() {
        let key = traffic::key(task);
        let stored = cache.get::<u64>(&key).await.unwrap();
        assert_eq!(stored, Some(*acknowledged), "task {task}");
        // The reader sees the last write too (reported by the new primary).
        until(&reader, &key, *acknowledged, Duration::from_secs(2))
            .await
            .unwrap();
    }
}

/// A cache whose only backend is a client-side Redis backend for `url`, on
/// `clock`.
fn reader(url: &str, clock: Clock) -> (Cache, Arc<RedisBackend>) {
    let config = RedisConfig::parse(url).unwrap();
    let backend = Arc::new(RedisBackend::with_clock(config, clock).unwrap());
    let cache = Cache::new();
    cache.add_backend("", backend.clone(), Serializer::new(CodecKind::Bincode));
    (cache, backend)
}

/// Reads `key` until it holds `want`, at most `within` (an error is
/// retried: the outage's last errors).
async fn until(cache: &Cache, key: &str, want: u64, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        match cache.get::<u64>(key).await {
            Ok(Some(value)) if value == want => return Ok(()),
            other => last = Some(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{key} was not {want} within {within:?}: {last:?}"))
}

/// Reads `key` (holding `want`) until the reader keeps it locally: a read
/// whose reply crossed a report of an earlier write is not kept.
async fn kept(reader: &Cache, backend: &RedisBackend, key: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        until(reader, key, want, Duration::from_secs(2))
            .await
            .unwrap();
        if backend.local_len() > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the reader does not keep {key}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The reader keeps `key` (holding `value`) and sees the next write of it
/// within 2 s: the node holding it reports writes to the reader.
async fn tracked(writer: &Cache, reader: &Cache, backend: &RedisBackend, key: &str, value: u64) {
    kept(reader, backend, key, value).await;
    write(writer, key, value + 1).await;
    until(reader, key, value + 1, Duration::from_secs(2))
        .await
        .unwrap();
}

/// Writes `value` to `key`, retrying errors for at most 10 s.
async fn write(cache: &Cache, key: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(error) = cache.set(key, &value).await {
        assert!(Instant::now() < deadline, "{key}: {error}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client-side reader kept a value from the primary that dies; after the
/// failover it reads the promoted replica, and a write made there reaches
/// it (the new primary tracks it), never leaving it a stale local copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_side_reader_sees_writes_made_after_a_failover() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start_with(1);
    let params = "&response_timeout=500ms&connect_timeout=500ms&suppress=false";
    let writer = Cache::new();
    writer.setup(&format!("{}{params}", cluster.url())).unwrap();
    let (reader, backend) = reader(
        &format!(
            "{}{params}&client_side=true&local_max_ttl=1h",
            cluster.url()
        ),
        Clock::system(),
    );
    write(&writer, "k", 1).await;
    kept(&reader, &backend, "k", 1).await;

    let old = cluster.kill_primary_of("k");
    cluster.wait_for_failover("k", old);
    write(&writer, "k", 2).await;
    until(&reader, "k", 2, Duration::from_secs(20))
        .await
        .unwrap();
    // The reader keeps k again, read from the new primary; the next write
    // there reaches it.
    tracked(&writer, &reader, &backend, "k", 2).await;
}

/// The cluster's topology changes without a connection of the reader
/// breaking: the slot of `k` moves to a node added to the cluster (a
/// resharding), which the reader reaches over a connection opened after
/// tracking was turned on, so that node does not report writes to the
/// reader. The periodic check of every primary's tracking state finds it
/// untracked, drops the local copy and turns tracking on again: the reader
/// serves a stale value only until the check is due (`client_side_check`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_reached_after_tracking_was_turned_on_is_found_untracked() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start();
    let params = "&response_timeout=500ms&connect_timeout=500ms&suppress=false";
    let writer = Cache::new();
    writer.setup(&format!("{}{params}", cluster.url())).unwrap();
    let (clock, time) = Clock::manual();
    let (reader, backend) = reader(
        &format!(
            "{}{params}&client_side=true&local_max_ttl=1h&client_side_check=5s",
            cluster.url()
        ),
        clock,
    );
    write(&writer, "k", 1).await;
    kept(&reader, &backend, "k", 1).await;
    let new = cluster.move_slot_to_new_node("k");
    assert_eq!(cluster.primary_of("k"), new);

    // Writes of k go to the new node now, which does not report them to
    // the reader: until the check is due, the reader may serve 1; once due,
    // the check finds the new node untracked and the local copy goes.
    write(&writer, "k", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        reader.get::<u64>("k").await.unwrap(),
        Some(1),
        "the gap the check closes: no report of the write reached the reader"
    );
    time.advance(Duration::from_secs(6));
    until(&reader, "k", 2, Duration::from_secs(2))
        .await
        .unwrap();
    // Tracking is on again on every primary: the reader keeps k, and the
    // next write is reported at once.
    tracked(&writer, &reader, &backend, "k", 2).await;
}

/// The client connections `node` has, by id (its own `redis-cli` aside).
fn clients(node: &support::redis::RedisServer) -> Vec<String> {
    node.cli(&["CLIENT", "LIST", "TYPE", "normal"])
        .lines()
        .filter(|line| !line.contains("cmd=client|list"))
        .filter_map(|line| line.split(' ').next().map(str::to_owned))
        .collect()
}

/// A cluster connection on which nothing answers for two response
/// timeouts is replaced by a new one (redis-rs' cluster connection can stay
/// stuck recovering its slot map after failovers while a new connection
/// answers at once; `scripts/soak` with `cluster-failover` ran into it).
/// Here every node hangs (SIGSTOP) for longer than that, then runs again:
/// a new connection is made on every node, and used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_connection_silent_for_two_timeouts_is_replaced() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}&response_timeout=300ms&connect_timeout=300ms&suppress=false",
            cluster.url()
        ))
        .unwrap();
    let keys: Vec<String> = (0..30).map(|n| format!("k{n}")).collect();
    for key in &keys {
        cache.set(key, &1u8).await.unwrap();
    }
    let before: Vec<Vec<String>> = cluster.nodes.iter().map(clients).collect();
    assert!(before.iter().all(|c| !c.is_empty()), "{before:?}");

    // A short silence (within the patience) keeps the connection.
    for node in &cluster.nodes {
        node.pause();
    }
    let _ = cache.get::<u8>("k0").await.unwrap_err();
    for node in &cluster.nodes {
        node.resume();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for key in &keys {
        assert_eq!(cache.get::<u8>(key).await.unwrap(), Some(1));
    }
    let kept: Vec<Vec<String>> = cluster.nodes.iter().map(clients).collect();
    assert_eq!(kept, before, "one timeout does not replace the connection");

    // Nothing answers for longer than two timeouts.
    for node in &cluster.nodes {
        node.pause();
    }
    let silent = Instant::now();
    while silent.elapsed() < Duration::from_millis(900) {
        let _ = cache.get::<u8>("k0").await;
    }
    for node in &cluster.nodes {
        node.resume();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for key in &keys {
        while cache.get::<u8>(key).await.ok().flatten() != Some(1) {
            assert!(
                Instant::now() < deadline,
                "{key} unreadable after the nodes ran again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Made on a task of its own, the new connection replaces the old one
    // once it is ready; the next commands use it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for key in &keys {
            let _ = cache.get::<u8>(key).await;
        }
        let renewed = cluster
            .nodes
            .iter()
            .zip(&before)
            .all(|(node, before)| clients(node).iter().any(|id| !before.contains(id)));
        if renewed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new connection on every node: before {before:?}, now {:?}",
            cluster.nodes.iter().map(clients).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
