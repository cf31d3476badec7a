//! The plan deletion rule, pure.
//!
//! A Plan that subscribed customers still use is not silently deleted. The operator puts the
//! finalizer `tollgate.dev/plan-in-use` on every Plan. When a Plan is deleted, it stays in the
//! policy bundle closed to new subscriptions (existing subscribers keep everything it grants),
//! and the operator removes the finalizer, letting the deletion finish, only when both hold:
//!
//! 1. no Entitlement in the namespace (other than ones being deleted) targets the plan, and
//! 2. every runtime pod in the namespace reports, in its `tollgate.dev/plan-subscribers`
//!    annotation, zero subscribers on the plan. A pod that reports nothing, or something
//!    unreadable, counts as "maybe in use": the rule fails safe. With no runtime pod at all
//!    there is no subscriber to protect, and the plan goes.
//!
//! Until then the Plan's `Deleting` condition and a Warning event say why. To delete anyway
//! (the subscribers are being migrated by other means), remove the finalizer by hand.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use tollgate_crds::Entitlement;

use crate::builders::PLAN_SUBSCRIBERS_ANNOTATION;

/// The finalizer that holds a Plan while it is in use.
pub const PLAN_IN_USE_FINALIZER: &str = "tollgate.dev/plan-in-use";

/// Whether a deleted Plan may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Release,
    Blocked {
        reason: &'static str,
        message: String,
    },
}

/// Applies the rule to one plan.
pub fn deletion_verdict(plan: &str, entitlements: &[Entitlement], runtime_pods: &[Pod]) -> Verdict {
    let referencing: Vec<&str> = entitlements
        .iter()
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        .filter(|e| e.spec.target.plans.iter().any(|p| p == plan))
        .filter_map(|e| e.metadata.name.as_deref())
        .collect();
    if !referencing.is_empty() {
        return Verdict::Blocked {
            reason: "ReferencedByEntitlement",
            message: format!(
                "Entitlements {} target this plan; change or delete them first",
                referencing.join(", ")
            ),
        };
    }
    let mut unknown = Vec::new();
    let mut subscribers: u64 = 0;
    for pod in runtime_pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let report = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PLAN_SUBSCRIBERS_ANNOTATION));
        match report.map(|text| serde_json::from_str::<BTreeMap<String, u64>>(text)) {
            Some(Ok(counts)) => {
                subscribers = subscribers.saturating_add(counts.get(plan).copied().unwrap_or(0))
            }
            _ => unknown.push(name),
        }
    }
    if subscribers > 0 {
        return Verdict::Blocked {
            reason: "HasSubscribers",
            message: format!(
                "{subscribers} customers subscribe to this plan; it stays closed to new subscriptions until they move"
            ),
        };
    }
    if !unknown.is_empty() {
        return Verdict::Blocked {
            reason: "SubscribersUnknown",
            message: format!(
                "runtime pods {} have not reported subscriber counts yet",
                unknown.join(", ")
            ),
        };
    }
    Verdict::Release
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_crds::{EntitlementSpec, EntitlementTarget};

    fn pod(name: &str, report: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        if let Some(report) = report {
            pod.metadata.annotations =
                Some([(PLAN_SUBSCRIBERS_ANNOTATION.to_string(), report.to_string())].into());
        }
        pod
    }

    fn addon_for(plan: &str) -> Entitlement {
        Entitlement::new(
            "addon",
            EntitlementSpec {
                target: EntitlementTarget {
                    plans: vec![plan.into()],
                    customers: vec![],
                },
                ..EntitlementSpec::default()
            },
        )
    }

    #[test]
    fn an_unused_plan_is_released() {
        let pods = [
            pod("rt-0", Some(r#"{"pro": 0, "free": 9}"#)),
            pod("rt-1", Some("{}")),
        ];
        assert_eq!(
            deletion_verdict("pro", &[addon_for("free")], &pods),
            Verdict::Release
        );
        assert_eq!(deletion_verdict("pro", &[], &[]), Verdict::Release);
    }

    #[test]
    fn subscribers_on_any_pod_block_deletion() {
        let pods = [
            pod("rt-0", Some(r#"{"pro": 0}"#)),
            pod("rt-1", Some(r#"{"pro": 2}"#)),
        ];
        let Verdict::Blocked { reason, message } = deletion_verdict("pro", &[], &pods) else {
            panic!()
        };
        assert_eq!(reason, "HasSubscribers");
        assert!(message.starts_with("2 customers"), "{message}");
    }

    #[test]
    fn an_entitlement_targeting_the_plan_blocks_deletion() {
        let verdict = deletion_verdict("pro", &[addon_for("pro")], &[]);
        assert!(matches!(
            verdict,
            Verdict::Blocked {
                reason: "ReferencedByEntitlement",
                ..
            }
        ));
    }

    #[test]
    fn a_pod_that_has_not_reported_fails_safe() {
        let pods = [
            pod("rt-0", Some(r#"{"pro": 0}"#)),
            pod("rt-1", None),
            pod("rt-2", Some("not json")),
        ];
        let Verdict::Blocked { reason, message } = deletion_verdict("pro", &[], &pods) else {
            panic!()
        };
        assert_eq!(reason, "SubscribersUnknown");
        assert!(message.contains("rt-1, rt-2"), "{message}");
    }
}
