//! What can fail in a client subcommand, worded for the person at the shell. Printed as
//! `error: <this>` on stderr with exit code 1.

use std::path::PathBuf;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--addr` is not a URI.
    #[error("--addr {addr:?} is not a valid address (for example http://127.0.0.1:50051)")]
    BadAddress {
        addr: String,
        source: tonic::transport::Error,
    },
    /// Nothing answered at the address (refused, unresolvable, or connect timed out).
    #[error("cannot reach tollgate at {addr}: is 'tollgate serve' running?")]
    Unreachable {
        addr: String,
        source: tonic::transport::Error,
    },
    /// The call did not finish within `--timeout-ms`.
    #[error("DEADLINE_EXCEEDED: no answer within {timeout_ms} ms (raise --timeout-ms)")]
    Deadline { timeout_ms: u64 },
    /// The server answered with an error status.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Rpc(tonic::Status),
    /// An argument that clap could not check on its own.
    #[error("{field} {value:?}: {why}")]
    BadInput {
        field: &'static str,
        value: String,
        why: String,
    },
    /// The `--file` of `ingest` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line of the `--file` of `ingest` is not a usage event.
    #[error("{}:{line}: {why}", path.display())]
    BadEvent {
        path: PathBuf,
        line: usize,
        why: String,
    },
}

impl ClientError {
    /// The gRPC code name of the error: the server's status, or the code a call that never
    /// got an answer (or never left) comes closest to.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rpc(status) => code_name(status.code()),
            Self::Unreachable { .. } => "UNAVAILABLE",
            Self::Deadline { .. } => "DEADLINE_EXCEEDED",
            Self::BadAddress { .. }
            | Self::BadInput { .. }
            | Self::ReadFile { .. }
            | Self::BadEvent { .. } => "INVALID_ARGUMENT",
        }
    }

    /// The error for `--json`: `{"error": {"code", "message", "detail"?}}`, so that a script
    /// reading stdout gets JSON whatever happened.
    pub fn to_json(&self) -> serde_json::Value {
        // The text people read on stderr, without the code it may start with.
        let text = self.to_string();
        let message = text
            .strip_prefix(self.code())
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(&text);
        let mut error = serde_json::json!({ "code": self.code(), "message": message });
        if let Some(detail) = self.detail() {
            error["detail"] = detail.into();
        }
        serde_json::json!({ "error": error })
    }

    /// A second line for stderr with the underlying cause, when there is one worth showing.
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::Unreachable { source, .. } | Self::BadAddress { source, .. } => {
                Some(error_chain(source))
            }
            _ => None,
        }
    }
}

/// An error and its sources, joined by ": ", skipping a source that repeats its parent
/// (hyper's "tcp connect error: tcp connect error: ...").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if message != last {
            text.push_str(": ");
            text.push_str(&message);
        }
        last = message;
        source = cause.source();
    }
    text
}

/// The gRPC name of a status code, as in the gRPC spec and other tools' output.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_prints_as_code_name_and_message() {
        let err = ClientError::Rpc(tonic::Status::not_found("customer cus_9 does not exist"));
        assert_eq!(err.to_string(), "NOT_FOUND: customer cus_9 does not exist");
    }

    #[test]
    fn errors_print_as_json_with_their_code() {
        let err = ClientError::Rpc(tonic::Status::not_found("hold 9 does not exist"));
        assert_eq!(
            err.to_json(),
            serde_json::json!({"error": {"code": "NOT_FOUND", "message": "hold 9 does not exist"}})
        );
        let late = ClientError::Deadline { timeout_ms: 5 };
        assert_eq!(
            late.to_json(),
            serde_json::json!({"error": {"code": "DEADLINE_EXCEEDED", "message": "no answer within 5 ms (raise --timeout-ms)"}})
        );
        let bad = ClientError::BadInput {
            field: "--units",
            value: "-1".into(),
            why: "not a number".into(),
        };
        assert_eq!(
            bad.to_json(),
            serde_json::json!({"error": {"code": "INVALID_ARGUMENT", "message": "--units \"-1\": not a number"}})
        );
    }

    #[test]
    fn every_code_has_a_screaming_name() {
        for value in 0..=16 {
            let name = code_name(Code::from_i32(value));
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
    }

    #[test]
    fn bad_input_names_field_and_value() {
        let err = ClientError::BadInput {
            field: "amount",
            value: "1.0000001".into(),
            why: "more than 6 decimals".into(),
        };
        assert_eq!(
            err.to_string(),
            "amount \"1.0000001\": more than 6 decimals"
        );
    }
}
