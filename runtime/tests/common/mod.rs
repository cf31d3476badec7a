//! Test fixtures shared by the integration tests (each test uses some of them).
#![allow(dead_code)]

pub mod acme;
#[cfg(feature = "dynamodb")]
pub mod dynamodb_local;
pub mod hooked;
pub mod journal;
