//! The journal: entries in order, stored in fixed-size chunks so that growing it never
//! copies what is already there (a `Vec` doubling would move gigabytes at scale).

use serde::{Deserialize, Serialize};

use super::entry::Entry;
use super::types::EntryId;

/// Entries per chunk: 64 Ki entries, a few MiB.
const CHUNK_ENTRIES: usize = 1 << 16;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

impl Journal {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK_ENTRIES) {
            self.chunks.push(Vec::with_capacity(CHUNK_ENTRIES));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(entry);
        }
        self.len += 1;
    }

    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        let index = usize::try_from(id.0.checked_sub(1)?).ok()?;
        self.chunks
            .get(index / CHUNK_ENTRIES)?
            .get(index % CHUNK_ENTRIES)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.chunks.iter().flatten()
    }
}

impl std::ops::Index<usize> for Journal {
    type Output = Entry;

    fn index(&self, index: usize) -> &Entry {
        &self.chunks[index / CHUNK_ENTRIES][index % CHUNK_ENTRIES]
    }
}

#[cfg(test)]
impl std::ops::IndexMut<usize> for Journal {
    fn index_mut(&mut self, index: usize) -> &mut Entry {
        &mut self.chunks[index / CHUNK_ENTRIES][index % CHUNK_ENTRIES]
    }
}
