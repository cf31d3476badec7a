//! Compiles the public gRPC contract (proto/tollgate/v1) with a vendored protoc, and
//! writes the file descriptor set that server reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tollgate/v1/common.proto",
        "proto/tollgate/v1/enforcement.proto",
        "proto/tollgate/v1/customers.proto",
        "proto/tollgate/v1/wallets.proto",
        "proto/tollgate/v1/metering.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("tollgate_descriptor.bin"))
        .compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
