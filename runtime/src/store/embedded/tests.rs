use super::*;
use crate::ledger::{Command, Keyed, OveragePolicy, Timestamp, WalletRef};
use crate::store::JournalArchive as _;
use crate::store::LoggedCommand;

fn batch(seq: u64) -> Batch {
    Batch {
        seq,
        commands: vec![LoggedCommand::Apply {
            now: Timestamp(seq),
            request: Keyed {
                customer: "acme".into(),
                key: format!("k{seq}"),
                command: Command::OpenWallet {
                    wallet: WalletRef::new("acme", "credits"),
                    overage: OveragePolicy::Deny,
                },
            },
        }],
        chain_head: [seq as u8; 32],
    }
}

fn recover_all(dir: &Path) -> Result<(Option<Snapshot>, Vec<u64>), StoreError> {
    let mut store = EmbeddedStore::open(dir)?;
    let mut seqs = Vec::new();
    let mut snapshot = None;
    store.recover(&mut |item| {
        match item {
            Recovered::Snapshot(s) => snapshot = Some(s),
            Recovered::Batch(b) => seqs.push(b.seq),
        }
        Ok(())
    })?;
    Ok((snapshot, seqs))
}

fn write_batches(dir: &Path, n: u64) {
    let mut store = EmbeddedStore::open(dir).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    for seq in 1..=n {
        store.append(&batch(seq)).unwrap();
    }
}

fn only_segment(dir: &Path) -> PathBuf {
    let segments: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(segments.len(), 1);
    segments[0].clone()
}

#[test]
fn appends_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 5);
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    assert!(snapshot.is_none());
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).unwrap();
    assert!(matches!(
        EmbeddedStore::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
}

#[test]
fn torn_tail_is_truncated_at_every_cut_point() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 3);
    let path = only_segment(dir.path());
    let full = fs::read(&path).unwrap();
    let record = full.len() / 3;
    for cut in (2 * record + 1)..full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let (_, seqs) = recover_all(dir.path()).unwrap();
        assert_eq!(seqs, vec![1, 2], "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).unwrap().len() as usize,
            2 * record,
            "tail truncated"
        );
    }
}

/// Appends `n` batches and stops as a crash would: without closing the store, so the last
/// segment keeps its preallocated free space.
fn write_batches_and_crash(dir: &Path, first: u64, n: u64) {
    let mut store = EmbeddedStore::open(dir).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    if first > 1 {
        // The free space left by the crash is kept, not cut off as a torn tail.
        let len = fs::metadata(only_segment(dir)).unwrap().len();
        assert_eq!(len % wal::PREALLOCATE_BYTES, 0, "free space kept");
    }
    for seq in first..first + n {
        store.append(&batch(seq)).unwrap();
    }
    let active = store.active.as_ref().unwrap();
    let (end, len) = (active.bytes, fs::metadata(only_segment(dir)).unwrap().len());
    assert!(
        len > end,
        "the segment has free space: {len} bytes for {end}"
    );
    assert_eq!(len % wal::PREALLOCATE_BYTES, 0);
    // A crash runs no destructor: the segment is left as it is (the lock goes with the
    // store here, with the process in a real crash).
    std::mem::forget(store.active.take());
    drop(store);
}

#[test]
fn preallocated_free_space_is_the_end_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    write_batches_and_crash(dir.path(), 1, 3);
    // Recovery reads the zeros as free space, keeps it, and writes the next record there.
    write_batches_and_crash(dir.path(), 4, 2);
    let (_, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    // Closed in order, the segment ends with its last record.
    let path = only_segment(dir.path());
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        bytes.len() % 5,
        0,
        "five records of one size and nothing else"
    );
    assert_ne!(bytes[bytes.len() - 1], 0);
}

#[test]
fn a_record_larger_than_the_step_extends_the_segment_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    let mut big = batch(1);
    let LoggedCommand::Apply { request, .. } = &mut big.commands[0] else {
        unreachable!()
    };
    request.key = "k".repeat(3 * wal::PREALLOCATE_BYTES as usize / 2);
    store.append(&big).unwrap();
    store.append(&batch(2)).unwrap();
    let len = fs::metadata(only_segment(dir.path())).unwrap().len();
    assert_eq!(len, 2 * wal::PREALLOCATE_BYTES);
    drop(store);
    let (_, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(seqs, vec![1, 2]);
}

/// Three batches and a crash, the third record's write torn: its last half never reached
/// the disk. Returns the segment and the size of one record.
fn torn_third_record(dir: &Path) -> (PathBuf, usize) {
    write_batches_and_crash(dir, 1, 3);
    let path = only_segment(dir);
    let mut bytes = fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let record = end / 3;
    bytes[2 * record + record / 2..end].fill(0);
    fs::write(&path, &bytes).unwrap();
    (path, record)
}

#[test]
fn a_torn_record_in_preallocated_space_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (path, record) = torn_third_record(dir.path());
    let (_, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(fs::metadata(&path).unwrap().len() as usize, 2 * record);
}

#[test]
fn zero_filled_tail_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 3);
    let path = only_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let record = bytes.len() / 3;
    for b in &mut bytes[2 * record + 30..] {
        *b = 0;
    }
    bytes.extend_from_slice(&[0; 100]);
    fs::write(&path, &bytes).unwrap();
    let (_, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn flipped_byte_in_a_committed_record_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 3);
    let path = only_segment(dir.path());
    let full = fs::read(&path).unwrap();
    let record = full.len() / 3;
    // Every byte of every record, the last one included: a flip is never a torn write,
    // unless it turns the file's last bytes into zeros.
    for position in 0..full.len() {
        if full[position] ^ 0x5a == 0 && position == full.len() - 1 {
            continue;
        }
        let mut bytes = full.clone();
        bytes[position] ^= 0x5a;
        fs::write(&path, &bytes).unwrap();
        match recover_all(dir.path()) {
            Err(StoreError::Corrupt {
                path: p, offset, ..
            }) => {
                assert_eq!(p, path);
                assert_eq!(
                    offset as usize,
                    position / record * record,
                    "offset of byte {position}"
                );
            }
            other => panic!("flip at {position} was not detected: {other:?}"),
        }
    }
}

/// Opens a store in `dir`, appends batches 1 to `last` and saves a snapshot of them.
fn store_with_snapshot(dir: &Path, last: u64, state: Vec<u8>) -> EmbeddedStore {
    let mut store = EmbeddedStore::open(dir).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    for seq in 1..=last {
        store.append(&batch(seq)).unwrap();
    }
    store.begin_snapshot(last).unwrap();
    store.save_snapshot(Snapshot { seq: last, state }).unwrap();
    store
}

#[test]
fn snapshot_drops_covered_log_and_recovery_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = store_with_snapshot(dir.path(), 4, b"state-4".to_vec());
        for seq in 5..=6 {
            store.append(&batch(seq)).unwrap();
        }
    }
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(
        snapshot,
        Some(Snapshot {
            seq: 4,
            state: b"state-4".to_vec()
        })
    );
    assert_eq!(seqs, vec![5, 6]);
    assert_eq!(
        only_segment(dir.path()),
        dir.path().join(format!("wal-{:020}.log", 5))
    );
}

/// The snapshot thread removes what a snapshot covers once it is durable, while the writer
/// goes on appending in the segment `begin_snapshot` started: the older snapshot and every
/// segment up to the new one go, the segment being written stays.
#[test]
fn a_second_snapshot_removes_the_first_and_the_log_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_snapshot(dir.path(), 2, b"state-2".to_vec());
    for seq in 3..=4 {
        store.append(&batch(seq)).unwrap();
    }
    store.begin_snapshot(4).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 4,
            state: b"state-4".to_vec(),
        })
        .unwrap();
    for seq in 5..=6 {
        store.append(&batch(seq)).unwrap();
    }
    drop(store);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "LOCK" && !n.starts_with("journal-"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("snapshot-{:020}.snap", 4),
            format!("wal-{:020}.log", 5)
        ],
        "nothing else is left: no .old file on the way out"
    );
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(snapshot.map(|s| s.state), Some(b"state-4".to_vec()));
    assert_eq!(seqs, vec![5, 6]);
}

/// Writes batch 1 and a snapshot of it; returns the snapshot's path.
fn one_snapshot(dir: &Path) -> PathBuf {
    // Dropped at once: the close waits for the snapshot file.
    drop(store_with_snapshot(dir, 1, vec![7; 64]));
    dir.join(format!("snapshot-{:020}.snap", 1))
}

#[test]
fn corrupt_snapshot_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_snapshot(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[40] ^= 1;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        recover_all(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn missing_batches_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 2);
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    store.start_segment(10, 0).unwrap();
    store.last_seq = 9;
    store.append(&batch(10)).unwrap();
    drop(store);
    let err = recover_all(dir.path()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

/// A log of on-disk format 1 (entries chained with unkeyed BLAKE3) is refused with an error
/// that says so, not replayed into a chain mismatch.
#[test]
fn a_format_1_log_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 2);
    let path = only_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[0..4].copy_from_slice(&0x5447_4c31u32.to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[..20]);
    bytes[20..24].copy_from_slice(&header_crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let error = recover_all(dir.path()).unwrap_err().to_string();
    assert!(error.contains("on-disk format 1"), "{error}");
}

#[test]
fn a_format_1_snapshot_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = one_snapshot(dir.path());
    let mut bytes = fs::read(&snapshot).unwrap();
    bytes[..8].copy_from_slice(b"TGSNAP01");
    fs::write(&snapshot, &bytes).unwrap();
    let error = recover_all(dir.path()).unwrap_err().to_string();
    assert!(error.contains("on-disk format 1"), "{error}");
}

/// Format 2 (before the journal archive) is the same file with nothing archived: read.
#[test]
fn a_format_2_snapshot_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = one_snapshot(dir.path());
    let mut bytes = fs::read(&snapshot).unwrap();
    assert_eq!(&bytes[..8], b"TGSNAP03");
    bytes[..8].copy_from_slice(b"TGSNAP02");
    fs::write(&snapshot, &bytes).unwrap();
    let (read, _) = recover_all(dir.path()).unwrap();
    assert!(read.is_some());
}

/// A snapshot whose file cannot be written changes nothing else: appends go on, and the
/// log it would have covered is kept, so recovery replays every batch.
#[test]
fn a_failed_snapshot_write_keeps_the_log_and_the_partition_serving() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the snapshot's temporary file goes: creating that file fails.
    fs::create_dir(dir.path().join(format!("snapshot-{:020}.tmp", 3))).unwrap();
    {
        let mut store = store_with_snapshot(dir.path(), 3, b"state-3".to_vec());
        // Wait for the thread to fail, then append: the failure is not the append's.
        for _ in 0..200 {
            match &store.saving {
                Some(saving) if !saving.thread.is_finished() => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                _ => break,
            }
        }
        store.append(&batch(4)).unwrap();
        assert!(store.saving.is_none(), "the failed snapshot was looked at");
        store.append(&batch(5)).unwrap();
    }
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(snapshot, None, "no snapshot was written");
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "the covered log was kept");
}

/// Appends go on while the snapshot is written, and the covered log goes once it is
/// durable, at the next append that finds it done.
#[test]
fn appends_continue_while_a_snapshot_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // Several pieces of `SYNC_EVERY_BYTES` and a part of one, each byte telling where
    // it belongs: a piece written twice, left out or out of place would show.
    let size = 3 * super::SYNC_EVERY_BYTES + super::SYNC_EVERY_BYTES / 3;
    let state: Vec<u8> = (0..size)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    let mut store = store_with_snapshot(dir.path(), 3, state.clone());
    let mut seq = 4;
    while store.saving.is_some() {
        store.append(&batch(seq)).unwrap();
        seq += 1;
        assert!(seq < 100_000, "the snapshot never finished");
    }
    assert_eq!(
        only_segment(dir.path()),
        dir.path().join(format!("wal-{:020}.log", 4)),
        "the covered segment is gone"
    );
    drop(store);
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    let snapshot = snapshot.unwrap();
    assert_eq!(snapshot.seq, 3);
    assert!(
        snapshot.state == state,
        "the snapshot read back differs from the one written"
    );
    assert_eq!(seqs, (4..seq).collect::<Vec<_>>());
}

/// A crash while a snapshot is written leaves its temporary file; the next start removes it
/// (it can be hundreds of MB) and recovers from the log as if it were not there.
#[test]
fn a_snapshot_cut_short_by_a_crash_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 2);
    let partial = dir.path().join(format!("snapshot-{:020}.tmp", 2));
    fs::write(&partial, b"TGSNAP02 cut short").unwrap();
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!((snapshot, seqs), (None, vec![1, 2]));
    assert!(!partial.exists(), "the partial snapshot is gone");
}

/// A crash while covered files were being removed leaves them renamed to `.old`, a segment
/// perhaps cut short mid-record: the next start removes them without reading them, and
/// recovers from the newest snapshot and the log after it.
#[test]
fn covered_files_a_crash_left_on_their_way_out_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = store_with_snapshot(dir.path(), 2, b"state-2".to_vec());
        store.append(&batch(3)).unwrap();
    }
    let old_segment = dir.path().join(format!("wal-{:020}.old", 1));
    fs::write(&old_segment, b"TGL2 a record cut short").unwrap();
    let old_snapshot = dir.path().join(format!("snapshot-{:020}.old", 1));
    fs::write(&old_snapshot, b"TGSNAP03 cut short").unwrap();
    let (snapshot, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(snapshot.map(|s| s.state), Some(b"state-2".to_vec()));
    assert_eq!(seqs, vec![3]);
    assert!(!old_segment.exists(), "the segment on its way out is gone");
    assert!(
        !old_snapshot.exists(),
        "the snapshot on its way out is gone"
    );
}

/// `remove_gradually` cuts a file short a step at a time (a part step first) and then
/// unlinks it.
#[test]
fn a_file_is_removed_a_step_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.old");
    fs::write(&path, vec![7u8; 2 * 4096 + 100]).unwrap();
    assert_eq!(super::remove_gradually(&path, 4096).unwrap(), 3);
    assert!(!path.exists());
    let exact = dir.path().join("exact.old");
    fs::write(&exact, vec![7u8; 2 * 4096]).unwrap();
    assert_eq!(super::remove_gradually(&exact, 4096).unwrap(), 2);
    assert!(!exact.exists());
}

/// A batch whose record spans several pages of the segment (its key is long).
fn big_batch(seq: u64, bytes: usize) -> Batch {
    let mut big = batch(seq);
    let LoggedCommand::Apply { request, .. } = &mut big.commands[0] else {
        unreachable!()
    };
    request.key = "k".repeat(bytes);
    big
}

/// Writes batches 1 and 2, a batch 3 spanning four pages, and (when `then`) a small batch
/// 4; returns the segment, its bytes, and where the record of batch 3 starts and ends.
fn with_a_big_record(dir: &Path, then: bool) -> (PathBuf, Vec<u8>, usize, usize) {
    let mut store = EmbeddedStore::open(dir).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    store.append(&batch(1)).unwrap();
    store.append(&batch(2)).unwrap();
    let start = store.active.as_ref().unwrap().bytes as usize;
    store.append(&big_batch(3, 4 * 4096)).unwrap();
    let end = store.active.as_ref().unwrap().bytes as usize;
    if then {
        store.append(&batch(4)).unwrap();
    }
    std::mem::forget(store.active.take());
    drop(store);
    let path = only_segment(dir);
    let bytes = fs::read(&path).unwrap();
    (path, bytes, start, end)
}

/// A crash keeps any of a write's pages from the disk, not only its last ones: a record
/// whose first or a middle page reads as zeros, with nothing valid after it, is the
/// interrupted write. It is cut, and the batches before it are all there.
#[test]
fn a_last_record_with_a_lost_page_is_torn_whichever_page() {
    for lost in ["header page", "middle page"] {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes, start, end) = with_a_big_record(dir.path(), false);
        let first_page_end = start.next_multiple_of(4096);
        let (from, to) = match lost {
            "header page" => (start, first_page_end),
            _ => (first_page_end + 4096, first_page_end + 2 * 4096),
        };
        assert!(to < end, "{lost}: the record goes on after the lost page");
        bytes[from..to].fill(0);
        fs::write(&path, &bytes).unwrap();
        let (_, seqs) = recover_all(dir.path()).unwrap();
        assert_eq!(seqs, vec![1, 2], "{lost}");
        // The next start finds the log cut where the torn record began.
        let (_, seqs) = recover_all(dir.path()).unwrap();
        assert_eq!(seqs, vec![1, 2], "{lost}");
        assert_eq!(
            fs::metadata(&path).unwrap().len() as usize,
            start,
            "{lost}: the log ends where the torn record began"
        );
    }
}

/// The same lost page in a record that a valid record follows is damage to a committed
/// record: the start stops and names it.
#[test]
fn a_lost_page_in_a_record_followed_by_a_valid_one_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, start, end) = with_a_big_record(dir.path(), true);
    let page = start.next_multiple_of(4096) + 4096;
    assert!(page + 4096 < end);
    bytes[page..page + 4096].fill(0);
    fs::write(&path, &bytes).unwrap();
    match recover_all(dir.path()) {
        Err(StoreError::Corrupt { offset, .. }) => assert_eq!(offset as usize, start),
        other => panic!("not refused: {other:?}"),
    }
}

/// Every file of `dir` with its bytes.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Opened to read, the store recovers what a start would and changes no file: the torn
/// tail and a cut-short snapshot stay for the next start, which cuts and removes them. It
/// takes no batch, and a server holding the directory keeps it out.
#[test]
fn a_store_opened_to_read_recovers_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    torn_third_record(dir.path());
    fs::write(
        dir.path().join(format!("snapshot-{:020}.tmp", 9)),
        b"cut short",
    )
    .unwrap();
    let before = contents(dir.path());

    let mut store = EmbeddedStore::open_read_only(dir.path()).unwrap();
    let mut seqs = Vec::new();
    store
        .recover(&mut |item| {
            if let Recovered::Batch(b) = item {
                seqs.push(b.seq);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(seqs, vec![1, 2]);
    assert!(
        store.append(&batch(3)).is_err(),
        "a read-only store takes no batch"
    );
    drop(store);
    assert_eq!(contents(dir.path()), before, "no file changed");

    // A server's lock keeps a reader out.
    let server = EmbeddedStore::open(dir.path()).unwrap();
    assert!(matches!(
        EmbeddedStore::open_read_only(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    drop(server);
    // The next start cuts the torn tail and removes the cut-short snapshot.
    let (_, seqs) = recover_all(dir.path()).unwrap();
    assert_eq!(seqs, vec![1, 2]);
    assert_ne!(contents(dir.path()), before);
}

/// `chunks` sealed chunks of entries after `first`, as a journal seals them.
fn archive_chunks(first: u64, chunks: usize) -> crate::ledger::ArchiveChunks {
    use crate::ledger::{AccountId, CHUNK_ENTRIES, Entry, EntryId, EntryKind, Leg, LegKind};
    let entry = |id: u64| Entry {
        id: EntryId(id),
        time: Timestamp(id / 3),
        kind: EntryKind::Debit,
        wallet: (id % 7) as u32,
        legs: (0..id % 3)
            .map(|i| Leg {
                debit: AccountId(i as u32),
                credit: AccountId(id as u32),
                amount: id * 1_000 + i,
                kind: LegKind::Post,
            })
            .collect(),
        hash: [id as u8; 32],
    };
    crate::ledger::ArchiveChunks {
        first,
        chunks: (0..chunks as u64)
            .map(|c| {
                let start = first + c * CHUNK_ENTRIES as u64 + 1;
                std::sync::Arc::new((start..start + CHUNK_ENTRIES as u64).map(entry).collect())
            })
            .collect(),
    }
}

fn archive_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    found.sort();
    found
}

#[test]
fn the_journal_archive_reads_back_by_id_and_in_order_and_refuses_damage() {
    use crate::ledger::{CHUNK_ENTRIES, EntryId};
    const C: u64 = CHUNK_ENTRIES as u64;
    let dir = tempfile::tempdir().unwrap();
    let archive = JournalArchive::open(dir.path()).unwrap();
    let (one, two) = (archive_chunks(0, 2), archive_chunks(2 * C, 1));
    archive.write(&one).unwrap();
    // A file that would leave a gap is refused.
    assert!(archive.write(&archive_chunks(4 * C, 1)).is_err());
    archive.write(&two).unwrap();
    assert_eq!(archive.archived(), 3 * C);
    let expected: Vec<_> = one
        .chunks
        .iter()
        .chain(&two.chunks)
        .flat_map(|c| c.iter().cloned())
        .collect();

    let archive = JournalArchive::open(dir.path()).unwrap();
    assert_eq!(archive.archived(), 3 * C);
    for id in [1, 2, C, C + 1, 2 * C, 2 * C + 1, 3 * C] {
        assert_eq!(archive.get(EntryId(id)).unwrap(), expected[id as usize - 1]);
    }
    assert!(archive.get(EntryId(3 * C + 1)).is_err());
    assert!(archive.get(EntryId(0)).is_err());
    let read: Vec<_> = archive.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(read, expected);

    // A flipped byte inside an entry: that read (and a scan) fails on its checksum.
    let files = archive_files(dir.path());
    assert_eq!(files.len(), 2);
    let mut bytes = fs::read(&files[1]).unwrap();
    bytes[200] ^= 0x10;
    fs::write(&files[1], &bytes).unwrap();
    let archive = JournalArchive::open(dir.path()).unwrap();
    let damaged = (2 * C + 1..=3 * C)
        .find(|&id| archive.get(EntryId(id)).is_err())
        .expect("one entry fails");
    let err = archive.get(EntryId(damaged)).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    assert!(archive.entries().any(|e| e.is_err()));
    assert!(
        archive.get(EntryId(1)).is_ok(),
        "the other file still reads"
    );

    // A damaged header stops the opening, naming the file.
    bytes[9] ^= 0x01;
    fs::write(&files[1], &bytes).unwrap();
    let err = JournalArchive::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("journal-") && err.contains("header"), "{err}");

    // The first file gone: the one after the gap is not even opened.
    fs::remove_file(&files[0]).unwrap();
    let archive = JournalArchive::open(dir.path()).unwrap();
    assert_eq!(archive.archived(), 0);
    assert!(archive.get(EntryId(2 * C + 1)).is_err());
}

/// The snapshot thread gives way (`Store::give_way_with`) before each piece of the files
/// it writes and every `PAUSE_EVERY_ENTRIES` entries it encodes for the journal archive.
#[test]
fn the_snapshot_thread_gives_way_between_pieces_of_its_work() {
    use crate::ledger::CHUNK_ENTRIES;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    store.recover(&mut |_| Ok(())).unwrap();
    let pauses = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = pauses.clone();
    store.give_way_with(std::sync::Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    }));
    let state = vec![7u8; 4 * super::SYNC_EVERY_BYTES + 10];
    store.append(&batch(1)).unwrap();
    store.begin_snapshot(1).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 1,
            state: state.clone(),
        })
        .unwrap();
    store.finish_saving(true).unwrap();
    // The header's piece, then five of the state.
    assert_eq!(pauses.swap(0, Ordering::SeqCst), 6);
    store.append(&batch(2)).unwrap();
    store.begin_snapshot(2).unwrap();
    store
        .save_snapshot_with_archive(Snapshot { seq: 2, state }, archive_chunks(0, 2))
        .unwrap();
    store.finish_saving(true).unwrap();
    let encoding = 2 * CHUNK_ENTRIES / super::archive::PAUSE_EVERY_ENTRIES;
    let paused = pauses.load(Ordering::SeqCst);
    assert!(
        paused > 6 + encoding,
        "the snapshot's 6, the archive's encoding {encoding} and its file's: {paused}"
    );
}
