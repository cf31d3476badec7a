#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What a partition's ledger costs as its customers grow, where a benchmark of calls does not
//! look: N customers, each upserted and subscribed to a plan with a monthly included grant
//! (so each has a wallet, its accounts, a grant and a scheduled next issue), all from the
//! same date, then one call reserved and committed against a monthly limit of its own (so
//! each has a counter). Prints the memory the process holds, the slowest single commands while they
//! are created (a table that grows by doubling moves everything it holds in one of them),
//! what a snapshot's image costs (the partition's calls wait for it), and the first advance
//! past the period's end (every customer's next grant falls due at once):
//!
//! ```text
//! cargo build --release -p tollgate-runtime --no-default-features --example ledger_scale
//! taskset -c 1 target/release/examples/ledger_scale 1000000
//! ```
//!
//! Transparent huge pages are turned off first, as `tollgate serve` does.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use tollgate_runtime::ledger::{
    Category, Command, HoldId, IncludedGrant, Keyed, Ledger, LedgerConfig, LimitCharge, Measure,
    Outcome, OveragePolicy, Timestamp, WalletRef,
};
use tollgate_runtime::period::{Period, Window};

/// 2026-01-01T00:00:00Z, the date every customer's subscription starts from.
const SINCE: Timestamp = Timestamp(1_767_225_600_000);

fn main() {
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("transparent huge pages stay on: {error}");
    }
    let customers: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("the number of customers"))
        .unwrap_or(100_000);
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut slowest: Vec<(Duration, u64, &'static str)> = Vec::new();
    let started = Instant::now();
    for i in 0..customers {
        let mut hold = None;
        for command in commands(i) {
            let command = match (command, hold) {
                (Command::Commit { amount, units, .. }, Some(hold)) => Command::Commit {
                    hold,
                    amount,
                    units,
                },
                (command, _) => command,
            };
            let name = command.name();
            let keyed = Keyed {
                customer: format!("customer-{i:08}"),
                key: name.to_string(),
                command,
            };
            let at = Instant::now();
            let applied = ledger.apply(SINCE, &keyed);
            let took = at.elapsed();
            if let Ok(Outcome::Reserved { hold: reserved, .. }) = &applied {
                hold = Some(*reserved);
            }
            assert!(applied.is_ok(), "{applied:?}");
            slowest.push((took, i, name));
            if slowest.len() > 64 {
                slowest.sort_unstable_by(|a, b| b.cmp(a));
                slowest.truncate(8);
            }
        }
    }
    let created = started.elapsed();
    slowest.sort_unstable_by(|a, b| b.cmp(a));
    println!("customers: {customers}");
    println!(
        "created in {:.3} s ({:.2} us a customer); memory: {}",
        created.as_secs_f64(),
        created.as_secs_f64() * 1e6 / customers.max(1) as f64,
        memory()
    );
    for (took, i, name) in slowest.iter().take(5) {
        println!(
            "  slow command: {name} of customer {i}: {:.2} ms",
            ms(*took)
        );
    }
    let at = Instant::now();
    let image = ledger.image();
    println!("snapshot image: {:.3} ms", ms(at.elapsed()));
    drop(image);
    // 2026-02-01T00:00:00.001Z: every customer's first period has ended.
    let next = Timestamp(SINCE.0 + 31 * 86_400_000 + 1);
    let at = Instant::now();
    ledger.advance(next);
    println!(
        "first advance past the period's end (every grant expires, every next one is issued): {:.1} ms",
        ms(at.elapsed())
    );
}

fn commands(i: u64) -> [Command; 4] {
    let wallet = WalletRef::new(format!("customer-{i:08}"), "credits");
    [
        Command::UpsertCustomer {
            display_name: format!("Customer {i}"),
        },
        Command::Subscribe {
            plan: "pro".into(),
            since: SINCE,
            overage: OveragePolicy::Deny,
            included: vec![IncludedGrant {
                id: "monthly".into(),
                amount: 1_000_000,
                category: Category::Paid,
                priority: 0,
                period: Period::Month,
                calendar: false,
                expires_after_ms: None,
            }],
            request: None,
        },
        Command::Reserve {
            wallet,
            amount: 1_000,
            timeout_ms: 60_000,
            limits: vec![LimitCharge {
                counter: format!("limit/tokens/customer-{i:08}"),
                window: Window {
                    start: SINCE,
                    end: Timestamp(SINCE.0 + 31 * 86_400_000),
                },
                limit: Some(1_000_000),
                measure: Measure::Units,
                amount: 500,
                enforce: true,
            }],
            price: None,
            request: None,
        },
        // The hold is the one just reserved (filled in by the caller).
        Command::Commit {
            hold: HoldId(0),
            amount: 700,
            units: 400,
        },
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident and peak resident memory, from /proc/self/status.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map_or("?".to_string(), |l| {
                l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
            })
    };
    format!("{} resident, {} at most", field("VmRSS:"), field("VmHWM:"))
}
