//! The engine: the one writer of a partition.
//!
//! Callers apply their own commands to the pure ledger, one at a time under the partition's
//! lock, and each applied command joins the open batch. A dedicated thread, the writer,
//! makes batches durable: it cuts the open batch and writes it to the store with one write
//! (an `fdatasync`, or one DynamoDB transaction), while callers go on applying commands into
//! the next batch. This is group commit with the apply of one batch overlapping the durable
//! write of the one before: at low load a batch holds one command, at high load the cost of
//! the durable write is shared by everything that arrived while it ran. Given the async
//! runtime's park hooks, the writer cuts a batch once that runtime has run out of work (or
//! after a short wait), so that a burst of calls is one write (see `activity`).
//!
//! Acknowledged means durable: a caller hears its answer only once the batch holding its
//! command is durable. Reads run on the caller's thread under the same lock, so they see
//! every command applied before them, and they too answer only once every batch they saw is
//! durable: no answer ever rests on state that a crash could take back. A store failure
//! stops the engine: the state may hold commands the store does not have, so it is never
//! read again and everyone waiting hears `Stopped`.

mod activity;
mod clock;
mod partitions;
mod spares;
mod stats;
mod writer;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

pub use activity::{Activity, CUT_WAIT};
pub use clock::{Clock, ManualClock, SystemClock};
pub use partitions::{
    DEFAULT_EMBEDDED_PARTITIONS, MAX_PARTITIONS, Partitions, partition_of, recorded_count,
};
pub use spares::start_filler;
pub use stats::{BATCH_COMMANDS_BOUNDS, EngineStats, STORE_WRITE_BOUNDS_US, StatsSnapshot};

use crate::ledger::{
    CommandResult, EntryHash, Keyed, Ledger, LedgerConfig, LedgerError, Spares, Timestamp,
    Violation,
};
use crate::store::JournalArchive;
use crate::store::{LoggedCommand, Store, StoreError};

/// Upper bound of one batch: bounds the log record (a few hundred KiB), the time callers
/// at the front of a batch wait for the ones behind them, and the commands applied but not
/// yet durable (callers past it wait until that batch is durable: backpressure).
pub const DEFAULT_MAX_BATCH: usize = 2048;
/// Largest encoded command the engine accepts: bounds one log record and one DynamoDB
/// item chunk set. Larger requests are refused before they are applied.
pub const MAX_COMMAND_BYTES: usize = 256 * 1024;
/// A batch is cut once its encoded commands pass this size (a DynamoDB transaction
/// carries at most 4 MB; the embedded log's record limit is larger still).
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
const _: () = assert!(MAX_COMMAND_BYTES <= MAX_BATCH_BYTES);
const _: () = assert!(MAX_BATCH_BYTES + MAX_COMMAND_BYTES < 4_000_000);
/// Encoded size of a logged `Advance` (its variant and a timestamp), at most.
const ADVANCE_BYTES: usize = 16;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub ledger: LedgerConfig,
    /// Most commands in one batch; callers past it wait for the batch in flight.
    pub max_batch: usize,
    /// Take a snapshot after this many batches (bounds recovery time).
    pub snapshot_every_batches: u64,
    /// How often ledger time advances when no command arrives, so that holds time out and
    /// grants expire on time even when the partition is idle.
    pub tick: Duration,
    /// The async runtime the callers run on, as its park hooks report it: the writer cuts
    /// a batch once that runtime has run out of work, or after `CUT_WAIT` (see
    /// `activity`). `None`: it cuts the moment the previous write returns.
    pub activity: Option<Arc<Activity>>,
    /// Longest the writer waits for that runtime to run out of work (`CUT_WAIT`).
    pub cut_wait: Duration,
    /// Chunks touched ahead of need for the ledger to grow by (`ledger::Spares`, refilled
    /// by `start_filler`'s thread). `None`: it allocates them as it goes.
    pub spares: Option<Arc<Spares>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ledger: LedgerConfig::default(),
            max_batch: DEFAULT_MAX_BATCH,
            snapshot_every_batches: 100_000,
            tick: Duration::from_millis(100),
            activity: None,
            cut_wait: CUT_WAIT,
            spares: None,
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
    /// Recovery found that another owner has taken the partition over (DynamoDB): this
    /// process must leave it alone.
    #[error("the partition has been taken over by another owner: {0}")]
    TakenOver(String),
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Stopped { .. } => "engine_stopped",
            EngineError::Recovery(_) => "recovery_failed",
            EngineError::TakenOver(_) => "partition_taken_over",
        }
    }
}

/// Whether one batch is durable yet: its callers wait on it, the writer settles it once.
#[derive(Default)]
pub(crate) struct Durability {
    state: AtomicU8,
    settled: Notify,
    /// A caller has woken the others (after `settle_from_outside` woke one).
    relayed: AtomicBool,
}

const PENDING: u8 = 0;
const DURABLE: u8 = 1;
const LOST: u8 = 2;

impl Durability {
    /// The first settle wins: a batch the engine gave up on stays lost (its callers may
    /// already have heard `Stopped`), and a durable one is never called lost.
    pub(crate) fn settle(&self, durable: bool) {
        if self.mark(durable) {
            self.settled.notify_waiters();
        }
    }

    /// `settle` for the writer thread, which runs outside the runtime. A task woken from
    /// outside costs its runtime a cross-thread wake-up (an eventfd write on tokio's
    /// current-thread scheduler), so only one caller is woken from here, and it wakes the
    /// others from inside its runtime (see `wait`), where a wake is a push onto the local
    /// queue. A caller dropped after it was woken and before it ran passes the wake on to
    /// the next (`Notify::notify_one` does). So the others hear as soon as that caller
    /// runs: `serve` runs every caller on one runtime; a caller parked on a runtime that is
    /// alive but never driven again would hold the others' answers as it holds its own.
    pub(crate) fn settle_from_outside(&self, durable: bool) {
        if self.mark(durable) {
            self.settled.notify_one();
        }
    }

    fn mark(&self, durable: bool) -> bool {
        let state = if durable { DURABLE } else { LOST };
        self.state
            .compare_exchange(PENDING, state, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    /// True once the batch is durable, false if it never will be (the engine stopped).
    async fn wait(&self) -> bool {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.state.load(Ordering::Acquire) {
                PENDING => settled.await,
                state => {
                    // The writer woke one caller: the first to see the batch settled wakes
                    // every caller waiting by now; any later one sees it settled itself.
                    if !self.relayed.swap(true, Ordering::AcqRel) {
                        self.settled.notify_waiters();
                    }
                    return state == DURABLE;
                }
            }
        }
    }
}

/// The commands applied since the writer last cut a batch.
pub(crate) struct OpenBatch {
    pub(crate) commands: Vec<LoggedCommand>,
    /// Encoded size of `commands` (at most).
    pub(crate) bytes: usize,
    /// The ledger's chain head after the last of `commands`.
    pub(crate) chain_head: EntryHash,
    pub(crate) durability: Arc<Durability>,
}

impl OpenBatch {
    fn has_room(&self, max_batch: usize, bytes: usize) -> bool {
        self.commands.is_empty()
            || (self.commands.len() < max_batch && self.bytes + bytes <= MAX_BATCH_BYTES)
    }

    /// No room is sure for another command: the writer should cut without waiting.
    pub(crate) fn is_full(&self, max_batch: usize) -> bool {
        !self.has_room(max_batch, MAX_COMMAND_BYTES)
    }
}

/// What callers and the writer hand each other, behind a lock held for a few instructions
/// at a time (never while a command is applied or a batch written).
pub(crate) struct Gathering {
    /// False once the engine stopped: the ledger may hold commands the store does not
    /// have, so it is never read again.
    pub(crate) serving: bool,
    pub(crate) open: OpenBatch,
    /// The batch the writer cut last (settled once it is durable or lost).
    pub(crate) writing: Option<(Arc<Durability>, usize)>,
    /// The writer found nothing to write and sleeps until a command wakes it.
    pub(crate) writer_idle: bool,
}

impl Gathering {
    /// The batch holding the latest command applied: what a reader that saw the ledger now
    /// waits for before it answers. `None`: everything applied is durable.
    fn latest(&self) -> Option<Arc<Durability>> {
        if self.open.commands.is_empty() {
            self.writing
                .as_ref()
                .map(|(durability, _)| durability.clone())
        } else {
            Some(self.open.durability.clone())
        }
    }

    /// Stops the engine: nothing in the ledger is read again, and everyone waiting for a
    /// batch not yet durable hears `Stopped`.
    pub(crate) fn stop(&mut self) {
        self.serving = false;
        self.open.durability.settle(false);
        if let Some((writing, _)) = &self.writing {
            writing.settle(false);
        }
    }
}

/// What callers, the ticker and the writer share.
pub(crate) struct Shared {
    /// The partition's ledger. Callers hold it while they apply a command or read; the
    /// writer takes it only to snapshot. An async lock: a caller waiting for it (behind a
    /// snapshot, say) does not stop its thread from serving other calls.
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) gathering: std::sync::Mutex<Gathering>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stats: Arc<EngineStats>,
    pub(crate) stopped: StopReason,
    /// Every handle is gone: the writer leaves a final snapshot and exits.
    pub(crate) closing: AtomicBool,
    pub(crate) max_batch: usize,
    /// The store's journal archive, if it keeps one (see `Store::journal_archive`).
    pub(crate) archive: Option<Arc<dyn JournalArchive>>,
    /// The pools the ledger grows from, kept for as long as the engine runs: their filler
    /// thread leaves once no engine holds them (`start_filler`).
    spares: Option<Arc<Spares>>,
}

impl Shared {
    /// The hand-over lock. Its holders change a few fields and cannot panic in between, so
    /// a poisoned lock is taken as it is.
    pub(crate) fn gathering(&self) -> std::sync::MutexGuard<'_, Gathering> {
        self.gathering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Handle to one partition's engine. Cheap to clone; the writer stops when the last
/// handle is dropped (after a final snapshot).
#[derive(Clone)]
pub struct Engine {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    writer: std::thread::Thread,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.writer.unpark();
    }
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
        let mut recovered = writer::recover(store.as_mut()).map_err(|e| {
            if e.is_taken_over() {
                EngineError::TakenOver(e.to_string())
            } else {
                EngineError::Recovery(e.to_string())
            }
        })?;
        let configured = writer::configure(store.as_mut(), &mut recovered, config.ledger)
            .map_err(|e| EngineError::Recovery(e.to_string()))?;
        if let Some(spares) = &config.spares {
            recovered.ledger.use_spares(spares);
        }
        let stats = Arc::new(EngineStats::default());
        stats.record_recovery(recovered.replayed_batches, recovered.next_seq - 1);
        stats.retained(recovered.ledger.retained());
        let max_batch = config.max_batch.max(1);
        let chain_head = recovered.ledger.chain_head();
        let shared = Arc::new(Shared {
            ledger: Mutex::new(recovered.ledger),
            gathering: std::sync::Mutex::new(Gathering {
                serving: true,
                open: OpenBatch {
                    commands: Vec::with_capacity(max_batch),
                    bytes: 0,
                    chain_head,
                    durability: Arc::default(),
                },
                writing: None,
                writer_idle: false,
            }),
            clock,
            stats,
            stopped: std::sync::Mutex::new(None),
            closing: AtomicBool::new(false),
            max_batch,
            archive: store.journal_archive(),
            spares: config.spares.clone(),
        });
        if let Some(activity) = &config.activity {
            store.give_way_with(activity.clone().giving_way());
        }
        let writer = writer::Writer {
            shared: shared.clone(),
            next_seq: recovered.next_seq,
            batches_since_snapshot: recovered.replayed_batches + u64::from(configured),
            store,
            snapshot_every_batches: config.snapshot_every_batches,
            activity: config.activity.clone(),
            cut_wait: config.cut_wait,
            last_snapshot: recovered.snapshot,
            encoding: None,
        };
        let handle = std::thread::Builder::new()
            .name("tollgate-writer".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    let run = AssertUnwindSafe(|| writer.run());
                    if std::panic::catch_unwind(run).is_err() {
                        // A broken invariant: a bug. Never serve from that state.
                        stop(&shared, false, "writer panicked (see the log)".into());
                    }
                }
            })
            .map_err(|e| EngineError::Recovery(format!("cannot start writer thread: {e}")))?;
        let engine = Engine {
            handle: Arc::new(Handle {
                shared,
                writer: handle.thread().clone(),
            }),
        };
        tokio::spawn(tick(Arc::downgrade(&engine.handle), config.tick));
        Ok((
            engine,
            EngineThread {
                handle: Some(handle),
            },
        ))
    }

    /// Applies one command; resolves once it is durable.
    pub async fn submit(&self, request: Keyed) -> Result<CommandResult, EngineError> {
        let shared = &self.handle.shared;
        let mut logged = LoggedCommand::Apply {
            now: Timestamp(u64::MAX),
            request,
        };
        // Measured with the largest timestamp: an upper bound of what the log will hold.
        let bytes = encoded_size(&logged);
        if bytes > MAX_COMMAND_BYTES {
            return Ok(Err(LedgerError::InvalidArgument {
                field: "request".into(),
                value: format!("{bytes} bytes"),
                reason: format!("larger than the {MAX_COMMAND_BYTES}-byte limit"),
            }));
        }
        loop {
            let mut ledger = shared.ledger.lock().await;
            let full = {
                let gathering = shared.gathering();
                if !gathering.serving {
                    return Err(self.stopped_error());
                }
                (!gathering.open.has_room(shared.max_batch, bytes))
                    .then(|| gathering.open.durability.clone())
            };
            if let Some(full) = full {
                // Backpressure: wait until the full batch is durable (cut, and written).
                drop(ledger);
                full.wait().await;
                continue;
            }
            let now = shared.clock.now();
            let LoggedCommand::Apply { now: at, request } = &mut logged else {
                unreachable!("built as Apply above")
            };
            *at = now;
            let state = &mut *ledger;
            let applied = std::panic::catch_unwind(AssertUnwindSafe(|| state.apply(now, request)));
            let Ok(result) = applied else {
                // A broken ledger invariant: a bug, and the state may be half changed.
                stop(
                    shared,
                    false,
                    "the ledger panicked applying a command (see the log)".into(),
                );
                return Err(self.stopped_error());
            };
            let Some(durability) = join_open(shared, &self.handle.writer, &ledger, logged, bytes)
            else {
                return Err(self.stopped_error());
            };
            drop(ledger);
            return if durability.wait().await {
                Ok(result)
            } else {
                Err(self.stopped_error())
            };
        }
    }

    /// Reads the ledger on the caller's thread, after every command applied before it, and
    /// answers once all of them are durable. `f` holds the partition's lock while it runs.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let shared = &self.handle.shared;
        let ledger = shared.ledger.lock().await;
        if !shared.gathering().serving {
            return Err(self.stopped_error());
        }
        let value = f(&ledger);
        let latest = {
            let gathering = shared.gathering();
            if !gathering.serving {
                return Err(self.stopped_error());
            }
            gathering.latest()
        };
        drop(ledger);
        match latest {
            Some(batch) if !batch.wait().await => Err(self.stopped_error()),
            _ => Ok(value),
        }
    }

    /// Recomputes the ledger from its journal (archived entries read back from the
    /// archive) and checks every invariant. Holds the partition for as long as that takes.
    pub async fn verify(
        &self,
    ) -> Result<Result<crate::ledger::VerifyReport, Violation>, EngineError> {
        let archive = self.journal_archive();
        self.read(move |ledger| match archive {
            Some(archive) => ledger.verify_with_archive(&mut archive.entries()),
            None => ledger.verify(),
        })
        .await
    }

    /// The store's archive of this partition's journal, where the entries the ledger no
    /// longer keeps in memory are read (`Ledger::wallet_entries` gives their ids).
    pub fn journal_archive(&self) -> Option<Arc<dyn JournalArchive>> {
        self.handle.shared.archive.clone()
    }

    /// The pools its ledger grows from, if it has them (`EngineConfig::spares`).
    pub fn spares(&self) -> Option<&Arc<Spares>> {
        self.handle.shared.spares.as_ref()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.handle.shared.stats
    }

    /// Commands applied and not yet durable.
    pub fn queue_depth(&self) -> usize {
        let gathering = self.handle.shared.gathering();
        if !gathering.serving {
            return 0; // what was pending never will be durable
        }
        let writing = match &gathering.writing {
            Some((durability, commands)) if durability.is_pending() => *commands,
            _ => 0,
        };
        gathering.open.commands.len() + writing
    }

    fn stopped_error(&self) -> EngineError {
        let reason = self
            .handle
            .shared
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

/// Adds a command just applied to `ledger` to the open batch, waking the writer if it
/// sleeps; returns what to wait for (`None`: the engine has stopped). Called with the ledger
/// locked, so batches hold commands in the order they were applied.
fn join_open(
    shared: &Shared,
    writer: &std::thread::Thread,
    ledger: &Ledger,
    command: LoggedCommand,
    bytes: usize,
) -> Option<Arc<Durability>> {
    shared.stats.retained(ledger.retained());
    let mut gathering = shared.gathering();
    if !gathering.serving {
        return None;
    }
    let was_full = gathering.open.is_full(shared.max_batch);
    gathering.open.commands.push(command);
    gathering.open.bytes += bytes;
    gathering.open.chain_head = ledger.chain_head();
    let durability = gathering.open.durability.clone();
    // Asleep, or waiting for the runtime to run out of work (`activity`) while the batch
    // fills up: either way the writer has something to do now.
    let filled = !was_full && gathering.open.is_full(shared.max_batch);
    let wake = std::mem::take(&mut gathering.writer_idle) || filled;
    drop(gathering);
    if wake {
        writer.unpark();
    }
    Some(durability)
}

/// Moves ledger time forward when no command does, so that holds time out and grants
/// expire on time in an idle partition. Ends with the last handle.
async fn tick(handle: Weak<Handle>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        // Not the handle itself across the wait for the ledger: the last handle dropped
        // meanwhile must still tell the writer to close.
        let Some((shared, writer)) = handle
            .upgrade()
            .map(|h| (h.shared.clone(), h.writer.clone()))
        else {
            break;
        };
        let mut ledger = shared.ledger.lock().await;
        let now = shared.clock.now();
        let room = {
            let gathering = shared.gathering();
            gathering.serving && gathering.open.has_room(shared.max_batch, ADVANCE_BYTES)
        };
        // A full batch means the partition is busy, and its commands advance time anyway.
        if !room || !ledger.has_due(now) {
            continue;
        }
        let state = &mut *ledger;
        if std::panic::catch_unwind(AssertUnwindSafe(|| state.advance(now))).is_err() {
            // A broken ledger invariant: a bug, and the state may be half changed.
            stop(
                &shared,
                false,
                "the ledger panicked advancing time (see the log)".into(),
            );
            break;
        }
        let _ = join_open(
            &shared,
            &writer,
            &ledger,
            LoggedCommand::Advance { now },
            ADVANCE_BYTES,
        );
    }
}

/// Checks a ledger `recover_ledger` rebuilt from `store` (see `Ledger::verify`), reading the
/// entries it keeps no longer in memory from the store's journal archive.
pub fn verify_recovered(
    ledger: &Ledger,
    store: &dyn Store,
) -> Result<crate::ledger::VerifyReport, Violation> {
    match store.journal_archive() {
        Some(archive) => ledger.verify_with_archive(&mut archive.entries()),
        None => ledger.verify(),
    }
}

/// Rebuilds a partition's ledger from its store without starting a writer (for offline
/// checks: `tollgate verify`), with the configuration its log had last.
pub fn recover_ledger(store: &mut dyn Store) -> Result<Ledger, StoreError> {
    writer::recover(store).map(|r| r.ledger)
}

/// Stops the engine, recording why (the first reason wins): nothing in the ledger is read
/// again, and everyone waiting for a batch not yet durable hears `Stopped`.
pub(crate) fn stop(shared: &Shared, transient: bool, reason: String) {
    if let Ok(mut stopped) = shared.stopped.lock()
        && stopped.is_none()
    {
        *stopped = Some((transient, reason));
    }
    shared.gathering().stop();
}

pub(crate) fn store_failed(shared: &Shared, error: &StoreError) {
    stop(
        shared,
        error.is_transient(),
        format!("store failed: {error}"),
    );
}

/// Why the writer stopped: (transient, reason).
pub(crate) type StopReason = std::sync::Mutex<Option<(bool, String)>>;

/// Encoded size of a logged command, without allocating.
fn encoded_size(command: &LoggedCommand) -> usize {
    postcard::serialize_with_flavor(command, postcard::ser_flavors::Size::default())
        .unwrap_or(usize::MAX)
}
