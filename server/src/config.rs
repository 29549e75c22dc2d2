//! Server configuration: one struct, defaults, an optional TOML file, and flags/env overrides
//! (flags and `PRESSLUFT_*` variables win over the file). `validate` names the bad field.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::model::JobKind;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8443";

/// Effective server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the gRPC / grpc-web / UI listener.
    pub listen_addr: SocketAddr,
    /// Serve without TLS on an address other than loopback (tokens would cross the network
    /// in the clear): refused unless set.
    pub insecure_plaintext: bool,
    /// Address of the Prometheus metrics listener (`GET /metrics`); none: no metrics.
    pub metrics_listen_addr: Option<SocketAddr>,
    /// Certificate and key of the API's own TLS listener; none: plain HTTP/2 (loopback or
    /// behind a TLS-terminating proxy).
    pub tls: Option<crate::tls::TlsFiles>,
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
    /// Cap of a node query: connect, authentication, command and output (at most 10 s).
    pub node_query_timeout: Duration,
    /// How long a playbook's HTTP health request may take (one try; it is retried once).
    pub health_check_timeout: Duration,
    /// How long a magic login link works.
    pub magic_login_ttl: Duration,
    /// Directory with `ansible.cfg` and one playbook per job type.
    pub playbooks_dir: PathBuf,
    /// The `ansible-playbook` program.
    pub ansible_playbook: PathBuf,
    /// The `rclone` program (test uploads to the backup target).
    pub rclone: PathBuf,
    /// Job engine settings.
    pub jobs: JobsConfig,
    /// A WordPress tree on the nodes to install from instead of downloading it from
    /// wordpress.org (test machines without internet; mirrors).
    pub wordpress_source_dir: Option<PathBuf>,
    /// A directory on the nodes that `env_update` takes core, plugins and themes from instead
    /// of wordpress.org (`core/`, `plugins/<slug>[.zip]`, `themes/<slug>[.zip]`).
    pub update_source_dir: Option<PathBuf>,
    /// First UID handed to environment users on a node.
    pub linux_uid_base: i64,
    /// Largest archive `UploadArchive` accepts.
    pub max_upload_bytes: u64,
    /// Total bytes of stored uploads (and uploads in progress) one user may hold.
    pub upload_quota_bytes: u64,
    /// How long an uploaded archive is kept (removed with the backup cleanup pass).
    pub upload_retention: Duration,
    /// The shortest backup schedule interval and retention `UpdateBackupSchedule` accepts
    /// (5 minutes and 1 hour; tests lower them to watch schedules fire).
    pub min_backup_interval: Duration,
    pub min_backup_retention: Duration,
    /// TCP ports a node's firewall accepts besides SSH, HTTP and HTTPS (monitoring agents,
    /// a provider's management port).
    pub firewall_allow_tcp: Vec<u16>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (login limits count per
    /// client address; without this, every client behind a proxy is the proxy).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Let backup endpoints and archive or git URLs point at loopback, link-local or private
    /// addresses (see `egress`).
    pub allow_private_networks: bool,
    /// Where nodes accept the control plane's key from (`from=` in authorized_keys): IPs or
    /// CIDR ranges. Empty: the address each node sees the provisioning connection come from.
    pub control_plane_addresses: Vec<String>,
    /// Certificates for custom domains (certbot on the nodes).
    pub acme: AcmeConfig,
    /// How often the server reads each node's certificate state (expiry, last renewal).
    pub cert_check_interval: Duration,
}

/// Where nodes get certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The ACME directory (Let's Encrypt production by default).
    pub directory_url: String,
    /// Contact address for expiry notices from the CA; empty registers without one.
    pub email: String,
    /// A CA bundle on the nodes that the ACME server's own certificate chains to (a test ACME
    /// server such as pebble; never needed for Let's Encrypt).
    pub ca_bundle: Option<PathBuf>,
}

/// Let's Encrypt's production ACME directory.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Job engine settings (SPEC section 5 defaults).
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Run the worker and scheduler. Off, the server accepts and shows jobs but starts none
    /// (maintenance, or API tests that look at queued jobs).
    pub run_workers: bool,
    pub max_concurrent: usize,
    pub max_per_node: u32,
    pub max_attempts: i64,
    pub timeout: Duration,
    /// Timeouts for some job types instead of `timeout` (a long first provisioning, a short
    /// cleanup; tests give only the job under test a short one).
    pub timeouts: HashMap<JobKind, Duration>,
    pub retry_backoff: Vec<Duration>,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub poll: Duration,
    pub kill_grace: Duration,
    pub max_log_lines: usize,
    pub scheduler_tick: Duration,
    pub backup_cleanup_every: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            run_workers: true,
            max_concurrent: 4,
            max_per_node: 2,
            max_attempts: 3,
            timeout: Duration::from_mins(30),
            timeouts: HashMap::new(),
            retry_backoff: vec![
                Duration::from_mins(1),
                Duration::from_mins(5),
                Duration::from_mins(15),
            ],
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            kill_grace: Duration::from_secs(10),
            max_log_lines: 5000,
            scheduler_tick: Duration::from_secs(30),
            backup_cleanup_every: Duration::from_hours(6),
        }
    }
}

/// The `[jobs]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsFile {
    pub run_workers: Option<bool>,
    pub max_concurrent: Option<usize>,
    pub max_per_node: Option<u32>,
    pub max_attempts: Option<i64>,
    pub timeout_secs: Option<u64>,
    /// `[jobs.timeout_secs_by_type]`: job type name = seconds.
    pub timeout_secs_by_type: Option<BTreeMap<String, u64>>,
    pub retry_backoff_secs: Option<Vec<u64>>,
    pub lease_secs: Option<u64>,
    pub heartbeat_secs: Option<u64>,
    pub poll_secs: Option<u64>,
    pub kill_grace_secs: Option<u64>,
    pub max_log_lines: Option<usize>,
    pub scheduler_tick_secs: Option<u64>,
    pub backup_cleanup_every_secs: Option<u64>,
}

impl JobsFile {
    fn apply(self, mut c: JobsConfig) -> Result<JobsConfig, ConfigError> {
        let secs = Duration::from_secs;
        if let Some(v) = self.run_workers {
            c.run_workers = v;
        }
        if let Some(v) = self.max_concurrent {
            c.max_concurrent = v;
        }
        if let Some(v) = self.max_per_node {
            c.max_per_node = v;
        }
        if let Some(v) = self.max_attempts {
            c.max_attempts = v;
        }
        if let Some(v) = self.timeout_secs {
            c.timeout = secs(v);
        }
        for (name, v) in self.timeout_secs_by_type.unwrap_or_default() {
            let kind = name
                .parse::<JobKind>()
                .map_err(|e| config_error("jobs.timeout_secs_by_type", e.to_string()))?;
            c.timeouts.insert(kind, secs(v));
        }
        if let Some(v) = self.retry_backoff_secs {
            c.retry_backoff = v.into_iter().map(secs).collect();
        }
        if let Some(v) = self.lease_secs {
            c.lease = secs(v);
        }
        if let Some(v) = self.heartbeat_secs {
            c.heartbeat = secs(v);
        }
        if let Some(v) = self.poll_secs {
            c.poll = secs(v);
        }
        if let Some(v) = self.kill_grace_secs {
            c.kill_grace = secs(v);
        }
        if let Some(v) = self.max_log_lines {
            c.max_log_lines = v;
        }
        if let Some(v) = self.scheduler_tick_secs {
            c.scheduler_tick = secs(v);
        }
        if let Some(v) = self.backup_cleanup_every_secs {
            c.backup_cleanup_every = secs(v);
        }
        Ok(c)
    }
}

/// The TOML file's shape; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen_addr: Option<String>,
    pub insecure_plaintext: Option<bool>,
    pub metrics_listen_addr: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub secrets_dir: Option<PathBuf>,
    pub session_ttl_secs: Option<u64>,
    pub login_max_failures: Option<u32>,
    pub login_window_secs: Option<u64>,
    pub ssh_connect_timeout_secs: Option<u64>,
    pub node_query_timeout_secs: Option<u64>,
    pub health_check_timeout_secs: Option<u64>,
    pub magic_login_ttl_secs: Option<u64>,
    pub playbooks_dir: Option<PathBuf>,
    pub ansible_playbook: Option<PathBuf>,
    pub rclone: Option<PathBuf>,
    pub jobs: Option<JobsFile>,
    pub wordpress_source_dir: Option<PathBuf>,
    pub update_source_dir: Option<PathBuf>,
    pub linux_uid_base: Option<i64>,
    pub max_upload_bytes: Option<u64>,
    pub upload_quota_bytes: Option<u64>,
    pub upload_retention_secs: Option<u64>,
    pub min_backup_interval_secs: Option<u64>,
    pub min_backup_retention_secs: Option<u64>,
    pub firewall_allow_tcp: Option<Vec<u16>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub allow_private_networks: Option<bool>,
    pub control_plane_addresses: Option<Vec<String>>,
    pub acme_directory_url: Option<String>,
    pub acme_email: Option<String>,
    pub acme_ca_bundle: Option<PathBuf>,
    pub cert_check_interval_secs: Option<u64>,
}

/// Overrides from flags and environment variables.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen_addr: Option<String>,
    /// `--insecure-plaintext`: true only when given.
    pub insecure_plaintext: bool,
    pub metrics_listen_addr: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub secrets_dir: Option<PathBuf>,
    pub playbooks_dir: Option<PathBuf>,
    pub wordpress_source_dir: Option<PathBuf>,
    pub update_source_dir: Option<PathBuf>,
}

/// Where playbooks are when nothing says: `./playbooks` in a checkout, else the installed copy.
pub fn default_playbooks_dir() -> PathBuf {
    let local = PathBuf::from("playbooks");
    if local.join("ansible.cfg").is_file() {
        local.canonicalize().unwrap_or(local)
    } else {
        PathBuf::from("/usr/share/pressluft/playbooks")
    }
}

/// The TLS files: both or neither.
fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles { cert, key })),
        (Some(_), None) => Err(config_error(
            "tls_key_file",
            "is needed with tls_cert_file (a PEM private key)",
        )),
        (None, Some(_)) => Err(config_error(
            "tls_cert_file",
            "is needed with tls_key_file (a PEM certificate chain)",
        )),
    }
}

impl Config {
    /// Refuses a plaintext listener on an address other than loopback unless the operator
    /// accepted it: bearer tokens and passwords would cross the network in the clear.
    pub fn check_listener(&self) -> Result<(), ConfigError> {
        if self.tls.is_none() && !self.listen_addr.ip().is_loopback() && !self.insecure_plaintext {
            return Err(config_error(
                "listen_addr",
                format!(
                    "{} is reachable from the network but no TLS is configured: passwords \
                     and tokens would travel in plaintext. Set tls_cert_file and tls_key_file, \
                     or listen on loopback behind a TLS reverse proxy, or accept the risk \
                     with --insecure-plaintext (insecure_plaintext = true)",
                    self.listen_addr
                ),
            ));
        }
        Ok(())
    }
}

/// `control_plane_addresses`, each checked.
fn addresses_or_ranges(list: Vec<String>) -> Result<Vec<String>, ConfigError> {
    list.into_iter()
        .map(|text| {
            address_or_range(&text).ok_or_else(|| {
                config_error(
                    "control_plane_addresses",
                    format!("{text:?} is not an IP address or CIDR range"),
                )
            })
        })
        .collect()
}

/// `trusted_proxies`, parsed.
fn ip_addresses(list: &[String]) -> Result<Vec<std::net::IpAddr>, ConfigError> {
    list.iter()
        .map(|text| {
            text.parse().map_err(|_| {
                config_error("trusted_proxies", format!("{text:?} is not an IP address"))
            })
        })
        .collect()
}

/// `text` if it is an IP address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`).
fn address_or_range(text: &str) -> Option<String> {
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b <= max).then(|| text.to_owned())
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
        let metrics_listen_addr = match overrides
            .metrics_listen_addr
            .clone()
            .or(file.metrics_listen_addr)
        {
            Some(text) if !text.is_empty() => Some(text.parse().map_err(|_| {
                config_error("metrics_listen_addr", format!("{text:?} is not host:port"))
            })?),
            _ => None,
        };
        let tls = tls_files(
            overrides.tls_cert_file.clone().or(file.tls_cert_file),
            overrides.tls_key_file.clone().or(file.tls_key_file),
        )?;
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
            insecure_plaintext: overrides.insecure_plaintext
                || file.insecure_plaintext.unwrap_or(false),
            metrics_listen_addr,
            tls,
            data_dir,
            secrets_dir,
            session_ttl: Duration::from_secs(file.session_ttl_secs.unwrap_or(12 * 3600)),
            login_max_failures: file.login_max_failures.unwrap_or(5),
            login_window: Duration::from_secs(file.login_window_secs.unwrap_or(300)),
            ssh_connect_timeout: Duration::from_secs(file.ssh_connect_timeout_secs.unwrap_or(10)),
            node_query_timeout: Duration::from_secs(file.node_query_timeout_secs.unwrap_or(10)),
            health_check_timeout: Duration::from_secs(file.health_check_timeout_secs.unwrap_or(10)),
            magic_login_ttl: Duration::from_secs(file.magic_login_ttl_secs.unwrap_or(60)),
            playbooks_dir: overrides
                .playbooks_dir
                .clone()
                .or(file.playbooks_dir)
                .unwrap_or_else(default_playbooks_dir),
            ansible_playbook: file
                .ansible_playbook
                .unwrap_or_else(|| PathBuf::from("ansible-playbook")),
            rclone: file.rclone.unwrap_or_else(|| PathBuf::from("rclone")),
            jobs: file.jobs.unwrap_or_default().apply(JobsConfig::default())?,
            wordpress_source_dir: overrides
                .wordpress_source_dir
                .clone()
                .or(file.wordpress_source_dir),
            update_source_dir: overrides
                .update_source_dir
                .clone()
                .or(file.update_source_dir),
            linux_uid_base: file.linux_uid_base.unwrap_or(20_000),
            max_upload_bytes: file.max_upload_bytes.unwrap_or(1 << 30),
            upload_quota_bytes: file.upload_quota_bytes.unwrap_or(4 << 30),
            upload_retention: Duration::from_secs(file.upload_retention_secs.unwrap_or(7 * 86_400)),
            min_backup_interval: Duration::from_secs(file.min_backup_interval_secs.unwrap_or(300)),
            min_backup_retention: Duration::from_secs(
                file.min_backup_retention_secs.unwrap_or(3_600),
            ),
            firewall_allow_tcp: file.firewall_allow_tcp.unwrap_or_default(),
            allow_private_networks: file.allow_private_networks.unwrap_or(false),
            control_plane_addresses: addresses_or_ranges(
                file.control_plane_addresses.unwrap_or_default(),
            )?,
            trusted_proxies: ip_addresses(&file.trusted_proxies.unwrap_or_default())?,
            acme: AcmeConfig {
                directory_url: file
                    .acme_directory_url
                    .unwrap_or_else(|| LETS_ENCRYPT_DIRECTORY.to_owned()),
                email: file.acme_email.unwrap_or_default(),
                ca_bundle: file.acme_ca_bundle,
            },
            cert_check_interval: Duration::from_secs(
                file.cert_check_interval_secs.unwrap_or(6 * 3_600),
            ),
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
        if self.node_query_timeout.is_zero() || self.node_query_timeout > Duration::from_secs(10) {
            return Err(config_error("node_query_timeout_secs", "must be 1-10"));
        }
        if self.health_check_timeout.is_zero()
            || self.health_check_timeout > Duration::from_mins(10)
        {
            return Err(config_error("health_check_timeout_secs", "must be 1-600"));
        }
        if self.magic_login_ttl.is_zero() || self.magic_login_ttl > Duration::from_hours(1) {
            return Err(config_error("magic_login_ttl_secs", "must be 1-3600"));
        }
        if !self.acme.directory_url.starts_with("https://") {
            return Err(config_error(
                "acme_directory_url",
                "must be an https:// URL",
            ));
        }
        if self
            .acme
            .email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            || (!self.acme.email.is_empty() && !self.acme.email.contains('@'))
        {
            return Err(config_error("acme_email", "must be an email address"));
        }
        if self
            .acme
            .ca_bundle
            .as_ref()
            .is_some_and(|p| !p.is_absolute())
        {
            return Err(config_error(
                "acme_ca_bundle",
                "must be an absolute path on the nodes",
            ));
        }
        if self.cert_check_interval.is_zero() {
            return Err(config_error(
                "cert_check_interval_secs",
                "must be at least 1",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(config_error("data_dir", "must not be empty"));
        }
        if !(1_000..=59_000).contains(&self.linux_uid_base) {
            return Err(config_error("linux_uid_base", "must be 1000-59000"));
        }
        for (field, dir) in [
            ("wordpress_source_dir", &self.wordpress_source_dir),
            ("update_source_dir", &self.update_source_dir),
        ] {
            if dir.as_ref().is_some_and(|d| !d.is_absolute()) {
                return Err(config_error(field, "must be an absolute path on the nodes"));
            }
        }
        let j = &self.jobs;
        if j.max_concurrent == 0 {
            return Err(config_error("jobs.max_concurrent", "must be at least 1"));
        }
        if j.max_per_node == 0 {
            return Err(config_error("jobs.max_per_node", "must be at least 1"));
        }
        if !(1..=20).contains(&j.max_attempts) {
            return Err(config_error("jobs.max_attempts", "must be 1-20"));
        }
        if j.timeout.is_zero() || j.timeouts.values().any(Duration::is_zero) {
            return Err(config_error("jobs.timeout_secs", "must be at least 1"));
        }
        if j.retry_backoff.is_empty() {
            return Err(config_error(
                "jobs.retry_backoff_secs",
                "must list at least one delay",
            ));
        }
        if j.lease.is_zero() || j.heartbeat.is_zero() || j.heartbeat * 2 > j.lease {
            return Err(config_error(
                "jobs.heartbeat_secs",
                "must be positive and at most half of jobs.lease_secs",
            ));
        }
        if j.poll.is_zero() || j.scheduler_tick.is_zero() || j.backup_cleanup_every.is_zero() {
            return Err(config_error("jobs.poll_secs", "periods must be positive"));
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
