//! Durability. One small trait; the engine is its only caller.
//!
//! The engine logs *commands* (with the ledger time they were applied at) in batches, and
//! from time to time a snapshot of the whole ledger. Recovery loads the latest snapshot and
//! replays the batches after it through the pure ledger, which rebuilds the exact state;
//! each batch also records the ledger's chain head after it, so a replay that diverges
//! (a bug, or a code change that alters results) stops start-up instead of going unseen.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod embedded;

use serde::{Deserialize, Serialize};

use crate::ledger::{Entry, EntryHash, EntryId, Keyed, LedgerConfig, Timestamp};

/// One command as the engine applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoggedCommand {
    /// A client request applied at `now`.
    Apply { now: Timestamp, request: Keyed },
    /// Ledger time moved to `now` with no request (hold timeouts, grant expiries).
    Advance { now: Timestamp },
    /// The ledger's configuration changed (a start with another idempotency window). Logged
    /// where it took effect, so that a replay forgets keys exactly when the original did,
    /// whatever configuration the replaying process was started with.
    Configure { config: LedgerConfig },
}

/// What the engine makes durable with one store write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// 1 for the first batch of a partition, then consecutive.
    pub seq: u64,
    pub commands: Vec<LoggedCommand>,
    /// The ledger's chain head after applying the batch.
    pub chain_head: EntryHash,
}

/// A snapshot: the encoded ledger as of the end of batch `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    pub state: Vec<u8>,
}

/// What recovery reads back, in order: at most one snapshot, then batches.
#[derive(Debug)]
pub enum Recovered {
    Snapshot(Snapshot),
    Batch(Batch),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt record in {path} at offset {offset}: {what}")]
    Corrupt {
        path: std::path::PathBuf,
        offset: u64,
        what: String,
    },
    #[error("cannot encode or decode {what}: {reason}")]
    Codec { what: &'static str, reason: String },
    #[error("store is locked by another process: {path}")]
    Locked { path: std::path::PathBuf },
    #[error("replaying batch {seq} failed: {what}")]
    Replay { seq: u64, what: String },
    #[error("journal archive: {what}")]
    Archive { what: String },
    #[cfg(feature = "dynamodb")]
    #[error(transparent)]
    Dynamo(#[from] dynamodb::DynamoError),
}

impl StoreError {
    /// Whether retrying the same call may succeed. The embedded store treats every I/O
    /// failure as fatal (an fsync that failed may have lost the page cache's data).
    pub fn is_transient(&self) -> bool {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreError::Dynamo(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Another owner holds the partition now (DynamoDB fencing): nothing this process
    /// does with it will succeed again.
    pub fn is_taken_over(&self) -> bool {
        match self {
            #[cfg(feature = "dynamodb")]
            StoreError::Dynamo(dynamodb::DynamoError::Fenced { .. }) => true,
            _ => false,
        }
    }

    /// Stable code for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Io { .. } => "io",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Codec { .. } => "codec",
            StoreError::Locked { .. } => "locked",
            StoreError::Replay { .. } => "replay",
            StoreError::Archive { .. } => "archive",
            #[cfg(feature = "dynamodb")]
            StoreError::Dynamo(e) => e.code(),
        }
    }
}

/// The durable log and snapshots of one partition.
pub trait Store: Send {
    /// Reads what is durable: hands the latest snapshot (if any) to `restore` first, then
    /// every batch logged after it, in order. Repairs a torn tail; refuses corruption.
    /// Must be called once, before `append`.
    fn recover(
        &mut self,
        restore: &mut dyn FnMut(Recovered) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Makes `batch` durable; returns only once it is.
    fn append(&mut self, batch: &Batch) -> Result<(), StoreError>;

    /// Marks the end of the log a coming snapshot covers: the state after batch `seq`, the
    /// last one appended. Batches appended from now on are logged apart from those it
    /// covers, so that the snapshot, saved later (the engine encodes it while the partition
    /// goes on), can drop exactly the log before it. A later `begin_snapshot` replaces an
    /// earlier one never saved (its encoding failed).
    fn begin_snapshot(&mut self, seq: u64) -> Result<(), StoreError>;

    /// Saves `snapshot`, of the state at the batch the last `begin_snapshot` named; the log
    /// it covers may be dropped once it is durable. Both stores write it in the background:
    /// the embedded store on a thread of its own, DynamoDB on its connection's runtime. A
    /// failure is logged, and the log keeps what the snapshot would have covered.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// Whether a snapshot saved now would start at once: false while the last one is still
    /// being written. The engine then takes its snapshot a batch later, rather than wait
    /// with the partition held (a DynamoDB upload can take minutes).
    fn ready_for_snapshot(&mut self) -> bool {
        true
    }

    /// What the store's own background threads (writing a snapshot, say) call between
    /// pieces of their work (`background::pause_point`). By default they do not.
    fn give_way_with(&mut self, _give_way: crate::background::GiveWay) {}

    /// The store's archive of the journal, if it keeps one (both stores do, once
    /// recovered): the engine then hands it the journal's sealed chunks with each snapshot,
    /// which leaves them out, and forgets them once the archive holds them durably.
    fn journal_archive(&self) -> Option<std::sync::Arc<dyn JournalArchive>> {
        None
    }

    /// As `save_snapshot`, writing `chunks` to the journal archive durably first. Only a
    /// store with a `journal_archive` is handed chunks.
    fn save_snapshot_with_archive(
        &mut self,
        snapshot: Snapshot,
        chunks: crate::ledger::ArchiveChunks,
    ) -> Result<(), StoreError> {
        debug_assert!(
            chunks.chunks.is_empty(),
            "this store keeps no journal archive"
        );
        self.save_snapshot(snapshot)
    }
}

/// Where a store keeps the journal entries the ledger no longer holds in memory: ids
/// `1..=archived()`, immutable once written. Reads block (a file, or DynamoDB): callers
/// run them off the async threads, or accept holding theirs (`verify`).
pub trait JournalArchive: Send + Sync + std::fmt::Debug {
    /// Entries the archive holds durably: ids `1..=archived()`.
    fn archived(&self) -> u64;

    /// Entry `id` (at most `archived()`).
    fn get(&self, id: EntryId) -> Result<Entry, StoreError>;

    /// Entries `ids`, in that order (a page of `ListEntries`); a store may read them
    /// together.
    fn get_many(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        ids.iter().map(|&id| self.get(id)).collect()
    }

    /// Every archived entry, in order (for `Ledger::verify_with_archive`); an `Err` says
    /// why the next one could not be read.
    fn entries(&self) -> Box<dyn Iterator<Item = Result<Entry, String>> + Send>;
}

pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(codec(what))
}

/// The error for a value that `what` names, which postcard could not encode or decode.
fn codec(what: &'static str) -> impl Fn(postcard::Error) -> StoreError {
    move |e| StoreError::Codec {
        what,
        reason: e.to_string(),
    }
}

/// Like `encode`, for large values (snapshots), allocating the output once instead of
/// doubling its way up and copying everything each time (for a 290 MB ledger, 2.1-2.2 s
/// against 1.14-1.19 s; BENCHMARKS.md). With a `capacity` at least the encoding's size
/// (the caller's estimate, from the last snapshot), it encodes in one pass; with 0, less
/// than needed, or more than can be reserved, a first pass measures the encoding.
/// Capacity beyond what is written is address space only: no page of it is touched.
///
/// Each pass comes to a `background::pause_point` after every `PACE_BYTES` of output.
pub(crate) fn encode_large<T: Serialize>(
    what: &'static str,
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    if capacity > 0 {
        // Into a buffer that cannot grow: an estimate that falls short costs the pass it
        // was meant to save, not a reallocation of hundreds of MB.
        let mut buffer = Vec::new();
        let fits = buffer.try_reserve_exact(capacity).is_ok()
            && postcard::serialize_with_flavor(value, Paced::new(Bounded(&mut buffer))).is_ok();
        if fits {
            return Ok(buffer);
        }
    }
    let measure = Paced::new(postcard::ser_flavors::Size::default());
    let size = postcard::serialize_with_flavor(value, measure).map_err(codec(what))?;
    let into = postcard::ser_flavors::ExtendFlavor::new(Vec::with_capacity(size));
    postcard::serialize_with_flavor(value, Paced::new(into)).map_err(codec(what))
}

/// Output bytes between two of `encode_large`'s `background::pause_point`s: about 70 us
/// of encoding here (a 290 MB ledger takes 1.14-1.19 s).
pub(crate) const PACE_BYTES: usize = 16 * 1024;

/// A postcard output that passes everything to `inner` and comes to a
/// `background::pause_point` after every `PACE_BYTES`.
struct Paced<F> {
    inner: F,
    since: usize,
}

impl<F> Paced<F> {
    fn new(inner: F) -> Self {
        Paced { inner, since: 0 }
    }

    /// One pause point for each write that takes the output past a multiple of
    /// `PACE_BYTES`: a write of several times that (a long byte string) pauses once after
    /// it, and does not leave the writes after it a pause each to catch up.
    fn taken(&mut self, bytes: usize) {
        self.since += bytes;
        if self.since >= PACE_BYTES {
            self.since %= PACE_BYTES;
            crate::background::pause_point();
        }
    }
}

impl<F: postcard::ser_flavors::Flavor> postcard::ser_flavors::Flavor for Paced<F> {
    type Output = F::Output;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.inner.try_push(data)?;
        self.taken(1);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.inner.try_extend(data)?;
        self.taken(data.len());
        Ok(())
    }

    fn finalize(self) -> postcard::Result<F::Output> {
        self.inner.finalize()
    }
}

/// A postcard output that appends to a `Vec` within its capacity and fails rather than
/// grow it.
struct Bounded<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Bounded<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.0.capacity() - self.0.len() < data.len() {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(codec(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write many `PACE_BYTES` long (a long string) comes to one pause point, and the
    /// small writes after it to none until the output has grown by `PACE_BYTES` again.
    #[test]
    fn a_long_write_pauses_once() {
        let paces = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = paces.clone();
        let _giving_way = crate::background::give_way_here(std::sync::Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        let value = ("x".repeat(5 * PACE_BYTES), [1u8; 8]);
        let bytes = encode_large("test", &value, 0).unwrap();
        assert_eq!(bytes, encode("test", &value).unwrap());
        // Measuring, then encoding: once each.
        assert_eq!(paces.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn encode_large_writes_the_same_bytes_as_encode() {
        let value: Vec<(u64, String, Option<i64>)> = (0..50_000u64)
            .map(|i| {
                (
                    i * 7919,
                    format!("key-{i}"),
                    (i % 3 == 0).then_some(-(i as i64)),
                )
            })
            .collect();
        let expected = encode("test", &value).unwrap();
        let pieces = expected.len() / PACE_BYTES;
        assert!(pieces >= 10, "several pieces to pace: {pieces}");
        let paces = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = paces.clone();
        let giving_way = crate::background::give_way_here(std::sync::Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        let paced = || paces.swap(0, std::sync::atomic::Ordering::SeqCst);
        let bytes = encode_large("test", &value, 0).unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(bytes.capacity(), bytes.len(), "allocated once, to size");
        // Two passes: measuring, then encoding.
        assert_eq!(
            paced(),
            2 * pieces,
            "gave way after every piece of both passes"
        );
        // An estimate that covers it: one pass, into the buffer as reserved.
        let bytes = encode_large("test", &value, 2 * expected.len()).unwrap();
        assert_eq!(bytes, expected);
        assert!(bytes.capacity() >= 2 * expected.len(), "never grown");
        assert!(bytes.capacity() < 4 * expected.len(), "never grown");
        assert_eq!(paced(), pieces, "one pass, giving way after every piece");
        drop(giving_way);
        encode_large("test", &value, 0).unwrap();
        assert_eq!(paced(), 0, "no giving way once the guard is gone");
        // One that falls short by a byte, or by most, or cannot be reserved: measured
        // instead, allocated to size.
        for short in [expected.len() - 1, 10, usize::MAX] {
            let bytes = encode_large("test", &value, short).unwrap();
            assert_eq!(bytes, expected);
            assert_eq!(bytes.capacity(), bytes.len(), "allocated once, to size");
        }
    }
}
