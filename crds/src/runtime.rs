//! `TollgateRuntime`: a deployment of the Tollgate runtime (the pods that answer `Check`,
//! `Reserve`, `Commit` and keep the ledger).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most runtime pods one TollgateRuntime may ask for. Every pod owns partitions and forwards to
/// the others; past this size a second runtime is the better answer.
pub const MAX_REPLICAS: i32 = 64;
/// Most partitions: customers hash to a fixed number of partitions, each owned by one pod.
/// The runtime's own limit (`tollgate_runtime::engine::MAX_PARTITIONS`): a larger count
/// would pass the CRD and stop every pod at start.
pub const MAX_PARTITIONS: u32 = 1024;
const _: () = assert!(MAX_PARTITIONS as i64 >= MAX_REPLICAS as i64);

/// A deployment of the Tollgate runtime: how many pods, how customers are partitioned across
/// them, where the ledger is stored, and how clients reach it. The operator turns it into a
/// StatefulSet, Services, a PodDisruptionBudget, a ServiceAccount and the policy bundle.
// kube's printcolumn(...) entries repeat `type_` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "TollgateRuntime",
    plural = "tollgateruntimes",
    shortname = "tgrt",
    category = "tollgate",
    namespaced,
    derive = "PartialEq",
    status = "TollgateRuntimeStatus",
    doc = "A deployment of the Tollgate runtime: replicas, partitions, ledger store, image, resources, TLS, auth and ports.",
    validation = Rule::new(
        "self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    ).message(
        "the name must be a DNS label of at most 52 characters (lower-case letters, digits and \
         '-'): it names the StatefulSet, whose pods carry a revision label of the name plus 11 \
         characters, and the Services"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Runtime pods asked for"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Runtime pods ready"
    ),
    printcolumn(
        name = "Store",
        type_ = "string",
        json_path = ".spec.store.kind",
        description = "Ledger store"
    ),
    printcolumn(
        name = "Policy",
        type_ = "string",
        json_path = ".status.policyVersion",
        description = "Content version of the policy bundle"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why the runtime is or is not ready"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.partitions) || self.partitions >= self.replicas")
    .message("partitions must be at least replicas: each pod owns at least one partition"))]
#[x_kube(validation = Rule::new(
    "has(self.partitions) == has(oldSelf.partitions) \
     && (!has(self.partitions) || self.partitions == oldSelf.partitions)"
).message("partitions is fixed once created, set or left out: customers are hashed to partitions"))]
#[x_kube(validation = Rule::new(
    "(has(self.store) && has(self.store.kind) ? self.store.kind : 'embedded') \
     == (has(oldSelf.store) && has(oldSelf.store.kind) ? oldSelf.store.kind : 'embedded')"
).message("store.kind is fixed once created: the ledger stays in the store it was created in"))]
#[x_kube(validation = Rule::new(
    "(has(self.store) && has(self.store.embedded)) \
     == (has(oldSelf.store) && has(oldSelf.store.embedded)) \
     && (!has(self.store) || !has(self.store.embedded) \
         || self.store.embedded == oldSelf.store.embedded)"
).message(
    "store.embedded is fixed once created: a StatefulSet's volume claim template cannot \
     change (resize the PersistentVolumeClaims themselves)"
))]
#[x_kube(validation = Rule::new("!has(self.tls)").message(
    "tls is not supported yet: the runtime serves plain gRPC and HTTP; terminate TLS in a \
     service mesh or at the ingress"
))]
#[x_kube(validation = Rule::new("!has(self.auth)").message(
    "auth is not supported yet: the runtime does not check bearer tokens, so the API would be \
     open while it looked protected; restrict access with a NetworkPolicy"
))]
#[serde(rename_all = "camelCase")]
pub struct TollgateRuntimeSpec {
    /// Runtime pods. Only 1 for now: sharing the partitions among pods (each pod owning a
    /// share and forwarding calls for the rest to their owner) is not built yet, and two
    /// pods would each keep a ledger of their own for the same customers.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 1))]
    pub replicas: i32,
    /// Partitions customers are hashed to. Fixed once created. Absent: the count the store
    /// recorded (in the pod's volume, or the DynamoDB leases table), and for a new store 1
    /// with the embedded store and 4 with DynamoDB. Each partition has a writer of its own,
    /// and with the embedded store a log and an fsync per batch of its own: partitions
    /// beyond what the pods will share cost throughput (64 partitions in one pod gave half
    /// the Reserve + Commit pairs per second of 1 partition, see BENCHMARKS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub partitions: Option<u32>,
    /// Where the ledger is stored.
    #[serde(default)]
    pub store: RuntimeStore,
    /// Container image of the runtime. Absent: the image the operator was installed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// CPU and memory of each runtime container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Secrets (in the runtime's namespace) for pulling the image from a private registry.
    /// Absent: the ones the operator was installed with (the chart's `imagePullSecrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Reserved: TLS with a certificate from a Secret. Refused for now (the runtime does not
    /// serve TLS yet); kept in the schema so that a manifest setting it gets that error
    /// instead of the field being pruned without a word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// Reserved: a bearer token from a Secret on every call. Refused for now (the runtime
    /// does not check tokens yet), for the same reason as `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSettings>,
    /// Container and Service ports.
    #[serde(default)]
    pub ports: RuntimePorts,
    /// Settings of the runtime's ServiceAccount (for example the IAM role annotation for
    /// DynamoDB access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSettings>,
    /// Minutes each idempotency key's answer, usage event id and resolved hold are kept:
    /// longer than any client retries. Memory grows with it (see the README's "Memory").
    /// Absent: the runtime's default, 1440 (24 hours). A change is logged by the runtime,
    /// so its log still replays as it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 43200))]
    pub idempotency_window_minutes: Option<u32>,
}

impl Default for TollgateRuntimeSpec {
    /// The same values as a manifest that leaves every field out.
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            partitions: None,
            store: RuntimeStore::default(),
            image: None,
            resources: None,
            image_pull_secrets: None,
            tls: None,
            auth: None,
            ports: RuntimePorts::default(),
            service_account: None,
            idempotency_window_minutes: None,
        }
    }
}

fn default_replicas() -> i32 {
    1
}

/// The ledger store backend.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StoreKind {
    /// A write-ahead log and snapshots on a PersistentVolume per pod.
    #[default]
    Embedded,
    /// DynamoDB is the system of record.
    Dynamodb,
}

/// Where the ledger is stored: `kind` and the settings of that kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'dynamodb' ? (has(self.dynamodb) && !has(self.embedded)) : !has(self.dynamodb)")
    .message("settings must match kind: dynamodb needs dynamodb settings, embedded takes none"))]
pub struct RuntimeStore {
    /// `embedded` or `dynamodb`.
    #[serde(default)]
    pub kind: StoreKind,
    /// Settings of the embedded store (optional; defaults apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedStore>,
    /// Settings of the DynamoDB store (required with kind dynamodb).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb: Option<DynamoDbStore>,
}

/// The embedded store's PersistentVolumeClaim of each pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedStore {
    /// StorageClass of the volumes. Absent: the cluster's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// Size of each pod's volume (for example `20Gi`). Absent: 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
}

/// The DynamoDB store's tables and endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamoDbStore {
    /// AWS region of the tables (for example `eu-west-1`).
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^[a-z]{2}(-[a-z]+)+-\d+$")
    )]
    pub region: String,
    /// Prefix of the table names, as created by the terraform module (for example `tollgate-`).
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub table_prefix: String,
    /// Endpoint to use instead of the region's (DynamoDB Local, a VPC endpoint URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^https?://"))]
    pub endpoint_override: Option<String>,
    /// Keep every journal batch (the command log) in the journal table. By default the
    /// batches that the checkpoint kept before the newest covers are deleted: each delete
    /// costs about the write units its batch did, kept batches cost storage that grows with
    /// traffic (see the README's "Durability").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_journal: bool,
}

/// TLS for the runtime's gRPC and HTTP ports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    /// A `kubernetes.io/tls` Secret in the runtime's namespace (keys `tls.crt`, `tls.key`).
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// Bearer-token authentication of clients.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSettings {
    /// A Secret in the runtime's namespace holding the token.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// The key of the token in the Secret. Absent: `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

/// The runtime's ports (container and Services).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.grpc != self.http").message("grpc and http ports must differ"))]
pub struct RuntimePorts {
    /// gRPC port (the Tollgate API).
    #[serde(default = "default_grpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub grpc: i32,
    /// HTTP port (health, readiness, metrics, admin).
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub http: i32,
}

impl Default for RuntimePorts {
    fn default() -> Self {
        Self {
            grpc: default_grpc_port(),
            http: default_http_port(),
        }
    }
}

fn default_grpc_port() -> i32 {
    50051
}

fn default_http_port() -> i32 {
    8080
}

/// Settings of the runtime's ServiceAccount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSettings {
    /// Annotations (for example `eks.amazonaws.com/role-arn` from the runtime-iam module).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the operator reports about a TollgateRuntime.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TollgateRuntimeStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// Runtime pods that exist.
    #[serde(default)]
    pub replicas: i32,
    /// Runtime pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Content version of the policy bundle the operator published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// Runtime pods that report having applied `policyVersion`.
    #[serde(default)]
    pub policy_applied_replicas: i32,
    /// Plans, Entitlements and BudgetCaps left out of the bundle because they are invalid.
    #[serde(default)]
    pub invalid_policy_objects: i32,
}
