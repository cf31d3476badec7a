//! The store conformance suite: every scenario runs against the embedded store and against
//! the dynamodb store on DynamoDB Local (started by the test itself), through the same
//! `Store` trait and the same engine.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tollgate_runtime::engine::{Clock, Engine, EngineConfig, ManualClock, SystemClock};
use tollgate_runtime::ledger::{
    CHUNK_ENTRIES, Command, CommandResult, EntryId, HoldResolution, HoldState, Keyed, LedgerError,
    Outcome, OveragePolicy, Timestamp,
};
use tollgate_runtime::store::dynamodb::DynamoConnection;
use tollgate_runtime::store::embedded::EmbeddedStore;
use tollgate_runtime::store::{Batch, LoggedCommand, Recovered, Snapshot, Store};

use common::acme::{self, keyed, reserve, wallet};
use common::dynamodb_local::DynamoLocal;
use common::journal;

/// Opens the durable state called `name`; the same name reopens the same state.
trait Backend: Sync {
    fn open(&self, name: &str) -> Box<dyn Store>;
}

struct Embedded(tempfile::TempDir);

impl Backend for Embedded {
    fn open(&self, name: &str) -> Box<dyn Store> {
        Box::new(EmbeddedStore::open(self.0.path().join(name)).unwrap())
    }
}

struct Dynamo(DynamoConnection);

impl Backend for Dynamo {
    fn open(&self, name: &str) -> Box<dyn Store> {
        Box::new(self.0.store(name, "pod-0").unwrap())
    }
}

/// One emulator for the whole suite (each test has tables of its own).
fn emulator() -> Option<&'static DynamoLocal> {
    static LOCAL: OnceLock<Option<DynamoLocal>> = OnceLock::new();
    LOCAL.get_or_init(DynamoLocal::start).as_ref()
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $scenario() {
                super::$scenario(&super::Embedded(tempfile::tempdir().unwrap()));
            })*
        }
        mod dynamodb {
            $(#[test]
            fn $scenario() {
                let Some(local) = super::emulator() else { return };
                let connection = tollgate_runtime::store::dynamodb::DynamoConnection::connect(
                    local.config(stringify!($scenario)),
                )
                .unwrap();
                super::$scenario(&super::Dynamo(connection));
            })*
        }
    };
}

conformance!(
    an_empty_store_recovers_nothing,
    batches_survive_reopen_in_order,
    a_snapshot_then_the_tail_after_it,
    batches_appended_while_a_snapshot_encodes_are_kept,
    batches_and_snapshots_larger_than_an_item,
    the_engine_recovers_every_answer_after_restart,
    concurrent_reserves_never_overspend,
    retried_keys_have_one_effect_across_restarts,
    holds_time_out_and_stay_timed_out_after_restart,
    journal_entries_archived_out_of_memory_read_back_the_same,
);

// ---- store-level scenarios ----

fn open_wallet(key: &str) -> Keyed {
    keyed(
        key,
        Command::OpenWallet {
            wallet: wallet(),
            overage: OveragePolicy::Deny,
        },
    )
}

fn batch(seq: u64, commands: usize, key_bytes: usize) -> Batch {
    Batch {
        seq,
        commands: (0..commands)
            .map(|i| LoggedCommand::Apply {
                now: Timestamp(seq * 1000 + i as u64),
                request: open_wallet(&format!("{seq}-{i}-{}", "k".repeat(key_bytes))),
            })
            .collect(),
        chain_head: [seq as u8; 32],
    }
}

fn recover(store: &mut dyn Store) -> (Option<Snapshot>, Vec<Batch>) {
    let mut snapshot = None;
    let mut batches = Vec::new();
    store
        .recover(&mut |item| {
            match item {
                Recovered::Snapshot(s) => snapshot = Some(s),
                Recovered::Batch(b) => batches.push(b),
            }
            Ok(())
        })
        .unwrap();
    (snapshot, batches)
}

fn an_empty_store_recovers_nothing(backend: &dyn Backend) {
    let mut store = backend.open("p0");
    let (snapshot, batches) = recover(store.as_mut());
    assert!(snapshot.is_none());
    assert!(batches.is_empty());
}

fn batches_survive_reopen_in_order(backend: &dyn Backend) {
    let written: Vec<Batch> = (1..=5).map(|seq| batch(seq, 3, 8)).collect();
    {
        let mut store = backend.open("p0");
        recover(store.as_mut());
        for b in &written {
            store.append(b).unwrap();
        }
    }
    let mut store = backend.open("p0");
    let (snapshot, batches) = recover(store.as_mut());
    assert!(snapshot.is_none());
    assert_eq!(batches, written);
    // And the reopened store continues the log.
    store.append(&batch(6, 1, 8)).unwrap();
    drop(store);
    let (_, batches) = recover(backend.open("p0").as_mut());
    assert_eq!(
        batches.iter().map(|b| b.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
}

fn a_snapshot_then_the_tail_after_it(backend: &dyn Backend) {
    {
        let mut store = backend.open("p0");
        recover(store.as_mut());
        for seq in 1..=3 {
            store.append(&batch(seq, 2, 8)).unwrap();
        }
        store.begin_snapshot(3).unwrap();
        store
            .save_snapshot(Snapshot {
                seq: 3,
                state: b"ledger as of batch 3".to_vec(),
            })
            .unwrap();
        for seq in 4..=5 {
            store.append(&batch(seq, 2, 8)).unwrap();
        }
    }
    let (snapshot, batches) = recover(backend.open("p0").as_mut());
    let snapshot = snapshot.expect("a snapshot");
    assert_eq!(
        (snapshot.seq, snapshot.state.as_slice()),
        (3, &b"ledger as of batch 3"[..])
    );
    assert_eq!(batches, vec![batch(4, 2, 8), batch(5, 2, 8)]);
}

/// The engine encodes a snapshot while the partition goes on: batches appended between
/// `begin_snapshot` and `save_snapshot` are not covered by it, and must outlive it (the
/// embedded store drops the log a durable snapshot covers; DynamoDB names the slot).
fn batches_appended_while_a_snapshot_encodes_are_kept(backend: &dyn Backend) {
    {
        let mut store = backend.open("p0");
        recover(store.as_mut());
        for seq in 1..=3 {
            store.append(&batch(seq, 2, 8)).unwrap();
        }
        store.begin_snapshot(3).unwrap();
        for seq in 4..=5 {
            store.append(&batch(seq, 2, 8)).unwrap();
        }
        store
            .save_snapshot(Snapshot {
                seq: 3,
                state: b"ledger as of batch 3".to_vec(),
            })
            .unwrap();
        store.append(&batch(6, 2, 8)).unwrap();
    }
    let (snapshot, batches) = recover(backend.open("p0").as_mut());
    let snapshot = snapshot.expect("a snapshot");
    assert_eq!(
        (snapshot.seq, snapshot.state.as_slice()),
        (3, &b"ledger as of batch 3"[..])
    );
    assert_eq!(
        batches,
        vec![batch(4, 2, 8), batch(5, 2, 8), batch(6, 2, 8)]
    );
}

fn batches_and_snapshots_larger_than_an_item(backend: &dyn Backend) {
    // About 1.2 MB: three DynamoDB items in one transaction.
    let big = batch(1, 2048, 500);
    let state: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    {
        let mut store = backend.open("p0");
        recover(store.as_mut());
        store.append(&big).unwrap();
        store.append(&batch(2, 1, 8)).unwrap();
        store.begin_snapshot(2).unwrap();
        store
            .save_snapshot(Snapshot {
                seq: 2,
                state: state.clone(),
            })
            .unwrap();
        store.append(&batch(3, 1, 8)).unwrap();
    }
    let (snapshot, batches) = recover(backend.open("p0").as_mut());
    assert_eq!(snapshot.map(|s| (s.seq, s.state == state)), Some((2, true)));
    assert_eq!(batches, vec![batch(3, 1, 8)]);
    // Without the snapshot the big batch replays intact.
    let mut store = backend.open("p1");
    recover(store.as_mut());
    store.append(&big).unwrap();
    drop(store);
    let (_, batches) = recover(backend.open("p1").as_mut());
    assert_eq!(batches, vec![big]);
}

// ---- engine-level scenarios ----

const GRANTED: u64 = 10_000;

/// Acme's grant of `GRANTED`.
fn grant() -> Keyed {
    acme::grant("grant", GRANTED, 1_000)
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        snapshot_every_batches: 7,
        tick: Duration::from_millis(10),
        ..EngineConfig::default()
    }
}

fn start(backend: &dyn Backend, clock: Arc<dyn Clock>) -> Engine {
    let (engine, _thread) = Engine::start(backend.open("p0"), clock, engine_config()).unwrap();
    engine
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Drops the engine and waits for its writer to finish (final snapshot included).
fn stop(engine: Engine, thread: tollgate_runtime::engine::EngineThread) {
    drop(engine);
    thread.join();
}

async fn available(engine: &Engine) -> u64 {
    engine
        .read(|l| l.wallet_balance(&wallet()).map(|b| b.available))
        .await
        .unwrap()
        .unwrap_or(0)
}

fn the_engine_recovers_every_answer_after_restart(backend: &dyn Backend) {
    runtime().block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (engine, thread) =
            Engine::start(backend.open("p0"), clock.clone(), engine_config()).unwrap();
        let mut answers: Vec<(String, CommandResult)> = Vec::new();
        answers.push(("grant".into(), engine.submit(grant()).await.unwrap()));
        for i in 0..40 {
            let key = format!("r{i}");
            let result = engine.submit(reserve(&key, 100, 600_000)).await.unwrap();
            if let (0, Ok(Outcome::Reserved { hold, .. })) = (i % 2, &result) {
                let commit = keyed(
                    format!("c{i}"),
                    Command::Commit {
                        hold: *hold,
                        amount: 60,
                        units: 0,
                    },
                );
                answers.push((format!("c{i}"), engine.submit(commit).await.unwrap()));
            }
            answers.push((key, result));
        }
        let before = available(&engine).await;
        stop(engine, thread);

        let engine = start(backend, clock);
        for (key, answer) in &answers {
            let stored = engine
                .read({
                    let key = key.clone();
                    move |l| l.key_record("acme", &key).map(|(_, r)| r)
                })
                .await
                .unwrap();
            assert_eq!(stored.as_ref(), Some(answer), "key {key}");
        }
        assert_eq!(available(&engine).await, before);
        // 20 holds committed at 60, 20 still held at 100.
        assert_eq!(before, GRANTED - 20 * 60 - 20 * 100);
        engine.verify().await.unwrap().unwrap();
    });
}

fn concurrent_reserves_never_overspend(backend: &dyn Backend) {
    runtime().block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (engine, thread) =
            Engine::start(backend.open("p0"), clock.clone(), engine_config()).unwrap();
        engine.submit(grant()).await.unwrap().unwrap();
        let mut tasks = Vec::new();
        for t in 0..300u64 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let request = reserve(format!("r{t}"), 1 + t % 90, 600_000);
                let (a, b) = tokio::join!(engine.submit(request.clone()), engine.submit(request));
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(a, b, "a retried key gets the same answer");
                match a {
                    Ok(Outcome::Reserved { .. }) => 1 + t % 90,
                    Err(LedgerError::InsufficientCredits { .. }) => 0,
                    other => panic!("unexpected {other:?}"),
                }
            }));
        }
        let mut held = 0;
        for task in tasks {
            held += task.await.unwrap();
        }
        assert!(held <= GRANTED);
        assert_eq!(available(&engine).await, GRANTED - held);
        stop(engine, thread);
        let engine = start(backend, clock);
        assert_eq!(available(&engine).await, GRANTED - held);
        engine.verify().await.unwrap().unwrap();
    });
}

fn retried_keys_have_one_effect_across_restarts(backend: &dyn Backend) {
    runtime().block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (engine, thread) =
            Engine::start(backend.open("p0"), clock.clone(), engine_config()).unwrap();
        engine.submit(grant()).await.unwrap().unwrap();
        let first = engine.submit(reserve("r", 700, 600_000)).await.unwrap();
        assert!(matches!(first, Ok(Outcome::Reserved { .. })));
        stop(engine, thread);

        let engine = start(backend, clock);
        let again = engine.submit(reserve("r", 700, 600_000)).await.unwrap();
        assert_eq!(again, first, "same key, same payload: the same answer");
        assert_eq!(available(&engine).await, GRANTED - 700, "no second effect");
        let conflict = engine.submit(reserve("r", 701, 600_000)).await.unwrap();
        assert!(conflict.is_err() && conflict != first, "{conflict:?}");
        assert_eq!(available(&engine).await, GRANTED - 700);
        engine.verify().await.unwrap().unwrap();
    });
}

fn holds_time_out_and_stay_timed_out_after_restart(backend: &dyn Backend) {
    runtime().block_on(async {
        let manual = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let clock: Arc<dyn Clock> = manual.clone();
        let (engine, thread) =
            Engine::start(backend.open("p0"), clock.clone(), engine_config()).unwrap();
        engine.submit(grant()).await.unwrap().unwrap();
        let Ok(Outcome::Reserved { hold, .. }) =
            engine.submit(reserve("r", 900, 1_000)).await.unwrap()
        else {
            panic!("reserve failed")
        };
        assert_eq!(available(&engine).await, GRANTED - 900);
        manual.advance_ms(5_000);
        // The ticker advances ledger time and times the hold out.
        let mut waited = 0;
        while available(&engine).await != GRANTED {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
            assert!(waited < 500, "the hold never timed out");
        }
        stop(engine, thread);

        let engine = start(backend, clock);
        let state = engine
            .read(move |l| l.hold(hold).map(|h| h.state))
            .await
            .unwrap();
        assert!(
            matches!(
                state,
                Some(HoldState::Resolved {
                    how: HoldResolution::TimedOut,
                    ..
                })
            ),
            "{state:?}"
        );
        assert_eq!(available(&engine).await, GRANTED);
        let commit = engine
            .submit(keyed(
                "late",
                Command::Commit {
                    hold,
                    amount: 10,
                    units: 0,
                },
            ))
            .await
            .unwrap();
        assert!(
            commit.is_err(),
            "a timed-out hold cannot be committed: {commit:?}"
        );
        engine.verify().await.unwrap().unwrap();
    });
}

/// Entries the ledger archived out of memory read back the same after a restart: by id
/// (as `ListEntries` reads them), in order (as `verify` does), and through `verify`; and
/// the chunks sealed later are archived by the snapshots that follow.
fn journal_entries_archived_out_of_memory_read_back_the_same(backend: &dyn Backend) {
    runtime().block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // No snapshot while the reference is made: every entry is in memory.
        let config = EngineConfig {
            snapshot_every_batches: u64::MAX,
            ..engine_config()
        };
        let (engine, thread) = Engine::start(backend.open("p0"), clock.clone(), config).unwrap();
        acme::grants(&engine, 0, 2 * CHUNK_ENTRIES + 100).await;
        let (archived, reference) = journal::in_memory(&engine).await;
        assert_eq!(archived, 0);
        assert!(reference.len() > 2 * CHUNK_ENTRIES);
        // Closing takes a snapshot: it archives the two sealed chunks and leaves them out.
        stop(engine, thread);

        let config = EngineConfig {
            snapshot_every_batches: 3,
            ..engine_config()
        };
        let (engine, thread) =
            Engine::start(backend.open("p0"), clock.clone(), config.clone()).unwrap();
        let archive = engine
            .journal_archive()
            .expect("the store keeps an archive");
        let chunks = 2 * CHUNK_ENTRIES as u64;
        assert_eq!(archive.archived(), chunks);
        assert_eq!(
            journal::in_memory(&engine).await.0,
            chunks,
            "left out of memory"
        );
        assert_eq!(journal::every_entry(&engine).await, reference, "by id");
        let in_order = {
            let archive = archive.clone();
            tokio::task::spawn_blocking(move || archive.entries().collect::<Result<Vec<_>, _>>())
                .await
                .unwrap()
                .unwrap()
        };
        assert_eq!(in_order[..], reference[..chunks as usize], "in order");
        // A page's worth spread over the archive (as one wallet's entries are, among
        // others'), read together, in the order asked.
        let spread: Vec<EntryId> = (0..100).map(|i| EntryId(chunks - i * 81)).collect();
        let together = {
            let (archive, spread) = (archive.clone(), spread.clone());
            tokio::task::spawn_blocking(move || archive.get_many(&spread))
                .await
                .unwrap()
                .unwrap()
        };
        let expected: Vec<_> = spread
            .iter()
            .map(|id| reference[id.0 as usize - 1].clone())
            .collect();
        assert_eq!(together, expected, "read together");
        for outside in [0, chunks + 1] {
            let error = archive.get(EntryId(outside)).unwrap_err().to_string();
            assert!(error.contains("not archived"), "{error}");
        }
        let report = engine.verify().await.unwrap().expect("verify passes");
        assert_eq!(report.entries as usize, reference.len());

        // Two more chunks, then one grant at a time (each a batch, so snapshots come due)
        // until a later snapshot has archived the third chunk and the ledger forgot it.
        acme::grants(&engine, 1_000_000, 2 * CHUNK_ENTRIES).await;
        let mut driver = acme::OneAtATime::new(Duration::from_secs(60));
        while journal::in_memory(&engine).await.0 < 3 * CHUNK_ENTRIES as u64 {
            driver
                .grant(
                    &engine,
                    ("the third chunk archived", engine.stats().snapshot()),
                )
                .await;
        }
        let all = journal::every_entry(&engine).await;
        assert_eq!(all[..reference.len()], reference[..]);
        let ids: Vec<u64> = all.iter().map(|e| e.id.0).collect();
        assert!(
            ids.iter().zip(1..).all(|(&id, n)| id == n),
            "every id, once, in order"
        );
        stop(engine, thread);

        let (engine, thread) = Engine::start(backend.open("p0"), clock, config).unwrap();
        assert!(engine.journal_archive().unwrap().archived() >= 3 * CHUNK_ENTRIES as u64);
        assert_eq!(journal::every_entry(&engine).await, all);
        let report = engine.verify().await.unwrap().expect("verify passes");
        assert_eq!(report.entries as usize, all.len());
        stop(engine, thread);
    });
}
