//! Soak: 64 tasks run mixed commands and strategies (get_or_set, both rate
//! limits, locks, `#[cache(lock)]` and `#[cache::locked]` calls) against
//! each backend for a while, in modes: `mem`, `disk`, `redis` (the server
//! is killed and restarted twice), `sentinel` (a primary, its replica and
//! three sentinels; the primary is killed twice, each time the replica
//! takes over and the killed server comes back as its replica) and
//! `cluster-failover` (three primaries with a replica each; a primary is
//! killed twice, another each time, and comes back as a replica). Under
//! faults no call may take longer than [`LATENCY_BOUND`].
//!
//! `SOAK_SECONDS` sets the time per mode (10 s by default, as
//! `scripts/test` runs it; `scripts/soak` runs 60 s in release);
//! `SOAK_MODES` picks modes (comma-separated, all by default). Prints ops/s,
//! p50/p99 latency and errors by kind, and fails unless: no task panicked,
//! memory stayed bounded, and no acknowledged counter increment was lost —
//! the Redis runs use `suppress=false`; the `redis` server syncs its
//! append-only file before answering and `sentinel` writes wait for the
//! replica (`wait_replicas=1`), so an acknowledged write survives the kill.
//! A cluster replicates asynchronously: increments acknowledged just before
//! a kill may be lost there, and are reported, not failed.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashews::strategy::{Limit, RateLimit, SliceRateLimit};
use cashews::{cache, Cache, Error};
use support::redis::{RedisCluster, RedisServer, SentinelGroup};
use support::TempDir;

const TASKS: usize = 64;
const KEYS: u64 = 2_000;
const COUNTERS: usize = 8;

/// The Redis run's `response_timeout`.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest any one call may take, outages included: a decorated call
/// with a lock meets the backend four times (read, lock, write, unlock),
/// each within one `response_timeout` at most.
const LATENCY_BOUND: Duration = Duration::from_secs(8);

async fn decorated(cache: &Cache, n: u64) -> u64 {
    #[cache(ttl = "5s", lock, key = "soak:decorated:{n}", cache = cache)]
    async fn call(cache: &Cache, n: u64) -> u64 {
        let _ = cache;
        n * 3
    }
    call(cache, n).await
}

async fn exclusive(cache: &Cache, n: u64) -> cashews::Result<u64> {
    #[cache::locked(ttl = "2s", wait = "20ms", key = "soak:locked:{n}", cache = cache)]
    async fn call(cache: &Cache, n: u64) -> cashews::Result<u64> {
        let _ = cache;
        Ok(n)
    }
    call(cache, n).await
}

/// A small fast generator (xorshift), one per task.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct TaskReport {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    acknowledged: [u64; COUNTERS],
}

/// An error's kind: its variant name (`Backend`, `Timeout`, ...).
fn kind(error: &Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_owned()
}

async fn one_op(cache: &Cache, rng: &mut Rng, report: &mut TaskReport) -> cashews::Result<()> {
    let key = format!("soak:k:{}", rng.below(KEYS));
    match rng.below(100) {
        0..=29 => {
            cache.get::<Vec<u8>>(&key).await?;
        }
        30..=34 => {
            // Rate limits let calls through when the backend fails; a
            // rejection is an answer, not an error.
            let limiter = rng.below(4);
            let period = Duration::from_secs(1);
            let allowed = if limiter % 2 == 0 {
                SliceRateLimit::new(cache, &format!("soak:srl:{limiter}"), 200, period)
                    .run(async { true }, |_| false)
                    .await
            } else {
                RateLimit::new(cache, &format!("soak:rl:{limiter}"), 200, period)
                    .run(async { true }, |_| false)
                    .await
            };
            let _ = allowed;
        }
        35..=54 => {
            let value = vec![7u8; rng.below(512) as usize];
            cache.set(&key, &value).expire("30s").await?;
        }
        55..=69 => {
            let counter = rng.below(COUNTERS as u64) as usize;
            cache.incr(&format!("soak:counter:{counter}")).await?;
            report.acknowledged[counter] += 1;
        }
        70..=79 => {
            let n = rng.below(100);
            let value: u64 = cache
                .get_or_set(&format!("soak:computed:{n}"), || async move { n * n })
                .expire("5s")
                .await?;
            assert_eq!(value, n * n, "a computed value is never another's");
        }
        80..=87 => {
            let lock = format!("soak:lock:{}", rng.below(8));
            match cache
                .lock(&lock, "2s")
                .wait(Duration::from_millis(20))
                .await
            {
                Ok(guard) => {
                    guard.release().await?;
                }
                Err(Error::Locked { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        88..=89 => {
            let group = rng.below(20);
            for i in 0..3 {
                cache.set(&format!("soak:tmp:{group}:{i}"), &i).await?;
            }
            cache.delete_match(&format!("soak:tmp:{group}:*")).await?;
        }
        90..=94 => {
            cache.delete(&key).await?;
        }
        95..=97 => {
            // A decorated call always answers, whatever the backend does.
            let n = rng.below(50);
            assert_eq!(decorated(cache, n).await, n * 3);
        }
        _ => {
            // Held elsewhere: Locked; a failing backend runs the body.
            let n = rng.below(4);
            match exclusive(cache, n).await {
                Ok(value) => assert_eq!(value, n),
                Err(Error::Locked { .. }) => {}
                Err(other) => return Err(other),
            }
        }
    }
    Ok(())
}

async fn worker(cache: Cache, seed: u64, stop: Arc<AtomicBool>) -> TaskReport {
    let mut rng = Rng(seed | 1);
    let mut report = TaskReport::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = one_op(&cache, &mut rng, &mut report).await;
        report
            .latencies_us
            .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if let Err(error) = result {
            *report.errors.entry(kind(&error)).or_default() += 1;
            // A backend that is down answers at once; do not spin on it.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // In-process commands complete without ever yielding: let the other
        // tasks run, as a service's request handlers would, so latencies
        // measure the library and not a worker kept by one task.
        tokio::task::yield_now().await;
    }
    report
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096 / (1 << 20)
}

struct Outcome {
    failures: Vec<String>,
}

async fn soak(name: &str, cache: Cache, seconds: u64, mut faults: Option<Faults>) -> Outcome {
    let mut failures = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..TASKS)
        .map(|i| {
            tokio::spawn(worker(
                cache.clone(),
                0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 0x1000_0001),
                stop.clone(),
            ))
        })
        .collect();
    let total = Duration::from_secs(seconds);
    tokio::time::sleep(total / 5).await;
    let rss_warm = rss_mib();
    let mut restarts = 0;
    if let Some(mut injected) = faults.take() {
        for fraction in [1, 2] {
            let at = total * fraction / 3;
            tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
            // Starting and waiting for servers blocks: off the workers.
            injected = tokio::task::spawn_blocking(move || {
                injected.inject();
                injected
            })
            .await
            .expect("the fault was injected");
            restarts += 1;
        }
        faults = Some(injected);
    }
    tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut acknowledged = [0u64; COUNTERS];
    let mut panicked = 0;
    for worker in workers {
        match worker.await {
            Ok(report) => {
                latencies.extend(report.latencies_us);
                for (kind, n) in report.errors {
                    *errors.entry(kind).or_default() += n;
                }
                for (total, n) in acknowledged.iter_mut().zip(report.acknowledged) {
                    *total += n;
                }
            }
            Err(_) => panicked += 1,
        }
    }
    let elapsed = started.elapsed();
    let rss_end = rss_mib();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let ops = latencies.len();
    let slowest = Duration::from_micros(latencies.last().copied().unwrap_or(0).into());
    println!(
        "{name:16} {ops:>9} ops  {:>8.0} ops/s  p50 {:>6} µs  p99 {:>7} µs  max {slowest:?}  rss {rss_warm}→{rss_end} MiB  restarts {restarts}  errors {errors:?}",
        ops as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
    );
    if faults.is_some() && slowest > LATENCY_BOUND {
        failures.push(format!(
            "{name}: a call took {slowest:?}, more than {LATENCY_BOUND:?}"
        ));
    }
    if panicked > 0 {
        failures.push(format!("{name}: {panicked} tasks panicked"));
    }
    if rss_end > rss_warm + 256 {
        failures.push(format!("{name}: memory grew {rss_warm} → {rss_end} MiB"));
    }
    // Every acknowledged increment is there; with faults, an increment
    // applied but not acknowledged (the connection died) may add more.
    let mut stored = [0u64; COUNTERS];
    let mut lost_to_failover = 0;
    for (i, slot) in stored.iter_mut().enumerate() {
        let key = format!("soak:counter:{i}");
        let mut value = None;
        let mut last_error = None;
        for _ in 0..100 {
            match cache.get_counter(&key).await {
                Ok(v) => {
                    value = Some(v.unwrap_or(0) as u64);
                    break;
                }
                Err(error) => {
                    last_error = Some(error);
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
            }
        }
        let Some(value) = value else {
            failures.push(format!("{name}: counter {i} unreadable: {last_error:?}"));
            continue;
        };
        *slot = value;
        let lost = if faults.is_some() {
            *slot < acknowledged[i]
        } else {
            *slot != acknowledged[i]
        };
        if lost && faults.as_ref().is_some_and(Faults::may_lose_writes) {
            lost_to_failover += acknowledged[i] - *slot;
        } else if lost {
            failures.push(format!(
                "{name}: counter {i} holds {} but {} increments were acknowledged",
                *slot, acknowledged[i]
            ));
        }
    }
    if lost_to_failover > 0 {
        println!(
            "{name:16} {lost_to_failover} acknowledged increments lost to failovers (asynchronous replication)"
        );
    }
    println!("{name:16} counters acknowledged {acknowledged:?} stored {stored:?}");
    if ops == 0 {
        failures.push(format!("{name}: no operation completed"));
    }
    Outcome { failures }
}

/// What goes wrong during a Redis run, twice.
enum Faults {
    /// The one server is killed and started again on its files (synced
    /// before every answer: nothing acknowledged is lost).
    Restart {
        server: RedisServer,
        port: u16,
        dir: TempDir,
    },
    /// The primary Sentinel names is killed, a replica takes over, and the
    /// killed server comes back as its replica. Writes wait for a replica
    /// (`wait_replicas=1`): nothing acknowledged is lost.
    Sentinel(SentinelGroup),
    /// A cluster primary is killed, its replica takes over, and it comes
    /// back as its replica; the second time, another primary. Replication
    /// is asynchronous: increments acknowledged just before a kill may be
    /// lost (reported, not a failure).
    Cluster { cluster: RedisCluster, kills: usize },
}

impl Faults {
    fn inject(&mut self) {
        match self {
            Faults::Restart { server, port, dir } => {
                server.kill();
                std::thread::sleep(Duration::from_millis(500));
                *server = RedisServer::start_durable(*port, &dir.path);
            }
            Faults::Sentinel(group) => {
                let killed = group.fail_over();
                group.restart(killed);
            }
            Faults::Cluster { cluster, kills } => {
                // A counter's primary, another one each time.
                let key = format!("soak:counter:{kills}");
                *kills += 1;
                let killed = cluster.kill_primary_of(&key);
                cluster.wait_for_failover(&key, killed);
                cluster.restart(killed);
            }
        }
    }

    /// Whether an acknowledged write may be lost to a fault.
    fn may_lose_writes(&self) -> bool {
        matches!(self, Faults::Cluster { .. })
    }
}

/// The modes `SOAK_MODES` may list (comma-separated; all by default).
const MODES: &[&str] = &["mem", "redis", "disk", "sentinel", "cluster-failover"];

/// The Redis parameters of every Redis run: errors surface, short deadlines.
fn redis_params() -> String {
    format!(
        "suppress=false&connect_timeout=500ms&response_timeout={}ms",
        RESPONSE_TIMEOUT.as_millis()
    )
}

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let modes: Vec<String> = match std::env::var("SOAK_MODES") {
        Ok(list) => list.split(',').map(|m| m.trim().to_owned()).collect(),
        Err(_) => MODES.iter().map(|m| (*m).to_owned()).collect(),
    };
    if let Some(unknown) = modes.iter().find(|m| !MODES.contains(&m.as_str())) {
        eprintln!("unknown soak mode {unknown:?}; modes: {}", MODES.join(", "));
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let failures = runtime.block_on(async {
        let mut failures = Vec::new();
        println!(
            "soak: {TASKS} tasks, {seconds} s per mode ({})",
            modes.join(", ")
        );

        for mode in &modes {
            let (cache, faults, _dir) = match mode.as_str() {
                "mem" => {
                    let cache = Cache::new();
                    cache.setup("mem://?size=10000").unwrap();
                    (cache, None, None)
                }
                "redis" => {
                    let dir = TempDir::new("soak-redis");
                    let port = support::process::free_port();
                    let server = RedisServer::start_durable(port, &dir.path);
                    let cache = Cache::new();
                    cache
                        .setup(&format!("redis://127.0.0.1:{port}/0?{}", redis_params()))
                        .unwrap();
                    (cache, Some(Faults::Restart { server, port, dir }), None)
                }
                "disk" => {
                    let dir = TempDir::new("soak-disk");
                    let cache = Cache::new();
                    cache
                        .setup(&format!("disk://?directory={}", dir.path.display()))
                        .unwrap();
                    (cache, None, Some(dir))
                }
                "sentinel" => {
                    let group = tokio::task::spawn_blocking(SentinelGroup::start)
                        .await
                        .unwrap();
                    let cache = Cache::new();
                    cache
                        .setup(&format!(
                            "{}?{}&wait_replicas=1",
                            group.url(),
                            redis_params()
                        ))
                        .unwrap();
                    (cache, Some(Faults::Sentinel(group)), None)
                }
                "cluster-failover" => {
                    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start_with(1))
                        .await
                        .unwrap();
                    let cache = Cache::new();
                    cache
                        .setup(&format!("{}&{}", cluster.url(), redis_params()))
                        .unwrap();
                    (cache, Some(Faults::Cluster { cluster, kills: 0 }), None)
                }
                other => unreachable!("{other} was checked"),
            };
            failures.extend(soak(mode, cache, seconds, faults).await.failures);
        }
        failures
    });
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("FAIL {failure}");
        }
        std::process::exit(1);
    }
    println!("soak: every invariant held");
}
