//! `tollgate-loadgen`: drives one RPC of a running `tollgate serve` and prints throughput and
//! latency percentiles (HdrHistogram, microseconds), then the same figures as one JSON line.
//!
//! Closed loop (`--concurrency C`): C callers, each sends its next call when the last one
//! answered. Open loop (`--rate R`): calls are sent on a fixed schedule whatever the answers
//! do, and latency is measured from each call's *intended* send time, so a stall is charged to
//! every call it delayed (no coordinated omission). `--rpc empty` (the gRPC health check on
//! the same server) measures the floor; `--rpc empty-pair` (two health checks in a row) is the
//! floor of a two-call op like reserve-commit. `--compare` runs the op's floor, then the op,
//! and prints the ratio.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tollgate_e2e::proto::{
    CheckRequest, CommitRequest, IngestRequest, ReserveRequest, SubscribeRequest,
    UpsertCustomerRequest, UsageEvent,
};
use tollgate_e2e::{Clients, credits, paid_grant};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;

/// Longest run accepted: a load test stops by itself.
const MAX_DURATION_S: u64 = 3600;
/// Most calls in flight in open-loop mode; past it a scheduled call is counted as dropped
/// (and the run is reported as over capacity) instead of queueing without bound.
const MAX_IN_FLIGHT: usize = 20_000;
/// Largest latency the histograms hold (60 s, in µs); longer ones saturate.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Most events per Ingest request (the server's own limit).
const MAX_BATCH: u32 = 10_000;
/// Credits granted to each load customer at setup: enough for hours of load.
const SETUP_GRANT_CREDITS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Rpc {
    /// Enforcement.Check of 1,000 large-model tokens (read only).
    Check,
    /// Enforcement.Reserve of 1,000 tokens, then Commit of 800: one op is both calls.
    ReserveCommit,
    /// Metering.Ingest of `--batch` events per request.
    Ingest,
    /// grpc.health.v1.Health/Check: the floor of any RPC on this server.
    Empty,
    /// Two health checks one after the other: the floor of a two-call op such as
    /// reserve-commit (`--compare` uses it for that op).
    EmptyPair,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Check => "check",
            Rpc::ReserveCommit => "reserve-commit",
            Rpc::Ingest => "ingest",
            Rpc::Empty => "empty",
            Rpc::EmptyPair => "empty-pair",
        }
    }

    /// The empty op with as many sequential calls as this one: its floor.
    fn floor(self) -> Rpc {
        match self {
            Rpc::ReserveCommit | Rpc::EmptyPair => Rpc::EmptyPair,
            Rpc::Check | Rpc::Ingest | Rpc::Empty => Rpc::Empty,
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "tollgate-loadgen", about = "Load generator for tollgate serve")]
struct Args {
    /// gRPC address of the server.
    #[arg(long, env = "TOLLGATE_LOADGEN_ADDR", default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Which RPC to drive.
    #[arg(
        long,
        env = "TOLLGATE_LOADGEN_RPC",
        value_enum,
        default_value = "check"
    )]
    rpc: Rpc,
    /// Closed loop: this many callers, each waiting for its answer (default 32).
    #[arg(long, env = "TOLLGATE_LOADGEN_CONCURRENCY", conflicts_with = "rate")]
    concurrency: Option<u32>,
    /// Open loop: this many calls per second on a fixed schedule.
    #[arg(long, env = "TOLLGATE_LOADGEN_RATE")]
    rate: Option<u64>,
    /// Measured time, after the warm-up.
    #[arg(long, env = "TOLLGATE_LOADGEN_DURATION_S", default_value_t = 10)]
    duration_s: u64,
    /// Warm-up time before measuring (calls made, not counted).
    #[arg(long, env = "TOLLGATE_LOADGEN_WARMUP_S", default_value_t = 1)]
    warmup_s: u64,
    /// Events per Ingest request.
    #[arg(long, env = "TOLLGATE_LOADGEN_BATCH", default_value_t = 1000)]
    batch: u32,
    /// Customers the load is spread over.
    #[arg(long, env = "TOLLGATE_LOADGEN_CUSTOMERS", default_value_t = 100)]
    customers: u32,
    /// Plan the load customers subscribe to at setup (needs llm-tokens priced for
    /// model=gpt-large, as examples/catalog's `pro`).
    #[arg(long, env = "TOLLGATE_LOADGEN_PLAN", default_value = "pro")]
    plan: String,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, env = "TOLLGATE_LOADGEN_CONNECTIONS", default_value_t = 4)]
    connections: u32,
    /// Do not create customers or grant credits: they exist from an earlier run.
    #[arg(long, env = "TOLLGATE_LOADGEN_NO_SETUP")]
    no_setup: bool,
    /// Run `empty` first, then `--rpc`, and print the ratio of their throughputs.
    #[arg(long, env = "TOLLGATE_LOADGEN_COMPARE")]
    compare: bool,
    /// Threads the load generator runs on. 1, the default, runs every caller and
    /// connection on one thread (tokio's current-thread scheduler): on a machine shared
    /// with the server it takes the least CPU from it (about a third less per call than
    /// two threads, see BENCHMARKS.md, session 7). More spread the calls over that many
    /// threads; 0 takes one per core.
    #[arg(long, env = "TOLLGATE_LOADGEN_THREADS", default_value_t = 1)]
    threads: usize,
    /// Allow an address outside 127.0.0.0/8 and ::1.
    #[arg(long, env = "TOLLGATE_LOADGEN_ALLOW_REMOTE")]
    allow_remote: bool,
    /// Also write every measured call to `<DIR>/<rpc>.trace`, one line each: when it
    /// ended (microseconds into the measured time) and its latency (microseconds). When
    /// the slow calls come, and whether together, is what a percentile cannot show
    /// (`scripts/bench/tail.py` reads these files).
    #[arg(long, env = "TOLLGATE_LOADGEN_TRACE_DIR", value_name = "DIR")]
    trace_dir: Option<std::path::PathBuf>,
}

/// How calls are paced.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Closed { concurrency: u32 },
    Open { rate: u64 },
}

/// Figures of one measured run.
#[derive(Debug)]
struct Report {
    rpc: Rpc,
    mode: Mode,
    duration: Duration,
    ops: u64,
    errors: u64,
    dropped: u64,
    error_codes: BTreeMap<String, u64>,
    histogram: Histogram<u64>,
    events_per_op: u64,
}

impl Report {
    fn throughput(&self) -> f64 {
        self.ops as f64 / self.duration.as_secs_f64()
    }

    fn print(&self) {
        let h = &self.histogram;
        let (mode, concurrency, rate) = match self.mode {
            Mode::Closed { concurrency } => ("closed", Some(concurrency), None),
            Mode::Open { rate } => ("open", None, Some(rate)),
        };
        println!(
            "rpc={} mode={mode} {} duration={:.1}s ops={} throughput={:.1} ops/s{} \
             latency_us p50={} p90={} p99={} p99.9={} max={} errors={} dropped={}",
            self.rpc.name(),
            match self.mode {
                Mode::Closed { concurrency } => format!("concurrency={concurrency}"),
                Mode::Open { rate } => format!("rate={rate}/s"),
            },
            self.duration.as_secs_f64(),
            self.ops,
            self.throughput(),
            if self.events_per_op > 1 {
                format!(
                    " ({:.0} events/s)",
                    self.throughput() * self.events_per_op as f64
                )
            } else {
                String::new()
            },
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            self.errors,
            self.dropped,
        );
        for (code, n) in &self.error_codes {
            println!("  errors {code}: {n}");
        }
        let json = serde_json::json!({
            "rpc": self.rpc.name(),
            "mode": mode,
            "concurrency": concurrency,
            "rate": rate,
            "duration_s": self.duration.as_secs_f64(),
            "ops": self.ops,
            "throughput_ops_s": self.throughput(),
            "events_per_op": self.events_per_op,
            "latency_us_p50": h.value_at_quantile(0.5),
            "latency_us_p90": h.value_at_quantile(0.9),
            "latency_us_p95": h.value_at_quantile(0.95),
            "latency_us_p99": h.value_at_quantile(0.99),
            "latency_us_p999": h.value_at_quantile(0.999),
            "latency_us_max": h.max(),
            "latency_us_mean": h.mean(),
            "errors": self.errors,
            "dropped": self.dropped,
            "error_codes": self.error_codes,
            "machine": machine(),
        });
        println!("{json}");
    }
}

/// What the load runs on, printed with every result: the machine's processors and model
/// (`/proc/cpuinfo`), and how many of them the load generator may run on (its affinity:
/// 1 under `taskset -c 1`).
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let allowed = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "cpus": cpus,
        "cpus_allowed": allowed,
        "cpu_model": model,
        "os": std::env::consts::OS,
    })
}

/// Everything a call needs: the clients and a source of unique ids.
struct Target {
    conns: Vec<Clients>,
    customers: u32,
    batch: u32,
    run_id: String,
    next: AtomicU64,
}

impl Target {
    fn pick(&self) -> (u64, &Clients, String) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = &self.conns[(n % self.conns.len() as u64) as usize];
        let customer = format!("loadgen-{}", n % u64::from(self.customers));
        (n, conn, customer)
    }

    /// One op. Errors come back as their gRPC code.
    async fn call(&self, rpc: Rpc) -> Result<(), tonic::Code> {
        let (n, c, customer) = self.pick();
        let model = [("model".to_string(), "gpt-large".to_string())];
        match rpc {
            Rpc::Empty | Rpc::EmptyPair => {
                let calls = if rpc == Rpc::EmptyPair { 2 } else { 1 };
                for _ in 0..calls {
                    c.health
                        .clone()
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .map_err(|s| s.code())?;
                }
            }
            Rpc::Check => {
                c.enforcement
                    .clone()
                    .check(CheckRequest {
                        customer_id: customer,
                        feature: "llm-tokens".into(),
                        dimensions: model.into(),
                        units: 1000,
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| s.code())?;
            }
            Rpc::ReserveCommit => {
                let mut enforcement = c.enforcement.clone();
                let held = enforcement
                    .reserve(ReserveRequest {
                        customer_id: customer.clone(),
                        feature: "llm-tokens".into(),
                        dimensions: model.into(),
                        units: 1000,
                        idempotency_key: format!("{}-r-{n}", self.run_id),
                        hold_timeout_ms: 60_000,
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| s.code())?
                    .into_inner();
                if !held.decision.as_ref().is_some_and(|d| d.allowed) {
                    // A denial is an answer, but not the load asked for: count it.
                    return Err(tonic::Code::FailedPrecondition);
                }
                enforcement
                    .commit(CommitRequest {
                        customer_id: customer,
                        hold_id: held.hold_id,
                        units: 800,
                        idempotency_key: format!("{}-c-{n}", self.run_id),
                    })
                    .await
                    .map_err(|s| s.code())?;
            }
            Rpc::Ingest => {
                let events = (0..self.batch)
                    .map(|i| UsageEvent {
                        id: format!("{}-e-{n}-{i}", self.run_id),
                        customer_id: format!(
                            "loadgen-{}",
                            (n + u64::from(i)) % u64::from(self.customers)
                        ),
                        subject: None,
                        feature: "llm-tokens".into(),
                        quantity: 100,
                        dimensions: [("model".to_string(), "gpt-small".to_string())].into(),
                    })
                    .collect();
                let resp = c
                    .metering
                    .clone()
                    .ingest(IngestRequest { events })
                    .await
                    .map_err(|s| s.code())?
                    .into_inner();
                if !resp.rejected.is_empty() {
                    return Err(tonic::Code::FailedPrecondition);
                }
                // Every event id is new: all must count, none as a duplicate.
                if resp.accepted != self.batch || resp.debited_micro_credits == 0 {
                    return Err(tonic::Code::DataLoss);
                }
            }
        }
        Ok(())
    }
}

/// Latencies and counts shared by all callers of one run.
struct Recorder {
    measure_from: Instant,
    measure_until: Instant,
    /// Open loop: a call counts when it was due in the window, however late it ends (a
    /// call the server held past the window is the latency the run must show). Closed
    /// loop: when it started and ended in the window.
    by_due_time: bool,
    histogram: Mutex<Histogram<u64>>,
    /// With `--trace-dir`: each successful call measured, (end, latency) in microseconds
    /// from `measure_from`.
    trace: Option<Mutex<Vec<(u64, u64)>>>,
    ops: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    error_codes: Mutex<BTreeMap<String, u64>>,
}

impl Recorder {
    fn new(
        measure_from: Instant,
        measure_until: Instant,
        by_due_time: bool,
        traced: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            measure_from,
            measure_until,
            by_due_time,
            histogram: Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?),
            trace: traced.then(|| Mutex::new(Vec::new())),
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            error_codes: Mutex::new(BTreeMap::new()),
        })
    }

    /// Records a call started (or due) at `start` that ended now.
    fn record(&self, start: Instant, result: Result<(), tonic::Code>) {
        let end = Instant::now();
        let last = if self.by_due_time { start } else { end };
        if start < self.measure_from || last >= self.measure_until {
            return;
        }
        match result {
            Ok(()) => {
                let us = u64::try_from(end.duration_since(start).as_micros()).unwrap_or(u64::MAX);
                self.histogram
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .saturating_record(us.max(1));
                self.ops.fetch_add(1, Ordering::Relaxed);
                if let Some(trace) = &self.trace {
                    let ended = end.duration_since(self.measure_from).as_micros();
                    trace
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((u64::try_from(ended).unwrap_or(u64::MAX), us));
                }
            }
            Err(code) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self
                    .error_codes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(format!("{code:?}"))
                    .or_default() += 1;
            }
        }
    }
}

/// The open loop's schedule: each call's intended send time, `rate` a second from `start`
/// until `until`, handed over when it comes. A thread of its own keeps it: tokio's timer
/// ticks every millisecond, so calls paced by it went out in bursts up to a millisecond late
/// (an empty RPC at 5,000/s measured a 1.4 ms p50 from its intended time, against 0.17 ms
/// answered one at a time); a thread's sleep wakes within tens of microseconds.
fn pace(
    start: Instant,
    rate: u64,
    until: Instant,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<Instant>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("loadgen-pacer".into())
        .spawn(move || {
            for k in 0u64.. {
                // Exact in nanoseconds: at most 10,000,000/s for an hour stays in range.
                let offset = u128::from(k) * 1_000_000_000 / u128::from(rate);
                let due = start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
                if due >= until {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if tx.send(due).is_err() {
                    break;
                }
            }
        })
        .context("starting the pacer thread")?;
    Ok(rx)
}

async fn run(target: Arc<Target>, rpc: Rpc, mode: Mode, args: &Args) -> anyhow::Result<Report> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_s);
    let measure_until = measure_from + Duration::from_secs(args.duration_s);
    let open_loop = matches!(mode, Mode::Open { .. });
    let recorder = Arc::new(Recorder::new(
        measure_from,
        measure_until,
        open_loop,
        args.trace_dir.is_some(),
    )?);
    match mode {
        Mode::Closed { concurrency } => {
            let mut callers = JoinSet::new();
            for _ in 0..concurrency {
                let (target, recorder) = (target.clone(), recorder.clone());
                callers.spawn(async move {
                    while Instant::now() < recorder.measure_until {
                        let t = Instant::now();
                        let result = target.call(rpc).await;
                        recorder.record(t, result);
                    }
                });
            }
            while callers.join_next().await.is_some() {}
        }
        Mode::Open { rate } => {
            let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            let mut calls = JoinSet::new();
            let mut schedule = pace(start, rate, measure_until)?;
            while let Some(due) = schedule.recv().await {
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    if due >= measure_from {
                        recorder.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                };
                let (target, recorder) = (target.clone(), recorder.clone());
                calls.spawn(async move {
                    let result = target.call(rpc).await;
                    recorder.record(due, result);
                    drop(permit);
                });
                // Reap finished calls so the set stays small.
                while calls.try_join_next().is_some() {}
            }
            let drain = tokio::time::timeout(Duration::from_secs(60), async {
                while calls.join_next().await.is_some() {}
            });
            if drain.await.is_err() {
                eprintln!("some calls still unanswered 60 s after the run; abandoned");
                calls.abort_all();
            }
        }
    }
    let histogram = recorder
        .histogram
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let error_codes = recorder
        .error_codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let (Some(dir), Some(trace)) = (&args.trace_dir, &recorder.trace) {
        let trace = trace.lock().unwrap_or_else(|e| e.into_inner());
        write_trace(&dir.join(format!("{}.trace", rpc.name())), &trace)?;
    }
    Ok(Report {
        rpc,
        mode,
        duration: Duration::from_secs(args.duration_s),
        ops: recorder.ops.load(Ordering::Relaxed),
        errors: recorder.errors.load(Ordering::Relaxed),
        dropped: recorder.dropped.load(Ordering::Relaxed),
        error_codes,
        histogram,
        events_per_op: if rpc == Rpc::Ingest {
            u64::from(args.batch)
        } else {
            1
        },
    })
}

/// Writes `calls` as `--trace-dir` describes, in the order they ended.
fn write_trace(path: &std::path::Path, calls: &[(u64, u64)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut sorted = calls.to_vec();
    sorted.sort_unstable();
    let file = std::fs::File::create(path)
        .with_context(|| format!("creating the trace {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for (ended, latency) in sorted {
        writeln!(out, "{ended} {latency}")?;
    }
    out.flush()
        .with_context(|| format!("writing the trace {}", path.display()))?;
    eprintln!("trace: {} calls in {}", calls.len(), path.display());
    Ok(())
}

/// Creates the load customers, subscribes them and grants each a large amount.
async fn setup(c: &Clients, args: &Args, run_id: &str) -> anyhow::Result<()> {
    let (mut customers, mut wallets) = (c.customers.clone(), c.wallets.clone());
    for i in 0..args.customers {
        let id = format!("loadgen-{i}");
        customers
            .upsert_customer(UpsertCustomerRequest {
                customer_id: id.clone(),
                display_name: format!("load customer {i}"),
                idempotency_key: format!("{run_id}-setup-upsert-{i}"),
            })
            .await
            .with_context(|| format!("UpsertCustomer {id}"))?;
        customers
            .subscribe(SubscribeRequest {
                customer_id: id.clone(),
                plan: args.plan.clone(),
                start_ms: 0,
                idempotency_key: format!("{run_id}-setup-subscribe-{i}"),
            })
            .await
            .with_context(|| format!("Subscribe {id} to {}", args.plan))?;
        wallets
            .grant(paid_grant(
                &id,
                credits(SETUP_GRANT_CREDITS),
                &format!("{run_id}-setup-grant-{i}"),
            ))
            .await
            .with_context(|| format!("Grant to {id}"))?;
    }
    Ok(())
}

fn validate(args: &Args) -> anyhow::Result<Mode> {
    if !args.allow_remote && !args.addr.ip().is_loopback() {
        bail!(
            "--addr {} is not a loopback address; pass --allow-remote to use it",
            args.addr
        );
    }
    if args.duration_s == 0 || args.duration_s > MAX_DURATION_S {
        bail!(
            "--duration-s must be 1..={MAX_DURATION_S}, not {}",
            args.duration_s
        );
    }
    if args.warmup_s > MAX_DURATION_S {
        bail!("--warmup-s must be at most {MAX_DURATION_S}");
    }
    if args.batch == 0 || args.batch > MAX_BATCH {
        bail!("--batch must be 1..={MAX_BATCH}, not {}", args.batch);
    }
    if args.customers == 0 {
        bail!("--customers must be at least 1");
    }
    if args.threads > 256 {
        bail!("--threads must be 0..=256, not {}", args.threads);
    }
    if args.connections == 0 || args.connections > 256 {
        bail!("--connections must be 1..=256, not {}", args.connections);
    }
    match (args.concurrency, args.rate) {
        (_, Some(0)) => bail!("--rate must be at least 1"),
        (_, Some(rate)) if rate > 10_000_000 => bail!("--rate must be at most 10,000,000"),
        (_, Some(rate)) => Ok(Mode::Open { rate }),
        (Some(c), None) if c == 0 || c > 100_000 => {
            bail!("--concurrency must be 1..=100000, not {c}")
        }
        (Some(concurrency), None) => Ok(Mode::Closed { concurrency }),
        (None, None) => Ok(Mode::Closed { concurrency: 32 }),
    }
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mode = validate(&args)?;
    // The server's own rule: 1 runs tokio's current-thread scheduler, 0 one thread per core.
    tollgate_runtime::serve::disable_huge_pages();
    let (runtime, _) = tollgate_runtime::serve::build_runtime(args.threads)?;
    runtime.block_on(drive(args, mode))
}

async fn drive(args: Args, mode: Mode) -> anyhow::Result<()> {
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        let channel = Endpoint::from_shared(format!("http://{}", args.addr))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.addr))?;
        conns.push(Clients::from_channel(channel));
    }
    let run_id = format!(
        "lg{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let needs_customers = args.rpc.floor() != args.rpc;
    if needs_customers && !args.no_setup {
        let t = Instant::now();
        setup(&conns[0], &args, &run_id).await?;
        eprintln!(
            "setup: {} customers on plan {} in {:?}",
            args.customers,
            args.plan,
            t.elapsed()
        );
    }
    let target = Arc::new(Target {
        conns,
        customers: args.customers,
        batch: args.batch,
        run_id,
        next: AtomicU64::new(0),
    });
    if args.compare && args.rpc.floor() != args.rpc {
        let floor = run(target.clone(), args.rpc.floor(), mode, &args).await?;
        floor.print();
        let measured = run(target, args.rpc, mode, &args).await?;
        measured.print();
        let ratio = measured.throughput() / floor.throughput().max(f64::MIN_POSITIVE);
        println!(
            "compare: {} reaches {:.1}% of the {} throughput ({:.1} vs {:.1} ops/s); \
             p50 {} us vs {} us, p99 {} us vs {} us",
            args.rpc.name(),
            ratio * 100.0,
            args.rpc.floor().name(),
            measured.throughput(),
            floor.throughput(),
            measured.histogram.value_at_quantile(0.5),
            floor.histogram.value_at_quantile(0.5),
            measured.histogram.value_at_quantile(0.99),
            floor.histogram.value_at_quantile(0.99),
        );
        println!(
            "{}",
            serde_json::json!({
                "compare": {
                    "rpc": args.rpc.name(),
                    "floor": args.rpc.floor().name(),
                    "throughput_ratio_to_empty": ratio,
                    "throughput_ops_s": measured.throughput(),
                    "empty_throughput_ops_s": floor.throughput(),
                    "latency_us_p50": measured.histogram.value_at_quantile(0.5),
                    "empty_latency_us_p50": floor.histogram.value_at_quantile(0.5),
                    "latency_us_p99": measured.histogram.value_at_quantile(0.99),
                    "empty_latency_us_p99": floor.histogram.value_at_quantile(0.99),
                }
            })
        );
    } else {
        run(target, args.rpc, mode, &args).await?.print();
    }
    Ok(())
}
