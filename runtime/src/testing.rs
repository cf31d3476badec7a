//! Test support: a real runtime (engines on embedded partitions in a temporary directory)
//! with a catalog given as YAML.

use std::sync::Arc;

use crate::engine::{EngineConfig, Partitions, SystemClock};
use crate::service::Runtime;

/// Two plans: `free` has `chat`; `pro` has `chat` and `model.large`.
pub(crate) const TWO_PLANS: &str = "\
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: free}
spec:
  features:
    - {id: chat, kind: boolean, enabled: true}
---
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: pro}
spec:
  features:
    - {id: chat, kind: boolean, enabled: true}
    - {id: model.large, kind: boolean, enabled: true}
";

/// One plan, `metered`, with the metered feature `units` (meter `units`, unlimited) at 1
/// credit per unit.
pub(crate) const METERED: &str = "\
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: metered}
spec:
  features:
    - {id: units, kind: metered, meter: units, limit: {unlimited: true}}
  rateCard:
    - {feature: units, microCredits: 1000000, perUnits: 1}
";

/// A runtime and what must outlive it.
pub(crate) struct TestRuntime {
    pub(crate) runtime: Arc<Runtime>,
    _partitions: Partitions,
    _dir: tempfile::TempDir,
}

/// A runtime on `partitions` fresh embedded partitions, with the policy of `catalog_yaml`.
/// Call inside a tokio runtime.
pub(crate) fn runtime(catalog_yaml: &str, partitions: u32) -> TestRuntime {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Arc::new(SystemClock);
    let opened = Partitions::open_embedded(
        dir.path(),
        Some(partitions),
        clock.clone(),
        EngineConfig::default(),
    )
    .expect("embedded partitions");
    let policy = crate::catalog::load_yaml(catalog_yaml).expect("test catalog compiles");
    let runtime = Runtime::new(opened.engines().to_vec(), policy, clock, None);
    TestRuntime {
        runtime: Arc::new(runtime),
        _partitions: opened,
        _dir: dir,
    }
}

/// Creates `customer` and subscribes it to `plan`.
pub(crate) async fn subscribe(runtime: &Runtime, customer: &str, plan: &str) {
    runtime
        .upsert_customer(customer, customer, &format!("upsert-{customer}"))
        .await
        .expect("upsert customer");
    runtime
        .subscribe(customer, plan, 0, &format!("subscribe-{customer}-{plan}"))
        .await
        .expect("subscribe");
}
