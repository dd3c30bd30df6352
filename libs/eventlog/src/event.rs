//! The event envelope: what a caller proposes and what the log records.
//!
//! These are plain Rust types, independent of the wire API (`kizuna-proto`) and
//! of the on-disk encoding (`codec`), so that each can evolve on its own.

use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// A point in time as nanoseconds since the Unix epoch (UTC).
///
/// Nanosecond integers keep the canonical (hashed) bytes of an event exact;
/// the range covers the years 1678 to 2262.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Nanoseconds since 1970-01-01T00:00:00Z; negative before it.
    pub unix_nanos: i64,
}

impl Timestamp {
    /// The timestamp `unix_nanos` nanoseconds after the epoch.
    pub const fn from_unix_nanos(unix_nanos: i64) -> Self {
        Self { unix_nanos }
    }

    /// Seconds and sub-second nanoseconds (always 0..1e9), as protobuf wants them.
    pub fn to_seconds_nanos(self) -> (i64, i32) {
        let secs = self.unix_nanos.div_euclid(1_000_000_000);
        let nanos = self.unix_nanos.rem_euclid(1_000_000_000);
        // rem_euclid of 1e9 always fits in i32.
        (secs, i32::try_from(nanos).unwrap_or(0))
    }

    /// Builds a timestamp from seconds and nanoseconds; `None` when it is out
    /// of range or `nanos` is not in 0..1e9.
    pub fn from_seconds_nanos(seconds: i64, nanos: i32) -> Option<Self> {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        // i128: the earliest representable second times 1e9 is below i64::MIN
        // even though adding its nanos brings it back in range.
        let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        i64::try_from(total).ok().map(Self::from_unix_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_nanos_round_trip_over_the_whole_range() {
        for n in [
            i64::MIN,
            i64::MIN + 1,
            -1_000_000_001,
            -1,
            0,
            1,
            999_999_999,
            i64::MAX,
        ] {
            let t = Timestamp::from_unix_nanos(n);
            let (s, ns) = t.to_seconds_nanos();
            assert!((0..1_000_000_000).contains(&ns));
            assert_eq!(Timestamp::from_seconds_nanos(s, ns), Some(t), "{n}");
        }
        assert_eq!(Timestamp::from_seconds_nanos(i64::MAX, 0), None);
        assert_eq!(Timestamp::from_seconds_nanos(0, -1), None);
        assert_eq!(Timestamp::from_seconds_nanos(0, 1_000_000_000), None);
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let nanos = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos())
                .map(|n| -n)
                .unwrap_or(i64::MIN),
        };
        Self::from_unix_nanos(nanos)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        if t.unix_nanos >= 0 {
            UNIX_EPOCH + Duration::from_nanos(t.unix_nanos.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_nanos(t.unix_nanos.unsigned_abs())
        }
    }
}

/// The source of "now" for `recorded_at`. Injected so tests control time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemTime::now().into()
    }
}

/// A clock that moves only when told to: tests inject it to drive time-based
/// rules (SLA breaches, expiry) without sleeping. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            nanos: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(start.unix_nanos)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos
            .fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the clock to `to` (which may be earlier).
    pub fn set(&self, to: Timestamp) {
        self.nanos
            .store(to.unix_nanos, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp {
            unix_nanos: self.nanos.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

/// Provenance and tracing data carried by every event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventMetadata {
    /// Groups every event caused by one business request.
    pub correlation_id: String,
    /// The command or event that directly caused this event.
    pub causation_id: String,
    /// Who issued the command, e.g. `user:alice` or `svc:campaign`.
    pub actor: String,
    /// W3C `traceparent` of the request that appended the event.
    pub traceparent: String,
}

/// An event as a caller proposes it, before the log gives it a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedEvent {
    /// The idempotency key: the same id appended twice is written once.
    pub event_id: Uuid,
    /// Stable dotted type name, e.g. `lead.captured`.
    pub event_type: String,
    /// Version of the payload schema (>= 1).
    pub schema_version: u32,
    /// The customer the event is about, for the per-customer index.
    pub customer_id: Option<Uuid>,
    /// Business time; the log's clock is used when `None`.
    pub occurred_at: Option<Timestamp>,
    /// Provenance and tracing data.
    pub metadata: EventMetadata,
    /// The typed event bytes.
    pub payload: Bytes,
}

impl ProposedEvent {
    /// A new event with a fresh UUIDv7 id, schema version 1 and no customer,
    /// business time or metadata.
    pub fn new(event_type: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            customer_id: None,
            occurred_at: None,
            metadata: EventMetadata::default(),
            payload: payload.into(),
        }
    }

    /// The same event with another id.
    #[must_use]
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    /// The same event tagged with a customer.
    #[must_use]
    pub fn with_customer(mut self, customer_id: Uuid) -> Self {
        self.customer_id = Some(customer_id);
        self
    }
}

/// Length of an event hash in bytes (BLAKE3-256).
pub const HASH_LEN: usize = 32;

/// An event as the log recorded it. Immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The idempotency key.
    pub event_id: Uuid,
    /// `{category}-{id}`.
    pub stream: String,
    /// 0-based, gap-free position within the stream.
    pub stream_version: u64,
    /// 0-based, gap-free position within the whole log, in commit order.
    pub global_position: u64,
    /// Stable dotted type name.
    pub event_type: String,
    /// Version of the payload schema.
    pub schema_version: u32,
    /// The customer the event is about.
    pub customer_id: Option<Uuid>,
    /// Business time.
    pub occurred_at: Timestamp,
    /// When the log recorded the event.
    pub recorded_at: Timestamp,
    /// Provenance and tracing data.
    pub metadata: EventMetadata,
    /// The typed event bytes.
    pub payload: Bytes,
    /// Hash of the previous event in the log (zeros for the first).
    pub prev_hash: [u8; HASH_LEN],
    /// BLAKE3 over `prev_hash` and this event's canonical bytes.
    pub hash: [u8; HASH_LEN],
}

impl RecordedEvent {
    /// The stream's category: the part of the stream name before the first `-`.
    pub fn category(&self) -> &str {
        crate::names::category_of(&self.stream)
    }

    /// Whether this record is what `proposed` describes, so that re-appending
    /// `proposed` is an idempotent retry rather than a conflicting reuse of the id.
    /// A proposal without business time matches any recorded business time.
    pub fn matches(&self, stream: &str, proposed: &ProposedEvent) -> bool {
        self.event_id == proposed.event_id
            && self.stream == stream
            && self.event_type == proposed.event_type
            && self.schema_version == proposed.schema_version.max(1)
            && self.customer_id == proposed.customer_id
            && proposed.occurred_at.is_none_or(|t| t == self.occurred_at)
            && self.metadata == proposed.metadata
            && self.payload == proposed.payload
    }
}
