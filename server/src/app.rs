//! Wiring: opens the store and secrets, builds the shared state and serves every service on
//! one listener until the shutdown token fires.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::LoginLimiter;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::secrets::{SecretBox, SecretsDir};
use crate::store::Store;

/// State shared by every request handler.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub secret_box: SecretBox,
    pub secrets_dir: SecretsDir,
    /// The control plane's SSH public key as an authorized_keys line.
    pub control_plane_key: String,
    pub login_limiter: LoginLimiter,
    /// Fires on shutdown; long-lived streams end with it.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// Opens the database and secrets named by `config`.
    pub async fn open(config: Config, shutdown: CancellationToken) -> Result<Arc<Self>> {
        let store = Store::open(&config.database_path()).await?;
        let secrets_dir = SecretsDir::open(&config.secrets_dir)?;
        let secret_box = secrets_dir.secret_box()?;
        let key = secrets_dir.ssh_key()?;
        let control_plane_key = format!(
            "{} pressluft-control-plane",
            key.public_key()
                .to_openssh()
                .map_err(|e| Error::internal(format!("encoding the SSH key: {e}")))?
        );
        let login_limiter = LoginLimiter::new(config.login_max_failures, config.login_window);
        Ok(Arc::new(Self {
            config,
            store,
            secret_box,
            secrets_dir,
            control_plane_key,
            login_limiter,
            shutdown,
        }))
    }
}

/// The running server.
pub struct App;

impl App {
    /// Serves gRPC, grpc-web, health and reflection on `listener` until `shutdown` fires.
    pub async fn run(
        config: Config,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let state = AppState::open(config, shutdown.clone()).await?;
        let router = crate::api::router(state.clone()).await;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("listener address: {e}")))?;
        tracing::info!(%addr, "pressluft-server listening");
        let signal = shutdown.clone();
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            signal.cancelled().await;
        });
        // Streams end on shutdown; give in-flight unary calls a bounded grace period.
        tokio::select! {
            result = serve => result.map_err(|e| Error::internal(format!("serving: {e}")))?,
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => tracing::warn!("shutdown grace period over; closing remaining connections"),
        }
        state.store.pool().close().await;
        tracing::info!("pressluft-server stopped");
        Ok(())
    }
}
