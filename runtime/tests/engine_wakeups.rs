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
    engine
        .submit(grant("grant", 1_000_000, 0))
        .await
        .unwrap()
        .unwrap();
    let batches_before = engine.stats().snapshot().batches;
    let callers: Vec<_> = (0..200)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.submit(reserve(format!("r{i}"), 10, HOLD_MS)).await })
        })
        .collect();
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
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
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            state = self.changed.wait(state).unwrap();
        }
    }
}

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
    callers_runtime
        .block_on(engine.submit(grant("grant", 1_000, 0)))
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
    let answer = callers_runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), caller).await });
    let answer = answer.expect("the caller was never woken: the wake went to a dead runtime");
    answer.unwrap().unwrap().unwrap();
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
    runtime
        .block_on(engine.submit(grant("grant", 1_000, 0)))
        .unwrap()
        .unwrap();
    gate.close();
    let submit = |key: &'static str| {
        let engine = engine.clone();
        runtime.spawn(async move { engine.submit(reserve(key, 10, HOLD_MS)).await })
    };
    // `first` waits longest, so `notify_one` wakes it.
    let first = submit("first");
    runtime.block_on(async {
        while engine.queue_depth() < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let others: Vec<_> = ["second", "third"].into_iter().map(submit).collect();
    runtime.block_on(async {
        while engine.queue_depth() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    gate.wait_for_a_held_batch();
    // The batch of three is at the gate. Let it through; the writer wakes `first`, which
    // cannot run until the runtime is driven again.
    let written = engine.stats().snapshot().batches;
    gate.open();
    while engine.stats().snapshot().batches == written {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    first.abort();
    let answered = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            for caller in others {
                caller.await.unwrap().unwrap().unwrap();
            }
        })
        .await
    });
    assert!(
        answered.is_ok(),
        "the other callers were never woken: the cancelled caller kept the wake"
    );
    drop(engine);
    thread.join();
}
