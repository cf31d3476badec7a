//! Scenario and boundary tests of the ledger.

use super::*;

const T0: Timestamp = Timestamp(1_000_000);

fn wallet() -> WalletRef {
    WalletRef::new("acme", "credits")
}

struct Fixture {
    ledger: Ledger,
    key: u64,
    now: Timestamp,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            ledger: Ledger::new(LedgerConfig::default()),
            key: 0,
            now: T0,
        }
    }

    fn run(&mut self, command: Command) -> CommandResult {
        self.key += 1;
        let request = Keyed {
            customer: "acme".into(),
            key: format!("k{}", self.key),
            command,
        };
        let result = self.ledger.apply(self.now, &request);
        self.ledger
            .verify()
            .expect("ledger verifies after every command");
        result
    }

    fn grant(
        &mut self,
        amount: u64,
        category: Category,
        priority: u32,
        expires_at: Option<u64>,
    ) -> GrantId {
        let spec = GrantSpec {
            amount,
            category,
            priority,
            effective_at: Timestamp(0),
            expires_at: expires_at.map(Timestamp),
            cost_basis_micros: if category == Category::Paid { 1000 } else { 0 },
        };
        match self.run(Command::Grant {
            wallet: wallet(),
            grant: spec,
        }) {
            Ok(Outcome::Granted { grant, .. }) => grant,
            other => panic!("grant failed: {other:?}"),
        }
    }

    fn reserve(&mut self, amount: u64, timeout_ms: u64) -> CommandResult {
        self.run(Command::Reserve {
            wallet: wallet(),
            amount,
            timeout_ms,
            limits: vec![],
            price: None,
            request: None,
        })
    }

    fn hold(&mut self, amount: u64) -> HoldId {
        match self.reserve(amount, 60_000) {
            Ok(Outcome::Reserved { hold, .. }) => hold,
            other => panic!("reserve failed: {other:?}"),
        }
    }

    fn balance(&self) -> WalletBalance {
        self.ledger
            .wallet_balance(&wallet())
            .expect("wallet exists")
    }
}

#[test]
fn reserve_commit_posts_actual_and_releases_the_rest() {
    let mut f = Fixture::new();
    f.grant(1_000, Category::Paid, 0, None);
    let hold = f.hold(300);
    assert_eq!(f.balance().available, 700);
    assert_eq!(f.balance().pending, 300);
    let out = f
        .run(Command::Commit {
            hold,
            amount: 120,
            units: 0,
        })
        .unwrap();
    assert!(matches!(
        out,
        Outcome::Committed {
            posted: 120,
            released: 180,
            overage_posted: 0,
            ..
        }
    ));
    let b = f.balance();
    assert_eq!((b.available, b.pending), (880, 0));
    // A hold resolves once.
    let again = f.run(Command::Commit {
        hold,
        amount: 10,
        units: 0,
    });
    assert!(matches!(
        again,
        Err(LedgerError::HoldResolved {
            resolution: HoldResolution::Committed,
            ..
        })
    ));
    let release = f.run(Command::Release { hold });
    assert!(matches!(release, Err(LedgerError::HoldResolved { .. })));
}

#[test]
fn consumption_order_priority_expiry_category_age() {
    let mut f = Fixture::new();
    let paid_late = f.grant(10, Category::Paid, 1, Some(T0.0 + 10_000));
    let promo_late = f.grant(10, Category::Promotional, 1, Some(T0.0 + 10_000));
    let paid_early = f.grant(10, Category::Paid, 1, Some(T0.0 + 5_000));
    let never = f.grant(10, Category::Paid, 1, None);
    let first = f.grant(10, Category::Paid, 0, None);
    let second_old = f.grant(10, Category::Promotional, 1, Some(T0.0 + 10_000));
    let hold = f.hold(55);
    let parts: Vec<_> = f.ledger.hold(hold).unwrap().parts().to_vec();
    assert_eq!(
        parts,
        vec![
            (first, 10),
            (paid_early, 10),
            (promo_late, 10),
            (second_old, 10),
            (paid_late, 10),
            (never, 5)
        ]
    );
}

#[test]
fn insufficient_credits_is_all_or_nothing() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, None);
    let before = f.ledger.journal().len();
    let err = f.reserve(101, 1000).unwrap_err();
    assert_eq!(
        err,
        LedgerError::InsufficientCredits {
            wallet: wallet(),
            needed: 101,
            available: 100
        }
    );
    assert_eq!(f.ledger.journal().len(), before);
    assert_eq!(f.balance().available, 100);
}

#[test]
fn amount_boundaries_zero_one_max() {
    let mut f = Fixture::new();
    let zero = f.run(Command::Grant {
        wallet: wallet(),
        grant: GrantSpec {
            amount: 0,
            category: Category::Paid,
            priority: 0,
            effective_at: Timestamp(0),
            expires_at: None,
            cost_basis_micros: 0,
        },
    });
    assert!(
        matches!(zero, Err(LedgerError::InvalidArgument { ref field, .. }) if field == "grant.amount")
    );
    f.grant(u64::MAX - 1, Category::Paid, 0, None);
    f.grant(1, Category::Paid, 0, None);
    assert_eq!(f.balance().available, u64::MAX);
    // One more paid credit would overflow deferred revenue: an error, not a wrap.
    let overflow = f.run(Command::Grant {
        wallet: wallet(),
        grant: GrantSpec {
            amount: 1,
            category: Category::Paid,
            priority: 0,
            effective_at: Timestamp(0),
            expires_at: None,
            cost_basis_micros: 0,
        },
    });
    assert!(
        matches!(overflow, Err(LedgerError::Overflow { .. })),
        "{overflow:?}"
    );
    assert!(matches!(
        f.reserve(0, 1000),
        Err(LedgerError::InvalidArgument { .. })
    ));
    let hold = f.hold(u64::MAX);
    assert_eq!(f.balance().available, 0);
    assert!(matches!(
        f.reserve(1, 1000),
        Err(LedgerError::InsufficientCredits { available: 0, .. })
    ));
    let out = f
        .run(Command::Commit {
            hold,
            amount: u64::MAX,
            units: 0,
        })
        .unwrap();
    assert!(matches!(
        out,
        Outcome::Committed {
            posted: u64::MAX,
            released: 0,
            ..
        }
    ));
    assert_eq!(f.balance().available, 0);
}

#[test]
fn grant_expiring_exactly_at_reserve_is_not_usable() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, Some(T0.0 + 1_000));
    f.now = Timestamp(T0.0 + 999);
    assert!(f.reserve(100, 10).is_ok());
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, Some(T0.0 + 1_000));
    f.now = Timestamp(T0.0 + 1_000);
    let err = f.reserve(1, 10).unwrap_err();
    assert!(matches!(
        err,
        LedgerError::InsufficientCredits { available: 0, .. }
    ));
    let expiry = f
        .ledger
        .journal()
        .iter()
        .find(|e| matches!(e.kind, EntryKind::Expire { .. }));
    assert!(expiry.is_some(), "expiry is an explicit entry");
    assert_eq!(
        f.ledger.accounts()[f.ledger.wallets[0].accounts.breakage.0 as usize]
            .balances
            .credits_posted,
        100
    );
}

#[test]
fn hold_times_out_between_reserve_and_commit() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, None);
    let hold = match f.reserve(60, 500).unwrap() {
        Outcome::Reserved {
            hold, expires_at, ..
        } => {
            assert_eq!(expires_at, Timestamp(T0.0 + 500));
            hold
        }
        other => panic!("{other:?}"),
    };
    f.now = Timestamp(T0.0 + 499);
    assert_eq!(f.balance().available, 40);
    f.now = Timestamp(T0.0 + 500);
    let err = f
        .run(Command::Commit {
            hold,
            amount: 60,
            units: 0,
        })
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::HoldTimedOut {
            hold,
            expired_at: Timestamp(T0.0 + 500)
        }
    );
    assert_eq!(f.balance().available, 100);
    let timeout = f
        .ledger
        .journal()
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::HoldTimeout { .. }))
        .count();
    assert_eq!(timeout, 1);
    assert!(
        f.ledger.hold(hold).unwrap().terms.is_none(),
        "a timed-out hold lets go of its terms"
    );
    f.ledger.verify().unwrap();
}

#[test]
fn held_credits_survive_grant_expiry_and_the_released_rest_expires() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, Some(T0.0 + 1_000));
    let hold = f.hold(80);
    f.now = Timestamp(T0.0 + 2_000);
    f.ledger.advance(f.now);
    // The free 20 expired; the 80 held stay with the hold.
    assert_eq!(f.balance().pending, 80);
    let out = f
        .run(Command::Commit {
            hold,
            amount: 30,
            units: 0,
        })
        .unwrap();
    assert!(matches!(
        out,
        Outcome::Committed {
            posted: 30,
            released: 50,
            ..
        }
    ));
    let breakage = f.ledger.wallets[0].accounts.breakage;
    assert_eq!(f.ledger.balances(breakage).credits_posted, 70);
}

#[test]
fn commit_above_hold_under_deny_charges_only_available_credits() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, None);
    let hold = f.hold(50);
    let out = f
        .run(Command::Commit {
            hold,
            amount: 130,
            units: 0,
        })
        .unwrap();
    assert_eq!(
        out,
        Outcome::Committed {
            entry: EntryId(3),
            posted: 50,
            released: 0,
            overage_posted: 50,
            overage_unbilled: 30
        }
    );
    assert_eq!(f.balance().available, 0);
    assert_eq!(f.balance().overdraft, 0);
    assert!(
        matches!(f.ledger.journal()[3].kind, EntryKind::Overage { .. }),
        "overage is its own entry"
    );
}

#[test]
fn commit_above_hold_under_overdraft_goes_down_to_the_floor() {
    let mut f = Fixture::new();
    f.run(Command::OpenWallet {
        wallet: wallet(),
        overage: OveragePolicy::AllowOverdraft { floor: 40 },
    })
    .unwrap();
    f.grant(100, Category::Paid, 0, None);
    let hold = f.hold(100);
    let out = f
        .run(Command::Commit {
            hold,
            amount: 150,
            units: 0,
        })
        .unwrap();
    assert!(matches!(
        out,
        Outcome::Committed {
            posted: 100,
            overage_posted: 40,
            overage_unbilled: 10,
            ..
        }
    ));
    assert_eq!(f.balance().overdraft, 40);
    // The next grant pays the overdraft back first.
    f.grant(100, Category::Paid, 0, None);
    let b = f.balance();
    assert_eq!((b.available, b.overdraft), (60, 0));
}

#[test]
fn idempotent_retry_and_conflict() {
    let mut ledger = Ledger::new(LedgerConfig::default());
    let grant = Keyed {
        customer: "acme".into(),
        key: "g1".into(),
        command: Command::Grant {
            wallet: wallet(),
            grant: GrantSpec {
                amount: 10,
                category: Category::Paid,
                priority: 0,
                effective_at: Timestamp(0),
                expires_at: None,
                cost_basis_micros: 1,
            },
        },
    };
    let first = ledger.apply(T0, &grant);
    let again = ledger.apply(T0, &grant);
    assert_eq!(first, again);
    assert_eq!(ledger.wallet_balance(&wallet()).unwrap().available, 10);
    let reserve = |amount| Keyed {
        customer: "acme".into(),
        key: "r1".into(),
        command: Command::Reserve {
            wallet: wallet(),
            amount,
            timeout_ms: 1000,
            limits: vec![],
            price: None,
            request: None,
        },
    };
    // A state-dependent failure stays failed, even once credits arrive.
    let failed = ledger.apply(T0, &reserve(20));
    assert!(matches!(
        failed,
        Err(LedgerError::InsufficientCredits { .. })
    ));
    let mut more = grant.clone();
    more.key = "g2".into();
    ledger.apply(T0, &more).unwrap();
    assert_eq!(ledger.apply(T0, &reserve(20)), failed);
    assert_eq!(
        ledger.apply(T0, &reserve(5)),
        Err(LedgerError::IdempotencyConflict { key: "r1".into() })
    );
    // Keys are per customer.
    let other = Keyed {
        customer: "globex".into(),
        ..reserve(5)
    };
    assert!(matches!(
        ledger.apply(T0, &other),
        Err(LedgerError::InvalidArgument { .. })
    ));
    ledger.verify().unwrap();
}

#[test]
fn another_customers_hold_is_unknown() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, None);
    let hold = f.hold(10);
    let steal = Keyed {
        customer: "globex".into(),
        key: "x".into(),
        command: Command::Commit {
            hold,
            amount: 10,
            units: 0,
        },
    };
    let err = f.ledger.apply(f.now, &steal).unwrap_err();
    assert!(matches!(err, LedgerError::UnknownHold { .. }));
}

#[test]
fn promotional_expiry_returns_to_expense_and_debit_is_all_or_nothing() {
    let mut f = Fixture::new();
    f.grant(50, Category::Promotional, 0, Some(T0.0 + 100));
    f.grant(50, Category::Paid, 1, None);
    assert!(matches!(
        f.run(Command::Debit {
            wallet: wallet(),
            amount: 101
        }),
        Err(LedgerError::InsufficientCredits { .. })
    ));
    f.run(Command::Debit {
        wallet: wallet(),
        amount: 20,
    })
    .unwrap();
    f.now = Timestamp(T0.0 + 100);
    f.ledger.advance(f.now);
    let accounts = f.ledger.wallets[0].accounts;
    let expense = f.ledger.balances(accounts.promotional_expense);
    assert_eq!((expense.debits_posted, expense.credits_posted), (50, 30));
    assert_eq!(
        f.ledger
            .balances(accounts.promotional_consumed)
            .credits_posted,
        20
    );
    assert_eq!(f.balance().available, 50);
    f.ledger.verify().unwrap();
}

#[test]
fn tampering_is_detected() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, None);
    f.hold(10);
    let mut tampered = f.ledger.clone();
    tampered.journal[0].legs[0].amount = 1_000;
    assert!(matches!(
        tampered.verify(),
        Err(Violation::HashChain { entry: 1 })
    ));
    let mut tampered = f.ledger.clone();
    tampered.accounts[6].balances.credits_posted += 1;
    assert!(matches!(
        tampered.verify(),
        Err(Violation::BalanceMismatch { account: 6, .. })
    ));
}

#[test]
fn unknown_wallet_and_bad_ids() {
    let mut f = Fixture::new();
    assert!(matches!(
        f.reserve(1, 10),
        Err(LedgerError::UnknownWallet { .. })
    ));
    let long = Keyed {
        customer: "acme".into(),
        key: "k".repeat(129),
        command: Command::Release { hold: HoldId(1) },
    };
    assert!(matches!(
        f.ledger.apply(f.now, &long),
        Err(LedgerError::InvalidArgument { ref field, .. }) if field == "idempotency_key"
    ));
    assert!(matches!(
        f.reserve(1, 0),
        Err(LedgerError::InvalidArgument { .. })
    ));
}

#[test]
fn keys_are_forgotten_after_the_window() {
    let mut ledger = Ledger::new(LedgerConfig {
        idempotency_window_ms: 1_000,
    });
    let open = Keyed {
        customer: "acme".into(),
        key: "o".into(),
        command: Command::OpenWallet {
            wallet: wallet(),
            overage: OveragePolicy::Deny,
        },
    };
    ledger.apply(T0, &open).unwrap();
    assert_eq!(ledger.remembered_keys(), 1);
    ledger.advance(Timestamp(T0.0 + 1_001));
    assert_eq!(ledger.remembered_keys(), 0);
}

fn limit(
    counter: &str,
    limit: Option<u64>,
    measure: Measure,
    amount: u64,
    enforce: bool,
) -> LimitCharge {
    LimitCharge {
        counter: counter.into(),
        window: crate::period::Window {
            start: Timestamp(0),
            end: Timestamp(u64::MAX),
        },
        limit,
        measure,
        amount,
        enforce,
    }
}

#[test]
fn limits_are_held_with_the_credits_all_or_nothing() {
    let mut f = Fixture::new();
    f.grant(1_000, Category::Paid, 0, None);
    let reserve = |f: &mut Fixture, units: u64, credits: u64| {
        f.run(Command::Reserve {
            wallet: wallet(),
            amount: credits,
            timeout_ms: 10_000,
            limits: vec![
                limit("tokens", Some(100), Measure::Units, units, true),
                limit("cap/agent", Some(500), Measure::Credits, credits, true),
                limit("cap/alert", Some(1), Measure::Credits, credits, false),
            ],
            price: None,
            request: None,
        })
    };
    let Ok(Outcome::Reserved { hold, .. }) = reserve(&mut f, 60, 200) else {
        panic!()
    };
    let held_limits =
        |f: &Fixture, hold: HoldId| f.ledger.holds.get(hold.0).unwrap().limits().len();
    assert_eq!(held_limits(&f, hold), 3, "an open hold carries its limits");
    // 60 units held: 41 more would pass the token limit.
    let err = reserve(&mut f, 41, 10).unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::LimitExceeded {
                index: 0,
                limit: 100,
                pending: 60,
                requested: 41,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(f.balance().pending, 200, "a refused reserve holds nothing");
    // The credit cap: 200 held + 301 > 500.
    let err = reserve(&mut f, 1, 301).unwrap_err();
    assert!(matches!(err, LedgerError::LimitExceeded { index: 1, .. }));
    f.run(Command::Commit {
        hold,
        amount: 150,
        units: 55,
    })
    .unwrap();
    let tokens = f.ledger.counter("tokens", Timestamp(0)).unwrap();
    assert_eq!((tokens.used, tokens.pending), (55, 0));
    let cap = f.ledger.counter("cap/agent", Timestamp(0)).unwrap();
    assert_eq!((cap.used, cap.pending), (150, 0));
    // Kept for the idempotency window, a resolved hold no longer keeps what it held.
    assert_eq!(
        held_limits(&f, hold),
        0,
        "a committed hold lets go of its limits"
    );
    // Alert-only counters count past their limit but never refuse.
    assert_eq!(
        f.ledger.counter("cap/alert", Timestamp(0)).unwrap().used,
        150
    );
    let Ok(Outcome::Reserved { hold, .. }) = reserve(&mut f, 45, 0) else {
        panic!()
    };
    f.run(Command::Release { hold }).unwrap();
    assert_eq!(f.ledger.counter("tokens", Timestamp(0)).unwrap().pending, 0);
    assert_eq!(
        held_limits(&f, hold),
        0,
        "a released hold lets go of its limits"
    );
    f.ledger.verify().unwrap();
}

#[test]
fn subscription_issues_included_grants_every_period() {
    let mut f = Fixture::new();
    f.run(Command::UpsertCustomer {
        display_name: "Acme".into(),
    })
    .unwrap();
    let included = IncludedGrant {
        id: "monthly".into(),
        amount: 500,
        category: Category::Promotional,
        priority: 0,
        period: crate::period::Period::Day,
        calendar: false,
        expires_after_ms: None,
    };
    let out = f
        .run(Command::Subscribe {
            plan: "pro".into(),
            since: f.now,
            overage: OveragePolicy::Deny,
            included: vec![included],
            request: None,
        })
        .unwrap();
    assert!(matches!(
        out,
        Outcome::Subscribed {
            grants_issued: 1,
            ..
        }
    ));
    f.run(Command::Debit {
        wallet: wallet(),
        amount: 100,
    })
    .unwrap();
    assert_eq!(f.balance().available, 400);
    // A day later the rest expires and a fresh grant arrives.
    f.now = Timestamp(f.now.0 + 24 * 3_600_000);
    f.ledger.advance(f.now);
    f.ledger.verify().unwrap();
    let b = f.balance();
    assert_eq!((b.available, b.grants.len()), (500, 2));
    assert!(b.grants[0].expired);
    assert_eq!(
        f.ledger
            .customer("acme")
            .unwrap()
            .subscription
            .as_ref()
            .unwrap()
            .plan,
        "pro"
    );
    let unknown = Keyed {
        customer: "nobody".into(),
        key: "s".into(),
        command: Command::Subscribe {
            plan: "pro".into(),
            since: f.now,
            overage: OveragePolicy::Deny,
            included: vec![],
            request: None,
        },
    };
    assert!(matches!(
        f.ledger.apply(f.now, &unknown),
        Err(LedgerError::UnknownCustomer { .. })
    ));
}

#[test]
fn usage_is_deduplicated_charged_and_counted() {
    let mut f = Fixture::new();
    f.grant(100, Category::Paid, 0, None);
    let event = |id: &str, credits| UsageCharge {
        event_id: id.into(),
        credits,
        counters: vec![limit("tokens", None, Measure::Units, 10, false)],
    };
    let out = f.run(Command::RecordUsage {
        wallet: wallet(),
        events: vec![event("e1", 30), event("e2", 30), event("e1", 30)],
    });
    assert!(
        matches!(
            out,
            Ok(Outcome::UsageRecorded {
                accepted: 2,
                duplicates: 1,
                credits_posted: 60,
                unbilled: 0,
                ..
            })
        ),
        "{out:?}"
    );
    let out = f.run(Command::RecordUsage {
        wallet: wallet(),
        events: vec![event("e2", 30), event("e3", 70)],
    });
    assert!(
        matches!(
            out,
            Ok(Outcome::UsageRecorded {
                accepted: 1,
                duplicates: 1,
                credits_posted: 40,
                unbilled: 30,
                ..
            })
        ),
        "{out:?}"
    );
    assert_eq!(f.ledger.counter("tokens", Timestamp(0)).unwrap().used, 30);
    assert_eq!(f.balance().available, 0);
}

/// A kept answer encodes as it did when it held its key and answer decoded, and reads back
/// the same key and answer, for every kind of answer.
#[test]
fn answers_encode_in_the_old_layout_and_read_back_as_given() {
    use serde::Serialize;
    #[derive(Serialize)]
    struct OldRecord {
        fingerprint: Fingerprint,
        result: CommandResult,
    }
    #[derive(Serialize)]
    struct OldEntry {
        at: Timestamp,
        customer: String,
        key: String,
        record: OldRecord,
    }
    let results: Vec<CommandResult> = vec![
        Ok(Outcome::Reserved {
            hold: HoldId(12_345),
            entry: EntryId(678_901),
            expires_at: Timestamp(1_700_000_060_000),
            available_after: u64::MAX / 4,
            limits_after: smallvec::smallvec![(55, 0), (150, 200)],
        }),
        Ok(Outcome::Committed {
            entry: EntryId(9),
            posted: 700,
            released: 300,
            overage_posted: 0,
            overage_unbilled: 0,
        }),
        Err(LedgerError::LimitExceeded {
            index: 1,
            counter: "cap/agent".into(),
            limit: 500,
            used: 200,
            pending: 0,
            requested: 301,
        }),
        Err(LedgerError::invalid("amount", 0, "must be at least 1")),
        // Longer than the buffer an answer is encoded into first.
        Err(LedgerError::invalid(
            "customer",
            "x".repeat(200),
            "is too long",
        )),
    ];
    let longest = "k".repeat(MAX_ID_BYTES);
    for (i, result) in results.into_iter().enumerate() {
        let key = if i == 0 {
            longest.clone()
        } else {
            format!("key-{i}")
        };
        let old = OldEntry {
            at: Timestamp(1_000 + i as u64),
            customer: "acme".into(),
            key: key.clone(),
            record: OldRecord {
                fingerprint: [i as u8; 16],
                result: result.clone(),
            },
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let entry: crate::ledger::state::KeyEntry = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(entry.key(), key);
        assert_eq!(entry.result(), result);
        assert_eq!(entry.fingerprint, [i as u8; 16]);
        assert_eq!(
            postcard::to_allocvec(&entry).unwrap(),
            bytes,
            "the same bytes again"
        );
        // A human-readable format gets the answer decoded, not its bytes.
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            serde_json::to_value(&old).unwrap()
        );
    }
    // What an answer costs for the idempotency window, beside its one allocation.
    assert!(std::mem::size_of::<Option<crate::ledger::state::KeyEntry>>() <= 56);
}

/// A hold encodes as it did before its terms moved out of line: an open one decodes with
/// them, a resolved one (even from a snapshot that kept them) without.
#[test]
fn holds_encode_in_the_old_layout_and_only_open_ones_keep_their_terms() {
    use serde::Serialize;
    #[derive(Serialize)]
    struct OldHold {
        id: HoldId,
        wallet: u32,
        amount: u64,
        parts: Vec<(GrantId, u64)>,
        expires_at: Timestamp,
        state: HoldState,
        limits: Vec<crate::ledger::counters::HeldLimit>,
        price: Option<Price>,
    }
    let old = |state| OldHold {
        id: HoldId(7),
        wallet: 2,
        amount: 900,
        parts: vec![(GrantId(1), 400), (GrantId(3), 500)],
        expires_at: Timestamp(5_000),
        state,
        limits: vec![crate::ledger::counters::HeldLimit {
            counter: "tokens".into(),
            window_start: Timestamp(0),
            measure: Measure::Units,
            amount: 60,
        }],
        price: Some(Price {
            micro_credits: 3,
            per_units: 1_000,
        }),
    };
    let open = postcard::to_allocvec(&old(HoldState::Open)).unwrap();
    let hold: Hold = postcard::from_bytes(&open).unwrap();
    assert_eq!(hold.parts(), &[(GrantId(1), 400), (GrantId(3), 500)]);
    assert_eq!(hold.limits().len(), 1);
    assert_eq!(hold.price().map(|p| p.per_units), Some(1_000));
    assert_eq!(
        postcard::to_allocvec(&hold).unwrap(),
        open,
        "the same bytes again"
    );
    let resolved = HoldState::Resolved {
        how: HoldResolution::Committed,
        at: Timestamp(4_000),
    };
    let hold: Hold = postcard::from_bytes(&postcard::to_allocvec(&old(resolved)).unwrap()).unwrap();
    assert!(hold.terms.is_none(), "{hold:?}");
    assert_eq!(
        (hold.id, hold.amount, hold.state),
        (HoldId(7), 900, resolved)
    );
    let again: Hold = postcard::from_bytes(&postcard::to_allocvec(&hold).unwrap()).unwrap();
    assert!(again.terms.is_none() && again.state == resolved);
    // What a resolved hold costs for the idempotency window, in the hold table.
    assert!(std::mem::size_of::<Option<Hold>>() <= 56);
}

/// A decoded ledger shares each customer's name across its answers, as the ledger that
/// wrote it did; and answers as before.
#[test]
fn a_decoded_ledger_shares_its_names_and_answers_the_same() {
    use std::sync::Arc;
    let mut ledger = Ledger::new(LedgerConfig::default());
    let open = |customer: &str| Command::OpenWallet {
        wallet: WalletRef::new(customer, "credits"),
        overage: OveragePolicy::Deny,
    };
    let keyed = |customer: &str, key: String| Keyed {
        customer: customer.into(),
        key,
        command: open(customer),
    };
    for customer in ["acme", "globex"] {
        for i in 0..50 {
            let _ = ledger.apply(T0, &keyed(customer, format!("{customer}-{i}")));
        }
    }
    let bytes = postcard::to_allocvec(&ledger).unwrap();
    let mut decoded: Ledger = postcard::from_bytes(&bytes).unwrap();
    let shared = |l: &Ledger| {
        l.answers.iter().all(|answer| {
            l.keys
                .name(&answer.customer)
                .is_some_and(|name| Arc::ptr_eq(name, &answer.customer))
        })
    };
    assert!(shared(&ledger), "apply shares each customer's name");
    assert!(!shared(&decoded), "decoded, each answer has its own copy");
    decoded.share_names();
    assert!(
        shared(&decoded),
        "each customer's name is shared by its answers"
    );
    for customer in ["acme", "globex"] {
        let keys = decoded.keys.names().find(|(name, _)| *name == customer);
        assert_eq!(keys, Some((customer, 50)));
    }
    decoded.verify().unwrap();
    assert_eq!(decoded.remembered_keys(), ledger.remembered_keys());
    assert_eq!(
        postcard::to_allocvec(&decoded.answers).unwrap(),
        postcard::to_allocvec(&ledger.answers).unwrap()
    );
    // The same answers to retries, and a conflict for a key reused with another command.
    for customer in ["acme", "globex"] {
        let retry = keyed(customer, format!("{customer}-7"));
        assert_eq!(decoded.apply(T0, &retry), ledger.apply(T0, &retry));
        let other = Keyed {
            command: open("someone-else"),
            ..retry
        };
        assert!(matches!(
            decoded.apply(T0, &other),
            Err(LedgerError::IdempotencyConflict { .. })
        ));
    }
}

/// A snapshot's image encodes exactly as the ledger did when it was taken, and goes on
/// doing so while the ledger changes (a chunk the image shares is copied, not changed);
/// what it encodes reads back into a ledger whose indexes (rebuilt from their queues, not
/// copied) verify and encode the same again.
#[test]
fn an_image_encodes_as_its_ledger_did_while_the_ledger_changes() {
    let mut ledger = Ledger::new(LedgerConfig {
        idempotency_window_ms: 2_000,
    });
    let customers = ["acme", "globex", "initech"];
    let mut now = T0;
    let mut n = 0u64;
    let step = |ledger: &mut Ledger, now: Timestamp, n: &mut u64| {
        *n += 1;
        let customer = customers[(*n % 3) as usize];
        let wallet = WalletRef::new(customer, "credits");
        let command = match *n % 4 {
            0 => Command::Grant {
                wallet,
                grant: GrantSpec {
                    amount: 50,
                    category: Category::Paid,
                    priority: 0,
                    effective_at: Timestamp(0),
                    expires_at: None,
                    cost_basis_micros: 1_000,
                },
            },
            1 => Command::Reserve {
                wallet,
                amount: 3,
                // Some holds time out (and are forgotten), most are committed.
                timeout_ms: if (*n).is_multiple_of(7) { 500 } else { 60_000 },
                // A counter per customer and second: counters and their windows change
                // while the image holds them.
                limits: vec![LimitCharge {
                    counter: format!("cap/{customer}"),
                    window: crate::period::Window {
                        start: Timestamp(now.0 - now.0 % 1_000),
                        end: Timestamp(now.0 - now.0 % 1_000 + 1_000),
                    },
                    limit: None,
                    measure: Measure::Credits,
                    amount: 3,
                    enforce: false,
                }],
                price: None,
                request: None,
            },
            2 => Command::RecordUsage {
                wallet,
                events: vec![UsageCharge {
                    // Every fifth event is a duplicate of an earlier one.
                    event_id: format!("e{}", if (*n).is_multiple_of(5) { *n - 10 } else { *n }),
                    credits: 1,
                    counters: vec![],
                }],
            },
            _ => Command::Grant {
                wallet,
                grant: GrantSpec {
                    amount: 5,
                    category: Category::Promotional,
                    priority: 1,
                    effective_at: Timestamp(0),
                    expires_at: Some(Timestamp(now.0 + 1_500)),
                    cost_basis_micros: 0,
                },
            },
        };
        let _ = ledger.apply(
            now,
            &Keyed {
                customer: customer.into(),
                key: format!("k{n}"),
                command,
            },
        );
    };
    for customer in customers {
        let open = Keyed {
            customer: customer.into(),
            key: "open".into(),
            command: Command::OpenWallet {
                wallet: WalletRef::new(customer, "credits"),
                overage: OveragePolicy::Deny,
            },
        };
        ledger.apply(now, &open).unwrap();
    }
    // Two of them subscribed, one from later on: the included grants to issue are encoded
    // from the subscriptions, not copied from the ledger's queue of them.
    for (customer, since) in [("acme", Timestamp(0)), ("globex", Timestamp(T0.0 + 60_000))] {
        for (key, command) in [
            (
                "upsert",
                Command::UpsertCustomer {
                    display_name: customer.to_uppercase(),
                },
            ),
            (
                "subscribe",
                Command::Subscribe {
                    plan: "pro".into(),
                    since,
                    overage: OveragePolicy::Deny,
                    included: vec![IncludedGrant {
                        id: "hourly".into(),
                        amount: 10,
                        category: Category::Promotional,
                        priority: 2,
                        period: crate::period::Period::Hour,
                        calendar: false,
                        expires_after_ms: None,
                    }],
                    request: None,
                },
            ),
        ] {
            let keyed = Keyed {
                customer: customer.into(),
                key: key.into(),
                command,
            };
            ledger.apply(now, &keyed).unwrap();
        }
    }
    assert_eq!(ledger.grant_schedule.len(), 2);
    // `count` commands, the clock 37 ms on every 100.
    let run = |ledger: &mut Ledger, now: &mut Timestamp, n: &mut u64, count: u64| {
        for _ in 0..count {
            step(ledger, *now, n);
            if n.is_multiple_of(100) {
                *now = Timestamp(now.0 + 37);
                ledger.advance(*now);
            }
        }
    };
    // Past the window several times over: keys and events forgotten from the oldest
    // chunks, holds timed out, grants expired.
    run(&mut ledger, &mut now, &mut n, 12_000);
    ledger.verify().unwrap();
    assert!(
        ledger.remembered_keys() > 4096,
        "more than a chunk of answers"
    );

    let image = ledger.image();
    let then = now;
    let encoded = postcard::to_allocvec(&ledger).unwrap();
    let balances = |ledger: &Ledger| {
        customers.map(|c| {
            ledger
                .wallet_balance(&WalletRef::new(c, "credits"))
                .unwrap()
        })
    };
    let (head, keys, balances_then) = (
        ledger.chain_head(),
        ledger.remembered_keys(),
        balances(&ledger),
    );
    // (Compared whole, not printed: megabytes.)
    assert!(postcard::to_allocvec(&image).unwrap() == encoded);
    run(&mut ledger, &mut now, &mut n, 6_000);
    ledger.verify().unwrap();
    assert_ne!(ledger.chain_head(), head);
    assert!(
        postcard::to_allocvec(&image).unwrap() == encoded,
        "the image changed with its ledger"
    );

    // (Not compared byte for byte with `encoded`: a decoded ledger's hash maps iterate in
    // an order of their own.)
    let mut decoded: Ledger = postcard::from_bytes(&encoded).unwrap();
    decoded.share_names();
    decoded.verify().unwrap();
    assert_eq!(decoded.chain_head(), head);
    assert_eq!(decoded.remembered_keys(), keys);
    assert_eq!(balances(&decoded), balances_then);
    // The ledger decoded answers a retry as the ledger did before it changed.
    let retry = Keyed {
        customer: customers[0].into(),
        key: format!("k{}", 12_000 - 3),
        command: Command::Grant {
            wallet: WalletRef::new(customers[0], "credits"),
            grant: GrantSpec {
                amount: 1,
                category: Category::Paid,
                priority: 0,
                effective_at: Timestamp(0),
                expires_at: None,
                cost_basis_micros: 0,
            },
        },
    };
    assert!(matches!(
        decoded.apply(then, &retry),
        Err(LedgerError::IdempotencyConflict { .. })
    ));
}

/// A ledger that takes its chunks from spares and gives them back is, byte for byte, the
/// ledger that allocates them: the pools change where memory comes from, nothing else.
#[test]
fn a_ledger_on_spare_chunks_is_the_ledger_without_them() {
    let spares = Spares::new();
    spares.fill(|| true);
    let full = spares.ready();
    let config = LedgerConfig {
        idempotency_window_ms: 60_000,
    };
    let mut pooled = Ledger::new(config);
    pooled.use_spares(&spares);
    let mut plain = Ledger::new(config);
    let mut both = |now: u64, key: String, command: Command| {
        let request = Keyed {
            customer: "acme".into(),
            key,
            command,
        };
        let (a, b) = (
            pooled.apply(Timestamp(now), &request),
            plain.apply(Timestamp(now), &request),
        );
        assert_eq!(a, b);
        a
    };
    let spec = GrantSpec {
        amount: u64::MAX / 2,
        category: Category::Paid,
        priority: 0,
        effective_at: Timestamp(0),
        expires_at: None,
        cost_basis_micros: 1000,
    };
    both(
        1,
        "grant".into(),
        Command::Grant {
            wallet: wallet(),
            grant: spec,
        },
    )
    .unwrap();
    // Past two and a half chunks of holds and five of answers and journal entries.
    let pairs = 10_000u64;
    for n in 0..pairs {
        let reserve = Command::Reserve {
            wallet: wallet(),
            amount: 100,
            timeout_ms: 60_000,
            limits: vec![],
            price: None,
            request: None,
        };
        let Ok(Outcome::Reserved { hold, .. }) = both(2 + n, format!("r{n}"), reserve) else {
            panic!("reserve {n} refused");
        };
        let commit = Command::Commit {
            hold,
            amount: 60,
            units: 0,
        };
        both(2 + n, format!("c{n}"), commit).unwrap();
    }
    let used = spares.ready();
    assert!(
        used.0 < full.0 && used.1 < full.1 && used.2 < full.2,
        "{used:?} of {full:?}"
    );
    // Past the window: every answer and resolved hold is forgotten, their chunks freed.
    let later = 2 + pairs + 120_000;
    let release = Command::Release { hold: HoldId(1) };
    let _ = both(later, "late".into(), release);
    let freed = spares.ready();
    assert!(
        freed.1 > used.1 && freed.2 > used.2,
        "{freed:?} after {used:?}"
    );
    assert_eq!(pooled.chain_head(), plain.chain_head());
    assert_eq!(
        postcard::to_allocvec(&pooled).unwrap(),
        postcard::to_allocvec(&plain).unwrap()
    );
    pooled.verify().unwrap();
}
