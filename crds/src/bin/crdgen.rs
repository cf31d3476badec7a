//! Writes the CRD YAML files generated from the Rust types into `crds/` and the Helm chart.
//! Run from anywhere in the workspace: `cargo run -p tollgate-crds --bin crdgen`.

use std::path::PathBuf;

use anyhow::Context;
use tollgate_crds::crdgen;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = crdgen::files().context("rendering CRDs")?;
    for dir in crdgen::CRD_DIRS {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in &files {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
