//! The commands a store without server-side scripts runs as
//! compare-and-swap loops: read the key's item with its version, decide the
//! change, write it only if the item is still that version, retry when it
//! is not. memcached (`gets`/`cas`) and DynamoDB (conditional writes) run
//! counters, locks, bits, sets and sliding windows this way; each is atomic
//! (a concurrent writer makes it retry, never lose an update).
//!
//! A store implements [`CasStore`] (read, write-if-version, remove-if-version,
//! its clock); the steps here are the commands' semantics, shared by every
//! such store, and [`update`] is the loop.

use std::time::Duration;

use bytes::{BufMut, Bytes};

use crate::backend::{slide_window, Exist, Expiry};
use crate::bits;
use crate::error::{Error, Result};
use crate::layout::parse_counter;

/// How many times a compare-and-swap is retried before the command fails
/// (each retry means another client wrote the key in between).
pub const MAX_ATTEMPTS: usize = 64;

/// What an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes (values, counters as decimal text, bit strings, lock tokens).
    Value,
    /// A set of strings ([`encode_set`]).
    Set,
    /// The timestamps of a sliding window ([`encode_window`]).
    Window,
}

/// A key's item, as the steps see it.
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

    /// Whether it has not expired at `now` (unix ms).
    pub fn live(&self, now: u64) -> bool {
        self.expires_at == 0 || self.expires_at > now
    }

    /// What a `get` answers: the payload of a value (a set or a window is
    /// not one).
    pub fn into_value(self) -> Option<Bytes> {
        (self.kind == Kind::Value).then_some(self.payload)
    }
}

/// What `get_expire` answers for the live item read (`None`: missing).
pub fn expiry(live: Option<&Item>, now: u64) -> Expiry {
    match live {
        None => Expiry::Missing,
        Some(item) if item.expires_at == 0 => Expiry::NoExpiry,
        // (Saturating: `now` may be read after the item was found live.)
        Some(item) => Expiry::Remaining(Duration::from_millis(item.expires_at.saturating_sub(now))),
    }
}

/// The expiry (unix ms, 0: never) of an item written at `now` with `ttl`.
pub fn expires_at(now: u64, ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| {
        now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .max(1)
    })
}

/// What a step decides from the live item it read.
#[derive(Debug)]
pub enum Change<T> {
    /// Writes the item (if it is still as read), then answers.
    Write(Item, T),
    /// Deletes the item (if it is still as read), then answers.
    Remove(T),
    /// Writes nothing.
    Keep(T),
}

/// A key's item as read.
#[derive(Debug)]
pub struct Read<V> {
    /// The live item (`None`: absent, expired, or unreadable).
    pub live: Option<Item>,
    /// The version of whatever is stored (also an expired or unreadable
    /// item, which a write replaces); `None`: nothing is stored.
    pub version: Option<V>,
}

/// A store that can read an item with its version and write or remove it
/// only if it still has that version.
#[async_trait::async_trait]
pub trait CasStore: Send + Sync {
    /// What identifies one stored state of an item.
    type Version: Copy + Send + Sync;

    /// The backend's name, for errors.
    fn name(&self) -> &'static str;

    /// Unix milliseconds now, the clock expiry is read on.
    fn now(&self) -> u64;

    /// The item under `key` and its version.
    async fn read(&self, key: &str) -> Result<Read<Self::Version>>;

    /// Writes `item` if the key is still at `expected` (`None`: if nothing
    /// is stored); whether it was written.
    async fn write(
        &self,
        key: &str,
        item: &Item,
        now: u64,
        expected: Option<Self::Version>,
    ) -> Result<bool>;

    /// Deletes the item if it is still at `expected`; whether it was.
    async fn remove(&self, key: &str, expected: Self::Version) -> Result<bool>;
}

/// Reads `key`, lets `step` decide, and applies the change only if the item
/// is still as read; retries when another writer came in between.
pub async fn update<S, T>(
    store: &S,
    key: &str,
    mut step: impl FnMut(Option<&Item>, u64) -> Result<Change<T>> + Send,
) -> Result<T>
where
    S: CasStore + ?Sized,
    T: Send,
{
    for _ in 0..MAX_ATTEMPTS {
        let read = store.read(key).await?;
        let now = store.now();
        let done = match step(read.live.as_ref(), now)? {
            Change::Keep(answer) => return Ok(answer),
            Change::Write(item, answer) => store
                .write(key, &item, now, read.version)
                .await?
                .then_some(answer),
            Change::Remove(answer) => match read.version {
                None => return Ok(answer),
                Some(version) => store.remove(key, version).await?.then_some(answer),
            },
        };
        if let Some(answer) = done {
            return Ok(answer);
        }
    }
    Err(Error::backend(
        store.name(),
        true,
        format!("{key:?} changed on every one of {MAX_ATTEMPTS} compare-and-swap attempts"),
    ))
}

/// `set` only if absent / only if present.
pub fn set_if(
    exist: Exist,
    value: Bytes,
    ttl: Option<Duration>,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<bool>> + Send {
    move |live, now| {
        let write = match exist {
            Exist::IfAbsent => live.is_none(),
            Exist::IfPresent => live.is_some(),
            Exist::Always => true,
        };
        Ok(if write {
            Change::Write(Item::value(value.clone(), expires_at(now, ttl)), true)
        } else {
            Change::Keep(false)
        })
    }
}

/// `incr`: a missing key starts from 0 with `ttl`; a counter keeps its TTL.
pub fn incr(
    key: &str,
    by: i64,
    ttl: Option<Duration>,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<i64>> + Send + '_ {
    move |live, now| {
        let (current, at) = match live {
            None => (0, expires_at(now, ttl)),
            Some(item) => {
                let current = (item.kind == Kind::Value)
                    .then(|| parse_counter(&item.payload))
                    .flatten()
                    .ok_or_else(|| wrong_type(key, "an integer"))?;
                (current, item.expires_at)
            }
        };
        let new = current.checked_add(by).ok_or_else(|| Error::Overflow {
            key: key.to_owned(),
        })?;
        Ok(Change::Write(
            Item::value(Bytes::from(new.to_string()), at),
            new,
        ))
    }
}

/// `expire`: a new TTL for a live item.
pub fn expire(ttl: Duration) -> impl FnMut(Option<&Item>, u64) -> Result<Change<bool>> + Send {
    move |live, now| {
        Ok(match live {
            None => Change::Keep(false),
            Some(item) => {
                let mut item = item.clone();
                item.expires_at = expires_at(now, Some(ttl));
                Change::Write(item, true)
            }
        })
    }
}

/// `set_lock`: the token, unless the lock is held.
pub fn lock(
    token: &str,
    ttl: Duration,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<bool>> + Send + '_ {
    move |live, now| {
        Ok(match live {
            Some(_) => Change::Keep(false),
            None => Change::Write(
                Item::value(
                    Bytes::copy_from_slice(token.as_bytes()),
                    expires_at(now, Some(ttl)),
                ),
                true,
            ),
        })
    }
}

/// `unlock`: deletes the lock only if it holds `token`.
pub fn unlock(token: &str) -> impl FnMut(Option<&Item>, u64) -> Result<Change<bool>> + Send + '_ {
    move |live, _| {
        Ok(match live {
            Some(item) if item.kind == Kind::Value && item.payload == token.as_bytes() => {
                Change::Remove(true)
            }
            _ => Change::Keep(false),
        })
    }
}

/// The bytes of a bit string item (empty when absent).
pub fn bit_string<'i>(key: &str, item: Option<&'i Item>) -> Result<&'i [u8]> {
    match item {
        None => Ok(&[]),
        Some(item) if item.kind == Kind::Value => Ok(&item.payload),
        Some(_) => Err(wrong_type(key, "a bit string")),
    }
}

/// `incr_bits` at checked `offsets` ([`bits::offsets`]).
pub fn incr_bits<'a>(
    key: &'a str,
    offsets: &'a [u64],
    size: u8,
    by: i64,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<Vec<u64>>> + Send + 'a {
    move |live, _| {
        let mut data = bit_string(key, live)?.to_vec();
        let values = offsets
            .iter()
            .map(|o| bits::incr(&mut data, *o, size, by))
            .collect();
        let at = live.map_or(0, |item| item.expires_at);
        Ok(Change::Write(Item::value(data.into(), at), values))
    }
}

/// `slice_incr` (see [`slide_window`]).
pub fn slice_incr(
    key: &str,
    start: u64,
    end: u64,
    max: u64,
    ttl: Option<Duration>,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<u64>> + Send + '_ {
    move |live, now| {
        let mut stamps = match live {
            None => Vec::new(),
            Some(item) if item.kind == Kind::Window => decode_window(key, &item.payload)?,
            Some(_) => return Err(wrong_type(key, "a sliding window")),
        };
        let (count, recorded) = slide_window(&mut stamps, start, end, max);
        if !recorded {
            return Ok(Change::Keep(count));
        }
        let item = Item {
            kind: Kind::Window,
            expires_at: expires_at(now, ttl),
            payload: encode_window(&stamps),
        };
        Ok(Change::Write(item, count))
    }
}

/// `set_add`: a set only ever lives longer (no TTL stays none; members
/// without an expiry make it persistent).
pub fn set_add<'a>(
    key: &'a str,
    members: &'a [&'a str],
    ttl: Option<Duration>,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<u64>> + Send + 'a {
    move |live, now| {
        let mut set = set_members(key, live)?;
        let before = set.len();
        for member in members {
            if !set.iter().any(|m| m == member) {
                set.push((*member).to_owned());
            }
        }
        let added = (set.len() - before) as u64;
        let wanted = expires_at(now, ttl);
        let at = match live {
            None => wanted,
            Some(item) if item.expires_at == 0 || wanted == 0 => 0,
            Some(item) => item.expires_at.max(wanted),
        };
        if added == 0 && live.is_some_and(|item| item.expires_at == at) {
            return Ok(Change::Keep(0));
        }
        let item = Item {
            kind: Kind::Set,
            expires_at: at,
            payload: encode_set(&set),
        };
        Ok(Change::Write(item, added))
    }
}

/// `set_remove`.
pub fn set_remove<'a>(
    key: &'a str,
    members: &'a [&'a str],
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<u64>> + Send + 'a {
    move |live, _| {
        let mut set = set_members(key, live)?;
        let before = set.len();
        set.retain(|m| !members.contains(&m.as_str()));
        let removed = (before - set.len()) as u64;
        if removed == 0 {
            return Ok(Change::Keep(0));
        }
        Ok(shrunk_set(live, set, removed))
    }
}

/// `set_pop`: up to `count` members.
pub fn set_pop(
    key: &str,
    count: usize,
) -> impl FnMut(Option<&Item>, u64) -> Result<Change<Vec<String>>> + Send + '_ {
    move |live, _| {
        let mut set = set_members(key, live)?;
        let popped = set.split_off(set.len().saturating_sub(count));
        Ok(shrunk_set(live, set, popped))
    }
}

/// The live members of a set item (none when absent).
fn set_members(key: &str, item: Option<&Item>) -> Result<Vec<String>> {
    match item {
        None => Ok(Vec::new()),
        Some(item) if item.kind == Kind::Set => decode_set(key, &item.payload),
        Some(_) => Err(wrong_type(key, "a set")),
    }
}

/// The change after members left a set: nothing, the smaller set, or no
/// set (an empty set is deleted).
fn shrunk_set<T>(live: Option<&Item>, set: Vec<String>, answer: T) -> Change<T> {
    match live {
        None => Change::Keep(answer),
        Some(_) if set.is_empty() => Change::Remove(answer),
        Some(item) => Change::Write(
            Item {
                kind: Kind::Set,
                expires_at: item.expires_at,
                payload: encode_set(&set),
            },
            answer,
        ),
    }
}

/// The members of a set payload: each a u32 length and its bytes.
pub fn decode_set(key: &str, payload: &[u8]) -> Result<Vec<String>> {
    let mut members = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt(key))?;
        let len = u32::from_be_bytes(*head) as usize;
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

fn wrong_type(key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
        expected,
    }
}

fn corrupt(key: &str) -> Error {
    wrong_type(
        key,
        "a well-formed set or window (the stored bytes are corrupt)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let members = vec!["a".to_owned(), "bc".to_owned(), String::new()];
        assert_eq!(decode_set("k", &encode_set(&members)).unwrap(), members);
        let stamps = vec![1, u64::MAX, 7];
        assert_eq!(decode_window("k", &encode_window(&stamps)).unwrap(), stamps);
    }

    #[test]
    fn corrupt_payloads_are_errors() {
        assert!(decode_set("k", &[0, 0, 0, 9, b'a']).is_err());
        assert!(decode_set("k", &[0, 0]).is_err());
        assert!(decode_set("k", &[0, 0, 0, 1, 0xff]).is_err());
        assert!(decode_window("k", &[1, 2, 3]).is_err());
    }

    #[test]
    fn steps_follow_the_contract() {
        let now = 1_000;
        let counter = Item::value(Bytes::from_static(b"41"), 5_000);
        match incr("k", 1, Some(Duration::from_secs(9)))(Some(&counter), now).unwrap() {
            Change::Write(item, 42) => assert_eq!(item.expires_at, 5_000, "keeps its TTL"),
            other => panic!("{other:?}"),
        }
        let max = Item::value(Bytes::from(i64::MAX.to_string()), 0);
        assert!(matches!(
            incr("k", 1, None)(Some(&max), now),
            Err(Error::Overflow { .. })
        ));
        let set = Item {
            kind: Kind::Set,
            expires_at: 9_000,
            payload: encode_set(&["a".into()]),
        };
        match set_add("k", &["b"], Some(Duration::from_secs(1)))(Some(&set), now).unwrap() {
            Change::Write(item, 1) => assert_eq!(item.expires_at, 9_000, "never shortened"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            set_pop("k", 5)(Some(&set), now).unwrap(),
            Change::Remove(popped) if popped == ["a"]
        ));
        assert!(matches!(
            incr("k", 1, None)(Some(&set), now),
            Err(Error::WrongType { .. })
        ));
    }
}
