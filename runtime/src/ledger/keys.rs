//! The index of idempotency keys: customer, then key, to the number of the stored answer.
//!
//! A key's hash is computed once per request and kept beside it, so a lookup, an insert and
//! every rehash as the table grows (a busy customer has a day of keys) never hash the key's
//! text again. Serialized exactly like a map of maps of strings: the hashes are recomputed
//! on load, with a seed chosen per process, so a client cannot aim keys at one bucket.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use hashbrown::{Equivalent, HashMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Keys of one customer.
pub(crate) type CustomerKeys = HashMap<HashedKey, u64, BuildHasherDefault<StoredHash>>;

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
