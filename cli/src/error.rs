//! The CLI's error: one line for stderr, an optional hint, and an exit code.

use std::fmt;

use pressluft_client::{Error, ErrorKind};

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

impl CliError {
    /// A mistake in how the command was called (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Usage,
            message: message.into(),
            hint: None,
        }
    }

    /// Missing credentials (exit code 3).
    pub fn auth(message: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Auth,
            message: message.into(),
            hint: Some("run `pressluft login`".to_owned()),
        }
    }

    /// A local failure that fits no other kind (exit code 1).
    pub fn other(message: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Other,
            message: message.into(),
            hint: None,
        }
    }

    /// Replaces the hint.
    pub fn with_hint(mut self, hint: Option<&str>) -> Self {
        self.hint = hint.map(str::to_owned);
        self
    }

    /// A suggestion printed after the error, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.kind)
    }
}

/// Exit codes: 0 ok, 1 other, 2 usage, 3 auth, 4 not found, 5 conflict, 6 unavailable.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Other => 1,
        ErrorKind::Usage => 2,
        ErrorKind::Auth => 3,
        ErrorKind::NotFound => 4,
        ErrorKind::Conflict => 5,
        ErrorKind::Unavailable => 6,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        let hint = match &err {
            Error::Connect { .. } => {
                Some("is the server running? point --server or PRESSLUFT_SERVER at it")
            }
            Error::UnknownContext { .. } => Some("list contexts with `pressluft context list`"),
            _ if err.kind() == ErrorKind::Auth => Some("run `pressluft login`"),
            _ => None,
        };
        CliError {
            kind: err.kind(),
            message: err.to_string(),
            hint: hint.map(str::to_owned),
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Error::from(status).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_documented_exit_codes() {
        let cases = [
            (tonic::Code::Internal, 1),
            (tonic::Code::InvalidArgument, 2),
            (tonic::Code::Unauthenticated, 3),
            (tonic::Code::NotFound, 4),
            (tonic::Code::FailedPrecondition, 5),
            (tonic::Code::Aborted, 5),
            (tonic::Code::Unavailable, 6),
        ];
        for (code, exit) in cases {
            let err = CliError::from(tonic::Status::new(code, "boom"));
            assert_eq!(err.exit_code(), exit, "{code:?}");
        }
    }

    #[test]
    fn auth_errors_hint_at_login() {
        let err = CliError::from(tonic::Status::unauthenticated("token expired"));
        assert_eq!(err.to_string(), "token expired");
        assert_eq!(err.hint(), Some("run `pressluft login`"));
        assert_eq!(CliError::usage("bad").hint(), None);
    }
}
