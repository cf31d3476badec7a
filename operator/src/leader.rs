//! Leader election on a coordination.k8s.io Lease, so two operator replicas are safe: only the
//! holder runs controllers. The holder renews every [`RENEW_EVERY`]; another replica takes the
//! lease only after [`LEASE_DURATION`] without renewal. Writes are guarded by the Lease's
//! resourceVersion, so two replicas cannot both win a race. A leader that fails to renew before
//! its lease runs out stops the process (its pod restarts as a standby), like client-go.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// How long a lease is valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews, and a standby retries.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
const _: () = assert!(RENEW_EVERY.as_secs() * 2 < LEASE_DURATION.as_secs());
/// Timeout of one Lease API call: well below the renew interval.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
const _: () = assert!(CALL_TIMEOUT.as_secs() < RENEW_EVERY.as_secs());

/// One replica's view of a Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// Whether this replica holds the lease after a try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Leader,
    Follower,
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Standing::Leader) => return,
                Ok(Standing::Follower) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: lease call failed"),
            }
            tokio::time::sleep(RENEW_EVERY).await;
        }
    }

    /// Renews the lease until a renewal is missed for a whole lease duration; then returns.
    pub async fn hold(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.try_acquire_or_renew().await {
                Ok(Standing::Leader) => last_renewed = tokio::time::Instant::now(),
                Ok(Standing::Follower) => return,
                Err(e) => tracing::warn!(error = %e, "leader election: renewal failed"),
            }
            if last_renewed.elapsed() >= LEASE_DURATION {
                return;
            }
        }
    }

    /// One election step: create the lease, renew it, or take it over if it expired.
    pub async fn try_acquire_or_renew(&self) -> Result<Standing, kube::Error> {
        let now = Timestamp::now();
        let existing = timeout(self.api.get_opt(&self.name)).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, 0, now)),
            };
            return match timeout(self.api.create(&PostParams::default(), &lease)).await {
                Ok(_) => Ok(Standing::Leader),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Standing::Follower),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let duration_s = i64::from(spec.lease_duration_seconds.unwrap_or(0));
        let expired = spec
            .renew_time
            .as_ref()
            .is_none_or(|t| t.0 + SignedDuration::from_secs(duration_s) < now);
        if !mine && !expired {
            return Ok(Standing::Follower);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine {
            spec.acquire_time.map(|t| t.0).unwrap_or(now)
        } else {
            now
        };
        lease.spec = Some(self.spec(acquired, transitions, now));
        // `replace` sends the resourceVersion we read: a concurrent writer makes this fail.
        match timeout(self.api.replace(&self.name, &PostParams::default(), &lease)).await {
            Ok(_) => Ok(Standing::Leader),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Standing::Follower),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: Timestamp, transitions: i32, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: i32::try_from(LEASE_DURATION.as_secs()).ok(),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

async fn timeout<T>(call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, kube::Error> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "lease call timed out",
        )))),
    }
}
