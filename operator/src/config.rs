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
    /// Namespaces whose TollgateRuntimes and policy objects this operator reconciles (comma
    /// separated). Left empty, every namespace: the operator then needs cluster-wide
    /// rights over its children (the chart's default). Listed, it watches and writes in
    /// those namespaces only, and the chart grants it a Role in each of them instead.
    #[arg(
        long,
        env = "TOLLGATE_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = "",
        value_parser = namespace_name
    )]
    pub watch_namespaces: Vec<String>,
}

impl Config {
    /// Where the controllers run: one scope for the whole cluster, or one per namespace.
    pub fn scopes(&self) -> Vec<Option<String>> {
        let mut listed: Vec<String> = self
            .watch_namespaces
            .iter()
            .filter(|ns| !ns.is_empty())
            .cloned()
            .collect();
        listed.sort();
        listed.dedup();
        if listed.is_empty() {
            vec![None]
        } else {
            listed.into_iter().map(Some).collect()
        }
    }
}

/// A namespace name (a DNS label), or empty (an empty list).
fn namespace_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    let label = name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if label {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{value:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::Config;

    const REQUIRED: [&str; 7] = [
        "tollgate-operator",
        "--runtime-image",
        "img",
        "--lease-namespace",
        "tollgate-system",
        "--identity",
        "op-0",
    ];

    fn parse(more: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(REQUIRED.iter().chain(more))
    }

    #[test]
    fn no_namespaces_means_the_whole_cluster() {
        assert_eq!(parse(&[]).unwrap().scopes(), [None]);
        assert_eq!(parse(&["--watch-namespaces", ""]).unwrap().scopes(), [None]);
    }

    #[test]
    fn listed_namespaces_are_scopes_of_their_own() {
        let config = parse(&["--watch-namespaces", "billing, ml-team,billing"]).unwrap();
        assert_eq!(
            config.scopes(),
            [Some("billing".to_string()), Some("ml-team".to_string())]
        );
        for bad in ["Billing", "bad_ns", "-x", "a.b"] {
            let error = parse(&["--watch-namespaces", bad]).unwrap_err();
            assert!(error.to_string().contains(bad), "{bad}: {error}");
        }
    }
}
