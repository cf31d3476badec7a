//! Write-ahead log segments: framing, scanning, torn-tail repair.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ledger::EntryHash;
use crate::store::{Batch, LoggedCommand, StoreError, decode, encode};

/// `"TGL2"`: a record of format 2 starts here.
pub(crate) const RECORD_MAGIC: u32 = 0x5447_4c32;
/// `"TGL1"`: format 1, whose entries chained with unkeyed BLAKE3; refused with a clear error.
const FORMAT_1_MAGIC: u32 = 0x5447_4c31;
/// magic u32, payload length u32, batch seq u64, payload crc32c u32, header crc32c u32.
pub(crate) const HEADER_BYTES: usize = 24;
/// The largest payload a record may carry. The engine's batch limits keep far below it;
/// a header claiming more is corrupt, not a reason to allocate.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Deserialize)]
struct Payload {
    commands: Vec<LoggedCommand>,
    chain_head: EntryHash,
}

/// `Payload` as written: the batch's commands borrowed, not cloned (a slice and a `Vec`
/// encode the same way).
#[derive(Serialize)]
struct PayloadRef<'a> {
    commands: &'a [LoggedCommand],
    chain_head: EntryHash,
}

/// Encodes a batch as one record: header and payload, written with one `write`.
pub(crate) fn encode_record(batch: &Batch) -> Result<Vec<u8>, StoreError> {
    let payload = encode(
        "log record",
        &PayloadRef {
            commands: &batch.commands,
            chain_head: batch.chain_head,
        },
    )?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(StoreError::Codec {
            what: "log record",
            reason: format!(
                "{} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit",
                payload.len()
            ),
        });
    }
    let mut record = Vec::with_capacity(HEADER_BYTES + payload.len());
    record.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&batch.seq.to_le_bytes());
    record.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&record[..20]);
    record.extend_from_slice(&header_crc.to_le_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

/// How a segment scan ended.
pub(crate) enum ScanEnd {
    /// Every byte belonged to a valid record.
    Clean,
    /// The records end at `offset` and every byte after it is zero: the segment's
    /// preallocated free space, where the next record goes.
    Free { offset: u64 },
    /// The segment ends in a torn write at this offset: the tail must be cut there.
    Torn { offset: u64, why: &'static str },
}

/// Reads every record of a segment in order and hands each batch to `visit`.
///
/// A torn write can only be the last record of the last segment, and shows as a record
/// cut short by the end of the file, or one whose bytes are zeros from some point up to
/// the end of the file. Anything else that fails a check is corruption of a committed
/// record: an error naming the file and offset.
pub(crate) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    is_last: bool,
    visit: &mut dyn FnMut(Batch) -> Result<(), StoreError>,
) -> Result<ScanEnd, StoreError> {
    let corrupt = |offset: usize, what: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        what,
    };
    // Everything from `zero_tail` to the end of the file is zero bytes.
    let zero_tail = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let mut offset = 0;
    while offset < bytes.len() {
        if is_last && zero_tail <= offset {
            return Ok(ScanEnd::Free {
                offset: offset as u64,
            });
        }
        let rest = &bytes[offset..];
        let torn = |why| {
            Ok(ScanEnd::Torn {
                offset: offset as u64,
                why,
            })
        };
        if rest.len() < HEADER_BYTES {
            if is_last {
                return torn("partial record header at end of log");
            }
            return Err(corrupt(
                offset,
                "partial record header in a sealed segment".into(),
            ));
        }
        let header = &rest[..HEADER_BYTES];
        let magic = u32::from_le_bytes(array(&header[0..4]));
        let len = u32::from_le_bytes(array(&header[4..8])) as usize;
        let seq = u64::from_le_bytes(array(&header[8..16]));
        let payload_crc = u32::from_le_bytes(array(&header[16..20]));
        let header_crc = u32::from_le_bytes(array(&header[20..24]));
        if magic == FORMAT_1_MAGIC && crc32c::crc32c(&header[..20]) == header_crc {
            return Err(corrupt(
                offset,
                "a record of on-disk format 1; this version reads format 2 (the entry hash \
                 chain changed): start it on an empty data directory"
                    .into(),
            ));
        }
        if magic != RECORD_MAGIC || crc32c::crc32c(&header[..20]) != header_crc {
            if is_last && zero_tail < offset + HEADER_BYTES {
                return torn("zero-filled record header at end of log");
            }
            if is_last && lost_page_then_nothing(bytes, offset, zero_tail) {
                return torn("record header on a page that never reached the disk");
            }
            return Err(corrupt(offset, "record header checksum mismatch".into()));
        }
        if len > MAX_PAYLOAD_BYTES {
            return Err(corrupt(
                offset,
                format!("record length {len} exceeds the limit"),
            ));
        }
        let end = offset + HEADER_BYTES + len;
        if end > bytes.len() {
            if is_last {
                return torn("record cut short at end of log");
            }
            return Err(corrupt(
                offset,
                "record cut short in a sealed segment".into(),
            ));
        }
        let payload = &rest[HEADER_BYTES..HEADER_BYTES + len];
        if crc32c::crc32c(payload) != payload_crc {
            if is_last && zero_tail < end {
                return torn("zero-filled record payload at end of log");
            }
            if is_last && lost_page_then_nothing(bytes, offset, end) {
                return torn("record with a page that never reached the disk");
            }
            return Err(corrupt(
                offset,
                format!("payload checksum mismatch in batch {seq}"),
            ));
        }
        let decoded: Payload = decode("log record", payload)
            .map_err(|e| corrupt(offset, format!("batch {seq} does not decode: {e}")))?;
        visit(Batch {
            seq,
            commands: decoded.commands,
            chain_head: decoded.chain_head,
        })?;
        offset = end;
    }
    Ok(ScanEnd::Clean)
}

/// Pages the kernel writes back, and a crash may keep some of from reaching the disk.
const PAGE_BYTES: usize = 4096;

/// Whether the record at `offset` (whose bytes end by `end`) shows a page that never reached
/// the disk, with no valid record after it: the write a crash interrupted, which was never
/// acknowledged.
///
/// A write is made durable page by page, in no set order, so a crash can keep any of its
/// pages, not only a prefix: a lost page reads as the zeros the segment was preallocated
/// with. Such a page shows as zeros from the record's start to the end of its page (the
/// header's page lost), or as a whole page of zeros inside the record, with the record's
/// bytes after it. No record has such a run of its own: its header starts with the magic,
/// and a batch's encoding has no 4,096 zero bytes in a row. A bit flip zeroes no page, and
/// a damaged record followed by a valid one is corruption of a committed record, which
/// this never calls torn.
fn lost_page_then_nothing(bytes: &[u8], offset: usize, end: usize) -> bool {
    // Only zeros from `data_end` on: the last of the record's bytes that did reach the disk.
    let data_end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let end = end.min(data_end);
    let mut page = offset - offset % PAGE_BYTES;
    let mut lost = false;
    while page < end && !lost {
        let (from, to) = (page.max(offset), (page + PAGE_BYTES).min(end));
        let shape = from == offset || to - from == PAGE_BYTES;
        lost = shape && to < end && bytes[from..to].iter().all(|b| *b == 0);
        page += PAGE_BYTES;
    }
    lost && valid_record_after(bytes, offset + 1).is_none()
}

/// Where the first record after `from` that passes every check starts, if one does.
fn valid_record_after(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = RECORD_MAGIC.to_le_bytes();
    (from..bytes.len().saturating_sub(HEADER_BYTES)).find(|&at| {
        let header = &bytes[at..at + HEADER_BYTES];
        if header[0..4] != magic
            || crc32c::crc32c(&header[..20]) != u32::from_le_bytes(array(&header[20..24]))
        {
            return false;
        }
        let len = u32::from_le_bytes(array(&header[4..8])) as usize;
        let payload = bytes.get(at + HEADER_BYTES..at + HEADER_BYTES + len);
        payload.is_some_and(|p| crc32c::crc32c(p) == u32::from_le_bytes(array(&header[16..20])))
    })
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// The active segment grows in steps of this many zero bytes, written and made durable
/// with the record that needs them. A record written into space that already exists costs
/// one `fdatasync` of data only (about 115 us here) instead of data plus the inode's new
/// size (about 165 us). The step is small because the write that takes it pays for it:
/// with 6 KB records, a 64 KiB step costs 264 us on one write in eleven (mean 128 us,
/// the lowest of the steps tried), where a 1 MiB step cost 860 us on one in 170 (mean
/// 144 us), with 64 submitters waiting behind that write.
pub(crate) const PREALLOCATE_BYTES: u64 = 64 * 1024;

/// Zeros to extend a segment with, written in pieces of this size.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The segment being appended to.
pub(crate) struct ActiveSegment {
    file: File,
    path: std::path::PathBuf,
    /// End of the last record: the next one is written here.
    pub(crate) bytes: u64,
    /// Length of the file. Everything from `bytes` to here is zero: free space, which
    /// recovery recognises as the end of the log.
    allocated: u64,
}

impl ActiveSegment {
    /// Opens `path` for writing records from `bytes` on (creating it if needed).
    pub(crate) fn open(path: std::path::PathBuf, bytes: u64) -> std::io::Result<ActiveSegment> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let allocated = file.metadata()?.len().max(bytes);
        Ok(ActiveSegment {
            file,
            path,
            bytes,
            allocated,
        })
    }

    /// Writes one record after the last and makes it durable (fdatasync; when the record
    /// needed more space, the new zero-filled space and the file's size with it).
    pub(crate) fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        let io = |op, source| StoreError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        let end = self.bytes + record.len() as u64;
        if end > self.allocated {
            let target = (end + 1).next_multiple_of(PREALLOCATE_BYTES);
            let mut at = end;
            while at < target {
                let n = (target - at).min(ZEROS.len() as u64) as usize;
                self.file
                    .write_all_at(&ZEROS[..n], at)
                    .map_err(|e| io("preallocate", e))?;
                at += n as u64;
            }
            self.allocated = target;
        }
        self.file
            .write_all_at(record, self.bytes)
            .map_err(|e| io("write", e))?;
        self.file.sync_data().map_err(|e| io("fdatasync", e))?;
        self.bytes = end;
        Ok(())
    }

    /// Cuts the free space off, so that a sealed segment ends with its last record.
    pub(crate) fn seal(self) -> Result<(), StoreError> {
        let io = |op, source| StoreError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        if self.allocated > self.bytes {
            self.file
                .set_len(self.bytes)
                .map_err(|e| io("truncate", e))?;
            self.file.sync_all().map_err(|e| io("fsync", e))?;
        }
        Ok(())
    }
}
