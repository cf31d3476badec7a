//! `tollgate.v1.Enforcement`.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::convert::{decision, dimensions, status, subject, value};
use super::proto::{self, enforcement_server::Enforcement};
use crate::http::Metrics;
use crate::service::{Runtime, UsageRequest};

pub(crate) struct EnforcementService {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl Enforcement for EnforcementService {
    async fn check(
        &self,
        request: Request<proto::CheckRequest>,
    ) -> Result<Response<proto::CheckResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let usage = UsageRequest {
            customer: r.customer_id,
            subject: subject(r.subject),
            feature: r.feature,
            dimensions: dimensions(r.dimensions),
            units: r.units,
        };
        let result = self.runtime.check(usage).await;
        self.metrics
            .observe("check", started, result.as_ref().map(|o| &o.decision));
        let outcome = result.map_err(status)?;
        let (number, choice) = value(outcome.value);
        Ok(Response::new(proto::CheckResponse {
            decision: Some(decision(outcome.decision)),
            number,
            choice,
            price_micro_credits: outcome.price_micro_credits,
        }))
    }

    async fn reserve(
        &self,
        request: Request<proto::ReserveRequest>,
    ) -> Result<Response<proto::ReserveResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let usage = UsageRequest {
            customer: r.customer_id,
            subject: subject(r.subject),
            feature: r.feature,
            dimensions: dimensions(r.dimensions),
            units: r.units,
        };
        let result = self
            .runtime
            .reserve(usage, &r.idempotency_key, u64::from(r.hold_timeout_ms))
            .await;
        self.metrics
            .observe("reserve", started, result.as_ref().map(|o| &o.decision));
        let outcome = result.map_err(status)?;
        Ok(Response::new(proto::ReserveResponse {
            decision: Some(decision(outcome.decision)),
            hold_id: outcome.hold,
            held_micro_credits: outcome.held_micro_credits,
            expires_at_ms: super::convert::ms(outcome.expires_at_ms),
        }))
    }

    async fn commit(
        &self,
        request: Request<proto::CommitRequest>,
    ) -> Result<Response<proto::CommitResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self
            .runtime
            .commit(&r.customer_id, r.hold_id, r.units, &r.idempotency_key)
            .await;
        self.metrics.observe_call("commit", started, result.is_ok());
        let o = result.map_err(status)?;
        Ok(Response::new(proto::CommitResponse {
            posted_micro_credits: o.posted,
            released_micro_credits: o.released,
            overage_micro_credits: o.overage,
            unbilled_micro_credits: o.unbilled,
        }))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self
            .runtime
            .release(&r.customer_id, r.hold_id, &r.idempotency_key)
            .await;
        self.metrics
            .observe_call("release", started, result.is_ok());
        let released = result.map_err(status)?;
        Ok(Response::new(proto::ReleaseResponse {
            released_micro_credits: released,
        }))
    }
}
