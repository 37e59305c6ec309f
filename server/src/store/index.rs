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
}
