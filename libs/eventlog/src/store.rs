//! The `EventStore` trait: the contract every log backend keeps.
//!
//! Services depend on this trait, not on a backend, so the same command code
//! runs on the embedded sled log, on a remote log node over gRPC, or on a
//! clustered backend. The conformance suite (`conformance` feature) checks that
//! a backend keeps the contract.

use crate::error::StoreResult;
use crate::event::{HASH_LEN, ProposedEvent, RecordedEvent};
use futures::stream::BoxStream;
use std::fmt;
use uuid::Uuid;

/// What the caller expects of a stream's version before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    #[default]
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last version must be exactly this.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` (`None`: no stream)
    /// satisfies this expectation.
    pub fn admits(self, actual: Option<u64>) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual.is_none(),
            Self::StreamExists => actual.is_some(),
            Self::Exact(v) => actual == Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("stream exists"),
            Self::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Events for one stream, with the caller's expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    /// Target stream, `{category}-{id}`.
    pub stream: String,
    /// Expectation on the stream's version.
    pub expected: ExpectedVersion,
    /// The events, in order (at least one).
    pub events: Vec<ProposedEvent>,
}

/// Where one stream's events landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream appended to.
    pub stream: String,
    /// Stream version of the first event.
    pub first_version: u64,
    /// Stream version of the last event (the stream's version after the append).
    pub last_version: u64,
    /// Global position of the first event.
    pub first_position: u64,
    /// Global position of the last event.
    pub last_position: u64,
    /// True when every event already existed: an idempotent retry that wrote nothing.
    pub already_existed: bool,
}

/// Direction of a stream read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// A page of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSlice {
    /// Events in the direction read.
    pub events: Vec<RecordedEvent>,
    /// The stream's last version, or `None` when the stream does not exist.
    pub last_version: Option<u64>,
}

/// Selects events from the whole log; empty fields select everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    /// Stream categories (the part of the stream name before the first `-`).
    pub categories: Vec<String>,
    /// Event types.
    pub event_types: Vec<String>,
    /// Events tagged with this customer.
    pub customer_id: Option<Uuid>,
}

impl EventFilter {
    /// The filter that selects every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether the filter selects every event.
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.event_types.is_empty() && self.customer_id.is_none()
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        (self.categories.is_empty() || self.categories.iter().any(|c| c == event.category()))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && self
                .customer_id
                .is_none_or(|c| event.customer_id == Some(c))
    }

    /// Checks the filter's names; the error names the bad field.
    pub fn validate(&self) -> StoreResult<()> {
        for (i, c) in self.categories.iter().enumerate() {
            crate::names::validate_category(c)
                .map_err(|r| crate::StoreError::invalid(format!("filter.categories[{i}]"), r))?;
        }
        for (i, t) in self.event_types.iter().enumerate() {
            crate::names::validate_event_type(t)
                .map_err(|r| crate::StoreError::invalid(format!("filter.event_types[{i}]"), r))?;
        }
        Ok(())
    }
}

/// A page of the whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllSlice {
    /// Events in position order.
    pub events: Vec<RecordedEvent>,
    /// Every position below this one was scanned: pass it as the next
    /// `from_position`. With a filter it can be far past the last event returned.
    pub next_position: u64,
}

/// The state of the log's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogHead {
    /// The position the next event will get; equals the number of events.
    pub next_position: u64,
    /// Hash of the last event (zeros for an empty log).
    pub last_hash: [u8; HASH_LEN],
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// At this global position (0: the whole log).
    Position(u64),
    /// At the head when the subscription is made: only later events.
    Now,
}

/// One message of a subscription.
// Nearly every item is an event: boxing it would cost an allocation per event
// to save space on the rare marker.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionItem {
    /// The next event that passes the filter, in position order.
    Event(RecordedEvent),
    /// Sent once, when history is delivered; later items are live.
    CaughtUp {
        /// Every position below this one was delivered or filtered out.
        next_position: u64,
    },
}

/// A subscription: history, then [`SubscriptionItem::CaughtUp`], then live events.
/// Dropping it ends the subscription.
pub type EventSubscription = BoxStream<'static, StoreResult<SubscriptionItem>>;

/// One problem found by [`EventStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// Global position where the problem was found.
    pub position: u64,
    /// What is wrong.
    pub description: String,
}

/// The result of walking the whole log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Events read.
    pub events_checked: u64,
    /// The first event whose checksum, decoding or hash chain fails.
    pub first_break: Option<VerifyProblem>,
    /// Every gap in global positions.
    pub gaps: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.first_break.is_none() && self.gaps.is_empty()
    }
}

/// The contract of every log backend. Every method is safe to call concurrently.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically if the stream's version admits
    /// `expected`. Acknowledged only once durable (per the backend's durability
    /// mode). Re-appending the same event ids returns the original result with
    /// `already_existed` set and writes nothing.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> StoreResult<AppendResult>;

    /// Appends to several distinct streams all-or-nothing; results are in
    /// request order. Global positions of the whole append are contiguous.
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> StoreResult<Vec<AppendResult>>;

    /// Reads up to `limit` events of `stream` in `direction`, starting at
    /// `from_version` (`None`: the first event forward, the last backward).
    /// A stream that does not exist reads as empty with no last version.
    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from_version: Option<u64>,
        limit: usize,
    ) -> StoreResult<StreamSlice>;

    /// Reads up to `limit` events passing `filter` from `from_position` on.
    async fn read_all(
        &self,
        from_position: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<AllSlice>;

    /// The event with id `event_id`, if the log holds it (durably). Commands use
    /// this to find the first result of a retried command, whose event ids are
    /// derived from the command id.
    async fn read_event(&self, event_id: Uuid) -> StoreResult<Option<RecordedEvent>>;

    /// The log's head.
    async fn head(&self) -> StoreResult<LogHead>;

    /// Follows the log: history from `from`, then live events, filtered.
    /// Never shows a gap or a duplicate at the switch to live; a slow consumer
    /// holds back only itself, with bounded memory.
    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> StoreResult<EventSubscription>;

    /// Walks the whole log checking checksums, the hash chain and positions.
    async fn verify(&self) -> StoreResult<VerifyReport>;
}
