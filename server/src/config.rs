//! Server configuration: one struct, defaults, an optional TOML file, and flags/env overrides
//! (flags and `PRESSLUFT_*` variables win over the file). `validate` names the bad field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8443";

/// Effective server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the gRPC / grpc-web / UI listener.
    pub listen_addr: SocketAddr,
    /// Directory of the SQLite database.
    pub data_dir: PathBuf,
    /// Directory of the master key and SSH key (default `<data_dir>/secrets`).
    pub secrets_dir: PathBuf,
    /// Lifetime of login sessions.
    pub session_ttl: Duration,
    /// Failed logins allowed per email within `login_window` before logins are refused.
    pub login_max_failures: u32,
    /// Window of the login rate limit.
    pub login_window: Duration,
    /// Timeout of the SSH host-key scan at node registration.
    pub ssh_connect_timeout: Duration,
}

/// The TOML file's shape; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub secrets_dir: Option<PathBuf>,
    pub session_ttl_secs: Option<u64>,
    pub login_max_failures: Option<u32>,
    pub login_window_secs: Option<u64>,
    pub ssh_connect_timeout_secs: Option<u64>,
}

/// Overrides from flags and environment variables.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub secrets_dir: Option<PathBuf>,
}

/// A configuration error naming its field.
#[derive(Debug, thiserror::Error)]
#[error("config {field}: {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

fn config_error(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        message: message.into(),
    }
}

/// The default data directory: `$XDG_DATA_HOME/pressluft` (or `~/.local/share/pressluft`).
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("pressluft")
}

impl Config {
    /// Builds the configuration from an optional file plus overrides, then validates it.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| config_error("file", format!("{}: {e}", path.display())))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| config_error("file", format!("{}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        Self::merge(from_file, overrides)
    }

    /// Merges a parsed file and overrides.
    pub fn merge(file: FileConfig, overrides: &Overrides) -> Result<Self, ConfigError> {
        let listen = overrides
            .listen_addr
            .clone()
            .or(file.listen_addr)
            .unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
        let listen_addr = listen
            .parse()
            .map_err(|_| config_error("listen_addr", format!("{listen:?} is not host:port")))?;
        let data_dir = overrides
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let secrets_dir = overrides
            .secrets_dir
            .clone()
            .or(file.secrets_dir)
            .unwrap_or_else(|| data_dir.join("secrets"));
        let config = Self {
            listen_addr,
            data_dir,
            secrets_dir,
            session_ttl: Duration::from_secs(file.session_ttl_secs.unwrap_or(12 * 3600)),
            login_max_failures: file.login_max_failures.unwrap_or(5),
            login_window: Duration::from_secs(file.login_window_secs.unwrap_or(300)),
            ssh_connect_timeout: Duration::from_secs(file.ssh_connect_timeout_secs.unwrap_or(10)),
        };
        config.validate()?;
        Ok(config)
    }

    /// A configuration for tests and tools: defaults under `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let overrides = Overrides {
            data_dir: Some(data_dir.to_owned()),
            listen_addr: Some("127.0.0.1:0".to_owned()),
            ..Overrides::default()
        };
        Self::merge(FileConfig::default(), &overrides).unwrap_or_else(|e| {
            unreachable!("the default configuration is valid: {e}");
        })
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.session_ttl < Duration::from_mins(1) {
            return Err(config_error("session_ttl_secs", "must be at least 60"));
        }
        if self.login_max_failures == 0 {
            return Err(config_error("login_max_failures", "must be at least 1"));
        }
        if self.ssh_connect_timeout.is_zero() || self.ssh_connect_timeout > Duration::from_secs(10)
        {
            return Err(config_error("ssh_connect_timeout_secs", "must be 1-10"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(config_error("data_dir", "must not be empty"));
        }
        Ok(())
    }

    /// Path of the SQLite database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("pressluft.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback() {
        let c = Config::merge(FileConfig::default(), &Overrides::default()).expect("valid");
        assert_eq!(c.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
        assert!(c.listen_addr.ip().is_loopback());
        assert_eq!(c.secrets_dir, c.data_dir.join("secrets"));
    }

    #[test]
    fn overrides_win_and_bad_fields_are_named() {
        let file: FileConfig =
            toml::from_str("listen_addr = \"127.0.0.1:1\"\ndata_dir = \"/a\"").expect("toml");
        let c = Config::merge(
            file,
            &Overrides {
                listen_addr: Some("127.0.0.1:2".into()),
                ..Overrides::default()
            },
        )
        .expect("valid");
        assert_eq!(c.listen_addr.port(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/a"));

        let err = Config::merge(
            FileConfig::default(),
            &Overrides {
                listen_addr: Some("nope".into()),
                ..Overrides::default()
            },
        )
        .expect_err("invalid");
        assert_eq!(err.field, "listen_addr");
        assert!(toml::from_str::<FileConfig>("unknown_field = 1").is_err());
        let err = Config::merge(
            FileConfig {
                session_ttl_secs: Some(1),
                ..FileConfig::default()
            },
            &Overrides::default(),
        )
        .expect_err("invalid");
        assert_eq!(err.field, "session_ttl_secs");
    }
}
