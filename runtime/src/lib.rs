//! Tollgate's enforcement runtime: the credit ledger, the engine that sequences and
//! group-commits its commands, and the stores that make them durable.

pub mod background;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod credits;
pub mod engine;
pub mod grpc;
pub mod http;
pub mod ledger;
pub mod period;
pub mod policy;
pub mod serve;
pub mod service;
pub mod store;
#[cfg(test)]
mod testing;
