//! `tollgate.v1.Customers`.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::convert::{from_ms, ms, status, value};
use super::proto::{self, customers_server::Customers};
use crate::http::Metrics;
use crate::service::Runtime;

pub(crate) struct CustomersService {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl Customers for CustomersService {
    async fn upsert_customer(
        &self,
        request: Request<proto::UpsertCustomerRequest>,
    ) -> Result<Response<proto::UpsertCustomerResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self
            .runtime
            .upsert_customer(&r.customer_id, &r.display_name, &r.idempotency_key)
            .await;
        self.metrics
            .observe_call("upsert_customer", started, result.is_ok());
        Ok(Response::new(proto::UpsertCustomerResponse {
            created: result.map_err(status)?,
        }))
    }

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<proto::SubscribeResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let start = from_ms("start_ms", r.start_ms)?;
        let result = self
            .runtime
            .subscribe(&r.customer_id, &r.plan, start, &r.idempotency_key)
            .await;
        self.metrics
            .observe_call("subscribe", started, result.is_ok());
        let (plan, since, grants_issued) = result.map_err(status)?;
        Ok(Response::new(proto::SubscribeResponse {
            plan,
            start_ms: ms(since),
            grants_issued,
        }))
    }

    async fn get_customer(
        &self,
        request: Request<proto::GetCustomerRequest>,
    ) -> Result<Response<proto::GetCustomerResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self.runtime.get_customer(&r.customer_id).await;
        self.metrics
            .observe_call("get_customer", started, result.is_ok());
        let view = result.map_err(status)?;
        let features = view
            .features
            .into_iter()
            .map(|(f, used, pending, resets_at)| {
                let (number, choice) = value(f.value);
                let limit = f.limit;
                proto::EffectiveFeature {
                    id: f.id,
                    kind: f.kind.name().to_string(),
                    enabled: f.enabled,
                    number,
                    choice,
                    meter: f.meter.unwrap_or_default(),
                    limit: limit.and_then(|l| l.amount).unwrap_or(0),
                    unlimited: limit.is_some_and(|l| l.amount.is_none()),
                    enforcement: match limit {
                        Some(l) if l.hard => "hard".into(),
                        Some(_) => "soft".into(),
                        None => String::new(),
                    },
                    used,
                    pending,
                    resets_at_ms: ms(resets_at),
                    source: f.source,
                }
            })
            .collect();
        Ok(Response::new(proto::GetCustomerResponse {
            customer_id: view.id,
            display_name: view.display_name,
            plan: view
                .subscription
                .as_ref()
                .map(|s| s.plan.clone())
                .unwrap_or_default(),
            subscribed_since_ms: view.subscription.map_or(0, |s| ms(s.since.0)),
            features,
            policy_version: view.policy_version,
        }))
    }
}
