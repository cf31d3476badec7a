//! The policy ConfigMap and the pod report against kube's mocked API server (`tower-test`,
//! the controller-rs pattern): the test plays the API server, answers each request and
//! asserts its method, path, query, content type and body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::SendResponse;

use super::*;
use crate::catalog::PolicyInForce;
use crate::http::{Metrics, PolicyStatus};
use crate::testing::{TWO_PLANS, TestRuntime, runtime, subscribe};

const NS: &str = "billing";
const CONFIGMAP: &str = "tollgate-policy";
const POD: &str = "tollgate-0";
const CONFIGMAP_PATH: &str = "/api/v1/namespaces/billing/configmaps/tollgate-policy";
const CONFIGMAPS_PATH: &str = "/api/v1/namespaces/billing/configmaps";
const POD_PATH: &str = "/api/v1/namespaces/billing/pods/tollgate-0";

/// TWO_PLANS plus a third plan, `team`.
fn three_plans() -> String {
    format!(
        "{TWO_PLANS}---\napiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {{name: team}}\nspec:\n  features:\n    - {{id: chat, kind: boolean, enabled: true}}\n"
    )
}

/// Valid YAML that breaks a rule (`perUnits` must be at least 1).
const BREAKS_A_RULE: &str = "\
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: pro}
spec:
  features:
    - {id: tokens, kind: metered, meter: llm.tokens, limit: {unlimited: true}}
  rateCard:
    - {feature: tokens, microCredits: 5, perUnits: 0}
";

/// The content version the operator would publish for `yaml`, computed from the CRD types
/// (not by the runtime's compiler).
fn version_of(yaml: &str) -> String {
    let catalog = tollgate_crds::load_catalog_yaml(yaml).unwrap().catalog;
    tollgate_crds::content_version(&catalog).to_string()
}

fn configmap(yaml: &str, resource_version: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": NS, "resourceVersion": resource_version},
        "data": {"catalog.yaml": yaml, "version": version_of(yaml)}
    })
}

/// A request the mocked API server received, not answered yet.
struct Pending {
    method: Method,
    path: String,
    query: String,
    content_type: String,
    body: Value,
    send: SendResponse<Response<Body>>,
}

impl Pending {
    fn reply(self, status: StatusCode, body: Vec<u8>) {
        self.send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(body))
                .unwrap(),
        );
    }

    fn reply_json(self, value: &Value) {
        self.reply(StatusCode::OK, serde_json::to_vec(value).unwrap());
    }

    /// Answers a watch with `events` and ends the stream.
    fn reply_events(self, events: &[Value]) {
        let mut body = Vec::new();
        for event in events {
            body.extend(serde_json::to_vec(event).unwrap());
            body.push(b'\n');
        }
        self.reply(StatusCode::OK, body);
    }

    /// Answers a pod PATCH with the pod it would make.
    fn reply_pod(self) {
        let mut pod =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NS}});
        pod["metadata"]["annotations"] = self.body["metadata"]["annotations"].clone();
        self.reply_json(&pod);
    }
}

/// The test's side of the mocked API server.
struct ApiServer {
    handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
}

impl ApiServer {
    async fn next(&mut self) -> Pending {
        let next = tokio::time::timeout(Duration::from_secs(10), self.handle.next_request())
            .await
            .expect("a request within 10 s")
            .expect("the client is still there");
        let (request, send) = next;
        let uri = request.uri().clone();
        let method = request.method().clone();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Pending {
            method,
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            content_type,
            body,
            send,
        }
    }

    /// The next request, asserted to be `method path`.
    async fn expect(&mut self, method: Method, path: &str) -> Pending {
        let next = self.next().await;
        assert_eq!(
            (&next.method, next.path.as_str()),
            (&method, path),
            "query {}",
            next.query
        );
        next
    }

    /// The next two requests, in whatever order they came: a pod PATCH and a watch of the
    /// ConfigMap (two tasks make them concurrently).
    async fn patch_and_watch(&mut self) -> (Pending, Pending) {
        let (a, b) = (self.next().await, self.next().await);
        let (patch, watch) = if a.method == Method::PATCH {
            (a, b)
        } else {
            (b, a)
        };
        assert_eq!(
            (&patch.method, patch.path.as_str()),
            (&Method::PATCH, POD_PATH)
        );
        assert_eq!(
            (&watch.method, watch.path.as_str()),
            (&Method::GET, CONFIGMAPS_PATH)
        );
        (patch, watch)
    }

    /// Asserts no request arrives within `wait`.
    async fn quiet_for(&mut self, wait: Duration) {
        if let Ok(Some((request, _))) = tokio::time::timeout(wait, self.handle.next_request()).await
        {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

fn mocked() -> (Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

/// A runtime with `TWO_PLANS` in force and the status and metrics serve would make.
fn in_force(t: &TestRuntime) -> PolicyInForce {
    let policy = t.runtime.policy();
    PolicyInForce {
        runtime: t.runtime.clone(),
        status: Arc::new(RwLock::new(PolicyStatus {
            version: policy.version.clone(),
            objects: policy.objects(),
            source: format!("configmap {NS}/{CONFIGMAP}"),
            ..PolicyStatus::default()
        })),
        metrics: Arc::new(Metrics::new().unwrap()),
    }
}

/// Asserts `pending` is the merge patch of exactly `version` and `subscribers`.
fn assert_report(pending: &Pending, version: &str, subscribers: &BTreeMap<&str, u64>) {
    assert_eq!(pending.content_type, "application/merge-patch+json");
    assert_eq!(pending.query, "&fieldManager=tollgate-runtime");
    let expected = json!({"metadata": {"annotations": {
        "tollgate.dev/applied-policy-version": version,
        "tollgate.dev/plan-subscribers": serde_json::to_string(subscribers).unwrap(),
    }}});
    assert_eq!(pending.body, expected);
}

/// The body of an API server error (`kind: Status`).
fn status_body(code: u16, reason: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": reason, "code": code, "message": message,
    }))
    .unwrap()
}

fn watch_query(resource_version: &str) -> String {
    format!(
        "&watch=true&timeoutSeconds={WATCH_TIMEOUT_S}&fieldSelector=metadata.name%3D{CONFIGMAP}&allowWatchBookmarks=true&resourceVersion={resource_version}"
    )
}

#[tokio::test]
async fn start_reads_the_configmap_and_enforces_its_policy() {
    let (client, mut server) = mocked();
    let cluster = Cluster::new(client, NS, CONFIGMAP, POD);
    let start = tokio::spawn(async move { cluster.configmap.initial().await });
    // Not there yet (the operator is about to publish it): retried, not fatal.
    server.expect(Method::GET, CONFIGMAP_PATH).await.reply(
        StatusCode::NOT_FOUND,
        status_body(404, "NotFound", "configmaps \"tollgate-policy\" not found"),
    );
    let three = three_plans();
    server
        .expect(Method::GET, CONFIGMAP_PATH)
        .await
        .reply_json(&configmap(&three, "41"));
    let (policy, resource_version) = start.await.unwrap().unwrap();
    assert_eq!(resource_version, "41");
    assert_eq!(policy.version, version_of(&three));
    assert_ne!(policy.version, version_of(TWO_PLANS));

    // That policy decides: `team` exists only in the ConfigMap's catalog.
    let t = runtime(TWO_PLANS, 2);
    t.runtime.set_policy(policy);
    subscribe(&t.runtime, "cus_team", "team").await;
    let check = t
        .runtime
        .check(crate::service::UsageRequest {
            customer: "cus_team".into(),
            feature: "chat".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(check.decision.allowed, "{:?}", check.decision);
    assert_eq!(check.decision.policy_version, version_of(&three));
}

#[tokio::test]
async fn start_gives_up_after_bounded_retries_naming_the_configmap() {
    let (client, mut server) = mocked();
    let cluster = Cluster::new(client, NS, CONFIGMAP, POD);
    let start = tokio::spawn(async move { cluster.configmap.initial().await });
    for _ in 0..START_ATTEMPTS {
        server.expect(Method::GET, CONFIGMAP_PATH).await.reply(
            StatusCode::FORBIDDEN,
            status_body(
                403,
                "Forbidden",
                "configmaps \"tollgate-policy\" is forbidden",
            ),
        );
    }
    let error = start.await.unwrap().unwrap_err().to_string();
    assert!(
        error.contains("configmap billing/tollgate-policy")
            && error.contains(&format!("after {START_ATTEMPTS} attempts"))
            && error.contains("403"),
        "{error}"
    );
    server.quiet_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn start_refuses_an_invalid_catalog_at_once() {
    let (client, mut server) = mocked();
    let cluster = Cluster::new(client, NS, CONFIGMAP, POD);
    let start = tokio::spawn(async move { cluster.configmap.initial().await });
    server
        .expect(Method::GET, CONFIGMAP_PATH)
        .await
        .reply_json(&configmap(BREAKS_A_RULE, "3"));
    let error = start.await.unwrap().unwrap_err().to_string();
    assert!(
        error.contains("configmap billing/tollgate-policy") && error.contains("perUnits"),
        "{error}"
    );
}

#[tokio::test]
async fn a_changed_catalog_is_swapped_in_and_reported_on_the_pod() {
    let t = runtime(TWO_PLANS, 4);
    for (customer, plan) in [("cus_a", "pro"), ("cus_b", "pro"), ("cus_c", "free")] {
        subscribe(&t.runtime, customer, plan).await;
    }
    let policy = in_force(&t);
    let (client, mut server) = mocked();
    let tasks = Cluster::new(client, NS, CONFIGMAP, POD).start("7".into(), policy.clone());

    // At start: the report of the policy in force, and the watch from the start's version.
    let (patch, watch) = server.patch_and_watch().await;
    let v1 = version_of(TWO_PLANS);
    assert_report(&patch, &v1, &BTreeMap::from([("free", 1), ("pro", 2)]));
    patch.reply_pod();
    assert_eq!(watch.query, watch_query("7"));
    let three = three_plans();
    watch.reply_events(&[json!({"type": "MODIFIED", "object": configmap(&three, "8")})]);

    // The new catalog is in force, and the pod says so, with `team` at 0 subscribers.
    let (patch, watch) = server.patch_and_watch().await;
    let v2 = version_of(&three);
    assert_report(
        &patch,
        &v2,
        &BTreeMap::from([("free", 1), ("pro", 2), ("team", 0)]),
    );
    assert_eq!(t.runtime.policy().version, v2);
    let status = policy.status.read().unwrap().clone();
    assert_eq!(
        (status.version.as_str(), status.last_error),
        (v2.as_str(), None)
    );
    // The next watch resumes from the event's resource version.
    assert_eq!(watch.query, watch_query("8"));
    for task in tasks {
        task.abort();
    }
}

#[tokio::test]
async fn an_invalid_catalog_keeps_the_old_policy_and_says_why() {
    let t = runtime(TWO_PLANS, 2);
    subscribe(&t.runtime, "cus_a", "free").await;
    let policy = in_force(&t);
    let v1 = version_of(TWO_PLANS);
    let (client, mut server) = mocked();
    let reporter = PodReport::new(client.clone(), NS, POD);
    let tasks = Cluster::new(client, NS, CONFIGMAP, POD).start("7".into(), policy.clone());
    let (patch, watch) = server.patch_and_watch().await;
    assert_report(&patch, &v1, &BTreeMap::from([("free", 1), ("pro", 0)]));
    patch.reply_pod();
    watch.reply_events(&[json!({"type": "MODIFIED", "object": configmap(BREAKS_A_RULE, "9")})]);

    // Refused: no report is triggered; the next request is the watch again, from "9".
    let watch = server.expect(Method::GET, CONFIGMAPS_PATH).await;
    assert_eq!(watch.query, watch_query("9"));
    assert_eq!(t.runtime.policy().version, v1);
    let status = policy.status.read().unwrap().clone();
    assert_eq!(status.version, v1);
    let why = status.last_error.expect("the refusal is recorded");
    assert!(
        why.contains("configmap billing/tollgate-policy") && why.contains("perUnits"),
        "{why}"
    );
    let metrics = policy.metrics.render(&t.runtime);
    assert!(
        metrics.contains("tollgate_policy_reloads_total{outcome=\"refused\"} 1"),
        "{metrics}"
    );

    // The next report still carries the old version.
    let report = tokio::spawn({
        let runtime = t.runtime.clone();
        async move { reporter.report(&runtime).await }
    });
    let patch = server.expect(Method::PATCH, POD_PATH).await;
    assert_report(&patch, &v1, &BTreeMap::from([("free", 1), ("pro", 0)]));
    patch.reply_pod();
    report.await.unwrap().unwrap();
    for task in tasks {
        task.abort();
    }
}

#[tokio::test]
async fn an_expired_watch_reads_the_configmap_again_and_applies_it() {
    let t = runtime(TWO_PLANS, 1);
    let policy = in_force(&t);
    let (client, mut server) = mocked();
    let configmap_source = PolicyConfigMap::new(client, NS, CONFIGMAP);
    let applied = Arc::new(tokio::sync::Notify::new());
    let follow = tokio::spawn(configmap_source.follow("7".into(), policy.clone(), applied.clone()));
    server.expect(Method::GET, CONFIGMAPS_PATH).await.reply_events(&[json!({
        "type": "ERROR",
        "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old resource version: 7 (12)"}
    })]);
    let three = three_plans();
    server
        .expect(Method::GET, CONFIGMAP_PATH)
        .await
        .reply_json(&configmap(&three, "12"));
    tokio::time::timeout(Duration::from_secs(5), applied.notified())
        .await
        .expect("the re-read policy is applied");
    assert_eq!(t.runtime.policy().version, version_of(&three));
    let watch = server.expect(Method::GET, CONFIGMAPS_PATH).await;
    assert_eq!(watch.query, watch_query("12"));
    follow.abort();
}

#[test]
fn unknown_subscriber_counts_remove_the_annotation() {
    let patch = annotations_patch("sha256:1", None);
    assert_eq!(
        patch,
        json!({"metadata": {"annotations": {
            "tollgate.dev/applied-policy-version": "sha256:1",
            "tollgate.dev/plan-subscribers": null,
        }}})
    );
}
