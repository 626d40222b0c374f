//! The memory backend's data: LRU shards behind their own mutexes.
//!
//! Every operation takes `now` (ms on the cache's clock) from the caller, so
//! the clock is read once per command, outside any lock.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use lru::LruCache;
use parking_lot::{Mutex, MutexGuard};

use crate::backend::{Exist, Expiry, SetOptions, Write};
use crate::bits;
use crate::error::{Error, Result};
use crate::glob;
use crate::layout::{is_tags_key, key_tags_key, parse_counter, tag_key};

const NEVER: u64 = u64::MAX;

/// Entries per shard before another shard is added (up to [`MAX_SHARDS`]).
/// Below this size the cache is one exact LRU.
const ENTRIES_PER_SHARD: usize = 256;
const MAX_SHARDS: usize = 64;

pub(super) enum Value {
    /// Plain bytes: values, counters, lock tokens, bit strings.
    Bytes(Bytes),
    /// A set of strings (`set_add`).
    Set(HashSet<String>),
    /// The timestamps of a sliding window (`slice_incr`).
    Window(Vec<u64>),
    /// A value kept as itself, never encoded (`Cache::set_value`).
    Typed(crate::backend::AnyValue),
}

pub(super) struct Entry {
    value: Value,
    expires_at: u64,
    /// Read since it was last placed at the front (second-chance LRU).
    referenced: bool,
}

impl Entry {
    fn new(value: Value, now: u64, ttl: Option<Duration>) -> Entry {
        Entry {
            value,
            expires_at: deadline(now, ttl),
            referenced: false,
        }
    }

    #[inline]
    fn live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Entry>()
            + match &self.value {
                Value::Bytes(b) => b.len(),
                Value::Set(s) => s.iter().map(|m| m.len() + 24).sum(),
                Value::Window(w) => w.len() * 8,
                // Its size is the value's own business; count a pointer.
                Value::Typed(_) => std::mem::size_of::<crate::backend::AnyValue>(),
            }
    }
}

fn deadline(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => NEVER,
        Some(ttl) => now.saturating_add((ttl.as_millis() as u64).max(1)),
    }
}

type Shard = LruCache<Box<str>, Entry>;

/// What [`Store::replace`] does to a key.
pub(super) enum Change {
    Keep,
    Store(Bytes, Option<Duration>),
    Remove,
}

/// Shards of LRU lists under one global bound: the entry count is kept in an
/// atomic, and an insert into a full cache evicts from its own shard (from
/// another one if its shard holds nothing else). The bound is exact.
///
/// Reads do not relink the list: they mark the entry *referenced*, and
/// eviction gives a referenced entry a second chance (it moves to the front
/// with its mark cleared) before evicting the first unreferenced one — the
/// CLOCK approximation of LRU, which evicts what LRU would whenever entries
/// are read at most once between evictions, and keeps reads cheap.
///
/// Tag records (keys under [`TAGS_PREFIX`]) are *pinned*: outside the bound
/// and never evicted, so a key that hits keep alive never outlives the
/// records that name it (which would make `delete_tags` miss it). They go
/// with their TTL, with `delete`/`delete_tags`, and — for keys that were
/// evicted — with the sweep ([`Store::forget_evicted_tags`]).
pub(super) struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: lru::DefaultHasher,
    mask: usize,
    len: AtomicUsize,
    /// How many pinned entries there are (not counted in `len`).
    pinned: AtomicUsize,
    /// Keys evicted while tag records existed, for the sweep to clean up.
    evicted: Mutex<Vec<Box<str>>>,
    capacity: usize,
}

/// The most evicted keys remembered for the sweep; past it their tag
/// records are left to expire with their TTL.
const MAX_EVICTED: usize = 1 << 16;

/// Whether `key` is a tag record (pinned: see [`Store`]).
#[inline]
fn is_pinned(key: &str) -> bool {
    is_tags_key(key)
}

impl Store {
    /// A store holding at most `size` entries in total.
    pub(super) fn new(size: NonZeroUsize) -> Store {
        let size = size.get();
        let count = (size / ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS);
        let count = if count.is_power_of_two() {
            count
        } else {
            count.next_power_of_two() / 2
        };
        Store {
            shards: (0..count)
                .map(|_| Mutex::new(LruCache::unbounded()))
                .collect(),
            hasher: lru::DefaultHasher::default(),
            mask: count - 1,
            len: AtomicUsize::new(0),
            pinned: AtomicUsize::new(0),
            evicted: Mutex::new(Vec::new()),
            capacity: size,
        }
    }

    /// The index of `key`'s shard.
    #[inline]
    pub(super) fn shard_index(&self, key: &str) -> usize {
        let hash = self.hasher.hash_one(key) as usize;
        (hash >> 7) & self.mask
    }

    /// How many shards there are (indexes are `0..shard_count()`).
    pub(super) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    #[inline]
    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        self.shards[self.shard_index(key)].lock()
    }

    /// Under `key`'s shard lock, asks `decide` (given the shard index) what
    /// becomes of `key`. One lock for the decision and the change, so a check
    /// in `decide` cannot be overtaken by another thread.
    pub(super) fn replace(&self, key: &str, now: u64, decide: impl FnOnce(usize) -> Change) {
        let index = self.shard_index(key);
        let mut shard = self.shards[index].lock();
        match decide(index) {
            Change::Keep => {}
            Change::Store(value, ttl) => {
                self.insert(&mut shard, key, Entry::new(Value::Bytes(value), now, ttl));
            }
            Change::Remove => {
                self.pop(&mut shard, key);
            }
        }
    }

    /// The live entry of `key` (marked referenced), removing it if it has expired.
    fn live<'s>(&self, shard: &'s mut Shard, key: &str, now: u64) -> Option<&'s mut Entry> {
        if !shard.peek(key)?.live(now) {
            self.pop(shard, key);
            return None;
        }
        let entry = shard.peek_mut(key)?;
        entry.referenced = true;
        Some(entry)
    }

    fn pop(&self, shard: &mut Shard, key: &str) -> Option<Entry> {
        let entry = shard.pop(key);
        if entry.is_some() {
            self.count_of(key).fetch_sub(1, Ordering::Relaxed);
        }
        entry
    }

    /// The counter `key` counts in.
    #[inline]
    fn count_of(&self, key: &str) -> &AtomicUsize {
        if is_pinned(key) {
            &self.pinned
        } else {
            &self.len
        }
    }

    /// Stores `entry` as the most recent, evicting first to keep the global
    /// bound (so the new entry itself is never the one evicted).
    fn insert(&self, shard: &mut Shard, key: &str, entry: Entry) {
        if let Some(slot) = shard.get_mut(key) {
            *slot = entry;
            return;
        }
        if is_pinned(key) {
            self.pinned.fetch_add(1, Ordering::Relaxed);
            shard.push(key.into(), entry);
            return;
        }
        // Reserve the slot first, so concurrent inserts in other shards
        // cannot all pass the bound.
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            // Full: evict from this shard, or from another one if this one is
            // empty. `try_lock` skips this shard (held) and never waits, so no
            // lock order is needed; if every other shard is busy the cache is
            // over by one until the next insert.
            let evicted = evict_one(shard).or_else(|| {
                self.shards
                    .iter()
                    .filter_map(|other| other.try_lock())
                    .find_map(|mut other| evict_one(&mut other))
            });
            if let Some(evicted) = evicted {
                self.len.fetch_sub(1, Ordering::Relaxed);
                if self.pinned.load(Ordering::Relaxed) > 0 {
                    let mut list = self.evicted.lock();
                    if list.len() < MAX_EVICTED {
                        list.push(evicted);
                    }
                }
            }
        }
        shard.push(key.into(), entry);
    }

    /// The hit path: calls `visit` with the bytes of a live value.
    #[inline]
    pub(super) fn visit(&self, key: &str, now: u64, visit: &mut dyn FnMut(&[u8])) -> bool {
        let mut shard = self.shard(key);
        match shard.peek_mut(key) {
            Some(Entry {
                value: Value::Bytes(bytes),
                expires_at,
                referenced,
            }) if *expires_at > now => {
                *referenced = true;
                visit(bytes);
                true
            }
            Some(entry) if !entry.live(now) => {
                self.pop(&mut shard, key);
                false
            }
            _ => false,
        }
    }

    pub(super) fn get(&self, key: &str, now: u64) -> Option<Bytes> {
        let mut shard = self.shard(key);
        match self.live(&mut shard, key, now)?.value {
            Value::Bytes(ref b) => Some(b.clone()),
            _ => None,
        }
    }

    /// The value kept as itself under `key`, if that is what `key` holds.
    pub(super) fn get_value(&self, key: &str, now: u64) -> Option<crate::backend::AnyValue> {
        let mut shard = self.shard(key);
        match &self.live(&mut shard, key, now)?.value {
            Value::Typed(value) => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value` as itself under `key`.
    pub(super) fn set_value(
        &self,
        key: &str,
        value: crate::backend::AnyValue,
        ttl: Option<Duration>,
        now: u64,
    ) {
        let mut shard = self.shard(key);
        self.insert(&mut shard, key, Entry::new(Value::Typed(value), now, ttl));
    }

    pub(super) fn set(&self, key: &str, value: Bytes, options: SetOptions, now: u64) -> bool {
        let mut shard = self.shard(key);
        let present = self.live(&mut shard, key, now).is_some();
        let allowed = match options.exist {
            Exist::Always => true,
            Exist::IfPresent => present,
            Exist::IfAbsent => !present,
        };
        if allowed {
            self.insert(
                &mut shard,
                key,
                Entry::new(Value::Bytes(value), now, options.expire),
            );
        }
        allowed
    }

    pub(super) fn delete(&self, key: &str, now: u64) -> bool {
        self.pop(&mut self.shard(key), key)
            .is_some_and(|e| e.live(now))
    }

    pub(super) fn exists(&self, key: &str, now: u64) -> bool {
        self.live(&mut self.shard(key), key, now).is_some()
    }

    /// Visits every live entry whose key matches `pattern`, shard by shard.
    fn for_each_match(&self, pattern: &str, now: u64, mut f: impl FnMut(&str, &Entry)) {
        for shard in self.shards.iter() {
            for (key, entry) in shard.lock().iter() {
                if entry.live(now) && glob::matches(pattern, key) {
                    f(key, entry);
                }
            }
        }
    }

    pub(super) fn keys_matching(&self, pattern: &str, now: u64) -> Vec<String> {
        let mut keys = Vec::new();
        self.for_each_match(pattern, now, |k, _| keys.push(k.to_owned()));
        keys
    }

    pub(super) fn values_matching(&self, pattern: &str, now: u64) -> Vec<(String, Bytes)> {
        let mut pairs = Vec::new();
        self.for_each_match(pattern, now, |k, e| {
            if let Value::Bytes(b) = &e.value {
                pairs.push((k.to_owned(), b.clone()));
            }
        });
        pairs
    }

    pub(super) fn delete_match(&self, pattern: &str, now: u64) -> u64 {
        let mut deleted = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let doomed: Vec<Box<str>> = shard
                .iter()
                .filter(|(k, _)| glob::matches(pattern, k))
                .map(|(k, _)| k.clone())
                .collect();
            for key in doomed {
                if self.pop(&mut shard, &key).is_some_and(|e| e.live(now)) {
                    deleted += 1;
                }
            }
        }
        deleted
    }

    pub(super) fn incr(&self, key: &str, by: i64, ttl: Option<Duration>, now: u64) -> Result<i64> {
        self.incr_in(&mut self.shard(key), key, by, ttl, now)
    }

    /// Applies `writes` holding the locks of every shard they touch (taken
    /// in index order, so two batches cannot deadlock): no reader sees part
    /// of them. As in a Redis `MULTI`, a write that fails (an `incr` of a
    /// value that is not a counter) does not undo the others; its error is
    /// returned after the batch.
    pub(super) fn apply(&self, writes: &[Write<'_>], now: u64) -> Result<()> {
        let of_write: Vec<usize> = writes.iter().map(|w| self.shard_index(w.key())).collect();
        let mut indexes = of_write.clone();
        indexes.sort_unstable();
        indexes.dedup();
        let mut shards: Vec<MutexGuard<'_, Shard>> =
            indexes.iter().map(|i| self.shards[*i].lock()).collect();
        let mut first_error = None;
        for (write, index) in writes.iter().zip(of_write) {
            let key = write.key();
            let position = indexes
                .binary_search(&index)
                .expect("every touched shard is locked");
            let shard = &mut shards[position];
            let result = match write {
                Write::Set { value, expire, .. } => {
                    let entry = Entry::new(Value::Bytes(value.clone()), now, *expire);
                    self.insert(shard, key, entry);
                    Ok(())
                }
                Write::Delete { .. } => {
                    self.pop(shard, key);
                    Ok(())
                }
                Write::Incr { by, .. } => self.incr_in(shard, key, *by, None, now).map(drop),
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn incr_in(
        &self,
        shard: &mut Shard,
        key: &str,
        by: i64,
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<i64> {
        let Some(entry) = self.live(shard, key, now) else {
            self.insert(shard, key, Entry::new(counter(by), now, ttl));
            return Ok(by);
        };
        let current = match &entry.value {
            Value::Bytes(b) => parse_counter(b),
            _ => None,
        }
        .ok_or_else(|| Error::WrongType {
            key: key.to_owned(),
            expected: "an integer",
        })?;
        let new = current.checked_add(by).ok_or_else(|| Error::Overflow {
            key: key.to_owned(),
        })?;
        entry.value = counter(new);
        Ok(new)
    }

    pub(super) fn expire(&self, key: &str, ttl: Duration, now: u64) -> bool {
        match self.live(&mut self.shard(key), key, now) {
            Some(entry) => {
                entry.expires_at = deadline(now, Some(ttl));
                true
            }
            None => false,
        }
    }

    pub(super) fn get_expire(&self, key: &str, now: u64) -> Expiry {
        match self.live(&mut self.shard(key), key, now) {
            None => Expiry::Missing,
            Some(e) if e.expires_at == NEVER => Expiry::NoExpiry,
            Some(e) => Expiry::Remaining(Duration::from_millis(e.expires_at - now)),
        }
    }

    pub(super) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let pinned = shard.iter().filter(|(k, _)| is_pinned(k)).count();
            self.pinned.fetch_sub(pinned, Ordering::Relaxed);
            self.len.fetch_sub(shard.len() - pinned, Ordering::Relaxed);
            shard.clear();
        }
        self.evicted.lock().clear();
    }

    /// Every entry, tag records included.
    pub(super) fn len(&self) -> u64 {
        (self.len.load(Ordering::Relaxed) + self.pinned.load(Ordering::Relaxed)) as u64
    }

    /// Removes the tag records of keys evicted since the last call (unless
    /// the key is back): the key's set of tags, and the key from each tag's
    /// set. Returns how many keys were cleaned up.
    pub(super) fn forget_evicted_tags(&self, now: u64) -> usize {
        let evicted = std::mem::take(&mut *self.evicted.lock());
        let mut cleaned = 0;
        for key in evicted {
            if self.exists(&key, now) {
                continue;
            }
            let record = key_tags_key(&key);
            let tags = {
                let mut shard = self.shard(&record);
                match self.pop(&mut shard, &record).map(|e| e.value) {
                    Some(Value::Set(tags)) => tags,
                    _ => continue,
                }
            };
            for tag in &tags {
                // Not a set (overwritten by hand): nothing to clean there.
                let _ = self.set_remove(&tag_key(tag), &[&key], now);
            }
            cleaned += 1;
        }
        cleaned
    }

    pub(super) fn size_of(&self, key: &str, now: u64) -> Option<u64> {
        let mut shard = self.shard(key);
        self.live(&mut shard, key, now)
            .map(|e| (e.size() + key.len()) as u64)
    }

    pub(super) fn unlock(&self, key: &str, token: &str, now: u64) -> bool {
        let mut shard = self.shard(key);
        let holds = matches!(
            self.live(&mut shard, key, now),
            Some(Entry { value: Value::Bytes(b), .. }) if b == token.as_bytes()
        );
        if holds {
            self.pop(&mut shard, key);
        }
        holds
    }

    pub(super) fn get_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        now: u64,
    ) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let mut shard = self.shard(key);
        let empty = Bytes::new();
        let data = match self.live(&mut shard, key, now) {
            None => &empty,
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => &*b,
            Some(_) => return Err(wrong_type(key, "a bit string")),
        };
        Ok(offsets.iter().map(|o| bits::read(data, *o, size)).collect())
    }

    pub(super) fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
        now: u64,
    ) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let mut shard = self.shard(key);
        let mut data = match self.live(&mut shard, key, now) {
            None => Vec::new(),
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => b.to_vec(),
            Some(_) => return Err(wrong_type(key, "a bit string")),
        };
        let values = offsets
            .iter()
            .map(|o| bits::incr(&mut data, *o, size, by))
            .collect();
        match self.live(&mut shard, key, now) {
            Some(entry) => entry.value = Value::Bytes(data.into()),
            None => self.insert(
                &mut shard,
                key,
                Entry::new(Value::Bytes(data.into()), now, None),
            ),
        }
        Ok(values)
    }

    pub(super) fn slice_incr(
        &self,
        key: &str,
        (start, end, max): (u64, u64, u64),
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<u64> {
        let mut shard = self.shard(key);
        let entry = match self.live(&mut shard, key, now) {
            Some(entry) => entry,
            None => {
                self.insert(
                    &mut shard,
                    key,
                    Entry::new(Value::Window(Vec::new()), now, ttl),
                );
                shard.get_mut(key).expect("just inserted")
            }
        };
        let Value::Window(stamps) = &mut entry.value else {
            return Err(wrong_type(key, "a sliding window"));
        };
        let (count, recorded) = crate::backend::slide_window(stamps, start, end, max);
        if recorded {
            entry.expires_at = deadline(now, ttl);
        }
        Ok(count)
    }

    pub(super) fn set_add(
        &self,
        key: &str,
        members: &[&str],
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<u64> {
        let mut shard = self.shard(key);
        let entry = match self.live(&mut shard, key, now) {
            Some(entry) => {
                // The TTL only grows; members without one make the set persistent.
                entry.expires_at = entry.expires_at.max(deadline(now, ttl));
                entry
            }
            None => {
                self.insert(
                    &mut shard,
                    key,
                    Entry::new(Value::Set(HashSet::new()), now, ttl),
                );
                shard.get_mut(key).expect("just inserted")
            }
        };
        let Value::Set(set) = &mut entry.value else {
            return Err(wrong_type(key, "a set"));
        };
        Ok(members
            .iter()
            .filter(|m| set.insert((**m).to_owned()))
            .count() as u64)
    }

    pub(super) fn set_remove(&self, key: &str, members: &[&str], now: u64) -> Result<u64> {
        self.with_set(key, now, |set| {
            members.iter().filter(|m| set.remove(**m)).count() as u64
        })
    }

    pub(super) fn set_pop(&self, key: &str, count: usize, now: u64) -> Result<Vec<String>> {
        self.with_set(key, now, |set| {
            let popped: Vec<String> = set.iter().take(count).cloned().collect();
            for m in &popped {
                set.remove(m);
            }
            popped
        })
    }

    /// Runs `f` on the set at `key` (an empty set if missing); deletes the key
    /// when the set ends up empty, as Redis does.
    fn with_set<R: Default>(
        &self,
        key: &str,
        now: u64,
        f: impl FnOnce(&mut HashSet<String>) -> R,
    ) -> Result<R> {
        let mut shard = self.shard(key);
        let Some(entry) = self.live(&mut shard, key, now) else {
            return Ok(R::default());
        };
        let Value::Set(set) = &mut entry.value else {
            return Err(wrong_type(key, "a set"));
        };
        let result = f(set);
        if set.is_empty() {
            self.pop(&mut shard, key);
        }
        Ok(result)
    }

    /// Removes expired entries; returns how many.
    pub(super) fn purge_expired(&self, now: u64) -> usize {
        let mut purged = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let expired: Vec<Box<str>> = shard
                .iter()
                .filter(|(_, e)| !e.live(now))
                .map(|(k, _)| k.clone())
                .collect();
            purged += expired.len();
            for key in expired {
                self.pop(&mut shard, &key);
            }
        }
        purged
    }
}

/// Evicts the least recent unreferenced entry of `shard`, giving referenced
/// ones a second chance and passing over pinned ones; the evicted key.
fn evict_one(shard: &mut Shard) -> Option<Box<str>> {
    // Each pass clears one mark or moves one pinned entry to the front, so
    // after two rounds every unpinned entry has been offered unmarked.
    for _ in 0..=2 * shard.len() {
        let (key, mut entry) = shard.pop_lru()?;
        if !is_pinned(&key) && !std::mem::take(&mut entry.referenced) {
            return Some(key);
        }
        shard.push(key, entry);
    }
    None
}

fn counter(n: i64) -> Value {
    Value::Bytes(Bytes::from(n.to_string()))
}

fn wrong_type(key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
        expected,
    }
}
