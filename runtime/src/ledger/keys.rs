//! The index of idempotency keys: customer, then key, to the number of the stored answer.
//!
//! A key's hash is computed once per request and kept beside it, so a lookup, an insert and
//! every rehash as the table grows (a busy customer has a day of keys) never hash the key's
//! text again. Serialized exactly like a map of maps of strings: the hashes are recomputed
//! on load, with a seed chosen per process, so a client cannot aim keys at one bucket.
//!
//! A customer's keys are one table until it holds 1,024, then 64 (`split`), so that no
//! insert rehashes a whole day of one customer's keys.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use hashbrown::{Equivalent, HashMap};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::split::Split;

/// Most keys a decoded customer's tables are sized for up front (about 32 MB of them); a
/// longer list grows them as it is read.
const PRESIZE_AT_MOST: usize = 1 << 20;

/// One table of keys; its hasher passes the stored hash through.
type Table = HashMap<HashedKey, u64, BuildHasherDefault<StoredHash>>;

impl super::split::Table for Table {
    fn with_capacity(items: usize) -> Self {
        Table::with_capacity_and_hasher(items, Default::default())
    }

    fn put(&mut self, (key, number): (HashedKey, u64)) -> bool {
        self.insert(key, number).is_none()
    }

    fn hash_of((key, _): &(HashedKey, u64)) -> u64 {
        key.hash
    }
}

/// Keys of one customer: the key (with its hash) to the number of the stored answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomerKeys(Split<Table>);

impl CustomerKeys {
    pub(crate) fn with_capacity(keys: usize) -> Self {
        CustomerKeys(Split::with_capacity(keys))
    }

    pub(crate) fn get(&self, probe: &Probe<'_>) -> Option<&u64> {
        self.0.table(probe.hash)?.get(probe)
    }

    /// Stores `key`'s answer number (replacing any it had).
    pub(crate) fn insert(&mut self, key: HashedKey, number: u64) {
        self.0.insert((key, number));
    }

    /// Forgets a key; its answer number, if it was there.
    pub(crate) fn remove(&mut self, probe: &Probe<'_>) -> Option<u64> {
        self.0.remove_with(probe.hash, |table| table.remove(probe))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HashedKey, &u64)> {
        self.0.tables().flatten()
    }
}

impl IntoIterator for CustomerKeys {
    type Item = (HashedKey, u64);
    type IntoIter = <Split<Table> as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Serialize for CustomerKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
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
pub(crate) type KeyIndex = super::sharded::Sharded<Arc<str>, CustomerKeys>;

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
    use super::super::split::SPLIT_AT;
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
        assert!(keys.0.is_split(), "split once it held SPLIT_AT keys");
        assert!(
            keys.0.tables().all(|t| !t.is_empty()),
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
        assert!(decoded.0.is_split(), "decoded split, as large as it is");
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
        assert_eq!(back.get("acme").unwrap().get(&probe), Some(&7));
    }
}
