//! The commands the ledger accepts and the outcomes it returns.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::error::LedgerError;
use super::types::{
    EntryId, GrantId, GrantSpec, HoldId, IncludedGrant, LimitCharge, OveragePolicy, Price,
    Timestamp, UsageCharge, WalletRef,
};

/// A mutating command with the client's idempotency key. The key is scoped to the
/// customer: two customers may use the same key string independently.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Keyed {
    pub customer: String,
    pub key: String,
    pub command: Command,
}

/// What a client asks the ledger to do. Every variant is applied all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// Create the wallet, or change its overage policy if it exists.
    OpenWallet {
        wallet: WalletRef,
        overage: OveragePolicy,
    },
    /// Add credits to a wallet as a new grant (opens the wallet if needed).
    Grant { wallet: WalletRef, grant: GrantSpec },
    /// Hold `amount` credits and every counter in `limits` for at most `timeout_ms` of
    /// ledger time; all or nothing. Counters are checked in order, before the credits.
    Reserve {
        wallet: WalletRef,
        amount: u64,
        timeout_ms: u64,
        limits: Vec<LimitCharge>,
        /// The rate the hold was priced at: a commit then gives units, not credits.
        price: Option<Price>,
        /// Fingerprint of the client's request, when the command was derived from it by
        /// policy: a retry is then compared on what the client sent, so a retry across a
        /// period boundary or a policy change still gets the first answer.
        request: Option<super::state::Fingerprint>,
    },
    /// Resolve a hold by posting the actual `amount` of credits (the rest of the hold is
    /// released; usage above the hold is charged as a separate overage entry). Counters
    /// of the hold are charged the credits posted or `units`, by their measure. A hold
    /// with a price posts `price.cost(units)` and `amount` must be 0.
    Commit {
        hold: HoldId,
        amount: u64,
        units: u64,
    },
    /// Resolve a hold by releasing all of it.
    Release { hold: HoldId },
    /// Consume `amount` credits at once, without a hold (metered usage priced by a rate
    /// card). All or nothing: fails with `InsufficientCredits` when they do not suffice.
    Debit { wallet: WalletRef, amount: u64 },
    /// Create the customer, or rename it.
    UpsertCustomer { display_name: String },
    /// Put the customer on `plan` from `since` (0: the ledger time it is applied at); its included grants are issued by the
    /// ledger at the start of every period from then on. Replaces an earlier subscription.
    Subscribe {
        plan: String,
        since: Timestamp,
        overage: OveragePolicy,
        included: Vec<IncludedGrant>,
        /// Fingerprint of the client's request (see `Reserve`).
        request: Option<super::state::Fingerprint>,
    },
    /// Record usage that has happened: events already seen are skipped; the rest are
    /// charged from credits (then overdraft, by policy) and counted, never refused.
    RecordUsage {
        wallet: WalletRef,
        events: Vec<UsageCharge>,
    },
    /// As `Subscribe`, except that a customer already on `plan` with the same included
    /// grants (and, when `since` is not 0, from the same time) is left as it is: nothing is
    /// replaced and no included grant is issued again for the period. What the service
    /// sends since 2026-12-04 (a repeated Subscribe issued the plan's credits again each
    /// time); `Subscribe` keeps its meaning for logs written before. Last of the variants,
    /// so that the encoding of every earlier one is unchanged.
    SubscribeChange {
        plan: String,
        since: Timestamp,
        overage: OveragePolicy,
        included: Vec<IncludedGrant>,
        request: Option<super::state::Fingerprint>,
    },
}

impl Command {
    /// Stable name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::OpenWallet { .. } => "open_wallet",
            Command::Grant { .. } => "grant",
            Command::Reserve { .. } => "reserve",
            Command::Commit { .. } => "commit",
            Command::Release { .. } => "release",
            Command::Debit { .. } => "debit",
            Command::UpsertCustomer { .. } => "upsert_customer",
            Command::Subscribe { .. } => "subscribe",
            Command::RecordUsage { .. } => "record_usage",
            Command::SubscribeChange { .. } => "subscribe_change",
        }
    }
}

/// The result of a successful command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    WalletOpened,
    Granted {
        grant: GrantId,
        entry: EntryId,
        /// Part of the grant that paid back an overdraft at once.
        repaid_overdraft: u64,
    },
    Reserved {
        hold: HoldId,
        entry: EntryId,
        expires_at: Timestamp,
        /// Credits still available in the wallet after this hold.
        available_after: u64,
        /// Each counter of the request after the hold: (used, pending), in order. A request
        /// has one counter or none more often than not: one is kept without an allocation
        /// of its own (this answer is kept for the idempotency window).
        limits_after: SmallVec<[(u64, u64); 1]>,
    },
    Committed {
        entry: EntryId,
        /// Credits posted from the hold.
        posted: u64,
        /// Credits of the hold given back.
        released: u64,
        /// Usage above the hold that was charged (from credits or overdraft).
        overage_posted: u64,
        /// Usage above the hold that could not be charged under the overage policy.
        overage_unbilled: u64,
    },
    Released {
        entry: EntryId,
        released: u64,
    },
    Debited {
        entry: EntryId,
        available_after: u64,
    },
    CustomerUpserted {
        created: bool,
    },
    Subscribed {
        plan: String,
        since: Timestamp,
        grants_issued: u32,
    },
    UsageRecorded {
        entry: Option<EntryId>,
        accepted: u32,
        duplicates: u32,
        credits_posted: u64,
        /// Credits the usage cost that could not be charged under the overage policy.
        unbilled: u64,
    },
}

/// What the ledger stores per idempotency key: the answer it gave.
pub type CommandResult = Result<Outcome, LedgerError>;
