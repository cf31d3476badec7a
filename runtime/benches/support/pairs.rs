//! Reserve + Commit pairs against a fresh ledger of one wallet (or one for each of N
//! customers): shared by the `ledger` bench and the `ledger_pairs` example, so both measure
//! the same work.

use tollgate_runtime::ledger::{
    Category, Command, GrantSpec, HoldId, Keyed, Ledger, LedgerConfig, Timestamp, WalletRef,
};

fn keyed(customer: &str, key: String, command: Command) -> Keyed {
    Keyed {
        customer: customer.into(),
        key,
        command,
    }
}

/// The name of customer `i` of several ("acme" when there is one).
fn customer(i: u64, customers: u64) -> String {
    if customers == 1 {
        "acme".into()
    } else {
        format!("customer-{i}")
    }
}

/// A ledger of `customers` wallets, one a customer, each holding two grants (promotional
/// first, then paid), each large enough for any number of pairs.
pub fn fresh_ledger_of(now: Timestamp, customers: u64) -> Ledger {
    let mut ledger = Ledger::new(LedgerConfig::default());
    for c in 0..customers {
        let name = customer(c, customers);
        let wallet = WalletRef::new(&name, "credits");
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
            let granted = ledger.apply(now, &keyed(&name, format!("grant-{i}"), command));
            assert!(granted.is_ok(), "{granted:?}");
        }
    }
    ledger
}

/// `count` pairs over `customers` (a `fresh_ledger_of` as many), taking turns: Reserve 1,000
/// credits, then Commit 700 of them, each with its own key. Requests arrive decoded, with
/// their keys: building them is not the ledger's cost. Each Reserve carries the fingerprint
/// of the client's request, as the service's do (the ledger then compares retries on it and
/// does not fingerprint the command).
pub fn requests_of(count: u64, customers: u64) -> Vec<(Keyed, Keyed)> {
    (1..=count)
        .map(|n| {
            let name = customer(n % customers, customers);
            let wallet = WalletRef::new(&name, "credits");
            let reserve = Command::Reserve {
                wallet,
                amount: 1_000,
                timeout_ms: 30_000,
                limits: vec![],
                price: None,
                request: Some(u128::from(n).to_le_bytes()),
            };
            let commit = Command::Commit {
                hold: HoldId(n),
                amount: 700,
                units: 0,
            };
            (
                keyed(&name, format!("reserve-{n}"), reserve),
                keyed(&name, format!("commit-{n}"), commit),
            )
        })
        .collect()
}
