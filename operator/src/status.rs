//! Pure: the statuses the operator writes, from what it read and compiled.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use tollgate_crds::common::condition::{DEGRADED, DELETING, PROGRESSING, READY, VALID};
use tollgate_crds::{
    ObjectRef, PolicyStatus, PolicyVersion, TollgateRuntime, TollgateRuntimeStatus,
};

use crate::builders::APPLIED_VERSION_ANNOTATION;
use crate::bundle::Compiled;
use crate::plan_deletion::Verdict;

/// Longest condition message written: enough for several violations, far below the API's
/// 32 KiB limit, readable in `kubectl describe`.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Runtime pods and how far they got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodCounts {
    pub total: i32,
    pub ready: i32,
    /// Pods whose `tollgate.dev/applied-policy-version` is the current version.
    pub applied: i32,
}

/// Counts pods, ready pods and pods that applied `version`.
pub fn count_pods(pods: &[Pod], version: &PolicyVersion) -> PodCounts {
    let mut counts = PodCounts::default();
    for pod in pods {
        counts.total = counts.total.saturating_add(1);
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            counts.ready = counts.ready.saturating_add(1);
        }
        let applied = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_VERSION_ANNOTATION));
        if applied.map(String::as_str) == Some(version.as_str()) {
            counts.applied = counts.applied.saturating_add(1);
        }
    }
    counts
}

/// A condition, keeping the previous transition time when the status did not change.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message: truncate(message),
        observed_generation: generation,
        last_transition_time,
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_LEN {
        let mut cut = MAX_MESSAGE_LEN - 3;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

/// What the status of a Plan, Entitlement or BudgetCap depends on.
pub struct PolicyInputs<'a> {
    pub object: &'a ObjectRef,
    pub generation: Option<i64>,
    pub previous: Option<&'a PolicyStatus>,
    pub compiled: &'a Compiled,
    pub pods: PodCounts,
    /// For a Plan being deleted: the deletion rule's verdict.
    pub deletion: Option<&'a Verdict>,
}

/// The status of one policy object.
pub fn policy_status(inputs: &PolicyInputs<'_>, now: &Time) -> PolicyStatus {
    let previous = inputs
        .previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = inputs.generation;
    let valid = match inputs.compiled.invalid.get(inputs.object) {
        None => condition(
            previous,
            VALID,
            true,
            "InBundle",
            "valid; part of the policy bundle".into(),
            generation,
            now,
        ),
        Some(violations) => {
            let kept = inputs.compiled.kept_previous.contains(inputs.object);
            let (reason, outcome) = if kept {
                (
                    "InvalidPreviousKept",
                    "the previous valid version stays in the bundle",
                )
            } else {
                ("Invalid", "left out of the bundle")
            };
            let list: Vec<String> = violations
                .iter()
                .map(|v| format!("{} = {}: {}", v.path, v.value, v.problem))
                .collect();
            let message = format!("{outcome}: {}", list.join("; "));
            condition(previous, VALID, false, reason, message, generation, now)
        }
    };
    let mut conditions = vec![valid];
    if let Some(Verdict::Blocked { reason, message }) = inputs.deletion {
        conditions.push(condition(
            previous,
            DELETING,
            true,
            reason,
            message.clone(),
            generation,
            now,
        ));
    }
    let pods = inputs.pods;
    PolicyStatus {
        observed_generation: generation,
        conditions,
        policy_version: Some(inputs.compiled.bundle.version.to_string()),
        applied_pods: Some(pods.applied),
        desired_pods: Some(pods.total),
        applied: Some(format!("{}/{}", pods.applied, pods.total)),
    }
}

/// The status of a runtime.
pub fn runtime_status(
    rt: &TollgateRuntime,
    compiled: &Compiled,
    pods: PodCounts,
    now: &Time,
) -> TollgateRuntimeStatus {
    let previous = rt
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = rt.metadata.generation;
    let want = rt.spec.replicas;
    let invalid = i32::try_from(compiled.invalid.len()).unwrap_or(i32::MAX);
    let all_ready = pods.ready >= want && pods.total == want;
    let all_applied = pods.applied >= want;
    let version = &compiled.bundle.version;
    let ready = match (all_ready, all_applied) {
        (true, true) => condition(
            previous,
            READY,
            true,
            "AllPodsReady",
            format!("{want} pods ready on policy {version}"),
            generation,
            now,
        ),
        (false, _) => condition(
            previous,
            READY,
            false,
            "PodsNotReady",
            format!("{} of {want} pods ready", pods.ready),
            generation,
            now,
        ),
        (true, false) => condition(
            previous,
            READY,
            false,
            "PolicyNotApplied",
            format!("{} of {want} pods applied policy {version}", pods.applied),
            generation,
            now,
        ),
    };
    let progressing = if all_ready && all_applied {
        condition(
            previous,
            PROGRESSING,
            false,
            "Stable",
            "nothing to roll out".into(),
            generation,
            now,
        )
    } else {
        condition(
            previous,
            PROGRESSING,
            true,
            "RollingOut",
            format!(
                "{}/{want} pods ready, {}/{want} on policy {version}",
                pods.ready, pods.applied
            ),
            generation,
            now,
        )
    };
    let degraded = if invalid > 0 {
        let names: Vec<String> = compiled.invalid.keys().map(ToString::to_string).collect();
        condition(
            previous,
            DEGRADED,
            true,
            "InvalidPolicyObjects",
            format!(
                "left out of or held back in the bundle: {}",
                names.join(", ")
            ),
            generation,
            now,
        )
    } else {
        condition(
            previous,
            DEGRADED,
            false,
            "AsExpected",
            "all policy objects valid".into(),
            generation,
            now,
        )
    };
    TollgateRuntimeStatus {
        observed_generation: generation,
        conditions: vec![ready, progressing, degraded],
        replicas: pods.total,
        ready_replicas: pods.ready,
        policy_version: Some(version.to_string()),
        policy_applied_replicas: pods.applied,
        invalid_policy_objects: invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::compile;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::jiff::Timestamp;
    use tollgate_crds::{Catalog, ObjectKind, TollgateRuntimeSpec};

    fn now() -> Time {
        Time(Timestamp::from_second(1_767_225_600).unwrap())
    }

    fn pod(ready: bool, applied: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        if let Some(v) = applied {
            pod.metadata.annotations =
                Some([(APPLIED_VERSION_ANNOTATION.to_string(), v.to_string())].into());
        }
        pod.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn pods_are_counted_by_readiness_and_applied_version() {
        let compiled = compile(&Catalog::default(), &Catalog::default()).unwrap();
        let v = compiled.bundle.version.as_str();
        let counts = count_pods(
            &[
                pod(true, Some(v)),
                pod(true, Some("sha256:old")),
                pod(false, None),
            ],
            &compiled.bundle.version,
        );
        assert_eq!(
            counts,
            PodCounts {
                total: 3,
                ready: 2,
                applied: 1
            }
        );
    }

    #[test]
    fn runtime_conditions_follow_pods_and_policy() {
        let compiled = compile(&Catalog::default(), &Catalog::default()).unwrap();
        let mut rt = crate::builders::test_runtime::runtime(TollgateRuntimeSpec {
            replicas: 2,
            ..TollgateRuntimeSpec::default()
        });
        let rolling = runtime_status(
            &rt,
            &compiled,
            PodCounts {
                total: 2,
                ready: 1,
                applied: 0,
            },
            &now(),
        );
        let by_type = |s: &TollgateRuntimeStatus, t: &str| {
            s.conditions.iter().find(|c| c.type_ == t).unwrap().clone()
        };
        assert_eq!(by_type(&rolling, READY).status, "False");
        assert_eq!(by_type(&rolling, PROGRESSING).status, "True");
        assert_eq!(by_type(&rolling, DEGRADED).status, "False");
        rt.status = Some(rolling);
        let later = Time(Timestamp::from_second(1_767_225_700).unwrap());
        let done = runtime_status(
            &rt,
            &compiled,
            PodCounts {
                total: 2,
                ready: 2,
                applied: 2,
            },
            &later,
        );
        assert_eq!(
            (
                by_type(&done, READY).status.as_str(),
                by_type(&done, READY).last_transition_time.clone()
            ),
            ("True", later)
        );
        // Degraded stayed False: its transition time is kept.
        assert_eq!(by_type(&done, DEGRADED).last_transition_time, now());
        assert_eq!(
            (
                done.ready_replicas,
                done.policy_applied_replicas,
                done.observed_generation
            ),
            (2, 2, Some(1))
        );
    }

    #[test]
    fn an_invalid_object_gets_valid_false_with_the_violation() {
        let yaml = "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: pro}\nspec:\n  rateCard: [{feature: nope, microCredits: 1}]\n";
        let current = tollgate_crds::load_catalog_yaml(yaml).unwrap().catalog;
        let compiled = compile(&current, &Catalog::default()).unwrap();
        let object = ObjectRef::new(ObjectKind::Plan, "pro");
        let inputs = PolicyInputs {
            object: &object,
            generation: Some(4),
            previous: None,
            compiled: &compiled,
            pods: PodCounts {
                total: 3,
                ready: 3,
                applied: 2,
            },
            deletion: None,
        };
        let status = policy_status(&inputs, &now());
        let valid = &status.conditions[0];
        assert_eq!(
            (valid.status.as_str(), valid.reason.as_str()),
            ("False", "Invalid")
        );
        assert!(
            valid
                .message
                .contains("spec.rateCard[0].feature = \"nope\""),
            "{}",
            valid.message
        );
        assert_eq!(status.applied.as_deref(), Some("2/3"));
    }

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(
            truncate("é".repeat(MAX_MESSAGE_LEN)).len(),
            MAX_MESSAGE_LEN - 1
        );
    }
}
