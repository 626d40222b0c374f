//! cashews for Rust against Python cashews, in one run: `get` (a hit) and
//! `set` of the same small value under the same keys, on `mem://` and on one
//! loopback Redis. The Python side runs in the bench virtualenv
//! (`target/bench-venv`, `cashews[redis]` installed with pip when missing).
//!
//! `cargo bench --bench python_cashews --features redis`

mod support;

#[path = "../tests/support/process.rs"]
mod process;
#[path = "../tests/support/redis.rs"]
mod redis_server;

use std::time::Duration;

use criterion::Criterion;
use support::{mean_ns, print_header, print_row, profile, python_peer, ready, Profile};

const KEYS: u64 = 1000;

fn main() {
    let server = redis_server::RedisServer::start();
    let runtime = support::runtime();
    let memory = cashews::Cache::new();
    memory.setup("mem://").unwrap();
    let redis = cashews::Cache::new();
    redis.setup(&server.url()).unwrap();
    let value = profile(7);
    runtime.block_on(async {
        for i in 0..KEYS {
            let key = format!("key:{i}");
            memory.set(&key, &value).expire("1h").await.unwrap();
            redis.set(&key, &value).expire("1h").await.unwrap();
        }
    });

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("python_cashews");
    let mut i = 0u64;
    group.bench_function("mem_get", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            ready(memory.get::<Profile>(&key)).unwrap()
        })
    });
    group.bench_function("mem_set", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let (cache, value) = (&memory, &value);
            async move { cache.set(&key, value).expire("1h").await.unwrap() }
        })
    });
    group.bench_function("redis_get", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let cache = &redis;
            async move { cache.get::<Profile>(&key).await.unwrap() }
        })
    });
    group.bench_function("redis_set", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let (cache, value) = (&redis, &value);
            async move { cache.set(&key, value).expire("1h").await.unwrap() }
        })
    });
    group.finish();
    c.final_summary();

    let title = "cashews for Rust vs Python cashews (same value, same keys)";
    let args = [server.url(), 20_000.to_string()];
    let peer = match python_peer("cashews_peer.py", &["cashews[redis]"], &args) {
        Ok(peer) => peer,
        Err(why) => {
            println!("\n{title}\nPython cashews not measured: {why}");
            return;
        }
    };
    print_header(title);
    for backend in ["mem", "redis"] {
        for op in ["get", "set"] {
            let label = format!("{backend} {op}: Rust / Python");
            let ours = mean_ns(&format!("python_cashews/{backend}_{op}"));
            print_row(title, &label, ours, peer[backend][op].as_f64());
        }
    }
}
