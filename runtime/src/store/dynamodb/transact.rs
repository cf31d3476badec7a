//! Conditional writes. One `TransactWriteItems` call, shared by the journal and checkpoint
//! writes: retried with the same client token (DynamoDB applies a token once within ten
//! minutes), its consumed capacity counted, and a cancellation read by the caller. One
//! conditional `PutItem`, shared by the journal, the leases and the partition count.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::DynamoError;
use super::connection::Shared;
use super::items::Item;
use super::retry::AttemptError;

/// What a conditional `PutItem` did.
pub(crate) enum PutOutcome {
    Stored,
    /// The condition failed; the item that failed it, if there was one.
    Refused(Option<Item>),
}

/// Writes `item` if no item has its key `pk` yet (see [`put_item_if`]).
pub(crate) async fn put_item_if_absent(
    shared: &Shared,
    table: &str,
    pk: &str,
    item: &Item,
) -> Result<PutOutcome, DynamoError> {
    let names = [("#pk", pk)];
    put_item_if(
        shared,
        table,
        item,
        "attribute_not_exists(#pk)",
        &names,
        &[],
    )
    .await
}

/// Writes `item` if `condition` holds (with its attribute `names` and `values`), retried on
/// transient errors. A retry of a write that landed comes back `Refused` with our own item,
/// which the caller must recognise.
pub(crate) async fn put_item_if(
    shared: &Shared,
    table: &str,
    item: &Item,
    condition: &str,
    names: &[(&str, &str)],
    values: &[(&str, AttributeValue)],
) -> Result<PutOutcome, DynamoError> {
    shared
        .retried("PutItem", || {
            let mut request = shared
                .client
                .put_item()
                .table_name(table)
                .set_item(Some(item.clone()))
                .condition_expression(condition)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            for (name, attribute) in names {
                request = request.expression_attribute_names(*name, *attribute);
            }
            for (name, value) in values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            async move {
                match request.send().await {
                    Ok(out) => {
                        let units = out.consumed_capacity().and_then(|c| c.capacity_units());
                        shared.stats.consumed(units, None);
                        Ok(PutOutcome::Stored)
                    }
                    Err(e) => match e.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(
                            PutOutcome::Refused(c.item().filter(|i| !i.is_empty()).cloned()),
                        ),
                        _ => Err(AttemptError::from_sdk("PutItem", &e)),
                    },
                }
            }
        })
        .await
}

/// Sends `writes` as one transaction. On success the answer is `stored`. On a cancellation
/// `canceled` reads the reasons (one per write, in order): `Some` is the answer, `None` a
/// cancellation worth retrying (throttling, a conflicting transaction).
pub(crate) async fn transact_write<T: Clone>(
    shared: &Shared,
    writes: &[TransactWriteItem],
    token: &str,
    stored: T,
    canceled: impl Fn(&[CancellationReason]) -> Option<T>,
) -> Result<T, DynamoError> {
    shared
        .retried("TransactWriteItems", || {
            let request = shared
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.to_vec()))
                .client_request_token(token)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            let (stored, canceled) = (stored.clone(), &canceled);
            async move {
                match request.send().await {
                    Ok(out) => {
                        shared.stats.consumed_writes(out.consumed_capacity());
                        Ok(stored)
                    }
                    Err(e) => match e.as_service_error() {
                        Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                            let reasons = c.cancellation_reasons();
                            canceled(reasons).ok_or_else(|| AttemptError::Transient {
                                throttled: reasons.iter().any(|r| {
                                    r.code() == Some("ThrottlingError")
                                        || r.code() == Some("ProvisionedThroughputExceeded")
                                }),
                                detail: format!(
                                    "transaction canceled: {:?}",
                                    reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                                ),
                            })
                        }
                        _ => Err(AttemptError::from_sdk("TransactWriteItems", &e)),
                    },
                }
            }
        })
        .await
}
