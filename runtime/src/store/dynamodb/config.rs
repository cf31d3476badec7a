//! How to reach DynamoDB: endpoint, region, tables, credentials, timeouts and retries.

use std::time::Duration;

use super::limits::MAX_PARTITION_BYTES;
use super::{DynamoError, FaultLayer};

/// Longest wait for a TCP (and TLS) connection. Inside a VPC with an endpoint a connection
/// takes a few milliseconds; a second means the endpoint is gone.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for one attempt of one call. DynamoDB answers single-item writes in single
/// digit milliseconds and a 4 MB transaction in well under a second; two seconds is
/// DynamoDB's own published worst case for a healthy call, so longer means trouble.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a store call may take, all attempts and backoffs included. The engine's callers
/// wait at most this long (plus their queueing) before they get an error: the deadline of
/// every mutating call that reaches DynamoDB.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(5);
/// Most attempts of one call (the first included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// First backoff; doubles on each retry (full jitter), up to `DEFAULT_MAX_BACKOFF`.
pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_millis(20);
/// Longest single backoff.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(1000);
const _: () = assert!(DEFAULT_CONNECT_TIMEOUT.as_millis() <= DEFAULT_ATTEMPT_TIMEOUT.as_millis());
const _: () = assert!(DEFAULT_ATTEMPT_TIMEOUT.as_millis() < DEFAULT_CALL_DEADLINE.as_millis());
const _: () = assert!(DEFAULT_BASE_BACKOFF.as_millis() <= DEFAULT_MAX_BACKOFF.as_millis());
const _: () = assert!(DEFAULT_MAX_BACKOFF.as_millis() < DEFAULT_CALL_DEADLINE.as_millis());
const _: () = assert!(DEFAULT_MAX_ATTEMPTS >= 2);

/// Timeouts and the retry budget of every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPolicy {
    pub connect_timeout: Duration,
    /// One attempt (the SDK's operation attempt timeout).
    pub attempt_timeout: Duration,
    /// All attempts of one call together.
    pub call_deadline: Duration,
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            call_deadline: DEFAULT_CALL_DEADLINE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_backoff: DEFAULT_BASE_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// Where credentials come from.
#[derive(Clone, Default)]
pub enum Credentials {
    /// The standard AWS chain: environment, web identity (IRSA on EKS), profile, container
    /// and instance metadata.
    #[default]
    Chain,
    /// Fixed keys (DynamoDB Local, tests).
    Static {
        access_key_id: String,
        secret_access_key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Chain => f.write_str("Chain"),
            Credentials::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DynamoConfig {
    /// `None` for AWS's regional endpoint; `Some("http://127.0.0.1:8000")` for DynamoDB Local.
    pub endpoint: Option<String>,
    pub region: String,
    /// Table name = prefix + the suffix in tables.json (Terraform's `table_prefix`).
    pub table_prefix: String,
    pub credentials: Credentials,
    pub calls: CallPolicy,
    /// Create missing tables on connect (development only; production tables come from
    /// Terraform, and the runtime's IAM role cannot create tables).
    pub auto_create_tables: bool,
    /// Faults to inject between the SDK and the network (tests and chaos drills).
    pub faults: Option<FaultLayer>,
    /// Keep every journal batch (the command log) instead of deleting those that the
    /// checkpoint kept before the newest covers: storage that grows with traffic, against
    /// a delete's write units per batch.
    pub keep_journal: bool,
}

impl DynamoConfig {
    pub fn new(region: impl Into<String>, table_prefix: impl Into<String>) -> Self {
        DynamoConfig {
            endpoint: None,
            region: region.into(),
            table_prefix: table_prefix.into(),
            credentials: Credentials::Chain,
            calls: CallPolicy::default(),
            auto_create_tables: false,
            faults: None,
            keep_journal: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), DynamoError> {
        let bad = |field, reason: &str| {
            Err(DynamoError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.region.is_empty() {
            return bad("region", "must not be empty");
        }
        // DynamoDB table names: 3-255 of [a-zA-Z0-9_.-]; the longest suffix is 11 bytes.
        if self.table_prefix.len() > 200
            || !self
                .table_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return bad(
                "table_prefix",
                "at most 200 characters of a-z, A-Z, 0-9, '_', '.', '-'",
            );
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return bad("endpoint", "must start with http:// or https://");
        }
        let c = &self.calls;
        if c.max_attempts == 0 {
            return bad("calls.max_attempts", "must be at least 1");
        }
        if c.attempt_timeout.is_zero() || c.attempt_timeout > c.call_deadline {
            return bad(
                "calls.attempt_timeout",
                "must be positive and at most calls.call_deadline",
            );
        }
        if c.base_backoff > c.max_backoff {
            return bad("calls.base_backoff", "must be at most calls.max_backoff");
        }
        Ok(())
    }
}

/// Checks a partition name: it is part of every key.
pub(crate) fn validate_partition(partition: &str) -> Result<(), DynamoError> {
    if partition.is_empty()
        || partition.len() > MAX_PARTITION_BYTES
        || !partition
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(DynamoError::Config {
            field: "partition",
            reason: format!(
                "{partition:?}: 1 to {MAX_PARTITION_BYTES} characters of a-z, A-Z, 0-9, '_', '.', '-'"
            ),
        });
    }
    Ok(())
}
