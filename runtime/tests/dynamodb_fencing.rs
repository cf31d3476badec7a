//! Fencing: two writers that both believe they own a partition. Every write of the one
//! with the older epoch fails with a clear error, and nothing is spent twice.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::acme::{HOLD_MS, grant, reserve, wallet};
use common::dynamodb_local::DynamoLocal;
use tollgate_runtime::engine::{
    Engine, EngineConfig, SystemClock, recover_ledger, verify_recovered,
};
use tollgate_runtime::ledger::{Command, Keyed, Outcome, Timestamp};
use tollgate_runtime::store::dynamodb::{
    DynamoConnection, DynamoError, FaultLayer, MAX_CHUNK_BYTES, partition_name,
};
use tollgate_runtime::store::{Batch, LoggedCommand, Recovered, Snapshot, Store, StoreError};

fn batch(seq: u64, tag: &str) -> Batch {
    Batch {
        seq,
        commands: vec![LoggedCommand::Apply {
            now: Timestamp(seq),
            request: Keyed {
                customer: "acme".into(),
                key: format!("{tag}-{seq}"),
                command: Command::Release {
                    hold: tollgate_runtime::ledger::HoldId(seq),
                },
            },
        }],
        chain_head: [seq as u8; 32],
    }
}

fn recovered_keys(store: &mut dyn Store) -> Vec<String> {
    let mut keys = Vec::new();
    store
        .recover(&mut |item| {
            if let Recovered::Batch(b) = item {
                for c in b.commands {
                    if let LoggedCommand::Apply { request, .. } = c {
                        keys.push(request.key);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    keys
}

#[test]
fn the_older_epoch_can_never_write_again() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let connection = DynamoConnection::connect(local.config("fence")).unwrap();
    let mut old = connection.store("p0", "pod-a").unwrap();
    assert!(recovered_keys(&mut old).is_empty());
    assert_eq!(old.epoch(), 1);
    for seq in 1..=3 {
        old.append(&batch(seq, "old")).unwrap();
    }

    // A second owner takes over: it sees everything the old one wrote.
    let mut new = connection.store("p0", "pod-b").unwrap();
    assert_eq!(recovered_keys(&mut new), ["old-1", "old-2", "old-3"]);
    assert_eq!(new.epoch(), 2);

    // Every write of the old owner now fails, with a clear, permanent error.
    for attempt in 0..3 {
        let error = old.append(&batch(4, "old")).unwrap_err();
        match &error {
            StoreError::Dynamo(DynamoError::Fenced {
                epoch,
                current_epoch,
                current_owner,
                ..
            }) => {
                assert_eq!((*epoch, *current_epoch), (1, 2), "attempt {attempt}");
                assert_eq!(current_owner, "pod-b");
            }
            other => panic!("expected Fenced, got {other}"),
        }
        assert!(!error.is_transient());
        assert!(error.to_string().contains("fenced"), "{error}");
    }
    // Its checkpoints are refused too (uploaded in the background: the refusal comes with
    // the upload's outcome).
    old.begin_snapshot(3).unwrap();
    old.save_snapshot(tollgate_runtime::store::Snapshot {
        seq: 3,
        state: vec![1, 2, 3],
    })
    .unwrap();
    let error = old.finish_checkpoint().unwrap_err();
    assert_eq!(error.code(), "dynamodb_fenced", "{error}");

    // The new owner writes on; a third recovery sees exactly one history.
    new.append(&batch(4, "new")).unwrap();
    new.append(&batch(5, "new")).unwrap();
    let error = old.append(&batch(4, "old")).unwrap_err();
    assert_eq!(error.code(), "dynamodb_fenced");
    let mut third = connection.store("p0", "pod-c").unwrap();
    assert_eq!(
        recovered_keys(&mut third),
        ["old-1", "old-2", "old-3", "new-4", "new-5"]
    );
}

/// A pod cut off from DynamoDB long enough is replaced (its successor takes the partition
/// over); when DynamoDB answers it again, its restart of the partition must not take the
/// partition back from that live owner.
#[test]
fn a_restart_never_takes_the_partition_back_from_a_newer_owner() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let config = local.config("retake");
    // Two processes on the same tables: two connections.
    let cut_off = DynamoConnection::connect(config.clone()).unwrap();
    let successor = DynamoConnection::connect(config).unwrap();
    let mut first = cut_off.store("p0", "tollgate-0").unwrap();
    assert!(recovered_keys(&mut first).is_empty());
    first.append(&batch(1, "first")).unwrap();

    let mut live = successor.store("p0", "tollgate-0").unwrap();
    assert_eq!(recovered_keys(&mut live), ["first-1"]);
    assert_eq!(live.epoch(), 2);

    // The cut-off process restarts its partition: refused, and the lease is left alone.
    let mut again = cut_off.store_again("p0", "tollgate-0").unwrap();
    let error = again.recover(&mut |_| Ok(())).unwrap_err();
    assert_eq!(error.code(), "dynamodb_fenced", "{error}");
    assert!(!error.is_transient());
    assert!(error.to_string().contains("epoch 2"), "{error}");
    live.append(&batch(2, "live")).unwrap();

    // A restart of the owner's own still takes it again (a new epoch fences its old writer).
    let mut restarted = successor.store_again("p0", "tollgate-0").unwrap();
    assert_eq!(recovered_keys(&mut restarted), ["first-1", "live-2"]);
    assert_eq!(restarted.epoch(), 3);
    assert_eq!(
        live.append(&batch(3, "live")).unwrap_err().code(),
        "dynamodb_fenced"
    );
    restarted.append(&batch(3, "restarted")).unwrap();
}

/// A restart whose takeover landed but whose every answer was lost: the lease holds a
/// newer epoch, written by this very process. The next restart takes it again; it must not
/// take that lease for another owner's.
#[test]
fn a_restart_whose_takeover_answer_was_lost_takes_the_partition_next_time() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let mut config = local.config("lost-takeover");
    let faults = FaultLayer::new();
    config.faults = Some(faults.clone());
    config.calls.max_attempts = 2;
    let connection = DynamoConnection::connect(config).unwrap();
    let mut first = connection.store("p0", "tollgate-0").unwrap();
    assert!(recovered_keys(&mut first).is_empty());
    first.append(&batch(1, "first")).unwrap();

    faults.lose_next_put_answers(2);
    let mut again = connection.store_again("p0", "tollgate-0").unwrap();
    let error = again.recover(&mut |_| Ok(())).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(faults.lost(), 2);

    let mut restarted = connection.store_again("p0", "tollgate-0").unwrap();
    assert_eq!(recovered_keys(&mut restarted), ["first-1"]);
    assert_eq!(restarted.epoch(), 3, "epoch 2 (the lost takeover) was ours");
    restarted.append(&batch(2, "restarted")).unwrap();
}

const GRANTED: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_that_both_think_they_own_a_partition_never_double_spend() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let connection = DynamoConnection::connect(local.config("engines")).unwrap();
    let config = EngineConfig {
        tick: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let (a, _a_thread) = Engine::start(
        Box::new(connection.store("p0", "pod-a").unwrap()),
        Arc::new(SystemClock),
        config.clone(),
    )
    .unwrap();
    a.submit(grant("grant", GRANTED, 0)).await.unwrap().unwrap();
    // A spends 600 of 1,000.
    assert!(matches!(
        a.submit(reserve("a-1", 600, HOLD_MS)).await.unwrap(),
        Ok(Outcome::Reserved { .. })
    ));

    // B starts on the same partition (a wrong handover): it recovers A's state.
    let (b, _b_thread) = Engine::start(
        Box::new(connection.store("p0", "pod-b").unwrap()),
        Arc::new(SystemClock),
        config,
    )
    .unwrap();
    // A's next write is fenced: its caller gets an error, never an acknowledgement.
    let error = a.submit(reserve("a-2", 400, HOLD_MS)).await.unwrap_err();
    assert!(
        error.to_string().contains("fenced") && error.to_string().contains("epoch 2"),
        "{error}"
    );
    // A has stopped for good.
    assert!(a.submit(reserve("a-3", 1, HOLD_MS)).await.is_err());

    // B knows about A's 600 and can hand out only the remaining 400.
    assert!(matches!(
        b.submit(reserve("b-1", 400, HOLD_MS)).await.unwrap(),
        Ok(Outcome::Reserved { .. })
    ));
    assert!(b.submit(reserve("b-2", 1, HOLD_MS)).await.unwrap().is_err());

    // A fresh recovery: exactly A's first reserve and B's, nothing of a-2.
    let mut store = connection.store("p0", "auditor").unwrap();
    let ledger = recover_ledger(&mut store).unwrap();
    verify_recovered(&ledger, &store).unwrap();
    let balance = ledger.wallet_balance(&wallet()).unwrap();
    assert_eq!((balance.available, balance.pending), (0, GRANTED));
    assert!(ledger.key_record("acme", "a-1").is_some());
    assert!(ledger.key_record("acme", "a-2").is_none());
    assert!(ledger.key_record("acme", "b-1").is_some());
}

#[test]
fn the_partition_count_is_recorded_and_another_is_refused() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    // New tables: the count asked for (or the default) is recorded at the first start.
    let connection = DynamoConnection::connect(local.config("count")).unwrap();
    assert_eq!(connection.partition_count(None, 4).unwrap(), 4);
    assert_eq!(connection.partition_count(Some(4), 8).unwrap(), 4);
    assert_eq!(
        connection.partition_count(None, 8).unwrap(),
        4,
        "recorded wins"
    );
    let error = connection
        .partition_count(Some(3), 4)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("created with 4 partitions, not 3"),
        "{error}"
    );
    for out_of_range in [0, 1025] {
        let error = DynamoConnection::connect(local.config("range"))
            .unwrap()
            .partition_count(Some(out_of_range), 4)
            .unwrap_err()
            .to_string();
        assert!(error.contains("between 1 and 1024"), "{error}");
    }

    // Tables used before the count was recorded: their partitions' leases show it.
    let legacy = DynamoConnection::connect(local.config("legacy")).unwrap();
    for p in 0..4 {
        // A store takes its partition's lease when it recovers.
        let mut store = legacy.store(&partition_name(p), "pod-a").unwrap();
        assert!(recovered_keys(&mut store).is_empty());
    }
    let more = legacy.partition_count(Some(2), 4).unwrap_err().to_string();
    assert!(
        more.contains("with more than 2 partitions, not 2"),
        "{more}"
    );
    // No recorded count to fall back on: the error says to give the right one.
    assert!(more.contains("pass --partitions"), "{more}");
    let fewer = legacy.partition_count(None, 8).unwrap_err().to_string();
    assert!(
        fewer.contains("with fewer than 8 partitions, not 8"),
        "{fewer}"
    );
    assert_eq!(legacy.partition_count(None, 4).unwrap(), 4);
    assert_eq!(legacy.partition_count(Some(4), 8).unwrap(), 4);
}

/// The journal items under the partition's hash key (`p0`: slots) and under the hash keys of
/// its batches' continuations (`p0#s<slot>`), each as (hash key, range key).
fn journal_items(local: &DynamoLocal, table: &str) -> Vec<(String, u64)> {
    let client = local.client();
    let table = table.to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let scanned = client.scan().table_name(table).send().await.unwrap();
            assert!(scanned.last_evaluated_key().is_none(), "one page");
            let mut found: Vec<(String, u64)> = scanned
                .items()
                .iter()
                .filter_map(|item| {
                    let Some(AttributeValue::S(pk)) = item.get("pk") else {
                        return None;
                    };
                    let Some(AttributeValue::N(seq)) = item.get("seq") else {
                        return None;
                    };
                    (pk == "p0" || pk.starts_with("p0#s"))
                        .then(|| (pk.clone(), seq.parse().unwrap()))
                })
                .collect();
            found.sort();
            found
        })
}

/// Once a checkpoint is published, the journal batches that the checkpoint kept before it
/// covers are deleted, continuation items too: no recovery replays from before that one.
/// The fence stays, so an owner fenced before the batches around it were deleted still
/// finds its next slot taken, and recovery still sees one history.
#[test]
fn journal_batches_a_kept_checkpoint_covers_are_deleted_and_the_fence_stays() {
    let Some(local) = DynamoLocal::start() else {
        return;
    };
    let connection = DynamoConnection::connect(local.config("prune")).unwrap();
    let table = connection.journal_table();
    let mut old = connection.store("p0", "pod-a").unwrap();
    assert!(recovered_keys(&mut old).is_empty());
    // 40 batches: more than one BatchWriteItem (25) deletes.
    for seq in 1..=40 {
        old.append(&batch(seq, "old")).unwrap(); // slots 2-41, after its own fence in 1
    }
    let mut new = connection.store("p0", "pod-b").unwrap();
    let old_keys: Vec<String> = (1..=40).map(|seq| format!("old-{seq}")).collect();
    assert_eq!(recovered_keys(&mut new), old_keys); // its fence in slot 42
    let publish = |store: &mut tollgate_runtime::store::dynamodb::DynamoStore, seq: u64| {
        store.begin_snapshot(seq).unwrap();
        store
            .save_snapshot(Snapshot {
                seq,
                state: vec![seq as u8; 16],
            })
            .unwrap();
        store.finish_checkpoint().unwrap();
    };
    // Batch 42 spans three items: its head in slot 44, two continuations under p0#s44.
    let mut big = batch(42, "new");
    let LoggedCommand::Apply { request, .. } = &mut big.commands[0] else {
        unreachable!()
    };
    request.key = "k".repeat(2 * MAX_CHUNK_BYTES + 1_000);
    new.append(&batch(41, "new")).unwrap(); // slot 43
    new.append(&big).unwrap(); // slot 44
    let items = journal_items(&local, &table);
    assert!(items.contains(&("p0#s44".into(), 2)), "{items:?}");
    publish(&mut new, 42);
    // The first checkpoint: none kept before it, nothing deleted.
    assert_eq!(journal_items(&local, &table).len(), 44 + 2);
    assert_eq!(connection.stats().journal_batches_deleted, 0);
    new.append(&batch(43, "new")).unwrap(); // slot 45
    new.append(&batch(44, "new")).unwrap(); // slot 46
    publish(&mut new, 44);
    // Checkpoint 42, kept before 44, covers slots 1-44: every batch there goes,
    // continuations and all; the fences (1 and 42) stay.
    let slots = |items: Vec<(String, u64)>| items.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
    let left = journal_items(&local, &table);
    assert!(left.iter().all(|(pk, _)| pk == "p0"), "{left:?}");
    assert_eq!(slots(left), [1, 42, 45, 46]);
    assert_eq!(connection.stats().journal_batches_deleted, 42);
    new.append(&batch(45, "new")).unwrap(); // slot 47
    new.append(&batch(46, "new")).unwrap(); // slot 48
    publish(&mut new, 46);
    assert_eq!(slots(journal_items(&local, &table)), [1, 42, 47, 48]);
    assert_eq!(connection.stats().journal_batches_deleted, 44);

    // The old owner wakes up and writes its next batch: into the fence's slot, taken.
    let error = old.append(&batch(41, "old")).unwrap_err();
    assert_eq!(error.code(), "dynamodb_fenced", "{error}");
    // A recovery loads checkpoint 46 and replays what came after it.
    new.append(&batch(47, "new")).unwrap();
    let mut third = connection.store("p0", "pod-c").unwrap();
    let mut snapshot = None;
    let mut keys = Vec::new();
    third
        .recover(&mut |item| {
            match item {
                Recovered::Snapshot(s) => snapshot = Some(s.seq),
                Recovered::Batch(b) => keys.push(b.seq),
            }
            Ok(())
        })
        .unwrap();
    assert_eq!((snapshot, keys), (Some(46), vec![47]));
}
