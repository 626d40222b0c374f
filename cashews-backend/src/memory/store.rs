//! The memory backend's data: shards behind their own mutexes.
//!
//! Every operation takes `now` (ms on the cache's clock) from the caller, so
//! the clock is read once per command, outside any lock.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

use super::shard::{deadline, Entry, Other, Shard, NEVER};

use crate::backend::{Exist, Expiry, Kept, SetOptions, Write};
use crate::bits;
use crate::error::{Error, Result};
use crate::glob;
use crate::layout::{key_tags_key, parse_counter, tag_key, TAGS_PREFIX};

/// Entries per shard before another shard is added (up to [`MAX_SHARDS`]).
/// Below this size the cache is one exact CLOCK.
const ENTRIES_PER_SHARD: usize = 256;
const MAX_SHARDS: usize = 64;

/// What [`Store::replace`] does to a key.
pub(super) enum Change {
    Keep,
    Store(Bytes, Option<Duration>),
    Remove,
}

/// Shards under one global bound: the entry count is kept in an atomic,
/// and an insert into a full cache evicts from its own shard (from another
/// one if its shard holds nothing else). The bound is exact.
///
/// Reads do not reorder anything: they mark the entry *referenced*, and
/// eviction (a CLOCK hand going round the shard's slots) gives a referenced
/// entry a second chance — clears its mark and passes it over — before
/// evicting the first unreferenced one: the CLOCK approximation of LRU,
/// which evicts the least recently stored entry among those not read since
/// the hand last passed, and keeps reads cheap.
///
/// Tag records (keys under [`TAGS_PREFIX`]) are *pinned*: outside the bound
/// and never evicted, so a key that hits keep alive never outlives the
/// records that name it (which would make `delete_tags` miss it). They go
/// with their TTL, with `delete`/`delete_tags`, and — for keys that were
/// evicted — with the sweep ([`Store::forget_evicted_tags`]).
///
/// [`TAGS_PREFIX`]: crate::layout::TAGS_PREFIX
pub(super) struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: hashbrown::DefaultHashBuilder,
    mask: usize,
    len: AtomicUsize,
    /// How many pinned entries there are (not counted in `len`).
    pinned: AtomicUsize,
    /// Keys evicted while tag records existed, for the sweep to clean up.
    evicted: Mutex<Vec<String>>,
    capacity: usize,
}

/// The most evicted keys remembered for the sweep; past it their tag
/// records are left to expire with their TTL.
const MAX_EVICTED: usize = 1 << 16;

/// Whether `key` is a tag record (pinned: see [`Store`]).
#[inline]
fn is_pinned(key: &[u8]) -> bool {
    key.starts_with(TAGS_PREFIX.as_bytes())
}

/// A key's shard and its hash (computed once per command).
#[derive(Clone, Copy)]
pub(super) struct Slot {
    index: usize,
    hash: u64,
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
            shards: (0..count).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            mask: count - 1,
            len: AtomicUsize::new(0),
            pinned: AtomicUsize::new(0),
            evicted: Mutex::new(Vec::new()),
            capacity: size,
        }
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// `key`'s shard and hash. The shard comes from bits the shard's own
    /// table does not use (it takes the low bits for the bucket and the top
    /// seven for its tags), so keys of one shard spread over its table.
    #[inline]
    fn slot(&self, key: &str) -> Slot {
        let hash = self.hash(key.as_bytes());
        Slot {
            index: (hash >> 40) as usize & self.mask,
            hash,
        }
    }

    /// The index of `key`'s shard.
    #[inline]
    pub(super) fn shard_index(&self, key: &str) -> usize {
        self.slot(key).index
    }

    /// How many shards there are (indexes are `0..shard_count()`).
    pub(super) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    #[inline]
    fn lock(&self, key: &str) -> (MutexGuard<'_, Shard>, u64) {
        let slot = self.slot(key);
        (self.shards[slot.index].lock(), slot.hash)
    }

    /// Under `key`'s shard lock, asks `decide` (given the shard index) what
    /// becomes of `key`. One lock for the decision and the change, so a check
    /// in `decide` cannot be overtaken by another thread.
    pub(super) fn replace(&self, key: &str, now: u64, decide: impl FnOnce(usize) -> Change) {
        let slot = self.slot(key);
        let mut shard = self.shards[slot.index].lock();
        match decide(slot.index) {
            Change::Keep => {}
            Change::Store(value, ttl) => {
                self.insert(&mut shard, slot.hash, Entry::bytes(key, &value, now, ttl));
            }
            Change::Remove => {
                self.pop(&mut shard, slot.hash, key);
            }
        }
    }

    /// The live entry of `key` (marked referenced), removing it if it has expired.
    fn live<'s>(
        &self,
        shard: &'s mut Shard,
        hash: u64,
        key: &str,
        now: u64,
    ) -> Option<&'s mut Entry> {
        let index = shard.find(hash, key.as_bytes())?;
        if !shard.at(index)?.live(now) {
            self.pop_at(shard, index, hash);
            return None;
        }
        let entry = shard.at(index)?;
        entry.referenced = true;
        Some(entry)
    }

    fn pop(&self, shard: &mut Shard, hash: u64, key: &str) -> Option<Entry> {
        let index = shard.find(hash, key.as_bytes())?;
        self.pop_at(shard, index, hash)
    }

    /// Removes the entry in slot `index` (whose key hashes to `hash`).
    fn pop_at(&self, shard: &mut Shard, index: usize, hash: u64) -> Option<Entry> {
        let entry = shard.unlink(index, hash)?;
        self.count_of(entry.key_bytes())
            .fetch_sub(1, Ordering::Relaxed);
        Some(entry)
    }

    /// The counter `key` counts in.
    #[inline]
    fn count_of(&self, key: &[u8]) -> &AtomicUsize {
        if is_pinned(key) {
            &self.pinned
        } else {
            &self.len
        }
    }

    /// Stores `entry` as the most recent, evicting first to keep the global
    /// bound (so the new entry itself is never the one evicted).
    fn insert(&self, shard: &mut Shard, hash: u64, entry: Entry) {
        if let Some(slot) = shard.get_mut(hash, entry.key_bytes()) {
            *slot = entry;
            return;
        }
        let rehash = |key: &[u8]| self.hash(key);
        if is_pinned(entry.key_bytes()) {
            self.pinned.fetch_add(1, Ordering::Relaxed);
            shard.insert(hash, entry, rehash);
            return;
        }
        // Reserve the slot first, so concurrent inserts in other shards
        // cannot all pass the bound.
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            // Full: evict from this shard, or from another one if this one is
            // empty. `try_lock` skips this shard (held) and never waits, so no
            // lock order is needed; if every other shard is busy the cache is
            // over by one until the next insert.
            let evicted = shard.evict(is_pinned, rehash).or_else(|| {
                self.shards
                    .iter()
                    .filter_map(|other| other.try_lock())
                    .find_map(|mut other| other.evict(is_pinned, rehash))
            });
            if let Some(evicted) = evicted {
                self.len.fetch_sub(1, Ordering::Relaxed);
                if self.pinned.load(Ordering::Relaxed) > 0 {
                    let mut list = self.evicted.lock();
                    if list.len() < MAX_EVICTED {
                        list.push(evicted.key().to_owned());
                    }
                }
            }
        }
        shard.insert(hash, entry, rehash);
    }

    /// The hit path: calls `visit` with the bytes of a live value and the
    /// copy decoded from them by `tag` (see [`Kept`]).
    #[inline]
    pub(super) fn visit(
        &self,
        key: &str,
        now: u64,
        tag: u64,
        visit: &mut dyn FnMut(&[u8], &mut Kept<'_>),
    ) -> bool {
        let (mut shard, hash) = self.lock(key);
        let Some(index) = shard.find(hash, key.as_bytes()) else {
            return false;
        };
        let Some(entry) = shard.at(index) else {
            return false;
        };
        if !entry.live(now) {
            self.pop_at(&mut shard, index, hash);
            return false;
        }
        if entry.as_bytes().is_none() {
            return false;
        }
        // Read twice since the hand last passed: worth keeping decoded.
        let wanted = tag != 0 && entry.referenced;
        entry.referenced = true;
        let (bytes, current) = entry.bytes_and_decoded(tag);
        let mut kept = Kept::new(current, wanted);
        visit(bytes, &mut kept);
        if let Some(value) = kept.into_new() {
            entry.keep(tag, value);
        }
        true
    }

    pub(super) fn get(&self, key: &str, now: u64) -> Option<Bytes> {
        let (mut shard, hash) = self.lock(key);
        let bytes = self.live(&mut shard, hash, key, now)?.as_bytes()?;
        Some(Bytes::copy_from_slice(bytes))
    }

    /// The value kept as itself under `key`, if that is what `key` holds.
    pub(super) fn get_value(&self, key: &str, now: u64) -> Option<crate::backend::AnyValue> {
        let (mut shard, hash) = self.lock(key);
        match self.live(&mut shard, hash, key, now)?.other_mut() {
            Some(Other::Typed(value)) => Some(value.clone()),
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
        let (mut shard, hash) = self.lock(key);
        self.insert(
            &mut shard,
            hash,
            Entry::other(key, Other::Typed(value), now, ttl),
        );
    }

    pub(super) fn set(&self, key: &str, value: &[u8], options: SetOptions, now: u64) -> bool {
        let (mut shard, hash) = self.lock(key);
        let allowed = match options.exist {
            Exist::Always => true,
            Exist::IfPresent => self.live(&mut shard, hash, key, now).is_some(),
            Exist::IfAbsent => self.live(&mut shard, hash, key, now).is_none(),
        };
        if allowed {
            self.insert(
                &mut shard,
                hash,
                Entry::bytes(key, value, now, options.expire),
            );
        }
        allowed
    }

    pub(super) fn delete(&self, key: &str, now: u64) -> bool {
        let (mut shard, hash) = self.lock(key);
        self.pop(&mut shard, hash, key).is_some_and(|e| e.live(now))
    }

    pub(super) fn exists(&self, key: &str, now: u64) -> bool {
        let (mut shard, hash) = self.lock(key);
        self.live(&mut shard, hash, key, now).is_some()
    }

    /// Visits every live entry whose key matches `pattern`, shard by shard.
    fn for_each_match(&self, pattern: &str, now: u64, mut f: impl FnMut(&str, &Entry)) {
        for shard in self.shards.iter() {
            for entry in shard.lock().iter() {
                let key = entry.key();
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
            if let Some(b) = e.as_bytes() {
                pairs.push((k.to_owned(), Bytes::copy_from_slice(b)));
            }
        });
        pairs
    }

    /// Removes the entries `doomed` picks, shard by shard; returns them.
    fn remove_where(&self, mut doomed: impl FnMut(&Entry) -> bool) -> Vec<Entry> {
        let mut removed = Vec::new();
        for shard in self.shards.iter() {
            let gone = shard.lock().remove_where(&mut doomed, |key| self.hash(key));
            for entry in &gone {
                self.count_of(entry.key_bytes())
                    .fetch_sub(1, Ordering::Relaxed);
            }
            removed.extend(gone);
        }
        removed
    }

    pub(super) fn delete_match(&self, pattern: &str, now: u64) -> u64 {
        self.remove_where(|e| glob::matches(pattern, e.key()))
            .iter()
            .filter(|e| e.live(now))
            .count() as u64
    }

    pub(super) fn incr(&self, key: &str, by: i64, ttl: Option<Duration>, now: u64) -> Result<i64> {
        let (mut shard, hash) = self.lock(key);
        self.incr_in(&mut shard, hash, key, by, ttl, now)
    }

    /// Applies `writes` holding the locks of every shard they touch (taken
    /// in index order, so two batches cannot deadlock): no reader sees part
    /// of them. As in a Redis `MULTI`, a write that fails (an `incr` of a
    /// value that is not a counter) does not undo the others; its error is
    /// returned after the batch.
    pub(super) fn apply(&self, writes: &[Write<'_>], now: u64) -> Result<()> {
        let of_write: Vec<Slot> = writes.iter().map(|w| self.slot(w.key())).collect();
        let mut indexes: Vec<usize> = of_write.iter().map(|s| s.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut shards: Vec<MutexGuard<'_, Shard>> =
            indexes.iter().map(|i| self.shards[*i].lock()).collect();
        let mut first_error = None;
        for (write, slot) in writes.iter().zip(of_write) {
            let key = write.key();
            let position = indexes
                .binary_search(&slot.index)
                .expect("every touched shard is locked");
            let shard = &mut shards[position];
            let result = match write {
                Write::Set { value, expire, .. } => {
                    let entry = Entry::bytes(key, value, now, *expire);
                    self.insert(shard, slot.hash, entry);
                    Ok(())
                }
                Write::Delete { .. } => {
                    self.pop(shard, slot.hash, key);
                    Ok(())
                }
                Write::Incr { by, .. } => self
                    .incr_in(shard, slot.hash, key, *by, None, now)
                    .map(drop),
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
        hash: u64,
        key: &str,
        by: i64,
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<i64> {
        let Some(entry) = self.live(shard, hash, key, now) else {
            let entry = Entry::bytes(key, by.to_string().as_bytes(), now, ttl);
            self.insert(shard, hash, entry);
            return Ok(by);
        };
        let current = entry
            .as_bytes()
            .and_then(parse_counter)
            .ok_or_else(|| Error::WrongType {
                key: key.to_owned(),
                expected: "an integer",
            })?;
        let new = current.checked_add(by).ok_or_else(|| Error::Overflow {
            key: key.to_owned(),
        })?;
        entry.set_bytes(new.to_string().as_bytes());
        Ok(new)
    }

    pub(super) fn expire(&self, key: &str, ttl: Duration, now: u64) -> bool {
        let (mut shard, hash) = self.lock(key);
        match self.live(&mut shard, hash, key, now) {
            Some(entry) => {
                entry.expires_at = deadline(now, Some(ttl));
                true
            }
            None => false,
        }
    }

    pub(super) fn get_expire(&self, key: &str, now: u64) -> Expiry {
        let (mut shard, hash) = self.lock(key);
        match self.live(&mut shard, hash, key, now) {
            None => Expiry::Missing,
            Some(e) if e.expires_at == NEVER => Expiry::NoExpiry,
            Some(e) => Expiry::Remaining(Duration::from_millis(e.expires_at - now)),
        }
    }

    pub(super) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let pinned = shard.iter().filter(|e| is_pinned(e.key_bytes())).count();
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
                let (mut shard, hash) = self.lock(&record);
                match self
                    .pop(&mut shard, hash, &record)
                    .and_then(Entry::into_other)
                {
                    Some(Other::Set(tags)) => tags,
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
        let (mut shard, hash) = self.lock(key);
        self.live(&mut shard, hash, key, now)
            .map(|e| e.size() as u64)
    }

    pub(super) fn unlock(&self, key: &str, token: &str, now: u64) -> bool {
        let (mut shard, hash) = self.lock(key);
        let holds = self
            .live(&mut shard, hash, key, now)
            .is_some_and(|e| e.as_bytes() == Some(token.as_bytes()));
        if holds {
            self.pop(&mut shard, hash, key);
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
        let (mut shard, hash) = self.lock(key);
        let data = match self.live(&mut shard, hash, key, now) {
            None => &[][..],
            Some(entry) => entry
                .as_bytes()
                .ok_or_else(|| wrong_type(key, "a bit string"))?,
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
        let (mut shard, hash) = self.lock(key);
        let mut data = match self.live(&mut shard, hash, key, now) {
            None => Vec::new(),
            Some(entry) => entry
                .as_bytes()
                .ok_or_else(|| wrong_type(key, "a bit string"))?
                .to_vec(),
        };
        let values = offsets
            .iter()
            .map(|o| bits::incr(&mut data, *o, size, by))
            .collect();
        match self.live(&mut shard, hash, key, now) {
            Some(entry) => entry.set_bytes(&data),
            None => self.insert(&mut shard, hash, Entry::bytes(key, &data, now, None)),
        }
        Ok(values)
    }

    /// The live entry of `key`, or a new one holding `empty` for `ttl`.
    fn live_or_insert<'s>(
        &self,
        shard: &'s mut Shard,
        hash: u64,
        key: &str,
        now: u64,
        empty: impl FnOnce() -> Other,
        ttl: Option<Duration>,
    ) -> &'s mut Entry {
        if self.live(shard, hash, key, now).is_none() {
            self.insert(shard, hash, Entry::other(key, empty(), now, ttl));
        }
        shard
            .get_mut(hash, key.as_bytes())
            .expect("present or just inserted")
    }

    pub(super) fn slice_incr(
        &self,
        key: &str,
        (start, end, max): (u64, u64, u64),
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<u64> {
        let (mut shard, hash) = self.lock(key);
        let entry = self.live_or_insert(
            &mut shard,
            hash,
            key,
            now,
            || Other::Window(Vec::new()),
            ttl,
        );
        let Some(Other::Window(stamps)) = entry.other_mut() else {
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
        let (mut shard, hash) = self.lock(key);
        let entry = self.live_or_insert(
            &mut shard,
            hash,
            key,
            now,
            || Other::Set(HashSet::new()),
            ttl,
        );
        let Some(Other::Set(set)) = entry.other_mut() else {
            return Err(wrong_type(key, "a set"));
        };
        let added = members
            .iter()
            .filter(|m| set.insert((**m).to_owned()))
            .count() as u64;
        // The TTL only grows; members without one make the set persistent.
        entry.expires_at = entry.expires_at.max(deadline(now, ttl));
        Ok(added)
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
        let (mut shard, hash) = self.lock(key);
        let Some(entry) = self.live(&mut shard, hash, key, now) else {
            return Ok(R::default());
        };
        let Some(Other::Set(set)) = entry.other_mut() else {
            return Err(wrong_type(key, "a set"));
        };
        let result = f(set);
        if set.is_empty() {
            self.pop(&mut shard, hash, key);
        }
        Ok(result)
    }

    /// Removes expired entries; returns how many.
    pub(super) fn purge_expired(&self, now: u64) -> usize {
        self.remove_where(|e| !e.live(now)).len()
    }
}

fn wrong_type(key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
        expected,
    }
}
