//! JSON in and out of the client commands.
//!
//! The CLI speaks JSON so that shell scripts and `jq` can drive it: inputs are
//! checked here (UUIDs, expected versions, payload syntax) with errors that
//! name the flag or field, before anything is sent; outputs are one compact
//! JSON object per line with a stable field order.
//!
//! Payloads are carried as raw JSON text, never through `serde_json::Value`:
//! that would reorder keys and round large numbers, so what is read would not
//! be byte-for-byte what was appended.

use crate::cli::AppendArgs;
use kizuna_proto::v1::{
    AppendRequest, EventEnvelope, EventMetadata, ExpectedVersion, HeadResponse, ProposedEvent,
    StreamAppendResult, VerifyProblem, VerifyResponse, expected_version::Kind,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A bad value in the caller's input, named by its flag or field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The flag (`--customer`) or field path (`events[1].customer_id`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InputError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for InputError {}

/// Parses `any`, `no-stream`, `exists` or a stream version `N`.
pub fn parse_expected(text: &str, field: &str) -> Result<ExpectedVersion, InputError> {
    let (kind, version) = match text.trim() {
        "any" => (Kind::Any, 0),
        "no-stream" => (Kind::NoStream, 0),
        "exists" => (Kind::StreamExists, 0),
        n => match n.parse::<u64>() {
            Ok(v) => (Kind::Exact, v),
            Err(_) => {
                return Err(InputError::new(
                    field,
                    format!("{text:?} is not any, no-stream, exists or a stream version"),
                ));
            }
        },
    };
    Ok(ExpectedVersion {
        kind: kind as i32,
        version,
    })
}

/// Parses a UUID and returns it in the canonical form the API wants
/// (lower-case, hyphenated).
pub fn parse_uuid(text: &str, field: &str) -> Result<String, InputError> {
    Uuid::parse_str(text.trim())
        .map(|u| u.to_string())
        .map_err(|e| InputError::new(field, format!("{text:?} is not a UUID ({e})")))
}

fn parse_time(text: &str, field: &str) -> Result<prost_types::Timestamp, InputError> {
    prost_types::Timestamp::from_str(text.trim()).map_err(|_| {
        InputError::new(
            field,
            format!("{text:?} is not an RFC 3339 time, e.g. 2024-05-01T09:30:00Z"),
        )
    })
}

fn check_json(text: &str, field: &str) -> Result<(), InputError> {
    serde_json::from_str::<&RawValue>(text)
        .map(drop)
        .map_err(|e| InputError::new(field, format!("not JSON: {e}")))
}

fn metadata(args: &AppendArgs) -> Option<EventMetadata> {
    let m = EventMetadata {
        correlation_id: args.correlation_id.clone().unwrap_or_default(),
        causation_id: args.causation_id.clone().unwrap_or_default(),
        actor: args.actor.clone().unwrap_or_default(),
        traceparent: String::new(),
    };
    (m != EventMetadata::default()).then_some(m)
}

/// The request of `kizuna events append` with flags (one event).
pub fn append_request_from_flags(args: &AppendArgs) -> Result<AppendRequest, InputError> {
    let stream = args
        .stream
        .clone()
        .ok_or_else(|| InputError::new("--stream", "is required"))?;
    let event_type = args
        .event_type
        .clone()
        .ok_or_else(|| InputError::new("--type", "is required"))?;
    check_json(&args.data, "--data")?;
    let event = ProposedEvent {
        event_id: match &args.id {
            Some(id) => parse_uuid(id, "--id")?,
            None => Uuid::now_v7().to_string(),
        },
        event_type,
        schema_version: args.schema_version,
        customer_id: args
            .customer
            .as_deref()
            .map(|c| parse_uuid(c, "--customer"))
            .transpose()?
            .unwrap_or_default(),
        occurred_at: args
            .occurred_at
            .as_deref()
            .map(|t| parse_time(t, "--occurred-at"))
            .transpose()?,
        metadata: metadata(args),
        payload: args.data.as_bytes().to_vec(),
    };
    Ok(AppendRequest {
        stream,
        expected_version: Some(parse_expected(&args.expected, "--expected")?),
        events: vec![event],
    })
}

/// `expected_version` of a batch: a number or one of the words.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectedJson {
    Version(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchJson {
    stream: String,
    #[serde(default)]
    expected_version: Option<ExpectedJson>,
    events: Vec<BatchEventJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchEventJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    customer_id: Option<String>,
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    occurred_at: Option<String>,
    data: Box<RawValue>,
}

/// The request of `kizuna events append --stdin`: a batch for one stream,
/// `{"stream", "expected_version"?, "events": [{"id"?, "type", "customer_id"?,
/// "schema_version"?, "occurred_at"?, "data"}]}`. Each event's payload is the
/// JSON text of its `data` exactly as written; the metadata flags apply to
/// every event.
pub fn append_request_from_batch(
    text: &str,
    args: &AppendArgs,
) -> Result<AppendRequest, InputError> {
    let batch: BatchJson =
        serde_json::from_str(text).map_err(|e| InputError::new("stdin batch", e.to_string()))?;
    let expected_version = match batch.expected_version {
        None => Some(ExpectedVersion {
            kind: Kind::Any as i32,
            version: 0,
        }),
        Some(ExpectedJson::Version(v)) => Some(ExpectedVersion {
            kind: Kind::Exact as i32,
            version: v,
        }),
        Some(ExpectedJson::Text(t)) => Some(parse_expected(&t, "expected_version")?),
    };
    if batch.events.is_empty() {
        return Err(InputError::new("events", "at least one event is required"));
    }
    let metadata = metadata(args);
    let events = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let field = |name: &str| format!("events[{i}].{name}");
            Ok(ProposedEvent {
                event_id: match &e.id {
                    Some(id) => parse_uuid(id, &field("id"))?,
                    None => Uuid::now_v7().to_string(),
                },
                event_type: e.event_type,
                schema_version: e.schema_version.unwrap_or(1),
                customer_id: e
                    .customer_id
                    .as_deref()
                    .map(|c| parse_uuid(c, &field("customer_id")))
                    .transpose()?
                    .unwrap_or_default(),
                occurred_at: e
                    .occurred_at
                    .as_deref()
                    .map(|t| parse_time(t, &field("occurred_at")))
                    .transpose()?,
                metadata: metadata.clone(),
                payload: e.data.get().as_bytes().to_vec(),
            })
        })
        .collect::<Result<Vec<_>, InputError>>()?;
    Ok(AppendRequest {
        stream: batch.stream,
        expected_version,
        events,
    })
}

/// Removes the whitespace between the tokens of valid JSON text, so that a
/// pretty-printed payload fits on one output line without being re-encoded.
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            out.push(c);
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// The payload as JSON when it is UTF-8 JSON text.
fn payload_json(payload: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(payload).ok()?;
    let raw = serde_json::from_str::<&RawValue>(text).ok()?;
    RawValue::from_string(compact_json(raw.get())).ok()
}

#[derive(Serialize)]
struct MetadataJson<'a> {
    correlation_id: &'a str,
    causation_id: &'a str,
    actor: &'a str,
    traceparent: &'a str,
}

#[derive(Serialize)]
struct EventJson<'a> {
    position: u64,
    stream: &'a str,
    version: u64,
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema_version: u32,
    customer_id: Option<&'a str>,
    occurred_at: Option<String>,
    recorded_at: Option<String>,
    metadata: MetadataJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    prev_hash: String,
    hash: String,
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.map(ToString::to_string)
}

/// A protobuf payload of a catalogued event type and version, as its proto3
/// JSON, so operators read `lead.captured` as fields rather than base64.
fn typed_payload_json(e: &EventEnvelope) -> Option<Box<RawValue>> {
    let descriptor = kizuna_proto::catalog::event_message(&e.event_type, e.schema_version)?;
    let message = prost_reflect::DynamicMessage::decode(descriptor, e.payload.as_slice()).ok()?;
    RawValue::from_string(crate::call::to_json(&message)).ok()
}

/// One output line for an event: its envelope with times in RFC 3339, hashes
/// in hex, and the payload as `data` (JSON text, or a catalogued protobuf
/// event as its proto3 JSON) or else `data_base64`.
pub fn event_line(e: &EventEnvelope) -> String {
    use base64::Engine as _;
    let data = payload_json(&e.payload).or_else(|| typed_payload_json(e));
    let data_base64 = match data {
        Some(_) => None,
        None => Some(base64::engine::general_purpose::STANDARD.encode(&e.payload)),
    };
    let metadata = e.metadata.as_ref();
    let field = |f: fn(&EventMetadata) -> &str| metadata.map_or("", f);
    let json = EventJson {
        position: e.global_position,
        stream: &e.stream,
        version: e.stream_version,
        id: &e.event_id,
        event_type: &e.event_type,
        schema_version: e.schema_version,
        customer_id: Some(e.customer_id.as_str()).filter(|c| !c.is_empty()),
        occurred_at: rfc3339(e.occurred_at.as_ref()),
        recorded_at: rfc3339(e.recorded_at.as_ref()),
        metadata: MetadataJson {
            correlation_id: field(|m| &m.correlation_id),
            causation_id: field(|m| &m.causation_id),
            actor: field(|m| &m.actor),
            traceparent: field(|m| &m.traceparent),
        },
        data,
        data_base64,
        prev_hash: hex::encode(&e.prev_hash),
        hash: hex::encode(&e.hash),
    };
    to_line(&json)
}

#[derive(Serialize)]
struct AppendResultJson<'a> {
    stream: &'a str,
    first_version: u64,
    last_version: u64,
    first_position: u64,
    last_position: u64,
    already_existed: bool,
}

/// One output line for the result of an append.
pub fn append_result_line(r: &StreamAppendResult) -> String {
    to_line(&AppendResultJson {
        stream: &r.stream,
        first_version: r.first_version,
        last_version: r.last_version,
        first_position: r.first_position,
        last_position: r.last_position,
        already_existed: r.already_existed,
    })
}

#[derive(Serialize)]
struct HeadJson {
    next_position: u64,
    last_hash: String,
}

/// One output line for the log's head.
pub fn head_line(h: &HeadResponse) -> String {
    to_line(&HeadJson {
        next_position: h.next_position,
        last_hash: hex::encode(&h.last_hash),
    })
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    position: u64,
    description: &'a str,
}

impl<'a> From<&'a VerifyProblem> for ProblemJson<'a> {
    fn from(p: &'a VerifyProblem) -> Self {
        Self {
            position: p.position,
            description: &p.description,
        }
    }
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    ok: bool,
    events_checked: u64,
    first_break: Option<ProblemJson<'a>>,
    gaps: Vec<ProblemJson<'a>>,
}

/// One output line for a verify report.
pub fn verify_line(v: &VerifyResponse) -> String {
    to_line(&VerifyJson {
        ok: v.ok,
        events_checked: v.events_checked,
        first_break: v.first_break.as_ref().map(Into::into),
        gaps: v.gaps.iter().map(Into::into).collect(),
    })
}

fn to_line(value: &impl Serialize) -> String {
    // These types hold only strings, numbers and already-valid raw JSON, so
    // serialising them cannot fail; an empty object is a safe fallback anyway.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn append_args(extra: &[&str]) -> AppendArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["kizuna", "events", "append"].iter().chain(extra).copied(),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Events(crate::cli::EventsArgs {
                command: crate::cli::EventsCommand::Append(a),
                ..
            }) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expected_versions() {
        let k = |t: &str| parse_expected(t, "--expected").map(|e| (e.kind, e.version));
        assert_eq!(k("any"), Ok((Kind::Any as i32, 0)));
        assert_eq!(k("no-stream"), Ok((Kind::NoStream as i32, 0)));
        assert_eq!(k("exists"), Ok((Kind::StreamExists as i32, 0)));
        assert_eq!(k("7"), Ok((Kind::Exact as i32, 7)));
        let err = k("-1").unwrap_err();
        assert_eq!(err.field, "--expected");
        assert!(k("none").is_err());
    }

    #[test]
    fn uuids_are_canonicalised_and_errors_name_the_field() {
        assert_eq!(
            parse_uuid("0190A1B2-0000-7000-8000-000000000001", "--id").unwrap(),
            "0190a1b2-0000-7000-8000-000000000001"
        );
        let err = parse_uuid("not-a-uuid", "--customer").unwrap_err();
        assert!(err.to_string().starts_with("invalid --customer: "), "{err}");
    }

    #[test]
    fn flags_make_one_event() {
        let a = append_args(&[
            "--stream",
            "lead-1",
            "--type",
            "lead.captured",
            "--data",
            r#"{"b": 2, "a": 1}"#,
            "--expected",
            "3",
            "--customer",
            "0190a1b2-0000-7000-8000-000000000001",
            "--occurred-at",
            "2024-05-01T09:30:00Z",
            "--actor",
            "user:alice",
        ]);
        let req = append_request_from_flags(&a).unwrap();
        assert_eq!(req.stream, "lead-1");
        assert_eq!(
            req.expected_version,
            Some(ExpectedVersion {
                kind: Kind::Exact as i32,
                version: 3
            })
        );
        let e = &req.events[0];
        assert_eq!(
            e.payload, br#"{"b": 2, "a": 1}"#,
            "the payload is the text as given"
        );
        assert_eq!(e.customer_id, "0190a1b2-0000-7000-8000-000000000001");
        assert_eq!(e.occurred_at.unwrap().seconds, 1_714_555_800);
        assert_eq!(e.metadata.as_ref().unwrap().actor, "user:alice");
        assert_eq!(Uuid::parse_str(&e.event_id).unwrap().get_version_num(), 7);
    }

    #[test]
    fn flags_reject_bad_json_and_bad_ids() {
        let base = ["--stream", "lead-1", "--type", "lead.captured"];
        let with = |extra: &[&str]| {
            append_request_from_flags(&append_args(&[&base[..], extra].concat())).unwrap_err()
        };
        assert_eq!(with(&["--data", "{nope"]).field, "--data");
        assert_eq!(with(&["--id", "123"]).field, "--id");
        assert_eq!(with(&["--customer", "x"]).field, "--customer");
        assert_eq!(with(&["--occurred-at", "yesterday"]).field, "--occurred-at");
        assert_eq!(with(&["--expected", "maybe"]).field, "--expected");
    }

    #[test]
    fn a_batch_keeps_each_payload_verbatim() {
        let args = append_args(&["--stdin", "--correlation-id", "c-1"]);
        let text = r#"{
            "stream": "lead-1",
            "expected_version": "no-stream",
            "events": [
                {"type": "lead.captured", "data": {"z": 1, "a": 123456789012345678901234567890}},
                {"id": "0190a1b2-0000-7000-8000-000000000002", "type": "lead.scored",
                 "customer_id": "0190a1b2-0000-7000-8000-000000000001", "data": "text"}
            ]
        }"#;
        let req = append_request_from_batch(text, &args).unwrap();
        assert_eq!(req.expected_version.unwrap().kind, Kind::NoStream as i32);
        assert_eq!(req.events.len(), 2);
        assert_eq!(
            req.events[0].payload,
            br#"{"z": 1, "a": 123456789012345678901234567890}"#
        );
        assert_eq!(req.events[1].payload, br#""text""#);
        assert_eq!(
            req.events[1].event_id,
            "0190a1b2-0000-7000-8000-000000000002"
        );
        assert!(
            req.events
                .iter()
                .all(|e| e.metadata.as_ref().unwrap().correlation_id == "c-1")
        );
        let numeric = r#"{"stream": "lead-1", "expected_version": 4, "events": [{"type": "a.b", "data": null}]}"#;
        let req = append_request_from_batch(numeric, &args).unwrap();
        assert_eq!(req.expected_version.unwrap().version, 4);
        assert_eq!(req.events[0].payload, b"null");
    }

    #[test]
    fn batch_errors_name_the_field() {
        let args = append_args(&["--stdin"]);
        let err = |text: &str| append_request_from_batch(text, &args).unwrap_err();
        let e = err(
            r#"{"stream": "lead-1", "events": [{"type": "a.b", "data": 1}, {"type": "a.b", "customer_id": "nope", "data": 1}]}"#,
        );
        assert_eq!(e.field, "events[1].customer_id");
        let e = err(r#"{"stream": "lead-1", "events": [{"type": "a.b", "data": 1, "colour": 1}]}"#);
        assert!(e.reason.contains("colour"), "{e}");
        let e = err(r#"{"stream": "lead-1", "events": [{"type": "a.b"}]}"#);
        assert!(e.reason.contains("data"), "{e}");
        assert_eq!(err(r#"{"stream": "lead-1", "events": []}"#).field, "events");
        let e = err(
            r#"{"stream": "lead-1", "expected_version": "soon", "events": [{"type": "a.b", "data": 1}]}"#,
        );
        assert_eq!(e.field, "expected_version");
        assert_eq!(err("not json").field, "stdin batch");
    }

    fn envelope(payload: &[u8]) -> EventEnvelope {
        EventEnvelope {
            event_id: "0190a1b2-0000-7000-8000-000000000002".into(),
            stream: "lead-1".into(),
            stream_version: 1,
            global_position: 9,
            event_type: "lead.captured".into(),
            schema_version: 2,
            customer_id: String::new(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_714_555_800,
                nanos: 0,
            }),
            recorded_at: Some(prost_types::Timestamp {
                seconds: 1_714_555_800,
                nanos: 123_000_000,
            }),
            metadata: Some(EventMetadata {
                actor: "user:alice".into(),
                ..Default::default()
            }),
            payload: payload.to_vec(),
            prev_hash: vec![0; 32],
            hash: vec![0xab; 32],
        }
    }

    #[test]
    fn an_event_line_has_the_documented_fields_in_order() {
        let line = event_line(&envelope(
            b"{\n  \"name\": \"Taro Yamada\",\n  \"n\": 123456789012345678901234567890\n}",
        ));
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(
                r#"{"position":9,"stream":"lead-1","version":1,"id":"0190a1b2-0000-7000-8000-000000000002","type":"lead.captured","schema_version":2,"customer_id":null,"occurred_at":"2024-05-01T09:30:00Z","recorded_at":"2024-05-01T09:30:00.123Z","metadata":{"correlation_id":"","causation_id":"","actor":"user:alice","traceparent":""},"data":{"name":"Taro Yamada","n":123456789012345678901234567890},"prev_hash":"0000"#
            ),
            "{line}"
        );
        assert!(
            line.ends_with(&format!(r#""hash":"{}"}}"#, "ab".repeat(32))),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("data_base64").is_none());
    }

    #[test]
    fn catalogued_protobuf_payloads_are_shown_as_their_fields() {
        use prost::Message as _;
        let payload = kizuna_proto::v1::CustomerRegistered {
            customer_id: "0190a1b2-0000-7000-8000-000000000001".into(),
            source: "store".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let mut e = envelope(&payload);
        e.event_type = "customer.registered".into();
        e.schema_version = 1;
        let v: serde_json::Value = serde_json::from_str(&event_line(&e)).unwrap();
        assert_eq!(v["data"]["source"], "store");
        assert!(v.get("data_base64").is_none());
        // Another version than the catalog's stays opaque.
        e.schema_version = 7;
        let v: serde_json::Value = serde_json::from_str(&event_line(&e)).unwrap();
        assert!(v.get("data").is_none());
    }

    #[test]
    fn binary_payloads_are_base64() {
        let line = event_line(&envelope(&[0xff, 0x00, 0x01]));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["data_base64"], "/wAB");
        assert!(v.get("data").is_none());
        let v: serde_json::Value =
            serde_json::from_str(&event_line(&envelope(b"not json"))).unwrap();
        assert_eq!(v["data_base64"], "bm90IGpzb24=");
    }

    #[test]
    fn compaction_keeps_whitespace_inside_strings() {
        assert_eq!(
            compact_json("{ \"a b\" : [1, \"x\\\" y\"],\n\t\"c\":\"\\\\\" }"),
            "{\"a b\":[1,\"x\\\" y\"],\"c\":\"\\\\\"}"
        );
    }

    #[test]
    fn report_lines() {
        let v = VerifyResponse {
            events_checked: 3,
            first_break: Some(VerifyProblem {
                position: 2,
                description: "hash mismatch".into(),
            }),
            gaps: vec![],
            ok: false,
        };
        assert_eq!(
            verify_line(&v),
            r#"{"ok":false,"events_checked":3,"first_break":{"position":2,"description":"hash mismatch"},"gaps":[]}"#
        );
        let h = HeadResponse {
            next_position: 4,
            last_hash: vec![1, 2],
        };
        assert_eq!(head_line(&h), r#"{"next_position":4,"last_hash":"0102"}"#);
    }
}
