//! The policy catalog: every Plan, Entitlement and BudgetCap that applies together, and its
//! text form (the multi-document YAML of the policy bundle).

use std::fmt;

use kube::core::ObjectMeta;
use serde::Serialize;

use crate::API_VERSION;
use crate::budget_cap::{BudgetCap, BudgetCapSpec};
use crate::entitlement::{Entitlement, EntitlementSpec};
use crate::plan::{Plan, PlanSpec};

/// The kinds of object a catalog holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Plan,
    Entitlement,
    BudgetCap,
}

impl ObjectKind {
    /// The Kubernetes `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Plan => "Plan",
            ObjectKind::Entitlement => "Entitlement",
            ObjectKind::BudgetCap => "BudgetCap",
        }
    }

    /// The kind named by a manifest's `kind`, if it is a catalog kind.
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "Plan" => Some(ObjectKind::Plan),
            "Entitlement" => Some(ObjectKind::Entitlement),
            "BudgetCap" => Some(ObjectKind::BudgetCap),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one catalog object: `Plan/pro`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: ObjectKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Every Plan, Entitlement and BudgetCap that applies together (one namespace in a cluster, one
/// `--catalog` directory on a laptop).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub plans: Vec<Plan>,
    pub entitlements: Vec<Entitlement>,
    pub budget_caps: Vec<BudgetCap>,
}

/// Why a catalog could not be written as text.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot serialize {object} as YAML: {source}")]
    Serialize {
        object: ObjectRef,
        #[source]
        source: serde_yaml::Error,
    },
}

/// One object as the bundle writes it: only what `kubectl apply` needs and the runtime reads.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BundleObject<'a, S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: BundleMetadata<'a>,
    spec: &'a S,
}

#[derive(Serialize)]
struct BundleMetadata<'a> {
    name: &'a str,
}

impl Catalog {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.plans.len() + self.entitlements.len() + self.budget_caps.len()
    }

    /// Whether the catalog holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every object's reference, in catalog order.
    pub fn object_refs(&self) -> Vec<ObjectRef> {
        let plans = self
            .plans
            .iter()
            .map(|p| ObjectRef::new(ObjectKind::Plan, name_of(&p.metadata)));
        let ents = self
            .entitlements
            .iter()
            .map(|e| ObjectRef::new(ObjectKind::Entitlement, name_of(&e.metadata)));
        let caps = self
            .budget_caps
            .iter()
            .map(|c| ObjectRef::new(ObjectKind::BudgetCap, name_of(&c.metadata)));
        plans.chain(ents).chain(caps).collect()
    }

    /// The catalog without the named objects.
    pub fn without(&self, drop: &[ObjectRef]) -> Catalog {
        let keep = |kind: ObjectKind, meta: &ObjectMeta| {
            !drop
                .iter()
                .any(|r| r.kind == kind && r.name == name_of(meta))
        };
        Catalog {
            plans: self
                .plans
                .iter()
                .filter(|o| keep(ObjectKind::Plan, &o.metadata))
                .cloned()
                .collect(),
            entitlements: self
                .entitlements
                .iter()
                .filter(|o| keep(ObjectKind::Entitlement, &o.metadata))
                .cloned()
                .collect(),
            budget_caps: self
                .budget_caps
                .iter()
                .filter(|o| keep(ObjectKind::BudgetCap, &o.metadata))
                .cloned()
                .collect(),
        }
    }

    /// The same objects sorted by kind and name: the order of the bundle and of the content
    /// version.
    pub fn sorted(&self) -> Catalog {
        let mut out = self.clone();
        out.plans
            .sort_by(|a, b| name_of(&a.metadata).cmp(name_of(&b.metadata)));
        out.entitlements
            .sort_by(|a, b| name_of(&a.metadata).cmp(name_of(&b.metadata)));
        out.budget_caps
            .sort_by(|a, b| name_of(&a.metadata).cmp(name_of(&b.metadata)));
        out
    }

    /// The bundle text: one YAML document per object, sorted by kind and name, each with
    /// `apiVersion`, `kind`, `metadata.name` and `spec` only, so that [`crate::load_catalog_yaml`]
    /// and `kubectl apply -f` both take it.
    pub fn to_yaml(&self) -> Result<String, CatalogError> {
        let sorted = self.sorted();
        let mut docs: Vec<String> = Vec::with_capacity(sorted.len());
        for p in &sorted.plans {
            docs.push(document(ObjectKind::Plan, &p.metadata, &p.spec)?);
        }
        for e in &sorted.entitlements {
            docs.push(document(ObjectKind::Entitlement, &e.metadata, &e.spec)?);
        }
        for c in &sorted.budget_caps {
            docs.push(document(ObjectKind::BudgetCap, &c.metadata, &c.spec)?);
        }
        Ok(docs.join(""))
    }

    /// A plan by name.
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| name_of(&p.metadata) == name)
    }
}

/// Specs as a catalog object carries them, for code generic over the three kinds.
pub(crate) trait CatalogSpec: Serialize {}
impl CatalogSpec for PlanSpec {}
impl CatalogSpec for EntitlementSpec {}
impl CatalogSpec for BudgetCapSpec {}

fn document<S: CatalogSpec>(
    kind: ObjectKind,
    meta: &ObjectMeta,
    spec: &S,
) -> Result<String, CatalogError> {
    let name = name_of(meta);
    let object = BundleObject {
        api_version: API_VERSION,
        kind: kind.as_str(),
        metadata: BundleMetadata { name },
        spec,
    };
    let text = serde_yaml::to_string(&object).map_err(|source| CatalogError::Serialize {
        object: ObjectRef::new(kind, name),
        source,
    })?;
    Ok(format!("---\n{text}"))
}

/// An object's name, or "" when it has none (validation reports that).
pub(crate) fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}
