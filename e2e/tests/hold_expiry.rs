//! A hold that is neither committed nor released times out and gives its credits back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tollgate_e2e::proto::{CommitRequest, ReserveRequest};
use tollgate_e2e::{CatalogDir, Server, credits, decision_of, poll_until, unique_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_hold_expires_and_frees_its_credits() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let c = server.clients().await?;
    c.create_subscribed("cus_hold", "e2e").await?;
    c.grant("cus_hold", credits(10)).await?;
    let mut enforcement = c.enforcement.clone();

    let reserve = |units: u64, timeout_ms: u32| ReserveRequest {
        customer_id: "cus_hold".into(),
        feature: "e2e.units".into(),
        units,
        idempotency_key: unique_key("hold"),
        hold_timeout_ms: timeout_ms,
        ..Default::default()
    };
    let started = Instant::now();
    let held = enforcement.reserve(reserve(4, 1000)).await?.into_inner();
    assert!(decision_of(&held.decision).allowed, "{held:?}");
    assert_eq!(held.held_micro_credits, credits(4));
    let bal = c.balance("cus_hold").await?;
    // While held (the checks only count if they ran well inside the 1 s timeout), the
    // credits are pending and 7 more units do not fit.
    if started.elapsed() < Duration::from_millis(700) {
        assert_eq!(
            (bal.available, bal.pending),
            (credits(6), credits(4)),
            "{bal:?}"
        );
        let denied = enforcement.reserve(reserve(7, 60_000)).await?.into_inner();
        if started.elapsed() < Duration::from_millis(900) {
            assert!(!decision_of(&denied.decision).allowed, "{denied:?}");
        }
    }

    // Within a few seconds of its 1 s timeout, the hold is gone and the credits are back.
    let freed = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let c = c.clone();
        async move {
            let bal = c.balance("cus_hold").await.ok()?;
            (bal.pending == 0).then_some((bal, Instant::now()))
        }
    })
    .await;
    let (bal, at) = freed.unwrap_or_else(|| panic!("the 1 s hold still holds credits 10 s later"));
    eprintln!("hold freed {:?} after the reservation", at - started);
    assert_eq!(bal.available, credits(10), "every credit is back: {bal:?}");
    let entries = c.all_entries("cus_hold").await?;
    assert!(
        entries
            .iter()
            .any(|e| e.kind == "hold_timeout" && e.subject_id == held.hold_id),
        "a hold_timeout entry for the hold: {entries:#?}"
    );

    // A timed-out hold cannot be committed any more.
    let late = enforcement
        .commit(CommitRequest {
            customer_id: "cus_hold".into(),
            hold_id: held.hold_id,
            units: 4,
            idempotency_key: unique_key("late-commit"),
        })
        .await;
    let Err(status) = late else {
        panic!("commit of a timed-out hold must fail: {late:?}")
    };
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    // The time reads as a date, as everywhere else, not as epoch milliseconds.
    assert!(
        status.message().contains(" timed out at 20") && status.message().contains("Z ("),
        "{status:?}"
    );
    let bal = c.balance("cus_hold").await?;
    assert_eq!((bal.available, bal.pending), (credits(10), 0), "{bal:?}");

    // And the freed credits can be reserved again, all of them.
    let all = enforcement.reserve(reserve(10, 60_000)).await?.into_inner();
    assert!(decision_of(&all.decision).allowed, "{all:?}");
    Ok(())
}
