//! The runtime StatefulSet: stable pod identity (the ordinal decides which partitions a pod
//! owns) and, for the embedded store, one PersistentVolumeClaim per pod.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    LocalObjectReference, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tollgate_crds::{StoreKind, TollgateRuntime};

use super::services::{GRPC_PORT_NAME, HTTP_PORT_NAME};
use super::{BuildDefaults, ChildNames, child_meta, labels, selector_labels};

/// Where the embedded store keeps its write-ahead log and snapshots.
pub const DATA_DIR: &str = "/var/lib/tollgate";
/// Name of the data volume and its claim template.
pub const DATA_VOLUME: &str = "data";
/// Failed startup probes (5 s apart) before the pod is restarted: 10 minutes of recovery.
pub const STARTUP_PROBE_FAILURES: i32 = 120;

/// Volume size when `spec.store.embedded.size` is absent.
pub const DEFAULT_DATA_SIZE: &str = "10Gi";
/// The uid and gid the runtime runs as (the distroless `nonroot` user).
pub const RUNTIME_UID: i64 = 65532;
/// Seconds a pod gets to flush its last group commit and hand its partitions over.
pub const TERMINATION_GRACE_S: i64 = 30;

/// The StatefulSet of a runtime.
pub fn statefulset(rt: &TollgateRuntime, defaults: &BuildDefaults) -> StatefulSet {
    let names = ChildNames::of(rt);
    let embedded = rt.spec.store.kind == StoreKind::Embedded;
    let mut pod_labels = labels(rt);
    pod_labels.remove("app.kubernetes.io/managed-by");
    StatefulSet {
        metadata: child_meta(rt, names.main()),
        spec: Some(StatefulSetSpec {
            replicas: Some(rt.spec.replicas),
            service_name: Some(names.headless_service()),
            // Pods start and stop together; partition ownership is handed over by leases, not
            // by start order.
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(rt)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(rt, defaults, &names)),
            },
            volume_claim_templates: embedded.then(|| vec![data_claim(rt)]),
            // Ledger data outlives a scale-down or a deleted runtime: deleting it is a decision.
            persistent_volume_claim_retention_policy: embedded.then(|| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".into()),
                    when_scaled: Some("Retain".into()),
                }
            }),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn pod_spec(rt: &TollgateRuntime, defaults: &BuildDefaults, names: &ChildNames) -> PodSpec {
    PodSpec {
        service_account_name: Some(names.main()),
        // The runtime watches its policy ConfigMap through the API, so it needs its token.
        automount_service_account_token: Some(true),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_S),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUNTIME_UID),
            run_as_group: Some(RUNTIME_UID),
            fs_group: Some(RUNTIME_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(rt, defaults, names)],
        image_pull_secrets: image_pull_secrets(rt, defaults),
        ..PodSpec::default()
    }
}

/// The runtime's own pull Secrets, else the operator's defaults; none when both are empty.
fn image_pull_secrets(
    rt: &TollgateRuntime,
    defaults: &BuildDefaults,
) -> Option<Vec<LocalObjectReference>> {
    let secrets = rt.spec.image_pull_secrets.clone().unwrap_or_else(|| {
        defaults
            .image_pull_secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    });
    (!secrets.is_empty()).then_some(secrets)
}

fn container(rt: &TollgateRuntime, defaults: &BuildDefaults, names: &ChildNames) -> Container {
    let spec = &rt.spec;
    let probe = |path: &str, period_s: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(HTTP_PORT_NAME.into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_s),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let mut mounts = Vec::new();
    if spec.store.kind == StoreKind::Embedded {
        mounts.push(VolumeMount {
            name: DATA_VOLUME.into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        });
    }
    Container {
        name: "runtime".into(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| defaults.runtime_image.clone()),
        ),
        args: Some(args(rt)),
        env: Some(env(rt, names)),
        ports: Some(vec![
            ContainerPort {
                name: Some(GRPC_PORT_NAME.into()),
                container_port: spec.ports.grpc,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(HTTP_PORT_NAME.into()),
                container_port: spec.ports.http,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(probe("/readyz", 5, 3)),
        // The runtime binds its HTTP port once recovery is done (log replay, DynamoDB
        // takeovers), which can take minutes on a large ledger: liveness waits for this.
        startup_probe: Some(probe("/healthz", 5, STARTUP_PROBE_FAILURES)),
        liveness_probe: Some(probe("/healthz", 10, 6)),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Container::default()
    }
}

/// The runtime's command line (`tollgate serve ...`).
pub fn args(rt: &TollgateRuntime) -> Vec<String> {
    let spec = &rt.spec;
    let mut args: Vec<String> = vec!["serve".into()];
    match (spec.store.kind, &spec.store.dynamodb) {
        (StoreKind::Dynamodb, Some(ddb)) => {
            args.extend(["--store".into(), "dynamodb".into()]);
            args.extend(["--dynamodb-region".into(), ddb.region.clone()]);
            args.extend(["--table-prefix".into(), ddb.table_prefix.clone()]);
            if let Some(endpoint) = &ddb.endpoint_override {
                args.extend(["--dynamodb-endpoint".into(), endpoint.clone()]);
            }
            if ddb.keep_journal {
                args.push("--dynamodb-keep-journal".into());
            }
        }
        // The schema refuses dynamodb without settings; should one get through, the embedded
        // store is the safe reading (the pod starts, status shows the store).
        _ => args.extend([
            "--store".into(),
            "embedded".into(),
            "--data-dir".into(),
            DATA_DIR.into(),
        ]),
    }
    args.extend(["--grpc-addr".into(), format!("0.0.0.0:{}", spec.ports.grpc)]);
    args.extend(["--http-addr".into(), format!("0.0.0.0:{}", spec.ports.http)]);
    args
}

fn env(rt: &TollgateRuntime, names: &ChildNames) -> Vec<EnvVar> {
    let value = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    };
    let field = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    // Partitions left out: the runtime takes its store's default (or the count recorded in
    // the embedded store's volume), see the CRD field.
    let partitions = rt
        .spec
        .partitions
        .map(|p| value("TOLLGATE_PARTITIONS", p.to_string()));
    let mut env: Vec<EnvVar> = partitions.into_iter().collect();
    env.extend([
        value("TOLLGATE_REPLICAS", rt.spec.replicas.to_string()),
        value("TOLLGATE_POLICY_CONFIGMAP", names.policy_configmap()),
        value("TOLLGATE_PEER_SERVICE", names.headless_service()),
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
    ]);
    if let Some(minutes) = rt.spec.idempotency_window_minutes {
        env.push(value("TOLLGATE_IDEMPOTENCY_WINDOW", format!("{minutes}m")));
    }
    env
}

fn data_claim(rt: &TollgateRuntime) -> PersistentVolumeClaim {
    let embedded = rt.spec.store.embedded.clone().unwrap_or_default();
    let size = embedded
        .size
        .unwrap_or_else(|| Quantity(DEFAULT_DATA_SIZE.into()));
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(selector_labels(rt)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: embedded.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_runtime::runtime;
    use tollgate_crds::{DynamoDbStore, EmbeddedStore, RuntimeStore, TollgateRuntimeSpec};

    fn defaults() -> BuildDefaults {
        BuildDefaults {
            runtime_image: "ghcr.io/tollgate-dev/tollgate:0.1.0".into(),
            image_pull_secrets: Vec::new(),
        }
    }

    fn container_of(sts: &StatefulSet) -> Container {
        sts.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .clone()
    }

    fn env_value(c: &Container, name: &str) -> Option<String> {
        c.env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)?
            .value
            .clone()
    }

    #[test]
    fn image_pull_secrets_come_from_the_runtime_else_from_the_operator() {
        let pull_secrets = |rt: &TollgateRuntime, defaults: &BuildDefaults| -> Vec<String> {
            statefulset(rt, defaults)
                .spec
                .unwrap()
                .template
                .spec
                .unwrap()
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        let with_defaults = BuildDefaults {
            image_pull_secrets: vec!["regcred".into()],
            ..defaults()
        };
        let plain = runtime(TollgateRuntimeSpec::default());
        assert_eq!(pull_secrets(&plain, &with_defaults), vec!["regcred"]);
        assert!(pull_secrets(&plain, &defaults()).is_empty());
        let own = runtime(TollgateRuntimeSpec {
            image_pull_secrets: Some(vec![LocalObjectReference {
                name: "mirror".into(),
            }]),
            ..TollgateRuntimeSpec::default()
        });
        assert_eq!(pull_secrets(&own, &with_defaults), vec!["mirror"]);
    }

    #[test]
    fn embedded_store_gets_a_claim_per_pod_and_stable_identity() {
        let rt = runtime(TollgateRuntimeSpec {
            replicas: 3,
            partitions: Some(64),
            store: RuntimeStore {
                embedded: Some(EmbeddedStore {
                    storage_class_name: Some("gp3".into()),
                    size: Some(Quantity("20Gi".into())),
                }),
                ..RuntimeStore::default()
            },
            ..TollgateRuntimeSpec::default()
        });
        let sts = statefulset(&rt, &defaults());
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("tollgate-headless"));
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        let claim_spec = claim.spec.as_ref().unwrap();
        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("gp3"));
        assert_eq!(
            claim_spec
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"]
                .0,
            "20Gi"
        );
        let c = container_of(&sts);
        assert_eq!(
            c.image.as_deref(),
            Some("ghcr.io/tollgate-dev/tollgate:0.1.0")
        );
        assert_eq!(
            c.args.unwrap(),
            [
                "serve",
                "--store",
                "embedded",
                "--data-dir",
                "/var/lib/tollgate",
                "--grpc-addr",
                "0.0.0.0:50051",
                "--http-addr",
                "0.0.0.0:8080"
            ]
        );
        assert_eq!(c.volume_mounts.unwrap()[0].mount_path, DATA_DIR);
        assert_eq!(
            env_value(&container_of(&sts), "TOLLGATE_PARTITIONS").as_deref(),
            Some("64")
        );
        assert_eq!(
            env_value(&container_of(&sts), "TOLLGATE_REPLICAS").as_deref(),
            Some("3")
        );
        assert_eq!(
            env_value(&container_of(&sts), "TOLLGATE_POLICY_CONFIGMAP").as_deref(),
            Some("tollgate-policy")
        );
        let retention = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .unwrap();
        assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
    }

    /// A runtime on the DynamoDB tables `tollgate-` of eu-west-1.
    fn on_dynamodb(endpoint_override: Option<&str>, keep_journal: bool) -> TollgateRuntime {
        runtime(TollgateRuntimeSpec {
            store: RuntimeStore {
                kind: StoreKind::Dynamodb,
                dynamodb: Some(DynamoDbStore {
                    region: "eu-west-1".into(),
                    table_prefix: "tollgate-".into(),
                    endpoint_override: endpoint_override.map(Into::into),
                    keep_journal,
                }),
                ..RuntimeStore::default()
            },
            ..TollgateRuntimeSpec::default()
        })
    }

    #[test]
    fn dynamodb_store_has_no_claim_and_passes_its_tables() {
        let rt = on_dynamodb(Some("http://dynamodb-local:8000"), false);
        let sts = statefulset(&rt, &defaults());
        assert!(sts.spec.as_ref().unwrap().volume_claim_templates.is_none());
        assert_eq!(
            container_of(&sts).args.unwrap()[..9],
            [
                "serve",
                "--store",
                "dynamodb",
                "--dynamodb-region",
                "eu-west-1",
                "--table-prefix",
                "tollgate-",
                "--dynamodb-endpoint",
                "http://dynamodb-local:8000"
            ]
        );
        assert!(container_of(&sts).volume_mounts.is_none());
        assert!(
            !container_of(&sts)
                .args
                .unwrap()
                .contains(&"--dynamodb-keep-journal".into())
        );
    }

    #[test]
    fn keep_journal_reaches_the_runtime_as_its_flag() {
        let rt = on_dynamodb(None, true);
        let args = container_of(&statefulset(&rt, &defaults())).args.unwrap();
        assert_eq!(
            args[..8],
            [
                "serve",
                "--store",
                "dynamodb",
                "--dynamodb-region",
                "eu-west-1",
                "--table-prefix",
                "tollgate-",
                "--dynamodb-keep-journal"
            ]
        );
    }

    #[test]
    fn pods_have_downward_api_env_probes_and_a_locked_down_container() {
        let sts = statefulset(&runtime(TollgateRuntimeSpec::default()), &defaults());
        let c = container_of(&sts);
        let pod_name = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "POD_NAME")
            .unwrap();
        assert_eq!(
            pod_name
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.name"
        );
        let readiness = c.readiness_probe.unwrap().http_get.unwrap();
        assert_eq!(
            (readiness.path.as_deref(), readiness.port),
            (Some("/readyz"), IntOrString::String("http".into()))
        );
        assert_eq!(
            c.liveness_probe.unwrap().http_get.unwrap().path.as_deref(),
            Some("/healthz")
        );
        // Liveness only starts once the startup probe passed, which allows long recoveries.
        let startup = c.startup_probe.unwrap();
        assert_eq!(startup.http_get.unwrap().path.as_deref(), Some("/healthz"));
        let budget_s = startup.period_seconds.unwrap() * startup.failure_threshold.unwrap();
        assert!(budget_s >= 600, "{budget_s} s of recovery allowed");
        let sc = c.security_context.unwrap();
        assert_eq!(
            (sc.read_only_root_filesystem, sc.allow_privilege_escalation),
            (Some(true), Some(false))
        );
        let ports: Vec<_> = c
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [("grpc".to_string(), 50051), ("http".to_string(), 8080)]
        );
    }

    #[test]
    fn a_runtime_may_name_its_image() {
        let rt = runtime(TollgateRuntimeSpec {
            image: Some("registry.local/tollgate:dev".into()),
            ..TollgateRuntimeSpec::default()
        });
        let c = container_of(&statefulset(&rt, &defaults()));
        assert_eq!(c.image.as_deref(), Some("registry.local/tollgate:dev"));
    }

    #[test]
    fn partitions_left_out_are_left_to_the_runtime() {
        // The runtime then takes its store's default (1 with the embedded store, recorded in
        // the volume), not a count of the operator's choosing.
        let sts = statefulset(&runtime(TollgateRuntimeSpec::default()), &defaults());
        let c = container_of(&sts);
        assert_eq!(env_value(&c, "TOLLGATE_PARTITIONS"), None);
        assert_eq!(env_value(&c, "TOLLGATE_REPLICAS").as_deref(), Some("1"));
        assert_eq!(env_value(&c, "TOLLGATE_IDEMPOTENCY_WINDOW"), None);
    }

    #[test]
    fn the_idempotency_window_reaches_the_runtime_in_minutes() {
        let rt = runtime(TollgateRuntimeSpec {
            idempotency_window_minutes: Some(90),
            ..TollgateRuntimeSpec::default()
        });
        let c = container_of(&statefulset(&rt, &defaults()));
        assert_eq!(
            env_value(&c, "TOLLGATE_IDEMPOTENCY_WINDOW").as_deref(),
            Some("90m")
        );
    }

    #[test]
    fn a_spec_change_changes_the_pod_template() {
        let a = statefulset(&runtime(TollgateRuntimeSpec::default()), &defaults());
        let b = statefulset(
            &runtime(TollgateRuntimeSpec {
                replicas: 5,
                partitions: Some(64),
                ..TollgateRuntimeSpec::default()
            }),
            &defaults(),
        );
        assert_eq!(b.spec.as_ref().unwrap().replicas, Some(5));
        assert_ne!(a.spec.unwrap().template, b.spec.unwrap().template);
    }
}
