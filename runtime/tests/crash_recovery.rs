//! Crash safety of the engine on the embedded store.
//!
//! A child process (this test binary, re-run with `CRASH_CHILD_DIR` set) drives the engine
//! under load and prints every acknowledged answer; the parent SIGKILLs it at a random
//! point, recovers the data directory, and checks that every acknowledged command is there
//! with the same answer and that the ledger verifies. Twenty rounds on one directory, so
//! each round also recovers from the previous crashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tollgate_runtime::engine::{
    EngineConfig, Partitions, SystemClock, partition_of, recover_ledger, verify_recovered,
};
use tollgate_runtime::ledger::{
    Category, Command, CommandResult, GrantSpec, HoldId, Keyed, Ledger, Outcome, Timestamp,
    WalletRef,
};
use tollgate_runtime::store::embedded::EmbeddedStore;

const CHILD_DIR: &str = "CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "CRASH_CHILD_ROUND";
const CHILD_SNAPSHOT_EVERY: &str = "CRASH_CHILD_SNAPSHOT_EVERY";
const PARTITIONS: u32 = 2;
const ROUNDS: u64 = 20;
const TASKS: u64 = 32;
const CUSTOMERS: u64 = 8;

/// Entry point of the child process; a no-op in a normal test run.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let snapshot_every: u64 = std::env::var(CHILD_SNAPSHOT_EVERY)
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(child_load(PathBuf::from(dir), round, snapshot_every));
}

async fn child_load(dir: PathBuf, round: u64, snapshot_every: u64) {
    let config = EngineConfig {
        snapshot_every_batches: snapshot_every,
        ..EngineConfig::default()
    };
    let partitions = Arc::new(
        Partitions::open_embedded(&dir, Some(PARTITIONS), Arc::new(SystemClock), config).unwrap(),
    );
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let partitions = partitions.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(round * 1000 + task);
            let customer = format!("cust{}", task % CUSTOMERS);
            let wallet = WalletRef::new(&customer, "credits");
            let engine = partitions.for_customer(&customer).clone();
            let mut open: Vec<HoldId> = Vec::new();
            // Bounded: the parent kills us long before this ends.
            for i in 0..200_000u64 {
                let command = match rng.random_range(0..10) {
                    0 | 1 => Command::Grant {
                        wallet: wallet.clone(),
                        grant: GrantSpec {
                            amount: rng.random_range(1..1_000),
                            category: if rng.random_bool(0.3) {
                                Category::Promotional
                            } else {
                                Category::Paid
                            },
                            priority: rng.random_range(0..3),
                            effective_at: Timestamp(0),
                            expires_at: None,
                            cost_basis_micros: 0,
                        },
                    },
                    2..=4 => Command::Reserve {
                        wallet: wallet.clone(),
                        amount: rng.random_range(1..300),
                        timeout_ms: rng.random_range(50..5_000),
                        limits: vec![],
                        price: None,
                        request: None,
                    },
                    5 | 6 if !open.is_empty() => {
                        let hold = open.swap_remove(rng.random_range(0..open.len()));
                        Command::Commit {
                            hold,
                            amount: rng.random_range(0..400),
                            units: 0,
                        }
                    }
                    7 if !open.is_empty() => Command::Release {
                        hold: open.swap_remove(0),
                    },
                    _ => Command::Debit {
                        wallet: wallet.clone(),
                        amount: rng.random_range(1..50),
                    },
                };
                let key = format!("r{round}-t{task}-{i}");
                let request = Keyed {
                    customer: customer.clone(),
                    key: key.clone(),
                    command,
                };
                let Ok(result) = engine.submit(request).await else {
                    return;
                };
                if let Ok(Outcome::Reserved { hold, .. }) = &result {
                    open.push(*hold);
                }
                let line = format!(
                    "ACK {customer} {key} {}\n",
                    serde_json::to_string(&result).unwrap()
                );
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

struct Ack {
    customer: String,
    key: String,
    result: String,
}

/// Runs one child round, kills it with SIGKILL after `kill_after`, returns its acks.
fn crash_round(dir: &Path, round: u64, snapshot_every: u64, kill_after: Duration) -> Vec<Ack> {
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .env(CHILD_SNAPSHOT_EVERY, snapshot_every.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    // Wait for the load to be running, then let it run for `kill_after`.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            let ack = line.starts_with("ACK ");
            lines.push(line);
            if ack {
                break;
            }
        }
    }
    assert!(
        lines.iter().any(|l| l.starts_with("ACK ")),
        "round {round}: the child never acknowledged anything"
    );
    std::thread::sleep(kill_after);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "round {round}: the child must die by the signal"
    );
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
        .iter()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("ACK ")?.splitn(3, ' ');
            let customer = parts.next()?.to_string();
            let key = parts.next()?.to_string();
            let result = parts.next()?.to_string();
            // A line cut by the kill does not parse: that answer is simply not checked.
            let _: CommandResult = serde_json::from_str(&result).ok()?;
            Some(Ack {
                customer,
                key,
                result,
            })
        })
        .collect()
}

fn recover_all(dir: &Path) -> Vec<Ledger> {
    (0..PARTITIONS)
        .map(|p| {
            let mut store = EmbeddedStore::open(dir.join(format!("partition-{p:04}"))).unwrap();
            let ledger = recover_ledger(&mut store).unwrap();
            verify_recovered(&ledger, &store)
                .unwrap_or_else(|v| panic!("partition {p} fails verify after a crash: {v}"));
            ledger
        })
        .collect()
}

fn check_acks(ledgers: &[Ledger], acks: &[Ack], round: u64) {
    for ack in acks {
        let ledger = &ledgers[partition_of(&ack.customer, PARTITIONS) as usize];
        let Some((_, result)) = ledger.key_record(&ack.customer, &ack.key) else {
            panic!(
                "round {round}: acknowledged {} of {} is missing after the crash",
                ack.key, ack.customer
            );
        };
        assert_eq!(
            serde_json::to_string(&result).unwrap(),
            ack.result,
            "round {round}: answer to {} changed",
            ack.key
        );
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut all_acks = Vec::new();
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(rng.random_range(20..400));
        let acks = crash_round(dir.path(), round, 25, kill_after);
        assert!(!acks.is_empty());
        let ledgers = recover_all(dir.path());
        check_acks(&ledgers, &acks, round);
        all_acks.extend(acks);
    }
    // Everything acknowledged in every round survived every later crash too.
    let ledgers = recover_all(dir.path());
    check_acks(&ledgers, &all_acks, ROUNDS);
    let archived: u64 = ledgers.iter().map(|l| l.journal().archived()).sum();
    assert!(
        archived > 0,
        "the rounds made the journal archive (verify read it back)"
    );
    eprintln!(
        "crash test: {ROUNDS} SIGKILL rounds, {} acknowledged commands all present; \
         {archived} journal entries read back from the archive",
        all_acks.len()
    );
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    found.sort();
    found
}

#[test]
fn torn_log_after_a_crash_recovers_and_a_flipped_byte_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    // No snapshots: everything is in the log.
    let acks = crash_round(dir.path(), 0, u64::MAX, Duration::from_millis(200));
    assert!(!acks.is_empty());
    let partition = dir.path().join("partition-0000");
    let last = segments(&partition).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    assert!(bytes.len() > 100, "the crashed child wrote a log");

    // A torn write: the file ends part-way through its last record.
    std::fs::write(&last, &bytes[..bytes.len() - 7]).unwrap();
    let ledgers = recover_all(dir.path());
    let recovered = ledgers[0].journal().len();
    assert!(recovered > 0);
    assert!(
        (std::fs::metadata(&last).unwrap().len() as usize) < bytes.len() - 7,
        "torn tail truncated"
    );

    // A flipped byte in a committed record: start-up stops, naming the file and offset.
    let mut bytes = std::fs::read(&last).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&last, &bytes).unwrap();
    let mut store = EmbeddedStore::open(&partition).unwrap();
    let err = recover_ledger(&mut store).unwrap_err().to_string();
    assert!(
        err.contains(&last.display().to_string()) && err.contains("offset"),
        "{err}"
    );
}
