//! The service layer: what the gRPC and HTTP edges call. It turns requests into policy
//! evaluations (pure) and ledger commands (through each partition's engine), and ledger
//! answers into decisions that say why.

mod decision;
mod enforcement;
mod error;
mod ops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use decision::{Decision, Reason, Remaining, RemainingUnit};
pub use enforcement::{CheckOutcome, CommitOutcome, ReserveOutcome, UsageRequest};
pub use error::ServiceError;
pub use ops::{CustomerView, IngestEvent, IngestOutcome, MAX_INGEST_EVENTS, MAX_PAGE_SIZE};

use crate::engine::{Clock, Engine, EngineError, partition_of};
use crate::ledger::{Keyed, Ledger, MAX_ID_BYTES, Outcome, Timestamp};
use crate::policy::{Policy, SubscriptionView};

/// Hold timeout when the request gives none.
pub const DEFAULT_HOLD_TIMEOUT_MS: u64 = 60_000;
/// Most customers whose subscription is cached; the cache is cleared when full (it is
/// refilled from the ledger on demand).
pub const MAX_CACHED_CUSTOMERS: usize = 100_000;

/// What is known of a customer's subscription: `None` = the customer does not exist.
type CachedCustomer = Option<Option<SubscriptionView>>;

/// The runtime: every partition's engine and the current policy.
pub struct Runtime {
    engines: Vec<Engine>,
    policy: RwLock<Arc<Policy>>,
    clock: Arc<dyn Clock>,
    customers: Mutex<HashMap<String, CachedCustomer>>,
}

impl Runtime {
    pub fn new(engines: Vec<Engine>, policy: Policy, clock: Arc<dyn Clock>) -> Self {
        assert!(!engines.is_empty(), "at least one partition");
        Runtime {
            engines,
            policy: RwLock::new(Arc::new(policy)),
            clock,
            customers: Mutex::new(HashMap::new()),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a new policy atomically; requests in flight keep the one they started with.
    pub fn set_policy(&self, policy: Policy) {
        let policy = Arc::new(policy);
        match self.policy.write() {
            Ok(mut p) => *p = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }

    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    fn engine(&self, customer: &str) -> &Engine {
        &self.engines[partition_of(customer, self.engines.len() as u32) as usize]
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn submit(
        &self,
        customer: &str,
        key: &str,
        command: crate::ledger::Command,
    ) -> Result<crate::ledger::CommandResult, ServiceError> {
        let request = Keyed {
            customer: customer.to_string(),
            key: key.to_string(),
            command,
        };
        Ok(self.engine(customer).submit(request).await?)
    }

    async fn read<T: Send + 'static>(
        &self,
        customer: &str,
        f: impl FnOnce(&Ledger) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        self.engine(customer).read(f).await
    }

    /// The customer's subscription, from the cache or the ledger.
    async fn subscription(&self, customer: &str) -> Result<CachedCustomer, ServiceError> {
        if let Ok(cache) = self.customers.lock()
            && let Some(known) = cache.get(customer)
        {
            return Ok(known.clone());
        }
        let id = customer.to_string();
        let known = self
            .read(customer, move |ledger| {
                ledger.customer(&id).map(|c| {
                    c.subscription.as_ref().map(|s| SubscriptionView {
                        plan: s.plan.clone(),
                        since: s.since,
                    })
                })
            })
            .await?;
        self.remember(customer, known.clone());
        Ok(known)
    }

    fn remember(&self, customer: &str, known: CachedCustomer) {
        if let Ok(mut cache) = self.customers.lock() {
            if cache.len() >= MAX_CACHED_CUSTOMERS {
                cache.clear();
            }
            cache.insert(customer.to_string(), known);
        }
    }

    fn forget(&self, customer: &str) {
        if let Ok(mut cache) = self.customers.lock() {
            cache.remove(customer);
        }
    }
}

/// Checks an id field: present and at most `MAX_ID_BYTES`.
pub(crate) fn require_id(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ServiceError::invalid(
            field,
            format!("is {} bytes, at most {MAX_ID_BYTES}", value.len()),
        ));
    }
    Ok(())
}

/// Fingerprint of a client request from its fields (each length-prefixed), so the ledger
/// compares a retry on what the client sent rather than on what policy made of it.
pub(crate) fn request_fingerprint(fields: &[&[u8]]) -> crate::ledger::Fingerprint {
    let mut hasher = blake3::Hasher::new();
    for field in fields {
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    out
}

/// An `Outcome` of the wrong kind for the command: a bug.
pub(crate) fn unexpected(outcome: &Outcome) -> ServiceError {
    ServiceError::Internal(format!("unexpected ledger outcome {outcome:?}"))
}
