//! `BudgetCap`: a spend or usage limit per period on a customer, or on teams, users or agents
//! inside customers.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DimensionMatch, PolicyStatus, ResetPeriod};
use crate::validate::EXTERNAL_ID_PATTERN;

/// A limit in credits or in a meter's units, per period, on a scope, with action deny or
/// alert-only. (Customers' own admins set the same kind of caps through the self-serve API;
/// those live in the store, not here.)
// kube's printcolumn(...) entries repeat `type_` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "BudgetCap",
    plural = "budgetcaps",
    shortname = "tgcap",
    category = "tollgate",
    namespaced,
    derive = "PartialEq",
    status = "PolicyStatus",
    doc = "A spend (credits) or usage (meter units) limit per period for a customer, or for teams, users or agents inside customers.",
    printcolumn(
        name = "Level",
        type_ = "string",
        json_path = ".spec.scope.level",
        description = "Who each cap applies to"
    ),
    printcolumn(
        name = "Action",
        type_ = "string",
        json_path = ".spec.action",
        description = "deny or alertOnly"
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status",
        description = "Whether the cap passed validation and is in the policy bundle"
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
pub struct BudgetCapSpec {
    /// What the cap is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    /// Who the cap applies to. Each matching subject gets its own cap.
    pub scope: CapScope,
    /// The limit: credits or units of a metered feature.
    pub limit: CapLimit,
    /// How often the spend counter starts over (calendar periods, UTC).
    #[serde(default)]
    pub period: ResetPeriod,
    /// `deny` refuses requests past the cap; `alertOnly` allows and reports them.
    #[serde(default)]
    pub action: CapAction,
}

/// The level of the subjects a cap applies to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SubjectLevel {
    #[default]
    Customer,
    Team,
    User,
    Agent,
}

/// The scope of a cap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.level != 'customer' || !has(self.subjects) || size(self.subjects) == 0")
    .message("subjects select teams, users or agents; leave it empty for level customer"))]
pub struct CapScope {
    /// `customer`, `team`, `user` or `agent`: each subject at this level gets its own cap.
    #[serde(default)]
    pub level: SubjectLevel,
    /// Customer ids the cap applies in. Empty: every customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(length(max = 128), pattern(EXTERNAL_ID_PATTERN))
    )]
    pub customers: Vec<String>,
    /// Ids of the teams, users or agents (at `level`) inside those customers. Empty: every
    /// subject at that level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(length(max = 128), pattern(EXTERNAL_ID_PATTERN))
    )]
    pub subjects: Vec<String>,
    /// Only usage with this dimension value counts (for example `model: gpt-large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<DimensionMatch>,
}

/// A cap's limit: exactly one of `microCredits` or `usage`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.microCredits) != has(self.usage)")
    .message("set exactly one of microCredits or usage"))]
pub struct CapLimit {
    /// Spend limit in micro-credits per period (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub micro_credits: Option<u64>,
    /// Usage limit in units of a metered feature per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageLimit>,
}

/// A usage limit in a metered feature's units.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageLimit {
    /// Id of a metered feature declared by a Plan.
    #[schemars(length(min = 1, max = 63))]
    pub feature: String,
    /// Units per period (> 0).
    #[schemars(range(min = 1))]
    pub units: u64,
}

/// What a cap does when reached.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CapAction {
    /// Refuse the request that would pass the cap.
    #[default]
    Deny,
    /// Allow it and report the cap as reached (for alerts).
    AlertOnly,
}
