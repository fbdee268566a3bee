//! Compiles the contracts with protox, so no system `protoc` is needed.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "creditmesh/common/v1/common.proto",
    "creditmesh/events/v1/events.proto",
    "creditmesh/filing/v1/filing.proto",
    "creditmesh/review/v1/review.proto",
    "creditmesh/disclosure/v1/disclosure.proto",
    "creditmesh/complaints/v1/complaints.proto",
    "creditmesh/datapush/v1/datapush.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=creditmesh");
    let fds = protox::compile(FILES, ["."])?;
    std::fs::write(
        out.join("creditmesh_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
