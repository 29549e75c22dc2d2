//! `pressluft-server`: runs the control plane, plus offline admin commands that share its
//! data directory.

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pressluft_server::config::{Config, Overrides};
use pressluft_server::secrets::{Secret, random_alphanumeric};
use pressluft_server::store::Store;
use pressluft_server::{App, AppState, model::validate};
use tokio_util::sync::CancellationToken;

/// Pressluft control plane: gRPC, grpc-web and health on one port, backed by SQLite.
#[derive(Debug, Parser)]
#[command(name = "pressluft-server", version)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "PRESSLUFT_SERVER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Listen address (host:port); default 127.0.0.1:8443.
    #[arg(long, env = "PRESSLUFT_LISTEN_ADDR", global = true)]
    listen_addr: Option<String>,
    /// Allow a listen address other than loopback without TLS (tokens and passwords then
    /// cross the network in plaintext; for a trusted private network only).
    #[arg(long, global = true)]
    insecure_plaintext: bool,
    /// Prometheus metrics listen address (host:port, e.g. 127.0.0.1:9464); default: off.
    #[arg(long, env = "PRESSLUFT_METRICS_LISTEN_ADDR", global = true)]
    metrics_listen_addr: Option<String>,
    /// Serve the API over TLS with this certificate chain (PEM; reloaded when it changes).
    #[arg(
        long,
        env = "PRESSLUFT_TLS_CERT_FILE",
        global = true,
        requires = "tls_key_file"
    )]
    tls_cert_file: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(
        long,
        env = "PRESSLUFT_TLS_KEY_FILE",
        global = true,
        requires = "tls_cert_file"
    )]
    tls_key_file: Option<PathBuf>,
    /// Data directory (SQLite database; secrets in <data-dir>/secrets by default).
    #[arg(long, env = "PRESSLUFT_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Secrets directory (master key, SSH key).
    #[arg(long, env = "PRESSLUFT_SECRETS_DIR", global = true)]
    secrets_dir: Option<PathBuf>,
    /// Playbooks directory (default: ./playbooks in a checkout, else /usr/share/pressluft/playbooks).
    #[arg(long, env = "PRESSLUFT_PLAYBOOKS_DIR", global = true)]
    playbooks_dir: Option<PathBuf>,
    /// Install WordPress from this directory on the nodes instead of downloading it.
    #[arg(long, env = "PRESSLUFT_WORDPRESS_SOURCE_DIR", global = true)]
    wordpress_source_dir: Option<PathBuf>,
    /// Take WordPress updates (core/, plugins/, themes/) from this directory on the nodes.
    #[arg(long, env = "PRESSLUFT_UPDATE_SOURCE_DIR", global = true)]
    update_source_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Offline administration against the data directory.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Create an API token and print it alone on the last line of stdout.
    ///
    /// The token belongs to --email, else to the first user; with no user at all, a
    /// service account `admin@localhost` (no password login) is created for it.
    CreateToken {
        /// Token name, e.g. "ci".
        #[arg(long)]
        name: String,
        /// Owner's email.
        #[arg(long)]
        email: Option<String>,
        /// Lifetime in days (default: never expires).
        #[arg(long)]
        ttl_days: Option<u64>,
    },
    /// Copy the database to FILE while the server keeps running (a consistent snapshot,
    /// mode 0600: it holds sealed secrets and password hashes; keep the secrets directory
    /// backed up beside it).
    BackupDb {
        /// The new file (must not exist).
        #[arg(long = "to")]
        to: PathBuf,
    },
    /// Replace the database with a backup (the server must be stopped; the file is checked
    /// first and migrated to this version).
    RestoreDb {
        /// The backup file.
        #[arg(long = "from")]
        from: PathBuf,
    },
    /// Create a user who can log in. The password is read from stdin with --password-stdin,
    /// else generated and printed once.
    CreateUser {
        /// Email address (the login name).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// A user with this email already existing is not an error: nothing changes and
        /// stdout says `exists` (else `created`), for install scripts.
        #[arg(long)]
        exists_ok: bool,
    },
    /// Set a user's password (read from the first line of stdin) and end their sessions; for
    /// a lost administrator password.
    SetPassword {
        /// Email address of the user.
        #[arg(long)]
        email: String,
    },
    /// Print the control plane's SSH public key (created if there is none yet), the line to
    /// put in a node user's authorized_keys.
    SshKey,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Each flag sets the file's key of the same name.
    let overrides = Overrides::default()
        .with("listen_addr", cli.listen_addr.clone())
        .with("insecure_plaintext", cli.insecure_plaintext.then_some(true))
        .with("metrics_listen_addr", cli.metrics_listen_addr.clone())
        .with_path("tls_cert_file", cli.tls_cert_file.as_deref())
        .with_path("tls_key_file", cli.tls_key_file.as_deref())
        .with_path("data_dir", cli.data_dir.as_deref())
        .with_path("secrets_dir", cli.secrets_dir.as_deref())
        .with_path("playbooks_dir", cli.playbooks_dir.as_deref())
        .with_path("wordpress_source_dir", cli.wordpress_source_dir.as_deref())
        .with_path("update_source_dir", cli.update_source_dir.as_deref());
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Admin(admin) => run_admin(config, admin).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    config.check_listener()?;
    let shutdown = CancellationToken::new();
    // Open (and migrate) the store before listening: a connectable port means a ready server.
    let state = AppState::open(config, shutdown.clone()).await?;
    let listener = tokio::net::TcpListener::bind(state.config.listen_addr)
        .await
        .with_context(|| format!("binding {}", state.config.listen_addr))?;
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        signal.cancel();
    });
    App::serve(state, listener, shutdown).await?;
    Ok(())
}

async fn wait_for_signal() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `admin create-user`: the password from stdin or generated (printed once); with
/// `exists_ok`, stdout says `created` or `exists`.
async fn create_user(
    store: &Store,
    email: &str,
    name: &str,
    password_stdin: bool,
    exists_ok: bool,
) -> anyhow::Result<()> {
    let email = validate::email("email", email)?;
    let password = if password_stdin {
        Some(password_from_stdin()?)
    } else {
        None
    };
    if exists_ok && store.user_by_email(&email).await?.is_some() {
        eprintln!("user {email} exists; nothing changed");
        println!("exists");
        return Ok(());
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(|| random_alphanumeric(20));
    let user = pressluft_server::auth::create_user(store, &email, name, Some(&password)).await?;
    eprintln!("created user {} ({})", user.email, user.id);
    if generated {
        eprintln!("generated password (shown once):");
        println!("{}", password.expose());
    } else if exists_ok {
        println!("created");
    }
    Ok(())
}

/// The first line of stdin, without its line ending.
fn password_from_stdin() -> anyhow::Result<Secret> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
}

async fn run_admin(config: Config, admin: Admin) -> anyhow::Result<()> {
    if let Admin::RestoreDb { from } = &admin {
        pressluft_server::dbcopy::restore(&config.database_path(), from).await?;
        eprintln!(
            "restored {} from {}",
            config.database_path().display(),
            from.display()
        );
        return Ok(());
    }
    if let Admin::SshKey = &admin {
        let secrets = pressluft_server::secrets::SecretsDir::open(&config.secrets_dir)?;
        secrets.ssh_key()?;
        print!(
            "{}",
            std::fs::read_to_string(secrets.ssh_public_key_path())?
        );
        return Ok(());
    }
    let store = Store::open(&config.database_path()).await?;
    match admin {
        Admin::BackupDb { to } => {
            let size = pressluft_server::dbcopy::backup(&store, &to).await?;
            eprintln!("backed up the database to {} ({size} bytes)", to.display());
        }
        Admin::RestoreDb { .. } | Admin::SshKey => unreachable!("handled above"),
        Admin::CreateToken {
            name,
            email,
            ttl_days,
        } => {
            let name = validate::display_text("name", &name, 100)?;
            let user = match email {
                Some(email) => {
                    let email = validate::email("email", &email)?;
                    store
                        .user_by_email(&email)
                        .await?
                        .with_context(|| format!("no user with email {email}"))?
                }
                None => match store.first_user().await? {
                    Some(user) => user,
                    None => {
                        pressluft_server::auth::create_user(
                            &store,
                            "admin@localhost",
                            "Administrator",
                            None,
                        )
                        .await?
                    }
                },
            };
            let ttl = ttl_days.map(|d| std::time::Duration::from_secs(d * 86_400));
            let (secret, _) =
                pressluft_server::auth::create_api_token(&store, user.id, &name, ttl).await?;
            eprintln!("API token {name:?} for {} (shown once):", user.email);
            println!("{}", secret.expose());
        }
        Admin::CreateUser {
            email,
            name,
            password_stdin,
            exists_ok,
        } => create_user(&store, &email, &name, password_stdin, exists_ok).await?,
        Admin::SetPassword { email } => {
            let email = validate::email("email", &email)?;
            let user = store
                .user_by_email(&email)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            let password = password_from_stdin()?;
            let ended = pressluft_server::auth::set_password(&store, user.id, &password).await?;
            eprintln!("password of {email} set; {ended} session(s) ended");
        }
    }
    store.pool().close().await;
    Ok(())
}
