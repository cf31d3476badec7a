//! Applies a fixed number of Reserve + Commit pairs to a fresh ledger and prints the time per
//! pair. Deterministic work, so `valgrind --tool=callgrind` counts the same instructions on
//! every run (a figure that does not depend on what else the machine is doing):
//!
//! ```text
//! cargo build --release -p tollgate-runtime --no-default-features --example ledger_pairs
//! valgrind --tool=callgrind target/release/examples/ledger_pairs 100000
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use tollgate_runtime::ledger::{
    Category, Command, GrantSpec, HoldId, Keyed, Ledger, LedgerConfig, Timestamp, WalletRef,
};

fn keyed(key: String, command: Command) -> Keyed {
    Keyed {
        customer: "acme".into(),
        key,
        command,
    }
}

fn main() {
    let pairs: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let now = Timestamp(1_000_000);
    let wallet = WalletRef::new("acme", "credits");
    let mut ledger = Ledger::new(LedgerConfig::default());
    for (i, category) in [Category::Promotional, Category::Paid]
        .into_iter()
        .enumerate()
    {
        let grant = GrantSpec {
            amount: u64::MAX / 4,
            category,
            priority: i as u32,
            effective_at: Timestamp(0),
            expires_at: None,
            cost_basis_micros: 0,
        };
        let command = Command::Grant {
            wallet: wallet.clone(),
            grant,
        };
        let granted = ledger.apply(now, &keyed(format!("grant-{i}"), command));
        assert!(granted.is_ok(), "{granted:?}");
    }
    let requests: Vec<(Keyed, Keyed)> = (1..=pairs)
        .map(|n| {
            let reserve = Command::Reserve {
                wallet: wallet.clone(),
                amount: 1_000,
                timeout_ms: 30_000,
                limits: vec![],
                price: None,
                request: None,
            };
            let commit = Command::Commit {
                hold: HoldId(n),
                amount: 700,
                units: 0,
            };
            (
                keyed(format!("reserve-{n}"), reserve),
                keyed(format!("commit-{n}"), commit),
            )
        })
        .collect();
    let started = Instant::now();
    for (reserve, commit) in &requests {
        let r = ledger.apply(now, reserve);
        let c = ledger.apply(now, commit);
        assert!(r.is_ok() && c.is_ok(), "{r:?} {c:?}");
    }
    let elapsed = started.elapsed();
    println!(
        "{pairs} pairs in {elapsed:?}: {:.3} us per pair, {:.0} pairs/s",
        elapsed.as_secs_f64() * 1e6 / pairs as f64,
        pairs as f64 / elapsed.as_secs_f64()
    );
}
