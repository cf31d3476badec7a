#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A start with another idempotency window logs the change where it took effect, so the
//! log replays to the same state whatever window the replaying process was started with.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::acme::{grant, reserve, wallet};
use common::hooked::Hooked;
use tollgate_runtime::engine::{Engine, EngineConfig, ManualClock, recover_ledger};
use tollgate_runtime::ledger::{LedgerConfig, LedgerError, Timestamp};
use tollgate_runtime::store::Store;

const MINUTE_MS: u64 = 60_000;

/// The embedded store, but snapshots are dropped: every recovery replays the whole log, as
/// after a crash before the first snapshot.
fn store(dir: &Path) -> Box<dyn Store> {
    Box::new(Hooked::open(dir).before_snapshot(|| Ok(false)))
}

fn config(window_ms: u64) -> EngineConfig {
    EngineConfig {
        ledger: LedgerConfig {
            idempotency_window_ms: window_ms,
        },
        ..EngineConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_window_is_logged_and_replayed_where_it_took_effect() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));

    // First run, with a one-minute window.
    let (engine, thread) =
        Engine::start(store(dir.path()), clock.clone(), config(MINUTE_MS)).unwrap();
    engine
        .submit(grant("grant", 1_000_000, 0))
        .await
        .unwrap()
        .unwrap();
    let hold_ms = 10 * MINUTE_MS;
    engine
        .submit(reserve("k", 100, hold_ms))
        .await
        .unwrap()
        .unwrap();
    // Within the window, the same key with another payload is a conflict.
    let conflict = engine.submit(reserve("k", 200, hold_ms)).await.unwrap();
    assert!(
        matches!(conflict, Err(LedgerError::IdempotencyConflict { .. })),
        "{conflict:?}"
    );
    // Two minutes later the key is forgotten: the same key is a new request.
    clock.advance_ms(2 * MINUTE_MS);
    engine
        .submit(reserve("k", 200, hold_ms))
        .await
        .unwrap()
        .unwrap();
    drop(engine);
    thread.join();

    // The log replays as it ran, although a new ledger starts with the default (24 h)
    // window, under which the second "k" would have been a conflict.
    let ledger = recover_ledger(store(dir.path()).as_mut()).unwrap();
    assert_eq!(ledger.config().idempotency_window_ms, MINUTE_MS);
    let balance = ledger.wallet_balance(&wallet()).unwrap();
    assert_eq!(balance.pending, 300, "{balance:?}");

    // Second run, with the default window: the change is logged too.
    let (engine, thread) =
        Engine::start(store(dir.path()), clock.clone(), EngineConfig::default()).unwrap();
    let kept = engine.read(|l| l.config()).await.unwrap();
    assert_eq!(kept, LedgerConfig::default());
    // The first run wrote 5 batches (its window, then 4 commands); the change is the 6th,
    // and the recovery replayed only the first run's.
    let stats = engine.stats().snapshot();
    assert_eq!((stats.recovered_batches, stats.last_seq), (5, 6));
    drop(engine);
    thread.join();
    let ledger = recover_ledger(store(dir.path()).as_mut()).unwrap();
    assert_eq!(ledger.config(), LedgerConfig::default());
    assert_eq!(ledger.wallet_balance(&wallet()).unwrap().pending, 300);
    ledger.verify().unwrap();
}
