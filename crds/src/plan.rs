//! `Plan`: what a subscription to a product tier includes.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::DimensionMatch;
use crate::common::{FailMode, Limit, PolicyStatus, ResetPeriod};

/// Most features one plan may declare. A product with more than this is better split into
/// add-on Entitlements; the bound also keeps the CRD's CEL cost estimate small.
pub const MAX_FEATURES: usize = 256;
/// Most rate card lines one plan may carry (features x dimension values).
pub const MAX_RATES: usize = 512;
/// Most included grants one plan may carry.
pub const MAX_GRANTS: usize = 32;

/// A plan (a product tier such as free, pro or enterprise): the features it includes, the credit
/// price of metered usage, the credits it grants every period, and what happens when credits run
/// out.
// kube's printcolumn(...) entries repeat `type_` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "Plan",
    plural = "plans",
    shortname = "tgplan",
    category = "tollgate",
    namespaced,
    derive = "PartialEq",
    status = "PolicyStatus",
    doc = "A product tier: included features and limits, credit rates, included credit grants and overage policy.",
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status",
        description = "Whether the plan passed validation and is in the policy bundle"
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
pub struct PlanSpec {
    /// Name shown to people (the object name is the stable id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// Closed to new subscriptions: existing subscribers keep everything, new ones are refused.
    /// The operator also sets this in the bundle while a deleted plan is still in use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_to_new_subscriptions: bool,
    /// Features this plan includes. A feature left out is not included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub features: Vec<Feature>,
    /// Credit price of metered usage. Usage of a metered feature with no matching rate is free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 512))]
    pub rate_card: Vec<Rate>,
    /// Credits granted to every subscriber, every period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub included_grants: Vec<IncludedGrant>,
    /// What happens when a subscriber's credits run out.
    #[serde(default)]
    pub overage: OveragePolicy,
}

/// The kind of a feature.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FeatureKind {
    /// On or off (for example access to a model).
    Boolean,
    /// A value: a number (for example a context window) or one of ordered choices.
    Configuration,
    /// Usage counted by a meter, optionally limited per period.
    Metered,
}

/// One feature of a plan and this plan's entitlement to it. The fields used depend on `kind`:
/// `boolean` uses `enabled`; `configuration` uses `value` (and `choices`); `metered` uses `meter`
/// and `limit`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.kind == 'metered' || (!has(self.meter) && !has(self.limit))")
        .message("meter and limit are only for metered features"),
    validation = Rule::new("self.kind != 'metered' || (has(self.meter) && has(self.limit))")
        .message("a metered feature needs a meter and a limit (use limit.unlimited: true to only meter)"),
    validation = Rule::new("self.kind == 'configuration' || !has(self.value)")
        .message("value is only for configuration features"),
    validation = Rule::new("self.kind != 'configuration' || has(self.value)")
        .message("a configuration feature needs a value"),
    validation = Rule::new("self.kind == 'boolean' || !has(self.enabled)")
        .message("enabled is only for boolean features")
)]
pub struct Feature {
    /// Stable id, referenced by entitlements, rate cards and budget caps
    /// (for example `model.gpt-large`, `llm-tokens`).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
    )]
    pub id: String,
    /// `boolean`, `configuration` or `metered`.
    pub kind: FeatureKind,
    /// What the feature is, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    /// Boolean features: whether this plan grants it (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Configuration features: this plan's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ConfigurationValue>,
    /// Configuration features with choices: every allowed choice, from least to most generous
    /// (the order decides which value wins when entitlements overlap). Must be the same in
    /// every plan that declares the feature.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub choices: Vec<String>,
    /// Metered features: the meter whose usage events count against it (for example
    /// `llm.tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub meter: Option<String>,
    /// Metered features: how much usage a subscriber may have per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// What `Check` answers for this feature while the store is unreachable.
    #[serde(default)]
    pub fail_mode: FailMode,
}

/// The value of a configuration feature: a number, or one of the feature's `choices`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.number) != has(self.choice)")
    .message("set exactly one of number or choice"))]
pub struct ConfigurationValue {
    /// A number (higher is more generous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// One of the feature's `choices`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub choice: Option<String>,
}

/// One line of a rate card: the credit price of a metered feature's usage, optionally for one
/// value of a dimension. Cost of `q` units = ceil(q * microCredits / perUnits). A line with a
/// dimension wins over the feature's line without one, and all of a feature's lines use the
/// same dimension. Usage that no line matches (another value of the dimension, or none, and
/// no line without a dimension) is refused (REASON_NOT_PRICED), never free: a line without a
/// dimension prices the rest (`microCredits: 0` makes it free).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    /// The metered feature priced by this line.
    #[schemars(length(min = 1, max = 63))]
    pub feature: String,
    /// Only usage with this dimension value (for example `model: gpt-large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<DimensionMatch>,
    /// Micro-credits charged per `perUnits` units (0 makes the usage free).
    pub micro_credits: u64,
    /// How many units `microCredits` pays for (for example 1000 for "per 1k tokens").
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub per_units: u64,
}

fn one() -> u64 {
    1
}

/// Whether granted credits are paid for (deferred revenue) or free (promotional expense).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GrantCategory {
    #[default]
    Paid,
    Promotional,
}

/// Credits granted to every subscriber each period.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncludedGrant {
    /// Stable id of the grant within the plan (ledger grants name it).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
    )]
    pub id: String,
    /// Micro-credits granted each period (> 0).
    #[schemars(range(min = 1))]
    pub amount_micro_credits: u64,
    /// How often the grant is issued (`never`: once, at subscription start).
    #[serde(default)]
    pub period: ResetPeriod,
    /// Consumption order: grants with a lower priority are spent first.
    #[serde(default)]
    pub priority: u32,
    /// `paid` or `promotional`.
    #[serde(default)]
    pub category: GrantCategory,
    /// Seconds after issue when the unspent rest expires. Absent: at the end of the period
    /// (never, for period `never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub expires_after_seconds: Option<u64>,
}

/// What happens when usage would take a wallet below zero.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OverageAction {
    /// Deny the request.
    #[default]
    Deny,
    /// Allow, down to `overdraftFloorMicroCredits` below zero.
    AllowOverdraft,
}

/// Overage policy of a plan.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.action == 'allowOverdraft') == has(self.overdraftFloorMicroCredits)")
    .message("overdraftFloorMicroCredits is required with action allowOverdraft and only allowed with it"))]
pub struct OveragePolicy {
    /// `deny` or `allowOverdraft`.
    #[serde(default)]
    pub action: OverageAction,
    /// How far below zero a wallet may go, in micro-credits (> 0), with `allowOverdraft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub overdraft_floor_micro_credits: Option<u64>,
}
