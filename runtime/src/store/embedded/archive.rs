//! The journal archive: sealed journal chunks, written out of memory with the snapshot
//! that leaves them out, and read back by entry id (`ListEntries`) or in order (`verify`).
//!
//! ```text
//! <dir>/journal-<entries before it, 20 digits>.jnl
//!
//! offset size
//!  0      8   magic "TGJRNL01"
//!  8      8   first: the entries before this file's (u64 LE); it holds ids first+1 ...
//! 16      8   count: its entries (u64 LE)
//! 24      4   CRC-32C of bytes 0..24
//! 28      .   the entries, each: CRC-32C of its bytes (u32 LE), then postcard `Entry`
//!  .  8(n+1)  the index: the file offset of each entry's CRC, then of the index itself
//!  .      4   CRC-32C of the index
//! ```
//!
//! Files are written whole before the snapshot that relies on them (`replace_durably`:
//! to a temporary file, made durable, renamed), so each is complete or absent. Together
//! they hold entries `1..=archived` with no gap; a file past a gap (left by a write that
//! failed halfway through a run of them) is never read, and the next snapshot replaces it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{io, replace_durably_with};
use crate::ledger::{ArchiveChunks, Entry, EntryId};
use crate::store::{JournalArchive as _, StoreError};

const MAGIC: &[u8; 8] = b"TGJRNL01";
const HEADER_BYTES: u64 = 28;
/// Entries encoded between two `background::pause_point`s: about 30 KB of the file.
pub(super) const PAUSE_EVERY_ENTRIES: usize = 256;

/// The archive of one partition's journal: the files in its directory, open to read.
#[derive(Debug)]
pub struct JournalArchive {
    dir: PathBuf,
    /// By `first`; contiguous from entry 1.
    files: RwLock<BTreeMap<u64, Arc<ArchiveFile>>>,
}

#[derive(Debug)]
struct ArchiveFile {
    path: PathBuf,
    file: File,
    first: u64,
    count: u64,
    /// Offset of the index.
    index: u64,
}

impl JournalArchive {
    /// Opens the archive files in `dir`: the run of them that holds entries from 1 on with
    /// no gap. A file that is not an archive, or whose header or index is damaged, stops
    /// the start; a file past a gap is left out (and named in the log).
    pub fn open(dir: &Path) -> Result<JournalArchive, StoreError> {
        let mut files = BTreeMap::new();
        let mut through = 0;
        for (first, path) in list(dir)? {
            if first != through {
                tracing::warn!(
                    file = %path.display(),
                    archived_through = through,
                    "journal archive file past a gap (a write that did not finish): not read; \
                     the next snapshot writes its entries again"
                );
                continue;
            }
            let file = ArchiveFile::open(path, first)?;
            through = first + file.count;
            files.insert(first, Arc::new(file));
        }
        Ok(JournalArchive {
            dir: dir.to_path_buf(),
            files: RwLock::new(files),
        })
    }

    /// Writes `chunks` as one file, durably, and adds it to the archive (replacing a file
    /// of the same start left by an earlier attempt). Runs on the snapshot's thread.
    pub(crate) fn write(&self, chunks: &ArchiveChunks) -> Result<(), StoreError> {
        if chunks.chunks.is_empty() {
            return Ok(());
        }
        let first = chunks.first;
        if first > self.archived() {
            return Err(StoreError::Archive {
                what: format!(
                    "{}: a file from entry {} would skip entries {}..={first}",
                    self.dir.display(),
                    first + 1,
                    self.archived() + 1
                ),
            });
        }
        let count = chunks.through() - first;
        let path = self.dir.join(format!("journal-{first:020}.jnl"));
        let tmp = self.dir.join(format!("journal-{first:020}.tmp"));
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&first.to_le_bytes());
        header.extend_from_slice(&count.to_le_bytes());
        header.extend_from_slice(&crc32c::crc32c(&header).to_le_bytes());
        let written = replace_durably_with(&self.dir, &tmp, &path, |out| {
            out(&header)?;
            let mut offsets = Vec::with_capacity(count as usize + 1);
            let mut offset = HEADER_BYTES;
            let mut buffer = Vec::new();
            for chunk in &chunks.chunks {
                buffer.clear();
                for (n, entry) in chunk.iter().enumerate() {
                    if n % PAUSE_EVERY_ENTRIES == 0 {
                        crate::background::pause_point();
                    }
                    offsets.push(offset);
                    let start = buffer.len();
                    buffer.extend_from_slice(&[0; 4]);
                    buffer = postcard::to_extend(entry, buffer).map_err(|e| StoreError::Codec {
                        what: "journal entry",
                        reason: e.to_string(),
                    })?;
                    let crc = crc32c::crc32c(&buffer[start + 4..]);
                    buffer[start..start + 4].copy_from_slice(&crc.to_le_bytes());
                    offset += (buffer.len() - start) as u64;
                }
                out(&buffer)?;
            }
            offsets.push(offset);
            let index: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
            out(&index)?;
            out(&crc32c::crc32c(&index).to_le_bytes())
        });
        if written.is_err() && tmp.is_file() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        let file = ArchiveFile::open(path, first)?;
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        // Files after this one hold entries it replaces (an earlier attempt): never read.
        files.retain(|&start, _| start < first);
        files.insert(first, Arc::new(file));
        Ok(())
    }

    fn read_files(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Arc<ArchiveFile>>> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl crate::store::JournalArchive for JournalArchive {
    /// Entries the archive holds: ids `1..=archived()`.
    fn archived(&self) -> u64 {
        self.read_files()
            .values()
            .next_back()
            .map_or(0, |f| f.first + f.count)
    }

    /// Entry `id`, read from its file.
    fn get(&self, id: EntryId) -> Result<Entry, StoreError> {
        let file = self
            .read_files()
            .range(..id.0)
            .next_back()
            .map(|(_, f)| f.clone())
            .filter(|f| id.0 <= f.first + f.count)
            .ok_or_else(|| StoreError::Archive {
                what: format!(
                    "{}: entry {} is not archived (1..={} are)",
                    self.dir.display(),
                    id.0,
                    self.archived()
                ),
            })?;
        file.get(id)
    }

    /// Every archived entry, in order: for `Ledger::verify_with_archive`.
    fn entries(&self) -> Box<dyn Iterator<Item = Result<Entry, String>> + Send> {
        let files: Vec<Arc<ArchiveFile>> = self.read_files().values().cloned().collect();
        Box::new(files.into_iter().flat_map(|file| {
            let entries: Box<dyn Iterator<Item = Result<Entry, String>> + Send> = match file.scan()
            {
                Ok(entries) => Box::new(entries.map(|e| e.map_err(|e| e.to_string()))),
                Err(e) => Box::new(std::iter::once(Err(e.to_string()))),
            };
            entries
        }))
    }
}

/// The archive files in `dir` by `first`, in order.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io("read directory", dir, e))? {
        let entry = entry.map_err(|e| io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort();
    Ok(found)
}

impl ArchiveFile {
    /// Opens the file and checks its header, its index and that both agree with its size.
    fn open(path: PathBuf, first: u64) -> Result<ArchiveFile, StoreError> {
        let file = File::open(&path).map_err(|e| io("open", &path, e))?;
        let corrupt = |offset: u64, what: String| StoreError::Corrupt {
            path: path.clone(),
            offset,
            what,
        };
        let len = file.metadata().map_err(|e| io("stat", &path, e))?.len();
        let mut header = [0u8; HEADER_BYTES as usize];
        if len < HEADER_BYTES + 12 {
            return Err(corrupt(0, "journal archive file cut short".into()));
        }
        file.read_exact_at(&mut header, 0)
            .map_err(|e| io("read", &path, e))?;
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
        let crc = u32::from_le_bytes(header[24..28].try_into().unwrap_or([0; 4]));
        if &header[..8] != MAGIC || crc32c::crc32c(&header[..24]) != crc {
            return Err(corrupt(
                0,
                "not a journal archive file, or its header is damaged".into(),
            ));
        }
        let (named, count) = (word(8), word(16));
        if named != first {
            return Err(corrupt(
                0,
                format!("holds entries after {named}, named after {first}"),
            ));
        }
        let index_bytes = count
            .checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .filter(|&n| n + 4 + HEADER_BYTES <= len)
            .ok_or_else(|| corrupt(16, format!("{count} entries do not fit in {len} bytes")))?;
        // The index itself is checked by `verify` (a start reads no more than this: it
        // would be 8 bytes per archived entry); each entry's own CRC guards every read.
        let index = len - 4 - index_bytes;
        let mut last = [0u8; 8];
        file.read_exact_at(&mut last, index + index_bytes - 8)
            .map_err(|e| io("read", &path, e))?;
        if u64::from_le_bytes(last) != index {
            return Err(corrupt(
                index,
                "journal archive index does not end where it starts".into(),
            ));
        }
        Ok(ArchiveFile {
            path,
            file,
            first,
            count,
            index,
        })
    }

    fn get(&self, id: EntryId) -> Result<Entry, StoreError> {
        let i = id.0 - self.first - 1;
        let mut bounds = [0u8; 16];
        self.file
            .read_exact_at(&mut bounds, self.index + 8 * i)
            .map_err(|e| io("read", &self.path, e))?;
        let start = u64::from_le_bytes(bounds[..8].try_into().unwrap_or([0; 8]));
        let end = u64::from_le_bytes(bounds[8..].try_into().unwrap_or([0; 8]));
        if !(start + 4 < end && end <= self.index) {
            return Err(self.corrupt(self.index + 8 * i, "index out of order"));
        }
        let mut bytes = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|e| io("read", &self.path, e))?;
        self.decode(start, &bytes, id)
    }

    /// Checks and decodes one entry's record (its CRC, then its bytes), read at `offset`.
    fn decode(&self, offset: u64, record: &[u8], id: EntryId) -> Result<Entry, StoreError> {
        let (crc, body) = record.split_at(4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap_or([0; 4])) {
            return Err(self.corrupt(offset, "journal entry checksum mismatch"));
        }
        let entry: Entry = postcard::from_bytes(body).map_err(|e| StoreError::Codec {
            what: "journal entry",
            reason: e.to_string(),
        })?;
        if entry.id != id {
            return Err(self.corrupt(
                offset,
                &format!("entry {} where {} belongs", entry.id.0, id.0),
            ));
        }
        Ok(entry)
    }

    /// The file's entries in order, read through a buffer.
    fn scan(
        self: Arc<Self>,
    ) -> Result<impl Iterator<Item = Result<Entry, StoreError>>, StoreError> {
        let mut index = vec![0u8; 8 * (self.count as usize + 1)];
        self.file
            .read_exact_at(&mut index, self.index)
            .map_err(|e| io("read", &self.path, e))?;
        let mut crc = [0u8; 4];
        self.file
            .read_exact_at(&mut crc, self.index + index.len() as u64)
            .map_err(|e| io("read", &self.path, e))?;
        if crc32c::crc32c(&index) != u32::from_le_bytes(crc) {
            return Err(self.corrupt(self.index, "journal archive index checksum mismatch"));
        }
        let offsets: Vec<u64> = index
            .chunks_exact(8)
            .map(|o| u64::from_le_bytes(o.try_into().unwrap_or([0; 8])))
            .collect();
        let ordered = offsets.first() == Some(&HEADER_BYTES)
            && offsets.last() == Some(&self.index)
            && offsets.windows(2).all(|w| w[0] + 4 < w[1]);
        if !ordered {
            return Err(self.corrupt(self.index, "journal archive index out of order"));
        }
        // The file this one opened (a retried snapshot may have put another in its place
        // since); reads by id use `read_exact_at`, so moving its offset changes nothing.
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| io("open", &self.path, e))?;
        file.seek(SeekFrom::Start(HEADER_BYTES))
            .map_err(|e| io("seek", &self.path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut record = Vec::new();
        Ok((0..self.count as usize).map(move |i| {
            record.resize((offsets[i + 1] - offsets[i]) as usize, 0);
            reader
                .read_exact(&mut record)
                .map_err(|e| io("read", &self.path, e))?;
            self.decode(offsets[i], &record, EntryId(self.first + i as u64 + 1))
        }))
    }

    fn corrupt(&self, offset: u64, what: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            offset,
            what: what.into(),
        }
    }
}
