//! The dynamodb store: DynamoDB is the system of record of a partition (BYOC installs).
//!
//! # Tables
//!
//! Names, keys and the TTL attribute come from `terraform/modules/dynamodb-ledger/tables.json`
//! (embedded, see `schema.rs`); table name = `table_prefix` + suffix. `P` below is the
//! partition name (at most 64 characters of `[A-Za-z0-9_.-]`, so never containing `#`).
//!
//! | table         | hash key `pk`     | range key `seq` | attributes                                            |
//! |---------------|-------------------|-----------------|-------------------------------------------------------|
//! | `journal`     | `P`               | journal slot    | `epoch`, `kind` = `b`: `batch`, `chunks`, `digest`, `body` |
//! |               | `P`               | journal slot    | `epoch`, `kind` = `f` (a fence, no body)              |
//! |               | `P#s<slot>`       | 1..chunks-1     | `epoch`, `body` (the rest of a batch over one item)   |
//! |               | `P#a`             | 0               | `archived`: the journal archive's mark (see below)    |
//! |               | `P#a<chunk>`      | last entry id   | `first`, `digest`, `body`: archived journal entries   |
//! |               | `P#p<last id>`    | 1..chunks-1     | `body` (the rest of an archive piece over one item)   |
//! | `checkpoints` | `P`               | engine seq      | manifest: `slot`, `epoch`, `chunks`, `bytes`, `digest`, `per_key` |
//! |               | `P#c<seq>#e<epoch>#g<i / per_key>` | chunk `i` | `body` (a slice of the encoded ledger); `per_key` chunks per hash key (8), so that an upload spreads over DynamoDB partitions; a manifest without `per_key` has every chunk under `P#c<seq>#e<epoch>` |
//! | `leases`      | `P`               | -               | `epoch`, `owner`, `incarnation`, `acquired_at_ms`     |
//! | `idempotency` | -                 | -               | not written by this store, see below                  |
//!
//! * **Journal batches.** Each engine batch (every command with the ledger time it was
//!   applied at, plus the chain head after it; postcard, the same `Batch` the embedded
//!   store logs) is one item in the next free *slot*. Slots are the store's own numbering:
//!   they differ from the engine's batch seq because fences take slots too. A batch over
//!   `MAX_CHUNK_BYTES` continues in items under `P#s<slot>`, written in the same transaction.
//!   `digest` is the BLAKE3 of the whole encoded batch. Once a checkpoint is published,
//!   the batches that the checkpoint kept before it covers are deleted (`journal::prune`,
//!   continuations first), since no recovery replays from before that one; fences stay.
//! * **Balance checkpoints.** The encoded ledger as of the end of batch `seq` (balances,
//!   holds, grants, idempotency keys: everything recovery needs), chunked under a key
//!   private to the writer's epoch, then published by one manifest item. Recovery loads
//!   the newest manifest, checks chunk count, size and digest, then replays the journal
//!   after the manifest's `slot`. The upload runs in the background while the journal
//!   goes on (`save_snapshot`): the engine holds the partition while it hands a snapshot
//!   over, and a large ledger takes minutes to upload. Chunks DynamoDB leaves unprocessed
//!   are sent again for as long as each round makes progress. Once a manifest is
//!   published, the checkpoints before the previous one are deleted, chunks first (their
//!   manifests are what the next run looks for). Chunks of an upload whose manifest never
//!   lands (a crash, a fenced writer) are not found again and stay.
//! * **Journal archive.** The ledger's journal entries leave memory as the embedded store's
//!   do: each checkpoint's upload first writes the journal chunks sealed since the last one
//!   (pieces of 64 entries, under a hash key per journal chunk, then the mark under `P#a`
//!   saying how many entries are all written), and the checkpoint leaves them out; the
//!   ledger forgets them at the next checkpoint. `ListEntries` and `verify` read them back
//!   (`archive.rs`). A start whose archive lacks entries the checkpoint left out stops
//!   with an error saying which.
//! * **Idempotency records** live *inside* the journal batch, atomically with the entries
//!   they produced (the command and its key are what is logged, and the ledger remembers
//!   the answer for `idempotency_window_ms` of ledger time, carried by checkpoints). An item
//!   per key in the `idempotency` table would cost one write unit per request, the very
//!   cost group commit removes, and could only be atomic with the batch through a
//!   transaction at twice the price. The table (TTL attribute `expires_at_s`) is kept by
//!   Terraform for keys that must outlive the ledger's window; this store does not write it.
//! * **Partition leases.** One item per partition: the owner's `epoch`, bumped by every
//!   takeover with a write conditioned on the epoch read, plus who took it and when.
//!
//! # One write per batch (group commit)
//!
//! `append` is one conditional `PutItem` (`attribute_not_exists(pk)` on the next slot),
//! or, for a batch over one item, one `TransactWriteItems` of at most `MAX_BATCH_CHUNKS`
//! items. The engine batches whatever arrived while the previous write was in flight, so
//! write units per operation fall as load rises: a Reserve costs about 50 bytes of journal,
//! and a full item holds some thousands of them. See BENCHMARKS.md, "DynamoDB store".
//!
//! # Fencing
//!
//! A new owner (a pod taking the partition over, or the same pod restarting):
//! 1. bumps the lease epoch to `e` (conditional on the epoch it read);
//! 2. loads the newest checkpoint and replays the journal tail up to the last slot `t`;
//! 3. writes a **fence** item into slot `t + 1` (conditional on the slot being free). If
//!    a batch of the old owner got there first, that batch was durable (and maybe
//!    acknowledged): it is replayed too, and the fence goes after it.
//!
//! From then on, every write of an older owner targets a slot that is taken (its next
//! slot is at most the fence's) and fails its condition. The store reads what holds the
//! slot (DynamoDB returns it with the failure): an item of a newer epoch means this
//! writer is fenced, and `append` fails with `DynamoError::Fenced` naming both epochs. No
//! write of a stale owner can land after the fence, so no double spend: the new owner's
//! ledger includes every batch the old one could have acknowledged.
//!
//! This is why pruning never deletes a fence. An owner that slept through its takeover and
//! the pruning of the batches around its fence writes next into the fence's slot, and finds
//! it taken. Its next slot is before the fence's only when its last write landed without
//! its answer (the new owner replayed that batch): writing it again into a slot pruned
//! meanwhile stores the same batch, already in the new owner's history, where no recovery
//! reads (the next pruning deletes it again), and its write after that meets the fence.
//!
//! Why not `TransactWriteItems` with a `ConditionCheck` on the lease for every batch? A
//! transaction costs two write units per KB written plus the check, on every batch; the
//! slot condition costs nothing extra, the fence one write per takeover. Checkpoints,
//! which are rare, do use a transaction with a lease check, so a fenced writer learns it
//! there too.
//!
//! # Failures
//!
//! Every call has a connect timeout, an attempt timeout and a deadline, set explicitly in
//! the SDK, whose own retries are off: `retry.rs` retries throttling, timeouts, dropped
//! connections and 5xx with exponential backoff and full jitter, bounded by attempts and
//! the deadline, then fails with `DynamoError::Unavailable` (transient). A write whose
//! answer was lost is simply written again: if the first attempt landed, the retry
//! collides with an item of the same epoch and digest, which is recognised as ours and
//! counts as success, so nothing is applied twice. When a write gives up, the engine stops
//! (acknowledged means durable); the partition is restarted by recovering on a new store,
//! which takes a new epoch and sees exactly what landed.

mod archive;
mod checkpoint;
mod config;
mod connection;
mod error;
mod fault;
mod items;
mod journal;
mod lease;
pub mod limits;
mod reads;
mod retry;
mod schema;
mod stats;
mod transact;

pub use archive::DynamoArchive;
pub use config::{
    CallPolicy, Credentials, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_BACKOFF, DEFAULT_CALL_DEADLINE,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF, DynamoConfig,
};
pub use connection::DynamoConnection;
pub use error::DynamoError;
pub use fault::FaultLayer;
pub use lease::{Lease, MAX_TAKEOVER_ROUNDS, partition_name};
pub use limits::{MAX_BATCH_BYTES, MAX_CHUNK_BYTES};
pub use retry::backoff;
pub use schema::TABLES_JSON;
pub use stats::{DynamoStats, DynamoStatsSnapshot};

use items::JournalRecord;
use journal::Written;

use std::sync::Arc;

use super::{Batch, JournalArchive, Recovered, Snapshot, Store, StoreError, decode, encode};
use crate::ledger::ArchiveChunks;

/// Most fence attempts while an old owner keeps landing batches in the slot we aim for.
/// Each lost round means the old owner wrote one more batch; a live old owner stops at its
/// next write after the fence, so a handful suffices.
pub const MAX_FENCE_ROUNDS: u32 = 32;

/// Longest owner name (a pod name is at most 63 characters).
pub const MAX_OWNER_BYTES: usize = 128;

/// The durable log and checkpoints of one partition in DynamoDB.
pub struct DynamoStore {
    connection: DynamoConnection,
    partition: String,
    owner: String,
    /// 0 until `recover` has taken the partition over.
    epoch: u64,
    /// Take the partition over only from this epoch (`DynamoConnection::store_again`).
    retake_from: Option<u64>,
    /// Journal slot of the next batch.
    next_slot: u64,
    /// Journal slot and engine seq of the last batch written or recovered.
    last_batch_slot: u64,
    last_seq: u64,
    /// Engine seq and journal slot of the batch the coming checkpoint covers the journal
    /// up to (`begin_snapshot`).
    begun: Option<(u64, u64)>,
    /// The checkpoint being uploaded, if any (see `save_snapshot`).
    uploading: Option<Upload>,
    /// Why the last upload failed, until `finish_checkpoint` reports it (a later upload
    /// that succeeds clears it).
    upload_failed: Option<DynamoError>,
    /// The journal archive (once recovered).
    archive: Option<Arc<DynamoArchive>>,
    /// Set when the store closes: an upload still running leaves its journal pruning to
    /// the next checkpoint, so that closing waits for the checkpoint alone.
    closing: Arc<std::sync::atomic::AtomicBool>,
}

/// A checkpoint being uploaded on the connection's runtime.
struct Upload {
    seq: u64,
    started: std::time::Instant,
    running: connection::Running<()>,
}

/// A checkpoint published: its size, and what was deleted after it.
#[derive(Debug, Clone, Copy)]
struct Uploaded {
    bytes: usize,
    /// Older checkpoints.
    deleted: usize,
    /// Journal batches that the checkpoint kept before it covers.
    pruned: u64,
}

/// Logs and counts how an upload of checkpoint `seq` ended.
fn report_upload(
    shared: &connection::Shared,
    partition: &str,
    seq: u64,
    started: std::time::Instant,
    outcome: Result<Uploaded, &DynamoError>,
) {
    let upload_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(Uploaded {
            bytes,
            deleted,
            pruned,
        }) => {
            tracing::info!(
                partition,
                seq,
                bytes,
                upload_ms,
                older_checkpoints_deleted = deleted,
                journal_batches_deleted = pruned,
                "checkpoint published"
            );
            shared.stats.checkpoint(true, deleted);
            shared.stats.journal_pruned(pruned);
        }
        Err(error) => {
            if matches!(error, DynamoError::Fenced { .. }) {
                tracing::warn!(
                    partition,
                    seq,
                    %error,
                    "checkpoint not published: another owner holds the partition"
                );
            } else {
                tracing::warn!(
                    partition,
                    seq,
                    %error,
                    "checkpoint not published; the journal keeps every batch it would \
                     have covered, and the next checkpoint tries again"
                );
            }
            shared.stats.checkpoint(false, 0);
        }
    }
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("partition", &self.partition)
            .field("owner", &self.owner)
            .field("epoch", &self.epoch)
            .field("next_slot", &self.next_slot)
            .finish()
    }
}

impl DynamoStore {
    /// Connects and returns the store of `partition` for `owner` (see
    /// `DynamoConnection::store` to share one connection between partitions).
    pub fn open(config: DynamoConfig, partition: &str, owner: &str) -> Result<Self, StoreError> {
        DynamoConnection::connect(config)?.store(partition, owner)
    }

    pub(crate) fn new(
        connection: DynamoConnection,
        partition: &str,
        owner: &str,
        retake_from: Option<u64>,
    ) -> Result<Self, StoreError> {
        config::validate_partition(partition)?;
        if owner.is_empty() || owner.len() > MAX_OWNER_BYTES {
            return Err(DynamoError::Config {
                field: "owner",
                reason: format!("{owner:?}: 1 to {MAX_OWNER_BYTES} bytes"),
            }
            .into());
        }
        Ok(DynamoStore {
            connection,
            partition: partition.to_string(),
            owner: owner.to_string(),
            epoch: 0,
            retake_from,
            next_slot: 1,
            last_batch_slot: 0,
            last_seq: 0,
            begun: None,
            uploading: None,
            upload_failed: None,
            archive: None,
            closing: Arc::default(),
        })
    }

    /// Waits for the checkpoint being uploaded, if any, and returns how the last upload
    /// went: `Fenced` if a newer owner holds the partition. (A failure is also logged, and
    /// never fails a later `append`: the journal keeps every batch the checkpoint would
    /// have covered.)
    pub fn finish_checkpoint(&mut self) -> Result<(), StoreError> {
        self.settle_upload(true);
        match self.upload_failed.take() {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// Once the upload in flight has finished (waiting for it when `wait`), keeps a failure
    /// for `finish_checkpoint`. (The upload logged and counted its outcome when it ended;
    /// one that ended without an answer, a panic, is logged and counted here.)
    fn settle_upload(&mut self, wait: bool) {
        let Some(upload) = self.uploading.take() else {
            return;
        };
        let ended = if wait {
            upload.running.wait()
        } else {
            match upload.running.try_take() {
                Ok(ended) => ended,
                Err(running) => {
                    self.uploading = Some(Upload { running, ..upload });
                    return;
                }
            }
        };
        match ended {
            connection::Ended::Answered(Ok(())) => self.upload_failed = None,
            connection::Ended::Answered(Err(error)) => self.upload_failed = Some(error),
            connection::Ended::WithoutAnswer => {
                let error = connection::ended_without_answer();
                report_upload(
                    &self.connection.0,
                    &self.partition,
                    upload.seq,
                    upload.started,
                    Err(&error),
                );
                self.upload_failed = Some(error);
            }
        }
    }

    /// The owner epoch this store writes with (0 before `recover`).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn connection(&self) -> &DynamoConnection {
        &self.connection
    }

    /// The error for a write refused because a newer owner holds the partition.
    fn fenced(&self, seen_epoch: u64) -> DynamoError {
        let partition = self.partition.clone();
        let lease = self
            .connection
            .run(move |shared| async move { lease::current(&shared, &partition).await })
            .ok()
            .flatten();
        DynamoError::Fenced {
            partition: self.partition.clone(),
            epoch: self.epoch,
            current_epoch: lease
                .as_ref()
                .map_or(seen_epoch, |l| l.epoch.max(seen_epoch)),
            current_owner: lease.map_or_else(|| "unknown".to_string(), |l| l.owner),
        }
    }

    fn corrupt(&self, at: u64, reason: String) -> DynamoError {
        DynamoError::Corrupt {
            partition: self.partition.clone(),
            what: "journal",
            at,
            reason,
        }
    }

    fn put(
        &self,
        record: JournalRecord,
        continuations: Vec<Vec<u8>>,
    ) -> Result<Written, DynamoError> {
        let partition = self.partition.clone();
        self.connection.run(move |shared| async move {
            journal::put_record(&shared, &partition, &record, &continuations).await
        })
    }

    /// Replays one journal record found after the checkpoint.
    fn replay(
        &mut self,
        record: JournalRecord,
        newest_epoch: &mut u64,
        restore: &mut dyn FnMut(Recovered) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let slot = record.slot();
        if record.epoch() > self.epoch {
            return Err(self.fenced(record.epoch()).into());
        }
        if record.epoch() < *newest_epoch {
            return Err(self
                .corrupt(
                    slot,
                    format!("epoch {} after epoch {newest_epoch}", record.epoch()),
                )
                .into());
        }
        *newest_epoch = record.epoch();
        let JournalRecord::Batch {
            batch_seq,
            chunks,
            digest,
            body,
            ..
        } = record
        else {
            return Ok(()); // a fence: no commands
        };
        let mut bytes = body;
        if chunks > 1 {
            let partition = self.partition.clone();
            let rest = self.connection.run(move |shared| async move {
                journal::read_continuations(&shared, &partition, slot, chunks).await
            })?;
            for part in rest {
                bytes.extend_from_slice(&part);
            }
        }
        if items::digest_of(&bytes) != digest {
            return Err(self.corrupt(slot, "digest mismatch".into()).into());
        }
        let batch: Batch = decode("journal batch", &bytes)?;
        if batch.seq != batch_seq || batch.seq != self.last_seq + 1 {
            return Err(self
                .corrupt(
                    slot,
                    format!(
                        "batch {} found where batch {} belongs",
                        batch.seq,
                        self.last_seq + 1
                    ),
                )
                .into());
        }
        self.last_seq = batch.seq;
        self.last_batch_slot = slot;
        restore(Recovered::Batch(batch))
    }
}

impl Store for DynamoStore {
    fn recover(
        &mut self,
        restore: &mut dyn FnMut(Recovered) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let incarnation = self.connection.0.incarnation(&self.owner);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (partition, owner) = (self.partition.clone(), self.owner.clone());
        let from = self.retake_from;
        self.epoch = self.connection.run(move |shared| async move {
            lease::take_over(&shared, &partition, &owner, &incarnation, now_ms, from).await
        })?;
        self.connection.0.took(&self.partition, self.epoch);
        self.archive = Some(Arc::new(DynamoArchive::open(
            &self.connection,
            &self.partition,
        )?));

        let partition = self.partition.clone();
        let checkpoint = self
            .connection
            .run(move |shared| async move { checkpoint::load_latest(&shared, &partition).await })?;
        let mut tail = 0;
        if let Some((manifest, state)) = checkpoint {
            tail = manifest.slot;
            self.last_batch_slot = manifest.slot;
            self.last_seq = manifest.seq;
            restore(Recovered::Snapshot(Snapshot {
                seq: manifest.seq,
                state,
            }))?;
        }

        let mut newest_epoch = 0;
        for round in 1..=MAX_FENCE_ROUNDS {
            loop {
                let partition = self.partition.clone();
                let (records, more) = self.connection.run(move |shared| async move {
                    journal::read_page(&shared, &partition, tail).await
                })?;
                for record in records {
                    tail = record.slot();
                    self.replay(record, &mut newest_epoch, restore)?;
                }
                if !more {
                    break;
                }
            }
            let fence = JournalRecord::Fence {
                slot: tail + 1,
                epoch: self.epoch,
            };
            match self.put(fence.clone(), Vec::new())? {
                Written::Stored => {}
                Written::Collided(existing) if existing == fence => {} // our own, retried
                Written::Collided(existing) if existing.epoch() > self.epoch => {
                    return Err(self.fenced(existing.epoch()).into());
                }
                Written::Collided(_) => {
                    tracing::info!(
                        partition = %self.partition,
                        round,
                        "the previous owner wrote past the recovered tail; replaying it"
                    );
                    continue;
                }
            }
            self.next_slot = tail + 2;
            tracing::info!(
                partition = %self.partition,
                epoch = self.epoch,
                fence_slot = tail + 1,
                last_seq = self.last_seq,
                "recovered and fenced"
            );
            return Ok(());
        }
        Err(DynamoError::Unavailable {
            op: "fence",
            attempts: MAX_FENCE_ROUNDS,
            elapsed_ms: 0,
            last: "the previous owner kept writing past every fence attempt".into(),
        }
        .into())
    }

    fn append(&mut self, batch: &Batch) -> Result<(), StoreError> {
        assert!(
            self.epoch > 0,
            "recover takes the partition over before append"
        );
        // Reports a finished upload; a failed one never fails the batch (see above).
        self.settle_upload(false);
        assert_eq!(
            batch.seq,
            self.last_seq + 1,
            "batches are appended in order"
        );
        let body = encode("journal batch", batch)?;
        if body.len() > MAX_BATCH_BYTES {
            return Err(DynamoError::TooLarge {
                what: "journal batch",
                bytes: body.len(),
                limit: MAX_BATCH_BYTES,
            }
            .into());
        }
        let digest = items::digest_of(&body);
        let mut chunks = items::split(&body, MAX_CHUNK_BYTES).into_iter();
        let head = chunks.next().unwrap_or_default().to_vec();
        let continuations: Vec<Vec<u8>> = chunks.map(<[u8]>::to_vec).collect();
        let slot = self.next_slot;
        let transaction = !continuations.is_empty();
        let record = JournalRecord::Batch {
            slot,
            epoch: self.epoch,
            batch_seq: batch.seq,
            chunks: continuations.len() as u64 + 1,
            digest,
            body: head,
        };
        match self.put(record, continuations)? {
            Written::Stored => {}
            Written::Collided(JournalRecord::Batch {
                epoch, digest: d, ..
            }) if epoch == self.epoch && d == digest => {
                // An earlier attempt landed and its answer was lost: written once, done.
            }
            Written::Collided(existing) if existing.epoch() > self.epoch => {
                return Err(self.fenced(existing.epoch()).into());
            }
            Written::Collided(existing) => {
                return Err(self
                    .corrupt(slot, format!("slot taken by {existing:?}"))
                    .into());
            }
        }
        self.connection.0.stats.batch(transaction);
        self.next_slot += 1;
        self.last_batch_slot = slot;
        self.last_seq = batch.seq;
        Ok(())
    }

    /// Notes the journal slot of batch `seq`, which the checkpoint names: batches appended
    /// while the engine encodes it take later slots.
    fn begin_snapshot(&mut self, seq: u64) -> Result<(), StoreError> {
        assert_eq!(
            seq, self.last_seq,
            "a snapshot covers exactly the log so far"
        );
        self.begun = Some((seq, self.last_batch_slot));
        Ok(())
    }

    fn ready_for_snapshot(&mut self) -> bool {
        self.settle_upload(false);
        self.uploading.is_none()
    }

    /// Starts uploading the checkpoint and returns: the engine holds the partition's
    /// ledger while a snapshot is saved, and an upload takes seconds to minutes (a 300 MB
    /// ledger is 750 items), during which the partition would answer nobody. Batches go on
    /// being appended meanwhile; the checkpoint names the journal slot it covers, so it
    /// stays right whenever it lands. One upload at a time: the engine asks
    /// `ready_for_snapshot` first, and a second upload started anyway (at close) waits for
    /// the first. Once published, the checkpoints older than the one
    /// before it are deleted. The outcome is logged when it is known (`append` looks, and
    /// dropping the store waits for it); `finish_checkpoint` waits for it and returns it.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.save_snapshot_with_archive(snapshot, ArchiveChunks::default())
    }

    fn journal_archive(&self) -> Option<Arc<dyn JournalArchive>> {
        self.archive.clone().map(|a| a as Arc<dyn JournalArchive>)
    }

    /// As `save_snapshot`, the upload first writing `chunks` to the journal archive (the
    /// checkpoint leaves their entries out, so it is published only once they are written).
    fn save_snapshot_with_archive(
        &mut self,
        snapshot: Snapshot,
        chunks: ArchiveChunks,
    ) -> Result<(), StoreError> {
        let Some((begun, slot)) = self.begun.take() else {
            panic!("save_snapshot without begin_snapshot");
        };
        assert_eq!(
            snapshot.seq, begun,
            "a snapshot covers the journal up to where begin_snapshot named"
        );
        let archive = self.archive.clone().ok_or_else(|| DynamoError::Config {
            field: "store",
            reason: "a checkpoint is saved only after recover".into(),
        })?;
        self.settle_upload(true);
        let (partition, epoch) = (self.partition.clone(), self.epoch);
        let closing = self.closing.clone();
        let Snapshot { seq, state } = snapshot;
        let started = std::time::Instant::now();
        let running = self.connection.spawn(move |shared| async move {
            let bytes = state.len();
            let outcome = async {
                archive.write(&shared, &chunks).await?;
                checkpoint::write(&shared, &partition, epoch, seq, slot, state).await?;
                // Published: what is older is garbage, and so are the journal batches the
                // checkpoint kept before this one covers. Failing to delete them costs
                // storage only, and the next checkpoint deletes them.
                let collected = match checkpoint::collect_garbage(&shared, &partition, seq).await
                {
                    Ok(collected) => collected,
                    Err(error) => {
                        tracing::warn!(%partition, seq, %error, "older checkpoints not deleted yet");
                        checkpoint::Collected::default()
                    }
                };
                let pruned = match collected.kept {
                    Some(through) if !shared.keep_journal => {
                        let interval = slot.saturating_sub(through);
                        journal::prune(&shared, &partition, through, interval, &closing)
                        .await
                        .unwrap_or_else(|error| {
                            tracing::warn!(%partition, seq, %error, "old journal batches not deleted yet");
                            0
                        })
                    }
                    _ => 0,
                };
                Ok(Uploaded {
                    bytes,
                    deleted: collected.deleted,
                    pruned,
                })
            }
            .await;
            // Reported as soon as it ends, not when the engine next looks.
            report_upload(&shared, &partition, seq, started, outcome.as_ref().copied());
            outcome.map(|_| ())
        });
        self.uploading = Some(Upload {
            seq,
            started,
            running,
        });
        Ok(())
    }
}

impl Drop for DynamoStore {
    /// A checkpoint still uploading (the engine's last one, taken at close) is waited for,
    /// so that the next start replays little; not the journal pruning after it.
    fn drop(&mut self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        self.settle_upload(true);
    }
}

#[cfg(test)]
mod tests;
