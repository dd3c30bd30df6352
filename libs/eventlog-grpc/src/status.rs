//! The one mapping between [`StoreError`] and gRPC [`Status`], both ways.
//!
//! Keeping it in one place is what makes the codes consistent across RPCs and
//! guarantees that a caller's mistake is never reported as INTERNAL. The
//! inverse exists so that [`crate::RemoteStore`] hands its callers the same
//! errors an embedded store would: code that matches on
//! `WrongExpectedVersion { actual, .. }` or `InvalidArgument { field, .. }`
//! works unchanged over the network.
//!
//! What travels besides code and message:
//! - a version conflict carries the ASCII metadata `kizuna-stream`,
//!   `kizuna-expected-version` and `kizuna-actual-version`, readable by any
//!   gRPC client without protobuf details;
//! - INVALID_ARGUMENT carries a `google.rpc.BadRequest` naming the field;
//! - every status carries a `google.rpc.ErrorInfo` (domain [`ERROR_DOMAIN`])
//!   whose reason names the variant and whose metadata holds the variant's
//!   other fields, so that variants sharing a code (e.g. `Unavailable` and
//!   `Closed`) come back apart.
//!
//! A status without these (from a proxy, from tonic's transport, from another
//! server) is mapped by its code alone; anything that is neither the caller's
//! mistake nor a recognised store answer becomes `Unavailable`.

use kizuna_eventlog::{ExpectedVersion, StoreError};
use std::collections::HashMap;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

/// The `google.rpc.ErrorInfo` domain of errors from the event log.
pub const ERROR_DOMAIN: &str = "eventlog.kizuna";
/// Metadata key of a version conflict's stream.
pub const STREAM_KEY: &str = "kizuna-stream";
/// Metadata key of a version conflict's expectation: `any`, `no-stream`,
/// `stream-exists` or a version number.
pub const EXPECTED_VERSION_KEY: &str = "kizuna-expected-version";
/// Metadata key of a version conflict's actual last version: a number, or
/// `none` when the stream does not exist.
pub const ACTUAL_VERSION_KEY: &str = "kizuna-actual-version";

/// `ErrorInfo` reasons, one per [`StoreError`] variant.
mod reasons {
    pub(super) const WRONG_EXPECTED_VERSION: &str = "WRONG_EXPECTED_VERSION";
    pub(super) const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    pub(super) const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub(super) const TOO_MANY_EVENTS: &str = "TOO_MANY_EVENTS";
    pub(super) const EVENT_ID_CONFLICT: &str = "EVENT_ID_CONFLICT";
    pub(super) const CORRUPT: &str = "CORRUPT";
    pub(super) const STORAGE: &str = "STORAGE";
    pub(super) const UNAVAILABLE: &str = "UNAVAILABLE";
    pub(super) const CLOSED: &str = "CLOSED";
}

fn expected_to_text(e: ExpectedVersion) -> String {
    match e {
        ExpectedVersion::Any => "any".into(),
        ExpectedVersion::NoStream => "no-stream".into(),
        ExpectedVersion::StreamExists => "stream-exists".into(),
        ExpectedVersion::Exact(v) => v.to_string(),
    }
}

fn expected_from_text(s: &str) -> Option<ExpectedVersion> {
    match s {
        "any" => Some(ExpectedVersion::Any),
        "no-stream" => Some(ExpectedVersion::NoStream),
        "stream-exists" => Some(ExpectedVersion::StreamExists),
        n => n.parse().ok().map(ExpectedVersion::Exact),
    }
}

fn actual_to_text(a: Option<u64>) -> String {
    a.map_or_else(|| "none".into(), |v| v.to_string())
}

fn actual_from_text(s: &str) -> Option<Option<u64>> {
    match s {
        "none" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// Adds `key: value` when `value` is valid ASCII metadata (stream names
/// accepted by the store always are).
fn insert_ascii(metadata: &mut MetadataMap, key: &'static str, value: &str) {
    if let Ok(v) = AsciiMetadataValue::try_from(value) {
        metadata.insert(key, v);
    }
}

/// The gRPC status for a store error. This is the only place a
/// [`StoreError`] becomes a status.
pub fn status_from_store_error(e: StoreError) -> Status {
    let message = e.to_string();
    let mut metadata = MetadataMap::new();
    let mut details = ErrorDetails::new();
    let (code, reason, info): (Code, &str, Vec<(&str, String)>) = match e {
        StoreError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => {
            insert_ascii(&mut metadata, STREAM_KEY, &stream);
            insert_ascii(
                &mut metadata,
                EXPECTED_VERSION_KEY,
                &expected_to_text(expected),
            );
            insert_ascii(&mut metadata, ACTUAL_VERSION_KEY, &actual_to_text(actual));
            (Code::Aborted, reasons::WRONG_EXPECTED_VERSION, vec![])
        }
        StoreError::InvalidArgument { field, reason } => {
            details.add_bad_request_violation(field, reason);
            (Code::InvalidArgument, reasons::INVALID_ARGUMENT, vec![])
        }
        StoreError::PayloadTooLarge { field, size, max } => (
            Code::ResourceExhausted,
            reasons::PAYLOAD_TOO_LARGE,
            vec![
                ("field", field),
                ("size", size.to_string()),
                ("max", max.to_string()),
            ],
        ),
        StoreError::TooManyEvents { count, max } => (
            Code::ResourceExhausted,
            reasons::TOO_MANY_EVENTS,
            vec![("count", count.to_string()), ("max", max.to_string())],
        ),
        StoreError::EventIdConflict { event_id, reason } => (
            Code::AlreadyExists,
            reasons::EVENT_ID_CONFLICT,
            vec![("event_id", event_id.to_string()), ("reason", reason)],
        ),
        StoreError::Corrupt { position, reason } => (
            Code::DataLoss,
            reasons::CORRUPT,
            vec![("position", position.to_string()), ("reason", reason)],
        ),
        StoreError::Storage(detail) => (Code::Internal, reasons::STORAGE, vec![("detail", detail)]),
        StoreError::Unavailable(detail) => (
            Code::Unavailable,
            reasons::UNAVAILABLE,
            vec![("detail", detail)],
        ),
        StoreError::Closed => (Code::Unavailable, reasons::CLOSED, vec![]),
    };
    let info: HashMap<String, String> = info.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    details.set_error_info(reason, ERROR_DOMAIN, info);
    Status::with_error_details_and_metadata(code, message, details, metadata)
}

/// The store error a status stands for: the inverse of
/// [`status_from_store_error`], and a best effort for statuses that did not
/// come from it (transport failures, proxies, deadlines become
/// [`StoreError::Unavailable`]).
pub fn store_error_from_status(s: Status) -> StoreError {
    let details = s.get_error_details();
    let info = details
        .error_info()
        .filter(|i| i.domain == ERROR_DOMAIN)
        .map(|i| (i.reason.as_str(), &i.metadata));
    let reason = info.map(|(r, _)| r);
    let get = |key: &str| info.and_then(|(_, m)| m.get(key)).cloned();
    let num = |key: &str| get(key).and_then(|v| v.parse::<u64>().ok());
    let unavailable = || StoreError::Unavailable(format!("{:?}: {}", s.code(), s.message()));

    match s.code() {
        Code::Aborted => {
            let header = |key: &str| {
                s.metadata()
                    .get(key)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let expected = header(EXPECTED_VERSION_KEY).and_then(|v| expected_from_text(&v));
            let actual = header(ACTUAL_VERSION_KEY).and_then(|v| actual_from_text(&v));
            match (expected, actual) {
                (Some(expected), Some(actual)) => StoreError::WrongExpectedVersion {
                    stream: header(STREAM_KEY).unwrap_or_default(),
                    expected,
                    actual,
                },
                _ => unavailable(),
            }
        }
        Code::InvalidArgument | Code::OutOfRange => {
            let violation = details
                .bad_request()
                .and_then(|b| b.field_violations.first());
            match violation {
                Some(v) => StoreError::invalid(v.field.clone(), v.description.clone()),
                None => invalid_from_message(s.message()),
            }
        }
        Code::ResourceExhausted => match reason {
            Some(reasons::PAYLOAD_TOO_LARGE) => StoreError::PayloadTooLarge {
                field: get("field").unwrap_or_default(),
                size: num("size").map_or(0, saturating_usize),
                max: num("max").map_or(0, saturating_usize),
            },
            Some(reasons::TOO_MANY_EVENTS) => StoreError::TooManyEvents {
                count: num("count").map_or(0, saturating_usize),
                max: num("max").map_or(0, saturating_usize),
            },
            // tonic's own message size limit: the request was too large to send.
            _ => StoreError::invalid("request", s.message()),
        },
        Code::AlreadyExists => match get("event_id").and_then(|id| Uuid::try_parse(&id).ok()) {
            Some(event_id) => StoreError::EventIdConflict {
                event_id,
                reason: get("reason").unwrap_or_else(|| s.message().to_owned()),
            },
            None => unavailable(),
        },
        Code::DataLoss => StoreError::Corrupt {
            position: num("position").unwrap_or(0),
            reason: get("reason").unwrap_or_else(|| s.message().to_owned()),
        },
        Code::Internal if reason == Some(reasons::STORAGE) => {
            StoreError::Storage(get("detail").unwrap_or_else(|| s.message().to_owned()))
        }
        Code::Unavailable => match reason {
            Some(reasons::CLOSED) => StoreError::Closed,
            Some(reasons::UNAVAILABLE) => {
                StoreError::Unavailable(get("detail").unwrap_or_else(|| s.message().to_owned()))
            }
            _ => StoreError::Unavailable(s.message().to_owned()),
        },
        _ => unavailable(),
    }
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// An INVALID_ARGUMENT without a `BadRequest` detail: recovers the field from
/// a message of the form `invalid <field>: <reason>`, else blames the request.
fn invalid_from_message(message: &str) -> StoreError {
    message
        .strip_prefix("invalid ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(field, _)| !field.is_empty() && !field.contains(' '))
        .map_or_else(
            || StoreError::invalid("request", message),
            |(field, reason)| StoreError::invalid(field, reason),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::codegen::http::HeaderMap;

    fn every_variant() -> Vec<StoreError> {
        vec![
            StoreError::WrongExpectedVersion {
                stream: "lead-1".into(),
                expected: ExpectedVersion::Exact(3),
                actual: Some(5),
            },
            StoreError::WrongExpectedVersion {
                stream: "lead-1".into(),
                expected: ExpectedVersion::StreamExists,
                actual: None,
            },
            StoreError::WrongExpectedVersion {
                stream: "lead-1".into(),
                expected: ExpectedVersion::NoStream,
                actual: Some(0),
            },
            StoreError::WrongExpectedVersion {
                stream: "lead-1".into(),
                expected: ExpectedVersion::Any,
                actual: Some(u64::MAX),
            },
            StoreError::invalid("appends[1].events[2].event_type", "must be dotted: \"X\""),
            StoreError::PayloadTooLarge {
                field: "events[0].payload".into(),
                size: 1_048_577,
                max: 1_048_576,
            },
            StoreError::TooManyEvents {
                count: 1001,
                max: 1000,
            },
            StoreError::EventIdConflict {
                event_id: Uuid::now_v7(),
                reason: "stored at position 3 with other content".into(),
            },
            StoreError::Corrupt {
                position: 42,
                reason: "checksum mismatch".into(),
            },
            StoreError::Storage("disk full — ünïcode".into()),
            StoreError::Unavailable("connection refused".into()),
            StoreError::Closed,
        ]
    }

    /// What a client sees: the status written to HTTP/2 headers and parsed back.
    fn over_the_wire(s: &Status) -> Status {
        let mut headers = HeaderMap::new();
        s.add_header(&mut headers).unwrap();
        Status::from_header_map(&headers).unwrap()
    }

    #[test]
    fn every_variant_round_trips_through_a_status() {
        for e in every_variant() {
            let status = status_from_store_error(e.clone());
            assert_eq!(store_error_from_status(status.clone()), e, "in memory");
            assert_eq!(
                store_error_from_status(over_the_wire(&status)),
                e,
                "over the wire"
            );
        }
    }

    #[test]
    fn codes_follow_whose_fault_it_is() {
        let codes: Vec<Code> = every_variant()
            .into_iter()
            .map(|e| status_from_store_error(e).code())
            .collect();
        use Code::*;
        assert_eq!(
            codes,
            [
                Aborted,
                Aborted,
                Aborted,
                Aborted,
                InvalidArgument,
                ResourceExhausted,
                ResourceExhausted,
                AlreadyExists,
                DataLoss,
                Internal,
                Unavailable,
                Unavailable
            ]
        );
    }

    #[test]
    fn a_conflict_carries_readable_metadata() {
        let s = status_from_store_error(StoreError::WrongExpectedVersion {
            stream: "lead-1".into(),
            expected: ExpectedVersion::Exact(3),
            actual: Some(5),
        });
        assert!(s.message().contains("actual 5"), "{}", s.message());
        let m = s.metadata();
        assert_eq!(m.get(ACTUAL_VERSION_KEY).unwrap(), "5");
        assert_eq!(m.get(EXPECTED_VERSION_KEY).unwrap(), "3");
        assert_eq!(m.get(STREAM_KEY).unwrap(), "lead-1");
        let none = status_from_store_error(StoreError::WrongExpectedVersion {
            stream: "lead-1".into(),
            expected: ExpectedVersion::StreamExists,
            actual: None,
        });
        assert_eq!(none.metadata().get(ACTUAL_VERSION_KEY).unwrap(), "none");
    }

    #[test]
    fn invalid_argument_names_the_field_in_message_and_details() {
        let s = status_from_store_error(StoreError::invalid("events[2].event_id", "not a UUID"));
        assert_eq!(s.message(), "invalid events[2].event_id: not a UUID");
        let bad = s.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "events[2].event_id");
        assert_eq!(bad.field_violations[0].description, "not a UUID");
    }

    #[test]
    fn foreign_statuses_map_by_code() {
        assert_eq!(
            store_error_from_status(Status::invalid_argument("invalid limit: too big")),
            StoreError::invalid("limit", "too big")
        );
        assert_eq!(
            store_error_from_status(Status::invalid_argument("nonsense")),
            StoreError::invalid("request", "nonsense")
        );
        for s in [
            Status::unavailable("tcp connect error"),
            Status::deadline_exceeded("timeout"),
            Status::cancelled("gone"),
            Status::unknown("h2 protocol error"),
            Status::internal("panicked"),
            Status::aborted("no metadata"),
            Status::already_exists("no id"),
            Status::unimplemented("old server"),
        ] {
            assert!(
                matches!(
                    store_error_from_status(s.clone()),
                    StoreError::Unavailable(_)
                ),
                "{s:?}"
            );
        }
        assert!(matches!(
            store_error_from_status(Status::resource_exhausted("message length too large")),
            StoreError::InvalidArgument { field, .. } if field == "request"
        ));
        assert!(matches!(
            store_error_from_status(Status::data_loss("bad")),
            StoreError::Corrupt { .. }
        ));
    }
}
