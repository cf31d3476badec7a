//! DynamoDB's service limits, and the limits of Tollgate's items derived from them.
//!
//! Every figure the store relies on is here, tied to the others with `const` asserts, so a
//! change that would let an engine batch or a checkpoint outgrow what one DynamoDB call can
//! carry fails to compile instead of failing in production.

use crate::engine::DEFAULT_MAX_BATCH;
use crate::ledger::MAX_ID_BYTES;

/// DynamoDB's largest item, attribute names and values included (service limit).
pub const DYNAMODB_MAX_ITEM_BYTES: usize = 400 * 1024;
/// Most items in one `TransactWriteItems` call (service limit).
pub const DYNAMODB_MAX_TRANSACTION_ITEMS: usize = 100;
/// Most bytes in one `TransactWriteItems` call (service limit).
pub const DYNAMODB_MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// Most items in one `BatchWriteItem` call (service limit).
pub const DYNAMODB_MAX_BATCH_WRITE_ITEMS: usize = 25;
/// Most keys in one `BatchGetItem` call (service limit).
pub const DYNAMODB_MAX_BATCH_GET_KEYS: usize = 100;
/// A standard write unit covers one item write of up to this many bytes (rounded up).
pub const DYNAMODB_WRITE_UNIT_BYTES: usize = 1024;

/// Longest partition name. Partition names are part of every key; 64 bytes keeps
/// `ITEM_OVERHEAD_BYTES` a safe upper bound.
pub const MAX_PARTITION_BYTES: usize = 64;
/// Room kept in each item for everything but its body: the keys (a partition name plus a
/// suffix of at most 48 bytes), seven short attribute names, four numbers and a 32-byte
/// digest come to under 300 bytes; 1 KiB leaves a wide margin.
pub const ITEM_OVERHEAD_BYTES: usize = 1024;
const _: () = assert!(MAX_PARTITION_BYTES + 48 + 7 * 8 + 4 * 21 + 32 < ITEM_OVERHEAD_BYTES);

/// Largest body (a slice of an encoded batch or checkpoint) carried by one item.
pub const MAX_CHUNK_BYTES: usize = DYNAMODB_MAX_ITEM_BYTES - ITEM_OVERHEAD_BYTES;

/// Most items one engine batch may span. A batch is written with one call: a single
/// conditional `PutItem` when it fits one item, else one `TransactWriteItems` of its chunks,
/// which must respect both transaction limits.
pub const MAX_BATCH_CHUNKS: usize = DYNAMODB_MAX_TRANSACTION_BYTES / DYNAMODB_MAX_ITEM_BYTES;
const _: () = assert!(MAX_BATCH_CHUNKS >= 1);
const _: () = assert!(MAX_BATCH_CHUNKS <= DYNAMODB_MAX_TRANSACTION_ITEMS);
const _: () = assert!(MAX_BATCH_CHUNKS * DYNAMODB_MAX_ITEM_BYTES <= DYNAMODB_MAX_TRANSACTION_BYTES);

/// Largest encoded engine batch the store accepts.
pub const MAX_BATCH_BYTES: usize = MAX_BATCH_CHUNKS * MAX_CHUNK_BYTES;

/// Upper bound of one logged command the ledger accepts, postcard-encoded: at most four
/// identifiers of `MAX_ID_BYTES` (customer, key, wallet customer and currency) with their
/// length prefixes, plus enum tags and at most six varint numbers (10 bytes each).
pub const MAX_LOGGED_COMMAND_BYTES: usize = 4 * (MAX_ID_BYTES + 2) + 8 + 6 * 10;
/// An encoded batch: seq, command count, the commands and a 32-byte chain head.
pub const MAX_BATCH_FRAME_BYTES: usize = 10 + 10 + 32;
// A full batch of the engine's default size always fits one write call.
const _: () = assert!(
    DEFAULT_MAX_BATCH * MAX_LOGGED_COMMAND_BYTES + MAX_BATCH_FRAME_BYTES <= MAX_BATCH_BYTES
);

/// Largest checkpoint (encoded ledger). It is written as chunks with `BatchWriteItem`,
/// then published by one small manifest item, so it is bounded by recovery time and
/// memory, not by a DynamoDB call: 1 GiB is some millions of wallets.
pub const MAX_CHECKPOINT_BYTES: usize = 1024 * 1024 * 1024;
/// Chunks of the largest checkpoint.
pub const MAX_CHECKPOINT_CHUNKS: usize = MAX_CHECKPOINT_BYTES.div_ceil(MAX_CHUNK_BYTES);
const _: () = assert!(MAX_CHECKPOINT_CHUNKS < u32::MAX as usize);

/// Most items one recovery query page may return before the next page is asked for
/// (bounds memory while reading the journal tail: 100 items of at most 400 KB).
pub const RECOVERY_PAGE_ITEMS: i32 = 100;
