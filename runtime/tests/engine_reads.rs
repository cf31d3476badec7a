#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Callers apply commands while the writer makes the batch before durable, and nobody hears
//! an answer that rests on a batch that is not durable: a store whose writes wait at a gate
//! (or fail) shows when calls and reads may answer.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::acme::{HOLD_MS, grant, reserve, wallet};
use common::hooked::Hooked;
use tollgate_runtime::engine::{Engine, EngineConfig, EngineError, SystemClock};
use tollgate_runtime::store::StoreError;

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

/// The embedded store, whose appends wait at the gate while it is closed, and fail while
/// it says so.
fn gated_store(dir: &std::path::Path, control: &Arc<Control>) -> Hooked {
    let control = control.clone();
    Hooked::open(dir).before_append(move |_| {
        let mut state = control.state.lock().unwrap();
        state.1 += 1;
        control.changed.notify_all();
        while state.0 == Some(Gate::Closed) {
            state = control.changed.wait(state).unwrap();
        }
        state.1 -= 1;
        if state.0 == Some(Gate::Fail) {
            return Err(StoreError::Io {
                op: "write",
                path: "gated".into(),
                source: std::io::Error::other("injected failure"),
            });
        }
        Ok(())
    })
}

/// An engine on a gated store, with a wallet granted 1,000 credits.
async fn engine(dir: &std::path::Path) -> (Engine, Arc<Control>) {
    let control = Arc::new(Control::default());
    control.set(Gate::Open);
    let store = gated_store(dir, &control);
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
        .read(|ledger| {
            let on_writer = std::thread::current().name() == Some("tollgate-writer");
            (ledger.wallet_totals(&wallet()).unwrap().0, on_writer)
        })
        .await
}

/// Submits a reserve of `amount` on a task of its own.
fn reserving(
    engine: &Engine,
    key: &str,
    amount: u64,
) -> tokio::task::JoinHandle<Result<tollgate_runtime::ledger::CommandResult, EngineError>> {
    let (engine, key) = (engine.clone(), key.to_string());
    tokio::spawn(async move { engine.submit(reserve(key, amount, HOLD_MS)).await })
}

/// Waits until the writer holds a batch at the closed gate.
async fn writer_at_gate(control: &Arc<Control>) {
    let control = control.clone();
    tokio::task::spawn_blocking(move || control.wait_for_waiting_write())
        .await
        .unwrap();
}

/// Waits until `n` commands are applied and not yet durable.
async fn pending(engine: &Engine, n: usize) {
    for _ in 0..500 {
        if engine.queue_depth() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} commands pending, not {n}", engine.queue_depth());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_on_the_callers_thread_and_see_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _control) = engine(dir.path()).await;
    assert_eq!(available(&engine).await.unwrap().0, 1_000);
    for n in 1..=100 {
        engine
            .submit(reserve(format!("r{n}"), 1, HOLD_MS))
            .await
            .unwrap()
            .unwrap();
        let (left, on_writer) = available(&engine).await.unwrap();
        assert_eq!(left, 1_000 - n, "the acknowledged reserve {n} is seen");
        assert!(!on_writer, "reads run on the caller's thread");
    }
    // A write submitted before the read (not yet acknowledged) is seen by it.
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
    let writing = reserving(&engine, "held", 100);
    writer_at_gate(&control).await;
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
    assert_eq!(reading.await.unwrap().unwrap(), (900, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_applied_while_the_batch_before_is_written_and_answered_after_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, control) = engine(dir.path()).await;
    let before = engine.stats().snapshot();
    control.set(Gate::Closed);
    let first = reserving(&engine, "first", 100);
    writer_at_gate(&control).await;
    // The writer is inside the first batch's write; the next two are applied meanwhile
    // (the wallet shows them to a read once durable) and wait for a batch of their own.
    let second = reserving(&engine, "second", 200);
    let third = reserving(&engine, "third", 300);
    pending(&engine, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished() && !third.is_finished() && !first.is_finished());
    control.set(Gate::Open);
    for call in [first, second, third] {
        call.await.unwrap().unwrap().unwrap();
    }
    let after = engine.stats().snapshot();
    assert_eq!(after.commands - before.commands, 3);
    assert_eq!(
        after.batches - before.batches,
        2,
        "the two behind share a batch"
    );
    assert_eq!(available(&engine).await.unwrap().0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_store_refused_is_never_read_nor_anything_applied_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, control) = engine(dir.path()).await;
    control.set(Gate::Closed);
    let lost = reserving(&engine, "lost", 100);
    writer_at_gate(&control).await;
    // Applied behind the batch the store is about to refuse: it must not be answered.
    let behind = reserving(&engine, "behind", 100);
    pending(&engine, 2).await;
    control.set(Gate::Fail);
    for call in [lost, behind] {
        let refused = call.await.unwrap();
        assert!(
            matches!(refused, Err(EngineError::Stopped { .. })),
            "{refused:?}"
        );
    }
    // The ledger it left behind holds both reserves, and still must not be read.
    for _ in 0..10 {
        let read = available(&engine).await;
        assert!(
            matches!(read, Err(EngineError::Stopped { .. })),
            "read after a refused batch: {read:?}"
        );
    }
    let after = engine.submit(reserve("after", 1, HOLD_MS)).await;
    assert!(
        matches!(after, Err(EngineError::Stopped { .. })),
        "{after:?}"
    );
    assert_eq!(
        engine.queue_depth(),
        0,
        "nothing is pending in a stopped engine"
    );
}
