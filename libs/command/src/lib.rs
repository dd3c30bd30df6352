//! Runs kizuna's deciders against the log.
//!
//! Every command service does the same thing around its rules: validate the
//! command metadata, load the aggregate's stream and fold it (upcasting old
//! payloads), decide, append with the version it decided on, and answer. This
//! crate is that loop, written once, so that its guarantees hold for every
//! command:
//!
//! - **Idempotent by command id.** Event ids are UUIDv5 of the command id and
//!   the event's index ([`event_id`]). A retry that finds its first event in
//!   the log returns the first result (`replayed`) and appends nothing, even
//!   when the state has moved on and deciding again would now say no.
//! - **Conflicts are decided again.** Without a caller's expected version, a
//!   concurrent append to the same stream makes the runner load and decide
//!   again, up to [`DEFAULT_MAX_ATTEMPTS`] times, then ABORTED. With one, a
//!   mismatch is ABORTED at once: the caller asked for that check.
//! - **One error mapping.** [`CommandError`] converts to a gRPC status in one
//!   place: bad fields are INVALID_ARGUMENT with `google.rpc.BadRequest`, rule
//!   violations FAILED_PRECONDITION with a reason code in `ErrorInfo`, unknown
//!   ids NOT_FOUND, conflicts ABORTED.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod error;
pub mod fields;
mod meta;
mod runner;

pub use cache::DEFAULT_STATE_CACHE_STREAMS;
pub use error::{CommandError, domain_status};
pub use meta::{CommandMeta, MAX_ACTOR_BYTES, traceparent_of};
pub use runner::{
    Attempt, CommandRunner, Committed, DEFAULT_MAX_ATTEMPTS, Decision, Loaded, Plan, event_id,
    proto_time,
};
