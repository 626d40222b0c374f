//! Backend conformance: every backend must pass every case here unchanged.
//! Cases use keys under their own name and clear nothing they did not write,
//! so they can share a server.

use std::time::Duration;

use cashews::{Command, Error, Expiry};
use serde::{Deserialize, Serialize};

use super::Harness;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub score: Option<f64>,
}

pub fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
        tags: vec!["a".into(), "b".into()],
        score: Some(-1.5),
    }
}

pub async fn round_trip_values(h: &Harness) {
    let c = &h.cache;
    c.set("rt:struct", &profile(1)).await.unwrap();
    assert_eq!(
        c.get::<Profile>("rt:struct").await.unwrap(),
        Some(profile(1))
    );
    c.set("rt:neg", &-42i64).await.unwrap();
    assert_eq!(c.get::<i64>("rt:neg").await.unwrap(), Some(-42));
    c.set("rt:none", &None::<u8>).await.unwrap();
    assert_eq!(
        c.get::<Option<u8>>("rt:none").await.unwrap(),
        Some(None),
        "a stored None is a hit"
    );
    c.set("rt:str", "text").await.unwrap();
    assert_eq!(
        c.get::<String>("rt:str").await.unwrap().as_deref(),
        Some("text")
    );
    c.set("rt:bool", &false).await.unwrap();
    assert_eq!(c.get::<bool>("rt:bool").await.unwrap(), Some(false));
    assert_eq!(c.get::<Profile>("rt:missing").await.unwrap(), None);
}

pub async fn set_exist_matrix(h: &Harness) {
    let c = &h.cache;
    // only-if-absent × absent: written
    assert!(c.set("ex:a", &1).only_if_absent().await.unwrap());
    // only-if-absent × present: not written
    assert!(!c.set("ex:a", &2).only_if_absent().await.unwrap());
    assert_eq!(c.get::<i32>("ex:a").await.unwrap(), Some(1));
    // only-if-present × present: written
    assert!(c.set("ex:a", &3).only_if_present().await.unwrap());
    assert_eq!(c.get::<i32>("ex:a").await.unwrap(), Some(3));
    // only-if-present × absent: not written
    assert!(!c.set("ex:b", &4).only_if_present().await.unwrap());
    assert_eq!(c.get::<i32>("ex:b").await.unwrap(), None);
    // An expired key counts as absent.
    c.set("ex:c", &5)
        .expire(Duration::from_millis(100))
        .await
        .unwrap();
    h.advance(Duration::from_millis(300)).await;
    assert!(!c.set("ex:c", &6).only_if_present().await.unwrap());
    assert!(c.set("ex:c", &7).only_if_absent().await.unwrap());
}

pub async fn set_without_expire_drops_ttl(h: &Harness) {
    let c = &h.cache;
    c.set("ttl:k", &1).expire("1h").await.unwrap();
    assert!(matches!(
        c.get_expire("ttl:k").await.unwrap(),
        Expiry::Remaining(_)
    ));
    c.set("ttl:k", &2).await.unwrap();
    assert_eq!(c.get_expire("ttl:k").await.unwrap(), Expiry::NoExpiry);
}

pub async fn get_expire_states(h: &Harness) {
    let c = &h.cache;
    assert_eq!(c.get_expire("ge:missing").await.unwrap(), Expiry::Missing);
    c.set("ge:forever", &1).await.unwrap();
    assert_eq!(c.get_expire("ge:forever").await.unwrap(), Expiry::NoExpiry);
    c.set("ge:ttl", &1).expire("90s").await.unwrap();
    match c.get_expire("ge:ttl").await.unwrap() {
        Expiry::Remaining(d) => assert!(
            d > Duration::from_secs(85) && d <= Duration::from_secs(90),
            "{d:?}"
        ),
        other => panic!("{other:?}"),
    }
}

pub async fn values_expire(h: &Harness) {
    let c = &h.cache;
    c.set("exp:k", &profile(2)).expire("1s").await.unwrap();
    h.advance(Duration::from_millis(500)).await;
    assert_eq!(c.get::<Profile>("exp:k").await.unwrap(), Some(profile(2)));
    h.advance(Duration::from_millis(700)).await;
    assert_eq!(c.get::<Profile>("exp:k").await.unwrap(), None);
    assert!(!c.exists("exp:k").await.unwrap());
    assert_eq!(c.get_expire("exp:k").await.unwrap(), Expiry::Missing);
}

pub async fn get_many_is_aligned(h: &Harness) {
    let c = &h.cache;
    c.set("gm:1", &1).await.unwrap();
    c.set("gm:3", &3).await.unwrap();
    c.incr_bits("gm:bits", &[0], 1, 1).await.unwrap();
    c.set_add("gm:set", &["x"], None::<u64>).await.unwrap();
    let got: Vec<Option<i32>> = c
        .get_many(&["gm:1", "gm:2", "gm:bits", "gm:set", "gm:3"])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(1), None, None, None, Some(3)]);
}

pub async fn set_many_with_expire(h: &Harness) {
    let c = &h.cache;
    c.set_many(&[("sm:a", 1), ("sm:b", 2)])
        .expire("1s")
        .await
        .unwrap();
    assert_eq!(
        c.get_many::<i32>(&["sm:a", "sm:b"]).await.unwrap(),
        vec![Some(1), Some(2)]
    );
    h.advance(Duration::from_millis(1500)).await;
    assert_eq!(
        c.get_many::<i32>(&["sm:a", "sm:b"]).await.unwrap(),
        vec![None, None]
    );
}

pub async fn incr_semantics(h: &Harness) {
    let c = &h.cache;
    assert_eq!(c.incr("in:a").await.unwrap(), 1);
    assert_eq!(c.incr("in:a").by(10).await.unwrap(), 11);
    assert_eq!(c.incr("in:a").by(-20).await.unwrap(), -9);
    assert_eq!(c.get_counter("in:a").await.unwrap(), Some(-9));
    assert_eq!(
        c.get::<i64>("in:a").await.unwrap(),
        Some(-9),
        "unsigned cache reads counters"
    );
    assert_eq!(c.get_counter("in:none").await.unwrap(), None);
    // The expiry applies when incr creates the counter, whatever the amount...
    assert_eq!(c.incr("in:b").by(5).expire("1s").await.unwrap(), 5);
    assert!(matches!(
        c.get_expire("in:b").await.unwrap(),
        Expiry::Remaining(_)
    ));
    // ...and an existing counter keeps its TTL.
    assert_eq!(c.incr("in:b").expire("1h").await.unwrap(), 6);
    match c.get_expire("in:b").await.unwrap() {
        Expiry::Remaining(d) => assert!(d <= Duration::from_secs(1), "{d:?}"),
        other => panic!("{other:?}"),
    }
    h.advance(Duration::from_millis(1500)).await;
    assert_eq!(c.incr("in:b").await.unwrap(), 1, "the counter expired");
    // Overflow and wrong types are errors, not panics.
    c.incr("in:max").by(i64::MAX).await.unwrap();
    assert!(matches!(
        c.incr("in:max").await,
        Err(Error::Overflow { .. })
    ));
    c.set("in:struct", &profile(3)).await.unwrap();
    assert!(matches!(
        c.incr("in:struct").await,
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        c.get_counter("in:struct").await,
        Err(Error::WrongType { .. })
    ));
}

pub async fn delete_and_exists(h: &Harness) {
    let c = &h.cache;
    c.set("del:a", &1).await.unwrap();
    c.set("del:b", &1).await.unwrap();
    c.set("del:c", &1).await.unwrap();
    assert!(c.exists("del:a").await.unwrap());
    assert!(c.delete("del:a").await.unwrap());
    assert!(!c.delete("del:a").await.unwrap());
    assert!(!c.exists("del:a").await.unwrap());
    assert_eq!(
        c.delete_many(&["del:b", "del:c", "del:zz"]).await.unwrap(),
        2
    );
    assert!(!c.exists("del:b").await.unwrap());
}

pub async fn glob_special_characters_are_literal(h: &Harness) {
    let c = &h.cache;
    if !h.supports(Command::Scan) {
        return; // `unsupported_commands_say_so` checks the refusal.
    }
    for key in [
        "gl:a.b",
        "gl:a+b",
        "gl:a(b)",
        "gl:axb",
        "gl:price:$1",
        "gl:price:1",
        "gl:a[b]",
    ] {
        c.set(key, &key).await.unwrap();
    }
    let mut found = c.scan("gl:a.b").await.unwrap().try_collect().await.unwrap();
    assert_eq!(found, vec!["gl:a.b".to_owned()], "'.' is literal");
    found = c.scan("gl:a+*").await.unwrap().try_collect().await.unwrap();
    assert_eq!(found, vec!["gl:a+b".to_owned()], "'+' is literal");
    found = c
        .scan("gl:a(b)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found, vec!["gl:a(b)".to_owned()]);
    found = c.scan("gl:a?b").await.unwrap().try_collect().await.unwrap();
    found.sort();
    assert_eq!(found, vec!["gl:a+b", "gl:a.b", "gl:axb"]);
    let escaped = format!("{}*", cashews::backend::glob::escape("gl:a[b]"));
    found = c.scan(&escaped).await.unwrap().try_collect().await.unwrap();
    assert_eq!(found, vec!["gl:a[b]".to_owned()]);
    assert_eq!(c.delete_match("gl:price:$*").await.unwrap(), 1);
    assert!(c.exists("gl:price:1").await.unwrap());
    assert!(!c.exists("gl:price:$1").await.unwrap());
    assert_eq!(c.delete_match("gl:*").await.unwrap(), 6);
    assert!(c
        .scan("gl:*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
        .is_empty());
}

pub async fn get_match_decodes_and_skips(h: &Harness) {
    let c = &h.cache;
    if !h.supports(Command::GetMatch) {
        return; // `unsupported_commands_say_so` checks the refusal.
    }
    c.set("gmt:1", &profile(1)).await.unwrap();
    c.set("gmt:2", &profile(2)).await.unwrap();
    c.set("gmt:other", &"not a profile").await.unwrap();
    c.set_add("gmt:set", &["m"], None::<u64>).await.unwrap();
    let mut found: Vec<(String, Profile)> = c
        .get_match("gmt:*")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![("gmt:1".into(), profile(1)), ("gmt:2".into(), profile(2))]
    );
}

pub async fn expire_command(h: &Harness) {
    let c = &h.cache;
    assert!(!c.expire("ec:missing", "1s").await.unwrap());
    c.set("ec:k", &1).await.unwrap();
    assert!(c.expire("ec:k", "1s").await.unwrap());
    h.advance(Duration::from_millis(1500)).await;
    assert!(!c.exists("ec:k").await.unwrap());
    assert!(matches!(c.expire("ec:k", 0).await, Err(Error::Ttl { .. })));
}

pub async fn ping_clear_count(h: &Harness) {
    let c = &h.cache;
    c.ping().await.unwrap();
    c.clear().await.unwrap();
    for i in 0..5 {
        c.set(&format!("cnt:{i}"), &i).await.unwrap();
    }
    if h.supports(Command::GetKeysCount) {
        assert_eq!(c.get_keys_count().await.unwrap(), 5);
    }
    c.clear().await.unwrap();
    for i in 0..5 {
        assert!(!c.exists(&format!("cnt:{i}")).await.unwrap());
    }
    if h.supports(Command::GetKeysCount) {
        assert_eq!(c.get_keys_count().await.unwrap(), 0);
    }
}

/// Concurrent writers of one counter, one set and one lock: every
/// increment counts, one lock holder wins (compare-and-swap backends retry).
pub async fn concurrent_writers_lose_nothing(h: &Harness) {
    let c = &h.cache;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    c.incr("cw:hits").await.unwrap();
                    c.set_add("cw:members", &[format!("m{i}:{j}").as_str()], None::<u64>)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(c.get_counter("cw:hits").await.unwrap(), Some(80));
    assert_eq!(c.set_pop("cw:members", 1000).await.unwrap().len(), 80);
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (c, held) = (c.clone(), held.clone());
            tokio::spawn(async move {
                if c.set_lock("cw:lock", &format!("t{i}"), "10s")
                    .await
                    .unwrap()
                {
                    held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(held.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A token that is a number unlocks too (DynamoDB stores it as one).
    assert!(c.set_lock("cw:numeric", "12345", "10s").await.unwrap());
    assert!(!c.unlock("cw:numeric", "1234").await.unwrap());
    assert!(c.unlock("cw:numeric", "12345").await.unwrap());
}

/// Every command the backend lists as unsupported answers
/// `Error::Unsupported` naming it (and the rest are run by the cases
/// above): the capability table is what the backend does.
pub async fn unsupported_commands_say_so(h: &Harness) {
    let c = &h.cache;
    c.set("us:a", &1).await.unwrap();
    for command in Command::ALL.iter().copied().filter(|c| !h.supports(*c)) {
        let result: Result<(), Error> = match command {
            Command::Scan => match c.scan("us:*").await {
                Ok(stream) => stream.try_collect().await.map(drop),
                Err(e) => Err(e),
            },
            Command::GetMatch => match c.get_match::<i32>("us:*").await {
                Ok(stream) => stream.try_collect().await.map(drop),
                Err(e) => Err(e),
            },
            Command::DeleteMatch => c.delete_match("us:*").await.map(drop),
            Command::GetKeysCount => c.get_keys_count().await.map(drop),
            other => panic!("no call for unsupported {other:?}: add one here"),
        };
        match result {
            Err(Error::Unsupported {
                command: refused, ..
            }) => assert_eq!(refused, command),
            other => panic!("{command:?} answered {other:?}, not Unsupported"),
        }
    }
    assert!(
        c.exists("us:a").await.unwrap(),
        "a refused command changed nothing"
    );
}

pub async fn get_size(h: &Harness) {
    let c = &h.cache;
    assert_eq!(c.get_size("sz:none").await.unwrap(), None);
    c.set("sz:k", &"x".repeat(1000)).await.unwrap();
    let size = c.get_size("sz:k").await.unwrap().unwrap();
    assert!(size >= 1000, "{size}");
}

pub async fn lock_tokens(h: &Harness) {
    let c = &h.cache;
    assert!(c.set_lock("lk:a", "token-1", "10s").await.unwrap());
    assert!(!c.set_lock("lk:a", "token-2", "10s").await.unwrap());
    assert!(c.is_locked("lk:a").await.unwrap());
    assert!(
        !c.unlock("lk:a", "token-2").await.unwrap(),
        "wrong token does nothing"
    );
    assert!(c.is_locked("lk:a").await.unwrap());
    assert!(c.unlock("lk:a", "token-1").await.unwrap());
    assert!(!c.is_locked("lk:a").await.unwrap());
    assert!(!c.unlock("lk:a", "token-1").await.unwrap());
    assert!(matches!(
        c.set_lock("lk:b", "t", None::<u64>).await,
        Err(Error::Ttl { .. })
    ));
}

pub async fn lock_guard_waits_and_expires(h: &Harness) {
    let c = &h.cache;
    let first = c.lock("lkg:a", "10s").await.unwrap();
    assert_eq!(first.token().len(), 32);
    match c.lock("lkg:a", "10s").no_wait().await {
        Err(Error::Locked { key }) => assert_eq!(key, "lkg:a"),
        other => panic!("{other:?}"),
    }
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move { c.lock("lkg:a", "10s").wait(Duration::from_secs(5)).await })
    };
    h.advance(Duration::from_millis(300)).await;
    assert!(first.release().await.unwrap());
    let second = waiter.await.unwrap().expect("acquired after the release");
    assert!(!c.unlock("lkg:a", "not-the-token").await.unwrap());
    // A lock that is never released expires with its TTL.
    std::mem::forget(second);
    h.advance(Duration::from_millis(10_500)).await;
    assert!(!c.is_locked("lkg:a").await.unwrap());
}

pub async fn bits(h: &Harness) {
    let c = &h.cache;
    assert_eq!(
        c.get_bits("bt:k", &[0, 5, 100], 4).await.unwrap(),
        vec![0, 0, 0]
    );
    assert_eq!(
        c.incr_bits("bt:k", &[0, 5], 4, 3).await.unwrap(),
        vec![3, 3]
    );
    assert_eq!(
        c.incr_bits("bt:k", &[5], 4, 100).await.unwrap(),
        vec![15],
        "saturates high"
    );
    assert_eq!(
        c.incr_bits("bt:k", &[0], 4, -100).await.unwrap(),
        vec![0],
        "saturates low"
    );
    assert_eq!(c.get_bits("bt:k", &[0, 5], 4).await.unwrap(), vec![0, 15]);
    c.incr_bits("bt:layout", &[0], 1, 1).await.unwrap();
    assert_eq!(
        c.get_raw("bt:layout").await.unwrap().unwrap().as_ref(),
        &[0x80],
        "Redis BITFIELD layout"
    );
    assert!(matches!(
        c.get_bits("bt:k", &[0], 0).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.get_bits("bt:k", &[0], 64).await,
        Err(Error::InvalidArgument(_))
    ));
}

pub async fn slice_incr_window(h: &Harness) {
    let c = &h.cache;
    let k = "sl:k";
    assert_eq!(c.slice_incr(k, 0, 5, 10, "1h").await.unwrap(), 1);
    assert_eq!(c.slice_incr(k, 1, 6, 10, "1h").await.unwrap(), 2);
    assert_eq!(c.slice_incr(k, 2, 7, 10, "1h").await.unwrap(), 3);
    assert_eq!(c.slice_incr(k, 3, 8, 10, "1h").await.unwrap(), 4);
    assert_eq!(
        c.slice_incr(k, 5, 10, 4, "1h").await.unwrap(),
        4,
        "full: nothing recorded"
    );
    assert_eq!(
        c.slice_incr(k, 9, 11, 10, "1h").await.unwrap(),
        1,
        "older calls forgotten"
    );
    assert_eq!(
        c.slice_incr(k, 11, 20, 10, "1h").await.unwrap(),
        2,
        "start is inclusive"
    );
    // Calls at the same millisecond all count.
    for n in 1..=3 {
        assert_eq!(
            c.slice_incr("sl:same", 100, 200, 10, "1h").await.unwrap(),
            n
        );
    }
}

pub async fn sets(h: &Harness) {
    let c = &h.cache;
    assert_eq!(c.set_add("st:k", &["a", "b", "c"], "1s").await.unwrap(), 3);
    assert_eq!(c.set_add("st:k", &["c", "d"], "1h").await.unwrap(), 1);
    // A shorter expiry never shortens the set's TTL.
    c.set_add("st:k", &["e"], Duration::from_millis(100))
        .await
        .unwrap();
    h.advance(Duration::from_millis(1500)).await;
    assert_eq!(c.set_remove("st:k", &["a", "zz"]).await.unwrap(), 1);
    let mut popped = c.set_pop("st:k", 10).await.unwrap();
    popped.sort();
    assert_eq!(popped, vec!["b", "c", "d", "e"]);
    assert!(!c.exists("st:k").await.unwrap(), "an empty set is deleted");
    assert!(c.set_pop("st:k", 10).await.unwrap().is_empty());
    // A set without TTL keeps none.
    c.set_add("st:p", &["a"], None::<u64>).await.unwrap();
    c.set_add("st:p", &["b"], "1s").await.unwrap();
    assert_eq!(c.get_expire("st:p").await.unwrap(), Expiry::NoExpiry);
    // Members without an expiry make a set with one persistent.
    c.set_add("st:q", &["a"], "1s").await.unwrap();
    c.set_add("st:q", &["b"], None::<u64>).await.unwrap();
    assert_eq!(c.get_expire("st:q").await.unwrap(), Expiry::NoExpiry);
}

pub async fn wrong_types(h: &Harness) {
    let c = &h.cache;
    c.set("wt:value", &1).await.unwrap();
    assert!(matches!(
        c.set_add("wt:value", &["a"], None::<u64>).await,
        Err(Error::WrongType { .. })
    ));
    c.set_add("wt:set", &["a"], None::<u64>).await.unwrap();
    assert!(matches!(
        c.incr("wt:set").await,
        Err(Error::WrongType { .. })
    ));
    assert_eq!(c.get::<i32>("wt:set").await.unwrap(), None);
    // A plain set replaces any kind of value.
    c.set("wt:set", &5).await.unwrap();
    assert_eq!(c.get::<i32>("wt:set").await.unwrap(), Some(5));
}

pub async fn returned_values_are_copies(h: &Harness) {
    let c = &h.cache;
    c.set("cp:k", &vec![1, 2, 3]).await.unwrap();
    let mut first: Vec<i32> = c.get("cp:k").await.unwrap().unwrap();
    first.push(4);
    assert_eq!(
        c.get::<Vec<i32>>("cp:k").await.unwrap(),
        Some(vec![1, 2, 3])
    );
}
