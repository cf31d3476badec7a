//! Zero overdraft and idempotency under concurrency, through the real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use tokio::task::JoinSet;
use tollgate_e2e::proto::{self, CommitRequest, ReserveRequest};
use tollgate_e2e::{
    CatalogDir, Clients, Server, ServerOptions, credits, decision_of, now_ms, paid_grant_at,
    unique_key,
};

fn reserve_units(customer: &str, units: u64, key: &str) -> ReserveRequest {
    ReserveRequest {
        customer_id: customer.into(),
        feature: "e2e.units".into(),
        units,
        idempotency_key: key.into(),
        hold_timeout_ms: 600_000,
        ..Default::default()
    }
}

/// Several connections, so the calls really overlap on the server.
async fn connections(server: &Server, n: usize) -> anyhow::Result<Vec<Clients>> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(server.clients().await?);
    }
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_reserves_exactly_one_hundred_fit() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    five_hundred_reserves_against_one_hundred_credits(&server).await
}

/// The same race against a server that serves every call on one thread
/// (`--worker-threads 1`, tokio's current-thread scheduler).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_reserves_on_one_server_thread() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let mut options = ServerOptions::new(catalog.path());
    options.extra_args = vec!["--worker-threads".into(), "1".into()];
    let server = Server::start(options).await?;
    five_hundred_reserves_against_one_hundred_credits(&server).await
}

async fn five_hundred_reserves_against_one_hundred_credits(server: &Server) -> anyhow::Result<()> {
    let conns = connections(server, 8).await?;
    let c = &conns[0];
    c.create_subscribed("cus_race", "e2e").await?;
    assert_eq!(
        c.balance("cus_race").await?.available,
        0,
        "the e2e plan grants nothing"
    );
    // 100 credits; each reservation of 1 unit costs exactly 1 credit.
    c.grant("cus_race", credits(100)).await?;

    let barrier = Arc::new(tokio::sync::Barrier::new(500));
    let mut tasks = JoinSet::new();
    for i in 0..500 {
        let mut enforcement = conns[i % conns.len()].enforcement.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            enforcement
                .reserve(reserve_units("cus_race", 1, &format!("race-{i}")))
                .await
                .map(|r| r.into_inner())
        });
    }
    let mut allowed = Vec::new();
    let mut denied = 0;
    while let Some(joined) = tasks.join_next().await {
        let resp = joined?.map_err(|s| anyhow::anyhow!("Reserve failed: {s:?}"))?;
        let d = decision_of(&resp.decision);
        if d.allowed {
            assert_eq!(resp.held_micro_credits, credits(1), "{resp:?}");
            allowed.push(resp.hold_id);
        } else {
            assert_eq!(
                d.reason,
                proto::Reason::InsufficientCredits as i32,
                "a denial here can only be for credits: {resp:?}"
            );
            assert_eq!(resp.hold_id, 0, "a denial holds nothing: {resp:?}");
            denied += 1;
        }
    }
    assert_eq!(
        allowed.len(),
        100,
        "exactly 100 of 500 fit ({denied} denied)"
    );
    assert_eq!(denied, 400);
    let distinct: HashSet<u64> = allowed.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        100,
        "every allowed reservation has its own hold"
    );

    let bal = c.balance("cus_race").await?;
    assert_eq!(bal.available, 0, "{bal:?}");
    assert_eq!(bal.pending, credits(100), "{bal:?}");
    let holds = c
        .all_entries("cus_race")
        .await?
        .iter()
        .filter(|e| e.kind == "hold")
        .count();
    assert_eq!(holds, 100, "one hold entry per allowed reservation");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_keys_under_concurrency_have_one_effect() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let conns = connections(&server, 4).await?;
    let c = &conns[0];
    c.create_subscribed("cus_dup", "e2e").await?;

    c.grant("cus_dup", credits(100)).await?;

    // 50 concurrent copies of one Reserve: one hold.
    let reserve_req = reserve_units("cus_dup", 7, &unique_key("dup-reserve"));
    let mut tasks = JoinSet::new();
    for i in 0..50 {
        let mut enforcement = conns[i % conns.len()].enforcement.clone();
        let req = reserve_req.clone();
        tasks.spawn(async move { enforcement.reserve(req).await.map(|r| r.into_inner()) });
    }
    let mut reserves = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        reserves.push(joined?.map_err(|s| anyhow::anyhow!("Reserve failed: {s:?}"))?);
    }
    let first = reserves[0].clone();
    assert!(decision_of(&first.decision).allowed, "{first:?}");
    assert!(
        reserves.iter().all(|r| *r == first),
        "same hold id and answer for every copy: {:?}",
        reserves.iter().map(|r| r.hold_id).collect::<Vec<_>>()
    );
    let bal = c.balance("cus_dup").await?;
    assert_eq!(bal.pending, credits(7), "held once: {bal:?}");
    assert_eq!(bal.available, credits(93), "{bal:?}");

    // 50 concurrent copies of one Commit: one debit.
    let commit_req = CommitRequest {
        customer_id: "cus_dup".into(),
        hold_id: first.hold_id,
        units: 5,
        idempotency_key: unique_key("dup-commit"),
    };
    let mut tasks = JoinSet::new();
    for i in 0..50 {
        let mut enforcement = conns[i % conns.len()].enforcement.clone();
        let req = commit_req.clone();
        tasks.spawn(async move { enforcement.commit(req).await.map(|r| r.into_inner()) });
    }
    let mut commits = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        commits.push(joined?.map_err(|s| anyhow::anyhow!("Commit failed: {s:?}"))?);
    }
    assert!(commits.iter().all(|x| *x == commits[0]), "{commits:?}");
    assert_eq!(
        commits[0].posted_micro_credits,
        credits(5),
        "{:?}",
        commits[0]
    );
    assert_eq!(
        commits[0].released_micro_credits,
        credits(2),
        "{:?}",
        commits[0]
    );
    let bal = c.balance("cus_dup").await?;
    assert_eq!(bal.available, credits(95), "debited once: {bal:?}");
    assert_eq!(bal.pending, 0, "{bal:?}");

    let kinds: Vec<String> = c
        .all_entries("cus_dup")
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["grant", "hold", "commit"], "one entry per effect");

    // 50 concurrent copies of one Grant: one grant.
    // An explicit effective time: `0` (now) is covered by idempotency.rs.
    let grant_req = paid_grant_at("cus_dup", credits(10), &unique_key("dup-grant"), now_ms());
    let mut tasks = JoinSet::new();
    for i in 0..50 {
        let mut wallets = conns[i % conns.len()].wallets.clone();
        let req = grant_req.clone();
        tasks.spawn(async move { wallets.grant(req).await.map(|r| r.into_inner()) });
    }
    let mut grants = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        grants.push(joined?.map_err(|s| anyhow::anyhow!("Grant failed: {s:?}"))?);
    }
    assert!(
        grants.iter().all(|g| *g == grants[0]),
        "same answer for every copy: {grants:?}"
    );
    let bal = c.balance("cus_dup").await?;
    assert_eq!(bal.available, credits(105), "granted once: {bal:?}");
    assert_eq!(bal.grants.len(), 2, "{bal:?}");
    assert_eq!(
        c.all_entries("cus_dup").await?.len(),
        4,
        "one grant entry more"
    );

    // The same key with another request is refused, and changes nothing.
    let mut enforcement = c.enforcement.clone();
    let mut other = reserve_req.clone();
    other.units = 8;
    let status = enforcement
        .reserve(other)
        .await
        .expect_err("key reused for another request");
    assert!(
        matches!(
            status.code(),
            tonic::Code::AlreadyExists | tonic::Code::Aborted
        ),
        "{status:?}"
    );
    let mut wallets = c.wallets.clone();
    let mut other_grant = grant_req.clone();
    other_grant.amount_micro_credits = credits(1);
    let status = wallets
        .grant(other_grant)
        .await
        .expect_err("key reused for another grant");
    assert!(
        matches!(
            status.code(),
            tonic::Code::AlreadyExists | tonic::Code::Aborted
        ),
        "{status:?}"
    );
    let bal = c.balance("cus_dup").await?;
    assert_eq!((bal.available, bal.pending), (credits(105), 0), "{bal:?}");
    Ok(())
}
