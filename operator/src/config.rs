//! Command line and environment of the operator.

use std::net::SocketAddr;

use clap::Parser;

/// The Tollgate operator: reconciles TollgateRuntime, Plan, Entitlement and BudgetCap.
#[derive(Debug, Clone, Parser)]
#[command(name = "tollgate-operator", version)]
pub struct Config {
    /// Address of the health and metrics endpoints.
    #[arg(
        long,
        env = "TOLLGATE_OPERATOR_HTTP_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub http_addr: SocketAddr,
    /// Runtime image for TollgateRuntimes that name none.
    #[arg(long, env = "TOLLGATE_RUNTIME_IMAGE")]
    pub runtime_image: String,
    /// Image pull Secrets for runtime pods of TollgateRuntimes that name none (comma
    /// separated; each must exist in the runtime's namespace).
    #[arg(
        long,
        env = "TOLLGATE_RUNTIME_IMAGE_PULL_SECRETS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub runtime_image_pull_secrets: Vec<String>,
    /// Name of the leader election Lease.
    #[arg(long, env = "TOLLGATE_LEASE_NAME", default_value = "tollgate-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "TOLLGATE_LEASE_NAMESPACE")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "TOLLGATE_POD_NAME")]
    pub identity: String,
    /// Log as JSON lines.
    #[arg(long, env = "TOLLGATE_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}
