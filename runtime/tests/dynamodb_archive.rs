//! The journal archive on DynamoDB Local: an archive upload that fails keeps the entries
//! in memory and is tried again with the next checkpoint, and a start whose archive lacks
//! entries the checkpoint left out stops and says so.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::acme;
use common::dynamodb_local::DynamoLocal;
use common::journal;
use tollgate_runtime::engine::{Engine, EngineConfig, SystemClock, recover_ledger};
use tollgate_runtime::ledger::{CHUNK_ENTRIES, EntryId};
use tollgate_runtime::store::dynamodb::{
    CallPolicy, DynamoConnection, FaultLayer, MAX_CHUNK_BYTES, partition_name,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_archive_upload_keeps_the_entries_and_a_lost_mark_stops_the_start() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let mut config = local.config("archive");
    let faults = FaultLayer::new();
    config.faults = Some(faults.clone());
    config.calls = CallPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
        ..CallPolicy::default()
    };
    let prefix = config.table_prefix.clone();
    let connection = DynamoConnection::connect(config).unwrap();
    let partition = partition_name(0);
    let engine_config = EngineConfig {
        snapshot_every_batches: 3,
        tick: Duration::from_millis(10),
        ..EngineConfig::default()
    };
    let clock = Arc::new(SystemClock);
    let store = connection.store(&partition, "pod-a").unwrap();
    let (engine, thread) =
        Engine::start(Box::new(store), clock.clone(), engine_config.clone()).unwrap();

    // Every BatchWriteItem of puts stalls: archive pieces (and checkpoint chunks) are not
    // written, so no checkpoint is published and nothing leaves memory.
    faults.stall_chunk_puts_after(0);
    acme::grants(&engine, 0, 2 * CHUNK_ENTRIES + 100).await;
    let mut driver = acme::OneAtATime::new(Duration::from_secs(30));
    while connection.stats().checkpoints_failed < 2 {
        driver
            .grant(&engine, ("two failed uploads", connection.stats()))
            .await;
    }
    let archive = engine.journal_archive().unwrap();
    assert_eq!(archive.archived(), 0);
    let (archived, reference) = journal::in_memory(&engine).await;
    assert_eq!(archived, 0, "nothing forgotten that is not archived");
    assert_eq!(connection.stats().checkpoints_published, 0);

    // DynamoDB takes writes again: a later checkpoint archives the same chunks, and the
    // ledger forgets them at the one after.
    faults.stop_stalling();
    driver.within(Duration::from_secs(60));
    while journal::in_memory(&engine).await.0 < 2 * CHUNK_ENTRIES as u64 {
        driver
            .grant(&engine, ("archived", connection.stats()))
            .await;
    }
    let all = journal::every_entry(&engine).await;
    assert_eq!(all[..reference.len()], reference[..]);
    engine.verify().await.unwrap().expect("verify passes");
    drop(engine);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();
    // Entries read back from the archive alone (the engine is stopped: no other call is
    // counted), each in its place, and the calls that took.
    let read_back = |ids: Vec<EntryId>| {
        let (archive, connection) = (archive.clone(), &connection);
        let calls = connection.stats().attempts;
        let expected: Vec<_> = ids
            .iter()
            .map(|id| all[id.0 as usize - 1].clone())
            .collect();
        async move {
            let read = tokio::task::spawn_blocking(move || archive.get_many(&ids))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(read, expected);
            connection.stats().attempts - calls
        }
    };
    // A page of entries spread over 100 pieces: one BatchGetItem.
    let spread = (1..=100).map(|i| EntryId(i * 81)).collect();
    assert_eq!(read_back(spread).await, 1, "one BatchGetItem");
    // More pieces than one call takes (all 128 of the two chunks, asked newest first): two
    // calls, sent together.
    let every_piece = (1..=128u64).rev().map(|i| EntryId(i * 64 - 5)).collect();
    assert_eq!(read_back(every_piece).await, 2, "two BatchGetItem calls");
    // DynamoDB leaves keys unprocessed (reads throttled): a round that got none through is
    // asked again after a pause, and `max_attempts` (3) such rounds in a row give up, with
    // an error that says so and the give-up counted.
    let spread: Vec<EntryId> = (1..=100).map(|i| EntryId(i * 81)).collect();
    faults.leave_batch_gets_unprocessed(3);
    let (throttled, gave_up) = (connection.stats().throttled, connection.stats().gave_up);
    assert_eq!(
        read_back(spread.clone()).await,
        3,
        "two rounds unprocessed, then read"
    );
    assert_eq!(connection.stats().throttled, throttled + 2);
    faults.leave_batch_gets_unprocessed(u64::MAX);
    let calls = connection.stats().attempts;
    let unread = archive.clone();
    let error = tokio::task::spawn_blocking(move || unread.get_many(&spread))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    // 99 of the 100 pieces: the newest one the read before left in the archive's cache.
    assert!(
        error.contains("99 journal archive pieces stayed unprocessed for 3 rounds in a row"),
        "{error}"
    );
    assert_eq!(connection.stats().attempts - calls, 3);
    assert_eq!(connection.stats().gave_up, gave_up + 1);
    faults.leave_batch_gets_unprocessed(0);

    // Each chunk's pieces under a hash key of their own, 64 of them.
    let items = local
        .client()
        .scan()
        .table_name(connection.journal_table())
        .send()
        .await
        .unwrap();
    assert!(items.last_evaluated_key().is_none(), "one page");
    let mut pieces_by_key = std::collections::BTreeMap::<String, usize>::new();
    for item in items.items() {
        if let Some(AttributeValue::S(pk)) = item.get("pk")
            && pk.starts_with(&format!("{partition}#a"))
            && pk.len() > partition.len() + 2
        {
            *pieces_by_key.entry(pk.clone()).or_default() += 1;
        }
    }
    let expected: std::collections::BTreeMap<String, usize> = (0..2)
        .map(|c| (format!("{partition}#a{c}"), CHUNK_ENTRIES / 64))
        .collect();
    assert_eq!(pieces_by_key, expected);

    // `tollgate verify --dynamodb` reads the archived entries back from the table too.
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "verify",
            "--dynamodb",
            "--partitions",
            "1",
            "--table-prefix",
            &prefix,
        ])
        .args(["--dynamodb-endpoint", &local.endpoint()])
        .env("AWS_ACCESS_KEY_ID", "tollgate")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        out.contains(&format!("partition 0: ok: {} entries", all.len())),
        "{out}"
    );

    // The mark lost (a table restored from an older backup, say): the checkpoint leaves
    // out entries the archive no longer vouches for, and the start says so.
    let table = connection.journal_table();
    local
        .client()
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("{partition}#a")))
        .key("seq", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let mut store = connection.store(&partition, "pod-b").unwrap();
    let error = tokio::task::spawn_blocking(move || recover_ledger(&mut store).unwrap_err())
        .await
        .unwrap()
        .to_string();
    assert!(error.contains("the archive holds only 1..=0"), "{error}");
}

/// An entry with more legs than an item holds (one Reserve drawn from 80,000 grants) is
/// archived across several items and read back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_larger_than_an_item_is_archived_and_read_back() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let connection = DynamoConnection::connect(local.config("big-entry")).unwrap();
    let config = EngineConfig {
        snapshot_every_batches: u64::MAX,
        tick: Duration::from_millis(10),
        ..EngineConfig::default()
    };
    let clock = Arc::new(SystemClock);
    let store = connection.store("p0", "pod-a").unwrap();
    let (engine, thread) = Engine::start(Box::new(store), clock.clone(), config.clone()).unwrap();
    let grants = 80_000;
    acme::grants(&engine, 0, grants).await;
    engine
        .submit(acme::reserve("all", grants as u64, acme::HOLD_MS))
        .await
        .unwrap()
        .unwrap();
    let (_, entries) = journal::in_memory(&engine).await;
    let big = entries.last().unwrap().clone();
    let bytes = postcard::to_allocvec(&big).unwrap().len();
    assert!(bytes > MAX_CHUNK_BYTES, "the hold's entry is {bytes} bytes");
    // Enough grants after it to seal its chunk.
    let sealed = (big.id.0 as usize).next_multiple_of(CHUNK_ENTRIES);
    acme::grants(&engine, grants, sealed - entries.len()).await;
    let (_, reference) = journal::in_memory(&engine).await;
    drop(engine);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();

    let store = connection.store("p0", "pod-a").unwrap();
    let (engine, thread) = Engine::start(Box::new(store), clock, config).unwrap();
    let archive = engine.journal_archive().unwrap();
    assert!(archive.archived() >= big.id.0, "{}", archive.archived());
    assert_eq!(journal::every_entry(&engine).await, reference);
    engine.verify().await.unwrap().expect("verify passes");
    drop(engine);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();
}
