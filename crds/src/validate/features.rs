//! The features a catalog declares, across plans: one id means one feature everywhere.

use std::collections::BTreeMap;

use super::{Problem, Report};
use crate::catalog::{Catalog, ObjectKind, name_of};
use crate::plan::{Feature, FeatureKind};

/// A feature as the catalog declares it (the first plan in name order that declares it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredFeature {
    pub kind: FeatureKind,
    pub meter: Option<String>,
    pub choices: Vec<String>,
    /// The plan whose declaration this is.
    pub plan: String,
}

/// Every feature id declared by the catalog's plans.
#[derive(Clone, Debug, Default)]
pub struct FeatureIndex {
    features: BTreeMap<String, DeclaredFeature>,
}

impl FeatureIndex {
    /// Indexes the plans' features, reporting a feature declared differently by two plans on
    /// the later plan. Expects the catalog sorted.
    pub(crate) fn build(catalog: &Catalog, out: &mut Vec<super::Violation>) -> Self {
        let mut index = Self::default();
        for plan in &catalog.plans {
            let plan_name = name_of(&plan.metadata);
            let mut report = Report::new(ObjectKind::Plan, plan_name, out);
            for (i, feature) in plan.spec.features.iter().enumerate() {
                let declared = DeclaredFeature {
                    kind: feature.kind,
                    meter: feature.meter.clone(),
                    choices: feature.choices.clone(),
                    plan: plan_name.to_string(),
                };
                match index.features.get(&feature.id) {
                    None => {
                        index.features.insert(feature.id.clone(), declared);
                    }
                    Some(first) if first.plan == plan_name => {} // a duplicate id: plan::check
                    Some(first) => {
                        if let Some(what) = difference(first, &declared) {
                            let path = format!("spec.features[{i}]");
                            report.add(
                                &path,
                                &feature.id,
                                Problem::InconsistentFeature {
                                    feature: feature.id.clone(),
                                    other_plan: first.plan.clone(),
                                    what,
                                },
                            );
                        }
                    }
                }
            }
        }
        index
    }

    /// The feature with this id, if a plan declares it.
    pub fn get(&self, id: &str) -> Option<&DeclaredFeature> {
        self.features.get(id)
    }

    /// Checks that `id` names a declared feature of `expected` kind (any kind when `None`).
    pub(crate) fn expect(
        &self,
        report: &mut Report<'_>,
        path: &str,
        id: &str,
        expected: Option<FeatureKind>,
    ) -> Option<&DeclaredFeature> {
        let Some(declared) = self.get(id) else {
            report.add(
                path,
                id,
                Problem::UnknownFeature {
                    feature: id.to_string(),
                },
            );
            return None;
        };
        match expected {
            Some(kind) if kind != declared.kind => {
                report.add(
                    path,
                    id,
                    Problem::WrongFeatureKind {
                        feature: id.to_string(),
                        expected: kind_name(kind).to_string(),
                        actual: kind_name(declared.kind).to_string(),
                    },
                );
                None
            }
            _ => Some(declared),
        }
    }
}

fn difference(first: &DeclaredFeature, later: &DeclaredFeature) -> Option<String> {
    if first.kind != later.kind {
        return Some(format!(
            "kind {} vs {}",
            kind_name(first.kind),
            kind_name(later.kind)
        ));
    }
    if first.meter != later.meter {
        return Some(format!("meter {:?} vs {:?}", first.meter, later.meter));
    }
    if first.choices != later.choices {
        return Some(format!(
            "choices {:?} vs {:?}",
            first.choices, later.choices
        ));
    }
    None
}

/// The name of a feature kind as written in YAML.
pub fn kind_name(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Boolean => "boolean",
        FeatureKind::Configuration => "configuration",
        FeatureKind::Metered => "metered",
    }
}

/// The declaration of a feature within one plan, for the plan's own checks.
pub(crate) fn declared_in<'a>(features: &'a [Feature], id: &str) -> Option<&'a Feature> {
    features.iter().find(|f| f.id == id)
}
