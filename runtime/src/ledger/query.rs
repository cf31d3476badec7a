//! Read-only views of the ledger: balances, grants, holds, the journal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::account::{Account, Balances};
use super::entry::Entry;
use super::state::{Hold, Ledger};
use super::types::{Category, EntryId, GrantId, HoldId, OveragePolicy, Timestamp, WalletRef};

/// A wallet's balance, derived from its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    pub wallet: WalletRef,
    /// Credits that can be consumed now.
    pub available: u64,
    /// Credits held by open holds.
    pub pending: u64,
    /// Credits of grants that are not effective yet.
    pub upcoming: u64,
    /// Credits consumed beyond the grants (the overdraft in use).
    pub overdraft: u64,
    pub overage: OveragePolicy,
    pub grants: Vec<GrantBalance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantBalance {
    pub grant: GrantId,
    pub category: Category,
    pub priority: u32,
    pub effective_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub granted: u64,
    /// Credits consumed from the grant (or expired, for an expired grant).
    pub used: u64,
    pub pending: u64,
    /// Credits free to consume (0 once expired or before it is effective).
    pub available: u64,
    pub expired: bool,
}

impl Ledger {
    pub fn wallet_balance(&self, wallet: &WalletRef) -> Option<WalletBalance> {
        let &index = self.wallet_index.get(wallet)?;
        let w = &self.wallets[index as usize];
        let mut balance = WalletBalance {
            wallet: wallet.clone(),
            available: 0,
            pending: 0,
            upcoming: 0,
            overdraft: self.balances(w.accounts.overdraft).debit_balance(),
            overage: w.overage,
            grants: Vec::with_capacity(w.grants.len()),
        };
        let mut available: u128 = 0;
        let mut pending: u128 = 0;
        let mut upcoming: u128 = 0;
        for &g in &w.grants {
            let grant = self.grant_ref(g);
            let b = self.balances(grant.account);
            let effective = grant.spec.effective_at <= self.time;
            let usable = if grant.expired || !effective {
                0
            } else {
                b.free()
            };
            available += u128::from(usable);
            pending += u128::from(b.debits_pending);
            if !effective && !grant.expired {
                upcoming += u128::from(b.free());
            }
            balance.grants.push(GrantBalance {
                grant: g,
                category: grant.spec.category,
                priority: grant.spec.priority,
                effective_at: grant.spec.effective_at,
                expires_at: grant.spec.expires_at,
                granted: b.credits_posted,
                used: b.debits_posted,
                pending: b.debits_pending,
                available: usable,
                expired: grant.expired,
            });
        }
        balance.available = saturate(available);
        balance.pending = saturate(pending);
        balance.upcoming = saturate(upcoming);
        Some(balance)
    }

    /// Available and pending credits of a wallet, without the per-grant breakdown (the
    /// `Check` hot path).
    pub fn wallet_totals(&self, wallet: &WalletRef) -> Option<(u64, u64)> {
        let &index = self.wallet_index.get(wallet)?;
        let pending: u128 = self.wallets[index as usize]
            .grants
            .iter()
            .map(|&g| u128::from(self.balances(self.grant_ref(g).account).debits_pending))
            .sum();
        Some((self.available(index), saturate(pending)))
    }

    /// How many customers subscribe to each plan (plans without a subscriber are absent).
    /// Kept as subscriptions change: as cheap as the number of plans.
    pub fn plan_subscribers(&self) -> BTreeMap<String, u64> {
        self.plan_subscribers.clone()
    }

    /// Journal entries of one wallet after `after` (exclusive), at most `limit`: those in
    /// memory, and the ids of those the archive holds.
    pub fn wallet_entries(
        &self,
        wallet: &WalletRef,
        after: EntryId,
        limit: usize,
    ) -> Vec<EntryRef<'_>> {
        let Some(&index) = self.wallet_index.get(wallet) else {
            return Vec::new();
        };
        let ids = &self.wallets[index as usize].entries;
        let start = ids.partition_point(|id| *id <= after);
        ids.iter_from(start)
            .take(limit)
            .map(|&id| match self.journal.get(id) {
                Some(entry) => EntryRef::InMemory(entry),
                None => EntryRef::Archived(id),
            })
            .collect()
    }

    pub fn journal(&self) -> &super::journal::Journal {
        &self.journal
    }

    /// A name for people: `grant/<id>` or the account's kind.
    pub fn account_name(&self, id: super::types::AccountId) -> String {
        match self.accounts.get(id.0 as usize).map(|a| a.kind) {
            Some(super::account::AccountKind::Grant(g)) => format!("grant/{}", g.0),
            Some(kind) => kind.name().to_string(),
            None => format!("account/{}", id.0),
        }
    }

    pub fn accounts(&self) -> &super::rows::Rows<Account> {
        &self.accounts
    }

    pub fn hold(&self, id: HoldId) -> Option<&Hold> {
        self.holds.get(id.0)
    }

    /// Holds not yet resolved, in id order.
    pub fn open_holds(&self) -> Vec<&Hold> {
        let mut open: Vec<&Hold> = self
            .holds
            .iter()
            .filter(|h| h.state == super::state::HoldState::Open)
            .collect();
        open.sort_by_key(|h| h.id);
        open
    }

    /// The command's fingerprint and the answer remembered for an idempotency key.
    pub fn key_record(
        &self,
        customer: &str,
        key: &str,
    ) -> Option<(super::state::Fingerprint, super::command::CommandResult)> {
        let number = self.answer_number(super::keys::hash_key(customer, key), customer, key)?;
        let answer = self.answers.get(number)?;
        Some((answer.fingerprint, answer.result()))
    }

    /// Number of idempotency keys currently remembered.
    pub fn remembered_keys(&self) -> usize {
        self.answers.len()
    }

    /// What the ledger keeps in memory and in every snapshot, in constant time. The journal
    /// grows with every entry; answers and resolved holds are kept for the idempotency window.
    pub fn retained(&self) -> Retained {
        Retained {
            journal_entries: self.journal.len() as u64 - self.journal.archived(),
            answer_slots: self.answers.span(),
            hold_slots: self.holds.span(),
        }
    }

    pub(crate) fn balances(&self, id: super::types::AccountId) -> Balances {
        self.accounts[id.0 as usize].balances
    }
}

/// A journal entry as `wallet_entries` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRef<'a> {
    InMemory(&'a Entry),
    /// Archived out of memory: the store's journal archive has it.
    Archived(EntryId),
}

/// See [`Ledger::retained`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    /// Entries in the journal's memory (archived ones are not).
    pub journal_entries: u64,
    /// Idempotency answers, from the oldest kept to the newest.
    pub answer_slots: u64,
    /// Holds, from the oldest kept (open, or resolved within the window) to the newest.
    pub hold_slots: u64,
}

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::ledger::{
        Command, Keyed, Ledger, LedgerConfig, LedgerError, Outcome, OveragePolicy, Timestamp,
    };

    fn run(ledger: &mut Ledger, customer: &str, key: &str, command: Command) -> Outcome {
        let request = Keyed {
            customer: customer.into(),
            key: key.into(),
            command,
        };
        match ledger.apply(Timestamp(1_000), &request) {
            Ok(outcome) => outcome,
            Err(e) => panic!("{key} for {customer} failed: {e}"),
        }
    }

    fn subscribe(ledger: &mut Ledger, customer: &str, plan: &str, key: &str) {
        run(
            ledger,
            customer,
            key,
            Command::Subscribe {
                plan: plan.into(),
                since: Timestamp(0),
                overage: OveragePolicy::Deny,
                included: vec![],
                request: None,
            },
        );
    }

    #[test]
    fn plan_subscribers_counts_each_customer_on_its_current_plan() {
        let mut ledger = Ledger::new(LedgerConfig::default());
        assert_eq!(ledger.plan_subscribers(), BTreeMap::new());
        for (i, customer) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let command = Command::UpsertCustomer {
                display_name: customer.to_string(),
            };
            run(&mut ledger, customer, &format!("u{i}"), command);
        }
        subscribe(&mut ledger, "a", "pro", "s1");
        subscribe(&mut ledger, "b", "pro", "s2");
        subscribe(&mut ledger, "c", "free", "s3");
        subscribe(&mut ledger, "d", "free", "s4");
        // `d` moves from free to team: counted once, on its current plan.
        subscribe(&mut ledger, "d", "team", "s5");
        // `e` has no subscription; a subscription refused for an unknown customer counts
        // nowhere.
        let unknown = Keyed {
            customer: "nobody".into(),
            key: "s6".into(),
            command: Command::Subscribe {
                plan: "pro".into(),
                since: Timestamp(0),
                overage: OveragePolicy::Deny,
                included: vec![],
                request: None,
            },
        };
        assert!(matches!(
            ledger.apply(Timestamp(1_000), &unknown),
            Err(LedgerError::UnknownCustomer { .. })
        ));
        let expected = BTreeMap::from([
            ("free".to_string(), 1),
            ("pro".to_string(), 2),
            ("team".to_string(), 1),
        ]);
        assert_eq!(ledger.plan_subscribers(), expected);
        // The kept counts survive a snapshot and agree with a recount of the customers.
        let restored: Ledger =
            postcard::from_bytes(&postcard::to_allocvec(&ledger).unwrap()).unwrap();
        assert_eq!(restored.plan_subscribers(), expected);
        ledger.verify().unwrap();
        // A count that drifts from the customers is a violation `verify` names.
        ledger.plan_subscribers.insert("pro".into(), 3);
        assert!(matches!(
            ledger.verify(),
            Err(crate::ledger::Violation::PlanSubscribers { .. })
        ));
    }
}
