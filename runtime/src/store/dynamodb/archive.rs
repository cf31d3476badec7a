//! The journal archive in DynamoDB: the journal chunks the ledger has sealed, written out of
//! memory with the checkpoint that leaves them out (as the embedded store writes them to
//! files), and read back by entry id (`ListEntries`) or in order (`verify`).
//!
//! Items, in the journal table:
//!
//! | hash key `pk`  | range key `seq` | attributes |
//! |----------------|-----------------|------------|
//! | `P#a`          | 0               | `archived`: every entry `1..=archived` is written (the mark) |
//! | `P#a<chunk>`   | `through`       | `first`, `digest`, `body`: entries `first + 1..=through` (a piece), postcard; `chunks` if it spans more items |
//! | `P#p<through>` | 1..chunks-1     | `body`: the rest of a piece's (only a piece with entries of thousands of legs is larger than an item) |
//!
//! `<chunk>` is the journal chunk (4,096 entries) the piece belongs to, `(through - 1) /
//! 4096`: each chunk's pieces under a hash key of their own, so that the writes of an
//! archive spread over DynamoDB partitions instead of queueing on one.
//!
//! A piece holds `PIECE_ENTRIES` entries, ending at a multiple of it (the archive takes
//! whole journal chunks, themselves multiples): 3.8 KB under Reserve + Commit load (58.9
//! bytes an entry, BENCHMARKS.md), one read unit, and the key of the piece holding any
//! entry is known without a search, so a page of `ListEntries` reads the pieces it needs
//! with one `BatchGetItem` per 100 pieces. An upload tried again
//! after a failure writes the same items again. The mark is raised only once every piece
//! below it is written, and never lowered (a conditional put). An owner fenced while it
//! uploads writes the very entries the new owner replayed from the journal, so its pieces
//! change nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::connection::{DynamoConnection, Shared};
use super::items::{self, Item};
use super::limits::{DYNAMODB_MAX_BATCH_GET_KEYS, MAX_CHUNK_BYTES, RECOVERY_PAGE_ITEMS};
use super::schema::Schema;
use super::transact::{PutOutcome, put_item_if};
use super::{DynamoError, checkpoint};
use crate::ledger::{ArchiveChunks, CHUNK_ENTRIES, Entry, EntryId};
use crate::store::StoreError;

/// Entries in one piece.
pub(crate) const PIECE_ENTRIES: u64 = 64;
const _: () = assert!((CHUNK_ENTRIES as u64).is_multiple_of(PIECE_ENTRIES));

/// `BatchGetItem` calls one read has in flight at once: a page of `ListEntries` for one
/// wallet among many touches a piece per entry (a wallet's entries are spread over the
/// partition's journal), ten calls for a page of 1,000, and one after the other they add
/// up (BENCHMARKS.md, session 17).
const BATCH_GETS_AT_ONCE: usize = 8;

/// Range key of the mark.
const MARK: u64 = 0;

/// The archive of one partition's journal in DynamoDB.
pub struct DynamoArchive {
    connection: DynamoConnection,
    partition: String,
    /// Entries `1..=archived` are written (the mark as this process last wrote or read it).
    archived: AtomicU64,
    /// The newest piece of the last read: one wallet's entries, paged through, often share it.
    last: Mutex<Option<Arc<Piece>>>,
}

impl std::fmt::Debug for DynamoArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoArchive")
            .field("partition", &self.partition)
            .field("archived", &self.archived.load(Ordering::Acquire))
            .finish()
    }
}

/// Entries `first + 1..=first + entries.len()`, as one item holds them.
#[derive(Debug)]
struct Piece {
    first: u64,
    entries: Vec<Entry>,
}

impl Piece {
    fn holds(&self, id: EntryId) -> bool {
        id.0 > self.first && id.0 <= self.first + self.entries.len() as u64
    }
}

fn names(shared: &Shared) -> (String, String, String) {
    let journal = &shared.schema.tables.journal;
    (
        shared.schema.name(journal),
        journal.hash_key.name.clone(),
        Schema::range_key(journal).to_string(),
    )
}

/// The hash key of a partition's archive mark.
fn archive_key(partition: &str) -> String {
    format!("{partition}#a")
}

/// The hash key of the piece ending with entry `through`: one per journal chunk, so that
/// an archive's writes spread over DynamoDB partitions (one hash key is served by one,
/// about 1,000 write units a second, less than a busy partition's journal needs).
fn piece_key(partition: &str, through: u64) -> String {
    items::sub_key(
        partition,
        'a',
        through.saturating_sub(1) / CHUNK_ENTRIES as u64,
        None,
    )
}

/// The hash key of the items that continue the piece ending with entry `through`.
fn continuation_key(partition: &str, through: u64) -> String {
    items::sub_key(partition, 'p', through, None)
}

fn put_request(item: Item) -> Result<WriteRequest, DynamoError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| DynamoError::Config {
            field: "journal archive item",
            reason: e.to_string(),
        })?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn corrupt(partition: &str, at: u64, reason: String) -> DynamoError {
    DynamoError::Corrupt {
        partition: partition.to_string(),
        what: "journal archive",
        at,
        reason,
    }
}

impl DynamoArchive {
    /// The archive of `partition`, reading its mark (0 when nothing is archived yet).
    pub(crate) fn open(
        connection: &DynamoConnection,
        partition: &str,
    ) -> Result<DynamoArchive, DynamoError> {
        let name = partition.to_string();
        let archived = connection.run(move |shared| async move {
            let (table, pk, range) = names(&shared);
            let key = [
                (pk.as_str(), items::s(archive_key(&name))),
                (range.as_str(), items::n(MARK)),
            ];
            match super::reads::get_item(&shared, &table, &key).await? {
                Some(item) => items::get_u64(&item, items::ARCHIVED)
                    .map_err(|reason| corrupt(&name, MARK, reason)),
                None => Ok(0),
            }
        })?;
        Ok(DynamoArchive {
            connection: connection.clone(),
            partition: partition.to_string(),
            archived: AtomicU64::new(archived),
            last: Mutex::new(None),
        })
    }

    /// Writes `chunks` (their pieces, then the mark), durably. Runs on the connection's
    /// runtime, in the checkpoint's upload, before the checkpoint that leaves them out.
    pub(crate) async fn write(
        &self,
        shared: &Shared,
        chunks: &ArchiveChunks,
    ) -> Result<(), DynamoError> {
        let archived = self.archived.load(Ordering::Acquire);
        if chunks.chunks.is_empty() {
            return Ok(());
        }
        if chunks.first > archived {
            return Err(corrupt(
                &self.partition,
                chunks.first,
                format!(
                    "entries from {} would skip entries {}..={}",
                    chunks.first + 1,
                    archived + 1,
                    chunks.first
                ),
            ));
        }
        // Sealed journal chunks, whole and aligned: the keys of their pieces depend on it.
        let whole = chunks.first.is_multiple_of(CHUNK_ENTRIES as u64)
            && chunks.chunks.iter().all(|c| c.len() == CHUNK_ENTRIES);
        if !whole {
            return Err(corrupt(
                &self.partition,
                chunks.first,
                format!("only whole journal chunks of {CHUNK_ENTRIES} entries are archived"),
            ));
        }
        let started = std::time::Instant::now();
        let (table, pk, range) = names(shared);
        let key = archive_key(&self.partition);
        // Requests by chunk (by hash key), sent interleaved: a call of 25 then spreads over
        // up to 25 keys.
        let mut by_chunk: Vec<Vec<WriteRequest>> = Vec::new();
        let mut bytes = 0;
        let mut first = chunks.first;
        for piece in chunks
            .chunks
            .iter()
            .flat_map(|c| c.chunks(PIECE_ENTRIES as usize))
        {
            let through = first + piece.len() as u64;
            let body = postcard::to_allocvec(piece).map_err(|e| {
                corrupt(
                    &self.partition,
                    through,
                    format!("cannot encode entries: {e}"),
                )
            })?;
            bytes += body.len();
            // Only a piece with entries of thousands of legs spans several items.
            let parts = items::split(&body, MAX_CHUNK_BYTES);
            if first.is_multiple_of(CHUNK_ENTRIES as u64) {
                by_chunk.push(Vec::new());
            }
            let Some(requests) = by_chunk.last_mut() else {
                unreachable!("checked above: chunks start at a multiple of the chunk size");
            };
            let mut item = Item::new();
            item.insert(pk.clone(), items::s(piece_key(&self.partition, through)));
            item.insert(range.clone(), items::n(through));
            item.insert(items::FIRST.into(), items::n(first));
            item.insert(items::DIGEST.into(), items::b(items::digest_of(&body)));
            item.insert(items::BODY.into(), items::b(parts[0].to_vec()));
            if parts.len() > 1 {
                item.insert(items::CHUNKS.into(), items::n(parts.len() as u64));
            }
            requests.push(put_request(item)?);
            for (i, part) in parts.iter().enumerate().skip(1) {
                let mut item = Item::new();
                item.insert(
                    pk.clone(),
                    items::s(continuation_key(&self.partition, through)),
                );
                item.insert(range.clone(), items::n(i as u64));
                item.insert(items::BODY.into(), items::b(part.to_vec()));
                requests.push(put_request(item)?);
            }
            first = through;
        }
        let pieces = by_chunk.iter().map(Vec::len).sum::<usize>();
        let requests = interleaved(by_chunk);
        checkpoint::batch_write(shared, &table, requests, "journal archive pieces").await?;
        // Every piece is written: raise the mark (never lower it).
        let through = chunks.through();
        let mut mark = Item::new();
        mark.insert(pk.clone(), items::s(key));
        mark.insert(range.clone(), items::n(MARK));
        mark.insert(items::ARCHIVED.into(), items::n(through));
        let names = [("#pk", pk.as_str()), ("#archived", items::ARCHIVED)];
        let values = [(":through", items::n(through))];
        let condition = "attribute_not_exists(#pk) OR #archived < :through";
        match put_item_if(shared, &table, &mark, condition, &names, &values).await? {
            // Refused: the mark is at `through` already (a retry), or past it.
            PutOutcome::Stored | PutOutcome::Refused(_) => {}
        }
        self.archived.fetch_max(through, Ordering::AcqRel);
        tracing::info!(
            partition = %self.partition,
            entries = through - chunks.first,
            archived_through = through,
            pieces,
            bytes,
            took_ms = started.elapsed().as_millis() as u64,
            "journal entries archived"
        );
        Ok(())
    }

    /// Fails unless entry `id` is archived.
    fn check_archived(&self, id: EntryId) -> Result<(), StoreError> {
        let archived = self.archived.load(Ordering::Acquire);
        if id.0 == 0 || id.0 > archived {
            return Err(StoreError::Archive {
                what: format!(
                    "partition {}: entry {} is not archived (1..={archived} are)",
                    self.partition, id.0
                ),
            });
        }
        Ok(())
    }

    /// The pieces that hold `ids` (each archived), by their last entry: the one kept from
    /// the last read from memory, the others with `BatchGetItem`. The newest piece read is
    /// kept: the next page of a wallet's entries starts in it.
    fn pieces_of(&self, ids: &[EntryId]) -> Result<BTreeMap<u64, Arc<Piece>>, StoreError> {
        let mut pieces = BTreeMap::new();
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut wanted = Vec::new();
        for &id in ids {
            self.check_archived(id)?;
            let end = piece_end(id.0);
            match &last {
                Some(piece) if piece.holds(id) => {
                    pieces.insert(end, piece.clone());
                }
                _ => wanted.push(end),
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        if !wanted.is_empty() {
            let partition = self.partition.clone();
            let read = self
                .connection
                .run(move |shared| async move { read_pieces(&shared, &partition, wanted).await })?;
            for piece in read {
                pieces.insert(piece.first + piece.entries.len() as u64, Arc::new(piece));
            }
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                pieces.values().next_back().cloned();
        }
        Ok(pieces)
    }

    /// Entry `id` of the piece that holds it, among `pieces`.
    fn entry_in(
        &self,
        pieces: &BTreeMap<u64, Arc<Piece>>,
        id: EntryId,
    ) -> Result<Entry, StoreError> {
        pieces
            .get(&piece_end(id.0))
            .filter(|piece| piece.holds(id))
            .and_then(|piece| {
                let index = usize::try_from(id.0 - piece.first - 1).ok()?;
                piece.entries.get(index).cloned()
            })
            .ok_or_else(|| {
                StoreError::from(corrupt(
                    &self.partition,
                    id.0,
                    "no piece holds this entry".into(),
                ))
            })
    }
}

/// The first of every list, then the second of every list, and so on.
fn interleaved<T>(lists: Vec<Vec<T>>) -> Vec<T> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let mut queues: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    for _ in 0..longest {
        out.extend(queues.iter_mut().filter_map(Iterator::next));
    }
    out
}

/// The range key of the piece that holds entry `id`: its last entry.
fn piece_end(id: u64) -> u64 {
    id.next_multiple_of(PIECE_ENTRIES)
}

impl crate::store::JournalArchive for DynamoArchive {
    fn archived(&self) -> u64 {
        self.archived.load(Ordering::Acquire)
    }

    fn get(&self, id: EntryId) -> Result<Entry, StoreError> {
        let pieces = self.pieces_of(&[id])?;
        self.entry_in(&pieces, id)
    }

    /// One `BatchGetItem` per 100 pieces, whatever the entries' spread, up to
    /// `BATCH_GETS_AT_ONCE` of them at once.
    fn get_many(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        let pieces = self.pieces_of(ids)?;
        ids.iter().map(|&id| self.entry_in(&pieces, id)).collect()
    }

    fn entries(&self) -> Box<dyn Iterator<Item = Result<Entry, String>> + Send> {
        Box::new(InOrder {
            connection: self.connection.clone(),
            partition: self.partition.clone(),
            archived: self.archived(),
            next: 1,
            buffer: Vec::new().into_iter(),
            failed: false,
        })
    }
}

/// Every archived entry in order, read a page of pieces at a time.
struct InOrder {
    connection: DynamoConnection,
    partition: String,
    archived: u64,
    /// Id of the first entry not read yet.
    next: u64,
    buffer: std::vec::IntoIter<Entry>,
    failed: bool,
}

impl InOrder {
    fn fill(&mut self) -> Result<(), DynamoError> {
        let (partition, from) = (self.partition.clone(), self.next);
        let pieces = self.connection.run(move |shared| async move {
            query(&shared, &partition, from, RECOVERY_PAGE_ITEMS).await
        })?;
        if pieces.is_empty() {
            return Err(corrupt(
                &self.partition,
                self.next,
                format!("entries {}..={} are missing", self.next, self.archived),
            ));
        }
        let mut entries = Vec::new();
        for piece in pieces {
            if piece.first + 1 != self.next {
                return Err(corrupt(
                    &self.partition,
                    self.next,
                    format!("the next piece starts at entry {}", piece.first + 1),
                ));
            }
            self.next += piece.entries.len() as u64;
            entries.extend(piece.entries);
            if self.next > self.archived {
                break;
            }
        }
        self.buffer = entries.into_iter();
        Ok(())
    }
}

impl Iterator for InOrder {
    type Item = Result<Entry, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.buffer.next() {
            return Some(Ok(entry));
        }
        if self.failed || self.next > self.archived {
            return None;
        }
        if let Err(error) = self.fill() {
            self.failed = true;
            return Some(Err(error.to_string()));
        }
        self.buffer.next().map(Ok)
    }
}

/// At most `limit` pieces of the chunk that holds entry `from`, in order, from the one
/// holding it on; each checked against its digest and its key.
async fn query(
    shared: &Shared,
    partition: &str,
    from: u64,
    limit: i32,
) -> Result<Vec<Piece>, DynamoError> {
    let (table, pk, range) = names(shared);
    let key = piece_key(partition, from.max(1));
    let (found, _) =
        super::reads::query_page(shared, &table, (&pk, &range), &key, from.max(1), limit).await?;
    let mut pieces = Vec::with_capacity(found.len());
    for item in &found {
        pieces.push(assemble(shared, partition, item).await?);
    }
    Ok(pieces)
}

/// The pieces ending with entries `ends` (sorted, distinct), read with `BatchGetItem`
/// (consistent reads, up to 100 keys a call, up to `BATCH_GETS_AT_ONCE` calls at once,
/// keys DynamoDB leaves unprocessed asked again); each must exist.
async fn read_pieces(
    shared: &Shared,
    partition: &str,
    ends: Vec<u64>,
) -> Result<Vec<Piece>, DynamoError> {
    use futures::{StreamExt, TryStreamExt};
    let (table, pk, range) = names(shared);
    let requests: Vec<Vec<Item>> = ends
        .chunks(DYNAMODB_MAX_BATCH_GET_KEYS)
        .map(|group| {
            group
                .iter()
                .map(|&end| {
                    Item::from([
                        (pk.clone(), items::s(piece_key(partition, end))),
                        (range.clone(), items::n(end)),
                    ])
                })
                .collect()
        })
        .collect();
    let table = table.as_str();
    let groups: Vec<Vec<Item>> = futures::stream::iter(requests)
        .map(|keys| read_group(shared, table, keys))
        .buffer_unordered(BATCH_GETS_AT_ONCE)
        .try_collect()
        .await?;
    let found: Vec<Item> = groups.into_iter().flatten().collect();
    if found.len() < ends.len() {
        let have: std::collections::BTreeSet<u64> = found
            .iter()
            .filter_map(|item| items::get_u64(item, &range).ok())
            .collect();
        let missing = ends
            .iter()
            .find(|end| !have.contains(end))
            .copied()
            .unwrap_or(0);
        return Err(corrupt(
            partition,
            missing,
            "the piece ending with this entry is missing".into(),
        ));
    }
    let mut pieces = Vec::with_capacity(found.len());
    for item in &found {
        pieces.push(assemble(shared, partition, item).await?);
    }
    Ok(pieces)
}

/// The items of up to 100 `keys`, in one `BatchGetItem` and more for the keys DynamoDB
/// leaves unprocessed (`Unprocessed`).
async fn read_group(
    shared: &Shared,
    table: &str,
    mut keys: Vec<Item>,
) -> Result<Vec<Item>, DynamoError> {
    let mut rounds = super::retry::Unprocessed::new("BatchGetItem");
    let mut found = Vec::with_capacity(keys.len());
    while !keys.is_empty() {
        let asked = keys.len();
        let (items, unprocessed) =
            super::reads::batch_get(shared, table, std::mem::take(&mut keys)).await?;
        found.extend(items);
        rounds
            .after_round(shared, asked, unprocessed.len(), "journal archive pieces")
            .await?;
        keys = unprocessed;
    }
    Ok(found)
}

/// The piece `item` heads, its body read from the items it continues in if it spans more.
async fn assemble(shared: &Shared, partition: &str, item: &Item) -> Result<Piece, DynamoError> {
    let (table, pk, range) = names(shared);
    let through = items::get_u64(item, &range).map_err(|r| corrupt(partition, 0, r))?;
    let bad = |reason: String| corrupt(partition, through, reason);
    let mut body = items::get_bytes(item, items::BODY).map_err(bad)?.to_vec();
    let parts = match item.get(items::CHUNKS) {
        Some(_) => items::get_u64(item, items::CHUNKS).map_err(bad)?,
        None => 1,
    };
    if parts > 1 {
        let key = continuation_key(partition, through);
        let mut next = 1;
        while next < parts {
            let (page, _) =
                super::reads::query_from(shared, &table, &pk, &range, &key, next).await?;
            if page.is_empty() {
                return Err(bad(format!("part {next} of {parts} is missing")));
            }
            for part in page.iter().take((parts - next) as usize) {
                body.extend_from_slice(items::get_bytes(part, items::BODY).map_err(bad)?);
                next += 1;
            }
        }
    }
    piece_of(item, through, &body, partition)
}

/// The piece ending with entry `through` that `item` heads, its encoding `body` (read
/// from the items it spans).
fn piece_of(item: &Item, through: u64, body: &[u8], partition: &str) -> Result<Piece, DynamoError> {
    let bad = |reason: String| corrupt(partition, through, reason);
    let first = items::get_u64(item, items::FIRST).map_err(bad)?;
    let digest = items::get_bytes(item, items::DIGEST).map_err(bad)?;
    if items::digest_of(body) != digest {
        return Err(bad("piece digest mismatch".into()));
    }
    let entries: Vec<Entry> =
        postcard::from_bytes(body).map_err(|e| bad(format!("cannot decode the piece: {e}")))?;
    let in_order = entries
        .iter()
        .enumerate()
        .all(|(i, e)| e.id.0 == first + i as u64 + 1);
    if !in_order || first + entries.len() as u64 != through {
        return Err(bad(format!(
            "the piece after entry {first} does not hold the entries up to {through}"
        )));
    }
    Ok(Piece { first, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_go_out_one_chunk_key_at_a_time_and_each_once() {
        let lists = vec![vec![1, 2, 3], vec![10], vec![20, 21]];
        assert_eq!(interleaved(lists), vec![1, 10, 20, 2, 21, 3]);
        assert!(interleaved::<u8>(Vec::new()).is_empty());
    }

    #[test]
    fn a_chunks_pieces_share_a_hash_key_and_chunks_do_not() {
        let chunk = CHUNK_ENTRIES as u64;
        assert_eq!(piece_key("p0", PIECE_ENTRIES), "p0#a0");
        assert_eq!(piece_key("p0", chunk), "p0#a0");
        assert_eq!(piece_key("p0", chunk + PIECE_ENTRIES), "p0#a1");
        assert_eq!(piece_end(1), PIECE_ENTRIES);
        assert_eq!(piece_end(PIECE_ENTRIES), PIECE_ENTRIES);
        assert_eq!(piece_end(PIECE_ENTRIES + 1), 2 * PIECE_ENTRIES);
        assert_ne!(archive_key("p0"), piece_key("p0", 1));
        assert_ne!(continuation_key("p0", chunk), piece_key("p0", chunk));
    }
}
