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

/// Grants made one at a time (keys `more-<n>`), each a batch of its own so that snapshots
/// come due: for tests that wait for what a snapshot does, each wait within a bound.
pub struct OneAtATime {
    made: usize,
    started: std::time::Instant,
    limit: std::time::Duration,
}

impl OneAtATime {
    /// Starts with a wait of at most `limit`.
    pub fn new(limit: std::time::Duration) -> OneAtATime {
        OneAtATime {
            made: 0,
            started: std::time::Instant::now(),
            limit,
        }
    }

    /// Starts another wait, of at most `limit`.
    pub fn within(&mut self, limit: std::time::Duration) -> &mut OneAtATime {
        self.started = std::time::Instant::now();
        self.limit = limit;
        self
    }

    /// One more grant and a short pause; fails the test, saying what it waited for
    /// (`waiting`), once the wait has lasted its limit.
    pub async fn grant(
        &mut self,
        engine: &tollgate_runtime::engine::Engine,
        waiting: impl std::fmt::Debug,
    ) {
        assert!(
            self.started.elapsed() < self.limit,
            "not done within {:?}: {waiting:?}",
            self.limit
        );
        engine
            .submit(grant(format!("more-{}", self.made), 1, 0))
            .await
            .unwrap()
            .unwrap();
        self.made += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
