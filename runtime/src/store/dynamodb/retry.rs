//! Bounded retries: exponential backoff with full jitter, an attempt budget and a deadline
//! per call. The SDK's own retries are disabled (see `connection.rs`) so that this is the
//! one retry loop, and the one place an unknown outcome is resolved (`journal.rs`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::error::{Failure, classify};
use super::{CallPolicy, DynamoError, DynamoStats};

/// How one attempt ended, when it did not succeed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth retrying after a backoff.
    Transient { throttled: bool, detail: String },
    /// Stop now with this error.
    Fatal(DynamoError),
}

impl AttemptError {
    pub(crate) fn from_sdk<E>(op: &'static str, error: &SdkError<E, HttpResponse>) -> AttemptError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match classify(error) {
            Failure::Transient { throttled, detail } => {
                AttemptError::Transient { throttled, detail }
            }
            Failure::Permanent { code, message } => {
                AttemptError::Fatal(DynamoError::Rejected { op, code, message })
            }
        }
    }
}

/// The rounds of one batch call (`BatchWriteItem`, `BatchGetItem`) whose items DynamoDB
/// may leave unprocessed when it throttles: each round that leaves some backs off before
/// they are sent again, and `max_attempts` rounds in a row that got none through give up.
pub(crate) struct Unprocessed {
    op: &'static str,
    started: Instant,
    stalled: u32,
}

impl Unprocessed {
    pub(crate) fn new(op: &'static str) -> Unprocessed {
        Unprocessed {
            op,
            started: Instant::now(),
            stalled: 0,
        }
    }

    /// After a round that sent `sent` items and got `left` of them back unprocessed
    /// (`what` they are, for the error): backs off when `left` is not 0, or fails.
    pub(crate) async fn after_round(
        &mut self,
        shared: &super::connection::Shared,
        sent: usize,
        left: usize,
        what: &str,
    ) -> Result<(), DynamoError> {
        if left == 0 {
            self.stalled = 0;
            return Ok(());
        }
        self.stalled = if left < sent { 0 } else { self.stalled + 1 };
        if self.stalled >= shared.calls.max_attempts {
            shared.stats.gave_up();
            return Err(DynamoError::Unavailable {
                op: self.op,
                attempts: self.stalled,
                elapsed_ms: self.started.elapsed().as_millis() as u64,
                last: format!(
                    "{left} {what} stayed unprocessed for {} rounds in a row",
                    self.stalled
                ),
            });
        }
        shared.stats.throttled();
        let pause = backoff(&shared.calls, self.stalled + 1, shared.jitter.next());
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

/// The backoff before retry number `retry` (1 for the first retry): a uniformly random
/// duration in `[0, min(max_backoff, base_backoff * 2^(retry - 1))]` ("full jitter"), drawn
/// from `random`. Pure, so the bound is testable.
pub fn backoff(policy: &CallPolicy, retry: u32, random: u64) -> Duration {
    let shift = retry.saturating_sub(1).min(20);
    let ceiling = policy
        .base_backoff
        .saturating_mul(1 << shift)
        .min(policy.max_backoff);
    let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(random % ceiling_us.saturating_add(1))
}

/// A cheap random source for jitter (splitmix64). Jitter needs spread, not secrecy.
#[derive(Debug)]
pub(crate) struct Jitter(AtomicU64);

impl Jitter {
    pub(crate) fn new() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Jitter(AtomicU64::new(seed ^ u64::from(std::process::id())))
    }

    pub(crate) fn next(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's attempt budget or
/// deadline runs out (then `DynamoError::Unavailable`). Each attempt is also cut off at
/// the deadline, so the call never takes longer than `call_deadline`.
pub(crate) async fn with_retries<T, F, Fut>(
    op: &'static str,
    policy: &CallPolicy,
    jitter: &Jitter,
    stats: &DynamoStats,
    mut attempt: F,
) -> Result<T, DynamoError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let started = Instant::now();
    let deadline = started + policy.call_deadline;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        stats.attempt();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = match tokio::time::timeout(remaining, attempt()).await {
            Ok(result) => result,
            Err(_) => Err(AttemptError::Transient {
                throttled: false,
                detail: "call deadline reached during an attempt".into(),
            }),
        };
        let detail = match result {
            Ok(value) => return Ok(value),
            Err(AttemptError::Fatal(error)) => return Err(error),
            Err(AttemptError::Transient { throttled, detail }) => {
                if throttled {
                    stats.throttled();
                }
                detail
            }
        };
        let pause = backoff(policy, attempts, jitter.next());
        let out_of_time = Instant::now() + pause >= deadline;
        if attempts >= policy.max_attempts || out_of_time {
            stats.gave_up();
            tracing::warn!(op, attempts, last = %detail, "dynamodb call gave up");
            return Err(DynamoError::Unavailable {
                op,
                attempts,
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                last: detail,
            });
        }
        stats.retry();
        tracing::debug!(op, attempts, pause_ms = pause.as_millis() as u64, last = %detail, "retrying");
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_stays_under_its_cap() {
        let policy = CallPolicy::default();
        for retry in 1..40 {
            let ceiling = policy
                .base_backoff
                .saturating_mul(1 << (retry - 1).min(20))
                .min(policy.max_backoff);
            for random in [0, 1, 12_345, u64::MAX / 3, u64::MAX] {
                assert!(backoff(&policy, retry, random) <= ceiling);
            }
            assert_eq!(backoff(&policy, retry, 0), Duration::ZERO);
        }
        // The largest draw reaches the ceiling.
        let max_us = policy.max_backoff.as_micros() as u64;
        assert_eq!(backoff(&policy, 30, max_us), policy.max_backoff);
    }

    #[test]
    fn jitter_spreads() {
        let jitter = Jitter::new();
        let policy = CallPolicy::default();
        let draws: std::collections::BTreeSet<_> = (0..100)
            .map(|_| backoff(&policy, 5, jitter.next()))
            .collect();
        assert!(draws.len() > 90, "{} distinct of 100", draws.len());
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn transient_failures_are_retried_up_to_the_budget_then_unavailable() {
        let policy = CallPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_attempts: 4,
            ..CallPolicy::default()
        };
        let stats = DynamoStats::default();
        let mut calls = 0;
        let result: Result<(), _> =
            run(with_retries("put", &policy, &Jitter::new(), &stats, || {
                calls += 1;
                async {
                    Err(AttemptError::Transient {
                        throttled: true,
                        detail: "ProvisionedThroughputExceededException".into(),
                    })
                }
            }));
        assert_eq!(calls, 4);
        let error = result.unwrap_err();
        assert!(error.is_transient());
        assert!(error.to_string().contains("after 4 attempts"), "{error}");
        let s = stats.snapshot();
        assert_eq!(
            (s.attempts, s.retries, s.throttled, s.gave_up),
            (4, 3, 4, 1)
        );
    }

    #[test]
    fn the_deadline_bounds_a_call_that_hangs() {
        let policy = CallPolicy {
            call_deadline: Duration::from_millis(50),
            ..CallPolicy::default()
        };
        let started = Instant::now();
        let result: Result<(), _> = run(with_retries(
            "put",
            &policy,
            &Jitter::new(),
            &DynamoStats::default(),
            std::future::pending,
        ));
        assert!(matches!(result, Err(DynamoError::Unavailable { .. })));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn fatal_errors_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = run(with_retries(
            "put",
            &CallPolicy::default(),
            &Jitter::new(),
            &DynamoStats::default(),
            || {
                calls += 1;
                async {
                    Err(AttemptError::Fatal(DynamoError::Rejected {
                        op: "put",
                        code: "ValidationException".into(),
                        message: "bad".into(),
                    }))
                }
            },
        ));
        assert_eq!(calls, 1);
        assert!(!result.unwrap_err().is_transient());
    }
}
