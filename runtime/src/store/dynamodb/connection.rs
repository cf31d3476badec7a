//! One connection to DynamoDB: the SDK client with explicit timeouts and no SDK retries,
//! a small tokio runtime of its own, the table schema and the call counters. Partitions
//! of one process share it.
//!
//! The store trait is synchronous (the engine's writer is a plain thread) while the SDK is
//! async, so the connection owns a two-thread runtime and waits for its futures on a std
//! channel: that works from any thread, inside or outside another tokio runtime. A
//! checkpoint upload runs there without anyone waiting (`spawn`).

use std::future::Future;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials as SdkCredentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use super::retry::{AttemptError, Jitter};
use super::schema::{Schema, TableSpec};
use super::{
    CallPolicy, Credentials, DynamoConfig, DynamoError, DynamoStats, DynamoStatsSnapshot,
    DynamoStore,
};
use crate::store::StoreError;

/// How long `create_tables` waits for a new table to become ACTIVE (AWS takes seconds).
pub const CREATE_TABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A cheap handle; clones share the client, runtime and counters.
#[derive(Clone)]
pub struct DynamoConnection(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    runtime: Option<tokio::runtime::Runtime>,
    pub(crate) client: Client,
    pub(crate) schema: Schema,
    pub(crate) calls: CallPolicy,
    /// `DynamoConfig::keep_journal`.
    pub(crate) keep_journal: bool,
    pub(crate) stats: DynamoStats,
    pub(crate) jitter: Jitter,
    /// The epoch this connection took each partition at last (see `store_again`).
    pub(crate) taken: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// Random and fixed for the connection's life, part of every lease incarnation it
    /// writes: a takeover whose answer was lost may have landed, and a lease bearing this
    /// nonce is still ours. (A set of the incarnations tried grew by one per attempt, one
    /// every few seconds for as long as DynamoDB was unreachable.)
    pub(crate) nonce: u64,
}

impl Shared {
    fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        // Holders insert or look up, and cannot panic in between.
        mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh lease incarnation of `owner`'s, unique to one takeover attempt:
    /// `<owner>-<connection nonce>-<attempt stamp>`, both in 16 hex digits.
    pub(crate) fn incarnation(&self, owner: &str) -> String {
        format!("{owner}-{:016x}-{:016x}", self.nonce, self.jitter.next())
    }

    /// Whether a lease with this incarnation was written by this connection (its nonce is
    /// ours). Leases of older versions (`<owner>-<pid>-<stamp>`) never are.
    pub(crate) fn is_ours(&self, incarnation: &str) -> bool {
        nonce_of(incarnation) == Some(format!("{:016x}", self.nonce).as_str())
    }

    /// Records that this connection holds `partition` at `epoch`.
    pub(crate) fn took(&self, partition: &str, epoch: u64) {
        Shared::lock(&self.taken).insert(partition.to_string(), epoch);
    }

    /// One DynamoDB call under this connection's retry policy (bounded attempts, deadline,
    /// jittered backoff, counted in its figures).
    pub(crate) async fn retried<T, F, Fut>(
        &self,
        op: &'static str,
        attempt: F,
    ) -> Result<T, DynamoError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError>>,
    {
        super::retry::with_retries(op, &self.calls, &self.jitter, &self.stats, attempt).await
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for DynamoConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoConnection")
            .field("table_prefix", &self.0.schema.prefix)
            .finish()
    }
}

impl DynamoConnection {
    /// Builds the client (no network traffic unless `auto_create_tables` is set).
    pub fn connect(config: DynamoConfig) -> Result<DynamoConnection, StoreError> {
        config.validate()?;
        let schema = Schema::load(&config.table_prefix)?;
        // Two threads: a checkpoint upload (encoding megabytes of items) on one leaves the
        // other free for journal writes.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tollgate-dynamodb")
            .enable_all()
            .build()
            .map_err(|e| DynamoError::Config {
                field: "runtime",
                reason: format!("cannot start the dynamodb runtime: {e}"),
            })?;
        let client = wait(&runtime, build_client(config.clone()))?;
        let connection = DynamoConnection(Arc::new(Shared {
            runtime: Some(runtime),
            client,
            schema,
            calls: config.calls,
            keep_journal: config.keep_journal,
            stats: DynamoStats::default(),
            jitter: Jitter::new(),
            taken: std::sync::Mutex::new(std::collections::HashMap::new()),
            nonce: random_nonce(),
        }));
        if config.auto_create_tables {
            let created = connection.create_tables()?;
            if !created.is_empty() {
                tracing::info!(?created, "created dynamodb tables (auto-create is on)");
            }
        }
        Ok(connection)
    }

    /// The store of one partition, owned by `owner` (a pod name) once `recover` runs: it
    /// takes the partition over from whoever holds it (a pod starting after its
    /// predecessor died).
    pub fn store(&self, partition: &str, owner: &str) -> Result<DynamoStore, StoreError> {
        DynamoStore::new(self.clone(), partition, owner, None)
    }

    /// The store of a partition this connection held, to restart it after a transient
    /// failure: `recover` takes the partition again only if nobody took it over since
    /// (the lease still holds the epoch this connection took last, or one of its own
    /// takeovers whose answer was lost), and fails with `Fenced` otherwise. A process cut
    /// off from DynamoDB for a while may have been replaced by a new pod meanwhile; taking
    /// the partition back would fence that live owner. A partition this connection never
    /// took is taken as `store` does.
    pub fn store_again(&self, partition: &str, owner: &str) -> Result<DynamoStore, StoreError> {
        let held = Shared::lock(&self.0.taken).get(partition).copied();
        DynamoStore::new(self.clone(), partition, owner, held)
    }

    /// How many partitions these tables hold: the count recorded in them, else `asked` (or
    /// `default`), recorded now. A count asked that differs from the recorded one, or from
    /// what the partitions' leases show, is refused.
    pub fn partition_count(&self, asked: Option<u32>, default: u32) -> Result<u32, StoreError> {
        Ok(self.run(move |shared| async move {
            super::lease::partition_count(&shared, asked, default).await
        })?)
    }

    /// Creates the tables of tables.json that do not exist yet (on-demand billing, TTL on
    /// the idempotency table) and waits until they are active. Returns the names created.
    /// For development and `tollgate dynamodb create-tables`; production uses Terraform.
    pub fn create_tables(&self) -> Result<Vec<String>, StoreError> {
        let mut created = Vec::new();
        for spec in self.0.schema.all() {
            let name = self.0.schema.name(spec);
            let spec = spec.clone();
            let made = self.run(move |shared| async move { create_table(&shared, &spec).await })?;
            if made {
                created.push(name);
            }
        }
        Ok(created)
    }

    pub fn stats(&self) -> DynamoStatsSnapshot {
        self.0.stats.snapshot()
    }

    /// The SDK client (benchmarks and tests use it to compare with naive designs).
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    /// Full name of the journal table.
    pub fn journal_table(&self) -> String {
        self.0.schema.name(&self.0.schema.tables.journal)
    }

    /// Runs `f` on the connection's runtime and waits for it.
    pub(crate) fn run<T, F, Fut>(&self, f: F) -> Result<T, DynamoError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T, DynamoError>> + Send + 'static,
    {
        match self.spawn(f).wait() {
            Ended::Answered(answer) => answer,
            Ended::WithoutAnswer => Err(ended_without_answer()),
        }
    }

    /// Starts `f` on the connection's runtime without waiting for it: the answer arrives
    /// on the receiver (`Running::wait` or `Running::try_take`).
    pub(crate) fn spawn<T, F, Fut>(&self, f: F) -> Running<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T, DynamoError>> + Send + 'static,
    {
        let Some(runtime) = self.0.runtime.as_ref() else {
            unreachable!("the runtime is only taken on drop");
        };
        Running(start(runtime, f(self.0.clone())))
    }
}

/// A call started with `DynamoConnection::spawn`.
pub(crate) struct Running<T>(std::sync::mpsc::Receiver<Result<T, DynamoError>>);

/// How a call started with `DynamoConnection::spawn` ended.
pub(crate) enum Ended<T> {
    /// It returned this.
    Answered(Result<T, DynamoError>),
    /// It dropped its answer: it panicked, or the runtime stopped under it.
    WithoutAnswer,
}

impl<T> Running<T> {
    /// Blocks this thread until the call has finished.
    pub(crate) fn wait(self) -> Ended<T> {
        match self.0.recv() {
            Ok(answer) => Ended::Answered(answer),
            Err(_) => Ended::WithoutAnswer,
        }
    }

    /// How the call ended if it has, else the call back.
    pub(crate) fn try_take(self) -> Result<Ended<T>, Running<T>> {
        match self.0.try_recv() {
            Ok(answer) => Ok(Ended::Answered(answer)),
            Err(std::sync::mpsc::TryRecvError::Empty) => Err(self),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Ok(Ended::WithoutAnswer),
        }
    }
}

/// The nonce field of a lease incarnation, `<owner>-<nonce>-<stamp>` (the owner may
/// contain dashes itself).
fn nonce_of(incarnation: &str) -> Option<&str> {
    let mut fields = incarnation.rsplitn(3, '-');
    let (_stamp, nonce) = (fields.next()?, fields.next()?);
    fields.next().map(|_owner| nonce)
}

/// 64 random bits for a connection's nonce: std's `RandomState` keys come from the
/// operating system's randomness, and differ for every state built.
fn random_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Spawns `future` on `runtime` and blocks this thread until it finishes.
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, DynamoError> {
    start(runtime, future).recv().map_err(|_| runtime_stopped())
}

/// Spawns `future` on `runtime`; its output arrives on the receiver.
fn start<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> std::sync::mpsc::Receiver<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx
}

/// What a call that ended without an answer (it panicked, or the runtime stopped under
/// it) is reported as.
pub(crate) fn ended_without_answer() -> DynamoError {
    DynamoError::Unavailable {
        op: "background call",
        attempts: 0,
        elapsed_ms: 0,
        last: "it ended without an answer (it panicked, or the dynamodb runtime stopped)".into(),
    }
}

fn runtime_stopped() -> DynamoError {
    DynamoError::Unavailable {
        op: "runtime",
        attempts: 0,
        elapsed_ms: 0,
        last: "the dynamodb runtime stopped".into(),
    }
}

async fn build_client(config: DynamoConfig) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    let http = match &config.faults {
        Some(faults) => faults.wrap(http),
        None => http,
    };
    let calls = config.calls;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(calls.connect_timeout)
        .read_timeout(calls.attempt_timeout)
        .operation_attempt_timeout(calls.attempt_timeout)
        .operation_timeout(calls.call_deadline)
        .build();
    // Pinned, so an SDK upgrade cannot change defaults under us.
    let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
        .region(Region::new(config.region.clone()))
        .http_client(http)
        .timeout_config(timeouts)
        // One retry loop, ours (retry.rs): it owns the deadline and unknown outcomes.
        .retry_config(RetryConfig::disabled());
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Credentials::Static {
        access_key_id,
        secret_access_key,
    } = &config.credentials
    {
        loader = loader.credentials_provider(SdkCredentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "tollgate-static",
        ));
    }
    Client::new(&loader.load().await)
}

/// Creates one table if missing; true if it was created.
async fn create_table(shared: &Shared, spec: &TableSpec) -> Result<bool, DynamoError> {
    let name = shared.schema.name(spec);
    let attribute = |key: &super::schema::Key| {
        let kind = if key.kind == "N" {
            ScalarAttributeType::N
        } else {
            ScalarAttributeType::S
        };
        AttributeDefinition::builder()
            .attribute_name(&key.name)
            .attribute_type(kind)
            .build()
    };
    let element = |key: &super::schema::Key, kind| {
        KeySchemaElement::builder()
            .attribute_name(&key.name)
            .key_type(kind)
            .build()
    };
    let config = |e: aws_sdk_dynamodb::error::BuildError| DynamoError::Config {
        field: "tables.json",
        reason: e.to_string(),
    };
    let mut request = shared
        .client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(&spec.hash_key).map_err(config)?)
        .key_schema(element(&spec.hash_key, KeyType::Hash).map_err(config)?);
    if let Some(range) = &spec.range_key {
        request = request
            .attribute_definitions(attribute(range).map_err(config)?)
            .key_schema(element(range, KeyType::Range).map_err(config)?);
    }
    let created = shared
        .retried("CreateTable", || {
            let request = request.clone();
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_in_use_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(AttemptError::from_sdk("CreateTable", &e)),
                }
            }
        })
        .await?;
    let started = std::time::Instant::now();
    loop {
        let status = shared
            .retried("DescribeTable", || {
                let name = name.clone();
                async move {
                    let out = shared
                        .client
                        .describe_table()
                        .table_name(name)
                        .send()
                        .await
                        .map_err(|e| AttemptError::from_sdk("DescribeTable", &e))?;
                    Ok(out.table().and_then(|t| t.table_status().cloned()))
                }
            })
            .await?;
        if status == Some(TableStatus::Active) {
            break;
        }
        if started.elapsed() > CREATE_TABLE_WAIT {
            return Err(DynamoError::Unavailable {
                op: "CreateTable",
                attempts: 1,
                elapsed_ms: CREATE_TABLE_WAIT.as_millis() as u64,
                last: format!("table {name} is not active yet"),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if created && let Some(ttl) = &spec.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(ttl)
            .enabled(true)
            .build()
            .map_err(config)?;
        shared
            .retried("UpdateTimeToLive", || {
                let request = shared
                    .client
                    .update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(ttl.clone());
                async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AttemptError::from_sdk("UpdateTimeToLive", &e))
                }
            })
            .await?;
    }
    Ok(created)
}

#[cfg(test)]
mod nonce_tests {
    use super::{nonce_of, random_nonce};

    #[test]
    fn the_nonce_is_the_field_before_the_stamp_whatever_the_owner() {
        let nonce = format!("{:016x}", random_nonce());
        let stamp = "00000000deadbeef";
        for owner in ["tollgate-0", "pod", "a-b-c-d", ""] {
            let incarnation = format!("{owner}-{nonce}-{stamp}");
            assert_eq!(
                nonce_of(&incarnation),
                Some(nonce.as_str()),
                "{incarnation}"
            );
        }
        assert_eq!(nonce_of("no-dashes"), None);
        assert_eq!(nonce_of("plain"), None);
        // An older version's incarnation, `<owner>-<pid>-<stamp>`: its "nonce" is a pid.
        assert_eq!(nonce_of("tollgate-0-4242-00000000deadbeef"), Some("4242"));
    }

    #[test]
    fn nonces_differ_between_connections() {
        let drawn: std::collections::HashSet<u64> = (0..1000).map(|_| random_nonce()).collect();
        assert_eq!(drawn.len(), 1000);
    }
}
