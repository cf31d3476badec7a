//! Reconciler scenarios against the mocked API server: the exact requests of each reconcile.

use std::sync::Arc;

use serde_json::{Value, json};
use tollgate_crds::{
    Plan, TollgateRuntime, TollgateRuntimeSpec, content_version, load_catalog_yaml,
};

use crate::builders::test_runtime::runtime;
use crate::fixtures::{ApiServer, context};
use crate::plan_deletion::PLAN_IN_USE_FINALIZER;
use crate::{plan_controller, runtime_controller};

const NS: &str = "/namespaces/billing";
const PRO: &str = "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: pro, namespace: billing, generation: 1, uid: u-pro}\nspec:\n  features:\n    - {id: tokens, kind: metered, meter: llm.tokens, limit: {amount: 1000}}\n  rateCard:\n    - {feature: tokens, microCredits: 5, perUnits: 1000}\n";

fn plan(yaml: &str) -> Plan {
    load_catalog_yaml(yaml).unwrap().catalog.plans.remove(0)
}

fn json_of<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

/// The bundle ConfigMap as an earlier reconcile left it.
fn published(plans: &[Plan]) -> Value {
    let catalog = tollgate_crds::Catalog {
        plans: plans.to_vec(),
        ..Default::default()
    };
    let bundle = crate::bundle::Bundle::from_valid(catalog).unwrap();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tollgate-policy", "namespace": "billing"},
        "data": {"catalog.yaml": bundle.catalog_yaml, "version": bundle.version.to_string()}
    })
}

/// Answers the list of a kind of `tollgate.dev` in the namespace: none.
async fn lists_none(server: &mut ApiServer, kind: &str) {
    server
        .list(&format!("/apis/tollgate.dev/v1alpha1{NS}/{kind}"), vec![])
        .await;
}

/// Answers the reads of a runtime reconcile (no runtime pods).
async fn reads(server: &mut ApiServer, configmap: Option<Value>, plans: &[Plan]) {
    reads_with_pods(server, configmap, plans, vec![]).await;
}

/// Answers the reads of a runtime reconcile, listing `pods` as the runtime's pods.
async fn reads_with_pods(
    server: &mut ApiServer,
    configmap: Option<Value>,
    plans: &[Plan],
    pods: Vec<Value>,
) {
    let cm_path = format!("/api/v1{NS}/configmaps/tollgate-policy");
    match configmap {
        Some(cm) => server.get(&cm_path, cm).await,
        None => server.not_found(&cm_path).await,
    };
    server
        .list(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans"),
            plans.iter().map(json_of).collect(),
        )
        .await;
    lists_none(server, "entitlements").await;
    lists_none(server, "budgetcaps").await;
    let pods = server.list(&format!("/api/v1{NS}/pods"), pods).await;
    assert_eq!(
        pods.query,
        "&labelSelector=app.kubernetes.io%2Fname%3Dtollgate-runtime"
    );
}

/// Answers the server-side applies of a runtime's children, returning the ConfigMap and
/// StatefulSet bodies.
async fn applies(server: &mut ApiServer) -> (Value, Value) {
    server
        .apply(&format!("/api/v1{NS}/serviceaccounts/tollgate"))
        .await;
    server
        .apply(&format!(
            "/apis/rbac.authorization.k8s.io/v1{NS}/roles/tollgate"
        ))
        .await;
    server
        .apply(&format!(
            "/apis/rbac.authorization.k8s.io/v1{NS}/rolebindings/tollgate"
        ))
        .await;
    let cm = server
        .apply(&format!("/api/v1{NS}/configmaps/tollgate-policy"))
        .await
        .body;
    server
        .apply(&format!("/api/v1{NS}/services/tollgate-headless"))
        .await;
    server
        .apply(&format!("/api/v1{NS}/services/tollgate"))
        .await;
    let sts = server
        .apply(&format!("/apis/apps/v1{NS}/statefulsets/tollgate"))
        .await
        .body;
    server
        .apply(&format!(
            "/apis/policy/v1{NS}/poddisruptionbudgets/tollgate"
        ))
        .await;
    (cm, sts)
}

fn spawn_reconcile(
    rt: TollgateRuntime,
    ctx: Arc<crate::context::Context>,
) -> tokio::task::JoinHandle<crate::Result<kube::runtime::controller::Action>> {
    tokio::spawn(runtime_controller::reconcile(Arc::new(rt), ctx))
}

#[tokio::test]
async fn create_applies_every_child_then_writes_statuses() {
    let (ctx, mut server) = context();
    let rt = runtime(TollgateRuntimeSpec::default());
    let pro = plan(PRO);
    let task = spawn_reconcile(rt.clone(), ctx);
    reads(&mut server, None, std::slice::from_ref(&pro)).await;
    let (cm, sts) = applies(&mut server).await;
    let expected_version = content_version(&tollgate_crds::Catalog {
        plans: vec![pro.clone()],
        ..Default::default()
    });
    assert_eq!(cm["data"]["version"], expected_version.to_string());
    assert_eq!(
        cm["metadata"]["ownerReferences"][0]["kind"],
        "TollgateRuntime"
    );
    assert_eq!(sts["spec"]["replicas"], 1);
    let status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans/pro/status"),
            &json_of(&pro),
        )
        .await;
    assert_eq!(status.body["status"]["conditions"][0]["type"], "Valid");
    assert_eq!(status.body["status"]["conditions"][0]["status"], "True");
    assert_eq!(
        status.body["status"]["policyVersion"],
        expected_version.to_string()
    );
    assert_eq!(status.body["status"]["applied"], "0/0");
    let rt_status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes/tollgate/status"),
            &json_of(&rt),
        )
        .await;
    let conditions = rt_status.body["status"]["conditions"].as_array().unwrap();
    let types: Vec<&str> = conditions
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Ready", "Progressing", "Degraded"]);
    assert_eq!(conditions[0]["status"], "False");
    assert_eq!(rt_status.body["status"]["observedGeneration"], 1);
    task.await.unwrap().unwrap();
    let log = server.done().await;
    assert_eq!(log.len(), 15, "{log:#?}");
}

/// The API server refuses the StatefulSet (a field it cannot change): the runtime's status
/// says so in `Degraded`, with a Warning event, and the reconcile fails (to be retried).
/// Once: the same refusal again changes nothing more.
#[tokio::test]
async fn a_refused_apply_shows_in_the_runtime_status_and_an_event() {
    async fn refuse(server: &mut ApiServer) {
        let path = format!("/apis/apps/v1{NS}/statefulsets/tollgate");
        let refusal = "StatefulSet.apps \"tollgate\" is invalid: spec: Forbidden: updates to \
                       statefulset spec for fields other than 'replicas', 'template' are forbidden";
        server
            .answer(
                http::Method::PATCH,
                &path,
                http::StatusCode::UNPROCESSABLE_ENTITY,
                |_| {
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "Invalid", "code": 422, "message": refusal})
                },
            )
            .await;
    }
    async fn first_applies(server: &mut ApiServer) {
        for path in [
            format!("/api/v1{NS}/serviceaccounts/tollgate"),
            format!("/apis/rbac.authorization.k8s.io/v1{NS}/roles/tollgate"),
            format!("/apis/rbac.authorization.k8s.io/v1{NS}/rolebindings/tollgate"),
            format!("/api/v1{NS}/configmaps/tollgate-policy"),
            format!("/api/v1{NS}/services/tollgate-headless"),
            format!("/api/v1{NS}/services/tollgate"),
        ] {
            server.apply(&path).await;
        }
    }
    let (ctx, mut server) = context();
    let rt = runtime(TollgateRuntimeSpec::default());
    let task = spawn_reconcile(rt.clone(), ctx.clone());
    reads(&mut server, None, &[]).await;
    first_applies(&mut server).await;
    refuse(&mut server).await;
    let event = server.event("billing").await;
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(event.body["reason"], "ReconcileFailed");
    assert!(
        event.body["note"].as_str().unwrap().contains("Forbidden"),
        "{}",
        event.body
    );
    let status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes/tollgate/status"),
            &json_of(&rt),
        )
        .await;
    let degraded = status.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("ReconcileFailed"))
    );
    assert!(
        task.await.unwrap().is_err(),
        "the reconcile fails and is retried"
    );

    // The retry meets the same refusal: the status already says it, so no event and no
    // status write.
    let mut failed = rt.clone();
    failed.status = serde_json::from_value(status.body["status"].clone()).unwrap();
    let task = spawn_reconcile(failed, ctx);
    reads(&mut server, None, &[]).await;
    first_applies(&mut server).await;
    refuse(&mut server).await;
    assert!(task.await.unwrap().is_err());
    server.done().await;
}

/// `plan` with the status a reconcile of `plans` would write, so no status patch is needed.
fn with_current_status(mut plan: Plan, plans: &[Plan]) -> Plan {
    let catalog = tollgate_crds::Catalog {
        plans: plans.to_vec(),
        ..Default::default()
    };
    let compiled = crate::bundle::compile(&catalog, &catalog).unwrap();
    let object = tollgate_crds::ObjectRef::new(tollgate_crds::ObjectKind::Plan, "pro");
    let inputs = crate::status::PolicyInputs {
        object: &object,
        generation: plan.metadata.generation,
        previous: None,
        compiled: &compiled,
        pods: crate::status::PodCounts::default(),
        deletion: None,
    };
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    plan.status = Some(crate::status::policy_status(&inputs, &now));
    plan
}

#[tokio::test]
async fn a_spec_change_patches_the_statefulset_and_keeps_the_bundle() {
    let (ctx, mut server) = context();
    let mut rt = runtime(TollgateRuntimeSpec {
        replicas: 5,
        ..TollgateRuntimeSpec::default()
    });
    rt.metadata.generation = Some(2);
    let pro = with_current_status(plan(PRO), &[plan(PRO)]);
    let before = published(&[plan(PRO)]);
    let task = spawn_reconcile(rt.clone(), ctx);
    reads(
        &mut server,
        Some(before.clone()),
        std::slice::from_ref(&pro),
    )
    .await;
    let (cm, sts) = applies(&mut server).await;
    assert_eq!(sts["spec"]["replicas"], 5);
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(env.contains(&json!({"name": "TOLLGATE_REPLICAS", "value": "5"})));
    assert_eq!(
        cm["data"], before["data"],
        "the bundle does not change with the runtime spec"
    );
    // The plan's status is current: the next request is the runtime's status.
    let rt_status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes/tollgate/status"),
            &json_of(&rt),
        )
        .await;
    assert_eq!(rt_status.body["status"]["observedGeneration"], 2);
    task.await.unwrap().unwrap();
    assert_eq!(server.done().await.len(), 14);
}

#[tokio::test]
async fn a_plan_change_updates_the_bundle_and_the_plan_status() {
    let (ctx, mut server) = context();
    let rt = runtime(TollgateRuntimeSpec::default());
    let old = with_current_status(plan(PRO), &[plan(PRO)]);
    let mut changed = plan(&PRO.replace("amount: 1000", "amount: 5000"));
    changed.metadata.generation = Some(2);
    changed.status = old.status.clone();
    let before = published(&[plan(PRO)]);
    let task = spawn_reconcile(rt.clone(), ctx);
    reads(
        &mut server,
        Some(before.clone()),
        std::slice::from_ref(&changed),
    )
    .await;
    let (cm, _) = applies(&mut server).await;
    let new_version = content_version(&tollgate_crds::Catalog {
        plans: vec![changed.clone()],
        ..Default::default()
    });
    assert_ne!(cm["data"]["version"], before["data"]["version"]);
    assert_eq!(cm["data"]["version"], new_version.to_string());
    assert!(
        cm["data"]["catalog.yaml"]
            .as_str()
            .unwrap()
            .contains("amount: 5000")
    );
    let status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans/pro/status"),
            &json_of(&changed),
        )
        .await;
    assert_eq!(
        status.body["status"]["policyVersion"],
        new_version.to_string()
    );
    assert_eq!(status.body["status"]["observedGeneration"], 2);
    server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes/tollgate/status"),
            &json_of(&rt),
        )
        .await;
    task.await.unwrap().unwrap();
    server.done().await;
}

#[tokio::test]
async fn an_invalid_plan_gets_status_and_event_and_the_bundle_is_unchanged() {
    let (ctx, mut server) = context();
    let rt = runtime(TollgateRuntimeSpec::default());
    let mut invalid = plan(&PRO.replace(
        "- {feature: tokens, microCredits: 5",
        "- {feature: images, microCredits: 5",
    ));
    invalid.metadata.generation = Some(2);
    invalid.status = with_current_status(plan(PRO), &[plan(PRO)]).status;
    let before = published(&[plan(PRO)]);
    let task = spawn_reconcile(rt.clone(), ctx);
    reads(
        &mut server,
        Some(before.clone()),
        std::slice::from_ref(&invalid),
    )
    .await;
    let (cm, _) = applies(&mut server).await;
    assert_eq!(
        cm["data"], before["data"],
        "an invalid edit never reaches the pods"
    );
    let event = server.event("billing").await;
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(event.body["reason"], "InvalidPreviousKept");
    assert_eq!(event.body["regarding"]["kind"], "Plan");
    assert!(
        event.body["note"]
            .as_str()
            .unwrap()
            .contains("spec.rateCard[0].feature = \"images\""),
        "{}",
        event.body["note"]
    );
    let status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans/pro/status"),
            &json_of(&invalid),
        )
        .await;
    let valid = &status.body["status"]["conditions"][0];
    assert_eq!(
        (valid["type"].as_str(), valid["status"].as_str()),
        (Some("Valid"), Some("False"))
    );
    assert_eq!(
        status.body["status"]["policyVersion"],
        before["data"]["version"]
    );
    let rt_status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes/tollgate/status"),
            &json_of(&rt),
        )
        .await;
    let degraded = &rt_status.body["status"]["conditions"][2];
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("InvalidPolicyObjects"))
    );
    assert_eq!(rt_status.body["status"]["invalidPolicyObjects"], 1);
    task.await.unwrap().unwrap();
    server.done().await;
}

#[tokio::test]
async fn a_runtime_being_deleted_makes_no_call() {
    let (ctx, server) = context();
    let mut rt = runtime(TollgateRuntimeSpec::default());
    rt.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    spawn_reconcile(rt, ctx).await.unwrap().unwrap();
    assert!(server.done().await.is_empty());
}

fn deleted_plan() -> Plan {
    let mut pro = plan(PRO);
    pro.metadata.finalizers = Some(vec![PLAN_IN_USE_FINALIZER.into()]);
    pro.metadata.resource_version = Some("42".into());
    pro.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    pro
}

fn runtime_pod(applied: &str, report: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tollgate-0", "namespace": "billing",
        "labels": {"app.kubernetes.io/name": "tollgate-runtime", "app.kubernetes.io/instance": "tollgate"},
        "annotations": {"tollgate.dev/applied-policy-version": applied,
                        "tollgate.dev/plan-subscribers": report}}})
}

/// The runtime's policy ConfigMap with `pro` closed to new subscriptions, and its version.
fn closing_bundle() -> (Value, String) {
    let mut pro = plan(PRO);
    pro.spec.closed_to_new_subscriptions = true;
    let cm = published(&[pro]);
    let version = cm["data"]["version"].as_str().unwrap().to_string();
    (cm, version)
}

/// Answers the plan controller's reads for a deleted `pro`: no Entitlement, the runtime
/// `tollgate` (one pod) with `bundle` published, and `pods`.
async fn deletion_reads(server: &mut ApiServer, bundle: Value, pods: Vec<Value>) {
    lists_none(server, "entitlements").await;
    server
        .list(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes"),
            vec![json_of(&runtime(TollgateRuntimeSpec::default()))],
        )
        .await;
    server
        .get(&format!("/api/v1{NS}/configmaps/tollgate-policy"), bundle)
        .await;
    server.list(&format!("/api/v1{NS}/pods"), pods).await;
}

#[tokio::test]
async fn a_new_plan_gets_the_in_use_finalizer() {
    let (ctx, mut server) = context();
    let mut pro = plan(PRO);
    pro.metadata.resource_version = Some("7".into());
    let task = tokio::spawn(plan_controller::reconcile(Arc::new(pro.clone()), ctx));
    let patch = server
        .answer(
            http::Method::PATCH,
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans/pro"),
            http::StatusCode::OK,
            |_| json_of(&pro),
        )
        .await;
    assert_eq!(
        patch.body,
        json!({"metadata": {"finalizers": [PLAN_IN_USE_FINALIZER], "resourceVersion": "7"}})
    );
    task.await.unwrap().unwrap();
    server.done().await;
}

#[tokio::test]
async fn deleting_an_unused_plan_removes_the_finalizer() {
    let (ctx, mut server) = context();
    let pro = deleted_plan();
    let task = tokio::spawn(plan_controller::reconcile(Arc::new(pro.clone()), ctx));
    let (bundle, version) = closing_bundle();
    deletion_reads(
        &mut server,
        bundle,
        vec![runtime_pod(&version, r#"{"pro": 0}"#)],
    )
    .await;
    let patch = server
        .answer(
            http::Method::PATCH,
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans/pro"),
            http::StatusCode::OK,
            |_| json_of(&pro),
        )
        .await;
    assert_eq!(
        patch.body,
        json!({"metadata": {"finalizers": [], "resourceVersion": "42"}})
    );
    task.await.unwrap().unwrap();
    server.done().await;
}

/// Reconciles the deleted `pro` against `bundle` and `pods` and expects it held: returns the
/// body of the Warning event, once the reconcile has asked to look again later.
async fn held_deletion(bundle: Value, pods: Vec<Value>) -> Value {
    let (ctx, mut server) = context();
    let task = tokio::spawn(plan_controller::reconcile(Arc::new(deleted_plan()), ctx));
    deletion_reads(&mut server, bundle, pods).await;
    let event = server.event("billing").await;
    let action = task.await.unwrap().unwrap();
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(plan_controller::BLOCKED_RECHECK)
    );
    server.done().await;
    event.body
}

/// The runtime's only pod restarting (no pod object) is not "no runtime": the plan waits.
#[tokio::test]
async fn deleting_a_plan_while_the_runtime_pod_is_away_waits() {
    let (bundle, _) = closing_bundle();
    let event = held_deletion(bundle, vec![]).await;
    assert_eq!(
        (event["reason"].as_str(), event["note"].as_str()),
        (
            Some("SubscribersUnknown"),
            Some(
                "runtime pods have not reported subscriber counts under the closing policy: \
                 tollgate-0 (not running)"
            )
        )
    );
}

/// A count the pod made under the bundle that still offered the plan may be 30 s old; and a
/// bundle that does not close the plan yet holds it too.
#[tokio::test]
async fn deleting_a_plan_waits_for_counts_under_the_closing_bundle() {
    let (bundle, _) = closing_bundle();
    let stale = runtime_pod("sha256:0ld", r#"{"pro": 0}"#);
    let event = held_deletion(bundle, vec![stale]).await;
    assert_eq!(event["reason"].as_str(), Some("SubscribersUnknown"));

    let open = published(&[plan(PRO)]);
    let version = open["data"]["version"].as_str().unwrap().to_string();
    let pods = vec![runtime_pod(&version, r#"{"pro": 0}"#)];
    let event = held_deletion(open, pods).await;
    assert_eq!(event["reason"].as_str(), Some("NotClosedYet"));
}

#[tokio::test]
async fn deleting_a_plan_with_subscribers_is_blocked_with_an_event() {
    let (bundle, version) = closing_bundle();
    let pods = vec![runtime_pod(&version, r#"{"pro": 12}"#)];
    let event = held_deletion(bundle, pods).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("HasSubscribers"))
    );
}

#[tokio::test]
async fn a_plan_being_deleted_stays_in_the_bundle_closed_with_a_deleting_condition() {
    let (ctx, mut server) = context();
    let rt = runtime(TollgateRuntimeSpec::default());
    let pro = deleted_plan();
    let task = spawn_reconcile(rt.clone(), ctx);
    // The pod has applied the bundle this reconcile publishes (pro closed) and counts 3.
    let (_, closing) = closing_bundle();
    reads_with_pods(
        &mut server,
        Some(published(&[plan(PRO)])),
        std::slice::from_ref(&pro),
        vec![runtime_pod(&closing, r#"{"pro": 3}"#)],
    )
    .await;
    let (cm, _) = applies(&mut server).await;
    assert_eq!(cm["data"]["version"].as_str(), Some(closing.as_str()));
    assert!(
        cm["data"]["catalog.yaml"]
            .as_str()
            .unwrap()
            .contains("closedToNewSubscriptions: true")
    );
    let status = server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/plans/pro/status"),
            &json_of(&pro),
        )
        .await;
    let deleting = &status.body["status"]["conditions"][1];
    assert_eq!(
        (deleting["type"].as_str(), deleting["reason"].as_str()),
        (Some("Deleting"), Some("HasSubscribers"))
    );
    server
        .apply_status(
            &format!("/apis/tollgate.dev/v1alpha1{NS}/tollgateruntimes/tollgate/status"),
            &json_of(&rt),
        )
        .await;
    task.await.unwrap().unwrap();
    server.done().await;
}
