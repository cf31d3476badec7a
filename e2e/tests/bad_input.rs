//! Bad input gets the right status naming the field, never a partial write; garbage on the
//! gRPC port does not stop the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_e2e::proto::{
    self, CheckRequest, CommitRequest, GetBalanceRequest, GetCustomerRequest, IngestRequest,
    ReleaseRequest, ReserveRequest, SubscribeRequest, UpsertCustomerRequest, UsageEvent,
};
use tollgate_e2e::{
    CatalogDir, Clients, Server, credits, decision_of, expect_status, paid_grant, status_problem,
    unique_key,
};
use tonic::Code;

const INVALID: &[Code] = &[Code::InvalidArgument];
const BAD_AMOUNT: &[Code] = &[Code::InvalidArgument, Code::OutOfRange];
const NOT_FOUND: &[Code] = &[Code::NotFound];

/// A server with `cus_ok` on the e2e plan holding 100 credits.
async fn setup() -> anyhow::Result<(CatalogDir, Server, Clients)> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let c = server.clients().await?;
    c.create_subscribed("cus_ok", "e2e").await?;
    c.grant("cus_ok", credits(100)).await?;
    Ok((catalog, server, c))
}

/// Balance and journal of `cus_ok`: nothing may change them in these tests.
async fn snapshot(c: &Clients) -> anyhow::Result<(proto::GetBalanceResponse, usize)> {
    Ok((
        c.balance("cus_ok").await?,
        c.all_entries("cus_ok").await?.len(),
    ))
}

fn reserve(customer: &str, feature: &str, units: u64) -> ReserveRequest {
    ReserveRequest {
        customer_id: customer.into(),
        feature: feature.into(),
        units,
        idempotency_key: unique_key("bad"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_name_the_field_and_change_nothing() -> anyhow::Result<()> {
    let (_catalog, _server, c) = setup().await?;
    let before = snapshot(&c).await?;
    // Every check runs and every failure is reported, not only the first.
    let mut failures: Vec<String> = Vec::new();
    let (mut cu, mut wa, mut en, mut me) = (
        c.customers.clone(),
        c.wallets.clone(),
        c.enforcement.clone(),
        c.metering.clone(),
    );

    // Missing ids and keys.
    let r = cu
        .upsert_customer(UpsertCustomerRequest {
            customer_id: String::new(),
            display_name: "x".into(),
            idempotency_key: unique_key("k"),
        })
        .await;
    failures.extend(status_problem(
        "UpsertCustomer without customer_id",
        r,
        INVALID,
        "customer_id",
    ));
    let r = cu
        .upsert_customer(UpsertCustomerRequest {
            customer_id: "cus_new".into(),
            display_name: "x".into(),
            idempotency_key: String::new(),
        })
        .await;
    failures.extend(status_problem(
        "UpsertCustomer without idempotency_key",
        r,
        INVALID,
        "idempotency_key",
    ));
    let r = cu
        .upsert_customer(UpsertCustomerRequest {
            customer_id: "c".repeat(129),
            display_name: "x".into(),
            idempotency_key: unique_key("k"),
        })
        .await;
    failures.extend(status_problem(
        "UpsertCustomer with a 129-byte id",
        r,
        INVALID,
        "customer_id",
    ));
    // An id with white space at an end or a control character: refused, not taken as a
    // second customer that " cus_ok" would silently become.
    for id in [" cus_ok", "cus_ok\n", "cus\tok"] {
        let r = cu
            .upsert_customer(UpsertCustomerRequest {
                customer_id: id.into(),
                display_name: "x".into(),
                idempotency_key: unique_key("k"),
            })
            .await;
        failures.extend(status_problem(
            &format!("UpsertCustomer with id {id:?}"),
            r,
            INVALID,
            "customer_id",
        ));
    }
    let r = en
        .check(CheckRequest {
            customer_id: "cus_ok".into(),
            feature: "model.gpt-small".into(),
            subject: Some(proto::Subject {
                agent: "agent-1 ".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    failures.extend(status_problem(
        "Check with agent \"agent-1 \"",
        r,
        INVALID,
        "subject.agent",
    ));
    let r = cu
        .subscribe(SubscribeRequest {
            customer_id: "cus_ok".into(),
            plan: String::new(),
            start_ms: 0,
            idempotency_key: unique_key("k"),
        })
        .await;
    failures.extend(status_problem("Subscribe without plan", r, INVALID, "plan"));
    let r = wa.grant(paid_grant("", credits(1), &unique_key("k"))).await;
    failures.extend(status_problem(
        "Grant without customer_id",
        r,
        INVALID,
        "customer_id",
    ));
    let r = wa.grant(paid_grant("cus_ok", credits(1), "")).await;
    failures.extend(status_problem(
        "Grant without idempotency_key",
        r,
        INVALID,
        "idempotency_key",
    ));
    let mut no_category = paid_grant("cus_ok", credits(1), &unique_key("k"));
    no_category.category = proto::GrantCategory::Unspecified as i32;
    let r = wa.grant(no_category).await;
    failures.extend(status_problem(
        "Grant without category",
        r,
        INVALID,
        "category",
    ));
    let r = wa
        .get_balance(GetBalanceRequest {
            customer_id: String::new(),
        })
        .await;
    failures.extend(status_problem(
        "GetBalance without customer_id",
        r,
        INVALID,
        "customer_id",
    ));
    let r = en.reserve(reserve("", "e2e.units", 1)).await;
    failures.extend(status_problem(
        "Reserve without customer_id",
        r,
        INVALID,
        "customer_id",
    ));
    let r = en.reserve(reserve("cus_ok", "", 1)).await;
    failures.extend(status_problem(
        "Reserve without feature",
        r,
        INVALID,
        "feature",
    ));
    let mut no_key = reserve("cus_ok", "e2e.units", 1);
    no_key.idempotency_key = String::new();
    let r = en.reserve(no_key).await;
    failures.extend(status_problem(
        "Reserve without idempotency_key",
        r,
        INVALID,
        "idempotency_key",
    ));
    let r = en
        .check(CheckRequest {
            customer_id: "cus_ok".into(),
            feature: String::new(),
            ..Default::default()
        })
        .await;
    failures.extend(status_problem(
        "Check without feature",
        r,
        INVALID,
        "feature",
    ));
    let r = en
        .commit(CommitRequest {
            customer_id: "cus_ok".into(),
            hold_id: 0,
            units: 1,
            idempotency_key: unique_key("k"),
        })
        .await;
    failures.extend(status_problem(
        "Commit without hold_id",
        r,
        INVALID,
        "hold_id",
    ));
    let r = en
        .release(ReleaseRequest {
            customer_id: "cus_ok".into(),
            hold_id: 0,
            idempotency_key: unique_key("k"),
        })
        .await;
    failures.extend(status_problem(
        "Release without hold_id",
        r,
        INVALID,
        "hold_id",
    ));

    // Zero and overflowing amounts.
    let r = wa.grant(paid_grant("cus_ok", 0, &unique_key("k"))).await;
    failures.extend(status_problem(
        "Grant of 0",
        r,
        BAD_AMOUNT,
        "amount_micro_credits",
    ));
    let r = wa
        .grant(paid_grant("cus_ok", u64::MAX, &unique_key("k")))
        .await;
    failures.extend(status_problem(
        "Grant that overflows the wallet",
        r,
        BAD_AMOUNT,
        "amount",
    ));
    let r = en.reserve(reserve("cus_ok", "e2e.units", 0)).await;
    failures.extend(status_problem(
        "Reserve of 0 metered units",
        r,
        BAD_AMOUNT,
        "units",
    ));
    let r = en.reserve(reserve("cus_ok", "e2e.units", u64::MAX)).await;
    failures.extend(status_problem(
        "Reserve whose price overflows",
        r,
        BAD_AMOUNT,
        "units",
    ));
    let mut too_long = reserve("cus_ok", "e2e.units", 1);
    too_long.hold_timeout_ms = 24 * 60 * 60 * 1000 + 1;
    let r = en.reserve(too_long).await;
    failures.extend(status_problem(
        "Reserve held longer than 24 h",
        r,
        BAD_AMOUNT,
        "hold_timeout_ms",
    ));
    let r = me.ingest(IngestRequest { events: Vec::new() }).await;
    failures.extend(status_problem("Ingest of no events", r, INVALID, "events"));

    let after = snapshot(&c).await?;
    if after != before {
        failures.push(format!(
            "something was applied:\nbefore {before:?}\nafter  {after:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_customer_feature_plan_and_hold() -> anyhow::Result<()> {
    let (_catalog, _server, c) = setup().await?;
    let before = snapshot(&c).await?;
    let (mut cu, mut wa, mut en) = (
        c.customers.clone(),
        c.wallets.clone(),
        c.enforcement.clone(),
    );

    let r = wa
        .grant(paid_grant("cus_nobody", credits(1), &unique_key("k")))
        .await;
    expect_status("Grant to an unknown customer", r, NOT_FOUND, "cus_nobody");
    let r = wa
        .get_balance(GetBalanceRequest {
            customer_id: "cus_nobody".into(),
        })
        .await;
    expect_status(
        "GetBalance of an unknown customer",
        r,
        NOT_FOUND,
        "cus_nobody",
    );
    let r = cu
        .get_customer(GetCustomerRequest {
            customer_id: "cus_nobody".into(),
        })
        .await;
    expect_status(
        "GetCustomer of an unknown customer",
        r,
        NOT_FOUND,
        "cus_nobody",
    );
    let r = cu
        .subscribe(SubscribeRequest {
            customer_id: "cus_nobody".into(),
            plan: "pro".into(),
            start_ms: 0,
            idempotency_key: unique_key("k"),
        })
        .await;
    expect_status(
        "Subscribe of an unknown customer",
        r,
        NOT_FOUND,
        "cus_nobody",
    );
    let r = cu
        .subscribe(SubscribeRequest {
            customer_id: "cus_ok".into(),
            plan: "no-such-plan".into(),
            start_ms: 0,
            idempotency_key: unique_key("k"),
        })
        .await;
    expect_status("Subscribe to an unknown plan", r, NOT_FOUND, "no-such-plan");
    let r = en.reserve(reserve("cus_ok", "no.such.feature", 1)).await;
    expect_status(
        "Reserve of an unknown feature",
        r,
        NOT_FOUND,
        "no.such.feature",
    );
    let r = en
        .check(CheckRequest {
            customer_id: "cus_ok".into(),
            feature: "no.such.feature".into(),
            ..Default::default()
        })
        .await;
    expect_status(
        "Check of an unknown feature",
        r,
        NOT_FOUND,
        "no.such.feature",
    );
    let r = en
        .commit(CommitRequest {
            customer_id: "cus_ok".into(),
            hold_id: 987_654_321,
            units: 1,
            idempotency_key: unique_key("k"),
        })
        .await;
    expect_status("Commit of an unknown hold", r, NOT_FOUND, "hold");

    // Decisions, not errors: an unknown customer, a customer without a subscription, a
    // feature of the catalog that the plan lacks.
    let d = en
        .reserve(reserve("cus_nobody", "e2e.units", 1))
        .await?
        .into_inner();
    assert_eq!(
        decision_of(&d.decision).reason,
        proto::Reason::UnknownCustomer as i32,
        "{d:?}"
    );
    assert!(!decision_of(&d.decision).allowed);
    cu.upsert_customer(UpsertCustomerRequest {
        customer_id: "cus_unsubscribed".into(),
        display_name: String::new(),
        idempotency_key: unique_key("k"),
    })
    .await?;
    let d = en
        .reserve(reserve("cus_unsubscribed", "e2e.units", 1))
        .await?
        .into_inner();
    assert_eq!(
        decision_of(&d.decision).reason,
        proto::Reason::NoSubscription as i32,
        "{d:?}"
    );
    let d = en
        .reserve(reserve("cus_ok", "llm-tokens", 1))
        .await?
        .into_inner();
    assert_eq!(
        decision_of(&d.decision).reason,
        proto::Reason::NoEntitlement as i32,
        "the e2e plan has no llm-tokens: {d:?}"
    );

    assert_eq!(snapshot(&c).await?, before, "nothing was applied");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_garbage_bytes_leave_the_server_serving() -> anyhow::Result<()> {
    let (_catalog, server, c) = setup().await?;
    let before = snapshot(&c).await?;
    let mut cu = c.customers.clone();

    // A name longer than its limit: a field error.
    let r = cu
        .upsert_customer(UpsertCustomerRequest {
            customer_id: "cus_ok".into(),
            display_name: "n".repeat(1024),
            idempotency_key: unique_key("k"),
        })
        .await;
    expect_status(
        "UpsertCustomer with a 1 KiB name",
        r,
        INVALID,
        "display_name",
    );

    // Over the 4 MiB request limit.
    let r = cu
        .upsert_customer(UpsertCustomerRequest {
            customer_id: "cus_ok".into(),
            display_name: "n".repeat(5 * 1024 * 1024),
            idempotency_key: unique_key("k"),
        })
        .await;
    expect_status(
        "a 5 MiB request",
        r,
        &[Code::ResourceExhausted, Code::OutOfRange],
        "",
    );
    let events: Vec<UsageEvent> = (0..40_000)
        .map(|i| UsageEvent {
            id: format!("evt-{i:0>100}"),
            customer_id: "cus_ok".into(),
            feature: "e2e.units".into(),
            quantity: 1,
            ..Default::default()
        })
        .collect();
    let r = c.metering.clone().ingest(IngestRequest { events }).await;
    expect_status(
        "an Ingest over 4 MiB",
        r,
        &[
            Code::ResourceExhausted,
            Code::OutOfRange,
            Code::InvalidArgument,
        ],
        "",
    );

    // Garbage on the gRPC port: junk, then an HTTP/2 preface followed by junk, then a
    // connection that says nothing and stays open.
    let junk: Vec<u8> = (0u32..65_536)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut preface_junk = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface_junk.extend_from_slice(&junk[..4096]);
    for payload in [
        junk.clone(),
        preface_junk,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ] {
        let mut stream = tokio::net::TcpStream::connect(server.grpc_addr()).await?;
        // The server may close the connection mid-write: that is fine.
        let _ = stream.write_all(&payload).await;
        let mut buf = vec![0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
    }
    let _idle = tokio::net::TcpStream::connect(server.grpc_addr()).await?;

    // Still serving, on the old connection and on a new one.
    let health = c
        .health
        .clone()
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tollgate.v1.Enforcement".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let fresh = server.clients().await?;
    assert_eq!(snapshot(&fresh).await?, before, "nothing was applied");
    let d = fresh
        .enforcement
        .clone()
        .reserve(reserve("cus_ok", "e2e.units", 1))
        .await?
        .into_inner();
    assert!(
        decision_of(&d.decision).allowed,
        "a later call succeeds: {d:?}"
    );
    assert_eq!(server.http_get("/readyz").await?.status, 200);
    Ok(())
}

/// The free plan prices tokens for model=gpt-small only: tokens of another model are refused
/// with REASON_NOT_PRICED naming plan, feature and value, never free, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_without_a_rate_is_refused_not_given_away() -> anyhow::Result<()> {
    let (_catalog, _server, c) = setup().await?;
    c.create_subscribed("cus_free", "free").await?;
    c.grant("cus_free", credits(10)).await?;
    let before = (
        c.balance("cus_free").await?,
        c.all_entries("cus_free").await?.len(),
    );
    let large = |units| ReserveRequest {
        dimensions: [("model".to_string(), "gpt-large".to_string())].into(),
        ..reserve("cus_free", "llm-tokens", units)
    };
    let held = c
        .enforcement
        .clone()
        .reserve(large(1_000))
        .await?
        .into_inner();
    let decision = decision_of(&held.decision);
    assert!(!decision.allowed, "{decision:?}");
    assert_eq!(decision.reason(), proto::Reason::NotPriced, "{decision:?}");
    assert!(
        decision
            .message
            .contains("plan free prices llm-tokens by model")
            && decision.message.contains("model=gpt-large"),
        "{}",
        decision.message
    );
    let checked = c
        .enforcement
        .clone()
        .check(CheckRequest {
            customer_id: "cus_free".into(),
            feature: "llm-tokens".into(),
            units: 1_000,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(
        decision_of(&checked.decision).reason(),
        proto::Reason::NotPriced,
        "no model given: not priced either"
    );
    let ingested = c
        .metering
        .clone()
        .ingest(IngestRequest {
            events: vec![UsageEvent {
                id: unique_key("evt"),
                customer_id: "cus_free".into(),
                feature: "llm-tokens".into(),
                quantity: 1_000,
                dimensions: [("model".to_string(), "gpt-large".to_string())].into(),
                ..Default::default()
            }],
        })
        .await?
        .into_inner();
    assert_eq!(ingested.accepted, 0);
    assert_eq!(ingested.rejected.len(), 1, "{ingested:?}");
    assert!(
        ingested.rejected[0]
            .reason
            .contains("no rate for model=gpt-large"),
        "{ingested:?}"
    );
    let after = (
        c.balance("cus_free").await?,
        c.all_entries("cus_free").await?.len(),
    );
    assert_eq!(before, after, "a refused usage changes nothing");
    Ok(())
}
