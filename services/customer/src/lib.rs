//! CustomerService over gRPC.
#![forbid(unsafe_code)]
