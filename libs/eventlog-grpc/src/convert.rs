//! Conversions between the wire types (`kizuna_proto::v1`) and the log's
//! domain types (`kizuna_eventlog`).
//!
//! Both sides are foreign to this crate, so these are free functions rather
//! than `From` impls. Domain-to-wire is infallible. Wire-to-domain checks what
//! protobuf cannot (UUID syntax, enum values, timestamp ranges, hash lengths)
//! and fails with [`StoreError::InvalidArgument`] naming the *full* path of the
//! bad field in the request (`events[2].event_id`,
//! `appends[1].expected_version.kind`, `filter.customer_id`), so a caller can
//! fix its request without guessing. Every function that takes a `path` uses
//! it as the prefix of those field names; `""` means the message is the
//! request itself.
//!
//! Name syntax (streams, event types, categories) and size limits are not
//! checked here: the store checks them, with the same field paths.

use kizuna_eventlog::{
    AppendResult, EventFilter, EventMetadata, ExpectedVersion, HASH_LEN, LogHead, ProposedEvent,
    RecordedEvent, StoreError, StoreResult, StreamAppend, Timestamp, VerifyProblem, VerifyReport,
};
use kizuna_proto::v1;
use kizuna_proto::v1::expected_version::Kind;
use uuid::Uuid;

/// `path.field`, or just `field` when `path` is empty.
fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// `path[index]`.
fn index(path: &str, field: &str, i: usize) -> String {
    format!("{}[{i}]", join(path, field))
}

/// A required UUID field (not nil).
pub fn parse_uuid(text: &str, field: String) -> StoreResult<Uuid> {
    let id = Uuid::try_parse(text)
        .map_err(|e| StoreError::invalid(field.clone(), format!("{text:?} is not a UUID: {e}")))?;
    if id.is_nil() {
        return Err(StoreError::invalid(field, "the nil UUID is not allowed"));
    }
    Ok(id)
}

/// An optional UUID field: empty means absent.
fn parse_optional_uuid(text: &str, field: String) -> StoreResult<Option<Uuid>> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse_uuid(text, field).map(Some)
    }
}

fn optional_uuid_to_string(id: Option<Uuid>) -> String {
    id.map(|c| c.to_string()).unwrap_or_default()
}

fn hash_from_bytes(bytes: &[u8], field: String) -> StoreResult<[u8; HASH_LEN]> {
    <[u8; HASH_LEN]>::try_from(bytes).map_err(|_| {
        StoreError::invalid(
            field,
            format!("must be {HASH_LEN} bytes, got {}", bytes.len()),
        )
    })
}

// ---------------------------------------------------------------- Timestamp

/// A log timestamp as a protobuf `Timestamp`.
pub fn timestamp_to_proto(t: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = t.to_seconds_nanos();
    prost_types::Timestamp { seconds, nanos }
}

/// A protobuf `Timestamp` as a log timestamp; `path` names the field. Fails
/// when `nanos` is outside `0..1e9` or the time is outside what nanoseconds
/// in an `i64` can hold (years 1678 to 2262).
pub fn timestamp_from_proto(t: prost_types::Timestamp, path: &str) -> StoreResult<Timestamp> {
    Timestamp::from_seconds_nanos(t.seconds, t.nanos).ok_or_else(|| {
        StoreError::invalid(
            path,
            format!(
                "seconds {} nanos {} is not a time between the years 1678 and 2262 \
                 with nanos in 0..1000000000",
                t.seconds, t.nanos
            ),
        )
    })
}

// ----------------------------------------------------------------- metadata

/// Event metadata on the wire.
pub fn metadata_to_proto(m: EventMetadata) -> v1::EventMetadata {
    v1::EventMetadata {
        correlation_id: m.correlation_id,
        causation_id: m.causation_id,
        actor: m.actor,
        traceparent: m.traceparent,
    }
}

/// Event metadata from the wire; an absent message is empty metadata.
pub fn metadata_from_proto(m: Option<v1::EventMetadata>) -> EventMetadata {
    let m = m.unwrap_or_default();
    EventMetadata {
        correlation_id: m.correlation_id,
        causation_id: m.causation_id,
        actor: m.actor,
        traceparent: m.traceparent,
    }
}

// ----------------------------------------------------------- ExpectedVersion

/// An expectation on the wire. `Any` is sent explicitly as `KIND_ANY`.
pub fn expected_version_to_proto(e: ExpectedVersion) -> v1::ExpectedVersion {
    let (kind, version) = match e {
        ExpectedVersion::Any => (Kind::Any, 0),
        ExpectedVersion::NoStream => (Kind::NoStream, 0),
        ExpectedVersion::StreamExists => (Kind::StreamExists, 0),
        ExpectedVersion::Exact(v) => (Kind::Exact, v),
    };
    v1::ExpectedVersion {
        kind: kind.into(),
        version,
    }
}

/// An expectation from the wire; `path` is the field holding it, e.g.
/// `appends[1].expected_version`. An absent message means `Any`;
/// `KIND_UNSPECIFIED`, an unknown kind, or a `version` with a kind other than
/// `KIND_EXACT` are rejected.
pub fn expected_version_from_proto(
    e: Option<v1::ExpectedVersion>,
    path: &str,
) -> StoreResult<ExpectedVersion> {
    let Some(e) = e else {
        return Ok(ExpectedVersion::Any);
    };
    let kind = Kind::try_from(e.kind)
        .map_err(|_| StoreError::invalid(join(path, "kind"), format!("unknown kind {}", e.kind)))?;
    let expected = match kind {
        Kind::Unspecified => {
            return Err(StoreError::invalid(
                join(path, "kind"),
                "KIND_UNSPECIFIED is not an expectation; leave expected_version out for any",
            ));
        }
        Kind::Any => ExpectedVersion::Any,
        Kind::NoStream => ExpectedVersion::NoStream,
        Kind::StreamExists => ExpectedVersion::StreamExists,
        Kind::Exact => return Ok(ExpectedVersion::Exact(e.version)),
    };
    if e.version != 0 {
        return Err(StoreError::invalid(
            join(path, "version"),
            format!(
                "is only allowed with KIND_EXACT, not {}",
                kind.as_str_name()
            ),
        ));
    }
    Ok(expected)
}

// ------------------------------------------------------------- ProposedEvent

/// A proposed event on the wire.
pub fn proposed_event_to_proto(e: ProposedEvent) -> v1::ProposedEvent {
    v1::ProposedEvent {
        event_id: e.event_id.to_string(),
        event_type: e.event_type,
        schema_version: e.schema_version,
        customer_id: optional_uuid_to_string(e.customer_id),
        occurred_at: e.occurred_at.map(timestamp_to_proto),
        metadata: Some(metadata_to_proto(e.metadata)),
        payload: e.payload.into(),
    }
}

/// A proposed event from the wire; `path` is the event's place in the
/// request, e.g. `events[2]`. `schema_version` 0 becomes 1; an empty
/// `customer_id` means none.
pub fn proposed_event_from_proto(e: v1::ProposedEvent, path: &str) -> StoreResult<ProposedEvent> {
    Ok(ProposedEvent {
        event_id: parse_uuid(&e.event_id, join(path, "event_id"))?,
        customer_id: parse_optional_uuid(&e.customer_id, join(path, "customer_id"))?,
        occurred_at: e
            .occurred_at
            .map(|t| timestamp_from_proto(t, &join(path, "occurred_at")))
            .transpose()?,
        event_type: e.event_type,
        schema_version: e.schema_version.max(1),
        metadata: metadata_from_proto(e.metadata),
        payload: e.payload.into(),
    })
}

fn proposed_events_from_proto(
    events: Vec<v1::ProposedEvent>,
    path: &str,
) -> StoreResult<Vec<ProposedEvent>> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| proposed_event_from_proto(e, &index(path, "events", i)))
        .collect()
}

// -------------------------------------------------------------- StreamAppend

/// One stream's part of a multi-stream append, on the wire.
pub fn stream_append_to_proto(a: StreamAppend) -> v1::StreamAppend {
    v1::StreamAppend {
        stream: a.stream,
        expected_version: Some(expected_version_to_proto(a.expected)),
        events: a.events.into_iter().map(proposed_event_to_proto).collect(),
    }
}

/// One stream's part of a multi-stream append from the wire; `path` is its
/// place in the request, e.g. `appends[1]`.
pub fn stream_append_from_proto(a: v1::StreamAppend, path: &str) -> StoreResult<StreamAppend> {
    Ok(StreamAppend {
        expected: expected_version_from_proto(a.expected_version, &join(path, "expected_version"))?,
        events: proposed_events_from_proto(a.events, path)?,
        stream: a.stream,
    })
}

/// A single-stream append request from the wire, as the one [`StreamAppend`]
/// it describes. Field paths are relative to the request (`events[2].event_id`).
pub fn append_request_from_proto(r: v1::AppendRequest) -> StoreResult<StreamAppend> {
    stream_append_from_proto(
        v1::StreamAppend {
            stream: r.stream,
            expected_version: r.expected_version,
            events: r.events,
        },
        "",
    )
}

/// A multi-stream append request from the wire. Field paths are relative to
/// the request (`appends[1].events[0].event_id`).
pub fn append_multi_request_from_proto(
    r: v1::AppendMultiRequest,
) -> StoreResult<Vec<StreamAppend>> {
    r.appends
        .into_iter()
        .enumerate()
        .map(|(i, a)| stream_append_from_proto(a, &index("", "appends", i)))
        .collect()
}

// -------------------------------------------------------------- AppendResult

/// Where an append landed, on the wire.
pub fn append_result_to_proto(r: AppendResult) -> v1::StreamAppendResult {
    v1::StreamAppendResult {
        stream: r.stream,
        first_version: r.first_version,
        last_version: r.last_version,
        first_position: r.first_position,
        last_position: r.last_position,
        already_existed: r.already_existed,
    }
}

/// Where an append landed, from the wire. Every field is plain data, so this
/// cannot fail.
pub fn append_result_from_proto(r: v1::StreamAppendResult) -> AppendResult {
    AppendResult {
        stream: r.stream,
        first_version: r.first_version,
        last_version: r.last_version,
        first_position: r.first_position,
        last_position: r.last_position,
        already_existed: r.already_existed,
    }
}

// ------------------------------------------------------------- RecordedEvent

/// A recorded event as the wire's envelope.
pub fn recorded_event_to_proto(e: RecordedEvent) -> v1::EventEnvelope {
    v1::EventEnvelope {
        event_id: e.event_id.to_string(),
        stream: e.stream,
        stream_version: e.stream_version,
        global_position: e.global_position,
        event_type: e.event_type,
        schema_version: e.schema_version,
        customer_id: optional_uuid_to_string(e.customer_id),
        occurred_at: Some(timestamp_to_proto(e.occurred_at)),
        recorded_at: Some(timestamp_to_proto(e.recorded_at)),
        metadata: Some(metadata_to_proto(e.metadata)),
        payload: e.payload.into(),
        prev_hash: e.prev_hash.to_vec(),
        hash: e.hash.to_vec(),
    }
}

/// A recorded event from the wire's envelope; `path` is its place in the
/// message, e.g. `events[3]`. Both timestamps are required and both hashes
/// must be 32 bytes.
pub fn recorded_event_from_proto(e: v1::EventEnvelope, path: &str) -> StoreResult<RecordedEvent> {
    let time = |t: Option<prost_types::Timestamp>, name: &str| {
        let field = join(path, name);
        match t {
            Some(t) => timestamp_from_proto(t, &field),
            None => Err(StoreError::invalid(field, "is required")),
        }
    };
    Ok(RecordedEvent {
        event_id: parse_uuid(&e.event_id, join(path, "event_id"))?,
        customer_id: parse_optional_uuid(&e.customer_id, join(path, "customer_id"))?,
        occurred_at: time(e.occurred_at, "occurred_at")?,
        recorded_at: time(e.recorded_at, "recorded_at")?,
        prev_hash: hash_from_bytes(&e.prev_hash, join(path, "prev_hash"))?,
        hash: hash_from_bytes(&e.hash, join(path, "hash"))?,
        stream: e.stream,
        stream_version: e.stream_version,
        global_position: e.global_position,
        event_type: e.event_type,
        schema_version: e.schema_version,
        metadata: metadata_from_proto(e.metadata),
        payload: e.payload.into(),
    })
}

/// Recorded events from a repeated field; `path` is that field, e.g. `events`,
/// and errors name `events[i]…`.
pub fn recorded_events_from_proto(
    events: Vec<v1::EventEnvelope>,
    path: &str,
) -> StoreResult<Vec<RecordedEvent>> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| recorded_event_from_proto(e, &format!("{path}[{i}]")))
        .collect()
}

// --------------------------------------------------------------- EventFilter

/// A filter on the wire.
pub fn event_filter_to_proto(f: &EventFilter) -> v1::EventFilter {
    v1::EventFilter {
        categories: f.categories.clone(),
        event_types: f.event_types.clone(),
        customer_id: optional_uuid_to_string(f.customer_id),
    }
}

/// A filter from the wire; `path` is the field holding it, e.g. `filter`. An
/// absent message selects everything; an empty `customer_id` means any
/// customer. Category and type names are checked by
/// [`EventFilter::validate`], not here.
pub fn event_filter_from_proto(f: Option<v1::EventFilter>, path: &str) -> StoreResult<EventFilter> {
    let f = f.unwrap_or_default();
    Ok(EventFilter {
        customer_id: parse_optional_uuid(&f.customer_id, join(path, "customer_id"))?,
        categories: f.categories,
        event_types: f.event_types,
    })
}

// ----------------------------------------------------------------- LogHead

/// The log's head on the wire.
pub fn log_head_to_proto(h: LogHead) -> v1::HeadResponse {
    v1::HeadResponse {
        next_position: h.next_position,
        last_hash: h.last_hash.to_vec(),
    }
}

/// The log's head from the wire; `last_hash` must be 32 bytes.
pub fn log_head_from_proto(h: v1::HeadResponse) -> StoreResult<LogHead> {
    Ok(LogHead {
        next_position: h.next_position,
        last_hash: hash_from_bytes(&h.last_hash, "last_hash".into())?,
    })
}

// -------------------------------------------------------------- VerifyReport

fn problem_to_proto(p: VerifyProblem) -> v1::VerifyProblem {
    v1::VerifyProblem {
        position: p.position,
        description: p.description,
    }
}

fn problem_from_proto(p: v1::VerifyProblem) -> VerifyProblem {
    VerifyProblem {
        position: p.position,
        description: p.description,
    }
}

/// A verification report on the wire, with `ok` derived from it.
pub fn verify_report_to_proto(r: VerifyReport) -> v1::VerifyResponse {
    v1::VerifyResponse {
        ok: r.is_ok(),
        events_checked: r.events_checked,
        first_break: r.first_break.map(problem_to_proto),
        gaps: r.gaps.into_iter().map(problem_to_proto).collect(),
    }
}

/// A verification report from the wire. `ok` is not read: the report's
/// [`VerifyReport::is_ok`] derives it from the problems themselves.
pub fn verify_report_from_proto(r: v1::VerifyResponse) -> VerifyReport {
    VerifyReport {
        events_checked: r.events_checked,
        first_break: r.first_break.map(problem_from_proto),
        gaps: r.gaps.into_iter().map(problem_from_proto).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: StoreError) -> String {
        match e {
            StoreError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    fn proposed() -> ProposedEvent {
        let mut e = ProposedEvent::new("lead.captured", b"{\"a\":1}".to_vec())
            .with_customer(Uuid::now_v7());
        e.occurred_at = Some(Timestamp::from_unix_nanos(1_700_000_000_123_456_789));
        e.schema_version = 3;
        e.metadata = EventMetadata {
            correlation_id: "corr".into(),
            causation_id: "cause".into(),
            actor: "user:alice".into(),
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        };
        e
    }

    fn recorded() -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            stream: "lead-1".into(),
            stream_version: 4,
            global_position: 99,
            event_type: "lead.captured".into(),
            schema_version: 2,
            customer_id: Some(Uuid::now_v7()),
            occurred_at: Timestamp::from_unix_nanos(-1_500_000_001),
            recorded_at: Timestamp::from_unix_nanos(1_700_000_000_000_000_007),
            metadata: EventMetadata {
                actor: "svc:x".into(),
                ..EventMetadata::default()
            },
            payload: b"payload".to_vec().into(),
            prev_hash: [1; HASH_LEN],
            hash: [2; HASH_LEN],
        }
    }

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for nanos in [
            0,
            1,
            -1,
            -1_500_000_001,
            1_700_000_000_123_456_789,
            i64::MIN,
            i64::MAX,
        ] {
            let t = Timestamp::from_unix_nanos(nanos);
            let p = timestamp_to_proto(t);
            assert!((0..1_000_000_000).contains(&p.nanos), "{p:?}");
            assert_eq!(timestamp_from_proto(p, "t").unwrap(), t);
        }
    }

    #[test]
    fn bad_timestamps_name_the_field() {
        let bad_nanos = prost_types::Timestamp {
            seconds: 1,
            nanos: 1_000_000_000,
        };
        assert_eq!(
            field_of(timestamp_from_proto(bad_nanos, "events[0].occurred_at").unwrap_err()),
            "events[0].occurred_at"
        );
        let negative_nanos = prost_types::Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert!(timestamp_from_proto(negative_nanos, "x").is_err());
        let far = prost_types::Timestamp {
            seconds: i64::MAX / 1_000_000_000 + 1,
            nanos: 0,
        };
        assert!(timestamp_from_proto(far, "x").is_err());
    }

    #[test]
    fn proposed_events_round_trip() {
        let e = proposed();
        assert_eq!(
            proposed_event_from_proto(proposed_event_to_proto(e.clone()), "events[0]").unwrap(),
            e
        );
        let mut bare = ProposedEvent::new("a.b", Vec::new());
        bare.customer_id = None;
        bare.occurred_at = None;
        assert_eq!(
            proposed_event_from_proto(proposed_event_to_proto(bare.clone()), "").unwrap(),
            bare
        );
    }

    #[test]
    fn proposed_event_defaults() {
        let wire = v1::ProposedEvent {
            event_id: Uuid::now_v7().to_string(),
            event_type: "a.b".into(),
            ..Default::default()
        };
        let e = proposed_event_from_proto(wire, "events[0]").unwrap();
        assert_eq!(e.schema_version, 1);
        assert_eq!(e.customer_id, None);
        assert_eq!(e.occurred_at, None);
        assert_eq!(e.metadata, EventMetadata::default());
    }

    #[test]
    fn bad_proposed_event_fields_name_their_full_path() {
        let good = proposed_event_to_proto(proposed());
        let cases: Vec<(v1::ProposedEvent, &str)> = vec![
            (
                v1::ProposedEvent {
                    event_id: "nope".into(),
                    ..good.clone()
                },
                "events[2].event_id",
            ),
            (
                v1::ProposedEvent {
                    event_id: String::new(),
                    ..good.clone()
                },
                "events[2].event_id",
            ),
            (
                v1::ProposedEvent {
                    event_id: Uuid::nil().to_string(),
                    ..good.clone()
                },
                "events[2].event_id",
            ),
            (
                v1::ProposedEvent {
                    customer_id: "x".into(),
                    ..good.clone()
                },
                "events[2].customer_id",
            ),
            (
                v1::ProposedEvent {
                    customer_id: Uuid::nil().to_string(),
                    ..good.clone()
                },
                "events[2].customer_id",
            ),
            (
                v1::ProposedEvent {
                    occurred_at: Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -5,
                    }),
                    ..good.clone()
                },
                "events[2].occurred_at",
            ),
        ];
        for (wire, path) in cases {
            assert_eq!(
                field_of(proposed_event_from_proto(wire, "events[2]").unwrap_err()),
                path
            );
        }
    }

    #[test]
    fn expected_versions_round_trip() {
        for e in [
            ExpectedVersion::Any,
            ExpectedVersion::NoStream,
            ExpectedVersion::StreamExists,
            ExpectedVersion::Exact(0),
            ExpectedVersion::Exact(u64::MAX),
        ] {
            assert_eq!(
                expected_version_from_proto(Some(expected_version_to_proto(e)), "expected_version")
                    .unwrap(),
                e
            );
        }
        assert_eq!(
            expected_version_from_proto(None, "expected_version").unwrap(),
            ExpectedVersion::Any
        );
    }

    #[test]
    fn bad_expected_versions_name_their_full_path() {
        let unspecified = v1::ExpectedVersion {
            kind: 0,
            version: 0,
        };
        assert_eq!(
            field_of(
                expected_version_from_proto(Some(unspecified), "appends[1].expected_version")
                    .unwrap_err()
            ),
            "appends[1].expected_version.kind"
        );
        let unknown = v1::ExpectedVersion {
            kind: 42,
            version: 0,
        };
        assert_eq!(
            field_of(expected_version_from_proto(Some(unknown), "expected_version").unwrap_err()),
            "expected_version.kind"
        );
        let stray = v1::ExpectedVersion {
            kind: Kind::NoStream.into(),
            version: 3,
        };
        assert_eq!(
            field_of(expected_version_from_proto(Some(stray), "expected_version").unwrap_err()),
            "expected_version.version"
        );
    }

    #[test]
    fn append_requests_name_fields_relative_to_the_request() {
        let good = proposed_event_to_proto(proposed());
        let bad = v1::ProposedEvent {
            event_id: "x".into(),
            ..good.clone()
        };
        let req = v1::AppendRequest {
            stream: "lead-1".into(),
            expected_version: None,
            events: vec![good.clone(), good.clone(), bad.clone()],
        };
        assert_eq!(
            field_of(append_request_from_proto(req).unwrap_err()),
            "events[2].event_id"
        );

        let multi = v1::AppendMultiRequest {
            appends: vec![
                v1::StreamAppend {
                    stream: "lead-1".into(),
                    expected_version: None,
                    events: vec![good.clone()],
                },
                v1::StreamAppend {
                    stream: "lead-2".into(),
                    expected_version: Some(v1::ExpectedVersion {
                        kind: 0,
                        version: 0,
                    }),
                    events: vec![good.clone()],
                },
            ],
        };
        assert_eq!(
            field_of(append_multi_request_from_proto(multi).unwrap_err()),
            "appends[1].expected_version.kind"
        );
        let multi = v1::AppendMultiRequest {
            appends: vec![v1::StreamAppend {
                stream: "lead-1".into(),
                expected_version: None,
                events: vec![good, bad],
            }],
        };
        assert_eq!(
            field_of(append_multi_request_from_proto(multi).unwrap_err()),
            "appends[0].events[1].event_id"
        );
    }

    #[test]
    fn stream_appends_round_trip() {
        let a = StreamAppend {
            stream: "lead-1".into(),
            expected: ExpectedVersion::Exact(7),
            events: vec![proposed(), proposed()],
        };
        assert_eq!(
            stream_append_from_proto(stream_append_to_proto(a.clone()), "appends[0]").unwrap(),
            a
        );
        let single = v1::AppendRequest {
            stream: a.stream.clone(),
            expected_version: Some(expected_version_to_proto(a.expected)),
            events: a
                .events
                .iter()
                .cloned()
                .map(proposed_event_to_proto)
                .collect(),
        };
        assert_eq!(append_request_from_proto(single).unwrap(), a);
    }

    #[test]
    fn recorded_events_round_trip() {
        let e = recorded();
        assert_eq!(
            recorded_event_from_proto(recorded_event_to_proto(e.clone()), "").unwrap(),
            e
        );
        let mut no_customer = recorded();
        no_customer.customer_id = None;
        assert_eq!(
            recorded_events_from_proto(
                vec![recorded_event_to_proto(no_customer.clone())],
                "events"
            )
            .unwrap(),
            vec![no_customer]
        );
    }

    #[test]
    fn bad_envelopes_name_their_full_path() {
        let good = recorded_event_to_proto(recorded());
        let cases: Vec<(v1::EventEnvelope, &str)> = vec![
            (
                v1::EventEnvelope {
                    event_id: "x".into(),
                    ..good.clone()
                },
                "events[3].event_id",
            ),
            (
                v1::EventEnvelope {
                    customer_id: "x".into(),
                    ..good.clone()
                },
                "events[3].customer_id",
            ),
            (
                v1::EventEnvelope {
                    occurred_at: None,
                    ..good.clone()
                },
                "events[3].occurred_at",
            ),
            (
                v1::EventEnvelope {
                    recorded_at: None,
                    ..good.clone()
                },
                "events[3].recorded_at",
            ),
            (
                v1::EventEnvelope {
                    prev_hash: vec![0; 31],
                    ..good.clone()
                },
                "events[3].prev_hash",
            ),
            (
                v1::EventEnvelope {
                    hash: Vec::new(),
                    ..good.clone()
                },
                "events[3].hash",
            ),
        ];
        for (wire, path) in cases {
            let mut events = vec![good.clone(), good.clone(), good.clone()];
            events.push(wire);
            assert_eq!(
                field_of(recorded_events_from_proto(events, "events").unwrap_err()),
                path
            );
        }
    }

    #[test]
    fn filters_round_trip_and_name_the_customer_field() {
        let f = EventFilter {
            categories: vec!["lead".into(), "ticket".into()],
            event_types: vec!["lead.captured".into()],
            customer_id: Some(Uuid::now_v7()),
        };
        assert_eq!(
            event_filter_from_proto(Some(event_filter_to_proto(&f)), "filter").unwrap(),
            f
        );
        assert_eq!(
            event_filter_from_proto(None, "filter").unwrap(),
            EventFilter::all()
        );
        let bad = v1::EventFilter {
            customer_id: "not-a-uuid".into(),
            ..Default::default()
        };
        assert_eq!(
            field_of(event_filter_from_proto(Some(bad), "filter").unwrap_err()),
            "filter.customer_id"
        );
    }

    #[test]
    fn append_results_heads_and_reports_round_trip() {
        let r = AppendResult {
            stream: "lead-1".into(),
            first_version: 1,
            last_version: 3,
            first_position: 10,
            last_position: 12,
            already_existed: true,
        };
        assert_eq!(
            append_result_from_proto(append_result_to_proto(r.clone())),
            r
        );

        let h = LogHead {
            next_position: 5,
            last_hash: [9; HASH_LEN],
        };
        assert_eq!(log_head_from_proto(log_head_to_proto(h)).unwrap(), h);
        let short = v1::HeadResponse {
            next_position: 1,
            last_hash: vec![1],
        };
        assert_eq!(
            field_of(log_head_from_proto(short).unwrap_err()),
            "last_hash"
        );

        let report = VerifyReport {
            events_checked: 10,
            first_break: Some(VerifyProblem {
                position: 3,
                description: "hash mismatch".into(),
            }),
            gaps: vec![VerifyProblem {
                position: 7,
                description: "gap: positions 7..9 missing".into(),
            }],
        };
        let wire = verify_report_to_proto(report.clone());
        assert!(!wire.ok);
        assert_eq!(verify_report_from_proto(wire), report);
        assert!(verify_report_to_proto(VerifyReport::default()).ok);
    }
}
