//! The runtime's ServiceAccount and its least-privilege Role: read its own policy ConfigMap,
//! and annotate its own pods with the policy version it applied.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use tollgate_crds::TollgateRuntime;

use super::{ChildNames, child_meta};

/// The runtime pods' ServiceAccount (annotations from `spec.serviceAccount`, for IAM roles).
pub fn service_account(rt: &TollgateRuntime) -> ServiceAccount {
    let mut metadata = child_meta(rt, ChildNames::of(rt).main());
    let annotations = rt
        .spec
        .service_account
        .as_ref()
        .map(|s| s.annotations.clone());
    metadata.annotations = annotations.filter(|a| !a.is_empty());
    ServiceAccount {
        metadata,
        ..ServiceAccount::default()
    }
}

/// The Role: `get`, `list`, `watch` on the policy ConfigMap only, and `get`, `patch` on the
/// runtime's own pods only (by name: pods of a StatefulSet have known names).
pub fn role(rt: &TollgateRuntime) -> Role {
    let names = ChildNames::of(rt);
    Role {
        metadata: child_meta(rt, names.main()),
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["configmaps".into()]),
                resource_names: Some(vec![names.policy_configmap()]),
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".into()]),
                resource_names: Some(names.pod_names(rt.spec.replicas)),
                verbs: vec!["get".into(), "patch".into()],
                ..PolicyRule::default()
            },
        ]),
    }
}

/// Binds the Role to the ServiceAccount.
pub fn role_binding(rt: &TollgateRuntime) -> RoleBinding {
    let names = ChildNames::of(rt);
    RoleBinding {
        metadata: child_meta(rt, names.main()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: names.main(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: names.main(),
            namespace: Some(names.namespace),
            ..Subject::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_runtime::runtime;
    use tollgate_crds::{ServiceAccountSettings, TollgateRuntimeSpec};

    #[test]
    fn role_grants_only_the_policy_configmap_and_own_pods() {
        let rt = runtime(TollgateRuntimeSpec {
            replicas: 2,
            ..TollgateRuntimeSpec::default()
        });
        let rules = role(&rt).rules.unwrap();
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(&["tollgate-policy".to_string()][..])
        );
        assert_eq!(rules[0].verbs, ["get", "list", "watch"]);
        assert_eq!(
            rules[1].resource_names.as_deref().unwrap(),
            ["tollgate-0", "tollgate-1"]
        );
        assert_eq!(rules[1].verbs, ["get", "patch"]);
        assert!(
            rules
                .iter()
                .all(|r| !r.verbs.iter().any(|v| v == "*" || v == "delete"))
        );
    }

    #[test]
    fn binding_names_the_service_account_with_its_annotations() {
        let rt = runtime(TollgateRuntimeSpec {
            service_account: Some(ServiceAccountSettings {
                annotations: [(
                    "eks.amazonaws.com/role-arn".to_string(),
                    "arn:x".to_string(),
                )]
                .into(),
            }),
            ..TollgateRuntimeSpec::default()
        });
        let sa = service_account(&rt);
        assert_eq!(
            sa.metadata.annotations.unwrap()["eks.amazonaws.com/role-arn"],
            "arn:x"
        );
        let binding = role_binding(&rt);
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(
            (subject.name.as_str(), subject.namespace.as_deref()),
            ("tollgate", Some("billing"))
        );
        assert_eq!(binding.role_ref.name, "tollgate");
    }
}
