//! Node queries (SPEC section 8): read-only facts from a node in one SSH round-trip through the
//! pooled connections, no job and no lock, within the configured cap. Environment queries run
//! as the environment's Linux user. Every command is a fixed string; the only values in it are
//! identifiers the server made itself (Linux user, paths, PHP version, URL), and each is checked
//! against a strict character set before it is quoted.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Reason, Result};
use crate::model::{EnvironmentId, EnvironmentStatus, NodeId};
use crate::ssh::NodeSessions;
use crate::ssh::{Output, Remote};
use crate::store::{EnvironmentRecord, NodeRecord, Store};

/// The node-side query runner (installed by node_provision): `wp eval-file` of
/// pressluft-query.php where WP-CLI exists, plain PHP elsewhere.
const QUERY: &str = "/usr/local/lib/pressluft/pressluft-query";

/// PHP printing its own version and the PHP versions with FPM installed on the node (run with
/// `-n`: no ini files, no extensions to load, a third of the start-up time).
const PHP_VERSION_CODE: &str = r#"echo json_encode(["version" => PHP_VERSION, "installed" => array_values(array_filter(array_map("basename", glob("/etc/php/*")), fn($v) => is_dir("/etc/php/$v/fpm")))]);"#;

/// What node queries use: the store (to find their node and environment), the pooled
/// sessions, and their limits.
#[derive(Debug, Clone)]
pub struct NodeQueries {
    pub store: Store,
    pub sessions: Arc<NodeSessions>,
    /// The cap on one query, enforced here and on the node.
    pub timeout: Duration,
    /// How long a one-time login link stays valid.
    pub magic_login_ttl: Duration,
}

/// A one-time login link.
#[derive(Debug, Deserialize)]
pub struct MagicLogin {
    pub url: String,
    pub user_login: String,
    /// Unix seconds.
    pub expires: i64,
}

/// PHP's version and the installed versions.
#[derive(Debug, Deserialize)]
pub struct PhpVersion {
    pub version: String,
    pub installed: Vec<String>,
}

/// Disk usage of an environment, in bytes.
#[derive(Debug, Deserialize)]
pub struct DiskUsage {
    pub releases_bytes: i64,
    pub uploads_bytes: i64,
    pub database_bytes: i64,
    pub total_bytes: i64,
    pub node_free_bytes: i64,
}

/// An installed plugin or theme.
#[derive(Debug, Deserialize)]
pub struct Component {
    pub slug: String,
    pub name: String,
    pub version: String,
    pub active: bool,
}

/// WordPress core version and inventory.
#[derive(Debug, Deserialize)]
pub struct WordPressInfo {
    pub core: String,
    pub plugins: Vec<Component>,
    pub themes: Vec<Component>,
    /// "wp-cli" or "php".
    pub method: String,
}

/// MariaDB's state on a node.
#[derive(Debug, Default)]
pub struct DatabaseStatus {
    pub up: bool,
    pub version: String,
    pub uptime_secs: i64,
    pub connections: i64,
}

/// Creates a one-time admin login URL for an active environment (audit-logged by the caller).
pub async fn magic_login(queries: &NodeQueries, env_id: EnvironmentId) -> Result<MagicLogin> {
    let (env, node) = environment_and_node(queries, env_id).await?;
    if env.status != EnvironmentStatus::Active {
        return Err(Error::precondition(
            Reason::EnvironmentNotActive,
            format!("the environment is {}; logins need it active", env.status),
        ));
    }
    let ttl = queries.magic_login_ttl.as_secs().to_string();
    let root = env.root_path();
    let url = env.url();
    let command = as_user(
        queries,
        &env.linux_user,
        &[QUERY, "magic-login", &root, &url, &ttl],
    )?;
    let login: MagicLogin = json(&run(queries, &node, &command).await?)?;
    checked_magic_login(login, &url)
}

/// The node's answer is the tenant's to forge (the query runs as the site's user, with its
/// code): the link is rebuilt here from the environment's URL and a token of the expected
/// shape, so it can only ever lead to the site itself; the user name is shown, so it must
/// be plain text.
fn checked_magic_login(login: MagicLogin, site_url: &str) -> Result<MagicLogin> {
    let prefix = format!("{site_url}/?pressluft_login=");
    let token = login
        .url
        .strip_prefix(&prefix)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let user_ok = (1..=60).contains(&login.user_login.chars().count())
        && !login.user_login.chars().any(char::is_control);
    match token {
        Some(token) if user_ok => Ok(MagicLogin {
            url: format!("{prefix}{token}"),
            ..login
        }),
        _ => Err(Error::Internal(
            "the node answered the login query with an unexpected link or user name".into(),
        )),
    }
}

/// The PHP version of a node's CLI, or of an environment's PHP (as its user).
pub async fn php_version(
    queries: &NodeQueries,
    node_id: Option<NodeId>,
    env_id: Option<EnvironmentId>,
) -> Result<PhpVersion> {
    let (command, node) = match (node_id, env_id) {
        (_, Some(env_id)) => {
            let (env, node) = environment_and_node(queries, env_id).await?;
            live(&env)?;
            let php = format!("php{}", env.php_version);
            let command = as_user(
                queries,
                &env.linux_user,
                &[&php, "-n", "-r", PHP_VERSION_CODE],
            )?;
            (command, node)
        }
        (Some(node_id), None) => {
            let node = queries.store.node(node_id).await?;
            (
                capped(queries, &["php", "-n", "-r", PHP_VERSION_CODE])?,
                node,
            )
        }
        (None, None) => return Err(Error::internal("php_version needs a node or environment")),
    };
    json(&run(queries, &node, &command).await?)
}

/// Bytes used by an environment's releases, uploads and database.
pub async fn disk_usage(queries: &NodeQueries, env_id: EnvironmentId) -> Result<DiskUsage> {
    env_script(queries, env_id, "disk").await
}

/// Core version, plugins and themes of an environment's live release.
pub async fn wordpress_info(queries: &NodeQueries, env_id: EnvironmentId) -> Result<WordPressInfo> {
    env_script(queries, env_id, "wp-info").await
}

/// MariaDB's version, uptime and connections on a node (as root through sudo; `up` false when
/// it does not answer).
pub async fn database_status(queries: &NodeQueries, node_id: NodeId) -> Result<DatabaseStatus> {
    let node = queries.store.node(node_id).await?;
    let sql = "SELECT VERSION(); SHOW GLOBAL STATUS WHERE Variable_name IN (\"Uptime\", \"Threads_connected\")";
    let mut argv = vec!["sudo", "-n", "--"];
    let capped = cap_argv(queries);
    argv.extend(capped.iter().map(String::as_str));
    argv.extend(["mysql", "-N", "--batch", "-e", sql]);
    let output = run(queries, &node, &shell_words(&argv)?).await?;
    Ok(parse_database_status(&output))
}

/// Whether `node` answers: one command (`true`) through its pooled connection, within the
/// cap (a node that does not answer is `NodeUnreachable`, its host key changed `HostKeyMismatch`).
pub async fn contact(queries: &NodeQueries, node: &NodeRecord) -> Result<()> {
    let output = run(queries, node, "true").await?;
    if output.success() {
        Ok(())
    } else {
        Err(Error::NodeUnreachable(format!(
            "`true` ended with {:?}",
            output.status
        )))
    }
}

/// The node's certificates (`pressluft-certs status`, as root through sudo): expiry and the
/// last issue or renewal of each.
pub async fn certificates(queries: &NodeQueries, node_id: NodeId) -> Result<Vec<NodeCertificate>> {
    #[derive(serde::Deserialize)]
    struct Status {
        certificates: Vec<NodeCertificate>,
    }
    let node = queries.store.node(node_id).await?;
    let mut argv = vec!["sudo", "-n", "--"];
    let capped = cap_argv(queries);
    argv.extend(capped.iter().map(String::as_str));
    argv.extend(["/usr/local/lib/pressluft/pressluft-certs", "status"]);
    let status: Status = json(&run(queries, &node, &shell_words(&argv)?).await?)?;
    Ok(status.certificates)
}

fn parse_database_status(output: &Output) -> DatabaseStatus {
    if !output.success() {
        return DatabaseStatus::default();
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let mut status = DatabaseStatus {
        up: true,
        version: lines.next().unwrap_or_default().trim().to_owned(),
        ..DatabaseStatus::default()
    };
    for line in lines {
        let mut fields = line.split('\t');
        let (Some(name), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        let value = value.trim().parse().unwrap_or(0);
        match name {
            "Uptime" => status.uptime_secs = value,
            "Threads_connected" => status.connections = value,
            _ => {}
        }
    }
    status
}

async fn env_script<T: serde::de::DeserializeOwned>(
    queries: &NodeQueries,
    env_id: EnvironmentId,
    query: &str,
) -> Result<T> {
    let (env, node) = environment_and_node(queries, env_id).await?;
    live(&env)?;
    let root = env.root_path();
    let command = as_user(queries, &env.linux_user, &[QUERY, query, &root])?;
    json(&run(queries, &node, &command).await?)
}

async fn environment_and_node(
    queries: &NodeQueries,
    env_id: EnvironmentId,
) -> Result<(EnvironmentRecord, NodeRecord)> {
    let env = queries.store.environment(env_id).await?;
    let node = queries.store.node(env.node_id).await?;
    Ok((env, node))
}

/// Queries other than logins work whenever the environment has a live release, also while a
/// job runs on it (they take no lock).
fn live(env: &EnvironmentRecord) -> Result<()> {
    use EnvironmentStatus as S;
    if matches!(
        env.status,
        S::Creating | S::Failed | S::Deleting | S::Deleted
    ) {
        return Err(Error::precondition(
            Reason::EnvironmentNotActive,
            format!(
                "the environment is {}; it has no live release to query",
                env.status
            ),
        ));
    }
    Ok(())
}

async fn run(queries: &NodeQueries, node: &NodeRecord, command: &str) -> Result<Output> {
    let remote = Remote {
        host: node.hostname.clone(),
        port: u16::try_from(node.ssh_port)
            .map_err(|_| Error::internal("a stored SSH port is out of range"))?,
        user: node.ssh_user.clone(),
        host_key: node.host_key.clone(),
    };
    queries
        .sessions
        .run(&remote, command, queries.timeout)
        .await
}

/// The query's JSON answer, or its error: the last line our script printed, cut short; PHP's
/// own errors (which name paths) only as a pointer to the node's log.
fn json<T: serde::de::DeserializeOwned>(output: &Output) -> Result<T> {
    if !output.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.trim().lines().last().unwrap_or_default();
        let message: String = if last.is_empty() || last.starts_with("PHP ") {
            "it ended with an error (details in the node's PHP log)".into()
        } else {
            last.chars().take(300).collect()
        };
        return Err(Error::precondition(
            Reason::NodeQueryFailed,
            format!("the node query failed: {message}"),
        ));
    }
    let value: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::internal(format!("a node query printed no JSON: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| Error::internal(format!("a node query printed unexpected JSON: {e}")))
}

/// The remote-side cap: the command is killed on the node when the query's time is up, even
/// when the connection is gone.
fn cap_argv(queries: &NodeQueries) -> Vec<String> {
    vec![
        "timeout".into(),
        "-s".into(),
        "KILL".into(),
        queries.timeout.as_secs().to_string(),
    ]
}

fn capped(queries: &NodeQueries, argv: &[&str]) -> Result<String> {
    let mut all: Vec<&str> = Vec::new();
    let cap = cap_argv(queries);
    all.extend(cap.iter().map(String::as_str));
    all.extend_from_slice(argv);
    shell_words(&all)
}

/// `argv` run as `user` (sudo from the node's SSH user), killed at the cap.
fn as_user(queries: &NodeQueries, user: &str, argv: &[&str]) -> Result<String> {
    let mut all = vec!["sudo", "-n", "-u", user, "--"];
    let cap = cap_argv(queries);
    all.extend(cap.iter().map(String::as_str));
    all.extend_from_slice(argv);
    shell_words(&all)
}

/// Quotes every word for the remote shell. Words are the server's own values; one outside the
/// expected characters is a bug, refused rather than quoted.
fn shell_words(argv: &[&str]) -> Result<String> {
    let mut command = String::new();
    for (i, word) in argv.iter().enumerate() {
        if word.contains('\'') || word.contains('\0') {
            return Err(Error::internal("a node query word holds a quote"));
        }
        if i > 0 {
            command.push(' ');
        }
        command.push('\'');
        command.push_str(word);
        command.push('\'');
    }
    Ok(command)
}

/// One certificate as the node's `pressluft-certs status` reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct NodeCertificate {
    pub name: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The last issue or renewal attempt succeeded.
    #[serde(default = "yes")]
    pub ok: bool,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub attempt_at: Option<i64>,
}

const fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_magic_login_answer_is_refused() {
        let url = "https://shop.example";
        let token = "ab".repeat(32);
        let good = |link: String, user: &str| MagicLogin {
            url: link,
            user_login: user.into(),
            expires: 1,
        };
        let ok = checked_magic_login(
            good(format!("{url}/?pressluft_login={token}"), "admin"),
            url,
        )
        .expect("a well-formed answer");
        assert_eq!(ok.url, format!("{url}/?pressluft_login={token}"));
        for (link, user) in [
            (
                format!("https://evil.example/?pressluft_login={token}"),
                "admin",
            ),
            (
                format!("{url}.evil.example/?pressluft_login={token}"),
                "admin",
            ),
            (
                format!("{url}/?pressluft_login={token}&next=//evil"),
                "admin",
            ),
            (format!("{url}/?pressluft_login=xyz"), "admin"),
            (format!("{url}/?pressluft_login={token}"), "ad\u{1b}[2Jmin"),
            (format!("{url}/?pressluft_login={token}"), ""),
        ] {
            assert!(
                checked_magic_login(good(link.clone(), user), url).is_err(),
                "{link} {user}"
            );
        }
    }

    #[test]
    fn words_are_quoted_and_quotes_refused() {
        assert_eq!(
            shell_words(&["php", "/x y", "a;b"]).expect("quoted"),
            "'php' '/x y' 'a;b'"
        );
        assert!(shell_words(&["it's"]).is_err());
    }

    #[test]
    fn database_status_reads_mysql_batch_output() {
        let output = Output {
            status: Some(0),
            stdout: b"10.11.6-MariaDB-0+deb12u1\nThreads_connected\t3\nUptime\t1234\n".to_vec(),
            stderr: Vec::new(),
        };
        let status = parse_database_status(&output);
        assert!(status.up);
        assert_eq!(status.version, "10.11.6-MariaDB-0+deb12u1");
        assert_eq!((status.uptime_secs, status.connections), (1234, 3));
        let down = parse_database_status(&Output {
            status: Some(1),
            ..Output::default()
        });
        assert!(!down.up);
    }
}
