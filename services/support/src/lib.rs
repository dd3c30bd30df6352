//! SupportService over gRPC.
#![forbid(unsafe_code)]
