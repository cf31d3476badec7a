//! A hash table of one customer's items that splits by hash into `SHARDS` tables once it
//! holds `SPLIT_AT` items: a customer's usage event ids (`event_ids`) and its idempotency
//! keys (`keys`).
//!
//! A busy customer has millions of either. In one table every doubling moves all of them in
//! one insert, while the writer holds the ledger; with 100 customers growing in step, their
//! tables doubled in the same batch: event ids stalled it for 270-500 ms (BENCHMARKS.md,
//! session 4), and the slowest Reserve + Commit calls took 13, 25 and 42 ms at 3,584, 7,168
//! and 14,336 keys a customer, twice as long at each doubling after (session 19). Split,
//! each table doubles on its own, at a different insert from its neighbours, and at 1/64 of
//! the size. The split itself is small on purpose: 100 customers splitting at 8,192 event
//! ids in one batch still stalled it for 120-145 ms; at 1,024 no batch took over 22 ms.

/// Tables a large customer's items are split into.
const SHARDS: usize = 64;
/// Items at which one table becomes `SHARDS` (a customer with fewer keeps one table: 64
/// near-empty tables would cost more than its items).
pub(crate) const SPLIT_AT: usize = 1024;
const _: () = assert!(SHARDS.is_power_of_two() && SPLIT_AT >= SHARDS);

/// What `Split` needs of the hash table it splits.
pub(crate) trait Table: Default + IntoIterator {
    fn with_capacity(items: usize) -> Self;
    /// Adds `item`; false when its key was there already (the table keeps one of them).
    fn put(&mut self, item: Self::Item) -> bool;
    /// The hash that picks an item's table (`Split::table` is asked with the same).
    fn hash_of(item: &Self::Item) -> u64;
}

/// The table of a hash among `SHARDS`: bits 32 to 37, which a table's own probing leaves
/// alone (it picks a bucket from the low bits of tables under 2^32 buckets and tags it
/// with the top seven), so each shard still spreads its items over all of its buckets.
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (SHARDS - 1)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Split<T> {
    /// None, one, or `SHARDS` tables chosen by `shard_of`.
    tables: Vec<T>,
    len: usize,
}

impl<T: Table> Split<T> {
    /// Room for `items` (split from the start if there are `SPLIT_AT` or more).
    pub(crate) fn with_capacity(items: usize) -> Self {
        let tables = if items >= SPLIT_AT {
            (0..SHARDS)
                .map(|_| T::with_capacity(items / SHARDS))
                .collect()
        } else {
            vec![T::with_capacity(items)]
        };
        Split { tables, len: 0 }
    }

    fn index(&self, hash: u64) -> usize {
        if self.tables.len() == SHARDS {
            shard_of(hash)
        } else {
            0
        }
    }

    /// The table an item of `hash` is in, if any.
    pub(crate) fn table(&self, hash: u64) -> Option<&T> {
        self.tables.get(self.index(hash))
    }

    /// Adds `item`; false when its key was there already.
    pub(crate) fn insert(&mut self, item: T::Item) -> bool {
        if self.tables.len() == 1 && self.len >= SPLIT_AT {
            let one = self.tables.pop().unwrap_or_default();
            self.tables = Self::with_capacity(self.len).tables;
            for moved in one {
                self.tables[shard_of(T::hash_of(&moved))].put(moved);
            }
        }
        if self.tables.is_empty() {
            self.tables.push(T::default());
        }
        let index = self.index(T::hash_of(&item));
        let added = self.tables[index].put(item);
        self.len += usize::from(added);
        added
    }

    /// Applies `remove` to the table an item of `hash` is in; what it took counts as gone.
    pub(crate) fn remove_with<R>(
        &mut self,
        hash: u64,
        remove: impl FnOnce(&mut T) -> Option<R>,
    ) -> Option<R> {
        let index = self.index(hash);
        let removed = remove(self.tables.get_mut(index)?);
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

    pub(crate) fn tables(&self) -> impl Iterator<Item = &T> {
        self.tables.iter()
    }

    #[cfg(test)]
    pub(crate) fn is_split(&self) -> bool {
        self.tables.len() == SHARDS
    }
}

impl<T: Table> IntoIterator for Split<T> {
    type Item = T::Item;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.tables.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `u64`s that are their own hash.
    #[derive(Default)]
    struct Numbers(std::collections::BTreeSet<u64>);

    impl IntoIterator for Numbers {
        type Item = u64;
        type IntoIter = std::collections::btree_set::IntoIter<u64>;
        fn into_iter(self) -> Self::IntoIter {
            self.0.into_iter()
        }
    }

    impl Table for Numbers {
        fn with_capacity(_: usize) -> Self {
            Numbers::default()
        }
        fn put(&mut self, item: u64) -> bool {
            self.0.insert(item)
        }
        fn hash_of(item: &u64) -> u64 {
            *item
        }
    }

    /// Items that differ only in bits 32 to 37 land in different tables once split, and
    /// each table then holds the items of its shard only.
    #[test]
    fn splits_at_split_at_by_bits_32_to_37() {
        let mut split = Split::<Numbers>::default();
        let item = |i: u64| ((i % SHARDS as u64) << 32) | (i / SHARDS as u64);
        for i in 0..SPLIT_AT as u64 {
            assert!(split.insert(item(i)));
        }
        assert!(!split.is_split(), "one table up to SPLIT_AT");
        assert!(!split.insert(item(0)), "already there");
        assert!(split.insert(item(SPLIT_AT as u64)));
        assert!(split.is_split());
        assert_eq!(split.len(), SPLIT_AT + 1);
        for (shard, table) in split.tables().enumerate() {
            assert!(
                table.0.iter().all(|&h| shard_of(h) == shard),
                "shard {shard}"
            );
            assert!(table.0.len() >= SPLIT_AT / SHARDS, "shard {shard}");
        }
        let gone = split.remove_with(item(5), |t| t.0.take(&item(5)));
        assert_eq!(gone, Some(item(5)));
        assert_eq!(split.remove_with(item(5), |t| t.0.take(&item(5))), None);
        assert_eq!(split.len(), SPLIT_AT);
        assert_eq!(split.into_iter().count(), SPLIT_AT);
    }
}
