//! `kill -9` of a process running the engine on the dynamodb store under load, at random
//! points, then recovery: every acknowledged operation is present with the answer that
//! was given, and `verify` passes.
//!
//! The process is this test binary itself, re-run with `--ignored --exact crash_child`
//! and the emulator's address in the environment; it prints one line per acknowledged
//! operation, and the parent kills it with SIGKILL while it writes.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::acme::{HOLD_MS, grant, keyed, reserve};
use common::dynamodb_local::DynamoLocal;
use rand::{Rng, SeedableRng};
use tollgate_runtime::engine::{
    Engine, EngineConfig, SystemClock, recover_ledger, verify_recovered,
};
use tollgate_runtime::ledger::{Command, CommandResult, Outcome};
use tollgate_runtime::store::dynamodb::{Credentials, DynamoConfig, DynamoConnection};

const ROUNDS: u64 = 4;
/// A child that is never killed stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn config(endpoint: &str, prefix: &str) -> DynamoConfig {
    DynamoConfig {
        endpoint: Some(endpoint.to_string()),
        credentials: Credentials::Static {
            access_key_id: "tollgate".into(),
            secret_access_key: "local".into(),
        },
        auto_create_tables: true,
        ..DynamoConfig::new("us-east-1", prefix)
    }
}

#[test]
fn every_acknowledged_operation_survives_kill_dash_nine() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let prefix = format!("crash{}-", std::process::id());
    let connection = DynamoConnection::connect(config(&local.endpoint(), &prefix)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut acked: HashMap<String, CommandResult> = HashMap::new();
    for round in 0..ROUNDS {
        let mut child = Process::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TOLLGATE_CRASH_ENDPOINT", local.endpoint())
            .env("TOLLGATE_CRASH_PREFIX", &prefix)
            .env("TOLLGATE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let reader = std::thread::spawn({
            let lines = lines.clone();
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            }
        });
        // Wait until it serves, then let it run under load for a random while.
        let started = Instant::now();
        while !lines.lock().unwrap().iter().any(|l| l == "READY") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "child never got ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(200..1500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut this_round = 0;
        for line in lines.lock().unwrap().iter() {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (key, json) = rest.split_once(' ').unwrap();
                acked.insert(key.to_string(), serde_json::from_str(json).unwrap());
                this_round += 1;
            }
        }
        assert!(
            this_round > 0,
            "round {round}: nothing was acknowledged before the kill"
        );

        // Recover as a new owner and check every acknowledged answer.
        let mut store = connection.store("p0", "auditor").unwrap();
        let ledger = recover_ledger(&mut store).unwrap();
        let report = verify_recovered(&ledger, &store).unwrap();
        for (key, result) in &acked {
            assert_eq!(
                ledger.key_record("acme", key).map(|(_, r)| r),
                Some(result.clone()),
                "round {round}: acknowledged {key} is missing or different"
            );
        }
        eprintln!(
            "round {round}: killed after {this_round} acks; {} acked in total, {} entries, verify ok",
            acked.len(),
            report.entries
        );
    }
}

/// The child process of the test above; does nothing unless started by it.
#[test]
#[ignore = "the child process of every_acknowledged_operation_survives_kill_dash_nine"]
fn crash_child() {
    let (Ok(endpoint), Ok(prefix), Ok(round)) = (
        std::env::var("TOLLGATE_CRASH_ENDPOINT"),
        std::env::var("TOLLGATE_CRASH_PREFIX"),
        std::env::var("TOLLGATE_CRASH_ROUND"),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let connection = DynamoConnection::connect(config(&endpoint, &prefix)).unwrap();
        let engine_config = EngineConfig {
            snapshot_every_batches: 20,
            ..EngineConfig::default()
        };
        let (engine, _thread) = Engine::start(
            Box::new(connection.store("p0", "pod-0").unwrap()),
            Arc::new(SystemClock),
            engine_config,
        )
        .unwrap();
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let ack = move |out: &Mutex<std::io::Stdout>, key: &str, result: &CommandResult| {
            let line = format!("ACK {key} {}\n", serde_json::to_string(result).unwrap());
            let mut out = out.lock().unwrap();
            out.write_all(line.as_bytes()).unwrap();
            out.flush().unwrap();
        };
        let key = format!("grant-{round}");
        let granted = engine.submit(grant(key.clone(), 1_000_000, 0)).await;
        ack(&out, &key, &granted.unwrap());
        {
            let mut o = out.lock().unwrap();
            writeln!(o, "READY").unwrap();
            o.flush().unwrap();
        }
        let mut clients = Vec::new();
        for c in 0..8 {
            let (engine, out, round) = (engine.clone(), out.clone(), round.clone());
            clients.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let key = format!("r-{round}-{c}-{i}");
                    let request = reserve(key.clone(), 1 + i % 7, HOLD_MS);
                    let Ok(result) = engine.submit(request).await else {
                        return;
                    };
                    ack(&out, &key, &result);
                    if let Ok(Outcome::Reserved { hold, .. }) = result {
                        let key = format!("c-{round}-{c}-{i}");
                        let commit = keyed(
                            key.clone(),
                            Command::Commit {
                                hold,
                                amount: i % 5,
                                units: 0,
                            },
                        );
                        let Ok(result) = engine.submit(commit).await else {
                            return;
                        };
                        ack(&out, &key, &result);
                    }
                }
            }));
        }
        tokio::time::sleep(CHILD_LIFETIME).await;
    });
}
