//! The metadata every command carries, validated once for every service.

use kizuna_domain::DomainError;
use kizuna_proto::v1 as pb;
use prost_types::Timestamp;
use uuid::Uuid;

/// Longest accepted `actor` and `correlation_id`, in bytes.
pub const MAX_ACTOR_BYTES: usize = 256;

/// A command's validated metadata (`kizuna.v1.CommandMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMeta {
    /// The idempotency key of the command.
    pub command_id: Uuid,
    /// Who issued it.
    pub actor: String,
    /// Groups the events of one business request; the command id when not given.
    pub correlation_id: String,
    /// Business time given by the caller, if any.
    pub occurred_at: Option<Timestamp>,
    /// The caller's expectation on the command's primary stream.
    pub expected_version: Option<u64>,
    /// W3C `traceparent` of the request, stored in event metadata.
    pub traceparent: String,
}

impl CommandMeta {
    /// Metadata for `command_id` with nothing else set (tests, internal callers).
    pub fn new(command_id: Uuid) -> Self {
        Self {
            command_id,
            actor: String::new(),
            correlation_id: command_id.to_string(),
            occurred_at: None,
            expected_version: None,
            traceparent: String::new(),
        }
    }

    /// Validates the request's `command` field (named `field` in errors,
    /// usually `"command"`). `traceparent` comes from the request headers.
    pub fn from_proto(
        meta: Option<pb::CommandMetadata>,
        field: &str,
        traceparent: String,
    ) -> Result<Self, DomainError> {
        let meta = meta.ok_or_else(|| {
            DomainError::invalid(field, "is required (it carries the command_id)")
        })?;
        let id_field = format!("{field}.command_id");
        if meta.command_id.is_empty() {
            return Err(DomainError::invalid(
                id_field,
                "is required: a UUID chosen by the caller, the same for every retry",
            ));
        }
        let command_id = Uuid::try_parse(&meta.command_id).map_err(|e| {
            DomainError::invalid(
                &id_field,
                format!("{:?} is not a UUID: {e}", meta.command_id),
            )
        })?;
        if command_id.is_nil() {
            return Err(DomainError::invalid(
                id_field,
                "the nil UUID is not allowed",
            ));
        }
        for (name, value) in [
            ("actor", &meta.actor),
            ("correlation_id", &meta.correlation_id),
        ] {
            if value.len() > MAX_ACTOR_BYTES {
                return Err(DomainError::invalid(
                    format!("{field}.{name}"),
                    format!(
                        "is {} bytes, over the maximum of {MAX_ACTOR_BYTES}",
                        value.len()
                    ),
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    format!("{field}.{name}"),
                    "must not contain control characters",
                ));
            }
        }
        if let Some(t) = &meta.occurred_at
            && !(0..1_000_000_000).contains(&t.nanos)
        {
            return Err(DomainError::invalid(
                format!("{field}.occurred_at"),
                "nanos must be within 0..1e9",
            ));
        }
        Ok(Self {
            command_id,
            correlation_id: if meta.correlation_id.is_empty() {
                command_id.to_string()
            } else {
                meta.correlation_id
            },
            actor: meta.actor,
            occurred_at: meta.occurred_at,
            expected_version: meta.expected_version,
            traceparent,
        })
    }
}

impl CommandMeta {
    /// [`CommandMeta::from_proto`] for a gRPC handler: the request's
    /// `command` field and headers in, a ready status out on failure.
    pub fn from_request(
        command: Option<pb::CommandMetadata>,
        headers: &tonic::metadata::MetadataMap,
    ) -> Result<Self, tonic::Status> {
        Self::from_proto(command, "command", traceparent_of(headers))
            .map_err(crate::error::domain_status)
    }

    /// Refuses a caller's `occurred_at`: for commands whose rules compare
    /// "now" with an expiry or a window (spending points, redeeming a
    /// coupon, sending a campaign), "now" is the server's clock, or a
    /// backdated request could redeem an expired coupon or send after a
    /// campaign closed. INVALID_ARGUMENT on `command.occurred_at`.
    pub fn at_server_time(self) -> Result<Self, tonic::Status> {
        if self.occurred_at.is_some() {
            return Err(crate::error::domain_status(DomainError::invalid(
                "command.occurred_at",
                "is not accepted by this command: it is decided at the server's time",
            )));
        }
        Ok(self)
    }
}

/// The `traceparent` header of a request, or empty.
pub fn traceparent_of(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> pb::CommandMetadata {
        pb::CommandMetadata {
            command_id: id.into(),
            ..Default::default()
        }
    }

    fn field_of(r: Result<CommandMeta, DomainError>) -> String {
        match r {
            Err(DomainError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn command_id_is_required_and_must_be_a_real_uuid() {
        assert_eq!(
            field_of(CommandMeta::from_proto(None, "command", String::new())),
            "command"
        );
        for bad in ["", "nope", "00000000-0000-0000-0000-000000000000"] {
            assert_eq!(
                field_of(CommandMeta::from_proto(
                    Some(meta(bad)),
                    "command",
                    String::new()
                )),
                "command.command_id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn actor_is_bounded_and_correlation_defaults_to_the_command_id() {
        let id = Uuid::now_v7();
        let mut m = meta(&id.to_string());
        m.actor = "x".repeat(MAX_ACTOR_BYTES + 1);
        assert_eq!(
            field_of(CommandMeta::from_proto(Some(m), "command", String::new())),
            "command.actor"
        );
        let ok = CommandMeta::from_proto(Some(meta(&id.to_string())), "command", "tp".into())
            .expect("valid");
        assert_eq!(ok.correlation_id, id.to_string());
        assert_eq!(ok.traceparent, "tp");
    }
}
