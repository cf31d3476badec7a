#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Durable engine throughput and latency: Reserve + Commit through the engine on the
//! embedded store (fdatasync per batch), 64 concurrent submitters, closed loop.
//!
//! `cargo bench -p tollgate-runtime --bench engine`
//! Set `TOLLGATE_BENCH_DIR` to put the log on another disk (default: the system temp dir).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use hdrhistogram::Histogram;
use tollgate_runtime::engine::{Engine, EngineConfig, SystemClock};
use tollgate_runtime::ledger::{
    Category, Command, GrantSpec, Keyed, Outcome, Timestamp, WalletRef,
};
use tollgate_runtime::store::embedded::EmbeddedStore;

const SUBMITTERS: usize = 64;
const RUN: Duration = Duration::from_secs(10);

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("TOLLGATE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

async fn start() -> (Engine, tempfile::TempDir) {
    let dir = bench_dir();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let (engine, _thread) = Engine::start(
        Box::new(store),
        Arc::new(SystemClock),
        EngineConfig::default(),
    )
    .unwrap();
    for c in 0..SUBMITTERS {
        let customer = format!("c{c}");
        let grant = GrantSpec {
            amount: u64::MAX / 2,
            category: Category::Paid,
            priority: 0,
            effective_at: Timestamp(0),
            expires_at: None,
            cost_basis_micros: 0,
        };
        let request = Keyed {
            customer: customer.clone(),
            key: "grant".into(),
            command: Command::Grant {
                wallet: WalletRef::new(customer, "credits"),
                grant,
            },
        };
        engine.submit(request).await.unwrap().unwrap();
    }
    (engine, dir)
}

/// One submitter: Reserve then Commit, `ops` operations (or until `deadline`), recording
/// the latency of each operation.
async fn submitter(
    engine: Engine,
    id: usize,
    ops: u64,
    deadline: Option<Instant>,
    salt: u64,
) -> (u64, Histogram<u64>) {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    let customer = format!("c{id}");
    let wallet = WalletRef::new(&customer, "credits");
    let mut done = 0;
    let mut i = 0u64;
    while done < ops && deadline.is_none_or(|d| Instant::now() < d) {
        i += 1;
        let started = Instant::now();
        let reserve = Keyed {
            customer: customer.clone(),
            key: format!("r-{salt}-{i}"),
            command: Command::Reserve {
                wallet: wallet.clone(),
                amount: 100,
                timeout_ms: 60_000,
                limits: vec![],
                price: None,
                request: None,
            },
        };
        let Ok(Outcome::Reserved { hold, .. }) = engine.submit(reserve).await.unwrap() else {
            panic!("reserve failed")
        };
        histogram
            .record(started.elapsed().as_micros() as u64)
            .unwrap();
        let started = Instant::now();
        let commit = Keyed {
            customer: customer.clone(),
            key: format!("c-{salt}-{i}"),
            command: Command::Commit {
                hold,
                amount: 80,
                units: 0,
            },
        };
        engine.submit(commit).await.unwrap().unwrap();
        histogram
            .record(started.elapsed().as_micros() as u64)
            .unwrap();
        done += 2;
    }
    (done, histogram)
}

async fn load(
    engine: &Engine,
    ops_each: u64,
    deadline: Option<Instant>,
    salt: u64,
) -> (u64, Histogram<u64>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..SUBMITTERS)
        .map(|id| tokio::spawn(submitter(engine.clone(), id, ops_each, deadline, salt)))
        .collect();
    let mut total = 0;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    for task in tasks {
        let (done, h) = task.await.unwrap();
        total += done;
        histogram.add(h).unwrap();
    }
    (total, histogram, started.elapsed())
}

fn report() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (engine, _dir) = start().await;
        let before = engine.stats().snapshot();
        let (ops, h, elapsed) = load(&engine, u64::MAX, Some(Instant::now() + RUN), 0).await;
        let after = engine.stats().snapshot();
        let batches = after.batches - before.batches;
        let commands = after.commands - before.commands;
        let fsync_us = (after.store_write_us_total - before.store_write_us_total) as f64 / batches as f64;
        println!("engine durable ops (embedded store, fdatasync per batch), {SUBMITTERS} submitters, {:?}:", elapsed);
        println!("  ops/s            {:.0}", ops as f64 / elapsed.as_secs_f64());
        println!("  latency p50      {} us", h.value_at_quantile(0.50));
        println!("  latency p99      {} us", h.value_at_quantile(0.99));
        println!("  latency p99.9    {} us", h.value_at_quantile(0.999));
        println!("  latency max      {} us", h.max());
        println!("  mean batch       {:.1} commands ({} batches, max {})", commands as f64 / batches as f64, batches, after.max_batch);
        println!("  mean store write {fsync_us:.0} us (write + fdatasync)");
    });
}

fn durable_ops(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (engine, _dir) = runtime.block_on(start());
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements((SUBMITTERS * 200) as u64));
    group.sample_size(10);
    let mut salt = 1;
    group.bench_function("durable_reserve_commit_64_submitters_x200_ops", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                salt += 1;
                total += runtime.block_on(load(&engine, 200, None, salt)).2;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, durable_ops);

fn main() {
    report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
