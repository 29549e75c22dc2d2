//! The client error type and its classification.
//!
//! Every failure a client can meet (bad flags, an unreadable config, an unreachable server, a
//! gRPC status) becomes an [`Error`] whose `Display` is one human line and whose
//! [`ErrorKind`] decides, for the CLI, the exit code.

use pressluft_proto::v1::ErrorReason;
use std::path::PathBuf;

use tonic::Code;
use tonic_types::StatusExt as _;

/// What kind of failure an [`Error`] is; the CLI maps each kind to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or the local invocation was wrong (bad flag, invalid argument).
    Usage,
    /// Missing, invalid or expired credentials, or not allowed.
    Auth,
    /// The named resource does not exist.
    NotFound,
    /// A state guard refused the request (busy, wrong state, version conflict, duplicate).
    Conflict,
    /// The server (or a node behind it) cannot be reached right now.
    Unavailable,
    /// Anything else.
    Other,
}

/// A failure of a client operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a gRPC error.
    #[error("{message}")]
    Rpc {
        /// Classification of the status code and reason.
        kind: ErrorKind,
        /// The gRPC status code.
        code: Code,
        /// The stable machine-readable reason from the `ErrorInfo` detail, if any.
        reason: Option<String>,
        /// One-line human message.
        message: String,
    },
    /// No connection to the server could be established.
    #[error("cannot connect to {server}: {detail}")]
    Connect {
        /// The server URL.
        server: String,
        /// Why, one line.
        detail: String,
    },
    /// The server address is not an `http://` or `https://` URL.
    #[error("invalid server address `{server}`: {detail}")]
    InvalidServer {
        /// What was given.
        server: String,
        /// Why it is rejected.
        detail: String,
    },
    /// The token contains characters that cannot travel in gRPC metadata.
    #[error("invalid token: it must be printable ASCII")]
    InvalidToken,
    /// A context was named that the config file does not define.
    #[error("context `{name}` is not defined in {}", path.display())]
    UnknownContext {
        /// The context name.
        name: String,
        /// The config file consulted.
        path: PathBuf,
    },
    /// No config file location is known (no `PRESSLUFT_CONFIG`, no config directory).
    #[error("no config file location: set PRESSLUFT_CONFIG")]
    NoConfigPath,
    /// The config file could not be read or written.
    #[error("config file {}: {source}", path.display())]
    ConfigIo {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("config file {}: {detail}", path.display())]
    ConfigInvalid {
        /// The config file.
        path: PathBuf,
        /// The parse error, one line.
        detail: String,
    },
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Rpc { kind, .. } => *kind,
            Error::Connect { .. } => ErrorKind::Unavailable,
            Error::InvalidServer { .. }
            | Error::InvalidToken
            | Error::UnknownContext { .. }
            | Error::NoConfigPath
            | Error::ConfigInvalid { .. } => ErrorKind::Usage,
            Error::ConfigIo { .. } => ErrorKind::Other,
        }
    }

    /// The gRPC status code, for errors the server returned.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The stable reason from the server's `ErrorInfo` detail as sent (e.g. `SITE_BUSY`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Rpc { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// The reason as the contract's enum (`None` for none, or one this client does not know).
    pub fn error_reason(&self) -> Option<ErrorReason> {
        self.reason().and_then(ErrorReason::from_wire_name)
    }

    /// Builds a [`Error::Connect`] from a transport error, flattening its source chain into
    /// one line.
    pub(crate) fn connect(server: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        Error::Connect {
            server: server.to_owned(),
            detail: join_causes(String::new(), Some(err)),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let reason = status
            .get_details_error_info()
            .map(|info| info.reason)
            .filter(|reason| !reason.is_empty());
        let code = status.code();
        let kind = kind_of(code, reason.as_deref());
        // Transport failures on a lazy channel carry their cause ("connection refused") only
        // in the source chain.
        let mut message = join_causes(
            one_line(status.message()),
            std::error::Error::source(&status),
        );
        if message.is_empty() {
            code.description().clone_into(&mut message);
        }
        if let Some(reason) = &reason {
            message = format!("{message} ({reason})");
        }
        Error::Rpc {
            kind,
            code,
            reason,
            message,
        }
    }
}

/// Classifies a status code; the reason refines codes whose meaning depends on it.
fn kind_of(code: Code, reason: Option<&str>) -> ErrorKind {
    // A node the server cannot reach is "unavailable" whatever code carried it.
    if reason.and_then(ErrorReason::from_wire_name) == Some(ErrorReason::NodeUnreachable) {
        return ErrorKind::Unavailable;
    }
    // No `_` arm: a new code must be classified on purpose.
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::Usage,
        Code::Unauthenticated | Code::PermissionDenied => ErrorKind::Auth,
        Code::NotFound => ErrorKind::NotFound,
        Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => ErrorKind::Conflict,
        Code::Unavailable | Code::DeadlineExceeded => ErrorKind::Unavailable,
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::ResourceExhausted
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => ErrorKind::Other,
    }
}

/// Appends an error chain to `first` with ": ", on one line, skipping texts already said and
/// tonic's "transport error" wrapper, which names no cause.
fn join_causes(first: String, mut next: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut parts = vec![first];
    while let Some(err) = next {
        let text = one_line(&err.to_string());
        if !text.is_empty()
            && text != "transport error"
            && !parts.iter().any(|part| part.contains(&text))
        {
            parts.push(text);
        }
        next = err.source();
    }
    parts.retain(|part| !part.is_empty());
    parts.join(": ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::*;

    fn status_with_reason(code: Code, message: &str, reason: &str) -> tonic::Status {
        tonic::Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, "pressluft.v1", []),
        )
    }

    #[test]
    fn status_with_reason_is_one_line_with_the_reason() {
        let err = Error::from(status_with_reason(
            Code::FailedPrecondition,
            "site is busy:\n another job runs",
            "SITE_BUSY",
        ));
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(err.reason(), Some("SITE_BUSY"));
        assert_eq!(err.code(), Some(Code::FailedPrecondition));
        assert_eq!(
            err.to_string(),
            "site is busy: another job runs (SITE_BUSY)"
        );
    }

    #[test]
    fn codes_map_to_kinds() {
        let cases = [
            (Code::InvalidArgument, ErrorKind::Usage),
            (Code::Unauthenticated, ErrorKind::Auth),
            (Code::PermissionDenied, ErrorKind::Auth),
            (Code::NotFound, ErrorKind::NotFound),
            (Code::FailedPrecondition, ErrorKind::Conflict),
            (Code::Aborted, ErrorKind::Conflict),
            (Code::AlreadyExists, ErrorKind::Conflict),
            (Code::Unavailable, ErrorKind::Unavailable),
            (Code::DeadlineExceeded, ErrorKind::Unavailable),
            (Code::Internal, ErrorKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(
                Error::from(tonic::Status::new(code, "x")).kind(),
                kind,
                "{code:?}"
            );
        }
    }

    #[test]
    fn node_unreachable_is_unavailable_whatever_the_code() {
        let err = Error::from(status_with_reason(
            Code::FailedPrecondition,
            "node web-1 is unreachable",
            "NODE_UNREACHABLE",
        ));
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn empty_message_falls_back_to_the_code_description() {
        let err = Error::from(tonic::Status::new(Code::NotFound, ""));
        assert_eq!(err.to_string(), Code::NotFound.description());
        assert_eq!(err.reason(), None);
    }
}
