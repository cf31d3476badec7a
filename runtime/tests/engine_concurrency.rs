#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Many concurrent tasks against one wallet through the engine on the embedded store.

mod common;

use std::sync::Arc;

use common::acme::{HOLD_MS, grant, keyed, reserve, wallet};
use rand::{Rng, SeedableRng};
use tollgate_runtime::engine::{Engine, EngineConfig, SystemClock};
use tollgate_runtime::ledger::{Command, EntryKind, LedgerError, Outcome};
use tollgate_runtime::store::embedded::EmbeddedStore;

const GRANTED: u64 = 100_000;
const TASKS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_never_overspend_and_retries_have_one_effect() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let (engine, thread) = Engine::start(
        Box::new(store),
        Arc::new(SystemClock),
        EngineConfig::default(),
    )
    .unwrap();
    engine
        .submit(grant("grant", GRANTED, 1_000))
        .await
        .unwrap()
        .unwrap();

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
            let amount = rng.random_range(1..=400u64);
            let reserve = reserve(format!("reserve-{t}"), amount, HOLD_MS);
            // Every reserve is sent twice at once, as a client retry would.
            let (a, b) = tokio::join!(engine.submit(reserve.clone()), engine.submit(reserve));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a, b, "a retried key returns the same answer");
            let hold = match a {
                Ok(Outcome::Reserved { hold, .. }) => hold,
                Err(LedgerError::InsufficientCredits { .. }) => return (0, 0),
                other => panic!("unexpected {other:?}"),
            };
            match rng.random_range(0..3) {
                0 => {
                    let used = rng.random_range(0..=amount);
                    let commit = keyed(
                        format!("commit-{t}"),
                        Command::Commit {
                            hold,
                            amount: used,
                            units: 0,
                        },
                    );
                    let (a, b) = tokio::join!(engine.submit(commit.clone()), engine.submit(commit));
                    assert_eq!(a.unwrap(), b.as_ref().unwrap().clone());
                    (used, 0)
                }
                1 => {
                    let release = keyed(format!("release-{t}"), Command::Release { hold });
                    engine.submit(release).await.unwrap().unwrap();
                    (0, 0)
                }
                _ => (0, amount),
            }
        }));
    }
    let mut committed = 0;
    let mut outstanding = 0;
    for task in tasks {
        let (c, o) = task.await.unwrap();
        committed += c;
        outstanding += o;
    }
    assert!(committed + outstanding <= GRANTED);

    let (balance, holds, report) = engine
        .read(|ledger| {
            let holds = ledger
                .journal()
                .iter()
                .filter(|e| matches!(e.kind, EntryKind::Hold { .. }))
                .count();
            (
                ledger.wallet_balance(&wallet()).unwrap(),
                holds,
                ledger.verify(),
            )
        })
        .await
        .unwrap();
    report.unwrap();
    assert_eq!(balance.pending, outstanding);
    assert_eq!(balance.available, GRANTED - committed - outstanding);
    let (entries, keys) = engine
        .read(|ledger| {
            (
                ledger.journal().len() as u64,
                ledger.remembered_keys() as u64,
            )
        })
        .await
        .unwrap();
    let stats = engine.stats().snapshot();
    assert!(
        stats.max_batch > 1,
        "concurrent submissions share durable writes: {stats:?}"
    );
    // The exported sizes are those of the last batch (a tick may have added to them since).
    assert!(entries > 0 && stats.journal_entries >= entries, "{stats:?}");
    assert!(keys > 0 && stats.answer_slots >= keys, "{stats:?}");
    // One hold entry per distinct successful reserve key, however often it was sent.
    let successful = engine
        .read(|ledger| {
            (0..TASKS)
                .filter(|t| {
                    matches!(
                        ledger.key_record("acme", &format!("reserve-{t}")),
                        Some((_, Ok(Outcome::Reserved { .. })))
                    )
                })
                .count()
        })
        .await
        .unwrap();
    assert_eq!(holds, successful);
    drop(engine);
    thread.join();
}
