//! The service layer restarts a partition whose DynamoDB store failed transiently: DynamoDB
//! Local killed under the runtime, calls fail with Unavailable within their deadline, and the
//! runtime serves again, with everything acknowledged, once DynamoDB is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dynamodb_local::DynamoLocal;
use tollgate_runtime::engine::{Engine, EngineConfig, EngineError, SystemClock};
use tollgate_runtime::ledger::Category;
use tollgate_runtime::service::{EngineFactory, Reason, Runtime, ServiceError, UsageRequest};
use tollgate_runtime::store::dynamodb::{CallPolicy, DynamoConnection};

const DEADLINE: Duration = Duration::from_secs(2);

fn usage() -> UsageRequest {
    UsageRequest {
        customer: "cus_1".into(),
        feature: "agent-actions".into(),
        units: 1,
        ..UsageRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_comes_back_when_dynamodb_does() {
    let Some(mut local) = DynamoLocal::start_on_disk() else {
        return;
    };
    let mut config = local.config("supervisor");
    config.calls = CallPolicy {
        attempt_timeout: Duration::from_millis(700),
        call_deadline: DEADLINE,
        ..CallPolicy::default()
    };
    let connection = DynamoConnection::connect(config).unwrap();
    // As `serve` does: a restart takes the partition again only if it is still ours.
    let factory: EngineFactory = Arc::new(move |p| {
        let store = connection
            .store_again(&format!("p{p}"), "pod-0")
            .map_err(|e| EngineError::Recovery(e.to_string()))?;
        Engine::start(
            Box::new(store),
            Arc::new(SystemClock),
            EngineConfig::default(),
        )
    });
    let (engine, _thread) = factory(0).unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog");
    let policy = tollgate_runtime::catalog::load(&catalog).unwrap();
    let runtime = Runtime::new(vec![engine], policy, Arc::new(SystemClock), Some(factory));

    runtime
        .upsert_customer("cus_1", "Acme", "c1")
        .await
        .unwrap();
    runtime.subscribe("cus_1", "pro", 0, "s1").await.unwrap();
    runtime
        .grant("cus_1", 5_000_000, Category::Paid, 0, 0, 0, 0, "g1")
        .await
        .unwrap();
    let before = runtime.balance("cus_1").await.unwrap();
    let held = runtime.reserve(usage(), "r1", 0).await.unwrap();
    assert!(held.decision.allowed, "{:?}", held.decision);

    local.kill();
    let started = Instant::now();
    let failed = runtime.reserve(usage(), "r2", 0).await.unwrap_err();
    assert!(matches!(failed, ServiceError::Unavailable(_)), "{failed:?}");
    assert!(
        started.elapsed() < DEADLINE * 2,
        "failed within its deadline: {:?}",
        started.elapsed()
    );
    // While DynamoDB is down every call of the partition is refused, never guessed.
    let refused = runtime.balance("cus_1").await.unwrap_err();
    assert!(
        matches!(refused, ServiceError::Unavailable(_)),
        "{refused:?}"
    );
    // Check answers by each feature's fail mode, and says so.
    let open = runtime
        .check(UsageRequest {
            feature: "model.gpt-small".into(),
            units: 0,
            ..usage()
        })
        .await
        .unwrap();
    assert!(
        open.decision.allowed && open.decision.reason == Reason::FailOpen,
        "{:?}",
        open.decision
    );
    let closed = runtime.check(usage()).await.unwrap();
    assert!(
        !closed.decision.allowed && closed.decision.reason == Reason::FailClosed,
        "{:?}",
        closed.decision
    );
    let not_in_plan = runtime
        .check(UsageRequest {
            feature: "model.reasoning".into(),
            units: 0,
            ..usage()
        })
        .await
        .unwrap();
    assert_eq!(
        not_in_plan.decision.reason,
        Reason::NoEntitlement,
        "the policy alone still decides this"
    );

    local.restart();
    let back = Instant::now();
    let answer = loop {
        match runtime.reserve(usage(), "r2", 0).await {
            Ok(answer) => break answer,
            Err(ServiceError::Unavailable(_)) if back.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(other) => panic!("the partition did not come back: {other:?}"),
        }
    };
    assert!(answer.decision.allowed, "{:?}", answer.decision);
    // Acknowledged before the outage: present; the retried key has one effect.
    let again = runtime.reserve(usage(), "r1", 0).await.unwrap();
    assert_eq!(again.hold, held.hold, "the first answer, not a second hold");
    let after = runtime.balance("cus_1").await.unwrap();
    assert_eq!(
        after.pending,
        before.pending + held.held_micro_credits + answer.held_micro_credits
    );
}
