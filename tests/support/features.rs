//! Cross-cutting features, backend-neutral: tags, transactions, middlewares
//! and scopes. Every backend runs these cases.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashews::middleware::{AddPrefix, MemoryLimit, Tracing};
use cashews::scope::{detect, invalidate_further, Scopes};
use cashews::{Error, Expiry, TransactionMode, TAGS_PREFIX};
use tokio::sync::Barrier;
use tracing::field::{Field, Visit};
use tracing::{span, Metadata, Subscriber};

use super::Harness;

fn tag_set(tag: &str) -> String {
    format!("{TAGS_PREFIX}tag:{tag}")
}

fn remaining(expiry: Expiry) -> Duration {
    match expiry {
        Expiry::Remaining(d) => d,
        other => panic!("expected a ttl, got {other:?}"),
    }
}

pub async fn tags_delete_tagged_keys(h: &Harness) {
    let c = &h.cache;
    c.set("tg:a", &1)
        .expire("1h")
        .tags(&["tg-items", "tg-page:1"])
        .await
        .unwrap();
    c.set("tg:b", &2).tags(&["tg-items"]).await.unwrap();
    c.set("tg:c", &3).expire("1h").await.unwrap();
    assert_eq!(c.delete_tags(&["tg-items"]).await.unwrap(), 2);
    assert_eq!(c.get::<i32>("tg:a").await.unwrap(), None);
    assert_eq!(c.get::<i32>("tg:b").await.unwrap(), None);
    assert_eq!(c.get::<i32>("tg:c").await.unwrap(), Some(3), "untagged");
    assert_eq!(
        c.delete_tags(&["tg-page:1"]).await.unwrap(),
        0,
        "tg:a is gone already"
    );
    assert!(!c.exists(&tag_set("tg-items")).await.unwrap());
    // A refused write records no tag.
    c.set("tg:c", &4)
        .only_if_absent()
        .tags(&["tg-other"])
        .await
        .unwrap();
    assert_eq!(c.delete_tags(&["tg-other"]).await.unwrap(), 0);
    assert_eq!(c.get::<i32>("tg:c").await.unwrap(), Some(3));
}

pub async fn tag_sets_live_as_long_as_their_longest_member(h: &Harness) {
    let c = &h.cache;
    c.set("tl:long", &1)
        .expire(h.ttl(30.0))
        .tags(&["tl"])
        .await
        .unwrap();
    // A newer member with a shorter TTL does not shorten the tag.
    c.set("tl:short", &2)
        .expire(h.ttl(2.0))
        .tags(&["tl"])
        .await
        .unwrap();
    let ttl = remaining(c.get_expire(&tag_set("tl")).await.unwrap());
    assert!(ttl > h.secs(20.0), "{ttl:?}");
    h.advance(h.secs(3.0)).await;
    assert_eq!(c.get::<i32>("tl:short").await.unwrap(), None);
    assert_eq!(c.delete_tags(&["tl"]).await.unwrap(), 1, "tl:long is found");
    assert_eq!(c.get::<i32>("tl:long").await.unwrap(), None);
    // A member without TTL makes the tag persistent.
    c.set("tl:a", &1)
        .expire(h.ttl(2.0))
        .tags(&["tp"])
        .await
        .unwrap();
    c.set("tl:b", &1).tags(&["tp"]).await.unwrap();
    assert_eq!(
        c.get_expire(&tag_set("tp")).await.unwrap(),
        Expiry::NoExpiry
    );
}

pub async fn deleted_keys_leave_their_tags(h: &Harness) {
    let c = &h.cache;
    // Each way of deleting a key, then the key stored again without tags:
    // deleting the tag must not take the new value.
    let mut keys = vec!["td:one", "td:many", "td:scope"];
    if h.supports(cashews::Command::DeleteMatch) {
        keys.push("td:match:x");
    }
    for key in &keys {
        c.set(key, &1).tags(&["td"]).await.unwrap();
    }
    assert!(c.delete("td:one").await.unwrap());
    assert_eq!(c.delete_many(&["td:many"]).await.unwrap(), 1);
    if h.supports(cashews::Command::DeleteMatch) {
        assert_eq!(c.delete_match("td:match:*").await.unwrap(), 1);
    }
    assert_eq!(
        invalidate_further(c.get::<i32>("td:scope")).await.unwrap(),
        None
    );
    for key in &keys {
        c.set(key, &2).await.unwrap();
    }
    assert_eq!(c.delete_tags(&["td"]).await.unwrap(), 0);
    for key in keys {
        assert_eq!(c.get::<i32>(key).await.unwrap(), Some(2), "{key}");
    }
}

pub async fn transactions_buffer_and_commit(h: &Harness) {
    let c = &h.cache;
    c.set("tx:old", &"old").await.unwrap();
    c.incr("tx:n").by(5).await.unwrap();
    let tx = c.transaction(TransactionMode::Fast);
    tx.set("tx:a", &"a", Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(
        tx.get::<String>("tx:a").await.unwrap().as_deref(),
        Some("a")
    );
    assert!(tx.delete("tx:old").await.unwrap());
    assert!(!tx.exists("tx:old").await.unwrap(), "its own delete");
    assert_eq!(tx.incr("tx:n", 2).await.unwrap(), 7);
    assert_eq!(tx.incr("tx:n", 1).await.unwrap(), 8);
    // Nothing is visible outside before the commit.
    assert_eq!(c.get::<String>("tx:a").await.unwrap(), None);
    assert_eq!(
        c.get::<String>("tx:old").await.unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(c.get_counter("tx:n").await.unwrap(), Some(5));
    tx.commit().await.unwrap();
    assert_eq!(c.get::<String>("tx:a").await.unwrap().as_deref(), Some("a"));
    assert_eq!(c.get::<String>("tx:old").await.unwrap(), None);
    assert_eq!(c.get_counter("tx:n").await.unwrap(), Some(8));
    // A TTL under a second keeps its milliseconds.
    let ttl = remaining(c.get_expire("tx:a").await.unwrap());
    assert!(
        ttl > Duration::from_millis(1000) && ttl <= Duration::from_millis(1500),
        "{ttl:?}"
    );
    let tx = c.transaction(TransactionMode::Fast);
    tx.set("tx:ms", &1, Duration::from_millis(600))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ttl = remaining(c.get_expire("tx:ms").await.unwrap());
    assert!(ttl <= Duration::from_millis(600), "{ttl:?}");
}

pub async fn transactions_roll_back(h: &Harness) {
    let c = &h.cache;
    for mode in [
        TransactionMode::Fast,
        TransactionMode::Locked,
        TransactionMode::Serializable,
    ] {
        // Explicitly.
        let tx = c.transaction(mode);
        tx.set("rb:k", &1, None::<u64>).await.unwrap();
        tx.rollback().await;
        // By dropping.
        let tx = c.transaction(mode);
        tx.set("rb:k", &2, None::<u64>).await.unwrap();
        drop(tx);
        // By an error from the body.
        let failed: Result<(), Error> = c
            .transaction(mode)
            .run(|tx| async move {
                tx.set("rb:k", &3, None::<u64>).await?;
                Err(Error::InvalidArgument("changed my mind".into()))
            })
            .await;
        assert!(failed.is_err());
        // By a panic in the body.
        let cache = c.clone();
        let panicked = tokio::spawn(async move {
            cache
                .transaction(mode)
                .run(|tx| async move {
                    tx.set("rb:k", &4, None::<u64>).await?;
                    if tx.get::<i32>("rb:k").await? == Some(4) {
                        panic!("the body panics");
                    }
                    Ok::<_, Error>(())
                })
                .await
        })
        .await;
        assert!(panicked.is_err());
        assert_eq!(c.get::<i32>("rb:k").await.unwrap(), None, "{mode:?}");
        // The locks were released: a locked transaction takes the key at once.
        let tx = c
            .transaction(TransactionMode::Locked)
            .lock_wait(h.secs(20.0));
        tx.set("rb:k", &5, None::<u64>).await.unwrap();
        tx.rollback().await;
    }
}

/// Two concurrent transactions each read a counter, wait a little, write
/// it back plus one and commit, `ROUNDS` times each (retrying a conflict).
/// Returns the final counter and how many increments committed.
async fn race(h: &Harness, mode: TransactionMode, key: &'static str) -> (u64, u64) {
    const ROUNDS: u64 = 5;
    let start = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let cache = h.cache.clone();
            let start = start.clone();
            let (pause, wait) = (h.secs(0.2), h.secs(50.0));
            tokio::spawn(async move {
                start.wait().await;
                let mut committed = 0u64;
                for _ in 0..ROUNDS {
                    loop {
                        let tx = cache.transaction(mode).lock_wait(wait);
                        let attempt = async {
                            let n: u64 = tx.get(key).await?.unwrap_or(0);
                            tokio::time::sleep(pause).await;
                            tx.set(key, &(n + 1), None::<u64>).await?;
                            tx.commit().await
                        };
                        match attempt.await {
                            Ok(()) => break,
                            Err(Error::Conflict { .. }) => continue,
                            Err(other) => panic!("{mode:?}: {other}"),
                        }
                    }
                    committed += 1;
                }
                committed
            })
        })
        .collect();
    let mut committed = 0;
    for task in tasks {
        committed += task.await.unwrap();
    }
    let value = h.cache.get::<u64>(key).await.unwrap().unwrap_or(0);
    (value, committed)
}

pub async fn concurrent_transactions_and_lost_updates(h: &Harness) {
    // Fast: both read the same value each round, so half the updates go.
    let (value, committed) = race(h, TransactionMode::Fast, "race:fast").await;
    assert_eq!(committed, 10);
    assert!(value < committed, "fast loses updates: {value}");
    // Locked and serializable never lose one.
    let (value, committed) = race(h, TransactionMode::Locked, "race:locked").await;
    assert_eq!((value, committed), (10, 10));
    let (value, committed) = race(h, TransactionMode::Serializable, "race:serial").await;
    assert_eq!((value, committed), (10, 10));
}

pub async fn serializable_commit_conflicts(h: &Harness) {
    let c = &h.cache;
    c.set("sc:k", &1).await.unwrap();
    let tx = c.transaction(TransactionMode::Serializable);
    assert_eq!(tx.get::<i32>("sc:k").await.unwrap(), Some(1));
    tx.set("sc:other", &1, None::<u64>).await.unwrap();
    c.set("sc:k", &2).await.unwrap();
    assert!(matches!(
        tx.commit().await,
        Err(Error::Conflict { key }) if key == "sc:k"
    ));
    assert_eq!(
        c.get::<i32>("sc:other").await.unwrap(),
        None,
        "nothing written"
    );
}

pub async fn locked_transactions_time_out(h: &Harness) {
    let c = &h.cache;
    let first = c.transaction(TransactionMode::Locked);
    first.set("lk:k", &1, None::<u64>).await.unwrap();
    let second = c
        .transaction(TransactionMode::Locked)
        .lock_wait(h.secs(1.0));
    assert!(matches!(
        second.get::<i32>("lk:k").await,
        Err(Error::Locked { key }) if key == "lk:k"
    ));
    first.commit().await.unwrap();
    assert_eq!(second.get::<i32>("lk:k").await.unwrap(), Some(1));
    second.commit().await.unwrap();
}

pub async fn add_prefix_middleware(h: &Harness) {
    let c = &h.cache;
    let id = c.add_middleware(AddPrefix::new("v[2]:"));
    c.set("ap:k", &1).await.unwrap();
    c.set("ap:j", &2).await.unwrap();
    if !h.supports(cashews::Command::Scan) {
        // Keys only: the prefix is what the backend stores.
        c.remove_middleware(id);
        assert_eq!(c.get::<i32>("v[2]:ap:k").await.unwrap(), Some(1));
        assert_eq!(c.get::<i32>("ap:k").await.unwrap(), None);
        return;
    }
    let mut keys = c.scan("ap:*").await.unwrap().try_collect().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["ap:j", "ap:k"], "scan returns the caller's keys");
    c.remove_middleware(id);
    assert_eq!(c.get::<i32>("v[2]:ap:k").await.unwrap(), Some(1));
    assert_eq!(c.get::<i32>("ap:k").await.unwrap(), None);
    // Glob characters of the prefix are literal: `v2:ap:*` is not matched.
    c.set("v2:ap:k", &3).await.unwrap();
    let id = c.add_middleware(AddPrefix::new("v[2]:"));
    assert_eq!(c.delete_match("ap:*").await.unwrap(), 2);
    c.remove_middleware(id);
    assert_eq!(c.get::<i32>("v2:ap:k").await.unwrap(), Some(3));
}

pub async fn memory_limit_middleware(h: &Harness) {
    let c = &h.cache;
    let id = c.add_middleware(MemoryLimit::new(8, 200));
    assert!(c.set("ml:ok", &"x".repeat(50)).await.unwrap());
    assert!(!c.set("ml:big", &"x".repeat(500)).await.unwrap());
    c.set_many(&[("ml:m1", "x".repeat(50)), ("ml:m2", "x".repeat(500))])
        .await
        .unwrap();
    c.remove_middleware(id);
    assert!(c.exists("ml:ok").await.unwrap());
    assert!(!c.exists("ml:big").await.unwrap());
    assert!(c.exists("ml:m1").await.unwrap());
    assert!(!c.exists("ml:m2").await.unwrap());
}

pub async fn detect_lists_hits(h: &Harness) {
    let c = &h.cache;
    c.set("dt:a", &1).expire("1h").await.unwrap();
    c.set("dt:b", &2).await.unwrap();
    let ((), detected) = detect(async {
        assert_eq!(c.get::<i32>("dt:a").await.unwrap(), Some(1));
        assert_eq!(c.get::<i32>("dt:missing").await.unwrap(), None);
        let many: Vec<Option<i32>> = c.get_many(&["dt:b", "dt:none"]).await.unwrap();
        assert_eq!(many, [Some(2), None]);
    })
    .await;
    let keys: Vec<&str> = detected.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["dt:a", "dt:b"], "hits only, in order");
    assert!(remaining(detected[0].ttl) > Duration::from_secs(3500));
    assert_eq!(detected[1].ttl, Expiry::NoExpiry);
    let backend = c.backend_name("dt:a").unwrap();
    assert!(detected.iter().all(|d| d.backend == backend));
    // Nested scopes: the outer one sees the inner one's reads; a spawned
    // task is outside unless it runs in the captured scopes.
    let (inner, outer) = detect(async {
        let cache = c.clone();
        let outside = tokio::spawn(async move { cache.get::<i32>("dt:a").await.unwrap() });
        let cache = c.clone();
        let inside = tokio::spawn(
            Scopes::current().run(async move { cache.get::<i32>("dt:b").await.unwrap() }),
        );
        let (_, inner) = detect(c.get::<i32>("dt:a")).await;
        outside.await.unwrap();
        inside.await.unwrap();
        inner.len()
    })
    .await;
    assert_eq!(inner, 1);
    let keys: Vec<&str> = outer.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&"dt:a") && keys.contains(&"dt:b"), "{keys:?}");
}

pub async fn invalidate_further_recomputes(h: &Harness) {
    let c = &h.cache;
    c.set("if:k", &1).await.unwrap();
    let fresh: i32 = invalidate_further(async {
        c.get_or_set("if:k", || async { 2 })
            .expire("1h")
            .await
            .unwrap()
    })
    .await;
    assert_eq!(fresh, 2, "the read missed, so the value was recomputed");
    assert_eq!(c.get::<i32>("if:k").await.unwrap(), Some(2), "and stored");
    // Outside the scope, reads are reads.
    assert_eq!(c.get::<i32>("if:k").await.unwrap(), Some(2));
}

/// A `tracing` subscriber that keeps every event's and span's fields.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    spans: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        fields
            .0
            .insert("span".into(), span.metadata().name().to_owned());
        let mut spans = self.spans.lock().unwrap();
        spans.push(fields.0);
        span::Id::from_u64(spans.len() as u64)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields
            .0
            .insert("target".into(), event.metadata().target().to_owned());
        self.events.lock().unwrap().push(fields.0);
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

pub async fn tracing_middleware_reports_commands(h: &Harness) {
    let c = &h.cache;
    let capture = Capture::default();
    let guard = tracing::subscriber::set_default(capture.clone());
    let id = c.add_middleware(Tracing);
    c.set("tr:k", &1).await.unwrap();
    assert_eq!(c.get::<i32>("tr:k").await.unwrap(), Some(1));
    assert_eq!(c.get::<i32>("tr:none").await.unwrap(), None);
    c.remove_middleware(id);
    drop(guard);

    let backend = c.backend_name("tr:k").unwrap();
    let events = capture.events.lock().unwrap();
    let commands: Vec<_> = events
        .iter()
        .filter(|e| e.get("message").map(String::as_str) == Some("cache command"))
        .collect();
    let find = |command: &str, key: &str| {
        commands
            .iter()
            .find(|e| e["command"] == command && e["key"] == key)
            .unwrap_or_else(|| panic!("no {command} {key} in {commands:?}"))
    };
    let hit = find("get", "tr:k");
    assert_eq!((hit["hits"].as_str(), hit["misses"].as_str()), ("1", "0"));
    assert_eq!(hit["backend"], backend);
    assert_eq!(hit["target"], "cashews");
    assert!(hit["micros"].parse::<u64>().is_ok());
    let miss = find("get", "tr:none");
    assert_eq!((miss["hits"].as_str(), miss["misses"].as_str()), ("0", "1"));
    assert!(!find("set", "tr:k").contains_key("hits"));
    let spans = capture.spans.lock().unwrap();
    let cashews: Vec<_> = spans.iter().filter(|s| s["span"] == "cashews").collect();
    assert_eq!(cashews.len(), 3, "a span per command: {cashews:?}");
    assert_eq!(cashews[1]["command"], "get");
    assert_eq!(cashews[1]["key"], "tr:k");
}
