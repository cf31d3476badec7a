//! Checkpoints on DynamoDB Local: uploaded without holding up the journal, counted when
//! the upload ends, older ones deleted once a newer one is published (a backlog at most 4
//! per upload), and throttled chunks sent again for as long as DynamoDB makes progress.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use common::acme::{HOLD_MS, grant, reserve};
use common::dynamodb_local::DynamoLocal;
use tollgate_runtime::engine::{
    Engine, EngineConfig, SystemClock, recover_ledger, verify_recovered,
};
use tollgate_runtime::ledger::Timestamp;
use tollgate_runtime::store::dynamodb::{
    CallPolicy, DynamoConfig, DynamoConnection, DynamoStore, FaultLayer, MAX_CHUNK_BYTES,
};
use tollgate_runtime::store::{Batch, LoggedCommand, Recovered, Snapshot, Store};

fn batch(seq: u64) -> Batch {
    Batch {
        seq,
        commands: vec![LoggedCommand::Advance {
            now: Timestamp(seq),
        }],
        chain_head: [seq as u8; 32],
    }
}

/// A ledger's encoding of `chunks` items' worth, different for every `seq`.
fn state(seq: u64, chunks: usize) -> Vec<u8> {
    (0..(chunks - 1) * MAX_CHUNK_BYTES + 1000)
        .map(|i| (i as u64 + seq) as u8)
        .collect()
}

/// What recovery finds: the checkpoint's seq and state, and the seqs of the batches after.
fn recover(store: &mut DynamoStore) -> (Option<(u64, Vec<u8>)>, Vec<u64>) {
    let (mut snapshot, mut batches) = (None, Vec::new());
    store
        .recover(&mut |item| {
            match item {
                Recovered::Snapshot(s) => snapshot = Some((s.seq, s.state)),
                Recovered::Batch(b) => batches.push(b.seq),
            }
            Ok(())
        })
        .unwrap();
    (snapshot, batches)
}

/// Another pod's store of partition p0 recovers the checkpoint of batch `seq`, holding
/// `state`, then the batches `after`.
fn assert_recovers(connection: &DynamoConnection, seq: u64, state: Vec<u8>, after: &[u64]) {
    let (snapshot, batches) = recover(&mut connection.store("p0", "pod-b").unwrap());
    assert_eq!(snapshot, Some((seq, state)));
    assert_eq!(batches, after);
}

/// The store of partition p0 for pod-a, recovered (the partition taken at epoch 1 on a
/// fresh table).
fn first_store(connection: &DynamoConnection) -> DynamoStore {
    let mut store = connection.store("p0", "pod-a").unwrap();
    recover(&mut store);
    store
}

/// Saves a checkpoint of batch `seq` and waits until it is published.
fn publish(store: &mut DynamoStore, seq: u64, state: Vec<u8>) {
    store.begin_snapshot(seq).unwrap();
    store.save_snapshot(Snapshot { seq, state }).unwrap();
    store.finish_checkpoint().unwrap();
}

/// `config` with calls that give up after 3 attempts (or 3 rounds with nothing processed)
/// and back off for milliseconds, so that a test sees a give-up quickly.
fn giving_up_after_3(mut config: DynamoConfig) -> DynamoConfig {
    config.calls = CallPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
        ..CallPolicy::default()
    };
    config
}

fn with_faults(mut config: DynamoConfig) -> (DynamoConfig, FaultLayer) {
    let faults = FaultLayer::new();
    config.faults = Some(faults.clone());
    (config, faults)
}

/// Runs `f` with a DynamoDB client of the test's own.
fn with_client<T, F: std::future::Future<Output = T>>(
    local: &DynamoLocal,
    f: impl FnOnce(Client) -> F,
) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f(local.client()))
}

/// Writes by hand the manifest of partition p0's checkpoint of batch `seq` (epoch 1,
/// journal slot `seq + 1`) holding `state` in `chunks` chunks, as a build that wrote
/// `per_key` (or, with `None`, one from before chunk groups) would.
async fn put_manifest(
    client: &Client,
    table: &str,
    seq: u64,
    chunks: u64,
    per_key: Option<u64>,
    state: &[u8],
) {
    let n = |v: u64| AttributeValue::N(v.to_string());
    let digest = AttributeValue::B(Blob::new(blake3::hash(state).as_bytes().to_vec()));
    let mut item: std::collections::HashMap<String, AttributeValue> = [
        ("pk", AttributeValue::S("p0".into())),
        ("seq", n(seq)),
        ("slot", n(seq + 1)),
        ("epoch", n(1)),
        ("chunks", n(chunks)),
        ("bytes", n(state.len() as u64)),
        ("digest", digest),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    if let Some(per_key) = per_key {
        item.insert("per_key".into(), n(per_key));
    }
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// Writes by hand chunk `index` of a checkpoint, under hash key `pk`.
async fn put_chunk(client: &Client, table: &str, pk: &str, index: u64, body: &[u8]) {
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(pk.into()))
        .item("seq", AttributeValue::N(index.to_string()))
        .item("body", AttributeValue::B(Blob::new(body)))
        .send()
        .await
        .unwrap();
}

/// Writes by hand partition p0's intent of an upload of checkpoint `seq` by `epoch` (8
/// chunks per key), with its chunk count; or, with `None`, one with no fields to read.
async fn put_intent(client: &Client, table: &str, seq: u64, epoch: u64, chunks: Option<u64>) {
    let n = |v: u64| AttributeValue::N(v.to_string());
    let mut put = client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("p0#uploads".into()))
        .item("seq", n((seq << 24) | epoch));
    if let Some(chunks) = chunks {
        put = put
            .item("intent_seq", n(seq))
            .item("epoch", n(epoch))
            .item("chunks", n(chunks))
            .item("per_key", n(8));
    }
    put.send().await.unwrap();
}

/// Every item of the checkpoints table, as (hash key, range key).
fn checkpoint_items(local: &DynamoLocal, config: &DynamoConfig) -> Vec<(String, u64)> {
    let table = format!("{}checkpoints", config.table_prefix);
    with_client(local, |client| scan(client, table))
}

async fn scan(client: Client, table: String) -> Vec<(String, u64)> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(&table)
            .projection_expression("pk, seq")
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in out.items() {
            let pk = item["pk"].as_s().unwrap().clone();
            let seq = item["seq"].as_n().unwrap().parse().unwrap();
            items.push((pk, seq));
        }
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    items.sort();
    items
}

#[test]
fn a_checkpoint_upload_does_not_hold_up_the_journal() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(local.config("upload"));
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=3 {
        store.append(&batch(seq)).unwrap();
    }
    // Every chunk write now takes 1.5 s: an upload the engine waited for would hold the
    // partition's calls that long.
    faults.delay_batch_writes(Duration::from_millis(1500));
    let checkpoint = state(3, 3);
    let started = Instant::now();
    store.begin_snapshot(3).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 3,
            state: checkpoint.clone(),
        })
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "save_snapshot waited for the upload: {:?}",
        started.elapsed()
    );
    for seq in 4..=5 {
        store.append(&batch(seq)).unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "appends waited for the upload: {:?}",
        started.elapsed()
    );
    store.finish_checkpoint().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    store.append(&batch(6)).unwrap();
    drop(store);

    assert_recovers(&connection, 3, checkpoint, &[4, 5, 6]);
}

#[test]
fn dropping_the_store_waits_for_the_upload() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(local.config("drop"));
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();
    faults.delay_batch_writes(Duration::from_millis(500));
    let checkpoint = state(1, 2);
    store.begin_snapshot(1).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 1,
            state: checkpoint.clone(),
        })
        .unwrap();
    drop(store); // the engine's last snapshot is taken just before this

    assert_recovers(&connection, 1, checkpoint, &[]);
}

#[test]
fn older_checkpoints_are_deleted_once_a_newer_one_is_published() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("garbage");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=4 {
        store.append(&batch(seq)).unwrap();
        publish(&mut store, seq, state(seq, 3));
    }
    drop(store);
    let stats = connection.stats();
    assert_eq!(
        (stats.checkpoints_published, stats.checkpoints_failed),
        (4, 0)
    );
    assert_eq!(stats.checkpoints_deleted, 2);
    assert_recovers(&connection, 4, state(4, 3), &[]);

    // Left: the manifests of 3 and 4 under the partition, and their three chunks each.
    let mut expected = vec![("p0".to_string(), 3), ("p0".to_string(), 4)];
    for seq in [3, 4] {
        for chunk in 0..3 {
            expected.push((format!("p0#c{seq}#e1#g0"), chunk));
        }
    }
    expected.sort();
    assert_eq!(checkpoint_items(&local, &config), expected);
}

/// `/metrics` counts an upload when it ends, not when the engine next touches the store
/// (an idle partition's last checkpoint used to show only at close).
#[test]
fn a_published_checkpoint_is_counted_when_its_upload_ends() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let connection = DynamoConnection::connect(local.config("counted")).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();
    store.begin_snapshot(1).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 1,
            state: state(1, 2),
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while connection.stats().checkpoints_published == 0 {
        assert!(
            Instant::now() < deadline,
            "never counted while the store sat idle"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(connection.stats().checkpoints_failed, 0);
    store.finish_checkpoint().unwrap();
    assert_eq!(connection.stats().checkpoints_published, 1, "counted once");
}

/// A backlog of superseded checkpoints (left by a version that kept them all) is deleted a
/// few per upload, so that one upload never turns into a long deletion: at most 4 per run,
/// oldest first, the previous checkpoint always kept.
#[test]
fn a_backlog_of_old_checkpoints_is_deleted_at_most_four_per_upload() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("backlog");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=8 {
        store.append(&batch(seq)).unwrap();
    }
    // Checkpoints 1-7 as an older version left them: a manifest and one chunk each.
    let table = format!("{}checkpoints", config.table_prefix);
    with_client(&local, |client| async move {
        for seq in 1..=7u64 {
            let body = state(seq, 1);
            put_chunk(&client, &table, &format!("p0#c{seq}#e1#g0"), 0, &body).await;
            put_manifest(&client, &table, seq, 1, Some(8), &body).await;
        }
    });
    let manifests = |items: &[(String, u64)]| -> Vec<u64> {
        items
            .iter()
            .filter(|(pk, _)| pk == "p0")
            .map(|(_, seq)| *seq)
            .collect()
    };
    let chunk_keys = |items: &[(String, u64)]| -> Vec<String> {
        items
            .iter()
            .filter(|(pk, _)| pk != "p0")
            .map(|(pk, _)| pk.clone())
            .collect()
    };

    publish(&mut store, 8, state(8, 1));
    let left = checkpoint_items(&local, &config);
    assert_eq!(manifests(&left), [5, 6, 7, 8], "{left:?}");
    assert_eq!(
        chunk_keys(&left),
        ["p0#c5#e1#g0", "p0#c6#e1#g0", "p0#c7#e1#g0", "p0#c8#e1#g0"],
    );
    assert_eq!(connection.stats().checkpoints_deleted, 4);

    store.append(&batch(9)).unwrap();
    publish(&mut store, 9, state(9, 1));
    let left = checkpoint_items(&local, &config);
    assert_eq!(manifests(&left), [8, 9], "{left:?}");
    assert_eq!(chunk_keys(&left), ["p0#c8#e1#g0", "p0#c9#e1#g0"]);
    assert_eq!(connection.stats().checkpoints_deleted, 7);
    drop(store);
    assert_recovers(&connection, 9, state(9, 1), &[]);
}

/// A large checkpoint's chunks go under several hash keys (8 per key), so that DynamoDB
/// spreads the upload over partitions; and they load back.
#[test]
fn a_large_checkpoint_spreads_over_hash_keys() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("spread");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();
    let big = state(1, 20);
    publish(&mut store, 1, big.clone());
    drop(store);
    let items = checkpoint_items(&local, &config);
    let keys: std::collections::BTreeMap<String, usize> =
        items.iter().fold(Default::default(), |mut keys, (pk, _)| {
            *keys.entry(pk.clone()).or_default() += 1;
            keys
        });
    let expected: std::collections::BTreeMap<String, usize> = [
        ("p0".to_string(), 1),
        ("p0#c1#e1#g0".to_string(), 8),
        ("p0#c1#e1#g1".to_string(), 8),
        ("p0#c1#e1#g2".to_string(), 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
    assert_recovers(&connection, 1, big, &[]);
}

/// Checkpoints written before chunk groups (every chunk under one hash key, no `per_key`
/// in the manifest) still load, and are deleted like the others.
#[test]
fn a_checkpoint_in_the_old_layout_still_loads_and_is_collected() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("old-layout");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap(); // journal slot 2 (the fence took slot 1)
    let old = state(1, 3);
    let table = format!("{}checkpoints", config.table_prefix);
    with_client(&local, |client| {
        let (table, old) = (table.clone(), old.clone());
        async move {
            for (i, chunk) in old.chunks(MAX_CHUNK_BYTES).enumerate() {
                put_chunk(&client, &table, "p0#c1#e1", i as u64, chunk).await;
            }
            put_manifest(&client, &table, 1, 3, None, &old).await;
        }
    });
    store.append(&batch(2)).unwrap();
    drop(store);

    let mut second = connection.store("p0", "pod-b").unwrap();
    let (snapshot, batches) = recover(&mut second);
    assert_eq!(snapshot, Some((1, old)));
    assert_eq!(batches, [2]);
    for seq in [2, 3] {
        if seq == 3 {
            second.append(&batch(3)).unwrap();
        }
        publish(&mut second, seq, state(seq, 2));
    }
    let left = checkpoint_items(&local, &config);
    assert!(
        left.iter().all(|(pk, _)| !pk.starts_with("p0#c1#")),
        "the old layout's chunks are left: {left:?}"
    );
    assert_eq!(
        left.iter().filter(|(pk, _)| pk == "p0").count(),
        2,
        "{left:?}"
    );
}

#[test]
fn throttled_chunks_are_sent_again_while_dynamodb_makes_progress() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(giving_up_after_3(local.config("unprocessed")));
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();

    // Two of every three chunk writes come back with nothing written. 51 chunks are three
    // BatchWriteItem groups: six rounds with nothing written in all, never three in a row.
    faults.leave_batch_writes_unprocessed(3);
    let first = state(1, 51);
    publish(&mut store, 1, first.clone());

    // No chunk written, round after round: the checkpoint gives up after three, and the
    // journal goes on.
    faults.leave_batch_writes_unprocessed(0);
    faults.stall_chunk_puts_after(0);
    store.append(&batch(2)).unwrap();
    store.begin_snapshot(2).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 2,
            state: state(2, 2),
        })
        .unwrap();
    let error = store.finish_checkpoint().unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("3 rounds in a row"), "{error}");
    assert!(error.to_string().contains("checkpoint chunks"), "{error}");
    store.append(&batch(3)).unwrap();
    drop(store);

    assert_recovers(&connection, 1, first, &[2, 3]);
}

/// An upload that fails for certain deletes the chunks it wrote: nothing will ever refer
/// to them (a checkpoint is hundreds of MB; left behind, each failure would cost that much
/// storage for good).
#[test]
fn an_upload_that_gives_up_deletes_the_chunks_it_wrote() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(giving_up_after_3(local.config("gave-up")));
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();
    // 51 chunks, three BatchWriteItem calls: the first is written, then the partition
    // stalls for good.
    faults.stall_chunk_puts_after(1);
    store.begin_snapshot(1).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 1,
            state: state(1, 51),
        })
        .unwrap();
    let error = store.finish_checkpoint().unwrap_err();
    assert!(error.to_string().contains("3 rounds in a row"), "{error}");
    // One call of 25 chunks went through (each chunk about 400 write units, their
    // deletes as many), then three stalled rounds.
    assert_eq!(faults.chunk_put_calls(), 4);
    let chunk_units = (MAX_CHUNK_BYTES / 1024) as f64;
    assert!(
        connection.stats().write_units >= 25.0 * chunk_units,
        "{:?}",
        connection.stats()
    );
    let left = checkpoint_items(&local, &config);
    assert!(
        left.is_empty(),
        "left behind: {} items, {left:?}",
        left.len()
    );
    assert_eq!(connection.stats().checkpoints_failed, 1);
    assert_eq!(connection.stats().gave_up, 1);
}

/// A pod killed in the middle of an upload leaves chunks no manifest refers to, and the
/// upload's intent: the next checkpoint published after it deletes both.
#[test]
fn the_chunks_of_an_upload_cut_short_are_deleted_by_a_later_checkpoint() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("abandoned");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=2 {
        store.append(&batch(seq)).unwrap();
    }
    // What a pod killed while uploading checkpoints 1 and 7 (epoch 1) leaves: its intents
    // and some of their chunks.
    let table = format!("{}checkpoints", config.table_prefix);
    with_client(&local, |client| async move {
        for seq in [1u64, 7] {
            put_intent(&client, &table, seq, 1, Some(3)).await;
            for chunk in 0..2 {
                put_chunk(
                    &client,
                    &table,
                    &format!("p0#c{seq}#e1#g0"),
                    chunk,
                    &[1; 100],
                )
                .await;
            }
        }
    });
    publish(&mut store, 2, state(2, 1));
    let left = checkpoint_items(&local, &config);
    // Checkpoint 2, and what belongs to 7 (newer than 2: never collected before a
    // checkpoint after it is published).
    let expected: Vec<(String, u64)> = vec![
        ("p0".into(), 2),
        ("p0#c2#e1#g0".into(), 0),
        ("p0#c7#e1#g0".into(), 0),
        ("p0#c7#e1#g0".into(), 1),
        ("p0#uploads".into(), (7 << 24) | 1),
    ];
    assert_eq!(left, expected);
    assert_eq!(connection.stats().checkpoints_deleted, 1);
    assert_recovers(&connection, 2, state(2, 1), &[]);
}

/// Collecting abandoned uploads never deletes the chunks of a published checkpoint (an
/// intent of the same seq and epoch as a manifest), and an intent that cannot be read is
/// deleted rather than stopping every later collection.
#[test]
fn intent_collection_spares_published_chunks_and_passes_unreadable_intents() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("intents");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();
    publish(&mut store, 1, state(1, 3));
    let table = format!("{}checkpoints", config.table_prefix);
    with_client(&local, |client| async move {
        // Checkpoint 1's own intent, as if it had come back; one that cannot be read; an
        // abandoned upload of batch 1 by epoch 3 with one chunk written.
        put_intent(&client, &table, 1, 1, Some(3)).await;
        put_intent(&client, &table, 1, 2, None).await;
        put_intent(&client, &table, 1, 3, Some(2)).await;
        put_chunk(&client, &table, "p0#c1#e3#g0", 0, &[3; 100]).await;
    });
    store.append(&batch(2)).unwrap();
    publish(&mut store, 2, state(2, 1));
    let mut expected: Vec<(String, u64)> = vec![("p0".into(), 1), ("p0".into(), 2)];
    expected.extend((0..3).map(|i| ("p0#c1#e1#g0".to_string(), i)));
    expected.push(("p0#c2#e1#g0".into(), 0));
    expected.sort();
    assert_eq!(checkpoint_items(&local, &config), expected);
    assert_eq!(connection.stats().checkpoints_deleted, 3);
    drop(store);
    assert_recovers(&connection, 2, state(2, 1), &[]);
}

/// A checkpoint of a batch already published is not written again: its chunk keys are the
/// published one's, and an upload that failed half-way would have deleted them.
#[test]
fn a_checkpoint_of_a_published_batch_is_kept_as_it_is() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(local.config("twice"));
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    store.append(&batch(1)).unwrap();
    publish(&mut store, 1, state(1, 3));
    // The same batch again, on a table that now writes nothing.
    faults.stall_chunk_puts_after(0);
    publish(&mut store, 1, state(1, 3));
    assert_eq!(faults.chunk_put_calls(), 0, "chunks written again");
    drop(store);
    assert_recovers(&connection, 1, state(1, 3), &[]);
}

#[test]
fn a_fenced_upload_deletes_the_chunks_it_wrote() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("fenced-upload");
    let connection = DynamoConnection::connect(config.clone()).unwrap();
    let mut old = connection.store("p0", "pod-a").unwrap();
    recover(&mut old);
    old.append(&batch(1)).unwrap();
    // Another pod takes the partition over, then the old owner tries to checkpoint.
    let other = DynamoConnection::connect(config.clone()).unwrap();
    let mut new = other.store("p0", "pod-b").unwrap();
    recover(&mut new);
    old.begin_snapshot(1).unwrap();
    old.save_snapshot(Snapshot {
        seq: 1,
        state: state(1, 3),
    })
    .unwrap();
    let error = old.finish_checkpoint().unwrap_err();
    assert!(error.is_taken_over(), "{error}");
    let left = checkpoint_items(&local, &config);
    assert!(left.is_empty(), "left behind: {left:?}");
    // The new owner's own checkpoint is untouched by it, and loads.
    publish(&mut new, 1, state(1, 3));
    drop((old, new));
    let (snapshot, _) = recover(&mut other.store("p0", "pod-c").unwrap());
    assert_eq!(snapshot, Some((1, state(1, 3))));
}

/// The engine takes a snapshot every 3 batches here, while each upload takes 2 s: it must
/// not wait for the upload before (with the partition held), but take the next snapshot
/// once the last one is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_never_waits_for_an_upload_still_running() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(local.config("engine-upload"));
    let connection = DynamoConnection::connect(config).unwrap();
    faults.delay_batch_writes(Duration::from_secs(2));
    let store = connection.store("p0", "pod-a").unwrap();
    let config = EngineConfig {
        snapshot_every_batches: 3,
        ..EngineConfig::default()
    };
    let (engine, thread) = Engine::start(Box::new(store), Arc::new(SystemClock), config).unwrap();
    engine
        .submit(grant("grant", 1_000_000, 0))
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut n = 0u64;
    // Sequential calls: each is a batch of its own, and every third takes a snapshot.
    while started.elapsed() < Duration::from_secs(5) {
        let call = Instant::now();
        engine
            .submit(reserve(format!("r{n}"), 1, HOLD_MS))
            .await
            .unwrap()
            .unwrap();
        slowest = slowest.max(call.elapsed());
        n += 1;
    }
    // Waiting for the uploads, it managed 6 calls here; without, hundreds.
    assert!(n >= 15, "only {n} calls in 5 s");
    assert!(
        slowest < Duration::from_millis(1500),
        "a call waited {slowest:?}: the engine waited for an upload"
    );
    // Snapshots were taken as uploads finished: two or three in 5 s, not one per 3 calls.
    let snapshots = engine.stats().snapshot().snapshots;
    assert!((1..=4).contains(&snapshots), "{snapshots} snapshots");
    faults.delay_batch_writes(Duration::ZERO);
    drop(engine);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();

    // The last snapshot (at close) and the journal give back every hold.
    let mut store = connection.store("p0", "pod-b").unwrap();
    let report = tokio::task::spawn_blocking(move || {
        let ledger = recover_ledger(&mut store).unwrap();
        verify_recovered(&ledger, &store).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(report.open_holds, n);
}

/// A store closed while its last checkpoint uploads waits for the checkpoint, not for the
/// journal pruning after it: the batches that pruning would delete are left for the next
/// checkpoint (of the next start) to delete.
#[test]
fn a_closing_store_leaves_the_journal_pruning_to_the_next_checkpoint() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(local.config("prune-close"));
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=3 {
        store.append(&batch(seq)).unwrap();
    }
    publish(&mut store, 3, state(3, 1));
    store.append(&batch(4)).unwrap();
    store.append(&batch(5)).unwrap();
    publish(&mut store, 5, state(5, 1));
    // Checkpoint 3, kept before 5, covers batches 1-3.
    assert_eq!(connection.stats().journal_batches_deleted, 3);
    store.append(&batch(6)).unwrap();
    store.append(&batch(7)).unwrap();
    // The last checkpoint's writes are held: the store closes while it uploads.
    faults.delay_batch_writes(Duration::from_millis(300));
    store.begin_snapshot(7).unwrap();
    store
        .save_snapshot(Snapshot {
            seq: 7,
            state: state(7, 1),
        })
        .unwrap();
    drop(store);
    let stats = connection.stats();
    assert_eq!(
        stats.checkpoints_published, 3,
        "closing waited for the checkpoint"
    );
    assert_eq!(
        stats.journal_batches_deleted, 3,
        "but not for the pruning after it"
    );
    faults.delay_batch_writes(Duration::ZERO);
    assert_recovers(&connection, 7, state(7, 1), &[]);
}

/// Pruning the journal is storage only: when DynamoDB takes none of its deletes, the
/// checkpoint stays published and the journal keeps the batches, and the next checkpoint
/// deletes them with its own.
#[test]
fn journal_batches_not_deleted_after_one_checkpoint_are_deleted_after_the_next() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let (config, faults) = with_faults(giving_up_after_3(local.config("prune-fails")));
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=3 {
        store.append(&batch(seq)).unwrap();
    }
    publish(&mut store, 3, state(3, 1));
    store.append(&batch(4)).unwrap();
    store.append(&batch(5)).unwrap();
    // Batches 1-3 are due for deletion; DynamoDB takes no delete.
    faults.stall_deletes(true);
    publish(&mut store, 5, state(5, 1));
    let stats = connection.stats();
    assert_eq!(stats.checkpoints_published, 2);
    assert_eq!(stats.journal_batches_deleted, 0);
    assert_eq!(stats.gave_up, 1, "the one delete call gave up: {stats:?}");
    faults.stall_deletes(false);
    store.append(&batch(6)).unwrap();
    store.append(&batch(7)).unwrap();
    publish(&mut store, 7, state(7, 1));
    // Checkpoint 5, kept before 7, covers batches 1-5: those 3 left over and its own 2.
    assert_eq!(connection.stats().journal_batches_deleted, 5);
    drop(store);
    assert_recovers(&connection, 7, state(7, 1), &[]);
}

/// `keep_journal` (`tollgate serve --dynamodb-keep-journal`): checkpoints come and go as
/// usual, and every journal batch stays.
#[test]
fn a_store_told_to_keep_the_journal_deletes_no_batch() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let mut config = local.config("keep-journal");
    config.keep_journal = true;
    let connection = DynamoConnection::connect(config).unwrap();
    let mut store = first_store(&connection);
    for seq in 1..=7 {
        store.append(&batch(seq)).unwrap();
        if seq % 2 == 1 && seq > 1 {
            publish(&mut store, seq, state(seq, 1));
        }
    }
    let stats = connection.stats();
    assert_eq!(
        (stats.checkpoints_published, stats.checkpoints_deleted),
        (3, 1)
    );
    assert_eq!(stats.journal_batches_deleted, 0);
    let table = connection.journal_table();
    let slots: Vec<u64> = with_client(&local, |client| scan(client, table))
        .into_iter()
        .filter(|(pk, _)| pk == "p0")
        .map(|(_, slot)| slot)
        .collect();
    assert_eq!(
        slots,
        (1..=8).collect::<Vec<u64>>(),
        "the fence and all 7 batches"
    );
}
