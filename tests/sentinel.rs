//! Redis Sentinel (`redis+sentinel://`): a primary, its replica and three
//! sentinels per test, a failover mid-traffic. In a binary of its own, one
//! test at a time: sentinels reconfigure any server that answers on a port
//! they know, so their groups are kept away from other tests' servers.
#![cfg(feature = "redis")]

mod support;

use std::time::{Duration, Instant};

use cashews::Cache;

/// One group at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
use support::redis::SentinelGroup;
use support::traffic::{self, Traffic};

#[test]
fn sentinel_urls_are_checked() {
    let cache = Cache::new();
    for (url, needle) in [
        ("redis+sentinel://127.0.0.1:26379", "service"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/x", "database"),
        (
            "redis+sentinel://127.0.0.1:26379/mymaster?cluster=true",
            "cluster",
        ),
        (
            "redis+sentinel://127.0.0.1:26379/mymaster?client_side=true",
            "client_side",
        ),
        (
            "redis+sentinel://127.0.0.1:26379/mymaster?colour=red",
            "colour",
        ),
        (
            "redis+sentinel://127.0.0.1:26379/mymaster?read_from_replicas=often",
            "read_from_replicas",
        ),
        (
            "redis://127.0.0.1:6379/0?read_from_replicas=true",
            "read_from_replicas",
        ),
    ] {
        let error = cache.setup(url).unwrap_err().to_string();
        assert!(error.contains(needle), "{url}: {error}");
    }
    cache
        .setup("redis+sentinel://a:26379,b:26380/mymaster/2?sentinel_password=x&read_from_replicas=true")
        .unwrap();
}

/// Traffic from 16 tasks; the primary is killed; the sentinels promote
/// the replica and the same `Cache` writes to it, every call answering
/// within its deadline meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_new_primary_after_a_failover() {
    failover(false).await;
}

/// The same with the primary hung (SIGSTOP) instead: calls on its
/// connection time out, and the connection is left for the new primary;
/// the old one, back, is a replica the cache does not write to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_new_primary_after_the_old_one_hangs() {
    failover(true).await;
}

/// With `wait_replicas=1` a write is acknowledged once the replica has
/// it: after the primary is killed and the replica promoted, every
/// acknowledged write is there. With no replica left, writes fail
/// (and say why) while reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_no_acknowledged_write_is_lost() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut group = SentinelGroup::start();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?wait_replicas=1&response_timeout=500ms&suppress=false",
            group.url()
        ))
        .unwrap();
    let traffic = Traffic::start(&cache, 16);
    tokio::time::sleep(Duration::from_millis(500)).await;
    traffic.outage();
    tokio::task::block_in_place(|| group.fail_over());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acknowledged = traffic.stop().await.acknowledged;
    assert!(acknowledged.iter().all(|n| *n > 0), "{acknowledged:?}");
    // The outage's last errors may still hold calls back for a moment.
    let read = |key: String| {
        let cache = cache.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match cache.get::<u64>(&key).await {
                    Ok(value) => return value,
                    Err(error) if Instant::now() < deadline => {
                        println!("retrying {key}: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => panic!("{key}: {error}"),
                }
            }
        }
    };
    for (task, acked) in acknowledged.iter().enumerate() {
        let stored = read(traffic::key(task)).await;
        assert!(
            stored >= Some(*acked),
            "task {task}: acknowledged {acked}, stored {stored:?}"
        );
    }
    let error = cache.set("alone", &1u8).await.unwrap_err().to_string();
    assert!(error.contains("replicas"), "{error}");
}

async fn failover(hang: bool) {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut group = SentinelGroup::start();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?response_timeout=500ms&connect_timeout=500ms&suppress=false",
            group.url()
        ))
        .unwrap();
    cache.set("before", &1u32).await.unwrap();
    group.primary.cli(&["WAIT", "1", "5000"]);

    let traffic = Traffic::start(&cache, 16);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let old_primary = group.primary.port;
    if hang {
        group.primary.pause();
    } else {
        group.primary.kill_now();
    }
    traffic.outage();
    traffic.wait_for_recovery(Duration::from_secs(60)).await;
    if hang {
        // Back, the old primary is made a replica of the new one.
        group.primary.resume();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = traffic.stop().await;
    println!(
        "sentinel failover ({}): writes succeed again {:?} after the primary stopped; slowest call {:?}",
        if hang { "primary hung" } else { "primary killed" },
        report.recovery.expect("every task wrote again"),
        report.slowest
    );
    assert_eq!(group.primary_port(), Some(group.replica.port));
    assert_ne!(group.primary_port(), Some(old_primary));
    // Every call met its 500 ms deadline (with room for a loaded machine).
    assert!(report.slowest < Duration::from_secs(3), "{report:?}");
    assert_eq!(cache.get::<u32>("before").await.unwrap(), Some(1));
    cache.set("after", &2u32).await.unwrap();
    assert_eq!(cache.get::<u32>("after").await.unwrap(), Some(2));
    // The last value each task wrote is read back from the new primary.
    for (task, acknowledged) in report.acknowledged.iter().enumerate() {
        let stored = cache.get::<u64>(&traffic::key(task)).await.unwrap();
        assert_eq!(stored, Some(*acknowledged), "task {task}");
    }
}

/// How many `GET`s and `MGET`s `server` ran since its stats were reset.
fn reads(server: &support::redis::RedisServer) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]);
    ["cmdstat_get:calls=", "cmdstat_mget:calls="]
        .iter()
        .filter_map(|field| {
            let rest = &stats[stats.find(field)? + field.len()..];
            rest.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// With `read_from_replicas=true` reads go to the replica; when it hangs
/// or dies, reads go back to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_a_replica_and_to_the_primary_without_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut group = SentinelGroup::start();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?read_from_replicas=true&response_timeout=500ms&suppress=false",
            group.url()
        ))
        .unwrap();
    cache.set("k", &1u32).await.unwrap();
    group.primary.cli(&["WAIT", "1", "5000"]);
    // The replica's connection is made on the side; reads go to the
    // primary until it is there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reads(&group.replica) == 0 {
        assert!(Instant::now() < deadline, "no read reached the replica");
        assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for server in [&group.primary, &group.replica] {
        server.cli(&["CONFIG", "RESETSTAT"]);
    }
    for _ in 0..20 {
        assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
    }
    assert!(reads(&group.replica) >= 20, "{}", reads(&group.replica));
    assert_eq!(reads(&group.primary), 0, "reads stay off the primary");

    // The replica hangs: the read waiting on it goes to the primary after a
    // quarter of its deadline, the next ones at once.
    group.replica.pause();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(reads(&group.primary) >= 20, "{}", reads(&group.primary));
    group.replica.resume();

    // The replica dies: each read goes to the primary within its call.
    group.primary.cli(&["CONFIG", "RESETSTAT"]);
    group.replica.kill_now();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(reads(&group.primary) >= 20, "{}", reads(&group.primary));
    // Writes were never sent to a replica.
    cache.set("k", &2u32).await.unwrap();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(2));
}
