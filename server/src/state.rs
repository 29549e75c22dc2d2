//! The state every request handler and background task shares: configuration, the store,
//! secrets, the login limiter, pooled node sessions, metrics and the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::LoginLimiter;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::queries::NodeQueries;
use crate::queue::{JobSources, PlaybookSettings};
use crate::secrets::{SecretBox, SecretsDir};
use crate::ssh::NodeSessions;
use crate::store::{JobDefaults, Store};

/// A node-query connection unused this long is closed.
const NODE_SESSION_IDLE: Duration = Duration::from_mins(5);

/// State shared by every request handler.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub secret_box: SecretBox,
    pub secrets_dir: SecretsDir,
    /// The control plane's SSH public key as an authorized_keys line.
    pub control_plane_key: String,
    pub login_limiter: Arc<LoginLimiter>,
    /// Pooled SSH connections for node queries.
    pub node_sessions: Arc<NodeSessions>,
    /// Fires on shutdown; long-lived streams end with it.
    pub shutdown: CancellationToken,
    /// Job and RPC histograms for the metrics listener.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Upload bytes each user holds while uploads arrive.
    pub upload_quota: Arc<crate::uploads::Quota>,
}

impl AppState {
    /// Opens the database and secrets named by `config`.
    pub async fn open(config: Config, shutdown: CancellationToken) -> Result<Arc<Self>> {
        let store = Store::open(&config.database_path())
            .await?
            .with_job_defaults(JobDefaults {
                max_attempts: config.jobs.max_attempts,
                timeout_secs: i64::try_from(config.jobs.timeout.as_secs()).unwrap_or(1800),
                timeout_secs_by_kind: config
                    .jobs
                    .timeouts
                    .iter()
                    .map(|(kind, t)| (*kind, i64::try_from(t.as_secs()).unwrap_or(1800)))
                    .collect(),
                linux_uid_base: config.linux_uid_base,
            });
        let secrets_dir = SecretsDir::open(&config.secrets_dir)?;
        let secret_box = secrets_dir.secret_box()?;
        let key = secrets_dir.ssh_key()?;
        let control_plane_key = format!(
            "{} pressluft-control-plane",
            key.public_key()
                .to_openssh()
                .map_err(|e| Error::internal(format!("encoding the SSH key: {e}")))?
        );
        let login_limiter = Arc::new(LoginLimiter::new(
            config.login_max_failures,
            config.login_window,
        ));
        let node_sessions = Arc::new(NodeSessions::new(key, NODE_SESSION_IDLE));
        Ok(Arc::new(Self {
            config,
            store,
            secret_box,
            secrets_dir,
            control_plane_key,
            login_limiter,
            node_sessions,
            shutdown,
            metrics: Arc::default(),
            upload_quota: Arc::default(),
        }))
    }

    /// What node queries need: the store, the pooled sessions and their limits.
    pub fn node_queries(&self) -> NodeQueries {
        NodeQueries {
            store: self.store.clone(),
            sessions: self.node_sessions.clone(),
            timeout: self.config.node_query_timeout,
            magic_login_ttl: self.config.magic_login_ttl,
        }
    }

    /// What the job worker builds a job's variables from.
    pub fn job_sources(&self) -> JobSources {
        JobSources {
            store: self.store.clone(),
            secret_box: self.secret_box.clone(),
            settings: PlaybookSettings::new(&self.config, self.control_plane_key.clone()),
        }
    }
}
