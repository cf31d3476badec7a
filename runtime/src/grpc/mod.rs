//! The gRPC edge: tonic services over the service layer. Errors become `Status` here and
//! nowhere else.

mod convert;
mod customers;
mod enforcement;
mod metering;
pub mod proto;
mod server;
mod wallets;

pub use server::{GrpcConfig, MAX_REQUEST_BYTES, serve};
