#![allow(clippy::unwrap_used, clippy::expect_used)]
//! An engine grows its ledger from spare chunks (`ledger::Spares`), the filler thread
//! refills them while the runtime's threads are parked, and it leaves once the engines
//! using them have stopped.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::acme::{grant, reserve};
use tollgate_runtime::engine::{
    Activity, Engine, EngineConfig, EngineThread, SystemClock, start_filler,
};
use tollgate_runtime::ledger::Spares;
use tollgate_runtime::store::embedded::EmbeddedStore;

/// Waits up to 10 s for `spares` to hold `ready` chunks of each kind.
fn wait_for(spares: &Spares, ready: (usize, usize, usize), what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while spares.ready() != ready {
        assert!(
            Instant::now() < until,
            "{what}: {:?}, not {ready:?}",
            spares.ready()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts an engine on `dir` with `config`, grants credits, and holds them in `batches`
/// batches of 100 concurrent Reserves.
async fn holds_in_batches(
    dir: &std::path::Path,
    config: EngineConfig,
    batches: usize,
) -> (Engine, EngineThread) {
    let store = EmbeddedStore::open(dir).unwrap();
    let (engine, thread) = Engine::start(Box::new(store), Arc::new(SystemClock), config).unwrap();
    engine
        .submit(grant("g", 1 << 40, 0))
        .await
        .unwrap()
        .unwrap();
    for batch in 0..batches {
        let calls = (0..100).map(|i| engine.submit(reserve(format!("r{batch}-{i}"), 1, 60_000)));
        for result in futures::future::join_all(calls).await {
            result.unwrap().unwrap();
        }
    }
    (engine, thread)
}

#[tokio::test]
async fn the_ledger_grows_from_the_pools_and_the_filler_refills_them() {
    let dir = tempfile::tempdir().unwrap();
    let spares = Spares::new();
    // Filled here, and the filler started only after the calls: what they took shows.
    spares.fill(|| true);
    let full = spares.ready();
    let config = EngineConfig {
        spares: Some(spares.clone()),
        ..EngineConfig::default()
    };
    // 4,200 holds: past a chunk of holds, of answers and of journal entries.
    let (engine, thread) = holds_in_batches(dir.path(), config, 42).await;
    let (journal, holds, answers) = engine
        .read(|ledger| {
            let retained = ledger.retained();
            (
                retained.journal_entries,
                retained.hold_slots,
                retained.answer_slots,
            )
        })
        .await
        .unwrap();
    assert!(
        journal > 4096 && holds > 4096 && answers > 4096,
        "{journal} {holds} {answers}"
    );
    let left = spares.ready();
    assert!(
        left.0 < full.0 && left.1 < full.1 && left.2 < full.2,
        "the ledger grew from the pools: {left:?} of {full:?}"
    );
    // The filler touches nothing while a serving thread works, and refills once all park.
    let activity = Arc::new(Activity::new(1));
    start_filler(&spares, activity.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        spares.ready(),
        left,
        "nothing filled while the runtime works"
    );
    activity.parking();
    wait_for(&spares, full, "refilled by the filler");
    let pools = Arc::downgrade(&spares);
    drop(spares);
    drop(engine);
    thread.join();
    assert!(
        pools.upgrade().is_none(),
        "once its engines stop nothing holds the pools, and the filler leaves"
    );
}

/// The journal chunks a snapshot's archive holds leave the ledger at the next snapshot and
/// go back to the pool, from the snapshot's encoding thread (not the writer's).
#[tokio::test]
async fn journal_chunks_the_archive_holds_go_back_to_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    // Empty pools and no filler: every chunk the ledger takes is its own, and what the
    // pool holds later came back from the ledger.
    let spares = Spares::new();
    let config = EngineConfig {
        spares: Some(spares.clone()),
        snapshot_every_batches: 1,
        ..EngineConfig::default()
    };
    // A journal chunk (4,096 entries) and more, then single calls: snapshots after each.
    let (engine, thread) = holds_in_batches(dir.path(), config, 45).await;
    assert_eq!(spares.ready(), (0, 0, 0));
    let until = Instant::now() + Duration::from_secs(10);
    let mut more = 0;
    while spares.ready().0 == 0 {
        assert!(Instant::now() < until, "no journal chunk came back");
        more += 1;
        engine
            .submit(reserve(format!("more-{more}"), 1, 60_000))
            .await
            .unwrap()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let archived = engine
        .read(|ledger| ledger.journal().archived())
        .await
        .unwrap();
    assert!(archived >= 4096, "{archived} entries archived");
    drop(engine);
    thread.join();
}
