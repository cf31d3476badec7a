//! The embedded store: a write-ahead log plus snapshots in one directory per partition.
//!
//! # On-disk format (version 2)
//!
//! ```text
//! <dir>/LOCK                          held with an exclusive file lock while open
//! <dir>/wal-<first seq, 20 digits>.log   log segments, appended in order
//! <dir>/snapshot-<seq, 20 digits>.snap   the ledger as of the end of batch <seq>
//! <dir>/journal-<entries before, 20 digits>.jnl   journal entries archived out of memory
//! ```
//!
//! The journal archive (see `archive`): each snapshot writes the journal's chunks sealed
//! since the last one to a `journal-*.jnl` file first, durably, and then leaves them out of
//! the snapshot; the ledger forgets them at the next snapshot, and `ListEntries` and
//! `verify` read them back from the file. So memory and snapshots hold the recent journal
//! only, and archive files are never deleted: together they are the journal.
//!
//! A log record is one engine batch:
//!
//! ```text
//! offset size
//!  0      4   magic "TGL2" (0x54474c32, little endian)
//!  4      4   payload length in bytes (u32 LE, at most 64 MiB)
//!  8      8   batch seq (u64 LE; 1, 2, 3, ... across segments)
//! 16      4   CRC-32C of the payload
//! 20      4   CRC-32C of bytes 0..20
//! 24      n   payload: postcard { commands: [LoggedCommand], chain_head: [u8; 32] }
//! ```
//!
//! Each record is written with one `write` and made durable with `fdatasync` before the
//! engine acknowledges any command in it. The active segment is preallocated: it grows in
//! zero-filled steps of 64 KiB, so that most records land in space the file already has and
//! their `fdatasync` writes no metadata. Zero bytes after the last record are free space.
//! A segment is sealed (its free space cut off) when it passes `SEGMENT_BYTES`, when a
//! snapshot is taken, or when the store closes; a new segment starts with the next batch.
//!
//! A snapshot file is `"TGSNAP03"`, seq (u64 LE), payload length (u64 LE), CRC-32C of the
//! payload (u32 LE), then the postcard-encoded ledger. (`"TGSNAP02"`, read as well, is the
//! same with no journal entry archived.) It is written on a thread of its
//! own (the engine goes on meanwhile) to a temporary file, fsynced, renamed into place and
//! the directory fsynced; only then, on the same thread, are older snapshots and the
//! segments it covers deleted: renamed to `<name>.old`, then cut short 1 MiB at a time, so
//! that freeing their space never holds the log's `fdatasync` for long. Recovery removes
//! the `.tmp` and `.old` files a crash left, unread.
//!
//! Recovery: the newest snapshot (a bad checksum stops start-up), then every record after
//! it. In the last segment, zero bytes from a record boundary to the end of the file are
//! free space; a torn tail (a record cut short, or zero-filled from some point up to the
//! end of the file) is truncated and logged; any other bad record stops start-up with an
//! error naming the file and offset.
//!
//! Format 2 (2026-11-28) chains entries with keyed BLAKE3 (see `ledger::Entry::compute_hash`);
//! a format 1 record or snapshot stops start-up with an error saying so.
//!
//! Why a log of our own rather than an embedded database: the engine already serializes
//! every write and needs exactly one durable append per batch; a log gives that in one
//! `write` + one `fdatasync` (about 150 us here, see BENCHMARKS.md), with a format short
//! enough to document above and recover by hand.

mod archive;
mod wal;

pub use archive::JournalArchive;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Batch, Recovered, Snapshot, Store, StoreError};
use crate::ledger::ArchiveChunks;
use wal::{ActiveSegment, ScanEnd, encode_record, scan_segment};

/// A segment is sealed once it grows past this size; recovery reads one segment at a time,
/// so this also bounds the memory recovery needs beyond the ledger itself.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const _: () = assert!(SEGMENT_BYTES as usize >= wal::MAX_PAYLOAD_BYTES);

/// Snapshots are written as format 3 (its journal may leave archived entries out), and
/// format 2 ones are read (the same layout, nothing archived). A version that knows only
/// format 2 refuses format 3 rather than misread a journal with entries archived.
const SNAPSHOT_MAGIC: &[u8; 8] = b"TGSNAP03";
const SNAPSHOT_MAGIC_2: &[u8; 8] = b"TGSNAP02";
const SNAPSHOT_HEADER_BYTES: usize = 8 + 8 + 8 + 4;

pub struct EmbeddedStore {
    dir: PathBuf,
    _lock: Option<File>,
    /// Opened to read (`tollgate verify`): recovery changes no file, and nothing is written.
    read_only: bool,
    active: Option<ActiveSegment>,
    /// Seq of the last batch appended or recovered.
    last_seq: u64,
    /// The batch the coming snapshot covers the log up to (`begin_snapshot`).
    begun: Option<u64>,
    /// A snapshot being written on its own thread.
    saving: Option<Saving>,
    /// The journal's archive (opened by `recover`).
    archive: Option<Arc<JournalArchive>>,
    /// What the snapshot thread gives way with (`Store::give_way_with`).
    give_way: Option<crate::background::GiveWay>,
}

/// A snapshot file being written: its seq and the thread writing it.
struct Saving {
    seq: u64,
    thread: std::thread::JoinHandle<Result<(), SaveFailed>>,
}

/// Why a snapshot thread stopped short.
enum SaveFailed {
    /// The snapshot (or the journal archive before it) was not written: the log it would
    /// have covered is all still there.
    Write(StoreError),
    /// The snapshot is durable, but the snapshots and log segments it covers could not all
    /// be removed.
    Remove(StoreError),
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir` and locks it against other processes.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io("create directory", &dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked { path: lock_path });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path, e)),
        }
        Ok(EmbeddedStore {
            dir,
            _lock: Some(lock),
            read_only: false,
            active: None,
            last_seq: 0,
            begun: None,
            saving: None,
            archive: None,
            give_way: None,
        })
    }

    /// Opens the store in `dir` to read it, changing nothing: recovery reads what a start
    /// would, but leaves a torn tail and a cut-short snapshot where they are, and the store
    /// takes no batch. For checking a copy, a backup or a read-only volume. Refused while a
    /// server has the directory (its snapshots and log segments change under the reader).
    pub fn open_read_only(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(io(
                "open",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        let lock_path = dir.join("LOCK");
        let lock = match File::open(&lock_path) {
            Ok(lock) => match lock.try_lock_shared() {
                Ok(()) => Some(lock),
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked { path: lock_path });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path, e)),
            },
            // A copy without the lock file: nobody else can be writing it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("open", &lock_path, e)),
        };
        Ok(EmbeddedStore {
            dir,
            _lock: lock,
            read_only: true,
            active: None,
            last_seq: 0,
            begun: None,
            saving: None,
            archive: None,
            give_way: None,
        })
    }

    /// Refuses a write to a store opened with `open_read_only`.
    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(io(
                "write to",
                &self.dir,
                std::io::Error::new(std::io::ErrorKind::ReadOnlyFilesystem, "opened read-only"),
            ));
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn files(&self, prefix: &str, suffix: &str) -> Result<Vec<(u64, PathBuf)>, StoreError> {
        files_in(&self.dir, prefix, suffix)
    }

    fn segment_path(&self, first_seq: u64) -> PathBuf {
        self.dir.join(format!("wal-{first_seq:020}.log"))
    }

    /// Seals the active segment (if any) and starts writing `first_seq`'s segment at
    /// `bytes` (0 for a new one; the end of its last record for the recovered last one).
    fn start_segment(&mut self, first_seq: u64, bytes: u64) -> Result<(), StoreError> {
        if let Some(sealed) = self.active.take() {
            sealed.seal()?;
        }
        let path = self.segment_path(first_seq);
        let active = ActiveSegment::open(path.clone(), bytes).map_err(|e| io("open", &path, e))?;
        sync_dir(&self.dir)?;
        self.active = Some(active);
        Ok(())
    }

    fn load_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        let Some((seq, path)) = self.files("snapshot-", ".snap")?.pop() else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io("read", &path, e))?;
        let corrupt = |what: &str| StoreError::Corrupt {
            path: path.clone(),
            offset: 0,
            what: what.into(),
        };
        if bytes.len() >= SNAPSHOT_HEADER_BYTES && &bytes[..8] == b"TGSNAP01" {
            return Err(corrupt(
                "a snapshot of on-disk format 1; this version reads format 2 (the entry hash \
                 chain changed): start it on an empty data directory",
            ));
        }
        if bytes.len() < SNAPSHOT_HEADER_BYTES
            || (&bytes[..8] != SNAPSHOT_MAGIC && &bytes[..8] != SNAPSHOT_MAGIC_2)
        {
            return Err(corrupt("not a snapshot file"));
        }
        let header_seq = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
        let len = u64::from_le_bytes(bytes[16..24].try_into().unwrap_or([0; 8]));
        let crc = u32::from_le_bytes(bytes[24..28].try_into().unwrap_or([0; 4]));
        let payload = &bytes[SNAPSHOT_HEADER_BYTES..];
        if header_seq != seq || payload.len() as u64 != len {
            return Err(corrupt("snapshot header does not match its name or length"));
        }
        if crc32c::crc32c(payload) != crc {
            return Err(corrupt("snapshot checksum mismatch"));
        }
        Ok(Some(Snapshot {
            seq,
            state: payload.to_vec(),
        }))
    }
}

impl Store for EmbeddedStore {
    fn recover(
        &mut self,
        restore: &mut dyn FnMut(Recovered) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // A snapshot or archive file whose write a crash cut short is never read: only its
        // space is left. So is a covered snapshot or segment a crash left being removed
        // (`remove_covered`).
        let leftovers = [
            ("snapshot-", ".tmp"),
            ("journal-", ".tmp"),
            ("snapshot-", ".old"),
            ("wal-", ".old"),
        ];
        for (prefix, suffix) in leftovers {
            for (_, partial) in self.files(prefix, suffix)? {
                if partial.is_file() && !self.read_only {
                    fs::remove_file(&partial).map_err(|e| io("remove", &partial, e))?;
                }
            }
        }
        self.archive = Some(Arc::new(JournalArchive::open(&self.dir)?));
        let after = match self.load_snapshot()? {
            Some(snapshot) => {
                let seq = snapshot.seq;
                restore(Recovered::Snapshot(snapshot))?;
                seq
            }
            None => 0,
        };
        let segments = self.files("wal-", ".log")?;
        let mut expected = after + 1;
        let mut last_seq = after;
        // Where the last segment's records end.
        let mut end = 0;
        for (i, (first_seq, path)) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            let mut bytes = Vec::new();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| io("read", path, e))?;
            let mut position = *first_seq;
            let mut visit = |batch: Batch| {
                if batch.seq != position {
                    return Err(StoreError::Corrupt {
                        path: path.clone(),
                        offset: 0,
                        what: format!("batch {} found where batch {position} belongs", batch.seq),
                    });
                }
                position += 1;
                if batch.seq < expected {
                    return Ok(()); // covered by the snapshot
                }
                if batch.seq > expected {
                    return Err(StoreError::Corrupt {
                        path: path.clone(),
                        offset: 0,
                        what: format!("batches {expected}..{} are missing", batch.seq),
                    });
                }
                expected += 1;
                last_seq = batch.seq;
                restore(Recovered::Batch(batch))
            };
            end = match scan_segment(path, &bytes, is_last, &mut visit)? {
                ScanEnd::Clean => bytes.len() as u64,
                ScanEnd::Free { offset } => offset,
                ScanEnd::Torn { offset, why } if self.read_only => {
                    tracing::warn!(
                        file = %path.display(),
                        offset,
                        dropped_bytes = bytes.len() as u64 - offset,
                        "{why}: a start would cut this torn tail (it was never acknowledged); \
                         left as it is"
                    );
                    offset
                }
                ScanEnd::Torn { offset, why } => {
                    tracing::warn!(
                        file = %path.display(),
                        offset,
                        dropped_bytes = bytes.len() as u64 - offset,
                        "{why}: truncating the torn tail (it was never acknowledged)"
                    );
                    let file = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| io("open", path, e))?;
                    file.set_len(offset).map_err(|e| io("truncate", path, e))?;
                    file.sync_all().map_err(|e| io("fsync", path, e))?;
                    offset
                }
            };
        }
        self.last_seq = last_seq;
        if self.read_only {
            return Ok(());
        }
        match segments.last() {
            Some((first_seq, _)) => self.start_segment(*first_seq, end)?,
            None => self.start_segment(last_seq + 1, 0)?,
        }
        Ok(())
    }

    fn append(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.writable()?;
        assert_eq!(
            batch.seq,
            self.last_seq + 1,
            "batches are appended in order"
        );
        self.finish_saving(false)?;
        let record = encode_record(batch)?;
        let needs_roll = self
            .active
            .as_ref()
            .is_none_or(|a| a.bytes >= SEGMENT_BYTES);
        if needs_roll {
            self.start_segment(batch.seq, 0)?;
        }
        let Some(active) = self.active.as_mut() else {
            unreachable!("start_segment sets the active segment");
        };
        active.append(&record)?;
        self.last_seq = batch.seq;
        Ok(())
    }

    fn ready_for_snapshot(&mut self) -> bool {
        self.saving
            .as_ref()
            .is_none_or(|saving| saving.thread.is_finished())
    }

    /// Seals the log at `seq`: later batches go to a new segment, so that everything up to
    /// the snapshot can go at once when it is durable.
    fn begin_snapshot(&mut self, seq: u64) -> Result<(), StoreError> {
        self.writable()?;
        assert_eq!(
            seq, self.last_seq,
            "a snapshot covers exactly the log so far"
        );
        self.finish_saving(true)?;
        self.start_segment(seq + 1, 0)?;
        self.begun = Some(seq);
        Ok(())
    }

    /// Hands the snapshot file (the log is sealed at it: `begin_snapshot`) to a thread of its own, so the
    /// writer goes on with the next batches while hundreds of MB go to disk. The log the
    /// snapshot covers is deleted only once the file is durable (checked at the next
    /// append, and at close); a crash before then recovers from the previous snapshot and
    /// the whole log. A failed write is logged and changes nothing else: the log it would
    /// have covered is kept, and the next snapshot tries again (a snapshot only shortens
    /// recovery; stopping the partition for it would lose availability and save nothing).
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.save_snapshot_with_archive(snapshot, ArchiveChunks::default())
    }

    fn give_way_with(&mut self, give_way: crate::background::GiveWay) {
        self.give_way = Some(give_way);
    }

    fn journal_archive(&self) -> Option<Arc<dyn crate::store::JournalArchive>> {
        self.archive
            .clone()
            .map(|a| a as Arc<dyn crate::store::JournalArchive>)
    }

    /// The archive's files first, then the snapshot that leaves their entries out, on the
    /// same thread (see `save_snapshot`).
    fn save_snapshot_with_archive(
        &mut self,
        snapshot: Snapshot,
        chunks: ArchiveChunks,
    ) -> Result<(), StoreError> {
        self.writable()?;
        assert_eq!(
            Some(snapshot.seq),
            self.begun.take(),
            "a snapshot covers the log up to where begin_snapshot sealed it"
        );
        self.finish_saving(true)?;
        let seq = snapshot.seq;
        let dir = self.dir.clone();
        let archive = self.archive.clone();
        let give_way = self.give_way.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-snapshot".into())
            .spawn(move || {
                crate::background::yield_to_callers();
                let _giving_way = give_way.map(crate::background::give_way_here);
                if !chunks.chunks.is_empty() {
                    let Some(archive) = archive else {
                        return Err(SaveFailed::Write(io(
                            "archive the journal in",
                            &dir,
                            std::io::Error::other("the store was not recovered"),
                        )));
                    };
                    archive.write(&chunks).map_err(SaveFailed::Write)?;
                }
                drop(chunks);
                write_snapshot(&dir, &snapshot).map_err(SaveFailed::Write)?;
                drop(snapshot);
                // Here, not on the writer: removing the segments of 100,000 batches and a
                // snapshot of 500 MB held one batch, and every call in it, for about 100 ms
                // (BENCHMARKS.md, session 19).
                remove_covered(&dir, seq).map_err(SaveFailed::Remove)
            })
            .map_err(|e| io("start the snapshot thread for", &self.dir, e))?;
        self.saving = Some(Saving { seq, thread });
        Ok(())
    }
}

impl EmbeddedStore {
    /// Once the snapshot thread is done (waiting for it when `wait`): it wrote the snapshot,
    /// then removed the older snapshots and the log segments the snapshot covers. A snapshot
    /// not written is logged and the partition goes on; removals that failed stop it, a
    /// store error as any other.
    fn finish_saving(&mut self, wait: bool) -> Result<(), StoreError> {
        let Some(saving) = self.saving.take() else {
            return Ok(());
        };
        if !wait && !saving.thread.is_finished() {
            self.saving = Some(saving);
            return Ok(());
        }
        let saved = saving.thread.join().unwrap_or_else(|_| {
            Err(SaveFailed::Write(io(
                "write snapshot (the thread panicked)",
                &self.dir,
                std::io::Error::other("panicked"),
            )))
        });
        match saved {
            Ok(()) => Ok(()),
            Err(SaveFailed::Write(error)) => {
                tracing::error!(
                    %error,
                    seq = saving.seq,
                    "snapshot not written; the log it would have covered is kept and the \
                     partition goes on (recovery replays more until a snapshot succeeds)"
                );
                Ok(())
            }
            Err(SaveFailed::Remove(error)) => Err(error),
        }
    }
}

/// The files of `dir` named `prefix<number>suffix`, by number.
fn files_in(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| io("read directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix))
        else {
            continue;
        };
        if let Ok(seq) = number.parse::<u64>() {
            found.push((seq, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Removes the snapshots older than the one at `seq` and the log segments it covers (those
/// starting at or before `seq`: the writer went on in a segment of its own from `seq + 1`,
/// `begin_snapshot`), then makes the removals durable.
///
/// Each file is first renamed to `<name>.old` (the renames made durable together), then cut
/// short step by step and unlinked (`remove_gradually`). A crash in between leaves `.old`
/// files, which recovery removes unread: a segment cut short under its own name would read as
/// a torn log.
fn remove_covered(dir: &Path, seq: u64) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let snapshots = files_in(dir, "snapshot-", ".snap")?
        .into_iter()
        .filter(|&(older, _)| older < seq);
    let segments = files_in(dir, "wal-", ".log")?
        .into_iter()
        .filter(|&(first_seq, _)| first_seq <= seq);
    let mut going = Vec::new();
    for (_, path) in snapshots.chain(segments) {
        let old = path.with_extension(OLD_EXTENSION);
        fs::rename(&path, &old).map_err(|e| io("rename", &path, e))?;
        going.push(old);
    }
    if going.is_empty() {
        return Ok(());
    }
    sync_dir(dir)?;
    let mut cuts = 0;
    for old in &going {
        cuts += remove_gradually(old, REMOVE_STEP_BYTES)?;
    }
    sync_dir(dir)?;
    tracing::info!(
        files = going.len(),
        cuts,
        ms = started.elapsed().as_millis() as u64,
        "covered snapshot and log removed"
    );
    Ok(())
}

/// What a covered snapshot or log segment is renamed to before it is removed
/// (`remove_covered`).
const OLD_EXTENSION: &str = "old";

/// Bytes cut off a file between two syncs as it is removed (`remove_gradually`). Unlinked in
/// one call, a file's blocks are all freed at once, and a concurrent log `fdatasync` waits
/// behind that: a 430 MB file's unlink took 190-230 ms, and a log write of 6 KB 86-135 ms
/// (on ext4 without a journal, mounted with online `discard`, which likely sends the freed
/// blocks' discards to the disk together; not traced). Cut 1 MiB at a time, each step synced, the log
/// write waited 1.55 ms at most and the file took 330 ms to go (8 MiB steps: 4.5 ms at most;
/// BENCHMARKS.md, session 24).
const REMOVE_STEP_BYTES: u64 = 1024 * 1024;

/// Removes `path` by cutting it short `step` bytes at a time, syncing each cut, and then
/// unlinking what is left (nothing). Returns the number of cuts.
fn remove_gradually(path: &Path, step: u64) -> Result<u64, StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io("open", path, e))?;
    let mut len = file.metadata().map_err(|e| io("stat", path, e))?.len();
    let mut cuts = 0;
    while len > 0 {
        len = (len - 1) / step * step;
        file.set_len(len).map_err(|e| io("truncate", path, e))?;
        file.sync_all().map_err(|e| io("fsync", path, e))?;
        cuts += 1;
    }
    drop(file);
    fs::remove_file(path).map_err(|e| io("remove", path, e))?;
    Ok(cuts)
}

/// Bytes written between two `fdatasync`s of a file `replace_durably` writes. The log's
/// `fdatasync` flushes the disk's cache, and so waits for whatever else has been written
/// and not yet flushed: written in one go, a snapshot of 584 MB held the log's writes back
/// for seconds after it was taken (Reserve + Commit p50 57 ms for two seconds, BENCHMARKS.md
/// session 13). In pieces, the log waits behind one piece at most. Smaller pieces make the
/// file take longer and the log's writes wait less: while a 545 MB snapshot was written,
/// Reserve + Commit's p99 was 8.4-8.5 ms in 1 MiB pieces (the file took 1.2 s) and 5.8-5.9 ms
/// in 256 KiB pieces (2.8-2.9 s), against 4.1-4.5 ms with no snapshot (BENCHMARKS.md,
/// session 19). Nothing waits for the file: the next snapshot is 100,000 batches later.
const SYNC_EVERY_BYTES: usize = 256 * 1024;

/// Writes `snapshot` to `dir` durably (`replace_durably`): the header, then the state as
/// it is: a snapshot can be hundreds of MB, so it is not copied into one buffer first. The
/// thread gives way to the partition's own (see `background`).
/// Writes the snapshot file, or removes what it wrote of it.
fn write_snapshot(dir: &Path, snapshot: &Snapshot) -> Result<(), StoreError> {
    let tmp = dir.join(format!("snapshot-{:020}.tmp", snapshot.seq));
    let written = write_snapshot_file(dir, &tmp, snapshot);
    if written.is_err() && tmp.is_file() {
        // A partial file would hold disk space until the next start.
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_snapshot_file(dir: &Path, tmp: &Path, snapshot: &Snapshot) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let path = dir.join(format!("snapshot-{:020}.snap", snapshot.seq));
    let mut header = Vec::with_capacity(SNAPSHOT_HEADER_BYTES);
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&snapshot.seq.to_le_bytes());
    header.extend_from_slice(&(snapshot.state.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32c::crc32c(&snapshot.state).to_le_bytes());
    replace_durably(dir, tmp, &path, &[&header, &snapshot.state])?;
    tracing::info!(
        seq = snapshot.seq,
        bytes = snapshot.state.len(),
        ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    Ok(())
}

impl Drop for EmbeddedStore {
    /// A store closed in order leaves its last segment without free space (a crash leaves
    /// it, and recovery reads it as the end of the log).
    fn drop(&mut self) {
        if let Err(error) = self.finish_saving(true) {
            tracing::warn!(%error, "the last snapshot was not written; the log it covers is kept");
        }
        if let Some(active) = self.active.take()
            && let Err(error) = active.seal()
        {
            tracing::warn!(%error, "could not trim the log's preallocated space at close");
        }
    }
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `path` (in `dir`) hold `parts`, whole or not at all across a crash: written to
/// `tmp` (synced every `SYNC_EVERY_BYTES` on the way), synced, renamed over `path`,
/// and the directory synced.
pub(crate) fn replace_durably(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    parts: &[&[u8]],
) -> Result<(), StoreError> {
    replace_durably_with(dir, tmp, path, |out| {
        parts.iter().try_for_each(|part| out(part))
    })
}

/// As `replace_durably`, with the parts handed to `out` one by one as `fill` makes them
/// (so that a large file need not be in memory whole).
pub(crate) fn replace_durably_with(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), StoreError>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut file = File::create(tmp).map_err(|e| io("create", tmp, e))?;
    let mut unsynced = 0;
    fill(&mut |part: &[u8]| {
        for piece in part.chunks(SYNC_EVERY_BYTES) {
            crate::background::pause_point();
            file.write_all(piece).map_err(|e| io("write", tmp, e))?;
            unsynced += piece.len();
            if unsynced >= SYNC_EVERY_BYTES {
                file.sync_data().map_err(|e| io("fdatasync", tmp, e))?;
                unsynced = 0;
            }
        }
        Ok(())
    })?;
    file.sync_all().map_err(|e| io("fsync", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| io("rename", tmp, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests;
