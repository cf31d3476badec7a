//! The HTTP edge: health, readiness, Prometheus metrics, the policy in force, and `Check`
//! as JSON (`check`).

mod check;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::{
    Counter, CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde::Serialize;

use crate::service::{Decision, Runtime, ServiceError};

/// A store's own counters (the DynamoDB store's calls, throttling, capacity units and
/// checkpoints) as (metric name, help, value since start), read when `/metrics` is scraped.
pub type StoreFigures = Arc<dyn Fn() -> Vec<(&'static str, &'static str, f64)> + Send + Sync>;

/// Every metric the runtime exports.
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    calls: IntCounterVec,
    latency: HistogramVec,
    engine: EngineMetrics,
    policy_reloads: IntCounterVec,
    store: Option<(StoreFigures, Vec<Counter>)>,
    /// Scrapes bring counters up to the figures they read: one at a time.
    scrape: Mutex<()>,
}

/// Each partition's engine figures (label `partition`), brought up to date at each scrape.
struct EngineMetrics {
    queue_depth: IntGaugeVec,
    max_batch: IntGaugeVec,
    store_write_max: GaugeVec,
    snapshot_bytes: IntGaugeVec,
    journal_entries: IntGaugeVec,
    answer_slots: IntGaugeVec,
    hold_slots: IntGaugeVec,
    batches: IntCounterVec,
    commands: IntCounterVec,
    store_write_seconds: CounterVec,
    snapshots: IntCounterVec,
    snapshots_failed: IntCounterVec,
    /// The ledgers' spare chunks (`ledger::Spares`, one set for the process; label `kind`).
    spares_ready: IntGaugeVec,
    spares_taken: IntCounterVec,
    spares_missed: IntCounterVec,
}

impl EngineMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let partition = &["partition"];
        let int_gauge_by = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntGaugeVec::new(Opts::new(name, help), labels)?)
        };
        let int_counter_by = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let int_gauge = |name: &str, help: &str| int_gauge_by(name, help, partition);
        let int_counter = |name: &str, help: &str| int_counter_by(name, help, partition);
        let store_write_max = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "tollgate_engine_store_write_max_seconds",
                    "Longest durable write of a batch so far",
                ),
                partition,
            )?,
        )?;
        let store_write_seconds = register(
            registry,
            CounterVec::new(
                Opts::new(
                    "tollgate_engine_store_write_seconds_total",
                    "Time spent in durable writes of batches",
                ),
                partition,
            )?,
        )?;
        Ok(EngineMetrics {
            queue_depth: int_gauge(
                "tollgate_engine_queue_depth",
                "Commands applied and waiting for their batch to be durable",
            )?,
            max_batch: int_gauge(
                "tollgate_engine_max_batch_commands",
                "Most commands in one batch so far",
            )?,
            store_write_max,
            snapshot_bytes: int_gauge(
                "tollgate_engine_snapshot_bytes",
                "Size of the last snapshot",
            )?,
            journal_entries: int_gauge(
                "tollgate_engine_journal_entries",
                "Journal entries the ledger holds in memory (and writes in every snapshot); archived ones are not",
            )?,
            answer_slots: int_gauge(
                "tollgate_engine_answer_slots",
                "Idempotency answer slots the ledger holds in memory: from the oldest answer \
                 kept to the newest, forgotten ones included",
            )?,
            hold_slots: int_gauge(
                "tollgate_engine_hold_slots",
                "Hold slots the ledger holds in memory: from the oldest hold kept to the \
                 newest, settled ones included",
            )?,
            batches: int_counter(
                "tollgate_engine_batches_total",
                "Batches made durable, each with one store write",
            )?,
            commands: int_counter(
                "tollgate_engine_commands_total",
                "Commands made durable in batches",
            )?,
            store_write_seconds,
            snapshots: int_counter("tollgate_engine_snapshots_total", "Snapshots taken")?,
            snapshots_failed: int_counter(
                "tollgate_engine_snapshots_failed_total",
                "Snapshots the store could not take (tried again later)",
            )?,
            spares_ready: int_gauge_by(
                "tollgate_ledger_spare_chunks",
                "Chunks touched ahead of need and ready for the ledger to grow by",
                &["kind"],
            )?,
            spares_taken: int_counter_by(
                "tollgate_ledger_spare_chunks_taken_total",
                "Chunks the ledger grew by that came touched from the spares",
                &["kind"],
            )?,
            spares_missed: int_counter_by(
                "tollgate_ledger_spare_chunks_missed_total",
                "Chunks the ledger needed when no spare was ready: it allocated them, \
                 and calls paid for their pages' first touch",
                &["kind"],
            )?,
        })
    }

    fn update(&self, runtime: &Runtime) {
        for (p, engine) in runtime.engines().iter().enumerate() {
            let p = p.to_string();
            let l = &[p.as_str()];
            let stats = engine.stats().snapshot();
            let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let seconds = |us: u64| us as f64 / 1e6;
            for (gauge, value) in [
                (&self.queue_depth, engine.queue_depth() as u64),
                (&self.max_batch, stats.max_batch),
                (&self.snapshot_bytes, stats.snapshot_bytes),
                (&self.journal_entries, stats.journal_entries),
                (&self.answer_slots, stats.answer_slots),
                (&self.hold_slots, stats.hold_slots),
            ] {
                gauge.with_label_values(l).set(int(value));
            }
            self.store_write_max
                .with_label_values(l)
                .set(seconds(stats.store_write_us_max));
            for (counter, value) in [
                (&self.batches, stats.batches),
                (&self.commands, stats.commands),
                (&self.snapshots, stats.snapshots),
                (&self.snapshots_failed, stats.snapshots_failed),
            ] {
                advance_int(&counter.with_label_values(l), value);
            }
            advance(
                &self.store_write_seconds.with_label_values(l),
                seconds(stats.store_write_us_total),
            );
        }
        // One set of spares serves every partition.
        if let Some(spares) = runtime.engines().iter().find_map(|e| e.spares()) {
            for figures in spares.figures() {
                let l = &[figures.kind];
                let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                self.spares_ready
                    .with_label_values(l)
                    .set(int(figures.ready));
                advance_int(&self.spares_taken.with_label_values(l), figures.taken);
                advance_int(&self.spares_missed.with_label_values(l), figures.missed);
            }
        }
    }
}

/// The engine's histograms, one metric per partition (label `partition`), built at each
/// scrape from the buckets the engine counts itself (the writer counts them without a lock
/// or the registry; `engine::stats`):
/// - `tollgate_engine_store_write_seconds`: durable writes by how long they took;
/// - `tollgate_engine_batch_commands`: batches by how many commands they carried.
fn engine_histograms(runtime: &Runtime) -> [prometheus::proto::MetricFamily; 2] {
    use crate::engine::{BATCH_COMMANDS_BOUNDS, STORE_WRITE_BOUNDS_US};
    let stats: Vec<_> = runtime
        .engines()
        .iter()
        .map(|engine| engine.stats().snapshot())
        .collect();
    [
        partition_histogram(
            "tollgate_engine_store_write_seconds",
            "Durable writes of batches by how long they took (an fdatasync, a DynamoDB \
             transaction): the disk's or the table's slow moments, which every call of the \
             batch waits out",
            &STORE_WRITE_BOUNDS_US,
            1e6,
            stats
                .iter()
                .map(|s| (&s.store_write_buckets[..], s.store_write_us_total)),
        ),
        partition_histogram(
            "tollgate_engine_batch_commands",
            "Batches made durable by how many commands they carried: how many calls share \
             one durable write",
            &BATCH_COMMANDS_BOUNDS,
            1.0,
            stats.iter().map(|s| (&s.batch_buckets[..], s.commands)),
        ),
    ]
}

/// A histogram family with one metric per partition, in order. Each partition gives its
/// counts by bucket (not cumulative: `[i]` those at most `bounds[i]` and over the bound
/// before, the last those over every bound) and the sum of what was counted, both in the
/// unit of `bounds`; the family is in that unit divided by `per_unit`.
fn partition_histogram<'a>(
    name: &str,
    help: &str,
    bounds: &[u64],
    per_unit: f64,
    partitions: impl Iterator<Item = (&'a [u64], u64)>,
) -> prometheus::proto::MetricFamily {
    use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};
    let mut family = MetricFamily::default();
    family.set_name(name.into());
    family.set_help(help.into());
    family.set_field_type(MetricType::HISTOGRAM);
    for (p, (counts, sum)) in partitions.enumerate() {
        let mut cumulative = 0;
        let buckets = bounds
            .iter()
            .zip(counts)
            .map(|(&bound, &count)| {
                cumulative += count;
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(bound as f64 / per_unit);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        let mut histogram = Histogram::default();
        histogram.set_bucket(buckets);
        // The +Inf bucket is the count, which the encoder writes itself.
        histogram.set_sample_count(counts.iter().sum());
        histogram.set_sample_sum(sum as f64 / per_unit);
        let mut label = LabelPair::default();
        label.set_name("partition".into());
        label.set_value(p.to_string());
        let mut metric = Metric::default();
        metric.set_label(vec![label]);
        metric.set_histogram(histogram);
        family.mut_metric().push(metric);
    }
    family
}

/// Brings a counter up to `to`, a figure counted elsewhere since start. Figures never go
/// back (a restarted partition's engine carries on from the old one's counts).
fn advance_int(counter: &IntCounter, to: u64) {
    let now = counter.get();
    if to > now {
        counter.inc_by(to - now);
    }
}

/// Registers `metric` with `registry`; the metric.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// `advance_int` for a figure in floating point.
fn advance(counter: &Counter, to: f64) {
    let now = counter.get();
    if to > now {
        counter.inc_by(to - now);
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "tollgate_decisions_total",
                "Decisions by RPC, outcome and reason",
            ),
            &["rpc", "outcome", "reason"],
        )?;
        let calls = IntCounterVec::new(
            Opts::new("tollgate_calls_total", "RPCs by outcome"),
            &["rpc", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("tollgate_rpc_latency_seconds", "Time to answer an RPC").buckets(
                vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.5, 1.0,
                ],
            ),
            &["rpc"],
        )?;
        let policy_reloads = IntCounterVec::new(
            Opts::new(
                "tollgate_policy_reloads_total",
                "Catalog changes seen, by outcome (applied, refused)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(policy_reloads.clone()))?;
        let engine = EngineMetrics::new(&registry)?;
        Ok(Metrics {
            registry,
            decisions,
            calls,
            latency,
            engine,
            policy_reloads,
            store: None,
            scrape: Mutex::new(()),
        })
    }

    /// Exports the store's `figures`, each as a counter of its own name.
    pub fn with_dynamodb_figures(
        mut self,
        figures: StoreFigures,
    ) -> Result<Self, prometheus::Error> {
        let mut counters = Vec::new();
        for (name, help, _) in figures() {
            let counter = Counter::with_opts(Opts::new(name, help))?;
            self.registry.register(Box::new(counter.clone()))?;
            counters.push(counter);
        }
        self.store = Some((figures, counters));
        Ok(self)
    }

    /// Records an RPC that decides.
    pub fn observe(&self, rpc: &str, started: Instant, result: Result<&Decision, &ServiceError>) {
        self.latency
            .with_label_values(&[rpc])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(d) => {
                let outcome = if d.allowed { "allowed" } else { "denied" };
                self.decisions
                    .with_label_values(&[rpc, outcome, d.reason.code()])
                    .inc();
                self.calls.with_label_values(&[rpc, "ok"]).inc();
            }
            Err(e) => self.calls.with_label_values(&[rpc, e.code()]).inc(),
        }
    }

    /// Records an RPC that does not decide.
    pub fn observe_call(&self, rpc: &str, started: Instant, ok: bool) {
        self.latency
            .with_label_values(&[rpc])
            .observe(started.elapsed().as_secs_f64());
        self.calls
            .with_label_values(&[rpc, if ok { "ok" } else { "error" }])
            .inc();
    }

    pub fn policy_reload(&self, applied: bool) {
        self.policy_reloads
            .with_label_values(&[if applied { "applied" } else { "refused" }])
            .inc();
    }

    pub(crate) fn render(&self, runtime: &Runtime) -> String {
        let scrape = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.engine.update(runtime);
        if let Some((figures, counters)) = &self.store {
            // The same figures in the same order as at registration.
            for ((_, _, value), counter) in figures().into_iter().zip(counters) {
                advance(counter, value);
            }
        }
        drop(scrape);
        let mut families = self.registry.gather();
        families.extend(engine_histograms(runtime));
        let mut out = Vec::new();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The policy in force and why the last change was refused, if it was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyStatus {
    pub version: String,
    pub objects: usize,
    pub last_error: Option<String>,
    pub loaded_at_ms: u64,
    /// Where the policy comes from: `directory <path>` or `configmap <namespace>/<name>`.
    pub source: String,
    /// The catalog directory (empty when the policy comes from a ConfigMap).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub directory: String,
}

pub struct HttpState {
    pub runtime: Arc<Runtime>,
    pub metrics: Arc<Metrics>,
    pub policy: Arc<RwLock<PolicyStatus>>,
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/policy", get(policy))
        .route(
            "/v1/check",
            post(check::check).layer(DefaultBodyLimit::max(check::MAX_CHECK_BODY_BYTES)),
        )
        .with_state(state)
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let body = state.metrics.render(&state.runtime);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

async fn policy(State(state): State<Arc<HttpState>>) -> Response {
    let status = match state.policy.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    Json(status).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn the_stores_own_figures_are_exported_as_counters() {
        let t = crate::testing::runtime(crate::testing::TWO_PLANS, 1);
        let throttled = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let metrics = Metrics::new()
            .unwrap()
            .with_dynamodb_figures(Arc::new({
                let throttled = throttled.clone();
                move || {
                    vec![
                        (
                            "tollgate_dynamodb_throttled_total",
                            "throttled answers",
                            throttled.load(Ordering::SeqCst) as f64,
                        ),
                        (
                            "tollgate_dynamodb_write_capacity_units_total",
                            "write units",
                            12.5,
                        ),
                    ]
                }
            }))
            .unwrap();
        let text = metrics.render(&t.runtime);
        for line in [
            "# TYPE tollgate_dynamodb_throttled_total counter\n",
            "tollgate_dynamodb_throttled_total 3\n",
            "tollgate_dynamodb_write_capacity_units_total 12.5\n",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
        // Read at every scrape.
        throttled.store(4, Ordering::SeqCst);
        let text = metrics.render(&t.runtime);
        assert!(
            text.contains("tollgate_dynamodb_throttled_total 4\n"),
            "{text}"
        );
        // Without a DynamoDB store there is no such series.
        let text = Metrics::new().unwrap().render(&t.runtime);
        assert!(!text.contains("tollgate_dynamodb"), "{text}");
    }

    #[tokio::test]
    async fn store_writes_and_batch_sizes_are_histograms_per_partition() {
        let t = crate::testing::runtime(crate::testing::TWO_PLANS, 2);
        let metrics = Metrics::new().unwrap();
        for customer in ["acme", "globex", "initech", "umbrella"] {
            t.runtime
                .upsert_customer(customer, customer, &format!("upsert-{customer}"))
                .await
                .unwrap();
        }
        let text = metrics.render(&t.runtime);
        let value = |series: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{series} missing from {text}"))
                .parse()
                .unwrap()
        };
        // A histogram's buckets on partition `p`: cumulative, from the first bound to +Inf,
        // which is the count; its count and sum.
        let histogram = |name: &str, bounds: &[u64], per_unit: f64, p: usize| -> (f64, f64) {
            assert!(
                text.contains(&format!("# TYPE {name} histogram\n")),
                "{name}: {text}"
            );
            let count = value(&format!("{name}_count{{partition=\"{p}\"}}"));
            let mut last = 0.0;
            for &bound in bounds {
                let le = bound as f64 / per_unit;
                let bucket = value(&format!("{name}_bucket{{partition=\"{p}\",le=\"{le}\"}}"));
                assert!(bucket >= last, "{name}: {text}");
                last = bucket;
            }
            let inf = value(&format!("{name}_bucket{{partition=\"{p}\",le=\"+Inf\"}}"));
            assert_eq!(inf, count, "{name}: {text}");
            assert_eq!(
                last, count,
                "{name}: nothing here past the last bound: {text}"
            );
            (count, value(&format!("{name}_sum{{partition=\"{p}\"}}")))
        };
        let mut writes = 0.0;
        for p in 0..2 {
            let batches = value(&format!(
                "tollgate_engine_batches_total{{partition=\"{p}\"}}"
            ));
            let (count, sum) = histogram(
                "tollgate_engine_store_write_seconds",
                &crate::engine::STORE_WRITE_BOUNDS_US,
                1e6,
                p,
            );
            assert_eq!(count, batches, "one write per batch: {text}");
            assert!(
                sum <= value(&format!(
                    "tollgate_engine_store_write_max_seconds{{partition=\"{p}\"}}"
                )) * count,
                "{text}"
            );
            let (count, sum) = histogram(
                "tollgate_engine_batch_commands",
                &crate::engine::BATCH_COMMANDS_BOUNDS,
                1.0,
                p,
            );
            assert_eq!(count, batches, "one size per batch: {text}");
            assert_eq!(
                sum,
                value(&format!(
                    "tollgate_engine_commands_total{{partition=\"{p}\"}}"
                )),
                "the sizes add up to the commands: {text}"
            );
            writes += count;
        }
        // Four customers, one batch each at least (the first start may log more).
        assert!(writes >= 4.0, "{text}");
    }

    #[tokio::test]
    async fn engine_figures_are_counters_and_gauges_per_partition() {
        let t = crate::testing::runtime(crate::testing::TWO_PLANS, 2);
        let metrics = Metrics::new().unwrap();
        t.runtime
            .upsert_customer("acme", "Acme", "upsert-acme")
            .await
            .unwrap();
        let text = metrics.render(&t.runtime);
        let value = |name: &str, partition: u32| -> f64 {
            let prefix = format!("{name}{{partition=\"{partition}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("{prefix} missing from {text}"))
                .parse()
                .unwrap()
        };
        for (name, kind) in [
            ("tollgate_engine_batches_total", "counter"),
            ("tollgate_engine_commands_total", "counter"),
            ("tollgate_engine_store_write_seconds_total", "counter"),
            ("tollgate_engine_queue_depth", "gauge"),
            ("tollgate_engine_journal_entries", "gauge"),
        ] {
            let line = format!("# TYPE {name} {kind}\n");
            assert!(text.contains(&line), "{line} missing from {text}");
        }
        let commands =
            value("tollgate_engine_commands_total", 0) + value("tollgate_engine_commands_total", 1);
        assert_eq!(commands, 1.0, "{text}");
        // A second scrape counts nothing twice.
        let text_again = metrics.render(&t.runtime);
        assert_eq!(
            text_again
                .matches("tollgate_engine_commands_total{")
                .count(),
            2
        );
        let again: f64 = text_again
            .lines()
            .filter_map(|l| l.strip_prefix("tollgate_engine_commands_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(again, 1.0, "{text_again}");
    }

    #[test]
    fn a_counter_follows_its_figure() {
        let counter = IntCounter::new("c", "c").unwrap();
        advance_int(&counter, 5);
        advance_int(&counter, 5);
        assert_eq!(counter.get(), 5);
        advance_int(&counter, 9);
        assert_eq!(counter.get(), 9);
        let seconds = Counter::new("s", "s").unwrap();
        for to in [0.25, 0.25, 1.5] {
            advance(&seconds, to);
            assert_eq!(seconds.get(), to);
        }
    }
}
