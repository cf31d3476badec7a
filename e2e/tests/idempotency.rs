//! A retry with the same key and the same request gets the same answer and has no second
//! effect, for every mutating RPC, with every optional field left at its default.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_e2e::proto::{
    CommitRequest, ReleaseRequest, ReserveRequest, SubscribeRequest, UpsertCustomerRequest,
};
use tollgate_e2e::{CatalogDir, Server, credits, decision_of, paid_grant, unique_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_retries_return_the_same_answer() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let c = server.clients().await?;
    let (mut cu, mut wa, mut en) = (
        c.customers.clone(),
        c.wallets.clone(),
        c.enforcement.clone(),
    );
    // Let the clock move between a call and its retry, as it does for a real retry.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(20));
    let mut failures = Vec::new();

    let upsert = UpsertCustomerRequest {
        customer_id: "cus_retry".into(),
        display_name: "Retry".into(),
        idempotency_key: unique_key("upsert"),
    };
    let first = cu.upsert_customer(upsert.clone()).await?.into_inner();
    pause().await;
    match cu.upsert_customer(upsert).await {
        Ok(again) if again.get_ref() == &first => {}
        other => failures.push(format!("UpsertCustomer retry: {other:?}")),
    }

    // start_ms 0 means "now": the retry must not be a different request.
    let subscribe = SubscribeRequest {
        customer_id: "cus_retry".into(),
        plan: "e2e".into(),
        start_ms: 0,
        idempotency_key: unique_key("subscribe"),
    };
    let first = cu.subscribe(subscribe.clone()).await?.into_inner();
    pause().await;
    match cu.subscribe(subscribe).await {
        Ok(again) if again.get_ref() == &first => {}
        other => failures.push(format!("Subscribe (start_ms 0) retry: {other:?}")),
    }

    // effective_at_ms 0 means "now": likewise.
    let grant = paid_grant("cus_retry", credits(10), &unique_key("grant"));
    let first = wa.grant(grant.clone()).await?.into_inner();
    pause().await;
    match wa.grant(grant).await {
        Ok(again) if again.get_ref() == &first => {}
        other => failures.push(format!("Grant (effective_at_ms 0) retry: {other:?}")),
    }
    let bal = c.balance("cus_retry").await?;
    if bal.available != credits(10) {
        failures.push(format!(
            "after the Grant retry, 10 credits expected: {bal:?}"
        ));
    }

    let reserve = ReserveRequest {
        customer_id: "cus_retry".into(),
        feature: "e2e.units".into(),
        units: 3,
        idempotency_key: unique_key("reserve"),
        ..Default::default()
    };
    let held = en.reserve(reserve.clone()).await?.into_inner();
    assert!(decision_of(&held.decision).allowed, "{held:?}");
    pause().await;
    match en.reserve(reserve).await {
        Ok(again) if again.get_ref() == &held => {}
        other => failures.push(format!("Reserve retry: {other:?}")),
    }

    let commit = CommitRequest {
        customer_id: "cus_retry".into(),
        hold_id: held.hold_id,
        units: 2,
        idempotency_key: unique_key("commit"),
    };
    let first = en.commit(commit.clone()).await?.into_inner();
    pause().await;
    match en.commit(commit).await {
        Ok(again) if again.get_ref() == &first => {}
        other => failures.push(format!("Commit retry: {other:?}")),
    }

    let held2 = en
        .reserve(ReserveRequest {
            customer_id: "cus_retry".into(),
            feature: "e2e.units".into(),
            units: 4,
            idempotency_key: unique_key("reserve2"),
            ..Default::default()
        })
        .await?
        .into_inner();
    let release = ReleaseRequest {
        customer_id: "cus_retry".into(),
        hold_id: held2.hold_id,
        idempotency_key: unique_key("release"),
    };
    let first = en.release(release.clone()).await?.into_inner();
    assert_eq!(first.released_micro_credits, credits(4), "{first:?}");
    pause().await;
    match en.release(release).await {
        Ok(again) if again.get_ref() == &first => {}
        other => failures.push(format!("Release retry: {other:?}")),
    }

    let bal = c.balance("cus_retry").await?;
    // 10 granted (once), 2 committed, nothing held.
    if (bal.available, bal.pending) != (credits(8), 0) {
        failures.push(format!(
            "final balance, 8 credits and nothing held expected: {bal:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "retries that were not idempotent:\n{}",
        failures.join("\n")
    );
    Ok(())
}
