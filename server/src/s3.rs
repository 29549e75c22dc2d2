//! The S3-compatible backup target: its rclone configuration (the same text on the control
//! plane and on nodes) and the test upload that validates a target before it is saved.
//! rclone runs as a subprocess with argv only; the secret travels in a 0600 config file,
//! never on a command line.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Reason, Result};
use crate::secrets::Secret;

/// Name of the rclone remote in the generated configuration.
pub const REMOTE: &str = "pressluft-backups";

/// A backup target with its unsealed secret.
#[derive(Debug, Clone)]
pub struct S3Target {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

impl S3Target {
    /// rclone's configuration for the target. Every value was validated to be one line.
    pub fn rclone_config(&self) -> Secret {
        Secret::new(format!(
            "[{REMOTE}]\ntype = s3\nprovider = Other\nenv_auth = false\nendpoint = {}\nregion = {}\n\
             access_key_id = {}\nsecret_access_key = {}\nforce_path_style = true\nno_check_bucket = true\n",
            self.endpoint,
            self.region,
            self.access_key_id,
            self.secret_access_key.expose()
        ))
    }

    /// `remote:bucket/prefix` with `key` appended: where an object lives, in rclone's terms.
    pub fn remote_path(&self, key: &str) -> String {
        let prefix = self.prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{REMOTE}:{}/{key}", self.bucket)
        } else {
            format!("{REMOTE}:{}/{prefix}/{key}", self.bucket)
        }
    }

    /// Writes a small object to the target, reads it back and deletes it: the target is
    /// reachable, the credentials work and the bucket takes writes.
    pub async fn probe(&self, rclone: &Path) -> Result<()> {
        let dir = tempfile::Builder::new()
            .prefix("pressluft-s3-")
            .tempdir()
            .map_err(Error::internal)?;
        let config = dir.path().join("rclone.conf");
        write_private(&config, self.rclone_config().expose().as_bytes())?;
        let probe = dir.path().join("probe");
        let body = format!("pressluft probe {}\n", uuid::Uuid::now_v7());
        write_private(&probe, body.as_bytes())?;
        let key = format!(".pressluft-probe-{}", uuid::Uuid::now_v7());
        let remote = self.remote_path(&key);
        self.rclone(rclone, &config, &["copyto", path_str(&probe)?, &remote])
            .await?;
        let read = self.rclone(rclone, &config, &["cat", &remote]).await;
        let deleted = self.rclone(rclone, &config, &["deletefile", &remote]).await;
        if read? != body {
            return Err(unreachable(
                "the probe object read back differs from what was written",
            ));
        }
        deleted.map(|_| ())
    }

    async fn rclone(&self, rclone: &Path, config: &Path, args: &[&str]) -> Result<String> {
        let mut cmd = tokio::process::Command::new(rclone);
        cmd.arg("--config")
            .arg(config)
            .args([
                "--retries",
                "1",
                "--low-level-retries",
                "1",
                "--contimeout",
                "10s",
            ])
            .args(args)
            .kill_on_drop(true);
        if self.endpoint.starts_with("http://") {
            // A CA bundle means nothing over plain HTTP, and rclone fails every call when
            // AWS_CA_BUNDLE is set in its environment.
            cmd.env_remove("AWS_CA_BUNDLE");
        }
        let output = tokio::time::timeout(Duration::from_mins(1), cmd.output())
            .await
            .map_err(|_| unreachable("the backup target did not answer within 60 s"))?
            .map_err(|e| {
                Error::precondition(
                    Reason::BackupTargetUnreachable,
                    format!("rclone cannot run on the control plane ({e}); install rclone"),
                )
            })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .replace(self.secret_access_key.expose(), "***");
        Err(unreachable(&format!("the test upload failed: {last}")))
    }
}

fn unreachable(message: &str) -> Error {
    Error::precondition(Reason::BackupTargetUnreachable, message)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::internal("a temporary path is not UTF-8"))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::internal)?;
    file.write_all(contents).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(prefix: &str) -> S3Target {
        S3Target {
            endpoint: "http://127.0.0.1:8333".into(),
            bucket: "backups".into(),
            region: "us-east-1".into(),
            prefix: prefix.into(),
            access_key_id: "key".into(),
            secret_access_key: Secret::new("s3cr3t"),
        }
    }

    #[test]
    fn remote_paths_join_bucket_prefix_and_key() {
        assert_eq!(
            target("").remote_path("a/b.tar"),
            "pressluft-backups:backups/a/b.tar"
        );
        assert_eq!(
            target("/agency/x/").remote_path("a.tar"),
            "pressluft-backups:backups/agency/x/a.tar"
        );
    }

    #[test]
    fn the_config_names_the_remote_and_keeps_the_secret_out_of_debug() {
        let t = target("");
        let config = t.rclone_config();
        assert!(
            config
                .expose()
                .starts_with("[pressluft-backups]\ntype = s3\n")
        );
        assert!(config.expose().contains("secret_access_key = s3cr3t\n"));
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
