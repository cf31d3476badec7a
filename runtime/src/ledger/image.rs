//! The ledger's encoding, and the image a snapshot encodes without holding the ledger.
//!
//! Encoding a partition's ledger takes about a second per 450 MB, and every call of the
//! partition used to wait it out (BENCHMARKS.md, sessions 13 and 14). Now the writer takes an
//! *image* with the ledger held, and encodes it on a thread of its own while the partition
//! goes on. The image costs little to take because what grows with traffic is kept in
//! shared chunks that a clone does not copy (`Numbered`, `ChunkedDeque`, `Appended`, the
//! journal's sealed chunks); the ledger copies a chunk only when it changes one the image still
//! holds. The two hash indexes that grow with traffic are not taken at all: each is
//! rebuilt, in the encoding, from the queue it indexes (`keys` from `answers`,
//! `seen_events` from `forget_events`), which hold exactly the same pairs (`verify` checks).
//!
//! The encoding is the one the ledger always had (snapshot format 3): the indexes are
//! written as maps of the same shape, so a snapshot reads back as before.

use std::collections::{BTreeMap, BTreeSet};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::state::{Ledger, Map};

/// A snapshot's image of a ledger: encodes exactly as the ledger it was taken from did at
/// that moment, and can be encoded on another thread while the ledger changes.
pub struct LedgerImage(Ledger);

impl Serialize for LedgerImage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Ledger {
    /// The image a snapshot encodes. Costs a reference per shared chunk, and a copy of the
    /// rest, which grows with neither calls nor customers: the plans' subscriber counts, the
    /// hold timeouts (open holds) and the journal's open chunk.
    pub fn image(&mut self) -> LedgerImage {
        LedgerImage(Ledger {
            config: self.config,
            time: self.time,
            accounts: self.accounts.share(),
            wallets: self.wallets.share(),
            // Encoded from `wallets`, which hold the same pairs.
            wallet_index: Default::default(),
            grants: self.grants.share(),
            holds: self.holds.clone(),
            journal: self.journal.clone(),
            last_hash: self.last_hash,
            hold_timeouts: self.hold_timeouts.clone(),
            // Encoded from `grants`, which hold the same.
            grant_expiries: BTreeSet::new(),
            // Rebuilt from `answers` and `forget_events` in the encoding.
            keys: super::keys::KeyIndex::default(),
            answers: self.answers.clone(),
            forget_holds: self.forget_holds.clone(),
            counters: self.counters.image(),
            customers: self.customers.image(),
            // Encoded from `customers`' subscriptions, which hold the same.
            grant_schedule: BTreeSet::new(),
            seen_events: Default::default(),
            forget_events: self.forget_events.clone(),
            plan_subscribers: self.plan_subscribers.clone(),
        })
    }
}

/// The ledger's fields in the order `Ledger`'s derived `Deserialize` reads them.
#[derive(Serialize)]
#[serde(rename = "Ledger")]
struct Encoded<'a> {
    config: &'a super::state::LedgerConfig,
    time: &'a super::types::Timestamp,
    accounts: &'a super::rows::Rows<super::account::Account>,
    wallets: &'a super::rows::Rows<super::state::Wallet>,
    wallet_index: WalletIndexOf<'a>,
    grants: &'a super::rows::Rows<super::state::Grant>,
    holds: &'a super::numbered::Numbered<super::state::Hold>,
    journal: &'a super::journal::Journal,
    last_hash: &'a super::entry::EntryHash,
    hold_timeouts: &'a BTreeSet<(super::types::Timestamp, super::types::HoldId)>,
    grant_expiries: Sorted<(super::types::Timestamp, super::types::GrantId)>,
    keys: KeysOf<'a>,
    answers: &'a super::numbered::Numbered<super::state::KeyEntry>,
    forget_holds: &'a super::chunked::ChunkedDeque<(super::types::Timestamp, super::types::HoldId)>,
    counters: &'a super::named::Named<BTreeMap<super::types::Timestamp, super::counters::Counter>>,
    customers: &'a super::named::Named<super::customers::Customer>,
    grant_schedule: Sorted<(super::types::Timestamp, &'a str, u32)>,
    seen_events: SeenOf<'a>,
    forget_events: &'a super::chunked::ChunkedDeque<(super::types::Timestamp, String, String)>,
    plan_subscribers: &'a BTreeMap<String, u64>,
}

/// Encoded from the queues the indexes are built from, never from the indexes themselves:
/// the same bytes for a ledger and its image.
impl Serialize for Ledger {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Encoded {
            config: &self.config,
            time: &self.time,
            accounts: &self.accounts,
            wallets: &self.wallets,
            wallet_index: WalletIndexOf(&self.wallets),
            grants: &self.grants,
            holds: &self.holds,
            journal: &self.journal,
            last_hash: &self.last_hash,
            hold_timeouts: &self.hold_timeouts,
            grant_expiries: Sorted::of(self.expiries_due()),
            keys: KeysOf(&self.answers),
            answers: &self.answers,
            forget_holds: &self.forget_holds,
            counters: &self.counters,
            customers: &self.customers,
            grant_schedule: Sorted::of(self.issues_due()),
            seen_events: SeenOf(&self.forget_events),
            forget_events: &self.forget_events,
            plan_subscribers: &self.plan_subscribers,
        }
        .serialize(serializer)
    }
}

/// A set as `BTreeSet` encodes it (a sequence in order), from items in any order.
struct Sorted<T>(Vec<T>);

impl<T: Ord> Sorted<T> {
    fn of(items: impl Iterator<Item = T>) -> Self {
        let mut items: Vec<T> = items.collect();
        items.sort_unstable();
        Sorted(items)
    }
}

impl<T: Serialize> Serialize for Sorted<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Ledger {
    /// Every grant expiry to come, as `grant_expiries` holds them: the grants not yet
    /// expired that have an expiry (`verify` checks they agree).
    pub(crate) fn expiries_due(
        &self,
    ) -> impl Iterator<Item = (super::types::Timestamp, super::types::GrantId)> + '_ {
        self.grants
            .iter()
            .filter(|g| !g.expired)
            .filter_map(|g| g.spec.expires_at.map(|at| (at, g.id)))
    }

    /// Every included grant to issue, as `grant_schedule` holds them: each subscription's
    /// next issue of each of its grants (`verify` checks they agree).
    pub(crate) fn issues_due(
        &self,
    ) -> impl Iterator<Item = (super::types::Timestamp, &str, u32)> + '_ {
        self.customers.iter().flat_map(|(id, customer)| {
            let next = customer.subscription.iter().flat_map(|s| &s.next_issue);
            next.enumerate().filter_map(move |(index, at)| {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                at.map(|at| (at, id, index))
            })
        })
    }
}

/// The wallet index as `wallets` gives it: each wallet's reference to its position. The
/// layout of `wallet_index` (a map).
struct WalletIndexOf<'a>(&'a super::rows::Rows<super::state::Wallet>);

impl Serialize for WalletIndexOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (index, wallet) in self.0.iter().enumerate() {
            let index = u32::try_from(index).map_err(serde::ser::Error::custom)?;
            map.serialize_entry(&wallet.wallet_ref, &index)?;
        }
        map.end()
    }
}

/// Pairs `grouped` takes between two `background::pause_point`s.
const GROUP_PAUSE_EVERY: usize = 4096;

/// Groups `(group, item)` pairs by group, keeping each group's items in order.
fn grouped<'a, T>(pairs: impl Iterator<Item = (&'a str, T)>) -> Vec<(&'a str, Vec<T>)> {
    let mut at: Map<&'a str, usize> = Map::default();
    let mut groups: Vec<(&'a str, Vec<T>)> = Vec::new();
    for (n, (group, item)) in pairs.enumerate() {
        // Hundreds of milliseconds for a million answers, with no output to pace by.
        if n % GROUP_PAUSE_EVERY == 0 {
            crate::background::pause_point();
        }
        let index = *at.entry(group).or_insert_with(|| {
            groups.push((group, Vec::new()));
            groups.len() - 1
        });
        groups[index].1.push(item);
    }
    groups
}

/// The key index as `answers` gives it: customer, then key, to the answer's number. The
/// layout of `KeyIndex` (a map of maps of strings).
struct KeysOf<'a>(&'a super::numbered::Numbered<super::state::KeyEntry>);

impl Serialize for KeysOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Keys<'a>(&'a [(&'a str, u64)]);
        impl Serialize for Keys<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (key, number) in self.0 {
                    map.serialize_entry(key, number)?;
                }
                map.end()
            }
        }
        let groups = grouped(
            self.0
                .iter_numbered()
                .map(|(number, answer)| (&*answer.customer, (answer.key(), number))),
        );
        let mut map = serializer.serialize_map(Some(groups.len()))?;
        for (customer, keys) in &groups {
            map.serialize_entry(customer, &Keys(keys))?;
        }
        map.end()
    }
}

/// The usage event ids seen, by customer, as `forget_events` gives them. The layout of a
/// map of `EventIds` (each a sequence of ids).
struct SeenOf<'a>(&'a super::chunked::ChunkedDeque<(super::types::Timestamp, String, String)>);

impl Serialize for SeenOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Ids<'a>(&'a [&'a str]);
        impl Serialize for Ids<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for id in self.0 {
                    seq.serialize_element(id)?;
                }
                seq.end()
            }
        }
        let groups = grouped(
            self.0
                .iter()
                .map(|(_, customer, event)| (customer.as_str(), event.as_str())),
        );
        let mut map = serializer.serialize_map(Some(groups.len()))?;
        for (customer, ids) in &groups {
            map.serialize_entry(customer, &Ids(ids))?;
        }
        map.end()
    }
}
