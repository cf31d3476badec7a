#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The writer cuts a batch once the runtime that applies commands has run out of work, or
//! after `EngineConfig::cut_wait`: a burst of calls is one durable write, not several, and
//! a runtime that never runs out of work still has its calls answered.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::acme::{HOLD_MS, grant, reserve};
use tollgate_runtime::engine::{Activity, Engine, EngineConfig, SystemClock};
use tollgate_runtime::serve::build_runtime;
use tollgate_runtime::store::embedded::EmbeddedStore;

/// No ticks: only the test's own commands reach the writer.
fn config(activity: Arc<Activity>, cut_wait: Duration) -> EngineConfig {
    EngineConfig {
        tick: Duration::from_secs(3600),
        activity: Some(activity),
        cut_wait,
        ..EngineConfig::default()
    }
}

/// 100 callers spawned together on `serve`'s one-thread runtime: every command is applied
/// before the runtime parks, so they are one batch. (Cutting the moment a command arrives,
/// the writer, on a thread of its own, takes the first commands of the burst alone.)
#[test]
fn a_burst_applied_while_the_runtime_works_is_one_batch() {
    burst_is_one_batch(1);
}

/// The same on `serve`'s default for two cores: the batch is cut once both worker threads
/// have parked.
#[test]
fn a_burst_on_a_two_thread_runtime_is_one_batch() {
    burst_is_one_batch(2);
}

fn burst_is_one_batch(threads: usize) {
    let (runtime, activity) = build_runtime(threads).unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let (engine, _thread) = Engine::start(
            Box::new(EmbeddedStore::open(dir.path()).unwrap()),
            Arc::new(SystemClock),
            // Long enough that only the runtime parking cuts the batch.
            config(activity, Duration::from_secs(30)),
        )
        .unwrap();
        engine
            .submit(grant("grant", 1_000_000, 0))
            .await
            .unwrap()
            .unwrap();
        let before = engine.stats().snapshot();
        // Spawned from a task on the runtime, whose thread stays at work until all are.
        let burst = tokio::spawn({
            let engine = engine.clone();
            async move {
                let callers: Vec<_> = (0..100)
                    .map(|i| {
                        let engine = engine.clone();
                        tokio::spawn(async move {
                            engine.submit(reserve(format!("r{i}"), 10, HOLD_MS)).await
                        })
                    })
                    .collect();
                for caller in callers {
                    caller.await.unwrap().unwrap().unwrap();
                }
            }
        });
        burst.await.unwrap();
        let after = engine.stats().snapshot();
        assert_eq!(after.commands - before.commands, 100);
        assert_eq!(
            after.batches - before.batches,
            1,
            "a burst applied in one run of the runtime is one batch"
        );
    });
}

/// A runtime that never reports parking (saturated, or without hooks): every batch is cut
/// after the wait, and every call is answered.
#[test]
fn a_runtime_that_never_parks_delays_each_batch_by_the_wait_only() {
    let wait = Duration::from_millis(40);
    never_parking(
        config(Arc::new(Activity::new(1)), wait),
        |engine| async move {
            let started = Instant::now();
            engine
                .submit(grant("grant", 1_000_000, 0))
                .await
                .unwrap()
                .unwrap();
            for i in 0..3 {
                engine
                    .submit(reserve(format!("r{i}"), 10, HOLD_MS))
                    .await
                    .unwrap()
                    .unwrap();
            }
            let took = started.elapsed();
            assert!(
                took >= 4 * wait,
                "4 batches, each cut after the wait: {took:?}"
            );
            assert!(took < Duration::from_secs(10), "{took:?}");
        },
    );
}

/// Runs `test` with an engine started with `config`, on a one-thread runtime that has no
/// park hooks: the activity in `config` never sees it park.
fn never_parking<F: std::future::Future<Output = ()>>(
    config: EngineConfig,
    test: impl FnOnce(Engine) -> F,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let (engine, _thread) = Engine::start(
            Box::new(EmbeddedStore::open(dir.path()).unwrap()),
            Arc::new(SystemClock),
            config,
        )
        .unwrap();
        test(engine).await;
    });
}

/// A batch that fills up while the writer waits for a busy runtime is cut at once: callers
/// past a full batch wait for it, so waiting longer would only hold them up.
#[test]
fn a_batch_that_fills_while_the_writer_waits_is_cut_at_once() {
    let config = EngineConfig {
        max_batch: 2,
        ..config(Arc::new(Activity::new(1)), Duration::from_secs(60))
    };
    never_parking(config, |engine| async move {
        let started = Instant::now();
        let first = tokio::spawn({
            let engine = engine.clone();
            async move { engine.submit(grant("grant", 1_000_000, 0)).await }
        });
        // The writer now waits, the runtime never parking, with one command of two.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = engine.submit(reserve("r", 10, HOLD_MS)).await;
        first.await.unwrap().unwrap().unwrap();
        second.unwrap().unwrap();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(30),
            "the full batch waited: {took:?}"
        );
        assert_eq!(engine.stats().snapshot().batches, 1);
    });
}
