//! Responses as short text for people: decisions and the answers to mutating calls.
//! Pure: each function returns the text; amounts in micro-credits are shown as credits.

use super::amount::format_credits;
use super::time::format_time_ms;
use crate::grpc::proto::{
    CapLevel, CheckResponse, CommitResponse, Decision, GrantResponse, IngestResponse, Reason,
    ReleaseResponse, Remaining, ReserveResponse, SubscribeResponse, Unit, UpsertCustomerResponse,
};
use std::fmt::Write;

/// First line: `allowed (REASON_ALLOWED) policy sha256:..` or `DENIED: <what>: <message>`;
/// then one indented line per remaining limit and per alert.
pub fn decision(decision: &Decision) -> String {
    let mut out = String::new();
    if decision.allowed {
        let _ = write!(out, "allowed ({})", reason_name(decision.reason));
        if !decision.policy_version.is_empty() {
            let _ = write!(out, " policy {}", decision.policy_version);
        }
        if decision.reason() != Reason::Allowed && !decision.message.is_empty() {
            let _ = write!(out, "\n  note: {}", decision.message);
        }
    } else {
        // The server's message may already start with what denied: say it once.
        let denial = denial(decision);
        if decision.message.starts_with(&denial) {
            let _ = write!(out, "DENIED: {}", decision.message);
        } else if decision.message.is_empty() {
            let _ = write!(out, "DENIED: {denial}");
        } else {
            let _ = write!(out, "DENIED: {denial}: {}", decision.message);
        }
        if !decision.policy_version.is_empty() {
            let _ = write!(out, "\n  policy {}", decision.policy_version);
        }
    }
    for remaining in &decision.remaining {
        let _ = write!(out, "\n  {}", remaining_line(remaining));
    }
    for alert in &decision.alerts {
        let _ = write!(out, "\n  alert: {alert}");
    }
    out
}

fn reason_name(reason: i32) -> String {
    Reason::try_from(reason).map_or_else(|_| format!("reason {reason}"), |r| r.as_str_name().into())
}

/// What denied, in words: `budget cap agent-daily-spend (agent level)`.
fn denial(decision: &Decision) -> String {
    let Ok(reason) = Reason::try_from(decision.reason) else {
        return reason_name(decision.reason);
    };
    match reason {
        Reason::BudgetCap => {
            let level = match CapLevel::try_from(decision.cap_level) {
                Ok(CapLevel::Customer) => "customer",
                Ok(CapLevel::Team) => "team",
                Ok(CapLevel::User) => "user",
                Ok(CapLevel::Agent) => "agent",
                Ok(CapLevel::Unspecified) | Err(_) => "unknown",
            };
            format!("budget cap {} ({level} level)", decision.cap_name)
        }
        Reason::NoEntitlement => "no entitlement".into(),
        Reason::LimitReached => "limit reached".into(),
        Reason::InsufficientCredits => "insufficient credits".into(),
        Reason::UnknownCustomer => "unknown customer".into(),
        Reason::NoSubscription => "no subscription".into(),
        Reason::FailClosed => "store unreachable, failing closed".into(),
        Reason::NotPriced => "not priced".into(),
        Reason::Unspecified | Reason::Allowed | Reason::FailOpen => reason.as_str_name().into(),
    }
}

/// `wallet: 12.500000 credits left` or
/// `feature/llm-tokens: 98500 of 100000 units left (used 1500, pending 0), resets <time>`.
fn remaining_line(r: &Remaining) -> String {
    let unit = Unit::try_from(r.unit).unwrap_or(Unit::Unspecified);
    let mut line = if r.unlimited {
        format!(
            "{}: unlimited (used {}, pending {})",
            r.name,
            quantity(unit, r.used),
            quantity(unit, r.pending)
        )
    } else if r.limit == 0 {
        // The wallet (no limit, only what is available), or a limit of zero.
        let mut line = format!("{}: {} left", r.name, quantity(unit, r.remaining));
        if r.pending > 0 {
            let _ = write!(line, " (pending {})", number(unit, r.pending));
        }
        line
    } else {
        format!(
            "{}: {} of {} left (used {}, pending {})",
            r.name,
            number(unit, r.remaining),
            quantity(unit, r.limit),
            number(unit, r.used),
            number(unit, r.pending)
        )
    };
    if r.resets_at_ms != 0 {
        let _ = write!(line, ", resets {}", format_time_ms(r.resets_at_ms));
    }
    line
}

fn number(unit: Unit, value: u64) -> String {
    match unit {
        Unit::MicroCredits => format_credits(value),
        Unit::MeterUnits | Unit::Unspecified => value.to_string(),
    }
}

fn quantity(unit: Unit, value: u64) -> String {
    match unit {
        Unit::MicroCredits => format!("{} credits", format_credits(value)),
        Unit::MeterUnits => format!("{value} units"),
        Unit::Unspecified => value.to_string(),
    }
}

fn missing_decision() -> String {
    "no decision in the response (server bug?)".into()
}

pub fn check(response: &CheckResponse, units: u64) -> String {
    let mut out = response
        .decision
        .as_ref()
        .map_or_else(missing_decision, decision);
    if units > 0 {
        let _ = write!(
            out,
            "\n  price: {} credits for {units} units",
            format_credits(response.price_micro_credits)
        );
    }
    if let Some(number) = response.number {
        let _ = write!(out, "\n  value: {number}");
    }
    if let Some(choice) = &response.choice {
        let _ = write!(out, "\n  value: {choice:?}");
    }
    out
}

pub fn reserve(response: &ReserveResponse, customer_id: &str) -> String {
    let mut out = response
        .decision
        .as_ref()
        .map_or_else(missing_decision, decision);
    let allowed = response.decision.as_ref().is_some_and(|d| d.allowed);
    if allowed && response.hold_id == 0 {
        // Access alone decided (a boolean feature, or nothing priced or limited): there is
        // no hold to commit or release.
        out.push_str("\nnothing held: the feature has no cost or limit to reserve");
    } else if allowed {
        let _ = write!(
            out,
            "\nhold {}: {} credits held until {}\n  next: tollgate commit {customer_id} {} \
             --units N   or: tollgate release {customer_id} {}",
            response.hold_id,
            format_credits(response.held_micro_credits),
            format_time_ms(response.expires_at_ms),
            response.hold_id,
            response.hold_id
        );
    }
    out
}

pub fn commit(response: &CommitResponse, hold_id: u64) -> String {
    let mut out = format!(
        "committed hold {hold_id}: posted {} credits, released {} credits",
        format_credits(response.posted_micro_credits),
        format_credits(response.released_micro_credits)
    );
    if response.overage_micro_credits > 0 {
        let _ = write!(
            out,
            "\n  overage charged: {} credits",
            format_credits(response.overage_micro_credits)
        );
    }
    if response.unbilled_micro_credits > 0 {
        let _ = write!(
            out,
            "\n  unbilled (overage policy): {} credits",
            format_credits(response.unbilled_micro_credits)
        );
    }
    out
}

pub fn release(response: &ReleaseResponse, hold_id: u64) -> String {
    format!(
        "released hold {hold_id}: {} credits",
        format_credits(response.released_micro_credits)
    )
}

pub fn upsert_customer(response: &UpsertCustomerResponse, customer_id: &str) -> String {
    let verb = if response.created {
        "created"
    } else {
        "updated"
    };
    format!("{verb} customer {customer_id}")
}

pub fn subscribe(response: &SubscribeResponse, customer_id: &str) -> String {
    let plural = if response.grants_issued == 1 { "" } else { "s" };
    format!(
        "subscribed {customer_id} to {} from {}; {} included grant{plural} issued",
        response.plan,
        format_time_ms(response.start_ms),
        response.grants_issued
    )
}

pub fn grant(response: &GrantResponse, customer_id: &str, amount_micros: u64) -> String {
    let mut out = format!(
        "granted {} credits to {customer_id}: grant {}, journal entry {}",
        format_credits(amount_micros),
        response.grant_id,
        response.entry_id
    );
    if response.repaid_overdraft_micro_credits > 0 {
        let _ = write!(
            out,
            "\n  repaid overdraft: {} credits",
            format_credits(response.repaid_overdraft_micro_credits)
        );
    }
    out
}

/// `event` names the event at an index of the request (its file line or its id).
pub fn ingest(response: &IngestResponse, event: impl Fn(u32) -> String) -> String {
    let mut out = format!(
        "accepted {}, duplicates {}, rejected {}; debited {} credits",
        response.accepted,
        response.duplicates,
        response.rejected.len(),
        format_credits(response.debited_micro_credits)
    );
    if response.unbilled_micro_credits > 0 {
        let _ = write!(
            out,
            "\n  unbilled (overage policy): {} credits",
            format_credits(response.unbilled_micro_credits)
        );
    }
    for rejection in &response.rejected {
        let _ = write!(
            out,
            "\n  rejected {}: {}",
            event(rejection.index),
            rejection.reason
        );
    }
    out
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
