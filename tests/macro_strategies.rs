//! The strategy attributes, alone and stacked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cashews::strategy::{CircuitOpen, RateLimited};
use cashews::{cache, Cache, Clock, Error};

fn paused_cache() -> Cache {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://?size=10000").unwrap();
    cache
}

fn real_cache() -> Cache {
    let cache = Cache::new();
    cache.setup("mem://?size=10000").unwrap();
    cache
}

#[derive(Debug, PartialEq, Clone)]
enum ApiError {
    Down,
    Limited,
    Open,
    Cache(String),
}

impl From<RateLimited> for ApiError {
    fn from(_: RateLimited) -> Self {
        ApiError::Limited
    }
}

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError::Open
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Cache(e.to_string())
    }
}

// ---- stacking: failover over a simple cache over a rate limit -----------------------

static STACK: LazyLock<Cache> = LazyLock::new(paused_cache);
static STACK_CALLS: AtomicUsize = AtomicUsize::new(0);
static STACK_FAIL: AtomicUsize = AtomicUsize::new(0);

/// Read outside in: failover answers with the last success when anything
/// below fails; the simple cache serves hits for 10 s; the rate limit only
/// counts calls that reach the function.
#[cache::failover(ttl = "1h", cache = STACK)]
#[cache(ttl = "10s", cache = STACK)]
#[cache::rate_limit(limit = 2, period = "1m", cache = STACK)]
async fn stacked(id: u32) -> Result<u32, ApiError> {
    STACK_CALLS.fetch_add(1, Ordering::SeqCst);
    if STACK_FAIL.load(Ordering::SeqCst) == 1 {
        return Err(ApiError::Down);
    }
    Ok(id * 10)
}

#[tokio::test(start_paused = true)]
async fn stacked_strategies_wrap_in_the_order_written() {
    assert_eq!(stacked(1).await, Ok(10));
    assert_eq!(stacked(1).await, Ok(10), "the simple cache hit");
    assert_eq!(STACK_CALLS.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        stacked(1).await,
        Ok(10),
        "recomputed: the second call within the limit"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(stacked(1).await, Ok(10), "over the limit: failover answers");
    assert_eq!(
        STACK_CALLS.load(Ordering::SeqCst),
        2,
        "the rate limit kept the function from running"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    STACK_FAIL.store(1, Ordering::SeqCst);
    assert_eq!(
        stacked(1).await,
        Ok(10),
        "the function fails: failover answers"
    );
    assert_eq!(
        stacked(2).await,
        Err(ApiError::Down),
        "nothing stored for 2"
    );
}

// ---- early: one background refresh, answers at once ----------------------------------

static EARLY: LazyLock<Cache> = LazyLock::new(paused_cache);
static EARLY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::early(ttl = "1h", early_ttl = "1m", cache = EARLY)]
async fn early_value(name: &str) -> String {
    let n = EARLY_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    format!("{name}#{n}")
}

#[tokio::test(start_paused = true)]
async fn early_refreshes_in_the_background() {
    assert_eq!(early_value("a").await, "a#0");
    tokio::time::advance(Duration::from_secs(61)).await;
    for _ in 0..10 {
        assert_eq!(early_value("a").await, "a#0", "stale but immediate");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(EARLY_CALLS.load(Ordering::SeqCst), 2, "exactly one refresh");
    assert_eq!(early_value("a").await, "a#1");
}

// ---- stampedes: 1000 cold callers, one execution --------------------------------------

static STAMPEDE: LazyLock<Cache> = LazyLock::new(real_cache);
static LOCK_CALLS: AtomicUsize = AtomicUsize::new(0);
static LOCKED_CALLS: AtomicUsize = AtomicUsize::new(0);
static EARLY_COLD_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1m", cache = STAMPEDE, key = "with_lock", lock = true, protected = false)]
async fn with_lock() -> u32 {
    LOCK_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    1
}

static PAUSED: LazyLock<Cache> = LazyLock::new(paused_cache);
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// `locked` caches nothing: it runs one call at a time per key (each caller
/// waits up to an hour here; the default wait is `DEFAULT_LOCK_WAIT`).
#[cache::locked(ttl = "1h", wait = "1h", cache = PAUSED, key = "with_locked")]
async fn with_locked() -> Result<u32, ApiError> {
    LOCKED_CALLS.fetch_add(1, Ordering::SeqCst);
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_RUNNING.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    Ok(2)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_callers_under_locked_run_one_at_a_time() {
    assert!(thousand(with_locked).await.iter().all(|v| *v == Ok(2)));
    assert_eq!(
        LOCKED_CALLS.load(Ordering::SeqCst),
        1000,
        "locked caches nothing"
    );
    assert_eq!(MOST_RUNNING.load(Ordering::SeqCst), 1, "never two at once");
}

#[cache::early(ttl = "1m", cache = STAMPEDE, key = "with_early")]
async fn with_early() -> u32 {
    EARLY_COLD_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    3
}

async fn thousand<F, Fut, T>(f: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..1000).map(|_| tokio::spawn(f())).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_callers_run_once_under_lock_and_early() {
    assert!(thousand(with_lock).await.iter().all(|v| *v == 1));
    assert_eq!(
        LOCK_CALLS.load(Ordering::SeqCst),
        1,
        "lock = true, without in-process protection"
    );
    assert!(thousand(with_early).await.iter().all(|v| *v == 3));
    assert_eq!(EARLY_COLD_CALLS.load(Ordering::SeqCst), 1, "early");
}

// ---- locked without waiting, rate limit, circuit breaker -------------------------------

static GUARDS: LazyLock<Cache> = LazyLock::new(paused_cache);

#[cache::locked(ttl = "10s", wait = false, cache = GUARDS, key = "job")]
async fn exclusive() -> Result<(), ApiError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn locked_without_wait_returns_the_functions_error() {
    let (a, b) = tokio::join!(exclusive(), exclusive());
    let mut results = [a, b];
    results.sort_by_key(|r| r.is_err());
    assert_eq!(results[0], Ok(()));
    assert!(
        matches!(&results[1], Err(ApiError::Cache(m)) if m.contains("locked")),
        "{results:?}"
    );
}

#[cache::rate_limit(limit = 2, period = "500ms", ttl = "1s", cache = GUARDS)]
async fn limited(user: u32) -> Result<u32, ApiError> {
    Ok(user)
}

#[tokio::test(start_paused = true)]
async fn rate_limit_sequence_through_the_attribute() {
    let mut results = Vec::new();
    for wait_ms in [0, 0, 0, 300, 0, 300, 0, 600] {
        tokio::time::advance(Duration::from_millis(wait_ms)).await;
        results.push(limited(7).await);
    }
    let ok = Ok(7);
    let no = Err(ApiError::Limited);
    assert_eq!(
        results,
        [
            ok.clone(),
            ok.clone(),
            no.clone(),
            no.clone(),
            no.clone(),
            no.clone(),
            no,
            ok
        ]
    );
}

fn is_down(e: &ApiError) -> bool {
    *e == ApiError::Down
}

static BREAKER_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::circuit_breaker(errors_rate = 50, period = "1m", ttl = "10s", min_calls = 2, on = is_down, cache = GUARDS)]
async fn fragile(fail: bool) -> Result<(), ApiError> {
    BREAKER_CALLS.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn circuit_breaker_through_the_attribute() {
    assert_eq!(fragile(false).await, Ok(()));
    assert_eq!(fragile(true).await, Err(ApiError::Down));
    assert_eq!(
        fragile(false).await,
        Err(ApiError::Open),
        "one key per function by default"
    );
    assert_eq!(BREAKER_CALLS.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(fragile(false).await, Ok(()));
}

// ---- soft, hit on a method, invalidate, dual bloom -------------------------------------

static MISC: LazyLock<Cache> = LazyLock::new(paused_cache);

#[cache::soft(ttl = "1m", soft_ttl = "10s", cache = MISC)]
async fn soft_value(fail: bool, n: u32) -> Result<u32, ApiError> {
    if fail {
        Err(ApiError::Down)
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn soft_through_the_attribute() {
    assert_eq!(soft_value(false, 1).await, Ok(1));
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        soft_value(true, 1).await,
        Err(ApiError::Down),
        "another key: fail=true"
    );
    assert_eq!(
        soft_value(false, 1).await,
        Ok(1),
        "recomputed after soft_ttl"
    );
}

#[derive(Clone)]
struct Catalog {
    version: Arc<AtomicUsize>,
}

impl Catalog {
    #[cache::hit(ttl = "1h", cache_hits = 100, update_after = 2, cache = MISC)]
    async fn price(&self, item: &str) -> u32 {
        (self.version.fetch_add(1, Ordering::SeqCst) * 100) as u32 + item.len() as u32
    }
}

#[tokio::test(start_paused = true)]
async fn hit_refreshes_a_method_in_the_background() {
    let catalog = Catalog {
        version: Arc::new(AtomicUsize::new(0)),
    };
    assert_eq!(catalog.price("tea").await, 3);
    assert_eq!(catalog.price("tea").await, 3);
    assert_eq!(
        catalog.price("tea").await,
        3,
        "the second hit starts a refresh"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(catalog.price("tea").await, 103, "the refreshed value");
}

#[cache(ttl = "1h", cache = MISC, key = "item:{id}:name")]
async fn item_name(id: &str) -> String {
    format!("name of {id}")
}

#[cache::invalidate("item:{id}:*", cache = MISC)]
async fn rename(id: &str) -> Result<(), ApiError> {
    let _ = id;
    Ok(())
}

#[tokio::test]
async fn invalidate_escapes_arguments_in_the_pattern() {
    for id in ["1", "2", "1*"] {
        item_name(id).await;
    }
    rename("1*").await.unwrap();
    assert!(
        MISC.exists("item:1:name").await.unwrap(),
        "`*` in an argument is literal"
    );
    assert!(!MISC.exists("item:1*:name").await.unwrap());
    rename("1").await.unwrap();
    assert!(!MISC.exists("item:1:name").await.unwrap());
    assert!(MISC.exists("item:2:name").await.unwrap());
}

static ASKED: AtomicUsize = AtomicUsize::new(0);

#[cache::dual_bloom(capacity = 1000, false_positives = 1, cache = MISC)]
async fn is_registered(email: &str) -> bool {
    ASKED.fetch_add(1, Ordering::SeqCst);
    email.ends_with("@known.org")
}

#[tokio::test]
async fn dual_bloom_remembers_answers() {
    assert!(is_registered("a@known.org").await);
    assert!(!is_registered("b@other.org").await);
    assert!(is_registered("a@known.org").await);
    assert!(!is_registered("b@other.org").await);
    assert_eq!(ASKED.load(Ordering::SeqCst), 2);
}

// ---- iterator ---------------------------------------------------------------------------

static STREAMS: LazyLock<Cache> = LazyLock::new(real_cache);
static STREAM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::iterator(ttl = "1h", cache = STREAMS)]
fn numbers(upto: u32) -> impl futures_util::Stream<Item = u32> + Send {
    STREAM_CALLS.fetch_add(1, Ordering::SeqCst);
    futures_util::stream::iter(0..upto)
}

#[cache::iterator(ttl = "1h", cache = STREAMS)]
fn fallible_numbers(
    fail_at: u32,
) -> impl futures_util::Stream<Item = Result<u32, ApiError>> + Send {
    STREAM_CALLS.fetch_add(1, Ordering::SeqCst);
    futures_util::stream::iter((0..3).map(move |n| {
        if n == fail_at {
            Err(ApiError::Down)
        } else {
            Ok(n)
        }
    }))
}

#[tokio::test]
async fn iterator_replays_every_item_and_skips_failed_streams() {
    use futures_util::StreamExt;
    let first: Vec<u32> = numbers(4).collect().await;
    let second: Vec<u32> = numbers(4).collect().await;
    assert_eq!(first, vec![0, 1, 2, 3]);
    assert_eq!(second, first, "replayed, zero included");
    assert_eq!(STREAM_CALLS.load(Ordering::SeqCst), 1);
    let broken: Vec<_> = fallible_numbers(1).collect().await;
    assert_eq!(broken, vec![Ok(0), Err(ApiError::Down), Ok(2)]);
    let again: Vec<_> = fallible_numbers(1).collect().await;
    assert_eq!(again, broken);
    assert_eq!(
        STREAM_CALLS.load(Ordering::SeqCst),
        3,
        "a stream with an error is not cached"
    );
    let fine: Vec<_> = fallible_numbers(9).collect().await;
    let _: Vec<_> = fallible_numbers(9).collect().await;
    assert_eq!(fine, vec![Ok(0), Ok(1), Ok(2)]);
    assert_eq!(STREAM_CALLS.load(Ordering::SeqCst), 4);
}

static BLOOM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::bloom(capacity = 1000, false_positives = 1, cache = MISC, key = "{email}")]
async fn has_account(email: &str) -> bool {
    BLOOM_CALLS.fetch_add(1, Ordering::SeqCst);
    email == "ann@example.org"
}

#[tokio::test]
async fn bloom_answers_absent_items_without_calling() {
    let filter = cashews::strategy::BloomFilter::new(
        &MISC,
        concat!(module_path!(), "::has_account"),
        1000,
        1.0,
    );
    filter.add("ann@example.org").await.unwrap();
    assert!(has_account("ann@example.org").await);
    assert!(!has_account("bob@example.org").await);
    assert_eq!(
        BLOOM_CALLS.load(Ordering::SeqCst),
        1,
        "only the possibly present item reached the function"
    );
}

// ---- a stacked #[cache] is the same #[cache]: stats, helpers, hit fast path ----------

/// Counts heap allocations made by the current thread while counting is on.
mod allocations {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    // SAFETY: every call is forwarded to the system allocator unchanged;
    // only a thread-local counter is touched besides.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            COUNT.with(|c| c.set(c.get().map(|n| n + 1)));
            // SAFETY: the caller's contract is passed on as it is.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// Runs `f`; the allocations it made on this thread.
    pub fn during<R>(f: impl FnOnce() -> R) -> (R, usize) {
        COUNT.with(|c| c.set(Some(0)));
        let out = f();
        let n = COUNT.with(|c| c.replace(None)).unwrap_or(0);
        (out, n)
    }
}

#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;

/// Polls `future` once: its output if it completed on that poll.
fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

static OUTER: LazyLock<Cache> = LazyLock::new(real_cache);
static OUTER_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", key = "outer:{id}", cache = OUTER, helpers)]
#[cache::locked(ttl = "10s", cache = OUTER)]
async fn cache_over_lock(id: u32) -> Result<u32, ApiError> {
    OUTER_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(id + 1)
}

#[tokio::test]
async fn a_stacked_cache_counts_stats_has_helpers_and_answers_hits_on_the_first_poll() {
    assert_eq!(cache_over_lock(1).await, Ok(2));
    // A hit of the outermost #[cache] completes on the first poll without
    // allocating: the layers below are never built.
    let (hit, allocated) = allocations::during(|| poll_once(cache_over_lock(1)));
    assert_eq!(hit, Some(Ok(2)));
    assert_eq!(allocated, 0, "a memory hit allocated");
    assert_eq!(OUTER_CALLS.load(Ordering::SeqCst), 1);

    assert_eq!(cache_over_lock::key(1), "outer:1");
    let info = cache_over_lock::cache_info().await;
    assert_eq!((info.hits, info.misses, info.size), (1, 1, Some(1)));
    assert!(cache_over_lock::invalidate(1).await.unwrap());
    assert_eq!(cache_over_lock(1).await, Ok(2));
    assert_eq!(OUTER_CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(cache_over_lock::uncached(1).await, Ok(2));
    assert_eq!(OUTER_CALLS.load(Ordering::SeqCst), 3);
}

static INNER: LazyLock<Cache> = LazyLock::new(real_cache);
static INNER_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::failover(ttl = "1h", cache = INNER)]
#[cache(ttl = "1h", key = "inner:{id}", cache = INNER, helpers)]
async fn failover_over_cache(id: u32) -> Result<u32, ApiError> {
    INNER_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(id * 3)
}

#[tokio::test]
async fn an_inner_cache_counts_its_hits_and_misses() {
    for _ in 0..3 {
        assert_eq!(failover_over_cache(2).await, Ok(6));
    }
    assert_eq!(INNER_CALLS.load(Ordering::SeqCst), 1);
    let info = failover_over_cache::cache_info().await;
    assert_eq!((info.hits, info.misses), (2, 1));
}

/// A lone #[cache] hit, for comparison: the same first-poll, no-allocation path.
#[cache(ttl = "1h", key = "lone:{id}", cache = OUTER)]
async fn lone(id: u32) -> u32 {
    id
}

#[tokio::test]
async fn a_lone_cache_answers_hits_on_the_first_poll_without_allocating() {
    assert_eq!(lone(5).await, 5);
    let (hit, allocated) = allocations::during(|| poll_once(lone(5)));
    assert_eq!((hit, allocated), (Some(5), 0));
}
