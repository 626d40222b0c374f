//! One Redis shared by a Python cashews service and Rust services
//! (`codec=cashews`): each side reads what the other wrote, counters, rate
//! limits and locks are shared, and keys render alike. The Python side is
//! the pinned cashews that `scripts/test` installs into `target/python-venv`
//! (or `CASHEWS_PYTHON`), driven through tests/python/cashews_peer.py.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use cashews::strategy::{Limit, RateLimit, SliceRateLimit};
use cashews::{cache, Cache};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::redis::RedisServer;

/// The venv's Python, with cashews installed.
fn python() -> PathBuf {
    support::process::installed("CASHEWS_PYTHON", "python-venv/bin/python")
}

/// A Python cashews service, answering requests over a pipe.
struct Peer {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Peer {
    fn start(url: &str) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/cashews_peer.py");
        let mut child = Command::new(python())
            .args([script, url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/test installs Python cashews into target/python-venv)",
                    python().display()
                )
            });
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            input,
            output,
        }
    }

    fn call(&mut self, request: Value) -> Value {
        writeln!(self.input, "{request}").unwrap();
        self.input.flush().unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the Python side answered {line:?} to {request}: {e}"));
        assert!(answer.get("error").is_none(), "{request} -> {answer}");
        answer
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct User {
    id: u64,
    name: String,
    tags: Vec<String>,
    email: Option<String>,
}

/// Bytes as serde's bytes (Python `bytes`).
#[derive(Debug, PartialEq, Clone)]
struct Raw(Vec<u8>);

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
                Ok(Raw(v.to_vec()))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// The setups tried: Python's settings, and this library's for the same.
struct Setup {
    name: &'static str,
    python: &'static str,
    rust: &'static str,
    json: bool,
}

const SETUPS: &[Setup] = &[
    Setup {
        name: "pickle",
        python: "",
        rust: "codec=cashews",
        json: false,
    },
    Setup {
        name: "pickle-signed-gzip",
        python: "secret=s3cret&digestmod=sha256&compress_type=gzip",
        rust: "codec=cashews&secret=s3cret&digestmod=sha256&compress=gzip&compress_min=0",
        json: false,
    },
    Setup {
        name: "pickle-signed-md5-zlib",
        python: "secret=s3cret&digestmod=md5&compress_type=zlib",
        rust: "codec=cashews&secret=s3cret&digestmod=md5&compress=zlib&compress_min=0",
        json: false,
    },
    Setup {
        name: "json-signed",
        python: "secret=s3cret&digestmod=sha1&pickle_type=json",
        rust: "codec=cashews&pickle_type=json&secret=s3cret&digestmod=sha1",
        json: true,
    },
    Setup {
        name: "json-gzip",
        python: "pickle_type=json&compress_type=gzip",
        rust: "codec=cashews&pickle_type=json&compress=gzip&compress_min=0",
        json: true,
    },
];

fn urls(server: &RedisServer, setup: &Setup) -> (String, String) {
    let base = server.url();
    let join = |params: &str| {
        if params.is_empty() {
            base.clone()
        } else {
            format!("{base}?{params}")
        }
    };
    (join(setup.python), join(setup.rust))
}

/// `sample` written by Python is read by Rust as `want`, and `want` written
/// by Rust is read by Python as `sample`.
async fn exchange<T>(peer: &mut Peer, cache: &Cache, setup: &str, sample: &str, want: T)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug + Send + Sync,
{
    let from_python = format!("{setup}:{sample}:py");
    peer.call(json!({"op": "set", "key": from_python, "sample": sample}));
    let read = cache.get::<T>(&from_python).await.unwrap();
    assert_eq!(
        read.as_ref(),
        Some(&want),
        "{setup}: {sample} written by Python"
    );

    let from_rust = format!("{setup}:{sample}:rs");
    cache.set(&from_rust, &want).await.unwrap();
    let answer = peer.call(json!({"op": "get", "key": from_rust, "sample": sample}));
    assert_eq!(
        (answer["found"].as_bool(), answer["equal"].as_bool()),
        (Some(true), Some(true)),
        "{setup}: {sample} written by Rust, read by Python: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_cross_between_python_and_rust_in_every_setup() {
    let server = RedisServer::start();
    for setup in SETUPS {
        let (python_url, rust_url) = urls(&server, setup);
        let mut peer = Peer::start(&python_url);
        let cache = Cache::new();
        cache.setup(&rust_url).unwrap();
        let name = setup.name;
        let user = User {
            id: 7,
            name: "ann".into(),
            tags: vec!["a".into(), "b".into()],
            email: None,
        };
        exchange(&mut peer, &cache, name, "none", None::<u8>).await;
        exchange(&mut peer, &cache, name, "true", true).await;
        exchange(&mut peer, &cache, name, "int", 42u64).await;
        exchange(&mut peer, &cache, name, "big", 1u128 << 70).await;
        exchange(&mut peer, &cache, name, "float", 2.5f64).await;
        exchange(&mut peer, &cache, name, "str", "héllo wörld".to_owned()).await;
        exchange(&mut peer, &cache, name, "empty_str", String::new()).await;
        exchange(&mut peer, &cache, name, "list", vec![1i64, 2, 3]).await;
        exchange(&mut peer, &cache, name, "tuple", (1i64, "a".to_owned())).await;
        exchange(&mut peer, &cache, name, "user", user.clone()).await;
        let users = vec![
            User {
                id: 1,
                name: "a".into(),
                tags: vec![],
                email: Some("a@example.com".into()),
            },
            User {
                id: 2,
                name: "b".into(),
                tags: vec!["x".into()],
                email: None,
            },
        ];
        exchange(&mut peer, &cache, name, "users", users).await;
        let map: BTreeMap<String, f64> = [("a".into(), 1.5), ("b".into(), -2.0)].into();
        exchange(&mut peer, &cache, name, "map", map).await;

        // A negative int: cashews stores it as digits and cannot read it
        // back itself; Rust reads it, and writes one Python reads (pickled).
        let key = format!("{name}:negative:py");
        peer.call(json!({"op": "set", "key": key, "sample": "negative"}));
        assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(-7), "{name}");
        let key = format!("{name}:negative:rs");
        cache.set(&key, &-7i64).await.unwrap();
        let answer = peer.call(json!({"op": "get", "key": key, "sample": "negative"}));
        assert_eq!(answer["equal"], json!(true), "{name}: {answer}");

        if !setup.json {
            // Python sets and bytes (JSON has neither: cashews' JSON pickler
            // cannot store a set, nor read back the bytes it stores).
            let key = format!("{name}:set:py");
            peer.call(json!({"op": "set", "key": key, "sample": "set"}));
            let set = cache.get::<BTreeSet<i64>>(&key).await.unwrap();
            assert_eq!(set, Some([1, 2, 3].into()), "{name}");
            exchange(
                &mut peer,
                &cache,
                name,
                "bytes",
                Raw(b"\x00\x01binary\xff".to_vec()),
            )
            .await;
        }

        // A Python value of another shape than asked for is a miss, not an
        // error, and stays for Python.
        let key = format!("{name}:user:py");
        assert_eq!(cache.get::<u64>(&key).await.unwrap(), None, "{name}");
        assert_eq!(cache.get::<User>(&key).await.unwrap(), Some(user), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_other_digest_values_are_misses() {
    let server = RedisServer::start();
    let base = server.url();
    let mut sha256 = Peer::start(&format!("{base}?secret=s3cret&digestmod=sha256"));
    let mut md5 = Peer::start(&format!("{base}?secret=s3cret&digestmod=md5"));
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{base}?codec=cashews&secret=s3cret&digestmod=sha256"
        ))
        .unwrap();

    sha256.call(json!({"op": "set", "key": "signed", "sample": "user"}));
    assert!(cache.get::<User>("signed").await.unwrap().is_some());
    // One byte of the pickle changed in Redis: a miss (cashews raises).
    let stored = server.cli(&["STRLEN", "signed"]);
    let offset = stored.trim().parse::<usize>().unwrap() - 4;
    server.cli(&["SETRANGE", "signed", &offset.to_string(), "Z"]);
    assert_eq!(cache.get::<User>("signed").await.unwrap(), None);
    assert!(cache.exists("signed").await.unwrap(), "left in place");

    // Signed by Python with md5 (the same secret): the digest is pinned.
    md5.call(json!({"op": "set", "key": "md5", "sample": "user"}));
    assert_eq!(cache.get::<User>("md5").await.unwrap(), None);
    // Written by a Python service without a secret: unsigned, a miss.
    let mut plain = Peer::start(&base);
    plain.call(json!({"op": "set", "key": "plain", "sample": "user"}));
    assert_eq!(cache.get::<User>("plain").await.unwrap(), None);
    // cashews' digest downgrade: a `sum:` signature anyone can compute.
    server.cli(&["SET", "sum", "sum:40a_\u{80}\u{3}N."]);
    assert_eq!(cache.get::<Option<u8>>("sum").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_rate_limits_and_locks_are_shared() {
    let server = RedisServer::start();
    let base = server.url();
    let mut peer = Peer::start(&format!("{base}?secret=s3cret&digestmod=sha256"));
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{base}?codec=cashews&secret=s3cret&digestmod=sha256"
        ))
        .unwrap();

    // A counter incremented by both.
    for _ in 0..5 {
        cache.incr("visits").await.unwrap();
        peer.call(json!({"op": "incr", "key": "visits"}));
    }
    assert_eq!(cache.get::<i64>("visits").await.unwrap(), Some(10));
    assert_eq!(
        peer.call(json!({"op": "get_int", "key": "visits"}))["value"],
        json!(10)
    );

    // A limit of 10 per window, hit 6 times from each side, interleaved.
    for kind in ["fixed", "slice"] {
        let mut allowed = 0;
        for _ in 0..2 {
            let answer =
                peer.call(json!({"op": "limit", "kind": kind, "user": "alice", "calls": 3}));
            allowed += answer["allowed"].as_u64().unwrap();
            for _ in 0..3 {
                let ok = if kind == "fixed" {
                    RateLimit::new(&cache, "api:alice", 10, "60s").check().await
                } else {
                    SliceRateLimit::new(&cache, "api:alice", 10, "60s")
                        .check()
                        .await
                };
                allowed += u64::from(ok.is_ok());
            }
        }
        assert_eq!(allowed, 10, "{kind}: 12 calls, 10 allowed");
    }

    // A lock held by one side blocks the other.
    let guard = cache.lock("report", "30s").await.unwrap();
    assert_eq!(
        peer.call(json!({"op": "set_lock", "key": "report"}))["taken"],
        json!(false)
    );
    assert_eq!(
        peer.call(json!({"op": "is_locked", "key": "report"}))["locked"],
        json!(true)
    );
    assert!(guard.release().await.unwrap());
    assert_eq!(
        peer.call(json!({"op": "set_lock", "key": "report"}))["taken"],
        json!(true)
    );
    assert!(cache.lock("report", "30s").no_wait().await.is_err());
    assert!(cache.is_locked("report").await.unwrap());
    assert_eq!(
        peer.call(json!({"op": "unlock", "key": "report"}))["released"],
        json!(true)
    );
    cache.lock("report", "30s").no_wait().await.unwrap();
}

// ---- keys -----------------------------------------------------------------

#[derive(Clone, Copy)]
enum Tier {
    Gold,
    Silver,
}

/// By value, as a Python `StrEnum` renders.
impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Gold => "gold",
            Tier::Silver => "silver",
        })
    }
}

#[derive(Clone, Copy)]
enum Level {
    Low = 1,
    High = 2,
}

/// By value, as a Python `IntEnum` renders.
impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Profile {
    uid: u64,
    source: String,
}

static SHARED: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);

#[cache(
    ttl = "1h",
    cache = SHARED,
    helpers,
    key = "profile:{uid}:{active}:{score}:{region}:{note}:{tier}:{level}"
)]
async fn profile(
    uid: u64,
    active: bool,
    score: f64,
    region: &str,
    note: Option<&str>,
    tier: Tier,
    level: Level,
) -> Profile {
    let _ = (active, score, region, note, tier, level);
    Profile {
        uid,
        source: "rust".into(),
    }
}

fn tier_json(tier: Tier) -> Value {
    json!({"$enum": "Tier", "name": match tier { Tier::Gold => "GOLD", Tier::Silver => "SILVER" }})
}

fn level_json(level: Level) -> Value {
    json!({"$enum": "Level", "name": match level { Level::Low => "LOW", Level::High => "HIGH" }})
}

/// Key templates render the common argument types as cashews renders them,
/// and a decorated function shares its entries across the languages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_render_as_cashews_renders_them() {
    let server = RedisServer::start();
    let base = server.url();
    let mut peer = Peer::start(&base);
    SHARED.setup(&format!("{base}?codec=cashews")).unwrap();

    let template = "profile:{uid}:{active}:{score}:{region}:{note}:{tier}:{level}";
    type Row = (
        u64,
        bool,
        f64,
        &'static str,
        Option<&'static str>,
        Tier,
        Level,
    );
    let rows: [Row; 6] = [
        (7, true, 1.0, "eu", None, Tier::Gold, Level::Low),
        (
            0,
            false,
            -2.5,
            "us-east",
            Some("vip"),
            Tier::Silver,
            Level::High,
        ),
        (
            u64::MAX,
            true,
            1e16,
            "ünï code",
            Some("a b"),
            Tier::Gold,
            Level::High,
        ),
        (42, false, 0.1, "x", None, Tier::Silver, Level::Low),
        (
            1,
            true,
            1.5e-7,
            "UPPER",
            Some("note"),
            Tier::Gold,
            Level::Low,
        ),
        (2, false, 123456.789, "", None, Tier::Gold, Level::High),
    ];
    for (uid, active, score, region, note, tier, level) in rows {
        let python = peer.call(json!({
            "op": "render",
            "template": template,
            "kwargs": {
                "uid": uid, "active": active, "score": score, "region": region,
                "note": note, "tier": tier_json(tier), "level": level_json(level),
            },
        }));
        let rust = profile::key(uid, active, score, region, note, tier, level);
        assert_eq!(Some(rust.as_str()), python["key"].as_str(), "{python}");
    }
    for (template, kwargs, want) in [
        ("{x}", json!({"x": {"$float": "inf"}}), "inf"),
        ("{x}", json!({"x": 100.0}), "100.0"),
        ("{x}:{y}", json!({"x": -0.0, "y": 5e-324}), "-0.0:5e-324"),
    ] {
        let python = peer.call(json!({"op": "render", "template": template, "kwargs": kwargs}));
        assert_eq!(python["key"], json!(want));
    }
    assert_eq!(
        [f64::INFINITY, 100.0].map(|x| cashews::key::render(&x)),
        ["inf", "100.0"]
    );
    assert_eq!(
        format!(
            "{}:{}",
            cashews::key::render(&-0.0f64),
            cashews::key::render(&5e-324f64)
        ),
        "-0.0:5e-324"
    );

    // Python computes and caches; Rust's call with the same arguments hits.
    let python = peer.call(json!({
        "op": "profile",
        "args": [7, true, 1.0, "eu", null, tier_json(Tier::Gold), level_json(Level::Low)],
    }));
    assert_eq!(python["value"]["source"], json!("python"));
    let rust = profile(7, true, 1.0, "eu", None, Tier::Gold, Level::Low).await;
    assert_eq!(rust.source, "python");
    // And the other way round.
    let rust = profile(8, false, 0.5, "us", Some("n"), Tier::Silver, Level::High).await;
    assert_eq!(rust.source, "rust");
    let python = peer.call(json!({
        "op": "profile",
        "args": [8, false, 0.5, "us", "n", tier_json(Tier::Silver), level_json(Level::High)],
    }));
    assert_eq!(python["value"], json!({"uid": 8, "source": "rust"}));
}

/// Python cashews scores its sliding-window entries to the microsecond:
/// entries made earlier in the millisecond a Rust call sees as "now" are in
/// its window (its end is that millisecond's last microsecond).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_window_counts_python_entries_of_the_same_millisecond() {
    let server = RedisServer::start();
    let (clock, _time) = cashews::Clock::manual();
    let cache = Cache::with_clock(clock.clone());
    cache
        .setup(&format!("{}?codec=cashews", server.url()))
        .unwrap();
    let now = clock.unix_ms();
    let key = "srl:api:bob";
    for n in 0..10 {
        // What Python writes: score and member the float timestamp.
        let score = format!("{}.{:03}{n}00", now / 1000, now % 1000);
        server.cli(&["ZADD", key, &score, &score]);
    }
    let outside = format!("{}.{:03}", (now - 60_001) / 1000, (now - 60_001) % 1000);
    server.cli(&["ZADD", key, &outside, &outside]);
    let limit = SliceRateLimit::new(&cache, "api:bob", 10, "60s");
    assert!(
        limit.check().await.is_err(),
        "10 calls in the window already"
    );
    assert_eq!(
        server.cli(&["ZCARD", key]).trim(),
        "11",
        "the old entry is gone"
    );
}
