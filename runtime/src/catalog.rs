//! The catalog directory: loaded at start, then polled; a valid change is swapped in
//! atomically, an invalid one is refused (logged, counted, shown at /v1/policy) and the
//! policy in force stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::{Metrics, PolicyStatus};
use crate::policy::{Policy, compile};
use crate::service::Runtime;

/// How often the directory is looked at. A change reaches decisions within about this.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Loads and compiles every YAML file in `dir`.
pub fn load(dir: &Path) -> Result<Policy, String> {
    let loaded = tollgate_crds::load_catalog_dir(dir).map_err(|e| e.to_string())?;
    for skipped in &loaded.skipped {
        tracing::info!(
            ?skipped,
            "catalog: ignoring a document that is not a Plan, Entitlement or BudgetCap"
        );
    }
    compile(&loaded.catalog).map_err(|e| e.to_string())
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
pub async fn watch(
    dir: PathBuf,
    runtime: Arc<Runtime>,
    status: Arc<RwLock<PolicyStatus>>,
    metrics: Arc<Metrics>,
) {
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
        let result = loaded.unwrap_or_else(|e| Err(format!("loading the catalog panicked: {e}")));
        match result {
            Ok(policy) if policy.version == runtime.policy().version => {}
            Ok(policy) => {
                tracing::info!(version = %policy.version, objects = policy.objects(), "catalog change applied");
                if let Ok(mut s) = status.write() {
                    s.version = policy.version.clone();
                    s.objects = policy.objects();
                    s.last_error = None;
                    s.loaded_at_ms = now_ms();
                }
                runtime.set_policy(policy);
                metrics.policy_reload(true);
            }
            Err(why) => {
                tracing::warn!(error = %why, "catalog change refused; the policy in force stays");
                if let Ok(mut s) = status.write() {
                    s.last_error = Some(why);
                }
                metrics.policy_reload(false);
            }
        }
    }
}
