//! A decorated hit: `#[cache]` against the `cached` crate's `#[cached]` (with
//! a cashews-style String key built by `convert`) and moka's `get_with`, for
//! the same async function of a `u64` returning a small struct, in one run.
//!
//! `decorated_hit_busy` repeats the hits with a CPU-bound thread spinning
//! on every core.
//!
//! `cargo bench --bench decorated`

mod support;

use std::sync::LazyLock;
use std::time::Duration;

use cached::proc_macro::cached;
use cashews::cache;
use criterion::{black_box, Criterion};
use support::{print_ratios, profile as load, ready, Busy, Profile};

const ENTRIES: u64 = 10_000;

static CACHE: LazyLock<cashews::Cache> = LazyLock::new(|| {
    let cache = cashews::Cache::new();
    cache
        .setup(&format!("mem://?size={ENTRIES}&check_interval=0"))
        .expect("valid url");
    cache
});

#[cache(ttl = "1h", key = "profile:{id}", cache = CACHE)]
async fn cashews_profile(id: u64) -> Profile {
    load(id)
}

#[cached(
    max_size = 10000,
    ttl_secs = 3600,
    key = "String",
    convert = r#"{ format!("profile:{}", id) }"#
)]
async fn cached_profile(id: u64) -> Profile {
    load(id)
}

/// A cache of its own for the plain functions (the async bench's 10k
/// entries would otherwise share the bound with theirs).
static SYNC_CACHE: LazyLock<cashews::Cache> = LazyLock::new(|| {
    let cache = cashews::Cache::new();
    cache
        .setup(&format!("mem://?size={ENTRIES}&check_interval=0"))
        .expect("valid url");
    cache
});

/// The same as a plain function: a hit is answered in line.
#[cache(ttl = "1h", key = "profile_sync:{id}", cache = SYNC_CACHE)]
fn cashews_profile_sync(id: u64) -> Profile {
    load(id)
}

#[cached(
    max_size = 10000,
    ttl_secs = 3600,
    key = "String",
    convert = r#"{ format!("profile_sync:{}", id) }"#
)]
fn cached_profile_sync(id: u64) -> Profile {
    load(id)
}

/// Plain functions, no runtime: hits, and misses (a new key each time,
/// computed and stored through the cached call's driver).
fn sync_calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync");
    for id in 0..ENTRIES {
        cashews_profile_sync(id);
        cached_profile_sync(id);
    }
    let mut i = 0;
    group.bench_function("cashews_hit", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(cashews_profile_sync(black_box(i)))
        })
    });
    group.bench_function("cached_hit", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(cached_profile_sync(black_box(i)))
        })
    });
    let mut fresh = ENTRIES;
    group.bench_function("cashews_miss", |b| {
        b.iter(|| {
            fresh += 1;
            black_box(cashews_profile_sync(black_box(fresh)))
        })
    });
    group.bench_function("cached_miss", |b| {
        b.iter(|| {
            fresh += 1;
            black_box(cached_profile_sync(black_box(fresh)))
        })
    });
    group.finish();
}

/// Decorated hits, as group `name`.
fn decorated_hit(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group(name);
    for id in 0..ENTRIES {
        ready(cashews_profile(id));
        ready(cached_profile(id));
    }
    let mut i = 0;
    group.bench_function("cashews", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(ready(cashews_profile(black_box(i))))
        })
    });
    group.bench_function("cached", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(ready(cached_profile(black_box(i))))
        })
    });
    let moka = moka::future::Cache::<String, Profile>::builder()
        .max_capacity(ENTRIES)
        .time_to_live(Duration::from_secs(3600))
        .build();
    let moka_profile = |id: u64| moka.get_with(format!("profile:{id}"), async move { load(id) });
    for id in 0..ENTRIES {
        ready(moka_profile(id));
    }
    group.bench_function("moka_get_with", |b| {
        b.iter(|| {
            i = (i + 1) % ENTRIES;
            black_box(ready(moka_profile(black_box(i))))
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    decorated_hit(&mut c, "decorated_hit");
    {
        let _busy = Busy::every_core();
        decorated_hit(&mut c, "decorated_hit_busy");
    }
    sync_calls(&mut c);
    c.final_summary();
    print_ratios(
        "decorated hit: async fn(u64) -> struct, 10k entries, String keys",
        &[
            ("decorated_hit/cashews", "decorated_hit/cached"),
            ("decorated_hit/cashews", "decorated_hit/moka_get_with"),
            ("decorated_hit_busy/cashews", "decorated_hit_busy/cached"),
            (
                "decorated_hit_busy/cashews",
                "decorated_hit_busy/moka_get_with",
            ),
        ],
    );
    print_ratios(
        "plain fn(u64) -> struct, no runtime, 10k entries, String keys",
        &[
            ("sync/cashews_hit", "sync/cached_hit"),
            ("sync/cashews_miss", "sync/cached_miss"),
        ],
    );
}
