//! A hash table that splits by hash into `SHARDS` tables once it holds `SPLIT_AT` items: a
//! customer's usage event ids (`event_ids`), the row indexes of `named`, and (split twice)
//! the partition's idempotency keys (`keys`).
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
pub(crate) const SPLIT_AT: usize = split_at(0);
const _: () = assert!(SHARDS.is_power_of_two() && SPLIT_AT >= SHARDS);

/// Items at which a table of a `Split` of `level` splits. A second level (a `Split` of
/// `Split<_, 1>`s, as the partition's idempotency keys are) splits each of the first level's
/// tables again at 65,536 items: 4,096 tables in all, so that a doubling never moves more
/// than 65,536 items or 1/4,096 of them, whichever is more, while up to 4 million items stay
/// in 64 tables whose control bytes sit together (`keys.rs`).
const fn split_at(level: u32) -> usize {
    if level == 0 { 1024 } else { 65_536 }
}

/// What `Split` needs of the hash table it splits.
pub(crate) trait Table: Default + IntoIterator {
    fn with_capacity(items: usize) -> Self;
    /// Adds `item`; false when its key was there already (the table keeps one of them).
    fn put(&mut self, item: Self::Item) -> bool;
    /// `put` into the table at `place` among all the tables of the splits above it (each
    /// split numbers its tables `place * SHARDS + shard`). Tables that fill in step can grow
    /// at different inserts by it (`keys.rs`).
    fn put_at(&mut self, item: Self::Item, place: u64) -> bool {
        let _ = place;
        self.put(item)
    }
    /// The hash that picks an item's table (`Split::table` is asked with the same).
    fn hash_of(item: &Self::Item) -> u64;
}

/// The table of a hash among `SHARDS` at `level`: bits 32 to 37 at level 0, 38 to 43 at
/// level 1, which a table's own probing leaves alone (it picks a bucket from the low bits of
/// tables under 2^32 buckets and tags it with the top seven), so each shard still spreads
/// its items over all of its buckets.
fn shard_of(hash: u64, level: u32) -> usize {
    (hash >> (32 + 6 * level)) as usize & (SHARDS - 1)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Split<T, const LEVEL: u32 = 0> {
    /// None, one, or `SHARDS` tables chosen by `shard_of`.
    tables: Vec<T>,
    len: usize,
}

/// A `Split` is itself a table another can split (one level deeper).
impl<T: Table, const LEVEL: u32> Table for Split<T, LEVEL> {
    fn with_capacity(items: usize) -> Self {
        Split::with_capacity(items)
    }

    fn put(&mut self, item: T::Item) -> bool {
        self.insert(item)
    }

    fn put_at(&mut self, item: T::Item, place: u64) -> bool {
        self.insert_at(item, place)
    }

    fn hash_of(item: &T::Item) -> u64 {
        T::hash_of(item)
    }
}

impl<T: Table, const LEVEL: u32> Split<T, LEVEL> {
    const SPLIT_AT: usize = {
        assert!(
            LEVEL <= 1,
            "bits 44 and up are not left alone by a table's probing"
        );
        split_at(LEVEL)
    };

    /// Room for `items` (split from the start if there are `SPLIT_AT` or more).
    pub(crate) fn with_capacity(items: usize) -> Self {
        let tables = if items >= Self::SPLIT_AT {
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
            shard_of(hash, LEVEL)
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
        self.insert_at(item, 0)
    }

    /// `insert`, this split being the table at `place` among those of the splits above it.
    fn insert_at(&mut self, item: T::Item, place: u64) -> bool {
        if self.tables.len() == 1 && self.len >= Self::SPLIT_AT {
            let one = self.tables.pop().unwrap_or_default();
            self.tables = Self::with_capacity(self.len).tables;
            for moved in one {
                self.tables[shard_of(T::hash_of(&moved), LEVEL)].put(moved);
            }
        }
        if self.tables.is_empty() {
            self.tables.push(T::default());
        }
        let index = self.index(T::hash_of(&item));
        let place = place.wrapping_mul(SHARDS as u64).wrapping_add(index as u64);
        let added = self.tables[index].put_at(item, place);
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

impl<T: Table, const LEVEL: u32> IntoIterator for Split<T, LEVEL> {
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
                table.0.iter().all(|&h| shard_of(h, 0) == shard),
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

    /// A `Split` of `Split<_, 1>`s splits a first-level table again, by bits 38 to 43, once
    /// it holds 65,536 items; each item stays where a lookup of its hash goes.
    #[test]
    fn a_second_level_splits_by_bits_38_to_43_at_65536() {
        let mut split = Split::<Split<Numbers, 1>>::default();
        // All in first-level shard 5, spread over the second level's shards.
        let item = |i: u64| (5 << 32) | ((i % SHARDS as u64) << 38) | (i / SHARDS as u64);
        let at = split_at(1) as u64;
        for i in 0..at {
            assert!(split.insert(item(i)));
        }
        let outer = split.table(item(0)).unwrap();
        assert!(
            split.is_split() && !outer.is_split(),
            "one second-level table up to 65,536"
        );
        assert!(split.insert(item(at)));
        let outer = split.table(item(0)).unwrap();
        assert!(outer.is_split());
        assert_eq!(
            (split.len(), outer.len()),
            (at as usize + 1, at as usize + 1)
        );
        for (shard, table) in outer.tables().enumerate() {
            assert!(
                table.0.iter().all(|&h| shard_of(h, 1) == shard),
                "shard {shard}"
            );
            assert!(table.0.len() >= (at as usize) / SHARDS, "shard {shard}");
        }
        for i in (0..=at).step_by(997) {
            let found = split.table(item(i)).and_then(|t| t.table(item(i)));
            assert!(found.is_some_and(|t| t.0.contains(&item(i))), "{i}");
        }
        let gone = split.remove_with(item(7), |t| t.remove_with(item(7), |t| t.0.take(&item(7))));
        assert_eq!(gone, Some(item(7)));
        assert_eq!(split.len(), at as usize);
        assert_eq!(split.into_iter().count(), at as usize);
    }
}
