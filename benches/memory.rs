//! The memory backend's typed hit and set against moka and quick_cache, with
//! the same String keys and value type, in one run. cashews and moka hold
//! entries with a one-hour TTL; quick_cache has no TTL (the floor: a sharded
//! hash map lookup and a clone).
//!
//! `get_hit_busy` repeats the hits with a CPU-bound thread spinning on
//! every core.
//!
//! `cargo bench --bench memory`

mod support;

use std::time::Duration;

use criterion::{black_box, Criterion};
use support::{print_ratios, profile, ready, Busy, Profile};

const ENTRIES: usize = 10_000;

fn keys() -> Vec<String> {
    (0..ENTRIES).map(|i| format!("user:{i}")).collect()
}

/// A cashews memory cache holding every key with a one-hour TTL.
fn cashews_filled(keys: &[String]) -> cashews::Cache {
    cashews_filled_with(keys, "bincode")
}

/// The same, storing with `codec`.
fn cashews_filled_with(keys: &[String], codec: &str) -> cashews::Cache {
    let cache = cashews::Cache::new();
    cache
        .setup(&format!(
            "mem://?size={ENTRIES}&check_interval=0&codec={codec}"
        ))
        .unwrap();
    for (i, k) in keys.iter().enumerate() {
        ready(
            cache
                .set(k, &profile(i as u64))
                .expire("1h")
                .into_future_ready(),
        )
        .unwrap();
    }
    cache
}

/// A moka cache of the same capacity and TTL, holding every key.
fn moka_filled(keys: &[String]) -> moka::future::Cache<String, Profile> {
    let moka = moka::future::Cache::<String, Profile>::builder()
        .max_capacity(ENTRIES as u64)
        .time_to_live(Duration::from_secs(3600))
        .build();
    for (i, k) in keys.iter().enumerate() {
        ready(moka.insert(k.clone(), profile(i as u64)));
    }
    moka
}

/// Typed hits, as group `name`.
fn get_hit(c: &mut Criterion, name: &str) {
    let keys = keys();
    let mut group = c.benchmark_group(name);

    let cache = cashews_filled(&keys);
    let mut i = 0;
    group.bench_function("cashews", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            let v: Option<Profile> = ready(cache.get(&keys[i])).unwrap();
            black_box(v)
        })
    });

    // The typed tier: a Clone type's hit clones the copy kept beside the
    // bytes.
    group.bench_function("cashews_cloned", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            let v: Option<Profile> = ready(cache.get_cloned(&keys[i])).unwrap();
            black_box(v)
        })
    });

    let moka = moka_filled(&keys);
    group.bench_function("moka", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(ready(moka.get(&keys[i])))
        })
    });

    let quick = quick_cache::sync::Cache::<String, Profile>::new(ENTRIES);
    for (i, k) in keys.iter().enumerate() {
        quick.insert(k.clone(), profile(i as u64));
    }
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(quick.get(keys[i].as_str()))
        })
    });
    group.finish();
}

/// Hits from two threads at once (this VM has two cores): time per hit of
/// the combined throughput, so a global lock would show as no speed-up.
fn get_hit_two_threads(c: &mut Criterion) {
    let keys = std::sync::Arc::new(keys());
    let mut group = c.benchmark_group("get_hit_2threads");

    let cache = cashews_filled(&keys);
    group.bench_function("cashews", |b| {
        b.iter_custom(|iters| {
            in_two_threads(iters, |i| {
                let v: Option<Profile> = ready(cache.get(&keys[i % ENTRIES])).unwrap();
                black_box(v);
            })
        })
    });

    let moka = moka_filled(&keys);
    group.bench_function("moka", |b| {
        b.iter_custom(|iters| {
            in_two_threads(iters, |i| {
                drop(black_box(ready(moka.get(&keys[i % ENTRIES]))))
            })
        })
    });
    group.finish();
}

/// Runs `iters` calls split over two threads; returns the elapsed time.
fn in_two_threads(iters: u64, f: impl Fn(usize) + Sync) -> Duration {
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for t in 0..2usize {
            let f = &f;
            s.spawn(move || {
                for i in 0..(iters / 2) as usize {
                    f(i * 2 + t);
                }
            });
        }
    });
    start.elapsed()
}

fn set(c: &mut Criterion) {
    let keys = keys();
    let values: Vec<Profile> = (0..ENTRIES as u64).map(profile).collect();
    let mut group = c.benchmark_group("set");

    let cache = cashews::Cache::new();
    cache
        .setup(&format!("mem://?size={ENTRIES}&check_interval=0"))
        .unwrap();
    let mut i = 0;
    group.bench_function("cashews", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            ready(
                cache
                    .set(&keys[i], &values[i])
                    .expire("1h")
                    .into_future_ready(),
            )
            .unwrap()
        })
    });

    let moka = moka::future::Cache::<String, Profile>::builder()
        .max_capacity(ENTRIES as u64)
        .time_to_live(Duration::from_secs(3600))
        .build();
    group.bench_function("moka", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            ready(moka.insert(keys[i].clone(), values[i].clone()))
        })
    });

    let quick = quick_cache::sync::Cache::<String, Profile>::new(ENTRIES);
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            quick.insert(keys[i].clone(), values[i].clone())
        })
    });
    group.finish();
}

/// `IntoFuture` builders as plain futures, for [`ready`].
trait IntoFutureReady: std::future::IntoFuture + Sized {
    fn into_future_ready(self) -> Self::IntoFuture {
        self.into_future()
    }
}
impl<T: std::future::IntoFuture> IntoFutureReady for T {}

/// The binary codecs on the same hit and set: bincode (the default) and
/// postcard (the maintained one a build without bincode uses).
fn codecs(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("codec");
    for codec in ["bincode", "postcard"] {
        let cache = cashews_filled_with(&keys, codec);
        let mut i = 0;
        group.bench_function(format!("get_hit_{codec}"), |b| {
            b.iter(|| {
                i = (i + 1) % ENTRIES;
                let v: Option<Profile> = ready(cache.get(&keys[i])).unwrap();
                black_box(v)
            })
        });
        let value = profile(7);
        group.bench_function(format!("set_{codec}"), |b| {
            b.iter(|| {
                i = (i + 1) % ENTRIES;
                ready(cache.set(&keys[i], &value).expire("1h").into_future_ready()).unwrap()
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    get_hit(&mut c, "get_hit");
    {
        let _busy = Busy::every_core();
        get_hit(&mut c, "get_hit_busy");
    }
    get_hit_two_threads(&mut c);
    set(&mut c);
    codecs(&mut c);
    c.final_summary();
    print_ratios(
        "memory backend, 10k entries, String keys, struct values",
        &[
            ("get_hit/cashews", "get_hit/moka"),
            ("get_hit/cashews", "get_hit/quick_cache"),
            ("get_hit/cashews_cloned", "get_hit/quick_cache"),
            ("get_hit_busy/cashews", "get_hit_busy/moka"),
            ("get_hit_busy/cashews", "get_hit_busy/quick_cache"),
            ("get_hit_busy/cashews_cloned", "get_hit_busy/quick_cache"),
            ("get_hit_2threads/cashews", "get_hit_2threads/moka"),
            ("get_hit_2threads/cashews", "get_hit/cashews"),
            ("set/cashews", "set/moka"),
            ("set/cashews", "set/quick_cache"),
            ("codec/get_hit_postcard", "codec/get_hit_bincode"),
            ("codec/set_postcard", "codec/set_bincode"),
        ],
    );
}
