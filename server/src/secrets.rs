//! Secrets at rest: the control plane's master key (seals DB passwords, WordPress salts and S3
//! keys stored in SQLite) and its SSH key pair (used to reach nodes). Both live in the secrets
//! directory (0700), each file 0600, created on first start.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

use crate::error::{Error, Result};

const MASTER_KEY_FILE: &str = "master.key";
const SSH_KEY_FILE: &str = "id_ed25519";
const SEALED_PREFIX: &str = "v1:";

/// A string that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Seals and opens secrets stored in the database (XChaCha20-Poly1305, random nonces).
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// A box from a 32-byte key.
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts `plaintext` into a printable string ("v1:" + base64 of nonce and ciphertext).
    pub fn seal(&self, plaintext: &Secret) -> Result<String> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.expose().as_bytes())
            .map_err(|_| Error::internal("sealing a secret failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", B64.encode(bytes)))
    }

    /// Decrypts a string produced by [`SecretBox::seal`].
    pub fn open(&self, sealed: &str) -> Result<Secret> {
        let bad = || Error::internal("a sealed secret is corrupt or was sealed with another key");
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(bad)?;
        let bytes = B64.decode(encoded).map_err(|_| bad())?;
        if bytes.len() < 24 {
            return Err(bad());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let plaintext = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| bad())?;
        String::from_utf8(plaintext).map(Secret).map_err(|_| bad())
    }
}

/// A random alphanumeric string of `len` characters (DB passwords, WordPress salts).
pub fn random_alphanumeric(len: usize) -> Secret {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let s: String = (0..len)
        .map(|_| {
            let i = (rng.next_u32() as usize) % ALPHABET.len();
            char::from(ALPHABET[i])
        })
        .collect();
    Secret(s)
}

/// The control plane's secrets directory.
#[derive(Debug, Clone)]
pub struct SecretsDir {
    path: PathBuf,
}

impl SecretsDir {
    /// Opens (creating with mode 0700) the directory.
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::internal(format!("creating the secrets directory: {e}")))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::internal(format!("securing the secrets directory: {e}")))?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master key, created on first use.
    pub fn secret_box(&self) -> Result<SecretBox> {
        let file = self.path.join(MASTER_KEY_FILE);
        let bytes = Self::read_or_create(&file, || {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            B64.encode(key).into_bytes()
        })?;
        let key = B64
            .decode(String::from_utf8_lossy(&bytes).trim())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| Error::internal(format!("{} is not a valid key", file.display())))?;
        Ok(SecretBox::from_key(&key))
    }

    /// The control plane's SSH key pair, created on first use.
    pub fn ssh_key(&self) -> Result<russh::keys::PrivateKey> {
        let file = self.path.join(SSH_KEY_FILE);
        let mut generation_error = None;
        let bytes = Self::read_or_create(&file, || {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
            let key = russh::keys::PrivateKey::from(pair);
            match key.to_openssh(russh::keys::ssh_key::LineEnding::LF) {
                Ok(pem) => pem.as_bytes().to_vec(),
                Err(e) => {
                    generation_error = Some(e.to_string());
                    Vec::new()
                }
            }
        })?;
        if let Some(e) = generation_error {
            return Err(Error::internal(format!("generating the SSH key: {e}")));
        }
        let key = russh::keys::PrivateKey::from_openssh(&bytes)
            .map_err(|e| Error::internal(format!("{} is not a valid key: {e}", file.display())))?;
        let public = self.ssh_public_key_path();
        if !public.exists() {
            let line = key
                .public_key()
                .to_openssh()
                .map_err(|e| Error::internal(format!("encoding the public key: {e}")))?;
            std::fs::write(&public, format!("{line} pressluft-control-plane\n"))
                .map_err(|e| Error::internal(format!("writing the public key: {e}")))?;
        }
        Ok(key)
    }

    /// Path of the SSH public key file (the `authorized_keys` line).
    pub fn ssh_public_key_path(&self) -> PathBuf {
        self.path.join(format!("{SSH_KEY_FILE}.pub"))
    }

    /// Path of the SSH private key file (for `ansible-playbook --private-key`).
    pub fn ssh_key_path(&self) -> PathBuf {
        self.path.join(SSH_KEY_FILE)
    }

    fn read_or_create(file: &Path, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
        match std::fs::read(file) {
            Ok(bytes) => return Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::internal(format!("reading {}: {e}", file.display()))),
        }
        let contents = make();
        // create_new: two processes starting at once must not overwrite each other's key.
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .and_then(|mut f| f.write_all(&contents).and_then(|()| f.sync_all()));
        match result {
            Ok(()) => Ok(contents),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(file)
                .map_err(|e| Error::internal(format!("reading {}: {e}", file.display()))),
            Err(e) => Err(Error::internal(format!("writing {}: {e}", file.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_never_print() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = SecretsDir::open(&dir.path().join("secrets")).expect("open");
        let sb = secrets.secret_box().expect("box");
        let sealed = sb.seal(&Secret::new("hunter2")).expect("seal");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(sb.open(&sealed).expect("open").expose(), "hunter2");
        assert!(sb.open("v1:AAAA").is_err());
        // Same key file on the next start.
        let again = secrets.secret_box().expect("box");
        assert_eq!(again.open(&sealed).expect("open").expose(), "hunter2");
        assert_eq!(format!("{:?}", Secret::new("x")), "***");
        let mode = std::fs::metadata(secrets.path().join(MASTER_KEY_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn ssh_key_is_created_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = SecretsDir::open(dir.path()).expect("open");
        let a = secrets.ssh_key().expect("key");
        let b = secrets.ssh_key().expect("key");
        assert_eq!(a.public_key(), b.public_key());
        assert!(secrets.path().join("id_ed25519.pub").exists());
    }
}
