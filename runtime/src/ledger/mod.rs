//! The credit ledger: a pure, deterministic double-entry state machine.
//!
//! No I/O, no async, no clock reads: time is an argument of every command. The engine
//! feeds it commands in order; the store makes them durable; replaying the same commands
//! at the same times rebuilds the same state, which `verify` can check from scratch.
//!
//! Chart of accounts, per wallet (one wallet per customer and credit currency):
//!
//! | event                  | debit                | credit               |
//! |------------------------|----------------------|----------------------|
//! | paid grant             | deferred_revenue     | grant                |
//! | promotional grant      | promotional_expense  | grant                |
//! | consume paid credits   | grant                | recognized_revenue   |
//! | consume promotional    | grant                | promotional_consumed |
//! | consume on overdraft   | overdraft            | recognized_revenue   |
//! | grant repays overdraft | grant                | overdraft            |
//! | paid grant expires     | grant                | breakage             |
//! | promotional expires    | grant                | promotional_expense  |
//!
//! Holds are the same legs as consumption, pending instead of posted.

mod account;
mod appended;
mod chunked;
mod command;
mod counters;
mod customers;
mod entry;
mod error;
mod event_ids;
mod fingerprint;
mod image;
mod journal;
mod keys;
mod named;
mod numbered;
mod ops;
mod posting;
mod query;
mod rows;
mod sharded;
mod spare;
mod split;
mod state;
mod types;
mod usage;
mod verify;

pub use account::{Account, AccountKind, Balances, WalletAccounts};
pub use appended::Appended;
pub use command::{Command, CommandResult, Keyed, Outcome};
pub use counters::{Counter, HeldLimit, MAX_COUNTER_BYTES, MAX_LIMITS_PER_REQUEST};
pub use customers::{Customer, MAX_INCLUDED_GRANTS, Subscription};
pub use entry::{Entry, EntryHash, EntryKind, GENESIS_HASH, Leg, LegKind};
pub use error::{HoldResolution, LedgerError};
pub use image::LedgerImage;
pub use journal::{ArchiveChunks, CHUNK_ENTRIES, Chunk, Journal};
pub use query::{EntryRef, GrantBalance, Retained, WalletBalance};
pub use spare::{Fill, SpareFigures, Spares};
pub use state::{
    Fingerprint, Hold, HoldState, Ledger, LedgerConfig, MAX_HOLD_TIMEOUT_MS, MAX_ID_BYTES,
    fingerprint,
};
pub use types::{
    AccountId, Category, CustomerId, DEFAULT_CURRENCY, EntryId, GrantId, GrantSpec, HoldId,
    IncludedGrant, LimitCharge, Measure, OveragePolicy, Price, Timestamp, UsageCharge, WalletRef,
};
pub use usage::MAX_EVENTS_PER_COMMAND;
pub use verify::{VerifyReport, Violation};

#[cfg(test)]
mod tests;
