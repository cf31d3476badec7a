//! `Ledger::verify`: recompute everything from the journal and check every invariant.

use std::collections::{BTreeMap, BTreeSet};

use super::account::{AccountKind, Balances};
use super::entry::{Entry, GENESIS_HASH};
use super::posting::{apply_leg_credit, apply_leg_debit};
use super::state::{HoldState, Ledger};

/// The first thing found wrong, precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("entry #{index}: expected id {expected}, found {found}")]
    EntryId {
        index: usize,
        expected: u64,
        found: u64,
    },
    #[error("entry {entry}: time {time} is before the previous entry's {previous}")]
    TimeOrder {
        entry: u64,
        time: u64,
        previous: u64,
    },
    #[error("entry {entry}: hash does not match its contents and predecessor (chain broken)")]
    HashChain { entry: u64 },
    #[error("chain head does not match the last entry's hash")]
    ChainHead,
    #[error("entry {entry} leg {leg}: {what}")]
    Leg {
        entry: u64,
        leg: usize,
        what: String,
    },
    #[error("entry {entry}: grant account {account} overdrawn: {balances:?}")]
    Overdrawn {
        entry: u64,
        account: u32,
        balances: Balances,
    },
    #[error("account {account}: stored {stored:?} but the journal gives {recomputed:?}")]
    BalanceMismatch {
        account: u32,
        stored: Balances,
        recomputed: Balances,
    },
    #[error("total {what}: debits {debits} != credits {credits}")]
    Unbalanced {
        what: &'static str,
        debits: u128,
        credits: u128,
    },
    #[error("grant {grant}: {what}")]
    Grant { grant: u64, what: String },
    #[error("hold {hold}: {what}")]
    Hold { hold: u64, what: String },
    #[error("wallet {wallet}: {what}")]
    Wallet { wallet: String, what: String },
    #[error("subscribers per plan: {what}")]
    PlanSubscribers { what: String },
    #[error("journal archive: {what}")]
    Archive { what: String },
    #[error("index: {what}")]
    Index { what: String },
}

/// What `verify` checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub accounts: u64,
    pub open_holds: u64,
    pub debits_posted: u128,
}

impl Ledger {
    /// Recomputes every balance from the journal, checks the hash chain and every
    /// invariant, and reports the first violation. For a ledger whose journal is partly
    /// archived, see `verify_with_archive`: this one reports the archived entries missing.
    pub fn verify(&self) -> Result<VerifyReport, Violation> {
        self.verify_with_archive(&mut std::iter::empty())
    }

    /// As `verify`, reading the entries archived out of memory (ids `1..=archived`, in
    /// order) from `archived`, as the store's journal archive gives them (an `Err` says why
    /// an entry could not be read). Only those are read.
    pub fn verify_with_archive(
        &self,
        archived: &mut dyn Iterator<Item = Result<Entry, String>>,
    ) -> Result<VerifyReport, Violation> {
        let mut replay = Replay {
            ledger: self,
            recomputed: vec![Balances::default(); self.accounts.len()],
            prev_hash: GENESIS_HASH,
            prev_time: 0,
            index: 0,
        };
        let expected = self.journal.archived();
        for entry in (&mut *archived).take(usize::try_from(expected).unwrap_or(usize::MAX)) {
            let entry = entry.map_err(|what| Violation::Archive { what })?;
            replay.entry(&entry)?;
        }
        // (The archive may hold more: entries archived and not yet forgotten, in memory
        // too. Those are checked as the journal in memory has them.)
        if replay.index as u64 != expected {
            return Err(Violation::Archive {
                what: format!(
                    "the journal's first {expected} entries are archived, the archive gave {}",
                    replay.index
                ),
            });
        }
        for entry in self.journal.iter() {
            replay.entry(entry)?;
        }
        let Replay {
            recomputed,
            prev_hash,
            ..
        } = replay;
        if prev_hash != self.last_hash {
            return Err(Violation::ChainHead);
        }
        let mut totals = [0u128; 4];
        for (account, stored) in self.accounts.iter().zip(&recomputed) {
            if account.balances != *stored {
                return Err(Violation::BalanceMismatch {
                    account: account.id.0,
                    stored: account.balances,
                    recomputed: *stored,
                });
            }
            totals[0] += u128::from(stored.debits_posted);
            totals[1] += u128::from(stored.credits_posted);
            totals[2] += u128::from(stored.debits_pending);
            totals[3] += u128::from(stored.credits_pending);
        }
        if totals[0] != totals[1] {
            return Err(Violation::Unbalanced {
                what: "posted",
                debits: totals[0],
                credits: totals[1],
            });
        }
        if totals[2] != totals[3] {
            return Err(Violation::Unbalanced {
                what: "pending",
                debits: totals[2],
                credits: totals[3],
            });
        }
        let open_holds = self.verify_holds()?;
        self.verify_grants()?;
        self.verify_plan_subscribers()?;
        self.verify_indexes()?;
        Ok(VerifyReport {
            entries: self.journal.len() as u64,
            accounts: self.accounts.len() as u64,
            open_holds,
            debits_posted: totals[0],
        })
    }

    /// The idempotency key index holds exactly the kept answers, each under its own number,
    /// the seen usage event ids exactly those queued to be forgotten, the wallet index each
    /// wallet at its position, and the queues of grant expiries and included grants exactly
    /// what the grants and subscriptions give: the snapshot encodes each from what it
    /// indexes (`image.rs`).
    fn verify_indexes(&self) -> Result<(), Violation> {
        let index = |what: String| Violation::Index { what };
        let mut answers = 0usize;
        let mut names: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for (number, answer) in self.answers.iter_numbered() {
            // The first answer the index finds for this customer and key is this one.
            let hash = super::keys::hash_key(&answer.customer, answer.key());
            let indexed = self.answer_number(hash, &answer.customer, answer.key());
            if indexed != Some(number) {
                return Err(index(format!(
                    "answer {number} (customer {:?}, key {:?}) is indexed as {indexed:?}",
                    answer.customer,
                    answer.key()
                )));
            }
            *names.entry(&answer.customer).or_default() += 1;
            answers += 1;
        }
        if self.keys.len() != answers {
            return Err(index(format!(
                "{} idempotency keys indexed for {answers} answers kept",
                self.keys.len()
            )));
        }
        let counted = self.keys.names().count() == names.len()
            && self
                .keys
                .names()
                .all(|(name, count)| names.get(name) == Some(&count));
        if !counted {
            return Err(index(format!(
                "the index counts the keys of customers as {:?}, the answers as {names:?}",
                self.keys.names().collect::<Vec<_>>()
            )));
        }
        let mut queued = 0usize;
        for (_, customer, event) in self.forget_events.iter() {
            if !self
                .seen_events
                .get(customer)
                .is_some_and(|s| s.contains(event))
            {
                return Err(index(format!(
                    "usage event {event:?} of {customer:?} is to be forgotten but not seen"
                )));
            }
            queued += 1;
        }
        let seen: usize = self.seen_events.values().map(|s| s.len()).sum();
        if seen != queued {
            return Err(index(format!(
                "{seen} usage event ids seen for {queued} to be forgotten"
            )));
        }
        for (position, wallet) in self.wallets.iter().enumerate() {
            let indexed = self.wallet_index.get(&wallet.wallet_ref);
            if indexed.map(|&i| i as usize) != Some(position) {
                return Err(index(format!(
                    "wallet {} at {position} is indexed as {indexed:?}",
                    wallet.wallet_ref
                )));
            }
        }
        let expiries: BTreeSet<_> = self.expiries_due().collect();
        if expiries != self.grant_expiries {
            return Err(index(format!(
                "{} grant expiries due for {} grants that expire",
                self.grant_expiries.len(),
                expiries.len()
            )));
        }
        let issues: BTreeSet<_> = self.issues_due().collect();
        let scheduled: BTreeSet<_> = self
            .grant_schedule
            .iter()
            .map(|(at, customer, index)| (*at, customer.as_str(), *index))
            .collect();
        if issues != scheduled {
            return Err(index(format!(
                "{} included grants scheduled for {} the subscriptions give",
                scheduled.len(),
                issues.len()
            )));
        }
        if self.wallet_index.len() != self.wallets.len() {
            return Err(index(format!(
                "{} wallets indexed for {} kept",
                self.wallet_index.len(),
                self.wallets.len()
            )));
        }
        Ok(())
    }

    /// The kept count of subscribers per plan is a recount of the customers.
    fn verify_plan_subscribers(&self) -> Result<(), Violation> {
        let mut recount: BTreeMap<&str, u64> = BTreeMap::new();
        for customer in self.customers.values() {
            if let Some(subscription) = &customer.subscription {
                *recount.entry(subscription.plan.as_str()).or_insert(0) += 1;
            }
        }
        let kept: BTreeMap<&str, u64> = self
            .plan_subscribers
            .iter()
            .map(|(plan, n)| (plan.as_str(), *n))
            .collect();
        if kept != recount {
            return Err(Violation::PlanSubscribers {
                what: format!("kept {kept:?}, customers give {recount:?}"),
            });
        }
        Ok(())
    }

    /// Every open hold's parts are exactly the pending debits of its grants, and only open
    /// holds keep their terms.
    fn verify_holds(&self) -> Result<u64, Violation> {
        let mut held = vec![0u128; self.accounts.len()];
        let mut open = 0;
        for hold in self.holds.iter() {
            if (hold.state == HoldState::Open) != hold.terms.is_some() {
                return Err(Violation::Hold {
                    hold: hold.id.0,
                    what: format!("{:?} with terms {:?}", hold.state, hold.terms),
                });
            }
            if hold.state != HoldState::Open {
                continue;
            }
            open += 1;
            let sum: u128 = hold.parts().iter().map(|(_, a)| u128::from(*a)).sum();
            if sum != u128::from(hold.amount) {
                return Err(Violation::Hold {
                    hold: hold.id.0,
                    what: format!("parts sum to {sum}, amount is {}", hold.amount),
                });
            }
            if !self.hold_timeouts.contains(&(hold.expires_at, hold.id)) {
                return Err(Violation::Hold {
                    hold: hold.id.0,
                    what: "open but not in the timeout index".into(),
                });
            }
            for (g, a) in hold.parts() {
                held[self.grant_ref(*g).account.0 as usize] += u128::from(*a);
            }
        }
        let mut counter_held: std::collections::HashMap<(&str, super::types::Timestamp), u128> =
            std::collections::HashMap::new();
        for hold in self.holds.iter().filter(|h| h.state == HoldState::Open) {
            for limit in hold.limits() {
                *counter_held
                    .entry((limit.counter.as_str(), limit.window_start))
                    .or_default() += u128::from(limit.amount);
            }
        }
        for (name, windows) in self.counters.iter() {
            for (start, counter) in windows {
                let held = counter_held.get(&(name, *start)).copied().unwrap_or(0);
                if u128::from(counter.pending) != held {
                    return Err(Violation::Wallet {
                        wallet: format!("counter {name}@{}", start.0),
                        what: format!("pending {} but open holds hold {held}", counter.pending),
                    });
                }
            }
        }
        for grant in self.grants.iter() {
            let pending = u128::from(self.balances(grant.account).debits_pending);
            if pending != held[grant.account.0 as usize] {
                return Err(Violation::Grant {
                    grant: grant.id.0,
                    what: format!(
                        "pending debits {pending} but open holds hold {}",
                        held[grant.account.0 as usize]
                    ),
                });
            }
        }
        Ok(open)
    }

    /// Expired grants keep only what their open holds hold; live grants are listed in
    /// consumption order.
    fn verify_grants(&self) -> Result<(), Violation> {
        for grant in self.grants.iter() {
            let b = self.balances(grant.account);
            if grant.expired && b.remainder() != b.debits_pending {
                return Err(Violation::Grant {
                    grant: grant.id.0,
                    what: format!("expired but {} credits remain beyond its holds", b.free()),
                });
            }
            if !grant.expired && grant.spec.expires_at.is_some_and(|t| t <= self.time) {
                return Err(Violation::Grant {
                    grant: grant.id.0,
                    what: "past its expiry but not expired".into(),
                });
            }
        }
        let mut live = vec![0usize; self.wallets.len()];
        for grant in self.grants.iter().filter(|g| !g.expired) {
            live[grant.wallet as usize] += 1;
        }
        for (index, wallet) in self.wallets.iter().enumerate() {
            let keys: Vec<_> = wallet
                .live_grants
                .iter()
                .map(|g| self.grant_ref(*g).consumption_key())
                .collect();
            let listed_live = wallet
                .live_grants
                .iter()
                .all(|g| !self.grant_ref(*g).expired);
            if !keys.windows(2).all(|w| w[0] < w[1]) || keys.len() != live[index] || !listed_live {
                return Err(Violation::Wallet {
                    wallet: wallet.wallet_ref.to_string(),
                    what: "live grants are not exactly the unexpired grants in consumption order"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// The journal replayed entry by entry, archived ones first.
struct Replay<'a> {
    ledger: &'a Ledger,
    recomputed: Vec<Balances>,
    prev_hash: super::entry::EntryHash,
    prev_time: u64,
    /// Entries replayed so far.
    index: usize,
}

impl Replay<'_> {
    fn entry(&mut self, entry: &Entry) -> Result<(), Violation> {
        check_entry_header(entry, self.index, self.prev_time, &self.prev_hash)?;
        for (i, leg) in entry.legs.iter().enumerate() {
            let leg_err = |what: String| Violation::Leg {
                entry: entry.id.0,
                leg: i,
                what,
            };
            if leg.amount == 0 {
                return Err(leg_err("zero amount".into()));
            }
            if leg.debit == leg.credit {
                return Err(leg_err("debit and credit are the same account".into()));
            }
            for account in [leg.debit, leg.credit] {
                let Some(a) = self.ledger.accounts.get(account.0 as usize) else {
                    return Err(leg_err(format!("unknown account {}", account.0)));
                };
                if a.wallet != entry.wallet {
                    return Err(leg_err(format!(
                        "account {} is not the entry's wallet's",
                        account.0
                    )));
                }
            }
            apply_leg_debit(&mut self.recomputed[leg.debit.0 as usize], leg)
                .map_err(|e| leg_err(e.to_string()))?;
            apply_leg_credit(&mut self.recomputed[leg.credit.0 as usize], leg)
                .map_err(|e| leg_err(e.to_string()))?;
        }
        for leg in &entry.legs {
            for account in [leg.debit, leg.credit] {
                let b = self.recomputed[account.0 as usize];
                let is_grant = matches!(
                    self.ledger.accounts[account.0 as usize].kind,
                    AccountKind::Grant(_)
                );
                if is_grant
                    && u128::from(b.debits_posted) + u128::from(b.debits_pending)
                        > u128::from(b.credits_posted)
                {
                    return Err(Violation::Overdrawn {
                        entry: entry.id.0,
                        account: account.0,
                        balances: b,
                    });
                }
            }
        }
        self.prev_hash = entry.hash;
        self.prev_time = entry.time.0;
        self.index += 1;
        Ok(())
    }
}

fn check_entry_header(
    entry: &Entry,
    index: usize,
    prev_time: u64,
    prev_hash: &super::entry::EntryHash,
) -> Result<(), Violation> {
    let expected = index as u64 + 1;
    if entry.id.0 != expected {
        return Err(Violation::EntryId {
            index,
            expected,
            found: entry.id.0,
        });
    }
    if entry.time.0 < prev_time {
        return Err(Violation::TimeOrder {
            entry: entry.id.0,
            time: entry.time.0,
            previous: prev_time,
        });
    }
    let hash = Entry::compute_hash(
        prev_hash,
        entry.id,
        entry.time,
        entry.kind,
        entry.wallet,
        &entry.legs,
    );
    if hash != entry.hash {
        return Err(Violation::HashChain { entry: entry.id.0 });
    }
    Ok(())
}
