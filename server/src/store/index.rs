//! A hash map split into shards, so that growing it never rehashes everything at once.
//!
//! A single `HashMap` of a million entries doubles by rehashing all of them while its
//! tenant's lock is held — a stall of tens of milliseconds for every request of that tenant.
//! Sixty-four shards grow one at a time, each a sixty-fourth of the size, so the worst pause
//! shrinks by the same factor while lookups stay one hash and one probe.
//!
//! The shards are allocated on the first insert: an empty map (a tenant that has stored
//! nothing yet) costs a few words, not sixty-four empty tables.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

const SHARDS: usize = 64;

/// A `HashMap` in [`SHARDS`] pieces, chosen by the key's hash.
#[derive(Debug, Clone)]
pub struct ShardedMap<K, V> {
    hasher: RandomState,
    shards: Vec<HashMap<K, V>>,
    len: usize,
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            hasher: RandomState::new(),
            shards: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards.get(self.shard(key))?.get(key)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key);
        self.shards.get_mut(shard)?.get_mut(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| HashMap::new()).collect();
        }
        let shard = self.shard(&key);
        let previous = self.shards[shard].insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Inserts `value` at `key`, replacing what was there, and gives it back to be used.
    pub fn put(&mut self, key: K, value: V) -> &mut V {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| HashMap::new()).collect();
        }
        let shard = self.shard(&key);
        match self.shards[shard].entry(key) {
            Entry::Occupied(mut entry) => {
                entry.insert(value);
                entry.into_mut()
            }
            Entry::Vacant(entry) => {
                self.len += 1;
                entry.insert(value)
            }
        }
    }

    /// Room for `additional` more entries spread evenly, so a map filled in bulk (a state
    /// file read back) does not grow shard by shard.
    pub fn reserve(&mut self, additional: usize) {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| HashMap::new()).collect();
        }
        // Keys spread evenly over the shards; an eighth more leaves room for the unevenness.
        let each = additional.div_ceil(SHARDS) + additional.div_ceil(SHARDS * 8);
        for shard in &mut self.shards {
            shard.reserve(each);
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key);
        let removed = self.shards.get_mut(shard)?.remove(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.shards.iter().flat_map(HashMap::keys)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(HashMap::iter)
    }

    pub fn clear(&mut self) {
        self.shards = Vec::new();
        self.len = 0;
    }
}

/// An index of positions in a list, hashed by a key each element holds: the key is not
/// stored again (a user's `referenceId` lives in the user, not also in the index). An entry
/// is the 4-byte position and 32 bits of its key's hash. In [`SHARDS`] pieces, as
/// [`ShardedMap`] is, so a doubling moves a sixty-fourth of the entries.
///
/// The hash is kept so that a shard grows without reading an element: rehashing by the key
/// read each element back (the store's chunks, long out of the caches) and hashed its key
/// again, about four last-level misses and 800 instructions of every create while a
/// partner grew (`docs/benchmarks.md`). It costs 4 bytes an entry. A lookup compares the
/// kept hash before it reads an element, so a probe that lands on another key's entry
/// reads nothing.
///
/// Callers pass how to read an element's key (`key_of`); the index only ever hashes keys
/// and compares them, so it cannot hold a position whose element's key changed without
/// being told (keys here never change once stored).
///
/// Keys are hashed by `S`: SipHash (the default) where a client picks a key, as it picks a
/// `referenceId`; where linkbox makes every key, as it makes a link's id, the faster
/// [`foldhash::fast::RandomState`], also seeded per index ([`ServerKeys`]).
#[derive(Debug, Clone, Default)]
pub struct PositionIndex<S = RandomState> {
    hasher: S,
    shards: Vec<hashbrown::HashTable<Slot>>,
}

/// The hasher of maps whose keys no client chooses: ids linkbox draws from its random source
/// (a link's, a delivery's) and M2M partner slugs (in open mode a hash of the key, or else
/// the operator's config), so no client can make keys that collide: `foldhash`,
/// seeded per map, hashes such a key in a few dozen instructions where SipHash takes
/// about 150. A map keyed by what a client sends (an API key, a `referenceId`) keeps
/// SipHash, which is built to stand up to chosen keys.
pub type ServerKeys = foldhash::fast::RandomState;

/// A position and the 32 bits of its key's hash the table is built on ([`table_hash`]).
#[derive(Debug, Clone, Copy)]
struct Slot {
    position: u32,
    hash: u32,
}

/// The 64-bit hash hashbrown reads, made from a slot's 32 bits: multiplying by an odd
/// constant spreads them over every bit (hashbrown takes a bucket from the low bits and a
/// tag from the top seven) and maps distinct values to distinct values.
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl<S: BuildHasher> PositionIndex<S> {
    /// The shards, allocated on first use as [`ShardedMap`]'s are.
    fn shards_mut(&mut self) -> &mut [hashbrown::HashTable<Slot>] {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| hashbrown::HashTable::new()).collect();
        }
        &mut self.shards
    }

    /// 32 bits of `key`'s keyed hash (seeded per index).
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u32 {
        // The low half: truncating is the point.
        self.hasher.hash_one(key) as u32
    }

    /// The shard of a hash: bits hashbrown does not read for tables under 2^40 buckets
    /// (it takes a bucket from the low bits and a tag from the top seven).
    fn shard(hash: u64) -> usize {
        ((hash >> 40) as usize) % SHARDS
    }

    /// The position whose element's key is `key`.
    pub fn get<Q, K>(&self, key: &Q, key_of: impl Fn(u32) -> K) -> Option<u32>
    where
        Q: Hash + Eq + ?Sized,
        K: std::borrow::Borrow<Q>,
    {
        let hash = self.hash(key);
        let spread = table_hash(hash);
        self.shards
            .get(Self::shard(spread))?
            .find(spread, |slot| {
                slot.hash == hash && key_of(slot.position).borrow() == key
            })
            .map(|slot| slot.position)
    }

    /// Indexes `position` under `key` (its element's key), unless a position is already
    /// indexed under it: then that one is kept and returned.
    pub fn insert<Q, K>(&mut self, key: &Q, position: u32, key_of: impl Fn(u32) -> K) -> Option<u32>
    where
        Q: Hash + Eq + ?Sized,
        K: std::borrow::Borrow<Q>,
    {
        let hash = self.hash(key);
        let spread = table_hash(hash);
        let shard = &mut self.shards_mut()[Self::shard(spread)];
        if let Some(kept) = shard.find(spread, |slot| {
            slot.hash == hash && key_of(slot.position).borrow() == key
        }) {
            return Some(kept.position);
        }
        shard.insert_unique(spread, Slot { position, hash }, |slot| {
            table_hash(slot.hash)
        });
        None
    }

    /// Room for `additional` more entries spread evenly ([`ShardedMap::reserve`]).
    pub fn reserve(&mut self, additional: usize) {
        let each = additional.div_ceil(SHARDS) + additional.div_ceil(SHARDS * 8);
        for shard in self.shards_mut() {
            shard.reserve(each, |slot| table_hash(slot.hash));
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(hashbrown::HashTable::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(hashbrown::HashTable::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map() {
        let mut map: ShardedMap<Box<str>, u32> = ShardedMap::default();
        assert!(map.is_empty());
        for i in 0..1000u32 {
            assert_eq!(map.insert(format!("k{i}").into(), i), None);
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(map.get("k7"), Some(&7));
        assert_eq!(map.insert("k7".into(), 70), Some(7));
        assert_eq!(map.len(), 1000);
        if let Some(value) = map.get_mut("k8") {
            *value = 80;
        }
        assert_eq!(map.get("k8"), Some(&80));
        assert_eq!(map.remove("k9"), Some(9));
        assert!(!map.contains_key("k9"));
        assert_eq!(map.len(), 999);
        assert_eq!(map.values().count(), 999);
        assert_eq!(map.iter().count(), 999);
        assert_eq!(map.keys().filter(|key| key.starts_with("k99")).count(), 11);
        *map.put("k9".into(), 9) += 1;
        assert_eq!((map.get("k9"), map.len()), (Some(&10), 1000));
        *map.put("k9".into(), 90) += 1;
        assert_eq!((map.get("k9"), map.len()), (Some(&91), 1000));
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.get("k1"), None);
    }

    #[test]
    fn an_empty_map_allocates_no_shards_until_its_first_insert() {
        let mut map: ShardedMap<u64, ()> = ShardedMap::default();
        assert!(map.shards.is_empty());
        assert_eq!(map.get(&1), None);
        assert_eq!(map.remove(&1), None);
        map.insert(1, ());
        assert_eq!(map.shards.len(), SHARDS);
        map.clear();
        assert!(map.shards.is_empty());
    }

    #[test]
    fn a_reserved_map_does_not_grow_while_filled_to_what_was_reserved() {
        let mut map: ShardedMap<u64, ()> = ShardedMap::default();
        map.reserve(10_000);
        let capacities: Vec<usize> = map.shards.iter().map(HashMap::capacity).collect();
        assert!(
            capacities
                .iter()
                .all(|&capacity| capacity >= 10_000 / SHARDS)
        );
        for i in 0..10_000u64 {
            map.insert(i, ());
        }
        let after: Vec<usize> = map.shards.iter().map(HashMap::capacity).collect();
        assert_eq!(after, capacities);
    }

    #[test]
    fn spreads_keys_over_every_shard() {
        let mut map: ShardedMap<u64, ()> = ShardedMap::default();
        for i in 0..10_000u64 {
            map.insert(i, ());
        }
        assert!(map.shards.iter().all(|shard| !shard.is_empty()));
    }

    /// Elements holding their own keys, as users hold their `referenceId`s.
    fn names(count: u32) -> Vec<Box<str>> {
        (0..count).map(|i| format!("ref-{i}").into()).collect()
    }

    #[test]
    fn a_position_index_finds_each_element_by_the_key_it_holds() {
        finds_each_element::<RandomState>();
        finds_each_element::<ServerKeys>();
    }

    fn finds_each_element<S: BuildHasher + Default>() {
        let elements = names(5_000);
        let key_of = |i: u32| &*elements[i as usize];
        let mut index = PositionIndex::<S>::default();
        assert!(index.is_empty());
        assert_eq!(index.get("ref-1", key_of), None);
        for (i, name) in elements.iter().enumerate() {
            assert_eq!(index.insert(&**name, i as u32, key_of), None);
        }
        assert_eq!(index.len(), 5_000);
        for (i, name) in elements.iter().enumerate() {
            assert_eq!(index.get(&**name, key_of), Some(i as u32));
        }
        assert_eq!(index.get("ref-5000", key_of), None);
        assert_eq!(
            index.insert("ref-7", 4_999, key_of),
            Some(7),
            "a key already indexed keeps its position"
        );
        assert_eq!((index.get("ref-7", key_of), index.len()), (Some(7), 5_000));
        assert!(index.shards.iter().all(|shard| !shard.is_empty()));
    }

    #[test]
    fn a_position_index_grows_without_reading_an_element() {
        let elements = names(20_000);
        let reads = std::cell::Cell::new(0usize);
        let key_of = |i: u32| {
            reads.set(reads.get() + 1);
            &*elements[i as usize]
        };
        let mut index: PositionIndex = PositionIndex::default();
        for (i, name) in elements.iter().enumerate() {
            index.insert(&**name, i as u32, key_of);
        }
        // Each shard doubled many times on the way; only a rare 32-bit hash match among
        // different keys reads an element, never a rehash.
        assert!(
            reads.get() < 100,
            "{} reads for 20,000 inserts",
            reads.get()
        );
        let before = reads.get();
        for (i, name) in elements.iter().enumerate() {
            assert_eq!(index.get(&**name, key_of), Some(i as u32));
        }
        // A hit reads its own element (and, rarely, another with the same 32 bits).
        assert!(
            (20_000..20_100).contains(&(reads.get() - before)),
            "{} reads for 20,000 hits",
            reads.get() - before
        );
    }

    #[test]
    fn a_reserved_position_index_does_not_grow_while_filled_to_what_was_reserved() {
        let elements: Vec<u64> = (0..10_000).map(|i| i * 7_919).collect();
        let key_of = |i: u32| elements[i as usize];
        let mut index = PositionIndex::<ServerKeys>::default();
        index.reserve(elements.len());
        let capacities: Vec<usize> = index
            .shards
            .iter()
            .map(hashbrown::HashTable::capacity)
            .collect();
        for (i, key) in elements.iter().enumerate() {
            index.insert(key, i as u32, key_of);
        }
        let after: Vec<usize> = index
            .shards
            .iter()
            .map(hashbrown::HashTable::capacity)
            .collect();
        assert_eq!(after, capacities);
        assert!(
            elements
                .iter()
                .enumerate()
                .all(|(i, key)| index.get(key, key_of) == Some(i as u32))
        );
    }
}
