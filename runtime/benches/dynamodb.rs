//! Durable Reserve+Commit pairs per second, p99 latency, and DynamoDB write units per
//! 1,000 operations: Tollgate's dynamodb store (group commit, one conditional write per
//! engine batch) against the naive design (one conditional UpdateItem per operation on a
//! balance item), on the same DynamoDB Local, same table, same number of clients.
//!
//! `cargo bench -p tollgate-runtime --bench dynamodb` (needs TOLLGATE_DYNAMODB_LOCAL_DIR,
//! see scripts/lib.sh `ensure_dynamodb_local`). Prints its figures and the machine.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/common/dynamodb_local.rs"]
mod dynamodb_local;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use hdrhistogram::Histogram;
use tollgate_runtime::engine::{Engine, EngineConfig, SystemClock};
use tollgate_runtime::ledger::{
    Category, Command, GrantSpec, Keyed, Outcome, Timestamp, WalletRef,
};
use tollgate_runtime::store::dynamodb::DynamoConnection;

/// Concurrent clients, each running Reserve then Commit in a loop.
const CLIENTS: usize = 128;
const RUN: Duration = Duration::from_secs(10);

struct Figures {
    pairs: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    write_units: f64,
}

impl Figures {
    fn print(&self, name: &str) {
        let ops = 2 * self.pairs;
        println!(
            "{name:<28} {:>9.0} pairs/s   p50 {:>7.2} ms   p99 {:>7.2} ms   {:>8.1} WCU per 1,000 ops   ({} pairs, {:.0} WCU)",
            self.pairs as f64 / self.seconds,
            self.p50_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.write_units * 1000.0 / ops.max(1) as f64,
            self.pairs,
            self.write_units,
        );
    }
}

fn wallet(c: usize) -> WalletRef {
    WalletRef::new(format!("c{c:03}"), "credits")
}

fn keyed(customer: &str, key: String, command: Command) -> Keyed {
    Keyed {
        customer: customer.to_string(),
        key,
        command,
    }
}

async fn tollgate(connection: &DynamoConnection) -> Figures {
    let (engine, _thread) = Engine::start(
        Box::new(connection.store("bench", "pod-0").expect("store")),
        Arc::new(SystemClock),
        EngineConfig::default(),
    )
    .expect("engine");
    // One hot wallet per client customer would be the same for the engine; use one hot
    // wallet shared by everyone, the naive design's worst case and Tollgate's too.
    let hot = WalletRef::new("hot", "credits");
    let grant = Command::Grant {
        wallet: hot.clone(),
        grant: GrantSpec {
            amount: u64::MAX / 4,
            category: Category::Paid,
            priority: 0,
            effective_at: Timestamp(0),
            expires_at: None,
            cost_basis_micros: 0,
        },
    };
    engine
        .submit(keyed("hot", "grant".into(), grant))
        .await
        .expect("grant")
        .expect("granted");
    let _ = wallet(0);
    let units_before = connection.stats().write_units;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (engine, hot) = (engine.clone(), hot.clone());
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut pairs = 0u64;
            while started.elapsed() < RUN {
                let sent = Instant::now();
                let reserve = Command::Reserve {
                    wallet: hot.clone(),
                    amount: 10,
                    timeout_ms: 60_000,
                    limits: vec![],
                    price: None,
                    request: None,
                };
                let Ok(Ok(Outcome::Reserved { hold, .. })) = engine
                    .submit(keyed("hot", format!("r{c}-{pairs}"), reserve))
                    .await
                else {
                    panic!("reserve failed")
                };
                let commit = Command::Commit {
                    hold,
                    amount: 7,
                    units: 0,
                };
                let committed = engine
                    .submit(keyed("hot", format!("c{c}-{pairs}"), commit))
                    .await;
                assert!(matches!(committed, Ok(Ok(_))), "{committed:?}");
                latency.saturating_record(sent.elapsed().as_micros() as u64);
                pairs += 1;
            }
            (pairs, latency)
        }));
    }
    let mut latency = histogram();
    let mut pairs = 0;
    for task in tasks {
        let (n, h) = task.await.expect("client");
        pairs += n;
        latency.add(h).expect("same bounds");
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = engine.stats().snapshot();
    println!("tollgate engine: {stats:?}");
    Figures {
        pairs,
        seconds,
        p50_us: latency.value_at_quantile(0.5),
        p99_us: latency.value_at_quantile(0.99),
        write_units: connection.stats().write_units - units_before,
    }
}

/// The naive design: the balance is one item; Reserve is a conditional UpdateItem that
/// moves credits from available to held, Commit another that settles the hold.
async fn naive(connection: &DynamoConnection) -> Figures {
    let client = connection.client().clone();
    let table = connection.journal_table();
    let key = |k: &str| {
        [
            ("pk".to_string(), AttributeValue::S(format!("naive#{k}"))),
            ("seq".to_string(), AttributeValue::N("0".into())),
        ]
    };
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(
            key("hot")
                .into_iter()
                .chain([
                    (
                        "available".to_string(),
                        AttributeValue::N((u64::MAX / 4).to_string()),
                    ),
                    ("held".to_string(), AttributeValue::N("0".into())),
                    ("spent".to_string(), AttributeValue::N("0".into())),
                ])
                .collect(),
        ))
        .send()
        .await
        .expect("naive wallet");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, table) = (client.clone(), table.clone());
        let key = key("hot");
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram();
            let (mut pairs, mut units) = (0u64, 0f64);
            while started.elapsed() < RUN {
                let sent = Instant::now();
                let reserve = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(key.clone().into_iter().collect()))
                    .update_expression("SET available = available - :a, held = held + :a")
                    .condition_expression("available >= :a")
                    .expression_attribute_values(":a", AttributeValue::N("10".into()))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                let Ok(reserve) = reserve else { continue }; // throttled or timed out: retry
                units += reserve
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units())
                    .unwrap_or(0.0);
                loop {
                    let commit = client
                        .update_item()
                        .table_name(&table)
                        .set_key(Some(key.clone().into_iter().collect()))
                        .update_expression(
                            "SET held = held - :h, spent = spent + :c, available = available + :r",
                        )
                        .condition_expression("held >= :h")
                        .expression_attribute_values(":h", AttributeValue::N("10".into()))
                        .expression_attribute_values(":c", AttributeValue::N("7".into()))
                        .expression_attribute_values(":r", AttributeValue::N("3".into()))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await;
                    if let Ok(commit) = commit {
                        units += commit
                            .consumed_capacity()
                            .and_then(|c| c.capacity_units())
                            .unwrap_or(0.0);
                        break;
                    }
                }
                latency.saturating_record(sent.elapsed().as_micros() as u64);
                pairs += 1;
            }
            (pairs, units, latency)
        }));
    }
    let mut latency = histogram();
    let (mut pairs, mut write_units) = (0, 0.0);
    for task in tasks {
        let (n, u, h) = task.await.expect("client");
        pairs += n;
        write_units += u;
        latency.add(h).expect("same bounds");
    }
    Figures {
        pairs,
        seconds: started.elapsed().as_secs_f64(),
        p50_us: latency.value_at_quantile(0.5),
        p99_us: latency.value_at_quantile(0.99),
        write_units,
    }
}

/// Latencies from 1 us to 60 s, three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes bench binaries; this one only benchmarks.
    }
    let Some(local) = dynamodb_local::DynamoLocal::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("machine: {}", machine());
    println!(
        "DynamoDB Local (in memory), {CLIENTS} concurrent clients, {RUN:?} per design, one hot wallet"
    );
    let connection = DynamoConnection::connect(local.config("bench")).expect("connect");
    let ours = runtime.block_on(tollgate(&connection));
    let theirs = runtime.block_on(naive(&connection));
    ours.print("tollgate dynamodb store");
    theirs.print("naive UpdateItem per op");
    let ratio = (ours.pairs as f64 / ours.seconds) / (theirs.pairs as f64 / theirs.seconds);
    let units = (ours.write_units / (2 * ours.pairs).max(1) as f64)
        / (theirs.write_units / (2 * theirs.pairs).max(1) as f64);
    println!("throughput: {ratio:.1}x the naive design; write units per op: {units:.3}x");
}
