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

mod typed_tier {
    //! Decorated hits of `Clone` values clone a copy kept beside the bytes;
    //! the bytes stay the truth.

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, LazyLock};

    use cashews::backend::{Backend, MemoryBackend, MemoryConfig};
    use cashews::codec::{CodecKind, Digest, Serializer};
    use cashews::{cache, Cache, Clock};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct Profile {
        id: u32,
        name: String,
    }

    fn signed(secret: &[u8]) -> Serializer {
        Serializer::new(CodecKind::Bincode).with_secret(secret, Digest::Sha256)
    }

    /// One memory backend under two caches signing with different secrets.
    static BACKEND: LazyLock<Arc<dyn Backend>> =
        LazyLock::new(|| Arc::new(MemoryBackend::new(MemoryConfig::default(), Clock::system())));

    fn over_backend(secret: &[u8]) -> Cache {
        let cache = Cache::new();
        cache.add_backend("", BACKEND.clone(), signed(secret));
        cache
    }

    static FIRST: LazyLock<Cache> = LazyLock::new(|| over_backend(b"first"));
    static SECOND: LazyLock<Cache> = LazyLock::new(|| over_backend(b"second"));
    static FIRST_RUNS: AtomicU32 = AtomicU32::new(0);
    static SECOND_RUNS: AtomicU32 = AtomicU32::new(0);

    #[cache(ttl = "1h", key = "profile:{id}", cache = FIRST)]
    async fn first(id: u32) -> Profile {
        FIRST_RUNS.fetch_add(1, Ordering::SeqCst);
        Profile {
            id,
            name: "computed".into(),
        }
    }

    #[cache(ttl = "1h", key = "profile:{id}", cache = SECOND)]
    async fn second(id: u32) -> Profile {
        SECOND_RUNS.fetch_add(1, Ordering::SeqCst);
        Profile {
            id,
            name: "second".into(),
        }
    }

    #[tokio::test]
    async fn a_kept_copy_never_outlives_its_bytes_nor_crosses_serializers() {
        let (cache, other) = (&*FIRST, &*SECOND);
        // Enough hits to be kept and then served from the copy.
        for _ in 0..4 {
            assert_eq!(first(1).await.name, "computed");
        }
        assert_eq!(FIRST_RUNS.load(Ordering::SeqCst), 1);
        let mut mine = first(1).await;
        mine.name.push_str(" and changed");
        assert_eq!(first(1).await.name, "computed", "a hit is a copy");

        // A write replaces the bytes: the next hit is the new value.
        let stored = Profile {
            id: 1,
            name: "written".into(),
        };
        cache.set("profile:1", &stored).await.unwrap();
        for _ in 0..3 {
            assert_eq!(first(1).await, stored);
        }
        cache
            .set_raw("profile:1", b"not a value".to_vec())
            .await
            .unwrap();
        assert_eq!(first(1).await.name, "computed", "bad bytes: a miss");
        assert_eq!(FIRST_RUNS.load(Ordering::SeqCst), 2);

        // The other cache signs with another secret: the first cache's
        // bytes (and its kept copy) are not a value for it.
        for _ in 0..3 {
            assert_eq!(first(1).await.name, "computed");
        }
        assert_eq!(second(1).await.name, "second");
        assert_eq!(SECOND_RUNS.load(Ordering::SeqCst), 1);
        assert_eq!(
            other
                .get::<Profile>("profile:1")
                .await
                .unwrap()
                .unwrap()
                .name,
            "second"
        );
    }

    #[tokio::test]
    async fn get_cloned_answers_as_get_does() {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        let first = Profile {
            id: 1,
            name: "first".into(),
        };
        cache.set("p", &first).await.unwrap();
        for _ in 0..4 {
            assert_eq!(
                cache.get_cloned::<Profile>("p").await.unwrap(),
                Some(first.clone())
            );
        }
        // Another type reads the same bytes by decoding them.
        assert_eq!(
            cache.get_cloned::<(u32, String)>("p").await.unwrap(),
            Some((1, "first".into()))
        );
        assert_eq!(cache.get_cloned::<Profile>("p").await.unwrap(), Some(first));
        let second = Profile {
            id: 2,
            name: "second".into(),
        };
        cache.set("p", &second).await.unwrap();
        assert_eq!(
            cache.get_cloned::<Profile>("p").await.unwrap(),
            Some(second)
        );
        cache.set_raw("p", b"garbage".to_vec()).await.unwrap();
        assert_eq!(cache.get_cloned::<Profile>("p").await.unwrap(), None);
        assert_eq!(cache.get_cloned::<Profile>("missing").await.unwrap(), None);
    }
}
