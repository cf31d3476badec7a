//! Rows found by name: the ledger's customers, and its counters (one per customer, team,
//! user or agent and limit or budget cap, each with its windows). The rows are kept in `Rows` (chunks that a
//! clone shares), and found through a hash table of row numbers that a snapshot's image
//! leaves out: the encoding is the rows', in the layout of a map from name to row.
//!
//! A `HashMap<String, Customer>` copied whole into every image, with every name and
//! subscription allocated again while the partition waited: 39 ms at 100,000 customers and
//! 1.8-4.5 s at 1,000,000 on the benchmark VM (BENCHMARKS.md, session 20). The index holds
//! each row's hash beside its number, so growing it never reads a name again, and is split
//! by hash (`Split`) as a customer's keys are, so that no insert moves all of it.

use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use hashbrown::HashTable;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::rows::Rows;
use super::split::{Split, Table};

pub(crate) struct Named<V> {
    rows: Rows<(String, V)>,
    /// (hash of the name, row number) of every row; empty in an image.
    index: Split<Slots>,
    hasher: foldhash::quality::RandomState,
}

/// One table of the index: (hash, row number), found by the hash.
#[derive(Clone, Default)]
struct Slots(HashTable<(u64, u32)>);

impl IntoIterator for Slots {
    type Item = (u64, u32);
    type IntoIter = hashbrown::hash_table::IntoIter<(u64, u32)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Table for Slots {
    fn with_capacity(items: usize) -> Self {
        Slots(HashTable::with_capacity(items))
    }
    /// Only ever given a row not indexed yet (`get_or_insert_with` looked first).
    fn put(&mut self, item: (u64, u32)) -> bool {
        self.0.insert_unique(item.0, item, |&(hash, _)| hash);
        true
    }
    fn hash_of(&(hash, _): &(u64, u32)) -> u64 {
        hash
    }
}

impl<V> Default for Named<V> {
    fn default() -> Self {
        Named {
            rows: Rows::new(),
            index: Split::default(),
            hasher: Default::default(),
        }
    }
}

impl<V: Clone> Clone for Named<V> {
    fn clone(&self) -> Self {
        Named {
            rows: self.rows.clone(),
            index: self.index.clone(),
            hasher: self.hasher.clone(),
        }
    }
}

impl<V> Named<V> {
    fn row(&self, name: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        self.index
            .table(hash)?
            .0
            .find(hash, |&(h, row)| {
                h == hash && self.rows[row as usize].0 == name
            })
            .map(|&(_, row)| row as usize)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        self.row(name).map(|row| &self.rows[row].1)
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.row(name).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.rows.iter().map(|(name, value)| (name.as_str(), value))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.rows.iter().map(|(_, value)| value)
    }
}

impl<V: Clone> Named<V> {
    /// What a snapshot's image encodes: the rows, shared; no index (it cannot be read by name).
    pub(crate) fn image(&mut self) -> Self {
        Named {
            rows: self.rows.share(),
            index: Split::default(),
            hasher: self.hasher.clone(),
        }
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        let row = self.row(name)?;
        self.rows.get_mut(row).map(|(_, value)| value)
    }

    /// The row named `name`, added with `new()` at the end if there is none.
    pub(crate) fn get_or_insert_with(&mut self, name: &str, new: impl FnOnce() -> V) -> &mut V {
        let row = match self.row(name) {
            Some(row) => row,
            None => {
                let row = self.rows.len();
                let number = u32::try_from(row).unwrap_or_else(|_| panic!("{row} rows"));
                let hash = self.hasher.hash_one(name);
                self.index.insert((hash, number));
                self.rows.push((name.to_string(), new()));
                row
            }
        };
        &mut self.rows[row].1
    }
}

impl<V: fmt::Debug> fmt::Debug for Named<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Encoded as a map from name to row, in the order the rows were added.
impl<V: Serialize> Serialize for Named<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de> + Clone> Deserialize<'de> for Named<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de> + Clone> Visitor<'de> for Entries<V> {
            type Value = Named<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of names to rows")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
                let mut named = Named::default();
                while let Some((name, value)) = entries.next_entry::<String, V>()? {
                    if named.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!("{name:?} twice")));
                    }
                    named.get_or_insert_with(&name, || value);
                }
                Ok(named)
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn filled(n: u32) -> Named<u32> {
        let mut named = Named::default();
        for i in 0..n {
            *named.get_or_insert_with(&format!("c{i}"), || 0) += i;
        }
        named
    }

    #[test]
    fn reads_and_encodes_as_the_map_it_replaces() {
        for n in [0, 1, 1_023, 1_024, 1_025, 5_000] {
            let named = filled(n);
            // The index splits as a customer's keys do (`split.rs`), and still finds every row.
            assert_eq!(
                named.index.is_split(),
                n as usize > super::super::split::SPLIT_AT
            );
            let model: HashMap<String, u32> = (0..n).map(|i| (format!("c{i}"), i)).collect();
            assert_eq!(named.len(), model.len());
            for (name, value) in &model {
                assert_eq!(named.get(name), Some(value), "n {n}: {name}");
            }
            assert_eq!(named.get("nobody"), None);
            assert!(
                named
                    .iter()
                    .all(|(name, value)| model.get(name) == Some(value))
            );
            // A map of the same pairs reads back as the same rows, and the other way round.
            let bytes = postcard::to_allocvec(&named).unwrap();
            let as_map: HashMap<String, u32> = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(as_map, model);
            let back: Named<u32> =
                postcard::from_bytes(&postcard::to_allocvec(&model).unwrap()).unwrap();
            assert_eq!(back.len(), model.len());
            assert!(
                back.iter()
                    .all(|(name, value)| model.get(name) == Some(value))
            );
        }
    }

    #[test]
    fn an_image_encodes_the_rows_it_was_taken_with() {
        let mut named = filled(3_000);
        let image = named.image();
        let encoded = postcard::to_allocvec(&named).unwrap();
        *named.get_mut("c1500").unwrap() = 7;
        named.get_or_insert_with("new", || 1);
        assert_eq!(postcard::to_allocvec(&image).unwrap(), encoded);
        assert_eq!((named.get("c1500"), named.get("new")), (Some(&7), Some(&1)));
        assert_eq!(named.len(), 3_001);
    }

    #[test]
    fn a_name_twice_in_an_encoding_is_refused() {
        let twice = postcard::to_allocvec(&[("a", 1u32), ("a", 2)].as_slice()).unwrap();
        // A map's encoding is its length, then the pairs: the same bytes as this sequence.
        let error = postcard::from_bytes::<Named<u32>>(&twice).unwrap_err();
        assert!(!error.to_string().is_empty());
    }
}
