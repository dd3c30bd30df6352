//! kizuna's event log.
//!
//! Every customer fact in kizuna is an immutable event in one log. This crate
//! holds the envelope ([`RecordedEvent`]), the [`EventStore`] contract every
//! backend keeps, and [`SledStore`], the embedded backend: one writer thread
//! with group commit, secondary indexes written atomically with each event,
//! a BLAKE3 hash chain for tamper evidence, and subscriptions that switch from
//! history to live without a gap.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod error;
mod event;
mod limits;
pub mod names;
mod sled_store;
mod store;

pub mod conformance;

pub use codec::event_hash;
pub use error::{StoreError, StoreResult};
pub use event::{
    Clock, EventMetadata, HASH_LEN, ManualClock, ProposedEvent, RecordedEvent, SystemClock,
    Timestamp,
};
pub use limits::Limits;
pub use sled_store::{Durability, SledConfig, SledStore};
pub use store::{
    AllSlice, AppendResult, Direction, EventFilter, EventStore, EventSubscription, ExpectedVersion,
    LogHead, StreamAppend, StreamSlice, SubscribeFrom, SubscriptionItem, VerifyProblem,
    VerifyReport,
};
