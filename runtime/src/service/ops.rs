//! Customers, subscriptions, wallets and metering.

use std::collections::{BTreeMap, HashMap};

use super::{Runtime, ServiceError, require_customer, require_id, require_key, unexpected};
use crate::ledger::{
    AccountId, Category, Command, DEFAULT_CURRENCY, Entry, EntryId, EntryRef, GrantSpec, Ledger,
    LedgerError, MAX_EVENTS_PER_COMMAND, Measure, Outcome, Timestamp, UsageCharge, WalletBalance,
    WalletRef,
};
use crate::policy::{EffectiveFeature, FeatureKind, Policy, Request, Subject, SubscriptionView};

/// Most entries one ListEntries page returns.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Most events one Ingest request carries.
pub const MAX_INGEST_EVENTS: usize = 10_000;
/// How far ahead of the server's clock a Subscribe's `start_ms` may be (clock skew between
/// the caller and the server); further is refused.
pub const MAX_START_AHEAD_MS: u64 = 5 * 60 * 1000;
const _: () = assert!(MAX_INGEST_EVENTS >= MAX_EVENTS_PER_COMMAND);

#[derive(Debug, Clone)]
pub struct CustomerView {
    pub id: String,
    pub display_name: String,
    pub subscription: Option<SubscriptionView>,
    /// Each effective feature with (used, pending, window end ms) of its limit.
    pub features: Vec<(EffectiveFeature, u64, u64, u64)>,
    pub policy_version: String,
}

#[derive(Debug, Clone, Default)]
pub struct IngestEvent {
    pub id: String,
    pub customer: String,
    pub subject: Subject,
    pub feature: String,
    pub quantity: u64,
    pub dimensions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: u32,
    pub duplicates: u32,
    pub rejected: Vec<(u32, String)>,
    pub debited: u64,
    pub unbilled: u64,
}

impl Runtime {
    pub async fn upsert_customer(
        &self,
        customer: &str,
        display_name: &str,
        key: &str,
    ) -> Result<bool, ServiceError> {
        require_id("customer_id", customer)?;
        require_key("idempotency_key", key)?;
        let command = Command::UpsertCustomer {
            display_name: display_name.to_string(),
        };
        let outcome = self.submit(customer, key, command).await??;
        self.forget(customer);
        match outcome {
            Outcome::CustomerUpserted { created } => Ok(created),
            other => Err(unexpected(&other)),
        }
    }

    /// Subscribe `customer` to `plan`. Subscribing again to the plan the customer is on
    /// (same included grants; `start_ms` 0 or the same start) changes nothing and issues
    /// nothing: the answer says 0 grants issued, with the start in force.
    pub async fn subscribe(
        &self,
        customer: &str,
        plan: &str,
        start_ms: u64,
        key: &str,
    ) -> Result<(String, u64, u32), ServiceError> {
        require_customer(customer)?;
        require_id("plan", plan)?;
        require_key("idempotency_key", key)?;
        let policy = self.policy();
        let Some(index) = policy.plan(plan) else {
            return Err(ServiceError::NotFound {
                what: "plan",
                id: plan.to_string(),
            });
        };
        if index.closed {
            return Err(ServiceError::FailedPrecondition(format!(
                "plan {plan} is closed to new subscriptions"
            )));
        }
        // The ledger replaces the customer's plan when the command is applied, whatever the
        // start: a plan change cannot be scheduled ahead, so a start in the future (beyond
        // clock skew) is refused rather than taking effect now.
        if start_ms > self.now().0.saturating_add(MAX_START_AHEAD_MS) {
            return Err(ServiceError::InvalidArgument {
                field: "start_ms".into(),
                reason: format!(
                    "{start_ms} is in the future; a plan change takes effect when Subscribe \
                     is called, so call it when the plan should start (0 means now)"
                ),
            });
        }
        // 0: the ledger time the command is applied at, so a retry is the same request.
        let since = Timestamp(start_ms);
        let command = Command::SubscribeChange {
            plan: plan.to_string(),
            since,
            overage: index.overage,
            included: index.included.clone(),
            request: Some(super::request_fingerprint(&[
                b"subscribe",
                plan.as_bytes(),
                &start_ms.to_le_bytes(),
            ])),
        };
        let outcome = self.submit(customer, key, command).await??;
        self.forget(customer);
        match outcome {
            Outcome::Subscribed {
                plan,
                since,
                grants_issued,
            } => Ok((plan, since.0, grants_issued)),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn get_customer(&self, customer: &str) -> Result<CustomerView, ServiceError> {
        require_customer(customer)?;
        let policy = self.policy();
        let now = self.now();
        let id = customer.to_string();
        let view = self
            .read(customer, move |ledger| {
                let record = ledger.customer(&id)?;
                let subscription = record.subscription.as_ref().map(|s| SubscriptionView {
                    plan: s.plan.clone(),
                    since: s.since,
                });
                let features = policy
                    .effective_features(&id, subscription.as_ref(), now)
                    .into_iter()
                    .map(|f| {
                        let (used, pending, end) = match (f.kind, f.limit, &subscription) {
                            (FeatureKind::Metered, Some(def), Some(s)) => {
                                let window = Policy::entitlement_window(&def, s.since, now);
                                let counter = ledger
                                    .counter(&format!("ent/{id}/{}", f.id), window.start)
                                    .unwrap_or_default();
                                let end = if window.end.0 == u64::MAX {
                                    0
                                } else {
                                    window.end.0
                                };
                                (counter.used, counter.pending, end)
                            }
                            _ => (0, 0, 0),
                        };
                        (f, used, pending, end)
                    })
                    .collect();
                Some(CustomerView {
                    id: id.clone(),
                    display_name: record.display_name.clone(),
                    subscription,
                    features,
                    policy_version: policy.version.clone(),
                })
            })
            .await?;
        view.ok_or_else(|| ServiceError::NotFound {
            what: "customer",
            id: customer.to_string(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn grant(
        &self,
        customer: &str,
        amount: u64,
        category: Category,
        priority: u32,
        effective_at_ms: u64,
        expires_at_ms: u64,
        cost_basis_micros: u64,
        key: &str,
    ) -> Result<(u64, u64, u64), ServiceError> {
        require_customer(customer)?;
        require_key("idempotency_key", key)?;
        if self.subscription(customer).await?.is_none() {
            return Err(ServiceError::NotFound {
                what: "customer",
                id: customer.to_string(),
            });
        }
        let grant = GrantSpec {
            amount,
            category,
            priority,
            // 0: effective at once (and a retry is the same request).
            effective_at: Timestamp(effective_at_ms),
            expires_at: (expires_at_ms != 0).then_some(Timestamp(expires_at_ms)),
            cost_basis_micros,
        };
        let command = Command::Grant {
            wallet: WalletRef::new(customer, DEFAULT_CURRENCY),
            grant,
        };
        match self.submit(customer, key, command).await? {
            Ok(Outcome::Granted {
                grant,
                entry,
                repaid_overdraft,
            }) => Ok((grant.0, entry.0, repaid_overdraft)),
            Ok(other) => Err(unexpected(&other)),
            // The ledger names the grant's fields its own way; the caller sent these.
            Err(LedgerError::InvalidArgument {
                field,
                value,
                reason,
            }) => Err(ServiceError::from(LedgerError::InvalidArgument {
                field: match field.as_str() {
                    "grant.amount" => "amount_micro_credits".into(),
                    "grant.expires_at" => "expires_at_ms".into(),
                    "grant.cost_basis_micros" => "cost_basis_micros".into(),
                    _ => field,
                },
                value,
                reason,
            })),
            Err(LedgerError::Overflow { what }) => Err(ServiceError::invalid(
                "amount_micro_credits",
                format!("{what} would overflow"),
            )),
            Err(refused) => Err(refused.into()),
        }
    }

    pub async fn balance(&self, customer: &str) -> Result<WalletBalance, ServiceError> {
        require_customer(customer)?;
        let id = customer.to_string();
        let found = self
            .read(customer, move |ledger| {
                let exists = ledger.customer(&id).is_some();
                let wallet = WalletRef::new(&id, DEFAULT_CURRENCY);
                (exists, ledger.wallet_balance(&wallet))
            })
            .await?;
        match found {
            (_, Some(balance)) => Ok(balance),
            (true, None) => Ok(WalletBalance {
                wallet: WalletRef::new(customer, DEFAULT_CURRENCY),
                available: 0,
                pending: 0,
                upcoming: 0,
                overdraft: 0,
                overage: Default::default(),
                grants: Vec::new(),
            }),
            (false, None) => Err(ServiceError::NotFound {
                what: "customer",
                id: customer.to_string(),
            }),
        }
    }

    /// Journal entries of the customer's wallet after entry `after`, oldest first.
    pub async fn entries(
        &self,
        customer: &str,
        after: u64,
        page_size: usize,
    ) -> Result<(Vec<Entry>, HashMap<u32, String>), ServiceError> {
        require_customer(customer)?;
        let limit = if page_size == 0 {
            100
        } else {
            page_size.min(MAX_PAGE_SIZE)
        };
        let id = customer.to_string();
        let found = self
            .read(customer, move |ledger| {
                ledger.customer(&id)?;
                let wallet = WalletRef::new(&id, DEFAULT_CURRENCY);
                let page: Vec<Result<Entry, EntryId>> = ledger
                    .wallet_entries(&wallet, EntryId(after), limit)
                    .into_iter()
                    .map(|found| match found {
                        EntryRef::InMemory(entry) => Ok(entry.clone()),
                        EntryRef::Archived(id) => Err(id),
                    })
                    .collect();
                let names = account_names(ledger, page.iter().flatten());
                Some((page, names))
            })
            .await?;
        let Some((page, mut names)) = found else {
            return Err(ServiceError::NotFound {
                what: "customer",
                id: customer.to_string(),
            });
        };
        if page.iter().all(Result::is_ok) {
            return Ok((page.into_iter().flatten().collect(), names));
        }
        // Entries the ledger archived out of memory: read back from the store's archive,
        // off the async threads (they are immutable, so no lock is needed).
        let (_, engine) = self.partitions.for_customer(customer);
        let Some(archive) = engine.journal_archive() else {
            return Err(ServiceError::Internal(
                "entries are archived, but the store keeps no journal archive".into(),
            ));
        };
        let entries = tokio::task::spawn_blocking(move || {
            let archived: Vec<EntryId> = page
                .iter()
                .filter_map(|f| f.as_ref().err().copied())
                .collect();
            let mut read = archive.get_many(&archived)?.into_iter();
            page.into_iter()
                .map(|found| {
                    found.or_else(|id| {
                        read.next()
                            .ok_or_else(|| crate::store::StoreError::Archive {
                                what: format!("entry {} was not read back", id.0),
                            })
                    })
                })
                .collect::<Result<Vec<Entry>, _>>()
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("reading the journal archive: {e}")))?
        .map_err(|e| ServiceError::Internal(format!("reading the journal archive: {e}")))?;
        let unnamed: Vec<Entry> = entries
            .iter()
            .filter(|e| legs_accounts(e).any(|a| !names.contains_key(&a.0)))
            .cloned()
            .collect();
        let more = self
            .read(customer, move |ledger| {
                account_names(ledger, unnamed.iter())
            })
            .await?;
        names.extend(more);
        Ok((entries, names))
    }

    /// Records usage events: each is validated, deduplicated by id, priced by the
    /// customer's rate card and counted toward its metered entitlement and caps.
    ///
    /// Events are grouped by customer; each customer's subscription is read once, and the
    /// customers' commands are submitted together so that they share the engines' group
    /// commits (one durable write per partition, not one per customer).
    ///
    /// An event the policy or the ledger refuses is a rejection of that event (or of the
    /// events it was recorded with); the others still count. The call fails only when the
    /// ledger is unavailable, and then some customers' events may be counted already: a
    /// retry of the same request is safe, since events dedupe by id.
    pub async fn ingest(&self, events: Vec<IngestEvent>) -> Result<IngestOutcome, ServiceError> {
        if events.is_empty() || events.len() > MAX_INGEST_EVENTS {
            return Err(ServiceError::invalid(
                "events",
                "must hold 1 to 10000 events",
            ));
        }
        let policy = self.policy();
        let now = self.now();
        let mut outcome = IngestOutcome::default();
        let mut by_customer: HashMap<&str, Vec<(u32, &IngestEvent)>> = HashMap::new();
        for (index, event) in events.iter().enumerate() {
            by_customer
                .entry(event.customer.as_str())
                .or_default()
                .push((index as u32, event));
        }
        // Each command with the request indexes of its events.
        let mut commands = Vec::with_capacity(by_customer.len());
        for (customer, events) in by_customer {
            let subscription = self.customer_subscription(customer).await?;
            let mut charges = Vec::with_capacity(events.len());
            let mut indexes = Vec::with_capacity(events.len());
            for (index, event) in events {
                match subscription
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|s| price_event(&policy, s.as_ref(), event, now))
                {
                    Ok(charge) => {
                        charges.push(charge);
                        indexes.push(index);
                    }
                    Err(reason) => outcome.rejected.push((index, reason)),
                }
            }
            while !charges.is_empty() {
                // The first `MAX_EVENTS_PER_COMMAND` charges move into the command.
                let cut = charges.len().min(MAX_EVENTS_PER_COMMAND);
                let rest = charges.split_off(cut);
                let rest_indexes = indexes.split_off(cut);
                let command = Command::RecordUsage {
                    wallet: WalletRef::new(customer, DEFAULT_CURRENCY),
                    events: std::mem::replace(&mut charges, rest),
                };
                // The key is the command's own fingerprint: a retry that makes the same
                // command (same events, policy and windows) gets the first answer. Any other
                // command is new, and its events dedupe one by one: an event sent again
                // after a window turned, a plan changed or with another quantity counts as a
                // duplicate, never as a conflict on a key the client did not choose.
                let key = format!(
                    "ingest:{}",
                    blake3_hex::encode(crate::ledger::fingerprint(&command))
                );
                let command_indexes = std::mem::replace(&mut indexes, rest_indexes);
                commands.push((customer, key, command, command_indexes));
            }
        }
        let submitted = commands
            .into_iter()
            .map(|(customer, key, command, indexes)| async move {
                (self.submit(customer, &key, command).await, indexes)
            });
        for (answer, indexes) in futures::future::join_all(submitted).await {
            match answer? {
                Ok(Outcome::UsageRecorded {
                    accepted,
                    duplicates,
                    credits_posted,
                    unbilled,
                    ..
                }) => {
                    outcome.accepted += accepted;
                    outcome.duplicates += duplicates;
                    outcome.debited = outcome.debited.saturating_add(credits_posted);
                    outcome.unbilled = outcome.unbilled.saturating_add(unbilled);
                }
                Ok(other) => return Err(unexpected(&other)),
                Err(refused) => {
                    let reason = ServiceError::from(refused).to_string();
                    outcome
                        .rejected
                        .extend(indexes.into_iter().map(|index| (index, reason.clone())));
                }
            }
        }
        outcome.rejected.sort_unstable_by_key(|(index, _)| *index);
        Ok(outcome)
    }

    /// The customer's subscription for pricing its events, or why its events are refused
    /// (the inner error). The outer error fails the call: the ledger could not say, and a
    /// rejection would tell the client to drop events that a retry would count.
    async fn customer_subscription(
        &self,
        customer: &str,
    ) -> Result<Result<Option<SubscriptionView>, String>, ServiceError> {
        if let Err(e) = require_customer(customer) {
            return Ok(Err(e.to_string()));
        }
        match self.subscription(customer).await {
            Ok(Some(s)) => Ok(Ok(s)),
            Ok(None) => Ok(Err(format!("customer {customer} does not exist"))),
            Err(e @ (ServiceError::Unavailable(_) | ServiceError::Internal(_))) => Err(e),
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}

/// Prices one event under the customer's subscription.
fn price_event(
    policy: &Policy,
    subscription: Option<&SubscriptionView>,
    event: &IngestEvent,
    now: Timestamp,
) -> Result<UsageCharge, String> {
    require_key("id", &event.id).map_err(|e| e.to_string())?;
    require_id("feature", &event.feature).map_err(|e| e.to_string())?;
    super::enforcement::validate_scope(&event.subject, &event.dimensions)
        .map_err(|e| e.to_string())?;
    if event.quantity == 0 {
        return Err("invalid quantity: must be at least 1".into());
    }
    if !policy.has_feature(&event.feature) {
        return Err(format!("feature {} does not exist", event.feature));
    }
    let evaluation = policy
        .evaluate(&Request {
            customer: &event.customer,
            subscription,
            subject: &event.subject,
            feature: &event.feature,
            dimensions: &event.dimensions,
            units: event.quantity,
            now,
        })
        .map_err(|denial| denial.message(&event.customer))?;
    super::enforcement::check_units(&evaluation, event.quantity).map_err(|e| e.to_string())?;
    let counters = evaluation
        .limits
        .into_iter()
        .map(|l| {
            let mut charge = l.charge;
            // Usage has happened: count it, never refuse it.
            charge.enforce = false;
            if charge.measure == Measure::Credits {
                charge.amount = evaluation.credits;
            }
            charge
        })
        .collect();
    Ok(UsageCharge {
        event_id: event.id.clone(),
        credits: evaluation.credits,
        counters,
    })
}

/// The accounts `entry`'s legs move.
fn legs_accounts(entry: &Entry) -> impl Iterator<Item = AccountId> + '_ {
    entry.legs.iter().flat_map(|l| [l.debit, l.credit])
}

/// People's names of the accounts the entries' legs move, by account id.
fn account_names<'a>(
    ledger: &Ledger,
    entries: impl Iterator<Item = &'a Entry>,
) -> HashMap<u32, String> {
    entries
        .flat_map(legs_accounts)
        .map(|a| (a.0, ledger.account_name(a)))
        .collect()
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod ingest_tests;

#[cfg(test)]
mod subscribe_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::service::ServiceError;
    use crate::testing::runtime;

    /// `pro` grants 5 credits a month.
    const MONTHLY: &str = "\
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: pro}
spec:
  features:
    - {id: chat, kind: boolean, enabled: true}
  includedGrants:
    - {id: monthly, amountMicroCredits: 5000000, period: month, category: paid}
";

    #[tokio::test]
    async fn subscribing_again_to_the_same_plan_issues_nothing_again() {
        let t = runtime(MONTHLY, 1);
        let r = &t.runtime;
        r.upsert_customer("cus_1", "One", "u1").await.unwrap();
        let first = r.subscribe("cus_1", "pro", 0, "s1").await.unwrap();
        assert_eq!((first.0.as_str(), first.2), ("pro", 1));
        assert_eq!(r.balance("cus_1").await.unwrap().available, 5_000_000);
        // Another key, the same plan: before, a second month's credits.
        let again = r.subscribe("cus_1", "pro", 0, "s2").await.unwrap();
        assert_eq!(again, ("pro".to_string(), first.1, 0));
        assert_eq!(r.balance("cus_1").await.unwrap().available, 5_000_000);
        // The same start given explicitly is the same subscription too.
        let explicit = r.subscribe("cus_1", "pro", first.1, "s3").await.unwrap();
        assert_eq!(explicit.2, 0);
        // A retry of the first request gets its own answer back.
        assert_eq!(r.subscribe("cus_1", "pro", 0, "s1").await.unwrap(), first);
        assert_eq!(r.balance("cus_1").await.unwrap().available, 5_000_000);
    }

    /// A changed overage policy still reaches the wallet, as on any Subscribe, without the
    /// plan's credits being issued again.
    #[tokio::test]
    async fn subscribing_again_applies_a_changed_overage_policy_and_issues_nothing() {
        let t = runtime(MONTHLY, 1);
        let r = &t.runtime;
        r.upsert_customer("cus_1", "One", "u1").await.unwrap();
        r.subscribe("cus_1", "pro", 0, "s1").await.unwrap();
        let overdraft = format!(
            "{MONTHLY}  overage: {{action: allowOverdraft, overdraftFloorMicroCredits: 7000000}}\n"
        );
        r.set_policy(crate::catalog::load_yaml(&overdraft).unwrap());
        let again = r.subscribe("cus_1", "pro", 0, "s2").await.unwrap();
        assert_eq!(again.2, 0);
        let balance = r.balance("cus_1").await.unwrap();
        assert_eq!(balance.available, 5_000_000);
        assert_eq!(
            balance.overage,
            crate::ledger::OveragePolicy::AllowOverdraft { floor: 7_000_000 }
        );
    }

    #[tokio::test]
    async fn a_start_in_the_future_is_refused_not_applied_now() {
        let t = runtime(MONTHLY, 1);
        let r = &t.runtime;
        r.upsert_customer("cus_1", "One", "u1").await.unwrap();
        let tomorrow = crate::catalog::now_ms() + 86_400_000;
        let refused = r
            .subscribe("cus_1", "pro", tomorrow, "s1")
            .await
            .unwrap_err();
        let ServiceError::InvalidArgument { field, reason } = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(field, "start_ms");
        assert!(reason.contains("in the future"), "{reason}");
        assert!(
            r.get_customer("cus_1")
                .await
                .unwrap()
                .subscription
                .is_none()
        );
        // Within clock skew it is taken.
        let soon = crate::catalog::now_ms() + 60_000;
        assert_eq!(
            r.subscribe("cus_1", "pro", soon, "s2").await.unwrap().0,
            "pro"
        );
    }
}
