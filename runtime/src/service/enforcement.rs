//! Check, Reserve, Commit, Release.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::decision::{self, Decision, Reason, remaining_of, wallet_remaining};
use super::{
    DEFAULT_HOLD_TIMEOUT_MS, Runtime, ServiceError, require_customer, require_id, require_key,
    unexpected,
};
use crate::ledger::{
    Command, DEFAULT_CURRENCY, HoldId, LedgerError, MAX_HOLD_TIMEOUT_MS, Outcome, WalletRef,
};
use crate::policy::{
    Evaluation, FeatureKind, FeatureValue, Policy, Request, Subject, SubscriptionView,
};

/// A request for a feature: who, what, how much.
#[derive(Debug, Clone, Default)]
pub struct UsageRequest {
    pub customer: String,
    pub subject: Subject,
    pub feature: String,
    pub dimensions: BTreeMap<String, String>,
    pub units: u64,
}

impl UsageRequest {
    /// The request as policy evaluates it, for a customer on `subscription` at `now`.
    fn policy_request<'a>(
        &'a self,
        subscription: Option<&'a SubscriptionView>,
        now: crate::ledger::Timestamp,
    ) -> Request<'a> {
        Request {
            customer: &self.customer,
            subscription,
            subject: &self.subject,
            feature: &self.feature,
            dimensions: &self.dimensions,
            units: self.units,
            now,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub decision: Decision,
    pub value: Option<FeatureValue>,
    pub price_micro_credits: u64,
}

#[derive(Debug, Clone)]
pub struct ReserveOutcome {
    pub decision: Decision,
    /// 0 when nothing needed holding (or denied).
    pub hold: u64,
    pub held_micro_credits: u64,
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    pub posted: u64,
    pub released: u64,
    pub overage: u64,
    pub unbilled: u64,
}

fn validate(request: &UsageRequest) -> Result<(), ServiceError> {
    require_customer(&request.customer)?;
    require_id("feature", &request.feature)?;
    validate_scope(&request.subject, &request.dimensions)
}

/// The subject and dimensions of a request or a usage event: every id present within its
/// limits (they name budget-cap counters), at most 16 dimensions.
pub(crate) fn validate_scope(
    subject: &Subject,
    dimensions: &BTreeMap<String, String>,
) -> Result<(), ServiceError> {
    for (field, value) in [
        ("subject.team", &subject.team),
        ("subject.user", &subject.user),
        ("subject.agent", &subject.agent),
    ] {
        if let Some(value) = value {
            require_id(field, value)?;
        }
    }
    if dimensions.len() > 16 {
        return Err(ServiceError::invalid("dimensions", "more than 16"));
    }
    for (k, v) in dimensions {
        require_id("dimensions.key", k)?;
        require_id("dimensions.value", v)?;
    }
    Ok(())
}

impl Runtime {
    /// May the customer use the feature (and afford the units)? Reads only.
    pub async fn check(&self, request: UsageRequest) -> Result<CheckOutcome, ServiceError> {
        validate(&request)?;
        let policy = self.policy();
        if !policy.has_feature(&request.feature) {
            return Err(ServiceError::NotFound {
                what: "feature",
                id: request.feature,
            });
        }
        let now = self.now();
        // Shared with the read, and kept for the answer without the store if it fails.
        let asked = Arc::new(request);
        let answer = self
            .read(&asked.customer, {
                let (request, policy) = (asked.clone(), policy.clone());
                move |ledger| {
                    let version = policy.version.as_str();
                    let Some(record) = ledger.customer(&request.customer) else {
                        let message = format!("customer {} does not exist", request.customer);
                        return Ok(unpriced(Decision::deny(
                            Reason::UnknownCustomer,
                            message,
                            version,
                        )));
                    };
                    let subscription = record.subscription.as_ref().map(|s| SubscriptionView {
                        plan: s.plan.clone(),
                        since: s.since,
                    });
                    let evaluation = match policy
                        .evaluate(&request.policy_request(subscription.as_ref(), now))
                    {
                        Ok(e) => e,
                        Err(denial) => {
                            return Ok(unpriced(Decision::from_denial(
                                &denial,
                                &request.customer,
                                version,
                            )));
                        }
                    };
                    units_priced(&evaluation, request.units)?;
                    let mut remaining = Vec::new();
                    let mut after = Vec::new();
                    for planned in &evaluation.limits {
                        let counter = ledger
                            .counter(&planned.charge.counter, planned.charge.window.start)
                            .unwrap_or_default();
                        let over = planned.charge.limit.is_some_and(|limit| {
                            u128::from(counter.used)
                                + u128::from(counter.pending)
                                + u128::from(planned.charge.amount)
                                > u128::from(limit)
                        });
                        if over && planned.charge.enforce {
                            return Ok(CheckOutcome {
                                decision: Decision::limit_denied(
                                    planned,
                                    counter.used,
                                    counter.pending,
                                    version,
                                ),
                                value: evaluation.feature.value.clone(),
                                price_micro_credits: evaluation.credits,
                            });
                        }
                        remaining.push(remaining_of(
                            &planned.charge,
                            &planned.source,
                            counter.used,
                            counter.pending,
                        ));
                        after.push((
                            counter.used.saturating_add(planned.charge.amount),
                            counter.pending,
                        ));
                    }
                    let wallet = WalletRef::new(&request.customer, DEFAULT_CURRENCY);
                    let (available, pending) = ledger.wallet_totals(&wallet).unwrap_or((0, 0));
                    if evaluation.credits > available {
                        let mut decision = Decision::deny(
                            Reason::InsufficientCredits,
                            super::decision::insufficient_credits(evaluation.credits, available),
                            version,
                        );
                        decision.remaining = vec![wallet_remaining(available, pending)];
                        return Ok(CheckOutcome {
                            decision,
                            value: evaluation.feature.value,
                            price_micro_credits: evaluation.credits,
                        });
                    }
                    remaining.push(wallet_remaining(available, pending));
                    let alerts = decision::alerts(&evaluation.limits, &after);
                    Ok(CheckOutcome {
                        decision: Decision::allow(version, remaining, alerts),
                        value: evaluation.feature.value,
                        price_micro_credits: evaluation.credits,
                    })
                }
            })
            .await;
        match answer {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(%error, feature = %asked.feature, "check without the store: fail mode decides");
                Ok(self.check_without_store(&asked, &policy, now))
            }
        }
    }

    /// `Check` while the partition's store is unreachable: what the policy alone can say
    /// (entitlement from the cached plan), then the feature's fail mode, stated in the
    /// decision. Never a guess about counters or credits.
    fn check_without_store(
        &self,
        request: &UsageRequest,
        policy: &Policy,
        now: crate::ledger::Timestamp,
    ) -> CheckOutcome {
        let version = policy.version.as_str();
        let cached = self
            .customers
            .lock()
            .ok()
            .and_then(|c| c.known.get(&request.customer).cloned());
        let fail_open = match cached {
            Some(None) => {
                let message = format!("customer {} does not exist", request.customer);
                return unpriced(Decision::deny(Reason::UnknownCustomer, message, version));
            }
            Some(Some(subscription)) => {
                match policy.effective_feature(
                    &request.customer,
                    subscription.as_ref(),
                    &request.feature,
                    now,
                ) {
                    Some(f) if f.enabled => f.fail_open,
                    _ => {
                        let denial = crate::policy::Denial::NoEntitlement {
                            feature: request.feature.clone(),
                        };
                        return unpriced(Decision::from_denial(
                            &denial,
                            &request.customer,
                            version,
                        ));
                    }
                }
            }
            None => policy.fails_open_everywhere(&request.feature),
        };
        let (reason, allowed) = if fail_open {
            (Reason::FailOpen, true)
        } else {
            (Reason::FailClosed, false)
        };
        let mut decision = Decision::deny(
            reason,
            format!(
                "the ledger is unreachable; {} fails {}",
                request.feature,
                if fail_open {
                    "open: allowed without a check"
                } else {
                    "closed"
                }
            ),
            version,
        );
        decision.allowed = allowed;
        unpriced(decision)
    }

    /// Holds the estimated cost, the entitlement limit and every budget cap, all or nothing.
    pub async fn reserve(
        &self,
        request: UsageRequest,
        key: &str,
        hold_timeout_ms: u64,
    ) -> Result<ReserveOutcome, ServiceError> {
        validate(&request)?;
        require_key("idempotency_key", key)?;
        let timeout_ms = if hold_timeout_ms == 0 {
            DEFAULT_HOLD_TIMEOUT_MS
        } else {
            hold_timeout_ms
        };
        if timeout_ms > MAX_HOLD_TIMEOUT_MS {
            return Err(ServiceError::invalid(
                "hold_timeout_ms",
                "at most 86400000 (24 h)",
            ));
        }
        let policy = self.policy();
        let version = policy.version.clone();
        if !policy.has_feature(&request.feature) {
            return Err(ServiceError::NotFound {
                what: "feature",
                id: request.feature,
            });
        }
        let denied = |decision| ReserveOutcome {
            decision,
            hold: 0,
            held_micro_credits: 0,
            expires_at_ms: 0,
        };
        let Some(subscription) = self.subscription(&request.customer).await? else {
            let message = format!("customer {} does not exist", request.customer);
            return Ok(denied(Decision::deny(
                Reason::UnknownCustomer,
                message,
                &version,
            )));
        };
        let fingerprint = super::request_fingerprint(&[
            b"reserve",
            request.feature.as_bytes(),
            &request.units.to_le_bytes(),
            &timeout_ms.to_le_bytes(),
            request.subject.team.as_deref().unwrap_or("").as_bytes(),
            request.subject.user.as_deref().unwrap_or("").as_bytes(),
            request.subject.agent.as_deref().unwrap_or("").as_bytes(),
            dimensions_bytes(&request.dimensions).as_slice(),
        ]);
        let evaluation =
            match policy.evaluate(&request.policy_request(subscription.as_ref(), self.now())) {
                Ok(e) => e,
                Err(denial) => {
                    if let Some(replayed) = self
                        .replayed_hold(&request.customer, key, fingerprint, &version)
                        .await?
                    {
                        return Ok(replayed);
                    }
                    return Ok(denied(Decision::from_denial(
                        &denial,
                        &request.customer,
                        &version,
                    )));
                }
            };
        check_units(&evaluation, request.units)?;
        if evaluation.credits == 0 && evaluation.limits.is_empty() {
            if let Some(replayed) = self
                .replayed_hold(&request.customer, key, fingerprint, &version)
                .await?
            {
                return Ok(replayed);
            }
            // Nothing to hold: access alone decides.
            return Ok(denied(Decision::allow(&version, Vec::new(), Vec::new())));
        }
        let command = Command::Reserve {
            wallet: WalletRef::new(&request.customer, DEFAULT_CURRENCY),
            amount: evaluation.credits,
            timeout_ms,
            limits: evaluation.limits.iter().map(|l| l.charge.clone()).collect(),
            price: evaluation.price,
            request: Some(fingerprint),
        };
        match self.submit(&request.customer, key, command).await? {
            Ok(Outcome::Reserved {
                hold,
                expires_at,
                available_after,
                limits_after,
                ..
            }) => {
                let mut remaining: Vec<_> = evaluation
                    .limits
                    .iter()
                    .zip(&limits_after)
                    .map(|(l, (used, pending))| remaining_of(&l.charge, &l.source, *used, *pending))
                    .collect();
                remaining.push(wallet_remaining(available_after, evaluation.credits));
                let alerts = decision::alerts(&evaluation.limits, &limits_after);
                Ok(ReserveOutcome {
                    decision: Decision::allow(&version, remaining, alerts),
                    hold: hold.0,
                    held_micro_credits: evaluation.credits,
                    expires_at_ms: expires_at.0,
                })
            }
            Ok(other) => Err(unexpected(&other)),
            Err(LedgerError::UnknownWallet { .. }) => Ok(denied(Decision::deny(
                Reason::InsufficientCredits,
                format!("customer {} has no credits", request.customer),
                &version,
            ))),
            Err(error) => match Decision::from_ledger(&error, &evaluation.limits, &version) {
                Some(decision) => Ok(denied(decision)),
                None => Err(error.into()),
            },
        }
    }

    /// The hold an earlier Reserve with this key and request made, when the policy now
    /// answers the retry without the ledger (a denial, or nothing to hold): the client
    /// learns its hold instead of leaving it held until it times out. The answer holds the
    /// hold, its amount and expiry, and the wallet's credits after it; not the limits,
    /// which are named by a policy that has changed since. A stored refusal, or a ledger
    /// that cannot be read, leaves the policy's answer to stand.
    async fn replayed_hold(
        &self,
        customer: &str,
        key: &str,
        fingerprint: crate::ledger::Fingerprint,
        version: &str,
    ) -> Result<Option<ReserveOutcome>, ServiceError> {
        let stored = self
            .read(customer, {
                let (customer, key) = (customer.to_string(), key.to_string());
                move |ledger| {
                    let (stored, result) = ledger.key_record(&customer, &key)?;
                    let Ok(Outcome::Reserved {
                        hold,
                        expires_at,
                        available_after,
                        ..
                    }) = result
                    else {
                        return Some((stored, None));
                    };
                    let held = ledger.hold(hold).map_or(0, |h| h.amount);
                    Some((stored, Some((hold, expires_at, available_after, held))))
                }
            })
            .await;
        let stored = match stored {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "a Reserve retry could not be looked up; the policy answers");
                None
            }
        };
        match stored {
            Some((stored, _)) if stored != fingerprint => Err(ServiceError::Conflict {
                key: key.to_string(),
            }),
            Some((_, Some((hold, expires_at, available_after, held)))) => {
                Ok(Some(ReserveOutcome {
                    decision: Decision::allow(
                        version,
                        vec![wallet_remaining(available_after, held)],
                        Vec::new(),
                    ),
                    hold: hold.0,
                    held_micro_credits: held,
                    expires_at_ms: expires_at.0,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Posts the actual units of a hold (priced at the hold's rate); the rest is released.
    pub async fn commit(
        &self,
        customer: &str,
        hold: u64,
        units: u64,
        key: &str,
    ) -> Result<CommitOutcome, ServiceError> {
        require_customer(customer)?;
        require_key("idempotency_key", key)?;
        if hold == 0 {
            return Err(ServiceError::invalid("hold_id", "is required"));
        }
        let command = Command::Commit {
            hold: HoldId(hold),
            amount: 0,
            units,
        };
        match self.submit(customer, key, command).await? {
            Ok(Outcome::Committed {
                posted,
                released,
                overage_posted,
                overage_unbilled,
                ..
            }) => Ok(CommitOutcome {
                posted,
                released,
                overage: overage_posted,
                unbilled: overage_unbilled,
            }),
            Ok(other) => Err(unexpected(&other)),
            // What overflows in a Commit is the price of its units.
            Err(LedgerError::Overflow { what }) => Err(ServiceError::invalid(
                "units",
                format!("{what} would overflow"),
            )),
            Err(refused) => Err(refused.into()),
        }
    }

    /// Gives a hold back unused.
    pub async fn release(&self, customer: &str, hold: u64, key: &str) -> Result<u64, ServiceError> {
        require_customer(customer)?;
        require_key("idempotency_key", key)?;
        if hold == 0 {
            return Err(ServiceError::invalid("hold_id", "is required"));
        }
        match self
            .submit(customer, key, Command::Release { hold: HoldId(hold) })
            .await??
        {
            Outcome::Released { released, .. } => Ok(released),
            other => Err(unexpected(&other)),
        }
    }
}

/// A metered feature needs units, and their price must fit in a `u64`.
pub(crate) fn check_units(evaluation: &Evaluation, units: u64) -> Result<(), ServiceError> {
    if evaluation.feature.kind == FeatureKind::Metered && units == 0 {
        return Err(ServiceError::invalid(
            "units",
            format!(
                "must be at least 1 for the metered feature {}",
                evaluation.feature.id
            ),
        ));
    }
    units_priced(evaluation, units)
}

/// Refuses units whose price would not fit in micro-credits (Check asks the price of any
/// units, Reserve and Ingest also need at least one of a metered feature).
fn units_priced(evaluation: &Evaluation, units: u64) -> Result<(), ServiceError> {
    if let Some(price) = evaluation.price
        && price.cost(units).is_none()
    {
        return Err(ServiceError::invalid(
            "units",
            format!("{units} units would cost more than 18446744073709551615 micro-credits"),
        ));
    }
    Ok(())
}

fn dimensions_bytes(dimensions: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in dimensions {
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

fn unpriced(decision: Decision) -> CheckOutcome {
    CheckOutcome {
        decision,
        value: None,
        price_micro_credits: 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::UsageRequest;
    use crate::ledger::Category;
    use crate::service::ServiceError;
    use crate::testing::{METERED, runtime, subscribe};

    /// `metered` no longer has `units`; METERED's plan renamed `other` does (so the feature
    /// still exists).
    fn metered_without_units() -> String {
        format!(
            "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {{name: metered}}\n\
             spec:\n  features:\n    - {{id: chat, kind: boolean, enabled: true}}\n---\n{}",
            METERED.replace("{name: metered}", "{name: other}")
        )
    }

    #[tokio::test]
    async fn a_reserve_retried_after_the_policy_changed_gets_its_hold() {
        let t = runtime(METERED, 1);
        subscribe(&t.runtime, "cus_a", "metered").await;
        t.runtime
            .grant("cus_a", 100_000_000, Category::Paid, 0, 0, 0, 0, "g1")
            .await
            .unwrap();
        let request = UsageRequest {
            customer: "cus_a".into(),
            feature: "units".into(),
            units: 5,
            ..UsageRequest::default()
        };
        let first = t
            .runtime
            .reserve(request.clone(), "k1", 60_000)
            .await
            .unwrap();
        assert!(first.decision.allowed && first.hold != 0, "{first:?}");
        assert_eq!(first.held_micro_credits, 5_000_000);
        t.runtime
            .set_policy(crate::catalog::load_yaml(&metered_without_units()).unwrap());
        // The retry learns the hold it made (it was denied with no hold, and the hold's
        // credits stayed held until it timed out).
        let retry = t
            .runtime
            .reserve(request.clone(), "k1", 60_000)
            .await
            .unwrap();
        assert!(retry.decision.allowed, "{retry:?}");
        assert_eq!(
            (retry.hold, retry.held_micro_credits, retry.expires_at_ms),
            (first.hold, first.held_micro_credits, first.expires_at_ms)
        );
        // The same key with another request is a conflict, as the ledger says.
        let other = UsageRequest {
            units: 6,
            ..request.clone()
        };
        assert!(matches!(
            t.runtime.reserve(other, "k1", 60_000).await,
            Err(ServiceError::Conflict { .. })
        ));
        // A new key gets the new policy's answer.
        let fresh = t.runtime.reserve(request, "k2", 60_000).await.unwrap();
        assert!(!fresh.decision.allowed && fresh.hold == 0, "{fresh:?}");
    }

    fn field_of<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> String {
        match result {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    #[tokio::test]
    async fn refusals_name_the_fields_of_the_request() {
        let t = runtime(METERED, 1);
        subscribe(&t.runtime, "cus_a", "metered").await;
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let grant = |amount, category, expires_at_ms, cost_basis, key: &'static str| {
            let runtime = t.runtime.clone();
            async move {
                runtime
                    .grant(
                        "cus_a",
                        amount,
                        category,
                        0,
                        now_ms,
                        expires_at_ms,
                        cost_basis,
                        key,
                    )
                    .await
            }
        };
        assert_eq!(
            field_of(grant(10, Category::Paid, now_ms - 1, 0, "g1").await),
            "expires_at_ms"
        );
        assert_eq!(
            field_of(grant(10, Category::Promotional, 0, 5, "g2").await),
            "cost_basis_micros"
        );
        assert_eq!(
            field_of(grant(0, Category::Paid, 0, 0, "g3").await),
            "amount_micro_credits"
        );
        grant(u64::MAX, Category::Paid, 0, 0, "g4").await.unwrap();
        assert_eq!(
            field_of(grant(u64::MAX, Category::Paid, 0, 0, "g5").await),
            "amount_micro_credits"
        );
        // A Commit whose units cost more than a u64 of micro-credits names `units`.
        let held = t
            .runtime
            .reserve(
                UsageRequest {
                    customer: "cus_a".into(),
                    feature: "units".into(),
                    units: 1,
                    ..UsageRequest::default()
                },
                "r1",
                60_000,
            )
            .await
            .unwrap();
        assert!(held.decision.allowed, "{held:?}");
        assert_eq!(
            field_of(t.runtime.commit("cus_a", held.hold, u64::MAX, "c1").await),
            "units"
        );
    }

    #[tokio::test]
    async fn check_refuses_units_whose_price_overflows_as_reserve_does() {
        let t = runtime(METERED, 1);
        subscribe(&t.runtime, "cus_a", "metered").await;
        let request = UsageRequest {
            customer: "cus_a".into(),
            feature: "units".into(),
            units: u64::MAX,
            ..UsageRequest::default()
        };
        let checked = t.runtime.check(request.clone()).await;
        let reserved = t.runtime.reserve(request, "k1", 0).await;
        for (rpc, result) in [
            ("check", checked.map(|_| ())),
            ("reserve", reserved.map(|_| ())),
        ] {
            match result {
                Err(ServiceError::InvalidArgument { field, .. }) => {
                    assert_eq!(field, "units", "{rpc}")
                }
                other => panic!("{rpc}: {other:?}"),
            }
        }
    }
}
