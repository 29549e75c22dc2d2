//! Runs `ansible-playbook` as a subprocess, one playbook per job type.
//!
//! Per attempt: a private temp dir (0700) holds a one-host inventory built from the database,
//! the extra-vars JSON (0600; no user value ever reaches the command line), a known_hosts file
//! with the node's pinned key (StrictHostKeyChecking=yes) and a copy of the control plane's
//! key. The playbook runs in its own process group so cancel and timeout reach the `ssh`
//! children Ansible forks: SIGTERM, a grace period, then SIGKILL.

use std::collections::VecDeque;
use std::future::Future;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::untrusted::untrusted_json;
use super::{ExecEvent, Executor, JobSpec, Outcome, Redactor, StopSignals, parse_line};
use crate::model::JobKind;
use crate::model::report::JobReport;

/// Settings of the Ansible executor.
#[derive(Debug, Clone)]
pub struct AnsibleConfig {
    /// Directory with `ansible.cfg` and one `<job type>.yml` per job type.
    pub playbooks_dir: PathBuf,
    /// The `ansible-playbook` program (from PATH by default).
    pub program: PathBuf,
    /// The control plane's SSH private key.
    pub ssh_key: PathBuf,
    /// Time between SIGTERM and SIGKILL when stopping a playbook.
    pub kill_grace: Duration,
    /// Output lines stored per attempt; later lines are counted, not stored.
    pub max_log_lines: usize,
}

/// Runs job playbooks with `ansible-playbook`.
#[derive(Debug, Clone)]
pub struct AnsibleExecutor {
    config: AnsibleConfig,
}

/// Lines kept for a failed job's error message.
const TAIL_LINES: usize = 15;
/// Longest stored line.
const MAX_LINE: usize = 4000;
/// Event lines carry results (a drift fingerprint holds every option's hash): a larger cap.
const MAX_EVENT_LINE: usize = 1 << 20;

impl AnsibleExecutor {
    pub fn new(config: AnsibleConfig) -> Self {
        Self { config }
    }

    /// The `ansible-playbook` command for one attempt; only paths we created are arguments.
    fn command(&self, spec: &JobSpec, playbook: &Path, dir: &Path, event_token: &str) -> Command {
        let mut command = Command::new(&self.config.program);
        command
            .arg("-i")
            .arg(dir.join("inventory.json"))
            .arg("--extra-vars")
            .arg(format!("@{}", dir.join("vars.json").display()))
            .arg(playbook)
            .current_dir(&self.config.playbooks_dir)
            .env(
                "ANSIBLE_CONFIG",
                self.config.playbooks_dir.join("ansible.cfg"),
            )
            // SSH masters are private to the attempt: killing its process group must never cut
            // a connection another job is using.
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", dir.join("cp"))
            .env("ANSIBLE_LOCAL_TEMP", dir.join("tmp"))
            // Only the callback knows it: output that merely looks like an event is a log line.
            .env("PRESSLUFT_EVENT_TOKEN", event_token)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("PYTHONUNBUFFERED", "1")
            // Python's own warnings (a library in the venv deprecating something, such as
            // cryptography's DSA notice) are not the job's output; Ansible's warnings are
            // printed by Ansible and stay.
            .env("PYTHONWARNINGS", "ignore")
            // The playbooks directory may be read-only (installed) or a checkout: no .pyc files.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // Marks the process tree so crash recovery can find an orphaned run.
            .env("PRESSLUFT_JOB_ID", spec.job_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        command
    }

    async fn run_attempt(
        &self,
        spec: JobSpec,
        events: mpsc::Sender<ExecEvent>,
        stop: StopSignals,
    ) -> Outcome {
        let playbook = self.config.playbooks_dir.join(format!("{}.yml", spec.kind));
        if !playbook.is_file() {
            return final_failure(
                "PLAYBOOK_MISSING",
                format!("there is no playbook for job type {} yet", spec.kind),
            );
        }
        let dir = match prepare_dir(&self.config, &spec) {
            Ok(dir) => dir,
            Err(e) => {
                return final_failure(
                    "EXECUTOR_SETUP_FAILED",
                    format!("preparing the job directory: {e}"),
                );
            }
        };
        // A fresh secret per attempt, known to the callback plugin only (see events.rs).
        let event_token = uuid::Uuid::new_v4().simple().to_string();
        let mut command = self.command(&spec, &playbook, dir.path(), &event_token);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return final_failure(
                    "ANSIBLE_NOT_FOUND",
                    format!("cannot start {}: {e}", self.config.program.display()),
                );
            }
        };
        let pid = child.id().unwrap_or_default();
        let _ = events.send(ExecEvent::Spawned { pid }).await;

        // Merge stdout and stderr into one ordered-enough line stream.
        let (line_tx, mut lines) = mpsc::channel::<String>(256);
        for reader in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = line_tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(reader).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if tx.send(line).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(line_tx);

        let redactor = Redactor::new(&spec.secrets);
        let mut output = OutputState::new(spec.kind, self.config.max_log_lines, event_token);
        let deadline = tokio::time::sleep(spec.timeout);
        tokio::pin!(deadline);
        let mut stopped: Option<Outcome> = None;
        let status = loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => output.handle(&redactor.redact(&line), &events).await,
                    None => break child.wait().await,
                },
                () = &mut deadline, if stopped.is_none() => {
                    stopped = Some(Outcome::TimedOut);
                    terminate(pid, self.config.kill_grace, &mut child).await;
                }
                () = stop.cancel.cancelled(), if stopped.is_none() => {
                    stopped = Some(Outcome::Cancelled);
                    terminate(pid, self.config.kill_grace, &mut child).await;
                }
                () = stop.shutdown.cancelled(), if stopped.is_none() => {
                    stopped = Some(Outcome::Interrupted);
                    terminate(pid, self.config.kill_grace, &mut child).await;
                }
            }
        };
        // Whatever happened, nothing of this run may outlive it (SSH masters included).
        kill_group(pid, Signal::SIGKILL);
        drop(dir);
        if let Some(outcome) = stopped {
            return outcome;
        }
        let code = match status {
            Ok(status) => status.code(),
            Err(e) => {
                return final_failure(
                    "EXECUTOR_FAILED",
                    format!("waiting for ansible-playbook: {e}"),
                );
            }
        };
        output.outcome(code)
    }
}

impl Executor for AnsibleExecutor {
    fn run<'a>(
        &'a self,
        spec: JobSpec,
        events: mpsc::Sender<ExecEvent>,
        stop: StopSignals,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(self.run_attempt(spec, events, stop))
    }
}

/// What the executor learned from the output so far.
struct OutputState {
    stored: usize,
    dropped: usize,
    max_lines: usize,
    tail: VecDeque<String>,
    /// The job's type, which says what its report holds.
    kind: JobKind,
    result: Option<JobReport>,
    host_key_mismatch: bool,
    /// This attempt's event token.
    event_token: String,
}

impl OutputState {
    fn new(kind: JobKind, max_lines: usize, event_token: String) -> Self {
        Self {
            kind,
            event_token,
            stored: 0,
            dropped: 0,
            max_lines,
            tail: VecDeque::new(),
            result: None,
            host_key_mismatch: false,
        }
    }

    async fn handle(&mut self, line: &str, events: &mpsc::Sender<ExecEvent>) {
        let cap = if line.starts_with(super::events::PREFIX) {
            MAX_EVENT_LINE
        } else {
            MAX_LINE
        };
        // Output carries what nodes print (a tenant's plugin output included): no control
        // characters reach stored logs or terminals (event JSON escapes its own).
        let line: String = line
            .chars()
            .take(cap)
            .map(|c| if c == '\t' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        if line.contains("Host key verification failed")
            || line.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        {
            self.host_key_mismatch = true;
        }
        let Some(event) = parse_line(&line, &self.event_token) else {
            return;
        };
        match &event {
            ExecEvent::Log(text) => {
                if !text.trim().is_empty() {
                    if self.tail.len() == TAIL_LINES {
                        self.tail.pop_front();
                    }
                    self.tail.push_back(text.clone());
                }
                if self.stored >= self.max_lines {
                    self.dropped += 1;
                    return;
                }
                self.stored += 1;
            }
            // Reported from the node: parsed and checked here, once, before any of it is
            // stored or passed on.
            ExecEvent::Result(value) => {
                self.result = Some(JobReport::parse(self.kind, value));
            }
            ExecEvent::Step { .. } | ExecEvent::Spawned { .. } => {}
        }
        let _ = events.send(event).await;
    }

    /// Classifies the exit code (SPEC section 5): 1, 2 and 4 are retryable; 5, 250 and
    /// anything else are final. A changed host key is final whatever the code.
    fn outcome(mut self, code: Option<i32>) -> Outcome {
        let tail = self.tail.drain(..).collect::<Vec<_>>().join("\n");
        let with_tail = |what: &str| {
            if tail.is_empty() {
                what.to_owned()
            } else {
                format!("{what}\n{tail}")
            }
        };
        if self.dropped > 0 {
            tracing::info!(
                dropped = self.dropped,
                "job output over the stored-line cap"
            );
        }
        match code {
            Some(0) => Outcome::Succeeded { result: self.result },
            _ if self.host_key_mismatch => Outcome::Failed {
                code: "HOST_KEY_MISMATCH".into(),
                message: "the node presented a host key that differs from the pinned one; if the node was \
                          reinstalled, re-pin its key with UpdateNode"
                    .into(),
                retryable: false,
                result: self.result,
            },
            Some(c @ (1 | 2 | 4)) => Outcome::Failed {
                code: match c {
                    4 => "NODE_UNREACHABLE".into(),
                    _ => "PLAYBOOK_FAILED".into(),
                },
                message: with_tail(&format!("ansible-playbook exited with {c}")),
                retryable: true,
                result: self.result,
            },
            Some(5) => Outcome::Failed {
                code: "PLAYBOOK_INVALID".into(),
                message: with_tail("ansible-playbook rejected the playbook or its options (exit 5)"),
                retryable: false,
                result: self.result,
            },
            Some(c) => Outcome::Failed {
                code: "PLAYBOOK_ERROR".into(),
                message: with_tail(&format!("ansible-playbook exited with {c}")),
                retryable: false,
                result: self.result,
            },
            None => Outcome::Failed {
                code: "PLAYBOOK_KILLED".into(),
                message: with_tail("ansible-playbook was killed by a signal"),
                retryable: false,
                result: self.result,
            },
        }
    }
}

fn final_failure(code: &str, message: String) -> Outcome {
    Outcome::Failed {
        code: code.to_owned(),
        message,
        retryable: false,
        result: None,
    }
}

/// SIGTERM to the process group, SIGKILL after `grace` if the leader is still there.
async fn terminate(pid: u32, grace: Duration, child: &mut tokio::process::Child) {
    kill_group(pid, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        kill_group(pid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Signals a whole process group; a group that is already gone is fine.
pub fn kill_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// Writes the per-attempt files into a fresh private directory.
fn prepare_dir(config: &AnsibleConfig, spec: &JobSpec) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("pressluft-job-")
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    std::fs::create_dir(dir.path().join("tmp"))?;
    std::fs::create_dir(dir.path().join("cp"))?;
    let key = dir.path().join("id_control_plane");
    write_private(&key, &std::fs::read(&config.ssh_key)?)?;
    let known_hosts = dir.path().join("known_hosts");
    let host_pattern = if spec.node.port == 22 {
        spec.node.hostname.clone()
    } else {
        format!("[{}]:{}", spec.node.hostname, spec.node.port)
    };
    write_private(
        &known_hosts,
        format!("{host_pattern} {}\n", spec.node.host_key).as_bytes(),
    )?;
    let inventory = json!({
        "all": { "hosts": { "node": {
            "ansible_host": spec.node.hostname,
            "ansible_port": spec.node.port,
            "ansible_user": spec.node.user,
            "ansible_ssh_private_key_file": key,
            "ansible_ssh_common_args": format!(
                "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
                known_hosts.display()
            ),
        }}}
    });
    // Every string in both files is marked untrusted: job data is never a template.
    write_private(
        &dir.path().join("inventory.json"),
        untrusted_json(&inventory).to_string().as_bytes(),
    )?;
    let mut vars = spec.vars.clone();
    if let Some(map) = vars.as_object_mut() {
        map.insert("pressluft_job_id".into(), json!(spec.job_id.to_string()));
        map.insert("pressluft_job_type".into(), json!(spec.kind.as_str()));
        map.insert("pressluft_attempt".into(), json!(spec.attempt));
    }
    write_private(
        &dir.path().join("vars.json"),
        untrusted_json(&vars).to_string().as_bytes(),
    )?;
    Ok(dir)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: Option<i32>, lines: &[&str]) -> Outcome {
        let mut state = OutputState::new(JobKind::CachePurge, 100, "t".into());
        for l in lines {
            state.tail.push_back((*l).to_owned());
            if l.contains("Host key verification failed") {
                state.host_key_mismatch = true;
            }
        }
        state.outcome(code)
    }

    #[test]
    fn exit_codes_are_classified() {
        assert!(matches!(outcome(Some(0), &[]), Outcome::Succeeded { .. }));
        for code in [1, 2, 4] {
            assert!(
                matches!(
                    outcome(Some(code), &[]),
                    Outcome::Failed {
                        retryable: true,
                        ..
                    }
                ),
                "{code}"
            );
        }
        for code in [3, 5, 8, 99, 250] {
            assert!(
                matches!(
                    outcome(Some(code), &[]),
                    Outcome::Failed {
                        retryable: false,
                        ..
                    }
                ),
                "{code}"
            );
        }
        assert!(matches!(
            outcome(None, &[]),
            Outcome::Failed {
                retryable: false,
                ..
            }
        ));
        match outcome(Some(4), &["Host key verification failed."]) {
            Outcome::Failed {
                code, retryable, ..
            } => {
                assert_eq!(code, "HOST_KEY_MISMATCH");
                assert!(!retryable);
            }
            other => panic!("{other:?}"),
        }
        match outcome(Some(2), &["task failed: x", "boom"]) {
            Outcome::Failed { message, .. } => assert!(message.ends_with("task failed: x\nboom")),
            other => panic!("{other:?}"),
        }
    }
}
