//! `login`, `logout`, `whoami`.

use std::io::BufRead as _;

use clap::Args;
use pressluft_client::target::TokenSource;
use pressluft_client::{Config, ErrorKind, Overrides, Target, Token};
use pressluft_proto::v1::{GetCurrentUserRequest, LoginRequest, LogoutRequest, User};
use serde_json::json;

use crate::error::CliError;
use crate::global::Ctx;
use crate::output::{Details, message, time};

/// Environment variable holding the password for `login`.
const PASSWORD_ENV: &str = "PRESSLUFT_PASSWORD";
/// Context `login` creates when none is named and none is current.
const DEFAULT_CONTEXT: &str = "default";

/// Arguments of `pressluft login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Email address of the user
    #[arg(long)]
    pub email: String,
    /// Read the password from the first line of standard input (else PRESSLUFT_PASSWORD)
    #[arg(long)]
    pub password_stdin: bool,
}

/// Logs in and stores the session token in the named (created if missing) or current
/// context, which becomes current if there was none.
pub async fn login(ctx: &mut Ctx, args: LoginArgs) -> Result<(), CliError> {
    let password = read_password(args.password_stdin)?;
    let target = login_target(ctx)?;
    let context = ctx
        .flags
        .context
        .clone()
        .or_else(|| target.context.clone())
        .unwrap_or_else(|| DEFAULT_CONTEXT.to_owned());

    let mut clients = pressluft_client::connect(&target).await?;
    let response = clients
        .auth
        .login(LoginRequest {
            email: args.email,
            password,
        })
        .await
        // "run `pressluft login`" is no help when login itself was refused.
        .map_err(|status| CliError::from(status).with_hint(None))?
        .into_inner();

    let path = ctx.path_for_messages().to_owned();
    ctx.config.set_server(&context, &target.server);
    ctx.config
        .set_token(&context, Some(Token::new(response.token)), &path)?;
    if ctx.config.current_context.is_none() {
        ctx.config.use_context(&context, &path)?;
    }
    ctx.save_config()?;

    let user = response.user.unwrap_or_default();
    let expires = response.expire_time;
    ctx.emit(
        || {
            Details::new()
                .field("Logged in as", &user.email)
                .field("Context", &context)
                .field("Server", &target.server)
                .field(
                    "Expires",
                    pressluft_client::labels::short_time(expires.as_ref()),
                )
                .render()
        },
        || {
            json!({
                "user": message(&user),
                "context": context,
                "server": target.server,
                "expire_time": time(expires.as_ref()),
            })
        },
    )
}

/// The server to log in to. A context named with --context that does not exist yet is
/// created by login, so it resolves as if no context were configured. Login never sends a
/// token.
fn login_target(ctx: &Ctx) -> Result<Target, CliError> {
    let missing = ctx
        .flags
        .context
        .as_deref()
        .is_some_and(|name| ctx.config.context(name).is_none());
    let mut target = if missing {
        let flags = Overrides {
            context: None,
            ..ctx.flags.clone()
        };
        Target::resolve(
            &flags,
            &ctx.env,
            &Config::default(),
            ctx.path_for_messages(),
        )?
    } else {
        ctx.target()?
    };
    target.token = None;
    target.token_source = None;
    Ok(target)
}

fn read_password(from_stdin: bool) -> Result<String, CliError> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|err| CliError::other(format!("cannot read the password: {err}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var(PASSWORD_ENV).map_err(|_| {
            CliError::usage("no password given")
                .with_hint(Some("pass --password-stdin or set PRESSLUFT_PASSWORD"))
        })?
    };
    if password.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    Ok(password)
}

/// Revokes the token on the server and, when it came from the config, removes it there.
pub async fn logout(ctx: &mut Ctx) -> Result<(), CliError> {
    let target = ctx.target()?;
    if target.token.is_none() {
        return Err(CliError::auth("not logged in: no token to revoke"));
    }
    let mut clients = pressluft_client::connect(&target).await?;
    if let Err(status) = clients.auth.logout(LogoutRequest {}).await {
        let err = pressluft_client::Error::from(status);
        // Already expired or revoked: forgetting it locally is all that is left to do.
        if err.kind() != ErrorKind::Auth {
            return Err(err.into());
        }
    }
    let forgotten = match (&target.context, target.token_source) {
        (Some(context), Some(TokenSource::Context)) => {
            let path = ctx.path_for_messages().to_owned();
            ctx.config.set_token(context, None, &path)?;
            ctx.save_config()?;
            Some(context.clone())
        }
        _ => None,
    };
    ctx.emit(
        || match &forgotten {
            Some(context) => format!("Logged out; removed the token from context {context}.\n"),
            None => "Logged out.\n".to_owned(),
        },
        || json!({ "logged_out": true, "context": forgotten }),
    )
}

/// Shows the user (and API token) the token belongs to.
pub async fn whoami(ctx: &Ctx) -> Result<(), CliError> {
    let target = ctx.target()?;
    let mut clients = pressluft_client::connect(&target).await?;
    let response = clients
        .auth
        .get_current_user(GetCurrentUserRequest {})
        .await?
        .into_inner();
    let user = response.user.unwrap_or_default();
    ctx.emit(
        || whoami_details(&user, &response.token_name, &target.server),
        || {
            json!({
                "user": message(&user),
                "token_name": crate::output::opt_str(&response.token_name),
                "server": target.server,
            })
        },
    )
}

fn whoami_details(user: &User, token_name: &str, server: &str) -> String {
    let token = if token_name.is_empty() {
        "login session".to_owned()
    } else {
        format!("API token {token_name}")
    };
    Details::new()
        .field("Email", &user.email)
        .field_if("Name", &user.display_name)
        .field("ID", &user.id)
        .field("Via", token)
        .field("Server", server)
        .render()
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;

    fn user() -> User {
        User {
            id: "u-1".into(),
            email: "ada@example.com".into(),
            display_name: "Ada".into(),
            has_password: true,
            create_time: Some(Timestamp {
                seconds: 1_764_091_743,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn whoami_shows_the_user_and_the_token_kind() {
        let text = whoami_details(&user(), "", "http://127.0.0.1:8443");
        assert_eq!(
            text,
            "Email:   ada@example.com\n\
             Name:    Ada\n\
             ID:      u-1\n\
             Via:     login session\n\
             Server:  http://127.0.0.1:8443\n"
        );
        assert!(whoami_details(&user(), "ci", "x").contains("Via:     API token ci\n"));
    }

    #[test]
    fn user_json_has_rfc3339_times() {
        assert_eq!(
            message(&user()),
            json!({
                "id": "u-1",
                "email": "ada@example.com",
                "display_name": "Ada",
                "has_password": true,
                "create_time": "2025-11-25T17:29:03Z",
            })
        );
    }
}
