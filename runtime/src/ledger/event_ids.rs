//! One customer's usage event ids inside the deduplication window.
//!
//! A busy customer has millions. In one hash table, every doubling rehashes all of them in
//! one insert, while the writer holds the ledger: with 100 customers growing in step,
//! their tables doubled in the same batch and stalled it for 270-500 ms (BENCHMARKS.md).
//! Past `SPLIT_AT` ids the set is split by hash into `SHARDS` tables. Each shard doubles
//! on its own, at a different insert from its neighbours, and at 1/64 of the size. The
//! split itself is small on purpose: 100 customers splitting at 8,192 ids in one batch
//! still stalled it for 120-145 ms; at 1,024 no batch took over 22 ms.
//!
//! Serialized exactly like a `HashSet<String>` (a sequence of the ids), so snapshots taken
//! before and after this type read alike.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::Set;

/// Tables a large set is split into.
const SHARDS: usize = 64;
/// Ids at which one table becomes `SHARDS` (a small set stays one table: 64 empty tables
/// per customer would cost more than the ids).
const SPLIT_AT: usize = 1024;

#[derive(Clone, Default)]
pub(crate) struct EventIds {
    /// One table, or `SHARDS` of them chosen by `shard_of`.
    tables: Vec<Set<String>>,
}

/// The shard of an id: from a hash with a fixed seed, independent of the tables' own
/// (per-process) hashing, so that each shard still spreads its ids over all its buckets.
fn shard_of(id: &str) -> usize {
    (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % SHARDS as u64) as usize
}

impl EventIds {
    fn table(&self, id: &str) -> Option<&Set<String>> {
        match self.tables.len() {
            SHARDS => self.tables.get(shard_of(id)),
            _ => self.tables.first(),
        }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.table(id).is_some_and(|t| t.contains(id))
    }

    /// Adds `id`; false when it was there already.
    pub(crate) fn insert(&mut self, id: String) -> bool {
        if self.tables.len() == 1 && self.tables[0].len() >= SPLIT_AT {
            let one = self.tables.pop().unwrap_or_default();
            self.tables = (0..SHARDS).map(|_| Set::default()).collect();
            for moved in one {
                let shard = shard_of(&moved);
                self.tables[shard].insert(moved);
            }
        }
        let index = match self.tables.len() {
            0 => {
                self.tables.push(Set::default());
                0
            }
            SHARDS => shard_of(&id),
            _ => 0,
        };
        self.tables[index].insert(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let index = match self.tables.len() {
            SHARDS => shard_of(id),
            _ => 0,
        };
        self.tables.get_mut(index).is_some_and(|t| t.remove(id))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.iter().all(Set::is_empty)
    }

    pub(crate) fn len(&self) -> usize {
        self.tables.iter().map(Set::len).sum()
    }

    fn iter(&self) -> impl Iterator<Item = &String> {
        self.tables.iter().flatten()
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
        assert_eq!(ids.tables.len(), SHARDS, "split once it grew past SPLIT_AT");
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
