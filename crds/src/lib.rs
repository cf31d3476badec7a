//! Tollgate custom resource types (in progress).
