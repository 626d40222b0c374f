//! Scale: 1k, 100k and 1M entries of the same struct under String keys in
//! cashews' memory backend, moka and quick_cache, in one run: nanoseconds
//! per hit (keys read in a shuffled order, so caches larger than the CPU's
//! caches pay for it) and bytes per entry (what the cache allocated while
//! filled, counted by this bench's allocator: keys, values and the cache's
//! own structures).
//!
//! `cargo bench --bench scale`

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::IntoFuture;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use support::{print_header, print_row, profile, ready, record, Profile};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A permutation of `0..n` (xorshift, fixed seed: the same every run).
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

/// Reads `keys` in `order` until at least a million reads and 200 ms;
/// nanoseconds per read.
fn time_reads(keys: &[String], order: &[usize], mut read: impl FnMut(&str)) -> f64 {
    let mut reads = 0u64;
    let started = Instant::now();
    while reads < 1_000_000 || started.elapsed() < Duration::from_millis(200) {
        for &i in order {
            read(&keys[i]);
        }
        reads += order.len() as u64;
    }
    started.elapsed().as_nanos() as f64 / reads as f64
}

/// Bytes per entry and ns per hit of one cache, built by `fill`.
fn measure<C>(
    keys: &[String],
    order: &[usize],
    fill: impl FnOnce() -> C,
    read: impl Fn(&C, &str),
) -> (f64, f64) {
    let before = LIVE.load(Ordering::Relaxed);
    let cache = fill();
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / keys.len() as f64;
    let ns = time_reads(keys, order, |key| read(&cache, key));
    drop(cache);
    (bytes, ns)
}

fn main() {
    for n in [1_000usize, 100_000, 1_000_000] {
        let keys: Vec<String> = (0..n).map(|i| format!("user:{i}")).collect();
        let values: Vec<Profile> = (0..n as u64).map(profile).collect();
        let order = shuffled(n);
        let cashews = measure(
            &keys,
            &order,
            || {
                let cache = cashews::Cache::new();
                cache
                    .setup(&format!("mem://?size={n}&check_interval=0"))
                    .unwrap();
                for (key, value) in keys.iter().zip(&values) {
                    ready(cache.set(key, value).expire("1h").into_future()).unwrap();
                }
                cache
            },
            |cache, key| {
                let hit: Option<Profile> = ready(cache.get(key)).unwrap();
                black_box(hit.expect("filled"));
            },
        );
        let moka = measure(
            &keys,
            &order,
            || {
                let cache = moka::future::Cache::<String, Profile>::builder()
                    .max_capacity(n as u64)
                    .time_to_live(Duration::from_secs(3600))
                    .build();
                for (key, value) in keys.iter().zip(&values) {
                    ready(cache.insert(key.clone(), value.clone()));
                }
                ready(cache.run_pending_tasks());
                cache
            },
            |cache, key| {
                black_box(ready(cache.get(key)).expect("filled"));
            },
        );
        let quick = measure(
            &keys,
            &order,
            || {
                let cache = quick_cache::sync::Cache::<String, Profile>::new(n);
                for (key, value) in keys.iter().zip(&values) {
                    cache.insert(key.clone(), value.clone());
                }
                cache
            },
            |cache, key| {
                black_box(cache.get(key));
            },
        );
        let title = format!("scale: {n} entries, shuffled hits (ns) and bytes per entry");
        print_header(&title);
        print_row(
            &title,
            "cashews hit / quick_cache hit",
            Some(cashews.1),
            Some(quick.1),
        );
        print_row(
            &title,
            "cashews hit / moka hit",
            Some(cashews.1),
            Some(moka.1),
        );
        print_row(
            &title,
            "cashews bytes / quick_cache bytes",
            Some(cashews.0),
            Some(quick.0),
        );
        print_row(
            &title,
            "cashews bytes / moka bytes",
            Some(cashews.0),
            Some(moka.0),
        );
        record(
            "scale.tsv",
            &format!(
                "{n}\t{:.1}\t{:.1}\t{:.1}\t{:.0}\t{:.0}\t{:.0}",
                cashews.1, moka.1, quick.1, cashews.0, moka.0, quick.0
            ),
        );
    }
}
