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
    compile_loaded(tollgate_crds::load_catalog_dir(dir).map_err(|e| e.to_string())?)
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
        policy.apply(loaded.unwrap_or_else(|e| Err(format!("loading the catalog panicked: {e}"))));
    }
}
