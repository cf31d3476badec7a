//! Usage and spend counters: metered entitlement limits and budget caps, held and posted
//! together with the credits they go with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::LedgerError;
use super::state::Ledger;
use super::types::{LimitCharge, Measure, Timestamp};

/// Longest counter name, in bytes.
pub const MAX_COUNTER_BYTES: usize = 512;
/// Most counters one request may charge (an entitlement limit plus caps at four levels,
/// with room to spare).
pub const MAX_LIMITS_PER_REQUEST: usize = 16;

/// One window of a counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub end: Timestamp,
    /// Posted usage (saturating: a counter is not money).
    pub used: u64,
    /// Held by open holds.
    pub pending: u64,
}

/// A counter charge a hold carries until it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLimit {
    pub counter: String,
    pub window_start: Timestamp,
    pub measure: Measure,
    pub amount: u64,
}

pub(crate) fn validate(limits: &[LimitCharge]) -> Result<(), LedgerError> {
    if limits.len() > MAX_LIMITS_PER_REQUEST {
        return Err(LedgerError::invalid(
            "limits",
            limits.len(),
            "more than 16 counters",
        ));
    }
    for (i, limit) in limits.iter().enumerate() {
        if limit.counter.is_empty() || limit.counter.len() > MAX_COUNTER_BYTES {
            return Err(LedgerError::invalid(
                "limits.counter",
                &limit.counter,
                "must be 1 to 512 bytes",
            ));
        }
        if limit.window.start >= limit.window.end {
            return Err(LedgerError::invalid(
                "limits.window",
                limit.window.start.0,
                "must start before it ends",
            ));
        }
        let repeated = limits[..i]
            .iter()
            .any(|l| l.counter == limit.counter && l.window.start == limit.window.start);
        if repeated {
            return Err(LedgerError::invalid(
                "limits.counter",
                &limit.counter,
                "appears twice",
            ));
        }
    }
    Ok(())
}

impl Ledger {
    /// The counter's window starting at `window_start`, if anything was counted in it.
    pub fn counter(&self, name: &str, window_start: Timestamp) -> Option<Counter> {
        self.counters.get(name)?.get(&window_start).copied()
    }

    /// Refuses the first enforced counter that `limits` would take past its limit.
    pub(crate) fn check_limits(&self, limits: &[LimitCharge]) -> Result<(), LedgerError> {
        for (index, charge) in limits.iter().enumerate() {
            let Some(limit) = charge.limit.filter(|_| charge.enforce) else {
                continue;
            };
            let counter = self
                .counter(&charge.counter, charge.window.start)
                .unwrap_or_default();
            let after =
                u128::from(counter.used) + u128::from(counter.pending) + u128::from(charge.amount);
            if after > u128::from(limit) {
                return Err(LedgerError::LimitExceeded {
                    index: index as u32,
                    counter: charge.counter.clone(),
                    limit,
                    used: counter.used,
                    pending: counter.pending,
                    requested: charge.amount,
                });
            }
        }
        Ok(())
    }

    /// Holds every charge on its counter.
    pub(crate) fn hold_limits(&mut self, limits: &[LimitCharge]) -> Vec<HeldLimit> {
        limits
            .iter()
            .map(|charge| {
                let counter =
                    self.counter_mut(&charge.counter, charge.window.start, charge.window.end);
                counter.pending = counter.pending.saturating_add(charge.amount);
                HeldLimit {
                    counter: charge.counter.clone(),
                    window_start: charge.window.start,
                    measure: charge.measure,
                    amount: charge.amount,
                }
            })
            .collect()
    }

    /// Gives back what a resolving hold held on its counters (`limits`) and counts the
    /// actual usage: the credits posted for credit counters, `units` for unit counters.
    pub(crate) fn resolve_limits(&mut self, limits: &[HeldLimit], credits: u64, units: u64) {
        for limit in limits {
            let counter = self
                .counters
                .get_mut(&limit.counter)
                .and_then(|windows| windows.get_mut(&limit.window_start));
            let Some(counter) = counter else {
                panic!("hold on counter {} without the counter", limit.counter);
            };
            assert!(
                counter.pending >= limit.amount,
                "counter {} pending below its holds",
                limit.counter
            );
            counter.pending -= limit.amount;
            counter.used = counter.used.saturating_add(match limit.measure {
                Measure::Credits => credits,
                Measure::Units => units,
            });
        }
    }

    /// Counts posted usage without a hold.
    pub(crate) fn count(&mut self, charge: &LimitCharge) {
        let counter = self.counter_mut(&charge.counter, charge.window.start, charge.window.end);
        counter.used = counter.used.saturating_add(charge.amount);
    }

    fn counter_mut(&mut self, name: &str, start: Timestamp, end: Timestamp) -> &mut Counter {
        let horizon = Timestamp(
            self.time
                .0
                .saturating_sub(self.config.idempotency_window_ms),
        );
        let windows = self.counters.get_or_insert_with(name, BTreeMap::new);
        // Windows long over with nothing held are forgotten (bounded per counter).
        windows.retain(|s, c| *s == start || c.pending > 0 || c.end >= horizon);
        windows.entry(start).or_insert(Counter {
            end,
            used: 0,
            pending: 0,
        })
    }
}
