//! Items as DynamoDB sees them: attribute names, and pure conversions between items and
//! the store's records. Key attribute names come from tables.json (`Schema`).

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Owner epoch that wrote the item (journal, checkpoints) or holds the lease (leases).
pub(crate) const EPOCH: &str = "epoch";
/// Journal item kind: `KIND_BATCH` or `KIND_FENCE`.
pub(crate) const KIND: &str = "kind";
pub(crate) const KIND_BATCH: &str = "b";
pub(crate) const KIND_FENCE: &str = "f";
/// The engine's batch seq (journal) or checkpoint's journal slot (checkpoints).
pub(crate) const BATCH: &str = "batch";
pub(crate) const SLOT: &str = "slot";
/// How many items the record spans (journal batch, checkpoint).
pub(crate) const CHUNKS: &str = "chunks";
/// BLAKE3 of the whole record's bytes.
pub(crate) const DIGEST: &str = "digest";
pub(crate) const BODY: &str = "body";
pub(crate) const BYTES: &str = "bytes";
/// Checkpoint chunks per hash key (absent: all under one, as written before it existed).
pub(crate) const PER_KEY: &str = "per_key";
/// A journal archive piece: the entries before its first.
pub(crate) const FIRST: &str = "first";
/// The journal archive's mark: entries `1..=archived` are written.
pub(crate) const ARCHIVED: &str = "archived";
/// An upload intent's checkpoint seq (its range key packs seq and epoch).
pub(crate) const INTENT_SEQ: &str = "intent_seq";
/// Lease attributes.
pub(crate) const OWNER: &str = "owner";
pub(crate) const INCARNATION: &str = "incarnation";
pub(crate) const ACQUIRED_AT_MS: &str = "acquired_at_ms";

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn b(value: impl Into<Vec<u8>>) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

pub(crate) fn get_u64(item: &Item, name: &str) -> Result<u64, String> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| format!("attribute {name} is not a u64: {v}")),
        _ => Err(format!("attribute {name} is missing or not a number")),
    }
}

pub(crate) fn get_str<'a>(item: &'a Item, name: &str) -> Result<&'a str, String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(format!("attribute {name} is missing or not a string")),
    }
}

pub(crate) fn get_bytes<'a>(item: &'a Item, name: &str) -> Result<&'a [u8], String> {
    match item.get(name) {
        Some(AttributeValue::B(v)) => Ok(v.as_ref()),
        _ => Err(format!("attribute {name} is missing or not binary")),
    }
}

pub(crate) fn digest_of(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Splits `bytes` into slices of at most `chunk` bytes; always at least one (maybe empty).
pub(crate) fn split(bytes: &[u8], chunk: usize) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(chunk).collect()
}

/// The hash key of the items that continue record `n` of a partition (journal batch
/// continuations, checkpoint chunks): `<partition>#<tag><n>`. Partition names cannot
/// contain `#`, so these never collide with a partition's own key.
pub(crate) fn sub_key(partition: &str, tag: char, n: u64, epoch: Option<u64>) -> String {
    match epoch {
        Some(epoch) => format!("{partition}#{tag}{n}#e{epoch}"),
        None => format!("{partition}#{tag}{n}"),
    }
}

/// What the store keeps in one journal slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JournalRecord {
    /// An engine batch; `body` is its first chunk, the others are continuation items.
    Batch {
        slot: u64,
        epoch: u64,
        batch_seq: u64,
        chunks: u64,
        digest: [u8; 32],
        body: Vec<u8>,
    },
    /// Written by a new owner after the tail it recovered: every later write of an older
    /// owner lands on an occupied slot and fails.
    Fence { slot: u64, epoch: u64 },
}

impl JournalRecord {
    pub(crate) fn epoch(&self) -> u64 {
        match self {
            JournalRecord::Batch { epoch, .. } | JournalRecord::Fence { epoch, .. } => *epoch,
        }
    }

    pub(crate) fn slot(&self) -> u64 {
        match self {
            JournalRecord::Batch { slot, .. } | JournalRecord::Fence { slot, .. } => *slot,
        }
    }

    pub(crate) fn to_item(&self, pk: &str, seq: &str, partition: &str) -> Item {
        let mut item = Item::new();
        item.insert(pk.to_string(), s(partition));
        item.insert(seq.to_string(), n(self.slot()));
        item.insert(EPOCH.into(), n(self.epoch()));
        match self {
            JournalRecord::Batch {
                batch_seq,
                chunks,
                digest,
                body,
                ..
            } => {
                item.insert(KIND.into(), s(KIND_BATCH));
                item.insert(BATCH.into(), n(*batch_seq));
                item.insert(CHUNKS.into(), n(*chunks));
                item.insert(DIGEST.into(), b(digest.to_vec()));
                item.insert(BODY.into(), b(body.clone()));
            }
            JournalRecord::Fence { .. } => {
                item.insert(KIND.into(), s(KIND_FENCE));
            }
        }
        item
    }

    pub(crate) fn from_item(item: &Item, seq: &str) -> Result<JournalRecord, String> {
        let slot = get_u64(item, seq)?;
        let epoch = get_u64(item, EPOCH)?;
        match get_str(item, KIND)? {
            KIND_FENCE => Ok(JournalRecord::Fence { slot, epoch }),
            KIND_BATCH => {
                let digest = get_bytes(item, DIGEST)?
                    .try_into()
                    .map_err(|_| "digest is not 32 bytes".to_string())?;
                Ok(JournalRecord::Batch {
                    slot,
                    epoch,
                    batch_seq: get_u64(item, BATCH)?,
                    chunks: get_u64(item, CHUNKS)?,
                    digest,
                    body: get_bytes(item, BODY)?.to_vec(),
                })
            }
            other => Err(format!("unknown journal item kind {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_records_round_trip_through_items() {
        let records = [
            JournalRecord::Batch {
                slot: 7,
                epoch: 3,
                batch_seq: 5,
                chunks: 2,
                digest: [9; 32],
                body: vec![1, 2, 3],
            },
            JournalRecord::Fence { slot: 8, epoch: 4 },
        ];
        for record in records {
            let item = record.to_item("pk", "seq", "p0");
            assert_eq!(item.get("pk"), Some(&s("p0")));
            assert_eq!(JournalRecord::from_item(&item, "seq").unwrap(), record);
        }
    }

    #[test]
    fn split_covers_every_byte_in_order() {
        let bytes: Vec<u8> = (0..=255).cycle().take(1000).collect();
        for chunk in [1, 7, 999, 1000, 5000] {
            let parts = split(&bytes, chunk);
            assert!(parts.iter().all(|p| p.len() <= chunk));
            assert_eq!(parts.concat(), bytes);
        }
        assert_eq!(split(&[], 10), vec![&[] as &[u8]]);
    }

    #[test]
    fn sub_keys_never_equal_a_partition_name() {
        let key = sub_key("p-0001", 's', 12, None);
        assert_eq!(key, "p-0001#s12");
        assert!(super::super::config::validate_partition(&key).is_err());
        assert_eq!(sub_key("p", 'c', 3, Some(9)), "p#c3#e9");
    }
}
