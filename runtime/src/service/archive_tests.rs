//! `ListEntries` and `verify` across the journal archive: entries the ledger no longer
//! keeps in memory read back from the embedded store's archive, the same as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use crate::engine::{EngineConfig, Partitions, SystemClock};
use crate::ledger::{CHUNK_ENTRIES, Category, Entry};
use crate::service::Runtime;
use crate::testing::{TWO_PLANS, subscribe};

const CUSTOMER: &str = "acme";

fn open(dir: &Path, snapshot_every_batches: u64) -> (Arc<Runtime>, Partitions) {
    let clock = Arc::new(SystemClock);
    let config = EngineConfig {
        snapshot_every_batches,
        ..EngineConfig::default()
    };
    let partitions = Partitions::open_embedded(dir, Some(1), clock.clone(), config).unwrap();
    let policy = crate::catalog::load_yaml(TWO_PLANS).unwrap();
    let runtime = Runtime::new(partitions.engines().to_vec(), policy, clock, None);
    (Arc::new(runtime), partitions)
}

fn close(runtime: Arc<Runtime>, partitions: Partitions) {
    drop(runtime);
    partitions.shutdown();
}

/// `count` grants of one credit, 64 at a time: one journal entry each.
async fn grants(runtime: &Arc<Runtime>, from: usize, count: usize) {
    for start in (from..from + count).step_by(64) {
        let calls = (start..(start + 64).min(from + count)).map(|i| {
            let runtime = runtime.clone();
            async move {
                runtime
                    .grant(
                        CUSTOMER,
                        1_000_000,
                        Category::Paid,
                        0,
                        0,
                        0,
                        0,
                        &format!("g{i}"),
                    )
                    .await
                    .expect("granted")
            }
        });
        futures::future::join_all(calls).await;
    }
}

/// Every entry of the customer's wallet, page by page, with the names of their accounts.
async fn all_entries(runtime: &Runtime) -> Vec<(Entry, Vec<String>)> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |(e, _): &(Entry, _)| e.id.0);
        let (page, names) = runtime.entries(CUSTOMER, after, 1000).await.unwrap();
        if page.is_empty() {
            return all;
        }
        for entry in page {
            let accounts = entry
                .legs
                .iter()
                .flat_map(|l| [l.debit, l.credit])
                .map(|a| names.get(&a.0).cloned().expect("every account named"))
                .collect();
            all.push((entry, accounts));
        }
    }
}

/// Makes more grants, one at a time (each a batch, so snapshots come due), until the
/// ledger has forgotten at least `at_least` archived entries: a snapshot's files are written
/// on a thread of its own, so when that happens depends on the machine. Returns how many
/// grants it made (keys `drive-<i>`); at most 20 s.
async fn drive_until_archived(runtime: &Arc<Runtime>, at_least: u64) -> usize {
    let started = std::time::Instant::now();
    let mut made = 0;
    while archived(runtime).await < at_least {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{at_least} entries not archived in 20 s (archived: {})",
            archived(runtime).await
        );
        runtime
            .grant(
                CUSTOMER,
                1_000_000,
                Category::Paid,
                0,
                0,
                0,
                0,
                &format!("drive-{made}"),
            )
            .await
            .expect("granted");
        made += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    made
}

async fn archived(runtime: &Runtime) -> u64 {
    let engine = runtime.engines()[0].clone();
    engine.read(|l| l.journal().archived()).await.unwrap()
}

async fn verify(runtime: &Runtime) {
    let engine = runtime.engines()[0].clone();
    let report = engine.verify().await.unwrap().expect("verify passes");
    let total = engine.read(|l| l.journal().len() as u64).await.unwrap();
    assert_eq!(report.entries, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_archived_out_of_memory_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let first = 2 * CHUNK_ENTRIES + 100;

    // No snapshot while it runs: every entry is in memory when the reference is read.
    let (runtime, partitions) = open(dir.path(), u64::MAX);
    subscribe(&runtime, CUSTOMER, "free").await;
    grants(&runtime, 0, first).await;
    let reference = all_entries(&runtime).await;
    assert_eq!(reference.len(), first);
    assert_eq!(archived(&runtime).await, 0);
    // Closing leaves a snapshot; it archives the two sealed chunks and leaves them out.
    close(runtime, partitions);

    let (runtime, partitions) = open(dir.path(), 3);
    assert_eq!(archived(&runtime).await, 2 * CHUNK_ENTRIES as u64);
    assert_eq!(
        all_entries(&runtime).await,
        reference,
        "read back from the archive"
    );
    verify(&runtime).await;

    // Running on with a snapshot every three batches: the next chunks are archived with one
    // snapshot and leave memory at the next.
    grants(&runtime, first, 2 * CHUNK_ENTRIES).await;
    let driven = drive_until_archived(&runtime, 3 * CHUNK_ENTRIES as u64).await;
    let now_archived = archived(&runtime).await;
    let entries = all_entries(&runtime).await;
    assert_eq!(entries.len(), first + 2 * CHUNK_ENTRIES + driven);
    assert_eq!(entries[..first], reference[..]);
    let ids: Vec<u64> = entries.iter().map(|(e, _)| e.id.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in journal order");
    // A page that starts in the archive and ends in memory.
    let after = now_archived - 10;
    let (page, _) = runtime.entries(CUSTOMER, after, 20).await.unwrap();
    let expected: Vec<&Entry> = entries
        .iter()
        .map(|(e, _)| e)
        .filter(|e| e.id.0 > after)
        .take(20)
        .collect();
    assert_eq!(page.iter().collect::<Vec<_>>(), expected);
    verify(&runtime).await;
    close(runtime, partitions);

    // And after another restart, offline as `tollgate verify` does.
    let mut store =
        crate::store::embedded::EmbeddedStore::open_read_only(dir.path().join("partition-0000"))
            .unwrap();
    let ledger = crate::engine::recover_ledger(&mut store).unwrap();
    assert!(ledger.journal().archived() >= now_archived);
    let report = crate::engine::verify_recovered(&ledger, &store).unwrap();
    assert_eq!(report.entries as usize, ledger.journal().len());
    // Without its archive, the ledger says what is missing rather than pass.
    assert!(matches!(
        ledger.verify(),
        Err(crate::ledger::Violation::Archive { .. })
    ));
    drop(store);

    // An archive file lost: the start stops and says so, rather than serve a journal with
    // a hole in it.
    let partition = dir.path().join("partition-0000");
    let mut files: Vec<_> = std::fs::read_dir(&partition)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    files.sort();
    std::fs::remove_file(&files[0]).unwrap();
    let mut store = crate::store::embedded::EmbeddedStore::open(&partition).unwrap();
    let err = crate::engine::recover_ledger(&mut store)
        .unwrap_err()
        .to_string();
    assert!(err.contains("archive holds only 1..=0"), "{err}");
}

/// An archive file that cannot be written loses nothing: the snapshot is not taken, the
/// entries stay in memory, and the next snapshot archives the same chunks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_write_that_fails_is_tried_again_with_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let partition = dir.path().join("partition-0000");
    std::fs::create_dir_all(&partition).unwrap();
    // A directory where the first archive file's temporary file goes: creating it fails.
    let blocker = partition.join(format!("journal-{:020}.tmp", 0));
    std::fs::create_dir(&blocker).unwrap();

    let (runtime, partitions) = open(dir.path(), 3);
    subscribe(&runtime, CUSTOMER, "free").await;
    let count = 2 * CHUNK_ENTRIES + 100;
    grants(&runtime, 0, count).await;
    // Three more snapshots with both chunks sealed, each failing to archive them (driven by
    // other customers, whose entries are not in the reference).
    let snapshots = || runtime.engines()[0].stats().snapshot().snapshots;
    let (sealed_at, started) = (snapshots(), std::time::Instant::now());
    for other in 0.. {
        if snapshots() >= sealed_at + 3 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no three snapshots in 20 s: {:?}",
            runtime.engines()[0].stats().snapshot()
        );
        subscribe(&runtime, &format!("other-{other}"), "free").await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(
        archived(&runtime).await,
        0,
        "nothing forgotten that is not archived"
    );
    let reference = all_entries(&runtime).await;
    assert_eq!(reference.len(), count);

    std::fs::remove_dir(&blocker).unwrap();
    // Archived once the file can be written (the test fails if not within its bound).
    drive_until_archived(&runtime, 2 * CHUNK_ENTRIES as u64).await;
    let entries = all_entries(&runtime).await;
    assert_eq!(entries[..count], reference[..]);
    verify(&runtime).await;
    close(runtime, partitions);

    let (runtime, partitions) = open(dir.path(), 3);
    assert_eq!(all_entries(&runtime).await, entries);
    verify(&runtime).await;
    close(runtime, partitions);
}
