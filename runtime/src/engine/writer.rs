//! The writer thread: recovery, then the group-commit loop (see the module above).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Activity, Shared, store_failed};
use crate::background::{give_way_here, yield_to_callers};
use crate::ledger::{ArchiveChunks, EntryHash, Ledger, LedgerConfig};
use crate::store::{
    Batch, LoggedCommand, Recovered, Snapshot, Store, StoreError, decode, encode_large,
};

pub(crate) struct Recovery {
    pub(crate) ledger: Ledger,
    pub(crate) next_seq: u64,
    pub(crate) replayed_batches: u64,
    /// Size and batch of the snapshot recovery started from ((0, 0): none).
    pub(crate) snapshot: (usize, u64),
}

/// Rebuilds the ledger: the latest snapshot, then every later batch replayed through the
/// pure ledger. A replay whose chain head differs from the one logged stops start-up.
///
/// The configuration is the one the log says was in effect: the snapshot's, then every
/// logged `Configure` (a new ledger starts with the default). The writer logs a
/// `Configure` when its own differs (see `Writer::configure`).
pub(crate) fn recover(store: &mut dyn Store) -> Result<Recovery, StoreError> {
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut next_seq = 1;
    let mut replayed_batches = 0;
    let mut taken = (0, 0);
    store.recover(&mut |item| {
        match item {
            Recovered::Snapshot(snapshot) => {
                ledger = decode("snapshot", &snapshot.state)?;
                ledger.share_names();
                next_seq = snapshot.seq + 1;
                taken = (snapshot.state.len(), snapshot.seq);
            }
            Recovered::Batch(batch) => {
                for command in &batch.commands {
                    apply_logged(&mut ledger, command);
                }
                if ledger.chain_head() != batch.chain_head {
                    return Err(StoreError::Replay {
                        seq: batch.seq,
                        what: "the replayed journal differs from the one logged".into(),
                    });
                }
                next_seq = batch.seq + 1;
                replayed_batches += 1;
            }
        }
        Ok(())
    })?;
    // The snapshot leaves out the entries the journal archive holds: it must hold them.
    let archived = store.journal_archive().map_or(0, |a| a.archived());
    if archived < ledger.journal.archived() {
        return Err(StoreError::Archive {
            what: format!(
                "the snapshot leaves out entries 1..={} as archived, but the archive holds \
                 only 1..={archived}",
                ledger.journal.archived()
            ),
        });
    }
    Ok(Recovery {
        ledger,
        next_seq,
        replayed_batches,
        snapshot: taken,
    })
}

fn apply_logged(ledger: &mut Ledger, command: &LoggedCommand) {
    match command {
        LoggedCommand::Apply { now, request } => {
            // The result was answered before the crash; replay only rebuilds state.
            let _ = ledger.apply(*now, request);
        }
        LoggedCommand::Advance { now } => ledger.advance(*now),
        LoggedCommand::Configure { config } => ledger.set_config(*config),
    }
}

/// Before the first command: when this start asks for another configuration than the
/// recovered ledger has, applies it and makes that durable as a batch of its own. Returns
/// whether it wrote that batch.
pub(crate) fn configure(
    store: &mut dyn Store,
    recovered: &mut Recovery,
    config: LedgerConfig,
) -> Result<bool, StoreError> {
    if recovered.ledger.config() == config {
        return Ok(false);
    }
    tracing::info!(
        from_ms = recovered.ledger.config().idempotency_window_ms,
        to_ms = config.idempotency_window_ms,
        "idempotency window changed; logged so that replays forget keys as this run does"
    );
    recovered.ledger.set_config(config);
    store.append(&Batch {
        seq: recovered.next_seq,
        commands: vec![LoggedCommand::Configure { config }],
        chain_head: recovered.ledger.chain_head(),
    })?;
    recovered.next_seq += 1;
    Ok(true)
}

/// The room to encode the snapshot at batch `seq` into, in one pass: the ledger grows
/// with the batches applied (its journal is kept whole), so the last snapshot's size scaled
/// by the batches since the start, and a quarter more; at most two and a half times the
/// last one (once the idempotency window forgets as fast as calls arrive, the ledger grows
/// slower than its batches). 0 (measure first) when there was none. An estimate that
/// falls short costs a measuring pass (`encode_large`).
fn snapshot_room((bytes, at): (usize, u64), seq: u64) -> usize {
    if bytes == 0 || at == 0 {
        return 0;
    }
    let last = bytes as u128;
    let scaled = last.saturating_mul(u128::from(seq.max(at))) / u128::from(at);
    let room = (scaled.saturating_mul(5) / 4).min(last.saturating_mul(5) / 2);
    usize::try_from(room).unwrap_or(usize::MAX)
}

/// The writer thread: cuts the open batch, makes it durable, settles it; sleeps when there
/// is nothing to write.
pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) next_seq: u64,
    pub(crate) batches_since_snapshot: u64,
    pub(crate) store: Box<dyn Store>,
    pub(crate) snapshot_every_batches: u64,
    pub(crate) activity: Option<Arc<Activity>>,
    pub(crate) cut_wait: std::time::Duration,
    /// Size and batch of the last snapshot taken or recovered ((0, 0): none yet), from
    /// which `snapshot_room` estimates the next one's.
    pub(crate) last_snapshot: (usize, u64),
    /// The snapshot being encoded, if any.
    pub(crate) encoding: Option<Encoding>,
}

/// A snapshot whose image was taken (with the ledger held, at the end of batch `seq`) and
/// is being encoded on a thread of its own while the partition goes on.
pub(crate) struct Encoding {
    seq: u64,
    /// The journal's chunks to archive with it (the image leaves them out).
    chunks: ArchiveChunks,
    /// How long the partition's calls waited for the image.
    paused: Duration,
    started: Instant,
    /// The encoded ledger and how long encoding took; disconnected if the thread died.
    done: mpsc::Receiver<Result<(Vec<u8>, Duration), StoreError>>,
}

impl Writer {
    pub(crate) fn run(mut self) {
        let shared = self.shared.clone();
        let mut spare = Vec::with_capacity(shared.max_batch);
        loop {
            if !self.save_encoded(false) {
                return;
            }
            let mut gathering = shared.gathering();
            if !gathering.serving {
                return;
            }
            if gathering.open.commands.is_empty() {
                if shared.closing.load(Ordering::SeqCst) {
                    drop(gathering);
                    if !self.save_encoded(true) {
                        return;
                    }
                    if self.batches_since_snapshot == 0 {
                        return;
                    }
                    // Every handle is gone: leave a snapshot so the next start replays little.
                    // The ticker may have logged time moving on meanwhile: write that first,
                    // so that the snapshot is of the last durable batch.
                    let mut ledger = shared.ledger.blocking_lock();
                    if !shared.gathering().open.commands.is_empty() {
                        continue;
                    }
                    let started = self.start_snapshot(&mut ledger);
                    drop(ledger);
                    match started {
                        Ok(()) => {}
                        Err(error) => {
                            self.fail(&error);
                            return;
                        }
                    }
                    self.save_encoded(true);
                    return;
                }
                gathering.writer_idle = true;
                drop(gathering);
                std::thread::park();
                continue;
            }
            // Callers still at work are likely applying the rest of a burst: cut once they
            // are done (see `activity`), unless the batch is full already.
            if let Some(activity) = &self.activity
                && activity.busy()
                && !gathering.open.is_full(shared.max_batch)
            {
                drop(gathering);
                activity.wait_until_idle(self.cut_wait, || {
                    shared.gathering().open.is_full(shared.max_batch)
                });
                gathering = shared.gathering();
                if !gathering.serving {
                    return;
                }
            }
            // A snapshot must be of the state this batch leaves: with the ledger held,
            // nobody applies anything until its image is taken (then it is encoded while
            // the partition goes on). Otherwise callers fill the next batch while this one
            // is written.
            // Due, the last one encoded, and the store done with it: a store still writing
            // it would make the partition wait here (a DynamoDB upload takes minutes). It
            // is taken at the first batch after that.
            let snapshot_due = self.batches_since_snapshot + 1 >= self.snapshot_every_batches
                && self.encoding.is_none()
                && self.store.ready_for_snapshot();
            let held = if snapshot_due {
                drop(gathering);
                let ledger = shared.ledger.blocking_lock();
                gathering = shared.gathering();
                // Stopped meanwhile (a caller's apply panicked): the ledger may be half
                // changed, and must be neither written nor snapshot.
                if !gathering.serving {
                    return;
                }
                Some(ledger)
            } else {
                None
            };
            let commands =
                std::mem::replace(&mut gathering.open.commands, std::mem::take(&mut spare));
            gathering.open.bytes = 0;
            let chain_head = gathering.open.chain_head;
            let durability = std::mem::take(&mut gathering.open.durability);
            gathering.writing = Some((durability.clone(), commands.len()));
            drop(gathering);
            match self.append(commands, chain_head) {
                Ok(mut written) => {
                    written.clear();
                    spare = written;
                    durability.settle_from_outside(true);
                }
                Err(error) => {
                    self.fail(&error);
                    return;
                }
            }
            if let Some(mut ledger) = held {
                match self.start_snapshot(&mut ledger) {
                    Ok(()) => drop(ledger),
                    Err(error) if error.is_transient() => self.snapshot_later(&error),
                    Err(error) => {
                        self.fail(&error);
                        return;
                    }
                }
            }
        }
    }

    /// Makes `commands`, already applied to the ledger (which then had `chain_head`),
    /// durable as the next batch; gives them back (their allocation is reused).
    fn append(
        &mut self,
        commands: Vec<LoggedCommand>,
        chain_head: EntryHash,
    ) -> Result<Vec<LoggedCommand>, StoreError> {
        let batch = Batch {
            seq: self.next_seq,
            commands,
            chain_head,
        };
        let started = Instant::now();
        self.store.append(&batch)?;
        let write_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared
            .stats
            .batch(batch.commands.len() as u64, batch.seq, write_us);
        self.next_seq += 1;
        self.batches_since_snapshot += 1;
        Ok(batch.commands)
    }

    /// Takes a snapshot of `ledger` at the last batch appended: its image, with the ledger
    /// held, then its encoding on a thread of its own (`save_encoded` saves it). With a
    /// store that archives the journal, the sealed chunks the archive holds durably leave
    /// memory, and those it does not hold yet go with the snapshot, which leaves them out.
    /// The encoding thread frees what left (or gives it to the spares, `ledger::Spares`)
    /// once it has encoded: hundreds of MB, and emptying each chunk given to the spares
    /// walks its 4,096 entries, work the writer, on every call's path, need not do.
    fn start_snapshot(&mut self, ledger: &mut Ledger) -> Result<(), StoreError> {
        // Every caller of the partition waits while this runs: it is logged with the save.
        let started = Instant::now();
        let seq = self.next_seq - 1;
        let (chunks, forgotten) = match self.store.journal_archive() {
            Some(archive) => {
                let durable = archive.archived();
                let forgotten = ledger.journal.forget_archived(durable);
                (ledger.journal.take_to_archive(durable), forgotten)
            }
            None => (ArchiveChunks::default(), Vec::new()),
        };
        let forgotten_entries = forgotten.len() * crate::ledger::CHUNK_ENTRIES;
        let spares = ledger.journal.spares.clone();
        let image = ledger.image();
        self.store.begin_snapshot(seq)?;
        self.batches_since_snapshot = 0;
        self.shared.stats.retained(ledger.retained());
        let room = snapshot_room(self.last_snapshot, seq);
        let (send, done) = mpsc::sync_channel(1);
        let writer = std::thread::current();
        let give_way = self.activity.clone().map(Activity::giving_way);
        std::thread::Builder::new()
            .name("tollgate-snapshot-encode".into())
            .spawn(move || {
                yield_to_callers();
                let _giving_way = give_way.map(give_way_here);
                let started = Instant::now();
                let state = encode_large("snapshot", &image, room);
                let took = started.elapsed();
                // The image's copies are freed here too, not on the writer.
                drop(image);
                // The writer may be asleep (an idle partition): wake it to save this.
                let _ = send.send(state.map(|state| (state, took)));
                writer.unpark();
                match spares {
                    Some(pool) => pool.recycle(forgotten),
                    None => drop(forgotten),
                }
            })
            .map_err(|source| StoreError::Io {
                op: "start the snapshot encoding thread",
                path: std::path::PathBuf::new(),
                source,
            })?;
        self.encoding = Some(Encoding {
            seq,
            chunks,
            paused: started.elapsed(),
            started,
            done,
        });
        tracing::debug!(
            seq,
            forgotten_entries,
            "snapshot image taken; encoding it while the partition goes on"
        );
        Ok(())
    }

    /// Hands the snapshot being encoded to the store once it is (waiting for it when
    /// `wait`). Returns false when the engine stopped (the store refused it for good).
    fn save_encoded(&mut self, wait: bool) -> bool {
        let Some(encoding) = self.encoding.take() else {
            return true;
        };
        let received = if wait {
            encoding.done.recv().map_err(|_| ())
        } else {
            match encoding.done.try_recv() {
                Ok(done) => Ok(done),
                Err(mpsc::TryRecvError::Empty) => {
                    self.encoding = Some(encoding);
                    return true;
                }
                Err(mpsc::TryRecvError::Disconnected) => Err(()),
            }
        };
        let encoded = received.unwrap_or_else(|()| {
            Err(StoreError::Io {
                op: "encode the snapshot (the thread panicked)",
                path: std::path::PathBuf::new(),
                source: std::io::Error::other("panicked"),
            })
        });
        let Encoding {
            seq,
            chunks,
            paused,
            started,
            ..
        } = encoding;
        let archiving = chunks.chunks.len() * crate::ledger::CHUNK_ENTRIES;
        let saved = encoded.and_then(|(state, took)| {
            let bytes = state.len();
            self.last_snapshot = (bytes, seq);
            let saving = Instant::now();
            self.store
                .save_snapshot_with_archive(Snapshot { seq, state }, chunks)?;
            Ok((bytes, took, saving.elapsed()))
        });
        match saved {
            Ok((bytes, took, save)) => {
                tracing::info!(
                    seq,
                    bytes,
                    archiving_entries = archiving,
                    pause_ms = paused.as_millis() as u64,
                    encode_ms = took.as_millis() as u64,
                    save_ms = save.as_millis() as u64,
                    since_image_ms = started.elapsed().as_millis() as u64,
                    "snapshot taken (the partition's calls waited pause_ms for its image; \
                     it was encoded, and the store writes it, while they went on)"
                );
                self.shared.stats.snapshot_taken(bytes as u64);
                true
            }
            Err(error) if error.is_transient() => {
                self.snapshot_later(&error);
                true
            }
            Err(error) => {
                self.fail(&error);
                false
            }
        }
    }

    /// A snapshot the store could not take for now (DynamoDB throttled or unreachable):
    /// every batch is durable in the log, which a snapshot only shortens, so the partition
    /// goes on and tries again after a tenth of the interval. (Stopping would not help: the
    /// restarted writer replays the same log and tries the same snapshot at once.)
    fn snapshot_later(&mut self, error: &StoreError) {
        let retry_after = (self.snapshot_every_batches / 10).max(1);
        self.batches_since_snapshot = self.snapshot_every_batches.saturating_sub(retry_after);
        self.shared.stats.snapshot_failed();
        tracing::warn!(
            %error,
            retry_after_batches = retry_after,
            "snapshot not taken; the log keeps every batch and the partition goes on"
        );
    }

    /// Stops the engine: everyone waiting for a batch hears `Stopped`.
    fn fail(&self, error: &StoreError) {
        tracing::error!(%error, "store write failed; the engine stops (acknowledged means durable)");
        store_failed(&self.shared, error);
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_room;

    #[test]
    fn the_next_snapshot_is_estimated_from_the_last_by_batches() {
        // None yet: measure first.
        assert_eq!(snapshot_room((0, 0), 7), 0);
        // Twice the batches, twice the size, and a quarter more.
        assert_eq!(snapshot_room((1_000, 100), 200), 2_500);
        assert_eq!(snapshot_room((1_000, 100), 100), 1_250);
        assert_eq!(snapshot_room((1_000, 100), 150), 1_875);
        // Never below the last one's, never above two and a half times it.
        assert_eq!(snapshot_room((1_000, 100), 50), 1_250);
        assert_eq!(snapshot_room((1_000, 100), 1_000), 2_500);
        assert_eq!(snapshot_room((usize::MAX / 2, 1), u64::MAX), usize::MAX);
    }
}
