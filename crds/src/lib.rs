//! Tollgate's custom resources and the pure code that both the operator and the runtime run on
//! them.
//!
//! - Types: [`Plan`], [`Entitlement`], [`BudgetCap`] (the policy catalog) and
//!   [`TollgateRuntime`] (a runtime deployment), API group `tollgate.dev`, version `v1alpha1`.
//! - [`load_catalog_yaml`] / [`load_catalog_dir`]: parse the same multi-document YAML that
//!   `kubectl apply -f` takes into a typed [`Catalog`].
//! - [`validate_catalog`]: every semantic error of a whole catalog at once, each naming the
//!   object, the field path and the value.
//! - [`content_version`]: a deterministic version of a catalog's content, so the operator and the
//!   runtime name the same objects with the same [`PolicyVersion`].
//! - [`crdgen`]: the CustomResourceDefinitions generated from these types.
//!
//! # Units
//! Every amount is an integer. Credits are counted in **micro-credits** (1 credit =
//! 1,000,000 micro-credits; fields end in `MicroCredits`); usage is counted in the meter's own
//! units (tokens, images, actions). A rate is "`microCredits` per `perUnits` units", so a price of
//! 0.15 credits per 1,000 tokens is `microCredits: 150000, perUnits: 1000`.

pub mod budget_cap;
pub mod catalog;
pub mod common;
pub mod crdgen;
pub mod entitlement;
pub mod load;
pub mod plan;
pub mod runtime;
pub mod validate;
pub mod version;

pub use budget_cap::{
    BudgetCap, BudgetCapSpec, CapAction, CapLimit, CapScope, SubjectLevel, UsageLimit,
};
pub use catalog::{Catalog, CatalogError, ObjectKind, ObjectRef};
pub use common::{
    DimensionMatch, Enforcement, FailMode, Limit, PolicyStatus, ResetAnchor, ResetPeriod,
};
pub use entitlement::{Entitlement, EntitlementSpec, EntitlementTarget, FeatureGrant, Window};
pub use load::{LoadError, LoadedCatalog, SkippedDocument, load_catalog_dir, load_catalog_yaml};
pub use plan::{
    ConfigurationValue, Feature, FeatureKind, GrantCategory, IncludedGrant, OverageAction,
    OveragePolicy, Plan, PlanSpec, Rate,
};
pub use runtime::{
    AuthSettings, DynamoDbStore, EmbeddedStore, MAX_PARTITIONS, RuntimePorts, RuntimeStore,
    ServiceAccountSettings, StoreKind, TlsSettings, TollgateRuntime, TollgateRuntimeSpec,
    TollgateRuntimeStatus,
};
pub use validate::{Problem, Violation, validate_catalog};
pub use version::{PolicyVersion, content_version};

/// The API group of every Tollgate custom resource.
pub const GROUP: &str = "tollgate.dev";
/// The API version of every Tollgate custom resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "tollgate.dev/v1alpha1";
