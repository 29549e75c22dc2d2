//! Which server to talk to, with which token.
//!
//! Resolution order, per value: explicit flags (`--server`, `--token`, `--context`) >
//! environment (`PRESSLUFT_SERVER`, `PRESSLUFT_TOKEN`) > the config's current context >
//! [`DEFAULT_SERVER`]. A context's token is only sent to that context's server: pointing a
//! flag or the environment at another server never leaks it there.

use std::path::Path;

use crate::config::{Config, Token};
use crate::error::Error;

/// The server's default listen address (plaintext h2c on loopback).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8443";

/// Environment variable with the server URL.
pub const SERVER_ENV: &str = "PRESSLUFT_SERVER";
/// Environment variable with the bearer token.
pub const TOKEN_ENV: &str = "PRESSLUFT_TOKEN";

/// Connection flags shared by every pressluft client binary.
// Doc comments here are clap help text, printed verbatim: no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// Server URL, http:// or https:// [env: PRESSLUFT_SERVER] [default: http://127.0.0.1:8443]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token (session or API token) [env: PRESSLUFT_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<Token>,
    /// Context of the config file to use instead of its current context
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

impl ConnectArgs {
    /// The flags as resolution overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            server: self.server.clone(),
            token: self.token.clone(),
            context: self.context.clone(),
        }
    }
}

/// Values given explicitly (command-line flags); they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Server URL.
    pub server: Option<String>,
    /// Bearer token.
    pub token: Option<Token>,
    /// Context name.
    pub context: Option<String>,
}

/// Values from the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `PRESSLUFT_SERVER`.
    pub server: Option<String>,
    /// `PRESSLUFT_TOKEN`.
    pub token: Option<Token>,
}

impl Env {
    /// Reads `PRESSLUFT_SERVER` and `PRESSLUFT_TOKEN`; empty values count as unset.
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
        Env {
            server: var(SERVER_ENV),
            token: var(TOKEN_ENV).map(Token::new),
        }
    }
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The `--token` flag.
    Flag,
    /// `PRESSLUFT_TOKEN`.
    Env,
    /// The selected config context.
    Context,
}

/// A resolved connection target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Validated server URL without a trailing slash.
    pub server: String,
    /// The token to send, if any.
    pub token: Option<Token>,
    /// Where `token` came from.
    pub token_source: Option<TokenSource>,
    /// The selected config context (named with `--context`, else the current one).
    pub context: Option<String>,
}

impl Target {
    /// A target for `server` with `token` and no context.
    pub fn new(server: &str, token: Option<Token>) -> Result<Target, Error> {
        Ok(Target {
            server: validate_server(server)?,
            token_source: token.as_ref().map(|_| TokenSource::Flag),
            token,
            context: None,
        })
    }

    /// Resolves flags, environment and config into a target (see the module docs for the
    /// order). `config_path` only names the file in error messages.
    pub fn resolve(
        flags: &Overrides,
        env: &Env,
        config: &Config,
        config_path: &Path,
    ) -> Result<Target, Error> {
        let selected = config.select(flags.context.as_deref(), config_path)?;
        let named = selected.filter(|_| flags.context.is_some());
        let current = selected.filter(|_| flags.context.is_none());

        let server = flags
            .server
            .as_deref()
            .or(named.map(|(_, context)| context.server.as_str()))
            .or(env.server.as_deref())
            .or(current.map(|(_, context)| context.server.as_str()))
            .unwrap_or(DEFAULT_SERVER);
        let server = validate_server(server)?;

        let context_token = |selected: Option<(&str, &crate::config::Context)>| {
            selected
                .filter(|(_, context)| same_server(&context.server, &server))
                .and_then(|(_, context)| context.token.clone())
                .map(|token| (token, TokenSource::Context))
        };
        let token = flags
            .token
            .clone()
            .map(|token| (token, TokenSource::Flag))
            .or_else(|| context_token(named))
            .or_else(|| env.token.clone().map(|token| (token, TokenSource::Env)))
            .or_else(|| context_token(current));

        Ok(Target {
            server,
            token_source: token.as_ref().map(|(_, source)| *source),
            token: token.map(|(token, _)| token),
            context: selected.map(|(name, _)| name.to_owned()),
        })
    }
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Checks that `server` is an `http://` or `https://` URL naming a host and nothing else;
/// returns it without a trailing slash.
pub fn validate_server(server: &str) -> Result<String, Error> {
    let invalid = |detail: &str| Error::InvalidServer {
        server: server.to_owned(),
        detail: detail.to_owned(),
    };
    let trimmed = server.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|_| invalid("not a URL, expected e.g. http://127.0.0.1:8443"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("the scheme must be http:// or https://")),
        None => return Err(invalid("missing http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("a server URL has no path"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/cfg.toml";

    fn config() -> Config {
        let path = Path::new(PATH);
        let mut config = Config::default();
        config.set_server("local", "http://127.0.0.1:8443");
        config
            .set_token("local", Some(Token::new("local-token")), path)
            .expect("exists");
        config.set_server("prod", "https://cp.example.com");
        config
            .set_token("prod", Some(Token::new("prod-token")), path)
            .expect("exists");
        config.use_context("local", path).expect("exists");
        config
    }

    fn resolve(flags: &Overrides, env: &Env, config: &Config) -> Target {
        Target::resolve(flags, env, config, Path::new(PATH)).expect("resolves")
    }

    fn token(target: &Target) -> Option<&str> {
        target.token.as_ref().map(Token::expose)
    }

    #[test]
    fn nothing_configured_uses_the_default_server_without_token() {
        let target = resolve(&Overrides::default(), &Env::default(), &Config::default());
        assert_eq!(target.server, DEFAULT_SERVER);
        assert_eq!(target.token, None);
        assert_eq!(target.token_source, None);
        assert_eq!(target.context, None);
    }

    #[test]
    fn current_context_is_the_fallback() {
        let target = resolve(&Overrides::default(), &Env::default(), &config());
        assert_eq!(target.server, "http://127.0.0.1:8443");
        assert_eq!(token(&target), Some("local-token"));
        assert_eq!(target.token_source, Some(TokenSource::Context));
        assert_eq!(target.context.as_deref(), Some("local"));
    }

    #[test]
    fn env_beats_the_current_context() {
        let env = Env {
            server: Some("http://10.0.0.5:8443".into()),
            token: Some(Token::new("env-token")),
        };
        let target = resolve(&Overrides::default(), &env, &config());
        assert_eq!(target.server, "http://10.0.0.5:8443");
        assert_eq!(token(&target), Some("env-token"));
        assert_eq!(target.token_source, Some(TokenSource::Env));
    }

    #[test]
    fn flags_beat_env() {
        let env = Env {
            server: Some("http://10.0.0.5:8443".into()),
            token: Some(Token::new("env-token")),
        };
        let flags = Overrides {
            server: Some("https://flag.example.com/".into()),
            token: Some(Token::new("flag-token")),
            context: None,
        };
        let target = resolve(&flags, &env, &config());
        assert_eq!(target.server, "https://flag.example.com");
        assert_eq!(token(&target), Some("flag-token"));
        assert_eq!(target.token_source, Some(TokenSource::Flag));
    }

    #[test]
    fn a_named_context_beats_env() {
        let env = Env {
            server: Some("http://10.0.0.5:8443".into()),
            token: Some(Token::new("env-token")),
        };
        let flags = Overrides {
            context: Some("prod".into()),
            ..Overrides::default()
        };
        let target = resolve(&flags, &env, &config());
        assert_eq!(target.server, "https://cp.example.com");
        assert_eq!(token(&target), Some("prod-token"));
        assert_eq!(target.context.as_deref(), Some("prod"));
    }

    #[test]
    fn a_context_token_never_goes_to_another_server() {
        let flags = Overrides {
            server: Some("http://elsewhere:8443".into()),
            ..Overrides::default()
        };
        let target = resolve(&flags, &Env::default(), &config());
        assert_eq!(target.server, "http://elsewhere:8443");
        assert_eq!(target.token, None);

        let env = Env {
            server: Some("http://elsewhere:8443".into()),
            token: None,
        };
        let target = resolve(&Overrides::default(), &env, &config());
        assert_eq!(target.token, None);
    }

    #[test]
    fn an_unknown_context_is_an_error() {
        let flags = Overrides {
            context: Some("nope".into()),
            ..Overrides::default()
        };
        let err = Target::resolve(&flags, &Env::default(), &config(), Path::new(PATH))
            .expect_err("unknown context");
        assert!(matches!(err, Error::UnknownContext { .. }));
        assert_eq!(err.kind(), crate::ErrorKind::Usage);
    }

    #[test]
    fn server_urls_are_validated() {
        assert_eq!(
            validate_server("http://127.0.0.1:8443/").expect("valid"),
            "http://127.0.0.1:8443"
        );
        assert!(validate_server("https://cp.example.com").is_ok());
        for bad in [
            "127.0.0.1:8443",
            "ftp://host",
            "http://",
            "http://host/path",
            "not a url",
        ] {
            let err = validate_server(bad).expect_err(bad);
            assert_eq!(err.kind(), crate::ErrorKind::Usage, "{bad}");
        }
    }
}
