//! `cashews::clear_all()` deletes every cached function's entries (its own
//! test binary: it clears the whole process's functions).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use cashews::{cache, Cache};

static FIRST: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
});
static SECOND: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
});
static CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", cache = FIRST, key = "double:{n}")]
async fn double(n: u64) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[cache(ttl = "1h", cache = SECOND, prefix = "v1")]
async fn triple(n: u64) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 3
}

#[cache(ttl = "1h", max_size = 10)]
fn quadruple(n: u64) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_all_deletes_every_functions_entries_and_nothing_else() {
    for n in 1..=3 {
        double(n).await;
        triple(n).await;
        quadruple(n);
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), 9);
    FIRST.set("unrelated", &1u8).await.unwrap();
    assert_eq!(cashews::clear_all().await.unwrap(), 9);
    assert_eq!(FIRST.get::<u8>("unrelated").await.unwrap(), Some(1));
    double(1).await;
    triple(1).await;
    quadruple(1);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        12,
        "every function computes again"
    );
}
