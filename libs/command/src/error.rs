//! Every way a command can fail, and the one mapping to gRPC status.

use kizuna_domain::{DecodeError, DomainError};
use kizuna_eventlog::StoreError;
use kizuna_eventlog_grpc::status_from_store_error;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The `google.rpc.ErrorInfo` domain of kizuna's business-rule errors.
const ERROR_DOMAIN: &str = "kizuna.v1";

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The request or a business rule said no.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The log said no (conflict, limits) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be read back as its aggregate's event.
    #[error("event {position} of {stream} cannot be read: {source}")]
    Unreadable {
        /// The stream.
        stream: String,
        /// Global position of the event.
        position: u64,
        /// Why.
        source: DecodeError,
    },
    /// A stream holds an event type its aggregate does not know.
    #[error("event {position} of {stream} has type {event_type}, unknown to its aggregate")]
    UnknownEventType {
        /// The stream.
        stream: String,
        /// Global position of the event.
        position: u64,
        /// The type found.
        event_type: String,
    },
}

/// A domain error (usually a request field that failed validation) as its
/// gRPC status, through the one mapping below.
pub fn domain_status(e: DomainError) -> Status {
    Status::from(CommandError::Domain(e))
}

impl CommandError {
    /// The command id was first used by a command of another kind, whose
    /// result cannot answer this request: INVALID_ARGUMENT on
    /// `command.command_id` (a retry must resend the very same command).
    pub fn reused_command_id() -> Self {
        Self::Domain(DomainError::invalid(
            "command.command_id",
            "was used by an earlier command of another kind; a retry must resend the same command",
        ))
    }
}

impl From<CommandError> for Status {
    fn from(e: CommandError) -> Self {
        let message = e.to_string();
        match e {
            CommandError::Domain(DomainError::InvalidArgument { field, reason }) => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, reason);
                details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            CommandError::Domain(DomainError::Rejected { reason, .. }) => {
                let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            CommandError::Domain(DomainError::NotFound { kind, id }) => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(kind, id, "", "");
                details.set_error_info("NOT_FOUND", ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::NotFound, message, details)
            }
            CommandError::Domain(DomainError::AlreadyExists { kind, id }) => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(kind, id, "", "");
                details.set_error_info("ALREADY_EXISTS", ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            CommandError::Store(e) => status_from_store_error(e),
            CommandError::Unreadable { .. } | CommandError::UnknownEventType { .. } => {
                let details =
                    ErrorDetails::with_error_info("UNREADABLE_EVENT", ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::Internal, message, details)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_its_code_with_details() {
        let s = Status::from(CommandError::Domain(DomainError::invalid(
            "contact.email",
            "bad",
        )));
        assert_eq!(s.code(), Code::InvalidArgument);
        let bad = s.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, "contact.email");

        let s = Status::from(CommandError::Domain(DomainError::rejected(
            "LEAD_ALREADY_CONVERTED",
            "the lead is converted",
        )));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.get_details_error_info().expect("ErrorInfo").reason,
            "LEAD_ALREADY_CONVERTED"
        );

        let s = Status::from(CommandError::Domain(DomainError::not_found("lead", "x")));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(
            s.get_details_resource_info()
                .expect("ResourceInfo")
                .resource_type,
            "lead"
        );

        let s = Status::from(CommandError::Store(StoreError::WrongExpectedVersion {
            stream: "lead-1".into(),
            expected: kizuna_eventlog::ExpectedVersion::Exact(1),
            actual: Some(2),
        }));
        assert_eq!(s.code(), Code::Aborted);
    }
}
