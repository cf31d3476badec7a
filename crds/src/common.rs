//! Small types shared by several resources.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::EXTERNAL_ID_PATTERN;

/// The longest feature, grant, meter, choice or dimension-name id the catalog accepts. 63
/// matches a Kubernetes label value, so ids can also be used as labels. Customer, subject
/// and dimension-value ids come from the product's own systems and are held to the external
/// rule instead (`validate::check_external_id`, at most 128 bytes).
pub const MAX_ID_LEN: usize = 63;

/// How often a limit, a recurring grant or a budget cap starts over.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ResetPeriod {
    Hour,
    Day,
    Week,
    #[default]
    Month,
    Year,
    /// Never resets: a lifetime limit, or a one-off grant.
    Never,
}

/// Where a period starts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ResetAnchor {
    /// Periods follow the customer's subscription start (a subscription started on the 17th
    /// resets monthly on the 17th).
    #[default]
    Subscription,
    /// Periods follow the UTC calendar (hour, midnight, Monday, the 1st, January 1st).
    Calendar,
}

/// What happens when usage reaches a limit.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Enforcement {
    /// Deny the request that would exceed the limit.
    #[default]
    Hard,
    /// Allow it, and report the limit as exceeded in the decision (for alerts and upsell).
    Soft,
}

/// What `Check` answers for a feature when the store cannot be reached.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FailMode {
    /// Deny while the store is unavailable (the safe default for anything that costs money).
    #[default]
    Closed,
    /// Allow while the store is unavailable, and say so in the decision.
    Open,
}

/// A usage limit of a metered feature: a number of the meter's units per period, or unlimited.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.amount) != (has(self.unlimited) && self.unlimited)")
    .message("set exactly one of amount or unlimited: true"))]
pub struct Limit {
    /// Units of the feature's meter allowed per period (for example tokens). Must be > 0: to deny
    /// a feature, leave it out of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub amount: Option<u64>,
    /// No limit: usage is metered (and priced by the rate card) but never denied by this feature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlimited: bool,
    /// `hard` denies past the limit; `soft` allows and reports it.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// How often the usage counter starts over.
    #[serde(default)]
    pub reset: ResetPeriod,
    /// Whether periods follow the subscription start or the calendar.
    #[serde(default)]
    pub anchor: ResetAnchor,
}

/// Narrows a rate, or a budget cap, to one value of a usage dimension (for example
/// `name: model, value: gpt-large`).
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, KubeSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct DimensionMatch {
    /// The dimension's name, as usage events carry it (for example `model`).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The dimension's value (for example `gpt-large`): an external id, as requests carry it.
    #[schemars(length(min = 1, max = 128), pattern(EXTERNAL_ID_PATTERN))]
    pub value: String,
}

/// The status the operator writes on a `Plan`, `Entitlement` or `BudgetCap`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid` (the object passed validation and is in the policy bundle) and, while a Plan is
    /// being deleted, `Deleting` (why it is still there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// The content version of the policy bundle this object is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// How many runtime pods have applied `policyVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_pods: Option<i32>,
    /// How many runtime pods there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_pods: Option<i32>,
    /// `appliedPods/desiredPods`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<String>,
}

/// Condition types and reasons the operator writes.
pub mod condition {
    /// The object passed validation and is part of the policy bundle.
    pub const VALID: &str = "Valid";
    /// A Plan is being deleted but is still in use.
    pub const DELETING: &str = "Deleting";
    /// The runtime's pods are all ready and run the current policy bundle.
    pub const READY: &str = "Ready";
    /// The runtime is rolling out a change (spec or policy).
    pub const PROGRESSING: &str = "Progressing";
    /// Something is wrong: pods not ready, or invalid policy objects left out of the bundle.
    pub const DEGRADED: &str = "Degraded";
}
