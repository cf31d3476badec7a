//! Accounts and the chart of accounts of a wallet.

use serde::{Deserialize, Serialize};

use super::types::{AccountId, GrantId};

/// What an account is for. Every account belongs to exactly one wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountKind {
    /// The customer's credits from one grant (credit-normal: credits are what was granted,
    /// debits what was consumed or expired).
    Grant(GrantId),
    /// Paid credits sold: debited when a paid grant is issued.
    DeferredRevenue,
    /// Paid credits consumed: credited on consumption (and on overdraft consumption).
    RecognizedRevenue,
    /// Paid credits that expired unused.
    Breakage,
    /// Promotional credits given away: debited on issue, credited back on expiry.
    PromotionalExpense,
    /// Promotional credits consumed.
    PromotionalConsumed,
    /// Credits consumed beyond the wallet's grants under an overdraft policy
    /// (debit-normal; its debit balance is the overdraft in use).
    Overdraft,
}

impl AccountKind {
    pub fn name(&self) -> &'static str {
        match self {
            AccountKind::Grant(_) => "grant",
            AccountKind::DeferredRevenue => "deferred_revenue",
            AccountKind::RecognizedRevenue => "recognized_revenue",
            AccountKind::Breakage => "breakage",
            AccountKind::PromotionalExpense => "promotional_expense",
            AccountKind::PromotionalConsumed => "promotional_consumed",
            AccountKind::Overdraft => "overdraft",
        }
    }
}

/// Posted and pending totals, TigerBeetle style. Balances are derived, never stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub debits_posted: u64,
    pub credits_posted: u64,
    pub debits_pending: u64,
    pub credits_pending: u64,
}

impl Balances {
    /// Credits still free to consume on a credit-normal account: posted credits minus
    /// posted and pending debits. Saturates at 0 for debit-normal accounts.
    pub fn free(&self) -> u64 {
        self.credits_posted
            .saturating_sub(self.debits_posted)
            .saturating_sub(self.debits_pending)
    }

    /// Posted credits minus posted debits (what is left, pending holds included).
    pub fn remainder(&self) -> u64 {
        self.credits_posted.saturating_sub(self.debits_posted)
    }

    /// Posted debits minus posted credits (a debit-normal account's balance).
    pub fn debit_balance(&self) -> u64 {
        self.debits_posted.saturating_sub(self.credits_posted)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// Index of the owning wallet in the ledger's wallet table.
    pub wallet: u32,
    pub kind: AccountKind,
    pub balances: Balances,
}

/// The fixed accounts every wallet has besides its grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletAccounts {
    pub deferred_revenue: AccountId,
    pub recognized_revenue: AccountId,
    pub breakage: AccountId,
    pub promotional_expense: AccountId,
    pub promotional_consumed: AccountId,
    pub overdraft: AccountId,
}
