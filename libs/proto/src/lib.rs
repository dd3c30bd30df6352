//! Rust types and tonic stubs generated from `proto/kizuna/v1`.
//!
//! The code is generated at build time from the `.proto` files in the
//! repository, so it cannot drift from them; the descriptor set is exported for
//! gRPC server reflection.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The `kizuna` proto package namespace.
pub mod kizuna {
    /// Version 1 of the kizuna API (`kizuna.v1`).
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("kizuna.v1");
    }
}

pub use kizuna::v1;

pub mod catalog;

/// Encoded `FileDescriptorSet` of every kizuna proto file and its imports, for
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kizuna_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_lists_every_service_and_the_imported_timestamp() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
        assert!(names.contains(&"kizuna/v1/eventlog.proto"), "{names:?}");
        assert!(
            names.contains(&"google/protobuf/timestamp.proto"),
            "{names:?}"
        );
        let services: Vec<&str> = fds
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(|s| s.name()))
            .collect();
        assert!(services.contains(&"EventLog"), "{services:?}");
    }
}
