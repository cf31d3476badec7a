//! Errors of the service layer, with the gRPC code each maps to at the edge.

use crate::engine::EngineError;
use crate::ledger::LedgerError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("idempotency key {key:?} was used before with a different request")]
    Conflict { key: String },
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// Stable code for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::InvalidArgument { .. } => "invalid_argument",
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::FailedPrecondition(_) => "failed_precondition",
            ServiceError::Conflict { .. } => "conflict",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::Internal(_) => "internal",
        }
    }
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        ServiceError::Unavailable(e.to_string())
    }
}

impl From<LedgerError> for ServiceError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::InvalidArgument {
                field,
                value,
                reason,
            } => ServiceError::InvalidArgument {
                field,
                reason: format!("{reason} (got {value})"),
            },
            LedgerError::IdempotencyConflict { key } => ServiceError::Conflict { key },
            LedgerError::UnknownCustomer { customer } => ServiceError::NotFound {
                what: "customer",
                id: customer,
            },
            LedgerError::UnknownWallet { wallet } => ServiceError::NotFound {
                what: "wallet of customer",
                id: wallet.customer,
            },
            LedgerError::UnknownHold { customer, hold } => ServiceError::NotFound {
                what: "hold",
                id: format!("{} of customer {customer}", hold.0),
            },
            LedgerError::HoldTimedOut { hold, expired_at } => {
                ServiceError::FailedPrecondition(format!(
                    "hold {} timed out at {} (a hold lasts its Reserve's hold_timeout_ms, 60 s \
                     by default); its credits are free again",
                    hold.0,
                    crate::cli::time::format_time_ms(
                        i64::try_from(expired_at.0).unwrap_or(i64::MAX)
                    )
                ))
            }
            LedgerError::HoldResolved { .. } => ServiceError::FailedPrecondition(e.to_string()),
            LedgerError::Overflow { what } => {
                ServiceError::invalid("amount", format!("{what} would overflow"))
            }
            other @ (LedgerError::InsufficientCredits { .. }
            | LedgerError::LimitExceeded { .. }) => {
                ServiceError::FailedPrecondition(other.to_string())
            }
        }
    }
}
