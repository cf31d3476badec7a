//! The policy bundle ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use tollgate_crds::TollgateRuntime;

use super::{ChildNames, child_meta};
use crate::bundle::Bundle;

/// Data key of the catalog text (multi-document YAML of the valid objects).
pub const CATALOG_KEY: &str = "catalog.yaml";
/// Data key of the bundle's content version.
pub const VERSION_KEY: &str = "version";

/// The ConfigMap `<runtime>-policy` holding the compiled policy bundle.
pub fn policy_configmap(rt: &TollgateRuntime, bundle: &Bundle) -> ConfigMap {
    let name = ChildNames::of(rt).policy_configmap();
    ConfigMap {
        metadata: child_meta(rt, name),
        data: Some(BTreeMap::from([
            (CATALOG_KEY.to_string(), bundle.catalog_yaml.clone()),
            (VERSION_KEY.to_string(), bundle.version.to_string()),
        ])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_runtime::runtime;
    use tollgate_crds::{Catalog, Plan, PlanSpec, TollgateRuntimeSpec, load_catalog_yaml};

    #[test]
    fn holds_the_catalog_and_its_version_and_is_owned_by_the_runtime() {
        let rt = runtime(TollgateRuntimeSpec::default());
        let catalog = Catalog {
            plans: vec![Plan::new("pro", PlanSpec::default())],
            ..Catalog::default()
        };
        let bundle = Bundle::from_valid(catalog.clone()).unwrap();
        let cm = policy_configmap(&rt, &bundle);
        assert_eq!(cm.metadata.name.as_deref(), Some("tollgate-policy"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("billing"));
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("TollgateRuntime", Some(true))
        );
        let data = cm.data.unwrap();
        assert_eq!(
            data[VERSION_KEY],
            tollgate_crds::content_version(&catalog).to_string()
        );
        let loaded = load_catalog_yaml(&data[CATALOG_KEY]).unwrap();
        assert_eq!(loaded.catalog, catalog);
    }
}
