//! An append-only list kept in fixed-size chunks that `clone` shares: each wallet's list of
//! its journal entries, which grows with every call for good (8 bytes an entry). A
//! snapshot's image of the ledger copies one reference per chunk of it, not the list; the
//! ledger copies only the newest chunk, once, when it appends to it while the image holds it.
//!
//! Serialized exactly like a `Vec` (a sequence of its items), so snapshots taken before and
//! after this type read alike.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const CHUNK_ITEMS: usize = 4096;

/// Items a chunk holding `len` makes room for when it grows: doubling from 4, up to
/// `CHUNK_ITEMS`. Most wallets have few entries, and a chunk allocated whole (32 KB of
/// entry ids) for each of them made a ledger of a million wallets need 32 GB.
fn room_after(len: usize) -> usize {
    (len * 2).clamp(4, CHUNK_ITEMS)
}

#[derive(Clone)]
pub struct Appended<T> {
    /// Every chunk but the last holds `CHUNK_ITEMS` items.
    chunks: Vec<Arc<Vec<T>>>,
}

impl<T> Default for Appended<T> {
    fn default() -> Self {
        Appended { chunks: Vec::new() }
    }
}

impl<T> Appended<T> {
    pub fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * CHUNK_ITEMS + last.len())
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.iter_from(0)
    }

    /// The items from position `index` on.
    pub fn iter_from(&self, index: usize) -> impl Iterator<Item = &T> {
        let (chunk, at) = (index / CHUNK_ITEMS, index % CHUNK_ITEMS);
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
            Some(c) => chunk * CHUNK_ITEMS + c.partition_point(&pred),
            None => self.len(),
        }
    }
}

impl<T: Clone> Appended<T> {
    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK_ITEMS => {
                // Shared with an image: copied once, with room to grow as before.
                let room = room_after(last.len());
                let last = own(last, |items| {
                    let mut copy = Vec::with_capacity(room);
                    copy.extend_from_slice(items);
                    copy
                });
                if last.len() == last.capacity() {
                    last.reserve_exact(room_after(last.len()) - last.len());
                }
                last.push(item);
            }
            _ => {
                let mut chunk = Vec::with_capacity(room_after(0));
                chunk.push(item);
                self.chunks.push(Arc::new(chunk));
            }
        }
    }
}

/// `chunk`, to change: replaced by `copy(chunk)` first when a clone still shares it. The
/// ledger makes no weak references, so the strong count tells; when the chunk is not shared
/// this costs one atomic operation (`make_mut`), where `get_mut` then `make_mut` took two.
#[inline]
pub(crate) fn own<C: Clone>(chunk: &mut Arc<C>, copy: impl FnOnce(&C) -> C) -> &mut C {
    if Arc::strong_count(chunk) > 1 {
        *chunk = Arc::new(copy(chunk));
    }
    Arc::make_mut(chunk)
}

impl<T: PartialEq> PartialEq for Appended<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: fmt::Debug> fmt::Debug for Appended<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for Appended<T> {
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

impl<'de, T: Deserialize<'de> + Clone> Deserialize<'de> for Appended<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for Items<T> {
            type Value = Appended<T>;
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
        deserializer.deserialize_seq(Items(PhantomData))
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
