//! Conversions between the wire types and the service layer, and error mapping.

use std::collections::BTreeMap;

use tonic::{Code, Status};

use super::proto;
use crate::policy::{CapLevel, FeatureValue, Subject};
use crate::service::{Decision, Reason, Remaining, RemainingUnit, ServiceError};

pub(crate) fn status(error: ServiceError) -> Status {
    let code = match &error {
        ServiceError::InvalidArgument { .. } => Code::InvalidArgument,
        ServiceError::NotFound { .. } => Code::NotFound,
        ServiceError::FailedPrecondition(_) => Code::FailedPrecondition,
        ServiceError::Conflict { .. } => Code::AlreadyExists,
        ServiceError::Unavailable(_) => Code::Unavailable,
        ServiceError::Internal(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

pub(crate) fn subject(s: Option<proto::Subject>) -> Subject {
    let s = s.unwrap_or_default();
    let some = |v: String| (!v.is_empty()).then_some(v);
    Subject {
        team: some(s.team),
        user: some(s.user),
        agent: some(s.agent),
    }
}

pub(crate) fn dimensions(d: std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    d.into_iter().collect()
}

pub(crate) fn decision(d: Decision) -> proto::Decision {
    let reason = match d.reason {
        Reason::Allowed => proto::Reason::Allowed,
        Reason::NoEntitlement => proto::Reason::NoEntitlement,
        Reason::LimitReached => proto::Reason::LimitReached,
        Reason::BudgetCap => proto::Reason::BudgetCap,
        Reason::InsufficientCredits => proto::Reason::InsufficientCredits,
        Reason::UnknownCustomer => proto::Reason::UnknownCustomer,
        Reason::NoSubscription => proto::Reason::NoSubscription,
        Reason::FailOpen => proto::Reason::FailOpen,
        Reason::FailClosed => proto::Reason::FailClosed,
        Reason::NotPriced => proto::Reason::NotPriced,
    };
    let (cap_level, cap_name) = match d.cap {
        Some((level, name)) => (cap_level(level), name),
        None => (proto::CapLevel::Unspecified, String::new()),
    };
    proto::Decision {
        allowed: d.allowed,
        reason: reason as i32,
        message: d.message,
        cap_level: cap_level as i32,
        cap_name,
        remaining: d.remaining.into_iter().map(remaining).collect(),
        policy_version: d.policy_version,
        alerts: d.alerts,
    }
}

fn cap_level(level: CapLevel) -> proto::CapLevel {
    match level {
        CapLevel::Customer => proto::CapLevel::Customer,
        CapLevel::Team => proto::CapLevel::Team,
        CapLevel::User => proto::CapLevel::User,
        CapLevel::Agent => proto::CapLevel::Agent,
    }
}

fn remaining(r: Remaining) -> proto::Remaining {
    proto::Remaining {
        name: r.name,
        unit: match r.unit {
            RemainingUnit::MicroCredits => proto::Unit::MicroCredits,
            RemainingUnit::MeterUnits => proto::Unit::MeterUnits,
        } as i32,
        limit: r.limit,
        used: r.used,
        pending: r.pending,
        remaining: r.remaining,
        unlimited: r.unlimited,
        resets_at_ms: ms(r.resets_at_ms),
    }
}

pub(crate) fn value(v: Option<FeatureValue>) -> (Option<i64>, Option<String>) {
    match v {
        Some(FeatureValue::Number(n)) => (Some(n), None),
        Some(FeatureValue::Choice(c)) => (None, Some(c)),
        None => (None, None),
    }
}

/// Milliseconds as the wire's `int64` (saturating).
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The wire's `int64` milliseconds as a time; negative is invalid.
pub(crate) fn from_ms(field: &str, v: i64) -> Result<u64, Status> {
    u64::try_from(v).map_err(|_| {
        Status::invalid_argument(format!("invalid {field}: must not be negative (got {v})"))
    })
}
