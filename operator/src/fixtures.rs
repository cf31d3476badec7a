//! A mocked Kubernetes API server for reconciler tests (the kube-rs controller-rs pattern):
//! the reconciler talks to a `tower_test` mock, and the test answers each request in order,
//! asserting the method, path and body of every call.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use prometheus::Registry;
use serde_json::{Value, json};

use crate::builders::BuildDefaults;
use crate::context::Context;
use crate::metrics::Metrics;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A request as the mocked API server saw it.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
}

/// The test's side of the mocked API server.
pub struct ApiServer {
    handle: Handle,
    /// `METHOD path` of every request answered, in order.
    pub log: Vec<String>,
}

impl ApiServer {
    /// Takes the next request, asserts its method and path, answers `status` with `response`
    /// computed from the request.
    pub async fn answer(
        &mut self,
        method: Method,
        path: &str,
        status: StatusCode,
        response: impl FnOnce(&Seen) -> Value,
    ) -> Seen {
        let next = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request()).await;
        let (request, send) = next
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {method} {path}; answered so far: {:#?}",
                    self.log
                )
            })
            .unwrap_or_else(|| {
                panic!(
                    "reconciler stopped before {method} {path}; answered so far: {:#?}",
                    self.log
                )
            });
        let uri = request.uri().clone();
        let seen_method = request.method().clone();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        let seen = Seen {
            method: seen_method,
            path: uri.path().to_string(),
            query: uri.query().unwrap_or("").to_string(),
            body,
        };
        assert_eq!(
            format!("{} {}", seen.method, seen.path),
            format!("{method} {path}"),
            "unexpected request; answered so far: {:#?}",
            self.log
        );
        self.log.push(format!("{} {}", seen.method, seen.path));
        let reply = serde_json::to_vec(&response(&seen)).expect("response JSON");
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(reply))
                .expect("response"),
        );
        seen
    }

    /// Answers a GET with an object.
    pub async fn get(&mut self, path: &str, object: Value) -> Seen {
        self.answer(Method::GET, path, StatusCode::OK, |_| object)
            .await
    }

    /// Answers a GET with 404 Not Found.
    pub async fn not_found(&mut self, path: &str) -> Seen {
        self.answer(Method::GET, path, StatusCode::NOT_FOUND, |_| {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
        })
        .await
    }

    /// Answers a LIST with items.
    pub async fn list(&mut self, path: &str, items: Vec<Value>) -> Seen {
        self.get(path, json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})).await
    }

    /// Answers a server-side apply PATCH by echoing the applied object, and checks it is one.
    pub async fn apply(&mut self, path: &str) -> Seen {
        let seen = self
            .answer(Method::PATCH, path, StatusCode::OK, |seen| {
                seen.body.clone()
            })
            .await;
        assert!(
            seen.query.contains("fieldManager=tollgate-operator")
                && seen.query.contains("force=true"),
            "{}",
            seen.query
        );
        seen
    }

    /// Answers a status apply PATCH with `object` carrying the applied status.
    pub async fn apply_status(&mut self, path: &str, object: &Value) -> Seen {
        let mut object = object.clone();
        let seen = self
            .answer(Method::PATCH, path, StatusCode::OK, |seen| {
                object["status"] = seen.body["status"].clone();
                object
            })
            .await;
        assert!(
            seen.query.contains("fieldManager=tollgate-operator"),
            "{}",
            seen.query
        );
        seen
    }

    /// Answers an event POST, returning it.
    pub async fn event(&mut self, namespace: &str) -> Seen {
        let path = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        self.answer(Method::POST, &path, StatusCode::CREATED, |seen| {
            seen.body.clone()
        })
        .await
    }

    /// Asserts the reconciler made no further request.
    pub async fn done(mut self) -> Vec<String> {
        let next =
            tokio::time::timeout(Duration::from_millis(100), self.handle.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!(
                "unexpected extra request {} {}",
                request.method(),
                request.uri()
            );
        }
        self.log
    }
}

/// A context whose client talks to the mocked API server.
pub fn context() -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let metrics = Metrics::register(&Registry::new()).expect("metrics");
    let defaults = BuildDefaults {
        runtime_image: "ghcr.io/tollgate-dev/tollgate:0.1.0".into(),
        image_pull_secrets: Vec::new(),
    };
    let ctx = Context::new(
        client,
        metrics,
        defaults,
        Some("tollgate-operator-0".into()),
    );
    (
        Arc::new(ctx),
        ApiServer {
            handle,
            log: Vec::new(),
        },
    )
}
