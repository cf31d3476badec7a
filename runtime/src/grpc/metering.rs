//! `tollgate.v1.Metering`.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::convert::{dimensions, status, subject};
use super::proto::{self, metering_server::Metering};
use crate::http::Metrics;
use crate::service::{IngestEvent, Runtime};

pub(crate) struct MeteringService {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl Metering for MeteringService {
    async fn ingest(
        &self,
        request: Request<proto::IngestRequest>,
    ) -> Result<Response<proto::IngestResponse>, Status> {
        let started = Instant::now();
        let events = request
            .into_inner()
            .events
            .into_iter()
            .map(|e| IngestEvent {
                id: e.id,
                customer: e.customer_id,
                subject: subject(e.subject),
                feature: e.feature,
                quantity: e.quantity,
                dimensions: dimensions(e.dimensions),
            })
            .collect();
        let result = self.runtime.ingest(events).await;
        self.metrics.observe_call("ingest", started, result.is_ok());
        let o = result.map_err(status)?;
        Ok(Response::new(proto::IngestResponse {
            accepted: o.accepted,
            duplicates: o.duplicates,
            rejected: o
                .rejected
                .into_iter()
                .map(|(index, reason)| proto::Rejection { index, reason })
                .collect(),
            debited_micro_credits: o.debited,
            unbilled_micro_credits: o.unbilled,
        }))
    }
}
