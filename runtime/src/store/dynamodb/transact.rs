//! One `TransactWriteItems` call, shared by the journal and checkpoint writes: retried with
//! the same client token (DynamoDB applies a token once within ten minutes), its consumed
//! capacity counted, and a cancellation read by the caller.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, ReturnConsumedCapacity, TransactWriteItem};

use super::DynamoError;
use super::connection::Shared;
use super::retry::AttemptError;

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
