//! One shard of the memory store: entries in a slab, found through a hash
//! table of slab indexes, evicted by a CLOCK hand.
//!
//! An entry is one allocation holding its key and (for plain values) its
//! bytes, plus a 40-byte slot; the table holds 4-byte indexes. Lookups hash
//! the key once (the caller passes the hash it also chose the shard with).

use std::collections::HashSet;
use std::time::Duration;

use hashbrown::HashTable;

use crate::backend::AnyValue;

/// Milliseconds on the cache's clock meaning "no expiry".
pub(super) const NEVER: u64 = u64::MAX;

/// What an entry holds besides plain bytes.
pub(super) enum Other {
    /// A set of strings (`set_add`).
    Set(HashSet<String>),
    /// The timestamps of a sliding window (`slice_incr`).
    Window(Vec<u64>),
    /// A value kept as itself, never encoded (`Cache::set_value`).
    Typed(AnyValue),
    /// Plain bytes, with a copy decoded from them by the decoder `tag`
    /// (the typed tier: a hit of the same type clones it).
    Decoded { tag: u64, value: AnyValue },
}

/// A key and its value.
pub(super) struct Entry {
    /// The key's bytes, then — unless `other` says otherwise — the value's.
    data: Box<[u8]>,
    key_len: u32,
    /// Read since the CLOCK hand last passed it (it gets a second chance).
    pub(super) referenced: bool,
    pub(super) expires_at: u64,
    other: Option<Box<Other>>,
}

/// The expiry (ms on the cache clock) of an entry stored at `now` for `ttl`.
pub(super) fn deadline(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => NEVER,
        Some(ttl) => now.saturating_add((ttl.as_millis() as u64).max(1)),
    }
}

fn joined(key: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut data = Vec::with_capacity(key.len() + value.len());
    data.extend_from_slice(key);
    data.extend_from_slice(value);
    data.into_boxed_slice()
}

impl Entry {
    /// Plain bytes under `key`.
    pub(super) fn bytes(key: &str, value: &[u8], now: u64, ttl: Option<Duration>) -> Entry {
        Entry {
            data: joined(key.as_bytes(), value),
            key_len: key_len(key),
            referenced: false,
            expires_at: deadline(now, ttl),
            other: None,
        }
    }

    /// Something other than bytes under `key`.
    pub(super) fn other(key: &str, other: Other, now: u64, ttl: Option<Duration>) -> Entry {
        Entry {
            data: key.as_bytes().into(),
            key_len: key_len(key),
            referenced: false,
            expires_at: deadline(now, ttl),
            other: Some(Box::new(other)),
        }
    }

    #[inline]
    pub(super) fn key_bytes(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    /// The key (always UTF-8: it was built from a `&str`).
    pub(super) fn key(&self) -> &str {
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    #[inline]
    pub(super) fn live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    /// The plain bytes held, if that is what the entry holds.
    #[inline]
    pub(super) fn as_bytes(&self) -> Option<&[u8]> {
        match self.other.as_deref() {
            None | Some(Other::Decoded { .. }) => Some(&self.data[self.key_len as usize..]),
            Some(_) => None,
        }
    }

    /// Replaces the value with plain bytes (the expiry stays).
    pub(super) fn set_bytes(&mut self, value: &[u8]) {
        self.data = joined(self.key_bytes(), value);
        self.other = None;
    }

    /// What the entry holds besides plain bytes.
    pub(super) fn other_mut(&mut self) -> Option<&mut Other> {
        self.other.as_deref_mut()
    }

    pub(super) fn into_other(self) -> Option<Other> {
        self.other.map(|o| *o)
    }

    /// The plain bytes (empty if the entry holds something else) and the
    /// copy decoded from them by `tag`, if one is kept.
    #[inline]
    pub(super) fn bytes_and_decoded(&self, tag: u64) -> (&[u8], Option<&AnyValue>) {
        let bytes = self.as_bytes().unwrap_or_default();
        match self.other.as_deref() {
            Some(Other::Decoded { tag: kept, value }) if *kept == tag => (bytes, Some(value)),
            _ => (bytes, None),
        }
    }

    /// Keeps `value`, decoded by `tag` from this entry's bytes, beside them.
    #[inline]
    pub(super) fn keep(&mut self, tag: u64, value: AnyValue) {
        if self.as_bytes().is_some() {
            self.other = Some(Box::new(Other::Decoded { tag, value }));
        }
    }

    /// Bytes held: key, value and the slot.
    pub(super) fn size(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.data.len()
            + match self.other.as_deref() {
                None => 0,
                Some(Other::Set(s)) => s.iter().map(|m| m.len() + 24).sum(),
                Some(Other::Window(w)) => w.len() * 8,
                // Its size is the value's own business; count a pointer.
                Some(Other::Typed(_) | Other::Decoded { .. }) => std::mem::size_of::<AnyValue>(),
            }
    }
}

fn key_len(key: &str) -> u32 {
    // Keys are bounded far below 4 GiB by every caller; saturate anyway.
    u32::try_from(key.len()).unwrap_or(u32::MAX)
}

/// Entries of one shard.
#[derive(Default)]
pub(super) struct Shard {
    /// Indexes into `slots`.
    table: HashTable<u32>,
    slots: Vec<Option<Entry>>,
    /// Empty slots, reused before the slab grows.
    free: Vec<u32>,
    /// The CLOCK hand: the next slot eviction looks at.
    hand: usize,
}

impl Shard {
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The slot of `key` (whose hash is `hash`).
    #[inline]
    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| {
                slots[i as usize]
                    .as_ref()
                    .is_some_and(|e| e.key_bytes() == key)
            })
            .map(|&i| i as usize)
    }

    /// The entry in slot `index` (from [`Shard::find`]).
    #[inline]
    pub(super) fn at(&mut self, index: usize) -> Option<&mut Entry> {
        self.slots.get_mut(index)?.as_mut()
    }

    #[inline]
    pub(super) fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Entry> {
        let i = self.find(hash, key)?;
        self.at(i)
    }

    /// Takes the entry out of slot `index`, whose key hashes to `hash`, and
    /// frees the slot.
    pub(super) fn unlink(&mut self, index: usize, hash: u64) -> Option<Entry> {
        if let Ok(found) = self.table.find_entry(hash, |&i| i as usize == index) {
            found.remove();
        }
        let entry = self.slots.get_mut(index)?.take()?;
        self.free.push(index as u32);
        Some(entry)
    }

    /// Stores `entry` (whose key must be absent) with the hash of its key;
    /// `rehash` gives the hash of any key when the table grows.
    ///
    /// The slot freed last is reused first: after an eviction that is the
    /// one the hand just left, so the new entry is the last it comes back to.
    pub(super) fn insert(&mut self, hash: u64, entry: Entry, rehash: impl Fn(&[u8]) -> u64) {
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(entry);
                index
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slots = &self.slots;
        self.table.insert_unique(hash, index, |&i| {
            slots[i as usize]
                .as_ref()
                .map_or(0, |e| rehash(e.key_bytes()))
        });
    }

    /// Removes an entry chosen by the CLOCK hand: a referenced entry loses
    /// its mark and is passed over once, entries `pinned` says keep are
    /// passed over. `None` if every entry is pinned.
    pub(super) fn evict(
        &mut self,
        pinned: impl Fn(&[u8]) -> bool,
        hash: impl Fn(&[u8]) -> u64,
    ) -> Option<Entry> {
        let slots = self.slots.len();
        // Two rounds clear every mark; a third finds nothing only if all
        // are pinned.
        for _ in 0..slots.saturating_mul(2).saturating_add(1) {
            if self.hand >= slots {
                self.hand = 0;
            }
            let index = self.hand;
            self.hand += 1;
            let Some(entry) = self.slots[index].as_mut() else {
                continue;
            };
            if pinned(entry.key_bytes()) || std::mem::take(&mut entry.referenced) {
                continue;
            }
            let key_hash = hash(entry.key_bytes());
            return self.unlink(index, key_hash);
        }
        None
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// Removes every entry `doomed` picks; returns them.
    pub(super) fn remove_where(
        &mut self,
        mut doomed: impl FnMut(&Entry) -> bool,
        hash: impl Fn(&[u8]) -> u64,
    ) -> Vec<Entry> {
        let mut removed = Vec::new();
        for index in 0..self.slots.len() {
            let Some(entry) = self.slots[index].as_ref().filter(|e| doomed(e)) else {
                continue;
            };
            let key_hash = hash(entry.key_bytes());
            removed.extend(self.unlink(index, key_hash));
        }
        removed
    }

    pub(super) fn clear(&mut self) {
        *self = Shard::default();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    fn hash(key: &[u8]) -> u64 {
        // Fixed keys, so a failure replays.
        BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
    }

    fn put(shard: &mut Shard, key: &str) {
        shard.insert(
            hash(key.as_bytes()),
            Entry::bytes(key, key.as_bytes(), 0, None),
            hash,
        );
    }

    fn has(shard: &Shard, key: &str) -> bool {
        shard.find(hash(key.as_bytes()), key.as_bytes()).is_some()
    }

    fn lookup<'s>(shard: &'s mut Shard, key: &str) -> Option<&'s mut Entry> {
        shard.get_mut(hash(key.as_bytes()), key.as_bytes())
    }

    fn take(shard: &mut Shard, key: &str) -> Option<Entry> {
        let key_hash = hash(key.as_bytes());
        let index = shard.find(key_hash, key.as_bytes())?;
        shard.unlink(index, key_hash)
    }

    #[test]
    fn every_entry_is_found_after_the_table_grows_and_slots_are_reused() {
        let mut shard = Shard::default();
        for i in 0..5000 {
            put(&mut shard, &format!("k{i}"));
        }
        for i in (0..5000).step_by(3) {
            let key = format!("k{i}");
            let entry = take(&mut shard, &key).expect("present");
            assert_eq!(entry.key(), key);
        }
        for i in 5000..6000 {
            put(&mut shard, &format!("k{i}"));
        }
        for i in 0..6000 {
            let key = format!("k{i}");
            let expected = i >= 5000 || i % 3 != 0;
            assert_eq!(has(&shard, &key), expected, "{key}");
            if expected {
                let entry = lookup(&mut shard, &key).expect("present");
                assert_eq!(entry.as_bytes(), Some(key.as_bytes()));
            }
        }
        assert_eq!(shard.len(), 6000 - 1667);
        assert_eq!(shard.iter().count(), shard.len());
    }

    #[test]
    fn the_hand_evicts_the_oldest_unread_entry_and_a_new_one_last() {
        let mut shard = Shard::default();
        for key in ["a", "b", "c"] {
            put(&mut shard, key);
        }
        shard.get_mut(hash(b"a"), b"a").expect("a").referenced = true;
        let evicted = shard.evict(|_| false, hash).expect("one");
        assert_eq!(evicted.key(), "b", "a was read: second chance");
        put(&mut shard, "d");
        // c, then a (its mark cleared), then d: the new entry comes last.
        let order: Vec<String> = (0..3)
            .map(|_| shard.evict(|_| false, hash).expect("one").key().to_owned())
            .collect();
        assert_eq!(order, ["c", "a", "d"]);
        assert!(shard.evict(|_| false, hash).is_none());
    }

    #[test]
    fn pinned_entries_are_never_evicted() {
        let mut shard = Shard::default();
        put(&mut shard, "pinned");
        put(&mut shard, "plain");
        let pinned = |key: &[u8]| key == b"pinned";
        assert_eq!(shard.evict(pinned, hash).expect("one").key(), "plain");
        assert!(shard.evict(pinned, hash).is_none());
        assert!(has(&shard, "pinned"));
    }

    #[test]
    fn a_decoded_copy_goes_with_any_change_of_the_bytes() {
        let mut entry = Entry::bytes("k", b"v1", 0, None);
        entry.keep(9, std::sync::Arc::new(1u32));
        assert_eq!(
            entry.as_bytes(),
            Some(&b"v1"[..]),
            "bytes stay beside the copy"
        );
        assert!(
            entry.bytes_and_decoded(8).1.is_none(),
            "another decoder's copy"
        );
        assert!(entry.bytes_and_decoded(9).1.is_some());
        entry.set_bytes(b"v2");
        assert!(
            entry.bytes_and_decoded(9).1.is_none(),
            "the copy of v1 is gone"
        );
        assert_eq!(entry.key(), "k");
        let mut set = Entry::other("s", Other::Window(Vec::new()), 0, None);
        set.keep(9, std::sync::Arc::new(1u32));
        assert!(
            set.bytes_and_decoded(9).1.is_none(),
            "only bytes have decoded copies"
        );
    }
}
