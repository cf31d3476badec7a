//! The examples under examples/ load and are valid.

use std::path::PathBuf;

use tollgate_crds::{TollgateRuntime, load_catalog_dir, validate_catalog};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn the_example_catalog_is_valid() {
    let loaded = load_catalog_dir(&examples().join("catalog")).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    let c = &loaded.catalog;
    assert_eq!(
        (c.plans.len(), c.entitlements.len(), c.budget_caps.len()),
        (3, 3, 3)
    );
    let violations = validate_catalog(c);
    let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        violations.is_empty(),
        "example catalog is invalid:\n{}",
        lines.join("\n")
    );
}

#[test]
fn the_example_runtimes_parse() {
    let dir = examples().join("runtime");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let runtime: TollgateRuntime =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let partitions = runtime.spec.partitions.unwrap_or(1);
        assert!(partitions >= runtime.spec.replicas as u32);
        names.push(runtime.metadata.name.unwrap());
    }
    names.sort();
    assert_eq!(names, ["tollgate", "tollgate-ddb"]);
}

#[test]
fn the_example_catalog_loaded_as_a_runtime_directory_skips_nothing_else() {
    // The runtime directory holds no catalog objects: loading it as a catalog lists them as skipped.
    let loaded = load_catalog_dir(&examples().join("runtime")).unwrap();
    assert!(loaded.catalog.is_empty());
    assert_eq!(loaded.skipped.len(), 2);
    assert!(loaded.skipped.iter().all(|s| s.kind == "TollgateRuntime"));
}
