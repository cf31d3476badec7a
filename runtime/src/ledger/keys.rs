//! The index of idempotency keys: (customer, key) to the number of the answer kept for it.
//!
//! One index for the whole partition, holding for each key the hash of (customer, key)
//! and the answer's number: 16 bytes a key. The texts stay in the answers
//! (`Ledger::answers`), which a lookup reads only when all 64 bits of the hash match.
//!
//! Nearly every key a partition is asked about is new, so the lookup that matters is the
//! one that finds nothing, and it reads only a table's control bytes (one byte a key,
//! together in each table). One table per customer, split in 64 (as this index was until
//! session 21), spread those bytes over thousands of small tables, each a page or two of its
//! own: every new key's lookup missed the cache and the TLB, and the index cost the server
//! about 8 % of its Reserve + Commit pairs (BENCHMARKS.md, session 21).
//!
//! Split (`split.rs`) into 64 tables from 1,024 keys, and each of those into 64 more from
//! 65,536, so that no insert rehashes more than 65,536 keys or 1/4,096 of them (whichever is
//! more) at once, while the first 4 million keys keep their control bytes in 64 tables. Decoded from the layout the
//! snapshot keeps (a map of maps of strings, `image.rs`), hashing with a seed chosen per
//! process, so a client cannot aim keys at one bucket.

use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::sharded::Sharded;
use super::split::Split;

/// One table: (hash of customer and key, answer number).
type Table = HashTable<(u64, u64)>;

impl super::split::Table for Table {
    fn with_capacity(items: usize) -> Self {
        Table::with_capacity(items)
    }

    /// Each (customer, key) is put once (`KeyIndex::insert`), so no lookup first.
    fn put(&mut self, item: (u64, u64)) -> bool {
        self.insert_unique(item.0, item, |&(hash, _)| hash);
        true
    }

    /// `put`, growing the table first once it holds the share of its room that its place
    /// picks (`grows_at`).
    fn put_at(&mut self, item: (u64, u64), place: u64) -> bool {
        let room = self.capacity();
        if self.len() >= grows_at(room, place) && self.len() < room {
            // Room for one more than it has room for: the table doubles now.
            self.reserve(room + 1 - self.len(), |&(hash, _)| hash);
        }
        self.put(item)
    }

    fn hash_of(&(hash, _): &(u64, u64)) -> u64 {
        hash
    }
}

/// How many items a table of `room` at `place` holds before it grows: from half of its
/// room to all of it, the places spread evenly over that range (Fibonacci hashing of the
/// place). Keys are spread evenly over the split's tables, so tables that each grew when
/// full would grow in step: in a 10 s run at 64 in flight, 1,917 of the runtime thread's
/// page faults in rehashes came in one 100 ms (BENCHMARKS.md, session 23), each costing the
/// calls of the moment 2-30 us (252 with this rule). Grown at a point picked by its
/// place, each table doubles at an insert of its own, spread over the whole time the keys'
/// count takes to double. The price is a table a quarter emptier on average.
fn grows_at(room: usize, place: u64) -> usize {
    let share = place.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48; // in 0..2^16
    let half = room / 2;
    half + usize::try_from((half as u64).saturating_mul(share) >> 16).unwrap_or(half)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct KeyIndex {
    table: Split<Split<Table, 1>>,
    /// The name of each customer with keys indexed, which all of its answers share, and
    /// how many keys it has.
    names: Sharded<Arc<str>, u64>,
}

impl KeyIndex {
    /// The number of the answer kept for the key of `hash` (`hash_key`), if any: `is(n)`
    /// tells whether answer `n` is for this very customer and key (hashes can be equal).
    pub(crate) fn find(&self, hash: u64, is: impl Fn(u64) -> bool) -> Option<u64> {
        let table = self.table.table(hash)?.table(hash)?;
        table
            .find(hash, |&(h, number)| h == hash && is(number))
            .map(|&(_, number)| number)
    }

    /// Indexes answer `number`, for `customer`, under `hash`; the customer's name to keep
    /// in the answer (shared by all of its answers). The caller has found nothing for this
    /// customer and key (`find`): each is indexed once.
    pub(crate) fn insert(&mut self, hash: u64, number: u64, customer: &str) -> Arc<str> {
        self.table.insert((hash, number));
        self.count(customer, 1)
    }

    /// Counts `keys` more for `customer`; its shared name.
    fn count(&mut self, customer: &str, keys: u64) -> Arc<str> {
        match self.names.get_key_value_mut(customer) {
            Some((name, count)) => {
                *count += keys;
                name.clone()
            }
            None => {
                let name: Arc<str> = Arc::from(customer);
                self.names.insert(name.clone(), keys);
                name
            }
        }
    }

    /// Forgets answer `number` of `customer`, indexed under `hash`; whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, number: u64, customer: &str) -> bool {
        let removed = self
            .table
            .remove_with(hash, |tables| {
                tables.remove_with(hash, |table| {
                    let found = table.find_entry(hash, |&(h, n)| h == hash && n == number);
                    found.ok().map(|entry| entry.remove().0)
                })
            })
            .is_some();
        if removed && let Some(count) = self.names.get_mut(customer) {
            *count -= 1;
            if *count == 0 {
                self.names.remove(customer);
            }
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The shared name of a customer with keys indexed.
    pub(crate) fn name(&self, customer: &str) -> Option<&Arc<str>> {
        self.names.get_key_value(customer).map(|(name, _)| name)
    }

    /// Each customer with keys indexed, and how many.
    pub(crate) fn names(&self) -> impl Iterator<Item = (&str, u64)> {
        self.names.iter().map(|(name, count)| (&**name, *count))
    }
}

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        foldhash::quality::RandomState::default().hash_one(0x7011_6a7e_u64)
    })
}

/// The hash of a customer's idempotency key in this process.
pub(crate) fn hash_key(customer: &str, key: &str) -> u64 {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    xxh3_64_with_seed(
        key.as_bytes(),
        xxh3_64_with_seed(customer.as_bytes(), seed()),
    )
}

/// Decodes the snapshot's layout: customer, then key, to the answer's number.
impl<'de> Deserialize<'de> for KeyIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Customers;
        impl<'de> Visitor<'de> for Customers {
            type Value = KeyIndex;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of customers to maps of idempotency keys to answer numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyIndex, A::Error> {
                let mut index = KeyIndex::default();
                while let Some(customer) = map.next_key::<String>()? {
                    map.next_value_seed(Keys {
                        index: &mut index,
                        customer: &customer,
                    })?;
                }
                Ok(index)
            }
        }
        deserializer.deserialize_map(Customers)
    }
}

/// One customer's keys, decoded into the index.
struct Keys<'a> {
    index: &'a mut KeyIndex,
    customer: &'a str,
}

impl<'de> DeserializeSeed<'de> for Keys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Keys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of idempotency keys to answer numbers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = 0;
        while let Some((key, number)) = map.next_entry::<String, u64>()? {
            let hash = hash_key(self.customer, &key);
            self.index.table.insert((hash, number));
            keys += 1;
        }
        if keys > 0 {
            self.index.count(self.customer, keys);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::split::SPLIT_AT;
    use super::*;
    use std::collections::HashMap;

    /// Answers as the ledger keeps them: number to (customer, key).
    struct Answers(HashMap<u64, (String, String)>);

    impl Answers {
        fn find(&self, index: &KeyIndex, customer: &str, key: &str) -> Option<u64> {
            index.find(hash_key(customer, key), |n| {
                self.0
                    .get(&n)
                    .is_some_and(|(c, k)| c == customer && k == key)
            })
        }
    }

    /// Inserts, removes and looks up across the split, against a `HashMap`; the same key of
    /// another customer is another key.
    #[test]
    fn finds_what_it_holds_and_nothing_else_across_the_split() {
        let mut index = KeyIndex::default();
        let mut answers = Answers(HashMap::new());
        let mut model: HashMap<(String, String), u64> = HashMap::new();
        for number in 0..3 * SPLIT_AT as u64 {
            let customer = format!("c{}", number % 3);
            let key = format!("k-{}", number.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 5_000);
            if answers.find(&index, &customer, &key).is_none() {
                let name = index.insert(hash_key(&customer, &key), number, &customer);
                assert_eq!(*name, *customer);
                answers.0.insert(number, (customer.clone(), key.clone()));
                model.insert((customer, key), number);
            }
            if number % 3 == 0 {
                let gone = (
                    format!("c{}", number % 3),
                    format!("k-{}", (number * 7) % 5_000),
                );
                if let Some(n) = model.remove(&gone) {
                    assert!(index.remove(hash_key(&gone.0, &gone.1), n, &gone.0));
                    assert!(
                        !index.remove(hash_key(&gone.0, &gone.1), n, &gone.0),
                        "gone"
                    );
                    answers.0.remove(&n);
                }
            }
        }
        assert!(index.table.is_split(), "split once it held SPLIT_AT keys");
        assert_eq!(index.len(), model.len());
        let mut names: Vec<(&str, u64)> = index.names().collect();
        names.sort();
        let counted = |c: &str| model.keys().filter(|(m, _)| m == c).count() as u64;
        assert_eq!(
            names,
            [
                ("c0", counted("c0")),
                ("c1", counted("c1")),
                ("c2", counted("c2"))
            ]
        );
        let shared = index.name("c1").unwrap().clone();
        assert!(
            Arc::ptr_eq(&shared, &index.insert(7, u64::MAX, "c1")),
            "one name"
        );
        assert!(index.remove(7, u64::MAX, "c1"));
        for customer in ["c0", "c1", "c2", "c3"] {
            for i in 0..5_000 {
                let key = format!("k-{i}");
                let expected = model.get(&(customer.to_string(), key.clone())).copied();
                assert_eq!(
                    answers.find(&index, customer, &key),
                    expected,
                    "{customer} {key}"
                );
            }
        }
        for ((customer, key), number) in &model {
            assert!(index.remove(hash_key(customer, key), *number, customer));
        }
        assert_eq!(index.len(), 0);
        assert_eq!(index.names().count(), 0, "no name kept without keys");
    }

    /// The split's 64 tables fill in step; each grows at an insert of its own, spread over
    /// the time the keys' count takes to double, not all within a few per cent of it.
    #[test]
    fn tables_that_fill_in_step_grow_at_inserts_spread_over_the_doubling() {
        let room = |index: &KeyIndex, hash: u64| {
            let table = index.table.table(hash).and_then(|t| t.table(hash));
            table.map_or(0, HashTable::capacity)
        };
        let mut index = KeyIndex::default();
        let mut hash = 0x2545_f491_4f6c_dd1d_u64;
        let (from, to) = (1 << 16, 1 << 17);
        let mut grown = Vec::new();
        for number in 0..to {
            // xorshift: hashes as even as `hash_key`'s.
            hash ^= hash << 13;
            hash ^= hash >> 7;
            hash ^= hash << 17;
            let before = room(&index, hash);
            index.insert(hash, number, "acme");
            if number >= from && room(&index, hash) > before {
                grown.push(number);
            }
        }
        // Each table grows about once while the count doubles.
        assert!((48..=80).contains(&grown.len()), "{} growths", grown.len());
        // A sixteenth of the doubling holds about 4 of them, and none many more.
        let mut per_sixteenth = [0; 16];
        for number in &grown {
            per_sixteenth[((number - from) * 16 / (to - from)) as usize] += 1;
        }
        assert!(
            per_sixteenth.iter().all(|&n| n <= 12),
            "growths per sixteenth of the doubling: {per_sixteenth:?}"
        );
    }

    /// Keys whose hashes are equal are told apart by their answers: each finds its own.
    #[test]
    fn equal_hashes_are_told_apart_by_the_answers() {
        let mut index = KeyIndex::default();
        index.insert(42, 1, "acme");
        index.insert(42, 2, "acme");
        assert_eq!(index.find(42, |n| n == 2), Some(2));
        assert_eq!(index.find(42, |n| n == 1), Some(1));
        assert_eq!(index.find(42, |_| false), None);
        assert_eq!(index.find(43, |_| true), None);
        assert!(index.remove(42, 1, "acme"));
        assert_eq!(index.find(42, |n| n == 1), None);
        assert_eq!(index.find(42, |n| n == 2), Some(2));
        assert_eq!(index.names().collect::<Vec<_>>(), [("acme", 1)]);
    }

    /// Decodes the snapshot's layout, a map of maps of strings.
    #[test]
    fn decodes_a_map_of_string_maps() {
        let plain: HashMap<String, HashMap<String, u64>> = [
            ("acme".to_string(), [("k1".to_string(), 7u64)].into()),
            ("globex".to_string(), [("k1".to_string(), 8u64)].into()),
        ]
        .into();
        let bytes = postcard::to_allocvec(&plain).unwrap();
        let index: KeyIndex = postcard::from_bytes(&bytes).unwrap();
        let answers = Answers(
            [
                (7, ("acme".to_string(), "k1".to_string())),
                (8, ("globex".to_string(), "k1".to_string())),
            ]
            .into(),
        );
        assert_eq!(index.len(), 2);
        assert_eq!(answers.find(&index, "acme", "k1"), Some(7));
        assert_eq!(answers.find(&index, "globex", "k1"), Some(8));
        assert_eq!(answers.find(&index, "acme", "k2"), None);
        let mut names: Vec<(&str, u64)> = index.names().collect();
        names.sort();
        assert_eq!(names, [("acme", 1), ("globex", 1)]);
    }
}
