//! `POST /v1/check` on the real binary: the JSON Check answers what the gRPC Check answers
//! (allow and deny, reason, policy version), and bad input is a 400 naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tollgate_e2e::proto::{self, CheckRequest};
use tollgate_e2e::{CatalogDir, Server, decision_of};

async fn post(server: &Server, body: &str) -> (u16, Value) {
    let resp = server.http_post_json("/v1/check", body).await.unwrap();
    let json = serde_json::from_str(&resp.body).unwrap_or_else(|e| {
        panic!(
            "/v1/check answered {} non-JSON {:?}: {e}",
            resp.status, resp.body
        )
    });
    (resp.status, json)
}

/// The gRPC Check of the same request, for comparison.
async fn grpc_check(server: &Server, customer: &str, feature: &str) -> proto::Decision {
    let mut enforcement = server.clients().await.unwrap().enforcement;
    let answer = enforcement
        .check(CheckRequest {
            customer_id: customer.into(),
            feature: feature.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    decision_of(&answer.decision).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_check_allows_and_denies_like_grpc() {
    let catalog = CatalogDir::examples_plus_e2e().unwrap();
    let server = Server::start_with_catalog(&catalog).await.unwrap();
    let version = server.policy().await.unwrap().version;
    server
        .clients()
        .await
        .unwrap()
        .create_subscribed("cus_http_free", "free")
        .await
        .unwrap();

    // Allowed: the free plan includes the small model. The body is what e2e/cluster_e2e.py
    // sends.
    let (status, allowed) = post(
        &server,
        r#"{"customerId": "cus_http_free", "feature": "model.gpt-small"}"#,
    )
    .await;
    assert_eq!(status, 200, "{allowed}");
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert_eq!(allowed["reason"], "allowed", "{allowed}");
    assert_eq!(allowed["policyVersion"], version.as_str(), "{allowed}");
    let grpc = grpc_check(&server, "cus_http_free", "model.gpt-small").await;
    assert!(
        grpc.allowed && grpc.reason == proto::Reason::Allowed as i32,
        "{grpc:?}"
    );

    // Denied: the free plan does not include the large model. The proto's own field name
    // is accepted too.
    let (status, denied) = post(
        &server,
        r#"{"customer_id": "cus_http_free", "feature": "model.gpt-large", "subject": {"user": "u-1"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(denied["reason"], "no_entitlement", "{denied}");
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("model.gpt-large"),
        "{denied}"
    );
    assert_eq!(denied["policyVersion"], version.as_str(), "{denied}");
    let grpc = grpc_check(&server, "cus_http_free", "model.gpt-large").await;
    assert_eq!(
        (grpc.allowed, grpc.reason),
        (false, proto::Reason::NoEntitlement as i32)
    );

    // A customer that does not exist is a decision, not an error.
    let (status, unknown) = post(
        &server,
        &json!({"customerId": "cus_nobody", "feature": "model.gpt-small"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{unknown}");
    assert_eq!(
        (&unknown["allowed"], &unknown["reason"]),
        (&json!(false), &json!("unknown_customer"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_the_field() {
    let catalog = CatalogDir::examples_plus_e2e().unwrap();
    let server = Server::start_with_catalog(&catalog).await.unwrap();
    for (body, field, says) in [
        (
            r#"{"customerId": 5, "feature": "model.gpt-small"}"#,
            Some("customerId"),
            "string",
        ),
        (
            r#"{"customerId": "c", "feature": "model.gpt-small", "units": "ten"}"#,
            Some("units"),
            "u64",
        ),
        (
            r#"{"feature": "model.gpt-small"}"#,
            Some("customer_id"),
            "required",
        ),
        (
            r#"{"customerId": "c", "feature": "model.gpt-small", "custmer": "x"}"#,
            Some("custmer"),
            "custmer",
        ),
        ("not json", None, "expected"),
    ] {
        let (status, answer) = post(&server, body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_argument",
            "{body} -> {answer}"
        );
        match field {
            Some(field) => assert_eq!(answer["error"]["field"], field, "{body} -> {answer}"),
            None => assert!(answer["error"].get("field").is_none(), "{body} -> {answer}"),
        }
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{body} -> {answer}"
        );
    }
    // A feature the catalog does not have: 404, like gRPC's NOT_FOUND.
    let (status, answer) = post(&server, r#"{"customerId": "c", "feature": "no.such"}"#).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "not_found", "{answer}");
    // Still serving after all of it.
    assert_eq!(server.http_get("/readyz").await.unwrap().status, 200);
}
