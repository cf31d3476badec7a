//! Applies a fixed number of Reserve + Commit pairs to a fresh ledger and prints the time per
//! pair. Deterministic work, so `valgrind --tool=callgrind` counts the same instructions on
//! every run (a figure that does not depend on what else the machine is doing):
//!
//! ```text
//! cargo build --release -p tollgate-runtime --no-default-features --example ledger_pairs
//! valgrind --tool=callgrind target/release/examples/ledger_pairs 100000
//! ```
//!
//! A second argument spreads the pairs over that many customers, taking turns (as the
//! server benchmark's 100 do), so that each has keys and a wallet of its own. The slowest
//! block of 4,096 pairs shows what the largest single growth of an index costs.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use tollgate_runtime::ledger::Timestamp;

/// Pairs timed together.
const BLOCK: usize = 4096;

#[path = "../benches/support/pairs.rs"]
mod pairs;

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let customers: u64 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let now = Timestamp(1_000_000);
    let mut ledger = pairs::fresh_ledger_of(now, customers);
    let requests = pairs::requests_of(count, customers);
    let started = Instant::now();
    // Each block of pairs timed: a table doubling shows as one slow block.
    let mut blocks = Vec::with_capacity(requests.len() / BLOCK + 1);
    for block in requests.chunks(BLOCK) {
        let began = Instant::now();
        for (reserve, commit) in block {
            let r = ledger.apply(now, reserve);
            let c = ledger.apply(now, commit);
            assert!(r.is_ok() && c.is_ok(), "{r:?} {c:?}");
        }
        blocks.push(began.elapsed());
    }
    let elapsed = started.elapsed();
    blocks.sort();
    println!(
        "{count} pairs over {customers} customers in {elapsed:?}: {:.3} us per pair, {:.0} pairs/s",
        elapsed.as_secs_f64() * 1e6 / count as f64,
        count as f64 / elapsed.as_secs_f64()
    );
    if let (Some(median), Some(slowest)) = (blocks.get(blocks.len() / 2), blocks.last()) {
        println!("blocks of {BLOCK} pairs: median {median:?}, slowest {slowest:?}");
    }
}
