//! `#[cache]`: calls, keys, expiry, conditions, concurrency, methods.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cashews::backend::{Backend, MemoryBackend, MemoryConfig};
use cashews::codec::Serializer;
use cashews::{cache, Cache, Clock};
use serde::{Deserialize, Serialize};

fn memory_cache() -> Cache {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://?size=10000").unwrap();
    cache
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Profile {
    id: u64,
    name: String,
}

#[derive(Debug)]
struct User {
    id: u64,
    name: String,
    address: Address,
}

#[derive(Debug)]
struct Address {
    city: String,
}

fn ann() -> User {
    User {
        id: 7,
        name: "Ann".into(),
        address: Address {
            city: "Oslo".into(),
        },
    }
}

#[derive(Debug, PartialEq)]
struct ApiError(&'static str);

// ---- call counting, expiry -------------------------------------------------

static COUNTED: LazyLock<Cache> = LazyLock::new(memory_cache);
static COUNTED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "3h", key = "user:{user.id}", cache = COUNTED)]
async fn profile(user: &User) -> Result<Profile, ApiError> {
    COUNTED_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(Profile {
        id: user.id,
        name: user.name.clone(),
    })
}

#[tokio::test(start_paused = true)]
async fn hits_and_misses_are_counted_per_key() {
    let a = ann();
    let b = User { id: 8, ..ann() };
    assert_eq!(profile(&a).await.unwrap().id, 7);
    assert_eq!(profile(&a).await.unwrap().id, 7);
    assert_eq!(profile(&b).await.unwrap().id, 8);
    assert_eq!(COUNTED_CALLS.load(Ordering::SeqCst), 2, "one miss per key");
    assert!(COUNTED.exists("user:7").await.unwrap());
    tokio::time::advance(Duration::from_secs(3 * 3600 + 1)).await;
    profile(&a).await.unwrap();
    assert_eq!(
        COUNTED_CALLS.load(Ordering::SeqCst),
        3,
        "recomputed after the ttl"
    );
}

// ---- the design card's form ------------------------------------------------

static ANGLE: LazyLock<Cache> = LazyLock::new(memory_cache);

#[cache(ttl = "3h", key = "user:<user.id>", cache = ANGLE, helpers)]
async fn profile_angle(user: &User) -> u64 {
    user.id
}

#[tokio::test]
async fn angle_brackets_are_a_synonym() {
    assert_eq!(profile_angle::key(&ann()), "user:7");
    assert_eq!(profile_angle(&ann()).await, 7);
    assert!(ANGLE.exists("user:7").await.unwrap());
}

// ---- exact keys --------------------------------------------------------------

static KEYS: LazyLock<Cache> = LazyLock::new(memory_cache);

#[cache(ttl = 60, cache = KEYS, helpers)]
async fn default_key(
    id: u64,
    name: &str,
    active: bool,
    tags: Vec<String>,
    missing: Option<u8>,
) -> u8 {
    let _ = (id, name, active, tags, missing);
    0
}

#[cache(ttl = 60, cache = KEYS, helpers, key = "f:{flag}:{none}:{some}:{list}:{map}")]
async fn rendering(
    flag: bool,
    none: Option<u32>,
    some: Option<u32>,
    list: [u8; 3],
    map: BTreeMap<String, i32>,
) -> u8 {
    let _ = (flag, none, some, list, map);
    0
}

#[cache(ttl = 60, cache = KEYS, helpers, key = "u:{user.address.city:lower}:{user.name:upper}:{user.name:len}")]
async fn nested(user: &User) -> u8 {
    let _ = user;
    0
}

#[cache(ttl = 60, cache = KEYS, helpers, key = "h:{secret:hash(md5)}:{secret:hash(sha1)}:{secret:hash(sha256)}:{secret:hash}")]
async fn hashed(secret: &str) -> u8 {
    let _ = secret;
    0
}

#[cache(ttl = 60, cache = KEYS, helpers, key = "jwt:{token:jwt(sub)}")]
async fn by_token(token: &str) -> u8 {
    let _ = token;
    0
}

#[cache(ttl = 60, cache = KEYS, helpers, key = "ctx:{@:get(tenant)}:{id}")]
async fn in_context(id: u32) -> u8 {
    let _ = id;
    0
}

fn shard(id: &u64, shards: u64) -> u64 {
    id % shards
}

#[cache(ttl = 60, cache = KEYS, helpers, key = "s:{id:shard(4)}:{{literal}}:{pair.1}", prefix = "v2")]
async fn custom_formatter(id: u64, pair: (u8, u8)) -> u8 {
    let _ = (id, pair);
    0
}

#[cache(ttl = 60, cache = KEYS, helpers, skip = [db])]
async fn skipping(db: &Database, id: u32) -> u8 {
    let _ = (db, id);
    0
}

struct Database;

#[cache(ttl = 60, cache = KEYS, helpers, key = "m:{c}:{n}:{opt:upper}:{nested.1.0:lower}:<id:len>")]
async fn more_keys(c: char, n: i64, opt: Option<&str>, nested: (u8, (&str, bool)), id: u64) -> u8 {
    let _ = (c, n, opt, nested, id);
    0
}

struct Service {
    region: String,
}

impl Service {
    #[cache(ttl = 60, cache = KEYS, helpers)]
    async fn lookup(&self, id: u32) -> String {
        format!("{}:{id}", self.region)
    }

    #[cache(ttl = 60, cache = KEYS, helpers, key = "svc:{self.region}:{id}")]
    async fn lookup_in_region(&self, id: u32) -> String {
        format!("{}:{id}", self.region)
    }
}

mod other {
    pub struct Service;

    impl Service {
        #[cashews::cache(ttl = 60, cache = super::KEYS, helpers)]
        pub async fn lookup(&self, id: u32) -> String {
            format!("other:{id}")
        }
    }
}

#[tokio::test]
async fn documented_keys_render_exactly() {
    let module = module_path!();
    let cases: Vec<(String, String)> = vec![
        (
            default_key::key(1, "ann", true, vec!["a".into(), "b".into()], None),
            format!("{module}::default_key:id:1:name:ann:active:true:tags:a%3Ab:missing:"),
        ),
        (
            rendering::key(false, None, Some(3), [1, 2, 3], [("b".into(), 2), ("a".into(), 1)].into()),
            "f:false::3:1%3A2%3A3:a%3A1%3Ab%3A2".into(),
        ),
        (nested::key(&ann()), "u:oslo:ANN:3".into()),
        (
            hashed::key("pw"),
            // md5, sha1, sha256 of "pw" (as coreutils' md5sum, sha1sum, sha256sum print them)
            "h:8fe4c11451281c094a6578e6ddbf5eed:1a91d62f7ca67399625a4368a6ab5d4a3baa6073\
             :30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4:8fe4c11451281c094a6578e6ddbf5eed"
                .into(),
        ),
        (
            by_token::key("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2ln"),
            "jwt:user-1".into(),
        ),
        (in_context::key(5), "ctx::5".into()),
        (
            cashews::scope::key_context([("tenant", "acme")], async { in_context::key(5) }).await,
            "ctx:acme:5".into(),
        ),
        (custom_formatter::key(10, (1, 2)), "v2:s:2:{literal}:2".into()),
        (skipping::key(&Database, 4), format!("{module}::skipping:id:4")),
        (
            Service { region: "eu".into() }.lookup_key(9),
            format!("{module}::Service::lookup:id:9"),
        ),
        (Service { region: "eu".into() }.lookup_in_region_key(9), "svc:eu:9".into()),
        (other::Service.lookup_key(9), format!("{module}::other::Service::lookup:id:9")),
        (more_keys::key('x', -42, Some("ab"), (1, ("MiXed", true)), 12345), "m:x:-42:AB:mixed:5".into()),
        (more_keys::key('x', 0, None, (1, ("", false)), 0), "m:x:0:::1".into()),
        (default_key::key(0, "", false, vec![], Some(9)), format!("{module}::default_key:id:0:name::active:false:tags::missing:9")),
    ];
    assert!(cases.len() >= 15, "{} documented cases", cases.len());
    for (got, want) in &cases {
        assert_eq!(got, want);
    }
    // Each documented key is the one the call writes.
    default_key(1, "ann", true, vec!["a".into(), "b".into()], None).await;
    assert!(KEYS.exists(&cases[0].1).await.unwrap());
    Service {
        region: "eu".into(),
    }
    .lookup(9)
    .await;
    other::Service.lookup(9).await;
    assert!(KEYS.exists(&cases[9].1).await.unwrap());
    assert!(
        KEYS.exists(&cases[11].1).await.unwrap(),
        "same method name, another impl: another key"
    );
}

// ---- conditions ----------------------------------------------------------------

static CONDITIONS: LazyLock<Cache> = LazyLock::new(memory_cache);
static CONDITION_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", cache = CONDITIONS, key = "opt:{id}")]
async fn maybe(id: u32) -> Option<u32> {
    CONDITION_CALLS.fetch_add(1, Ordering::SeqCst);
    (id > 0).then_some(id)
}

#[cache(ttl = "1h", cache = CONDITIONS, key = "nn:{id}", condition = not_none)]
async fn maybe_not_none(id: u32) -> Result<Option<u32>, ApiError> {
    CONDITION_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok((id > 0).then_some(id))
}

#[cache(ttl = "1h", cache = CONDITIONS, key = "err:{fail}")]
async fn fallible(fail: bool) -> Result<u32, ApiError> {
    CONDITION_CALLS.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(ApiError("upstream"))
    } else {
        Ok(1)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct StoredError(String);

#[cache(ttl = "1h", cache = CONDITIONS, key = "we:{n}", condition = with_errors)]
async fn errors_too(n: u32) -> Result<u32, StoredError> {
    CONDITION_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(StoredError(format!("no {n}")))
}

fn only_even(output: &u32) -> bool {
    output % 2 == 0
}

#[cache(ttl = "1h", cache = CONDITIONS, key = "even:{n}", condition = only_even)]
async fn evens(n: u32) -> u32 {
    CONDITION_CALLS.fetch_add(1, Ordering::SeqCst);
    n
}

async fn calls_of<F: std::future::Future>(f: impl Fn() -> F) -> usize {
    let before = CONDITION_CALLS.load(Ordering::SeqCst);
    f().await;
    f().await;
    CONDITION_CALLS.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn conditions_decide_what_is_stored() {
    assert_eq!(calls_of(|| maybe(0)).await, 1, "None is cached by default");
    assert_eq!(maybe(0).await, None);
    assert_eq!(
        calls_of(|| maybe_not_none(0)).await,
        2,
        "not_none skips None"
    );
    assert_eq!(calls_of(|| maybe_not_none(3)).await, 1);
    assert_eq!(maybe_not_none(3).await, Ok(Some(3)));
    assert_eq!(calls_of(|| fallible(true)).await, 2, "Err is never cached");
    assert_eq!(fallible(true).await, Err(ApiError("upstream")));
    assert_eq!(calls_of(|| fallible(false)).await, 1);
    assert_eq!(
        calls_of(|| errors_too(1)).await,
        1,
        "with_errors stores Err"
    );
    assert_eq!(errors_too(1).await, Err(StoredError("no 1".into())));
    assert_eq!(calls_of(|| evens(3)).await, 2);
    assert_eq!(calls_of(|| evens(4)).await, 1);
}

static TIMED: LazyLock<Cache> = LazyLock::new(memory_cache);
static TIMED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", cache = TIMED, key = "slow:{delay_ms}", time_condition = "1s")]
async fn slow(delay_ms: u64) -> u64 {
    TIMED_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    delay_ms
}

#[tokio::test(start_paused = true)]
async fn time_condition_caches_only_slow_calls() {
    slow(10).await;
    slow(10).await;
    assert_eq!(
        TIMED_CALLS.load(Ordering::SeqCst),
        2,
        "fast calls are not cached"
    );
    slow(2000).await;
    slow(2000).await;
    assert_eq!(TIMED_CALLS.load(Ordering::SeqCst), 3, "slow calls are");
}

/// The TTL from the result and the arguments: a token lives as long as
/// it says; a long-lived user's answers an hour; `None` is not stored.
fn ttl_for(
    out: &Result<Option<u64>, String>,
    user: &User,
    long: &bool,
    _valid: &Option<u64>,
) -> Option<Duration> {
    let _ = user;
    match out {
        Ok(Some(valid_secs)) if !*long => Some(Duration::from_secs(*valid_secs)),
        Ok(Some(_)) => Some(Duration::from_secs(3600)),
        Ok(None) | Err(_) => None,
    }
}

static DYNAMIC: LazyLock<Cache> = LazyLock::new(memory_cache);
static DYNAMIC_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = ttl_for, cache = DYNAMIC, key = "d:{user.id}:{long}:{valid}")]
async fn dynamic_ttl(user: &User, long: bool, valid: Option<u64>) -> Result<Option<u64>, String> {
    DYNAMIC_CALLS.fetch_add(1, Ordering::SeqCst);
    let _ = (user, long);
    Ok(valid)
}

/// A TTL function answering something that is not a TTL: not stored.
fn zero_ttl(_out: &u64, _id: &u64) -> u64 {
    0
}

#[cache(ttl = zero_ttl, cache = DYNAMIC, key = "z:{id}")]
async fn zero(id: u64) -> u64 {
    id
}

#[tokio::test]
async fn ttl_can_be_computed_from_the_result_and_the_arguments() {
    let expiry = |key: &'static str| async move { DYNAMIC.get_expire(key).await.unwrap() };
    assert_eq!(dynamic_ttl(&ann(), false, Some(30)).await, Ok(Some(30)));
    assert!(
        matches!(expiry("d:7:false:30").await, cashews::Expiry::Remaining(d) if d <= Duration::from_secs(30) && d > Duration::from_secs(25)),
        "the result's own lifetime"
    );
    dynamic_ttl(&ann(), true, Some(30)).await.unwrap();
    assert!(
        matches!(expiry("d:7:true:30").await, cashews::Expiry::Remaining(d) if d > Duration::from_secs(3000)),
        "the arguments choose too"
    );
    // None: returned, not stored, computed again.
    let before = DYNAMIC_CALLS.load(Ordering::SeqCst);
    assert_eq!(dynamic_ttl(&ann(), false, None).await, Ok(None));
    assert_eq!(dynamic_ttl(&ann(), false, None).await, Ok(None));
    assert_eq!(DYNAMIC_CALLS.load(Ordering::SeqCst), before + 2);
    assert_eq!(expiry("d:7:false:").await, cashews::Expiry::Missing);
    // Stored ones are hits.
    dynamic_ttl(&ann(), false, Some(30)).await.unwrap();
    assert_eq!(DYNAMIC_CALLS.load(Ordering::SeqCst), before + 2);
    // An invalid TTL is logged and not stored.
    assert_eq!(zero(5).await, 5);
    assert_eq!(expiry("z:5").await, cashews::Expiry::Missing);
}

// ---- concurrency ---------------------------------------------------------------

static STAMPEDE: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
});
static STAMPEDE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1m", cache = STAMPEDE, key = "cold")]
async fn cold() -> Profile {
    STAMPEDE_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Profile {
        id: 1,
        name: "x".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_cold_callers_run_the_body_once() {
    let calls: Vec<_> = (0..200).map(|_| tokio::spawn(cold())).collect();
    for call in calls {
        assert_eq!(call.await.unwrap().id, 1);
    }
    assert_eq!(STAMPEDE_CALLS.load(Ordering::SeqCst), 1);
}

/// Two caches over one backend: in-process single-flight cannot see across
/// them, only the backend lock can.
static SHARED_BACKEND: LazyLock<Arc<dyn Backend>> =
    LazyLock::new(|| Arc::new(MemoryBackend::new(MemoryConfig::default(), Clock::system())));

fn sharing() -> Cache {
    let cache = Cache::new();
    cache.add_backend("", SHARED_BACKEND.clone(), Serializer::default());
    cache
}

static PROCESS_A: LazyLock<Cache> = LazyLock::new(sharing);
static PROCESS_B: LazyLock<Cache> = LazyLock::new(sharing);
static LOCKED_CALLS: AtomicUsize = AtomicUsize::new(0);

async fn expensive() -> u32 {
    LOCKED_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    42
}

#[cache(ttl = "1m", cache = PROCESS_A, key = "report", lock = true)]
async fn report_a() -> u32 {
    expensive().await
}

#[cache(ttl = "1m", cache = PROCESS_B, key = "report", lock = true)]
async fn report_b() -> u32 {
    expensive().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_makes_two_cache_instances_compute_once() {
    let mut calls = Vec::new();
    for _ in 0..10 {
        calls.push(tokio::spawn(report_a()));
        calls.push(tokio::spawn(report_b()));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 42);
    }
    assert_eq!(LOCKED_CALLS.load(Ordering::SeqCst), 1);
}

// ---- forms of functions ----------------------------------------------------------

static FORMS: LazyLock<Cache> = LazyLock::new(memory_cache);
static FORM_CALLS: AtomicUsize = AtomicUsize::new(0);

trait Repository {
    async fn find(&self, id: u64) -> Option<Profile>;
}

struct Postgres;

impl Repository for Postgres {
    #[cache(ttl = "5m", cache = FORMS)]
    async fn find(&self, id: u64) -> Option<Profile> {
        FORM_CALLS.fetch_add(1, Ordering::SeqCst);
        Some(Profile {
            id,
            name: "pg".into(),
        })
    }
}

#[cache(ttl = "5m", cache = FORMS)]
async fn generic<T: std::fmt::Display + Send + Sync>(
    item: T,
    owned: String,
    borrowed: &[u8],
) -> String {
    FORM_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("{item}:{owned}:{}", borrowed.len())
}

#[tokio::test]
async fn trait_impls_generics_and_owned_arguments() {
    assert_eq!(Postgres.find(3).await.unwrap().name, "pg");
    assert_eq!(Postgres.find(3).await.unwrap().name, "pg");
    assert_eq!(generic(1.5, "o".into(), b"ab").await, "1.5:o:2");
    assert_eq!(generic(1.5, "o".into(), b"ab").await, "1.5:o:2");
    assert_eq!(FORM_CALLS.load(Ordering::SeqCst), 2);
    let mut keys = FORMS.scan("*").await.unwrap().try_collect().await.unwrap();
    keys.sort();
    let module = module_path!();
    assert_eq!(
        keys,
        vec![
            format!("{module}::Postgres::find:id:3"),
            format!("{module}::generic:item:1.5:owned:o:borrowed:97%3A98"),
        ]
    );
}

// ---- helpers ---------------------------------------------------------------------

static HELPERS: LazyLock<Cache> = LazyLock::new(memory_cache);
static HELPER_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", cache = HELPERS, key = "price:{item}", helpers)]
async fn price(item: &str) -> u32 {
    HELPER_CALLS.fetch_add(1, Ordering::SeqCst);
    item.len() as u32
}

#[tokio::test]
async fn key_invalidate_and_uncached_helpers() {
    assert_eq!(price::key("tea"), "price:tea");
    price("tea").await;
    price("tea").await;
    assert_eq!(HELPER_CALLS.load(Ordering::SeqCst), 1);
    price::uncached("tea").await;
    assert_eq!(
        HELPER_CALLS.load(Ordering::SeqCst),
        2,
        "uncached always calls"
    );
    assert!(price::invalidate("tea").await.unwrap());
    assert!(!price::invalidate("tea").await.unwrap());
    price("tea").await;
    assert_eq!(
        HELPER_CALLS.load(Ordering::SeqCst),
        3,
        "recomputed after invalidate"
    );
    cashews::scope::uncached(price("tea")).await;
    assert_eq!(HELPER_CALLS.load(Ordering::SeqCst), 4);
}

// ---- the global cache and crate = path -------------------------------------------

#[cache(ttl = "1m", crate = ::cashews)]
async fn on_the_global_cache(n: u8) -> u8 {
    n + 1
}

#[tokio::test]
async fn the_default_cache_is_the_global_one() {
    cashews::setup("mem://").unwrap();
    assert_eq!(on_the_global_cache(1).await, 2);
    let key = format!("{}::on_the_global_cache:n:1", module_path!());
    assert_eq!(
        cashews::Cache::global().get::<u8>(&key).await.unwrap(),
        Some(2)
    );
}

// ---- tags and cache_info -----------------------------------------------------

static TAGGED: LazyLock<Cache> = LazyLock::new(memory_cache);
static TAGGED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", key = "item:{id}", tags = ["items", "item:{id}"], cache = TAGGED, helpers)]
async fn item(id: u64) -> u64 {
    TAGGED_CALLS.fetch_add(1, Ordering::SeqCst);
    id * 10
}

#[tokio::test]
async fn tags_of_cached_functions_delete_their_results() {
    let calls = || TAGGED_CALLS.load(Ordering::SeqCst);
    for id in [1, 2, 3] {
        assert_eq!(item(id).await, id * 10);
    }
    assert_eq!(calls(), 3);
    assert_eq!(TAGGED.delete_tags(&["item:2"]).await.unwrap(), 1);
    item(1).await;
    item(2).await;
    assert_eq!(calls(), 4, "only item 2 was recomputed");
    assert_eq!(TAGGED.delete_tags(&["items"]).await.unwrap(), 3);
    item(1).await;
    assert_eq!(calls(), 5);
}

static INFO: LazyLock<Cache> = LazyLock::new(memory_cache);

#[cache(ttl = "1h", key = "sq:{n}", cache = INFO, helpers)]
async fn square(n: u64) -> u64 {
    n * n
}

#[cache(ttl = "1h", cache = INFO, helpers)]
async fn cube(n: u64) -> u64 {
    n * n * n
}

#[cache(ttl = "1h", key = "odd[{n}]*", cache = INFO, helpers)]
async fn odd(n: u64) -> u64 {
    n
}

struct Shapes;

impl Shapes {
    #[cache(ttl = "1h", cache = INFO, helpers)]
    async fn area(&self, side: u64) -> u64 {
        side * side
    }
}

#[tokio::test]
async fn cache_info_counts_hits_misses_and_stored_results() {
    for n in [1, 2, 2, 3, 3, 3] {
        square(n).await;
    }
    let info = square::cache_info().await;
    assert_eq!((info.hits, info.misses, info.size), (3, 3, Some(3)));
    cube(2).await;
    cube(2).await;
    let info = cube::cache_info().await;
    assert_eq!((info.hits, info.misses, info.size), (1, 1, Some(1)));
    // Glob characters of a template are literal in its pattern: `odd*x`
    // would match `odd[*]*` but is not one of odd's keys.
    odd(1).await;
    odd(2).await;
    INFO.set("odd*x", &0).await.unwrap();
    assert_eq!(odd::cache_info().await.size, Some(2));
    let shapes = Shapes;
    shapes.area(4).await;
    shapes.area(4).await;
    shapes.area(5).await;
    let info = shapes.area_cache_info().await;
    assert_eq!((info.hits, info.misses, info.size), (1, 2, Some(2)));
    // Every cached function called so far is listed.
    let names: Vec<&str> = cashews::strategy::function_stats()
        .iter()
        .map(|s| s.name())
        .collect();
    for name in ["square", "cube", "area"] {
        let full = format!("{}::{name}", module_path!());
        assert!(names.contains(&full.as_str()), "{full} in {names:?}");
    }
}

// ---- keys are injective over argument values --------------------------------

static INJECTIVE: LazyLock<Cache> = LazyLock::new(memory_cache);

#[cache(ttl = "1h", cache = INJECTIVE, helpers)]
async fn document(user: &str, doc: &str) -> String {
    format!("{user}/{doc}")
}

#[cache(ttl = "1h", cache = INJECTIVE, helpers)]
async fn optional(name: Option<&str>) -> String {
    format!("{name:?}")
}

#[cache(ttl = "1h", cache = INJECTIVE, helpers)]
async fn listed(items: Vec<String>) -> String {
    format!("{items:?}")
}

#[cache(ttl = "1h", cache = INJECTIVE, helpers)]
async fn nested_lists(items: Vec<Vec<&'static str>>, more: Vec<&'static str>) -> String {
    format!("{items:?} {more:?}")
}

#[tokio::test]
async fn default_keys_never_share_a_key_between_different_arguments() {
    // The separator inside a value cannot pose as the next argument's label.
    assert_eq!(document("alice", "x:doc:y").await, "alice/x:doc:y");
    assert_eq!(document("alice:doc:x", "y").await, "alice:doc:x/y");
    assert_ne!(
        document::key("alice", "x:doc:y"),
        document::key("alice:doc:x", "y")
    );
    // None and Some("") are different arguments.
    assert_eq!(optional(None).await, "None");
    assert_eq!(optional(Some("")).await, "Some(\"\")");
    assert_eq!(optional(Some("%")).await, "Some(\"%\")");
    // A sequence of one value with the separator is not two values.
    assert_eq!(listed(vec!["a:b".into()]).await, "[\"a:b\"]");
    assert_eq!(listed(vec!["a".into(), "b".into()]).await, "[\"a\", \"b\"]");
    assert_eq!(listed(vec!["a%3Ab".into()]).await, "[\"a%3Ab\"]");
    // Nested sequences keep their shape, also across arguments.
    assert_eq!(
        nested_lists(vec![vec!["a", "b"]], vec![]).await,
        "[[\"a\", \"b\"]] []"
    );
    assert_eq!(
        nested_lists(vec![vec!["a"], vec!["b"]], vec![]).await,
        "[[\"a\"], [\"b\"]] []"
    );
    assert_eq!(
        nested_lists(vec![vec!["x"], vec!["more", "y"]], vec![]).await,
        "[[\"x\"], [\"more\", \"y\"]] []"
    );
    assert_eq!(
        nested_lists(vec![vec!["x"]], vec!["y"]).await,
        "[[\"x\"]] [\"y\"]"
    );
    // Plain values keep their readable form.
    assert_eq!(
        document::key("alice", "report"),
        concat!(module_path!(), "::document:user:alice:doc:report")
    );
    assert_eq!(
        optional::key(None),
        concat!(module_path!(), "::optional:name:")
    );
}

static TENANTS: LazyLock<Cache> = LazyLock::new(memory_cache);

#[cache(ttl = "1h", key = "tenant:{tenant}:report:{id}", cache = TENANTS)]
async fn tenant_report(tenant: &str, id: u32) -> String {
    format!("{tenant}/{id}")
}

#[cache::invalidate("tenant:{tenant}:*", cache = TENANTS)]
async fn reset_tenant(tenant: &str) {
    let _ = tenant;
}

#[tokio::test]
async fn a_template_value_cannot_reach_into_another_values_keys() {
    tenant_report("acme", 1).await;
    tenant_report("acme:report", 1).await;
    assert_eq!(TENANTS.get_keys_count().await.unwrap(), 2, "two keys");
    // Invalidating tenant "acme:report" leaves tenant "acme" alone.
    reset_tenant("acme:report").await;
    assert!(TENANTS.exists("tenant:acme:report:1").await.unwrap());
    assert_eq!(TENANTS.get_keys_count().await.unwrap(), 1);
    reset_tenant("acme").await;
    assert_eq!(TENANTS.get_keys_count().await.unwrap(), 0);
}

// ---- single flight when the leader fails or hangs ------------------------------

static FAILING: LazyLock<Cache> = LazyLock::new(memory_cache);
static FAILING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1m", cache = FAILING, key = "failing")]
async fn failing() -> Result<u32, ApiError> {
    FAILING_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(ApiError("upstream"))
}

#[tokio::test(start_paused = true)]
async fn waiters_of_a_failed_leader_never_run_one_after_another() {
    let started = tokio::time::Instant::now();
    let callers: Vec<_> = (0..50).map(|_| tokio::spawn(failing())).collect();
    let mut slowest = Duration::ZERO;
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Err(ApiError("upstream")));
        slowest = slowest.max(started.elapsed());
    }
    // The error cannot be cloned, so nothing is shared: the leader's 100 ms,
    // then every waiter at once — 200 ms, not 50 × 100 ms.
    assert!(slowest <= Duration::from_millis(250), "{slowest:?}");
    assert_eq!(FAILING_CALLS.load(Ordering::SeqCst), 50);
}

#[derive(Debug, Clone, PartialEq)]
struct SharedError(&'static str);

static SHARING: LazyLock<Cache> = LazyLock::new(memory_cache);
static SHARING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1m", cache = SHARING, key = "sharing")]
async fn failing_clone() -> Result<u32, SharedError> {
    SHARING_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(SharedError("upstream"))
}

#[tokio::test(start_paused = true)]
async fn waiters_of_a_failed_leader_share_its_error_when_it_can_be_cloned() {
    let started = tokio::time::Instant::now();
    let callers: Vec<_> = (0..50).map(|_| tokio::spawn(failing_clone())).collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Err(SharedError("upstream")));
    }
    assert!(
        started.elapsed() <= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        SHARING_CALLS.load(Ordering::SeqCst),
        1,
        "one call for fifty callers"
    );
    // Not stored: the next call runs again.
    assert_eq!(failing_clone().await, Err(SharedError("upstream")));
    assert_eq!(SHARING_CALLS.load(Ordering::SeqCst), 2);
}

static HANGING: LazyLock<Cache> = LazyLock::new(memory_cache);
static HANGING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1m", cache = HANGING, key = "hanging")]
async fn hanging() -> u32 {
    if HANGING_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        // The first call never finishes.
        std::future::pending::<()>().await;
    }
    7
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_never_finishes_holds_its_waiters_no_longer_than_the_bound() {
    let leader = tokio::spawn(hanging());
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    let waiters: Vec<_> = (0..5).map(|_| tokio::spawn(hanging())).collect();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), 7);
    }
    let waited = started.elapsed();
    assert!(
        waited >= cashews::MAX_FLIGHT_WAIT
            && waited <= cashews::MAX_FLIGHT_WAIT + Duration::from_secs(1),
        "{waited:?}"
    );
    assert!(!leader.is_finished());
    leader.abort();
}

// ---- a cached call before setup is reported once, naming the function -------------

/// Counts error events and keeps their `function` field.
#[derive(Clone, Default)]
struct Errors(Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::Subscriber for Errors {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Function(String);
        impl tracing::field::Visit for Function {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "function" {
                    self.0 = value.to_owned();
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if *event.metadata().level() == tracing::Level::ERROR {
            let mut function = Function(String::new());
            event.record(&mut function);
            self.0.lock().unwrap().push(function.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

static NEVER_SET_UP: LazyLock<Cache> = LazyLock::new(Cache::new);
static NOT_SET_UP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache(ttl = "1h", cache = NEVER_SET_UP)]
async fn before_setup(id: u64) -> u64 {
    NOT_SET_UP_CALLS.fetch_add(1, Ordering::SeqCst);
    id
}

#[test]
fn a_call_before_setup_runs_and_is_reported_once_with_the_function_name() {
    let errors = Errors::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(errors.clone(), || {
        runtime.block_on(async {
            for _ in 0..3 {
                assert_eq!(before_setup(7).await, 7);
            }
        })
    });
    assert_eq!(NOT_SET_UP_CALLS.load(Ordering::SeqCst), 3, "runs uncached");
    let reported = errors.0.lock().unwrap().clone();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].ends_with("before_setup"), "{reported:?}");
}

// ---- a function's own bounded store, and clearing a function ---------------

static BOUNDED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// aquiche's `maxsize`, `cached`'s `size`: at most two results, in a store
/// of the function's own.
#[cache(ttl = "1h", max_size = 2, helpers, key = "bounded:{id}")]
async fn bounded(id: u64) -> u64 {
    BOUNDED_CALLS.fetch_add(1, Ordering::SeqCst);
    id
}

#[tokio::test]
async fn max_size_gives_a_function_its_own_bounded_store() {
    let calls = || BOUNDED_CALLS.load(Ordering::SeqCst);
    for id in [1, 2, 1, 3] {
        assert_eq!(bounded(id).await, id);
    }
    assert_eq!(calls(), 3, "1 was a hit");
    // 2 was the least recently used: evicted for 3; 1 stays.
    bounded(1).await;
    assert_eq!(calls(), 3);
    bounded(2).await;
    assert_eq!(calls(), 4);
    // The store is the function's own; the helpers reach it.
    assert_eq!(bounded::cache_info().await.size, Some(2));
    assert_eq!(
        bounded::remove_expired().await.unwrap(),
        0,
        "nothing expired"
    );
    assert_eq!(bounded::cache_clear().await.unwrap(), 2);
    bounded(1).await;
    assert_eq!(calls(), 5);
}

/// Two methods of one name in one module: each has its own bounded store.
struct Left;
struct Right;

static SAME_NAME_CALLS: AtomicUsize = AtomicUsize::new(0);

impl Left {
    #[cache(ttl = "1h", max_size = 1, key = "same:{id}")]
    async fn lookup(&self, id: u64) -> u64 {
        SAME_NAME_CALLS.fetch_add(1, Ordering::SeqCst);
        id
    }
}

impl Right {
    #[cache(ttl = "1h", max_size = 1, key = "same:{id}")]
    async fn lookup(&self, id: u64) -> u64 {
        SAME_NAME_CALLS.fetch_add(1, Ordering::SeqCst);
        id + 100
    }
}

#[tokio::test]
async fn methods_of_one_name_have_stores_of_their_own() {
    assert_eq!(Left.lookup(1).await, 1);
    assert_eq!(Right.lookup(1).await, 101, "not Left's entry");
    assert_eq!(Left.lookup(1).await, 1);
    assert_eq!(SAME_NAME_CALLS.load(Ordering::SeqCst), 2);
}
