//! The catalog: compiled from YAML (a directory on a laptop, the policy ConfigMap in a
//! cluster) and swapped in atomically. A valid change is applied; an invalid one is refused
//! (logged, counted, shown at /v1/policy) and the policy in force stays. Both sources go
//! through [`PolicyInForce::apply`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate_crds::LoadedCatalog;

use crate::http::{Metrics, PolicyStatus};
use crate::policy::{Policy, compile};
use crate::service::Runtime;

/// How often the directory is looked at. A change reaches decisions within about this.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Loads and compiles every YAML file in `dir`.
pub fn load(dir: &Path) -> Result<Policy, String> {
    let loaded = tollgate_crds::load_catalog_dir(dir).map_err(|e| e.to_string())?;
    if loaded.catalog.plans.is_empty() {
        // A mistyped path, files named *.json or *.YAML, or a directory emptied for a moment
        // by a checkout: in force, it would deny every customer.
        return Err(format!(
            "{} holds no Plan (Tollgate reads its *.yaml and *.yml files); a catalog without \
             plans would deny every customer",
            dir.display()
        ));
    }
    compile_loaded(loaded)
}

/// Refuses `candidate` when it drops a plan that customers still subscribe to: they would
/// lose everything the plan grants at once. Keep the plan with `closedToNewSubscriptions:
/// true` until they have moved (the operator holds a deleted Plan the same way).
pub async fn keeps_subscribed_plans(
    runtime: &Runtime,
    candidate: Result<Policy, String>,
) -> Result<Policy, String> {
    let candidate = candidate?;
    let current = runtime.policy();
    let counts = runtime.plan_subscribers(&current).await.map_err(|e| {
        format!("cannot count the subscribers of the plans the change would drop: {e}")
    })?;
    let dropped: Vec<String> = counts
        .iter()
        .filter(|(plan, n)| **n > 0 && candidate.plan(plan).is_none())
        .map(|(plan, n)| format!("{plan} ({n} subscribed)"))
        .collect();
    if dropped.is_empty() {
        Ok(candidate)
    } else {
        Err(format!(
            "the change drops plans customers subscribe to: {}; keep each with \
             closedToNewSubscriptions: true until its customers have moved to another plan",
            dropped.join(", ")
        ))
    }
}

/// Loads and compiles a multi-document YAML text (the policy ConfigMap's `catalog.yaml`).
pub fn load_yaml(text: &str) -> Result<Policy, String> {
    compile_loaded(tollgate_crds::load_catalog_yaml(text).map_err(|e| e.to_string())?)
}

fn compile_loaded(loaded: LoadedCatalog) -> Result<Policy, String> {
    for skipped in &loaded.skipped {
        tracing::info!(
            ?skipped,
            "catalog: ignoring a document that is not a Plan, Entitlement or BudgetCap"
        );
    }
    compile(&loaded.catalog).map_err(|e| e.to_string())
}

/// What [`PolicyInForce::apply`] did with a candidate policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The candidate is now in force.
    Swapped { version: String },
    /// The candidate is the policy already in force.
    Unchanged { version: String },
    /// The candidate was refused; the policy in force stays.
    Refused { why: String },
}

/// The policy in force and everything that reports on it: what every source of policy
/// (the catalog directory, the policy ConfigMap) updates, the same way.
#[derive(Clone)]
pub struct PolicyInForce {
    pub runtime: Arc<Runtime>,
    pub status: Arc<RwLock<PolicyStatus>>,
    pub metrics: Arc<Metrics>,
}

impl PolicyInForce {
    /// Swaps in a valid candidate atomically, or refuses an invalid one (`Err` says why),
    /// keeping the policy in force. Logs, counts and records the outcome at /v1/policy.
    pub fn apply(&self, candidate: Result<Policy, String>) -> Applied {
        match candidate {
            Ok(policy) if policy.version == self.runtime.policy().version => {
                // The source holds the policy in force again: an earlier refusal is over.
                self.update_status(|s| s.last_error = None);
                Applied::Unchanged {
                    version: policy.version,
                }
            }
            Ok(policy) => {
                let version = policy.version.clone();
                tracing::info!(%version, objects = policy.objects(), "catalog change applied");
                let objects = policy.objects();
                self.runtime.set_policy(policy);
                self.update_status(|s| {
                    s.version = version.clone();
                    s.objects = objects;
                    s.last_error = None;
                    s.loaded_at_ms = now_ms();
                });
                self.metrics.policy_reload(true);
                Applied::Swapped { version }
            }
            Err(why) => {
                tracing::warn!(error = %why, "catalog change refused; the policy in force stays");
                self.update_status(|s| s.last_error = Some(why.clone()));
                self.metrics.policy_reload(false);
                Applied::Refused { why }
            }
        }
    }

    fn update_status(&self, change: impl FnOnce(&mut PolicyStatus)) {
        match self.status.write() {
            Ok(mut s) => change(&mut s),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }
}

/// A cheap fingerprint of the directory: names, sizes and modification times.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, u128)> {
    let mut seen = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if let Ok(meta) = entry.metadata() {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                seen.push((entry.path(), meta.len(), modified));
            }
        }
    }
    seen.sort();
    seen
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Polls `dir` until the runtime is dropped.
pub async fn watch(dir: PathBuf, policy: PolicyInForce) {
    let mut last = fingerprint(&dir);
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let now = fingerprint(&dir);
        if now == last {
            continue;
        }
        last = now;
        let dir2 = dir.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&dir2)).await;
        let loaded = loaded.unwrap_or_else(|e| Err(format!("loading the catalog panicked: {e}")));
        policy.apply(keeps_subscribed_plans(&policy.runtime, loaded).await);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{keeps_subscribed_plans, load, load_yaml};
    use crate::testing::{TWO_PLANS, runtime, subscribe};

    #[test]
    fn a_directory_without_plans_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Files Tollgate does not read, and no *.yaml at all.
        std::fs::write(dir.path().join("plans.json"), "{}").unwrap();
        std::fs::write(dir.path().join("PLANS.YAML"), TWO_PLANS).unwrap();
        let error = load(dir.path()).unwrap_err();
        assert!(error.contains("holds no Plan"), "{error}");
        std::fs::write(dir.path().join("plans.yaml"), TWO_PLANS).unwrap();
        assert_eq!(load(dir.path()).unwrap().objects(), 2);
    }

    #[tokio::test]
    async fn dropping_a_plan_with_subscribers_is_refused_and_an_unused_one_goes() {
        let t = runtime(TWO_PLANS, 2);
        subscribe(&t.runtime, "cus_1", "pro").await;
        let only_free = TWO_PLANS.split("---").next().unwrap();
        let error = keeps_subscribed_plans(&t.runtime, load_yaml(only_free))
            .await
            .unwrap_err();
        assert!(error.contains("pro (1 subscribed)"), "{error}");
        // `free` has no subscriber: a catalog without it is fine.
        let only_pro = TWO_PLANS.split("---").nth(1).unwrap();
        let kept = keeps_subscribed_plans(&t.runtime, load_yaml(only_pro))
            .await
            .unwrap();
        assert!(kept.plan("pro").is_some());
        // An invalid candidate keeps its own reason.
        let bad = keeps_subscribed_plans(&t.runtime, Err("bad yaml".into()))
            .await
            .unwrap_err();
        assert_eq!(bad, "bad yaml");
    }
}
