//! Tollgate's enforcement runtime: the credit ledger, the engine that sequences and
//! group-commits its commands, and the stores that make them durable.

pub mod engine;
pub mod ledger;
pub mod period;
pub mod store;
