//! Items numbered consecutively and forgotten roughly in the order they were made (holds,
//! idempotency answers). Indexed by number: no hashing. Stored in fixed-size chunks, so
//! growing never moves what is already there (a `VecDeque` doubling copies every item, and
//! these hold a day of answers), and forgetting frees whole chunks from the front.
//!
//! Chunks are shared, not copied, by `clone`: a snapshot's image of the ledger costs one
//! reference per chunk, and the ledger copies a chunk only when it changes one the image
//! still holds (its newest and oldest, and those whose holds resolve meanwhile).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

use super::spare::Pool;

/// Items per chunk.
pub(crate) const CHUNK: usize = 4096;

#[derive(Debug, Clone)]
pub(crate) struct Numbered<T> {
    /// Number of `chunks[0][0]`.
    start: u64,
    /// Number of the oldest item kept (every number below it is forgotten).
    base: u64,
    /// Number the next `push` gets.
    next: u64,
    /// `None`: forgotten while an older item is still kept. Every chunk but the last is full.
    chunks: VecDeque<Arc<Vec<Option<T>>>>,
    /// Where new chunks come from, touched ahead of need, and freed ones go (`spare`).
    pub(crate) spares: Option<Arc<Pool<Option<T>>>>,
}

/// `chunk`, to change: copied first when a clone still shares it (with room for a whole
/// chunk, as the newest one fills up).
fn own<T: Clone>(chunk: &mut Arc<Vec<Option<T>>>) -> &mut Vec<Option<T>> {
    super::appended::own(chunk, |items| {
        let mut copy = Vec::with_capacity(CHUNK);
        copy.extend(items.iter().cloned());
        copy
    })
}

impl<T> Numbered<T> {
    pub(crate) fn starting_at(base: u64) -> Self {
        Numbered {
            start: base,
            base,
            next: base,
            chunks: VecDeque::new(),
            spares: None,
        }
    }

    /// The number the next `push` gets.
    pub(crate) fn next_number(&self) -> u64 {
        self.next
    }

    /// Slots from the oldest item kept to the newest (kept or forgotten out of order): what
    /// the memory held is proportional to, in constant time (`len` walks them).
    pub(crate) fn span(&self) -> u64 {
        self.next - self.base
    }

    /// Chunk and offset of a number that is kept or forgotten out of order.
    fn slot(&self, number: u64) -> Option<(usize, usize)> {
        if number < self.base || number >= self.next {
            return None;
        }
        let offset = usize::try_from(number - self.start).ok()?;
        Some((offset / CHUNK, offset % CHUNK))
    }

    pub(crate) fn get(&self, number: u64) -> Option<&T> {
        let (chunk, at) = self.slot(number)?;
        self.chunks.get(chunk)?.get(at)?.as_ref()
    }

    /// The number of the oldest item kept (`next_number` when none is).
    pub(crate) fn front_number(&self) -> u64 {
        self.base
    }

    /// The oldest item kept.
    pub(crate) fn front(&self) -> Option<&T> {
        self.get(self.base)
    }

    /// Kept items, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots().flatten()
    }

    /// Every slot from the oldest kept item to the newest, forgotten ones as `None`.
    fn slots(&self) -> impl Iterator<Item = &Option<T>> {
        let skip = usize::try_from(self.base - self.start).unwrap_or(usize::MAX);
        self.chunks.iter().flat_map(|c| c.iter()).skip(skip)
    }

    pub(crate) fn len(&self) -> usize {
        self.iter().count()
    }

    /// Kept items with their numbers, oldest first.
    pub(crate) fn iter_numbered(&self) -> impl Iterator<Item = (u64, &T)> {
        (self.base..)
            .zip(self.slots())
            .filter_map(|(number, slot)| slot.as_ref().map(|item| (number, item)))
    }
}

impl<T: Clone> Numbered<T> {
    pub(crate) fn push(&mut self, item: T) -> u64 {
        self.push_slot(Some(item))
    }

    fn push_slot(&mut self, slot: Option<T>) -> u64 {
        match self.chunks.back_mut() {
            Some(chunk) if chunk.len() < CHUNK => own(chunk).push(slot),
            _ => {
                let mut chunk = self
                    .spares
                    .as_ref()
                    .and_then(|pool| pool.take())
                    .unwrap_or_else(|| Vec::with_capacity(CHUNK));
                chunk.push(slot);
                self.chunks.push_back(Arc::new(chunk));
            }
        }
        let number = self.next;
        self.next += 1;
        number
    }

    /// Kept items, oldest first, to change (each chunk copied first if a clone shares it).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let skip = usize::try_from(self.base - self.start).unwrap_or(usize::MAX);
        self.chunks
            .iter_mut()
            .flat_map(|chunk| own(chunk).iter_mut())
            .skip(skip)
            .flatten()
    }

    pub(crate) fn get_mut(&mut self, number: u64) -> Option<&mut T> {
        let (chunk, at) = self.slot(number)?;
        own(self.chunks.get_mut(chunk)?).get_mut(at)?.as_mut()
    }

    pub(crate) fn remove(&mut self, number: u64) -> Option<T> {
        let (chunk, at) = self.slot(number)?;
        let chunk = self.chunks.get_mut(chunk)?;
        chunk.get(at)?.as_ref()?;
        let item = own(chunk).get_mut(at)?.take();
        self.skip_forgotten();
        item
    }

    /// Removes and returns the oldest item kept.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.remove(self.base);
        if item.is_none() && self.base < self.next {
            // Cannot happen (the oldest kept item is never a hole), but never loop on one.
            self.base += 1;
            self.skip_forgotten();
        }
        item
    }

    /// Moves `base` past forgotten items, freeing every chunk left behind.
    fn skip_forgotten(&mut self) {
        while self.base < self.next && self.get(self.base).is_none() {
            self.base += 1;
            if self.base - self.start >= CHUNK as u64 {
                let freed = self.chunks.pop_front();
                if let Some(pool) = &self.spares {
                    pool.recycle(freed);
                }
                self.start += CHUNK as u64;
            }
        }
        if self.base == self.next {
            // Empty: start afresh at the next number.
            match &self.spares {
                Some(pool) => pool.recycle(self.chunks.drain(..)),
                None => self.chunks.clear(),
            }
            self.start = self.next;
        }
    }
}

impl<T: PartialEq> PartialEq for Numbered<T> {
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base && self.next == other.next && self.slots().eq(other.slots())
    }
}

impl<T: Eq> Eq for Numbered<T> {}

/// Serialized as `{ base, items }`, `items` being every slot from `base` on: the layout of
/// the snapshot format, whatever the chunking in memory.
impl<T: Serialize> Serialize for Numbered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Slots<'a, T>(&'a Numbered<T>);
        impl<T: Serialize> Serialize for Slots<'_, T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let len = usize::try_from(self.0.next - self.0.base).ok();
                let mut seq = serializer.serialize_seq(len)?;
                for slot in self.0.slots() {
                    seq.serialize_element(slot)?;
                }
                seq.end()
            }
        }
        let mut state = serializer.serialize_struct("Numbered", 2)?;
        state.serialize_field("base", &self.base)?;
        state.serialize_field("items", &Slots(self))?;
        state.end()
    }
}

impl<'de, T: Deserialize<'de> + Clone> Deserialize<'de> for Numbered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename = "Numbered")]
        struct Flat<T> {
            base: u64,
            items: Vec<Option<T>>,
        }
        let flat = Flat::<T>::deserialize(deserializer)?;
        let mut numbered = Numbered::starting_at(flat.base);
        for slot in flat.items {
            numbered.push_slot(slot);
        }
        numbered.skip_forgotten();
        Ok(numbered)
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, Numbered};
    use std::collections::VecDeque;

    #[test]
    fn numbers_survive_forgetting_out_of_order() {
        let mut n = Numbered::starting_at(1);
        for i in 1..=5u64 {
            assert_eq!(n.push(i * 10), i);
        }
        assert_eq!(n.remove(3), Some(30));
        assert_eq!(n.remove(1), Some(10));
        assert_eq!(n.get(2), Some(&20));
        assert_eq!(n.get(3), None);
        assert_eq!(n.remove(2), Some(20));
        assert_eq!(n.front(), Some(&40));
        assert_eq!(n.push(60), 6);
        assert_eq!(n.len(), 3);
    }

    /// Against a plain deque model, across many chunks: every number answers the same,
    /// chunks left behind are freed, and a serde round trip keeps everything.
    #[test]
    fn matches_a_deque_across_chunks_and_round_trips() {
        let mut n = Numbered::starting_at(7);
        let mut model: VecDeque<Option<u64>> = VecDeque::new();
        let mut model_base = 7u64;
        let mut x = 12345u64;
        for step in 0..(5 * CHUNK as u64) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            assert_eq!(n.push(step), model_base + model.len() as u64);
            model.push_back(Some(step));
            if x.is_multiple_of(3) {
                // Forget an item somewhere in the oldest few hundred.
                let pick = model_base + (x >> 33) % 300.min(model.len() as u64);
                let i = (pick - model_base) as usize;
                assert_eq!(n.remove(pick), model[i].take());
            }
            if x.is_multiple_of(5) {
                let expected = loop {
                    match model.pop_front() {
                        Some(Some(v)) => {
                            model_base += 1;
                            break Some(v);
                        }
                        Some(None) => model_base += 1,
                        None => break None,
                    }
                };
                assert_eq!(n.pop_front(), expected);
            }
            while matches!(model.front(), Some(None)) {
                model.pop_front();
                model_base += 1;
            }
        }
        for (i, v) in model.iter().enumerate() {
            assert_eq!(n.get(model_base + i as u64), v.as_ref());
        }
        assert_eq!(n.len(), model.iter().flatten().count());
        assert_eq!(n.front(), model.iter().flatten().next());
        assert!(
            n.chunks.len() <= model.len() / CHUNK + 2,
            "chunks behind are freed"
        );
        let bytes = postcard::to_allocvec(&n).unwrap();
        let mut back: Numbered<u64> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.push(1), n.clone().push(1));
    }

    /// The serialized layout is `{ base, items }` with every slot from `base` on (the
    /// snapshot format before chunking).
    #[test]
    fn serializes_as_base_and_slots() {
        #[derive(serde::Serialize)]
        struct Flat {
            base: u64,
            items: VecDeque<Option<u64>>,
        }
        let mut n = Numbered::starting_at(3);
        for i in 0..4u64 {
            n.push(i);
        }
        n.remove(3);
        n.remove(5);
        let flat = Flat {
            base: 4,
            items: VecDeque::from([Some(1), None, Some(3)]),
        };
        assert_eq!(
            postcard::to_allocvec(&n).unwrap(),
            postcard::to_allocvec(&flat).unwrap()
        );
    }
}
