//! A hash map with an entry per customer (or per wallet) that splits by hash into `SHARDS`
//! maps once it holds `SPLIT_AT` entries: the names of customers with idempotency keys kept,
//! their usage event ids, and the wallets.
//!
//! In one map every doubling moves all of its entries in one insert, while the partition
//! waits: at 917,504 customers the two commands that crossed these maps' doublings took 118
//! and 180 ms on the benchmark VM (`examples/ledger_scale`, BENCHMARKS.md, session 20), and
//! each doubling takes twice as long as the one before. Split, each map doubles on its own
//! and at 1/64 of the size (as a customer's own keys do, `split.rs`).
//!
//! Encoded exactly as one map (its entries, in no particular order).

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use hashbrown::{Equivalent, HashMap};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

type RandomState = foldhash::quality::RandomState;

/// Maps a large index is split into.
const SHARDS: usize = 64;
/// Entries at which one map becomes `SHARDS` (a small index keeps one).
const SPLIT_AT: usize = 4096;

#[derive(Clone)]
pub(crate) struct Sharded<K, V> {
    /// One map, or `SHARDS` chosen by `shard`.
    maps: Vec<HashMap<K, V, RandomState>>,
    /// Picks a key's map (independent of the maps' own hashers).
    picker: RandomState,
    len: usize,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            maps: Vec::new(),
            picker: RandomState::default(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    /// Room for `entries` (split from the start if there are `SPLIT_AT` or more).
    pub(crate) fn with_capacity(entries: usize) -> Self {
        let maps = if entries >= SPLIT_AT {
            (0..SHARDS)
                .map(|_| HashMap::with_capacity_and_hasher(entries / SHARDS, Default::default()))
                .collect()
        } else {
            vec![HashMap::with_capacity_and_hasher(
                entries,
                Default::default(),
            )]
        };
        Sharded {
            maps,
            picker: RandomState::default(),
            len: 0,
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        if self.maps.len() == SHARDS {
            (self.picker.hash_one(key) >> 32) as usize & (SHARDS - 1)
        } else {
            0
        }
    }

    pub(crate) fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<&V> {
        self.maps.get(self.shard(key))?.get(key)
    }

    pub(crate) fn get_key_value<Q: Hash + Equivalent<K> + ?Sized>(
        &self,
        key: &Q,
    ) -> Option<(&K, &V)> {
        self.maps.get(self.shard(key))?.get_key_value(key)
    }

    pub(crate) fn get_mut<Q: Hash + Equivalent<K> + ?Sized>(&mut self, key: &Q) -> Option<&mut V> {
        let shard = self.shard(key);
        self.maps.get_mut(shard)?.get_mut(key)
    }

    pub(crate) fn get_key_value_mut<Q: Hash + Equivalent<K> + ?Sized>(
        &mut self,
        key: &Q,
    ) -> Option<(&K, &mut V)> {
        let shard = self.shard(key);
        self.maps.get_mut(shard)?.get_key_value_mut(key)
    }

    /// Splits one map that has reached `SPLIT_AT` (before an insert), and makes the first.
    fn make_room(&mut self) {
        if self.maps.len() == 1 && self.len >= SPLIT_AT {
            let one = self.maps.pop().unwrap_or_default();
            let picker = self.picker.clone();
            *self = Sharded::with_capacity(self.len);
            self.picker = picker;
            for (key, value) in one {
                let shard = self.shard(&key);
                self.len += usize::from(self.maps[shard].insert(key, value).is_none());
            }
        }
        if self.maps.is_empty() {
            self.maps.push(HashMap::default());
        }
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.make_room();
        let shard = self.shard(&key);
        let old = self.maps[shard].insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    /// The entry of `key`, added with `V::default()` if there is none.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.make_room();
        let shard = self.shard(&key);
        let Sharded { maps, len, .. } = self;
        match maps[shard].entry(key) {
            hashbrown::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            hashbrown::hash_map::Entry::Vacant(entry) => {
                *len += 1;
                entry.insert(V::default())
            }
        }
    }

    pub(crate) fn remove<Q: Hash + Equivalent<K> + ?Sized>(&mut self, key: &Q) -> Option<V> {
        let shard = self.shard(key);
        let removed = self.maps.get_mut(shard)?.remove(key);
        self.len -= usize::from(removed.is_some());
        removed
    }
}

impl<K, V> Sharded<K, V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.maps.iter().flat_map(|m| m.iter())
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.maps.iter().flat_map(|m| m.values())
    }

    #[cfg(test)]
    fn is_split(&self) -> bool {
        self.maps.len() == SHARDS
    }
}

impl<K, V> IntoIterator for Sharded<K, V> {
    type Item = (K, V);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<HashMap<K, V, RandomState>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.maps.into_iter().flatten()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Sharded<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for Sharded<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, K: Deserialize<'de> + Hash + Eq, V: Deserialize<'de>> Deserialize<'de> for Sharded<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de> + Hash + Eq, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
            type Value = Sharded<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
                let mut sharded = Sharded::with_capacity(entries.size_hint().unwrap_or(0));
                while let Some((key, value)) = entries.next_entry()? {
                    sharded.insert(key, value);
                }
                Ok(sharded)
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn behaves_and_encodes_as_one_map_across_the_split() {
        for n in [0u32, 1, 4095, 4096, 4097, 20_000] {
            let mut sharded: Sharded<String, u32> = Sharded::default();
            let mut model = BTreeMap::new();
            for i in 0..n {
                assert_eq!(sharded.insert(format!("c{i}"), i), None);
                model.insert(format!("c{i}"), i);
            }
            assert_eq!(sharded.is_split(), n as usize > SPLIT_AT, "n {n}");
            // A second insert of a key replaces its value and is not counted twice.
            if n > 0 {
                assert_eq!(sharded.insert("c0".into(), 7), Some(0));
                model.insert("c0".into(), 7);
                *sharded.get_mut("c0").unwrap() = 0;
                model.insert("c0".into(), 0);
            }
            assert_eq!(sharded.len(), model.len());
            for (key, value) in &model {
                assert_eq!(sharded.get(key.as_str()), Some(value), "n {n}: {key}");
            }
            let listed: BTreeMap<String, u32> =
                sharded.iter().map(|(k, v)| (k.clone(), *v)).collect();
            assert_eq!(listed, model);
            // Encoded as a map of the same entries, and read back from one.
            let bytes = postcard::to_allocvec(&sharded).unwrap();
            let as_map: BTreeMap<String, u32> = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(as_map, model);
            let back: Sharded<String, u32> =
                postcard::from_bytes(&postcard::to_allocvec(&model).unwrap()).unwrap();
            assert_eq!(back.len(), model.len());
            assert_eq!(back.is_split(), model.len() >= SPLIT_AT);
            assert!(model.iter().all(|(k, v)| back.get(k.as_str()) == Some(v)));
            // Removing every entry leaves nothing counted.
            for key in model.keys() {
                assert!(sharded.remove(key.as_str()).is_some());
            }
            assert_eq!((sharded.len(), sharded.get("c0")), (0, None));
        }
    }
}
