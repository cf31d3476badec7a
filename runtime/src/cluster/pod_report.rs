//! The pod reports on itself, in two annotations the operator reads: the policy version it
//! applied (`Applied` column) and how many customers subscribe to each plan in its
//! partitions (the plan deletion rule). A merge patch of `metadata.annotations` by the
//! pod's name: the Role allows `patch` on the runtime's own pods only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{ClusterError, timed};
use crate::service::Runtime;

/// The policy version this pod applied (same key as the operator's).
pub const APPLIED_VERSION_ANNOTATION: &str = "tollgate.dev/applied-policy-version";
/// JSON object: plan name to subscribed customers in this pod's partitions.
pub const PLAN_SUBSCRIBERS_ANNOTATION: &str = "tollgate.dev/plan-subscribers";
/// The field manager of the runtime's patches (visible in the pod's managedFields).
pub const FIELD_MANAGER: &str = "tollgate-runtime";
/// How often the pod reports even when nothing was applied: subscriber counts change with
/// subscriptions, and a lost patch is repaired within this.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(30);

/// The merge patch of the two annotations. `subscribers` `None` (a partition could not
/// answer) removes the subscriber annotation: the operator then counts the plans as maybe
/// in use, which is safe, where a stale or partial count would not be.
pub fn annotations_patch(version: &str, subscribers: Option<&BTreeMap<String, u64>>) -> Value {
    let subscribers = match subscribers.map(serde_json::to_string) {
        Some(Ok(text)) => Value::String(text),
        _ => Value::Null,
    };
    json!({
        "metadata": {
            "annotations": {
                APPLIED_VERSION_ANNOTATION: version,
                PLAN_SUBSCRIBERS_ANNOTATION: subscribers,
            }
        }
    })
}

/// This pod, as the runtime reports on it.
pub struct PodReport {
    api: Api<Pod>,
    namespace: String,
    name: String,
}

impl PodReport {
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        PodReport {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// Patches the pod with the policy in force and its subscriber counts.
    pub async fn report(&self, runtime: &Runtime) -> Result<(), ClusterError> {
        let policy = runtime.policy();
        let subscribers = match runtime.plan_subscribers(&policy).await {
            Ok(counts) => Some(counts),
            Err(e) => {
                tracing::warn!(error = %e, "plan subscriber counts unavailable; reporting them unknown");
                None
            }
        };
        let patch = annotations_patch(&policy.version, subscribers.as_ref());
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let what = format!("PATCH pod {}/{}", self.namespace, self.name);
        timed(
            &what,
            self.api.patch(&self.name, &params, &Patch::Merge(&patch)),
        )
        .await?;
        tracing::debug!(version = %policy.version, "pod annotations reported");
        Ok(())
    }

    /// Reports at once, then every [`REPORT_INTERVAL`] and whenever `applied` is notified,
    /// until the task is aborted. A failed report is logged and made again at the next one.
    pub async fn run(self, runtime: Arc<Runtime>, applied: Arc<Notify>) {
        let mut interval = tokio::time::interval(REPORT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = applied.notified() => {}
            }
            if let Err(e) = self.report(&runtime).await {
                tracing::warn!(error = %e, "reporting the applied policy on the pod failed; retrying later");
            }
        }
    }
}
