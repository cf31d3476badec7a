//! Loading a catalog from the YAML that `kubectl apply -f` takes.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::API_VERSION;
use crate::catalog::{Catalog, ObjectKind};

/// Largest catalog text accepted, in bytes. A ConfigMap holds at most 1 MiB, so a bundle never
/// needs more; the bound stops a wrong path from loading a huge file.
pub const MAX_CATALOG_BYTES: usize = 1024 * 1024;
/// Most documents in one text: far above any real catalog, small enough to bound the work.
pub const MAX_DOCUMENTS: usize = 10_000;
/// Most files read from one catalog directory.
pub const MAX_FILES: usize = 1_000;

/// A loaded catalog and the documents that were not catalog objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadedCatalog {
    pub catalog: Catalog,
    /// Documents of other kinds (a TollgateRuntime, a Deployment): not part of a catalog,
    /// listed so a caller can say it skipped them.
    pub skipped: Vec<SkippedDocument>,
}

/// A document that is not a Plan, Entitlement or BudgetCap of `tollgate.dev/v1alpha1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedDocument {
    /// The file it came from, when loaded from a directory.
    pub file: Option<PathBuf>,
    /// Index of the document in its text, from 0.
    pub document: usize,
    pub api_version: String,
    pub kind: String,
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("catalog text is {bytes} bytes, more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("catalog has more than {limit} documents")]
    TooManyDocuments { limit: usize },
    #[error("catalog directory {dir} has more than {limit} YAML files")]
    TooManyFiles { dir: PathBuf, limit: usize },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", format_documents(.0))]
    Documents(Vec<DocumentError>),
}

/// One document that could not be read, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{}document {document}: {problem}", file_prefix(.file))]
pub struct DocumentError {
    pub file: Option<PathBuf>,
    /// Index of the document in its text, from 0.
    pub document: usize,
    pub problem: DocumentProblem,
}

/// What is wrong with one document.
#[derive(Debug, thiserror::Error)]
pub enum DocumentProblem {
    #[error("not YAML: {0}")]
    Syntax(String),
    #[error("not a mapping with apiVersion and kind")]
    NotAnObject,
    #[error("{kind} of apiVersion {api_version}: this version of Tollgate reads {API_VERSION}")]
    WrongVersion { kind: String, api_version: String },
    #[error("field {path}: {message}")]
    Field { path: String, message: String },
    #[error("unknown field {path} (kubectl apply --validate=strict refuses it too)")]
    UnknownField { path: String },
    #[error(
        "kind {kind} is not a kind of {group}: a catalog holds Plan, Entitlement and BudgetCap \
         (and may hold a TollgateRuntime, which it skips)",
        group = crate::GROUP
    )]
    UnknownKind { kind: String },
}

impl DocumentProblem {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DocumentProblem::Syntax(_) => "yaml_syntax",
            DocumentProblem::NotAnObject => "not_an_object",
            DocumentProblem::WrongVersion { .. } => "wrong_api_version",
            DocumentProblem::Field { .. } => "invalid_field",
            DocumentProblem::UnknownField { .. } => "unknown_field",
            DocumentProblem::UnknownKind { .. } => "unknown_kind",
        }
    }
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default()
}

fn format_documents(errors: &[DocumentError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(
        "{} invalid document(s):\n  {}",
        errors.len(),
        lines.join("\n  ")
    )
}

/// Parses a multi-document YAML text into a catalog. Plans, Entitlements and BudgetCaps of
/// `tollgate.dev/v1alpha1` are loaded; other kinds are listed in `skipped`; a catalog kind of
/// another `tollgate.dev` version, a document that does not parse, a field of the wrong type
/// and an unknown field are errors. Every bad document is reported, not just the first.
pub fn load_catalog_yaml(text: &str) -> Result<LoadedCatalog, LoadError> {
    let mut loaded = LoadedCatalog::default();
    let mut errors = Vec::new();
    load_text(text, None, &mut loaded, &mut errors)?;
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadError::Documents(errors))
    }
}

/// Loads every `*.yaml` and `*.yml` file of a directory (not its subdirectories), in name
/// order, as one catalog.
pub fn load_catalog_dir(dir: &Path) -> Result<LoadedCatalog, LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if is_yaml && path.is_file() {
            files.push(path);
            if files.len() > MAX_FILES {
                return Err(LoadError::TooManyFiles {
                    dir: dir.to_path_buf(),
                    limit: MAX_FILES,
                });
            }
        }
    }
    files.sort();
    let mut loaded = LoadedCatalog::default();
    let mut errors = Vec::new();
    let mut total_bytes = 0usize;
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
            path: file.clone(),
            source,
        })?;
        total_bytes = total_bytes.saturating_add(text.len());
        if total_bytes > MAX_CATALOG_BYTES {
            return Err(LoadError::TooLarge {
                bytes: total_bytes,
                limit: MAX_CATALOG_BYTES,
            });
        }
        load_text(&text, Some(&file), &mut loaded, &mut errors)?;
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadError::Documents(errors))
    }
}

fn load_text(
    text: &str,
    file: Option<&Path>,
    loaded: &mut LoadedCatalog,
    errors: &mut Vec<DocumentError>,
) -> Result<(), LoadError> {
    if text.len() > MAX_CATALOG_BYTES {
        return Err(LoadError::TooLarge {
            bytes: text.len(),
            limit: MAX_CATALOG_BYTES,
        });
    }
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if index >= MAX_DOCUMENTS {
            return Err(LoadError::TooManyDocuments {
                limit: MAX_DOCUMENTS,
            });
        }
        let fail = |problem| DocumentError {
            file: file.map(Path::to_path_buf),
            document: index,
            problem,
        };
        let value = match <Value as serde::Deserialize>::deserialize(document) {
            Ok(value) => value,
            Err(e) => {
                errors.push(fail(DocumentProblem::Syntax(e.to_string())));
                // After a syntax error the YAML stream cannot be trusted any further.
                break;
            }
        };
        if value.is_null() {
            continue; // an empty document, e.g. after a trailing `---`
        }
        match load_document(value) {
            Ok(Loaded::Plan(p)) => loaded.catalog.plans.push(*p),
            Ok(Loaded::Entitlement(e)) => loaded.catalog.entitlements.push(*e),
            Ok(Loaded::BudgetCap(c)) => loaded.catalog.budget_caps.push(*c),
            Ok(Loaded::Other { api_version, kind }) => loaded.skipped.push(SkippedDocument {
                file: file.map(Path::to_path_buf),
                document: index,
                api_version,
                kind,
            }),
            Err(problem) => errors.push(fail(problem)),
        }
    }
    Ok(())
}

enum Loaded {
    Plan(Box<crate::Plan>),
    Entitlement(Box<crate::Entitlement>),
    BudgetCap(Box<crate::BudgetCap>),
    Other { api_version: String, kind: String },
}

fn load_document(value: Value) -> Result<Loaded, DocumentProblem> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
        return Err(DocumentProblem::NotAnObject);
    };
    let group = api_version.split('/').next().unwrap_or_default();
    let Some(object_kind) = ObjectKind::from_kind(&kind) else {
        // Another kind of this group is a TollgateRuntime, or a typo (`Budgetcap`) that
        // would silently leave a cap or plan out of the policy.
        if group == crate::GROUP && kind != "TollgateRuntime" {
            return Err(DocumentProblem::UnknownKind { kind });
        }
        return Ok(Loaded::Other { api_version, kind });
    };
    if api_version != API_VERSION {
        if group == crate::GROUP {
            return Err(DocumentProblem::WrongVersion { kind, api_version });
        }
        return Ok(Loaded::Other { api_version, kind });
    }
    Ok(match object_kind {
        ObjectKind::Plan => Loaded::Plan(Box::new(typed(value)?)),
        ObjectKind::Entitlement => Loaded::Entitlement(Box::new(typed(value)?)),
        ObjectKind::BudgetCap => Loaded::BudgetCap(Box::new(typed(value)?)),
    })
}

/// Deserializes with the path of a bad field in the error, and refuses unknown fields outside
/// `status` (a typo such as `limt:` would otherwise silently drop a limit).
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, DocumentProblem> {
    let mut unknown: Vec<String> = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| {
        let path = path.to_string();
        let checked = !matches!(path.as_str(), "apiVersion" | "kind" | "status");
        if checked && !path.starts_with("status.") {
            unknown.push(path);
        }
    };
    let ignored = serde_ignored::Deserializer::new(value, &mut record);
    let object: T =
        serde_path_to_error::deserialize(ignored).map_err(|e| DocumentProblem::Field {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    match unknown.into_iter().next() {
        Some(path) => Err(DocumentProblem::UnknownField { path }),
        None => Ok(object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PLANS: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: free}
spec:
  features:
    - {id: model.small, kind: boolean}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
---
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: pro}
spec: {}
---
"#;

    #[test]
    fn loads_catalog_kinds_and_lists_other_kinds() {
        let loaded = load_catalog_yaml(TWO_PLANS).unwrap();
        assert_eq!(loaded.catalog.plans.len(), 2);
        assert_eq!(loaded.catalog.plans[0].spec.features[0].id, "model.small");
        assert_eq!(loaded.skipped.len(), 1);
        assert_eq!(loaded.skipped[0].document, 1);
        assert_eq!(loaded.skipped[0].kind, "Deployment");
    }

    #[test]
    fn a_bad_field_names_the_document_and_the_path() {
        let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: p}\nspec:\n  features:\n    - {id: x, kind: metered, limit: {amount: -5}}\n";
        let err = load_catalog_yaml(text).unwrap_err();
        let LoadError::Documents(errors) = &err else {
            panic!("{err}")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].document, 1);
        let DocumentProblem::Field { path, .. } = &errors[0].problem else {
            panic!("{err}")
        };
        assert_eq!(path, "spec.features[0].limit.amount");
    }

    #[test]
    fn a_mistyped_kind_of_the_group_is_an_error_not_a_skipped_document() {
        let text = "apiVersion: tollgate.dev/v1alpha1\nkind: Budgetcap\nmetadata: {name: typo-cap}\nspec: {}\n---\napiVersion: tollgate.dev/v1alpha1\nkind: TollgateRuntime\nmetadata: {name: rt}\nspec: {}\n";
        let LoadError::Documents(errors) = load_catalog_yaml(text).unwrap_err() else {
            panic!()
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].document, errors[0].problem.code()),
            (0, "unknown_kind")
        );
        assert!(
            errors[0].to_string().contains("kind Budgetcap"),
            "{}",
            errors[0]
        );
        // A TollgateRuntime beside the catalog is skipped, as before.
        let runtime = "apiVersion: tollgate.dev/v1alpha1\nkind: TollgateRuntime\nmetadata: {name: rt}\nspec: {}\n";
        let loaded = load_catalog_yaml(runtime).unwrap();
        assert_eq!(loaded.skipped[0].kind, "TollgateRuntime");
    }

    #[test]
    fn an_unknown_field_is_an_error() {
        let text = "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: p}\nspec:\n  features:\n    - {id: x, kind: boolean, enabeld: true}\n";
        let err = load_catalog_yaml(text).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown field spec.features.0.enabeld"),
            "{err}"
        );
    }

    #[test]
    fn every_bad_document_is_reported() {
        let text = "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: a}\nspec: {features: 3}\n---\nkind: Plan\n---\napiVersion: tollgate.dev/v1beta1\nkind: Plan\nmetadata: {name: c}\n";
        let LoadError::Documents(errors) = load_catalog_yaml(text).unwrap_err() else {
            panic!()
        };
        let codes: Vec<_> = errors
            .iter()
            .map(|e| (e.document, e.problem.code()))
            .collect();
        assert_eq!(
            codes,
            [
                (0, "invalid_field"),
                (1, "not_an_object"),
                (2, "wrong_api_version")
            ]
        );
    }

    #[test]
    fn the_bundle_text_loads_back_to_the_same_catalog() {
        let loaded = load_catalog_yaml(TWO_PLANS).unwrap();
        let text = loaded.catalog.to_yaml().unwrap();
        let again = load_catalog_yaml(&text).unwrap();
        assert_eq!(again.catalog, loaded.catalog.sorted());
        assert!(again.skipped.is_empty());
    }

    #[test]
    fn a_text_over_the_limit_is_refused() {
        let text = " ".repeat(MAX_CATALOG_BYTES + 1);
        assert!(matches!(
            load_catalog_yaml(&text),
            Err(LoadError::TooLarge { .. })
        ));
    }
}
