//! Assertions on the error statuses every service returns (see
//! docs/commands.md): what a client team checks to tell a bad field from a
//! business refusal. Shared by every service's gRPC tests.

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Asserts INVALID_ARGUMENT whose `google.rpc.BadRequest` names `field`
/// first (its path in the request, e.g. `contact.email`), with the
/// `ErrorInfo` reason `INVALID_ARGUMENT`.
#[track_caller]
pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no google.rpc.BadRequest in {status:?}"));
    assert_eq!(
        bad.field_violations.first().map(|v| v.field.as_str()),
        Some(field),
        "{status:?}"
    );
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no google.rpc.ErrorInfo in {status:?}"));
    assert_eq!(info.reason, "INVALID_ARGUMENT", "{status:?}");
}

/// Asserts FAILED_PRECONDITION with `reason` in `google.rpc.ErrorInfo`.
#[track_caller]
pub fn assert_rejected(status: &Status, reason: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no google.rpc.ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
}
