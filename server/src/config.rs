//! Server configuration: one struct, defaults, an optional TOML file, and flags/env overrides
//! (flags and `PRESSLUFT_*` variables win over the file). `validate` names the bad field.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::JobKind;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8443";

/// The server's configuration, defined once: each field with its documentation, its key in
/// the TOML file (durations as `<name>_secs`), and its default in [`Config::default`]. The
/// file and the flags/`PRESSLUFT_*` variables ([`Overrides`]) set keys of the same table, so
/// nothing here is restated per source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the gRPC / grpc-web / UI listener.
    pub listen_addr: SocketAddr,
    /// Serve without TLS on an address other than loopback (tokens would cross the network
    /// in the clear): refused unless set.
    pub insecure_plaintext: bool,
    /// Address of the Prometheus metrics listener (`GET /metrics`); none or empty: no metrics.
    #[serde(with = "optional_address")]
    pub metrics_listen_addr: Option<SocketAddr>,
    /// Certificate chain (PEM) of the API's own TLS listener, with `tls_key_file`; neither:
    /// plain HTTP/2 (loopback or behind a TLS-terminating proxy). See [`Config::tls`].
    pub tls_cert_file: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    pub tls_key_file: Option<PathBuf>,
    /// Directory of the SQLite database.
    pub data_dir: PathBuf,
    /// Directory of the master key and SSH key (empty: `<data_dir>/secrets`).
    pub secrets_dir: PathBuf,
    /// Lifetime of login sessions.
    #[serde(rename = "session_ttl_secs", with = "secs")]
    pub session_ttl: Duration,
    /// Failed logins allowed per email within `login_window` before logins are refused.
    pub login_max_failures: u32,
    /// Window of the login rate limit.
    #[serde(rename = "login_window_secs", with = "secs")]
    pub login_window: Duration,
    /// Timeout of the SSH host-key scan at node registration (1-10 s).
    #[serde(rename = "ssh_connect_timeout_secs", with = "secs")]
    pub ssh_connect_timeout: Duration,
    /// Cap of a node query: connect, authentication, command and output (1-10 s).
    #[serde(rename = "node_query_timeout_secs", with = "secs")]
    pub node_query_timeout: Duration,
    /// How long a playbook's HTTP health request may take (one try; it is retried once).
    #[serde(rename = "health_check_timeout_secs", with = "secs")]
    pub health_check_timeout: Duration,
    /// How long a magic login link works.
    #[serde(rename = "magic_login_ttl_secs", with = "secs")]
    pub magic_login_ttl: Duration,
    /// Directory with `ansible.cfg` and one playbook per job type.
    pub playbooks_dir: PathBuf,
    /// The `ansible-playbook` program.
    pub ansible_playbook: PathBuf,
    /// The `rclone` program (test uploads to the backup target).
    pub rclone: PathBuf,
    /// Job engine settings (the `[jobs]` table).
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
    #[serde(rename = "upload_retention_secs", with = "secs")]
    pub upload_retention: Duration,
    /// The shortest backup schedule interval `UpdateBackupSchedule` accepts (tests lower it
    /// to watch schedules fire).
    #[serde(rename = "min_backup_interval_secs", with = "secs")]
    pub min_backup_interval: Duration,
    /// The shortest backup retention `UpdateBackupSchedule` accepts.
    #[serde(rename = "min_backup_retention_secs", with = "secs")]
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
    /// The ACME directory nodes get custom domains' certificates from (certbot).
    pub acme_directory_url: String,
    /// Contact address for expiry notices from the CA; empty registers without one.
    pub acme_email: String,
    /// A CA bundle on the nodes that the ACME server's own certificate chains to (a test ACME
    /// server such as pebble; never needed for Let's Encrypt).
    pub acme_ca_bundle: Option<PathBuf>,
    /// How often the server reads each node's certificate state (expiry, last renewal).
    #[serde(rename = "cert_check_interval_secs", with = "secs")]
    pub cert_check_interval: Duration,
    /// How often every active or unreachable node is checked for an answer (one pooled SSH
    /// command); a node that does not answer is marked unreachable until it does again.
    #[serde(rename = "node_check_interval_secs", with = "secs")]
    pub node_check_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            insecure_plaintext: false,
            metrics_listen_addr: None,
            tls_cert_file: None,
            tls_key_file: None,
            data_dir: default_data_dir(),
            secrets_dir: PathBuf::new(),
            session_ttl: Duration::from_hours(12),
            login_max_failures: 5,
            login_window: Duration::from_mins(5),
            ssh_connect_timeout: Duration::from_secs(10),
            node_query_timeout: Duration::from_secs(10),
            health_check_timeout: Duration::from_secs(10),
            magic_login_ttl: Duration::from_mins(1),
            playbooks_dir: default_playbooks_dir(),
            ansible_playbook: PathBuf::from("ansible-playbook"),
            rclone: PathBuf::from("rclone"),
            jobs: JobsConfig::default(),
            wordpress_source_dir: None,
            update_source_dir: None,
            linux_uid_base: 20_000,
            max_upload_bytes: 1 << 30,
            upload_quota_bytes: 4 << 30,
            upload_retention: Duration::from_hours(7 * 24),
            min_backup_interval: Duration::from_mins(5),
            min_backup_retention: Duration::from_hours(1),
            firewall_allow_tcp: Vec::new(),
            trusted_proxies: Vec::new(),
            allow_private_networks: false,
            control_plane_addresses: Vec::new(),
            acme_directory_url: LETS_ENCRYPT_DIRECTORY.to_owned(),
            acme_email: String::new(),
            acme_ca_bundle: None,
            cert_check_interval: Duration::from_hours(6),
            node_check_interval: Duration::from_mins(1),
        }
    }
}

/// Where nodes get certificates (what playbooks see of the `acme_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    pub directory_url: String,
    pub email: String,
    pub ca_bundle: Option<PathBuf>,
}

/// Let's Encrypt's production ACME directory.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Job engine settings (SPEC section 5 defaults): the `[jobs]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run the worker and scheduler. Off, the server accepts and shows jobs but starts none
    /// (maintenance, or API tests that look at queued jobs).
    pub run_workers: bool,
    /// Jobs running at once, overall.
    pub max_concurrent: usize,
    /// Jobs running at once on one node.
    pub max_per_node: u32,
    /// Attempts of a job whose failure is retryable (1-20).
    pub max_attempts: i64,
    /// A job attempt's timeout.
    #[serde(rename = "timeout_secs", with = "secs")]
    pub timeout: Duration,
    /// Timeouts for some job types instead of `timeout` (a long first provisioning, a short
    /// cleanup; tests give only the job under test a short one): `[jobs.timeout_secs_by_type]`.
    #[serde(rename = "timeout_secs_by_type", with = "secs_by_kind")]
    pub timeouts: HashMap<JobKind, Duration>,
    /// Delays before the second, third, ... attempt (the last one repeats).
    #[serde(rename = "retry_backoff_secs", with = "secs_list")]
    pub retry_backoff: Vec<Duration>,
    /// A running job's lease; a job whose lease lapses is recovered.
    #[serde(rename = "lease_secs", with = "secs")]
    pub lease: Duration,
    /// Lease renewal period (at most half the lease).
    #[serde(rename = "heartbeat_secs", with = "secs")]
    pub heartbeat: Duration,
    /// Fallback polling period of the worker.
    #[serde(rename = "poll_secs", with = "secs")]
    pub poll: Duration,
    /// Time a stopped playbook gets between SIGTERM and SIGKILL.
    #[serde(rename = "kill_grace_secs", with = "secs")]
    pub kill_grace: Duration,
    /// Log lines kept per job attempt.
    pub max_log_lines: usize,
    /// How often due backup schedules are checked.
    #[serde(rename = "scheduler_tick_secs", with = "secs")]
    pub scheduler_tick: Duration,
    /// How often expired backups (and old uploads) are cleaned up.
    #[serde(rename = "backup_cleanup_every_secs", with = "secs")]
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

impl JobsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let j = self;
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
}

/// Durations as whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A list of durations as whole seconds.
mod secs_list {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        list.iter()
            .map(Duration::as_secs)
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<u64>::deserialize(d).map(|v| v.into_iter().map(Duration::from_secs).collect())
    }
}

/// Per-job-type durations as `type name = seconds`.
mod secs_by_kind {
    use std::collections::{BTreeMap, HashMap};
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    use crate::model::JobKind;

    pub fn serialize<S: Serializer>(
        map: &HashMap<JobKind, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter()
            .map(|(kind, d)| (kind.as_str(), d.as_secs()))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<JobKind, Duration>, D::Error> {
        HashMap::<JobKind, u64>::deserialize(d).map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, Duration::from_secs(v)))
                .collect()
        })
    }
}

/// An optional listen address; empty means none.
mod optional_address {
    use std::net::SocketAddr;

    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    // serde's `with` hands the field itself over.
    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&addr.map(|a| a.to_string()).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{text:?} is not host:port")))
    }
}

/// Keys set from flags and `PRESSLUFT_*` variables: the same keys as the file's, winning over
/// it.
#[derive(Debug, Default, Clone)]
pub struct Overrides(toml::Table);

impl Overrides {
    /// Sets `key` (a top-level key of the file) when `value` is given.
    #[must_use]
    pub fn with(mut self, key: &str, value: Option<impl Into<toml::Value>>) -> Self {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Sets a path-valued key when given.
    #[must_use]
    pub fn with_path(self, key: &str, value: Option<&Path>) -> Self {
        self.with(key, value.map(|p| p.to_string_lossy().into_owned()))
    }
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

impl Config {
    /// Refuses a plaintext listener on an address other than loopback unless the operator
    /// accepted it: bearer tokens and passwords would cross the network in the clear.
    pub fn check_listener(&self) -> Result<(), ConfigError> {
        if self.tls().is_none() && !self.listen_addr.ip().is_loopback() && !self.insecure_plaintext
        {
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
    pub field: String,
    pub message: String,
}

fn config_error(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The key (`table.key` inside a table) whose line holds byte `at` of a TOML text.
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let key = line.split_once('=').map(|(key, _)| key.trim())?;
    let table = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'));
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
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
        let table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| config_error("file", format!("{}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| config_error("file", format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        Self::merge(table, overrides)
    }

    /// Merges a parsed file and overrides (theirs win), fills what depends on other keys and
    /// validates.
    pub fn merge(mut table: toml::Table, overrides: &Overrides) -> Result<Self, ConfigError> {
        table.extend(overrides.0.clone());
        // Read back from text so an error has a place, and so the key it is about.
        let text = toml::to_string(&table).map_err(|e| config_error("file", e.to_string()))?;
        let mut config: Self = toml::from_str(&text).map_err(|e| {
            let key = e.span().and_then(|span| key_at(&text, span.start));
            ConfigError {
                field: key.unwrap_or_else(|| "file".to_owned()),
                message: e.message().trim().to_owned(),
            }
        })?;
        if config.secrets_dir.as_os_str().is_empty() {
            config.secrets_dir = config.data_dir.join("secrets");
        }
        config.validate()?;
        Ok(config)
    }

    /// A configuration for tests and tools: defaults under `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let overrides = Overrides::default()
            .with_path("data_dir", Some(data_dir))
            .with("listen_addr", Some("127.0.0.1:0"));
        Self::merge(toml::Table::new(), &overrides).unwrap_or_else(|e| {
            unreachable!("the default configuration is valid: {e}");
        })
    }

    /// The API's own TLS files, when both are set (`validate` refuses one without the other).
    pub fn tls(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.tls_cert_file.clone()?,
            key: self.tls_key_file.clone()?,
        })
    }

    /// What playbooks see of the `acme_*` keys.
    pub fn acme(&self) -> AcmeConfig {
        AcmeConfig {
            directory_url: self.acme_directory_url.clone(),
            email: self.acme_email.clone(),
            ca_bundle: self.acme_ca_bundle.clone(),
        }
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                return Err(config_error(
                    "tls_key_file",
                    "is needed with tls_cert_file (a PEM private key)",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "tls_cert_file",
                    "is needed with tls_key_file (a PEM certificate chain)",
                ));
            }
            _ => {}
        }
        if let Some(bad) = self
            .control_plane_addresses
            .iter()
            .find(|a| address_or_range(a).is_none())
        {
            return Err(config_error(
                "control_plane_addresses",
                format!("{bad:?} is not an IP address or CIDR range"),
            ));
        }
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
        if !self.acme_directory_url.starts_with("https://") {
            return Err(config_error(
                "acme_directory_url",
                "must be an https:// URL",
            ));
        }
        if self
            .acme_email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            || (!self.acme_email.is_empty() && !self.acme_email.contains('@'))
        {
            return Err(config_error("acme_email", "must be an email address"));
        }
        if self
            .acme_ca_bundle
            .as_ref()
            .is_some_and(|p| !p.is_absolute())
        {
            return Err(config_error(
                "acme_ca_bundle",
                "must be an absolute path on the nodes",
            ));
        }
        if self.node_check_interval.is_zero() {
            return Err(config_error(
                "node_check_interval_secs",
                "must be at least 1",
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
        self.jobs.validate()
    }

    /// Path of the SQLite database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("pressluft.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().expect("toml")
    }

    #[test]
    fn defaults_are_loopback() {
        let c = Config::merge(toml::Table::new(), &Overrides::default()).expect("valid");
        assert_eq!(c.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
        assert!(c.listen_addr.ip().is_loopback());
        assert_eq!(c.secrets_dir, c.data_dir.join("secrets"));
    }

    #[test]
    fn overrides_win_and_bad_fields_are_named() {
        let file = table("listen_addr = \"127.0.0.1:1\"\ndata_dir = \"/a\"");
        let c = Config::merge(
            file,
            &Overrides::default().with("listen_addr", Some("127.0.0.1:2")),
        )
        .expect("valid");
        assert_eq!(c.listen_addr.port(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/a"));

        let err = Config::merge(
            toml::Table::new(),
            &Overrides::default().with("listen_addr", Some("nope")),
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let err =
            Config::merge(table("unknown_field = 1"), &Overrides::default()).expect_err("unknown");
        assert!(err.to_string().contains("unknown_field"), "{err}");
        let err = Config::merge(table("session_ttl_secs = 1"), &Overrides::default())
            .expect_err("invalid");
        assert_eq!(err.field, "session_ttl_secs");
        let err = Config::merge(table("[jobs]\nlease_secs = \"x\""), &Overrides::default())
            .expect_err("invalid");
        assert!(err.to_string().contains("lease_secs"), "{err}");
    }

    #[test]
    fn every_key_reads_back_as_its_default_and_durations_are_seconds() {
        let defaults = Config::default();
        let text = toml::to_string(&defaults).expect("serializes");
        let again = Config::merge(table(&text), &Overrides::default()).expect("valid");
        assert_eq!(
            format!("{again:?}"),
            format!(
                "{:?}",
                Config {
                    secrets_dir: defaults.data_dir.join("secrets"),
                    ..defaults
                }
            )
        );
        let c = Config::merge(
            table("session_ttl_secs = 120\nmetrics_listen_addr = \"\"\n[jobs]\nretry_backoff_secs = [2, 4]\n[jobs.timeout_secs_by_type]\nnode_provision = 3600"),
            &Overrides::default(),
        )
        .expect("valid");
        assert_eq!(c.session_ttl, Duration::from_mins(2));
        assert_eq!(c.metrics_listen_addr, None);
        assert_eq!(
            c.jobs.retry_backoff,
            [Duration::from_secs(2), Duration::from_secs(4)]
        );
        assert_eq!(
            c.jobs.timeouts.get(&JobKind::NodeProvision),
            Some(&Duration::from_hours(1))
        );
        let err = Config::merge(
            table("[jobs.timeout_secs_by_type]\nnot_a_job = 1"),
            &Overrides::default(),
        )
        .expect_err("unknown job type");
        assert!(err.to_string().contains("not_a_job"), "{err}");
        let err = Config::merge(table("tls_cert_file = \"/c.pem\""), &Overrides::default())
            .expect_err("a certificate without its key");
        assert_eq!(err.field, "tls_key_file");
    }

    #[test]
    fn the_operations_guide_documents_every_key() {
        let guide = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
        )
        .expect("docs/operations.md");
        let keys = toml::to_string(&Config::default()).expect("serializes");
        let missing: Vec<&str> = keys
            .lines()
            .filter_map(|line| line.split_once(" = ").map(|(key, _)| key.trim()))
            .filter(|key| !guide.contains(&format!("`{key}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/operations.md does not name these configuration keys: {missing:?}"
        );
    }
}
