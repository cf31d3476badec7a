//! Plain value types of the ledger: identifiers, amounts, time, grant attributes.

use serde::{Deserialize, Serialize};

/// Ledger time in milliseconds since the Unix epoch. The ledger never reads a clock:
/// every command is applied at a time the caller passes in, and ledger time never goes
/// backwards (an earlier time is treated as the current ledger time).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + ms`, or `None` on overflow.
    pub fn checked_add_ms(self, ms: u64) -> Option<Timestamp> {
        self.0.checked_add(ms).map(Timestamp)
    }
}

/// A customer of the AI product (the tenant whose credits the ledger keeps).
pub type CustomerId = String;

/// A wallet: one per customer and credit currency (for example `credits`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WalletRef {
    pub customer: CustomerId,
    pub currency: String,
}

impl WalletRef {
    pub fn new(customer: impl Into<String>, currency: impl Into<String>) -> Self {
        WalletRef {
            customer: customer.into(),
            currency: currency.into(),
        }
    }
}

impl std::fmt::Display for WalletRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.customer, self.currency)
    }
}

/// Index of an account in the ledger's account table. Stable for the life of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId(pub u32);

/// A credit grant, numbered by the ledger in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GrantId(pub u64);

/// A hold (reservation), numbered by the ledger in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HoldId(pub u64);

/// A journal entry, numbered from 1 in journal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryId(pub u64);

/// Whether a grant was paid for (deferred revenue until consumed) or given away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Consumed before paid credits at equal priority and expiry (see `consume`).
    Promotional,
    Paid,
}

/// What happens when a commit reports more usage than its hold covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum OveragePolicy {
    /// Charge the overage from available credits only; what they cannot cover is
    /// reported as unbilled and not charged.
    #[default]
    Deny,
    /// Charge from available credits, then let the wallet's overdraft account go down
    /// to `floor` credits below zero; anything beyond is reported as unbilled.
    AllowOverdraft { floor: u64 },
}

/// The attributes of a new grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GrantSpec {
    pub amount: u64,
    pub category: Category,
    /// Lower is consumed first.
    pub priority: u32,
    pub effective_at: Timestamp,
    /// Exclusive: the grant is usable while `effective_at <= now < expires_at`.
    pub expires_at: Option<Timestamp>,
    /// What the customer paid per credit, in micro-units of the billing currency
    /// (0 for promotional grants). Finance uses it to value deferred revenue.
    pub cost_basis_micros: u64,
}

/// The currency of wallets the API creates. Other currencies exist only if a client
/// opens them explicitly.
pub const DEFAULT_CURRENCY: &str = "credits";

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Measure {
    /// Credits consumed (budget caps in credits).
    Credits,
    /// The meter's own units (metered entitlement limits, usage caps).
    Units,
}

/// A usage or spend counter that a request also charges: a metered entitlement's limit or
/// a budget cap, for one window of its period. The edge works out which counters apply
/// (policy); the ledger checks and holds them together with the credits, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitCharge {
    /// Stable name of the counter (for example `cap/agent-daily/acme/agent:bot-1`).
    pub counter: String,
    pub window: crate::period::Window,
    /// `None`: count only (unlimited).
    pub limit: Option<u64>,
    pub measure: Measure,
    /// What this request charges the counter (an estimate for a hold).
    pub amount: u64,
    /// Refuse the request when the counter would pass its limit (a hard limit or a deny
    /// cap); otherwise only count (a soft limit or an alert-only cap).
    pub enforce: bool,
}

/// A rate: `micro_credits` per `per_units` units, rounded up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    pub micro_credits: u64,
    pub per_units: u64,
}

impl Price {
    /// Credits for `units`, rounded up; `None` on overflow or a zero `per_units`.
    pub fn cost(&self, units: u64) -> Option<u64> {
        if self.per_units == 0 {
            return None;
        }
        let total = u128::from(units) * u128::from(self.micro_credits);
        u64::try_from(total.div_ceil(u128::from(self.per_units))).ok()
    }
}

/// A recurring credit grant that comes with a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncludedGrant {
    pub id: String,
    pub amount: u64,
    pub category: Category,
    pub priority: u32,
    pub period: crate::period::Period,
    /// Periods follow the calendar instead of the subscription start.
    pub calendar: bool,
    /// The unspent rest expires this long after issue; `None`: at the end of the period.
    pub expires_after_ms: Option<u64>,
}

/// One usage event, priced by the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsageCharge {
    /// The event's id: a second event with the same id (per customer) is a duplicate.
    pub event_id: String,
    pub credits: u64,
    /// Counters the usage counts toward (never refused: the usage has happened).
    pub counters: Vec<LimitCharge>,
}
