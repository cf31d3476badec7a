//! A table that only grows, indexed by row number: the ledger's accounts, wallets and
//! grants, and the rows of `Named` (customers, counters). They grow with customers, and a
//! snapshot's image copied them whole while the partition waited (7.8-13 s at 1,000,000
//! customers on the benchmark VM; BENCHMARKS.md, session 20).
//!
//! Rows are kept in chunks of `CHUNK`. `share` (taking an image) hands every chunk to the
//! image behind a reference count; the table takes a chunk back the first time it changes
//! a row in it, and copies it instead if the image still holds it. A chunk the table owns is
//! changed like a `Vec`, with no atomic operation: rows change on every call (balances, a
//! wallet's list of entries), and with a reference count asked on each change a Reserve +
//! Commit pair took 8,182 instructions where it now takes 7,859 (callgrind, BENCHMARKS.md,
//! session 20).
//!
//! Serialized exactly like a `Vec` (a sequence of its rows), so snapshots taken before and
//! after this type read alike.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, Index, IndexMut};
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Rows per chunk: a chunk changed while an image holds it is copied whole.
const CHUNK: usize = 1024;

/// Rows a chunk holding `len` makes room for when it grows: doubling from 4, up to `CHUNK`.
fn room_after(len: usize) -> usize {
    (len * 2).clamp(4, CHUNK)
}

#[derive(Clone)]
enum Chunk<T> {
    Owned(Vec<T>),
    /// Handed to an image by `share`, until the table changes it.
    Shared(Arc<Vec<T>>),
}

impl<T> Deref for Chunk<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        match self {
            Chunk::Owned(rows) => rows,
            Chunk::Shared(rows) => rows,
        }
    }
}

impl<T: Clone> Chunk<T> {
    /// The chunk's rows, to change.
    #[inline(always)]
    fn owned(&mut self, room: usize) -> &mut Vec<T> {
        if let Chunk::Shared(_) = self {
            self.take_back(room);
        }
        match self {
            Chunk::Owned(rows) => rows,
            Chunk::Shared(_) => unreachable!("taken back above"),
        }
    }

    /// Takes the rows back from the images if none holds them any more, or else copies
    /// them, with room for `room`.
    #[cold]
    #[inline(never)]
    fn take_back(&mut self, room: usize) {
        if let Chunk::Shared(shared) = std::mem::replace(self, Chunk::Owned(Vec::new())) {
            let rows = Arc::try_unwrap(shared).unwrap_or_else(|shared| {
                let mut copy = Vec::with_capacity(room.max(shared.len()));
                copy.extend_from_slice(&shared);
                copy
            });
            *self = Chunk::Owned(rows);
        }
    }
}

/// A copy of a table (`Clone`) copies the rows it owns and shares those already shared;
/// `share` is the cheap one.
#[derive(Clone)]
pub struct Rows<T> {
    /// Every chunk but the last holds `CHUNK` rows.
    chunks: Vec<Chunk<T>>,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows { chunks: Vec::new() }
    }
}

impl<T> Rows<T> {
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

    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// A copy for a snapshot's image, sharing every chunk: costs a reference per chunk.
    /// (Takes `&mut self`: the chunks this table owned become shared.)
    pub fn share(&mut self) -> Self {
        let chunks = self
            .chunks
            .iter_mut()
            .map(|chunk| {
                let shared = match std::mem::replace(chunk, Chunk::Owned(Vec::new())) {
                    Chunk::Owned(rows) => Arc::new(rows),
                    Chunk::Shared(rows) => rows,
                };
                *chunk = Chunk::Shared(Arc::clone(&shared));
                Chunk::Shared(shared)
            })
            .collect();
        Rows { chunks }
    }
}

impl<T: Clone> Rows<T> {
    pub fn push(&mut self, row: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => {
                let last = last.owned(room_after(last.len()));
                if last.len() == last.capacity() {
                    last.reserve_exact(room_after(last.len()) - last.len());
                }
                last.push(row);
            }
            _ => {
                let mut chunk = Vec::with_capacity(room_after(0));
                chunk.push(row);
                self.chunks.push(Chunk::Owned(chunk));
            }
        }
    }

    /// The row at `index`, to change (its chunk taken back or copied first if shared).
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let chunk = self.chunks.get_mut(index / CHUNK)?;
        if index % CHUNK >= chunk.len() {
            return None;
        }
        let room = chunk.len();
        chunk.owned(room).get_mut(index % CHUNK)
    }
}

impl<T: Clone> FromIterator<T> for Rows<T> {
    fn from_iter<I: IntoIterator<Item = T>>(rows: I) -> Self {
        let mut table = Rows::new();
        for row in rows {
            table.push(row);
        }
        table
    }
}

impl<T> Index<usize> for Rows<T> {
    type Output = T;

    #[inline]
    fn index(&self, index: usize) -> &T {
        match self.get(index) {
            Some(row) => row,
            None => panic!("row {index} of a table of {}", self.len()),
        }
    }
}

impl<T: Clone> IndexMut<usize> for Rows<T> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut T {
        match self.get_mut(index) {
            Some(row) => row,
            None => panic!("row {index} is past the end of the table"),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for Rows<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for row in self.iter() {
            seq.serialize_element(row)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de> + Clone> Deserialize<'de> for Rows<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Table<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for Table<T> {
            type Value = Rows<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of rows")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut rows: A) -> Result<Self::Value, A::Error> {
                let mut table = Rows::new();
                while let Some(row) = rows.next_element()? {
                    table.push(row);
                }
                Ok(table)
            }
        }
        deserializer.deserialize_seq(Table(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_with(a: &Rows<u64>, b: &Rows<u64>, chunk: usize) -> bool {
        match (&a.chunks[chunk], &b.chunks[chunk]) {
            (Chunk::Shared(a), Chunk::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    #[test]
    fn reads_and_encodes_as_the_vec_it_replaces() {
        for n in [0u64, 1, 3, 1023, 1024, 1025, 3_000] {
            let rows: Rows<u64> = (0..n).map(|i| i * 2).collect();
            let model: Vec<u64> = (0..n).map(|i| i * 2).collect();
            assert_eq!(rows.len(), model.len());
            assert_eq!(rows.is_empty(), model.is_empty());
            assert!(rows.iter().eq(model.iter()));
            assert_eq!(rows.last(), model.last());
            for index in [0, 1, 1023, 1024, 2_999, 3_000] {
                assert_eq!(rows.get(index), model.get(index), "n {n}, row {index}");
            }
            let bytes = postcard::to_allocvec(&rows).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&model).unwrap());
            let back: Rows<u64> = postcard::from_bytes(&bytes).unwrap();
            assert!(back.iter().eq(model.iter()));
            // Room for about what it holds: full chunks, and the last grown by doubling.
            let room: usize = rows.chunks.iter().map(|c| c.capacity()).sum();
            let len = usize::try_from(n).unwrap();
            assert!(
                room <= CHUNK * (len / CHUNK) + (2 * (len % CHUNK)).max(4),
                "n {n}"
            );
        }
    }

    #[test]
    fn a_row_changed_while_an_image_holds_it_copies_only_its_chunk() {
        let mut rows: Rows<u64> = (0..3_000).collect();
        let image = rows.share();
        rows[1_500] = 7;
        *rows.get_mut(2_999).unwrap() += 1;
        rows.push(3_000);
        assert_eq!((rows[1_500], rows[2_999], rows.len()), (7, 3_000, 3_001));
        assert!(image.iter().copied().eq(0..3_000), "the image changed");
        // The first chunk is still shared; the two changed are copies.
        assert!(shared_with(&rows, &image, 0));
        assert!(!shared_with(&rows, &image, 1));
        assert!(!shared_with(&rows, &image, 2));
        assert_eq!(rows.get(3_001), None);
        assert_eq!(rows.get_mut(3_001), None);
        // Once the image is gone, a chunk it held is taken back, not copied.
        let Chunk::Shared(first) = &rows.chunks[0] else {
            panic!("the first chunk should still be shared")
        };
        let first = first.as_ptr();
        drop(image);
        rows[0] = 9;
        assert!(matches!(&rows.chunks[0], Chunk::Owned(c) if c.as_ptr() == first));
        assert_eq!(rows[0], 9);
    }
}
