//! Decisions: allow or deny, the reason, and the room left under every limit.

use crate::ledger::{LedgerError, LimitCharge};
use crate::policy::{CapLevel, Denial, LimitSource, PlannedLimit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Allowed,
    NoEntitlement,
    LimitReached,
    BudgetCap,
    InsufficientCredits,
    UnknownCustomer,
    NoSubscription,
    /// The store is unreachable and the feature fails open: allowed without a check.
    FailOpen,
    /// The store is unreachable and the feature fails closed.
    FailClosed,
    /// The plan prices the feature by a dimension and has no rate for the usage's value.
    NotPriced,
}

impl Reason {
    /// Stable code for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::NoEntitlement => "no_entitlement",
            Reason::LimitReached => "limit_reached",
            Reason::BudgetCap => "budget_cap",
            Reason::InsufficientCredits => "insufficient_credits",
            Reason::UnknownCustomer => "unknown_customer",
            Reason::NoSubscription => "no_subscription",
            Reason::FailOpen => "fail_open",
            Reason::FailClosed => "fail_closed",
            Reason::NotPriced => "not_priced",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemainingUnit {
    MicroCredits,
    MeterUnits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remaining {
    pub name: String,
    pub unit: RemainingUnit,
    pub limit: u64,
    pub used: u64,
    pub pending: u64,
    pub remaining: u64,
    pub unlimited: bool,
    /// End of the current window in ms (0: never).
    pub resets_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub message: String,
    pub cap: Option<(CapLevel, String)>,
    pub remaining: Vec<Remaining>,
    pub policy_version: String,
    pub alerts: Vec<String>,
}

impl Decision {
    pub fn allow(policy_version: &str, remaining: Vec<Remaining>, alerts: Vec<String>) -> Self {
        Decision {
            allowed: true,
            reason: Reason::Allowed,
            message: "allowed".into(),
            cap: None,
            remaining,
            policy_version: policy_version.to_string(),
            alerts,
        }
    }

    pub fn deny(reason: Reason, message: String, policy_version: &str) -> Self {
        Decision {
            allowed: false,
            reason,
            message,
            cap: None,
            remaining: Vec::new(),
            policy_version: policy_version.to_string(),
            alerts: Vec::new(),
        }
    }

    pub fn from_denial(denial: &Denial, customer: &str, policy_version: &str) -> Self {
        let reason = match denial {
            Denial::NoSubscription => Reason::NoSubscription,
            Denial::NoEntitlement { .. } => Reason::NoEntitlement,
            Denial::NotPriced { .. } => Reason::NotPriced,
        };
        Decision::deny(reason, denial.message(customer), policy_version)
    }

    /// A denial for an enforced limit that has no room.
    pub fn limit_denied(
        planned: &PlannedLimit,
        used: u64,
        pending: u64,
        policy_version: &str,
    ) -> Self {
        let limit = planned.charge.limit.unwrap_or(0);
        let remaining = vec![remaining_of(
            &planned.charge,
            &planned.source,
            used,
            pending,
        )];
        let mut decision = match &planned.source {
            LimitSource::Entitlement { feature } => Decision::deny(
                Reason::LimitReached,
                format!(
                    "limit of {feature} reached: {used} used and {pending} held of {limit}, {} requested",
                    planned.charge.amount
                ),
                policy_version,
            ),
            LimitSource::Cap { name, level } => {
                let mut d = Decision::deny(
                    Reason::BudgetCap,
                    format!(
                        "budget cap {name} ({} level) reached: {used} used and {pending} held of {limit}, {} requested",
                        level.name(),
                        planned.charge.amount
                    ),
                    policy_version,
                );
                d.cap = Some((*level, name.clone()));
                d
            }
        };
        decision.remaining = remaining;
        decision
    }

    /// A denial from the ledger's answer to a Reserve (a limit or the credits).
    pub fn from_ledger(
        error: &LedgerError,
        limits: &[PlannedLimit],
        policy_version: &str,
    ) -> Option<Self> {
        match error {
            LedgerError::InsufficientCredits {
                needed, available, ..
            } => {
                let mut d = Decision::deny(
                    Reason::InsufficientCredits,
                    insufficient_credits(*needed, *available),
                    policy_version,
                );
                d.remaining = vec![wallet_remaining(*available, 0)];
                Some(d)
            }
            LedgerError::LimitExceeded {
                index,
                used,
                pending,
                ..
            } => {
                let planned = limits.get(*index as usize)?;
                Some(Decision::limit_denied(
                    planned,
                    *used,
                    *pending,
                    policy_version,
                ))
            }
            _ => None,
        }
    }
}

pub(crate) fn wallet_remaining(available: u64, pending: u64) -> Remaining {
    Remaining {
        name: "wallet".into(),
        unit: RemainingUnit::MicroCredits,
        limit: 0,
        used: 0,
        pending,
        remaining: available,
        unlimited: false,
        resets_at_ms: 0,
    }
}

pub(crate) fn remaining_of(
    charge: &LimitCharge,
    source: &LimitSource,
    used: u64,
    pending: u64,
) -> Remaining {
    let name = match source {
        LimitSource::Entitlement { feature } => format!("feature/{feature}"),
        LimitSource::Cap { name, .. } => format!("cap/{name}"),
    };
    let unit = match charge.measure {
        crate::ledger::Measure::Credits => RemainingUnit::MicroCredits,
        crate::ledger::Measure::Units => RemainingUnit::MeterUnits,
    };
    Remaining {
        name,
        unit,
        limit: charge.limit.unwrap_or(0),
        used,
        pending,
        remaining: charge
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(used).saturating_sub(pending)),
        unlimited: charge.limit.is_none(),
        resets_at_ms: if charge.window.end.0 == u64::MAX {
            0
        } else {
            charge.window.end.0
        },
    }
}

/// Counters past their limit that only alert (soft limits, alert-only caps).
pub(crate) fn alerts(limits: &[PlannedLimit], after: &[(u64, u64)]) -> Vec<String> {
    limits
        .iter()
        .zip(after)
        .filter(|(l, (used, pending))| {
            !l.charge.enforce
                && l.charge
                    .limit
                    .is_some_and(|limit| used.saturating_add(*pending) > limit)
        })
        .map(|(l, _)| match &l.source {
            LimitSource::Entitlement { feature } => format!("soft limit of {feature} exceeded"),
            LimitSource::Cap { name, level } => {
                format!("budget cap {name} ({} level) exceeded", level.name())
            }
        })
        .collect()
}

/// The message of an `InsufficientCredits` denial, in credits as people read them and in
/// the micro-credits of the API's amounts: "12.500000 credits needed (12500000
/// micro-credits), 3.000000 available".
pub fn insufficient_credits(needed: u64, available: u64) -> String {
    use crate::credits::format_credits;
    format!(
        "{} credits needed ({needed} micro-credits), {} available",
        format_credits(needed),
        format_credits(available)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::WalletRef;

    /// People read credits; the API's amounts are micro-credits: the message gives both.
    #[test]
    fn an_insufficient_credits_denial_says_how_many_credits() {
        let error = LedgerError::InsufficientCredits {
            wallet: WalletRef::new("acme", "credits"),
            needed: 12_500_000,
            available: 3_000_001,
        };
        let denied = Decision::from_ledger(&error, &[], "v1").unwrap();
        assert!(!denied.allowed);
        assert_eq!(
            denied.message,
            "12.500000 credits needed (12500000 micro-credits), 3.000001 available"
        );
    }
}
