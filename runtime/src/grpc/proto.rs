//! Generated code of the `tollgate.v1` package.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("tollgate.v1");

/// The encoded file descriptor set, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tollgate_descriptor");
