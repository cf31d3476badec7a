//! A fault layer between the SDK and the network, for tests and chaos drills: it can
//! answer calls with DynamoDB's throttling error without sending them, answer batch calls
//! with everything left unprocessed, or send a call and then lose its answer (the unknown
//! outcome a timeout leaves behind). The SDK parses these answers exactly as it parses
//! real ones, so the store's classification, retries and unknown-outcome handling are what
//! gets tested.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Handle to the faults of one connection; clones share them.
#[derive(Debug, Clone, Default)]
pub struct FaultLayer(Arc<FaultState>);

#[derive(Debug, Default)]
struct FaultState {
    throttle_all: AtomicBool,
    throttle_next: AtomicU64,
    lose_next_responses: AtomicU64,
    /// As `lose_next_responses`, for `PutItem` calls only.
    lose_next_put_answers: AtomicU64,
    throttled: AtomicU64,
    lost: AtomicU64,
    /// Microseconds every `BatchWriteItem` is held before it is sent.
    batch_write_delay_us: AtomicU64,
    /// `BatchWriteItem` calls answered with every item unprocessed, of each cycle of
    /// `unprocessed_cycle` calls (the last of a cycle is sent); 0: none.
    unprocessed_of_cycle: AtomicU64,
    unprocessed_cycle: AtomicU64,
    batch_writes: AtomicU64,
    /// As `unprocessed_of_cycle` and `unprocessed_cycle`, for `BatchGetItem` calls (every
    /// key back as unprocessed).
    unread_of_cycle: AtomicU64,
    unread_cycle: AtomicU64,
    batch_gets: AtomicU64,
    /// Whether `BatchWriteItem` calls of puts stall after `puts_before_stall` of them have
    /// been sent: every later one answered with all its items unprocessed (deletes go
    /// through).
    stall_puts: AtomicBool,
    puts_before_stall: AtomicU64,
    put_batches: AtomicU64,
    /// Whether `BatchWriteItem` calls of deletes are answered with all their items
    /// unprocessed.
    stall_deletes: AtomicBool,
}

impl FaultLayer {
    pub fn new() -> FaultLayer {
        FaultLayer::default()
    }

    /// Answer every call with a throttling error until turned off.
    pub fn throttle_all(&self, on: bool) {
        self.0.throttle_all.store(on, Ordering::SeqCst);
    }

    /// Answer the next `n` calls with a throttling error.
    pub fn throttle_next(&self, n: u64) {
        self.0.throttle_next.store(n, Ordering::SeqCst);
    }

    /// Send the next `n` calls, then drop DynamoDB's answer and report a 500 instead: the
    /// write happened, but the caller cannot know.
    pub fn lose_next_responses(&self, n: u64) {
        self.0.lose_next_responses.store(n, Ordering::SeqCst);
    }

    /// As `lose_next_responses`, for the next `n` `PutItem` calls only (journal batches and
    /// leases), the others answered as usual.
    pub fn lose_next_put_answers(&self, n: u64) {
        self.0.lose_next_put_answers.store(n, Ordering::SeqCst);
    }

    /// Hold every `BatchWriteItem` (checkpoint chunks and their deletes) this long before
    /// sending it.
    pub fn delay_batch_writes(&self, delay: std::time::Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.0.batch_write_delay_us.store(us, Ordering::SeqCst);
    }

    /// Answer `BatchWriteItem` calls (checkpoint chunks and their deletes) as DynamoDB
    /// does when it throttles a whole call's items: nothing written, every item back as
    /// unprocessed. Of every `cycle` calls,
    /// all but the last are answered so; the last is sent. `cycle` 0 turns it off, 1
    /// sends every call, and `u64::MAX` (in effect) answers every one so.
    pub fn leave_batch_writes_unprocessed(&self, cycle: u64) {
        self.0.unprocessed_cycle.store(cycle, Ordering::SeqCst);
        self.0
            .unprocessed_of_cycle
            .store(cycle.saturating_sub(1), Ordering::SeqCst);
        self.0.batch_writes.store(0, Ordering::SeqCst);
    }

    /// Answer `BatchGetItem` calls (reads of archived journal pieces) as DynamoDB does when
    /// it throttles a whole call: nothing read, every key back as unprocessed. Of every
    /// `cycle` calls all but the last are answered so, as `leave_batch_writes_unprocessed`.
    pub fn leave_batch_gets_unprocessed(&self, cycle: u64) {
        self.0.unread_cycle.store(cycle, Ordering::SeqCst);
        self.0
            .unread_of_cycle
            .store(cycle.saturating_sub(1), Ordering::SeqCst);
        self.0.batch_gets.store(0, Ordering::SeqCst);
    }

    /// Send the next `n` `BatchWriteItem` calls of puts (checkpoint chunks), then answer
    /// every later one with all its items unprocessed, as a DynamoDB partition throttled
    /// for good would: an upload stalls half-way. Deletes go through.
    pub fn stall_chunk_puts_after(&self, n: u64) {
        self.0.put_batches.store(0, Ordering::SeqCst);
        self.0.puts_before_stall.store(n, Ordering::SeqCst);
        self.0.stall_puts.store(true, Ordering::SeqCst);
    }

    /// Answer every `BatchWriteItem` call of deletes (old checkpoints, pruned journal
    /// batches) with all its items unprocessed while `on`, as a throttled partition would.
    pub fn stall_deletes(&self, on: bool) {
        self.0.stall_deletes.store(on, Ordering::SeqCst);
    }

    /// Sends every `BatchWriteItem` call of puts again (the partition recovered).
    pub fn stop_stalling(&self) {
        self.0.stall_puts.store(false, Ordering::SeqCst);
    }

    /// `BatchWriteItem` calls of chunk puts seen since `stall_chunk_puts_after` (sent or
    /// stalled).
    pub fn chunk_put_calls(&self) -> u64 {
        self.0.put_batches.load(Ordering::SeqCst)
    }

    /// Calls answered with a throttling error so far.
    pub fn throttled(&self) -> u64 {
        self.0.throttled.load(Ordering::SeqCst)
    }

    /// Answers lost so far.
    pub fn lost(&self) -> u64 {
        self.0.lost.load(Ordering::SeqCst)
    }

    /// Wraps the HTTP client the SDK would use.
    pub(crate) fn wrap(&self, inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(FaultyClient {
            inner,
            faults: self.clone(),
        })
    }

    fn take(counter: &AtomicU64) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: FaultLayer,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            faults: self.faults.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: FaultLayer,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let state = &self.faults.0;
        if state.throttle_all.load(Ordering::SeqCst) || FaultLayer::take(&state.throttle_next) {
            state.throttled.fetch_add(1, Ordering::SeqCst);
            return HttpConnectorFuture::ready(Ok(error_response(
                400,
                "ProvisionedThroughputExceededException",
                "injected by the fault layer: throughput exceeded",
            )));
        }
        if FaultLayer::take(&state.lose_next_responses)
            || (is_target(&request, ".PutItem") && FaultLayer::take(&state.lose_next_put_answers))
        {
            state.lost.fetch_add(1, Ordering::SeqCst);
            let sent = self.inner.call(request);
            return HttpConnectorFuture::new(async move {
                let _ = sent.await;
                Ok(error_response(
                    500,
                    "InternalServerError",
                    "injected by the fault layer: the answer was lost",
                ))
            });
        }
        if is_target(&request, ".BatchGetItem") {
            if in_cycle(
                &state.unread_cycle,
                &state.unread_of_cycle,
                &state.batch_gets,
            ) && let Some(response) = all_unprocessed(&request, Unprocessed::Keys)
            {
                return HttpConnectorFuture::ready(Ok(response));
            }
            return self.inner.call(request);
        }
        if !is_target(&request, ".BatchWriteItem") {
            return self.inner.call(request);
        }
        if state.stall_deletes.load(Ordering::SeqCst)
            && deletes(&request)
            && let Some(response) = all_unprocessed(&request, Unprocessed::Items)
        {
            return HttpConnectorFuture::ready(Ok(response));
        }
        if state.stall_puts.load(Ordering::SeqCst)
            && puts_chunks(&request)
            && state.put_batches.fetch_add(1, Ordering::SeqCst)
                >= state.puts_before_stall.load(Ordering::SeqCst)
            && let Some(response) = all_unprocessed(&request, Unprocessed::Items)
        {
            return HttpConnectorFuture::ready(Ok(response));
        }
        if in_cycle(
            &state.unprocessed_cycle,
            &state.unprocessed_of_cycle,
            &state.batch_writes,
        ) && let Some(response) = all_unprocessed(&request, Unprocessed::Items)
        {
            return HttpConnectorFuture::ready(Ok(response));
        }
        let delay = state.batch_write_delay_us.load(Ordering::SeqCst);
        if delay == 0 {
            return self.inner.call(request);
        }
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
            inner.call(request).await
        })
    }
}

/// Whether `request` calls the operation `suffix` names (`.PutItem`, ...).
fn is_target(request: &HttpRequest, suffix: &str) -> bool {
    request
        .headers()
        .get("x-amz-target")
        .is_some_and(|target| target.ends_with(suffix))
}

/// Whether a `BatchWriteItem` request puts checkpoint chunks (items with a `body`), rather
/// than deleting items or putting an upload's intent.
fn puts_chunks(request: &HttpRequest) -> bool {
    body_has(request, b"PutRequest") && body_has(request, b"\"body\"")
}

/// Whether a `BatchWriteItem` request deletes items.
fn deletes(request: &HttpRequest) -> bool {
    body_has(request, b"DeleteRequest")
}

/// Whether the request's body holds `needle` (a body that is not in memory does not).
fn body_has(request: &HttpRequest, needle: &[u8]) -> bool {
    request
        .body()
        .bytes()
        .is_some_and(|body| body.windows(needle.len()).any(|w| w == needle))
}

/// Counts a call of a cycle (`calls`) and says whether it is one of the first `of` of every
/// `cycle` calls; never with `cycle` 0.
fn in_cycle(cycle: &AtomicU64, of: &AtomicU64, calls: &AtomicU64) -> bool {
    let cycle = cycle.load(Ordering::SeqCst);
    cycle > 0 && calls.fetch_add(1, Ordering::SeqCst) % cycle < of.load(Ordering::SeqCst)
}

/// What a batch call left undone, as DynamoDB names it in its answer.
enum Unprocessed {
    /// `BatchWriteItem`: `UnprocessedItems`.
    Items,
    /// `BatchGetItem`: `UnprocessedKeys`, with no `Responses`.
    Keys,
}

/// DynamoDB's answer to a `BatchWriteItem` that wrote none of its items, or a
/// `BatchGetItem` that read none of its keys: all of them back as unprocessed. `None` if
/// the request body cannot be read as one.
fn all_unprocessed(request: &HttpRequest, kind: Unprocessed) -> Option<HttpResponse> {
    let body: serde_json::Value = serde_json::from_slice(request.body().bytes()?).ok()?;
    let items = body.get("RequestItems")?.clone();
    let body = match kind {
        Unprocessed::Items => serde_json::json!({ "UnprocessedItems": items }),
        Unprocessed::Keys => serde_json::json!({ "Responses": {}, "UnprocessedKeys": items }),
    }
    .to_string();
    let mut response = HttpResponse::new(StatusCode::try_from(200).ok()?, SdkBody::from(body));
    let _ = response
        .headers_mut()
        .try_insert("content-type", "application/x-amz-json-1.0");
    Some(response)
}

/// An error answer as DynamoDB's JSON protocol sends it.
fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#);
    // Both statuses are valid HTTP status codes.
    let status = StatusCode::try_from(status).unwrap_or_else(|_| unreachable!());
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    let _ = response
        .headers_mut()
        .try_insert("content-type", "application/x-amz-json-1.0");
    response
}
