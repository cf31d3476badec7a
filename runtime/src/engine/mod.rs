//! The engine: the one writer of a partition.
//!
//! Callers submit commands over a bounded queue. A dedicated thread takes whatever has
//! queued up (at most `max_batch`), applies it to the pure ledger, makes the batch durable
//! with one store write, and only then answers every caller in it (group commit): latency
//! stays low at low load, and the cost of the durable write is shared at high load.
//! Acknowledged means durable. A store failure stops the engine: it never answers from
//! state the store may not have.
//!
//! Reads see durable state only. The writer holds the ledger's lock for a whole batch, from
//! its first command until it is durable, and unlocks before answering. `read` queues behind
//! every command submitted before it; `read_now` (short reads: Check, subscription lookups)
//! runs on the caller's thread instead when the lock is free and the writer has taken every
//! command submitted so far, which saves the hand-over to the writer thread and back.

mod clock;
mod partitions;
mod stats;
mod writer;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use clock::{Clock, ManualClock, SystemClock};
pub use partitions::{
    DEFAULT_EMBEDDED_PARTITIONS, MAX_PARTITIONS, Partitions, partition_of, recorded_count,
};
pub use stats::{EngineStats, StatsSnapshot};

use crate::ledger::{CommandResult, Keyed, Ledger, LedgerConfig, Violation};
use crate::store::{Store, StoreError};

/// Upper bound of the submission queue, per partition. At about 5 us per command it
/// drains in about 20 ms; beyond that callers wait (backpressure) rather than pile up.
pub const DEFAULT_QUEUE_DEPTH: usize = 4096;
/// Upper bound of one batch: bounds the log record (a few hundred KiB) and the time
/// callers at the front of a batch wait for the ones behind them.
pub const DEFAULT_MAX_BATCH: usize = 2048;
const _: () = assert!(DEFAULT_MAX_BATCH <= DEFAULT_QUEUE_DEPTH);
/// Largest encoded command the engine accepts: bounds one log record and one DynamoDB
/// item chunk set. Larger requests are refused before they are applied.
pub const MAX_COMMAND_BYTES: usize = 256 * 1024;
/// A batch is cut once its encoded commands pass this size (a DynamoDB transaction
/// carries at most 4 MB; the embedded log's record limit is larger still).
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
const _: () = assert!(MAX_COMMAND_BYTES <= MAX_BATCH_BYTES);
const _: () = assert!(MAX_BATCH_BYTES + MAX_COMMAND_BYTES < 4_000_000);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub ledger: LedgerConfig,
    pub queue_depth: usize,
    pub max_batch: usize,
    /// Take a snapshot after this many batches (bounds recovery time).
    pub snapshot_every_batches: u64,
    /// How often ledger time advances when no command arrives, so that holds time out and
    /// grants expire on time even when the partition is idle.
    pub tick: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ledger: LedgerConfig::default(),
            queue_depth: DEFAULT_QUEUE_DEPTH,
            max_batch: DEFAULT_MAX_BATCH,
            snapshot_every_batches: 100_000,
            tick: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the engine has stopped: {reason}")]
    Stopped {
        reason: String,
        /// The store failed in a way that may pass (unreachable, throttled): restarting
        /// the partition may succeed.
        transient: bool,
    },
    #[error("recovery failed: {0}")]
    Recovery(String),
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Stopped { .. } => "engine_stopped",
            EngineError::Recovery(_) => "recovery_failed",
        }
    }
}

type ReadFn = Box<dyn FnOnce(&Ledger) + Send>;

/// A partition's ledger, shared by its writer and by readers on other threads. The writer
/// holds the lock for a whole batch, from its first command until the batch is durable
/// and answered: whoever else holds it sees durable state only.
pub(crate) struct LedgerCell {
    pub(crate) ledger: Ledger,
    /// Commands the writer has taken from the queue (applied or refused).
    pub(crate) taken: u64,
    /// False once the writer stopped in the middle of a batch: the state may hold commands
    /// that are not durable, so it is never read again.
    pub(crate) serving: bool,
}

pub(crate) type SharedLedger = Arc<Mutex<LedgerCell>>;

/// The writer's lock on the ledger. A reader's panic cannot leave it half-changed (readers
/// only read), so a poisoned lock is taken as it is.
pub(crate) fn lock(ledger: &SharedLedger) -> MutexGuard<'_, LedgerCell> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) enum Submission {
    Apply {
        request: Keyed,
        reply: oneshot::Sender<CommandResult>,
    },
    /// Runs after every earlier write is durable.
    Read(ReadFn),
    /// Advance ledger time (from the ticker).
    Tick,
}

/// Handle to one partition's writer. Cheap to clone; the writer stops when the last
/// handle is dropped (after a final snapshot).
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Submission>,
    stats: Arc<EngineStats>,
    stopped: Arc<StopReason>,
    ledger: SharedLedger,
}

/// Returned by `Engine::start` to wait for the writer thread to finish.
pub struct EngineThread {
    handle: Option<JoinHandle<()>>,
}

impl EngineThread {
    pub fn join(mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Engine {
    /// Recovers the ledger from `store` and starts the writer thread. Must be called
    /// inside a tokio runtime (the ticker is a tokio task).
    pub fn start(
        mut store: Box<dyn Store>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<(Engine, EngineThread), EngineError> {
        let recovered =
            writer::recover(store.as_mut()).map_err(|e| EngineError::Recovery(e.to_string()))?;
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let stats = Arc::new(EngineStats::default());
        stats.record_recovery(recovered.replayed_batches, recovered.next_seq - 1);
        stats.retained(recovered.ledger.retained());
        let stopped = Arc::new(std::sync::Mutex::new(None));
        let ledger = Arc::new(Mutex::new(LedgerCell {
            ledger: recovered.ledger,
            taken: 0,
            serving: true,
        }));
        let writer = writer::Writer {
            ledger: ledger.clone(),
            next_seq: recovered.next_seq,
            batches_since_snapshot: recovered.replayed_batches,
            store,
            clock,
            config: config.clone(),
            stats: stats.clone(),
            stopped: stopped.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("tollgate-writer".into())
            .spawn({
                let stopped = stopped.clone();
                move || {
                    let run = std::panic::AssertUnwindSafe(|| writer.run(rx));
                    if std::panic::catch_unwind(run).is_err()
                        && let Ok(mut reason) = stopped.lock()
                    {
                        // A broken ledger invariant: a bug. Never serve from that state.
                        *reason = Some((false, "writer panicked (see the log)".into()));
                    }
                }
            })
            .map_err(|e| EngineError::Recovery(format!("cannot start writer thread: {e}")))?;
        let ticker = tx.downgrade();
        let tick = config.tick;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                let Some(tx) = ticker.upgrade() else { break };
                // A full queue means the writer is busy and advances time anyway.
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Submission::Tick) {
                    break;
                }
            }
        });
        Ok((
            Engine {
                tx,
                stats,
                stopped,
                ledger,
            },
            EngineThread {
                handle: Some(handle),
            },
        ))
    }

    /// Applies one command; resolves once it is durable.
    pub async fn submit(&self, request: Keyed) -> Result<CommandResult, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.stats.queued();
        if self
            .tx
            .send(Submission::Apply { request, reply })
            .await
            .is_err()
        {
            return Err(self.stopped_error());
        }
        rx.await.map_err(|_| self.stopped_error())
    }

    /// Reads the ledger after every write submitted before it is durable.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        let read: ReadFn = Box::new(move |ledger| {
            let _ = reply.send(f(ledger));
        });
        if self.tx.send(Submission::Read(read)).await.is_err() {
            return Err(self.stopped_error());
        }
        rx.await.map_err(|_| self.stopped_error())
    }

    /// Like `read`, but runs `f` on the caller's thread when the writer is between batches
    /// and has taken every command submitted so far: no hand-over to the writer thread and
    /// back, which is most of the cost of a short read. Otherwise it queues like `read`.
    /// Only for short reads: `f` holds the writer off while it runs.
    pub async fn read_now<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        if let Ok(cell) = self.ledger.try_lock()
            && cell.serving
            && cell.taken == self.stats.submitted()
        {
            return Ok(f(&cell.ledger));
        }
        self.read(f).await
    }

    /// Recomputes the ledger from its journal and checks every invariant.
    pub async fn verify(
        &self,
    ) -> Result<Result<crate::ledger::VerifyReport, Violation>, EngineError> {
        self.read(|ledger| ledger.verify()).await
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Commands waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn stopped_error(&self) -> EngineError {
        let reason = self
            .stopped
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| (false, "writer exited".to_string()));
        EngineError::Stopped {
            reason: reason.1,
            transient: reason.0,
        }
    }
}

/// Rebuilds a partition's ledger from its store without starting a writer (for offline
/// checks: `tollgate verify`), with the configuration its log had last.
pub fn recover_ledger(store: &mut dyn Store) -> Result<Ledger, StoreError> {
    writer::recover(store).map(|r| r.ledger)
}

pub(crate) fn store_failed(stopped: &StopReason, error: &StoreError) {
    if let Ok(mut reason) = stopped.lock() {
        *reason = Some((error.is_transient(), format!("store failed: {error}")));
    }
}

/// Why the writer stopped: (transient, reason).
pub(crate) type StopReason = std::sync::Mutex<Option<(bool, String)>>;
