//! The Cache layer: setup URLs, routing, signing, decoding, single-flight,
//! middlewares and disabling.

mod support;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashews::backend::{Backend, BoxFuture, MemoryBackend, MemoryConfig};
use cashews::codec::{CodecKind, Digest, Serializer};
use cashews::middleware::{Callback, Middleware, Next, Request, Response};
use cashews::{Cache, Clock, Command, CommandSet, Error};
use serde::{Deserialize, Serialize};
use support::conformance::{profile, Profile};

fn mem() -> Cache {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
}

#[test]
fn malformed_urls_are_errors_naming_the_problem() {
    let cache = Cache::new();
    let cases = [
        ("", "missing scheme"),
        ("mem", "missing scheme"),
        ("couchbase://localhost", "unknown scheme"),
        ("ftp://x", "mem://"),
        ("mem://?size", "has no value"),
        ("mem://?size=1&size=2", "twice"),
        ("mem://?size=abc", "size"),
        ("mem://?size=%zz", "percent-encoding"),
        ("mem://?colour=red", "colour"),
        ("mem://?secret=", "secret is empty"),
        ("mem://?digestmod=sha256", "without secret"),
        ("mem://?secret=x&digestmod=crc32", "digestmod"),
        ("mem://?codec=pickle", "codec"),
        ("mem://?check_interval=-1s", "check_interval"),
        ("m e m://", "invalid scheme"),
        ("mem://#frag", "fragment"),
    ];
    for (url, needle) in cases {
        let err = cache.setup(url).expect_err(url).to_string();
        assert!(err.contains(needle), "{url:?} -> {err}");
    }
    assert!(!cache.is_setup(), "no failed setup left a backend behind");
}

#[test]
fn errors_hide_secrets() {
    let err = Cache::new()
        .setup("mem://?secret=hunter2&bogus=1")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn unknown_scheme_lists_the_compiled_in_schemes() {
    let err = Cache::new().setup("redis2://x").unwrap_err().to_string();
    assert!(err.contains("mem://") && err.contains("feature"), "{err}");
}

#[tokio::test]
async fn commands_before_setup_are_not_configured_errors() {
    let cache = Cache::new();
    assert!(matches!(
        cache.get::<i32>("k").await,
        Err(Error::NotConfigured { .. })
    ));
    assert!(matches!(
        cache.ping().await,
        Err(Error::NotConfigured { .. })
    ));
    assert!(cache.init().await.is_err());
}

#[tokio::test]
async fn longest_prefix_wins_and_multi_key_commands_split() {
    let cache = Cache::new();
    cache.setup("mem://?size=100").unwrap();
    cache.setup_prefix("user:", "mem://?size=2").unwrap();
    cache
        .setup_prefix("user:admin:", "mem://?size=100")
        .unwrap();
    cache.init().await.unwrap();
    cache.set("other", &0).await.unwrap();
    for i in 0..3 {
        cache.set(&format!("user:{i}"), &i).await.unwrap();
    }
    cache.set("user:admin:1", &10).await.unwrap();
    // The "user:" backend holds 2 entries: user:0 was evicted there only.
    let got: Vec<Option<i32>> = cache
        .get_many(&["user:0", "user:1", "user:2", "user:admin:1", "other"])
        .await
        .unwrap();
    assert_eq!(got, vec![None, Some(1), Some(2), Some(10), Some(0)]);
    assert_eq!(cache.get_keys_count().await.unwrap(), 4);
    let mut keys = cache
        .scan("user:*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, vec!["user:1", "user:2", "user:admin:1"]);
    assert_eq!(
        cache
            .delete_many(&["user:1", "user:admin:1", "other"])
            .await
            .unwrap(),
        3
    );
    assert_eq!(cache.delete_match("*").await.unwrap(), 1);
}

#[tokio::test]
async fn keys_outside_every_prefix_are_not_configured() {
    let cache = Cache::new();
    cache.setup_prefix("user:", "mem://").unwrap();
    assert!(
        matches!(cache.set("order:1", &1).await, Err(Error::NotConfigured { key }) if key == "order:1")
    );
}

/// Two caches over one memory backend, each with its own serializer.
fn shared(serializers: [Serializer; 2]) -> [Cache; 2] {
    let backend: Arc<dyn Backend> =
        Arc::new(MemoryBackend::new(MemoryConfig::default(), Clock::system()));
    serializers.map(|s| {
        let cache = Cache::new();
        cache.add_backend("", backend.clone(), s);
        cache
    })
}

fn signed(digest: Digest) -> Serializer {
    Serializer::new(CodecKind::Bincode).with_secret(b"s3cret", digest)
}

#[tokio::test]
async fn tampered_values_are_misses_counted_and_kept() {
    let cache = mem();
    cache.setup("mem://?secret=s3cret").unwrap();
    cache.set("k", &profile(1)).await.unwrap();
    assert_eq!(cache.get::<Profile>("k").await.unwrap(), Some(profile(1)));
    let mut raw = cache.get_raw("k").await.unwrap().unwrap().to_vec();
    let last = raw.len() - 1;
    raw[last] ^= 0x01;
    cache.set_raw("k", raw).await.unwrap();
    assert_eq!(cache.get::<Profile>("k").await.unwrap(), None);
    assert_eq!(cache.stats().bad_signature, 1);
    assert!(
        cache.exists("k").await.unwrap(),
        "a bad signature is not deleted"
    );
}

#[tokio::test]
async fn a_signed_value_moved_to_another_key_fails() {
    let cache = Cache::new();
    cache
        .setup("mem://?secret=s3cret&digestmod=sha512")
        .unwrap();
    cache.set("price:1", &100u32).await.unwrap();
    let raw = cache.get_raw("price:1").await.unwrap().unwrap();
    cache.set_raw("price:2", raw).await.unwrap();
    assert_eq!(cache.get::<u32>("price:2").await.unwrap(), None);
    assert_eq!(cache.get::<u32>("price:1").await.unwrap(), Some(100));
    assert_eq!(cache.stats().bad_signature, 1);
}

#[tokio::test]
async fn the_configured_digest_is_the_only_one_accepted() {
    let [md5, sha256] = shared([signed(Digest::Md5), signed(Digest::Sha256)]);
    md5.set("k", &1).await.unwrap();
    assert_eq!(md5.get::<i32>("k").await.unwrap(), Some(1));
    assert_eq!(
        sha256.get::<i32>("k").await.unwrap(),
        None,
        "a stored value cannot choose its digest"
    );
    assert_eq!(sha256.stats().bad_signature, 1);
}

#[tokio::test]
async fn unsigned_values_and_bare_integers_are_rejected_under_a_secret() {
    let [plain, secure] = shared([Serializer::default(), signed(Digest::Sha256)]);
    plain.set("k", &7).await.unwrap();
    assert_eq!(secure.get::<i32>("k").await.unwrap(), None);
    plain.set_raw("n", "999").await.unwrap();
    assert_eq!(
        secure.get::<i32>("n").await.unwrap(),
        None,
        "a planted integer is not a signed value"
    );
    assert_eq!(secure.stats().unsigned, 2);
    // Counters stay readable through the counter API.
    secure.incr("hits").by(3).await.unwrap();
    assert_eq!(secure.get_counter("hits").await.unwrap(), Some(3));
    // Values written under a secret still read without one (nothing to verify).
    secure.set("s", &5).await.unwrap();
    assert_eq!(plain.get::<i32>("s").await.unwrap(), Some(5));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ProfileV2 {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    email: String,
}

#[tokio::test]
async fn a_value_of_a_changed_type_is_a_miss_and_deleted() {
    let cache = mem();
    cache.set("p", &profile(1)).await.unwrap();
    assert_eq!(cache.get::<ProfileV2>("p").await.unwrap(), None);
    assert_eq!(cache.stats().corrupt, 1);
    assert!(
        !cache.exists("p").await.unwrap(),
        "deleted so it is recomputed"
    );
    // A foreign value is a miss but is left alone (it may be a lock or a counter).
    cache.set_raw("foreign", "hello").await.unwrap();
    assert_eq!(cache.get::<ProfileV2>("foreign").await.unwrap(), None);
    assert!(cache.exists("foreign").await.unwrap());
    assert_eq!(cache.stats().foreign, 1);
}

#[tokio::test]
async fn a_hostile_length_prefix_is_a_miss_without_a_large_allocation() {
    let cache = mem();
    // Envelope (bincode, unsigned) + a varint length claiming 2^60 elements.
    let mut raw = vec![0xCA, 1, 1, 0, 253];
    raw.extend_from_slice(&(1u64 << 60).to_le_bytes());
    raw.extend_from_slice(b"tail");
    cache.set_raw("evil", raw).await.unwrap();
    assert_eq!(cache.get::<Vec<u64>>("evil").await.unwrap(), None);
    cache
        .set_raw("evil", vec![0xCA, 1, 1, 0, 253, 0, 0, 0, 0, 0, 0, 0, 16])
        .await
        .unwrap();
    assert_eq!(cache.get::<Vec<String>>("evil").await.unwrap(), None);
    assert_eq!(cache.stats().corrupt, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_runs_one_computation_for_100_concurrent_callers() {
    let cache = mem();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("cold", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        profile(9)
                    })
                    .expire("1m")
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), profile(9));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(matches!(
        cache.get_expire("cold").await.unwrap(),
        cashews::Expiry::Remaining(_)
    ));
}

#[derive(Debug, PartialEq)]
enum LoadError {
    Upstream,
    Cache(String),
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Cache(e.to_string())
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_load_is_not_cached_and_its_waiters_load_at_once() {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("flaky", || async move {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if n == 0 {
                            Err(LoadError::Upstream)
                        } else {
                            Ok(n as u64)
                        }
                    })
                    .fallible()
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(LoadError::Upstream))
            .count(),
        1,
        "only the leader's load failed: {results:?}"
    );
    // The leader shared nothing, so its 19 waiters loaded at once — 40 ms in
    // all, not one after another (20 × 20 ms).
    assert_eq!(calls.load(Ordering::SeqCst), 20);
    assert!(
        started.elapsed() <= Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert!(results.iter().filter(|r| r.is_ok()).count() == 19);
    // A later call reads what one of them stored.
    let stored: u64 = cache
        .get_or_set("flaky", || async { Ok::<u64, LoadError>(0) })
        .fallible()
        .await
        .unwrap();
    assert!((1..20).contains(&stored), "{stored}");
}

#[tokio::test]
async fn a_cancelled_leader_hands_over() {
    let cache = mem();
    let slow = cache.get_or_set("k", || async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        1u32
    });
    // The leader is cancelled by the timeout; the next caller computes.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), slow.into_future())
            .await
            .is_err()
    );
    let v: u32 = cache.get_or_set("k", || async { 2 }).await.unwrap();
    assert_eq!(v, 2);
}

/// A value carrying its own lifetime and version, as an HTTP response or a
/// token does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Versioned {
    version: u32,
    valid_secs: u64,
}

#[tokio::test(start_paused = true)]
async fn get_or_set_takes_the_ttl_from_the_value_and_refuses_unusable_hits() {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://").unwrap();
    let load = |version, valid_secs| {
        cache
            .get_or_set("v", move || async move {
                Versioned {
                    version,
                    valid_secs,
                }
            })
            .expire("1h")
            .expire_with(|v: &Versioned| cashews::Ttl::from_secs(v.valid_secs).ok())
    };
    // The value's own lifetime, not the builder's hour.
    assert_eq!(load(1, 30).await.unwrap().version, 1);
    match cache.get_expire("v").await.unwrap() {
        cashews::Expiry::Remaining(d) => assert_eq!(d, Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    assert_eq!(load(2, 30).await.unwrap().version, 1, "a hit");
    // `None` from the hook: returned, not stored.
    cache.delete("v").await.unwrap();
    assert_eq!(load(3, 0).await.unwrap().version, 3);
    assert_eq!(cache.get::<Versioned>("v").await.unwrap(), None);

    // hit_if: a stored value it refuses is reloaded (once for concurrent
    // callers) and replaced.
    cache
        .set(
            "v",
            &Versioned {
                version: 4,
                valid_secs: 60,
            },
        )
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("v", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        Ok::<_, LoadError>(Versioned {
                            version: 5,
                            valid_secs: 60,
                        })
                    })
                    .fallible()
                    .hit_if(|v: &Versioned| v.version >= 5)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().version, 5);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.get::<Versioned>("v").await.unwrap().unwrap().version,
        5
    );
}

#[derive(Debug)]
struct Record(&'static str, Arc<Mutex<Vec<String>>>);

impl Middleware for Record {
    fn call<'a>(
        &'a self,
        request: Request<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, cashews::Result<Response>> {
        Box::pin(async move {
            self.1
                .lock()
                .unwrap()
                .push(format!("{} in {}", self.0, request.command()));
            let response = next.run(request).await;
            self.1.lock().unwrap().push(format!("{} out", self.0));
            response
        })
    }
}

#[derive(Debug)]
struct Prefix(&'static str);

impl Middleware for Prefix {
    fn call<'a>(
        &'a self,
        mut request: Request<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, cashews::Result<Response>> {
        for key in request.keys_mut() {
            *key = format!("{}{key}", self.0).into();
        }
        next.run(request)
    }
}

#[tokio::test]
async fn middlewares_run_in_the_order_added() {
    let cache = mem();
    let log = Arc::new(Mutex::new(Vec::new()));
    let outer = cache.add_middleware(Record("outer", log.clone()));
    cache.add_middleware(Record("inner", log.clone()));
    cache.get::<i32>("k").await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["outer in get", "inner in get", "inner out", "outer out"]
    );
    assert!(cache.remove_middleware(outer));
    assert!(!cache.remove_middleware(outer));
    log.lock().unwrap().clear();
    cache.exists("k").await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["inner in exists", "inner out"]);
}

#[tokio::test]
async fn a_middleware_can_rewrite_keys_of_every_command() {
    let cache = mem();
    cache.add_middleware(Prefix("app:"));
    cache.set("k", &1).await.unwrap();
    cache.set_many(&[("a", 1), ("b", 2)]).await.unwrap();
    cache.incr("n").await.unwrap();
    // The pattern is prefixed too, and keys come back as stored.
    let mut keys = cache.scan("*").await.unwrap().try_collect().await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["app:a", "app:b", "app:k", "app:n"]);
    assert!(cache
        .scan("app:*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
}

#[tokio::test]
async fn callbacks_see_chosen_commands_and_their_results() {
    let cache = mem();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    cache.add_middleware(Callback::new(
        [Command::Set, Command::Delete],
        move |event| {
            let ok = matches!(event.result, Ok(Response::Bool(true)));
            log.lock().unwrap().push(format!(
                "{} {} {} {ok}",
                event.command,
                event.key.unwrap_or(""),
                event.backend
            ));
        },
    ));
    cache.set("a", &1).await.unwrap();
    cache.get::<i32>("a").await.unwrap();
    cache.delete("a").await.unwrap();
    cache.delete("a").await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["set a mem true", "delete a mem true", "delete a mem false"]
    );
}

#[tokio::test]
async fn disabled_commands_answer_as_an_empty_backend() {
    let cache = mem();
    cache.set("a", &1).await.unwrap();
    cache.disable(CommandSet::all());
    assert_eq!(cache.get::<i32>("a").await.unwrap(), None);
    assert_eq!(
        cache.get_many::<i32>(&["a", "b"]).await.unwrap(),
        vec![None, None],
        "aligned"
    );
    assert!(!cache.set("b", &2).await.unwrap());
    assert_eq!(cache.incr("n").by(5).await.unwrap(), 5);
    assert!(cache
        .scan("*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(cache.get_or_set("c", || async { 3 }).await.unwrap(), 3);
    cache.enable(CommandSet::all());
    assert_eq!(cache.get::<i32>("a").await.unwrap(), Some(1));
    assert!(!cache.exists("b").await.unwrap());
    assert!(!cache.exists("n").await.unwrap());

    cache.disable(Command::Set);
    assert!(cache.disabled().contains(Command::Set) && !cache.disabled().contains(Command::Get));
    assert!(!cache.set("b", &2).await.unwrap());
    assert_eq!(cache.get::<i32>("a").await.unwrap(), Some(1));
    cache.enable(Command::Set);
    assert!(cache.set("b", &2).await.unwrap());
}

#[tokio::test]
async fn disabling_is_scoped_to_the_task_and_the_cache() {
    let cache = mem();
    let other = mem();
    cache.set("a", &1).await.unwrap();
    other.set("a", &1).await.unwrap();
    let (inside, other_inside, spawned) = cache
        .disabling(Command::Get, async {
            let inside = cache.get::<i32>("a").await.unwrap();
            let other_inside = other.get::<i32>("a").await.unwrap();
            let c = cache.clone();
            let spawned = tokio::spawn(async move { c.get::<i32>("a").await.unwrap() })
                .await
                .unwrap();
            let nested = cache
                .disabling(Command::Set, async { cache.set("x", &1).await.unwrap() })
                .await;
            assert!(!nested);
            assert!(
                cache.is_disabled(Command::Get) && !cache.is_disabled(Command::Set),
                "nesting restores"
            );
            (inside, other_inside, spawned)
        })
        .await;
    assert_eq!(inside, None);
    assert_eq!(other_inside, Some(1), "another cache is not affected");
    assert_eq!(spawned, Some(1), "a spawned task starts outside the scope");
    assert_eq!(
        cache.get::<i32>("a").await.unwrap(),
        Some(1),
        "the scope ended"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_lock_backs_off_instead_of_spinning() {
    let cache = Cache::with_clock(Clock::tokio());
    cache.setup("mem://").unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    cache.add_middleware(Callback::new(Command::SetLock, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let _held = cache.lock("busy", "1h").await.unwrap();
    let started = tokio::time::Instant::now();
    let result = cache.lock("busy", "1h").wait(Duration::from_secs(2)).await;
    assert!(matches!(result, Err(Error::Locked { .. })));
    assert!(started.elapsed() >= Duration::from_secs(2));
    let tries = attempts.load(Ordering::SeqCst);
    assert!((5..=25).contains(&tries), "{tries} attempts in 2 s");
}

#[tokio::test]
async fn a_dropped_guard_releases_its_lock() {
    let cache = mem();
    {
        let _guard = cache.lock("job", "1h").await.unwrap();
    }
    tokio::task::yield_now().await;
    for _ in 0..10 {
        if !cache.is_locked("job").await.unwrap() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the lock was not released after its guard was dropped");
}

#[cfg(feature = "json")]
#[tokio::test]
async fn json_and_bincode_read_each_other() {
    let [json, bincode] = shared([
        Serializer::new(CodecKind::Json),
        Serializer::new(CodecKind::Bincode),
    ]);
    json.set("j", &profile(1)).await.unwrap();
    bincode.set("b", &profile(2)).await.unwrap();
    assert_eq!(bincode.get::<Profile>("j").await.unwrap(), Some(profile(1)));
    assert_eq!(json.get::<Profile>("b").await.unwrap(), Some(profile(2)));
    let raw = json.get_raw("j").await.unwrap().unwrap();
    assert!(std::str::from_utf8(&raw[4..])
        .unwrap()
        .contains("\"name\":\"user 1\""));
}

#[tokio::test]
async fn postcard_and_bincode_read_each_other_and_postcard_is_set_up_by_url() {
    let [postcard, bincode] = shared([
        Serializer::new(CodecKind::Postcard),
        Serializer::new(CodecKind::Bincode),
    ]);
    postcard.set("p", &profile(1)).await.unwrap();
    bincode.set("b", &profile(2)).await.unwrap();
    assert_eq!(bincode.get::<Profile>("p").await.unwrap(), Some(profile(1)));
    assert_eq!(
        postcard.get::<Profile>("b").await.unwrap(),
        Some(profile(2))
    );
    // The envelope names the codec: byte 2 is postcard's id.
    assert_eq!(postcard.get_raw("p").await.unwrap().unwrap()[2], 3);

    let cache = Cache::new();
    cache.setup("mem://?codec=postcard").unwrap();
    cache.set("k", &vec![profile(3)]).await.unwrap();
    assert_eq!(cache.get_raw("k").await.unwrap().unwrap()[2], 3);
    assert_eq!(
        cache.get::<Vec<Profile>>("k").await.unwrap(),
        Some(vec![profile(3)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_commits_are_seen_whole() {
    let cache = Cache::new();
    cache.setup("mem://?size=100000").unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each commit writes `b` then `a`; a reader that reads `b` then `a`
    // could see a new `b` with an old `a` only if a commit were applied in
    // parts.
    let writer = {
        let (cache, done) = (cache.clone(), done.clone());
        tokio::spawn(async move {
            for n in 1..=3000u64 {
                let tx = cache.transaction(cashews::TransactionMode::Fast);
                for pair in 0..4 {
                    tx.set(&format!("pair{pair}:b"), &n, None::<u64>)
                        .await
                        .unwrap();
                    tx.set(&format!("pair{pair}:a"), &n, None::<u64>)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let mut reads = 0u64;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        for pair in 0..4 {
            let b = cache
                .get::<u64>(&format!("pair{pair}:b"))
                .await
                .unwrap()
                .unwrap_or(0);
            let a = cache
                .get::<u64>(&format!("pair{pair}:a"))
                .await
                .unwrap()
                .unwrap_or(0);
            assert!(a >= b, "pair {pair}: saw b = {b} before a = {a}");
            reads += 1;
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(reads > 0);
}

#[tokio::test]
async fn duration_settings_take_any_ttl_form_and_an_invalid_one_is_handled_not_panicked() {
    use cashews::strategy::{Limit, OnBackendError, RateLimit, SliceRateLimit, Soft};
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    // Any TTL form.
    let guard = cache
        .lock("l", "10s")
        .wait("250ms")
        .backoff("1ms")
        .await
        .unwrap();
    // Zero waits not at all: a held lock fails at once.
    assert!(matches!(
        cache.lock("l", "10s").wait(0u64).await,
        Err(Error::Locked { .. })
    ));
    guard.release().await.unwrap();
    // An invalid wait is the request's error.
    assert!(cache.lock("l", "10s").wait("soon").await.is_err());
    // An invalid period: the limit decides as for a failing backend.
    let allowed = RateLimit::new(&cache, "a", 1, "never")
        .run(async { true }, |_| false)
        .await;
    assert!(allowed, "on_backend_error = allow runs the call");
    let denied = SliceRateLimit::new(&cache, "d", 1, None::<u64>)
        .on_backend_error(OnBackendError::Deny)
        .run(async { true }, |_| false)
        .await;
    assert!(!denied, "deny rejects it");
    assert!(
        RateLimit::new(&cache, "ok", 1, "1m")
            .run(async { true }, |_| false)
            .await
    );
    // An invalid soft_ttl runs the call straight through.
    let ttl = cashews::Ttl::parse("1h").unwrap();
    let out: u8 = Soft::new(&cache, "s", ttl, "x")
        .run::<cashews::strategy::Whole>(async { 7 })
        .await;
    assert_eq!(out, 7);
    // A transaction with an invalid lock wait fails when it locks.
    let tx = cache
        .transaction(cashews::TransactionMode::Locked)
        .lock_wait("later");
    assert!(tx.set("t", &1, "1m").await.is_err());
}
