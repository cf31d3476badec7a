//! The index of idempotency keys: customer, then key, to the number of the stored answer.
//!
//! A key's hash is computed once per request and kept beside it, so a lookup, an insert and
//! every rehash as the table grows (a busy customer has a day of keys) never hash the key's
//! text again. Serialized exactly like a map of maps of strings: the hashes are recomputed
//! on load, with a seed chosen per process, so a client cannot aim keys at one bucket.
//!
//! A customer's keys are one table until it holds `SPLIT_AT`, then `SHARDS` tables chosen by
//! hash, as a customer's usage event ids are (`event_ids`). In one table every doubling
//! moves all of the customer's keys in one insert, while the writer holds the ledger; with
//! 100 customers calling in turn, all 100 tables doubled within the same batch or two, and
//! the partition stalled for 13, 25 and 42 ms at 3,584, 7,168 and 14,336 keys a customer
//! (BENCHMARKS.md, session 19), twice as long at each doubling after. Split, each table
//! doubles on its own, at a different insert from its neighbours, and at 1/64 of the size.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use hashbrown::{Equivalent, HashMap};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Tables a customer's keys are split into once there are `SPLIT_AT` of them.
const SHARDS: usize = 64;
/// Keys at which one table becomes `SHARDS`: small, because the split itself moves every
/// key, and customers calling in turn split in the same batch (100 customers at 1,024 keys
/// each: about 100,000 moves). A customer with fewer keys keeps one table: 64 near-empty
/// tables would cost more than its keys.
const SPLIT_AT: usize = 1024;
const _: () = assert!(SHARDS.is_power_of_two() && SPLIT_AT >= SHARDS);
/// Most keys a decoded customer's tables are sized for up front (about 32 MB of them); a
/// longer list grows them as it is read.
const PRESIZE_AT_MOST: usize = 1 << 20;

/// One table of keys; its hasher passes the stored hash through.
type Table = HashMap<HashedKey, u64, BuildHasherDefault<StoredHash>>;

/// The table of a hash among `SHARDS`: bits 32 to 37, which a table's own probing leaves
/// alone (it picks a bucket from the low bits of tables under 2^32 buckets and tags it
/// with the top seven), so each shard still spreads its keys over all of its buckets.
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (SHARDS - 1)
}

/// Keys of one customer: the key (with its hash) to the number of the stored answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomerKeys {
    /// None, one, or `SHARDS` tables chosen by `shard_of`.
    tables: Vec<Table>,
    len: usize,
}

impl CustomerKeys {
    /// Room for `keys` keys (split from the start if there are `SPLIT_AT` or more).
    pub(crate) fn with_capacity(keys: usize) -> Self {
        let tables = if keys >= SPLIT_AT {
            (0..SHARDS)
                .map(|_| Table::with_capacity_and_hasher(keys / SHARDS, Default::default()))
                .collect()
        } else {
            vec![Table::with_capacity_and_hasher(keys, Default::default())]
        };
        CustomerKeys { tables, len: 0 }
    }

    fn index(&self, hash: u64) -> usize {
        if self.tables.len() == SHARDS {
            shard_of(hash)
        } else {
            0
        }
    }

    pub(crate) fn get(&self, probe: &Probe<'_>) -> Option<&u64> {
        self.tables.get(self.index(probe.hash))?.get(probe)
    }

    /// Stores `key`'s answer number (replacing any it had).
    pub(crate) fn insert(&mut self, key: HashedKey, number: u64) {
        if self.tables.len() == 1 && self.len >= SPLIT_AT {
            let one = self.tables.pop().unwrap_or_default();
            self.tables = Self::with_capacity(one.len()).tables;
            for (moved, number) in one {
                self.tables[shard_of(moved.hash)].insert(moved, number);
            }
        }
        if self.tables.is_empty() {
            self.tables.push(Table::default());
        }
        let index = self.index(key.hash);
        if self.tables[index].insert(key, number).is_none() {
            self.len += 1;
        }
    }

    /// Forgets a key; its answer number, if it was there.
    pub(crate) fn remove(&mut self, probe: &Probe<'_>) -> Option<u64> {
        let index = self.index(probe.hash);
        let removed = self.tables.get_mut(index)?.remove(probe);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HashedKey, &u64)> {
        self.tables.iter().flatten()
    }
}

impl IntoIterator for CustomerKeys {
    type Item = (HashedKey, u64);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Table>>;

    fn into_iter(self) -> Self::IntoIter {
        self.tables.into_iter().flatten()
    }
}

impl Serialize for CustomerKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (key, number) in self.iter() {
            map.serialize_entry(key, number)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for CustomerKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = CustomerKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of idempotency keys to answer numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CustomerKeys, A::Error> {
                // The length the encoding states, but not a capacity it could inflate.
                let stated = map.size_hint().unwrap_or(0).min(PRESIZE_AT_MOST);
                let mut keys = CustomerKeys::with_capacity(stated);
                while let Some((key, number)) = map.next_entry::<HashedKey, u64>()? {
                    keys.insert(key, number);
                }
                Ok(keys)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// Every customer's keys.
pub(crate) type KeyIndex = HashMap<Arc<str>, CustomerKeys, foldhash::quality::RandomState>;

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        foldhash::quality::RandomState::default().hash_one(0x7011_6a7e_u64)
    })
}

/// The hash of a key's text in this process.
pub(crate) fn hash_key(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), seed())
}

/// A key with its hash.
#[derive(Debug, Clone)]
pub(crate) struct HashedKey {
    hash: u64,
    pub(crate) text: Arc<str>,
}

impl HashedKey {
    pub(crate) fn new(text: Arc<str>, hash: u64) -> Self {
        HashedKey { hash, text }
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for HashedKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for HashedKey {}

impl Hash for HashedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A key being looked up, not yet stored.
pub(crate) struct Probe<'a> {
    pub(crate) hash: u64,
    pub(crate) text: &'a str,
}

impl Hash for Probe<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<HashedKey> for Probe<'_> {
    fn equivalent(&self, key: &HashedKey) -> bool {
        self.hash == key.hash && self.text == &*key.text
    }
}

impl Serialize for HashedKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HashedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: Arc<str> = Arc::from(String::deserialize(deserializer)?);
        let hash = hash_key(&text);
        Ok(HashedKey { hash, text })
    }
}

/// The hasher of a table whose keys bring their own hash: it passes the `u64` through.
#[derive(Default)]
pub(crate) struct StoredHash(u64);

impl Hasher for StoredHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called (by `HashedKey` and `Probe`); fold anything else
        // in rather than lose it.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_find_stored_keys_and_only_them() {
        let mut keys = CustomerKeys::default();
        for i in 0..10_000u64 {
            let text: Arc<str> = Arc::from(format!("reserve-{i}").as_str());
            let hash = hash_key(&text);
            keys.insert(HashedKey::new(text, hash), i);
        }
        for i in 0..10_000u64 {
            let text = format!("reserve-{i}");
            let probe = Probe {
                hash: hash_key(&text),
                text: &text,
            };
            assert_eq!(keys.get(&probe), Some(&i));
        }
        let missing = "reserve-10000";
        let probe = Probe {
            hash: hash_key(missing),
            text: missing,
        };
        assert_eq!(keys.get(&probe), None);
        // Same hash, other text: not found.
        let impostor = Probe {
            hash: hash_key("reserve-5"),
            text: "reserve-6",
        };
        assert_eq!(keys.get(&impostor), None);
    }

    fn hashed(text: &str) -> HashedKey {
        HashedKey::new(Arc::from(text), hash_key(text))
    }

    fn probe(text: &str) -> Probe<'_> {
        Probe {
            hash: hash_key(text),
            text,
        }
    }

    /// Inserts, removes and looks up across the split, against a `HashMap`; the encoding
    /// decodes as a map of strings with the same keys and numbers, and back.
    #[test]
    fn behaves_and_encodes_like_a_map_across_the_split() {
        let mut keys = CustomerKeys::default();
        let mut model = std::collections::HashMap::new();
        assert!(keys.is_empty());
        for i in 0..3 * SPLIT_AT as u64 {
            let text = format!("k-{}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 50_000);
            keys.insert(hashed(&text), i);
            model.insert(text, i);
            if i % 3 == 0 {
                let gone = format!("k-{}", (i * 7) % 50_000);
                assert_eq!(keys.remove(&probe(&gone)), model.remove(&gone), "{gone}");
            }
        }
        assert_eq!(
            keys.tables.len(),
            SHARDS,
            "split once it held SPLIT_AT keys"
        );
        assert!(
            keys.tables.iter().all(|t| !t.is_empty()),
            "every shard holds some of {} keys",
            keys.len()
        );
        assert_eq!(keys.len(), model.len());
        assert_eq!(keys.iter().count(), model.len());
        for i in 0..50_000 {
            let text = format!("k-{i}");
            assert_eq!(keys.get(&probe(&text)), model.get(&text), "{text}");
        }
        let bytes = postcard::to_allocvec(&keys).unwrap();
        let as_map: std::collections::HashMap<String, u64> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(as_map, model);
        let decoded: CustomerKeys = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            decoded.tables.len(),
            SHARDS,
            "decoded split, as large as it is"
        );
        assert_eq!(decoded.len(), model.len());
        for (text, number) in &model {
            assert_eq!(decoded.get(&probe(text)), Some(number), "{text}");
        }
        for text in model.keys() {
            assert!(keys.remove(&probe(text)).is_some());
        }
        assert!(keys.is_empty());
        assert_eq!(keys.iter().count(), 0);
    }

    /// A shard is chosen by bits the tables' own probing does not use: keys that differ only
    /// there land in different shards, and keys of one shard differ in the low bits.
    #[test]
    fn shards_use_bits_the_tables_leave_alone() {
        let mut keys = CustomerKeys::with_capacity(SPLIT_AT);
        assert_eq!(keys.tables.len(), SHARDS);
        for shard in 0..SHARDS as u64 {
            let low = 0x1234_5678_u64;
            let text: Arc<str> = Arc::from(format!("s-{shard}").as_str());
            keys.insert(HashedKey::new(text, (shard << 32) | low), shard);
        }
        assert!(keys.tables.iter().all(|t| t.len() == 1));
        for shard in 0..SHARDS as u64 {
            let text = format!("s-{shard}");
            let probe = Probe {
                hash: (shard << 32) | 0x1234_5678,
                text: &text,
            };
            assert_eq!(keys.get(&probe), Some(&shard));
        }
    }

    /// The serialized form is a map of maps of strings, as before the hashes were kept.
    #[test]
    fn serializes_like_a_map_of_string_maps() {
        let mut index = KeyIndex::default();
        let text: Arc<str> = Arc::from("k1");
        let mut keys = CustomerKeys::default();
        keys.insert(HashedKey::new(text.clone(), hash_key(&text)), 7);
        index.insert(Arc::from("acme"), keys);
        let plain: std::collections::HashMap<String, std::collections::HashMap<String, u64>> =
            [("acme".to_string(), [("k1".to_string(), 7u64)].into())].into();
        let bytes = postcard::to_allocvec(&index).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap());
        let back: KeyIndex = postcard::from_bytes(&bytes).unwrap();
        let probe = Probe {
            hash: hash_key("k1"),
            text: "k1",
        };
        assert_eq!(back["acme"].get(&probe), Some(&7));
    }
}
