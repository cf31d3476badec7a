//! Journal entries: immutable, balanced, hash-chained.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::types::{AccountId, EntryId, GrantId, HoldId, Timestamp};

/// How a leg moves an amount between its two accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LegKind {
    /// Posted: debit account's `debits_posted` and credit account's `credits_posted` grow.
    Post,
    /// Pending (a hold): `debits_pending` and `credits_pending` grow.
    Hold,
    /// A hold given back (posted or released): the pending totals shrink.
    Unhold,
}

/// One balanced movement of `amount` from `debit` to `credit`. An entry is balanced
/// because each of its legs is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: u64,
    pub kind: LegKind,
}

/// Why an entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    Grant {
        grant: GrantId,
    },
    Hold {
        hold: HoldId,
    },
    /// Resolution of a hold by commit: posts part of it and releases the rest.
    Commit {
        hold: HoldId,
    },
    Release {
        hold: HoldId,
    },
    HoldTimeout {
        hold: HoldId,
    },
    /// Usage above a hold, charged after the hold's commit entry.
    Overage {
        hold: HoldId,
    },
    Debit,
    /// Recorded usage (metering), charged without a hold.
    Usage,
    Expire {
        grant: GrantId,
    },
}

impl EntryKind {
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::Grant { .. } => "grant",
            EntryKind::Hold { .. } => "hold",
            EntryKind::Commit { .. } => "commit",
            EntryKind::Release { .. } => "release",
            EntryKind::HoldTimeout { .. } => "hold_timeout",
            EntryKind::Overage { .. } => "overage",
            EntryKind::Debit => "debit",
            EntryKind::Usage => "usage",
            EntryKind::Expire { .. } => "expire",
        }
    }
}

/// Legs of one entry. Most entries have one or two.
pub type Legs = SmallVec<[Leg; 2]>;

/// 32-byte BLAKE3 hash of an entry and its predecessor's hash.
pub type EntryHash = [u8; 32];

/// The hash the first entry chains from.
pub const GENESIS_HASH: EntryHash = [0; 32];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    pub time: Timestamp,
    pub kind: EntryKind,
    /// Index of the wallet whose accounts the entry moves.
    pub wallet: u32,
    pub legs: Legs,
    pub hash: EntryHash,
}

impl Entry {
    /// The chain hash of an entry with these contents following `prev`.
    /// The encoding is fixed-width little endian, so it never depends on serde.
    pub fn compute_hash(
        prev: &EntryHash,
        id: EntryId,
        time: Timestamp,
        kind: EntryKind,
        wallet: u32,
        legs: &[Leg],
    ) -> EntryHash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(prev);
        hasher.update(&id.0.to_le_bytes());
        hasher.update(&time.0.to_le_bytes());
        let (tag, subject): (u8, u64) = match kind {
            EntryKind::Grant { grant } => (1, grant.0),
            EntryKind::Hold { hold } => (2, hold.0),
            EntryKind::Commit { hold } => (3, hold.0),
            EntryKind::Release { hold } => (4, hold.0),
            EntryKind::HoldTimeout { hold } => (5, hold.0),
            EntryKind::Overage { hold } => (6, hold.0),
            EntryKind::Debit => (7, 0),
            EntryKind::Expire { grant } => (8, grant.0),
            EntryKind::Usage => (9, 0),
        };
        hasher.update(&[tag]);
        hasher.update(&subject.to_le_bytes());
        hasher.update(&wallet.to_le_bytes());
        for leg in legs {
            let kind: u8 = match leg.kind {
                LegKind::Post => 1,
                LegKind::Hold => 2,
                LegKind::Unhold => 3,
            };
            let mut buf = [0u8; 17];
            buf[0..4].copy_from_slice(&leg.debit.0.to_le_bytes());
            buf[4..8].copy_from_slice(&leg.credit.0.to_le_bytes());
            buf[8..16].copy_from_slice(&leg.amount.to_le_bytes());
            buf[16] = kind;
            hasher.update(&buf);
        }
        *hasher.finalize().as_bytes()
    }
}
