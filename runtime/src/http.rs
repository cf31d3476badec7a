//! The HTTP edge: health, readiness, Prometheus metrics, the policy in force, and `Check`
//! as JSON (`check`).

mod check;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use serde::Serialize;

use crate::service::{Decision, Runtime, ServiceError};

/// A store's own figures by name (the DynamoDB store's calls, throttling, capacity units
/// and checkpoints), read when `/metrics` is scraped.
pub type StoreFigures = Arc<dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync>;

/// Every metric the runtime exports.
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    calls: IntCounterVec,
    latency: HistogramVec,
    engine: IntGaugeVec,
    policy_reloads: IntCounterVec,
    store: Option<(StoreFigures, GaugeVec)>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "tollgate_decisions_total",
                "Decisions by RPC, outcome and reason",
            ),
            &["rpc", "outcome", "reason"],
        )?;
        let calls = IntCounterVec::new(
            Opts::new("tollgate_calls_total", "RPCs by outcome"),
            &["rpc", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("tollgate_rpc_latency_seconds", "Time to answer an RPC").buckets(
                vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.5, 1.0,
                ],
            ),
            &["rpc"],
        )?;
        let engine = IntGaugeVec::new(
            Opts::new(
                "tollgate_engine",
                "Engine figures per partition: queue depth, batches, commands, max batch, store \
                 writes and their microseconds, snapshots and the last one's bytes, and what the \
                 ledger keeps in memory and in every snapshot (journal entries, answer and hold \
                 slots)",
            ),
            &["partition", "figure"],
        )?;
        let policy_reloads = IntCounterVec::new(
            Opts::new(
                "tollgate_policy_reloads_total",
                "Catalog changes seen, by outcome (applied, refused)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(engine.clone()))?;
        registry.register(Box::new(policy_reloads.clone()))?;
        Ok(Metrics {
            registry,
            decisions,
            calls,
            latency,
            engine,
            policy_reloads,
            store: None,
        })
    }

    /// Exports `figures` as `tollgate_dynamodb{figure=...}`.
    pub fn with_dynamodb_figures(
        mut self,
        figures: StoreFigures,
    ) -> Result<Self, prometheus::Error> {
        let gauge = GaugeVec::new(
            Opts::new(
                "tollgate_dynamodb",
                "The DynamoDB store's figures since start (counters): call attempts, retries, \
                 throttled answers, calls given up; write and read capacity units consumed; \
                 journal batches and those written as transactions; checkpoints published, \
                 failed and deleted",
            ),
            &["figure"],
        )?;
        self.registry.register(Box::new(gauge.clone()))?;
        self.store = Some((figures, gauge));
        Ok(self)
    }

    /// Records an RPC that decides.
    pub fn observe(&self, rpc: &str, started: Instant, result: Result<&Decision, &ServiceError>) {
        self.latency
            .with_label_values(&[rpc])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(d) => {
                let outcome = if d.allowed { "allowed" } else { "denied" };
                self.decisions
                    .with_label_values(&[rpc, outcome, d.reason.code()])
                    .inc();
                self.calls.with_label_values(&[rpc, "ok"]).inc();
            }
            Err(e) => self.calls.with_label_values(&[rpc, e.code()]).inc(),
        }
    }

    /// Records an RPC that does not decide.
    pub fn observe_call(&self, rpc: &str, started: Instant, ok: bool) {
        self.latency
            .with_label_values(&[rpc])
            .observe(started.elapsed().as_secs_f64());
        self.calls
            .with_label_values(&[rpc, if ok { "ok" } else { "error" }])
            .inc();
    }

    pub fn policy_reload(&self, applied: bool) {
        self.policy_reloads
            .with_label_values(&[if applied { "applied" } else { "refused" }])
            .inc();
    }

    pub(crate) fn render(&self, runtime: &Runtime) -> String {
        for (p, engine) in runtime.engines().iter().enumerate() {
            let p = p.to_string();
            let stats = engine.stats().snapshot();
            for (figure, value) in [
                ("queue_depth", engine.queue_depth() as u64),
                ("batches", stats.batches),
                ("commands", stats.commands),
                ("max_batch", stats.max_batch),
                ("store_writes", stats.store_writes),
                ("store_write_us_total", stats.store_write_us_total),
                ("store_write_us_max", stats.store_write_us_max),
                ("snapshots", stats.snapshots),
                ("snapshots_failed", stats.snapshots_failed),
                ("snapshot_bytes", stats.snapshot_bytes),
                ("journal_entries", stats.journal_entries),
                ("answer_slots", stats.answer_slots),
                ("hold_slots", stats.hold_slots),
            ] {
                self.engine
                    .with_label_values(&[p.as_str(), figure])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        if let Some((figures, gauge)) = &self.store {
            for (figure, value) in figures() {
                gauge.with_label_values(&[figure]).set(value);
            }
        }
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The policy in force and why the last change was refused, if it was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyStatus {
    pub version: String,
    pub objects: usize,
    pub last_error: Option<String>,
    pub loaded_at_ms: u64,
    /// Where the policy comes from: `directory <path>` or `configmap <namespace>/<name>`.
    pub source: String,
    /// The catalog directory (empty when the policy comes from a ConfigMap).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub directory: String,
}

pub struct HttpState {
    pub runtime: Arc<Runtime>,
    pub metrics: Arc<Metrics>,
    pub policy: Arc<RwLock<PolicyStatus>>,
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/policy", get(policy))
        .route(
            "/v1/check",
            post(check::check).layer(DefaultBodyLimit::max(check::MAX_CHECK_BODY_BYTES)),
        )
        .with_state(state)
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let body = state.metrics.render(&state.runtime);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

async fn policy(State(state): State<Arc<HttpState>>) -> Response {
    let status = match state.policy.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    Json(status).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn the_stores_own_figures_are_exported() {
        let t = crate::testing::runtime(crate::testing::TWO_PLANS, 1);
        let throttled = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let metrics = Metrics::new()
            .unwrap()
            .with_dynamodb_figures(Arc::new({
                let throttled = throttled.clone();
                move || {
                    vec![
                        ("throttled", throttled.load(Ordering::SeqCst) as f64),
                        ("write_units", 12.5),
                    ]
                }
            }))
            .unwrap();
        let text = metrics.render(&t.runtime);
        assert!(
            text.contains("tollgate_dynamodb{figure=\"throttled\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_dynamodb{figure=\"write_units\"} 12.5\n"),
            "{text}"
        );
        // Read at every scrape.
        throttled.store(4, Ordering::SeqCst);
        let text = metrics.render(&t.runtime);
        assert!(
            text.contains("tollgate_dynamodb{figure=\"throttled\"} 4\n"),
            "{text}"
        );
        // Without a DynamoDB store there is no such series.
        let text = Metrics::new().unwrap().render(&t.runtime);
        assert!(!text.contains("tollgate_dynamodb"), "{text}");
    }
}
