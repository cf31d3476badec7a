//! The journal: entries in order, in fixed-size chunks so that growing it never copies what
//! is already there (a `Vec` doubling would move gigabytes at scale).
//!
//! Full chunks are sealed (shared, never changed again), so a store can archive them: write
//! them out while the partition goes on, then let the journal forget them. The journal then
//! keeps only the entries after `first` in memory; `get` of an older one says it is archived.
//! The ledger's state (balances, holds, answers) never needs an old entry: only reads of
//! the journal (`ListEntries`) and `verify` do, and they go to the archive for it.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::entry::Entry;
use super::spare::Pool;
use super::types::EntryId;

/// Entries per chunk: the unit of archiving. 4,096 entries, about half a MiB in memory.
pub const CHUNK_ENTRIES: usize = 1 << 12;

/// A sealed chunk: `CHUNK_ENTRIES` entries, shared with the store that archives them.
pub type Chunk = Arc<Vec<Entry>>;

/// Entries to archive: `chunks` hold the entries from `first + 1` on, in order.
#[derive(Debug, Clone, Default)]
pub struct ArchiveChunks {
    /// Entries before these (all archived already).
    pub first: u64,
    pub chunks: Vec<Chunk>,
}

impl ArchiveChunks {
    /// Entries archived once these are: `first` plus theirs.
    pub fn through(&self) -> u64 {
        self.first + self.chunks.iter().map(|c| c.len() as u64).sum::<u64>()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Full chunks, oldest first; the first starts after entry `first`.
    sealed: VecDeque<Chunk>,
    /// The chunk being filled.
    open: Vec<Entry>,
    /// Entries no longer in memory (archived): ids `1..=first`.
    first: u64,
    /// Entries a snapshot leaves out, because the archive holds them, or will before that
    /// snapshot is durable: at least `first`, at a chunk boundary.
    archiving: u64,
    /// Where new chunks come from, touched ahead of need, and forgotten ones go (`spare`).
    pub(crate) spares: Option<Arc<Pool<Entry>>>,
}

impl Journal {
    /// Entries ever appended, archived ones included.
    pub fn len(&self) -> usize {
        self.first as usize + self.sealed.len() * CHUNK_ENTRIES + self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries archived and no longer in memory: ids `1..=archived()`.
    pub fn archived(&self) -> u64 {
        self.first
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        if self.open.capacity() == 0 {
            self.open = self.new_chunk();
        }
        self.open.push(entry);
        if self.open.len() == CHUNK_ENTRIES {
            let next = self.new_chunk();
            let full = std::mem::replace(&mut self.open, next);
            self.sealed.push_back(Arc::new(full));
        }
    }

    /// An empty chunk with room for `CHUNK_ENTRIES`: a touched one from the pool if it has
    /// one ready.
    fn new_chunk(&self) -> Vec<Entry> {
        self.spares
            .as_ref()
            .and_then(|pool| pool.take())
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_ENTRIES))
    }

    /// The entry, if it is in memory (`None` for an id archived or not yet given).
    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        let index = id.0.checked_sub(1)?.checked_sub(self.first)?;
        let index = usize::try_from(index).ok()?;
        let (chunk, offset) = (index / CHUNK_ENTRIES, index % CHUNK_ENTRIES);
        match self.sealed.get(chunk) {
            Some(sealed) => sealed.get(offset),
            None if chunk == self.sealed.len() => self.open.get(offset),
            None => None,
        }
    }

    /// The entries in memory (after `archived()`), in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.in_memory_after(0)
    }

    /// The entries in memory after the first `skip` sealed chunks, in order.
    fn in_memory_after(&self, skip: usize) -> impl DoubleEndedIterator<Item = &Entry> {
        self.sealed
            .iter()
            .skip(skip)
            .flat_map(|chunk| chunk.iter())
            .chain(self.open.iter())
    }

    /// The sealed chunks after entry `durable` (which the archive holds already), to be
    /// archived with the next snapshot; from now on snapshots leave them out. Called again
    /// before the archive has them (the write failed), it gives the same chunks again.
    pub(crate) fn take_to_archive(&mut self, durable: u64) -> ArchiveChunks {
        let from = durable.max(self.first);
        let skip = usize::try_from(from - self.first).unwrap_or(usize::MAX) / CHUNK_ENTRIES;
        let chunks: Vec<Chunk> = self.sealed.iter().skip(skip).cloned().collect();
        let first = self.first + (skip * CHUNK_ENTRIES) as u64;
        let archive = ArchiveChunks { first, chunks };
        self.archiving = archive.through();
        archive
    }

    /// Forgets the chunks the archive holds durably (entries up to `durable`), and gives
    /// them back to be dropped where it costs nobody a wait.
    pub(crate) fn forget_archived(&mut self, durable: u64) -> Vec<Chunk> {
        let mut forgotten = Vec::new();
        while self.first + CHUNK_ENTRIES as u64 <= durable.min(self.archiving) {
            let Some(chunk) = self.sealed.pop_front() else {
                break;
            };
            self.first += CHUNK_ENTRIES as u64;
            forgotten.push(chunk);
        }
        forgotten
    }
}

impl PartialEq for Journal {
    /// The same entries, with the same ones archived.
    fn eq(&self, other: &Self) -> bool {
        self.first == other.first && self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Journal {}

#[cfg(test)]
impl std::ops::Index<usize> for Journal {
    type Output = Entry;

    fn index(&self, index: usize) -> &Entry {
        let found = self.get(EntryId(index as u64 + 1));
        found.unwrap_or_else(|| panic!("entry {} is not in memory", index + 1))
    }
}

#[cfg(test)]
impl std::ops::IndexMut<usize> for Journal {
    fn index_mut(&mut self, index: usize) -> &mut Entry {
        let index = index - self.first as usize;
        let (chunk, offset) = (index / CHUNK_ENTRIES, index % CHUNK_ENTRIES);
        match self.sealed.get_mut(chunk) {
            Some(sealed) => &mut Arc::make_mut(sealed)[offset],
            None => &mut self.open[offset],
        }
    }
}

/// Entries per element of the encoded journal: the chunk size before 2026-12-05, so that a
/// journal with nothing archived encodes byte for byte as it did (and an older version
/// reads a DynamoDB checkpoint this one wrote).
const ENCODED_GROUP: usize = 1 << 16;
const _: () = assert!(ENCODED_GROUP.is_multiple_of(CHUNK_ENTRIES));

/// Encoded as `chunks`, the entries a snapshot keeps (from `archiving` on) in groups of
/// `ENCODED_GROUP`, and `len`, the length of the whole journal: the entries before the
/// first kept one are in the archive.
impl Serialize for Journal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        use std::cell::RefCell;

        type Entries<'a> = Box<dyn Iterator<Item = &'a Entry> + 'a>;
        /// The next `.1` entries of the shared iterator.
        struct Group<'a, 'b>(&'b RefCell<Entries<'a>>, usize);
        impl Serialize for Group<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.1))?;
                let mut entries = self.0.borrow_mut();
                for _ in 0..self.1 {
                    let Some(entry) = entries.next() else {
                        return Err(serde::ser::Error::custom("journal shorter than counted"));
                    };
                    seq.serialize_element(entry)?;
                }
                seq.end()
            }
        }
        struct Groups<'a>(&'a Journal, usize);
        impl Serialize for Groups<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Groups(journal, skip) = *self;
                let kept =
                    journal.sealed.len().saturating_sub(skip) * CHUNK_ENTRIES + journal.open.len();
                let entries: Entries<'_> = Box::new(journal.in_memory_after(skip));
                let entries = RefCell::new(entries);
                let mut seq = serializer.serialize_seq(Some(kept.div_ceil(ENCODED_GROUP)))?;
                for start in (0..kept).step_by(ENCODED_GROUP) {
                    seq.serialize_element(&Group(&entries, ENCODED_GROUP.min(kept - start)))?;
                }
                seq.end()
            }
        }

        let skip = usize::try_from(self.archiving.saturating_sub(self.first)).unwrap_or(usize::MAX)
            / CHUNK_ENTRIES;
        let mut s = serializer.serialize_struct("Journal", 2)?;
        s.serialize_field("chunks", &Groups(self, skip))?;
        s.serialize_field("len", &self.len())?;
        s.end()
    }
}

/// Reads the encoding above (groups of any size), pushing each entry into place as it is
/// decoded: no group is built and then split.
impl<'de> Deserialize<'de> for Journal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{DeserializeSeed, Error, SeqAccess, Visitor};
        use std::fmt;

        /// A sequence of entries (`group`) or of groups (`!group`), pushed into the journal.
        struct Into<'a> {
            journal: &'a mut Journal,
            group: bool,
        }
        impl<'de> DeserializeSeed<'de> for Into<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_seq(self)
            }
        }
        impl<'de> Visitor<'de> for Into<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(if self.group {
                    "journal entries"
                } else {
                    "groups of journal entries"
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                if self.group {
                    while let Some(entry) = seq.next_element::<Entry>()? {
                        self.journal.push(entry);
                    }
                } else {
                    let journal = self.journal;
                    while seq
                        .next_element_seed(Into {
                            journal: &mut *journal,
                            group: true,
                        })?
                        .is_some()
                    {}
                }
                Ok(())
            }
        }

        struct JournalVisitor;
        impl<'de> Visitor<'de> for JournalVisitor {
            type Value = Journal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a journal")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Journal, A::Error> {
                let mut journal = Journal::default();
                let into = Into {
                    journal: &mut journal,
                    group: false,
                };
                if seq.next_element_seed(into)?.is_none() {
                    return Err(A::Error::invalid_length(0, &self));
                }
                let Some(len) = seq.next_element::<u64>()? else {
                    return Err(A::Error::invalid_length(1, &self));
                };
                let kept = journal.len() as u64;
                let Some(first) = len.checked_sub(kept) else {
                    return Err(A::Error::custom(format!(
                        "journal of {len} entries holds {kept}"
                    )));
                };
                journal.first = first;
                journal.archiving = first;
                Ok(journal)
            }
        }

        deserializer.deserialize_struct("Journal", &["chunks", "len"], JournalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{EntryKind, Timestamp};

    fn entry(id: u64) -> Entry {
        Entry {
            id: EntryId(id),
            time: Timestamp(id),
            kind: EntryKind::Debit,
            wallet: 0,
            legs: Default::default(),
            hash: [id as u8; 32],
        }
    }

    fn journal(entries: u64) -> Journal {
        let mut journal = Journal::default();
        for id in 1..=entries {
            journal.push(entry(id));
        }
        journal
    }

    fn round_trip(journal: &Journal) -> Journal {
        postcard::from_bytes(&postcard::to_allocvec(journal).unwrap()).unwrap()
    }

    const C: u64 = CHUNK_ENTRIES as u64;

    #[test]
    fn entries_are_found_by_id_across_chunks() {
        let journal = journal(2 * C + 5);
        assert_eq!(journal.len() as u64, 2 * C + 5);
        for id in [1, C, C + 1, 2 * C, 2 * C + 1, 2 * C + 5] {
            assert_eq!(journal.get(EntryId(id)).map(|e| e.id), Some(EntryId(id)));
        }
        assert!(journal.get(EntryId(0)).is_none());
        assert!(journal.get(EntryId(2 * C + 6)).is_none());
        assert_eq!(journal.iter().count() as u64, 2 * C + 5);
        assert_eq!(round_trip(&journal), journal);
    }

    #[test]
    fn archived_chunks_are_left_out_of_snapshots_then_forgotten_once_durable() {
        let mut journal = journal(3 * C + 7);
        let archive = journal.take_to_archive(0);
        assert_eq!((archive.first, archive.chunks.len()), (0, 3));
        assert_eq!(archive.through(), 3 * C);
        // Not durable yet: still in memory, but a snapshot leaves the chunks out.
        assert!(journal.get(EntryId(1)).is_some());
        let snapshot = round_trip(&journal);
        assert_eq!(snapshot.archived(), 3 * C);
        assert_eq!(snapshot.len(), journal.len());
        assert!(snapshot.get(EntryId(3 * C)).is_none());
        assert_eq!(
            snapshot.get(EntryId(3 * C + 1)),
            journal.get(EntryId(3 * C + 1))
        );
        // The archive write failed: the next snapshot hands the same chunks out again.
        let again = journal.take_to_archive(0);
        assert_eq!((again.first, again.chunks.len()), (0, 3));
        // Only what is durable is forgotten.
        assert!(journal.forget_archived(C + 1).len() == 1);
        assert_eq!(journal.archived(), C);
        assert!(journal.get(EntryId(C)).is_none());
        assert_eq!(
            journal.get(EntryId(C + 1)).map(|e| e.id),
            Some(EntryId(C + 1))
        );
        assert_eq!(journal.forget_archived(3 * C).len(), 2);
        assert_eq!(journal.archived(), 3 * C);
        assert_eq!(journal, snapshot);
        // Growing on: the next archive starts after what the archive holds.
        for id in 3 * C + 8..=4 * C {
            journal.push(entry(id));
        }
        let next = journal.take_to_archive(3 * C);
        assert_eq!((next.first, next.chunks.len()), (3 * C, 1));
        assert_eq!(next.chunks[0][0].id, EntryId(3 * C + 1));
        assert_eq!(journal.iter().count() as u64, C);
    }

    /// A journal with nothing archived encodes as it did with 65,536-entry chunks (an
    /// older version reads it), and such an encoding reads back the same.
    #[test]
    fn the_encoding_is_the_one_of_65536_entry_chunks() {
        #[derive(Serialize, Deserialize)]
        struct Old {
            chunks: Vec<Vec<Entry>>,
            len: usize,
        }
        let entries: Vec<Entry> = (1..=2 * ENCODED_GROUP as u64 + 3).map(entry).collect();
        let old = Old {
            chunks: entries
                .chunks(ENCODED_GROUP)
                .map(<[Entry]>::to_vec)
                .collect(),
            len: entries.len(),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let journal = journal(entries.len() as u64);
        assert_eq!(postcard::to_allocvec(&journal).unwrap(), bytes);
        let read: Journal = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(read, journal);
        assert!(read.iter().eq(entries.iter()));
        // Groups of another size read back as the same entries too.
        let odd = Old {
            chunks: entries.chunks(1000).map(<[Entry]>::to_vec).collect(),
            len: entries.len(),
        };
        let read: Journal = postcard::from_bytes(&postcard::to_allocvec(&odd).unwrap()).unwrap();
        assert_eq!(read, journal);
        // A length shorter than the entries kept is refused.
        let bad = Old {
            chunks: vec![entries[..10].to_vec()],
            len: 9,
        };
        assert!(postcard::from_bytes::<Journal>(&postcard::to_allocvec(&bad).unwrap()).is_err());
        // With chunks archived, what is kept reads back after them.
        let mut archived = journal.clone();
        archived.take_to_archive(0);
        let kept = round_trip(&archived);
        assert_eq!(kept.archived(), 2 * ENCODED_GROUP as u64);
        assert_eq!(kept.iter().count(), 3);
        let decoded: Old =
            postcard::from_bytes(&postcard::to_allocvec(&archived).unwrap()).unwrap();
        assert_eq!(decoded.chunks, vec![entries[2 * ENCODED_GROUP..].to_vec()]);
    }
}
