#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The writer closes when the last handle is dropped, even while the engine's ticker waits
//! for the ledger behind a snapshot: `serve` waits for its writers at shutdown, and with one
//! worker thread a ticker that kept the engine alive would keep that wait going for ever.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::acme::grant;
use common::hooked::Hooked;
use tollgate_runtime::engine::{Engine, EngineConfig, SystemClock};

/// Snapshots wait while the gate is closed; `waiting` says one does.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

/// The embedded store, whose snapshots wait at `gate`.
fn gated_snapshots(dir: &std::path::Path, gate: &Arc<Gate>) -> Hooked {
    let gate = gate.clone();
    Hooked::open(dir).before_snapshot(move || {
        let mut state = gate.state.lock().unwrap();
        state.1 = true;
        gate.changed.notify_all();
        while !state.0 {
            state = gate.changed.wait(state).unwrap();
        }
        Ok(true)
    })
}

/// One runtime thread, as `serve --worker-threads 1`.
#[tokio::test(flavor = "current_thread")]
async fn the_last_handle_closes_the_writer_while_the_ticker_waits_for_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let store = gated_snapshots(dir.path(), &gate);
    // A snapshot after every batch, and a tick every millisecond.
    let config = EngineConfig {
        snapshot_every_batches: 1,
        tick: Duration::from_millis(1),
        ..EngineConfig::default()
    };
    let (engine, thread) = Engine::start(Box::new(store), Arc::new(SystemClock), config).unwrap();
    engine.submit(grant("g", 1_000, 0)).await.unwrap().unwrap();
    // The writer holds the ledger for the batch's snapshot, at the gate; the ticker comes
    // for the ledger and queues behind it.
    {
        let mut state = gate.state.lock().unwrap();
        while !state.1 {
            state = gate.changed.wait(state).unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(engine);
    {
        gate.state.lock().unwrap().0 = true;
        gate.changed.notify_all();
    }
    // Wait for the writer on this, the runtime's only thread, so the ticker cannot run.
    let (done, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        thread.join();
        let _ = done.send(());
    });
    assert!(
        joined.recv_timeout(Duration::from_secs(10)).is_ok(),
        "the writer did not close: the waiting ticker kept the engine alive"
    );
}
