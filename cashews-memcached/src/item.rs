//! How an item ([`cashews_backend::cas::Item`]) is stored in memcached: a
//! 10-byte header (a magic byte, the kind, the expiry in unix milliseconds)
//! and the payload.
//!
//! memcached counts expiry in whole seconds on a clock that ticks once a
//! second, so an item is also given memcached's own expiry rounded up (and a
//! second more), and every read checks the header's exact one. An item
//! without the header (written by another client) reads as a plain value
//! with no known expiry; a header naming an unknown kind is unreadable (a
//! miss, replaced by the next write).

use bytes::Bytes;

use cashews_backend::cas::{Item, Kind};

use crate::protocol::{Mode, Requests, WireKey};

const MAGIC: u8 = 0xCA;
const HEADER: usize = 10;

/// memcached reads an expiry above 30 days as a unix time.
const RELATIVE_LIMIT: u64 = 60 * 60 * 24 * 30;

/// Reads stored bytes; `None` for a header this version does not know.
pub fn decode(raw: Bytes) -> Option<Item> {
    if raw.len() < HEADER || raw[0] != MAGIC {
        return Some(Item::value(raw, 0));
    }
    let kind = match raw[1] {
        1 => Kind::Value,
        2 => Kind::Set,
        3 => Kind::Window,
        _ => return None,
    };
    let expires_at = u64::from_be_bytes(raw[2..HEADER].try_into().expect("8 bytes"));
    Some(Item {
        kind,
        expires_at,
        payload: raw.slice(HEADER..),
    })
}

/// The header stored before `item`'s payload.
fn header(item: &Item) -> [u8; HEADER] {
    let kind = match item.kind {
        Kind::Value => 1,
        Kind::Set => 2,
        Kind::Window => 3,
    };
    let mut out = [0; HEADER];
    out[0] = MAGIC;
    out[1] = kind;
    out[2..].copy_from_slice(&item.expires_at.to_be_bytes());
    out
}

/// Adds the `ms` of `item` under `key` at `now` to `requests` (the header
/// and the payload written straight into the request).
pub fn set(requests: &mut Requests, key: &WireKey<'_>, item: &Item, now: u64, mode: Mode) {
    let header = header(item);
    requests.set(key, &[&header, &item.payload], exptime(item, now), mode);
}

/// memcached's expiry for `item` at `now` (unix ms): never, or the
/// remaining seconds rounded up plus one (as a unix time beyond 30 days),
/// so memcached never drops it before the header says.
pub fn exptime(item: &Item, now: u64) -> u64 {
    if item.expires_at == 0 {
        return 0;
    }
    let seconds = item.expires_at.saturating_sub(now).div_ceil(1000) + 1;
    if seconds > RELATIVE_LIMIT {
        // memcached reads a 32-bit time: beyond it the item gets no
        // expiry of memcached's own (the header still ends it).
        let at = now / 1000 + seconds;
        if at > i32::MAX as u64 {
            0
        } else {
            at
        }
    } else {
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip() {
        let item = Item {
            kind: Kind::Set,
            expires_at: 1_700_000_000_123,
            payload: Bytes::from_static(b"\0\0\0\x01a"),
        };
        let stored = [&header(&item)[..], &item.payload].concat();
        assert_eq!(decode(stored.into()).unwrap(), item);
    }

    #[test]
    fn foreign_bytes_are_plain_values_without_expiry() {
        let item = decode(Bytes::from_static(b"42")).unwrap();
        assert_eq!(item, Item::value(Bytes::from_static(b"42"), 0));
        assert!(decode(Bytes::from_static(&[MAGIC, 9, 0, 0, 0, 0, 0, 0, 0, 0])).is_none());
    }

    #[test]
    fn memcached_expiry_never_ends_before_the_header() {
        let now = 1_700_000_000_000;
        let at = |ms| exptime(&Item::value(Bytes::new(), ms), now);
        assert_eq!(at(0), 0);
        assert_eq!(at(now + 1), 2);
        assert_eq!(at(now + 1000), 2);
        assert_eq!(at(now + 1001), 3);
        let far = now + 40 * 24 * 3600 * 1000;
        assert_eq!(at(far), now / 1000 + 40 * 24 * 3600 + 1, "a unix time");
        assert_eq!(
            at(32_503_680_000_000),
            0,
            "year 3000: past memcached's clock"
        );
    }
}
