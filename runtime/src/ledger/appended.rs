//! A list that only grows, kept in fixed-size chunks that `clone` shares: each wallet's list
//! of its journal entries (which grows with every call for good, 8 bytes an entry), and the
//! ledger's tables of accounts, wallets and grants (which grow with customers). A snapshot's
//! image of the ledger copies one reference per chunk, not the items; the ledger copies a
//! chunk only when it changes one the image still holds (the newest, as it appends, and any
//! whose items change meanwhile).
//!
//! Serialized exactly like a `Vec` (a sequence of its items), so snapshots taken before and
//! after this type read alike.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Items per chunk of a wallet's list of entries.
const CHUNK_ITEMS: usize = 4096;

/// Rows per chunk of the ledger's tables. A row changed while an image holds its chunk
/// copies the chunk: smaller than a list's chunk, as a table's rows change at random.
pub const TABLE_CHUNK: usize = 1024;

/// A table of the ledger (accounts, wallets, grants): rows numbered from 0, added at the
/// end, changed in place, never removed.
pub type Rows<T> = Appended<T, TABLE_CHUNK>;

/// Items a chunk holding `len` makes room for when it grows: doubling from 4, up to
/// `chunk`. Most wallets have few entries, and a chunk allocated whole (32 KB of entry ids)
/// for each of them made a ledger of a million wallets need 32 GB.
fn room_after(len: usize, chunk: usize) -> usize {
    (len * 2).clamp(4, chunk)
}

#[derive(Clone)]
pub struct Appended<T, const CHUNK: usize = CHUNK_ITEMS> {
    /// Every chunk but the last holds `CHUNK` items.
    chunks: Vec<Arc<Vec<T>>>,
}

impl<T, const CHUNK: usize> Default for Appended<T, CHUNK> {
    fn default() -> Self {
        Appended { chunks: Vec::new() }
    }
}

impl<T, const CHUNK: usize> Appended<T, CHUNK> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The items from position `index` on.
    pub fn iter_from(&self, index: usize) -> impl Iterator<Item = &T> {
        let (chunk, at) = (index / CHUNK, index % CHUNK);
        self.chunks
            .iter()
            .skip(chunk)
            .enumerate()
            .flat_map(move |(i, c)| c[if i == 0 { at.min(c.len()) } else { 0 }..].iter())
    }

    /// As `slice::partition_point`: the position of the first item for which `pred` is
    /// false, the items being partitioned (all true, then all false).
    pub fn partition_point(&self, pred: impl Fn(&T) -> bool) -> usize {
        // The first chunk whose last item is false holds the point.
        let chunk = self.chunks.partition_point(|c| c.last().is_some_and(&pred));
        match self.chunks.get(chunk) {
            Some(c) => chunk * CHUNK + c.partition_point(&pred),
            None => self.len(),
        }
    }
}

impl<T: Clone, const CHUNK: usize> Appended<T, CHUNK> {
    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => {
                let room = room_after(last.len(), CHUNK);
                let last = own(last, |items| with_room(items, room));
                if last.len() == last.capacity() {
                    last.reserve_exact(room_after(last.len(), CHUNK) - last.len());
                }
                last.push(item);
            }
            _ => {
                let mut chunk = Vec::with_capacity(room_after(0, CHUNK));
                chunk.push(item);
                self.chunks.push(Arc::new(chunk));
            }
        }
    }

    /// The item at `index`, to change: its chunk is copied first if a clone still shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let chunk = self.chunks.get_mut(index / CHUNK)?;
        if index % CHUNK >= chunk.len() {
            return None;
        }
        own(chunk, |items| items.clone()).get_mut(index % CHUNK)
    }
}

/// `chunk`, to change: replaced by `copy(chunk)` first when a clone still shares it. The
/// ledger makes no weak references, so the strong count tells; when the chunk is not shared
/// this costs one atomic operation (`make_mut`), where `get_mut` then `make_mut` took two,
/// on every change of a row, an answer or a hold.
pub(crate) fn own<C: Clone>(chunk: &mut Arc<C>, copy: impl FnOnce(&C) -> C) -> &mut C {
    if Arc::strong_count(chunk) > 1 {
        *chunk = Arc::new(copy(chunk));
    }
    Arc::make_mut(chunk)
}

/// A copy of `items` with room for `room`.
fn with_room<T: Clone>(items: &[T], room: usize) -> Vec<T> {
    let mut copy = Vec::with_capacity(room.max(items.len()));
    copy.extend_from_slice(items);
    copy
}

impl<T: Clone, const CHUNK: usize> FromIterator<T> for Appended<T, CHUNK> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut appended = Appended::new();
        for item in items {
            appended.push(item);
        }
        appended
    }
}

impl<T, const CHUNK: usize> Index<usize> for Appended<T, CHUNK> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        match self.get(index) {
            Some(item) => item,
            None => panic!("index {index} out of a list of {}", self.len()),
        }
    }
}

impl<T: Clone, const CHUNK: usize> IndexMut<usize> for Appended<T, CHUNK> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len();
        match self.get_mut(index) {
            Some(item) => item,
            None => panic!("index {index} out of a list of {len}"),
        }
    }
}

impl<T: PartialEq, const CHUNK: usize> PartialEq for Appended<T, CHUNK> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: fmt::Debug, const CHUNK: usize> fmt::Debug for Appended<T, CHUNK> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize, const CHUNK: usize> Serialize for Appended<T, CHUNK> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // The length first (postcard needs it; the chained chunks' iterator does not know it).
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for item in self.iter() {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de> + Clone, const CHUNK: usize> Deserialize<'de> for Appended<T, CHUNK> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T, const CHUNK: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Clone, const CHUNK: usize> Visitor<'de> for Items<T, CHUNK> {
            type Value = Appended<T, CHUNK>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
                let mut appended = Appended::default();
                while let Some(item) = items.next_element()? {
                    appended.push(item);
                }
                Ok(appended)
            }
        }
        deserializer.deserialize_seq(Items::<T, CHUNK>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: u64) -> Appended<u64> {
        let mut appended = Appended::default();
        for i in 0..n {
            appended.push(i * 2);
        }
        appended
    }

    #[test]
    fn reads_as_the_vec_it_replaces() {
        for n in [0, 1, 4095, 4096, 4097, 10_000] {
            let appended = filled(n);
            let model: Vec<u64> = (0..n).map(|i| i * 2).collect();
            assert_eq!(appended.len(), model.len());
            assert_eq!(appended.is_empty(), model.is_empty());
            assert!(appended.iter().eq(model.iter()));
            for index in [0, 1, 4095, 4096, 4097, 9_999, 10_000, 20_000] {
                assert!(
                    appended
                        .iter_from(index)
                        .eq(model.get(index..).unwrap_or(&[]).iter()),
                    "n {n}, from {index}"
                );
            }
            for after in [0, 1, 2, 8_190, 8_192, 8_193, 19_998, 20_000, 50_000] {
                assert_eq!(
                    appended.partition_point(|x| *x <= after),
                    model.partition_point(|x| *x <= after),
                    "n {n}, after {after}"
                );
            }
            let bytes = postcard::to_allocvec(&appended).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&model).unwrap());
            let back: Appended<u64> = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, appended);
        }
    }

    /// Items the chunks have room for.
    fn room(appended: &Appended<u64>) -> usize {
        appended.chunks.iter().map(|c| c.capacity()).sum()
    }

    #[test]
    fn a_short_list_holds_room_for_about_what_it_has() {
        // A wallet with one entry once held room for 4,096 (32 KB); a million wallets, 32 GB.
        for n in [1u64, 3, 4, 5, 100, 4095, 4096, 4097, 10_000] {
            let appended = filled(n);
            let len = usize::try_from(n).unwrap();
            assert!(
                room(&appended) <= (2 * len).max(4) + CHUNK_ITEMS * (len / CHUNK_ITEMS),
                "n {n}: room for {}",
                room(&appended)
            );
            // Full chunks hold exactly `CHUNK_ITEMS`, which positions are computed from.
            let full = &appended.chunks[..appended.chunks.len() - 1];
            assert!(full.iter().all(|c| c.len() == CHUNK_ITEMS));
        }
        // A chunk copied because an image holds it is copied small too.
        let mut appended = filled(3);
        let image = appended.clone();
        appended.push(6);
        assert!(room(&appended) <= 8, "room for {}", room(&appended));
        assert_eq!(image, filled(3));
        assert_eq!(appended, filled(4));
    }

    #[test]
    fn a_row_changed_while_a_clone_holds_it_copies_only_its_chunk() {
        let mut rows: Rows<u64> = (0..3_000).collect();
        let image = rows.clone();
        rows[1_500] = 7;
        *rows.get_mut(2_999).unwrap() += 1;
        assert_eq!((rows[1_500], rows[2_999], rows.len()), (7, 3_000, 3_000));
        assert!(image.iter().copied().eq(0..3_000), "the clone changed");
        // Chunks of 1,024: the first is still shared, the two changed are copies.
        assert!(Arc::ptr_eq(&rows.chunks[0], &image.chunks[0]));
        assert!(!Arc::ptr_eq(&rows.chunks[1], &image.chunks[1]));
        assert!(!Arc::ptr_eq(&rows.chunks[2], &image.chunks[2]));
        // Unshared now: changed in place.
        let before = Arc::as_ptr(&rows.chunks[1]);
        rows[1_501] = 8;
        assert_eq!(Arc::as_ptr(&rows.chunks[1]), before);
        assert_eq!(rows.get(3_000), None);
        assert_eq!(rows.get_mut(3_000), None);
        assert_eq!(rows.last(), Some(&3_000));
    }

    #[test]
    fn a_clone_keeps_what_it_had_while_the_original_grows() {
        let mut appended = filled(5_000);
        let image = appended.clone();
        for i in 0..5_000 {
            appended.push(i);
        }
        assert_eq!(image, filled(5_000));
        assert_eq!(appended.len(), 10_000);
        // Full chunks are still shared; the one the clone held while it filled is not.
        assert!(Arc::ptr_eq(&appended.chunks[0], &image.chunks[0]));
        assert!(!Arc::ptr_eq(&appended.chunks[1], &image.chunks[1]));
    }
}
