//! The `pressluft.v1` contract: generated messages, clients and servers.
//!
//! Every client (CLI, TUI, browser UI, scripts) and the server build on these types; the
//! `.proto` files under `proto/pressluft/v1` are the source of truth.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("pressluft.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pressluft_descriptor.bin"));
