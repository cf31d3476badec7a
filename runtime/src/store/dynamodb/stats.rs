//! Counters of one connection: calls, retries, throttling, and the capacity DynamoDB
//! reported (`ReturnConsumedCapacity`), which is what the user pays for.

use std::sync::atomic::{AtomicU64, Ordering};

/// Capacity units are counted in thousandths (DynamoDB reports fractions for reads).
const MILLI: f64 = 1000.0;

#[derive(Debug, Default)]
pub struct DynamoStats {
    attempts: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    gave_up: AtomicU64,
    write_units_milli: AtomicU64,
    read_units_milli: AtomicU64,
    batches: AtomicU64,
    transactions: AtomicU64,
    checkpoints_published: AtomicU64,
    checkpoints_failed: AtomicU64,
    checkpoints_deleted: AtomicU64,
    journal_batches_deleted: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DynamoStatsSnapshot {
    pub attempts: u64,
    pub retries: u64,
    pub throttled: u64,
    pub gave_up: u64,
    /// Write capacity units DynamoDB reported for the store's writes.
    pub write_units: f64,
    pub read_units: f64,
    /// Journal batches written, and how many of them needed a transaction (multi-item).
    pub batches: u64,
    pub transactions: u64,
    /// Checkpoint uploads that published their manifest, and that did not; checkpoints
    /// deleted (superseded ones, and uploads that never published).
    pub checkpoints_published: u64,
    pub checkpoints_failed: u64,
    pub checkpoints_deleted: u64,
    /// Journal batches deleted once a checkpoint no recovery reads before covered them.
    pub journal_batches_deleted: u64,
}

impl DynamoStatsSnapshot {
    /// Every figure, for `/metrics`: each a counter since start, as (metric name, help,
    /// value).
    pub fn figures(&self) -> Vec<(&'static str, &'static str, f64)> {
        vec![
            (
                "tollgate_dynamodb_attempts_total",
                "DynamoDB call attempts, retries included",
                self.attempts as f64,
            ),
            (
                "tollgate_dynamodb_retries_total",
                "DynamoDB call attempts that were retries",
                self.retries as f64,
            ),
            (
                "tollgate_dynamodb_throttled_total",
                "DynamoDB answers that asked to slow down (throttling)",
                self.throttled as f64,
            ),
            (
                "tollgate_dynamodb_gave_up_total",
                "DynamoDB calls given up: attempts or deadline ran out, or a batch write \
                 stayed unprocessed round after round",
                self.gave_up as f64,
            ),
            (
                "tollgate_dynamodb_write_capacity_units_total",
                "Write capacity units DynamoDB reported consumed",
                self.write_units,
            ),
            (
                "tollgate_dynamodb_read_capacity_units_total",
                "Read capacity units DynamoDB reported consumed",
                self.read_units,
            ),
            (
                "tollgate_dynamodb_journal_batches_total",
                "Journal batches written",
                self.batches as f64,
            ),
            (
                "tollgate_dynamodb_journal_transactions_total",
                "Journal batches that needed a transaction (more than one item)",
                self.transactions as f64,
            ),
            (
                "tollgate_dynamodb_checkpoints_published_total",
                "Checkpoints uploaded and published",
                self.checkpoints_published as f64,
            ),
            (
                "tollgate_dynamodb_checkpoints_failed_total",
                "Checkpoint uploads that failed (the journal keeps what they would have covered)",
                self.checkpoints_failed as f64,
            ),
            (
                "tollgate_dynamodb_checkpoints_deleted_total",
                "Checkpoints deleted: superseded ones, and uploads never published",
                self.checkpoints_deleted as f64,
            ),
            (
                "tollgate_dynamodb_journal_batches_deleted_total",
                "Journal batches deleted: covered by the checkpoint kept before the newest",
                self.journal_batches_deleted as f64,
            ),
        ]
    }
}

impl DynamoStats {
    pub(crate) fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn gave_up(&self) {
        self.gave_up.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn batch(&self, transaction: bool) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        if transaction {
            self.transactions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn journal_pruned(&self, batches: u64) {
        self.journal_batches_deleted
            .fetch_add(batches, Ordering::Relaxed);
    }

    pub(crate) fn checkpoint(&self, published: bool, deleted: usize) {
        let counter = if published {
            &self.checkpoints_published
        } else {
            &self.checkpoints_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.checkpoints_deleted
            .fetch_add(deleted as u64, Ordering::Relaxed);
    }

    /// Adds what one call consumed (`ConsumedCapacity`), if DynamoDB said.
    pub(crate) fn consumed(&self, write_units: Option<f64>, read_units: Option<f64>) {
        let milli = |u: Option<f64>| (u.unwrap_or(0.0).max(0.0) * MILLI).round() as u64;
        self.write_units_milli
            .fetch_add(milli(write_units), Ordering::Relaxed);
        self.read_units_milli
            .fetch_add(milli(read_units), Ordering::Relaxed);
    }

    /// Write units of a multi-item call (`TransactWriteItems`, `BatchWriteItem`), which
    /// reports one `ConsumedCapacity` per table.
    pub(crate) fn consumed_writes(&self, capacities: &[aws_sdk_dynamodb::types::ConsumedCapacity]) {
        let units = capacities.iter().filter_map(|c| c.capacity_units()).sum();
        self.consumed(Some(units), None);
    }

    pub fn snapshot(&self) -> DynamoStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DynamoStatsSnapshot {
            attempts: get(&self.attempts),
            retries: get(&self.retries),
            throttled: get(&self.throttled),
            gave_up: get(&self.gave_up),
            write_units: get(&self.write_units_milli) as f64 / MILLI,
            read_units: get(&self.read_units_milli) as f64 / MILLI,
            batches: get(&self.batches),
            transactions: get(&self.transactions),
            checkpoints_published: get(&self.checkpoints_published),
            checkpoints_failed: get(&self.checkpoints_failed),
            checkpoints_deleted: get(&self.checkpoints_deleted),
            journal_batches_deleted: get(&self.journal_batches_deleted),
        }
    }
}
