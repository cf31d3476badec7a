//! Faults: throttling and lost answers injected by the fault layer around the client, and
//! DynamoDB Local killed under load.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::dynamodb_local::DynamoLocal;
use tollgate_runtime::engine::{Engine, EngineConfig, EngineThread, SystemClock};
use tollgate_runtime::ledger::{
    Category, Command, CommandResult, GrantSpec, Keyed, Outcome, Timestamp, WalletRef,
};
use tollgate_runtime::store::dynamodb::{
    CallPolicy, DynamoConfig, DynamoConnection, DynamoError, FaultLayer,
};
use tollgate_runtime::store::{Batch, LoggedCommand, Recovered, Store, StoreError};

/// A short deadline so the tests run fast; the bound is what is tested.
const DEADLINE: Duration = Duration::from_secs(2);

fn fast(mut config: DynamoConfig) -> DynamoConfig {
    config.calls = CallPolicy {
        attempt_timeout: Duration::from_millis(700),
        call_deadline: DEADLINE,
        ..CallPolicy::default()
    };
    config
}

fn batch(seq: u64, commands: usize) -> Batch {
    Batch {
        seq,
        commands: (0..commands)
            .map(|i| LoggedCommand::Advance {
                now: Timestamp(seq * 10_000 + i as u64),
            })
            .collect(),
        chain_head: [seq as u8; 32],
    }
}

fn recovered_seqs(store: &mut dyn Store) -> Vec<u64> {
    let mut seqs = Vec::new();
    store
        .recover(&mut |item| {
            if let Recovered::Batch(b) = item {
                seqs.push(b.seq);
            }
            Ok(())
        })
        .unwrap();
    seqs
}

#[test]
fn throttling_is_retried_with_a_bound_and_then_surfaces_as_unavailable() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let faults = FaultLayer::new();
    let mut config = fast(local.config("throttle"));
    config.faults = Some(faults.clone());
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = connection.store("p0", "pod-0").unwrap();
    recovered_seqs(&mut store);

    // A burst of throttling: retried, invisible to the caller.
    let before = connection.stats();
    faults.throttle_next(3);
    store.append(&batch(1, 1)).unwrap();
    let after = connection.stats();
    assert_eq!(faults.throttled(), 3);
    assert_eq!(after.retries - before.retries, 3);
    assert_eq!(after.throttled - before.throttled, 3);

    // Throttling that does not end: bounded attempts, then a transient UNAVAILABLE.
    faults.throttle_all(true);
    let started = Instant::now();
    let error = store.append(&batch(2, 1)).unwrap_err();
    let took = started.elapsed();
    faults.throttle_all(false);
    assert!(
        took <= DEADLINE + Duration::from_millis(200),
        "took {took:?}"
    );
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.code(), "dynamodb_unavailable");
    let StoreError::Dynamo(DynamoError::Unavailable { attempts, last, .. }) = &error else {
        panic!("{error}")
    };
    assert!(
        *attempts >= 2 && *attempts <= CallPolicy::default().max_attempts,
        "{attempts}"
    );
    assert!(last.contains("ProvisionedThroughputExceeded"), "{last}");

    // Nothing of batch 2 landed; batch 1 did.
    let mut again = connection.store("p0", "pod-1").unwrap();
    assert_eq!(recovered_seqs(&mut again), [1]);
}

#[test]
fn a_lost_answer_is_resolved_by_rewriting_never_by_applying_twice() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let faults = FaultLayer::new();
    let mut config = fast(local.config("lost"));
    config.faults = Some(faults.clone());
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = connection.store("p0", "pod-0").unwrap();
    recovered_seqs(&mut store);

    faults.lose_next_responses(1);
    store.append(&batch(1, 3)).unwrap();
    assert_eq!(faults.lost(), 1);
    // The same for a batch that needs a transaction (over one item).
    faults.lose_next_responses(1);
    store.append(&batch(2, 120_000)).unwrap();
    assert_eq!(faults.lost(), 2);
    store.append(&batch(3, 1)).unwrap();

    let mut again = connection.store("p0", "pod-1").unwrap();
    assert_eq!(
        recovered_seqs(&mut again),
        [1, 2, 3],
        "each batch exactly once"
    );
    assert!(connection.stats().retries >= 2);
}

const GRANTED: u64 = 10_000_000;

fn wallet() -> WalletRef {
    WalletRef::new("acme", "credits")
}

fn keyed(key: String, command: Command) -> Keyed {
    Keyed {
        customer: "acme".into(),
        key,
        command,
    }
}

fn grant() -> Keyed {
    keyed(
        "grant".into(),
        Command::Grant {
            wallet: wallet(),
            grant: GrantSpec {
                amount: GRANTED,
                category: Category::Paid,
                priority: 0,
                effective_at: Timestamp(0),
                expires_at: None,
                cost_basis_micros: 0,
            },
        },
    )
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        snapshot_every_batches: 50,
        ..EngineConfig::default()
    }
}

/// What the service layer does when a partition's engine stopped on a transient store
/// error: start it again on a fresh store (a new epoch) until the store answers.
fn restart_partition(connection: &DynamoConnection, within: Duration) -> (Engine, EngineThread) {
    let started = Instant::now();
    loop {
        let store = connection.store("p0", "pod-0").unwrap();
        match Engine::start(Box::new(store), Arc::new(SystemClock), engine_config()) {
            Ok(started) => return started,
            Err(error) => {
                assert!(
                    started.elapsed() < within,
                    "no recovery within {within:?}: {error}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

async fn check_acknowledged(engine: &Engine, acked: &HashMap<String, CommandResult>) {
    let acked = acked.clone();
    let missing = engine
        .read(move |ledger| {
            acked
                .iter()
                .filter(|(key, result)| {
                    ledger.key_record("acme", key).map(|(_, r)| r).as_ref() != Some(result)
                })
                .map(|(key, _)| key.clone())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    engine.verify().await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_throttling_fails_calls_and_the_partition_recovers() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let faults = FaultLayer::new();
    let mut config = fast(local.config("engine-throttle"));
    config.faults = Some(faults.clone());
    let connection = DynamoConnection::connect(config).unwrap();
    let (engine, _thread) = restart_partition(&connection, Duration::from_secs(5));
    let mut acked = HashMap::new();
    acked.insert("grant".to_string(), engine.submit(grant()).await.unwrap());

    faults.throttle_all(true);
    let started = Instant::now();
    let error = engine
        .submit(keyed(
            "r1".into(),
            Command::Reserve {
                wallet: wallet(),
                amount: 5,
                timeout_ms: 60_000,
                limits: vec![],
                price: None,
                request: None,
            },
        ))
        .await
        .unwrap_err();
    assert!(started.elapsed() <= DEADLINE + Duration::from_millis(500));
    assert!(
        error.to_string().contains("dynamodb unavailable"),
        "{error}"
    );
    faults.throttle_all(false);

    let (engine, _thread) = restart_partition(&connection, Duration::from_secs(10));
    check_acknowledged(&engine, &acked).await;
    let retried = engine
        .submit(keyed(
            "r1".into(),
            Command::Reserve {
                wallet: wallet(),
                amount: 5,
                timeout_ms: 60_000,
                limits: vec![],
                price: None,
                request: None,
            },
        ))
        .await
        .unwrap();
    assert!(
        matches!(retried, Ok(Outcome::Reserved { .. })),
        "{retried:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_dynamodb_local_under_load_loses_nothing_acknowledged() {
    let Some(mut local) = DynamoLocal::start_on_disk() else {
        return;
    };
    let connection = DynamoConnection::connect(fast(local.config("kill"))).unwrap();
    let (engine, _thread) = restart_partition(&connection, Duration::from_secs(5));
    let acked: Arc<Mutex<HashMap<String, CommandResult>>> = Arc::default();
    let granted = engine.submit(grant()).await.unwrap();
    acked.lock().unwrap().insert("grant".into(), granted);

    // Load: 16 clients, reserve then commit, until their engine stops.
    let slowest_failure = Arc::new(Mutex::new(Duration::ZERO));
    let mut clients = Vec::new();
    for c in 0..16 {
        let (engine, acked, slowest) = (engine.clone(), acked.clone(), slowest_failure.clone());
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("r-{c}-{i}");
                let request = keyed(
                    key.clone(),
                    Command::Reserve {
                        wallet: wallet(),
                        amount: 3,
                        timeout_ms: 600_000,
                        limits: vec![],
                        price: None,
                        request: None,
                    },
                );
                let sent = Instant::now();
                match engine.submit(request).await {
                    Ok(result) => {
                        let hold = match &result {
                            Ok(Outcome::Reserved { hold, .. }) => Some(*hold),
                            _ => None,
                        };
                        acked.lock().unwrap().insert(key, result);
                        if let Some(hold) = hold {
                            let key = format!("c-{c}-{i}");
                            let sent = Instant::now();
                            match engine
                                .submit(keyed(
                                    key.clone(),
                                    Command::Commit {
                                        hold,
                                        amount: 2,
                                        units: 0,
                                    },
                                ))
                                .await
                            {
                                Ok(result) => {
                                    acked.lock().unwrap().insert(key, result);
                                }
                                Err(_) => {
                                    let mut s = slowest.lock().unwrap();
                                    *s = (*s).max(sent.elapsed());
                                    return i;
                                }
                            }
                        }
                    }
                    Err(_) => {
                        let mut s = slowest.lock().unwrap();
                        *s = (*s).max(sent.elapsed());
                        return i;
                    }
                }
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked_before_kill = acked.lock().unwrap().len();
    assert!(
        acked_before_kill > 100,
        "too little load: {acked_before_kill}"
    );
    local.kill();
    for client in clients {
        client.await.unwrap();
    }
    let slowest = *slowest_failure.lock().unwrap();
    // Each waiting call fails within the store's deadline (plus the batch ahead of it).
    assert!(
        slowest <= 2 * DEADLINE + Duration::from_millis(500),
        "slowest failure {slowest:?}"
    );
    let error = engine
        .submit(keyed(
            "after".into(),
            Command::Reserve {
                wallet: wallet(),
                amount: 1,
                timeout_ms: 1,
                limits: vec![],
                price: None,
                request: None,
            },
        ))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("dynamodb unavailable"),
        "{error}"
    );

    // While DynamoDB is down, the partition cannot start (and says why, in time).
    let started = Instant::now();
    let down = Engine::start(
        Box::new(connection.store("p0", "pod-0").unwrap()),
        Arc::new(SystemClock),
        engine_config(),
    );
    assert!(down.is_err());
    assert!(started.elapsed() <= DEADLINE + Duration::from_millis(500));

    local.restart();
    let (engine, _thread) = restart_partition(&connection, Duration::from_secs(60));
    let acked = acked.lock().unwrap().clone();
    check_acknowledged(&engine, &acked).await;
    let more = engine
        .submit(keyed(
            "after-restart".into(),
            Command::Reserve {
                wallet: wallet(),
                amount: 1,
                timeout_ms: 60_000,
                limits: vec![],
                price: None,
                request: None,
            },
        ))
        .await
        .unwrap();
    assert!(matches!(more, Ok(Outcome::Reserved { .. })), "{more:?}");
    eprintln!(
        "kill test: {} acknowledged before the kill, slowest failed call {slowest:?}",
        acked.len()
    );
}
