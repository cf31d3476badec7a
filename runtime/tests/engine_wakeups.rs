#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The writer wakes one caller of a batch, which wakes the others from inside its runtime
//! (one cross-thread wake-up per batch, not one per caller). Every caller hears its answer:
//! on a one-thread runtime, and on a runtime other than the engine's while the engine's is
//! not running or gone.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::acme::{HOLD_MS, grant, reserve};
use common::hooked::Hooked;
use tollgate_runtime::engine::{Engine, EngineConfig, SystemClock};

/// No ticks: only the test's own commands reach the writer.
fn quiet() -> EngineConfig {
    EngineConfig {
        tick: Duration::from_secs(3600),
        ..EngineConfig::default()
    }
}

/// One runtime thread, as `serve --worker-threads 1`: 200 callers, all answered, and
/// sharing batches.
#[tokio::test(flavor = "current_thread")]
async fn every_caller_of_a_batch_is_answered_on_a_one_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _thread) = Engine::start(
        Box::new(Hooked::open(dir.path())),
        Arc::new(SystemClock),
        quiet(),
    )
    .unwrap();
    tokio::time::timeout(LIMIT, engine.submit(grant("grant", 1_000_000, 0)))
        .await
        .expect("the grant was never answered")
        .unwrap()
        .unwrap();
    let batches_before = engine.stats().snapshot().batches;
    let callers: Vec<_> = (0..200)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.submit(reserve(format!("r{i}"), 10, HOLD_MS)).await })
        })
        .collect();
    let answered = tokio::time::timeout(LIMIT, async {
        for caller in callers {
            caller.await.unwrap().unwrap().unwrap();
        }
    })
    .await;
    assert!(answered.is_ok(), "a caller was never woken");
    let batches = engine.stats().snapshot().batches - batches_before;
    assert!(
        (1..200).contains(&batches),
        "200 commands in {batches} batches: callers did not share batches"
    );
}

/// A gate the store's appends wait at while it is closed.
struct Gate {
    /// (open, an append waits at the gate)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    /// The embedded store in `dir`, whose appends wait at a gate (open to begin with).
    fn store(dir: &std::path::Path) -> (Hooked, Arc<Gate>) {
        let gate = Arc::new(Gate {
            state: Mutex::new((true, false)),
            changed: Condvar::new(),
        });
        let store = Hooked::open(dir).before_append({
            let gate = gate.clone();
            move |_| {
                let mut state = gate.state.lock().unwrap();
                state.1 = !state.0;
                gate.changed.notify_all();
                while !state.0 {
                    state = gate.changed.wait(state).unwrap();
                }
                Ok(())
            }
        });
        (store, gate)
    }

    fn close(&self) {
        self.state.lock().unwrap().0 = false;
    }

    fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.changed.notify_all();
    }

    /// Waits until an append waits at the closed gate: the writer holds a batch.
    fn wait_for_a_held_batch(&self) {
        let state = self.state.lock().unwrap();
        let (_state, waited) = self
            .changed
            .wait_timeout_while(state, LIMIT, |state| !state.1)
            .unwrap();
        assert!(
            !waited.timed_out(),
            "no batch reached the gate in {LIMIT:?}"
        );
    }
}

/// Longest any step of these tests may wait: a failure, not a hang.
const LIMIT: Duration = Duration::from_secs(10);

/// Polls `done` until it holds, failing after `LIMIT`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < LIMIT, "{what}: not after {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `future` on `runtime`, failing after `LIMIT`.
fn block_on<T>(
    runtime: &tokio::runtime::Runtime,
    what: &str,
    future: impl Future<Output = T>,
) -> T {
    runtime
        .block_on(async { tokio::time::timeout(LIMIT, future).await })
        .unwrap_or_else(|_| panic!("{what}: no answer in {LIMIT:?}"))
}

/// A caller on another runtime than the engine's is answered while the engine's runtime
/// runs nothing, and after it is gone.
#[test]
fn callers_on_another_runtime_are_answered_while_the_engines_runtime_is_idle_or_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gate) = Gate::store(dir.path());
    let engines_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (engine, thread) = engines_runtime
        .block_on(async { Engine::start(Box::new(store), Arc::new(SystemClock), quiet()) })
        .unwrap();
    // The engine's runtime runs nothing from here on (a current-thread runtime runs its
    // tasks only inside `block_on`), then is dropped while a caller waits.
    let callers_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    block_on(
        &callers_runtime,
        "the grant",
        engine.submit(grant("grant", 1_000, 0)),
    )
    .unwrap()
    .unwrap();

    // The writer holds the next batch at the closed gate while its caller waits.
    gate.close();
    let caller = callers_runtime.spawn({
        let engine = engine.clone();
        async move { engine.submit(reserve("r", 10, HOLD_MS)).await }
    });
    gate.wait_for_a_held_batch();
    drop(engines_runtime);
    gate.open();
    block_on(
        &callers_runtime,
        "the caller, woken through the engine's runtime?",
        caller,
    )
    .unwrap()
    .unwrap()
    .unwrap();
    drop(engine);
    thread.join();
}

/// The caller the writer wakes is cancelled before it runs (its client went away, say): the
/// wake passes to another caller of the batch, which wakes the rest.
#[test]
fn a_woken_caller_cancelled_before_it_runs_passes_the_wake_on() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gate) = Gate::store(dir.path());
    // A current-thread runtime runs its tasks only inside `block_on`: between two, a woken
    // task waits, and can be cancelled before it runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (engine, thread) = runtime
        .block_on(async { Engine::start(Box::new(store), Arc::new(SystemClock), quiet()) })
        .unwrap();
    block_on(
        &runtime,
        "the grant",
        engine.submit(grant("grant", 1_000, 0)),
    )
    .unwrap()
    .unwrap();
    let submit = |key: &'static str| {
        let engine = engine.clone();
        runtime.spawn(async move { engine.submit(reserve(key, 10, HOLD_MS)).await })
    };
    let pending = |n: usize| {
        let engine = engine.clone();
        block_on(&runtime, &format!("{n} commands pending"), async move {
            while engine.queue_depth() < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    };
    // A first batch, of one, is held at the gate; the next three callers join the batch
    // after it, `first` before the others (it waits longest, so `notify_one` wakes it).
    gate.close();
    let blocker = submit("blocker");
    pending(1);
    gate.wait_for_a_held_batch();
    let first = submit("first");
    pending(2);
    let others: Vec<_> = ["second", "third"].into_iter().map(submit).collect();
    pending(4);
    // Both batches are written while the runtime runs nothing: the writer wakes `first`,
    // which cannot run before it is cancelled.
    let written = engine.stats().snapshot().batches;
    gate.open();
    wait_until("both batches written", || {
        engine.stats().snapshot().batches >= written + 2
    });
    std::thread::sleep(Duration::from_millis(50));
    first.abort();
    block_on(
        &runtime,
        "the others, woken by the cancelled caller?",
        async {
            for caller in others {
                caller.await.unwrap().unwrap().unwrap();
            }
        },
    );
    block_on(&runtime, "the blocker", blocker)
        .unwrap()
        .unwrap()
        .unwrap();
    drop(engine);
    thread.join();
}
