//! What this backend stores in a memcached item: a 10-byte header (a magic
//! byte, the kind, the expiry in unix milliseconds) and the payload.
//!
//! memcached counts expiry in whole seconds on a clock that ticks once a
//! second, so an item is also given memcached's own expiry rounded up (and a
//! second more), and every read checks the header's exact one. An item
//! without the header (written by another client) reads as a plain value
//! with no known expiry; a header naming an unknown kind is a miss.

use bytes::{BufMut, Bytes};

use cashews_backend::{Error, Result};

const MAGIC: u8 = 0xCA;
const HEADER: usize = 10;

/// memcached reads an expiry above 30 days as a unix time.
const RELATIVE_LIMIT: u64 = 60 * 60 * 24 * 30;

/// What an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes (values, counters as decimal text, bit strings, lock tokens).
    Value = 1,
    /// A set of strings.
    Set = 2,
    /// The timestamps of a sliding window.
    Window = 3,
}

/// A decoded item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What it holds.
    pub kind: Kind,
    /// Unix milliseconds after which it is gone; 0: never.
    pub expires_at: u64,
    /// The payload.
    pub payload: Bytes,
}

impl Item {
    /// A value item.
    pub fn value(payload: Bytes, expires_at: u64) -> Item {
        Item {
            kind: Kind::Value,
            expires_at,
            payload,
        }
    }

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

    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.put_u8(MAGIC);
        out.put_u8(self.kind as u8);
        out.put_u64(self.expires_at);
        out.extend_from_slice(&self.payload);
        out
    }

    /// Whether it has not expired at `now` (unix ms).
    pub fn live(&self, now: u64) -> bool {
        self.expires_at == 0 || self.expires_at > now
    }

    /// memcached's expiry for the item at `now` (unix ms): never, or the
    /// remaining seconds rounded up plus one (as a unix time beyond 30
    /// days), so memcached never drops it before the header says.
    pub fn exptime(&self, now: u64) -> u64 {
        if self.expires_at == 0 {
            return 0;
        }
        let seconds = self.expires_at.saturating_sub(now).div_ceil(1000) + 1;
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
}

/// The members of a set payload: each a u32 length and its bytes.
pub fn decode_set(key: &str, payload: &[u8]) -> Result<Vec<String>> {
    let mut members = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (len, tail) = split_u32(rest).ok_or_else(|| corrupt(key))?;
        if tail.len() < len {
            return Err(corrupt(key));
        }
        let member = std::str::from_utf8(&tail[..len]).map_err(|_| corrupt(key))?;
        members.push(member.to_owned());
        rest = &tail[len..];
    }
    Ok(members)
}

/// A set payload.
pub fn encode_set(members: &[String]) -> Bytes {
    let mut out = Vec::new();
    for member in members {
        out.put_u32(member.len() as u32);
        out.extend_from_slice(member.as_bytes());
    }
    out.into()
}

/// The stamps of a window payload (u64 each).
pub fn decode_window(key: &str, payload: &[u8]) -> Result<Vec<u64>> {
    if payload.len() % 8 != 0 {
        return Err(corrupt(key));
    }
    Ok(payload
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// A window payload.
pub fn encode_window(stamps: &[u64]) -> Bytes {
    let mut out = Vec::with_capacity(stamps.len() * 8);
    for stamp in stamps {
        out.put_u64(*stamp);
    }
    out.into()
}

fn split_u32(data: &[u8]) -> Option<(usize, &[u8])> {
    let (head, tail) = data.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head) as usize, tail))
}

fn corrupt(key: &str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
        expected: "a well-formed set or window (the stored bytes are corrupt)",
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
            payload: encode_set(&["a".into(), "bc".into()]),
        };
        let back = Item::decode(item.encode().into()).unwrap();
        assert_eq!(back, item);
        assert_eq!(decode_set("k", &back.payload).unwrap(), vec!["a", "bc"]);
        let stamps = vec![1, u64::MAX, 7];
        assert_eq!(decode_window("k", &encode_window(&stamps)).unwrap(), stamps);
    }

    #[test]
    fn foreign_bytes_are_plain_values_without_expiry() {
        let item = Item::decode(Bytes::from_static(b"42")).unwrap();
        assert_eq!(item, Item::value(Bytes::from_static(b"42"), 0));
        assert!(Item::decode(Bytes::from_static(&[MAGIC, 9, 0, 0, 0, 0, 0, 0, 0, 0])).is_none());
    }

    #[test]
    fn corrupt_payloads_are_errors() {
        assert!(decode_set("k", &[0, 0, 0, 9, b'a']).is_err());
        assert!(decode_set("k", &[0, 0]).is_err());
        assert!(decode_set("k", &[0, 0, 0, 1, 0xff]).is_err());
        assert!(decode_window("k", &[1, 2, 3]).is_err());
    }

    #[test]
    fn memcached_expiry_never_ends_before_the_header() {
        let now = 1_700_000_000_000;
        let at = |ms| Item::value(Bytes::new(), ms).exptime(now);
        assert_eq!(Item::value(Bytes::new(), 0).exptime(now), 0);
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
