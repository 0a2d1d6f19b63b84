//! Compiles `proto/` with protox (pure Rust, so no `protoc` is needed on any machine) and hands the
//! descriptors to tonic-prost-build. The descriptor set is also written out for gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/sts/v1/sts.proto",
        "proto/iam/v1/iam.proto",
        "proto/authz/v1/authz.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // compile_fds does not write the descriptor set itself; reflection needs it.
    std::fs::write(
        out.join("sts_broker_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // RPCs whose issue has not landed answer UNIMPLEMENTED instead of failing the build.
        .generate_default_stubs(true)
        // A request message that does not decode is the caller's ValidationError (see the module).
        .codec_path("crate::grpc::codec::ProtoCodec")
        .compile_fds(fds)?;
    Ok(())
}
