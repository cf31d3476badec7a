//! The PodDisruptionBudget of the runtime pods.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tollgate_crds::TollgateRuntime;

use super::{ChildNames, child_meta, selector_labels};

/// At most one runtime pod is evicted at a time: each pod owns partitions, and a moving
/// partition is briefly unavailable for writes, so drains go one pod after another.
pub fn pod_disruption_budget(rt: &TollgateRuntime) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: child_meta(rt, ChildNames::of(rt).main()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(rt)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_runtime::runtime;
    use tollgate_crds::TollgateRuntimeSpec;

    #[test]
    fn allows_one_pod_down_and_selects_this_runtime() {
        let pdb = pod_disruption_budget(&runtime(TollgateRuntimeSpec::default()));
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        let labels = spec.selector.unwrap().match_labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/instance"], "tollgate");
        assert_eq!(labels["app.kubernetes.io/name"], "tollgate-runtime");
        assert_eq!(pdb.metadata.name.as_deref(), Some("tollgate"));
    }
}
