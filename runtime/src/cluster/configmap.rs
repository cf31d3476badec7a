//! The policy ConfigMap: read at start, then watched. Each new `catalog.yaml` is compiled
//! like a catalog directory and offered to [`PolicyInForce::apply`]: a valid one is swapped
//! in, an invalid one is refused and the policy in force stays.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, WatchEvent, WatchParams};
use tokio::sync::Notify;

use super::{Backoff, ClusterError, WATCH_IDLE_TIMEOUT, WATCH_TIMEOUT_S, timed};
use crate::catalog::{Applied, PolicyInForce};
use crate::policy::Policy;

/// Data key of the catalog text (multi-document YAML), as the operator writes it.
pub const CATALOG_KEY: &str = "catalog.yaml";
/// Data key of the catalog's content version, as the operator computed it.
pub const VERSION_KEY: &str = "version";
/// GETs at start before giving up. With the backoff that is about 15 s of waiting (plus
/// the requests' timeouts): long enough for a ConfigMap the operator is about to create,
/// short enough that a pod that cannot read its policy fails visibly (CrashLoopBackOff,
/// with the reason in its log) instead of sitting unready.
pub const START_ATTEMPTS: u32 = 6;
/// A watch that ends sooner than this without an error still waits a backoff before the
/// next one, so a server that closes watches at once cannot make a busy loop.
const MIN_WATCH_LIFETIME: Duration = Duration::from_secs(1);

/// The ConfigMap the operator publishes the policy in.
pub struct PolicyConfigMap {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
}

/// Why a watch stopped.
enum WatchEnd {
    /// The resource version is too old: read the object again.
    Expired,
    Failed(ClusterError),
}

impl PolicyConfigMap {
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        PolicyConfigMap {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `configmap <namespace>/<name>`: how logs and /v1/policy name it.
    pub fn describe(&self) -> String {
        format!("configmap {}/{}", self.namespace, self.name)
    }

    async fn get(&self) -> Result<ConfigMap, ClusterError> {
        timed(
            &format!("GET {}", self.describe()),
            self.api.get(&self.name),
        )
        .await
    }

    /// The policy at start and the ConfigMap's resource version (where the watch starts).
    /// Retries a failed GET up to [`START_ATTEMPTS`] times; an invalid catalog fails at
    /// once (there is no policy to keep, and retrying would not change it).
    pub async fn initial(&self) -> Result<(Policy, String), ClusterError> {
        let mut backoff = Backoff::new();
        let mut attempt = 1;
        let configmap = loop {
            match self.get().await {
                Ok(configmap) => break configmap,
                Err(e) if attempt >= START_ATTEMPTS => {
                    return Err(ClusterError::GaveUp {
                        what: format!("reading the policy from {}", self.describe()),
                        attempts: attempt,
                        last: Box::new(e),
                    });
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %e, attempt, ?wait, "policy ConfigMap not readable yet; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        };
        let resource_version = configmap.metadata.resource_version.clone();
        let policy = self
            .compile(configmap)
            .await
            .map_err(|why| ClusterError::Policy {
                what: self.describe(),
                why,
            })?;
        Ok((policy, resource_version.unwrap_or_default()))
    }

    /// Watches the ConfigMap from `resource_version` and applies every change, until the
    /// task is aborted. `applied` is notified whenever a new policy goes into force.
    pub async fn follow(
        self,
        mut resource_version: String,
        policy: PolicyInForce,
        applied: Arc<Notify>,
    ) {
        let mut backoff = Backoff::new();
        loop {
            let opened = Instant::now();
            match self.watch(&mut resource_version, &policy, &applied).await {
                Ok(()) if opened.elapsed() >= MIN_WATCH_LIFETIME => backoff.reset(),
                Ok(()) => tokio::time::sleep(backoff.next_wait()).await,
                Err(WatchEnd::Expired) => match self.get().await {
                    Ok(configmap) => {
                        tracing::info!(configmap = %self.describe(), "watch expired; read the ConfigMap again");
                        resource_version = configmap
                            .metadata
                            .resource_version
                            .clone()
                            .unwrap_or_default();
                        self.offer(configmap, &policy, &applied).await;
                        backoff.reset();
                    }
                    Err(e) => {
                        let wait = backoff.next_wait();
                        tracing::warn!(error = %e, ?wait, "reading the policy ConfigMap failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                },
                Err(WatchEnd::Failed(e)) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %e, ?wait, "watching the policy ConfigMap failed; watching again");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One watch, until the server ends it (`Ok`) or it fails.
    async fn watch(
        &self,
        resource_version: &mut String,
        policy: &PolicyInForce,
        applied: &Notify,
    ) -> Result<(), WatchEnd> {
        let what = format!("WATCH {}", self.describe());
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(WATCH_TIMEOUT_S);
        let stream = timed(&what, self.api.watch(&params, resource_version))
            .await
            .map_err(|e| {
                if e.is_gone() {
                    WatchEnd::Expired
                } else {
                    WatchEnd::Failed(e)
                }
            })?;
        let mut stream = pin!(stream);
        loop {
            let Ok(next) = tokio::time::timeout(WATCH_IDLE_TIMEOUT, stream.next()).await else {
                return Err(WatchEnd::Failed(ClusterError::Timeout {
                    what,
                    after: WATCH_IDLE_TIMEOUT,
                }));
            };
            let event = match next {
                None => return Ok(()),
                Some(Ok(event)) => event,
                Some(Err(e)) => return Err(WatchEnd::Failed(ClusterError::from_kube(what, e))),
            };
            match event {
                WatchEvent::Added(configmap) | WatchEvent::Modified(configmap) => {
                    if let Some(v) = &configmap.metadata.resource_version {
                        resource_version.clone_from(v);
                    }
                    self.offer(configmap, policy, applied).await;
                }
                WatchEvent::Deleted(configmap) => {
                    if let Some(v) = &configmap.metadata.resource_version {
                        resource_version.clone_from(v);
                    }
                    policy.apply(Err(format!(
                        "{} was deleted; the policy in force stays until it is published again",
                        self.describe()
                    )));
                }
                WatchEvent::Bookmark(bookmark) => {
                    resource_version.clone_from(&bookmark.metadata.resource_version);
                }
                WatchEvent::Error(status) if status.code == 410 => return Err(WatchEnd::Expired),
                WatchEvent::Error(status) => {
                    return Err(WatchEnd::Failed(ClusterError::from_kube(
                        what,
                        kube::Error::Api(status),
                    )));
                }
            }
        }
    }

    /// Compiles the ConfigMap's catalog and offers it to the policy in force.
    async fn offer(&self, configmap: ConfigMap, policy: &PolicyInForce, applied: &Notify) {
        let candidate = self
            .compile(configmap)
            .await
            .map_err(|why| format!("{}: {why}", self.describe()));
        if let Applied::Swapped { version } = policy.apply(candidate) {
            tracing::info!(configmap = %self.describe(), %version, "policy from the ConfigMap in force");
            applied.notify_one();
        }
    }

    /// The policy in a ConfigMap, compiled off the async threads (a catalog can be large).
    async fn compile(&self, configmap: ConfigMap) -> Result<Policy, String> {
        let mut data = configmap.data.unwrap_or_default();
        let Some(text) = data.remove(CATALOG_KEY) else {
            return Err(format!("no data key {CATALOG_KEY:?}"));
        };
        let declared = data.remove(VERSION_KEY);
        let compiled = tokio::task::spawn_blocking(move || crate::catalog::load_yaml(&text))
            .await
            .unwrap_or_else(|e| Err(format!("compiling the catalog panicked: {e}")))?;
        if let Some(declared) = declared
            && declared != compiled.version
        {
            // The same catalog compiles to the same version on both sides; a difference
            // means the two disagree on the content version. The compiled one is what this
            // pod enforces, so that is the one it reports.
            tracing::warn!(
                configmap = %self.describe(),
                %declared,
                compiled = %compiled.version,
                "the ConfigMap's version differs from the catalog's content version"
            );
        }
        Ok(compiled)
    }
}
