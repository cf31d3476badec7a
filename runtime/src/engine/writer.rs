//! The writer thread: recovery, then the group-commit loop.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{
    Clock, EngineConfig, EngineStats, LedgerCell, MAX_BATCH_BYTES, MAX_COMMAND_BYTES, ReadFn,
    SharedLedger, StopReason, Submission, lock, store_failed,
};
use crate::ledger::{CommandResult, Ledger, LedgerConfig, LedgerError, Timestamp};
use crate::store::{
    Batch, LoggedCommand, Recovered, Snapshot, Store, StoreError, decode, encode_large,
};

pub(crate) struct Recovery {
    pub(crate) ledger: Ledger,
    pub(crate) next_seq: u64,
    pub(crate) replayed_batches: u64,
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
    store.recover(&mut |item| {
        match item {
            Recovered::Snapshot(snapshot) => {
                ledger = decode("snapshot", &snapshot.state)?;
                next_seq = snapshot.seq + 1;
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
    Ok(Recovery {
        ledger,
        next_seq,
        replayed_batches,
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

pub(crate) struct Writer {
    /// Locked by the writer for a whole batch: from its first command until it is durable
    /// and answered (see `Engine::read_now`).
    pub(crate) ledger: SharedLedger,
    pub(crate) next_seq: u64,
    pub(crate) batches_since_snapshot: u64,
    pub(crate) store: Box<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) stats: Arc<EngineStats>,
    pub(crate) stopped: Arc<StopReason>,
}

/// What one batch collected before its durable write.
struct Pending {
    logged: Vec<LoggedCommand>,
    replies: Vec<(oneshot::Sender<CommandResult>, CommandResult)>,
    reads: Vec<ReadFn>,
    /// Encoded size of `logged`.
    bytes: usize,
}

impl Writer {
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Submission>) {
        let max = self.config.max_batch;
        let mut pending = Pending {
            logged: Vec::with_capacity(max),
            replies: Vec::with_capacity(max),
            reads: Vec::new(),
            bytes: 0,
        };
        let shared = self.ledger.clone();
        if let Err(error) = self.configure(&mut lock(&shared)) {
            return self.fail(&error);
        }
        while let Some(first) = rx.blocking_recv() {
            let mut cell = lock(&shared);
            let now = self.clock.now();
            self.take(&mut cell, first, now, &mut pending);
            while pending.logged.len() + pending.reads.len() < max
                && pending.bytes < MAX_BATCH_BYTES - MAX_COMMAND_BYTES
            {
                match rx.try_recv() {
                    Ok(next) => self.take(&mut cell, next, now, &mut pending),
                    Err(_) => break,
                }
            }
            if !pending.logged.is_empty() {
                match self.append(&mut cell, std::mem::take(&mut pending.logged)) {
                    Ok(commands) => pending.logged = commands,
                    Err(error) => {
                        self.fail(&error);
                        return; // dropping the replies answers every caller with `Stopped`
                    }
                }
                pending.logged.clear();
                pending.bytes = 0;
            }
            self.stats.retained(cell.ledger.retained());
            for read in pending.reads.drain(..) {
                read(&cell.ledger);
            }
            // The batch is durable: readers may have the ledger before its callers hear back,
            // so that a caller's next read finds the writer out of the way.
            drop(cell);
            for (reply, result) in pending.replies.drain(..) {
                let _ = reply.send(result);
            }
            if self.batches_since_snapshot >= self.config.snapshot_every_batches {
                let mut cell = lock(&shared);
                match self.snapshot(&cell.ledger) {
                    Ok(()) => {}
                    Err(error) if error.is_transient() => self.snapshot_later(&error),
                    Err(error) => {
                        cell.serving = false;
                        self.fail(&error);
                        return;
                    }
                }
            }
        }
        // Every handle is gone: leave a snapshot so the next start replays little.
        let mut cell = lock(&shared);
        if self.batches_since_snapshot > 0
            && let Err(error) = self.snapshot(&cell.ledger)
        {
            cell.serving = false;
            self.fail(&error);
        }
    }

    fn take(
        &mut self,
        cell: &mut LedgerCell,
        submission: Submission,
        now: Timestamp,
        pending: &mut Pending,
    ) {
        match submission {
            Submission::Apply { request, reply } => {
                cell.taken += 1;
                let logged = LoggedCommand::Apply { now, request };
                let bytes = encoded_size(&logged);
                if bytes > MAX_COMMAND_BYTES {
                    let refused = Err(LedgerError::InvalidArgument {
                        field: "request".into(),
                        value: format!("{bytes} bytes"),
                        reason: format!("larger than the {MAX_COMMAND_BYTES}-byte limit"),
                    });
                    let _ = reply.send(refused);
                    return;
                }
                let LoggedCommand::Apply { request, .. } = &logged else {
                    unreachable!()
                };
                let result = cell.ledger.apply(now, request);
                pending.logged.push(logged);
                pending.bytes += bytes;
                pending.replies.push((reply, result));
            }
            Submission::Read(read) => pending.reads.push(read),
            Submission::Tick => {
                if cell.ledger.has_due(now) {
                    cell.ledger.advance(now);
                    pending.logged.push(LoggedCommand::Advance { now });
                    pending.bytes += 16;
                }
            }
        }
    }

    /// Before the first command: when this start asks for another configuration than the
    /// recovered ledger has, applies it and makes that durable as a batch of its own.
    fn configure(&mut self, cell: &mut LedgerCell) -> Result<(), StoreError> {
        let config = self.config.ledger;
        if cell.ledger.config() == config {
            return Ok(());
        }
        tracing::info!(
            from_ms = cell.ledger.config().idempotency_window_ms,
            to_ms = config.idempotency_window_ms,
            "idempotency window changed; logged so that replays forget keys as this run does"
        );
        cell.ledger.set_config(config);
        self.append(cell, vec![LoggedCommand::Configure { config }])
            .map(drop)
    }

    /// Makes `commands`, already applied to the ledger, durable as the next batch; gives
    /// them back (their allocation is reused). On failure the ledger holds what is not
    /// durable, so nobody reads it again.
    fn append(
        &mut self,
        cell: &mut LedgerCell,
        commands: Vec<LoggedCommand>,
    ) -> Result<Vec<LoggedCommand>, StoreError> {
        let batch = Batch {
            seq: self.next_seq,
            commands,
            chain_head: cell.ledger.chain_head(),
        };
        let started = Instant::now();
        if let Err(error) = self.store.append(&batch) {
            cell.serving = false;
            return Err(error);
        }
        let write_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats
            .batch(batch.commands.len() as u64, batch.seq, write_us);
        self.next_seq += 1;
        self.batches_since_snapshot += 1;
        Ok(batch.commands)
    }

    fn snapshot(&mut self, ledger: &Ledger) -> Result<(), StoreError> {
        // Every caller of the partition waits while this runs: say how long it took.
        let started = Instant::now();
        let state = encode_large("snapshot", ledger)?;
        let encoded = started.elapsed();
        let bytes = state.len();
        let seq = self.next_seq - 1;
        self.store.save_snapshot(Snapshot { seq, state })?;
        tracing::info!(
            seq,
            bytes,
            encode_ms = encoded.as_millis() as u64,
            save_ms = (started.elapsed() - encoded).as_millis() as u64,
            "snapshot taken (the partition's calls waited this long; the embedded store \
             writes the file on a thread of its own)"
        );
        self.batches_since_snapshot = 0;
        self.stats.snapshot_taken(bytes as u64);
        Ok(())
    }

    /// A snapshot the store could not take for now (DynamoDB throttled or unreachable):
    /// every batch is durable in the log, which a snapshot only shortens, so the partition
    /// goes on and tries again after a tenth of the interval. (Stopping would not help: the
    /// restarted writer replays the same log and tries the same snapshot at once.)
    fn snapshot_later(&mut self, error: &StoreError) {
        let retry_after = (self.config.snapshot_every_batches / 10).max(1);
        self.batches_since_snapshot = self
            .config
            .snapshot_every_batches
            .saturating_sub(retry_after);
        self.stats.snapshot_failed();
        tracing::warn!(
            %error,
            retry_after_batches = retry_after,
            "snapshot not taken; the log keeps every batch and the partition goes on"
        );
    }

    fn fail(&self, error: &StoreError) {
        tracing::error!(%error, "store write failed; the engine stops (acknowledged means durable)");
        store_failed(&self.stopped, error);
    }
}

/// Encoded size of a logged command, without allocating.
fn encoded_size(command: &LoggedCommand) -> usize {
    postcard::serialize_with_flavor(command, postcard::ser_flavors::Size::default())
        .unwrap_or(usize::MAX)
}
