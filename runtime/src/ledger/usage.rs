//! Recording usage that has happened: deduplicated by event id, charged, counted.

use super::command::{CommandResult, Outcome};
use super::entry::EntryKind;
use super::error::LedgerError;
use super::state::{Ledger, validate_id};
use super::types::{UsageCharge, WalletRef};

/// Most events one `RecordUsage` command carries (bounds the log record).
pub const MAX_EVENTS_PER_COMMAND: usize = 10_000;

impl Ledger {
    pub(crate) fn record_usage(
        &mut self,
        wallet: &WalletRef,
        events: &[UsageCharge],
    ) -> CommandResult {
        if events.is_empty() || events.len() > MAX_EVENTS_PER_COMMAND {
            return Err(LedgerError::invalid(
                "events",
                events.len(),
                "must hold 1 to 10000 events",
            ));
        }
        for event in events {
            validate_id("events.event_id", &event.event_id)?;
            super::counters::validate(&event.counters)?;
        }
        let index =
            self.wallet_index
                .get(wallet)
                .copied()
                .ok_or_else(|| LedgerError::UnknownWallet {
                    wallet: wallet.clone(),
                })?;
        let customer = &wallet.customer;
        let mut fresh = Vec::with_capacity(events.len());
        let mut batch_ids = std::collections::HashSet::with_capacity(events.len());
        let mut credits: u64 = 0;
        for event in events {
            let seen = self
                .seen_events
                .get(customer)
                .is_some_and(|s| s.contains(&event.event_id));
            if seen || !batch_ids.insert(event.event_id.as_str()) {
                continue;
            }
            credits = credits
                .checked_add(event.credits)
                .ok_or_else(|| LedgerError::overflow("credits of the usage events"))?;
            fresh.push(event);
        }
        let duplicates = (events.len() - fresh.len()) as u32;
        let (legs, charged) = self.charge_legs(index, credits);
        let entry = if charged > 0 {
            Some(self.post(index, &mut [(EntryKind::Usage, legs)])?[0])
        } else {
            None
        };
        let now = self.time;
        for event in &fresh {
            for counter in &event.counters {
                self.count(counter);
            }
            self.seen_events
                .get_or_default(customer.clone())
                .insert(event.event_id.clone());
            self.forget_events
                .push_back((now, customer.clone(), event.event_id.clone()));
        }
        Ok(Outcome::UsageRecorded {
            entry,
            accepted: fresh.len() as u32,
            duplicates,
            credits_posted: charged,
            unbilled: credits - charged,
        })
    }
}
