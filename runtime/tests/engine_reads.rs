#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `Engine::read_now` reads on the caller's thread when it may, and never sees what is not
//! durable: a store whose writes wait at a gate (or fail) shows when reads may answer.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::acme::{HOLD_MS, grant, reserve, wallet};
use tollgate_runtime::engine::{Engine, EngineConfig, EngineError, SystemClock};
use tollgate_runtime::store::embedded::EmbeddedStore;
use tollgate_runtime::store::{Batch, Recovered, Snapshot, Store, StoreError};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Gate {
    Open,
    Closed,
    Fail,
}

/// Shared between the test and the store: the gate, and how many writes are waiting at it.
#[derive(Default)]
struct Control {
    state: Mutex<(Option<Gate>, u32)>,
    changed: Condvar,
}

impl Control {
    fn set(&self, gate: Gate) {
        self.state.lock().unwrap().0 = Some(gate);
        self.changed.notify_all();
    }

    /// Waits until a write is held at the closed gate: the writer is inside a batch.
    fn wait_for_waiting_write(&self) {
        let mut state = self.state.lock().unwrap();
        while state.1 == 0 {
            state = self.changed.wait(state).unwrap();
        }
    }
}

struct GatedStore {
    inner: EmbeddedStore,
    control: Arc<Control>,
}

impl Store for GatedStore {
    fn recover(
        &mut self,
        restore: &mut dyn FnMut(Recovered) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.inner.recover(restore)
    }

    fn append(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let mut state = self.control.state.lock().unwrap();
        state.1 += 1;
        self.control.changed.notify_all();
        while state.0 == Some(Gate::Closed) {
            state = self.control.changed.wait(state).unwrap();
        }
        state.1 -= 1;
        if state.0 == Some(Gate::Fail) {
            return Err(StoreError::Io {
                op: "write",
                path: "gated".into(),
                source: std::io::Error::other("injected failure"),
            });
        }
        drop(state);
        self.inner.append(batch)
    }

    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot)
    }
}

/// An engine on a gated store, with a wallet granted 1,000 credits.
async fn engine(dir: &std::path::Path) -> (Engine, Arc<Control>) {
    let control = Arc::new(Control::default());
    control.set(Gate::Open);
    let store = GatedStore {
        inner: EmbeddedStore::open(dir).unwrap(),
        control: control.clone(),
    };
    // No ticks: nothing but the test's own commands takes the writer's lock.
    let config = EngineConfig {
        tick: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let (engine, _thread) = Engine::start(Box::new(store), Arc::new(SystemClock), config).unwrap();
    engine
        .submit(grant("grant", 1_000, 0))
        .await
        .unwrap()
        .unwrap();
    (engine, control)
}

/// Available credits, and whether the read ran on the writer's thread.
async fn available(engine: &Engine) -> Result<(u64, bool), EngineError> {
    engine
        .read_now(|ledger| {
            let on_writer = std::thread::current().name() == Some("tollgate-writer");
            (ledger.wallet_totals(&wallet()).unwrap().0, on_writer)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_is_read_on_the_callers_thread_and_every_acknowledged_write_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _control) = engine(dir.path()).await;
    assert_eq!(available(&engine).await.unwrap().0, 1_000);
    let mut on_callers_thread = 0;
    for n in 1..=100 {
        engine
            .submit(reserve(format!("r{n}"), 1, HOLD_MS))
            .await
            .unwrap()
            .unwrap();
        let (left, on_writer) = available(&engine).await.unwrap();
        assert_eq!(left, 1_000 - n, "the acknowledged reserve {n} is seen");
        on_callers_thread += u32::from(!on_writer);
    }
    // Nothing else was pending: every read may run on the caller's thread. (The engine's
    // first tick, at start, may still hold the writer for one of them on a loaded machine.)
    assert!(
        on_callers_thread >= 90,
        "only {on_callers_thread} of 100 reads ran on the caller's thread"
    );
    // A write submitted before the read (not yet acknowledged) is seen by it, on whichever
    // thread the read runs.
    let (reserved, read) = tokio::join!(
        engine.submit(reserve("r-last", 10, HOLD_MS)),
        available(&engine)
    );
    reserved.unwrap().unwrap();
    assert_eq!(read.unwrap().0, 890);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_is_not_durable_yet_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, control) = engine(dir.path()).await;
    control.set(Gate::Closed);
    let writing = tokio::spawn({
        let engine = engine.clone();
        async move { engine.submit(reserve("held", 100, HOLD_MS)).await }
    });
    tokio::task::spawn_blocking({
        let control = control.clone();
        move || control.wait_for_waiting_write()
    })
    .await
    .unwrap();
    // The reserve is applied but its batch is not durable: the read waits for it.
    let reading = tokio::spawn({
        let engine = engine.clone();
        async move { available(&engine).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !reading.is_finished(),
        "a read answered from a batch that is not durable"
    );
    control.set(Gate::Open);
    writing.await.unwrap().unwrap().unwrap();
    assert_eq!(reading.await.unwrap().unwrap(), (900, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_store_refused_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, control) = engine(dir.path()).await;
    control.set(Gate::Fail);
    let refused = engine.submit(reserve("lost", 100, HOLD_MS)).await;
    assert!(
        matches!(refused, Err(EngineError::Stopped { .. })),
        "{refused:?}"
    );
    // The writer applied the reserve before the store refused it. The ledger it left
    // behind is unlocked and has taken every command, and still must not be read.
    for _ in 0..10 {
        let read = available(&engine).await;
        assert!(
            matches!(read, Err(EngineError::Stopped { .. })),
            "read after a refused batch: {read:?}"
        );
    }
}
