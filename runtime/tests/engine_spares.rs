#![allow(clippy::unwrap_used, clippy::expect_used)]
//! An engine grows its ledger from spare chunks (`ledger::Spares`), the filler thread
//! refills them while the runtime's threads are parked, and it leaves once the engines
//! using them have stopped.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::acme::{grant, reserve};
use tollgate_runtime::engine::{Activity, Engine, EngineConfig, SystemClock, start_filler};
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
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let (engine, thread) = Engine::start(Box::new(store), Arc::new(SystemClock), config).unwrap();
    engine
        .submit(grant("g", 1 << 40, 0))
        .await
        .unwrap()
        .unwrap();
    // 4,200 holds: past a chunk of holds, of answers and of journal entries.
    for batch in 0..42 {
        let calls = (0..100).map(|i| engine.submit(reserve(format!("r{batch}-{i}"), 1, 60_000)));
        for result in futures::future::join_all(calls).await {
            result.unwrap().unwrap();
        }
    }
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
