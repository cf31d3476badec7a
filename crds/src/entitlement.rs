//! `Entitlement`: features and limits granted on top of plans, to a plan (an add-on) or to named
//! customers (a contract, a promotion), optionally for a time window.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{Limit, PolicyStatus};
use crate::plan::ConfigurationValue;
use crate::validate::EXTERNAL_ID_PATTERN;

/// Most customers one Entitlement may name. Per-customer data belongs in the store; CRDs carry
/// only named enterprise overrides and promotions.
pub const MAX_CUSTOMERS: usize = 1000;

/// Extra features or limits for the subscribers of some plans, or for named customers. Where
/// several sources grant the same feature, the most generous value wins.
// kube's printcolumn(...) entries repeat `type_` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "Entitlement",
    plural = "entitlements",
    shortname = "tgent",
    category = "tollgate",
    namespaced,
    derive = "PartialEq",
    status = "PolicyStatus",
    doc = "Features and limits granted to a plan's subscribers (an add-on) or to named customers (a contract, a promotion), optionally for a time window.",
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status",
        description = "Whether the entitlement passed validation and is in the policy bundle"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.policyVersion",
        description = "Content version of the policy bundle"
    ),
    printcolumn(
        name = "Applied",
        type_ = "string",
        json_path = ".status.applied",
        description = "Runtime pods that applied the version / all runtime pods"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementSpec {
    /// What this grant is for, for people (for example the contract number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    /// Who receives the features: the subscribers of plans, or named customers.
    pub target: EntitlementTarget,
    /// When the grant is in force. Absent: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// The features granted, each with the value or limit granted.
    #[schemars(length(min = 1, max = 256))]
    pub features: Vec<FeatureGrant>,
}

/// Who an Entitlement grants to: exactly one of `plans` or `customers`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.plans) && size(self.plans) > 0) != (has(self.customers) && size(self.customers) > 0)")
    .message("set exactly one of plans or customers"))]
pub struct EntitlementTarget {
    /// Names of Plans whose subscribers get the features (an add-on).
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub plans: Vec<String>,
    /// Customer ids that get the features (a contract or a promotion).
    #[serde(default)]
    #[schemars(
        length(max = 1000),
        inner(length(max = 128), pattern(EXTERNAL_ID_PATTERN))
    )]
    pub customers: Vec<String>,
}

/// A time window, RFC 3339 (for example `2026-01-01T00:00:00Z`). The start is included, the end
/// excluded.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.start) || !has(self.end) || self.end > self.start")
    .message("window end must be after start"))]
pub struct Window {
    /// When the grant starts. Absent: already in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    /// When the grant ends. Absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
}

/// A feature granted by an Entitlement. The field used depends on the feature's kind, as
/// declared by the plans: `enabled` (boolean), `value` (configuration), `limit` (metered).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.enabled), has(self.value), has(self.limit)].filter(x, x).size() == 1")
    .message("set exactly one of enabled, value or limit"))]
pub struct FeatureGrant {
    /// Id of a feature declared by a Plan.
    #[schemars(length(min = 1, max = 63))]
    pub feature: String,
    /// Boolean features: grant access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Configuration features: the value granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ConfigurationValue>,
    /// Metered features: the limit granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
}
