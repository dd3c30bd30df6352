//! LeadService over gRPC.
#![forbid(unsafe_code)]
