//! Compiles every `.proto` file under proto/ with protox (pure Rust, no protoc)
//! and generates prost messages plus tonic clients and servers. The encoded
//! descriptor set is written beside them for server reflection and for the
//! event catalog's options (`kizuna.v1.event_type`, `kizuna.v1.pii`).
//!
//! Files are found by walking the directory rather than listed by hand, so a
//! new service or event file cannot be forgotten.

use std::path::{Path, PathBuf};

fn proto_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path.strip_prefix(root).expect("walked under root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: worktrees sharing one target dir
    // share this script's binary, and a path baked in at compile time would
    // make every worktree compile the protos of whichever built it first.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    proto_files(&root, &root, &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let mut compiler = protox::Compiler::new([&root])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(&files)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by the compiler itself so that custom options (extensions) survive;
    // `prost_types` would drop them.
    std::fs::write(
        out.join("kizuna_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
