//! Why the ledger refused a command. Errors are values the ledger stores per idempotency
//! key (a retry gets the same error), so they are plain data.

use serde::{Deserialize, Serialize};

use super::types::{HoldId, Timestamp, WalletRef};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid {field}: {reason} (got {value})")]
    InvalidArgument {
        field: String,
        value: String,
        reason: String,
    },

    #[error("wallet {wallet} has {available} credits available, {needed} needed")]
    InsufficientCredits {
        wallet: WalletRef,
        needed: u64,
        available: u64,
    },

    #[error("wallet {wallet} does not exist")]
    UnknownWallet { wallet: WalletRef },

    #[error("hold {} does not exist for customer {customer}", hold.0)]
    UnknownHold { customer: String, hold: HoldId },

    #[error("hold {} was already resolved ({resolution})", hold.0)]
    HoldResolved {
        hold: HoldId,
        resolution: HoldResolution,
    },

    #[error("hold {} timed out at {} ms", hold.0, expired_at.0)]
    HoldTimedOut { hold: HoldId, expired_at: Timestamp },

    #[error(
        "limit {counter} allows {limit}: {used} used and {pending} held, {requested} more requested"
    )]
    LimitExceeded {
        index: u32,
        counter: String,
        limit: u64,
        used: u64,
        pending: u64,
        requested: u64,
    },

    #[error("customer {customer} does not exist")]
    UnknownCustomer { customer: String },

    #[error("idempotency key {key:?} was used before with a different request")]
    IdempotencyConflict { key: String },

    #[error("{what} would overflow")]
    Overflow { what: String },
}

/// How a hold was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldResolution {
    Committed,
    Released,
    TimedOut,
}

impl std::fmt::Display for HoldResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HoldResolution::Committed => "committed",
            HoldResolution::Released => "released",
            HoldResolution::TimedOut => "timed out",
        })
    }
}

impl LedgerError {
    pub(crate) fn overflow(what: &'static str) -> Self {
        LedgerError::Overflow {
            what: what.to_string(),
        }
    }

    /// Stable code for metrics labels, decision reasons and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::InvalidArgument { .. } => "invalid_argument",
            LedgerError::InsufficientCredits { .. } => "insufficient_credits",
            LedgerError::UnknownWallet { .. } => "unknown_wallet",
            LedgerError::UnknownHold { .. } => "unknown_hold",
            LedgerError::HoldResolved { .. } => "hold_resolved",
            LedgerError::HoldTimedOut { .. } => "hold_timed_out",
            LedgerError::IdempotencyConflict { .. } => "idempotency_conflict",
            LedgerError::LimitExceeded { .. } => "limit_exceeded",
            LedgerError::UnknownCustomer { .. } => "unknown_customer",
            LedgerError::Overflow { .. } => "overflow",
        }
    }

    pub(crate) fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> Self {
        LedgerError::InvalidArgument {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}
