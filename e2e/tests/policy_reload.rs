//! Plan edits in the catalog directory: a valid one changes decisions within 2 s with no
//! restart; an invalid one keeps the old policy and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tollgate_e2e::proto::{self, CheckRequest, CheckResponse};
use tollgate_e2e::{CatalogDir, Clients, PolicyStatus, Server, credits, decision_of, poll_until};

const LIVE_FILE: &str = "live-plan.yaml";

/// The plan `live`, v1: a boolean `e2e.flag` and `e2e.units` at 1 credit per unit.
const LIVE_V1: &str = r#"apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata:
  name: live
spec:
  features:
    - id: e2e.flag
      kind: boolean
      enabled: true
    - id: e2e.units
      kind: metered
      meter: e2e.units
      limit: {unlimited: true}
  rateCard:
    - feature: e2e.units
      microCredits: 1000000
"#;

/// v2: `e2e.flag` removed, `e2e.units` at 2 credits per unit.
const LIVE_V2: &str = r#"apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata:
  name: live
spec:
  features:
    - id: e2e.units
      kind: metered
      meter: e2e.units
      limit: {unlimited: true}
  rateCard:
    - feature: e2e.units
      microCredits: 2000000
"#;

/// What the customer's decisions look like under a policy.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    flag_allowed: bool,
    flag_reason: i32,
    price_of_10_units: u64,
    policy_version: String,
}

/// The decisions of both checks under one policy: if a reload lands between the two calls,
/// observes again (a few times at most).
async fn observe(c: &Clients) -> anyhow::Result<Observed> {
    for _ in 0..5 {
        let (flag, units) = observe_once(c).await?;
        let flag_d = decision_of(&flag.decision);
        let units_d = decision_of(&units.decision);
        if flag_d.policy_version == units_d.policy_version {
            return Ok(Observed {
                flag_allowed: flag_d.allowed,
                flag_reason: flag_d.reason,
                price_of_10_units: units.price_micro_credits,
                policy_version: flag_d.policy_version.clone(),
            });
        }
    }
    anyhow::bail!("the policy version changed under every one of 5 pairs of checks")
}

async fn observe_once(c: &Clients) -> anyhow::Result<(CheckResponse, CheckResponse)> {
    let mut enforcement = c.enforcement.clone();
    let flag = enforcement
        .check(CheckRequest {
            customer_id: "cus_live".into(),
            feature: "e2e.flag".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let units = enforcement
        .check(CheckRequest {
            customer_id: "cus_live".into(),
            feature: "e2e.units".into(),
            units: 10,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok((flag, units))
}

async fn start() -> anyhow::Result<(CatalogDir, Server, Clients, Observed, PolicyStatus)> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    catalog.write(LIVE_FILE, LIVE_V1)?;
    let server = Server::start_with_catalog(&catalog).await?;
    let c = server.clients().await?;
    c.create_subscribed("cus_live", "live").await?;
    c.grant("cus_live", credits(1000)).await?;
    let before = observe(&c).await?;
    assert_eq!(
        before,
        Observed {
            flag_allowed: true,
            flag_reason: proto::Reason::Allowed as i32,
            price_of_10_units: credits(10),
            policy_version: before.policy_version.clone(),
        }
    );
    let policy = server.policy().await?;
    assert_eq!(policy.version, before.policy_version, "{policy:?}");
    assert_eq!(policy.last_error, None, "{policy:?}");
    Ok((catalog, server, c, before, policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_edit_changes_decisions_within_two_seconds() -> anyhow::Result<()> {
    let (catalog, server, c, before, policy_before) = start().await?;

    let edited_at = Instant::now();
    catalog.write(LIVE_FILE, LIVE_V2)?;
    let after = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let c = c.clone();
        let old_version = before.policy_version.clone();
        async move {
            let now = observe(&c).await.ok()?;
            (now.policy_version != old_version).then_some(now)
        }
    })
    .await
    .unwrap_or_else(|| panic!("the plan edit was not applied within 10 s"));
    let took = edited_at.elapsed();
    eprintln!("plan edit applied {took:?} after the write");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}, more than 2 s"
    );
    assert_eq!(
        after,
        Observed {
            flag_allowed: false,
            flag_reason: proto::Reason::NoEntitlement as i32,
            price_of_10_units: credits(20),
            policy_version: after.policy_version.clone(),
        },
        "decisions under the edited plan"
    );
    assert!(after.policy_version.starts_with("sha256:"), "{after:?}");

    let policy = server.policy().await?;
    assert_eq!(policy.version, after.policy_version, "{policy:?}");
    assert_eq!(policy.last_error, None, "{policy:?}");
    assert!(
        policy.loaded_at_ms > policy_before.loaded_at_ms,
        "{policy:?}"
    );
    assert!(server.http_get("/readyz").await?.status == 200);

    // The edit back restores the first policy, content-addressed: the same version.
    catalog.write(LIVE_FILE, LIVE_V1)?;
    let back = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let c = c.clone();
        let v2 = after.policy_version.clone();
        async move {
            let now = observe(&c).await.ok()?;
            (now.policy_version != v2).then_some(now)
        }
    })
    .await
    .unwrap_or_else(|| panic!("the edit back was not applied within 10 s"));
    assert_eq!(back, before, "same content, same decisions and version");
    Ok(())
}

/// Waits until /v1/policy reports a refused change (at most 10 s).
async fn wait_refused(server: &Server) -> PolicyStatus {
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let p = server.policy().await.ok()?;
            p.last_error.is_some().then_some(p)
        },
    )
    .await
    .unwrap_or_else(|| {
        panic!("/v1/policy never reported the invalid change: {:?}", {
            server.log_tail(4096)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edit_keeps_the_old_policy_and_says_why() -> anyhow::Result<()> {
    let (catalog, server, c, before, policy_before) = start().await?;

    // 1. Not YAML at all.
    catalog.write(
        LIVE_FILE,
        "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: [\n",
    )?;
    let refused = wait_refused(&server).await;
    eprintln!("syntax error reported as: {:?}", refused.last_error);
    assert_eq!(
        refused.version, policy_before.version,
        "old policy kept: {refused:?}"
    );
    assert!(
        refused
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(LIVE_FILE)),
        "the error names the file: {refused:?}"
    );
    assert_eq!(observe(&c).await?, before, "decisions unchanged");
    assert_eq!(server.http_get("/readyz").await?.status, 200, "still ready");

    // 2. A valid document that breaks a rule: perUnits must be > 0. Decisions must still be
    // those of v1, not of this (otherwise cheaper) plan.
    let bad = LIVE_V2.replace(
        "microCredits: 2000000",
        "microCredits: 2000000\n      perUnits: 0",
    );
    catalog.write(LIVE_FILE, &bad)?;
    let rule = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let p = server.policy().await.ok()?;
            p.last_error
                .as_deref()
                .is_some_and(|e| e.contains("perUnits"))
                .then_some(p)
        },
    )
    .await
    .unwrap_or_else(|| panic!("/v1/policy never named perUnits"));
    eprintln!("rule violation reported as: {:?}", rule.last_error);
    assert_eq!(
        rule.version, policy_before.version,
        "old policy kept: {rule:?}"
    );
    assert_eq!(observe(&c).await?, before, "decisions unchanged");
    // And they stay unchanged over several polls of the directory.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        observe(&c).await?,
        before,
        "decisions unchanged after 1.2 s"
    );
    assert_eq!(server.policy().await?.version, policy_before.version);

    // 3. The fix is applied, and the error is cleared.
    catalog.write(LIVE_FILE, LIVE_V2)?;
    let fixed = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let p = server.policy().await.ok()?;
            (p.version != policy_before.version).then_some(p)
        },
    )
    .await
    .unwrap_or_else(|| panic!("the fixed plan was not applied within 10 s"));
    assert_eq!(
        fixed.last_error, None,
        "a good change clears the error: {fixed:?}"
    );
    let now = observe(&c).await?;
    assert_eq!(now.price_of_10_units, credits(20), "{now:?}");
    assert_eq!(now.policy_version, fixed.version);
    Ok(())
}
