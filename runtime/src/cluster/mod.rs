//! The runtime's side of the operator contract, in a cluster.
//!
//! - Policy: the operator publishes the compiled catalog in the ConfigMap `<runtime>-policy`
//!   (data keys `catalog.yaml` and `version`). The pod reads it at start and then watches
//!   it (a watch on that one object, by a `metadata.name` field selector, which is what the
//!   runtime's Role allows), compiling each new catalog with the same code as `--catalog`
//!   and swapping it in through [`PolicyInForce::apply`](crate::catalog::PolicyInForce).
//! - Report: the pod annotates itself with the policy version it applied and, per plan, the
//!   number of subscribed customers in its partitions. The operator counts the first for
//!   the `Applied` column and reads the second before it lets a deleted Plan go.
//!
//! Every request has a timeout; every retry loop is bounded or backs off.

mod configmap;
mod pod_report;
#[cfg(test)]
mod tests;

use std::time::Duration;

use kube::Client;
use tokio::task::JoinHandle;

pub use configmap::{PolicyConfigMap, START_ATTEMPTS};
pub use pod_report::{
    APPLIED_VERSION_ANNOTATION, FIELD_MANAGER, PLAN_SUBSCRIBERS_ANNOTATION, PodReport,
    REPORT_INTERVAL, annotations_patch,
};

use crate::catalog::PolicyInForce;

/// Timeout of every API request except a watch's stream: a GET, a PATCH, opening a watch.
/// The API server answers these in milliseconds; ten seconds is a server in trouble.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the API server keeps one watch open before ending it (a new watch then resumes
/// from the last resource version). The server's own limit is about 5 minutes.
pub const WATCH_TIMEOUT_S: u32 = 240;
/// A watch that delivers nothing (not even the end of the stream) for this long is taken
/// for dead and reopened: the server's watch timeout plus a margin.
pub const WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(WATCH_TIMEOUT_S as u64 + 15);
/// First wait before retrying a failed request or watch; doubles up to `BACKOFF_MAX`.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest wait between retries: a recovered API server is noticed within this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
const _: () = assert!(BACKOFF_MIN.as_millis() < BACKOFF_MAX.as_millis());
const _: () = assert!(REQUEST_TIMEOUT.as_secs() < WATCH_TIMEOUT_S as u64);

/// What failed talking to the API server, or in what it answered.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("connecting to the Kubernetes API: {0}")]
    Connect(String),
    #[error("{what}: the API server answered {code} {reason}: {message}{hint}")]
    Refused {
        what: String,
        code: u16,
        reason: String,
        message: String,
        hint: &'static str,
    },
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("{what}: {why}")]
    Policy { what: String, why: String },
    #[error("{what}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        what: String,
        attempts: u32,
        last: Box<ClusterError>,
    },
}

impl ClusterError {
    /// Classifies a client error; `what` names the request ("GET configmap ns/name").
    fn from_kube(what: String, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let hint = match status.code {
                    403 => {
                        " (the runtime's Role allows get/list/watch on its policy ConfigMap \
                         and get/patch on its own pods only)"
                    }
                    404 => " (does it exist? the operator creates it for the TollgateRuntime)",
                    _ => "",
                };
                ClusterError::Refused {
                    what,
                    code: status.code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                    hint,
                }
            }
            source => ClusterError::Request { what, source },
        }
    }

    /// The resource version asked for is too old (410 Gone): list again.
    fn is_gone(&self) -> bool {
        matches!(self, ClusterError::Refused { code: 410, .. })
    }
}

/// Runs `request` with [`REQUEST_TIMEOUT`].
async fn timed<T>(
    what: &str,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(ClusterError::from_kube(what.to_string(), e)),
        Err(_) => Err(ClusterError::Timeout {
            what: what.to_string(),
            after: REQUEST_TIMEOUT,
        }),
    }
}

/// Exponential backoff between [`BACKOFF_MIN`] and [`BACKOFF_MAX`].
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: BACKOFF_MIN }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    /// The wait before the next retry.
    fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }
}

/// Where this pod is and what it reads and writes there.
pub struct Cluster {
    pub configmap: PolicyConfigMap,
    pub pod: PodReport,
}

impl Cluster {
    /// Connects with the in-cluster configuration (or `KUBECONFIG` outside a cluster).
    /// `namespace` defaults to the configuration's (the service account's namespace).
    pub async fn connect(
        configmap: &str,
        namespace: Option<&str>,
        pod: &str,
    ) -> Result<Self, ClusterError> {
        let config = kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Connect(e.to_string()))?;
        let namespace = namespace
            .filter(|n| !n.is_empty())
            .map_or_else(|| config.default_namespace.clone(), str::to_string);
        let client = Client::try_from(config).map_err(|e| ClusterError::Connect(e.to_string()))?;
        Ok(Self::new(client, &namespace, configmap, pod))
    }

    pub fn new(client: Client, namespace: &str, configmap: &str, pod: &str) -> Self {
        Cluster {
            configmap: PolicyConfigMap::new(client.clone(), namespace, configmap),
            pod: PodReport::new(client, namespace, pod),
        }
    }

    /// Follows the ConfigMap from `resource_version` (what [`PolicyConfigMap::initial`]
    /// returned) and reports on the pod, until the tasks are aborted.
    pub fn start(self, resource_version: String, policy: PolicyInForce) -> Vec<JoinHandle<()>> {
        let applied = std::sync::Arc::new(tokio::sync::Notify::new());
        let runtime = policy.runtime.clone();
        vec![
            tokio::spawn(
                self.configmap
                    .follow(resource_version, policy, applied.clone()),
            ),
            tokio::spawn(self.pod.run(runtime, applied)),
        ]
    }
}
