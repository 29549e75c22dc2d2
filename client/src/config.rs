//! The contexts file: named servers with their tokens, like kubectl contexts.
//!
//! ```toml
//! current_context = "local"
//!
//! [contexts.local]
//! server = "http://127.0.0.1:8443"
//! token = "..."
//! ```
//!
//! It lives at `$XDG_CONFIG_HOME/pressluft/config.toml` unless `PRESSLUFT_CONFIG` names
//! another file. It holds tokens, so it is written with mode 0600 in a 0700 directory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Environment variable naming the config file, overriding the default location.
pub const CONFIG_ENV: &str = "PRESSLUFT_CONFIG";

/// A bearer token. Its `Debug` prints `***` so it never lands in logs by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// Wraps a token secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Token(secret.into())
    }

    /// The secret, for the `authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Token {
    fn from(secret: String) -> Self {
        Token(secret)
    }
}

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Context used when none is named on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One named server and the credentials for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Server URL, `http://` or `https://`.
    pub server: String,
    /// Session or API token, set by `pressluft login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
}

impl Config {
    /// The config file location: `PRESSLUFT_CONFIG`, else `<config dir>/pressluft/config.toml`.
    pub fn default_path() -> Option<PathBuf> {
        path_from(std::env::var_os(CONFIG_ENV), dirs::config_dir())
    }

    /// Reads the config file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(Error::ConfigIo {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|err| Error::ConfigInvalid {
            path: path.to_owned(),
            detail: err.message().to_owned(),
        })
    }

    /// Writes the config file atomically with mode 0600, creating its directory (0700).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let io_err = |source| Error::ConfigIo {
            path: path.to_owned(),
            source,
        };
        let text = toml::to_string(self).map_err(|err| Error::ConfigInvalid {
            path: path.to_owned(),
            detail: err.to_string(),
        })?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        create_private_dir(dir).map_err(io_err)?;

        // Write a fresh 0600 file and rename it over the old one, so a crash never leaves a
        // truncated file and the token is never readable by others, not even briefly.
        let mut tmp_name = OsString::from(".");
        tmp_name.push(path.file_name().unwrap_or_else(|| "config.toml".as_ref()));
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        let result =
            write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io_err)
    }

    /// The context with this name.
    pub fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.get(name)
    }

    /// The context to use: the named one (which must exist), else the current context (which
    /// must exist when set), else none.
    pub fn select<'a>(
        &'a self,
        name: Option<&'a str>,
        path: &Path,
    ) -> Result<Option<(&'a str, &'a Context)>, Error> {
        let Some(name) = name.or(self.current_context.as_deref()) else {
            return Ok(None);
        };
        match self.contexts.get(name) {
            Some(context) => Ok(Some((name, context))),
            None => Err(Error::UnknownContext {
                name: name.to_owned(),
                path: path.to_owned(),
            }),
        }
    }

    /// Creates the context or changes its server, keeping its token only when the server is
    /// unchanged (a token belongs to the server that issued it).
    pub fn set_server(&mut self, name: &str, server: &str) {
        let context = self
            .contexts
            .entry(name.to_owned())
            .or_insert_with(|| Context {
                server: server.to_owned(),
                token: None,
            });
        if context.server != server {
            server.clone_into(&mut context.server);
            context.token = None;
        }
    }

    /// Sets (or with `None` clears) the token of an existing context.
    pub fn set_token(
        &mut self,
        name: &str,
        token: Option<Token>,
        path: &Path,
    ) -> Result<(), Error> {
        let context = self
            .contexts
            .get_mut(name)
            .ok_or_else(|| Error::UnknownContext {
                name: name.to_owned(),
                path: path.to_owned(),
            })?;
        context.token = token;
        Ok(())
    }

    /// Makes an existing context the current one.
    pub fn use_context(&mut self, name: &str, path: &Path) -> Result<(), Error> {
        if !self.contexts.contains_key(name) {
            return Err(Error::UnknownContext {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        self.current_context = Some(name.to_owned());
        Ok(())
    }
}

fn path_from(env_override: Option<OsString>, config_dir: Option<PathBuf>) -> Option<PathBuf> {
    match env_override {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => config_dir.map(|dir| dir.join("pressluft").join("config.toml")),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        let mut config = Config::default();
        config.set_server("local", "http://127.0.0.1:8443");
        config
            .set_token("local", Some(Token::new("secret-1")), Path::new("x"))
            .expect("context exists");
        config.set_server("prod", "https://cp.example.com");
        config
            .use_context("local", Path::new("x"))
            .expect("context exists");
        config
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&dir.path().join("nope.toml")).expect("load");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pressluft").join("config.toml");
        let config = sample();
        config.save(&path).expect("save");
        assert_eq!(Config::load(&path).expect("load"), config);

        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("current_context = \"local\""), "{text}");
        assert!(text.contains("[contexts.local]"), "{text}");
        assert!(text.contains("token = \"secret-1\""), "{text}");
        // No temp file is left behind.
        let entries = std::fs::read_dir(path.parent().expect("parent")).expect("read_dir");
        assert_eq!(entries.count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn save_uses_private_permissions() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().expect("tempdir");
        let config_dir = dir.path().join("nested").join("pressluft");
        let path = config_dir.join("config.toml");
        // An existing world-readable file is replaced, not reused.
        std::fs::create_dir_all(&config_dir).expect("mkdir");
        std::fs::write(&path, "").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

        sample().save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let fresh = dir.path().join("fresh").join("config.toml");
        sample().save(&fresh).expect("save");
        let dir_mode = std::fs::metadata(fresh.parent().expect("parent"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn unknown_fields_and_bad_syntax_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[contexts.a]\nserver = \"http://x\"\ntoken_typo = \"t\"\n",
        )
        .expect("write");
        let err = Config::load(&path).expect_err("unknown field");
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err}");
        assert!(err.to_string().contains("token_typo"), "{err}");

        std::fs::write(&path, "current_context = ").expect("write");
        assert!(Config::load(&path).is_err());
    }

    #[test]
    fn select_prefers_the_named_context_and_checks_it_exists() {
        let config = sample();
        let path = Path::new("/c.toml");
        let (name, _) = config.select(None, path).expect("ok").expect("current");
        assert_eq!(name, "local");
        let (name, context) = config
            .select(Some("prod"), path)
            .expect("ok")
            .expect("named");
        assert_eq!(
            (name, context.server.as_str()),
            ("prod", "https://cp.example.com")
        );
        let err = config.select(Some("nope"), path).expect_err("unknown");
        assert_eq!(err.to_string(), "context `nope` is not defined in /c.toml");
        assert!(Config::default().select(None, path).expect("ok").is_none());
    }

    #[test]
    fn changing_a_context_server_drops_its_token() {
        let mut config = sample();
        config.set_server("local", "http://127.0.0.1:8443");
        assert!(config.context("local").expect("local").token.is_some());
        config.set_server("local", "http://10.0.0.1:8443");
        assert!(config.context("local").expect("local").token.is_none());
    }

    #[test]
    fn set_token_and_use_context_need_an_existing_context() {
        let mut config = sample();
        let path = Path::new("x");
        assert!(config.set_token("nope", None, path).is_err());
        assert!(config.use_context("nope", path).is_err());
        config.set_token("local", None, path).expect("exists");
        assert!(config.context("local").expect("local").token.is_none());
    }

    #[test]
    fn path_prefers_the_env_override() {
        let dir = PathBuf::from("/home/u/.config");
        assert_eq!(
            path_from(Some("/tmp/p.toml".into()), Some(dir.clone())),
            Some(PathBuf::from("/tmp/p.toml"))
        );
        assert_eq!(
            path_from(Some(OsString::new()), Some(dir.clone())),
            Some(dir.join("pressluft/config.toml"))
        );
        assert_eq!(path_from(None, None), None);
    }

    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(format!("{:?}", Token::new("hunter2")), "***");
        assert!(!format!("{:?}", sample()).contains("secret-1"));
    }
}
