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
            async move { concurrently(TASKS, iters, move || cached_get(cache.clone())).await }
        })
    });
    group.bench_function("get_100_tasks_redis-rs", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let raw = raw.clone();
            async move { concurrently(TASKS, iters, move || raw_get(raw.clone())).await }
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
    sweep(&runtime, &cache, &raw);
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

/// `iters` calls of `op` spread over `tasks` tasks; the elapsed time.
async fn concurrently<F, Fut>(tasks: usize, iters: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let per_task = iters.div_ceil(tasks as u64);
    let tasks: Vec<_> = (0..tasks)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    op().await;
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
    raw: &redis::aio::ConnectionManager,
) {
    const OPS: u64 = 20_000;
    println!("\nredis get latency per task vs concurrency (µs)");
    println!(
        "{:>6} {:>10} {:>10} {:>8}",
        "tasks", "cashews", "redis-rs", "ratio"
    );
    for tasks in [1usize, 2, 4, 8, 16, 32, 64, 128, 256] {
        let cache = cache.clone();
        let ours = runtime.block_on(concurrently(tasks, OPS, move || cached_get(cache.clone())));
        let raw = raw.clone();
        let peer = runtime.block_on(concurrently(tasks, OPS, move || raw_get(raw.clone())));
        // Each task ran OPS / tasks calls one after the other.
        let per_call = |elapsed: Duration| elapsed.as_secs_f64() * 1e6 * tasks as f64 / OPS as f64;
        let (a, b) = (per_call(ours), per_call(peer));
        println!("{tasks:>6} {a:>10.1} {b:>10.1} {:>7.2}x", a / b);
        record("redis_concurrency.csv", &format!("{tasks},{a:.2},{b:.2}"));
    }
}

/// One typed cashews `get` of the bench's value.
async fn cached_get(cache: cashews::Cache) {
    cache.get::<Profile>("k").await.unwrap();
}

/// One raw redis-rs `GET` of the same bytes.
async fn raw_get(mut c: redis::aio::ConnectionManager) {
    redis::cmd("GET")
        .arg("raw")
        .query_async::<Option<Vec<u8>>>(&mut c)
        .await
        .unwrap();
}
