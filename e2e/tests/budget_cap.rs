//! An agent's budget cap denies while its customer still has credits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_e2e::proto::{self, CheckRequest, ReserveRequest, Subject};
use tollgate_e2e::{CatalogDir, Server, credits, decision_of, unique_key};

fn reserve(agent: &str, units: u64) -> ReserveRequest {
    ReserveRequest {
        customer_id: "cus_agents".into(),
        subject: Some(Subject {
            team: "support".into(),
            user: "user-1".into(),
            agent: agent.into(),
        }),
        feature: "e2e.units".into(),
        units,
        idempotency_key: unique_key("cap"),
        hold_timeout_ms: 600_000,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_budget_cap_denies_while_the_customer_has_credits() -> anyhow::Result<()> {
    // examples/catalog/budget-caps.yaml: `agent-daily-spend` caps any agent at 50 credits a day.
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let c = server.clients().await?;
    c.create_subscribed("cus_agents", "e2e").await?;
    c.grant("cus_agents", credits(1000)).await?;
    let mut enforcement = c.enforcement.clone();

    // 30 + 20 credits: exactly the cap.
    for units in [30, 20] {
        let ok = enforcement
            .reserve(reserve("bot-1", units))
            .await?
            .into_inner();
        let d = decision_of(&ok.decision);
        assert!(d.allowed, "{units} units within the cap: {ok:?}");
        let cap = d
            .remaining
            .iter()
            .find(|r| r.name == "cap/agent-daily-spend")
            .unwrap_or_else(|| panic!("the agent cap is in remaining: {ok:?}"));
        assert_eq!(cap.limit, credits(50), "{cap:?}");
    }

    // One more credit: the cap denies, though the wallet holds 950.
    let denied = enforcement.reserve(reserve("bot-1", 1)).await?.into_inner();
    let d = decision_of(&denied.decision);
    assert!(!d.allowed, "{denied:?}");
    assert_eq!(d.reason, proto::Reason::BudgetCap as i32, "{denied:?}");
    assert_eq!(d.cap_level, proto::CapLevel::Agent as i32, "{denied:?}");
    assert_eq!(d.cap_name, "agent-daily-spend", "{denied:?}");
    assert!(!d.message.is_empty(), "a sentence for people: {denied:?}");
    assert_eq!(denied.hold_id, 0);
    let bal = c.balance("cus_agents").await?;
    assert_eq!(
        bal.available,
        credits(950),
        "the customer still has credits: {bal:?}"
    );
    assert_eq!(bal.pending, credits(50), "the denial held nothing: {bal:?}");

    // Check says the same without a write.
    let check = enforcement
        .check(CheckRequest {
            customer_id: "cus_agents".into(),
            subject: Some(Subject {
                agent: "bot-1".into(),
                ..Default::default()
            }),
            feature: "e2e.units".into(),
            units: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let d = decision_of(&check.decision);
    assert!(!d.allowed, "{check:?}");
    assert_eq!(d.reason, proto::Reason::BudgetCap as i32, "{check:?}");
    assert_eq!(d.cap_level, proto::CapLevel::Agent as i32, "{check:?}");
    assert_eq!(d.cap_name, "agent-daily-spend", "{check:?}");

    // Another agent of the same customer, and the customer with no agent, still may.
    let other = enforcement
        .reserve(reserve("bot-2", 10))
        .await?
        .into_inner();
    assert!(
        decision_of(&other.decision).allowed,
        "another agent: {other:?}"
    );
    let mut no_agent = reserve("", 100);
    no_agent.subject = None;
    let plain = enforcement.reserve(no_agent).await?.into_inner();
    assert!(
        decision_of(&plain.decision).allowed,
        "no agent, no agent cap: {plain:?}"
    );
    let bal = c.balance("cus_agents").await?;
    assert_eq!(bal.pending, credits(160), "{bal:?}");
    Ok(())
}
