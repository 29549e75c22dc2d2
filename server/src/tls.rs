//! The API's own TLS listener (rustls on ring), for exposing the server without a reverse
//! proxy: the same router (gRPC, grpc-web, UI, /healthz) behind a TLS handshake that offers
//! HTTP/2 and HTTP/1.1 by ALPN.
//!
//! The certificate and key are PEM files, read again when either file changes (checked at
//! each handshake: two `stat` calls), so a renewal (certbot's deploy, a copy) takes effect
//! without a restart. A replacement that does not load keeps the previous certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject as _};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// A client that connects and never finishes its handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate chain and private key files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Builds the acceptor, loading the files once now: a missing or broken certificate stops
/// the server at start with a message naming the file.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ReloadingCert::load(files.clone(), provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` over TLS on `listener` until `shutdown` fires, then lets open
/// connections finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        // Handlers see the peer's address, as on the plaintext listener.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// Serves the loaded certificate, loading it again when a file's modification time changes.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
}

/// Modification times of the certificate and key files.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(files: &TlsFiles) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

impl ReloadingCert {
    fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self> {
        let stamp = stamp(&files);
        let key = load_certified_key(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: Mutex::new(Loaded { key, stamp }),
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = stamp(&self.files);
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now != current.stamp {
            // Remember the new stamp either way: a broken file is reported once, not at every
            // handshake, and tried again when it changes.
            current.stamp = now;
            match load_certified_key(&self.files, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    current.key = key;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the changed TLS certificate does not load; still serving the previous one"
                ),
            }
        }
        Some(current.key.clone())
    }
}

fn load_certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
    fn file_error(path: &Path, what: &'static str) -> impl Fn(pem::Error) -> Error {
        let path = path.display().to_string();
        move |e| Error::internal(format!("TLS {what} {path}: {e}"))
    }
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(file_error(&files.cert, "certificate"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(file_error(&files.cert, "certificate"))?;
    if chain.is_empty() {
        return Err(Error::internal(format!(
            "TLS certificate {}: no CERTIFICATE block in the file",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(file_error(&files.key, "key"))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::internal(format!("TLS key {}: {e}", files.key.display())))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        Error::internal(format!(
            "TLS key {} does not belong to the certificate {}: {e}",
            files.key.display(),
            files.cert.display()
        ))
    })?;
    Ok(Arc::new(certified))
}
