#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Pure ledger throughput on one core: Reserve + Commit pairs, no I/O.
//!
//! `cargo bench -p tollgate-runtime --bench ledger`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
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

fn reserve_commit(c: &mut Criterion) {
    let wallet = WalletRef::new("acme", "credits");
    let mut ledger = Ledger::new(LedgerConfig::default());
    let now = Timestamp(1_000_000);
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
        let _ = ledger.apply(
            now,
            &keyed(
                format!("grant-{i}"),
                Command::Grant {
                    wallet: wallet.clone(),
                    grant,
                },
            ),
        );
    }
    let mut n = 0u64;
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(1));
    group.bench_function("reserve_commit_pair", |b| {
        b.iter_batched(
            || {
                n += 1;
                // Requests arrive decoded, with their keys: building them is not the ledger's cost.
                let reserve = keyed(
                    format!("reserve-{n}"),
                    Command::Reserve {
                        wallet: wallet.clone(),
                        amount: 1_000,
                        timeout_ms: 30_000,
                        limits: vec![],
                        price: None,
                        request: None,
                    },
                );
                let commit = keyed(
                    format!("commit-{n}"),
                    Command::Commit {
                        hold: HoldId(n),
                        amount: 700,
                        units: 0,
                    },
                );
                (reserve, commit)
            },
            |(reserve, commit)| {
                let r = ledger.apply(now, &reserve);
                let c = ledger.apply(now, &commit);
                assert!(r.is_ok() && c.is_ok());
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert!(ledger.verify().is_ok());
}

criterion_group!(benches, reserve_commit);
criterion_main!(benches);
