//! Pooled SSH connections for node queries: one authenticated connection per node, reused by
//! every query (a query costs one channel, not a handshake), kept alive, reopened when it broke,
//! closed when idle. The host key must be the node's pinned key; nothing else is accepted.
//!
//! A query's cap covers connect, authentication, exec and reading until the channel closes. On
//! expiry the connection is torn down; the remote command dies by its own wrapper
//! (`timeout -s KILL`, added by the caller) at the same cap.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::Mutex;

use crate::error::{Error, Reason, Result};

/// Largest output a query may print (stdout and stderr each).
const MAX_OUTPUT: usize = 4 << 20;

/// Where a query goes: the node's address, SSH user and pinned host key.
#[derive(Debug, Clone)]
pub struct Remote {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// OpenSSH public key line ("type base64").
    pub host_key: String,
}

impl Remote {
    /// Connections are shared by everything that reaches the node the same way; a changed
    /// address, user or pinned key gets a new connection.
    fn pool_key(&self) -> String {
        format!(
            "{}@{}:{} {}",
            self.user, self.host, self.port, self.host_key
        )
    }
}

/// What a remote command printed and how it ended.
#[derive(Debug, Default)]
pub struct Output {
    /// Exit status; `None` when the command died of a signal or the channel closed without one.
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Accepts the pinned host key only, and remembers a refusal so it is reported as such.
struct PinnedKey {
    pinned: PublicKey,
    mismatch: Arc<AtomicBool>,
}

impl client::Handler for PinnedKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let same = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.pinned.key_data()
            }
            PublicKeyOrCertificate::Certificate(_) => false,
        };
        if !same {
            self.mismatch.store(true, Ordering::Relaxed);
        }
        Ok(same)
    }
}

struct Pooled {
    handle: client::Handle<PinnedKey>,
    last_used: std::sync::Mutex<Instant>,
}

impl Pooled {
    fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
    }
}

/// The pool of node connections.
pub struct NodeSessions {
    key: Arc<PrivateKey>,
    idle: Duration,
    /// One slot per node: a slow connect to one node never holds up queries to another.
    sessions: Mutex<HashMap<String, Slot>>,
}

type Slot = Arc<Mutex<Option<Arc<Pooled>>>>;

impl std::fmt::Debug for NodeSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSessions")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl NodeSessions {
    /// A pool authenticating with `key`, closing connections unused for `idle`.
    pub fn new(key: PrivateKey, idle: Duration) -> Self {
        Self {
            key: Arc::new(key),
            idle,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `command` on `remote` and reads until its channel closes, all within `cap`.
    /// UNAVAILABLE when the node cannot be reached or refuses the key, FAILED_PRECONDITION
    /// (HOST_KEY_MISMATCH) when it presents another host key, DEADLINE_EXCEEDED past `cap`.
    pub async fn run(&self, remote: &Remote, command: &str, cap: Duration) -> Result<Output> {
        let key = remote.pool_key();
        if let Ok(result) = tokio::time::timeout(cap, self.run_pooled(remote, &key, command)).await
        {
            return result;
        }
        // Torn down: the connection may hold a stalled channel.
        let slot = self.sessions.lock().await.remove(&key);
        if let Some(slot) = slot
            && let Ok(mut slot) = slot.try_lock()
            && let Some(pooled) = slot.take()
        {
            let _ = pooled
                .handle
                .disconnect(Disconnect::ByApplication, "query timed out", "")
                .await;
        }
        Err(Error::Deadline(cap.as_secs()))
    }

    async fn run_pooled(&self, remote: &Remote, key: &str, command: &str) -> Result<Output> {
        // A pooled connection that broke since its last use is replaced once.
        for fresh in [false, true] {
            let pooled = self.session(remote, key, fresh).await?;
            pooled.touch();
            match pooled.handle.channel_open_session().await {
                Ok(channel) => return exec(channel, command).await,
                Err(e) if fresh => {
                    return Err(Error::NodeUnreachable(format!("opening a channel: {e}")));
                }
                Err(_) => {}
            }
        }
        unreachable!("the second pass returns")
    }

    async fn session(&self, remote: &Remote, key: &str, fresh: bool) -> Result<Arc<Pooled>> {
        let slot = self
            .sessions
            .lock()
            .await
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if !fresh
            && let Some(pooled) = slot.as_ref()
            && !pooled.handle.is_closed()
        {
            return Ok(pooled.clone());
        }
        let pooled = Arc::new(self.connect(remote).await?);
        *slot = Some(pooled.clone());
        Ok(pooled)
    }

    async fn connect(&self, remote: &Remote) -> Result<Pooled> {
        let pinned = PublicKey::from_openssh(&remote.host_key)
            .map_err(|_| Error::internal("a stored host key does not parse"))?;
        let mismatch = Arc::new(AtomicBool::new(false));
        let handler = PinnedKey {
            pinned,
            mismatch: mismatch.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            nodelay: true,
            ..client::Config::default()
        });
        let address = (remote.host.as_str(), remote.port);
        let mut handle = match client::connect(config, address, handler).await {
            Ok(handle) => handle,
            Err(_) if mismatch.load(Ordering::Relaxed) => {
                return Err(Error::precondition(
                    Reason::HostKeyMismatch,
                    format!(
                        "{}:{} presented a host key other than the pinned one; refused",
                        remote.host, remote.port
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::NodeUnreachable(format!(
                    "{}:{}: {e}",
                    remote.host, remote.port
                )));
            }
        };
        let auth = handle
            .authenticate_publickey(
                remote.user.clone(),
                PrivateKeyWithHashAlg::new(self.key.clone(), None),
            )
            .await
            .map_err(|e| Error::NodeUnreachable(format!("authenticating: {e}")))?;
        if !auth.success() {
            return Err(Error::NodeUnreachable(format!(
                "{}:{} refused the control plane's key for {}",
                remote.host, remote.port, remote.user
            )));
        }
        Ok(Pooled {
            handle,
            last_used: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Closes connections unused for longer than the idle time (run periodically).
    pub async fn close_idle(&self) {
        let slots: Vec<Slot> = self.sessions.lock().await.values().cloned().collect();
        for slot in slots {
            // A slot in use (connecting or being replaced) is not idle.
            let Ok(mut slot) = slot.try_lock() else {
                continue;
            };
            if slot
                .as_ref()
                .is_some_and(|p| p.idle_for() > self.idle || p.handle.is_closed())
                && let Some(pooled) = slot.take()
            {
                let _ = pooled
                    .handle
                    .disconnect(Disconnect::ByApplication, "idle", "")
                    .await;
            }
        }
    }

    /// Open connections (for tests and metrics).
    pub async fn open_connections(&self) -> usize {
        let slots: Vec<Slot> = self.sessions.lock().await.values().cloned().collect();
        let mut open = 0;
        for slot in slots {
            if slot
                .lock()
                .await
                .as_ref()
                .is_some_and(|p| !p.handle.is_closed())
            {
                open += 1;
            }
        }
        open
    }
}

/// Executes `command` on `channel` and collects its output until the channel closes (the exit
/// status can arrive before the last output).
async fn exec(mut channel: russh::Channel<client::Msg>, command: &str) -> Result<Output> {
    channel
        .exec(true, command)
        .await
        .map_err(|e| Error::NodeUnreachable(format!("starting the query: {e}")))?;
    let mut out = Output::default();
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => append(&mut out.stdout, &data),
            ChannelMsg::ExtendedData { data, ext: 1 } => append(&mut out.stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
            _ => {}
        }
    }
    Ok(out)
}

fn append(buffer: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OUTPUT.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
}
