//! Pure builders: from a `TollgateRuntime` (and the policy bundle) to the objects the operator
//! applies. No I/O; every function is a plain mapping, unit-tested next to it.

pub mod configmap;
pub mod pdb;
pub mod rbac;
pub mod services;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use tollgate_crds::TollgateRuntime;

/// `app.kubernetes.io/name` of every runtime pod, whichever runtime it belongs to.
pub const RUNTIME_APP_NAME: &str = "tollgate-runtime";
/// The label naming the runtime an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// The label naming the application.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label on every object the operator makes for a runtime (the value: `FIELD_MANAGER`).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Set by each runtime pod on itself once it applied a policy version (the runtime's side of
/// the contract; the operator counts these for the `Applied` column).
pub const APPLIED_VERSION_ANNOTATION: &str = "tollgate.dev/applied-policy-version";
/// Set by each runtime pod on itself: JSON map of plan name to the number of subscribers in
/// the partitions it owns (for the plan deletion rule).
pub const PLAN_SUBSCRIBERS_ANNOTATION: &str = "tollgate.dev/plan-subscribers";

/// Everything the builders need to know besides the runtime itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildDefaults {
    /// Image used when the runtime names none (the chart passes
    /// `ghcr.io/tollgate-dev/tollgate:<appVersion>`).
    pub runtime_image: String,
    /// Image pull Secrets when the runtime names none (the chart passes its
    /// `imagePullSecrets`).
    pub image_pull_secrets: Vec<String>,
}

/// Names of the objects of one runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildNames {
    pub runtime: String,
    pub namespace: String,
}

impl ChildNames {
    pub fn of(rt: &TollgateRuntime) -> Self {
        Self {
            runtime: rt.name_any(),
            namespace: rt.namespace().unwrap_or_default(),
        }
    }
    /// StatefulSet, client Service, ServiceAccount, Role, RoleBinding and PDB.
    pub fn main(&self) -> String {
        self.runtime.clone()
    }
    /// The headless Service that gives pods stable DNS names.
    pub fn headless_service(&self) -> String {
        format!("{}-headless", self.runtime)
    }
    /// The policy bundle ConfigMap.
    pub fn policy_configmap(&self) -> String {
        format!("{}-policy", self.runtime)
    }
    /// The pod names of a StatefulSet with `replicas` pods.
    pub fn pod_names(&self, replicas: i32) -> Vec<String> {
        (0..replicas.max(0))
            .map(|i| format!("{}-{i}", self.runtime))
            .collect()
    }
}

/// Labels that select one runtime's pods.
pub fn selector_labels(rt: &TollgateRuntime) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), RUNTIME_APP_NAME.to_string()),
        (INSTANCE_LABEL.to_string(), rt.name_any()),
    ])
}

/// Labels on every object of one runtime.
pub fn labels(rt: &TollgateRuntime) -> BTreeMap<String, String> {
    let mut labels = selector_labels(rt);
    labels.insert("app.kubernetes.io/component".into(), "runtime".into());
    labels.insert(MANAGED_BY_LABEL.into(), crate::FIELD_MANAGER.into());
    labels
}

/// Metadata of a child object: name, namespace, labels and the owner reference to the runtime
/// (so deleting the runtime deletes its children).
pub fn child_meta(rt: &TollgateRuntime, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: rt.namespace(),
        labels: Some(labels(rt)),
        owner_references: owner_ref(rt).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner_ref(rt: &TollgateRuntime) -> Option<OwnerReference> {
    rt.controller_owner_ref(&())
}

#[cfg(test)]
pub(crate) mod test_runtime {
    use tollgate_crds::{TollgateRuntime, TollgateRuntimeSpec};

    /// A runtime as the API server returns it: named, namespaced, with a uid.
    pub fn runtime(spec: TollgateRuntimeSpec) -> TollgateRuntime {
        let mut rt = TollgateRuntime::new("tollgate", spec);
        rt.metadata.namespace = Some("billing".into());
        rt.metadata.uid = Some("0d4c6a3e-uid".into());
        rt.metadata.generation = Some(1);
        rt
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use tollgate_crds::TollgateRuntimeSpec;

    use super::test_runtime::runtime;
    use super::*;

    /// The operator watches the runtimes' children by this label (`run::controllers`): a
    /// child without it would go unwatched.
    #[test]
    fn every_child_carries_the_label_the_operator_watches_by() {
        let rt = runtime(TollgateRuntimeSpec::default());
        let defaults = BuildDefaults {
            runtime_image: "img".into(),
            image_pull_secrets: Vec::new(),
        };
        let bundle = crate::bundle::Bundle::from_valid(tollgate_crds::Catalog::default()).unwrap();
        let metas: Vec<(&str, ObjectMeta)> = vec![
            ("service account", rbac::service_account(&rt).metadata),
            ("role", rbac::role(&rt).metadata),
            ("role binding", rbac::role_binding(&rt).metadata),
            (
                "policy configmap",
                configmap::policy_configmap(&rt, &bundle).metadata,
            ),
            ("headless service", services::headless_service(&rt).metadata),
            ("client service", services::client_service(&rt).metadata),
            (
                "statefulset",
                statefulset::statefulset(&rt, &defaults).metadata,
            ),
            ("pdb", pdb::pod_disruption_budget(&rt).metadata),
        ];
        for (what, meta) in metas {
            assert_eq!(
                meta.labels
                    .unwrap()
                    .get(MANAGED_BY_LABEL)
                    .map(String::as_str),
                Some(crate::FIELD_MANAGER),
                "{what}"
            );
        }
    }
}
