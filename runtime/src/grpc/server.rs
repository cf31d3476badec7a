//! The gRPC server: the four `tollgate.v1` services, health and reflection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Server;

use super::customers::CustomersService;
use super::enforcement::EnforcementService;
use super::metering::MeteringService;
use super::proto::{
    self, customers_server::CustomersServer, enforcement_server::EnforcementServer,
    metering_server::MeteringServer, wallets_server::WalletsServer,
};
use super::wallets::WalletsService;
use crate::http::Metrics;
use crate::service::Runtime;

/// Largest request message accepted (an Ingest of 10,000 events fits easily).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Requests in flight per connection beyond which the server pushes back.
pub const MAX_CONCURRENT_PER_CONNECTION: usize = 1024;
/// Deadline for a call that brings none (`grpc-timeout` from the client wins).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

pub struct GrpcConfig {
    /// Bound before serving starts, so readiness is only reported once the port is open.
    pub incoming: tonic::transport::server::TcpIncoming,
    pub addr: SocketAddr,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    config: GrpcConfig,
    runtime: Arc<Runtime>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<EnforcementServer<EnforcementService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Older clients (grpcurl among them) still ask the v1alpha service.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let enforcement = EnforcementServer::new(EnforcementService {
        runtime: runtime.clone(),
        metrics: metrics.clone(),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let customers = CustomersServer::new(CustomersService {
        runtime: runtime.clone(),
        metrics: metrics.clone(),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let wallets = WalletsServer::new(WalletsService {
        runtime: runtime.clone(),
        metrics: metrics.clone(),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let metering = MeteringServer::new(MeteringService { runtime, metrics })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    tracing::info!(addr = %config.addr, "gRPC listening");
    Server::builder()
        .timeout(DEFAULT_DEADLINE)
        .concurrency_limit_per_connection(MAX_CONCURRENT_PER_CONNECTION)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(enforcement)
        .add_service(customers)
        .add_service(wallets)
        .add_service(metering)
        .serve_with_incoming_shutdown(config.incoming, shutdown)
        .await?;
    Ok(())
}
