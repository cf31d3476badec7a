//! One customer's usage event ids inside the deduplication window: a set that splits by
//! hash once it holds 1,024 (`split`), because a busy customer has millions.
//!
//! Serialized exactly like a `HashSet<String>` (a sequence of the ids), so snapshots taken
//! before and after this type read alike.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::split::Split;
use super::state::Set;

/// The hash that picks an id's table: with a fixed seed, independent of the tables' own
/// (per-process) hashing.
fn hash_of(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl super::split::Table for Set<String> {
    fn with_capacity(items: usize) -> Self {
        Set::with_capacity_and_hasher(items, Default::default())
    }

    fn put(&mut self, id: String) -> bool {
        self.insert(id)
    }

    fn hash_of(id: &String) -> u64 {
        hash_of(id)
    }
}

#[derive(Clone, Default)]
pub(crate) struct EventIds(Split<Set<String>>);

impl EventIds {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.0.table(hash_of(id)).is_some_and(|t| t.contains(id))
    }

    /// Adds `id`; false when it was there already.
    pub(crate) fn insert(&mut self, id: String) -> bool {
        self.0.insert(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        self.0.remove_with(hash_of(id), |t| t.take(id)).is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.tables().flatten()
    }
}

impl fmt::Debug for EventIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for EventIds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for id in self.iter() {
            seq.serialize_element(id)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for EventIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ids;
        impl<'de> Visitor<'de> for Ids {
            type Value = EventIds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of event ids")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventIds, A::Error> {
                let mut ids = EventIds::default();
                while let Some(id) = seq.next_element::<String>()? {
                    ids.insert(id);
                }
                Ok(ids)
            }
        }
        deserializer.deserialize_seq(Ids)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::split::SPLIT_AT;
    use super::*;

    /// Inserts, removes and looks up across the split, against a `HashSet`; the encoding
    /// decodes as a `HashSet<String>` with the same ids, and back.
    #[test]
    fn behaves_and_encodes_like_a_hash_set() {
        let mut ids = EventIds::default();
        let mut model = HashSet::new();
        assert!(ids.is_empty());
        for i in 0..3 * SPLIT_AT as u64 {
            let id = format!("ev-{}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 50_000);
            assert_eq!(ids.insert(id.clone()), model.insert(id));
            if i % 3 == 0 {
                let gone = format!("ev-{}", (i * 7) % 50_000);
                assert_eq!(ids.remove(&gone), model.remove(&gone));
            }
        }
        assert!(ids.0.is_split(), "split once it grew past SPLIT_AT");
        assert_eq!(ids.len(), model.len());
        for i in 0..50_000 {
            let id = format!("ev-{i}");
            assert_eq!(ids.contains(&id), model.contains(&id), "{id}");
        }
        let bytes = postcard::to_allocvec(&ids).unwrap();
        let as_set: HashSet<String> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(as_set, model);
        let from_set: EventIds =
            postcard::from_bytes(&postcard::to_allocvec(&model).unwrap()).unwrap();
        assert_eq!(
            from_set.iter().collect::<HashSet<_>>(),
            model.iter().collect()
        );
        for id in &model {
            assert!(ids.remove(id));
        }
        assert!(ids.is_empty());
    }
}
