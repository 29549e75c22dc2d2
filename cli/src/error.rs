//! The CLI's error: one line for stderr, an optional hint, and an exit code.
//!
//! Exit codes: 0 ok, 1 other, 2 usage, 3 auth, 4 not found, 5 conflict or failed
//! precondition, 6 server or node unavailable, 7 the followed job failed or was cancelled
//! (`--wait`, `job watch`, `job logs --follow`), 130 stopped watching with Ctrl-C.

use pressluft_proto::v1::ErrorReason;
use std::fmt;

use pressluft_client::{Error, ErrorKind};

/// Exit code when a followed job failed or was cancelled.
pub const EXIT_JOB_FAILED: u8 = 7;
/// Exit code after Ctrl-C stopped a watch (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    kind: Kind,
    message: String,
    hint: Option<String>,
}

/// What failed; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A client error (connection, RPC status, config).
    Client(ErrorKind),
    /// The command worked, but the job it followed failed or was cancelled.
    JobFailed,
    /// Ctrl-C stopped a watch; the message is printed as it is, without "error: ".
    Interrupted,
}

impl CliError {
    /// A mistake in how the command was called (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Client(ErrorKind::Usage),
            message: message.into(),
            hint: None,
        }
    }

    /// Missing credentials (exit code 3).
    pub fn auth(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Client(ErrorKind::Auth),
            message: message.into(),
            hint: Some("run `pressluft login`".to_owned()),
        }
    }

    /// A local failure that fits no other kind (exit code 1).
    pub fn other(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Client(ErrorKind::Other),
            message: message.into(),
            hint: None,
        }
    }

    /// The server cannot be reached, or stopped answering (exit code 6).
    pub fn unavailable(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Client(ErrorKind::Unavailable),
            message: message.into(),
            hint: None,
        }
    }

    /// A followed job failed or was cancelled (exit code 7).
    pub fn job_failed(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::JobFailed,
            message: message.into(),
            hint: None,
        }
    }

    /// Ctrl-C stopped watching (exit code 130); `message` is printed as it is.
    pub fn interrupted(message: impl Into<String>) -> Self {
        CliError {
            kind: Kind::Interrupted,
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
        match self.kind {
            Kind::Client(kind) => exit_code(kind),
            Kind::JobFailed => EXIT_JOB_FAILED,
            Kind::Interrupted => EXIT_INTERRUPTED,
        }
    }

    /// What to print on stderr: "error: <message>", then "hint: <hint>" if any; an
    /// interruption is its message alone (it is not an error of the command).
    pub fn report(&self) -> String {
        let mut text = match self.kind {
            Kind::Interrupted => format!("{}\n", self.message),
            Kind::Client(_) | Kind::JobFailed => format!("error: {}\n", self.message),
        };
        if let Some(hint) = self.hint() {
            text.push_str("hint: ");
            text.push_str(hint);
            text.push('\n');
        }
        text
    }
}

/// Exit codes of client errors: 1 other, 2 usage, 3 auth, 4 not found, 5 conflict,
/// 6 unavailable. (7 and 130 belong to following jobs; see [`CliError::exit_code`].)
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
            // rustls says "invalid peer certificate: ..." when the TLS handshake is refused.
            Error::Connect { detail, .. } if detail.contains("certificate") => Some(
                "the server's certificate is not trusted for that name: use the name it was \
                 issued for in --server, or name a private CA's file in SSL_CERT_FILE",
            ),
            Error::Connect { .. } => {
                Some("is the server running? point --server or PRESSLUFT_SERVER at it")
            }
            Error::UnknownContext { .. } => Some("list contexts with `pressluft context list`"),
            _ if err.kind() == ErrorKind::Auth => Some("run `pressluft login`"),
            _ => err.error_reason().and_then(reason_hint),
        };
        CliError {
            kind: Kind::Client(err.kind()),
            message: err.to_string(),
            hint: hint.map(str::to_owned),
        }
    }
}

/// What to do about a refusal, by the server's reason code.
fn reason_hint(reason: ErrorReason) -> Option<&'static str> {
    Some(match reason {
        ErrorReason::SiteBusy => {
            "wait for that job (`pressluft job watch ID`) or cancel it (`pressluft job cancel ID`)"
        }
        ErrorReason::EnvironmentNotActive => {
            "see `pressluft env show ID`; a failed environment is re-checked with `pressluft env reset ID`"
        }
        ErrorReason::EnvironmentNotFailed => "only a failed environment needs a reset",
        ErrorReason::BackupTargetMissing => "set one with `pressluft settings backup-target`",
        ErrorReason::NodeNotReady => {
            "provision the node first: `pressluft node provision ID --wait`"
        }
        ErrorReason::NodeHasEnvironments => "delete the sites on it first",
        ErrorReason::NoDefaultNode => {
            "pass --node, or set a default: `pressluft settings set --default-node ID`"
        }
        ErrorReason::VersionConflict => "it changed meanwhile: look at it again and retry",
        ErrorReason::DnsMismatch => {
            "point the name's A/AAAA record at the node's public IP, or pass --skip-dns-check for a private setup"
        }
        ErrorReason::NoDriftBaseline => {
            "clone a staging from production first: `pressluft env clone ID --name staging`"
        }
        ErrorReason::HostKeyMismatch => {
            "if the node was reinstalled, pin its new key: `pressluft node update ID --host-key KEY`"
        }
        ErrorReason::LoginRateLimited => "too many failed logins: wait a few minutes",
        ErrorReason::ProductionEnvironment => {
            "production goes with its site: `pressluft site delete ID`"
        }
        _ => return None,
    })
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
    fn refusals_say_what_to_do() {
        use tonic_types::StatusExt as _;
        let status = tonic::Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "no backup target",
            tonic_types::ErrorDetails::with_error_info("BACKUP_TARGET_MISSING", "pressluft", []),
        );
        let err = CliError::from(status);
        assert_eq!(err.exit_code(), 5);
        assert_eq!(
            err.hint(),
            Some("set one with `pressluft settings backup-target`")
        );
    }

    #[test]
    fn auth_errors_hint_at_login() {
        let err = CliError::from(tonic::Status::unauthenticated("token expired"));
        assert_eq!(err.to_string(), "token expired");
        assert_eq!(err.hint(), Some("run `pressluft login`"));
        assert_eq!(CliError::usage("bad").hint(), None);
    }

    #[test]
    fn job_outcomes_and_interruptions_have_their_own_exit_codes() {
        let failed = CliError::job_failed("job j1 failed: PLAYBOOK_FAILED: boom")
            .with_hint(Some("see its output with `pressluft job logs j1`"));
        assert_eq!(failed.exit_code(), 7);
        assert_eq!(
            failed.report(),
            "error: job j1 failed: PLAYBOOK_FAILED: boom\n\
             hint: see its output with `pressluft job logs j1`\n"
        );
        let stopped = CliError::interrupted("stopped watching");
        assert_eq!(stopped.exit_code(), 130);
        assert_eq!(stopped.report(), "stopped watching\n");
        assert_eq!(CliError::unavailable("gone").exit_code(), 6);
    }
}
