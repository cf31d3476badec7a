//! The plan deletion rule, pure.
//!
//! A Plan that subscribed customers still use is not silently deleted. The operator puts the
//! finalizer `tollgate.dev/plan-in-use` on every Plan. When a Plan is deleted, it stays in the
//! policy bundle closed to new subscriptions (existing subscribers keep everything it grants),
//! and the operator removes the finalizer, letting the deletion finish, only when all hold:
//!
//! 1. no Entitlement in the namespace (other than ones being deleted) targets the plan;
//! 2. every TollgateRuntime of the namespace (other than ones being deleted) has published a
//!    bundle that closes the plan to new subscriptions;
//! 3. every pod each such runtime should have (`spec.replicas`) exists, has applied that
//!    bundle, and reports in its `tollgate.dev/plan-subscribers` annotation zero subscribers
//!    on the plan. The pod writes its applied version and its counts in one patch, counting
//!    after it applied the version (behind every ledger write already submitted), so a
//!    count taken under the closing bundle cannot grow, but for a Subscribe that passed its
//!    policy check in the microseconds before the swap and reached the ledger after the
//!    count. A count from before, up to 30 s old, could: it is not trusted. A pod that is missing
//!    (restarting), behind, or reports nothing readable counts as "maybe in use": the rule
//!    fails safe.
//!
//! With no runtime in the namespace there is no ledger serving subscribers, and the plan goes.
//! Until then the Plan's `Deleting` condition and a Warning event say why. To delete anyway
//! (the subscribers are being migrated by other means), remove the finalizer by hand.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tollgate_crds::{Catalog, Entitlement, TollgateRuntime};

use crate::builders::{APPLIED_VERSION_ANNOTATION, ChildNames, PLAN_SUBSCRIBERS_ANNOTATION};

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

/// One runtime of the plan's namespace, as the rule needs it.
#[derive(Clone, Debug)]
pub struct RuntimeView<'a> {
    pub name: String,
    /// The bundle the operator published for it (its policy ConfigMap): `None` before the
    /// first one.
    pub published: Option<Published>,
    /// Each pod the runtime should have, by name, and the pod if it exists.
    pub pods: Vec<(String, Option<&'a Pod>)>,
}

/// A published bundle: its version, and whether it closes the plan to new subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub version: String,
    pub closes_plan: bool,
}

/// The view of `rt`: its expected pods, each matched among `pods` by name.
pub fn runtime_view<'a>(
    rt: &TollgateRuntime,
    published: Option<Published>,
    pods: &'a [Pod],
) -> RuntimeView<'a> {
    RuntimeView {
        name: rt.name_any(),
        published,
        pods: ChildNames::of(rt)
            .pod_names(rt.spec.replicas)
            .into_iter()
            .map(|name| {
                let pod = pods
                    .iter()
                    .find(|p| p.metadata.name.as_ref() == Some(&name));
                (name, pod)
            })
            .collect(),
    }
}

/// Whether `catalog` holds `plan` closed to new subscriptions.
pub fn closes(catalog: &Catalog, plan: &str) -> bool {
    catalog
        .plans
        .iter()
        .any(|p| p.name_any() == plan && p.spec.closed_to_new_subscriptions)
}

/// Applies the rule to one plan.
pub fn deletion_verdict(
    plan: &str,
    entitlements: &[Entitlement],
    runtimes: &[RuntimeView<'_>],
) -> Verdict {
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
    let open: Vec<&str> = runtimes
        .iter()
        .filter(|rt| !rt.published.as_ref().is_some_and(|p| p.closes_plan))
        .map(|rt| rt.name.as_str())
        .collect();
    if !open.is_empty() {
        return Verdict::Blocked {
            reason: "NotClosedYet",
            message: format!(
                "runtimes {} have not published a policy that closes this plan to new \
                 subscriptions yet",
                open.join(", ")
            ),
        };
    }
    let mut unknown = Vec::new();
    let mut subscribers: u64 = 0;
    for runtime in runtimes {
        let Some(published) = &runtime.published else {
            continue; // refused above
        };
        for (name, pod) in &runtime.pods {
            let Some(pod) = pod else {
                unknown.push(format!("{name} (not running)"));
                continue;
            };
            let annotations = pod.metadata.annotations.as_ref();
            let applied = annotations.and_then(|a| a.get(APPLIED_VERSION_ANNOTATION));
            if applied != Some(&published.version) {
                unknown.push(format!(
                    "{name} (has not applied {} yet)",
                    published.version
                ));
                continue;
            }
            let report = annotations.and_then(|a| a.get(PLAN_SUBSCRIBERS_ANNOTATION));
            match report.map(|text| serde_json::from_str::<BTreeMap<String, u64>>(text)) {
                Some(Ok(counts)) => {
                    subscribers =
                        subscribers.saturating_add(counts.get(plan).copied().unwrap_or(0));
                }
                _ => unknown.push(format!("{name} (no subscriber counts)")),
            }
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
                "runtime pods have not reported subscriber counts under the closing policy: {}",
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

    const CLOSING: &str = "sha256:closing";

    fn pod(version: Option<&str>, report: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        let mut annotations = BTreeMap::new();
        if let Some(version) = version {
            annotations.insert(APPLIED_VERSION_ANNOTATION.to_string(), version.to_string());
        }
        if let Some(report) = report {
            annotations.insert(PLAN_SUBSCRIBERS_ANNOTATION.to_string(), report.to_string());
        }
        pod.metadata.annotations = Some(annotations);
        pod
    }

    /// A runtime named `rt` that published the closing bundle, with pods `rt-0`, `rt-1`, ...
    fn runtime<'a>(pods: &[Option<&'a Pod>]) -> RuntimeView<'a> {
        RuntimeView {
            name: "rt".into(),
            published: Some(Published {
                version: CLOSING.into(),
                closes_plan: true,
            }),
            pods: pods
                .iter()
                .enumerate()
                .map(|(i, pod)| (format!("rt-{i}"), *pod))
                .collect(),
        }
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

    fn blocked(verdict: Verdict) -> (&'static str, String) {
        match verdict {
            Verdict::Blocked { reason, message } => (reason, message),
            Verdict::Release => panic!("released"),
        }
    }

    #[test]
    fn an_unused_plan_is_released() {
        let (a, b) = (
            pod(Some(CLOSING), Some(r#"{"pro": 0, "free": 9}"#)),
            pod(Some(CLOSING), Some("{}")),
        );
        let runtimes = [runtime(&[Some(&a), Some(&b)])];
        assert_eq!(
            deletion_verdict("pro", &[addon_for("free")], &runtimes),
            Verdict::Release
        );
        // No runtime in the namespace: no ledger serves subscribers.
        assert_eq!(deletion_verdict("pro", &[], &[]), Verdict::Release);
    }

    #[test]
    fn subscribers_on_any_pod_block_deletion() {
        let (a, b) = (
            pod(Some(CLOSING), Some(r#"{"pro": 0}"#)),
            pod(Some(CLOSING), Some(r#"{"pro": 2}"#)),
        );
        let (reason, message) = blocked(deletion_verdict(
            "pro",
            &[],
            &[runtime(&[Some(&a), Some(&b)])],
        ));
        assert_eq!(reason, "HasSubscribers");
        assert!(message.starts_with("2 customers"), "{message}");
    }

    #[test]
    fn an_entitlement_targeting_the_plan_blocks_deletion() {
        let (reason, _) = blocked(deletion_verdict("pro", &[addon_for("pro")], &[]));
        assert_eq!(reason, "ReferencedByEntitlement");
    }

    #[test]
    fn a_pod_that_has_not_reported_fails_safe() {
        let (a, b, c) = (
            pod(Some(CLOSING), Some(r#"{"pro": 0}"#)),
            pod(Some(CLOSING), None),
            pod(Some(CLOSING), Some("not json")),
        );
        let (reason, message) = blocked(deletion_verdict(
            "pro",
            &[],
            &[runtime(&[Some(&a), Some(&b), Some(&c)])],
        ));
        assert_eq!(reason, "SubscribersUnknown");
        assert!(
            message.contains("rt-1 (no subscriber counts), rt-2 (no subscriber counts)"),
            "{message}"
        );
    }

    /// The hole this rule had: the only pod restarting (no pod object for a moment) read as
    /// "no runtime, nothing to protect", and the plan went while its subscribers' ledger was
    /// merely offline.
    #[test]
    fn a_runtime_whose_pod_is_missing_fails_safe() {
        let (reason, message) = blocked(deletion_verdict("pro", &[], &[runtime(&[None])]));
        assert_eq!(reason, "SubscribersUnknown");
        assert!(message.contains("rt-0 (not running)"), "{message}");
    }

    /// A count from before the closing bundle reached the pod may be up to 30 s old, and the
    /// plan was open meanwhile: it is not trusted.
    #[test]
    fn a_count_under_an_older_policy_is_not_trusted() {
        let stale = pod(Some("sha256:open"), Some(r#"{"pro": 0}"#));
        let (reason, message) = blocked(deletion_verdict("pro", &[], &[runtime(&[Some(&stale)])]));
        assert_eq!(reason, "SubscribersUnknown");
        assert!(
            message.contains("rt-0 (has not applied sha256:closing yet)"),
            "{message}"
        );
        let unversioned = pod(None, Some(r#"{"pro": 0}"#));
        let (reason, _) = blocked(deletion_verdict(
            "pro",
            &[],
            &[runtime(&[Some(&unversioned)])],
        ));
        assert_eq!(reason, "SubscribersUnknown");
    }

    #[test]
    fn a_runtime_that_has_not_published_the_closing_bundle_blocks_deletion() {
        let fresh = pod(Some(CLOSING), Some(r#"{"pro": 0}"#));
        let mut open = runtime(&[Some(&fresh)]);
        open.published = Some(Published {
            version: CLOSING.into(),
            closes_plan: false,
        });
        let (reason, message) = blocked(deletion_verdict("pro", &[], &[open.clone()]));
        assert_eq!(reason, "NotClosedYet");
        assert!(message.contains("runtimes rt "), "{message}");
        open.published = None;
        let (reason, _) = blocked(deletion_verdict("pro", &[], &[open]));
        assert_eq!(reason, "NotClosedYet");
    }
}
