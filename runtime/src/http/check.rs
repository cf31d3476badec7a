//! `POST /v1/check`: the gRPC `Enforcement.Check` as JSON, for callers without a gRPC client
//! (scripts, the cluster end-to-end test through the API server's service proxy).
//!
//! Field names follow the proto3 JSON mapping of `CheckRequest` (`customerId`; the proto's
//! `customer_id` is accepted too). The answer is the decision, flat: `allowed`, `reason`
//! (the stable reason code, as in metrics), `message`, `remaining`, `policyVersion`, ...
//! Bad input is a 400 whose `error.field` names the field.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::HttpState;
use crate::policy::{FeatureValue, Subject};
use crate::service::{CheckOutcome, Remaining, RemainingUnit, ServiceError, UsageRequest};

/// Largest request body: a Check is a few ids and at most 16 dimensions.
pub const MAX_CHECK_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckBody {
    #[serde(default, alias = "customer_id")]
    customer_id: String,
    #[serde(default)]
    subject: Option<SubjectBody>,
    #[serde(default)]
    feature: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
    #[serde(default)]
    units: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectBody {
    team: Option<String>,
    user: Option<String>,
    agent: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckAnswer {
    allowed: bool,
    reason: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cap_level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cap_name: Option<String>,
    remaining: Vec<RemainingAnswer>,
    policy_version: String,
    alerts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    choice: Option<String>,
    price_micro_credits: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RemainingAnswer {
    name: String,
    unit: &'static str,
    limit: u64,
    used: u64,
    pending: u64,
    remaining: u64,
    unlimited: bool,
    resets_at_ms: u64,
}

#[derive(Debug, Serialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    message: String,
}

pub(super) async fn check(
    State(state): State<Arc<HttpState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let parsed = match body {
        Ok(body) => parse(&body).map_err(|bad| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                bad.field,
                bad.message,
            )
        }),
        // Larger than MAX_CHECK_BODY_BYTES, or the connection failed mid-body.
        Err(rejection) => Err(error(
            rejection.status(),
            "invalid_argument",
            None,
            rejection.body_text(),
        )),
    };
    let request = match parsed {
        Ok(r) => r,
        Err(answer) => {
            state.metrics.observe_call("http_check", started, false);
            return answer;
        }
    };
    let result = state.runtime.check(request).await;
    state
        .metrics
        .observe("http_check", started, result.as_ref().map(|o| &o.decision));
    match result {
        Ok(outcome) => Json(answer(outcome)).into_response(),
        Err(e) => service_error(&e),
    }
}

/// A body that is not a Check request: the field at fault (when one is) and why.
struct BadBody {
    field: Option<String>,
    message: String,
}

fn parse(body: &[u8]) -> Result<UsageRequest, BadBody> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let parsed: CheckBody = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        BadBody {
            field: (path != ".").then_some(path),
            message: format!("body is not a Check request: {}", e.inner()),
        }
    })?;
    let subject = parsed.subject.unwrap_or_default();
    let some = |v: Option<String>| v.filter(|v| !v.is_empty());
    Ok(UsageRequest {
        customer: parsed.customer_id,
        subject: Subject {
            team: some(subject.team),
            user: some(subject.user),
            agent: some(subject.agent),
        },
        feature: parsed.feature,
        dimensions: parsed.dimensions,
        units: parsed.units,
    })
}

fn answer(outcome: CheckOutcome) -> CheckAnswer {
    let d = outcome.decision;
    let (number, choice) = match outcome.value {
        Some(FeatureValue::Number(n)) => (Some(n), None),
        Some(FeatureValue::Choice(c)) => (None, Some(c)),
        None => (None, None),
    };
    let (cap_level, cap_name) = match d.cap {
        Some((level, name)) => (Some(level.name()), Some(name)),
        None => (None, None),
    };
    CheckAnswer {
        allowed: d.allowed,
        reason: d.reason.code(),
        message: d.message,
        cap_level,
        cap_name,
        remaining: d.remaining.into_iter().map(remaining).collect(),
        policy_version: d.policy_version,
        alerts: d.alerts,
        number,
        choice,
        price_micro_credits: outcome.price_micro_credits,
    }
}

fn remaining(r: Remaining) -> RemainingAnswer {
    RemainingAnswer {
        name: r.name,
        unit: match r.unit {
            RemainingUnit::MicroCredits => "micro_credits",
            RemainingUnit::MeterUnits => "meter_units",
        },
        limit: r.limit,
        used: r.used,
        pending: r.pending,
        remaining: r.remaining,
        unlimited: r.unlimited,
        resets_at_ms: r.resets_at_ms,
    }
}

/// The HTTP status of a service error: the same mapping as the gRPC codes.
fn service_error(e: &ServiceError) -> Response {
    let (status, field) = match e {
        ServiceError::InvalidArgument { field, .. } => {
            (StatusCode::BAD_REQUEST, Some(field.clone()))
        }
        ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, None),
        ServiceError::FailedPrecondition(_) => (StatusCode::PRECONDITION_FAILED, None),
        ServiceError::Conflict { .. } => (StatusCode::CONFLICT, None),
        ServiceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
        ServiceError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    error(status, e.code(), field, e.to_string())
}

fn error(
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
) -> Response {
    let body = ErrorAnswer {
        error: ErrorBody {
            code,
            field,
            message,
        },
    };
    (status, Json(body)).into_response()
}
