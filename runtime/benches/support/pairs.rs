//! Reserve + Commit pairs against a fresh one-wallet ledger: shared by the `ledger` bench and
//! the `ledger_pairs` example, so both measure the same work.

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

/// A ledger with one wallet holding two grants (promotional first, then paid), each large
/// enough for any number of pairs.
pub fn fresh_ledger(now: Timestamp) -> Ledger {
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
    ledger
}

/// `count` pairs: Reserve 1,000 credits, then Commit 700 of them, each with its own key.
/// Requests arrive decoded, with their keys: building them is not the ledger's cost. Each
/// Reserve carries the fingerprint of the client's request, as the service's do (the ledger
/// then compares retries on it and does not fingerprint the command).
pub fn requests(count: u64) -> Vec<(Keyed, Keyed)> {
    let wallet = WalletRef::new("acme", "credits");
    (1..=count)
        .map(|n| {
            let reserve = Command::Reserve {
                wallet: wallet.clone(),
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
                keyed(format!("reserve-{n}"), reserve),
                keyed(format!("commit-{n}"), commit),
            )
        })
        .collect()
}
