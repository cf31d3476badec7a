//! The partitions' engines, and the supervisor that restarts a partition whose store
//! failed in a way that may pass.
//!
//! An engine stops at its first store failure: it never answers from state the store may
//! not have. When the failure is transient (DynamoDB unreachable, throttled past the retry
//! budget), the partition is restarted in the background: a fresh store handle takes the
//! partition again (a new epoch fences the old writer) and recovers the ledger from what is
//! durable. Until then calls get `Unavailable`. On DynamoDB a restart takes the partition
//! back only if no other pod took it over meanwhile (`DynamoConnection::store_again`):
//! otherwise the restart ends there (`EngineError::TakenOver`), and this process leaves the
//! partition to that pod; its calls go on getting `Unavailable`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::engine::{Engine, EngineError, EngineThread, partition_of};

/// Builds partition `p`'s engine anew (opens its store and recovers).
pub type EngineFactory =
    Arc<dyn Fn(u32) -> Result<(Engine, EngineThread), EngineError> + Send + Sync>;

/// First wait between restart attempts; doubles up to `RESTART_BACKOFF_MAX`.
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between restart attempts: a store that returns is noticed within this.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
const _: () = assert!(RESTART_BACKOFF_MIN.as_millis() < RESTART_BACKOFF_MAX.as_millis());

pub(crate) struct PartitionSet {
    engines: Vec<RwLock<Engine>>,
    restart: Option<EngineFactory>,
    restarting: Vec<AtomicBool>,
    threads: Mutex<Vec<EngineThread>>,
}

impl PartitionSet {
    pub(crate) fn new(engines: Vec<Engine>, restart: Option<EngineFactory>) -> Self {
        let restarting = engines.iter().map(|_| AtomicBool::new(false)).collect();
        PartitionSet {
            engines: engines.into_iter().map(RwLock::new).collect(),
            restart,
            restarting,
            threads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn engines(&self) -> Vec<Engine> {
        self.engines.iter().map(read).collect()
    }

    pub(crate) fn for_customer(&self, customer: &str) -> (usize, Engine) {
        let p = partition_of(customer, self.engines.len() as u32) as usize;
        (p, read(&self.engines[p]))
    }

    pub(crate) fn take_threads(&self) -> Vec<EngineThread> {
        self.threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    /// Passes `result` through; a transient stop starts the partition's restart.
    pub(crate) fn watch<T>(
        self: &Arc<Self>,
        partition: usize,
        result: Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        if let Err(EngineError::Stopped {
            transient: true, ..
        }) = &result
        {
            self.restart(partition);
        }
        result
    }

    fn restart(self: &Arc<Self>, partition: usize) {
        let Some(factory) = self.restart.clone() else {
            return;
        };
        if self.restarting[partition].swap(true, Ordering::AcqRel) {
            return; // one restart at a time per partition
        }
        // Not the set itself across the waits: at shutdown the set is dropped, its engines
        // with it, and `serve` waits for their writers; a restart still failing must not
        // keep them alive.
        let set = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = RESTART_BACKOFF_MIN;
            loop {
                let factory = factory.clone();
                let attempt = tokio::task::spawn_blocking(move || factory(partition as u32)).await;
                let Some(set) = set.upgrade() else {
                    return; // shut down meanwhile
                };
                match attempt {
                    Ok(Ok((engine, thread))) => {
                        let mut slot = set.engines[partition]
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        engine.stats().carry_from(slot.stats());
                        *slot = engine;
                        drop(slot);
                        if let Ok(mut threads) = set.threads.lock() {
                            threads.push(thread);
                        }
                        tracing::info!(
                            partition,
                            "partition restarted after a transient store failure"
                        );
                        set.restarting[partition].store(false, Ordering::Release);
                        return;
                    }
                    Ok(Err(why @ EngineError::TakenOver(_))) => {
                        // `restarting` stays set: no call starts another attempt.
                        tracing::error!(
                            partition,
                            %why,
                            "another pod holds the partition now; this process leaves it (its \
                             calls answer Unavailable until it restarts)"
                        );
                        return;
                    }
                    Ok(Err(why)) => {
                        tracing::warn!(partition, %why, ?wait, "partition restart failed; retrying")
                    }
                    Err(join) => {
                        tracing::warn!(partition, %join, ?wait, "partition restart panicked; retrying")
                    }
                }
                drop(set);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RESTART_BACKOFF_MAX);
            }
        });
    }
}

fn read(engine: &RwLock<Engine>) -> Engine {
    match engine.read() {
        Ok(e) => e.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::engine::{EngineConfig, SystemClock};
    use crate::store::embedded::EmbeddedStore;

    /// A set of one partition on an embedded store, whose restarts all fail with
    /// `error()`; with the count of restart attempts, its writer and its directory.
    fn failing_restarts(
        error: fn() -> EngineError,
    ) -> (
        Arc<PartitionSet>,
        Arc<AtomicU32>,
        EngineThread,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let (engine, thread) = Engine::start(
            Box::new(store),
            Arc::new(SystemClock),
            EngineConfig::default(),
        )
        .unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let factory: EngineFactory = Arc::new({
            let attempts = attempts.clone();
            move |_| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(error())
            }
        });
        let set = Arc::new(PartitionSet::new(vec![engine], Some(factory)));
        (set, attempts, thread, dir)
    }

    /// At shutdown `serve` drops the partitions and waits for their writers: a restart that
    /// keeps failing (DynamoDB still down) must not keep the set, and so the writers, alive.
    #[tokio::test]
    async fn a_restart_still_failing_lets_the_partitions_go_at_shutdown() {
        let (set, attempts, thread, _dir) =
            failing_restarts(|| EngineError::Recovery("the store is still unreachable".into()));
        set.restart(0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(attempts.load(Ordering::SeqCst) >= 2, "it retries");
        let gone = Arc::downgrade(&set);
        drop(set);
        assert!(
            gone.upgrade().is_none(),
            "the retrying restart keeps the set"
        );
        let (done, joined) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            thread.join();
            let _ = done.send(());
        });
        assert!(joined.recv_timeout(Duration::from_secs(10)).is_ok());
        // The retry ends at its next attempt.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let settled = attempts.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1_700)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), settled, "still retrying");
    }

    /// A partition another pod has taken over is left to it: one attempt, no retries.
    #[tokio::test]
    async fn a_partition_taken_over_is_not_restarted_again() {
        let (set, attempts, thread, _dir) =
            failing_restarts(|| EngineError::TakenOver("epoch 7 is pod-b's".into()));
        set.restart(0);
        let started = std::time::Instant::now();
        while attempts.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "no attempt");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Past the first backoff (200 ms) twice over: a retry would have come by now.
        tokio::time::sleep(Duration::from_millis(600)).await;
        set.restart(0); // a later call that sees the partition stopped
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        drop(set);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap();
    }
}
