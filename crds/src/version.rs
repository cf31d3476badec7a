//! The content version of a catalog: operator and runtime compute the same version for the same
//! objects, whatever the order they were listed or loaded in.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, ObjectKind, name_of};

/// Hex digits of the sha256 kept in a version: 64 bits make an accidental collision between
/// two catalogs of one namespace practically impossible, and the value stays short enough for
/// `kubectl get` columns and Pod annotations.
pub const VERSION_HEX_DIGITS: usize = 16;

/// A catalog's content version: `sha256:` and the first [`VERSION_HEX_DIGITS`] hex digits of the
/// sha256 of the canonical JSON of the sorted objects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyVersion(String);

impl PolicyVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The content version of a catalog.
///
/// Input: for each object, sorted by kind (Plan, Entitlement, BudgetCap) then name, the JSON
/// array `[kind, name, spec]`; the whole is a JSON array written with object keys sorted and no
/// whitespace. Only `kind`, `metadata.name` and `spec` count: labels, annotations and status do
/// not change the version. Specs are taken as typed values, so a field left out and the same
/// field set to its default give the same version.
pub fn content_version(catalog: &Catalog) -> PolicyVersion {
    let sorted = catalog.sorted();
    let mut entries: Vec<Value> = Vec::with_capacity(sorted.len());
    for p in &sorted.plans {
        entries.push(entry(ObjectKind::Plan, name_of(&p.metadata), &p.spec));
    }
    for e in &sorted.entitlements {
        entries.push(entry(
            ObjectKind::Entitlement,
            name_of(&e.metadata),
            &e.spec,
        ));
    }
    for c in &sorted.budget_caps {
        entries.push(entry(ObjectKind::BudgetCap, name_of(&c.metadata), &c.spec));
    }
    let mut canonical = String::new();
    write_canonical(&Value::Array(entries), &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    PolicyVersion(format!("sha256:{}", &hex[..VERSION_HEX_DIGITS]))
}

fn entry<S: Serialize>(kind: ObjectKind, name: &str, spec: &S) -> Value {
    // Serializing these spec types to a JSON value cannot fail: they hold only strings,
    // integers, booleans, lists, string-keyed maps and k8s-openapi values that serialize to
    // JSON. Null stands in rather than panicking, should that ever change.
    let spec = serde_json::to_value(spec).unwrap_or(Value::Null);
    Value::Array(vec![Value::from(kind.as_str()), Value::from(name), spec])
}

/// Writes JSON with object keys sorted, whatever map type serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                if let Some(v) = map.get(*key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, PlanSpec};

    fn plan(name: &str, display: &str) -> Plan {
        Plan::new(
            name,
            PlanSpec {
                display_name: Some(display.into()),
                ..PlanSpec::default()
            },
        )
    }

    #[test]
    fn order_of_objects_does_not_change_the_version() {
        let a = Catalog {
            plans: vec![plan("free", "Free"), plan("pro", "Pro")],
            ..Catalog::default()
        };
        let b = Catalog {
            plans: vec![plan("pro", "Pro"), plan("free", "Free")],
            ..Catalog::default()
        };
        assert_eq!(content_version(&a), content_version(&b));
    }

    #[test]
    fn a_spec_change_changes_the_version() {
        let a = Catalog {
            plans: vec![plan("pro", "Pro")],
            ..Catalog::default()
        };
        let b = Catalog {
            plans: vec![plan("pro", "Pro 2")],
            ..Catalog::default()
        };
        assert_ne!(content_version(&a), content_version(&b));
    }

    #[test]
    fn labels_and_status_do_not_change_the_version() {
        let a = Catalog {
            plans: vec![plan("pro", "Pro")],
            ..Catalog::default()
        };
        let mut labelled = plan("pro", "Pro");
        labelled.metadata.labels = Some([("team".to_string(), "growth".to_string())].into());
        labelled.status = Some(crate::PolicyStatus {
            applied_pods: Some(3),
            ..Default::default()
        });
        let b = Catalog {
            plans: vec![labelled],
            ..Catalog::default()
        };
        assert_eq!(content_version(&a), content_version(&b));
    }

    #[test]
    fn version_has_a_stable_form() {
        let v = content_version(&Catalog::default());
        assert!(v.as_str().starts_with("sha256:"));
        assert_eq!(v.as_str().len(), "sha256:".len() + VERSION_HEX_DIGITS);
        // sha256 of "[]": pins the algorithm so the runtime and the operator cannot drift.
        assert_eq!(v.as_str(), "sha256:4f53cda18c2baa0c");
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut out = String::new();
        write_canonical(
            &serde_json::json!({"b": 1, "a": {"d": [true, null], "c": "x"}}),
            &mut out,
        );
        assert_eq!(out, r#"{"a":{"c":"x","d":[true,null]},"b":1}"#);
    }
}
