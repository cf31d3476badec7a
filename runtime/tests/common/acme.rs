//! One customer's wallet and the requests the engine and store tests send it.

use tollgate_runtime::ledger::{Category, Command, GrantSpec, Keyed, Timestamp, WalletRef};

/// A hold timeout no test waits out: ten minutes.
pub const HOLD_MS: u64 = 600_000;

/// Acme's credits wallet.
pub fn wallet() -> WalletRef {
    WalletRef::new("acme", "credits")
}

/// `command`, sent by acme under the idempotency key `key`.
pub fn keyed(key: impl Into<String>, command: Command) -> Keyed {
    Keyed {
        customer: "acme".into(),
        key: key.into(),
        command,
    }
}

/// A paid grant of `amount` micro-credits to the wallet, effective from the start and
/// never expiring.
pub fn grant(key: impl Into<String>, amount: u64, cost_basis_micros: u64) -> Keyed {
    keyed(
        key,
        Command::Grant {
            wallet: wallet(),
            grant: GrantSpec {
                amount,
                category: Category::Paid,
                priority: 0,
                effective_at: Timestamp(0),
                expires_at: None,
                cost_basis_micros,
            },
        },
    )
}

/// A Reserve of `amount` on the wallet for `timeout_ms`, with no limits and no price.
pub fn reserve(key: impl Into<String>, amount: u64, timeout_ms: u64) -> Keyed {
    keyed(
        key,
        Command::Reserve {
            wallet: wallet(),
            amount,
            timeout_ms,
            limits: vec![],
            price: None,
            request: None,
        },
    )
}

/// `count` grants of one micro-credit (one journal entry each), keys `g<from>` on, 64 at
/// a time so that they share batches.
pub async fn grants(engine: &tollgate_runtime::engine::Engine, from: usize, count: usize) {
    for start in (from..from + count).step_by(64) {
        let calls = (start..(start + 64).min(from + count))
            .map(|i| engine.submit(grant(format!("g{i}"), 1, 0)));
        for answer in futures::future::join_all(calls).await {
            answer.unwrap().unwrap();
        }
    }
}
