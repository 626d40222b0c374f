//! cashews' `get`/`set` on Redis against raw redis-rs `GET`/`SET`, on one
//! loopback server, sequential and with 100 concurrent tasks; and a
//! client-side cached hit (`client_side=true`) against redis-rs' own
//! client-side cache (`cache-aio`) and a plain GET, in one run.
//!
//! `cargo bench --bench redis --features redis`

mod support;

#[path = "../tests/support/process.rs"]
mod process;
#[path = "../tests/support/redis.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use criterion::Criterion;
use support::{print_ratios, profile, record, Profile};

const TASKS: usize = 100;
/// The most tasks the sweep runs; each task reads a key of its own.
const MAX_TASKS: usize = 256;

/// The key task `task` reads (cashews side).
fn key(task: usize) -> String {
    format!("k{task}")
}

/// The key task `task` reads (raw redis-rs side).
fn raw_key(task: usize) -> String {
    format!("raw{task}")
}

fn main() {
    let server = redis_server::RedisServer::start();
    let runtime = support::runtime();
    let cache = cashews::Cache::new();
    cache.setup(&server.url()).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    // The same per-command response timeout cashews sets by default (1 s),
    // so both sides pay for a timer per command.
    let raw = runtime
        .block_on(redis::aio::ConnectionManager::new_with_config(
            client,
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(1))),
        ))
        .unwrap();
    let value = profile(7);
    // Raw redis-rs stores the same bytes cashews stores.
    let encoded = runtime.block_on(async {
        cache.set("k", &value).await.unwrap();
        let encoded = cache.get_raw("k").await.unwrap().unwrap().to_vec();
        let mut c = raw.clone();
        redis::cmd("SET")
            .arg("raw")
            .arg(&encoded)
            .query_async::<()>(&mut c)
            .await
            .unwrap();
        for task in 0..MAX_TASKS {
            cache.set(&key(task), &value).await.unwrap();
            redis::cmd("SET")
                .arg(raw_key(task))
                .arg(&encoded)
                .query_async::<()>(&mut c)
                .await
                .unwrap();
        }
        encoded
    });

    // Client-side caching: cashews' local tier, and redis-rs' cache-aio on
    // a RESP3 connection manager, both warmed with the value.
    let tracked = cashews::Cache::new();
    tracked
        .setup(&format!("{}?client_side=true", server.url()))
        .unwrap();
    let cache_aio = runtime
        .block_on(redis::aio::ConnectionManager::new_with_config(
            redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap(),
            redis::aio::ConnectionManagerConfig::new()
                .set_cache_config(redis::caching::CacheConfig::new()),
        ))
        .unwrap();
    runtime.block_on(async {
        assert_eq!(
            tracked.get::<Profile>("k").await.unwrap(),
            Some(value.clone())
        );
        let mut c = cache_aio.clone();
        for _ in 0..2 {
            redis::cmd("GET")
                .arg("raw")
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
                .unwrap();
        }
    });

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("redis");
    group.bench_function("get_cashews", |b| {
        b.to_async(&runtime)
            .iter(|| async { cache.get::<Profile>("k").await.unwrap() })
    });
    group.bench_function("get_redis-rs", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut c = raw.clone();
            redis::cmd("GET")
                .arg("raw")
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
                .unwrap()
        })
    });
    group.bench_function("set_cashews", |b| {
        b.to_async(&runtime)
            .iter(|| async { cache.set("k", &value).expire("1h").await.unwrap() })
    });
    group.bench_function("set_redis-rs", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut c = raw.clone();
            redis::cmd("SET")
                .arg("raw")
                .arg(&encoded)
                .arg("PX")
                .arg(3_600_000)
                .query_async::<()>(&mut c)
                .await
                .unwrap()
        })
    });
    group.bench_function("get_100_tasks_cashews", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let cache = cache.clone();
            async move { concurrently(TASKS, iters, move |task| cached_get(cache.clone(), task)).await }
        })
    });
    group.bench_function("get_100_tasks_redis-rs", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let raw = raw.clone();
            async move { concurrently(TASKS, iters, move |task| raw_get(raw.clone(), task)).await }
        })
    });
    group.bench_function("get_100_tasks_one_key_cashews", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let cache = cache.clone();
            async move { concurrently(TASKS, iters, move |_| cached_get(cache.clone(), 0)).await }
        })
    });
    group.bench_function("get_100_tasks_one_key_redis-rs", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let raw = raw.clone();
            async move { concurrently(TASKS, iters, move |_| raw_get(raw.clone(), 0)).await }
        })
    });
    // Many keys in one call: one round trip each side.
    let names: Vec<String> = (0..100).map(key).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let raw_names: Vec<String> = (0..100).map(raw_key).collect();
    let pairs: Vec<(&str, Profile)> = names.iter().map(|k| (*k, value.clone())).collect();
    group.bench_function("get_many_100_cashews", |b| {
        b.to_async(&runtime).iter(|| async {
            let got = cache.get_many::<Profile>(&names).await.unwrap();
            assert!(got.iter().all(Option::is_some));
        })
    });
    // The hand-written side decodes and encodes with the same serializer,
    // as an application storing typed values would.
    let serializer = cashews::codec::Serializer::new(cashews::codec::CodecKind::Bincode);
    group.bench_function("get_many_100_redis-rs_mget", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut c = raw.clone();
            let got = redis::cmd("MGET")
                .arg(&raw_names)
                .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                .await
                .unwrap();
            let values: Vec<Option<Profile>> = raw_names
                .iter()
                .zip(got)
                .map(|(name, bytes)| match serializer.decode(name, &bytes?) {
                    cashews::codec::Decoded::Value(value) => Some(value),
                    cashews::codec::Decoded::Miss(_) => None,
                })
                .collect();
            assert!(values.iter().all(Option::is_some));
        })
    });
    group.bench_function("set_many_100_cashews", |b| {
        b.to_async(&runtime)
            .iter(|| async { cache.set_many(&pairs).expire("1h").await.unwrap() })
    });
    group.bench_function("set_many_100_redis-rs_multi", |b| {
        b.to_async(&runtime).iter(|| async {
            // What cashews sends: the values with their expiry, in one
            // MULTI (atomic on one server).
            let mut pipe = redis::pipe();
            pipe.atomic();
            for name in &raw_names {
                pipe.cmd("SET")
                    .arg(name)
                    .arg(&*serializer.encode(name, &value).unwrap())
                    .arg("PX")
                    .arg(3_600_000)
                    .ignore();
            }
            let mut c = raw.clone();
            pipe.query_async::<()>(&mut c).await.unwrap()
        })
    });
    group.bench_function("client_side_hit_cashews", |b| {
        b.to_async(&runtime)
            .iter(|| async { tracked.get::<Profile>("k").await.unwrap() })
    });
    group.bench_function("client_side_hit_raw_cashews", |b| {
        b.to_async(&runtime)
            .iter(|| async { tracked.get_raw("k").await.unwrap() })
    });
    group.bench_function("client_side_hit_redis-rs_cache-aio", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut c = cache_aio.clone();
            redis::cmd("GET")
                .arg("raw")
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
                .unwrap()
        })
    });
    group.finish();
    c.final_summary();
    let unbatched = cashews::Cache::new();
    unbatched
        .setup(&format!("{}?batch=false", server.url()))
        .unwrap();
    sweep(&runtime, &cache, &unbatched, &raw);
    drop(server);
    print_ratios(
        "redis on loopback: typed cashews calls vs raw redis-rs",
        &[
            ("redis/get_cashews", "redis/get_redis-rs"),
            ("redis/set_cashews", "redis/set_redis-rs"),
            (
                "redis/get_100_tasks_cashews",
                "redis/get_100_tasks_redis-rs",
            ),
            (
                "redis/get_100_tasks_one_key_cashews",
                "redis/get_100_tasks_one_key_redis-rs",
            ),
            (
                "redis/get_many_100_cashews",
                "redis/get_many_100_redis-rs_mget",
            ),
            (
                "redis/set_many_100_cashews",
                "redis/set_many_100_redis-rs_multi",
            ),
        ],
    );
    print_ratios(
        "client-side caching hits vs redis-rs cache-aio and a plain GET",
        &[
            (
                "redis/client_side_hit_cashews",
                "redis/client_side_hit_redis-rs_cache-aio",
            ),
            (
                "redis/client_side_hit_raw_cashews",
                "redis/client_side_hit_redis-rs_cache-aio",
            ),
            ("redis/client_side_hit_cashews", "redis/get_redis-rs"),
        ],
    );
}

/// `iters` calls of `op` spread over `tasks` tasks (`op` is given the
/// task's index); the elapsed time.
async fn concurrently<F, Fut>(tasks: usize, iters: u64, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let per_task = iters.div_ceil(tasks as u64);
    let tasks: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    op(task).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// Latency of a `get` as one task sees it, against how many tasks run at
/// once, for cashews and raw redis-rs (BENCHMARKS.md charts it).
fn sweep(
    runtime: &tokio::runtime::Runtime,
    cache: &cashews::Cache,
    unbatched: &cashews::Cache,
    raw: &redis::aio::ConnectionManager,
) {
    // Each point is the median of REPS interleaved runs of the three
    // clients (this VM's timings drift by tens of percent between runs).
    const REPS: usize = 5;
    println!("\nredis get latency per task vs concurrency (µs, median of {REPS})");
    println!(
        "{:>6} {:>10} {:>10} {:>8} {:>12} {:>8}",
        "tasks", "cashews", "redis-rs", "ratio", "batch=false", "ratio"
    );
    for tasks in [1usize, 2, 4, 8, 16, 32, 64, 128, 256] {
        // About the same wall time per point: fewer calls when few tasks
        // wait a whole round trip each.
        let ops = (tasks as u64 * 2_000).min(40_000);
        // Each task ran ops / tasks calls one after the other.
        let per_call = |elapsed: Duration| elapsed.as_secs_f64() * 1e6 * tasks as f64 / ops as f64;
        let mut runs: [Vec<f64>; 3] = Default::default();
        for rep in 0..REPS {
            for client in (0..3).map(|n| (n + rep) % 3) {
                let elapsed = match client {
                    0 => {
                        let cache = cache.clone();
                        runtime.block_on(concurrently(tasks, ops, move |task| {
                            cached_get(cache.clone(), task)
                        }))
                    }
                    1 => {
                        let raw = raw.clone();
                        runtime.block_on(concurrently(tasks, ops, move |task| {
                            raw_get(raw.clone(), task)
                        }))
                    }
                    _ => {
                        let alone = unbatched.clone();
                        runtime.block_on(concurrently(tasks, ops, move |task| {
                            cached_get(alone.clone(), task)
                        }))
                    }
                };
                runs[client].push(per_call(elapsed));
            }
        }
        let [a, b, c] = runs.map(|mut times| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        });
        println!(
            "{tasks:>6} {a:>10.1} {b:>10.1} {:>7.2}x {c:>12.1} {:>7.2}x",
            a / b,
            c / b
        );
        record(
            "redis_concurrency.csv",
            &format!("{tasks},{a:.2},{b:.2},{c:.2}"),
        );
    }
}

/// One typed cashews `get` of task `task`'s key.
async fn cached_get(cache: cashews::Cache, task: usize) {
    let got = cache.get::<Profile>(&key(task)).await.unwrap();
    assert!(got.is_some());
}

/// One raw redis-rs `GET` of the same bytes.
async fn raw_get(mut c: redis::aio::ConnectionManager, task: usize) {
    redis::cmd("GET")
        .arg(raw_key(task))
        .query_async::<Option<Vec<u8>>>(&mut c)
        .await
        .unwrap();
}
