//! Ingest: retries, duplicates and per-event refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::IngestEvent;
use crate::policy::Subject;
use crate::testing::{METERED, runtime, subscribe};

fn event(id: &str, customer: &str, quantity: u64) -> IngestEvent {
    IngestEvent {
        id: id.into(),
        customer: customer.into(),
        subject: Subject::default(),
        feature: "units".into(),
        quantity,
        dimensions: Default::default(),
    }
}

#[tokio::test]
async fn a_retry_gets_the_first_answer_and_a_changed_event_is_a_duplicate_not_a_conflict() {
    let t = runtime(METERED, 2);
    subscribe(&t.runtime, "cus_a", "metered").await;
    let first = t
        .runtime
        .ingest(vec![event("e1", "cus_a", 10)])
        .await
        .unwrap();
    assert_eq!((first.accepted, first.duplicates), (1, 0), "{first:?}");
    // The same request again: the same answer, nothing counted twice.
    let retry = t
        .runtime
        .ingest(vec![event("e1", "cus_a", 10)])
        .await
        .unwrap();
    assert_eq!(retry, first);
    // The same event id with another quantity: a duplicate of the event already counted.
    // (Its command differs; with a key made from the event ids alone this was refused as a
    // key conflict, for as long as the key was remembered.)
    let changed = t
        .runtime
        .ingest(vec![event("e1", "cus_a", 7)])
        .await
        .unwrap();
    assert_eq!(
        (changed.accepted, changed.duplicates, changed.rejected.len()),
        (0, 1, 0),
        "{changed:?}"
    );
    // A new event next to the old one: one counted, one duplicate.
    let mixed = t
        .runtime
        .ingest(vec![event("e1", "cus_a", 10), event("e2", "cus_a", 5)])
        .await
        .unwrap();
    assert_eq!((mixed.accepted, mixed.duplicates), (1, 1), "{mixed:?}");
}

#[tokio::test]
async fn an_event_with_a_bad_subject_or_dimension_is_rejected_alone() {
    let t = runtime(METERED, 2);
    subscribe(&t.runtime, "cus_a", "metered").await;
    subscribe(&t.runtime, "cus_b", "metered").await;
    let mut long_user = event("b2", "cus_b", 1);
    long_user.subject.user = Some("u".repeat(600));
    let mut long_dimension = event("a2", "cus_a", 1);
    long_dimension
        .dimensions
        .insert("model".into(), "m".repeat(200));
    let outcome = t
        .runtime
        .ingest(vec![
            event("a1", "cus_a", 1),
            long_user,
            event("b1", "cus_b", 1),
            long_dimension,
            event("x1", "cus_missing", 1),
        ])
        .await
        .unwrap();
    assert_eq!(outcome.accepted, 2, "{outcome:?}");
    let rejected: Vec<(u32, &str)> = outcome
        .rejected
        .iter()
        .map(|(i, reason)| (*i, reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert_eq!(rejected[0].0, 1);
    assert!(rejected[0].1.contains("subject.user"), "{rejected:?}");
    assert_eq!(rejected[1].0, 3);
    assert!(rejected[1].1.contains("dimensions.value"), "{rejected:?}");
    assert_eq!(rejected[2].0, 4);
    assert!(rejected[2].1.contains("does not exist"), "{rejected:?}");
}

/// A rejection reads as a sentence, not as the name of a Rust value (`NoSubscription`).
#[tokio::test]
async fn an_event_of_a_customer_without_a_plan_is_rejected_in_words() {
    let t = runtime(METERED, 1);
    t.runtime
        .upsert_customer("cus_new", "New", "u-new")
        .await
        .unwrap();
    let outcome = t
        .runtime
        .ingest(vec![event("n1", "cus_new", 1)])
        .await
        .unwrap();
    let reason = &outcome.rejected[0].1;
    assert_eq!(reason, "customer cus_new has no plan", "{outcome:?}");
}
