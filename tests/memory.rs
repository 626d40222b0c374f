//! What only the memory backend does: LRU eviction, sharding, the sweep.

mod support;

use std::time::Duration;

use cashews::{Cache, Clock};
use support::Harness;

#[tokio::test(start_paused = true)]
async fn least_recently_used_entry_is_evicted_at_size() {
    let h = Harness::memory("mem://?size=3");
    let c = &h.cache;
    for k in ["a", "b", "c"] {
        c.set(k, &k).await.unwrap();
    }
    assert_eq!(
        c.get::<String>("a").await.unwrap().as_deref(),
        Some("a"),
        "touch a"
    );
    c.set("d", &"d").await.unwrap();
    assert_eq!(c.get_keys_count().await.unwrap(), 3);
    assert_eq!(
        c.get::<String>("b").await.unwrap(),
        None,
        "b was the least recently used"
    );
    for k in ["a", "c", "d"] {
        assert!(c.exists(k).await.unwrap(), "{k}");
    }
}

#[tokio::test(start_paused = true)]
async fn sharded_cache_never_exceeds_size() {
    let h = Harness::memory("mem://?size=10000");
    for i in 0..25_000 {
        h.cache.set(&format!("k{i}"), &i).await.unwrap();
    }
    let count = h.cache.get_keys_count().await.unwrap();
    assert!(count <= 10_000 && count > 9_000, "{count}");
    // The most recent writes are all there.
    for i in 24_900..25_000 {
        assert_eq!(h.cache.get::<i32>(&format!("k{i}")).await.unwrap(), Some(i));
    }
}

#[tokio::test(start_paused = true)]
async fn sweep_purges_expired_entries_without_reads() {
    let h = Harness::memory("mem://?size=1000&check_interval=1s");
    for i in 0..100 {
        h.cache
            .set(&format!("k{i}"), &i)
            .expire("1500ms")
            .await
            .unwrap();
    }
    h.cache.set("kept", &1).await.unwrap();
    assert_eq!(h.cache.get_keys_count().await.unwrap(), 101);
    h.advance(Duration::from_millis(1100)).await;
    settle().await;
    assert_eq!(
        h.cache.get_keys_count().await.unwrap(),
        101,
        "nothing expired at the first sweep"
    );
    h.advance(Duration::from_millis(1000)).await;
    settle().await;
    assert_eq!(
        h.cache.get_keys_count().await.unwrap(),
        1,
        "swept at the second"
    );
}

#[tokio::test(start_paused = true)]
async fn without_sweep_expired_entries_are_still_never_returned() {
    let h = Harness::memory("mem://?check_interval=0");
    h.cache.set("k", &1).expire("1s").await.unwrap();
    h.advance(Duration::from_secs(5)).await;
    assert_eq!(h.cache.get_keys_count().await.unwrap(), 1, "no sweep ran");
    assert_eq!(h.cache.get::<i32>("k").await.unwrap(), None);
    assert_eq!(h.cache.get_keys_count().await.unwrap(), 0, "purged on read");
}

/// Lets every woken task run (the test runs on a current-thread runtime).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

async fn alive_tasks_after(f: impl std::future::Future<Output = ()>) -> usize {
    f.await;
    settle().await;
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn sweep_task_stops_on_close_and_on_drop() {
    let base = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://?check_interval=10s").unwrap();
    cache.set("k", &1).await.unwrap();
    assert_eq!(
        alive_tasks_after(async {}).await,
        base + 1,
        "the sweep started"
    );
    assert_eq!(
        alive_tasks_after(async { cache.close().await.unwrap() }).await,
        base,
        "close stops it"
    );

    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://?check_interval=10s").unwrap();
    cache.set("k", &1).await.unwrap();
    assert_eq!(alive_tasks_after(async {}).await, base + 1);
    assert_eq!(
        alive_tasks_after(async { drop(cache) }).await,
        base,
        "drop stops it"
    );
}

#[test]
fn setup_works_outside_a_runtime() {
    let cache = Cache::new();
    cache.setup("mem://?size=5").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        cache.set("k", &1).await.unwrap();
        assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
    });
}

#[test]
fn invalid_memory_parameters() {
    let cache = Cache::new();
    for (url, needle) in [
        ("mem://?size=0", "size"),
        ("mem://?size=-1", "size"),
        ("mem://?size=lots", "positive integer"),
        ("mem://?check_interval=soon", "check_interval"),
        ("mem://?sise=10", "sise"),
        ("mem://localhost", "no host"),
    ] {
        let err = cache.setup(url).unwrap_err().to_string();
        assert!(err.contains(needle), "{url}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_entry_is_kept_when_every_older_entry_was_read() {
    let h = Harness::memory("mem://?size=3");
    let c = &h.cache;
    for k in ["a", "b", "c"] {
        c.set(k, &k).await.unwrap();
        c.get::<String>(k).await.unwrap();
    }
    c.set_add("set", &["m"], None::<u64>).await.unwrap();
    assert!(
        c.exists("set").await.unwrap(),
        "the newest entry is never the one evicted"
    );
    c.slice_incr("window", 0, 10, 5, "1h").await.unwrap();
    assert!(c.exists("window").await.unwrap());
    assert_eq!(c.get_keys_count().await.unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_hot_tagged_key_never_outlives_its_tag_records() {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://?size=1000").unwrap();
    cache.set("hot", &1u32).tags(&["t"]).await.unwrap();
    for round in 0..50u32 {
        // Fillers push everything unread out; the hot key is read all along.
        for n in 0..200u32 {
            let key = format!("filler:{round}:{n}");
            cache.set(&key, &n).tags(&["fillers"]).await.unwrap();
        }
        assert_eq!(
            cache.get::<u32>("hot").await.unwrap(),
            Some(1),
            "round {round}"
        );
    }
    assert_eq!(cache.delete_tags(&["t"]).await.unwrap(), 1);
    assert_eq!(
        cache.get::<u32>("hot").await.unwrap(),
        None,
        "deleted with its tag"
    );
}

#[tokio::test(start_paused = true)]
async fn tag_records_of_evicted_keys_are_swept() {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://?size=100&check_interval=1s").unwrap();
    for n in 0..1000u32 {
        cache
            .set(&format!("k{n}"), &n)
            .tags(&[&format!("own:{n}"), "all"])
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records: Vec<String> = cache
        .scan("_tags:key:*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let live = cache.get_keys_count().await.unwrap() as usize;
    // At most one record per live key remains; every evicted key's went.
    assert!(records.len() <= 100, "{} key records", records.len());
    let tag_sets: Vec<String> = cache
        .scan("_tags:tag:own:*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        tag_sets.len() <= 100,
        "{} tag sets of {live} keys",
        tag_sets.len()
    );
    // The live ones still delete with their tags.
    let before = cache.get_keys_count().await.unwrap();
    assert!(cache.delete_tags(&["all"]).await.unwrap() > 0);
    assert!(cache.get_keys_count().await.unwrap() < before);
}
