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
        // One contiguous buffer and one `blake3::hash` call: the same bytes as feeding the
        // fields one by one, without the incremental hasher's set-up on the hot path.
        let mut buf: SmallVec<[u8; 192]> = SmallVec::new();
        buf.extend_from_slice(prev);
        buf.extend_from_slice(&id.0.to_le_bytes());
        buf.extend_from_slice(&time.0.to_le_bytes());
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
        buf.push(tag);
        buf.extend_from_slice(&subject.to_le_bytes());
        buf.extend_from_slice(&wallet.to_le_bytes());
        for leg in legs {
            buf.extend_from_slice(&leg.debit.0.to_le_bytes());
            buf.extend_from_slice(&leg.credit.0.to_le_bytes());
            buf.extend_from_slice(&leg.amount.to_le_bytes());
            buf.push(match leg.kind {
                LegKind::Post => 1,
                LegKind::Hold => 2,
                LegKind::Unhold => 3,
            });
        }
        *blake3::hash(&buf).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain hash is part of the durable format: pin it.
    #[test]
    fn the_hash_of_an_entry_is_stable() {
        let legs = [Leg {
            debit: AccountId(6),
            credit: AccountId(1),
            amount: 700,
            kind: LegKind::Post,
        }];
        let hash = Entry::compute_hash(
            &GENESIS_HASH,
            EntryId(1),
            Timestamp(5),
            EntryKind::Commit { hold: HoldId(3) },
            0,
            &legs,
        );
        let mut reference = blake3::Hasher::new();
        reference.update(&GENESIS_HASH);
        reference.update(&1u64.to_le_bytes());
        reference.update(&5u64.to_le_bytes());
        reference.update(&[3]);
        reference.update(&3u64.to_le_bytes());
        reference.update(&0u32.to_le_bytes());
        reference.update(&6u32.to_le_bytes());
        reference.update(&1u32.to_le_bytes());
        reference.update(&700u64.to_le_bytes());
        reference.update(&[1]);
        assert_eq!(hash, *reference.finalize().as_bytes());
    }
}
