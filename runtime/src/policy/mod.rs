//! Policy: a validated catalog (Plans, Entitlements, BudgetCaps) compiled into an
//! immutable, indexed snapshot. Pure: no I/O, no clock (time is an argument).
//!
//! The runtime loads the very same YAML that `kubectl apply` takes, validates it with the
//! same code the operator runs (`tollgate_crds::validate_catalog`), and names it with the
//! same content version.

mod compile;
mod evaluate;

use std::collections::HashMap;

pub use compile::{CompileError, compile};
pub use evaluate::{
    CapLevel, Denial, EffectiveFeature, Evaluation, FeatureValue, LimitSource, PlannedLimit,
    Request, Subject, SubscriptionView,
};

use crate::ledger::{IncludedGrant, OveragePolicy, Price};
use crate::period::Period;

/// A compiled catalog. Cheap to share (`Arc<Policy>`), never mutated.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub version: String,
    pub(crate) plans: HashMap<String, PlanIndex>,
    /// Every feature id any plan or entitlement declares, with its kind.
    pub(crate) features: HashMap<String, FeatureKind>,
    pub(crate) plan_grants: HashMap<String, Vec<EntitlementGrant>>,
    pub(crate) customer_grants: HashMap<String, Vec<EntitlementGrant>>,
    pub(crate) caps: Vec<CapRule>,
    pub(crate) objects: usize,
}

impl Policy {
    /// Number of catalog objects compiled in.
    pub fn objects(&self) -> usize {
        self.objects
    }

    pub fn plan(&self, name: &str) -> Option<&PlanIndex> {
        self.plans.get(name)
    }

    pub fn has_feature(&self, id: &str) -> bool {
        self.features.contains_key(id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    Boolean,
    Configuration,
    Metered,
}

impl FeatureKind {
    pub fn name(&self) -> &'static str {
        match self {
            FeatureKind::Boolean => "boolean",
            FeatureKind::Configuration => "configuration",
            FeatureKind::Metered => "metered",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanIndex {
    pub name: String,
    pub closed: bool,
    pub(crate) features: HashMap<String, FeatureDef>,
    /// Rate lines by feature: the line for a dimension value first, the default last.
    pub(crate) rates: HashMap<String, Vec<RateLine>>,
    pub included: Vec<IncludedGrant>,
    pub overage: OveragePolicy,
}

#[derive(Debug, Clone)]
pub(crate) struct FeatureDef {
    pub(crate) kind: FeatureKind,
    pub(crate) enabled: bool,
    pub(crate) value: Option<FeatureValue>,
    pub(crate) meter: Option<String>,
    pub(crate) limit: Option<LimitDef>,
    pub(crate) choices: Vec<String>,
    pub(crate) fail_open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitDef {
    /// `None`: unlimited (only metered).
    pub amount: Option<u64>,
    pub hard: bool,
    pub period: Period,
    pub calendar: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RateLine {
    pub(crate) dimension: Option<(String, String)>,
    pub(crate) price: Price,
}

#[derive(Debug, Clone)]
pub(crate) struct EntitlementGrant {
    pub(crate) name: String,
    /// `[start, end)` in ms; `None` ends are open.
    pub(crate) window: (Option<u64>, Option<u64>),
    pub(crate) feature: String,
    pub(crate) enabled: Option<bool>,
    pub(crate) value: Option<FeatureValue>,
    pub(crate) limit: Option<LimitDef>,
}

#[derive(Debug, Clone)]
pub(crate) struct CapRule {
    pub(crate) name: String,
    pub(crate) level: CapLevel,
    pub(crate) customers: Vec<String>,
    pub(crate) subjects: Vec<String>,
    pub(crate) dimension: Option<(String, String)>,
    pub(crate) limit: CapLimitDef,
    pub(crate) period: Period,
    pub(crate) enforce: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum CapLimitDef {
    MicroCredits(u64),
    Units { feature: String, units: u64 },
}

#[cfg(test)]
mod tests;
