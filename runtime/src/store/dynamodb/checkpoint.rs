//! Checkpoints: the encoded ledger as of the end of one engine batch, chunked into items
//! of at most `MAX_CHUNK_BYTES` under a key private to the writer's epoch, then published
//! by one small manifest item written in a transaction with a check of the writer's lease.
//! Until the manifest lands the chunks are invisible, so a writer dying half-way leaves
//! only unreferenced items behind. Each upload first records an intent (under
//! `<partition>#uploads`: its seq, epoch and chunk count), which the manifest's transaction
//! deletes. An upload that fails for certain (its chunk writes gave up, or the lease check
//! found another owner) deletes the chunks it wrote and its intent; intents older than the
//! newest published checkpoint (a writer killed mid-upload, during a rollout say) are found
//! by garbage collection, which deletes their chunks, then them.

use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, DeleteRequest, Put, PutRequest, ReturnConsumedCapacity,
    TransactWriteItem, WriteRequest,
};

use super::DynamoError;
use super::connection::Shared;
use super::items::{self, Item};
use super::limits::{
    DYNAMODB_MAX_BATCH_WRITE_ITEMS, DYNAMODB_MAX_ITEM_BYTES, MAX_CHECKPOINT_BYTES, MAX_CHUNK_BYTES,
};
use super::reads;
use super::retry::{AttemptError, Unprocessed};
use super::schema::Schema;

/// DynamoDB's `BatchWriteItem` carries at most 16 MB.
pub const DYNAMODB_MAX_BATCH_WRITE_BYTES: usize = 16 * 1024 * 1024;
const _: () = assert!(
    DYNAMODB_MAX_BATCH_WRITE_ITEMS * DYNAMODB_MAX_ITEM_BYTES <= DYNAMODB_MAX_BATCH_WRITE_BYTES
);

/// A published checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The engine batch seq the checkpoint ends with.
    pub seq: u64,
    /// Journal slot of that batch: recovery reads the journal after it.
    pub slot: u64,
    pub epoch: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub digest: [u8; 32],
    /// Chunks per hash key (`None`: every chunk under one, the layout before groups).
    pub per_key: Option<u64>,
}

/// Chunks under one hash key, about 3 MB. DynamoDB serves one hash key from one
/// partition (about 1 MB/s of writes): a checkpoint of hundreds of MB under one key takes
/// minutes to upload; spread over keys, over many partitions.
pub(crate) const CHUNKS_PER_KEY: u64 = 8;

/// The hash key of chunk `index` of the checkpoint of batch `seq` written by `epoch`:
/// `P#c<seq>#e<epoch>#g<index / per_key>`, or without the group for the old layout.
fn chunk_hash_key(
    partition: &str,
    seq: u64,
    epoch: u64,
    per_key: Option<u64>,
    index: u64,
) -> String {
    let key = items::sub_key(partition, 'c', seq, Some(epoch));
    match per_key {
        Some(per_key) => format!("{key}#g{}", index / per_key),
        None => key,
    }
}

/// The order to send `count` chunks in, `per_key` to a hash key: chunk 0 of every key,
/// then chunk 1 of every key, and so on. A `BatchWriteItem` of 25 then spreads over up to
/// 25 keys, so DynamoDB partitions, instead of the 3 or 4 that 25 chunks in a row fill (one
/// partition takes about 1,000 write units a second, and a chunk costs up to 400). The
/// old layout (`None`, one key) keeps chunk order.
fn interleaved(count: u64, per_key: Option<u64>) -> impl Iterator<Item = u64> {
    let per_key = per_key.unwrap_or(count).max(1);
    let keys = count.div_ceil(per_key);
    (0..per_key)
        .flat_map(move |j| (0..keys).map(move |k| k * per_key + j))
        .filter(move |&i| i < count)
}

fn names(shared: &Shared) -> (String, String, String) {
    let checkpoints = &shared.schema.tables.checkpoints;
    (
        shared.schema.name(checkpoints),
        checkpoints.hash_key.name.clone(),
        Schema::range_key(checkpoints).to_string(),
    )
}

fn corrupt(partition: &str, seq: u64, reason: String) -> DynamoError {
    DynamoError::Corrupt {
        partition: partition.to_string(),
        what: "checkpoint",
        at: seq,
        reason,
    }
}

/// Most superseded checkpoints one `collect_garbage` deletes: tables that kept every
/// checkpoint (before it existed) shed their backlog a few per checkpoint, so that no
/// upload (which the next snapshot and a closing store wait for) runs long for it.
pub(crate) const MAX_COLLECTED_PER_RUN: usize = 4;

/// Bits of an intent's range key that hold the epoch (the rest hold the seq): two uploads
/// of the same seq by epochs 2^24 apart would share an intent (the older one's chunks then
/// left unreferenced), and seqs up to 2^40 (23 years of 1,500 batches a second) fit.
const INTENT_EPOCH_BITS: u32 = 24;

/// The range key of the intent of the upload of checkpoint `seq` by `epoch`, if the seq
/// fits (else the upload goes without one).
fn intent_range(seq: u64, epoch: u64) -> Option<u64> {
    (seq < 1 << (64 - INTENT_EPOCH_BITS))
        .then_some((seq << INTENT_EPOCH_BITS) | (epoch & ((1 << INTENT_EPOCH_BITS) - 1)))
}

/// The hash key of a partition's upload intents.
fn intents_key(partition: &str) -> String {
    format!("{partition}#uploads")
}

/// Writes `state` as the checkpoint of batch `seq` (journal slot `slot`).
/// Fails with `Fenced` if `epoch` no longer holds the lease.
pub(crate) async fn write(
    shared: &Shared,
    partition: &str,
    epoch: u64,
    seq: u64,
    slot: u64,
    state: Vec<u8>,
) -> Result<(), DynamoError> {
    if state.len() > MAX_CHECKPOINT_BYTES {
        return Err(DynamoError::TooLarge {
            what: "checkpoint",
            bytes: state.len(),
            limit: MAX_CHECKPOINT_BYTES,
        });
    }
    let (table, pk, range) = names(shared);
    // A checkpoint of this batch is published already (every checkpoint of batch `seq`
    // encodes the same journal prefix): keep it, and never write chunks over its own.
    if published_epoch(shared, partition, seq).await?.is_some() {
        return Ok(());
    }
    let chunk_key = items::sub_key(partition, 'c', seq, Some(epoch));
    let bytes = state.len();
    // Hashing and copying hundreds of MB: not on the threads that run journal writes.
    let (digest, pending) = tokio::task::spawn_blocking({
        let (pk, range, partition) = (pk.clone(), range.clone(), partition.to_string());
        move || {
            chunk_requests(&state, &pk, &range, CHUNKS_PER_KEY, |i| {
                chunk_hash_key(&partition, seq, epoch, Some(CHUNKS_PER_KEY), i)
            })
        }
    })
    .await
    .map_err(|e| config_error(format!("preparing the chunks failed: {e}")))??;
    let total_chunks = pending.len() as u64;
    let intent = intent_range(seq, epoch);
    if let Some(range_value) = intent {
        let mut item = Item::new();
        item.insert(pk.clone(), items::s(intents_key(partition)));
        item.insert(range.clone(), items::n(range_value));
        item.insert(items::INTENT_SEQ.into(), items::n(seq));
        item.insert(items::EPOCH.into(), items::n(epoch));
        item.insert(items::CHUNKS.into(), items::n(total_chunks));
        item.insert(items::PER_KEY.into(), items::n(CHUNKS_PER_KEY));
        let request = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        let put = WriteRequest::builder().put_request(request).build();
        batch_write(shared, &table, vec![put], "checkpoint upload intent").await?;
    }
    if let Err(failed) = batch_write_tracked(shared, &table, pending, "checkpoint chunks").await {
        let unwritten: std::collections::HashSet<u64> = failed
            .requests
            .iter()
            .filter_map(|r| items::get_u64(r.put_request()?.item(), &range).ok())
            .collect();
        let written = interleaved(total_chunks, Some(CHUNKS_PER_KEY))
            .filter(|i| !unwritten.contains(i))
            .collect::<Vec<_>>();
        discard_unless_published(shared, partition, seq, epoch, written).await;
        return Err(failed.error);
    }

    let leases = &shared.schema.tables.leases;
    let check = ConditionCheck::builder()
        .table_name(shared.schema.name(leases))
        .key(&leases.hash_key.name, items::s(partition))
        .condition_expression("#epoch = :epoch")
        .expression_attribute_names("#epoch", items::EPOCH)
        .expression_attribute_values(":epoch", items::n(epoch))
        .build()
        .map_err(|e| config_error(e.to_string()))?;
    let mut manifest = Item::new();
    manifest.insert(pk.clone(), items::s(partition));
    manifest.insert(range.clone(), items::n(seq));
    manifest.insert(items::SLOT.into(), items::n(slot));
    manifest.insert(items::EPOCH.into(), items::n(epoch));
    manifest.insert(items::CHUNKS.into(), items::n(total_chunks));
    manifest.insert(items::BYTES.into(), items::n(bytes as u64));
    manifest.insert(items::DIGEST.into(), items::b(digest.to_vec()));
    manifest.insert(items::PER_KEY.into(), items::n(CHUNKS_PER_KEY));
    let put = Put::builder()
        .table_name(&table)
        .set_item(Some(manifest))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", &pk)
        .build()
        .map_err(|e| config_error(e.to_string()))?;
    let mut writes = vec![
        TransactWriteItem::builder().condition_check(check).build(),
        TransactWriteItem::builder().put(put).build(),
    ];
    if let Some(range_value) = intent {
        let delete = Delete::builder()
            .table_name(&table)
            .key(&pk, items::s(intents_key(partition)))
            .key(&range, items::n(range_value))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        writes.push(TransactWriteItem::builder().delete(delete).build());
    }
    // Same checkpoint, same token (tokens are account-wide, hence the table name).
    let token = blake3::hash(format!("{table}/{chunk_key}/{digest:?}").as_bytes()).to_hex()[..36]
        .to_string();
    let refused = super::transact::transact_write(shared, &writes, &token, None, |reasons| {
        match reasons
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .as_slice()
        {
            // The lease check failed: another writer holds the partition.
            [Some("ConditionalCheckFailed"), ..] => Some(Some(Refused::Fenced)),
            // A checkpoint of this batch exists already (published since the check above,
            // or by an earlier attempt of this very transaction whose answer was lost).
            // Every checkpoint of batch `seq` encodes the same journal prefix: keep it.
            [_, Some("ConditionalCheckFailed"), ..] => Some(Some(Refused::Exists)),
            _ => None,
        }
    })
    .await;
    // The transaction was refused as a whole: these chunks are ours alone, and no manifest
    // refers to them unless an earlier attempt of it landed (its answer lost, and the
    // retry evaluated afresh), which `discard_unless_published` checks.
    let all = || interleaved(total_chunks, Some(CHUNKS_PER_KEY));
    match refused {
        Ok(None) => Ok(()),
        Ok(Some(Refused::Exists)) => {
            discard_unless_published(shared, partition, seq, epoch, all()).await;
            Ok(())
        }
        Ok(Some(Refused::Fenced)) => {
            if discard_unless_published(shared, partition, seq, epoch, all()).await {
                return Ok(());
            }
            // Fenced, whatever the lease read gives (a failed read must not make this
            // look transient).
            let lease = super::lease::current(shared, partition)
                .await
                .ok()
                .flatten();
            Err(DynamoError::Fenced {
                partition: partition.to_string(),
                epoch,
                current_epoch: lease.as_ref().map_or(0, |l| l.epoch),
                current_owner: lease.map_or_else(String::new, |l| l.owner),
            })
        }
        Err(error) => Err(error),
    }
}

/// Why the manifest's transaction was refused.
#[derive(Clone, Copy)]
enum Refused {
    /// The lease check failed: another writer holds the partition.
    Fenced,
    /// A manifest of this batch exists.
    Exists,
}

/// The epoch of the published checkpoint of batch `seq`, if there is one.
async fn published_epoch(
    shared: &Shared,
    partition: &str,
    seq: u64,
) -> Result<Option<u64>, DynamoError> {
    let (table, pk, range) = names(shared);
    let key = [
        (pk.as_str(), items::s(partition)),
        (range.as_str(), items::n(seq)),
    ];
    reads::get_item(shared, &table, &key)
        .await?
        .map(|m| items::get_u64(&m, items::EPOCH).map_err(|r| corrupt(partition, seq, r)))
        .transpose()
}

/// Sends `requests` (puts or deletes) to `table` in `BatchWriteItem` calls of at most 25,
/// and sends again whatever DynamoDB leaves unprocessed (it does when it throttles). Gives
/// up after `max_attempts` rounds in a row that process nothing: a large checkpoint takes
/// many rounds under throttling, and every round that makes progress starts the count
/// afresh (a budget shared by all its rounds failed checkpoints of a few hundred MB).
pub(crate) async fn batch_write(
    shared: &Shared,
    table: &str,
    pending: Vec<WriteRequest>,
    what: &str,
) -> Result<(), DynamoError> {
    batch_write_tracked(shared, table, pending, what)
        .await
        .map_err(|failed| failed.error)
}

/// A `batch_write` that failed: why, and the requests certain not to have been written
/// (never sent, or sent back unprocessed; a call that failed may have written its own).
struct Unwritten {
    error: DynamoError,
    requests: Vec<WriteRequest>,
}

/// `batch_write`, telling on failure which requests were certainly not written.
async fn batch_write_tracked(
    shared: &Shared,
    table: &str,
    mut pending: Vec<WriteRequest>,
    what: &str,
) -> Result<(), Unwritten> {
    let mut rounds = Unprocessed::new("BatchWriteItem");
    while !pending.is_empty() {
        let take = pending.len().min(DYNAMODB_MAX_BATCH_WRITE_ITEMS);
        let group: Vec<WriteRequest> = pending.drain(..take).collect();
        let sent = group.len();
        let answer = shared
            .retried("BatchWriteItem", || {
                let request = shared
                    .client
                    .batch_write_item()
                    .request_items(table, group.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total);
                async move {
                    let out = request
                        .send()
                        .await
                        .map_err(|e| AttemptError::from_sdk("BatchWriteItem", &e))?;
                    shared.stats.consumed_writes(out.consumed_capacity());
                    Ok(out
                        .unprocessed_items()
                        .and_then(|u| u.values().next().cloned())
                        .unwrap_or_default())
                }
            })
            .await;
        let unprocessed = match answer {
            Ok(unprocessed) => unprocessed,
            Err(error) => {
                return Err(Unwritten {
                    error,
                    requests: pending,
                });
            }
        };
        // DynamoDB throttled part of the batch: back off, then send the rest again.
        let waited = rounds
            .after_round(shared, sent, unprocessed.len(), what)
            .await;
        pending.splice(0..0, unprocessed);
        if let Err(error) = waited {
            return Err(Unwritten {
                error,
                requests: pending,
            });
        }
    }
    Ok(())
}

/// Deletes the checkpoints older than the one before `newest` (just published), the
/// oldest first and at most `MAX_COLLECTED_PER_RUN`: their chunks, then their manifests,
/// so that an interrupted run leaves manifests the next run finds again, never chunks
/// nothing refers to. Recovery reads only the newest manifest; the one before it is kept
/// so that a reader that found it a moment ago can still load it. Then the uploads older
/// than `newest` that were never published (`collect_abandoned_uploads`). Returns how many
/// checkpoints it deleted, of both kinds, and the journal slot of the one kept before the
/// newest.
pub(crate) async fn collect_garbage(
    shared: &Shared,
    partition: &str,
    newest: u64,
) -> Result<Collected, DynamoError> {
    let (table, pk, range) = names(shared);
    // Manifests come in seq order: read up to the newest.
    let mut older: Vec<Superseded> = Vec::new();
    let mut from = 0u64;
    'pages: loop {
        let (page, more) = reads::query_from(shared, &table, &pk, &range, partition, from).await?;
        for item in &page {
            let seq = items::get_u64(item, &range).map_err(|r| corrupt(partition, 0, r))?;
            if seq >= newest {
                break 'pages;
            }
            let field = |name| items::get_u64(item, name).map_err(|r| corrupt(partition, seq, r));
            let per_key = per_key_of(item).map_err(|r| corrupt(partition, seq, r))?;
            older.push(Superseded {
                seq,
                epoch: field(items::EPOCH)?,
                chunks: field(items::CHUNKS)?,
                per_key,
                slot: field(items::SLOT)?,
            });
            from = seq + 1;
        }
        if !more || page.is_empty() {
            break;
        }
    }
    // Read in seq order. The one before the newest stays.
    let kept = older.pop().map(|kept| kept.slot);
    older.truncate(MAX_COLLECTED_PER_RUN);
    for &Superseded {
        seq,
        epoch,
        chunks,
        per_key,
        ..
    } in &older
    {
        delete_all_chunks(shared, partition, seq, epoch, per_key, chunks).await?;
        batch_write(
            shared,
            &table,
            vec![delete_request(&pk, &range, partition, seq)?],
            "checkpoint manifest deletes",
        )
        .await?;
    }
    // Its failure must not hide what was deleted above.
    let abandoned = match collect_abandoned_uploads(shared, partition, newest).await {
        Ok(collected) => collected,
        Err(error) => {
            tracing::warn!(partition, %error, "abandoned checkpoint uploads not deleted yet");
            0
        }
    };
    Ok(Collected {
        deleted: older.len() + abandoned,
        kept,
    })
}

/// A published checkpoint older than the newest, as its manifest says.
struct Superseded {
    seq: u64,
    epoch: u64,
    chunks: u64,
    per_key: Option<u64>,
    /// The journal slot of the last batch it covers.
    slot: u64,
}

/// What `collect_garbage` did.
#[derive(Default)]
pub(crate) struct Collected {
    /// Checkpoints deleted, of both kinds.
    pub(crate) deleted: usize,
    /// The journal slot of the checkpoint kept before the newest (the last batch it
    /// covers), if there is one: no recovery replays the journal from before it.
    pub(crate) kept: Option<u64>,
}

/// Deletes every chunk (`chunks` of them) of the checkpoint of batch `seq` by `epoch`.
async fn delete_all_chunks(
    shared: &Shared,
    partition: &str,
    seq: u64,
    epoch: u64,
    per_key: Option<u64>,
    chunks: u64,
) -> Result<(), DynamoError> {
    let indexes = interleaved(chunks, per_key);
    delete_chunks(shared, partition, seq, epoch, per_key, indexes).await
}

/// Deletes the chunks `indexes` of the checkpoint of batch `seq` written by `epoch`.
async fn delete_chunks(
    shared: &Shared,
    partition: &str,
    seq: u64,
    epoch: u64,
    per_key: Option<u64>,
    indexes: impl IntoIterator<Item = u64>,
) -> Result<(), DynamoError> {
    let (table, pk, range) = names(shared);
    let deletes = indexes
        .into_iter()
        .map(|i| {
            let key = chunk_hash_key(partition, seq, epoch, per_key, i);
            delete_request(&pk, &range, &key, i)
        })
        .collect::<Result<Vec<_>, _>>()?;
    batch_write(shared, &table, deletes, "checkpoint chunk deletes").await
}

/// Deletes the intent of the upload of checkpoint `seq` by `epoch`, if it has one.
async fn delete_intent(
    shared: &Shared,
    partition: &str,
    seq: u64,
    epoch: u64,
) -> Result<(), DynamoError> {
    match intent_range(seq, epoch) {
        Some(range_value) => delete_intent_at(shared, partition, range_value).await,
        None => Ok(()),
    }
}

/// Deletes the upload intent whose range key is `range_value`.
async fn delete_intent_at(
    shared: &Shared,
    partition: &str,
    range_value: u64,
) -> Result<(), DynamoError> {
    let (table, pk, range) = names(shared);
    let delete = delete_request(&pk, &range, &intents_key(partition), range_value)?;
    let what = "checkpoint upload intent deletes";
    batch_write(shared, &table, vec![delete], what).await
}

/// Deletes the chunks of uploads that never published (their intents are left: a writer
/// killed or cut off mid-upload) and older than `newest`, just published (so none is still
/// being written by a live owner: any other writer's can no longer publish), then their
/// intents. At most `MAX_COLLECTED_PER_RUN` (on top of as many superseded checkpoints).
/// Returns how many it collected. (A fenced writer still uploading when its intent is
/// collected, and killed before its own transaction fails and it cleans up, leaves the
/// chunks it wrote after that: a leak, never a loss.)
async fn collect_abandoned_uploads(
    shared: &Shared,
    partition: &str,
    newest: u64,
) -> Result<usize, DynamoError> {
    let (table, pk, range) = names(shared);
    let (page, _) =
        reads::query_from(shared, &table, &pk, &range, &intents_key(partition), 0).await?;
    let mut collected = 0;
    for item in &page {
        // In range-key order, so in seq order (the seq is the key's high bits).
        let range_value = items::get_u64(item, &range).map_err(|r| corrupt(partition, 0, r))?;
        let seq = range_value >> INTENT_EPOCH_BITS;
        if seq >= newest || collected == MAX_COLLECTED_PER_RUN {
            break;
        }
        let fields = (
            items::get_u64(item, items::EPOCH),
            items::get_u64(item, items::CHUNKS),
            per_key_of(item),
        );
        match fields {
            (Ok(epoch), Ok(chunks), Ok(per_key)) => {
                // A manifest of this very upload would refer to these chunks (it cannot
                // exist: the manifest's transaction deletes the intent), but check rather
                // than trust.
                if published_epoch(shared, partition, seq).await? != Some(epoch) {
                    delete_all_chunks(shared, partition, seq, epoch, per_key, chunks).await?;
                    tracing::info!(
                        partition,
                        seq,
                        epoch,
                        chunks,
                        "deleted the chunks of a checkpoint upload that was never published"
                    );
                }
            }
            // Unreadable, it would stop every later collection: it goes, its chunks (if
            // any) are left.
            _ => tracing::warn!(
                partition,
                seq,
                "deleting a checkpoint upload intent that cannot be read; its chunks, if any, \
                 are left"
            ),
        }
        delete_intent_at(shared, partition, range_value).await?;
        collected += 1;
    }
    Ok(collected)
}

pub(crate) fn delete_request(
    pk: &str,
    range: &str,
    pk_value: &str,
    n: u64,
) -> Result<WriteRequest, DynamoError> {
    let delete = DeleteRequest::builder()
        .key(pk, items::s(pk_value))
        .key(range, items::n(n))
        .build()
        .map_err(|e| config_error(e.to_string()))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// Deletes the chunks `written` of an upload that is certain never to be published (its
/// chunk writes gave up, or its manifest's transaction was refused), unless a manifest of
/// this very upload (same batch, same epoch, so the same chunk keys) is published after all:
/// then they are kept, and this returns true. Best effort: a failure is logged and the
/// chunks are left (see the module docs), as they are when the manifest cannot be read.
async fn discard_unless_published(
    shared: &Shared,
    partition: &str,
    seq: u64,
    epoch: u64,
    written: impl IntoIterator<Item = u64>,
) -> bool {
    match published_epoch(shared, partition, seq).await {
        Ok(Some(published)) if published == epoch => return true,
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(
                partition,
                seq,
                %error,
                "the chunks of a checkpoint not published are left in the table: cannot \
                 tell whether a manifest refers to them"
            );
            return false;
        }
    }
    let written: Vec<u64> = written.into_iter().collect();
    let chunks = written.len();
    let deleted = async {
        delete_chunks(shared, partition, seq, epoch, Some(CHUNKS_PER_KEY), written).await?;
        delete_intent(shared, partition, seq, epoch).await
    };
    match deleted.await {
        Ok(()) => tracing::info!(
            partition,
            seq,
            chunks,
            "the chunks of a checkpoint that will not be published are deleted"
        ),
        Err(error) => tracing::warn!(
            partition,
            seq,
            chunks,
            %error,
            "the chunks of a checkpoint that will not be published are left in the table"
        ),
    }
    false
}

/// A manifest's `per_key`: absent is the old layout (every chunk under one key); present,
/// it must be a number of at least 1 (anything else is corruption, never read as the old
/// layout: garbage collection would then delete the manifest and leave its chunks).
fn per_key_of(item: &Item) -> Result<Option<u64>, String> {
    if !item.contains_key(items::PER_KEY) {
        return Ok(None);
    }
    match items::get_u64(item, items::PER_KEY)? {
        0 => Err("per_key is 0".into()),
        n => Ok(Some(n)),
    }
}

/// The digest of `state` and the `PutRequest`s of its chunks, chunk `i` under the hash
/// key `key_of(i)`, in the order to send them (`interleaved`).
fn chunk_requests(
    state: &[u8],
    pk: &str,
    range: &str,
    per_key: u64,
    key_of: impl Fn(u64) -> String,
) -> Result<([u8; 32], Vec<WriteRequest>), DynamoError> {
    let chunks = items::split(state, MAX_CHUNK_BYTES);
    let mut requests = Vec::with_capacity(chunks.len());
    for i in interleaved(chunks.len() as u64, Some(per_key)) {
        let chunk = chunks[i as usize];
        let mut item = Item::new();
        item.insert(pk.to_string(), items::s(key_of(i)));
        item.insert(range.to_string(), items::n(i));
        item.insert(items::BODY.into(), items::b(chunk.to_vec()));
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    Ok((items::digest_of(state), requests))
}

fn config_error(reason: String) -> DynamoError {
    DynamoError::Config {
        field: "checkpoint item",
        reason,
    }
}

/// The newest published checkpoint and its bytes, checked against the manifest.
pub(crate) async fn load_latest(
    shared: &Shared,
    partition: &str,
) -> Result<Option<(Manifest, Vec<u8>)>, DynamoError> {
    let (table, pk, range) = names(shared);
    let newest = shared
        .retried("Query", || {
            let request = shared
                .client
                .query()
                .table_name(&table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", &pk)
                .expression_attribute_values(":pk", items::s(partition))
                .scan_index_forward(false)
                .limit(1)
                .consistent_read(true);
            async move {
                let out = request
                    .send()
                    .await
                    .map_err(|e| AttemptError::from_sdk("Query", &e))?;
                Ok(out.items().first().cloned())
            }
        })
        .await?;
    let Some(item) = newest else { return Ok(None) };
    let seq = items::get_u64(&item, &range).map_err(|r| corrupt(partition, 0, r))?;
    let field = |name| items::get_u64(&item, name).map_err(|r| corrupt(partition, seq, r));
    let digest: [u8; 32] = items::get_bytes(&item, items::DIGEST)
        .map_err(|r| corrupt(partition, seq, r))?
        .try_into()
        .map_err(|_| corrupt(partition, seq, "digest is not 32 bytes".into()))?;
    let manifest = Manifest {
        seq,
        slot: field(items::SLOT)?,
        epoch: field(items::EPOCH)?,
        chunks: field(items::CHUNKS)?,
        bytes: field(items::BYTES)?,
        digest,
        per_key: per_key_of(&item).map_err(|r| corrupt(partition, seq, r))?,
    };
    if manifest.bytes > MAX_CHECKPOINT_BYTES as u64 {
        return Err(corrupt(
            partition,
            seq,
            "larger than MAX_CHECKPOINT_BYTES".into(),
        ));
    }
    let mut state = Vec::with_capacity(manifest.bytes as usize);
    let mut next = 0u64;
    loop {
        // The key of the next chunk's group: a group read to its end moves on to the next.
        let chunk_key = chunk_hash_key(partition, seq, manifest.epoch, manifest.per_key, next);
        let (page, _) = reads::query_from(shared, &table, &pk, &range, &chunk_key, next).await?;
        if page.is_empty() {
            break;
        }
        for chunk in &page {
            let index = items::get_u64(chunk, &range).map_err(|r| corrupt(partition, seq, r))?;
            if index != next {
                return Err(corrupt(
                    partition,
                    seq,
                    format!("chunk {index} where {next} belongs"),
                ));
            }
            let body =
                items::get_bytes(chunk, items::BODY).map_err(|r| corrupt(partition, seq, r))?;
            state.extend_from_slice(body);
            if state.len() as u64 > manifest.bytes {
                return Err(corrupt(
                    partition,
                    seq,
                    "chunks exceed the manifest's size".into(),
                ));
            }
            next += 1;
        }
    }
    if next != manifest.chunks
        || state.len() as u64 != manifest.bytes
        || items::digest_of(&state) != manifest.digest
    {
        return Err(corrupt(
            partition,
            seq,
            format!(
                "{next} of {} chunks, {} of {} bytes, or the digest does not match",
                manifest.chunks,
                state.len(),
                manifest.bytes
            ),
        ));
    }
    Ok(Some((manifest, state)))
}

#[cfg(test)]
mod order_tests {
    #![allow(clippy::unwrap_used)]

    use super::interleaved;

    #[test]
    fn chunks_go_out_one_key_at_a_time_and_each_exactly_once() {
        for (count, per_key) in [
            (0, 8),
            (1, 8),
            (7, 8),
            (8, 8),
            (20, 8),
            (199, 8),
            (200, 8),
            (1000, 8),
            (9, 1),
            (5, 3),
        ] {
            let order: Vec<u64> = interleaved(count, Some(per_key)).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                (0..count).collect::<Vec<_>>(),
                "{count} by {per_key}"
            );
            // Any 25 in a row touch 25 keys, or every key there is (one fewer where the
            // last key, not full, has run out).
            let keys = count.div_ceil(per_key);
            for window in order.windows(25) {
                let touched: std::collections::BTreeSet<u64> =
                    window.iter().map(|i| i / per_key).collect();
                assert!(
                    touched.len() as u64 + 1 >= keys.min(25),
                    "{count} by {per_key}: {window:?}"
                );
            }
        }
        // 200 chunks, 8 a key: the first batch of 25 touches 25 keys, not 4.
        let first: std::collections::BTreeSet<u64> =
            interleaved(200, Some(8)).take(25).map(|i| i / 8).collect();
        assert_eq!(first.len(), 25);
        assert_eq!(
            interleaved(20, Some(8)).collect::<Vec<_>>()[..4],
            [0, 8, 16, 1]
        );
        // The old layout, one key: chunk order.
        assert_eq!(interleaved(5, None).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_checkpoints_put_requests_go_out_interleaved() {
        let state = vec![7u8; 19 * super::MAX_CHUNK_BYTES + 5];
        let (_, requests) = super::chunk_requests(&state, "pk", "seq", 8, |i| {
            super::chunk_hash_key("p0", 3, 1, Some(8), i)
        })
        .unwrap();
        let sent: Vec<(String, String)> = requests
            .iter()
            .map(|r| {
                let item = r.put_request().unwrap().item();
                let pk = item["pk"].as_s().unwrap().clone();
                let seq = item["seq"].as_n().unwrap().clone();
                (pk, seq)
            })
            .collect();
        assert_eq!(sent.len(), 20);
        let expected: Vec<(String, String)> = [0u64, 8, 16, 1, 9, 17, 2]
            .iter()
            .map(|&i| (format!("p0#c3#e1#g{}", i / 8), i.to_string()))
            .collect();
        assert_eq!(sent[..7], expected[..]);
    }
}
