//! Customers and their subscriptions; included grants issued by the ledger each period.

use serde::{Deserialize, Serialize};

use super::command::{CommandResult, Outcome};
use super::error::LedgerError;
use super::state::{Ledger, validate_id};
use super::types::{
    DEFAULT_CURRENCY, GrantSpec, IncludedGrant, OveragePolicy, Timestamp, WalletRef,
};
use crate::period::{Anchor, Period, window};

/// Most included grants one subscription carries.
pub const MAX_INCLUDED_GRANTS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub display_name: String,
    pub created_at: Timestamp,
    pub subscription: Option<Subscription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub plan: String,
    pub since: Timestamp,
    pub included: Vec<IncludedGrant>,
    /// When each included grant is issued next (`None`: not again).
    pub next_issue: Vec<Option<Timestamp>>,
}

impl Ledger {
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.get(id)
    }

    pub(crate) fn upsert_customer(&mut self, id: &str, display_name: &str) -> CommandResult {
        if display_name.len() > 256 {
            return Err(LedgerError::invalid(
                "display_name",
                display_name.len(),
                "longer than 256 bytes",
            ));
        }
        let now = self.time;
        let created = !self.customers.contains_key(id);
        let customer = self.customers.get_or_insert_with(id, || Customer {
            display_name: String::new(),
            created_at: now,
            subscription: None,
        });
        customer.display_name = display_name.to_string();
        Ok(Outcome::CustomerUpserted { created })
    }

    pub(crate) fn subscribe(
        &mut self,
        id: &str,
        plan: &str,
        since: Timestamp,
        overage: OveragePolicy,
        included: &[IncludedGrant],
    ) -> CommandResult {
        validate_id("plan", plan)?;
        // `since` 0 means "now": the ledger time the command is applied at.
        let since = if since.0 == 0 { self.time } else { since };
        if included.len() > MAX_INCLUDED_GRANTS {
            return Err(LedgerError::invalid(
                "included",
                included.len(),
                "more than 32 grants",
            ));
        }
        for grant in included {
            validate_id("included.id", &grant.id)?;
            if grant.amount == 0 {
                return Err(LedgerError::invalid(
                    "included.amount",
                    0,
                    "must be at least 1",
                ));
            }
        }
        let Some(customer) = self.customers.get_mut(id) else {
            return Err(LedgerError::UnknownCustomer {
                customer: id.to_string(),
            });
        };
        if let Some(old) = customer.subscription.take() {
            if let Some(count) = self.plan_subscribers.get_mut(&old.plan) {
                *count -= 1;
                if *count == 0 {
                    self.plan_subscribers.remove(&old.plan);
                }
            }
            for (index, next) in old.next_issue.iter().enumerate() {
                if let Some(at) = next {
                    self.grant_schedule
                        .remove(&(*at, id.to_string(), index as u32));
                }
            }
        }
        let start = since.max(self.time);
        let first = if since <= self.time { self.time } else { since };
        let customer = self.customers.get_mut(id).map(|c| {
            c.subscription = Some(Subscription {
                plan: plan.to_string(),
                since,
                included: included.to_vec(),
                next_issue: vec![Some(first); included.len()],
            });
        });
        debug_assert!(customer.is_some());
        *self.plan_subscribers.entry(plan.to_string()).or_insert(0) += 1;
        self.open_wallet(&WalletRef::new(id, DEFAULT_CURRENCY), Some(overage));
        let mut issued = 0;
        for index in 0..included.len() as u32 {
            if since <= self.time {
                issued += u32::from(self.issue_included(id, index));
            } else {
                self.grant_schedule.insert((start, id.to_string(), index));
            }
        }
        Ok(Outcome::Subscribed {
            plan: plan.to_string(),
            since,
            grants_issued: issued,
        })
    }

    /// The answer to a `SubscribeChange` that changes nothing: `customer` is already on
    /// `plan` with these included grants (from `since`, unless `since` is 0).
    pub(crate) fn unchanged_subscription(
        &self,
        customer: &str,
        plan: &str,
        since: Timestamp,
        included: &[IncludedGrant],
    ) -> Option<Outcome> {
        let current = self.customers.get(customer)?.subscription.as_ref()?;
        let same = current.plan == plan
            && current.included == included
            && (since.0 == 0 || since == current.since);
        same.then(|| Outcome::Subscribed {
            plan: plan.to_string(),
            since: current.since,
            grants_issued: 0,
        })
    }

    /// Issues included grant `index` of the customer's subscription for the period that
    /// contains ledger time, and schedules the next one. Returns whether a grant was made.
    pub(crate) fn issue_included(&mut self, id: &str, index: u32) -> bool {
        let now = self.time;
        let Some(sub) = self.customers.get(id).and_then(|c| c.subscription.as_ref()) else {
            return false;
        };
        let Some(grant) = sub.included.get(index as usize).cloned() else {
            return false;
        };
        let anchor = if grant.calendar {
            Anchor::Calendar
        } else {
            Anchor::At(sub.since)
        };
        let period = window(grant.period, anchor, now);
        let expires_at = match grant.expires_after_ms {
            Some(after) => now.checked_add_ms(after),
            None if period.end.0 == u64::MAX => None,
            None => Some(period.end),
        };
        let next =
            (grant.period != Period::Never && period.end.0 != u64::MAX).then_some(period.end);
        if let Some(sub) = self
            .customers
            .get_mut(id)
            .and_then(|c| c.subscription.as_mut())
        {
            sub.next_issue[index as usize] = next;
        }
        if let Some(at) = next {
            self.grant_schedule.insert((at, id.to_string(), index));
        }
        let spec = GrantSpec {
            amount: grant.amount,
            category: grant.category,
            priority: grant.priority,
            effective_at: now,
            expires_at,
            cost_basis_micros: 0,
        };
        self.grant(&WalletRef::new(id, DEFAULT_CURRENCY), &spec)
            .is_ok()
    }
}
