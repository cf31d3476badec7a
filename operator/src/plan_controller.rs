//! The Plan controller: holds deleted Plans with the `tollgate.dev/plan-in-use` finalizer
//! until the plan deletion rule ([`crate::plan_deletion`]) lets them go. It writes finalizers
//! and events only; the Plan's status (including `Deleting`) is written by the runtime
//! controller, so one writer owns each field.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tollgate_crds::{Entitlement, Plan, TollgateRuntime};

use crate::builders::configmap::VERSION_KEY;
use crate::builders::{ChildNames, NAME_LABEL, RUNTIME_APP_NAME};
use crate::context::Context;
use crate::plan_deletion::{
    PLAN_IN_USE_FINALIZER, Published, RuntimeView, Verdict, closes, deletion_verdict, runtime_view,
};
use crate::runtime_controller::published_catalog;
use crate::{Error, Result};

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "plan";
/// How often a blocked deletion is looked at again (subscriber counts change without events
/// on the Plan).
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(60);

/// Reconciles one Plan's finalizer.
pub async fn reconcile(plan: Arc<Plan>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.start(CONTROLLER);
    let result = reconcile_inner(&plan, &ctx).await;
    if let Err(e) = &result {
        ctx.metrics.failed(CONTROLLER, e);
    }
    result
}

/// Requeues a failed reconcile.
pub fn error_policy(plan: Arc<Plan>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(plan = %plan.name_any(), error = %error, "plan reconcile failed");
    Action::requeue(crate::runtime_controller::RETRY)
}

async fn reconcile_inner(plan: &Plan, ctx: &Context) -> Result<Action> {
    let ns = plan.namespace().ok_or_else(|| Error::NotNamespaced {
        kind: "Plan",
        name: plan.name_any(),
    })?;
    let plans = Api::<Plan>::namespaced(ctx.client.clone(), &ns);
    let finalizers = plan.finalizers();
    let held = finalizers.iter().any(|f| f == PLAN_IN_USE_FINALIZER);
    if plan.metadata.deletion_timestamp.is_none() {
        if !held {
            let mut wanted = finalizers.to_vec();
            wanted.push(PLAN_IN_USE_FINALIZER.to_string());
            set_finalizers(&plans, plan, wanted).await?;
        }
        return Ok(Action::await_change());
    }
    if !held {
        return Ok(Action::await_change());
    }
    let entitlements = Api::<Entitlement>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items;
    let runtimes = Api::<TollgateRuntime>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items;
    let runtimes: Vec<TollgateRuntime> = runtimes
        .into_iter()
        .filter(|rt| rt.metadata.deletion_timestamp.is_none())
        .collect();
    let configmaps = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let mut published = Vec::with_capacity(runtimes.len());
    for rt in &runtimes {
        let name = ChildNames::of(rt).policy_configmap();
        let bundle = configmaps.get_opt(&name).await?;
        published.push(bundle.map(|cm| closing(&cm, &plan.name_any())));
    }
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default().labels(&format!("{NAME_LABEL}={RUNTIME_APP_NAME}")))
        .await?
        .items;
    let views: Vec<RuntimeView<'_>> = runtimes
        .iter()
        .zip(published)
        .map(|(rt, published)| runtime_view(rt, published, &pods))
        .collect();
    match deletion_verdict(&plan.name_any(), &entitlements, &views) {
        Verdict::Release => {
            let wanted: Vec<String> = finalizers
                .iter()
                .filter(|f| *f != PLAN_IN_USE_FINALIZER)
                .cloned()
                .collect();
            set_finalizers(&plans, plan, wanted).await?;
            Ok(Action::await_change())
        }
        Verdict::Blocked { reason, message } => {
            let event = Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note: Some(message),
                action: "Delete".into(),
                secondary: None,
            };
            ctx.recorder.publish(&event, &plan.object_ref(&())).await?;
            Ok(Action::requeue(BLOCKED_RECHECK))
        }
    }
}

/// What a published policy ConfigMap says of `plan`: its version, and whether the plan is in
/// it closed to new subscriptions. A bundle that does not parse, or lacks the plan, does not
/// close it.
fn closing(configmap: &ConfigMap, plan: &str) -> Published {
    let data = configmap.data.as_ref();
    let version = data
        .and_then(|d| d.get(VERSION_KEY))
        .cloned()
        .unwrap_or_default();
    let closes_plan = closes(&published_catalog(configmap), plan);
    Published {
        version,
        closes_plan,
    }
}

/// Sets the finalizer list with a merge patch guarded by the resourceVersion the decision was
/// made on, so a concurrent change makes the patch fail (and the reconcile retry) rather than
/// drop someone else's finalizer.
async fn set_finalizers(plans: &Api<Plan>, plan: &Plan, finalizers: Vec<String>) -> Result<()> {
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": plan.resource_version() }
    });
    plans
        .patch(
            &plan.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}
