//! What every reconcile shares.

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::builders::BuildDefaults;
use crate::metrics::Metrics;

/// Shared state of the controllers.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub defaults: BuildDefaults,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Metrics,
        defaults: BuildDefaults,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            defaults,
        }
    }
}
