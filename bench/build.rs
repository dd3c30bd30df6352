//! Compiles proto/echo.proto, the service of the RPC-limit baseline, the same
//! way libs/proto/build.rs compiles the API: protox (pure Rust, no protoc) and
//! tonic-prost-build. `bytes` fields become `Bytes` so that a caller can send
//! the same body again and again without copying it.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("echo.proto").display()
    );
    let fds = protox::compile(["echo.proto"], [&root])?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
