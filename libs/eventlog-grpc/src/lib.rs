//! The `kizuna.v1.EventLog` gRPC service, and its client as an `EventStore`.
//!
//! A kizuna deployment can run the event log in-process or on a separate log
//! node. This crate is the seam between the two: [`EventLogService`] serves
//! any [`EventStore`](kizuna_eventlog::EventStore) over gRPC, and
//! [`RemoteStore`] implements the same trait by calling that service, so code
//! written against the trait runs unchanged on either side of the network.
//!
//! Errors cross the wire through one mapping ([`status_from_store_error`] and
//! its inverse [`store_error_from_status`]) so a remote caller sees the same
//! [`StoreError`](kizuna_eventlog::StoreError) variants, with the same
//! fields, as a local one.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
pub mod convert;
mod server;
mod status;

pub use client::RemoteStore;
pub use server::{
    DEFAULT_READ_STREAM_LIMIT, EventLogService, MAX_MESSAGE_BYTES, MAX_READ_STREAM_LIMIT,
    RESPONSE_PAYLOAD_CAP,
};
pub use status::{
    ACTUAL_VERSION_KEY, ERROR_DOMAIN, EXPECTED_VERSION_KEY, STREAM_KEY, status_from_store_error,
    store_error_from_status,
};
