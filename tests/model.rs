//! The memory and disk backends against a model — a map and a clock — over
//! random sequences of commands, with TTLs, time passing and (for a bounded
//! memory cache) eviction.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cashews::{Cache, Clock, Expiry, ManualClock};
use proptest::prelude::*;

const VALUE_KEYS: usize = 6;
const COUNTER_KEYS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Set {
        key: usize,
        value: u8,
        ttl: Option<u16>,
    },
    Get {
        key: usize,
    },
    Exists {
        key: usize,
    },
    Delete {
        key: usize,
    },
    Expire {
        key: usize,
        ttl: u16,
    },
    GetExpire {
        key: usize,
    },
    Incr {
        counter: usize,
        by: i8,
    },
    Advance {
        ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..VALUE_KEYS;
    let ttl = 1..3000u16;
    prop_oneof![
        4 => (key.clone(), any::<u8>(), proptest::option::of(ttl.clone()))
            .prop_map(|(key, value, ttl)| Op::Set { key, value, ttl }),
        4 => key.clone().prop_map(|key| Op::Get { key }),
        1 => key.clone().prop_map(|key| Op::Exists { key }),
        1 => key.clone().prop_map(|key| Op::Delete { key }),
        1 => (key.clone(), ttl).prop_map(|(key, ttl)| Op::Expire { key, ttl }),
        1 => key.prop_map(|key| Op::GetExpire { key }),
        2 => (0..COUNTER_KEYS, any::<i8>()).prop_map(|(counter, by)| Op::Incr { counter, by }),
        2 => (0..2500u16).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What the model holds for a key: a value or a counter, and when it
/// expires (milliseconds on the model's clock; live while `now < at`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    value: i64,
    expires_at: Option<u64>,
}

#[derive(Default)]
struct Model {
    now: u64,
    entries: BTreeMap<String, Entry>,
}

impl Model {
    fn live(&mut self, key: &str) -> Option<Entry> {
        let now = self.now;
        match self.entries.get(key) {
            Some(e) if e.expires_at.is_none_or(|at| at > now) => Some(*e),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn deadline(&self, ttl_ms: u16) -> Option<u64> {
        Some(self.now + u64::from(ttl_ms))
    }
}

fn value_key(i: usize) -> String {
    format!("v{i}")
}

fn counter_key(i: usize) -> String {
    format!("c{i}")
}

/// Runs `ops` on `cache` and the model. With `may_evict`, the cache may
/// have dropped a live entry (a bounded memory cache), but it never returns
/// a value the model does not hold.
async fn check(cache: &Cache, time: &ManualClock, ops: &[Op], may_evict: bool) {
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step}: {op:?}");
        match *op {
            Op::Set { key, value, ttl } => {
                let key = value_key(key);
                let builder = cache.set(&key, &value);
                let stored = match ttl {
                    Some(ms) => builder.expire(Duration::from_millis(u64::from(ms))).await,
                    None => builder.await,
                };
                assert!(stored.unwrap(), "{context}");
                let expires_at = ttl.and_then(|ms| model.deadline(ms));
                model.entries.insert(
                    key,
                    Entry {
                        value: i64::from(value),
                        expires_at,
                    },
                );
            }
            Op::Get { key } => {
                let key = value_key(key);
                let got = cache.get::<u8>(&key).await.unwrap().map(i64::from);
                let expected = model.live(&key).map(|e| e.value);
                if may_evict && got.is_none() {
                    model.entries.remove(&key);
                } else {
                    assert_eq!(got, expected, "{context}");
                }
            }
            Op::Exists { key } => {
                let key = value_key(key);
                let got = cache.exists(&key).await.unwrap();
                let expected = model.live(&key).is_some();
                if may_evict && !got {
                    model.entries.remove(&key);
                } else {
                    assert_eq!(got, expected, "{context}");
                }
            }
            Op::Delete { key } => {
                let key = value_key(key);
                let got = cache.delete(&key).await.unwrap();
                let expected = model.live(&key).is_some();
                if !may_evict || got {
                    assert_eq!(got, expected, "{context}");
                }
                model.entries.remove(&key);
            }
            Op::Expire { key, ttl } => {
                let key = value_key(key);
                let got = cache
                    .expire(&key, Duration::from_millis(u64::from(ttl)))
                    .await
                    .unwrap();
                let deadline = model.deadline(ttl);
                match model.live(&key) {
                    Some(_) if may_evict && !got => {
                        model.entries.remove(&key);
                    }
                    Some(entry) => {
                        assert!(got, "{context}");
                        model.entries.insert(
                            key,
                            Entry {
                                expires_at: deadline,
                                ..entry
                            },
                        );
                    }
                    None => assert!(!got, "{context}"),
                }
            }
            Op::GetExpire { key } => {
                let key = value_key(key);
                let got = cache.get_expire(&key).await.unwrap();
                let now = model.now;
                let expected = match model.live(&key) {
                    None => Expiry::Missing,
                    Some(Entry {
                        expires_at: None, ..
                    }) => Expiry::NoExpiry,
                    Some(Entry {
                        expires_at: Some(at),
                        ..
                    }) => Expiry::Remaining(Duration::from_millis(at - now)),
                };
                if may_evict && got == Expiry::Missing {
                    model.entries.remove(&key);
                } else {
                    assert_eq!(got, expected, "{context}");
                }
            }
            Op::Incr { counter, by } => {
                let key = counter_key(counter);
                let got = cache.incr(&key).by(i64::from(by)).await.unwrap();
                let previous = match model.live(&key) {
                    Some(entry) if !(may_evict && got == i64::from(by)) => entry,
                    // Evicted (or new): starts again from 0, without TTL.
                    _ => Entry {
                        value: 0,
                        expires_at: None,
                    },
                };
                let next = Entry {
                    value: previous.value + i64::from(by),
                    ..previous
                };
                assert_eq!(got, next.value, "{context}");
                model.entries.insert(key, next);
            }
            Op::Advance { ms } => {
                time.advance(Duration::from_millis(u64::from(ms)));
                model.now += u64::from(ms);
            }
        }
    }
    // Every live model entry reads back (or, bounded, was evicted).
    for i in 0..VALUE_KEYS {
        let key = value_key(i);
        let got = cache.get::<u8>(&key).await.unwrap().map(i64::from);
        if !(may_evict && got.is_none()) {
            assert_eq!(got, model.live(&key).map(|e| e.value), "final {key}");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn cache_on(url: &str) -> (Cache, ManualClock) {
    let (clock, time) = Clock::manual();
    let cache = Cache::with_clock(clock);
    cache.setup(url).unwrap();
    (cache, time)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn memory_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let (cache, time) = cache_on("mem://");
        runtime().block_on(check(&cache, &time, &ops, false));
    }

    #[test]
    fn bounded_memory_never_returns_a_wrong_value(ops in proptest::collection::vec(op(), 1..80)) {
        let (cache, time) = cache_on("mem://?size=4");
        runtime().block_on(async {
            check(&cache, &time, &ops, true).await;
            assert!(cache.get_keys_count().await.unwrap() <= 4, "the bound holds");
        });
    }
}

#[cfg(feature = "disk")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn disk_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = support::TempDir::new("model");
        let (cache, time) = cache_on(&format!("disk://?directory={}&shards=2", dir.path.display()));
        runtime().block_on(check(&cache, &time, &ops, false));
    }
}
