//! Responses as JSON for `--json`: proto field names, every field present (absent optional
//! fields as null), enums by name (`"REASON_ALLOWED"`; an unknown value as its number),
//! 64-bit integers as JSON numbers, amounts in micro-credits as on the wire.

use crate::grpc::proto::{
    CapLevel, CheckResponse, CommitResponse, Decision, EffectiveFeature, GetBalanceResponse,
    GetCustomerResponse, GrantBalance, GrantCategory, GrantResponse, IngestResponse, JournalEntry,
    Leg, ListEntriesResponse, Reason, Rejection, ReleaseResponse, Remaining, ReserveResponse,
    SubscribeResponse, Unit, UpsertCustomerResponse,
};
use serde_json::{Value, json};

/// A response message as a JSON value.
pub trait ToJson {
    fn to_json(&self) -> Value;
}

fn list<T: ToJson>(items: &[T]) -> Value {
    Value::Array(items.iter().map(ToJson::to_json).collect())
}

/// The name of a proto enum value, or the number when this client does not know it.
fn enum_name<E: TryFrom<i32>>(value: i32, name: fn(&E) -> &'static str) -> Value {
    E::try_from(value).map_or_else(|_| json!(value), |e| json!(name(&e)))
}

impl ToJson for Decision {
    fn to_json(&self) -> Value {
        json!({
            "allowed": self.allowed,
            "reason": enum_name(self.reason, Reason::as_str_name),
            "message": self.message,
            "cap_level": enum_name(self.cap_level, CapLevel::as_str_name),
            "cap_name": self.cap_name,
            "remaining": list(&self.remaining),
            "policy_version": self.policy_version,
            "alerts": self.alerts,
        })
    }
}

impl ToJson for Remaining {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "unit": enum_name(self.unit, Unit::as_str_name),
            "limit": self.limit,
            "used": self.used,
            "pending": self.pending,
            "remaining": self.remaining,
            "unlimited": self.unlimited,
            "resets_at_ms": self.resets_at_ms,
        })
    }
}

fn decision(decision: Option<&Decision>) -> Value {
    decision.map_or(Value::Null, ToJson::to_json)
}

impl ToJson for CheckResponse {
    fn to_json(&self) -> Value {
        json!({
            "decision": decision(self.decision.as_ref()),
            "number": self.number,
            "choice": self.choice,
            "price_micro_credits": self.price_micro_credits,
        })
    }
}

impl ToJson for ReserveResponse {
    fn to_json(&self) -> Value {
        json!({
            "decision": decision(self.decision.as_ref()),
            "hold_id": self.hold_id,
            "held_micro_credits": self.held_micro_credits,
            "expires_at_ms": self.expires_at_ms,
        })
    }
}

impl ToJson for CommitResponse {
    fn to_json(&self) -> Value {
        json!({
            "posted_micro_credits": self.posted_micro_credits,
            "released_micro_credits": self.released_micro_credits,
            "overage_micro_credits": self.overage_micro_credits,
            "unbilled_micro_credits": self.unbilled_micro_credits,
        })
    }
}

impl ToJson for ReleaseResponse {
    fn to_json(&self) -> Value {
        json!({ "released_micro_credits": self.released_micro_credits })
    }
}

impl ToJson for UpsertCustomerResponse {
    fn to_json(&self) -> Value {
        json!({ "created": self.created })
    }
}

impl ToJson for SubscribeResponse {
    fn to_json(&self) -> Value {
        json!({
            "plan": self.plan,
            "start_ms": self.start_ms,
            "grants_issued": self.grants_issued,
        })
    }
}

impl ToJson for GetCustomerResponse {
    fn to_json(&self) -> Value {
        json!({
            "customer_id": self.customer_id,
            "display_name": self.display_name,
            "plan": self.plan,
            "subscribed_since_ms": self.subscribed_since_ms,
            "features": list(&self.features),
            "policy_version": self.policy_version,
        })
    }
}

impl ToJson for EffectiveFeature {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "enabled": self.enabled,
            "number": self.number,
            "choice": self.choice,
            "meter": self.meter,
            "limit": self.limit,
            "unlimited": self.unlimited,
            "enforcement": self.enforcement,
            "used": self.used,
            "pending": self.pending,
            "resets_at_ms": self.resets_at_ms,
            "source": self.source,
        })
    }
}

impl ToJson for GrantResponse {
    fn to_json(&self) -> Value {
        json!({
            "grant_id": self.grant_id,
            "entry_id": self.entry_id,
            "repaid_overdraft_micro_credits": self.repaid_overdraft_micro_credits,
        })
    }
}

impl ToJson for GetBalanceResponse {
    fn to_json(&self) -> Value {
        json!({
            "available": self.available,
            "pending": self.pending,
            "upcoming": self.upcoming,
            "overdraft": self.overdraft,
            "grants": list(&self.grants),
        })
    }
}

impl ToJson for GrantBalance {
    fn to_json(&self) -> Value {
        json!({
            "grant_id": self.grant_id,
            "category": enum_name(self.category, GrantCategory::as_str_name),
            "priority": self.priority,
            "effective_at_ms": self.effective_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "granted": self.granted,
            "used": self.used,
            "pending": self.pending,
            "available": self.available,
            "expired": self.expired,
        })
    }
}

impl ToJson for ListEntriesResponse {
    fn to_json(&self) -> Value {
        json!({
            "entries": list(&self.entries),
            "next_page_token": self.next_page_token,
        })
    }
}

impl ToJson for JournalEntry {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "time_ms": self.time_ms,
            "kind": self.kind,
            "subject_id": self.subject_id,
            "legs": list(&self.legs),
            "hash": self.hash,
        })
    }
}

impl ToJson for Leg {
    fn to_json(&self) -> Value {
        json!({
            "debit": self.debit,
            "credit": self.credit,
            "amount": self.amount,
            "kind": self.kind,
        })
    }
}

impl ToJson for IngestResponse {
    fn to_json(&self) -> Value {
        json!({
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": list(&self.rejected),
            "debited_micro_credits": self.debited_micro_credits,
            "unbilled_micro_credits": self.unbilled_micro_credits,
        })
    }
}

impl ToJson for Rejection {
    fn to_json(&self) -> Value {
        json!({ "index": self.index, "reason": self.reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget_denial() -> Decision {
        Decision {
            allowed: false,
            reason: Reason::BudgetCap as i32,
            message: "agent support-bot spent 5.000000 of 5.000000 credits today".into(),
            cap_level: CapLevel::Agent as i32,
            cap_name: "agent-daily-spend".into(),
            remaining: vec![Remaining {
                name: "cap/agent-daily-spend".into(),
                unit: Unit::MicroCredits as i32,
                limit: 5_000_000,
                used: 5_000_000,
                pending: 0,
                remaining: 0,
                unlimited: false,
                resets_at_ms: 1_764_374_400_000,
            }],
            policy_version: "sha256:0123456789abcdef".into(),
            alerts: vec!["soft/llm-tokens".into()],
        }
    }

    #[test]
    fn decision_has_every_field_with_enum_names() {
        assert_eq!(
            budget_denial().to_json(),
            json!({
                "allowed": false,
                "reason": "REASON_BUDGET_CAP",
                "message": "agent support-bot spent 5.000000 of 5.000000 credits today",
                "cap_level": "CAP_LEVEL_AGENT",
                "cap_name": "agent-daily-spend",
                "remaining": [{
                    "name": "cap/agent-daily-spend",
                    "unit": "UNIT_MICRO_CREDITS",
                    "limit": 5_000_000,
                    "used": 5_000_000,
                    "pending": 0,
                    "remaining": 0,
                    "unlimited": false,
                    "resets_at_ms": 1_764_374_400_000i64,
                }],
                "policy_version": "sha256:0123456789abcdef",
                "alerts": ["soft/llm-tokens"],
            })
        );
    }

    #[test]
    fn unknown_enum_values_stay_numbers() {
        let decision = Decision {
            reason: 99,
            ..Decision::default()
        };
        assert_eq!(decision.to_json()["reason"], json!(99));
        assert_eq!(
            decision.to_json()["cap_level"],
            json!("CAP_LEVEL_UNSPECIFIED")
        );
    }

    #[test]
    fn check_response_without_decision_is_null() {
        let json = CheckResponse {
            number: Some(5),
            ..CheckResponse::default()
        }
        .to_json();
        assert_eq!(json["decision"], Value::Null);
        assert_eq!(json["number"], json!(5));
        assert_eq!(json["choice"], Value::Null);
    }

    #[test]
    fn balance_has_totals_and_grants() {
        let balance = GetBalanceResponse {
            available: 12_500_000,
            pending: 2_000,
            upcoming: 0,
            overdraft: 0,
            grants: vec![GrantBalance {
                grant_id: 7,
                category: GrantCategory::Promotional as i32,
                priority: 1,
                effective_at_ms: 1_000,
                expires_at_ms: 0,
                granted: 15_000_000,
                used: 2_498_000,
                pending: 2_000,
                available: 12_500_000,
                expired: false,
            }],
        };
        assert_eq!(
            balance.to_json(),
            json!({
                "available": 12_500_000,
                "pending": 2_000,
                "upcoming": 0,
                "overdraft": 0,
                "grants": [{
                    "grant_id": 7,
                    "category": "GRANT_CATEGORY_PROMOTIONAL",
                    "priority": 1,
                    "effective_at_ms": 1_000,
                    "expires_at_ms": 0,
                    "granted": 15_000_000,
                    "used": 2_498_000,
                    "pending": 2_000,
                    "available": 12_500_000,
                    "expired": false,
                }],
            })
        );
    }

    #[test]
    fn large_amounts_keep_every_digit() {
        let json = ReleaseResponse {
            released_micro_credits: u64::MAX,
        }
        .to_json();
        assert_eq!(
            json.to_string(),
            r#"{"released_micro_credits":18446744073709551615}"#
        );
    }
}
