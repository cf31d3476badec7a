//! `tollgate serve`: loads the policy (a catalog directory, or the operator's ConfigMap in a
//! cluster), opens the store, and serves gRPC and HTTP until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::catalog::PolicyInForce;
use crate::cluster::Cluster;
use crate::engine::{
    Activity, Engine, EngineConfig, EngineThread, Partitions, SystemClock, start_filler,
};
use crate::http::{HttpState, Metrics, PolicyStatus};
use crate::ledger::Spares;
use crate::policy::Policy;
use crate::service::{EngineFactory, Runtime};

/// Partitions of new DynamoDB tables when `--partitions` is left out. The first start
/// records the count in the leases table and later starts (and `tollgate verify
/// --dynamodb`) take it from there; tables from before the record are checked against
/// their partitions' leases.
pub const DEFAULT_DYNAMODB_PARTITIONS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Write-ahead log and snapshots in `--data-dir` (the default).
    Embedded,
    /// DynamoDB tables (`--dynamodb-region`, `--table-prefix`, `--dynamodb-endpoint`).
    Dynamodb,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of Plan, Entitlement and BudgetCap YAML (what `kubectl apply -f` takes).
    #[arg(long, env = "TOLLGATE_CATALOG", default_value = "examples/catalog")]
    pub catalog: PathBuf,
    /// Read the policy from this ConfigMap (the operator's `<runtime>-policy`) and watch it,
    /// instead of `--catalog`; the pod then reports the version it applied on itself.
    #[arg(long, env = "TOLLGATE_POLICY_CONFIGMAP", conflicts_with = "catalog")]
    pub policy_configmap: Option<String>,
    /// Namespace of the policy ConfigMap and of this pod (default: the service account's).
    #[arg(long, env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// Data directory of the embedded store.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
    pub data_dir: PathBuf,
    /// gRPC listen address; port 0 takes a free port (see `--addr-file`).
    #[arg(long, env = "TOLLGATE_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// HTTP (health, readiness, metrics) listen address; port 0 takes a free port.
    #[arg(long, env = "TOLLGATE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Once both ports are bound, write the addresses taken here as JSON,
    /// `{"grpc": "127.0.0.1:50051", "http": "127.0.0.1:8080"}` (written whole, by rename,
    /// and removed first at start): how a supervisor or a test finds ports chosen with 0.
    #[arg(long, env = "TOLLGATE_ADDR_FILE", value_name = "PATH")]
    pub addr_file: Option<PathBuf>,
    /// Customers hash to this many partitions, each with one writer. Fixed for a store:
    /// each store records it (the embedded store in its data directory, DynamoDB in its
    /// leases table) and refuses another; left out, the recorded count is used (for a new
    /// store: 1 embedded, 4 DynamoDB).
    #[arg(long, env = "TOLLGATE_PARTITIONS")]
    pub partitions: Option<u32>,
    #[arg(long, env = "TOLLGATE_STORE", value_enum, default_value = "embedded")]
    pub store: StoreKind,
    /// DynamoDB endpoint override (for DynamoDB Local); the regional endpoint by default.
    #[arg(long, env = "TOLLGATE_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
    #[arg(
        long = "region",
        alias = "dynamodb-region",
        env = "TOLLGATE_DYNAMODB_REGION",
        default_value = "us-east-1"
    )]
    pub dynamodb_region: String,
    #[arg(long, env = "TOLLGATE_TABLE_PREFIX", default_value = "tollgate-")]
    pub table_prefix: String,
    /// Create missing DynamoDB tables at start (development only).
    #[arg(long, env = "TOLLGATE_DYNAMODB_AUTO_CREATE")]
    pub dynamodb_auto_create: bool,
    /// Keep every journal batch in DynamoDB (the command log grows with traffic) instead of
    /// deleting those older than the checkpoint kept before the newest (each delete costs
    /// about the write units its batch did).
    #[arg(long, env = "TOLLGATE_DYNAMODB_KEEP_JOURNAL")]
    pub dynamodb_keep_journal: bool,
    /// Name of this process as a partition owner (the pod name in a cluster).
    #[arg(long, env = "POD_NAME", default_value = "tollgate-0")]
    pub owner: String,
    /// Runtime pods sharing the partitions (set by the operator). Only 1 is accepted: each
    /// process opens every partition, so two would keep separate ledgers for the same
    /// customers (embedded store) or fence each other (DynamoDB).
    #[arg(long, env = "TOLLGATE_REPLICAS", default_value_t = 1, value_parser = one_replica)]
    pub replicas: u32,
    /// How long the answer to an idempotency key, a usage event id and a resolved hold are
    /// kept, in ledger time: longer than any client retries. Memory grows with it (see the
    /// README's "Memory"). A start with another window logs the change, so
    /// the log still replays as it ran.
    #[arg(
        long,
        env = "TOLLGATE_IDEMPOTENCY_WINDOW",
        default_value = "24h",
        value_name = "DURATION",
        value_parser = idempotency_window
    )]
    pub idempotency_window: Duration,
    /// Threads that serve calls. 0, the default, takes one per core the process may use
    /// (its CPU limit included, so a pod limited to one CPU gets one). One thread runs
    /// tokio's current-thread scheduler, which spends about a fifth less server CPU per
    /// Reserve + Commit than two threads (no hand-overs between them; see BENCHMARKS.md,
    /// session 7): set 1 for a server sharing a small machine with its load generator.
    /// Each partition's writer has a thread of its own in either case.
    #[arg(long, env = "TOLLGATE_WORKER_THREADS", default_value_t = 0, value_parser = worker_threads)]
    pub worker_threads: usize,
}

/// Most `--worker-threads` accepted.
pub const MAX_WORKER_THREADS: usize = 1024;

fn worker_threads(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n <= MAX_WORKER_THREADS => Ok(n),
        Ok(n) => Err(format!(
            "{n} worker threads: at most {MAX_WORKER_THREADS} (0 takes one per core)"
        )),
        Err(e) => Err(format!("{value:?} is not a number of threads: {e}")),
    }
}

/// The async runtime `serve` runs on, for `--worker-threads`, and what its park hooks
/// report to the engines' writers (`engine::Activity`; pass it to `serve`).
pub fn build_runtime(
    worker_threads: usize,
) -> std::io::Result<(tokio::runtime::Runtime, Arc<Activity>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads_to_start(worker_threads, cores);
    let activity = Arc::new(Activity::new(threads));
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let (parks, unparks) = (activity.clone(), activity.clone());
    let runtime = builder
        .enable_all()
        .on_thread_park(move || parks.parking())
        .on_thread_unpark(move || unparks.unparked())
        .build()?;
    Ok((runtime, activity))
}

/// Turns transparent huge pages off for this process, as databases advise (Redis,
/// MongoDB). The ledger's memory grows with every call (answers are kept for the
/// idempotency window), and the allocator asks for huge pages: each new 2 MiB page is then
/// zeroed at its first touch while callers wait, in bursts of 5 to 10 ms in which nothing
/// is served. Turning them off halved the Reserve + Commit p99 (BENCHMARKS.md, session 8).
/// Linux only; a refusal is logged and changes nothing else. `serve` calls it first thing
/// (once logging is set up, so a refusal is seen); so does the load generator, whose
/// stalls would be charged to the server.
pub fn disable_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(%error, "transparent huge pages stay on: expect latency spikes as memory grows");
    }
}

/// Threads for `--worker-threads requested` on a process that may use `cores` cores
/// (`available_parallelism`, which counts a cgroup CPU limit): 0 means one per core.
fn threads_to_start(requested: usize, cores: usize) -> usize {
    match requested {
        0 => cores.max(1),
        n => n,
    }
}

/// Shortest and longest idempotency windows accepted.
const IDEMPOTENCY_WINDOW_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(30 * 86_400));

fn idempotency_window(value: &str) -> Result<Duration, String> {
    let window = crate::cli::time::parse_duration(value)?;
    let (min, max) = IDEMPOTENCY_WINDOW_BOUNDS;
    if window < min || window > max {
        return Err(format!(
            "{value:?}: the idempotency window must be from 1m (clients retry for at least \
             that long) to 30d (memory grows with it)"
        ));
    }
    Ok(window)
}

/// Accepts `--replicas 1` only, saying why anything else is refused.
fn one_replica(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(1) => Ok(1),
        Ok(n) => Err(format!(
            "{n} replicas: only 1 is supported for now. Every runtime process opens every \
             partition, so {n} pods would each keep their own ledger for the same customers \
             (embedded store) or fence each other's writes (DynamoDB); sharing partitions \
             among pods is not built yet. Set the TollgateRuntime's spec.replicas to 1."
        )),
        Err(e) => Err(format!("{value:?} is not a number of replicas: {e}")),
    }
}

/// Runs the server until a signal arrives, on the runtime `activity` reports on (from
/// `build_runtime`; `None` if it has no park hooks: batches are then cut without waiting).
pub async fn serve(args: ServeArgs, activity: Option<Arc<Activity>>) -> anyhow::Result<()> {
    disable_huge_pages();
    // Before anything slow (recovery, leases): a file left by a killed run names ports that
    // may belong to someone else by now.
    if let Some(path) = &args.addr_file {
        remove_stale(path)?;
    }
    let (policy, source) = load_policy(&args).await?;
    let clock = Arc::new(SystemClock);
    // The ledgers' chunks, touched ahead of need while the runtime's threads are parked
    // (`ledger::Spares`).
    let spares = match &activity {
        Some(activity) => {
            let spares = Spares::new();
            start_filler(&spares, activity.clone())
                .context("starting the spare chunks' filler thread")?;
            Some(spares)
        }
        None => None,
    };
    let mut config = EngineConfig {
        activity,
        spares,
        ..EngineConfig::default()
    };
    config.ledger.idempotency_window_ms =
        u64::try_from(args.idempotency_window.as_millis()).unwrap_or(u64::MAX);
    let (engines, stores, restart, figures) = match args.store {
        StoreKind::Embedded => {
            let partitions =
                Partitions::open_embedded(&args.data_dir, args.partitions, clock.clone(), config)
                    .with_context(|| {
                    format!("opening the embedded store in {}", args.data_dir.display())
                })?;
            (
                partitions.engines().to_vec(),
                Stores::Embedded(partitions),
                None,
                None,
            )
        }
        StoreKind::Dynamodb => open_dynamodb(&args, clock.clone(), config)?,
    };
    let status = Arc::new(RwLock::new(PolicyStatus {
        version: policy.version.clone(),
        objects: policy.objects(),
        last_error: None,
        loaded_at_ms: crate::catalog::now_ms(),
        source: source.describe(),
        directory: match &source {
            PolicySource::Directory(dir) => dir.display().to_string(),
            PolicySource::ConfigMap { .. } => String::new(),
        },
    }));
    let runtime = Arc::new(Runtime::new(engines, policy, clock, restart));
    let metrics = match figures {
        Some(figures) => Metrics::new()?.with_dynamodb_figures(figures)?,
        None => Metrics::new()?,
    };
    let metrics = Arc::new(metrics);
    let ready = Arc::new(AtomicBool::new(false));
    let in_force = PolicyInForce {
        runtime: runtime.clone(),
        status: status.clone(),
        metrics: metrics.clone(),
    };
    let watchers = match source {
        PolicySource::Directory(dir) => vec![tokio::spawn(crate::catalog::watch(dir, in_force))],
        PolicySource::ConfigMap {
            cluster,
            resource_version,
        } => cluster.start(resource_version, in_force),
    };

    let http = crate::http::router(Arc::new(HttpState {
        runtime: runtime.clone(),
        metrics: metrics.clone(),
        policy: status,
        ready: ready.clone(),
    }));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding HTTP {}", args.http_addr))?;
    let http_addr = listener
        .local_addr()
        .with_context(|| format!("reading the HTTP address bound for {}", args.http_addr))?;
    tracing::info!(addr = %http_addr, "HTTP listening");
    let incoming = tonic::transport::server::TcpIncoming::bind(args.grpc_addr)
        .with_context(|| format!("binding gRPC {}", args.grpc_addr))?
        .with_nodelay(Some(true));
    let grpc_addr = incoming
        .local_addr()
        .with_context(|| format!("reading the gRPC address bound for {}", args.grpc_addr))?;
    // Both ports are bound: say which, before serving on either (a failure here returns
    // before any call was taken).
    if let Some(path) = &args.addr_file {
        write_addr_file(path, grpc_addr, http_addr)?;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(listener, http)
            .with_graceful_shutdown(async move {
                while http_stop.changed().await.is_ok() && !*http_stop.borrow() {}
            })
            .await
    });
    let mut grpc_stop = stop_rx;
    let grpc_task = tokio::spawn(crate::grpc::serve(
        crate::grpc::GrpcConfig {
            incoming,
            addr: grpc_addr,
        },
        runtime.clone(),
        metrics,
        async move { while grpc_stop.changed().await.is_ok() && !*grpc_stop.borrow() {} },
    ));
    ready.store(true, Ordering::Release);
    tracing::info!("ready");

    shutdown_signal().await;
    tracing::info!("shutting down: draining requests, then a final snapshot per partition");
    ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    let grpc_result = grpc_task.await;
    let _ = http_task.await;
    for watcher in watchers {
        watcher.abort();
        let _ = watcher.await;
    }
    let restarted = runtime.take_restarted_threads();
    drop(runtime);
    // Each writer takes its ledger's async lock for the final snapshot: wait for them off
    // the runtime's threads, which must stay free to run a task queued for that lock (with
    // one worker thread, a join here would wait for a task that can never run).
    let joined = tokio::task::spawn_blocking(move || {
        stores.shutdown();
        restarted.into_iter().for_each(EngineThread::join);
    })
    .await;
    if let Err(join) = joined {
        tracing::error!(%join, "a writer's final snapshot panicked; the log has every batch");
    }
    if let Some(path) = &args.addr_file
        && let Err(e) = remove_stale(path)
    {
        tracing::warn!(error = %format!("{e:#}"), "the address file stays behind");
    }
    match grpc_result {
        Ok(result) => result,
        Err(join) => Err(anyhow::anyhow!("gRPC server task failed: {join}")),
    }
}

/// Removes an address file left by an earlier run, so nobody reads its ports as ours.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("removing the old --addr-file {}", path.display()))
        }
    }
}

/// Writes the bound addresses to `path` whole: a reader sees no file or all of it.
fn write_addr_file(path: &Path, grpc: SocketAddr, http: SocketAddr) -> anyhow::Result<()> {
    let json = serde_json::json!({ "grpc": grpc.to_string(), "http": http.to_string() });
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) =
        std::fs::write(&tmp, format!("{json}\n")).and_then(|()| std::fs::rename(&tmp, path))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing --addr-file {}", path.display()));
    }
    tracing::info!(path = %path.display(), %grpc, %http, "addresses written");
    Ok(())
}

/// Where the policy comes from, and what is needed to follow it.
enum PolicySource {
    Directory(PathBuf),
    ConfigMap {
        cluster: Box<Cluster>,
        resource_version: String,
    },
}

impl PolicySource {
    fn describe(&self) -> String {
        match self {
            PolicySource::Directory(dir) => format!("directory {}", dir.display()),
            PolicySource::ConfigMap { cluster, .. } => cluster.configmap.describe(),
        }
    }
}

/// The policy at start: from `--policy-configmap` when given (the pod's start fails after
/// bounded retries if it cannot be read or is invalid: there is nothing to enforce without
/// it, and a crash-looping pod says why in its log), else from `--catalog`.
async fn load_policy(args: &ServeArgs) -> anyhow::Result<(Policy, PolicySource)> {
    let Some(configmap) = &args.policy_configmap else {
        let policy = crate::catalog::load(&args.catalog)
            .map_err(|why| anyhow::anyhow!("catalog {}: {why}", args.catalog.display()))?;
        tracing::info!(version = %policy.version, objects = policy.objects(), dir = %args.catalog.display(), "catalog loaded");
        return Ok((policy, PolicySource::Directory(args.catalog.clone())));
    };
    if configmap.is_empty() {
        anyhow::bail!(
            "--policy-configmap (TOLLGATE_POLICY_CONFIGMAP) is empty: name the ConfigMap"
        );
    }
    let cluster = Cluster::connect(configmap, args.pod_namespace.as_deref(), &args.owner).await?;
    let (policy, resource_version) = cluster.configmap.initial().await?;
    tracing::info!(version = %policy.version, objects = policy.objects(), configmap = %cluster.configmap.describe(), "policy loaded");
    Ok((
        policy,
        PolicySource::ConfigMap {
            cluster: Box::new(cluster),
            resource_version,
        },
    ))
}

enum Stores {
    Embedded(Partitions),
    #[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
    Threads(Vec<EngineThread>),
}

impl Stores {
    fn shutdown(self) {
        match self {
            Stores::Embedded(p) => p.shutdown(),
            Stores::Threads(threads) => threads.into_iter().for_each(EngineThread::join),
        }
    }
}

#[cfg(feature = "dynamodb")]
fn open_dynamodb(
    args: &ServeArgs,
    clock: Arc<SystemClock>,
    config: EngineConfig,
) -> anyhow::Result<OpenedStores> {
    use crate::store::dynamodb::{DynamoConfig, DynamoConnection, partition_name};
    let mut dynamo = DynamoConfig::new(&args.dynamodb_region, &args.table_prefix);
    dynamo.endpoint = args.dynamodb_endpoint.clone();
    dynamo.auto_create_tables = args.dynamodb_auto_create;
    dynamo.keep_journal = args.dynamodb_keep_journal;
    let connection = DynamoConnection::connect(dynamo).context("connecting to DynamoDB")?;
    let partitions = connection
        .partition_count(args.partitions, DEFAULT_DYNAMODB_PARTITIONS)
        .context("the partition count of the DynamoDB tables")?;
    let mut engines = Vec::new();
    let mut threads = Vec::new();
    for p in 0..partitions {
        let store = connection
            .store(&partition_name(p), &args.owner)
            .with_context(|| format!("taking partition {p}"))?;
        let (engine, thread) = Engine::start(Box::new(store), clock.clone(), config.clone())?;
        engines.push(engine);
        threads.push(thread);
    }
    // After a transient failure (DynamoDB unreachable, throttled) the service layer takes
    // the partition again with a fresh store: a new epoch, recovery from what is durable;
    // unless another pod took the partition over meanwhile (`store_again`).
    let owner = args.owner.clone();
    let figures: crate::http::StoreFigures = Arc::new({
        let connection = connection.clone();
        move || connection.stats().figures()
    });
    let restart: EngineFactory = Arc::new(move |p| {
        let store = connection
            .store_again(&partition_name(p), &owner)
            .map_err(|e| crate::engine::EngineError::Recovery(e.to_string()))?;
        Engine::start(Box::new(store), clock.clone(), config.clone())
    });
    Ok((
        engines,
        Stores::Threads(threads),
        Some(restart),
        Some(figures),
    ))
}

/// `tollgate dynamodb create-tables`: the tables of the DynamoDB store.
#[derive(Debug, Args)]
pub struct DynamoTablesArgs {
    #[arg(
        long = "region",
        alias = "dynamodb-region",
        env = "TOLLGATE_DYNAMODB_REGION",
        default_value = "us-east-1"
    )]
    pub dynamodb_region: String,
    #[arg(long, env = "TOLLGATE_TABLE_PREFIX", default_value = "tollgate-")]
    pub table_prefix: String,
    #[arg(long, env = "TOLLGATE_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
}

/// Creates the tables that do not exist yet; returns the names it created.
#[cfg(feature = "dynamodb")]
pub fn create_tables(args: &DynamoTablesArgs) -> anyhow::Result<Vec<String>> {
    use crate::store::dynamodb::{DynamoConfig, DynamoConnection};
    let mut dynamo = DynamoConfig::new(&args.dynamodb_region, &args.table_prefix);
    dynamo.endpoint = args.dynamodb_endpoint.clone();
    let connection = DynamoConnection::connect(dynamo).context("connecting to DynamoDB")?;
    Ok(connection.create_tables()?)
}

/// Recovers every partition from DynamoDB and checks every ledger invariant. Taking a
/// partition fences its owner: run it with the server stopped.
#[cfg(feature = "dynamodb")]
pub fn verify_dynamodb(
    args: &DynamoTablesArgs,
    partitions: Option<u32>,
) -> anyhow::Result<Vec<crate::ledger::VerifyReport>> {
    use crate::store::dynamodb::{DynamoConfig, DynamoConnection, partition_name};
    let mut dynamo = DynamoConfig::new(&args.dynamodb_region, &args.table_prefix);
    dynamo.endpoint = args.dynamodb_endpoint.clone();
    let connection = DynamoConnection::connect(dynamo).context("connecting to DynamoDB")?;
    let partitions = connection
        .partition_count(partitions, DEFAULT_DYNAMODB_PARTITIONS)
        .context("the partition count of the DynamoDB tables")?;
    let mut reports = Vec::new();
    for p in 0..partitions {
        let mut store = connection.store(&partition_name(p), "tollgate-verify")?;
        let ledger = crate::engine::recover_ledger(&mut store)
            .with_context(|| format!("recovering partition {p}"))?;
        // Archived journal entries are read back from the tables too.
        reports.push(
            crate::engine::verify_recovered(&ledger, &store)
                .with_context(|| format!("verifying partition {p}"))?,
        );
    }
    Ok(reports)
}

#[cfg(not(feature = "dynamodb"))]
pub fn verify_dynamodb(
    _args: &DynamoTablesArgs,
    _partitions: Option<u32>,
) -> anyhow::Result<Vec<crate::ledger::VerifyReport>> {
    anyhow::bail!("this build has no DynamoDB store (build with the `dynamodb` feature)")
}

/// The partitions' engines, what to wait for at shutdown, how to restart a partition, and
/// the store's own figures for `/metrics`.
type OpenedStores = (
    Vec<Engine>,
    Stores,
    Option<EngineFactory>,
    Option<crate::http::StoreFigures>,
);

#[cfg(not(feature = "dynamodb"))]
pub fn create_tables(_args: &DynamoTablesArgs) -> anyhow::Result<Vec<String>> {
    anyhow::bail!("this build has no DynamoDB store (build with the `dynamodb` feature)")
}

#[cfg(not(feature = "dynamodb"))]
fn open_dynamodb(
    _args: &ServeArgs,
    _clock: Arc<SystemClock>,
    _config: EngineConfig,
) -> anyhow::Result<OpenedStores> {
    anyhow::bail!("this build has no DynamoDB store (build with the `dynamodb` feature)")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::ServeArgs;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn the_idempotency_window_defaults_to_a_day_within_bounds() {
        let window = |args: &[&str]| {
            Serve::try_parse_from([&["serve"], args].concat()).map(|s| s.args.idempotency_window)
        };
        assert_eq!(window(&[]).unwrap().as_secs(), 86_400);
        assert_eq!(
            window(&["--idempotency-window", "1h"]).unwrap().as_secs(),
            3_600
        );
        // The TollgateRuntime's idempotencyWindowMinutes range (1 to 43200) is accepted whole.
        assert_eq!(
            window(&["--idempotency-window", "43200m"])
                .unwrap()
                .as_secs(),
            30 * 86_400
        );
        for refused in ["30s", "31d", "43201m", "0m", "1"] {
            let error = window(&["--idempotency-window", refused]).unwrap_err();
            assert!(error.to_string().contains(refused), "{refused}: {error}");
        }
    }

    #[test]
    fn worker_threads_default_to_one_per_core_and_pick_the_scheduler() {
        let threads = |args: &[&str]| {
            Serve::try_parse_from([&["serve"], args].concat()).map(|s| s.args.worker_threads)
        };
        assert_eq!(threads(&[]).unwrap(), 0);
        assert_eq!(threads(&["--worker-threads", "1"]).unwrap(), 1);
        for refused in ["1025", "-1", "two"] {
            let error = threads(&["--worker-threads", refused]).unwrap_err();
            assert!(error.to_string().contains(refused), "{refused}: {error}");
        }
        // 0 takes one per core; a process limited to one core gets the one-thread scheduler.
        assert_eq!(super::threads_to_start(0, 8), 8);
        assert_eq!(super::threads_to_start(0, 1), 1);
        assert_eq!(super::threads_to_start(0, 0), 1);
        assert_eq!(super::threads_to_start(3, 1), 3);
        use tokio::runtime::RuntimeFlavor;
        let flavor = |n| super::build_runtime(n).unwrap().0.handle().runtime_flavor();
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let default = if cores == 1 {
            RuntimeFlavor::CurrentThread
        } else {
            RuntimeFlavor::MultiThread
        };
        assert_eq!(flavor(0), default);
        assert_eq!(flavor(3), RuntimeFlavor::MultiThread);
        let workers = super::build_runtime(3).unwrap().0.metrics().num_workers();
        assert_eq!(workers, 3);
    }

    /// Transparent huge pages end up off for the process (Linux reports it in
    /// /proc/self/status since 5.0).
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_turned_off() {
        super::disable_huge_pages();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("THP_enabled:"));
        assert_eq!(
            line.map(|l| l.split_whitespace().last()),
            Some(Some("0")),
            "{line:?}"
        );
    }

    #[test]
    fn the_policy_configmap_replaces_the_catalog_directory() {
        let parsed =
            Serve::try_parse_from(["serve", "--policy-configmap", "tollgate-policy"]).unwrap();
        assert_eq!(
            parsed.args.policy_configmap.as_deref(),
            Some("tollgate-policy")
        );
        let both = Serve::try_parse_from([
            "serve",
            "--catalog",
            "examples/catalog",
            "--policy-configmap",
            "tollgate-policy",
        ]);
        let error = both.err().unwrap().to_string();
        assert!(
            error.contains("--policy-configmap") && error.contains("--catalog"),
            "{error}"
        );
    }

    /// More than one replica would split a customer's ledger between pods: refused by name.
    #[test]
    fn more_than_one_replica_is_refused_with_the_reason() {
        let one = Serve::try_parse_from(["serve", "--replicas", "1"]).unwrap();
        assert_eq!(one.args.replicas, 1);
        let error = Serve::try_parse_from(["serve", "--replicas", "3"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("only 1 is supported") && error.contains("spec.replicas"),
            "{error}"
        );
    }
}
