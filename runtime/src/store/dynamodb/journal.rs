//! Journal calls: the one conditional write per engine batch, the tail reads of recovery,
//! and reading back a slot when a write collides.

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, WriteRequest,
};

use std::sync::atomic::Ordering;

use super::connection::Shared;
use super::items::{self, Item, JournalRecord};
use super::limits::DYNAMODB_MAX_BATCH_WRITE_ITEMS;
use super::reads;
use super::schema::Schema;
use super::transact::{PutOutcome, put_item_if_absent};
use super::{DynamoError, MAX_CHUNK_BYTES, checkpoint};

/// How a conditional journal write ended.
#[derive(Debug)]
pub(crate) enum Written {
    /// The slot was free and now holds our record.
    Stored,
    /// The slot was taken; this is what holds it (maybe our own earlier attempt).
    Collided(JournalRecord),
}

fn names(shared: &Shared) -> (String, String, String) {
    let journal = &shared.schema.tables.journal;
    (
        shared.schema.name(journal),
        journal.hash_key.name.clone(),
        Schema::range_key(journal).to_string(),
    )
}

/// Writes `record` into its slot if the slot is free: one `PutItem`, or for a batch that
/// spans several items one `TransactWriteItems` (head plus continuations, all or nothing).
/// Retried on transient errors; a retry of a write that landed comes back `Collided` with
/// our own record, which the caller recognises by epoch and digest.
pub(crate) async fn put_record(
    shared: &Shared,
    partition: &str,
    record: &JournalRecord,
    continuations: &[Vec<u8>],
) -> Result<Written, DynamoError> {
    let (table, pk, seq) = names(shared);
    let head = record.to_item(&pk, &seq, partition);
    let condition = "attribute_not_exists(#pk)";
    let written: Attempted = if continuations.is_empty() {
        match put_item_if_absent(shared, &table, &pk, &head).await? {
            PutOutcome::Stored => Attempted::Stored,
            PutOutcome::Refused(item) => Attempted::Collided(item),
        }
    } else {
        let slot = record.slot();
        let mut writes = vec![put(&table, head.clone(), &pk, condition)?];
        for (i, body) in continuations.iter().enumerate() {
            let mut item = Item::new();
            item.insert(
                pk.clone(),
                items::s(items::sub_key(partition, 's', slot, None)),
            );
            item.insert(seq.clone(), items::n(i as u64 + 1));
            item.insert(items::EPOCH.into(), items::n(record.epoch()));
            item.insert(items::BODY.into(), items::b(body.clone()));
            writes.push(put(&table, item, &pk, condition)?);
        }
        // Same token, same request: DynamoDB applies it once within ten minutes.
        let token = client_token(&table, partition, record);
        super::transact::transact_write(shared, &writes, &token, Attempted::Stored, |reasons| {
            // The head's condition failed: the slot is taken (by a retry of this write, or
            // by another writer); anything else is worth retrying.
            let head = reasons.first()?;
            (head.code() == Some("ConditionalCheckFailed")).then(|| collided(head.item()))
        })
        .await?
    };
    let existing = match written {
        Attempted::Stored => return Ok(Written::Stored),
        Attempted::Collided(Some(item)) => JournalRecord::from_item(&item, &seq)
            .map_err(|reason| corrupt(partition, record.slot(), reason))?,
        // DynamoDB did not return the item that holds the slot: read it.
        Attempted::Collided(None) => get_record(shared, partition, record.slot())
            .await?
            .ok_or_else(|| {
                corrupt(
                    partition,
                    record.slot(),
                    "a write collided, but the slot reads back empty".into(),
                )
            })?,
    };
    Ok(Written::Collided(existing))
}

/// What one attempt saw.
#[derive(Clone)]
enum Attempted {
    Stored,
    Collided(Option<Item>),
}

fn collided(item: Option<&std::collections::HashMap<String, AttributeValue>>) -> Attempted {
    Attempted::Collided(item.filter(|i| !i.is_empty()).cloned())
}

fn corrupt(partition: &str, slot: u64, reason: String) -> DynamoError {
    DynamoError::Corrupt {
        partition: partition.to_string(),
        what: "journal slot",
        at: slot,
        reason,
    }
}

fn put(
    table: &str,
    item: Item,
    pk: &str,
    condition: &str,
) -> Result<TransactWriteItem, DynamoError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .expression_attribute_names("#pk", pk)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| DynamoError::Config {
            field: "journal item",
            reason: e.to_string(),
        })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// An idempotency token for a transaction (at most 36 characters): the same record
/// written again by the same owner gets the same token. Tokens are account-wide, hence
/// the table name.
pub(crate) fn client_token(table: &str, partition: &str, record: &JournalRecord) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(table.as_bytes());
    hasher.update(b"/");
    hasher.update(partition.as_bytes());
    hasher.update(&record.slot().to_le_bytes());
    hasher.update(&record.epoch().to_le_bytes());
    if let JournalRecord::Batch { digest, .. } = record {
        hasher.update(digest);
    }
    hasher.finalize().to_hex()[..36].to_string()
}

/// Reads the record in one slot (consistent read).
pub(crate) async fn get_record(
    shared: &Shared,
    partition: &str,
    slot: u64,
) -> Result<Option<JournalRecord>, DynamoError> {
    let (table, pk, seq) = names(shared);
    let key = [
        (pk.as_str(), items::s(partition)),
        (seq.as_str(), items::n(slot)),
    ];
    let item = reads::get_item(shared, &table, &key).await?;
    item.map(|i| JournalRecord::from_item(&i, &seq).map_err(|r| corrupt(partition, slot, r)))
        .transpose()
}

/// One page of the journal after `after_slot`, in slot order (consistent read), and where
/// the next page starts (`None` at the end).
pub(crate) async fn read_page(
    shared: &Shared,
    partition: &str,
    after_slot: u64,
) -> Result<(Vec<JournalRecord>, bool), DynamoError> {
    let (table, pk, seq) = names(shared);
    let (found, more) = reads::query_from(
        shared,
        &table,
        &pk,
        &seq,
        partition,
        after_slot.saturating_add(1),
    )
    .await?;
    let mut records = Vec::with_capacity(found.len());
    for item in &found {
        let slot = items::get_u64(item, &seq).unwrap_or(after_slot + 1);
        records
            .push(JournalRecord::from_item(item, &seq).map_err(|r| corrupt(partition, slot, r))?);
    }
    Ok((records, more))
}

/// The continuation items of the batch in `slot`: chunks 1..chunks, in order.
pub(crate) async fn read_continuations(
    shared: &Shared,
    partition: &str,
    slot: u64,
    chunks: u64,
) -> Result<Vec<Vec<u8>>, DynamoError> {
    let (table, pk, seq) = names(shared);
    let key = items::sub_key(partition, 's', slot, None);
    let mut bodies = Vec::new();
    let mut after = 0u64;
    while (bodies.len() as u64) < chunks.saturating_sub(1) {
        let (page, _) =
            reads::query_from(shared, &table, &pk, &seq, &key, after.saturating_add(1)).await?;
        if page.is_empty() {
            break;
        }
        for item in &page {
            let index = items::get_u64(item, &seq).map_err(|r| corrupt(partition, slot, r))?;
            if index != bodies.len() as u64 + 1 {
                return Err(corrupt(
                    partition,
                    slot,
                    format!("continuation {index} where {} belongs", bodies.len() + 1),
                ));
            }
            let body =
                items::get_bytes(item, items::BODY).map_err(|r| corrupt(partition, slot, r))?;
            if body.len() > MAX_CHUNK_BYTES {
                return Err(corrupt(partition, slot, "continuation too large".into()));
            }
            bodies.push(body.to_vec());
            after = index;
        }
    }
    if bodies.len() as u64 != chunks.saturating_sub(1) {
        return Err(corrupt(
            partition,
            slot,
            format!(
                "{} of {} continuation items found",
                bodies.len(),
                chunks - 1
            ),
        ));
    }
    Ok(bodies)
}

/// Fewest journal batches one `prune` may delete. It may delete twice as many as a
/// checkpoint interval holds, so that it keeps up with the journal and a table that kept
/// every batch (built before pruning) sheds its backlog an interval or more per checkpoint,
/// without an upload (which the next snapshot and a closing store wait for) running long
/// for all of it at once.
pub(crate) const MIN_PRUNED_PER_RUN: u64 = 10_000;

/// Slots one page of `prune` looks at.
const PRUNE_PAGE_ITEMS: i32 = 1_000;

/// `BatchWriteItem` calls of deletes `prune` has in flight at once: one after the other,
/// 100,000 batches took 85-90 s on DynamoDB Local (BENCHMARKS.md, session 18).
const DELETES_AT_ONCE: usize = 8;

/// Deletes the journal batches in slots up to `through`: the last batch of the oldest
/// checkpoint kept, before which no recovery replays (a recovery replays after the newest
/// checkpoint, or after the one before it if it found that one a moment before the newest
/// was published). Each batch's continuation items go first, then its head, the item a
/// later run finds them by. Fences stay: an owner that was fenced writes next into its
/// fence's slot, however long it slept, and must find that slot taken (see the module
/// docs). `interval` is how many slots the last checkpoint interval took. Stops at the
/// next page once `closing` is set (what is left, the next checkpoint deletes). Returns how
/// many batches it deleted.
pub(crate) async fn prune(
    shared: &Shared,
    partition: &str,
    through: u64,
    interval: u64,
    closing: &std::sync::atomic::AtomicBool,
) -> Result<u64, DynamoError> {
    let (table, pk, seq) = names(shared);
    let most = interval.saturating_mul(2).max(MIN_PRUNED_PER_RUN);
    let mut pruned = 0;
    let mut from = 0;
    while from <= through && pruned < most && !closing.load(Ordering::Acquire) {
        let (page, more) = reads::query_attributes(
            shared,
            &table,
            (&pk, &seq),
            partition,
            (from, through),
            &[items::KIND, items::CHUNKS],
            PRUNE_PAGE_ITEMS,
        )
        .await?;
        let mut continuations = Vec::new();
        let mut heads = Vec::new();
        for item in &page {
            let slot = items::get_u64(item, &seq).map_err(|r| corrupt(partition, from, r))?;
            from = slot + 1;
            if items::get_str(item, items::KIND) != Ok(items::KIND_BATCH) {
                continue; // a fence
            }
            let chunks =
                items::get_u64(item, items::CHUNKS).map_err(|r| corrupt(partition, slot, r))?;
            let continued = items::sub_key(partition, 's', slot, None);
            for i in 1..chunks {
                continuations.push(checkpoint::delete_request(&pk, &seq, &continued, i)?);
            }
            heads.push(checkpoint::delete_request(&pk, &seq, partition, slot)?);
            pruned += 1;
            if pruned == most {
                break;
            }
        }
        delete_at_once(
            shared,
            &table,
            continuations,
            "journal continuation deletes",
        )
        .await?;
        delete_at_once(shared, &table, heads, "journal batch deletes").await?;
        if !more || page.is_empty() {
            break;
        }
    }
    Ok(pruned)
}

/// Sends `deletes` to `table` in `BatchWriteItem` calls of at most 25, `DELETES_AT_ONCE` of
/// them at a time, each sending again what DynamoDB leaves unprocessed (`batch_write`).
async fn delete_at_once(
    shared: &Shared,
    table: &str,
    deletes: Vec<WriteRequest>,
    what: &str,
) -> Result<(), DynamoError> {
    use futures::{StreamExt, TryStreamExt};
    let mut deletes = deletes.into_iter();
    let calls = std::iter::from_fn(|| {
        let call: Vec<WriteRequest> = deletes
            .by_ref()
            .take(DYNAMODB_MAX_BATCH_WRITE_ITEMS)
            .collect();
        (!call.is_empty()).then_some(call)
    });
    futures::stream::iter(calls)
        .map(|call| checkpoint::batch_write(shared, table, call, what))
        .buffer_unordered(DELETES_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}
