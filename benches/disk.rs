//! cashews' `disk://` (8 shards) against Python diskcache's FanoutCache (8
//! shards) on this machine, in one run: get hits, sets and deletes of the
//! same bytes under the same keys. The Python side runs in a virtualenv under
//! `target/bench-venv`, made (and diskcache installed with pip) when missing.
//!
//! Then both again with a CPU-bound thread spinning on every core (the
//! Python peer runs while they spin too).
//!
//! `cargo bench --bench disk --features disk`

mod support;

use std::time::Duration;

use criterion::Criterion;
use support::{mean_ns, print_header, print_row, profile, python_peer, Busy, Profile};

const KEYS: u64 = 1000;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    compare(&mut c, "disk", "");
    let _busy = Busy::every_core();
    compare(&mut c, "disk_busy", ", a CPU-bound thread on every core");
    c.final_summary();
}

/// Measures cashews (criterion group `group`) and then diskcache, and
/// prints their ratios.
fn compare(c: &mut Criterion, group: &str, condition: &str) {
    let dir = std::env::temp_dir().join(format!("cashews-bench-{group}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = support::runtime();
    let cache = cashews::Cache::new();
    cache
        .setup(&format!("disk://?directory={}&shards=8", dir.display()))
        .unwrap();
    let value = profile(7);
    let value_len = runtime.block_on(async {
        for i in 0..KEYS {
            cache.set(&format!("key:{i}"), &value).await.unwrap();
        }
        cache.get_raw("key:0").await.unwrap().unwrap().len()
    });

    let mut bench = c.benchmark_group(group);
    let mut i = 0u64;
    bench.bench_function("get_cashews", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let cache = &cache;
            async move { cache.get::<Profile>(&key).await.unwrap() }
        })
    });
    bench.bench_function("set_cashews", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let (cache, value) = (&cache, &value);
            async move { cache.set(&key, value).await.unwrap() }
        })
    });
    bench.bench_function("delete_cashews", |b| {
        b.to_async(&runtime).iter(|| {
            i += 1;
            let key = format!("key:{}", i % KEYS);
            let cache = &cache;
            async move { cache.delete(&key).await.unwrap() }
        })
    });
    bench.finish();
    drop(cache);
    let _ = std::fs::remove_dir_all(&dir);

    let title =
        format!("disk: cashews disk:// vs Python diskcache FanoutCache (8 shards each){condition}");
    let args = [value_len.to_string(), KEYS.to_string(), 20_000.to_string()];
    let peer = match python_peer("diskcache_peer.py", &["diskcache"], &args) {
        Ok(peer) => peer,
        Err(why) => {
            println!("\n{title}\ndiskcache not measured: {why}");
            return;
        }
    };
    print_header(&title);
    for op in ["get", "set", "delete"] {
        let label = format!("{op} cashews / diskcache");
        print_row(
            &title,
            &label,
            mean_ns(&format!("{group}/{op}_cashews")),
            peer[op].as_f64(),
        );
    }
}
