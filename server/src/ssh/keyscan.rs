//! Reads a server's host key during the SSH handshake without authenticating or trusting it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use crate::error::{Error, Result};

/// Records the key the server presents and refuses to continue the handshake.
struct KeyCatcher {
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for KeyCatcher {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone().into(),
        };
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
        // Refuse: a scan must never proceed to authentication against an unverified host.
        Ok(false)
    }
}

/// Connects to `host:port`, returns the presented host key in OpenSSH format ("type base64").
/// UNAVAILABLE (NODE_UNREACHABLE) when nothing answers within `timeout`.
pub async fn scan_host_key(host: &str, port: u16, timeout: Duration) -> Result<String> {
    let seen = Arc::new(Mutex::new(None));
    let handler = KeyCatcher { seen: seen.clone() };
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(timeout),
        ..client::Config::default()
    });
    let attempt =
        tokio::time::timeout(timeout, client::connect(config, (host, port), handler)).await;
    let key = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match (key, attempt) {
        (Some(key), _) => key
            .to_openssh()
            .map_err(|e| Error::internal(format!("encoding a host key: {e}"))),
        (None, Err(_)) => Err(Error::NodeUnreachable(format!(
            "{host}:{port} did not answer within {} s",
            timeout.as_secs()
        ))),
        (None, Ok(Err(e))) => Err(Error::NodeUnreachable(format!("{host}:{port}: {e}"))),
        (None, Ok(Ok(_))) => Err(Error::internal("SSH handshake finished without a host key")),
    }
}
