//! Pure: from the Plans, Entitlements and BudgetCaps of a namespace (and the bundle published
//! last time) to the policy bundle the runtime pods load.
//!
//! Rules:
//! - An invalid object never reaches the pods. If an earlier version of it is in the last
//!   published bundle and is still valid next to the rest, that version stays (an invalid edit
//!   changes nothing); otherwise the object is left out.
//! - A Plan being deleted stays in the bundle, closed to new subscriptions, until the plan
//!   deletion rule (see [`crate::plan_deletion`]) lets it go.
//! - Leaving one object out can make another invalid (an Entitlement naming a dropped plan);
//!   validation repeats until the bundle is valid, at most once per object.

use std::collections::BTreeMap;

use tollgate_crds::{
    Catalog, CatalogError, ObjectKind, ObjectRef, PolicyVersion, Violation, content_version,
    validate_catalog,
};

/// Largest bundle text: a ConfigMap holds at most 1 MiB in all, and the version, metadata and
/// managed fields need room.
pub const MAX_BUNDLE_BYTES: usize = 900 * 1024;

/// A valid catalog, its content version and its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub catalog: Catalog,
    pub version: PolicyVersion,
    pub catalog_yaml: String,
}

/// The bundle and what happened to each object on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub bundle: Bundle,
    /// Objects whose current version is invalid, with why.
    pub invalid: BTreeMap<ObjectRef, Vec<Violation>>,
    /// Invalid objects whose last valid version stayed in the bundle.
    pub kept_previous: Vec<ObjectRef>,
}

/// Why no bundle could be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Serialize(#[from] CatalogError),
    #[error("policy bundle is {bytes} bytes, more than the ConfigMap limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
}

impl Bundle {
    /// A bundle of a catalog already known to be valid.
    pub fn from_valid(catalog: Catalog) -> Result<Self, BundleError> {
        let catalog = catalog.sorted();
        let catalog_yaml = catalog.to_yaml()?;
        if catalog_yaml.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge {
                bytes: catalog_yaml.len(),
                limit: MAX_BUNDLE_BYTES,
            });
        }
        Ok(Self {
            version: content_version(&catalog),
            catalog,
            catalog_yaml,
        })
    }
}

/// Compiles the namespace's objects into a bundle. `last_good` is the catalog of the bundle
/// published before (empty on the first run).
pub fn compile(current: &Catalog, last_good: &Catalog) -> Result<Compiled, BundleError> {
    let mut candidate = bundle_form(current);
    let mut invalid: BTreeMap<ObjectRef, Vec<Violation>> = BTreeMap::new();
    let mut kept_previous: Vec<ObjectRef> = Vec::new();
    let mut dropped: Vec<ObjectRef> = Vec::new();
    // Each round drops or replaces at least one object, so this ends within len + 1 rounds.
    for _ in 0..=current.len() {
        let violations = validate_catalog(&candidate);
        if violations.is_empty() {
            break;
        }
        let mut by_object: BTreeMap<ObjectRef, Vec<Violation>> = BTreeMap::new();
        for v in violations {
            by_object.entry(v.object.clone()).or_default().push(v);
        }
        for (object, violations) in by_object {
            invalid.entry(object.clone()).or_insert(violations);
            let previous = previous_version(last_good, &object);
            let already_previous = kept_previous.contains(&object);
            candidate = candidate.without(std::slice::from_ref(&object));
            match previous {
                Some(previous) if !already_previous => {
                    add(&mut candidate, previous);
                    kept_previous.push(object);
                }
                _ => {
                    kept_previous.retain(|o| o != &object);
                    dropped.push(object);
                }
            }
        }
    }
    // Duplicate names make both objects drop; what remains is valid by construction.
    debug_assert!(validate_catalog(&candidate).is_empty());
    Ok(Compiled {
        bundle: Bundle::from_valid(candidate)?,
        invalid,
        kept_previous,
    })
}

/// The catalog as the bundle carries it: Plans being deleted are closed to new subscriptions.
fn bundle_form(current: &Catalog) -> Catalog {
    let mut catalog = current.sorted();
    for plan in &mut catalog.plans {
        if plan.metadata.deletion_timestamp.is_some() {
            plan.spec.closed_to_new_subscriptions = true;
        }
    }
    catalog
}

/// One object of a catalog, kept whole.
enum AnyObject {
    Plan(Box<tollgate_crds::Plan>),
    Entitlement(Box<tollgate_crds::Entitlement>),
    BudgetCap(Box<tollgate_crds::BudgetCap>),
}

fn previous_version(last_good: &Catalog, object: &ObjectRef) -> Option<AnyObject> {
    let named = |name: &Option<String>| name.as_deref() == Some(object.name.as_str());
    match object.kind {
        ObjectKind::Plan => last_good
            .plans
            .iter()
            .find(|o| named(&o.metadata.name))
            .map(|o| AnyObject::Plan(Box::new(o.clone()))),
        ObjectKind::Entitlement => last_good
            .entitlements
            .iter()
            .find(|o| named(&o.metadata.name))
            .map(|o| AnyObject::Entitlement(Box::new(o.clone()))),
        ObjectKind::BudgetCap => last_good
            .budget_caps
            .iter()
            .find(|o| named(&o.metadata.name))
            .map(|o| AnyObject::BudgetCap(Box::new(o.clone()))),
    }
}

fn add(catalog: &mut Catalog, object: AnyObject) {
    match object {
        AnyObject::Plan(p) => catalog.plans.push(*p),
        AnyObject::Entitlement(e) => catalog.entitlements.push(*e),
        AnyObject::BudgetCap(c) => catalog.budget_caps.push(*c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_crds::load_catalog_yaml;

    fn catalog(yaml: &str) -> Catalog {
        load_catalog_yaml(yaml).unwrap().catalog
    }

    const PRO: &str = "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: pro}\nspec:\n  features:\n    - {id: tokens, kind: metered, meter: llm.tokens, limit: {amount: 100}}\n";
    const PRO_BAD: &str = "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: pro}\nspec:\n  features:\n    - {id: tokens, kind: metered, meter: llm.tokens, limit: {amount: 0}}\n";
    const ADDON: &str = "---\napiVersion: tollgate.dev/v1alpha1\nkind: Entitlement\nmetadata: {name: addon}\nspec:\n  target: {plans: [pro]}\n  features: [{feature: tokens, limit: {amount: 500}}]\n";

    #[test]
    fn a_valid_catalog_is_the_bundle() {
        let current = catalog(&format!("{PRO}{ADDON}"));
        let compiled = compile(&current, &Catalog::default()).unwrap();
        assert!(compiled.invalid.is_empty());
        assert_eq!(compiled.bundle.catalog, current.sorted());
        assert_eq!(compiled.bundle.version, content_version(&current));
    }

    #[test]
    fn an_invalid_edit_keeps_the_previous_version_and_the_version_unchanged() {
        let last_good = catalog(&format!("{PRO}{ADDON}"));
        let before = compile(&last_good, &Catalog::default()).unwrap();
        let compiled = compile(
            &catalog(&format!("{PRO_BAD}{ADDON}")),
            &before.bundle.catalog,
        )
        .unwrap();
        let pro = ObjectRef::new(ObjectKind::Plan, "pro");
        assert_eq!(
            compiled.invalid[&pro][0].path,
            "spec.features[0].limit.amount"
        );
        assert_eq!(compiled.kept_previous, [pro]);
        assert_eq!(compiled.bundle.version, before.bundle.version);
    }

    #[test]
    fn a_new_invalid_object_is_left_out_with_what_depends_on_it() {
        let compiled =
            compile(&catalog(&format!("{PRO_BAD}{ADDON}")), &Catalog::default()).unwrap();
        assert!(compiled.bundle.catalog.is_empty());
        let invalid: Vec<String> = compiled.invalid.keys().map(ToString::to_string).collect();
        assert_eq!(invalid, ["Plan/pro", "Entitlement/addon"]);
    }

    #[test]
    fn a_plan_being_deleted_stays_closed_to_new_subscriptions() {
        let mut current = catalog(PRO);
        current.plans[0].metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let compiled = compile(&current, &Catalog::default()).unwrap();
        assert!(
            compiled.bundle.catalog.plans[0]
                .spec
                .closed_to_new_subscriptions
        );
        assert!(
            compiled
                .bundle
                .catalog_yaml
                .contains("closedToNewSubscriptions: true")
        );
    }
}
