use super::*;
use crate::grpc::proto::Rejection;

fn wallet(available: u64) -> Remaining {
    Remaining {
        name: "wallet".into(),
        unit: Unit::MicroCredits as i32,
        remaining: available,
        ..Remaining::default()
    }
}

fn allowed() -> Decision {
    Decision {
        allowed: true,
        reason: Reason::Allowed as i32,
        policy_version: "sha256:0123456789abcdef".into(),
        remaining: vec![
            wallet(12_500_000),
            Remaining {
                name: "feature/llm-tokens".into(),
                unit: Unit::MeterUnits as i32,
                limit: 100_000,
                used: 1_500,
                pending: 2_000,
                remaining: 96_500,
                unlimited: false,
                resets_at_ms: 1_764_339_600_000,
            },
        ],
        ..Decision::default()
    }
}

#[test]
fn allowed_decision_lists_what_remains() {
    assert_eq!(
        decision(&allowed()),
        "allowed (REASON_ALLOWED) policy sha256:0123456789abcdef\n  \
         wallet: 12.500000 credits left\n  \
         feature/llm-tokens: 96500 of 100000 units left (used 1500, pending 2000), \
         resets 2025-11-28T14:20:00.000Z"
    );
}

#[test]
fn budget_cap_denial_names_cap_and_level() {
    let denied = Decision {
        allowed: false,
        reason: Reason::BudgetCap as i32,
        message: "agent support-bot spent its 5 credits today".into(),
        cap_level: CapLevel::Agent as i32,
        cap_name: "agent-daily-spend".into(),
        remaining: vec![Remaining {
            name: "cap/agent-daily-spend".into(),
            unit: Unit::MicroCredits as i32,
            limit: 5_000_000,
            used: 4_000_000,
            pending: 1_000_000,
            remaining: 0,
            ..Remaining::default()
        }],
        policy_version: "sha256:ab".into(),
        alerts: vec!["soft/llm-tokens".into()],
    };
    assert_eq!(
        decision(&denied),
        "DENIED: budget cap agent-daily-spend (agent level): agent support-bot spent its 5 \
         credits today\n  policy sha256:ab\n  \
         cap/agent-daily-spend: 0.000000 of 5.000000 credits left (used 4.000000, pending \
         1.000000)\n  alert: soft/llm-tokens"
    );
}

#[test]
fn other_denials_and_fail_open_read_plainly() {
    let denied = Decision {
        reason: Reason::InsufficientCredits as i32,
        message: "needs 2.000000, has 1.000000".into(),
        ..Decision::default()
    };
    assert_eq!(
        decision(&denied),
        "DENIED: insufficient credits: needs 2.000000, has 1.000000"
    );
    let open = Decision {
        allowed: true,
        reason: Reason::FailOpen as i32,
        message: "store unreachable".into(),
        ..Decision::default()
    };
    assert_eq!(
        decision(&open),
        "allowed (REASON_FAIL_OPEN)\n  note: store unreachable"
    );
    let unknown = Decision {
        reason: 42,
        ..Decision::default()
    };
    assert_eq!(decision(&unknown), "DENIED: reason 42");
}

#[test]
fn a_message_that_already_names_the_denial_is_not_repeated() {
    let denied = Decision {
        reason: Reason::BudgetCap as i32,
        cap_level: CapLevel::Team as i32,
        cap_name: "team-monthly".into(),
        message: "budget cap team-monthly (team level) reached".into(),
        ..Decision::default()
    };
    assert_eq!(
        decision(&denied),
        "DENIED: budget cap team-monthly (team level) reached"
    );
}

#[test]
fn unlimited_and_pending_wallet_lines() {
    let d = Decision {
        allowed: true,
        reason: Reason::Allowed as i32,
        remaining: vec![
            Remaining {
                pending: 4_000,
                ..wallet(1_000_000)
            },
            Remaining {
                name: "feature/images".into(),
                unit: Unit::MeterUnits as i32,
                unlimited: true,
                used: 3,
                ..Remaining::default()
            },
        ],
        ..Decision::default()
    };
    assert_eq!(
        decision(&d),
        "allowed (REASON_ALLOWED)\n  wallet: 1.000000 credits left (pending 0.004000)\n  \
         feature/images: unlimited (used 3 units, pending 0 units)"
    );
}

#[test]
fn reserve_shows_the_hold_and_next_steps() {
    let response = ReserveResponse {
        decision: Some(Decision {
            remaining: vec![],
            ..allowed()
        }),
        hold_id: 42,
        held_micro_credits: 4_000,
        expires_at_ms: 1_764_339_600_000,
    };
    let text = reserve(&response, "cus_1");
    assert!(
        text.contains("hold 42: 0.004000 credits held until 2025-11-28T14:20:00.000Z"),
        "{text}"
    );
    assert!(
        text.contains("tollgate commit cus_1 42 --units N"),
        "{text}"
    );
    let denied = ReserveResponse {
        decision: Some(Decision::default()),
        ..ReserveResponse::default()
    };
    assert!(!reserve(&denied, "cus_1").contains("hold"));
    // Allowed with nothing held (a boolean feature): no hold 0 to commit.
    let nothing = ReserveResponse {
        decision: Some(allowed()),
        ..ReserveResponse::default()
    };
    let text = reserve(&nothing, "cus_1");
    assert!(text.contains("nothing held"), "{text}");
    assert!(
        !text.contains("hold 0") && !text.contains("commit"),
        "{text}"
    );
}

#[test]
fn check_shows_price_and_configuration_value() {
    let response = CheckResponse {
        decision: Some(Decision {
            remaining: vec![],
            ..allowed()
        }),
        number: Some(5),
        choice: None,
        price_micro_credits: 2_000,
    };
    assert_eq!(
        check(&response, 1_000),
        "allowed (REASON_ALLOWED) policy sha256:0123456789abcdef\n  \
         price: 0.002000 credits for 1000 units\n  value: 5"
    );
}

#[test]
fn mutating_calls_summarise_amounts_in_credits() {
    let committed = CommitResponse {
        posted_micro_credits: 3_600,
        released_micro_credits: 400,
        overage_micro_credits: 0,
        unbilled_micro_credits: 10,
    };
    assert_eq!(
        commit(&committed, 42),
        "committed hold 42: posted 0.003600 credits, released 0.000400 credits\n  \
         unbilled (overage policy): 0.000010 credits"
    );
    let granted = GrantResponse {
        grant_id: 7,
        entry_id: 12,
        repaid_overdraft_micro_credits: 0,
    };
    assert_eq!(
        grant(&granted, "cus_1", 100_000_000),
        "granted 100.000000 credits to cus_1: grant 7, journal entry 12"
    );
    let subscribed = SubscribeResponse {
        plan: "pro".into(),
        start_ms: 0,
        grants_issued: 1,
    };
    assert_eq!(
        subscribe(&subscribed, "cus_1"),
        "subscribed cus_1 to pro from 1970-01-01T00:00:00.000Z; 1 included grant issued"
    );
    let created = UpsertCustomerResponse { created: true };
    assert_eq!(upsert_customer(&created, "cus_1"), "created customer cus_1");
}

#[test]
fn ingest_names_rejected_events() {
    let response = IngestResponse {
        accepted: 1,
        duplicates: 1,
        rejected: vec![Rejection {
            index: 2,
            reason: "quantity must be > 0".into(),
        }],
        debited_micro_credits: 3_000,
        unbilled_micro_credits: 0,
    };
    assert_eq!(
        ingest(&response, |i| format!("line {}", i + 1)),
        "accepted 1, duplicates 1, rejected 1; debited 0.003000 credits\n  \
         rejected line 3: quantity must be > 0"
    );
}
