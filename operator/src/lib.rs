//! The Tollgate operator: turns TollgateRuntime resources into runtime pods and Plans,
//! Entitlements and BudgetCaps into the policy bundle those pods load.
//!
//! Shape: `reconcile = read -> pure builders / compile / statuses -> server-side apply`.
//! The pure parts ([`builders`], [`bundle`], [`status`], [`plan_deletion`]) have no I/O.

pub mod builders;
pub mod bundle;
pub mod config;
pub mod context;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod plan_controller;
pub mod plan_deletion;
pub mod run;
pub mod runtime_controller;
pub mod status;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod scenarios;

pub use error::{Error, Result};

/// The one field manager of every server-side apply, and the `managed-by` label.
pub const FIELD_MANAGER: &str = "tollgate-operator";
