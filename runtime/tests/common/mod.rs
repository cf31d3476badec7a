//! Test fixtures shared by the integration tests.
#![allow(dead_code)]

pub mod dynamodb_local;
