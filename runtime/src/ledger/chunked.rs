//! A first-in first-out queue kept in fixed-size chunks, for the ledger's queues of things
//! to forget (usage event ids, resolved holds). They grow by millions of items at ingest
//! rates; a `VecDeque` doubles, and a doubling copies the whole queue into new memory
//! while the writer holds the ledger (hundreds of milliseconds at a few million items).
//! Here a push allocates at most one new chunk, and a chunk is freed as soon as it empties.
//!
//! Serialized exactly like a `VecDeque` (a sequence of its items), so snapshots taken
//! before and after this type read alike. Chunks are shared by `clone` (a snapshot's image)
//! and copied when changed while shared, as in `Numbered`.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Items per chunk.
const CHUNK_ITEMS: usize = 4096;

#[derive(Clone)]
pub(crate) struct ChunkedDeque<T> {
    /// Every chunk holds at least one item and at most `CHUNK_ITEMS`.
    chunks: VecDeque<Arc<VecDeque<T>>>,
}

/// `chunk`, to change: copied first when a clone still shares it.
fn own<T: Clone>(chunk: &mut Arc<VecDeque<T>>) -> &mut VecDeque<T> {
    super::appended::own(chunk, |items| {
        let mut copy = VecDeque::with_capacity(CHUNK_ITEMS);
        copy.extend(items.iter().cloned());
        copy
    })
}

impl<T> Default for ChunkedDeque<T> {
    fn default() -> Self {
        ChunkedDeque {
            chunks: VecDeque::new(),
        }
    }
}

impl<T> ChunkedDeque<T> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.chunks.front().and_then(|c| c.front())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    pub(crate) fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }
}

impl<T: Clone> ChunkedDeque<T> {
    pub(crate) fn push_back(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK_ITEMS => own(last).push_back(item),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK_ITEMS);
                chunk.push_back(item);
                self.chunks.push_back(Arc::new(chunk));
            }
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        if first.len() == 1 {
            // The chunk goes with its last item (copied only if a clone shares the chunk).
            return match Arc::try_unwrap(self.chunks.pop_front()?) {
                Ok(mut chunk) => chunk.pop_front(),
                Err(shared) => shared.front().cloned(),
            };
        }
        own(first).pop_front()
    }
}

impl<T: fmt::Debug> fmt::Debug for ChunkedDeque<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for ChunkedDeque<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // The length first (postcard needs it): a sum over the chunks, not the items.
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for item in self.iter() {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de> + Clone> Deserialize<'de> for ChunkedDeque<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for Items<T> {
            type Value = ChunkedDeque<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = ChunkedDeque::new();
                while let Some(item) = seq.next_element()? {
                    items.push_back(item);
                }
                Ok(items)
            }
        }
        deserializer.deserialize_seq(Items(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes and pops in an irregular pattern across many chunk boundaries, against a
    /// `VecDeque`; the encodings agree at every step checked.
    #[test]
    fn behaves_and_encodes_like_a_vecdeque() {
        let mut chunked = ChunkedDeque::new();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for round in 0..40u64 {
            for _ in 0..(round * 997) % 9000 {
                chunked.push_back((next, format!("e{next}")));
                model.push_back((next, format!("e{next}")));
                next += 1;
            }
            for _ in 0..(round * 1_523) % 7000 {
                assert_eq!(chunked.pop_front(), model.pop_front());
            }
            assert_eq!(chunked.iter().count(), model.len());
            assert_eq!(chunked.front(), model.front());
            assert!(
                chunked
                    .chunks
                    .iter()
                    .all(|c| !c.is_empty() && c.len() <= CHUNK_ITEMS)
            );
            if round % 8 == 0 {
                let bytes = postcard::to_allocvec(&chunked).unwrap();
                assert_eq!(
                    bytes,
                    postcard::to_allocvec(&model).unwrap(),
                    "round {round}"
                );
                let back: ChunkedDeque<(u64, String)> = postcard::from_bytes(&bytes).unwrap();
                assert!(back.iter().eq(model.iter()));
            }
        }
        while let Some(item) = model.pop_front() {
            assert_eq!(chunked.pop_front(), Some(item));
        }
        assert_eq!(chunked.pop_front(), None);
        assert!(chunked.chunks.is_empty());
    }
}
