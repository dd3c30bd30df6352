//! Why a command was not accepted.
//!
//! Three kinds, because callers act on them differently: fix the request
//! (`InvalidArgument`, with the field), accept the business answer
//! (`Rejected`, with a stable reason code), or check the id (`NotFound`).
//! Services map each to one gRPC code in one place.

/// A command's rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the request is malformed or out of range (gRPC INVALID_ARGUMENT).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Path of the field in the request, e.g. `contact.email`.
        field: String,
        /// What is wrong, readable by the caller.
        reason: String,
    },
    /// A business rule forbids the command in the current state
    /// (gRPC FAILED_PRECONDITION with the reason in `google.rpc.ErrorInfo`).
    #[error("{message}")]
    Rejected {
        /// Stable UPPER_SNAKE_CASE code, e.g. `LEAD_ALREADY_CONVERTED`.
        reason: &'static str,
        /// Readable explanation.
        message: String,
    },
    /// The command would create something that already exists, e.g. a lead
    /// with a caller-chosen id that is taken (gRPC ALREADY_EXISTS).
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// What exists, e.g. `lead`.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The command names something that does not exist (gRPC NOT_FOUND).
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for, e.g. `lead`.
        kind: &'static str,
        /// The id as given.
        id: String,
    },
}

impl DomainError {
    /// An [`DomainError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`DomainError::Rejected`] with a stable `reason` code.
    pub fn rejected(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Rejected {
            reason,
            message: message.into(),
        }
    }

    /// A [`DomainError::NotFound`].
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// A [`DomainError::AlreadyExists`].
    pub fn already_exists(kind: &'static str, id: impl ToString) -> Self {
        Self::AlreadyExists {
            kind,
            id: id.to_string(),
        }
    }

    /// The same error with `prefix.` put before its field path (for
    /// [`DomainError::InvalidArgument`]; others are returned unchanged), so a
    /// validator of a nested message can name fields relative to it.
    #[must_use]
    pub fn in_field(self, prefix: &str) -> Self {
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }
}
