//! `kizuna call SERVICE/METHOD JSON`: any kizuna RPC from the shell.
//!
//! Requests and responses are the proto3 JSON mapping of the messages,
//! converted through the descriptor set compiled into the binary, so every RPC
//! of every service is callable without generated code, grpcurl or protoc:
//! the README's tour and operators use it. Streaming RPCs print one JSON
//! object per message.
//!
//! A command request whose `command.command_id` is missing gets a fresh UUIDv7,
//! printed on stderr, so a quick call needs no UUID tool; pass the id yourself
//! to retry a command idempotently.

use crate::client::{ClientError, code_name, connect_channel};
use bytes::Buf;
use futures::StreamExt;
use kizuna_proto::catalog::descriptor_pool;
use prost::Message as _;
use prost_reflect::{
    DynamicMessage, MessageDescriptor, MethodDescriptor, ReflectMessage as _, SerializeOptions,
    Value,
};
use std::io::Write as _;
use std::process::ExitCode;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_types::StatusExt as _;

/// Why `kizuna call` could not run the call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The method name matches no RPC.
    #[error(
        "unknown method {0:?}: expected SERVICE/METHOD, e.g. LeadService/CaptureLead (see `kizuna call --list`)"
    )]
    UnknownMethod(String),
    /// The JSON is not a valid request message.
    #[error("the request is not a valid {message}: {reason}")]
    BadRequest {
        /// The request message.
        message: String,
        /// What the JSON parser said.
        reason: String,
    },
    /// Connecting or the RPC failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Resolves `Service/Method`, `Service.Method` or the fully qualified
/// `kizuna.v1.Service/Method`.
pub fn find_method(name: &str) -> Result<MethodDescriptor, CallError> {
    let unknown = || CallError::UnknownMethod(name.to_owned());
    let (service, method) = name
        .trim_start_matches('/')
        .rsplit_once(['/', '.'])
        .ok_or_else(unknown)?;
    let pool = descriptor_pool();
    let service = pool
        .get_service_by_name(service)
        .or_else(|| pool.get_service_by_name(&format!("kizuna.v1.{service}")))
        .ok_or_else(unknown)?;
    service
        .methods()
        .find(|m| m.name() == method)
        .ok_or_else(unknown)
}

/// Every callable method, `Service/Method`, one per line, with its comment.
pub fn list_methods() -> Vec<String> {
    let mut lines = Vec::new();
    for service in descriptor_pool().services() {
        for m in service.methods() {
            let short = service.full_name().trim_start_matches("kizuna.v1.");
            let streaming = if m.is_server_streaming() {
                " (stream)"
            } else {
                ""
            };
            lines.push(format!("{short}/{}{streaming}", m.name()));
        }
    }
    lines.sort();
    lines
}

/// Parses `json` as a request for `method`, filling in a missing command id.
pub fn request_from_json(
    method: &MethodDescriptor,
    json: &str,
) -> Result<DynamicMessage, CallError> {
    let input = method.input();
    let bad = |reason: String| CallError::BadRequest {
        message: input.full_name().to_owned(),
        reason,
    };
    let text = if json.trim().is_empty() { "{}" } else { json };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut message = DynamicMessage::deserialize(input.clone(), &mut deserializer)
        .map_err(|e| bad(e.to_string()))?;
    deserializer.end().map_err(|e| bad(e.to_string()))?;
    fill_command_id(&mut message);
    Ok(message)
}

/// Sets `command.command_id` to a fresh UUIDv7 when the request has a
/// `CommandMetadata command` field and no id in it.
fn fill_command_id(message: &mut DynamicMessage) {
    let Some(field) = message.descriptor().get_field_by_name("command") else {
        return;
    };
    let prost_reflect::Kind::Message(meta) = field.kind() else {
        return;
    };
    if meta.full_name() != "kizuna.v1.CommandMetadata" {
        return;
    }
    let Value::Message(command) = message.get_field_mut(&field) else {
        return;
    };
    let id_empty = matches!(
        command.get_field_by_name("command_id").as_deref(),
        Some(Value::String(s)) if s.is_empty()
    );
    if id_empty {
        let id = uuid::Uuid::now_v7().to_string();
        eprintln!("command_id: {id}");
        command.set_field_by_name("command_id", Value::String(id));
    }
}

/// The proto3 JSON of `message`, with field names as in the .proto and every
/// field shown, defaults included (a version 0 is a fact worth seeing).
pub fn to_json(message: &DynamicMessage) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    match message.serialize_with_options(&mut serializer, &options) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"error\":\"cannot render the response: {e}\"}}"),
    }
}

/// Runs `kizuna call`: prints each response message as one JSON line; an
/// error status is printed as JSON on stderr (code, message, field
/// violations, reason) with exit code 1.
pub async fn run(endpoint: &str, method: &str, json: &str) -> Result<ExitCode, CallError> {
    let method = find_method(method)?;
    let request = request_from_json(&method, json)?;
    let channel = connect_channel(endpoint).await?;
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
    grpc.ready()
        .await
        .map_err(|e| ClientError::Rpc(tonic::Status::unavailable(e.to_string())))?;
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/{}/{}", method.parent_service().full_name(), method.name())
            .parse()
            .map_err(|_| CallError::UnknownMethod(method.full_name().to_owned()))?;
    let codec = DynamicCodec {
        output: method.output(),
    };
    let result = if method.is_server_streaming() {
        match grpc
            .server_streaming(tonic::Request::new(request), path, codec)
            .await
        {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut outcome = Ok(());
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(m) => print_line(&to_json(&m)),
                        Err(status) => {
                            outcome = Err(status);
                            break;
                        }
                    }
                }
                outcome
            }
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(tonic::Request::new(request), path, codec)
            .await
            .map(|r| print_line(&to_json(r.get_ref())))
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(status) => {
            eprintln!("{}", status_json(&status));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// An error status as one JSON object: code, message, and the rich details
/// kizuna sends (field violations, reason code, resource).
pub fn status_json(status: &tonic::Status) -> String {
    let mut object = serde_json::Map::new();
    object.insert("code".into(), code_name(status.code()).into());
    object.insert("message".into(), status.message().into());
    if let Some(bad) = status.get_details_bad_request() {
        let violations: Vec<serde_json::Value> = bad
            .field_violations
            .iter()
            .map(|v| serde_json::json!({"field": v.field, "description": v.description}))
            .collect();
        object.insert("field_violations".into(), violations.into());
    }
    if let Some(info) = status.get_details_error_info() {
        object.insert("reason".into(), info.reason.into());
        if !info.metadata.is_empty() {
            object.insert("metadata".into(), serde_json::json!(info.metadata));
        }
    }
    if let Some(resource) = status.get_details_resource_info() {
        object.insert(
            "resource".into(),
            serde_json::json!({"type": resource.resource_type, "name": resource.resource_name}),
        );
    }
    serde_json::Value::Object(object).to_string()
}

/// Encodes and decodes messages known only by descriptor.
#[derive(Clone)]
struct DynamicCodec {
    output: MessageDescriptor,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            output: self.output.clone(),
        }
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("cannot encode the request: {e}")))
    }
}

struct DynamicDecoder {
    output: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.output.clone(), bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("cannot decode the response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_resolve_by_short_dotted_or_full_name() {
        for name in [
            "EventLog/Head",
            "EventLog.Head",
            "kizuna.v1.EventLog/Head",
            "/kizuna.v1.EventLog/Head",
        ] {
            assert_eq!(find_method(name).expect(name).name(), "Head");
        }
        assert!(matches!(
            find_method("EventLog/Nope"),
            Err(CallError::UnknownMethod(_))
        ));
        assert!(matches!(
            find_method("Nope"),
            Err(CallError::UnknownMethod(_))
        ));
        assert!(list_methods().contains(&"EventLog/ReadAll (stream)".to_owned()));
    }

    #[test]
    fn json_requests_are_checked_against_the_message() {
        let m = find_method("EventLog/ReadEvent").expect("ReadEvent");
        let r = request_from_json(&m, r#"{"event_id": "x"}"#).expect("valid JSON");
        assert_eq!(to_json(&r), r#"{"event_id":"x"}"#);
        assert!(matches!(
            request_from_json(&m, r#"{"no_such_field": 1}"#),
            Err(CallError::BadRequest { .. })
        ));
        assert!(matches!(
            request_from_json(&m, "{"),
            Err(CallError::BadRequest { .. })
        ));
    }

    #[test]
    fn error_statuses_render_their_details() {
        let mut details = tonic_types::ErrorDetails::new();
        details.add_bad_request_violation("contact.email", "bad");
        let status =
            tonic::Status::with_error_details(tonic::Code::InvalidArgument, "invalid", details);
        let json: serde_json::Value = serde_json::from_str(&status_json(&status)).expect("json");
        assert_eq!(json["code"], "INVALID_ARGUMENT");
        assert_eq!(json["field_violations"][0]["field"], "contact.email");
    }
}
