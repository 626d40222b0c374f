//! What only the disk backend does: persistence, several processes on one
//! directory, a crash, size limits and side files. The shared suites run in
//! conformance.rs and strategies.rs.
#![cfg(feature = "disk")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use cashews::codec::{CodecKind, Serializer};
use cashews::disk::{DiskBackend, DiskConfig};
use cashews::{Cache, Clock};
use support::{side_files, TempDir};

fn open(dir: &Path, params: &str) -> Cache {
    let cache = Cache::new();
    cache
        .setup(&format!("disk://?directory={}{params}", dir.display()))
        .unwrap();
    cache
}

#[test]
fn disk_urls_are_checked() {
    let dir = TempDir::new("disk-urls");
    let cache = Cache::new();
    let base = format!("disk://?directory={}", dir.path.display());
    for (params, needle) in [
        ("&colour=red", "colour"),
        ("&shards=0", "shards"),
        ("&shards=many", "shards"),
        ("&size_limit=lots", "size_limit"),
        ("&eviction=random", "eviction"),
        ("&timeout=soon", "timeout"),
        ("&inline=maybe", "inline"),
    ] {
        let url = format!("{base}{params}");
        let err = cache.setup(&url).expect_err(&url).to_string();
        assert!(err.contains(needle), "{url}: {err}");
    }
    let err = cache
        .setup("disk://somewhere/else")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no host or path"), "{err}");
    assert!(
        std::fs::read_dir(&dir.path).unwrap().next().is_none(),
        "setup does no I/O"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_keeps_its_shard_count() {
    let dir = TempDir::new("disk-shards");
    let base = format!("disk://?directory={}", dir.path.display());
    let cache = Cache::new();
    cache.setup(&format!("{base}&shards=4")).unwrap();
    cache.set("k", &1u32).await.unwrap();
    // Fewer shards would hide keys: the first command says so.
    let fewer = Cache::new();
    fewer.setup(&format!("{base}&shards=2")).unwrap();
    let err = fewer.set("k", &1u32).await.unwrap_err().to_string();
    assert!(err.contains("4 shards"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_survive_closing_and_reopening() {
    let dir = TempDir::new("disk-reopen");
    {
        let cache = open(&dir.path, "&large_value=64");
        cache.set("small", &"v".to_owned()).await.unwrap();
        cache.set("large", &"x".repeat(1000)).await.unwrap();
        cache.set("ttl", &1u32).expire("1h").await.unwrap();
        cache.incr("counter").by(5).await.unwrap();
        cache.set_add("set", &["a", "b"], "1h").await.unwrap();
        cache.close().await.unwrap();
    }
    let cache = open(&dir.path, "&large_value=64");
    assert_eq!(
        cache.get::<String>("small").await.unwrap().as_deref(),
        Some("v")
    );
    assert_eq!(
        cache.get::<String>("large").await.unwrap(),
        Some("x".repeat(1000))
    );
    assert!(matches!(
        cache.get_expire("ttl").await.unwrap(),
        cashews::Expiry::Remaining(left) if left.as_secs() > 3500
    ));
    assert_eq!(cache.get_counter("counter").await.unwrap(), Some(5));
    assert_eq!(cache.set_pop("set", 5).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_file_never_outlives_its_row() {
    let dir = TempDir::new("disk-files");
    let cache = open(&dir.path, "&large_value=100&shards=2");
    let big = "y".repeat(5000);
    cache.set("a", &big).await.unwrap();
    assert_eq!(side_files(&dir.path).len(), 1, "a large value has its file");
    assert_eq!(cache.get::<String>("a").await.unwrap(), Some(big.clone()));
    cache.set("a", &"small".to_owned()).await.unwrap();
    assert!(
        side_files(&dir.path).is_empty(),
        "replaced by an inline value"
    );
    cache.set("a", &big).await.unwrap();
    cache.set("a", &big).await.unwrap();
    assert_eq!(side_files(&dir.path).len(), 1, "replaced by another file");
    cache.delete("a").await.unwrap();
    assert!(side_files(&dir.path).is_empty(), "deleted with its row");
    cache.set("b", &big).await.unwrap();
    cache.set("c", &big).await.unwrap();
    assert!(!cache
        .set("b", &big)
        .exist(cashews::Exist::IfAbsent)
        .await
        .unwrap());
    assert_eq!(
        side_files(&dir.path).len(),
        2,
        "a refused write leaves no file"
    );
    assert_eq!(cache.delete_match("*").await.unwrap(), 2);
    assert!(
        side_files(&dir.path).is_empty(),
        "delete_match removes files"
    );
    cache.set("d", &big).await.unwrap();
    cache.clear().await.unwrap();
    assert!(side_files(&dir.path).is_empty(), "clear removes files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_and_their_files_are_purged_in_the_background() {
    let dir = TempDir::new("disk-purge");
    let cache = open(&dir.path, "&large_value=10&shards=1&check_interval=50ms");
    cache
        .set("gone", &"z".repeat(100))
        .expire("100ms")
        .await
        .unwrap();
    cache.set("kept", &1u32).await.unwrap();
    assert_eq!(cache.get_keys_count().await.unwrap(), 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while cache.get_keys_count().await.unwrap() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "expired row not purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(side_files(&dir.path).is_empty());
}

/// A one-shard backend whose limit holds about `entries` values of 1000 bytes.
fn limited(dir: &Path, eviction: &str) -> (Cache, Arc<DiskBackend>) {
    limited_on(dir, eviction, Clock::system())
}

/// [`limited`] on `clock`.
fn limited_on(dir: &Path, eviction: &str, clock: Clock) -> (Cache, Arc<DiskBackend>) {
    let mut params = cashews::disk::DiskConfig::new(dir);
    params.shards = 1;
    params.size_limit = Some(5 * 1010);
    params.eviction = match eviction {
        "lrs" => cashews::disk::Eviction::LeastRecentlyStored,
        _ => cashews::disk::Eviction::LeastRecentlyUsed,
    };
    let backend = Arc::new(DiskBackend::open(params, clock).unwrap());
    let cache = Cache::new();
    cache.add_backend("", backend.clone(), Serializer::new(CodecKind::Bincode));
    (cache, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_evicts_in_the_configured_order() {
    let value = vec![7u8; 1000];
    for (eviction, survivor, victim) in [("lrs", "k2", "k1"), ("lru", "k1", "k2")] {
        let dir = TempDir::new("disk-limit");
        let (cache, _backend) = limited(&dir.path, eviction);
        for n in 1..=5 {
            cache
                .set_raw(&format!("k{n}"), value.clone())
                .await
                .unwrap();
            // Distinct timestamps order the rows.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        // A read of k1 matters only to least-recently-used.
        assert!(cache.get_raw("k1").await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        cache.set_raw("k6", value.clone()).await.unwrap();
        assert!(
            cache.get_raw(victim).await.unwrap().is_none(),
            "{eviction}: {victim} evicted"
        );
        assert!(
            cache.get_raw(survivor).await.unwrap().is_some(),
            "{eviction}: {survivor} kept"
        );
        assert!(cache.get_raw("k6").await.unwrap().is_some());
    }
}

/// Runs this test binary again as a child doing `role` on `dir`.
fn child(role: &str, dir: &Path, n: u32) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CASHEWS_DISK_CHILD", role)
        .env("CASHEWS_DISK_DIR", dir)
        .env("CASHEWS_DISK_N", n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Not a test on its own: the body of the child processes started by the
/// tests below (it does nothing unless started as one).
#[test]
fn child_process() {
    let Ok(role) = std::env::var("CASHEWS_DISK_CHILD") else {
        return;
    };
    let dir = std::env::var("CASHEWS_DISK_DIR").unwrap();
    let n: u32 = std::env::var("CASHEWS_DISK_N").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = open(Path::new(&dir), "&large_value=512");
        match role.as_str() {
            "incr" => {
                for _ in 0..n {
                    cache.incr("shared").await.unwrap();
                }
            }
            "write" => {
                for i in 0..n {
                    // Every tenth value is large (a side file).
                    let value = if i % 10 == 0 {
                        "v".repeat(2000)
                    } else {
                        format!("v{i}")
                    };
                    cache.set(&format!("w:{i}"), &value).await.unwrap();
                    println!("ack {i}");
                }
            }
            other => panic!("unknown role {other}"),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_incrementing_one_counter_lose_nothing() {
    let dir = TempDir::new("disk-procs");
    open(&dir.path, "").ping().await.unwrap();
    let n = 300;
    let children: Vec<_> = (0..2)
        .map(|_| child("incr", &dir.path, n).spawn().unwrap())
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let cache = open(&dir.path, "");
    assert_eq!(
        cache.get_counter("shared").await.unwrap(),
        Some(2 * i64::from(n))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_no_acknowledged_write() {
    let dir = TempDir::new("disk-kill");
    let mut writer = child("write", &dir.path, 1_000_000).spawn().unwrap();
    let mut acked = 0u32;
    let lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        if let Some(i) = line.strip_prefix("ack ") {
            acked = i.parse::<u32>().unwrap() + 1;
            if acked >= 300 {
                break;
            }
        }
    }
    writer.kill().unwrap(); // SIGKILL, mid-stream
    writer.wait().unwrap();
    assert!(acked >= 300);

    let config = DiskConfig::new(&dir.path);
    let backend = Arc::new(DiskBackend::open(config, Clock::system()).unwrap());
    backend.check_integrity().await.unwrap();
    let cache = Cache::new();
    cache.add_backend("", backend, Serializer::new(CodecKind::Bincode));
    for i in 0..acked {
        let expected = if i % 10 == 0 {
            "v".repeat(2000)
        } else {
            format!("v{i}")
        };
        assert_eq!(
            cache.get::<String>(&format!("w:{i}")).await.unwrap(),
            Some(expected),
            "acknowledged write {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_to_one_shard_is_seen_whole_and_keeps_side_files_right() {
    let dir = TempDir::new("disk-commit");
    let cache = open(&dir.path, "&shards=1&large_value=64");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each commit writes `b` then `a` (large values, so side files too); a
    // reader reading `b` then `a` sees a new `b` with an old `a` only if a
    // commit were applied in parts.
    let writer = {
        let (cache, done) = (cache.clone(), done.clone());
        tokio::spawn(async move {
            for n in 1..=600u64 {
                let tx = cache.transaction(cashews::TransactionMode::Fast);
                tx.set("b", &(n, "x".repeat(100)), None::<u64>)
                    .await
                    .unwrap();
                tx.set("a", &(n, "x".repeat(100)), None::<u64>)
                    .await
                    .unwrap();
                tx.incr("n", 1).await.unwrap();
                tx.commit().await.unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let read = |key: &'static str| {
        let cache = cache.clone();
        async move {
            cache
                .get::<(u64, String)>(key)
                .await
                .unwrap()
                .map_or(0, |(n, _)| n)
        }
    };
    let mut reads = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let b = read("b").await;
        let a = read("a").await;
        assert!(a >= b, "saw b = {b} before a = {a}");
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 10, "the reader raced the writer: {reads} reads");
    assert_eq!(cache.get_counter("n").await.unwrap(), Some(600));
    // Every replaced side file went with its row: two values, two files.
    assert_eq!(
        side_files(&dir.path).len(),
        2,
        "{:?}",
        side_files(&dir.path)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_tagged_key_never_outlives_its_tag_records() {
    let dir = TempDir::new("disk-tags");
    // A clock that moves a millisecond per step: use order never ties.
    let (clock, time) = Clock::manual();
    let (cache, _backend) = limited_on(&dir.path, "lru", clock);
    cache.set("hot", &1u32).tags(&["t"]).await.unwrap();
    for n in 0..40u32 {
        time.advance(std::time::Duration::from_millis(1));
        cache
            .set_raw(&format!("filler{n}"), vec![7u8; 1000])
            .await
            .unwrap();
        time.advance(std::time::Duration::from_millis(1));
        assert_eq!(cache.get::<u32>("hot").await.unwrap(), Some(1), "{n}");
    }
    assert_eq!(cache.delete_tags(&["t"]).await.unwrap(), 1);
    assert_eq!(cache.get::<u32>("hot").await.unwrap(), None);
}

/// Another process holds the write lock of the only shard (an `IMMEDIATE`
/// transaction): a `set` waits for it on the shard's thread. A `get` reads
/// on the calling thread beside it (WAL) instead of queueing behind the
/// `set` — and with `inline=false` it does queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_does_not_wait_behind_a_write_held_by_another_process() {
    for inline in [true, false] {
        let dir = TempDir::new("disk-inline-reads");
        let cache = open(&dir.path, &format!("&shards=1&timeout=1s&inline={inline}"));
        cache.set("k", &"v").await.unwrap();
        let other = rusqlite::Connection::open(dir.path.join("shard-000.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();

        let writer = cache.clone();
        let started = std::time::Instant::now();
        let set = tokio::spawn(async move { writer.set("k2", &"v2").await });
        // Time for the set to reach the shard's thread and wait there (if it
        // has not, the get below could not tell the two designs apart, but
        // it could not fail either).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let got = cache.get::<String>("k").await;
        let answered = started.elapsed();
        let set_pending = !set.is_finished();
        other.execute_batch("COMMIT").unwrap();
        let set = set.await.unwrap();
        assert_eq!(got.unwrap().as_deref(), Some("v"));
        if inline {
            // The set can end only after the COMMIT above (or its 1 s
            // timeout, which the get did not wait for).
            assert!(set_pending, "the get waited for the set: {answered:?}");
            set.unwrap();
        } else {
            // Behind the set on the thread, which gave up after its 1 s
            // timeout (the set's own task may not have run yet to see it,
            // so the time tells, a bound no load can break).
            assert!(
                answered >= std::time::Duration::from_millis(950),
                "{answered:?}"
            );
            assert!(set.is_err(), "{set:?}");
        }
    }
}

/// Commands run on the caller commit without sqlite's automatic checkpoint
/// (which would run its fsync on the caller): the shard's thread
/// checkpoints instead, so the write-ahead log stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_is_checkpointed_under_writes_run_on_the_caller() {
    let dir = TempDir::new("disk-checkpoint");
    let cache = open(&dir.path, "&shards=1");
    for i in 0..6000u32 {
        cache.set(&format!("key:{i}"), &i).await.unwrap();
    }
    // The thread's last checkpoint was asked for by the commit that made it
    // due; one more command runs after it.
    cache.exists("key:0").await.unwrap();
    let wal = std::fs::metadata(dir.path.join("shard-000.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("write-ahead log after 6000 sets: {wal} bytes");
    // About four 4 KiB pages a commit: unchecked, 6000 commits leave
    // ~100 MB; checkpointed every 200 commits, and never more than 400
    // apart however late the thread runs (the log restarts at the next
    // write after one), about 7 MB at most.
    assert!(wal < 12 << 20, "{wal} bytes");
    assert_eq!(cache.get::<u32>("key:5999").await.unwrap(), Some(5999));
}
