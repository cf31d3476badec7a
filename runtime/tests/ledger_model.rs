#![allow(clippy::unwrap_used)]
//! Property tests: random command sequences against a simple reference model.
//!
//! After every step: the ledger verifies (every entry balances, global debits equal
//! credits, the journal replays to the stored balances, the hash chain holds, no grant is
//! overdrawn), grant remainders add up to available + pending + upcoming, and the model
//! and the ledger agree on the answer and on the balances. After every case: the same
//! commands replayed into a fresh ledger, and a snapshot round trip, give the same state.

use std::collections::HashMap;

use proptest::prelude::*;
use tollgate_runtime::ledger::{
    Category, Command, GrantSpec, HoldId, HoldResolution, Keyed, Ledger, LedgerConfig, LedgerError,
    MAX_HOLD_TIMEOUT_MS, Outcome, OveragePolicy, Timestamp, WalletRef,
};

const CUSTOMERS: [&str; 2] = ["c0", "c1"];

fn wallet(customer: &str) -> WalletRef {
    WalletRef::new(customer, "credits")
}

// ---------------------------------------------------------------- the reference model

#[derive(Debug, Clone)]
struct MGrant {
    id: u64,
    amount: u64,
    category: Category,
    priority: u32,
    effective_at: u64,
    expires_at: Option<u64>,
    consumed: u64,
    held: u64,
    expired: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MState {
    Open,
    Done(HoldResolution),
}

#[derive(Debug, Clone)]
struct MHold {
    customer: usize,
    amount: u64,
    parts: Vec<(usize, u64)>,
    expires_at: u64,
    state: MState,
}

#[derive(Debug, Clone, Default)]
struct MWallet {
    grants: Vec<usize>,
    policy: OveragePolicy,
    overdraft: u64,
    /// Every credit that ever entered the wallet: grants and overdraft drawn.
    issued: u64,
}

/// What the model predicts for an answer (entry ids are the ledger's business).
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Opened,
    Granted {
        grant: u64,
        repaid: u64,
    },
    Reserved {
        hold: u64,
        expires_at: u64,
        available_after: u64,
    },
    Committed {
        posted: u64,
        released: u64,
        overage_posted: u64,
        overage_unbilled: u64,
    },
    Released {
        released: u64,
    },
    Debited {
        available_after: u64,
    },
    Error(LedgerError),
}

fn answer(result: &Result<Outcome, LedgerError>) -> Answer {
    match result {
        Ok(Outcome::WalletOpened) => Answer::Opened,
        Ok(Outcome::Granted {
            grant,
            repaid_overdraft,
            ..
        }) => Answer::Granted {
            grant: grant.0,
            repaid: *repaid_overdraft,
        },
        Ok(Outcome::Reserved {
            hold,
            expires_at,
            available_after,
            ..
        }) => Answer::Reserved {
            hold: hold.0,
            expires_at: expires_at.0,
            available_after: *available_after,
        },
        Ok(Outcome::Committed {
            posted,
            released,
            overage_posted,
            overage_unbilled,
            ..
        }) => Answer::Committed {
            posted: *posted,
            released: *released,
            overage_posted: *overage_posted,
            overage_unbilled: *overage_unbilled,
        },
        Ok(Outcome::Released { released, .. }) => Answer::Released {
            released: *released,
        },
        Ok(Outcome::Debited {
            available_after, ..
        }) => Answer::Debited {
            available_after: *available_after,
        },
        Ok(other) => panic!("the model does not generate {other:?}"),
        Err(e) => Answer::Error(e.clone()),
    }
}

#[derive(Default)]
struct Model {
    time: u64,
    grants: Vec<MGrant>,
    holds: Vec<MHold>,
    wallets: HashMap<usize, MWallet>,
    keys: HashMap<(usize, String), (Command, Answer)>,
}

impl Model {
    fn order(&self, g: usize) -> (u32, u64, Category, u64) {
        let g = &self.grants[g];
        (
            g.priority,
            g.expires_at.unwrap_or(u64::MAX),
            g.category,
            g.id,
        )
    }

    fn free(&self, g: usize) -> u64 {
        let g = &self.grants[g];
        g.amount - g.consumed - g.held
    }

    fn usable(&self, customer: usize) -> Vec<usize> {
        let mut gs: Vec<usize> = self.wallets[&customer]
            .grants
            .iter()
            .copied()
            .filter(|&g| !self.grants[g].expired && self.grants[g].effective_at <= self.time)
            .collect();
        gs.sort_by_key(|&g| self.order(g));
        gs
    }

    fn available(&self, customer: usize) -> u64 {
        self.usable(customer).iter().map(|&g| self.free(g)).sum()
    }

    fn split(&self, customer: usize, amount: u64) -> Vec<(usize, u64)> {
        let mut rest = amount;
        let mut parts = Vec::new();
        for g in self.usable(customer) {
            let take = self.free(g).min(rest);
            if take > 0 {
                parts.push((g, take));
                rest -= take;
            }
        }
        parts
    }

    fn advance(&mut self, now: u64) {
        let now = now.max(self.time);
        loop {
            let hold = (0..self.holds.len())
                .filter(|&h| self.holds[h].state == MState::Open && self.holds[h].expires_at <= now)
                .min_by_key(|&h| (self.holds[h].expires_at, h));
            let grant = (0..self.grants.len())
                .filter(|&g| {
                    !self.grants[g].expired && self.grants[g].expires_at.is_some_and(|t| t <= now)
                })
                .min_by_key(|&g| (self.grants[g].expires_at, g));
            match (hold, grant) {
                (Some(h), Some(g))
                    if self.holds[h].expires_at <= self.grants[g].expires_at.unwrap_or(0) =>
                {
                    self.resolve(h, 0, HoldResolution::TimedOut)
                }
                (Some(h), None) => self.resolve(h, 0, HoldResolution::TimedOut),
                (_, Some(g)) => self.grants[g].expired = true,
                (None, None) => break,
            }
        }
        self.time = now;
    }

    fn resolve(&mut self, h: usize, posted: u64, how: HoldResolution) {
        let mut rest = posted;
        for (g, held) in self.holds[h].parts.clone() {
            let p = held.min(rest);
            rest -= p;
            self.grants[g].held -= held;
            self.grants[g].consumed += p;
            if self.grants[g].expired {
                // Released credits of an expired grant expire with it.
                self.grants[g].consumed += held - p;
            }
        }
        self.holds[h].state = MState::Done(how);
    }

    /// Charges up to `amount` now: grants, then the overdraft. Returns (parts, overdraft).
    fn charge(&self, customer: usize, amount: u64) -> (Vec<(usize, u64)>, u64) {
        let parts = self.split(customer, amount);
        let from_grants: u64 = parts.iter().map(|p| p.1).sum();
        let w = &self.wallets[&customer];
        let od = match w.policy {
            OveragePolicy::AllowOverdraft { floor } => (amount - from_grants)
                .min(floor.saturating_sub(w.overdraft))
                .min(u64::MAX - w.issued),
            OveragePolicy::Deny => 0,
        };
        (parts, od)
    }

    fn apply_charge(&mut self, customer: usize, parts: &[(usize, u64)], od: u64) {
        for &(g, a) in parts {
            self.grants[g].consumed += a;
        }
        let w = self.wallets.get_mut(&customer).unwrap();
        w.overdraft += od;
        w.issued += od;
    }

    fn hold_of(&self, customer: usize, hold: HoldId) -> Result<usize, LedgerError> {
        let h = (hold.0 as usize)
            .checked_sub(1)
            .filter(|&h| h < self.holds.len() && self.holds[h].customer == customer);
        let Some(h) = h else {
            return Err(LedgerError::UnknownHold {
                customer: CUSTOMERS[customer].into(),
                hold,
            });
        };
        match self.holds[h].state {
            MState::Open => Ok(h),
            MState::Done(HoldResolution::TimedOut) => Err(LedgerError::HoldTimedOut {
                hold,
                expired_at: Timestamp(self.holds[h].expires_at),
            }),
            MState::Done(how) => Err(LedgerError::HoldResolved {
                hold,
                resolution: how,
            }),
        }
    }

    fn apply(&mut self, now: u64, customer: usize, key: &str, command: &Command) -> Answer {
        self.advance(now);
        if let Some((stored, answer)) = self.keys.get(&(customer, key.to_string())) {
            if stored == command {
                return answer.clone();
            }
            return Answer::Error(LedgerError::IdempotencyConflict { key: key.into() });
        }
        let result = self.execute(customer, command);
        self.keys.insert(
            (customer, key.to_string()),
            (command.clone(), result.clone()),
        );
        result
    }

    fn execute(&mut self, c: usize, command: &Command) -> Answer {
        let err = Answer::Error;
        let invalid = |field: &str, value: String, reason: &str| {
            Answer::Error(LedgerError::InvalidArgument {
                field: field.into(),
                value,
                reason: reason.into(),
            })
        };
        match command {
            Command::UpsertCustomer { .. }
            | Command::Subscribe { .. }
            | Command::SubscribeChange { .. }
            | Command::RecordUsage { .. } => {
                unreachable!("the model does not generate {command:?}")
            }
            Command::OpenWallet { overage, .. } => {
                self.wallets.entry(c).or_default().policy = *overage;
                Answer::Opened
            }
            Command::Grant { grant, .. } => {
                if grant.amount == 0 {
                    return invalid("grant.amount", "0".into(), "must be at least 1");
                }
                if let Some(exp) = grant.expires_at {
                    if exp <= grant.effective_at {
                        return invalid(
                            "grant.expires_at",
                            exp.0.to_string(),
                            "must be after effective_at",
                        );
                    }
                    if exp.0 <= self.time {
                        return invalid(
                            "grant.expires_at",
                            exp.0.to_string(),
                            "must be after the current ledger time",
                        );
                    }
                }
                if grant.category == Category::Promotional && grant.cost_basis_micros != 0 {
                    return invalid(
                        "grant.cost_basis_micros",
                        grant.cost_basis_micros.to_string(),
                        "must be 0 for a promotional grant",
                    );
                }
                let w = self.wallets.entry(c).or_default();
                let Some(total) = w.issued.checked_add(grant.amount) else {
                    return err(LedgerError::Overflow {
                        what: "credits issued to the wallet".into(),
                    });
                };
                w.issued = total;
                let repaid = if grant.effective_at.0 <= self.time {
                    w.overdraft.min(grant.amount)
                } else {
                    0
                };
                w.overdraft -= repaid;
                let id = self.grants.len() as u64 + 1;
                w.grants.push(self.grants.len());
                self.grants.push(MGrant {
                    id,
                    amount: grant.amount,
                    category: grant.category,
                    priority: grant.priority,
                    effective_at: grant.effective_at.0,
                    expires_at: grant.expires_at.map(|t| t.0),
                    consumed: repaid,
                    held: 0,
                    expired: false,
                });
                Answer::Granted { grant: id, repaid }
            }
            Command::Reserve {
                wallet,
                amount,
                timeout_ms,
                ..
            } => {
                if *amount == 0 {
                    return invalid("amount", "0".into(), "must be at least 1");
                }
                if *timeout_ms == 0 || *timeout_ms > MAX_HOLD_TIMEOUT_MS {
                    return invalid(
                        "timeout_ms",
                        timeout_ms.to_string(),
                        "must be between 1 and 86400000 (24 h)",
                    );
                }
                if !self.wallets.contains_key(&c) {
                    return err(LedgerError::UnknownWallet {
                        wallet: wallet.clone(),
                    });
                }
                let parts = self.split(c, *amount);
                let taken: u64 = parts.iter().map(|p| p.1).sum();
                if taken < *amount {
                    return err(LedgerError::InsufficientCredits {
                        wallet: wallet.clone(),
                        needed: *amount,
                        available: taken,
                    });
                }
                for &(g, a) in &parts {
                    self.grants[g].held += a;
                }
                let expires_at = self.time + timeout_ms;
                self.holds.push(MHold {
                    customer: c,
                    amount: *amount,
                    parts,
                    expires_at,
                    state: MState::Open,
                });
                Answer::Reserved {
                    hold: self.holds.len() as u64,
                    expires_at,
                    available_after: self.available(c),
                }
            }
            Command::Commit { hold, amount, .. } => {
                let h = match self.hold_of(c, *hold) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                let held = self.holds[h].amount;
                let posted = (*amount).min(held);
                self.resolve(h, posted, HoldResolution::Committed);
                let overage = amount - posted;
                let (parts, od) = self.charge(c, overage);
                self.apply_charge(c, &parts, od);
                let charged = parts.iter().map(|p| p.1).sum::<u64>() + od;
                Answer::Committed {
                    posted,
                    released: held - posted,
                    overage_posted: charged,
                    overage_unbilled: overage - charged,
                }
            }
            Command::Release { hold } => {
                let h = match self.hold_of(c, *hold) {
                    Ok(h) => h,
                    Err(e) => return err(e),
                };
                self.resolve(h, 0, HoldResolution::Released);
                Answer::Released {
                    released: self.holds[h].amount,
                }
            }
            Command::Debit { wallet, amount } => {
                if *amount == 0 {
                    return invalid("amount", "0".into(), "must be at least 1");
                }
                if !self.wallets.contains_key(&c) {
                    return err(LedgerError::UnknownWallet {
                        wallet: wallet.clone(),
                    });
                }
                let (parts, od) = self.charge(c, *amount);
                let charged = parts.iter().map(|p| p.1).sum::<u64>() + od;
                if charged < *amount {
                    return err(LedgerError::InsufficientCredits {
                        wallet: wallet.clone(),
                        needed: *amount,
                        available: charged,
                    });
                }
                self.apply_charge(c, &parts, od);
                Answer::Debited {
                    available_after: self.available(c),
                }
            }
        }
    }
}

// ---------------------------------------------------------------- generated steps

#[derive(Debug, Clone)]
enum Step {
    Fresh {
        customer: usize,
        dt: u64,
        op: Op,
    },
    /// Re-send an earlier request exactly.
    Retry {
        pick: usize,
        dt: u64,
    },
    /// Re-use an earlier key with a different request.
    Conflict {
        pick: usize,
        dt: u64,
        op: Op,
    },
}

#[derive(Debug, Clone)]
enum Op {
    Open(OveragePolicy),
    Grant {
        amount: u64,
        promo: bool,
        priority: u32,
        effective: i64,
        expires: Option<u64>,
    },
    Reserve {
        amount: u64,
        timeout_ms: u64,
    },
    Commit {
        hold: u64,
        amount: u64,
    },
    Release {
        hold: u64,
    },
    Debit {
        amount: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let amount =
        prop_oneof![8 => 1u64..500, 1 => Just(0u64), 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1)];
    prop_oneof![
        1 => prop_oneof![Just(OveragePolicy::Deny), (0u64..300).prop_map(|floor| OveragePolicy::AllowOverdraft { floor })]
            .prop_map(Op::Open),
        4 => (amount.clone(), any::<bool>(), 0u32..3, -1_000i64..1_500, proptest::option::of(1u64..6_000))
            .prop_map(|(amount, promo, priority, effective, expires)| Op::Grant { amount, promo, priority, effective, expires }),
        6 => (0u64..700, prop_oneof![9 => 1u64..3_000, 1 => Just(0u64)]).prop_map(|(amount, timeout_ms)| Op::Reserve { amount, timeout_ms }),
        4 => (1u64..30, 0u64..900).prop_map(|(hold, amount)| Op::Commit { hold, amount }),
        2 => (1u64..30).prop_map(|hold| Op::Release { hold }),
        2 => amount.prop_map(|amount| Op::Debit { amount }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let dt = prop_oneof![3 => Just(0u64), 6 => 1u64..400, 1 => 1_000u64..4_000];
    prop_oneof![
        8 => (0..CUSTOMERS.len(), dt.clone(), op()).prop_map(|(customer, dt, op)| Step::Fresh { customer, dt, op }),
        1 => (any::<usize>(), dt.clone()).prop_map(|(pick, dt)| Step::Retry { pick, dt }),
        1 => (any::<usize>(), dt, op()).prop_map(|(pick, dt, op)| Step::Conflict { pick, dt, op }),
    ]
}

fn command(customer: usize, now: u64, op: &Op) -> Command {
    let wallet = wallet(CUSTOMERS[customer]);
    match op {
        Op::Open(policy) => Command::OpenWallet {
            wallet,
            overage: *policy,
        },
        Op::Grant {
            amount,
            promo,
            priority,
            effective,
            expires,
        } => {
            let effective_at = Timestamp(now.saturating_add_signed(*effective));
            Command::Grant {
                wallet,
                grant: GrantSpec {
                    amount: *amount,
                    category: if *promo {
                        Category::Promotional
                    } else {
                        Category::Paid
                    },
                    priority: *priority,
                    effective_at,
                    expires_at: expires.map(|e| Timestamp(effective_at.0 + e)),
                    cost_basis_micros: if *promo { 0 } else { 10 },
                },
            }
        }
        Op::Reserve { amount, timeout_ms } => Command::Reserve {
            wallet,
            amount: *amount,
            timeout_ms: *timeout_ms,
            limits: vec![],
            price: None,
            request: None,
        },
        Op::Commit { hold, amount } => Command::Commit {
            hold: HoldId(*hold),
            amount: *amount,
            units: 0,
        },
        Op::Release { hold } => Command::Release {
            hold: HoldId(*hold),
        },
        Op::Debit { amount } => Command::Debit {
            wallet,
            amount: *amount,
        },
    }
}

// ---------------------------------------------------------------- the property

fn check_step(ledger: &Ledger, model: &Model) -> Result<(), TestCaseError> {
    let report = ledger.verify();
    prop_assert!(report.is_ok(), "verify failed: {report:?}");
    for (c, name) in CUSTOMERS.iter().enumerate() {
        let Some(balance) = ledger.wallet_balance(&wallet(name)) else {
            prop_assert!(!model.wallets.contains_key(&c));
            continue;
        };
        prop_assert_eq!(
            ledger.wallet_totals(&wallet(name)),
            Some((balance.available, balance.pending))
        );
        let remainders: u128 = balance
            .grants
            .iter()
            .map(|g| u128::from(g.granted - g.used))
            .sum();
        prop_assert_eq!(
            remainders,
            u128::from(balance.available)
                + u128::from(balance.pending)
                + u128::from(balance.upcoming)
        );
        for g in &balance.grants {
            prop_assert!(
                u128::from(g.used) + u128::from(g.pending) <= u128::from(g.granted),
                "grant overdrawn {:?}",
                g
            );
        }
        prop_assert_eq!(
            balance.available,
            model.available(c),
            "available of {}",
            name
        );
        let pending: u64 = model.wallets[&c]
            .grants
            .iter()
            .map(|&g| model.grants[g].held)
            .sum();
        prop_assert_eq!(balance.pending, pending, "pending of {}", name);
        prop_assert_eq!(
            balance.overdraft,
            model.wallets[&c].overdraft,
            "overdraft of {}",
            name
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ledger_agrees_with_the_model(steps in proptest::collection::vec(step(), 1..120)) {
        let config = LedgerConfig::default();
        let mut ledger = Ledger::new(config);
        let mut model = Model::default();
        let mut now = 1_000_000u64;
        let mut sent: Vec<(u64, Keyed, usize)> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let (dt, customer, request) = match step {
                Step::Fresh { customer, dt, op } => {
                    let cmd = command(*customer, now + dt, op);
                    (*dt, *customer, Keyed { customer: CUSTOMERS[*customer].into(), key: format!("k{i}"), command: cmd })
                }
                Step::Retry { pick, dt } if !sent.is_empty() => {
                    let (_, request, customer) = sent[pick % sent.len()].clone();
                    (*dt, customer, request)
                }
                Step::Conflict { pick, dt, op } if !sent.is_empty() => {
                    let (_, mut request, customer) = sent[pick % sent.len()].clone();
                    request.command = command(customer, now + dt, op);
                    (*dt, customer, request)
                }
                _ => continue,
            };
            now += dt;
            let got = ledger.apply(Timestamp(now), &request);
            let want = model.apply(now, customer, &request.key, &request.command);
            prop_assert_eq!(answer(&got), want, "step {}: {:?}", i, request);
            sent.push((now, request, customer));
            check_step(&ledger, &model)?;
        }

        // Determinism: the same requests at the same times rebuild the same ledger.
        let mut replay = Ledger::new(config);
        for (at, request, _) in &sent {
            let _ = replay.apply(Timestamp(*at), request);
        }
        prop_assert_eq!(replay.chain_head(), ledger.chain_head());
        prop_assert_eq!(replay.journal(), ledger.journal());
        // A snapshot round trip keeps everything.
        let bytes = postcard::to_allocvec(&ledger).unwrap();
        let restored: Ledger = postcard::from_bytes(&bytes).unwrap();
        prop_assert!(restored.verify().is_ok());
        prop_assert_eq!(restored.chain_head(), ledger.chain_head());
        for name in CUSTOMERS {
            prop_assert_eq!(restored.wallet_balance(&wallet(name)), ledger.wallet_balance(&wallet(name)));
        }
    }
}
