//! Catalog directories the tests own: a copy of examples/catalog plus the tests' own plans,
//! edited in place the way GitOps would (each file replaced atomically by a rename).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A plan for tests, with no included grants (so a test `Grant`s exactly what it needs):
/// - `e2e.units`: metered (meter `e2e.units`), unlimited, 1 credit per unit;
/// - `e2e.flag`: boolean, enabled.
pub const E2E_PLAN: &str = r#"apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata:
  name: e2e
spec:
  displayName: End-to-end tests
  features:
    - id: e2e.flag
      kind: boolean
      enabled: true
    - id: e2e.units
      kind: metered
      meter: e2e.units
      limit: {unlimited: true}
  rateCard:
    - feature: e2e.units
      microCredits: 1000000 # 1 credit per unit
      perUnits: 1
  overage:
    action: deny
"#;

/// The file [`E2E_PLAN`] lives in.
pub const E2E_PLAN_FILE: &str = "e2e-plan.yaml";

/// A temporary catalog directory, removed on drop.
pub struct CatalogDir {
    dir: tempfile::TempDir,
    staging: tempfile::TempDir,
}

impl CatalogDir {
    /// An empty directory.
    pub fn empty() -> anyhow::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("tollgate-catalog-")
                .tempdir()?,
            staging: tempfile::Builder::new()
                .prefix("tollgate-staging-")
                .tempdir()?,
        })
    }

    /// The repository's examples/catalog plus [`E2E_PLAN`].
    pub fn examples_plus_e2e() -> anyhow::Result<Self> {
        let catalog = Self::empty()?;
        let examples = examples_dir();
        let mut entries: Vec<_> = std::fs::read_dir(&examples)
            .with_context(|| format!("reading {}", examples.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                catalog.write(&entry.file_name().to_string_lossy(), &text)?;
            }
        }
        catalog.write(E2E_PLAN_FILE, E2E_PLAN)?;
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` atomically: the text goes to a file outside the catalog directory on
    /// the same file system, which is then renamed over `name`, so the server never reads
    /// half a file.
    pub fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let staged = self.staging.path().join(name);
        std::fs::write(&staged, text).with_context(|| format!("writing {}", staged.display()))?;
        let target = self.dir.path().join(name);
        std::fs::rename(&staged, &target)
            .with_context(|| format!("renaming to {}", target.display()))?;
        Ok(())
    }

    pub fn read(&self, name: &str) -> anyhow::Result<String> {
        let path = self.dir.path().join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }
}

/// examples/catalog of this repository.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("catalog")
}
