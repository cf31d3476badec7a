//! What can go wrong talking to DynamoDB, and which of it is worth retrying.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// Errors of the dynamodb store. Wrapped in `StoreError::Dynamo`.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// DynamoDB did not answer in time, refused the connection, throttled us or failed
    /// with a 5xx, on every attempt until the call's deadline or attempt budget ran out.
    /// The write may or may not have landed; a restart resolves it from the journal.
    #[error(
        "dynamodb unavailable: {op} failed after {attempts} attempts in {elapsed_ms} ms: {last}"
    )]
    Unavailable {
        op: &'static str,
        attempts: u32,
        elapsed_ms: u64,
        last: String,
    },
    /// Another owner took the partition over: this writer's epoch is stale and every
    /// write it attempts is refused. Never retried; the engine stops.
    #[error(
        "partition {partition} is fenced: this writer holds epoch {epoch}, but epoch \
         {current_epoch} (owner {current_owner}) has taken the partition over; this writer \
         can no longer write"
    )]
    Fenced {
        partition: String,
        epoch: u64,
        current_epoch: u64,
        current_owner: String,
    },
    /// DynamoDB refused the request for a reason retrying cannot fix (validation, missing
    /// table, access denied).
    #[error("dynamodb rejected {op}: {code}: {message}")]
    Rejected {
        op: &'static str,
        code: String,
        message: String,
    },
    /// Something is bigger than a DynamoDB call can carry.
    #[error("{what} is {bytes} bytes; the limit is {limit}")]
    TooLarge {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
    /// What DynamoDB holds does not make sense (a gap in the journal, a checksum mismatch).
    #[error("partition {partition}: corrupt {what} at {at}: {reason}")]
    Corrupt {
        partition: String,
        what: &'static str,
        at: u64,
        reason: String,
    },
    /// Bad configuration, named by field.
    #[error("invalid dynamodb store configuration {field}: {reason}")]
    Config { field: &'static str, reason: String },
}

impl DynamoError {
    /// Whether the same call may succeed later (the store is back, throttling ended).
    pub fn is_transient(&self) -> bool {
        matches!(self, DynamoError::Unavailable { .. })
    }

    /// Stable code for metrics labels and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            DynamoError::Unavailable { .. } => "dynamodb_unavailable",
            DynamoError::Fenced { .. } => "dynamodb_fenced",
            DynamoError::Rejected { .. } => "dynamodb_rejected",
            DynamoError::TooLarge { .. } => "dynamodb_too_large",
            DynamoError::Corrupt { .. } => "dynamodb_corrupt",
            DynamoError::Config { .. } => "dynamodb_config",
        }
    }
}

/// How one failed attempt is to be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another attempt after a backoff; `throttled` says DynamoDB asked us to slow
    /// down (counted separately in the stats).
    Transient { throttled: bool, detail: String },
    /// Final.
    Permanent { code: String, message: String },
}

/// Error codes DynamoDB uses for throttling.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
];

/// Error codes of service-side trouble that clears by itself.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Classifies an SDK error. Anything that never reached DynamoDB or never got an answer
/// (timeouts, refused or dropped connections) is transient, as are throttling and 5xx;
/// any other service error is permanent.
pub fn classify<E>(error: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::TimeoutError(_) => Failure::Transient {
            throttled: false,
            detail: "attempt timed out".into(),
        },
        SdkError::DispatchFailure(e) => Failure::Transient {
            throttled: false,
            detail: format!("dispatch failure: {:?}", e.as_connector_error()),
        },
        SdkError::ResponseError(_) => Failure::Transient {
            throttled: false,
            detail: "response error (connection dropped?)".into(),
        },
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("Unknown").to_string();
            let message = err.message().unwrap_or_default().to_string();
            let status = service.raw().status().as_u16();
            let throttled = THROTTLING_CODES.contains(&code.as_str());
            if throttled || TRANSIENT_CODES.contains(&code.as_str()) || status >= 500 {
                Failure::Transient {
                    throttled,
                    detail: format!("{code} (HTTP {status}): {message}"),
                }
            } else {
                Failure::Permanent { code, message }
            }
        }
        // Construction failures and anything the SDK may add later: not retryable.
        other => Failure::Permanent {
            code: "ClientError".into(),
            message: format!("{other:?}"),
        },
    }
}
