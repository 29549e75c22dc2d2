//! `token ...`, `user ...`, `settings ...` and `audit`: the control plane's own administration.

use std::io::Read as _;

use clap::{Args, Subcommand};
use pressluft_client::labels::short_time;
use pressluft_proto::v1::{
    ApiToken, AuditEvent, AuditResult, CreateApiTokenRequest, CreateUserRequest,
    GetSettingsRequest, ListApiTokensRequest, ListAuditEventsRequest, ListUsersRequest,
    RevokeApiTokenRequest, SetBackupTargetRequest, Settings, UpdateSettingsRequest,
};
use serde_json::json;

use crate::all_pages;
use crate::backup::parse_duration;
use crate::error::CliError;
use crate::global::Ctx;
use crate::output::{Details, Table, message, or_dash, yes_no};

const PAGE_SIZE: i32 = 500;

/// Subcommands of `pressluft token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for scripts; the secret is shown once
    ///
    /// Example: PRESSLUFT_TOKEN=$(pressluft token create ci --ttl 90d -o json | jq -r .secret)
    Create {
        /// A name to recognise it by
        name: String,
        /// Lifetime, e.g. 30d [default: no expiry]
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<u64>,
    },
    /// List your API tokens
    List,
    /// Revoke an API token
    Revoke {
        /// Token id
        id: String,
    },
}

/// Subcommands of `pressluft user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users
    List,
    /// Create a user; the password is read from stdin (none: a service account)
    ///
    /// Example: printf '%s' "$PASSWORD" | pressluft user create ops@example.com --name Ops --password-stdin
    Create {
        /// Email address (the login name)
        email: String,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Read the password from stdin (at least 12 characters)
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Subcommands of `pressluft settings`.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show the settings
    Show,
    /// Change settings
    Set(SetArgs),
    /// Set the S3-compatible backup target (checked with a test upload first)
    ///
    /// Example: pressluft settings backup-target --endpoint https://s3.example.com --bucket
    /// backups --access-key-id KEY --secret-stdin < secret.txt
    BackupTarget(TargetArgs),
}

/// Arguments of `pressluft settings set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Wildcard preview domain (empty string: sslip.io)
    #[arg(long, value_name = "DOMAIN")]
    pub preview_domain: Option<String>,
    /// Node new sites go to
    #[arg(long, value_name = "ID")]
    pub default_node: Option<String>,
    /// PHP version new sites get
    #[arg(long, value_name = "VERSION")]
    pub default_php: Option<String>,
    /// Successful releases kept per environment
    #[arg(long, value_name = "N")]
    pub releases_to_keep: Option<i32>,
}

/// Arguments of `pressluft settings backup-target`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Endpoint URL, e.g. https://s3.eu-central-1.amazonaws.com
    #[arg(long)]
    pub endpoint: String,
    /// Bucket
    #[arg(long)]
    pub bucket: String,
    /// Region [default: us-east-1]
    #[arg(long)]
    pub region: Option<String>,
    /// Key prefix inside the bucket
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Access key id
    #[arg(long, value_name = "ID")]
    pub access_key_id: String,
    /// Read the secret access key from stdin (never from a flag: flags end up in shell history)
    #[arg(long, required = true)]
    pub secret_stdin: bool,
}

/// Runs a `token` subcommand.
pub async fn run_token(ctx: &Ctx, command: TokenCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        TokenCommand::Create { name, ttl } => {
            let created = clients
                .auth
                .create_api_token(CreateApiTokenRequest {
                    name,
                    ttl: ttl.map(|s| prost_types::Duration {
                        seconds: i64::try_from(s).unwrap_or(i64::MAX),
                        nanos: 0,
                    }),
                })
                .await?
                .into_inner();
            let token = created.token.unwrap_or_default();
            ctx.emit(
                || {
                    format!(
                        "{}\nThe secret is shown only now: store it (e.g. as PRESSLUFT_TOKEN).\n\n{}",
                        created.secret,
                        token_details(&token)
                    )
                },
                || json!({"secret": created.secret, "token": message(&token)}),
            )
        }
        TokenCommand::List => {
            let tokens = all_pages!(
                |token| clients.auth.list_api_tokens(ListApiTokensRequest {
                    page_size: PAGE_SIZE,
                    page_token: token,
                }),
                tokens
            );
            ctx.emit(
                || {
                    let mut table =
                        Table::new(["ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "REVOKED"]);
                    for t in &tokens {
                        table.row([
                            t.id.clone(),
                            t.name.clone(),
                            short_time(t.create_time.as_ref()),
                            short_time(t.expire_time.as_ref()),
                            short_time(t.last_use_time.as_ref()),
                            short_time(t.revoke_time.as_ref()),
                        ]);
                    }
                    table.render()
                },
                || json!({"tokens": tokens.iter().map(message).collect::<Vec<_>>()}),
            )
        }
        TokenCommand::Revoke { id } => {
            let token = clients
                .auth
                .revoke_api_token(RevokeApiTokenRequest { token_id: id })
                .await?
                .into_inner()
                .token
                .unwrap_or_default();
            ctx.emit(|| token_details(&token), || message(&token))
        }
    }
}

fn token_details(t: &ApiToken) -> String {
    Details::new()
        .field("ID", &t.id)
        .field("Name", &t.name)
        .field("Created", short_time(t.create_time.as_ref()))
        .field("Expires", short_time(t.expire_time.as_ref()))
        .field("Revoked", short_time(t.revoke_time.as_ref()))
        .render()
}

/// Runs a `user` subcommand.
pub async fn run_user(ctx: &Ctx, command: UserCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        UserCommand::List => {
            let users = all_pages!(
                |token| clients.auth.list_users(ListUsersRequest {
                    page_size: PAGE_SIZE,
                    page_token: token,
                }),
                users
            );
            ctx.emit(
                || {
                    let mut table = Table::new(["ID", "EMAIL", "NAME", "PASSWORD", "CREATED"]);
                    for u in &users {
                        table.row([
                            u.id.clone(),
                            u.email.clone(),
                            or_dash(&u.display_name),
                            yes_no(u.has_password).to_owned(),
                            short_time(u.create_time.as_ref()),
                        ]);
                    }
                    table.render()
                },
                || json!({"users": users.iter().map(message).collect::<Vec<_>>()}),
            )
        }
        UserCommand::Create {
            email,
            name,
            password_stdin,
        } => {
            let password = if password_stdin {
                read_stdin_secret("password")?
            } else {
                String::new()
            };
            let user = clients
                .auth
                .create_user(CreateUserRequest {
                    email,
                    display_name: name.unwrap_or_default(),
                    password,
                })
                .await?
                .into_inner()
                .user
                .unwrap_or_default();
            ctx.emit(
                || {
                    Details::new()
                        .field("ID", &user.id)
                        .field("Email", &user.email)
                        .field("Name", or_dash(&user.display_name))
                        .field("Password", yes_no(user.has_password))
                        .render()
                },
                || message(&user),
            )
        }
    }
}

/// A secret from stdin, without its trailing newline.
fn read_stdin_secret(what: &str) -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|err| CliError::usage(format!("cannot read the {what} from stdin: {err}")))?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        return Err(CliError::usage(format!("the {what} on stdin is empty")));
    }
    Ok(text)
}

/// Runs a `settings` subcommand.
pub async fn run_settings(ctx: &Ctx, command: SettingsCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    let settings = match command {
        SettingsCommand::Show => {
            clients
                .settings
                .get_settings(GetSettingsRequest {})
                .await?
                .into_inner()
                .settings
        }
        SettingsCommand::Set(args) => {
            if args.preview_domain.is_none()
                && args.default_node.is_none()
                && args.default_php.is_none()
                && args.releases_to_keep.is_none()
            {
                return Err(CliError::usage("name at least one setting to change"));
            }
            clients
                .settings
                .update_settings(UpdateSettingsRequest {
                    expected_version: 0,
                    preview_domain: args.preview_domain,
                    default_node_id: args.default_node,
                    default_php_version: args.default_php,
                    releases_to_keep: args.releases_to_keep,
                })
                .await?
                .into_inner()
                .settings
        }
        SettingsCommand::BackupTarget(args) => {
            let secret = read_stdin_secret("secret access key")?;
            clients
                .settings
                .set_backup_target(SetBackupTargetRequest {
                    expected_version: 0,
                    endpoint: args.endpoint,
                    bucket: args.bucket,
                    region: args.region.unwrap_or_default(),
                    path_prefix: args.prefix.unwrap_or_default(),
                    access_key_id: args.access_key_id,
                    secret_access_key: secret,
                })
                .await?
                .into_inner()
                .settings
        }
    }
    .unwrap_or_default();
    ctx.emit(|| settings_details(&settings), || message(&settings))
}

fn settings_details(s: &Settings) -> String {
    let target = s.backup_target.clone().unwrap_or_default();
    Details::new()
        .field("Preview domain", or_dash(&s.preview_domain))
        .field("Default node", or_dash(&s.default_node_id))
        .field("Default PHP", or_dash(&s.default_php_version))
        .field("Releases kept", s.releases_to_keep.to_string())
        .field(
            "Backup target",
            if target.endpoint.is_empty() {
                "-".to_owned()
            } else {
                format!("{} bucket {}", target.endpoint, target.bucket)
            },
        )
        .field_if("Backup prefix", &target.path_prefix)
        .field("Version", s.version.to_string())
        .render()
}

/// Arguments of `pressluft audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events about this kind of resource (node, site, environment, job, ...)
    #[arg(long, value_name = "TYPE")]
    pub resource_type: Option<String>,
    /// Only events about this resource id
    #[arg(long, value_name = "ID")]
    pub resource: Option<String>,
    /// At most this many events, newest first
    #[arg(long, default_value_t = 50)]
    pub limit: i32,
}

/// Runs `pressluft audit`.
pub async fn run_audit(ctx: &Ctx, args: AuditArgs) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    let events = clients
        .audit
        .list_audit_events(ListAuditEventsRequest {
            page_size: args.limit.clamp(1, PAGE_SIZE),
            page_token: String::new(),
            resource_type: args.resource_type.unwrap_or_default(),
            resource_id: args.resource.unwrap_or_default(),
        })
        .await?
        .into_inner()
        .events;
    ctx.emit(
        || audit_table(&events, ctx.wide()),
        || json!({"events": events.iter().map(message).collect::<Vec<_>>()}),
    )
}

fn audit_result(value: i32) -> &'static str {
    match AuditResult::try_from(value) {
        Ok(AuditResult::Succeeded) => "succeeded",
        Ok(AuditResult::Failed) => "failed",
        Ok(AuditResult::Accepted) => "accepted",
        Ok(AuditResult::Denied) => "denied",
        _ => "unknown",
    }
}

fn audit_table(events: &[AuditEvent], wide: bool) -> String {
    let mut table = Table::new(["TIME", "ACTOR", "ACTION", "RESOURCE", "RESULT", "DETAIL"]);
    for e in events {
        let resource = if wide || e.resource_id.len() <= 12 {
            format!("{} {}", e.resource_type, e.resource_id)
        } else {
            format!("{} {}…", e.resource_type, &e.resource_id[..8])
        };
        table.row([
            short_time(e.time.as_ref()),
            e.actor.clone(),
            e.action.clone(),
            resource,
            audit_result(e.result).to_owned(),
            e.detail.clone(),
        ]);
    }
    table.render()
}
