use super::*;
use crate::grpc::proto::{EffectiveFeature, GrantBalance, Leg};

#[test]
fn balance_shows_totals_then_grants() {
    let response = GetBalanceResponse {
        available: 12_500_000,
        pending: 2_000,
        upcoming: 50_000_000,
        overdraft: 0,
        grants: vec![
            GrantBalance {
                grant_id: 7,
                category: GrantCategory::Paid as i32,
                priority: 0,
                effective_at_ms: 0,
                expires_at_ms: 0,
                granted: 15_000_000,
                used: 2_498_000,
                pending: 2_000,
                available: 12_500_000,
                expired: false,
            },
            GrantBalance {
                grant_id: 8,
                category: GrantCategory::Promotional as i32,
                priority: 10,
                effective_at_ms: 1_764_339_600_000,
                expires_at_ms: 1_764_339_600_000,
                granted: 50_000_000,
                ..GrantBalance::default()
            },
        ],
    };
    let text = balance(&response, 1_000);
    let expected = "\
available  12.500000  credits
pending     0.002000  credits
upcoming   50.000000  credits
overdraft   0.000000  credits
GRANT  CATEGORY     PRIORITY    GRANTED      USED   PENDING  AVAILABLE  EXPIRES                   STATUS
    7  paid                0  15.000000  2.498000  0.002000  12.500000  never                     active
    8  promotional        10  50.000000  0.000000  0.000000   0.000000  2025-11-28T14:20:00.000Z  from 2025-11-28T14:20:00.000Z
";
    assert_eq!(text, expected);
}

#[test]
fn empty_balance_says_no_grants() {
    let text = balance(&GetBalanceResponse::default(), 0);
    assert!(text.starts_with("available  0.000000  credits\n"), "{text}");
    assert!(text.ends_with("no grants\n"), "{text}");
}

#[test]
fn entries_show_legs_in_credits() {
    let entry = JournalEntry {
        id: 12,
        time_ms: 0,
        kind: "grant".into(),
        subject_id: 7,
        legs: vec![Leg {
            debit: "grant/7".into(),
            credit: "deferred_revenue".into(),
            amount: 100_000_000,
            kind: "post".into(),
        }],
        hash: "0123456789abcdef0123456789abcdef".into(),
    };
    let second = JournalEntry {
        id: 13,
        kind: "hold".into(),
        subject_id: 0,
        legs: vec![Leg {
            debit: "grant/7".into(),
            credit: "held".into(),
            amount: 1_000_000,
            kind: "hold".into(),
        }],
        ..entry.clone()
    };
    assert_eq!(
        entries(&[entry, second]),
        "#12 1970-01-01T00:00:00.000Z grant (subject 7) hash 0123456789abcdef\n     \
         post  100.000000  debit grant/7  credit deferred_revenue\n\
         #13 1970-01-01T00:00:00.000Z hold hash 0123456789abcdef\n     \
         hold    1.000000  debit grant/7  credit held\n"
    );
}

#[test]
fn customer_lists_plan_and_features() {
    let response = GetCustomerResponse {
        customer_id: "cus_1".into(),
        display_name: "Acme".into(),
        plan: "pro".into(),
        subscribed_since_ms: 0,
        policy_version: "sha256:ab".into(),
        features: vec![
            EffectiveFeature {
                id: "llm-tokens".into(),
                kind: "metered".into(),
                enabled: true,
                limit: 100_000,
                used: 1_500,
                enforcement: "hard".into(),
                source: "plan/pro".into(),
                ..EffectiveFeature::default()
            },
            EffectiveFeature {
                id: "seats".into(),
                kind: "configuration".into(),
                number: Some(5),
                source: "entitlement/launch-promo".into(),
                ..EffectiveFeature::default()
            },
            EffectiveFeature {
                id: "sso".into(),
                kind: "boolean".into(),
                enabled: false,
                source: "plan/pro".into(),
                ..EffectiveFeature::default()
            },
        ],
    };
    let expected = "\
customer cus_1 (Acme)
  plan: pro since 1970-01-01T00:00:00.000Z
  policy: sha256:ab
  FEATURE     KIND           VALUE                                  SOURCE
  llm-tokens  metered        used 1500 of 100000 (pending 0), hard  plan/pro
  seats       configuration  5                                      entitlement/launch-promo
  sso         boolean        disabled                               plan/pro
";
    assert_eq!(customer(&response), expected);
}

#[test]
fn customer_without_plan_says_so() {
    let response = GetCustomerResponse {
        customer_id: "cus_2".into(),
        ..GetCustomerResponse::default()
    };
    assert_eq!(
        customer(&response),
        "customer cus_2\n  plan: none (no subscription)\n  no features\n"
    );
}
