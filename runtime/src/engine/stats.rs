//! Figures the engine exports: commands, batches, batch sizes, store write latency.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Upper bounds, in microseconds, of the buckets that count durable writes by how long
/// they took (the last bucket, past them all, is implied). From a fast local `fdatasync`
/// (about 150 us) to a DynamoDB transaction retried under throttling (seconds): where the
/// p99 of a call comes from when the disk or the table has a slow moment.
pub const STORE_WRITE_BOUNDS_US: [u64; 12] = [
    100, 200, 300, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 100_000, 1_000_000, 5_000_000,
];
/// One bucket per bound, and one for the writes slower than every bound.
pub const STORE_WRITE_BUCKETS: usize = STORE_WRITE_BOUNDS_US.len() + 1;

/// Upper bounds of the buckets that count batches by their commands: powers of two up to
/// `DEFAULT_MAX_BATCH` (a larger `max_batch` counts past the last). How many calls share a
/// durable write, and so what one write costs each of them.
pub const BATCH_COMMANDS_BOUNDS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 2_048];
/// One bucket per bound, and one for the batches larger than every bound.
pub const BATCH_COMMANDS_BUCKETS: usize = BATCH_COMMANDS_BOUNDS.len() + 1;

/// The bucket `value` counts in: that of the smallest bound at least `value`, or the one past
/// them all.
fn bucket(bounds: &[u64], value: u64) -> usize {
    bounds.partition_point(|&bound| bound < value)
}

#[derive(Default)]
pub struct EngineStats {
    commands: AtomicU64,
    batches: AtomicU64,
    max_batch: AtomicU64,
    store_writes: AtomicU64,
    store_write_us_total: AtomicU64,
    store_write_us_max: AtomicU64,
    /// Durable writes by how long they took (`STORE_WRITE_BOUNDS_US`), not cumulative.
    store_write_buckets: [AtomicU64; STORE_WRITE_BUCKETS],
    /// Batches by their commands (`BATCH_COMMANDS_BOUNDS`), not cumulative.
    batch_buckets: [AtomicU64; BATCH_COMMANDS_BUCKETS],
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
    /// Durable writes by how long they took: `[i]` counts those over bound `i - 1` and at
    /// most bound `i` of `STORE_WRITE_BOUNDS_US` (the last, those over every bound).
    pub store_write_buckets: [u64; STORE_WRITE_BUCKETS],
    /// Batches by their commands, as `store_write_buckets` by `BATCH_COMMANDS_BOUNDS`.
    pub batch_buckets: [u64; BATCH_COMMANDS_BUCKETS],
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
        self.store_write_buckets[bucket(&STORE_WRITE_BOUNDS_US, store_write_us)]
            .fetch_add(1, Relaxed);
        self.batch_buckets[bucket(&BATCH_COMMANDS_BOUNDS, commands)].fetch_add(1, Relaxed);
        self.last_seq.store(seq, Relaxed);
    }

    /// Adds the counts of `old`, the engine of the same partition this one replaces after
    /// a restart, so that counts run since the process started and never go back (what
    /// `/metrics` exports as counters). Gauges (what the ledger keeps, the last snapshot's
    /// size) are this engine's own.
    pub(crate) fn carry_from(&self, old: &EngineStats) {
        let o = old.snapshot();
        self.commands.fetch_add(o.commands, Relaxed);
        self.batches.fetch_add(o.batches, Relaxed);
        self.max_batch.fetch_max(o.max_batch, Relaxed);
        self.store_writes.fetch_add(o.store_writes, Relaxed);
        self.store_write_us_total
            .fetch_add(o.store_write_us_total, Relaxed);
        self.store_write_us_max
            .fetch_max(o.store_write_us_max, Relaxed);
        for (bucket, count) in self.store_write_buckets.iter().zip(o.store_write_buckets) {
            bucket.fetch_add(count, Relaxed);
        }
        for (bucket, count) in self.batch_buckets.iter().zip(o.batch_buckets) {
            bucket.fetch_add(count, Relaxed);
        }
        self.snapshots.fetch_add(o.snapshots, Relaxed);
        self.snapshots_failed.fetch_add(o.snapshots_failed, Relaxed);
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
            store_write_buckets: self.store_write_buckets.each_ref().map(|b| b.load(Relaxed)),
            batch_buckets: self.batch_buckets.each_ref().map(|b| b.load(Relaxed)),
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

#[cfg(test)]
mod tests {
    use super::{
        BATCH_COMMANDS_BOUNDS, BATCH_COMMANDS_BUCKETS, EngineStats, STORE_WRITE_BOUNDS_US,
        STORE_WRITE_BUCKETS,
    };

    #[test]
    fn a_restarted_partitions_counts_go_on_from_the_old_ones() {
        let old = EngineStats::default();
        old.batch(3, 1, 100);
        old.batch(5, 2, 300);
        old.snapshot_taken(1000);
        old.snapshot_failed();
        let new = EngineStats::default();
        new.batch(2, 3, 50);
        new.snapshot_taken(700);
        new.carry_from(&old);
        let s = new.snapshot();
        assert_eq!((s.commands, s.batches, s.store_writes), (10, 3, 3));
        assert_eq!(
            (s.max_batch, s.store_write_us_total, s.store_write_us_max),
            (5, 450, 300)
        );
        assert_eq!((s.snapshots, s.snapshots_failed), (2, 1));
        // 50 and 100 us at most 100; 300 over 200 and at most 300.
        let mut buckets = [0; STORE_WRITE_BUCKETS];
        buckets[0] = 2;
        buckets[2] = 1;
        assert_eq!(s.store_write_buckets, buckets);
        // Batches of 2, 3 and 5 commands: in the buckets of at most 2, 4 and 8.
        let mut batches = [0; BATCH_COMMANDS_BUCKETS];
        batches[1] = 1;
        batches[2] = 1;
        batches[3] = 1;
        assert_eq!(s.batch_buckets, batches);
        // Gauges are the new engine's own.
        assert_eq!((s.snapshot_bytes, s.last_seq), (700, 3));
    }

    #[test]
    fn each_write_counts_in_the_bucket_of_its_smallest_bound_at_least_its_time() {
        let stats = EngineStats::default();
        for us in [0, 100, 101, 999, 1_000, 5_000_000, 5_000_001, 60_000_000] {
            stats.batch(1, 1, us);
        }
        let s = stats.snapshot();
        let at = |bound: u64| {
            STORE_WRITE_BOUNDS_US
                .iter()
                .position(|&b| b == bound)
                .unwrap()
        };
        let mut buckets = [0; STORE_WRITE_BUCKETS];
        buckets[at(100)] = 2;
        buckets[at(200)] = 1;
        buckets[at(1_000)] = 2;
        buckets[at(5_000_000)] = 1;
        buckets[STORE_WRITE_BUCKETS - 1] = 2;
        assert_eq!(s.store_write_buckets, buckets);
        assert_eq!(s.store_write_buckets.iter().sum::<u64>(), s.store_writes);
    }

    #[test]
    fn each_batch_counts_in_the_bucket_of_its_smallest_bound_at_least_its_commands() {
        let stats = EngineStats::default();
        for commands in [1, 2, 3, 23, 24, 64, 65, 2_048, 2_049, 100_000] {
            stats.batch(commands, 1, 150);
        }
        let s = stats.snapshot();
        let at = |bound: u64| {
            BATCH_COMMANDS_BOUNDS
                .iter()
                .position(|&b| b == bound)
                .unwrap()
        };
        let mut buckets = [0; BATCH_COMMANDS_BUCKETS];
        buckets[at(1)] = 1;
        buckets[at(2)] = 1;
        buckets[at(4)] = 1;
        buckets[at(32)] = 2;
        buckets[at(64)] = 1;
        buckets[at(128)] = 1;
        buckets[at(2_048)] = 1;
        buckets[BATCH_COMMANDS_BUCKETS - 1] = 2;
        assert_eq!(s.batch_buckets, buckets);
        assert_eq!(s.batch_buckets.iter().sum::<u64>(), s.batches);
    }
}
