//! The TollgateRuntime controller: read the namespace's policy objects and pods, compile the
//! bundle (pure), apply the runtime's children with server-side apply, then write statuses.
//!
//! How a bundle reaches running pods without a restart: the runtime watches its ConfigMap
//! through the Kubernetes API (env `TOLLGATE_POLICY_CONFIGMAP`) and reloads on change. We chose
//! this over pushing through an admin RPC because a watch delivers in about a second, needs no
//! network path or credentials from the operator to every pod, and a pod that starts or
//! reconnects reads the current bundle by itself, so the operator holds no delivery state. We
//! did not mount the ConfigMap as a volume because the kubelet refreshes those only every
//! minute or so. Each pod then annotates itself with `tollgate.dev/applied-policy-version`,
//! and the operator reports how many pods carry the current version.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_crds::common::condition::{DEGRADED, VALID};
use tollgate_crds::{
    BudgetCap, Catalog, Entitlement, ObjectKind, ObjectRef, Plan, PolicyStatus, TollgateRuntime,
    load_catalog_yaml,
};

use crate::builders::configmap::{CATALOG_KEY, policy_configmap};
use crate::builders::{self, ChildNames, INSTANCE_LABEL, NAME_LABEL, RUNTIME_APP_NAME};
use crate::bundle::{Compiled, compile};
use crate::context::Context;
use crate::plan_deletion::{Published, closes, deletion_verdict, runtime_view};
use crate::status::{PodCounts, PolicyInputs, count_pods, policy_status, runtime_status};
use crate::{Error, FIELD_MANAGER, Result};

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "runtime";
/// Reconcile at least this often, to catch drift nobody told us about.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Retry delay after a failed reconcile.
pub const RETRY: Duration = Duration::from_secs(15);

/// Reconciles one TollgateRuntime.
pub async fn reconcile(rt: Arc<TollgateRuntime>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.start(CONTROLLER);
    let result = reconcile_inner(&rt, &ctx).await;
    if let Err(e) = &result {
        ctx.metrics.failed(CONTROLLER, e);
        if rt.metadata.deletion_timestamp.is_none()
            && let Err(report) = report_failure(&rt, &ctx, e).await
        {
            tracing::warn!(runtime = %rt.name_any(), error = %report, "could not report the failed reconcile");
        }
    }
    result
}

/// Why the operator cannot apply a TollgateRuntime's objects, where its users look: the
/// `Degraded` condition (reason `ReconcileFailed`, the error as message) and a Warning
/// event, once per distinct error. The next reconcile that succeeds writes the status anew.
/// (An API server refusing a change, say to a field a StatefulSet cannot change, otherwise
/// showed only in the operator's log, under a status that still said all was well.)
async fn report_failure(rt: &TollgateRuntime, ctx: &Context, error: &Error) -> Result<()> {
    let Some(ns) = rt.namespace() else {
        return Ok(());
    };
    let mut status = rt.status.clone().unwrap_or_default();
    let message = format!(
        "reconcile failed, retried every {}s: {error}",
        RETRY.as_secs()
    );
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let degraded = crate::status::condition(
        &status.conditions,
        DEGRADED,
        true,
        RECONCILE_FAILED,
        message,
        rt.metadata.generation,
        &now,
    );
    let unchanged = status.conditions.iter().any(|c| {
        c.type_ == DEGRADED
            && c.status == degraded.status
            && c.reason == degraded.reason
            && c.message == degraded.message
    });
    if unchanged {
        return Ok(());
    }
    let event = Event {
        type_: EventType::Warning,
        reason: RECONCILE_FAILED.into(),
        note: Some(degraded.message.clone()),
        action: "Reconcile".into(),
        secondary: None,
    };
    ctx.recorder.publish(&event, &rt.object_ref(&())).await?;
    status.conditions.retain(|c| c.type_ != DEGRADED);
    status.conditions.push(degraded);
    let runtimes = Api::<TollgateRuntime>::namespaced(ctx.client.clone(), &ns);
    apply_status(
        &runtimes,
        &rt.name_any(),
        &status,
        &PatchParams::apply(FIELD_MANAGER).force(),
    )
    .await
}

/// The reason of the `Degraded` condition while reconciles fail.
pub const RECONCILE_FAILED: &str = "ReconcileFailed";

/// Requeues a failed reconcile.
pub fn error_policy(rt: Arc<TollgateRuntime>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(runtime = %rt.name_any(), error = %error, "reconcile failed");
    Action::requeue(RETRY)
}

/// What the reconcile read from the API.
struct Observed {
    last_good: Catalog,
    current: Catalog,
    runtime_pods: Vec<Pod>,
}

async fn reconcile_inner(rt: &TollgateRuntime, ctx: &Context) -> Result<Action> {
    let ns = rt.namespace().ok_or_else(|| Error::NotNamespaced {
        kind: "TollgateRuntime",
        name: rt.name_any(),
    })?;
    if rt.metadata.deletion_timestamp.is_some() {
        // Children carry owner references: the garbage collector deletes them (PVCs are
        // retained by the StatefulSet's retention policy). Nothing to apply.
        return Ok(Action::await_change());
    }
    let names = ChildNames::of(rt);
    let observed = observe(ctx, &ns, &names).await?;
    let compiled = compile(&observed.current, &observed.last_good)?;

    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let client = &ctx.client;
    apply_child(
        Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        &builders::rbac::service_account(rt),
        &apply,
    )
    .await?;
    apply_child(
        Api::<Role>::namespaced(client.clone(), &ns),
        &builders::rbac::role(rt),
        &apply,
    )
    .await?;
    apply_child(
        Api::<RoleBinding>::namespaced(client.clone(), &ns),
        &builders::rbac::role_binding(rt),
        &apply,
    )
    .await?;
    apply_child(
        Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &policy_configmap(rt, &compiled.bundle),
        &apply,
    )
    .await?;
    apply_child(
        Api::<Service>::namespaced(client.clone(), &ns),
        &builders::services::headless_service(rt),
        &apply,
    )
    .await?;
    apply_child(
        Api::<Service>::namespaced(client.clone(), &ns),
        &builders::services::client_service(rt),
        &apply,
    )
    .await?;
    let sts = builders::statefulset::statefulset(rt, &ctx.defaults);
    apply_child(
        Api::<StatefulSet>::namespaced(client.clone(), &ns),
        &sts,
        &apply,
    )
    .await?;
    apply_child(
        Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns),
        &builders::pdb::pod_disruption_budget(rt),
        &apply,
    )
    .await?;

    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let namespace_pods = count_pods(&observed.runtime_pods, &compiled.bundle.version);
    write_policy_statuses(ctx, rt, &observed, &compiled, namespace_pods, &now).await?;

    let own_pods: Vec<Pod> = observed
        .runtime_pods
        .iter()
        .filter(|p| p.labels().get(INSTANCE_LABEL) == Some(&names.runtime))
        .cloned()
        .collect();
    let status = runtime_status(
        rt,
        &compiled,
        count_pods(&own_pods, &compiled.bundle.version),
        &now,
    );
    let runtimes = Api::<TollgateRuntime>::namespaced(client.clone(), &ns);
    apply_status(&runtimes, &names.runtime, &status, &apply).await?;
    Ok(Action::requeue(RESYNC))
}

async fn observe(ctx: &Context, ns: &str, names: &ChildNames) -> Result<Observed> {
    let client = &ctx.client;
    let configmaps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let last_good = match configmaps.get_opt(&names.policy_configmap()).await? {
        Some(cm) => published_catalog(&cm),
        None => Catalog::default(),
    };
    let all = ListParams::default();
    let current = Catalog {
        plans: Api::<Plan>::namespaced(client.clone(), ns)
            .list(&all)
            .await?
            .items,
        entitlements: Api::<Entitlement>::namespaced(client.clone(), ns)
            .list(&all)
            .await?
            .items,
        budget_caps: Api::<BudgetCap>::namespaced(client.clone(), ns)
            .list(&all)
            .await?
            .items,
    };
    let runtime_pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{NAME_LABEL}={RUNTIME_APP_NAME}")))
        .await?
        .items;
    Ok(Observed {
        last_good,
        current,
        runtime_pods,
    })
}

/// The catalog of the bundle published last time. A bundle that no longer loads (edited by
/// hand, or written by a newer operator) is treated as empty: invalid objects then drop out
/// instead of falling back, which is the safe side.
pub(crate) fn published_catalog(cm: &ConfigMap) -> Catalog {
    let text = cm.data.as_ref().and_then(|d| d.get(CATALOG_KEY));
    match text.map(|t| load_catalog_yaml(t)) {
        Some(Ok(loaded)) => loaded.catalog,
        Some(Err(e)) => {
            tracing::warn!(configmap = %cm.name_any(), error = %e, "previous policy bundle does not load; ignoring it");
            Catalog::default()
        }
        None => Catalog::default(),
    }
}

async fn apply_child<K>(api: Api<K>, object: &K, params: &PatchParams) -> Result<K>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap_or_default();
    Ok(api.patch(&name, params, &Patch::Apply(object)).await?)
}

async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    status: &S,
    params: &PatchParams,
) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, params, &Patch::Apply(body)).await?;
    Ok(())
}

async fn write_policy_statuses(
    ctx: &Context,
    rt: &TollgateRuntime,
    observed: &Observed,
    compiled: &Compiled,
    pods: PodCounts,
    now: &Time,
) -> Result<()> {
    let client = &ctx.client;
    let ns = rt.namespace().unwrap_or_default();
    let ns = ns.as_str();
    let entitlements = &observed.current.entitlements;
    for plan in &observed.current.plans {
        // This runtime's side of the rule (the plan controller weighs every runtime of the
        // namespace): the bundle just published, and this runtime's pods.
        let verdict = plan.metadata.deletion_timestamp.as_ref().map(|_| {
            let published = Published {
                version: compiled.bundle.version.to_string(),
                closes_plan: closes(&compiled.bundle.catalog, &plan.name_any()),
            };
            let view = runtime_view(rt, Some(published), &observed.runtime_pods);
            deletion_verdict(&plan.name_any(), entitlements, &[view])
        });
        let api = Api::<Plan>::namespaced(client.clone(), ns);
        let target = PolicyTarget {
            kind: ObjectKind::Plan,
            object: plan,
            status: plan.status.as_ref(),
        };
        write_policy_status(ctx, &api, target, compiled, pods, verdict.as_ref(), now).await?;
    }
    for e in entitlements {
        let api = Api::<Entitlement>::namespaced(client.clone(), ns);
        let target = PolicyTarget {
            kind: ObjectKind::Entitlement,
            object: e,
            status: e.status.as_ref(),
        };
        write_policy_status(ctx, &api, target, compiled, pods, None, now).await?;
    }
    for c in &observed.current.budget_caps {
        let api = Api::<BudgetCap>::namespaced(client.clone(), ns);
        let target = PolicyTarget {
            kind: ObjectKind::BudgetCap,
            object: c,
            status: c.status.as_ref(),
        };
        write_policy_status(ctx, &api, target, compiled, pods, None, now).await?;
    }
    Ok(())
}

/// One policy object whose status is written.
struct PolicyTarget<'a, K> {
    kind: ObjectKind,
    object: &'a K,
    status: Option<&'a PolicyStatus>,
}

/// Writes a policy object's status when it changed, and a Warning event when the object
/// became invalid (or its problems changed).
async fn write_policy_status<K>(
    ctx: &Context,
    api: &Api<K>,
    target: PolicyTarget<'_, K>,
    compiled: &Compiled,
    pods: PodCounts,
    deletion: Option<&crate::plan_deletion::Verdict>,
    now: &Time,
) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    let name = target.object.meta().name.clone().unwrap_or_default();
    let object = ObjectRef::new(target.kind, name.clone());
    let inputs = PolicyInputs {
        object: &object,
        generation: target.object.meta().generation,
        previous: target.status,
        compiled,
        pods,
        deletion,
    };
    let desired = policy_status(&inputs, now);
    if target.status == Some(&desired) {
        return Ok(());
    }
    let valid_of = |s: Option<&PolicyStatus>| {
        s.and_then(|s| s.conditions.iter().find(|c| c.type_ == VALID).cloned())
    };
    let (before, after) = (valid_of(target.status), valid_of(Some(&desired)));
    let newly_invalid = after.as_ref().is_some_and(|a| a.status == "False")
        && before.as_ref().map(|b| (&b.status, &b.message))
            != after.as_ref().map(|a| (&a.status, &a.message));
    if newly_invalid && let Some(valid) = &after {
        let event = Event {
            type_: EventType::Warning,
            reason: valid.reason.clone(),
            note: Some(valid.message.clone()),
            action: "Validate".into(),
            secondary: None,
        };
        ctx.recorder
            .publish(&event, &target.object.object_ref(&()))
            .await?;
    }
    apply_status(
        api,
        &name,
        &desired,
        &PatchParams::apply(FIELD_MANAGER).force(),
    )
    .await
}
