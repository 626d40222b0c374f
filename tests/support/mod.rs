//! Shared test helpers: a harness around a cache under test.
#![allow(dead_code)]

pub mod conformance;
pub mod features;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "dynamodb")]
pub mod moto;
pub mod process;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "memcached", feature = "dynamodb"))]
pub mod remote;
pub mod strategies;
pub mod traffic;

use std::time::Duration;

use cashews::{Cache, Clock};

/// A cache under test and a way to let time pass for it.
pub struct Harness {
    pub cache: Cache,
    /// The URL the cache was set up with (for a second cache on the same
    /// backend: another process, or another clock).
    pub url: String,
    paused: bool,
    /// Real backends run time-heavy cases 10x faster (durations scaled).
    scale: f64,
    #[cfg(feature = "redis")]
    pub server: Option<redis::RedisServer>,
    #[cfg(feature = "redis")]
    pub cluster: Option<redis::RedisCluster>,
    /// The directory of a disk cache (removed on drop).
    pub dir: Option<TempDir>,
    #[cfg(feature = "memcached")]
    pub memcached: Option<memcached::MemcachedServer>,
    #[cfg(feature = "dynamodb")]
    pub moto: Option<moto::MotoServer>,
}

/// A fresh directory under the system's temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "cashews-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

/// The files in a disk cache directory's `values/` (side files of large
/// values, and whatever else is there).
pub fn side_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("values"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Harness {
    /// A harness for `url` on `cache`, set up, with no server of its own;
    /// real time (scaled 10x faster) unless `paused`.
    fn new(cache: Cache, url: String, paused: bool) -> Harness {
        cache.setup(&url).expect("valid url");
        Harness {
            cache,
            url,
            paused,
            scale: if paused { 1.0 } else { 0.1 },
            #[cfg(feature = "redis")]
            server: None,
            #[cfg(feature = "redis")]
            cluster: None,
            dir: None,
            #[cfg(feature = "memcached")]
            memcached: None,
            #[cfg(feature = "dynamodb")]
            moto: None,
        }
    }

    /// A `mem://` cache on tokio's clock: call from a test with paused time.
    pub fn memory(url: &str) -> Harness {
        Harness::new(Cache::with_clock(Clock::tokio()), url.to_owned(), true)
    }

    /// A cache on a fresh redis-server of its own (real time).
    #[cfg(feature = "redis")]
    pub fn redis(params: &str) -> Harness {
        let server = redis::RedisServer::start();
        let url = format!("{}{params}", server.url());
        Harness {
            server: Some(server),
            ..Harness::new(Cache::new(), url, false)
        }
    }

    /// A cache on a fresh local 3-primary Redis Cluster (real time);
    /// `params` continue the query (`&a=b`).
    #[cfg(feature = "redis")]
    pub fn redis_cluster(params: &str) -> Harness {
        let cluster = redis::RedisCluster::start();
        let url = format!("{}{params}", cluster.url());
        Harness {
            cluster: Some(cluster),
            ..Harness::new(Cache::new(), url, false)
        }
    }

    /// A cache on a fresh local Redis Cluster with a replica per primary,
    /// which has already lived through a failover: it wrote to every
    /// primary, one primary was killed, its replica took over and the
    /// cache writes there again. `params` continue the query (`&a=b`).
    #[cfg(feature = "redis")]
    pub async fn redis_cluster_failed_over(params: &str) -> Harness {
        let mut cluster = redis::RedisCluster::start_with(1);
        let url = format!("{}{params}", cluster.url());
        let harness = Harness::new(Cache::new(), url, false);
        let keys: Vec<String> = (0..30).map(|n| format!("before:{n}")).collect();
        for key in &keys {
            harness
                .cache
                .set(key, &1u8)
                .await
                .expect("the cluster answers");
        }
        let old = cluster.kill_primary_of("before:0");
        cluster.wait_for_failover("before:0", old);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while harness.cache.set("before:0", &2u8).await.is_err()
            || harness.cache.get::<u8>("before:0").await.ok().flatten() != Some(2)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the cache did not write to the promoted replica within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        harness.cache.clear().await.expect("the cluster answers");
        Harness {
            cluster: Some(cluster),
            ..harness
        }
    }

    /// A cache on a fresh `disk://` directory of its own (real time: the
    /// shards' threads are outside tokio's paused clock).
    #[cfg(feature = "disk")]
    pub fn disk(params: &str) -> Harness {
        let dir = TempDir::new("disk");
        let url = format!("disk://?directory={}{params}", dir.path.display());
        Harness {
            dir: Some(dir),
            ..Harness::new(Cache::new(), url, false)
        }
    }

    /// A cache on a fresh memcached of its own (real time); `params`
    /// continue the url (`?a=b`).
    #[cfg(feature = "memcached")]
    pub fn memcached(params: &str) -> Harness {
        let server = memcached::MemcachedServer::start();
        let url = format!("{}{params}", server.url());
        Harness {
            memcached: Some(server),
            ..Harness::new(Cache::new(), url, false)
        }
    }

    /// A cache on a fresh moto server (DynamoDB's API) of its own, its
    /// table created on first use (real time); `params` continue the query
    /// (`&a=b`).
    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(params: &str) -> Harness {
        let server = moto::MotoServer::start();
        let url = format!("{}{params}", server.url("cache"));
        // The table is made before the case runs: creating it takes several
        // requests (moto answers one at a time), which a loaded machine
        // could not fit in the deadline of the case's first command.
        let warm_up = format!("{}&response_timeout=30s", server.url("cache"));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let cache = Cache::new();
                cache.setup(&warm_up).expect("valid url");
                cache.exists("table-made").await.expect("the table is made");
            })
        })
        .join()
        .expect("the table is made");
        Harness {
            moto: Some(server),
            ..Harness::new(Cache::new(), url, false)
        }
    }

    /// Whether the backend under test runs `command` (the capability table).
    pub fn supports(&self, command: cashews::Command) -> bool {
        self.cache.supports("any", command).unwrap()
    }

    /// `secs` seconds of a case's story, scaled for real-time backends.
    pub fn secs(&self, secs: f64) -> Duration {
        Duration::from_secs_f64(secs * self.scale)
    }

    /// A TTL of `secs` scaled seconds.
    pub fn ttl(&self, secs: f64) -> cashews::Ttl {
        cashews::Ttl::new(self.secs(secs)).unwrap()
    }

    /// Gives work spawned in the background (a refresh and its write) the
    /// time to finish: a tick under paused time; on a real backend, time
    /// for a few round trips (moto serves one request at a time, ~10–30 ms
    /// each).
    pub async fn let_background_finish(&self) {
        if self.paused {
            tokio::time::advance(Duration::from_millis(1)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Lets `d` pass: instantly under paused time, by sleeping otherwise.
    pub async fn advance(&self, d: Duration) {
        if self.paused {
            tokio::time::advance(d).await;
        } else {
            tokio::time::sleep(d).await;
        }
    }
}

/// Runs `f`, asserting it ended within `limit`; its output.
pub async fn within<T>(what: &str, limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let output = f.await;
    let took = started.elapsed();
    assert!(took <= limit, "{what} took {took:?}, more than {limit:?}");
    output
}

/// Whether `result` is a backend error worth retrying later (an outage).
pub fn is_transient_backend_error<T: std::fmt::Debug>(result: cashews::Result<T>) -> bool {
    matches!(&result, Err(error @ cashews::Error::Backend { .. }) if error.is_transient())
}

/// Generates one `#[test]` per case of the suite module `$suite` (a path
/// seen from the test file) for a backend: `mod $backend { #[$attr] async
/// fn case() { $suite::case(&harness) } .. }`.
#[macro_export]
macro_rules! backend_suite {
    ($($suite:ident)::+, $backend:ident, [$attr:meta], $make:expr; $($case:ident),* $(,)?) => {
        mod $backend {
            use super::*;
            use $($suite)::+ as suite;
            /// The cases this suite runs (checked against the suite's file).
            #[allow(dead_code)]
            pub const CASES: &[&str] = &[$(stringify!($case)),*];
            $(
                #[$attr]
                async fn $case() {
                    let harness = $make;
                    suite::$case(&harness).await;
                }
            )*
        }
    };
}

/// Fails unless the cases `listed` for a suite are exactly the
/// `pub async fn name(h: &Harness)` functions of its `source` file: a case
/// added to a suite but not to its list would otherwise never run.
pub fn assert_every_case_listed(source: &str, listed: &[&str]) {
    let defined: std::collections::BTreeSet<&str> = source
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("pub async fn ")?;
            let (name, args) = rest.split_once('(')?;
            args.starts_with("h: &Harness").then_some(name)
        })
        .collect();
    let listed: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
    assert!(!defined.is_empty(), "no cases found in the suite's file");
    let missing: Vec<_> = defined.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&defined).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "cases defined but not listed: {missing:?}; listed but not defined: {unknown:?}"
    );
}

/// The conformance suite ([`conformance`]) for a backend.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        $crate::backend_suite!(support::conformance, $backend, [$attr], $make;
            round_trip_values, set_exist_matrix, set_without_expire_drops_ttl, get_expire_states,
            values_expire, get_many_is_aligned, set_many_with_expire, incr_semantics,
            delete_and_exists, glob_special_characters_are_literal, get_match_decodes_and_skips,
            expire_command, ping_clear_count, get_size, lock_tokens, lock_guard_waits_and_expires,
            bits, slice_incr_window, sets, wrong_types, returned_values_are_copies,
            concurrent_writers_lose_nothing, unsupported_commands_say_so);
    };
}

/// The strategy suite ([`strategies`]) for a backend.
#[macro_export]
macro_rules! strategy_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        $crate::backend_suite!(support::strategies, $backend, [$attr], $make;
            failover_serves_the_last_success_on_failure, hit_recomputes_after_cache_hits,
            hit_refreshes_in_the_background_at_update_after, early_refreshes_once_and_answers_at_once,
            early_without_refresher_recomputes_in_line, soft_serves_stale_values_on_failure_until_ttl,
            locked_runs_one_at_a_time_or_fails_without_waiting, rate_limit_fixed_window_with_ban,
            slice_rate_limit_sliding_window, circuit_breaker_opens_half_opens_and_closes,
            half_open_lets_a_bounded_number_of_trials_through, bloom_filters, invalidate_after_success_only);
    };
}

/// The cross-cutting features suite ([`features`]) for a backend.
#[macro_export]
macro_rules! features_suite {
    ($backend:ident, [$attr:meta], $make:expr) => {
        $crate::backend_suite!(support::features, $backend, [$attr], $make;
            tags_delete_tagged_keys, tag_sets_live_as_long_as_their_longest_member,
            deleted_keys_leave_their_tags, transactions_buffer_and_commit, transactions_roll_back,
            concurrent_transactions_and_lost_updates, serializable_commit_conflicts,
            locked_transactions_time_out, add_prefix_middleware, memory_limit_middleware,
            detect_lists_hits, invalidate_further_recomputes, tracing_middleware_reports_commands);
    };
}
