//! The server's one error type and its one exhaustive mapping to `tonic::Status`.
//!
//! Every status carries a `google.rpc.ErrorInfo` detail whose `reason` is a stable,
//! machine-readable code ([`Reason`]). Internal errors are logged with their detail and
//! answered with a fixed message: SQL, paths and secrets never reach a client.

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::model::IllegalTransition;
use crate::model::validate::Invalid;

/// Domain of the ErrorInfo details.
pub const ERROR_DOMAIN: &str = "pressluft.v1";

/// Stable machine-readable error reasons (the ErrorInfo `reason`), defined by the contract
/// (`ErrorReason` in proto/pressluft/v1/errors.proto) and sent as [`Reason::wire_name`].
pub use pressluft_proto::v1::ErrorReason as Reason;

/// Errors of the server crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The named resource does not exist.
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// A unique name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource changed since the client read it.
    #[error("{resource} version conflict: expected {expected}, current {actual}")]
    VersionConflict {
        resource: &'static str,
        expected: i64,
        actual: i64,
    },
    /// A state guard refused the request.
    #[error("{message}")]
    Precondition { reason: Reason, message: String },
    /// Missing, unknown, expired or revoked credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many failed logins.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A user's stored uploads would pass their quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The node could not be reached over SSH.
    #[error("node unreachable: {0}")]
    NodeUnreachable(String),
    /// A node query exceeded its time cap.
    #[error("node query exceeded {0} s")]
    Deadline(u64),
    /// The RPC exists in the contract but its execution lands in a later release.
    #[error("{0}")]
    Unimplemented(&'static str),
    /// A database error (logged, never shown).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Anything else that is our fault (logged, never shown).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result of the server crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A not-found error for `resource` with `id`.
    pub fn not_found(resource: &'static str, id: &impl ToString) -> Self {
        Self::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    /// A failed-precondition error.
    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
        }
    }

    /// An internal error from anything displayable.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

impl From<crate::model::guard::Refusal> for Error {
    fn from(refusal: crate::model::guard::Refusal) -> Self {
        Self::precondition(refusal.reason, refusal.message)
    }
}

impl From<IllegalTransition> for Error {
    fn from(e: IllegalTransition) -> Self {
        Self::precondition(Reason::IllegalStateTransition, e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        // Exhaustive on purpose: a new variant must decide its code and reason here.
        let (code, reason, message) = match &error {
            Error::Invalid(e) => (
                Code::InvalidArgument,
                Reason::InvalidArgument,
                e.to_string(),
            ),
            Error::NotFound { .. } => (Code::NotFound, Reason::NotFound, error.to_string()),
            Error::AlreadyExists(m) => (Code::AlreadyExists, Reason::AlreadyExists, m.clone()),
            Error::VersionConflict { .. } => {
                (Code::Aborted, Reason::VersionConflict, error.to_string())
            }
            Error::Precondition { reason, message } => {
                (Code::FailedPrecondition, *reason, message.clone())
            }
            Error::Unauthenticated(m) => (
                Code::Unauthenticated,
                Reason::Unauthenticated,
                (*m).to_owned(),
            ),
            Error::RateLimited { .. } => (
                Code::ResourceExhausted,
                Reason::LoginRateLimited,
                error.to_string(),
            ),
            Error::QuotaExceeded(m) => (
                Code::ResourceExhausted,
                Reason::UploadQuotaExceeded,
                m.clone(),
            ),
            Error::NodeUnreachable(_) => (
                Code::Unavailable,
                Reason::NodeUnreachable,
                error.to_string(),
            ),
            Error::Deadline(_) => (
                Code::DeadlineExceeded,
                Reason::NodeQueryTimeout,
                error.to_string(),
            ),
            Error::Unimplemented(m) => {
                (Code::Unimplemented, Reason::NotImplemented, (*m).to_owned())
            }
            Error::Database(e) => {
                tracing::error!(error = %e, "database error");
                (
                    Code::Internal,
                    Reason::Internal,
                    "internal error".to_owned(),
                )
            }
            Error::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (
                    Code::Internal,
                    Reason::Internal,
                    "internal error".to_owned(),
                )
            }
        };
        let mut details = ErrorDetails::with_error_info(
            reason.wire_name(),
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        );
        if let Error::Invalid(e) = &error {
            details.add_bad_request_violation(e.field, e.message.clone());
        }
        tonic::Status::with_error_details(code, message, details)
    }
}

impl From<Invalid> for tonic::Status {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_leak_detail() {
        let status: tonic::Status = Error::Database(sqlx::Error::Protocol(
            "SELECT secret FROM /var/lib/x".into(),
        ))
        .into();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let status: tonic::Status = Error::internal("/etc/shadow password=hunter2").into();
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn every_status_carries_its_reason() {
        let status: tonic::Status = Error::precondition(Reason::SiteBusy, "busy").into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "SITE_BUSY");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }
}
