//! The ledger's state and its entry point, `Ledger::apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::appended::Appended;
use super::chunked::ChunkedDeque;
use super::numbered::Numbered;
use super::rows::Rows;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::account::{Account, AccountKind, Balances, WalletAccounts};
use super::command::{Command, CommandResult, Keyed};
use super::entry::{Entry, EntryHash, EntryKind, GENESIS_HASH, Legs};
use super::error::{HoldResolution, LedgerError};
pub use super::fingerprint::{Fingerprint, fingerprint};
use super::types::{
    AccountId, Category, EntryId, GrantId, GrantSpec, HoldId, OveragePolicy, Timestamp, WalletRef,
};

pub(crate) type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;
pub(crate) type Set<T> = HashSet<T, foldhash::quality::RandomState>;

/// Longest accepted idempotency key or customer id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest hold timeout: a hold is for one inference call, not for a day.
pub const MAX_HOLD_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerConfig {
    /// How long the answer to an idempotency key (and a resolved hold) is kept, in ledger
    /// time. Longer than any client's retry horizon; it bounds memory together with the
    /// request rate.
    pub idempotency_window_ms: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            idempotency_window_ms: 24 * 60 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wallet {
    pub wallet_ref: WalletRef,
    pub accounts: WalletAccounts,
    pub overage: OveragePolicy,
    /// Grants not yet expired, in consumption order.
    pub(crate) live_grants: Vec<GrantId>,
    /// Every grant ever made to the wallet, in creation order.
    pub grants: Vec<GrantId>,
    /// Entries that moved this wallet's accounts, in journal order.
    pub entries: Appended<EntryId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub wallet: u32,
    pub account: AccountId,
    pub spec: GrantSpec,
    pub expired: bool,
}

impl Grant {
    /// The deterministic consumption order: priority, earliest expiry (none last),
    /// promotional before paid, then oldest (ids grow with creation time).
    pub(crate) fn consumption_key(&self) -> (u32, u64, Category, GrantId) {
        (
            self.spec.priority,
            self.spec.expires_at.map_or(u64::MAX, |t| t.0),
            self.spec.category,
            self.id,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldState {
    Open,
    Resolved { how: HoldResolution, at: Timestamp },
}

/// A hold. Resolved holds are kept for the idempotency window, one for each Reserve, only to
/// answer late calls about them: what only an open hold needs is in `terms`, let go of when
/// it resolves (56 bytes a resolved hold instead of 136).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "HoldFields", into = "HoldFields")]
pub struct Hold {
    pub id: HoldId,
    pub wallet: u32,
    pub amount: u64,
    pub expires_at: Timestamp,
    pub state: HoldState,
    /// `None` once the hold is resolved.
    pub(crate) terms: Option<Box<HoldTerms>>,
}

/// What an open hold holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct HoldTerms {
    /// How the hold is split across grants, in consumption order.
    pub(crate) parts: SmallVec<[(GrantId, u64); 2]>,
    /// Counters the hold also holds (limits and caps), in the order they were checked.
    pub(crate) limits: Vec<super::counters::HeldLimit>,
    /// The rate the hold was priced at (commits then give units).
    pub(crate) price: Option<super::types::Price>,
}

impl Hold {
    /// How an open hold is split across grants, in consumption order (empty once resolved).
    pub fn parts(&self) -> &[(GrantId, u64)] {
        self.terms.as_ref().map_or(&[], |terms| &terms.parts)
    }

    /// Counters an open hold also holds, in the order they were checked (empty once
    /// resolved).
    pub fn limits(&self) -> &[super::counters::HeldLimit] {
        self.terms.as_ref().map_or(&[], |terms| &terms.limits)
    }

    /// The rate an open hold was priced at.
    pub fn price(&self) -> Option<super::types::Price> {
        self.terms.as_ref().and_then(|terms| terms.price)
    }
}

/// A hold as snapshots encode it (the layout from before `HoldTerms`, so snapshots of either
/// read the same). A resolved hold decodes without its terms, whatever they held.
#[derive(Serialize, Deserialize)]
struct HoldFields {
    id: HoldId,
    wallet: u32,
    amount: u64,
    parts: SmallVec<[(GrantId, u64); 2]>,
    expires_at: Timestamp,
    state: HoldState,
    limits: Vec<super::counters::HeldLimit>,
    price: Option<super::types::Price>,
}

impl From<HoldFields> for Hold {
    fn from(fields: HoldFields) -> Hold {
        let terms = (fields.state == HoldState::Open).then(|| {
            Box::new(HoldTerms {
                parts: fields.parts,
                limits: fields.limits,
                price: fields.price,
            })
        });
        Hold {
            id: fields.id,
            wallet: fields.wallet,
            amount: fields.amount,
            expires_at: fields.expires_at,
            state: fields.state,
            terms,
        }
    }
}

impl From<Hold> for HoldFields {
    fn from(hold: Hold) -> HoldFields {
        let terms = hold.terms.map(|terms| *terms).unwrap_or_default();
        HoldFields {
            id: hold.id,
            wallet: hold.wallet,
            amount: hold.amount,
            parts: terms.parts,
            expires_at: hold.expires_at,
            state: hold.state,
            limits: terms.limits,
            price: terms.price,
        }
    }
}

/// The answer kept for an idempotency key, for the idempotency window. 56 bytes and one
/// allocation holding the key and the answer encoded (about 60 bytes for a Reserve's), where
/// the key and the decoded answer took 128 and one more (BENCHMARKS.md, session 22).
/// Snapshots encode it as the fields of `KeyEntryFields`, as before.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "KeyEntryFields")]
pub(crate) struct KeyEntry {
    pub(crate) at: Timestamp,
    pub(crate) customer: Arc<str>,
    /// 128-bit fingerprint of the command's encoding (or of the client's request): a
    /// retry must match it.
    /// (Storing the command itself would cost several allocations per request.)
    pub(crate) fingerprint: Fingerprint,
    /// The key's length (one byte: keys are at most `MAX_ID_BYTES`), the key, then the
    /// answer in postcard.
    stored: Box<[u8]>,
}

impl KeyEntry {
    pub(crate) fn new(
        at: Timestamp,
        customer: Arc<str>,
        key: &str,
        fingerprint: Fingerprint,
        result: &CommandResult,
    ) -> KeyEntry {
        let Ok(length) = u8::try_from(key.len()) else {
            panic!("an idempotency key of {} bytes was kept", key.len());
        };
        // Encoded first, so that the one allocation is exactly as large as it needs (a
        // `Vec` shrunk into a box can keep the larger block).
        let mut buffer = [0u8; 96];
        let spilled;
        let answer: &[u8] = match postcard::to_slice(result, &mut buffer) {
            Ok(encoded) => encoded,
            Err(_) => match postcard::to_allocvec(result) {
                Ok(encoded) => {
                    spilled = encoded;
                    &spilled
                }
                Err(error) => panic!("an answer did not encode: {error}"),
            },
        };
        let mut stored = Vec::with_capacity(1 + key.len() + answer.len());
        stored.push(length);
        stored.extend_from_slice(key.as_bytes());
        stored.extend_from_slice(answer);
        KeyEntry {
            at,
            customer,
            fingerprint,
            stored: stored.into_boxed_slice(),
        }
    }

    /// The idempotency key.
    pub(crate) fn key(&self) -> &str {
        let end = 1 + usize::from(self.stored[0]);
        match std::str::from_utf8(&self.stored[1..end]) {
            Ok(key) => key,
            Err(error) => panic!("a kept idempotency key is not the text it was: {error}"),
        }
    }

    /// The answer, decoded.
    pub(crate) fn result(&self) -> CommandResult {
        let start = 1 + usize::from(self.stored[0]);
        match postcard::from_bytes(&self.stored[start..]) {
            Ok(result) => result,
            Err(error) => panic!("a kept answer does not decode: {error}"),
        }
    }
}

/// A kept answer as snapshots encode it.
#[derive(Serialize, Deserialize)]
struct KeyEntryFields {
    at: Timestamp,
    customer: Arc<str>,
    key: String,
    record: KeyRecord,
}

/// The record of a kept answer: the answer decoded (as snapshots are read), or as
/// `KeyEntry` serializes it (`Answer`).
#[derive(Serialize, Deserialize)]
struct KeyRecord<R = CommandResult> {
    fingerprint: Fingerprint,
    result: R,
}

impl From<KeyEntryFields> for KeyEntry {
    fn from(fields: KeyEntryFields) -> KeyEntry {
        KeyEntry::new(
            fields.at,
            fields.customer,
            &fields.key,
            fields.record.fingerprint,
            &fields.record.result,
        )
    }
}

impl Serialize for KeyEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fields<'a, R> {
            at: Timestamp,
            customer: &'a str,
            key: &'a str,
            record: KeyRecord<R>,
        }
        let fields = |result| Fields {
            at: self.at,
            customer: &self.customer,
            key: self.key(),
            record: KeyRecord {
                fingerprint: self.fingerprint,
                result,
            },
        };
        if serializer.is_human_readable() {
            return fields(Answer::Decoded(self.result())).serialize(serializer);
        }
        let start = 1 + usize::from(self.stored[0]);
        fields(Answer::Encoded(&self.stored[start..])).serialize(serializer)
    }
}

/// A kept answer as `KeyEntry` serializes it: decoded, for a human-readable format; or, for
/// postcard (every binary format Tollgate encodes with), the bytes it keeps, written as
/// they are. Postcard writes a tuple's elements one after another with no length, and a
/// `u8` as that byte, so they come out as `CommandResult` would encode, without decoding
/// each answer first: a snapshot of 418-420 MB encoded in 1,265 ms instead of 1,405 ms
/// (BENCHMARKS.md, session 24).
enum Answer<'a> {
    Decoded(CommandResult),
    Encoded(&'a [u8]),
}

impl Serialize for Answer<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self {
            Answer::Decoded(result) => result.serialize(serializer),
            Answer::Encoded(bytes) => {
                let mut tuple = serializer.serialize_tuple(bytes.len())?;
                for byte in *bytes {
                    tuple.serialize_element(byte)?;
                }
                tuple.end()
            }
        }
    }
}

/// The whole ledger of one partition. Pure and deterministic: the same commands at the
/// same times give the same state, byte for byte. Encoded by `image.rs`.
#[derive(Debug, Clone, Deserialize)]
pub struct Ledger {
    pub(crate) config: LedgerConfig,
    pub(crate) time: Timestamp,
    pub(crate) accounts: Rows<Account>,
    pub(crate) wallets: Rows<Wallet>,
    pub(crate) wallet_index: super::sharded::Sharded<WalletRef, u32>,
    /// `grants[i]` has id `i + 1`.
    pub(crate) grants: Rows<Grant>,
    /// Holds by id (ids are consecutive from 1).
    pub(crate) holds: Numbered<Hold>,
    pub(crate) journal: super::journal::Journal,
    pub(crate) last_hash: EntryHash,
    pub(crate) hold_timeouts: BTreeSet<(Timestamp, HoldId)>,
    pub(crate) grant_expiries: BTreeSet<(Timestamp, GrantId)>,
    /// Answers by customer and idempotency key.
    pub(crate) keys: super::keys::KeyIndex,
    /// Answers in the order they were given; `keys` holds their numbers.
    pub(crate) answers: Numbered<KeyEntry>,
    /// Keys and resolved holds in the order they can be forgotten.
    pub(crate) forget_holds: ChunkedDeque<(Timestamp, HoldId)>,
    /// Usage and spend counters by name, then window start.
    pub(crate) counters: super::named::Named<BTreeMap<Timestamp, super::counters::Counter>>,
    pub(crate) customers: super::named::Named<super::customers::Customer>,
    /// Included grants due: (time, customer, index in the subscription).
    pub(crate) grant_schedule: BTreeSet<(Timestamp, String, u32)>,
    /// Usage event ids seen, by customer, and the order they can be forgotten in.
    pub(crate) seen_events: super::sharded::Sharded<String, super::event_ids::EventIds>,
    pub(crate) forget_events: ChunkedDeque<(Timestamp, String, String)>,
    /// Customers subscribed to each plan (kept as subscriptions change; `verify` recounts).
    pub(crate) plan_subscribers: BTreeMap<String, u64>,
}

impl Ledger {
    pub fn new(config: LedgerConfig) -> Self {
        Ledger {
            config,
            time: Timestamp(0),
            accounts: Rows::new(),
            wallets: Rows::new(),
            wallet_index: Default::default(),
            grants: Rows::new(),
            holds: Numbered::starting_at(1),
            journal: super::journal::Journal::default(),
            last_hash: GENESIS_HASH,
            hold_timeouts: BTreeSet::new(),
            grant_expiries: BTreeSet::new(),
            keys: super::keys::KeyIndex::default(),
            answers: Numbered::starting_at(0),
            forget_holds: ChunkedDeque::new(),
            counters: Default::default(),
            customers: Default::default(),
            grant_schedule: BTreeSet::new(),
            seen_events: Default::default(),
            forget_events: ChunkedDeque::new(),
            plan_subscribers: BTreeMap::new(),
        }
    }

    /// Takes the chunks its journal, holds and answers grow by from `spares`, touched ahead
    /// of need, and gives the ones it frees back there (`spare`).
    pub fn use_spares(&mut self, spares: &super::spare::Spares) {
        self.journal.spares = Some(spares.entries.clone());
        self.holds.spares = Some(spares.holds.clone());
        self.answers.spares = Some(spares.answers.clone());
    }

    /// Current ledger time.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Hash of the last journal entry (the chain head); equal ledgers have equal heads.
    pub fn chain_head(&self) -> EntryHash {
        self.last_hash
    }

    /// Applies one keyed command at time `now`.
    ///
    /// Same key and same command: the stored answer, no second effect. Same key with a
    /// different command: `IdempotencyConflict`. Answers, errors included, are kept for
    /// `idempotency_window_ms` of ledger time.
    pub fn apply(&mut self, now: Timestamp, request: &Keyed) -> CommandResult {
        self.advance(now);
        validate_id("customer", &request.customer)?;
        validate_id("idempotency_key", &request.key)?;
        let hash = super::keys::hash_key(&request.customer, &request.key);
        let known = self
            .answer_number(hash, &request.customer, &request.key)
            .and_then(|number| self.answers.get(number));
        let fingerprint = match &request.command {
            Command::Reserve {
                request: Some(client),
                ..
            }
            | Command::Subscribe {
                request: Some(client),
                ..
            }
            | Command::SubscribeChange {
                request: Some(client),
                ..
            } => *client,
            command => fingerprint(command),
        };
        if let Some(entry) = known {
            if entry.fingerprint == fingerprint {
                return entry.result();
            }
            return Err(LedgerError::IdempotencyConflict {
                key: request.key.clone(),
            });
        }
        let result = self.execute(&request.customer, &request.command);
        let number = self.answers.next_number();
        // The customer's name is shared by all of its answers kept.
        let customer = self.keys.insert(hash, number, &request.customer);
        let pushed = self.answers.push(KeyEntry::new(
            self.time,
            customer,
            &request.key,
            fingerprint,
            &result,
        ));
        debug_assert_eq!(pushed, number);
        result
    }

    /// The number of the answer kept for `customer`'s `key`, whose hash (`keys::hash_key`) is
    /// `hash`: the first the index finds.
    pub(crate) fn answer_number(&self, hash: u64, customer: &str, key: &str) -> Option<u64> {
        self.keys.find(hash, |number| {
            self.answers
                .get(number)
                .is_some_and(|answer| *answer.customer == *customer && answer.key() == key)
        })
    }

    /// Makes a decoded ledger share its customers' names as one built by `apply` does: each
    /// customer's name with all of that customer's answers (the key index keeps it).
    /// Decoding gives every answer its own copy, which made a restarted partition half as
    /// large again as the one that wrote the snapshot (BENCHMARKS.md, session 14).
    pub(crate) fn share_names(&mut self) {
        for answer in self.answers.iter_mut() {
            if let Some(name) = self.keys.name(&answer.customer) {
                answer.customer = name.clone();
            }
        }
    }

    /// Whether a hold timeout or grant expiry is due at `now`.
    pub fn has_due(&self, now: Timestamp) -> bool {
        self.next_due(now).is_some()
    }

    /// Replaces the configuration (a snapshot keeps the one it was taken with).
    pub fn set_config(&mut self, config: LedgerConfig) {
        self.config = config;
    }

    pub fn config(&self) -> LedgerConfig {
        self.config
    }

    /// Moves ledger time to `now` (never backwards), resolving every hold timeout and
    /// grant expiry due by then, in time order (at equal times, holds first).
    /// Each resolution is journalled at its own due time, so journal times never decrease.
    pub fn advance(&mut self, now: Timestamp) {
        let now = now.max(self.time);
        while let Some(due) = self.next_due(now) {
            match due {
                Due::Hold(hold, at) => {
                    self.time = self.time.max(at);
                    self.time_out_hold(hold);
                }
                Due::Grant(grant, at) => {
                    self.time = self.time.max(at);
                    self.expire_grant(grant);
                }
                Due::Issue(customer, index, at) => {
                    self.time = self.time.max(at);
                    self.grant_schedule.remove(&(at, customer.clone(), index));
                    self.issue_included(&customer, index);
                }
            }
        }
        self.time = now;
        self.forget_before(now);
    }

    /// The earliest event due by `now`: hold timeouts, then grant expiries, then included
    /// grants, at equal times (so a period's grant expires before the next is issued).
    fn next_due(&self, now: Timestamp) -> Option<Due> {
        let hold = self.hold_timeouts.first().filter(|(t, _)| *t <= now);
        let grant = self.grant_expiries.first().filter(|(t, _)| *t <= now);
        let issue = self.grant_schedule.first().filter(|(t, _, _)| *t <= now);
        let mut best: Option<(Timestamp, u8)> = None;
        for (t, rank) in [
            (hold.map(|h| h.0), 0u8),
            (grant.map(|g| g.0), 1),
            (issue.map(|i| i.0), 2),
        ] {
            if let Some(t) = t
                && best.is_none_or(|b| (t, rank) < b)
            {
                best = Some((t, rank));
            }
        }
        match best? {
            (_, 0) => hold.map(|&(t, h)| Due::Hold(h, t)),
            (_, 1) => grant.map(|&(t, g)| Due::Grant(g, t)),
            _ => issue.map(|(t, c, i)| Due::Issue(c.clone(), *i, *t)),
        }
    }

    fn forget_before(&mut self, now: Timestamp) {
        let horizon = now.0.saturating_sub(self.config.idempotency_window_ms);
        while let Some(entry) = self.answers.front() {
            if entry.at.0 >= horizon {
                break;
            }
            let number = self.answers.front_number();
            if let Some(entry) = self.answers.pop_front() {
                let hash = super::keys::hash_key(&entry.customer, entry.key());
                self.keys.remove(hash, number, &entry.customer);
            }
        }
        while let Some((t, _, _)) = self.forget_events.front() {
            if t.0 >= horizon {
                break;
            }
            if let Some((_, customer, event)) = self.forget_events.pop_front()
                && let Some(seen) = self.seen_events.get_mut(&customer)
            {
                seen.remove(&event);
                if seen.is_empty() {
                    self.seen_events.remove(&customer);
                }
            }
        }
        while let Some((t, hold)) = self.forget_holds.front().copied() {
            if t.0 >= horizon {
                break;
            }
            self.forget_holds.pop_front();
            self.holds.remove(hold.0);
        }
    }

    fn execute(&mut self, customer: &str, command: &Command) -> CommandResult {
        match command {
            Command::OpenWallet { wallet, overage } => {
                check_owner(customer, wallet)?;
                self.open_wallet(wallet, Some(*overage));
                Ok(super::command::Outcome::WalletOpened)
            }
            Command::Grant { wallet, grant } => {
                check_owner(customer, wallet)?;
                self.grant(wallet, grant)
            }
            Command::Reserve {
                wallet,
                amount,
                timeout_ms,
                limits,
                price,
                ..
            } => {
                check_owner(customer, wallet)?;
                self.reserve(wallet, *amount, *timeout_ms, limits, *price)
            }
            Command::Commit {
                hold,
                amount,
                units,
            } => self.commit(customer, *hold, *amount, *units),
            Command::Release { hold } => self.release(customer, *hold),
            Command::Debit { wallet, amount } => {
                check_owner(customer, wallet)?;
                self.debit(wallet, *amount)
            }
            Command::UpsertCustomer { display_name } => {
                self.upsert_customer(customer, display_name)
            }
            Command::Subscribe {
                plan,
                since,
                overage,
                included,
                ..
            } => self.subscribe(customer, plan, *since, *overage, included),
            Command::RecordUsage { wallet, events } => {
                check_owner(customer, wallet)?;
                self.record_usage(wallet, events)
            }
            Command::SubscribeChange {
                plan,
                since,
                overage,
                included,
                ..
            } => match self.unchanged_subscription(customer, plan, *since, included) {
                Some(outcome) => {
                    // The catalog's overage policy may have changed: it applies, as on any
                    // Subscribe, without the plan's grants being issued again.
                    self.open_wallet(
                        &WalletRef::new(customer, super::types::DEFAULT_CURRENCY),
                        Some(*overage),
                    );
                    Ok(outcome)
                }
                None => self.subscribe(customer, plan, *since, *overage, included),
            },
        }
    }

    /// Returns the wallet's index, creating the wallet and its fixed accounts if needed.
    pub(crate) fn open_wallet(
        &mut self,
        wallet: &WalletRef,
        overage: Option<OveragePolicy>,
    ) -> u32 {
        if let Some(&index) = self.wallet_index.get(wallet) {
            if let Some(policy) = overage {
                self.wallets[index as usize].overage = policy;
            }
            return index;
        }
        let index = u32::try_from(self.wallets.len()).unwrap_or(u32::MAX);
        assert!(index < u32::MAX, "wallet table full");
        let mut account = |kind| self.new_account(index, kind);
        let accounts = WalletAccounts {
            deferred_revenue: account(AccountKind::DeferredRevenue),
            recognized_revenue: account(AccountKind::RecognizedRevenue),
            breakage: account(AccountKind::Breakage),
            promotional_expense: account(AccountKind::PromotionalExpense),
            promotional_consumed: account(AccountKind::PromotionalConsumed),
            overdraft: account(AccountKind::Overdraft),
        };
        self.wallets.push(Wallet {
            wallet_ref: wallet.clone(),
            accounts,
            overage: overage.unwrap_or_default(),
            live_grants: Vec::new(),
            grants: Vec::new(),
            entries: Default::default(),
        });
        self.wallet_index.insert(wallet.clone(), index);
        index
    }

    pub(crate) fn new_account(&mut self, wallet: u32, kind: AccountKind) -> AccountId {
        let id = AccountId(u32::try_from(self.accounts.len()).unwrap_or(u32::MAX));
        assert!(id.0 < u32::MAX, "account table full");
        self.accounts.push(Account {
            id,
            wallet,
            kind,
            balances: Balances::default(),
        });
        id
    }

    /// Appends balanced entries for one command, all or nothing: every leg of every entry
    /// is applied first, and nothing changes if any would overflow.
    pub(crate) fn post(
        &mut self,
        wallet: u32,
        entries: &mut [(EntryKind, Legs)],
    ) -> Result<SmallVec<[EntryId; 2]>, LedgerError> {
        super::posting::post_legs(
            &mut self.accounts,
            entries.iter().flat_map(|(_, legs)| legs.iter()),
        )?;
        let mut ids = SmallVec::new();
        // The legs move into the journal: `entries` is left with empty leg lists.
        for (kind, legs) in entries.iter_mut() {
            let id = EntryId(self.journal.len() as u64 + 1);
            let hash = Entry::compute_hash(&self.last_hash, id, self.time, *kind, wallet, legs);
            self.journal.push(Entry {
                id,
                time: self.time,
                kind: *kind,
                wallet,
                legs: std::mem::take(legs),
                hash,
            });
            self.last_hash = hash;
            self.wallets[wallet as usize].entries.push(id);
            ids.push(id);
        }
        Ok(ids)
    }

    pub(crate) fn grant_ref(&self, id: GrantId) -> &Grant {
        &self.grants[(id.0 - 1) as usize]
    }

    pub(crate) fn grant_mut(&mut self, id: GrantId) -> &mut Grant {
        &mut self.grants[(id.0 - 1) as usize]
    }

    /// The account consumption of this grant's credits is credited to.
    pub(crate) fn consumption_sink(&self, grant: &Grant) -> AccountId {
        let accounts = &self.wallets[grant.wallet as usize].accounts;
        match grant.spec.category {
            Category::Paid => accounts.recognized_revenue,
            Category::Promotional => accounts.promotional_consumed,
        }
    }

    /// The account expiry of this grant's credits is credited to.
    pub(crate) fn expiry_sink(&self, grant: &Grant) -> AccountId {
        let accounts = &self.wallets[grant.wallet as usize].accounts;
        match grant.spec.category {
            Category::Paid => accounts.breakage,
            Category::Promotional => accounts.promotional_expense,
        }
    }

    /// Resolves open hold `hold` as `how` at the ledger's time: its counters give back what
    /// it held and count `credits` or `units` (`resolve_limits`), and the hold lets go of
    /// its terms, which no late call about a resolved hold reads.
    pub(crate) fn resolve_hold(
        &mut self,
        hold: HoldId,
        how: HoldResolution,
        credits: u64,
        units: u64,
    ) {
        let now = self.time;
        let Some(h) = self.holds.get_mut(hold.0) else {
            panic!("hold {} resolved without its table entry", hold.0);
        };
        assert_eq!(h.state, HoldState::Open, "hold {} resolved twice", hold.0);
        h.state = HoldState::Resolved { how, at: now };
        let terms = h.terms.take().unwrap_or_default();
        self.hold_timeouts.remove(&(h.expires_at, hold));
        self.forget_holds.push_back((now, hold));
        self.resolve_limits(&terms.limits, credits, units);
    }
}

enum Due {
    Hold(HoldId, Timestamp),
    Grant(GrantId, Timestamp),
    Issue(String, u32, Timestamp),
}

pub(crate) fn validate_id(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() {
        return Err(LedgerError::invalid(field, "\"\"", "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(LedgerError::invalid(
            field,
            value.len(),
            "longer than 128 bytes",
        ));
    }
    Ok(())
}

fn check_owner(customer: &str, wallet: &WalletRef) -> Result<(), LedgerError> {
    validate_id("wallet.currency", &wallet.currency)?;
    if wallet.customer != customer {
        return Err(LedgerError::invalid(
            "wallet.customer",
            &wallet.customer,
            "must be the customer the request is made for",
        ));
    }
    Ok(())
}
