#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A snapshot the store cannot take for now (DynamoDB throttled, unreachable) does not stop
//! the partition: every batch is durable in the log, and the snapshot is tried again later.
//! Before, the writer stopped; the restarted writer replayed the same log, tried the same
//! snapshot at once, failed again, and the partition flapped for as long as the cause lasted.
//! A store failure that is not transient still stops it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::acme::{grant, wallet};
use common::hooked::Hooked;
use tollgate_runtime::engine::{Engine, EngineConfig, EngineError, ManualClock, recover_ledger};
use tollgate_runtime::ledger::Timestamp;
use tollgate_runtime::store::StoreError;
use tollgate_runtime::store::dynamodb::DynamoError;
use tollgate_runtime::store::embedded::EmbeddedStore;

/// The embedded store, whose snapshots fail while `failures` is above zero (transiently,
/// as DynamoDB throttled, or not).
fn flaky_snapshots(dir: &Path, failures: &Arc<AtomicU32>, transient: bool) -> Hooked {
    let failures = failures.clone();
    Hooked::open(dir).before_snapshot(move || {
        if failures.load(Ordering::SeqCst) == 0 {
            return Ok(true);
        }
        failures.fetch_sub(1, Ordering::SeqCst);
        Err(if transient {
            StoreError::Dynamo(DynamoError::Unavailable {
                op: "BatchWriteItem",
                attempts: 8,
                elapsed_ms: 2_300,
                last: "ProvisionedThroughputExceededException".into(),
            })
        } else {
            StoreError::Io {
                op: "write",
                path: "snapshot".into(),
                source: std::io::Error::other("disk gone"),
            }
        })
    })
}

fn start(dir: &Path, failures: &Arc<AtomicU32>, transient: bool) -> (Engine, impl FnOnce()) {
    let store = flaky_snapshots(dir, failures, transient);
    let config = EngineConfig {
        snapshot_every_batches: 10,
        ..EngineConfig::default()
    };
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let (engine, thread) = Engine::start(Box::new(store), clock, config).unwrap();
    (engine, move || thread.join())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_snapshot_failure_is_retried_and_the_partition_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let failures = Arc::new(AtomicU32::new(3));
    let (engine, join) = start(dir.path(), &failures, true);
    // One command per batch (each awaited): 60 batches, a snapshot due every 10.
    for i in 0..60 {
        engine
            .submit(grant(format!("g{i}"), 1_000, 0))
            .await
            .expect("the partition serves")
            .expect("granted");
    }
    let stats = engine.stats().snapshot();
    assert_eq!(stats.snapshots_failed, 3, "{stats:?}");
    assert!(
        stats.snapshots >= 1,
        "retried until one was taken: {stats:?}"
    );
    drop(engine);
    join();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let ledger = recover_ledger(&mut store).unwrap();
    assert_eq!(ledger.wallet_balance(&wallet()).unwrap().available, 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_failure_that_is_not_transient_still_stops_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let failures = Arc::new(AtomicU32::new(1));
    let (engine, join) = start(dir.path(), &failures, false);
    let mut stopped = None;
    for i in 0..20 {
        match engine.submit(grant(format!("g{i}"), 1_000, 0)).await {
            Ok(result) => {
                result.expect("granted");
            }
            Err(error) => {
                stopped = Some(error);
                break;
            }
        }
    }
    let Some(EngineError::Stopped { reason, transient }) = stopped else {
        panic!("the partition went on after a failed snapshot: {stopped:?}")
    };
    assert!(!transient && reason.contains("disk gone"), "{reason}");
    drop(engine);
    join();
}
