//! Reconcile metrics: count, duration and errors, by controller.

use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Reconcile metrics of every controller.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
}

/// Buckets of the reconcile duration histogram, seconds: a reconcile makes a handful of API
/// calls, so milliseconds to a few seconds.
const DURATION_BUCKETS_S: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reconciles = IntCounterVec::new(
            Opts::new(
                "tollgate_operator_reconciles_total",
                "Reconciles started, by controller",
            ),
            &["controller"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "tollgate_operator_reconcile_errors_total",
                "Reconciles failed, by controller and error code",
            ),
            &["controller", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_operator_reconcile_duration_seconds",
                "Reconcile duration, by controller",
            )
            .buckets(DURATION_BUCKETS_S.to_vec()),
            &["controller"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            reconciles,
            failures,
            duration,
        })
    }

    /// Counts a reconcile; its duration is recorded when the returned guard drops.
    pub fn start(&self, controller: &'static str) -> ReconcileTimer {
        self.reconciles.with_label_values(&[controller]).inc();
        ReconcileTimer {
            metrics: self.clone(),
            controller,
            started: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn failed(&self, controller: &'static str, error: &crate::Error) {
        self.failures
            .with_label_values(&[controller, error.code()])
            .inc();
    }
}

/// Records a reconcile's duration on drop.
pub struct ReconcileTimer {
    metrics: Metrics,
    controller: &'static str,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics
            .duration
            .with_label_values(&[self.controller])
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_and_errors_are_counted_by_controller() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        drop(metrics.start("runtime"));
        metrics.failed(
            "runtime",
            &crate::Error::NotNamespaced {
                kind: "Plan",
                name: "x".into(),
            },
        );
        assert_eq!(metrics.reconciles.with_label_values(&["runtime"]).get(), 1);
        assert_eq!(
            metrics
                .failures
                .with_label_values(&["runtime", "not_namespaced"])
                .get(),
            1
        );
        assert_eq!(
            metrics
                .duration
                .with_label_values(&["runtime"])
                .get_sample_count(),
            1
        );
    }
}
