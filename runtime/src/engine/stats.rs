//! Figures the engine exports: commands, batches, batch sizes, store write latency.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Default)]
pub struct EngineStats {
    commands: AtomicU64,
    batches: AtomicU64,
    max_batch: AtomicU64,
    store_writes: AtomicU64,
    store_write_us_total: AtomicU64,
    store_write_us_max: AtomicU64,
    snapshots: AtomicU64,
    snapshots_failed: AtomicU64,
    recovered_batches: AtomicU64,
    last_seq: AtomicU64,
    journal_entries: AtomicU64,
    answer_slots: AtomicU64,
    hold_slots: AtomicU64,
    snapshot_bytes: AtomicU64,
}

/// A copy of the figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub commands: u64,
    pub batches: u64,
    pub max_batch: u64,
    pub store_writes: u64,
    pub store_write_us_total: u64,
    pub store_write_us_max: u64,
    pub snapshots: u64,
    /// Snapshots the store could not take for now (tried again later; the log keeps all).
    pub snapshots_failed: u64,
    pub recovered_batches: u64,
    pub last_seq: u64,
    /// What the ledger keeps (see `Ledger::retained`), after the last batch.
    pub journal_entries: u64,
    pub answer_slots: u64,
    pub hold_slots: u64,
    /// Size of the last snapshot taken, in bytes.
    pub snapshot_bytes: u64,
}

impl StatsSnapshot {
    /// Mean commands per durable batch.
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.commands as f64 / self.batches as f64
        }
    }
}

impl EngineStats {
    pub(crate) fn batch(&self, commands: u64, seq: u64, store_write_us: u64) {
        self.commands.fetch_add(commands, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.max_batch.fetch_max(commands, Relaxed);
        self.store_writes.fetch_add(1, Relaxed);
        self.store_write_us_total.fetch_add(store_write_us, Relaxed);
        self.store_write_us_max.fetch_max(store_write_us, Relaxed);
        self.last_seq.store(seq, Relaxed);
    }

    pub(crate) fn snapshot_taken(&self, bytes: u64) {
        self.snapshots.fetch_add(1, Relaxed);
        self.snapshot_bytes.store(bytes, Relaxed);
    }

    pub(crate) fn snapshot_failed(&self) {
        self.snapshots_failed.fetch_add(1, Relaxed);
    }

    pub(crate) fn retained(&self, retained: crate::ledger::Retained) {
        self.journal_entries
            .store(retained.journal_entries, Relaxed);
        self.answer_slots.store(retained.answer_slots, Relaxed);
        self.hold_slots.store(retained.hold_slots, Relaxed);
    }

    pub(crate) fn record_recovery(&self, batches: u64, last_seq: u64) {
        self.recovered_batches.store(batches, Relaxed);
        self.last_seq.store(last_seq, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            commands: self.commands.load(Relaxed),
            batches: self.batches.load(Relaxed),
            max_batch: self.max_batch.load(Relaxed),
            store_writes: self.store_writes.load(Relaxed),
            store_write_us_total: self.store_write_us_total.load(Relaxed),
            store_write_us_max: self.store_write_us_max.load(Relaxed),
            snapshots: self.snapshots.load(Relaxed),
            snapshots_failed: self.snapshots_failed.load(Relaxed),
            recovered_batches: self.recovered_batches.load(Relaxed),
            last_seq: self.last_seq.load(Relaxed),
            journal_entries: self.journal_entries.load(Relaxed),
            answer_slots: self.answer_slots.load(Relaxed),
            hold_slots: self.hold_slots.load(Relaxed),
            snapshot_bytes: self.snapshot_bytes.load(Relaxed),
        }
    }
}
