#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Pure ledger throughput on one core: Reserve + Commit pairs, no I/O.
//!
//! `taskset -c 1 cargo bench -p tollgate-runtime --no-default-features --bench ledger`
//!
//! Every sample starts from a fresh ledger (one wallet with two grants) and applies the
//! sample's pairs to it, so a sample measures a ledger of a known size rather than one
//! that grows with however many iterations criterion chooses to run.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_runtime::ledger::Timestamp;

#[path = "support/pairs.rs"]
mod pairs;
use pairs::{fresh_ledger_of, requests_of};

/// Pairs applied to one fresh ledger before it is replaced (bounds its size).
const PAIRS_PER_LEDGER: u64 = 100_000;

fn reserve_commit(c: &mut Criterion) {
    let now = Timestamp(1_000_000);
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(1));
    group.bench_function("reserve_commit_pair", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let pairs = left.min(PAIRS_PER_LEDGER);
                let mut ledger = fresh_ledger_of(now, 1);
                let batch = requests_of(pairs, 1);
                let started = Instant::now();
                for (reserve, commit) in &batch {
                    let r = ledger.apply(now, reserve);
                    let c = ledger.apply(now, commit);
                    assert!(r.is_ok() && c.is_ok());
                }
                total += started.elapsed();
                left -= pairs;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, reserve_commit);
criterion_main!(benches);
