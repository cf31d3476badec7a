//! The README walkthrough, step by step through the gRPC API: create a customer, subscribe it
//! to `pro`, grant credits, check, reserve, commit, read the balance and the journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use tollgate_e2e::proto::{
    self, CheckRequest, CommitRequest, GetCustomerRequest, ReserveRequest, SubscribeRequest,
    UpsertCustomerRequest,
};
use tollgate_e2e::{CatalogDir, Server, credits, decision_of, paid_grant, unique_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_through_grpc() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let c = server.clients().await?;
    let (mut customers, mut wallets, mut enforcement) = (
        c.customers.clone(),
        c.wallets.clone(),
        c.enforcement.clone(),
    );

    // The HTTP side is up.
    assert_eq!(server.http_get("/healthz").await?.status, 200);
    assert_eq!(server.http_get("/readyz").await?.status, 200);
    let metrics = server.http_get("/metrics").await?;
    assert_eq!(metrics.status, 200);
    let policy = server.policy().await?;
    assert!(policy.version.starts_with("sha256:"), "{policy:?}");
    assert_eq!(policy.last_error, None);
    // examples/catalog: 3 plans, 3 entitlements, 3 budget caps; and the e2e plan.
    assert_eq!(policy.objects, 10, "{policy:?}");

    // tollgate customer create acme
    let create = UpsertCustomerRequest {
        customer_id: "cus_acme".into(),
        display_name: "Acme Inc.".into(),
        idempotency_key: unique_key("create"),
    };
    let created = customers
        .upsert_customer(create.clone())
        .await?
        .into_inner();
    assert!(created.created, "a new customer: {created:?}");
    let again = customers.upsert_customer(create).await?.into_inner();
    assert!(again.created, "the retry gives the same answer: {again:?}");
    let renamed = customers
        .upsert_customer(UpsertCustomerRequest {
            customer_id: "cus_acme".into(),
            display_name: "Acme Incorporated".into(),
            idempotency_key: unique_key("rename"),
        })
        .await?
        .into_inner();
    assert!(!renamed.created, "a rename does not create: {renamed:?}");

    // tollgate subscribe acme pro
    let sub = customers
        .subscribe(SubscribeRequest {
            customer_id: "cus_acme".into(),
            plan: "pro".into(),
            start_ms: 0,
            idempotency_key: unique_key("sub"),
        })
        .await?
        .into_inner();
    assert_eq!(sub.plan, "pro");
    assert_eq!(sub.grants_issued, 1, "pro's monthly credits: {sub:?}");
    assert!(sub.start_ms > 0, "start 0 means now: {sub:?}");

    let bal = c.balance("cus_acme").await?;
    assert_eq!(bal.available, credits(20_000), "{bal:?}");
    assert_eq!(bal.pending, 0);

    // tollgate grant acme 100
    let grant = wallets
        .grant(paid_grant("cus_acme", credits(100), &unique_key("grant")))
        .await?
        .into_inner();
    assert!(grant.grant_id > 0 && grant.entry_id > 0, "{grant:?}");
    let bal = c.balance("cus_acme").await?;
    assert_eq!(bal.available, credits(20_100), "{bal:?}");
    assert_eq!(bal.grants.len(), 2, "{bal:?}");

    // tollgate check acme model.gpt-large
    let check = enforcement
        .check(CheckRequest {
            customer_id: "cus_acme".into(),
            feature: "model.gpt-large".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let d = decision_of(&check.decision);
    assert!(d.allowed, "{check:?}");
    assert_eq!(d.reason, proto::Reason::Allowed as i32);
    assert_eq!(d.policy_version, policy.version);

    // A feature pro does not have.
    let check = enforcement
        .check(CheckRequest {
            customer_id: "cus_acme".into(),
            feature: "model.reasoning".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let d = decision_of(&check.decision);
    assert!(!d.allowed, "{check:?}");
    assert_eq!(d.reason, proto::Reason::NoEntitlement as i32, "{check:?}");

    // A configuration value.
    let check = enforcement
        .check(CheckRequest {
            customer_id: "cus_acme".into(),
            feature: "context-window".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(check.number, Some(128_000), "{check:?}");

    // The price of 2,000 large-model tokens: 0.5 credits per 1k.
    let large: HashMap<String, String> = [("model".to_string(), "gpt-large".to_string())].into();
    let check = enforcement
        .check(CheckRequest {
            customer_id: "cus_acme".into(),
            feature: "llm-tokens".into(),
            dimensions: large.clone(),
            units: 2000,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(decision_of(&check.decision).allowed, "{check:?}");
    assert_eq!(check.price_micro_credits, 1_000_000, "{check:?}");

    // tollgate reserve acme llm-tokens 2000 --dim model=gpt-large
    let reserve = ReserveRequest {
        customer_id: "cus_acme".into(),
        feature: "llm-tokens".into(),
        dimensions: large,
        units: 2000,
        idempotency_key: unique_key("reserve"),
        ..Default::default()
    };
    let held = enforcement.reserve(reserve.clone()).await?.into_inner();
    let d = decision_of(&held.decision);
    assert!(d.allowed, "{held:?}");
    assert_eq!(d.reason, proto::Reason::Allowed as i32);
    assert!(held.hold_id > 0);
    assert_eq!(held.held_micro_credits, 1_000_000, "{held:?}");
    let wallet = d
        .remaining
        .iter()
        .find(|r| r.name == "wallet")
        .unwrap_or_else(|| panic!("no wallet in remaining: {held:?}"));
    assert_eq!(wallet.remaining, credits(20_100) - 1_000_000, "{held:?}");
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    assert!(
        held.expires_at_ms > now_ms && held.expires_at_ms <= now_ms + 61_000,
        "default hold timeout is 60 s: {held:?}"
    );
    let bal = c.balance("cus_acme").await?;
    assert_eq!(bal.available, credits(20_100) - 1_000_000, "{bal:?}");
    assert_eq!(bal.pending, 1_000_000, "{bal:?}");
    // The retry holds nothing more.
    assert_eq!(enforcement.reserve(reserve).await?.into_inner(), held);
    assert_eq!(c.balance("cus_acme").await?.pending, 1_000_000);

    // tollgate commit acme <hold> 1500
    let commit = enforcement
        .commit(CommitRequest {
            customer_id: "cus_acme".into(),
            hold_id: held.hold_id,
            units: 1500,
            idempotency_key: unique_key("commit"),
        })
        .await?
        .into_inner();
    assert_eq!(commit.posted_micro_credits, 750_000, "{commit:?}");
    assert_eq!(commit.released_micro_credits, 250_000, "{commit:?}");
    assert_eq!(commit.overage_micro_credits, 0);
    assert_eq!(commit.unbilled_micro_credits, 0);

    // tollgate balance acme
    let bal = c.balance("cus_acme").await?;
    assert_eq!(bal.available, credits(20_100) - 750_000, "{bal:?}");
    assert_eq!(bal.pending, 0, "{bal:?}");
    let used: u64 = bal.grants.iter().map(|g| g.used).sum();
    assert_eq!(used, 750_000, "{bal:?}");

    // tollgate entries acme
    let entries = c.all_entries("cus_acme").await?;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["grant", "grant", "hold", "commit"], "{entries:#?}");
    assert!(
        entries.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.hash.is_empty() && !e.legs.is_empty())
    );
    assert_eq!(entries[2].subject_id, held.hold_id);
    assert_eq!(entries[3].subject_id, held.hold_id);
    assert!(entries.iter().any(|e| e.id == grant.entry_id));

    // The customer, its plan and the usage counted against llm-tokens.
    let cust = customers
        .get_customer(GetCustomerRequest {
            customer_id: "cus_acme".into(),
        })
        .await?
        .into_inner();
    assert_eq!(cust.plan, "pro");
    assert_eq!(cust.display_name, "Acme Incorporated");
    assert_eq!(cust.policy_version, policy.version);
    let tokens = cust
        .features
        .iter()
        .find(|f| f.id == "llm-tokens")
        .unwrap_or_else(|| panic!("no llm-tokens feature: {cust:?}"));
    assert_eq!(tokens.kind, "metered");
    assert_eq!(tokens.limit, 10_000_000, "{tokens:?}");
    assert_eq!(tokens.used, 1500, "{tokens:?}");
    assert_eq!(tokens.pending, 0, "{tokens:?}");

    // What the ledgers keep in memory is exported per partition: at least Acme's 4 entries.
    let metrics = server.http_get("/metrics").await?.body;
    let journal: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("tollgate_engine_journal_entries{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(journal >= 4, "{metrics}");
    // The ledger's first chunks of each kind came from the spares, or were counted missed.
    for kind in ["journal", "holds", "answers"] {
        let counted = |name: &str| -> u64 {
            let series = format!("{name}{{kind=\"{kind}\"}} ");
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&series)?.parse().ok())
                .unwrap_or(0)
        };
        let chunks = counted("tollgate_ledger_spare_chunks_taken_total")
            + counted("tollgate_ledger_spare_chunks_missed_total");
        assert!(chunks >= 1, "{kind}: {metrics}");
    }
    Ok(())
}
