//! The service layer: what the gRPC and HTTP edges call. It turns requests into policy
//! evaluations (pure) and ledger commands (through each partition's engine), and ledger
//! answers into decisions that say why.

#[cfg(test)]
mod archive_tests;
mod decision;
mod enforcement;
mod error;
mod ops;
mod partitions;
mod subscribers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use decision::{Decision, Reason, Remaining, RemainingUnit};
pub use enforcement::{CheckOutcome, CommitOutcome, ReserveOutcome, UsageRequest};
pub use error::ServiceError;
pub use ops::{CustomerView, IngestEvent, IngestOutcome, MAX_INGEST_EVENTS, MAX_PAGE_SIZE};
pub use partitions::{EngineFactory, RESTART_BACKOFF_MAX};

use crate::engine::{Clock, Engine, EngineError, EngineThread};
use crate::ledger::{Keyed, Ledger, MAX_ID_BYTES, Outcome, Timestamp};
use crate::policy::{Policy, SubscriptionView};

/// Hold timeout when the request gives none.
pub const DEFAULT_HOLD_TIMEOUT_MS: u64 = 60_000;
/// Most customers whose subscription is cached; the cache is cleared when full (it is
/// refilled from the ledger on demand).
pub const MAX_CACHED_CUSTOMERS: usize = 100_000;

/// What is known of a customer's subscription: `None` = the customer does not exist.
type CachedCustomer = Option<Option<SubscriptionView>>;

/// Customers' subscriptions as last read from the ledger.
#[derive(Default)]
struct CustomerCache {
    known: HashMap<String, CachedCustomer>,
    /// Counts the changes to customers (upserts, subscriptions) since start. A read that
    /// began before a change may have seen the ledger before it: it is not cached, or the
    /// change's `forget` could come first and the stale read stay cached.
    changes: u64,
}

/// The runtime: every partition's engine and the current policy.
pub struct Runtime {
    partitions: Arc<partitions::PartitionSet>,
    policy: RwLock<Arc<Policy>>,
    clock: Arc<dyn Clock>,
    customers: Mutex<CustomerCache>,
}

impl Runtime {
    /// `restart` rebuilds a partition's engine after its store failed in a way that may
    /// pass (DynamoDB unreachable or throttled); without it a stopped partition stays down.
    pub fn new(
        engines: Vec<Engine>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        restart: Option<EngineFactory>,
    ) -> Self {
        assert!(!engines.is_empty(), "at least one partition");
        Runtime {
            partitions: Arc::new(partitions::PartitionSet::new(engines, restart)),
            policy: RwLock::new(Arc::new(policy)),
            clock,
            customers: Mutex::new(CustomerCache::default()),
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

    /// The engine of every partition, as it is now.
    pub fn engines(&self) -> Vec<Engine> {
        self.partitions.engines()
    }

    /// Writer threads of partitions restarted since start-up, to join at shutdown (after
    /// the runtime is dropped).
    pub fn take_restarted_threads(&self) -> Vec<EngineThread> {
        self.partitions.take_threads()
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
        let (partition, engine) = self.partitions.for_customer(customer);
        let result = engine.submit(request).await;
        Ok(self.partitions.watch(partition, result)?)
    }

    async fn read<T: Send + 'static>(
        &self,
        customer: &str,
        f: impl FnOnce(&Ledger) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (partition, engine) = self.partitions.for_customer(customer);
        let result = engine.read(f).await;
        self.partitions.watch(partition, result)
    }

    /// The customer's subscription, from the cache or the ledger.
    async fn subscription(&self, customer: &str) -> Result<CachedCustomer, ServiceError> {
        let read_after = match self.customers.lock() {
            Ok(cache) => match cache.known.get(customer) {
                Some(known) => return Ok(known.clone()),
                None => cache.changes,
            },
            Err(_) => u64::MAX,
        };
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
        self.remember(customer, known.clone(), read_after);
        Ok(known)
    }

    /// Caches what a read that began after `read_after` changes found, unless a customer
    /// changed since.
    fn remember(&self, customer: &str, known: CachedCustomer, read_after: u64) {
        if let Ok(mut cache) = self.customers.lock()
            && cache.changes == read_after
        {
            if cache.known.len() >= MAX_CACHED_CUSTOMERS {
                cache.known.clear();
            }
            cache.known.insert(customer.to_string(), known);
        }
    }

    /// After a change to the customer in the ledger: drops what the cache knew of it, and
    /// keeps reads that began before the change from being cached.
    fn forget(&self, customer: &str) {
        if let Ok(mut cache) = self.customers.lock() {
            cache.known.remove(customer);
            cache.changes += 1;
        }
    }

    /// The number of customer changes so far (for `remember`).
    #[cfg(test)]
    fn customer_changes(&self) -> u64 {
        self.customers.lock().map_or(0, |c| c.changes)
    }
}

// A catalog may name only ids the API can be sent (customers, subjects, dimension values).
const _: () = assert!(tollgate_crds::validate::MAX_EXTERNAL_ID_LEN == MAX_ID_BYTES);

/// Checks an id field (a new customer's, a subject, feature, plan, dimension) by the
/// catalog's rule for external ids (`tollgate_crds::validate::check_external_id`): present,
/// at most `MAX_ID_BYTES`, no white space at either end, no control characters. An id the
/// catalog could not name is refused here too, instead of being taken as a new customer.
/// Calls on an existing customer check its id with [`require_customer`].
pub(crate) fn require_id(field: &str, value: &str) -> Result<(), ServiceError> {
    require_key(field, value)?;
    tollgate_crds::validate::check_external_id(value)
        .map_err(|problem| ServiceError::invalid(field, problem.to_string()))
}

/// Checks the id of a customer the call expects to exist: present and at most
/// `MAX_ID_BYTES` (a customer that does not exist is NOT_FOUND). Only creating a customer
/// holds its id to [`require_id`]'s rule: a customer created before that rule, say
/// " acme", stays reachable, and its open holds can still be committed.
pub(crate) fn require_customer(value: &str) -> Result<(), ServiceError> {
    require_key("customer_id", value)
}

/// Checks an opaque key (an idempotency key, a usage event's id): present and at most
/// `MAX_ID_BYTES`; its bytes are the client's business.
pub(crate) fn require_key(field: &str, value: &str) -> Result<(), ServiceError> {
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
///
/// The fields are laid out in one buffer and hashed in one call: BLAKE3 gives the same hash
/// for the same bytes however they are fed, and one call costs a fraction of an `update`
/// per field (about 3,000 instructions per Reserve before).
pub(crate) fn request_fingerprint(fields: &[&[u8]]) -> crate::ledger::Fingerprint {
    let mut bytes = Vec::with_capacity(fields.iter().map(|f| 8 + f.len()).sum());
    for field in fields {
        bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
        bytes.extend_from_slice(field);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(&bytes).as_bytes()[..16]);
    out
}

/// An `Outcome` of the wrong kind for the command: a bug.
pub(crate) fn unexpected(outcome: &Outcome) -> ServiceError {
    ServiceError::Internal(format!("unexpected ledger outcome {outcome:?}"))
}

#[cfg(test)]
mod tests {
    /// The fingerprint is stored with every idempotency key: its value for given fields must
    /// never change (a retry after an upgrade must still match). This is its definition.
    #[test]
    fn request_fingerprint_is_blake3_of_length_prefixed_fields() {
        let fields: [&[u8]; 4] = [b"reserve", b"llm-tokens", &1000u64.to_le_bytes(), b""];
        let mut hasher = blake3::Hasher::new();
        for field in fields {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field);
        }
        let streamed = hasher.finalize();
        assert_eq!(
            super::request_fingerprint(&fields),
            streamed.as_bytes()[..16]
        );
        assert_ne!(
            super::request_fingerprint(&[b"ab", b"c"]),
            super::request_fingerprint(&[b"a", b"bc"]),
            "fields are length-prefixed"
        );
    }

    /// A read of a customer that began before the customer changed is not cached: the
    /// change's `forget` may come before the read's `remember`, which would otherwise keep
    /// the stale answer (say "does not exist" after a create) until the next change.
    #[tokio::test]
    async fn a_read_from_before_a_change_to_the_customer_is_not_cached() {
        #![allow(clippy::unwrap_used)]
        let t = crate::testing::runtime(crate::testing::TWO_PLANS, 1);
        let runtime = &t.runtime;
        // The interleaving: a read starts and finds no customer...
        let read_after = runtime.customer_changes();
        assert_eq!(runtime.subscription("cus_new").await.unwrap(), None);
        // ...the customer is created (its `forget` runs)...
        runtime
            .upsert_customer("cus_new", "New", "k-new")
            .await
            .unwrap();
        // ...and only then does the old read try to cache what it saw.
        runtime.remember("cus_new", None, read_after);
        assert_eq!(
            runtime.subscription("cus_new").await.unwrap(),
            Some(None),
            "the customer exists (no subscription yet)"
        );
    }

    /// Ids follow the catalog's rule for external ids; opaque keys and the ids of existing
    /// customers only need to be there.
    #[test]
    fn ids_are_held_to_the_catalogs_rule_and_keys_are_opaque() {
        for id in ["cus_1", "Acme Inc. #1/eu", "user@example.com"] {
            assert!(super::require_id("customer_id", id).is_ok(), "{id:?}");
        }
        for (id, why) in [
            ("", "is required"),
            ("   ", "must not be empty"),
            (" cus_1", "starts or ends with white space"),
            ("cus_1\n", "starts or ends with white space"),
            ("cus\u{7}1", "control character"),
        ] {
            let Err(error) = super::require_id("customer_id", id) else {
                panic!("{id:?} was accepted");
            };
            let message = error.to_string();
            assert!(
                message.contains("customer_id") && message.contains(why),
                "{id:?}: {message}"
            );
        }
        // A customer created before the rule stays reachable: only creating one checks it.
        assert!(super::require_customer(" cus_1").is_ok());
        assert!(super::require_customer("").is_err());
        for key in [" k ", "k\t1", "\u{0}"] {
            assert!(
                super::require_key("idempotency_key", key).is_ok(),
                "{key:?}"
            );
        }
        assert!(super::require_key("idempotency_key", "").is_err());
    }
}
