//! The one error type of every `EventStore` backend.
//!
//! Each variant says whose fault it is (the caller's, a conflict, or the
//! store's), so that the gRPC layer can map it to a status in one place and
//! never reports a caller's mistake as INTERNAL.

use crate::store::ExpectedVersion;
use uuid::Uuid;

/// What went wrong with a store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stream's version is not what the caller expected (a concurrency conflict).
    #[error(
        "wrong expected version for stream {stream}: expected {expected}, actual {}",
        actual.map_or_else(|| "no stream".to_string(), |v| v.to_string())
    )]
    WrongExpectedVersion {
        /// The stream whose expectation failed.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's last version, or `None` when it does not exist.
        actual: Option<u64>,
    },
    /// A field of the request is malformed; `field` is its path in the request,
    /// e.g. `events[2].event_type`.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Path of the bad field in the request.
        field: String,
        /// Why it is rejected.
        reason: String,
    },
    /// An event's payload is larger than the configured limit.
    #[error("{field} is {size} bytes, over the limit of {max} bytes")]
    PayloadTooLarge {
        /// Path of the payload in the request.
        field: String,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// One append carries more events than the configured limit.
    #[error("{count} events in one append, over the limit of {max}")]
    TooManyEvents {
        /// Events in the append.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An event id was appended before with other content (or the retry is only
    /// partly the original append).
    #[error("event id {event_id} was already used: {reason}")]
    EventIdConflict {
        /// The reused id.
        event_id: Uuid,
        /// How the retry differs from what is stored.
        reason: String,
    },
    /// A stored event failed its checksum or could not be decoded. The log
    /// never returns such an event.
    #[error("stored event at position {position} is corrupt: {reason}")]
    Corrupt {
        /// Global position of the event.
        position: u64,
        /// What check failed.
        reason: String,
    },
    /// The storage engine or the disk failed.
    #[error("storage failure: {0}")]
    Storage(String),
    /// A remote store could not be reached or answered with a server fault.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store is shut down or its writer has stopped after a storage failure.
    #[error("the event store is closed")]
    Closed,
}

impl StoreError {
    /// An [`StoreError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
