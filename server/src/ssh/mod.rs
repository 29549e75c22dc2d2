//! Direct SSH from the server (russh): host-key scans at registration and pooled sessions for
//! node queries.
//! Host keys are always compared with the pinned key; nothing here accepts any key.

mod keyscan;
mod session;

pub use keyscan::scan_host_key;
pub use session::{NodeSessions, Output, Remote};

/// SHA-256 fingerprint ("SHA256:...") of an OpenSSH public key line.
pub fn fingerprint(public_key: &str) -> Option<String> {
    russh::keys::PublicKey::from_openssh(public_key)
        .ok()
        .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
}
