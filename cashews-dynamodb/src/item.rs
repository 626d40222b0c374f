//! How an item ([`cashews_backend::cas::Item`]) is stored in a DynamoDB
//! table: one row per key.
//!
//! | attribute | type | holds |
//! |---|---|---|
//! | `key` | S | the cache key (partition key); a key over 2048 bytes, or one starting with a NUL, becomes a NUL and its SHA-256 in hex |
//! | `value` | B | the payload of a value or a window |
//! | `members` | SS | the members of a set, so `UpdateItem ADD`/`DELETE` change it in place |
//! | `count` | N | the payload of a counter (a value whose bytes are the decimal text of an `i64`), so `UpdateItem ADD` can increment it |
//! | `kind` | N | `2` for a set, `3` for a window; absent for a value |
//! | `expires_ms` | N | the exact expiry in unix milliseconds, checked on every read; absent: never |
//! | `expires_at` | N | the same in whole seconds, rounded up: the table's TTL attribute, with which DynamoDB deletes the row (late, within days) |
//! | `version` | N | a random number replaced by every write: conditional writes compare it |
//!
//! A row that does not fit this shape (written by something else) is a
//! miss that the next write replaces.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use cashews_backend::cas::{self, Item, Kind};
use cashews_backend::layout::parse_counter;

pub const KEY: &str = "key";
pub const VALUE: &str = "value";
pub const COUNT: &str = "count";
pub const MEMBERS: &str = "members";
pub const KIND: &str = "kind";
pub const EXPIRES_MS: &str = "expires_ms";
pub const EXPIRES_AT: &str = "expires_at";
pub const VERSION: &str = "version";

/// DynamoDB's limit on a partition key.
const MAX_KEY: usize = 2048;

/// The partition key of `key`.
pub fn row_key(key: &str) -> String {
    if !key.is_empty() && key.len() <= MAX_KEY && !key.starts_with('\0') {
        return key.to_owned();
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(65);
    out.push('\0');
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The key attribute of `key`, as a request names it.
pub fn key_attribute(key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(KEY.to_owned(), AttributeValue::S(row_key(key)))])
}

/// A fresh version number (never 0, which stands for "no version").
pub fn new_version() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: a clock-derived number still differs per write.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        bytes = nanos.to_le_bytes();
    }
    u64::from_le_bytes(bytes).max(1)
}

/// The counter an item's payload is, if its bytes are exactly the decimal
/// text of one.
fn as_counter(item: &Item) -> Option<i64> {
    if item.kind != Kind::Value {
        return None;
    }
    let n = parse_counter(&item.payload)?;
    (n.to_string().as_bytes() == &item.payload[..]).then_some(n)
}

/// The row of `item` under `key` with `version`.
pub fn to_row(key: &str, item: &Item, version: u64) -> HashMap<String, AttributeValue> {
    let mut row = key_attribute(key);
    let members = match item.kind {
        Kind::Set => cas::decode_set(key, &item.payload)
            .ok()
            .filter(|m| !m.is_empty()),
        _ => None,
    };
    match (as_counter(item), members) {
        (Some(n), _) => {
            row.insert(COUNT.into(), AttributeValue::N(n.to_string()));
        }
        (None, Some(members)) => {
            row.insert(MEMBERS.into(), AttributeValue::Ss(members));
        }
        // (An empty set has no string-set form: bytes, as every payload.)
        (None, None) => {
            row.insert(
                VALUE.into(),
                AttributeValue::B(Blob::new(item.payload.to_vec())),
            );
        }
    }
    match item.kind {
        Kind::Value => {}
        Kind::Set => {
            row.insert(KIND.into(), AttributeValue::N("2".into()));
        }
        Kind::Window => {
            row.insert(KIND.into(), AttributeValue::N("3".into()));
        }
    }
    if item.expires_at != 0 {
        row.insert(EXPIRES_MS.into(), number(item.expires_at));
        row.insert(EXPIRES_AT.into(), number(item.expires_at.div_ceil(1000)));
    }
    row.insert(VERSION.into(), number(version));
    row
}

/// A number attribute.
pub fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The item in `row` (`None`: a row of another shape) and its version (0:
/// none).
pub fn from_row(row: &HashMap<String, AttributeValue>) -> (Option<Item>, u64) {
    let version = row
        .get(VERSION)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (parse_row(row), version)
}

fn parse_row(row: &HashMap<String, AttributeValue>) -> Option<Item> {
    let kind = match row.get(KIND) {
        None => Kind::Value,
        Some(kind) => match kind.as_n().ok()?.as_str() {
            "2" => Kind::Set,
            "3" => Kind::Window,
            _ => return None,
        },
    };
    let payload = match (row.get(VALUE), row.get(COUNT), row.get(MEMBERS)) {
        (Some(value), None, None) => Bytes::copy_from_slice(value.as_b().ok()?.as_ref()),
        (None, Some(count), None) if kind == Kind::Value => {
            let n: i64 = count.as_n().ok()?.parse().ok()?;
            Bytes::from(n.to_string())
        }
        (None, None, Some(members)) if kind == Kind::Set => cas::encode_set(members.as_ss().ok()?),
        _ => return None,
    };
    let expires_at = match row.get(EXPIRES_MS) {
        None => 0,
        Some(ms) => ms.as_n().ok()?.parse::<u64>().ok()?.max(1),
    };
    Some(Item {
        kind,
        expires_at,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        for item in [
            Item::value(Bytes::from_static(b"\x00bytes"), 0),
            Item::value(Bytes::from_static(b"-42"), 1_700_000_000_001),
            Item::value(Bytes::from_static(b"007"), 0),
            Item {
                kind: Kind::Set,
                expires_at: 5,
                payload: Bytes::from_static(b"\0\0\0\x01a"),
            },
        ] {
            let row = to_row("k", &item, 9);
            assert_eq!(from_row(&row), (Some(item.clone()), 9), "{item:?}");
        }
        let counter = to_row("k", &Item::value(Bytes::from_static(b"-42"), 0), 1);
        assert_eq!(counter.get(COUNT), Some(&AttributeValue::N("-42".into())));
        let set = to_row("k", &one_member_set(), 1);
        assert_eq!(
            set.get(MEMBERS),
            Some(&AttributeValue::Ss(vec!["a".into()]))
        );
        let text = to_row("k", &Item::value(Bytes::from_static(b"007"), 0), 1);
        assert!(!text.contains_key(COUNT), "not the exact text of a number");
    }

    fn one_member_set() -> Item {
        Item {
            kind: Kind::Set,
            expires_at: 5,
            payload: cas::encode_set(&["a".into()]),
        }
    }

    #[test]
    fn rows_of_another_shape_are_unreadable() {
        let mut row = key_attribute("k");
        row.insert(VALUE.into(), AttributeValue::S("text".into()));
        assert_eq!(from_row(&row), (None, 0));
        row.insert(VALUE.into(), AttributeValue::B(Blob::new(b"x".to_vec())));
        row.insert(KIND.into(), AttributeValue::N("9".into()));
        assert_eq!(from_row(&row).0, None);
        row.remove(KIND);
        row.insert(EXPIRES_MS.into(), AttributeValue::N("soon".into()));
        assert_eq!(from_row(&row).0, None);
    }

    #[test]
    fn long_and_nul_keys_are_hashed_apart() {
        assert_eq!(row_key("user:1"), "user:1");
        let long = "k".repeat(3000);
        assert_eq!(row_key(&long).len(), 65);
        assert!(row_key(&long).starts_with('\0'));
        assert_ne!(row_key(&long), row_key(&"k".repeat(3001)));
        assert!(row_key("\0x").starts_with('\0') && row_key("\0x").len() == 65);
        assert_eq!(row_key("").len(), 65);
    }
}
