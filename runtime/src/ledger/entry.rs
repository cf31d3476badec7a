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

/// 32-byte BLAKE3 hash of an entry, keyed with its predecessor's hash.
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
    /// An entry of nothing, owning no memory: what `spare` writes to touch a chunk's pages.
    pub(crate) fn blank() -> Entry {
        Entry {
            id: EntryId(0),
            time: Timestamp(0),
            kind: EntryKind::Debit,
            wallet: 0,
            legs: Legs::new(),
            hash: GENESIS_HASH,
        }
    }

    /// The chain hash of an entry with these contents following `prev`: BLAKE3 in keyed mode
    /// with `prev` as the key, over the entry's fixed-width little-endian encoding (so it
    /// never depends on serde). Keying with `prev` rather than hashing it as input keeps an
    /// entry of up to two legs within one 64-byte BLAKE3 block: one compression per entry.
    pub fn compute_hash(
        prev: &EntryHash,
        id: EntryId,
        time: Timestamp,
        kind: EntryKind,
        wallet: u32,
        legs: &[Leg],
    ) -> EntryHash {
        // One contiguous buffer and one `blake3::keyed_hash` call: the same bytes as feeding
        // the fields one by one, without the incremental hasher's set-up on the hot path.
        const HEAD: usize = 8 + 8 + 1 + 8 + 4;
        const LEG: usize = 4 + 4 + 8 + 1;
        const INLINE_LEGS: usize = 8;
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
        let encode = |buf: &mut [u8]| {
            buf[0..8].copy_from_slice(&id.0.to_le_bytes());
            buf[8..16].copy_from_slice(&time.0.to_le_bytes());
            buf[16] = tag;
            buf[17..25].copy_from_slice(&subject.to_le_bytes());
            buf[25..HEAD].copy_from_slice(&wallet.to_le_bytes());
            for (leg, out) in legs.iter().zip(buf[HEAD..].chunks_exact_mut(LEG)) {
                out[0..4].copy_from_slice(&leg.debit.0.to_le_bytes());
                out[4..8].copy_from_slice(&leg.credit.0.to_le_bytes());
                out[8..16].copy_from_slice(&leg.amount.to_le_bytes());
                out[16] = match leg.kind {
                    LegKind::Post => 1,
                    LegKind::Hold => 2,
                    LegKind::Unhold => 3,
                };
            }
        };
        let len = HEAD + LEG * legs.len();
        if legs.len() <= 2 {
            // Most entries: one 64-byte block, so no more than that is zeroed.
            let mut buf = [0u8; HEAD + LEG * 2];
            encode(&mut buf[..len]);
            *blake3::keyed_hash(prev, &buf[..len]).as_bytes()
        } else if legs.len() <= INLINE_LEGS {
            let mut buf = [0u8; HEAD + LEG * INLINE_LEGS];
            encode(&mut buf[..len]);
            *blake3::keyed_hash(prev, &buf[..len]).as_bytes()
        } else {
            let mut buf = vec![0u8; len];
            encode(&mut buf);
            *blake3::keyed_hash(prev, &buf).as_bytes()
        }
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
        let mut reference = blake3::Hasher::new_keyed(&GENESIS_HASH);
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

    /// Entries of any number of legs (inline buffer or not) hash their fields in order.
    #[test]
    fn every_leg_count_hashes_the_fields_in_order() {
        for count in [0usize, 1, 2, 7, 8, 9, 40] {
            let legs: Vec<Leg> = (0..count as u32)
                .map(|i| Leg {
                    debit: AccountId(i),
                    credit: AccountId(i + 100),
                    amount: u64::from(i) * 1_000 + 7,
                    kind: [LegKind::Post, LegKind::Hold, LegKind::Unhold][i as usize % 3],
                })
                .collect();
            let prev = [count as u8; 32];
            let hash =
                Entry::compute_hash(&prev, EntryId(9), Timestamp(11), EntryKind::Usage, 3, &legs);
            let mut reference = blake3::Hasher::new_keyed(&prev);
            reference.update(&9u64.to_le_bytes());
            reference.update(&11u64.to_le_bytes());
            reference.update(&[9]);
            reference.update(&0u64.to_le_bytes());
            reference.update(&3u32.to_le_bytes());
            for leg in &legs {
                reference.update(&leg.debit.0.to_le_bytes());
                reference.update(&leg.credit.0.to_le_bytes());
                reference.update(&leg.amount.to_le_bytes());
                reference.update(&[leg.kind as u8 + 1]);
            }
            assert_eq!(hash, *reference.finalize().as_bytes(), "{count} legs");
        }
    }
}
