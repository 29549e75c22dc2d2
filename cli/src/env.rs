//! `env ...`: environments, their releases and deploys, updates, drift and promotion, and the
//! node queries about them (magic login, PHP, disk, WordPress).

use pressluft_proto::v1::{
    ArchiveSource, CheckDriftRequest, CreateEnvironmentRequest, CreateMagicLoginRequest,
    DeleteEnvironmentRequest, DeployEnvironmentRequest, DriftReport, DriftStatus, Environment,
    EnvironmentKind, EnvironmentStatus, GetDiskUsageRequest, GetDriftReportRequest,
    GetEnvironmentRequest, GetPhpVersionRequest, GetWordPressInfoRequest, GitSource,
    ListEnvironmentsRequest, ListReleasesRequest, PromoteEnvironmentRequest, PromotionPreset,
    Release, ReleaseHealth, ReleaseSource, ResetEnvironmentRequest, RollbackEnvironmentRequest,
    UpdateWordPressRequest, UploadSource, WordPressSource, release_source,
};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use pressluft_client::labels::{label, short_time};
use serde_json::json;

use crate::all_pages;
use crate::error::CliError;
use crate::global::Ctx;
use crate::job::started;
use crate::output::{Details, Table, message, or_dash, time, yes_no};
use crate::watch::WaitArgs;

const PAGE_SIZE: i32 = 500;

/// Subcommands of `pressluft env`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List a site's environments
    List {
        /// Site id
        site: String,
    },
    /// Show one environment
    Show {
        /// Environment id
        id: String,
    },
    /// Clone an environment (files, database, URLs rewritten) into a new one
    ///
    /// Example: pressluft env clone ENV --name staging --wait
    Clone(CloneArgs),
    /// Delete a non-production environment from its node
    Delete {
        /// Environment id
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Re-check a failed environment; it becomes active when its health checks pass
    Reset {
        /// Environment id
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Deploy a new release (zero downtime, checked before and after the switch)
    ///
    /// Exactly one source: --wordpress VERSION, --git URL [--ref REF], --archive-url URL
    /// [--sha256 HEX], or --archive FILE (uploaded first).
    ///
    /// Example: pressluft env deploy ENV --git https://github.com/acme/site.git --ref v1.2 --wait
    Deploy(DeployArgs),
    /// Switch back to the previous healthy release, or to --release
    Rollback {
        /// Environment id
        id: String,
        /// Release id [default: the newest healthy release before the live one]
        #[arg(long, value_name = "ID")]
        release: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List an environment's releases, newest first
    Releases {
        /// Environment id
        id: String,
    },
    /// Update WordPress core, plugins or themes (a full backup is taken first)
    ///
    /// Example: pressluft env update ENV --core latest --plugin akismet --wait
    Update(UpdateArgs),
    /// Show the drift report, or start a drift check with --check
    Drift {
        /// Production environment id
        id: String,
        /// Start a drift_check job instead of showing the last report
        #[arg(long)]
        check: bool,
        /// Preset whose protected tables are left out of the check
        #[arg(long, value_enum, default_value_t = Preset::ContentProtect)]
        preset: Preset,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Promote a staging environment into production (clean drift check and backup first)
    ///
    /// Example: pressluft env promote STAGING --preset commerce-protect --wait
    Promote {
        /// Staging environment id
        id: String,
        /// What production keeps: content (posts, comments, terms, uploads) or also orders
        #[arg(long, value_enum, default_value_t = Preset::ContentProtect)]
        preset: Preset,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Print a one-time wp-admin login URL (valid for a minute)
    Login {
        /// Environment id
        id: String,
        /// Also open it in a browser (xdg-open / open), if one is available
        #[arg(long)]
        open: bool,
    },
    /// The PHP version the environment runs
    Php {
        /// Environment id
        id: String,
    },
    /// Disk used by releases, uploads and the database
    Disk {
        /// Environment id
        id: String,
    },
    /// WordPress core version, plugins and themes of the live release
    Wp {
        /// Environment id
        id: String,
    },
}

/// A promotion preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Production keeps posts, comments, terms and uploads
    ContentProtect,
    /// content-protect plus WooCommerce orders and customers
    CommerceProtect,
}

impl Preset {
    fn proto(self) -> i32 {
        match self {
            Preset::ContentProtect => PromotionPreset::ContentProtect as i32,
            Preset::CommerceProtect => PromotionPreset::CommerceProtect as i32,
        }
    }
}

/// Arguments of `pressluft env clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    /// Environment to clone
    pub source: String,
    /// Name of the new environment (lowercase letters, digits, hyphens)
    #[arg(long)]
    pub name: String,
    /// Kind of the new environment
    #[arg(long, value_enum, default_value_t = Kind::Staging)]
    pub kind: Kind,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// The kind of a cloned environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Can be promoted into production
    Staging,
    /// A plain copy
    Clone,
}

/// Arguments of `pressluft env deploy`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true)))]
pub struct DeployArgs {
    /// Environment id
    pub id: String,
    /// WordPress core version ("latest" or e.g. 6.7.1)
    #[arg(long, value_name = "VERSION", group = "source")]
    pub wordpress: Option<String>,
    /// Git repository URL (https)
    #[arg(long, value_name = "URL", group = "source")]
    pub git: Option<String>,
    /// Git ref: tag, branch or commit [default: the default branch]
    #[arg(long = "ref", value_name = "REF", requires = "git")]
    pub git_ref: Option<String>,
    /// URL of a .tar.gz archive
    #[arg(long, value_name = "URL", group = "source")]
    pub archive_url: Option<String>,
    /// Expected SHA-256 of the archive at --archive-url
    #[arg(long, value_name = "HEX", requires = "archive_url")]
    pub sha256: Option<String>,
    /// A local .tar.gz archive, uploaded to the server first
    #[arg(long, value_name = "FILE", group = "source")]
    pub archive: Option<PathBuf>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Arguments of `pressluft env update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Environment id
    pub id: String,
    /// Update core to this version ("latest" or e.g. 6.7.1)
    #[arg(long, value_name = "VERSION")]
    pub core: Option<String>,
    /// Update this plugin (repeatable)
    #[arg(long = "plugin", value_name = "SLUG")]
    pub plugins: Vec<String>,
    /// Update every plugin
    #[arg(long)]
    pub all_plugins: bool,
    /// Update this theme (repeatable)
    #[arg(long = "theme", value_name = "SLUG")]
    pub themes: Vec<String>,
    /// Update every theme
    #[arg(long)]
    pub all_themes: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Runs an `env` subcommand.
pub async fn run(ctx: &Ctx, command: EnvCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        EnvCommand::List { site } => list(ctx, &mut clients, site).await,
        EnvCommand::Show { id } => {
            let env = clients
                .site
                .get_environment(GetEnvironmentRequest { environment_id: id })
                .await?
                .into_inner()
                .environment
                .unwrap_or_default();
            ctx.emit(|| environment_details(&env), || message(&env))
        }
        EnvCommand::Clone(args) => clone_env(ctx, &mut clients, args).await,
        EnvCommand::Delete { id, wait } => {
            let job = clients
                .site
                .delete_environment(DeleteEnvironmentRequest {
                    environment_id: id,
                    expected_version: 0,
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
        EnvCommand::Reset { id, wait } => {
            let job = clients
                .site
                .reset_environment(ResetEnvironmentRequest {
                    environment_id: id,
                    expected_version: 0,
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
        EnvCommand::Deploy(args) => deploy(ctx, &mut clients, args).await,
        EnvCommand::Rollback { id, release, wait } => {
            let job = clients
                .site
                .rollback_environment(RollbackEnvironmentRequest {
                    environment_id: id,
                    expected_version: 0,
                    release_id: release.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
        EnvCommand::Releases { id } => releases(ctx, &mut clients, id).await,
        EnvCommand::Update(args) => update(ctx, &mut clients, args).await,
        EnvCommand::Drift {
            id,
            check,
            preset,
            wait,
        } => drift(ctx, &mut clients, id, check, preset, &wait).await,
        EnvCommand::Promote { id, preset, wait } => {
            let job = clients
                .site
                .promote_environment(PromoteEnvironmentRequest {
                    source_environment_id: id,
                    expected_version: 0,
                    preset: preset.proto(),
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
        EnvCommand::Login { id, open } => login(ctx, &mut clients, id, open).await,
        EnvCommand::Php { id } => {
            let php = clients
                .node_query
                .get_php_version(GetPhpVersionRequest {
                    node_id: String::new(),
                    environment_id: id,
                })
                .await?
                .into_inner();
            ctx.emit(
                || format!("{}\n", php.version),
                || json!({"version": php.version, "installed_versions": php.installed_versions}),
            )
        }
        EnvCommand::Disk { id } => disk(ctx, &mut clients, id).await,
        EnvCommand::Wp { id } => wordpress_info(ctx, &mut clients, id).await,
    }
}

async fn list(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    site: String,
) -> Result<(), CliError> {
    let envs = all_pages!(
        |token| clients.site.list_environments(ListEnvironmentsRequest {
            site_id: site.clone(),
            page_size: PAGE_SIZE,
            page_token: token,
        }),
        environments
    );
    ctx.emit(
        || environments_table(&envs, ctx.wide()),
        || json!({ "environments": envs.iter().map(message).collect::<Vec<_>>() }),
    )
}

async fn releases(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
) -> Result<(), CliError> {
    let releases = all_pages!(
        |token| clients.site.list_releases(ListReleasesRequest {
            environment_id: id.clone(),
            page_size: PAGE_SIZE,
            page_token: token,
        }),
        releases
    );
    ctx.emit(
        || releases_table(&releases, ctx.wide()),
        || json!({ "releases": releases.iter().map(message).collect::<Vec<_>>() }),
    )
}

async fn clone_env(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    args: CloneArgs,
) -> Result<(), CliError> {
    let source = clients
        .site
        .get_environment(GetEnvironmentRequest {
            environment_id: args.source.clone(),
        })
        .await?
        .into_inner()
        .environment
        .unwrap_or_default();
    let response = clients
        .site
        .create_environment(CreateEnvironmentRequest {
            site_id: source.site_id,
            source_environment_id: args.source,
            name: args.name,
            kind: match args.kind {
                Kind::Staging => EnvironmentKind::Staging as i32,
                Kind::Clone => EnvironmentKind::Clone as i32,
            },
            node_id: String::new(),
        })
        .await?
        .into_inner();
    let env = response.environment.unwrap_or_default();
    let job = response.job.unwrap_or_default();
    args.wait
        .finish(
            ctx,
            clients,
            &job.id,
            || environment_details(&env) + &format!("Job:          {} ({})\n", job.id, job.summary),
            || json!({"environment": message(&env), "job": message(&job)}),
        )
        .await
}

async fn update(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    args: UpdateArgs,
) -> Result<(), CliError> {
    if args.core.is_none()
        && args.plugins.is_empty()
        && args.themes.is_empty()
        && !args.all_plugins
        && !args.all_themes
    {
        return Err(CliError::usage(
            "name something to update: --core, --plugin, --theme, --all-plugins or --all-themes",
        ));
    }
    let job = clients
        .site
        .update_word_press(UpdateWordPressRequest {
            environment_id: args.id,
            expected_version: 0,
            core_version: args.core.unwrap_or_default(),
            plugins: args.plugins,
            all_plugins: args.all_plugins,
            themes: args.themes,
            all_themes: args.all_themes,
        })
        .await?
        .into_inner()
        .job;
    started(ctx, clients, &args.wait, job).await
}

async fn login(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
    open: bool,
) -> Result<(), CliError> {
    let login = clients
        .node_query
        .create_magic_login(CreateMagicLoginRequest { environment_id: id })
        .await?
        .into_inner();
    let opened = open && open_in_browser(&login.url);
    ctx.emit(
        || {
            let mut text = format!("{}\n", login.url);
            if open && !opened {
                text.push_str("(no browser to open it here: copy the URL)\n");
            }
            text
        },
        || {
            json!({
                "url": login.url,
                "user_login": login.user_login,
                "expire_time": time(login.expire_time.as_ref()),
            })
        },
    )
}

async fn disk(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
) -> Result<(), CliError> {
    let disk = clients
        .node_query
        .get_disk_usage(GetDiskUsageRequest { environment_id: id })
        .await?
        .into_inner();
    ctx.emit(
        || {
            Details::new()
                .field("Releases", bytes(disk.releases_bytes))
                .field("Uploads", bytes(disk.uploads_bytes))
                .field("Database", bytes(disk.database_bytes))
                .field("Total", bytes(disk.total_bytes))
                .field("Node free", bytes(disk.node_free_bytes))
                .render()
        },
        || {
            json!({
                "releases_bytes": disk.releases_bytes,
                "uploads_bytes": disk.uploads_bytes,
                "database_bytes": disk.database_bytes,
                "total_bytes": disk.total_bytes,
                "node_free_bytes": disk.node_free_bytes,
            })
        },
    )
}

async fn wordpress_info(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
) -> Result<(), CliError> {
    let info = clients
        .node_query
        .get_word_press_info(GetWordPressInfoRequest { environment_id: id })
        .await?
        .into_inner();
    let component = |c: &pressluft_proto::v1::WordPressComponent| json!({"name": c.name, "title": c.title, "version": c.version, "active": c.active});
    ctx.emit(
        || {
            let mut text = format!("WordPress {}\n\n", info.core_version);
            let mut table = Table::new(["KIND", "NAME", "VERSION", "ACTIVE"]);
            for (kind, list) in [("plugin", &info.plugins), ("theme", &info.themes)] {
                for c in list {
                    table.row([
                        kind.to_owned(),
                        c.name.clone(),
                        or_dash(&c.version),
                        yes_no(c.active).to_owned(),
                    ]);
                }
            }
            text.push_str(&table.render());
            text
        },
        || {
            json!({
                "core_version": info.core_version,
                "plugins": info.plugins.iter().map(component).collect::<Vec<_>>(),
                "themes": info.themes.iter().map(component).collect::<Vec<_>>(),
                "method": info.method,
            })
        },
    )
}

async fn drift(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
    check: bool,
    preset: Preset,
    wait: &WaitArgs,
) -> Result<(), CliError> {
    if check {
        let job = clients
            .site
            .check_drift(CheckDriftRequest {
                environment_id: id,
                preset: preset.proto(),
            })
            .await?
            .into_inner()
            .job;
        return started(ctx, clients, wait, job).await;
    }
    let report = clients
        .site
        .get_drift_report(GetDriftReportRequest { environment_id: id })
        .await?
        .into_inner()
        .report
        .unwrap_or_default();
    ctx.emit(|| drift_text(&report), || message(&report))
}

async fn deploy(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    args: DeployArgs,
) -> Result<(), CliError> {
    use release_source::Source;
    let source = if let Some(version) = args.wordpress {
        Source::Wordpress(WordPressSource { version })
    } else if let Some(url) = args.git {
        Source::Git(GitSource {
            url,
            r#ref: args.git_ref.unwrap_or_default(),
        })
    } else if let Some(url) = args.archive_url {
        Source::Archive(ArchiveSource {
            url,
            sha256: args.sha256.unwrap_or_default(),
        })
    } else if let Some(path) = args.archive {
        let upload_id = crate::upload::upload(clients, &path).await?;
        Source::Upload(UploadSource { upload_id })
    } else {
        return Err(CliError::usage(
            "name a source: --wordpress, --git, --archive-url or --archive",
        ));
    };
    let job = clients
        .site
        .deploy_environment(DeployEnvironmentRequest {
            environment_id: args.id,
            expected_version: 0,
            source: Some(ReleaseSource {
                source: Some(source),
            }),
        })
        .await?
        .into_inner()
        .job;
    started(ctx, clients, &args.wait, job).await
}

/// Opens `url` with the desktop's opener; false when there is none (a server, an SSH session).
fn open_in_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
        && !cfg!(target_os = "macos")
    {
        return false;
    }
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A byte count as people read it ("12.3 MiB").
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n.unsigned_abs();
    let mut unit = 0;
    let mut tenths = 0;
    while value >= 1024 && unit + 1 < UNITS.len() {
        tenths = (value % 1024) * 10 / 1024;
        value /= 1024;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{value}.{tenths} {}", UNITS[unit])
    }
}

fn environments_table(envs: &[Environment], wide: bool) -> String {
    if wide {
        let mut table = Table::new([
            "ID", "NAME", "KIND", "STATUS", "NODE", "PHP", "URL", "RELEASE", "DRIFT", "BACKUP",
        ]);
        for env in envs {
            table.row([
                env.id.clone(),
                env.name.clone(),
                label::<EnvironmentKind>(env.kind),
                label::<EnvironmentStatus>(env.status),
                or_dash(&env.node_id),
                or_dash(&env.php_version),
                or_dash(&env.url),
                or_dash(&env.current_release_id),
                label::<DriftStatus>(env.drift_status),
                short_time(env.last_backup_time.as_ref()),
            ]);
        }
        return table.render();
    }
    let mut table = Table::new(["ID", "NAME", "KIND", "STATUS", "URL"]);
    for env in envs {
        table.row([
            env.id.clone(),
            env.name.clone(),
            label::<EnvironmentKind>(env.kind),
            label::<EnvironmentStatus>(env.status),
            or_dash(&env.url),
        ]);
    }
    table.render()
}

fn environment_details(env: &Environment) -> String {
    let cache = env.cache.as_ref().map_or_else(
        || "-".to_owned(),
        |c| {
            format!(
                "page {}, object {}",
                if c.page_cache { "on" } else { "off" },
                if c.object_cache { "on" } else { "off" }
            )
        },
    );
    let schedule = env
        .backup_schedule
        .as_ref()
        .filter(|s| s.enabled)
        .map_or_else(
            || "off".to_owned(),
            |s| {
                format!(
                    "every {}, keep {}",
                    crate::backup::duration_text(s.interval.as_ref()),
                    crate::backup::duration_text(s.retention.as_ref())
                )
            },
        );
    Details::new()
        .field("ID", &env.id)
        .field("Name", &env.name)
        .field("Kind", label::<EnvironmentKind>(env.kind))
        .field("Status", label::<EnvironmentStatus>(env.status))
        .field_if("Message", &env.status_message)
        .field("Site", &env.site_id)
        .field("Node", or_dash(&env.node_id))
        .field("URL", or_dash(&env.url))
        .field("Preview URL", or_dash(&env.preview_url))
        .field("PHP", or_dash(&env.php_version))
        .field("Release", or_dash(&env.current_release_id))
        .field("Drift", label::<DriftStatus>(env.drift_status))
        .field("Cache", cache)
        .field("Backups", schedule)
        .field("Last backup", short_time(env.last_backup_time.as_ref()))
        .field("Created", short_time(env.create_time.as_ref()))
        .field("Version", env.version.to_string())
        .render()
}

fn source_text(source: Option<&ReleaseSource>) -> String {
    match source.and_then(|s| s.source.as_ref()) {
        Some(release_source::Source::Wordpress(w)) => format!("wordpress {}", w.version),
        Some(release_source::Source::Git(g)) => {
            format!(
                "git {}{}",
                g.url,
                if g.r#ref.is_empty() {
                    String::new()
                } else {
                    format!("@{}", g.r#ref)
                }
            )
        }
        Some(release_source::Source::Archive(a)) => format!("archive {}", a.url),
        Some(release_source::Source::Upload(u)) => format!("upload {}", u.upload_id),
        None => "-".to_owned(),
    }
}

fn releases_table(releases: &[Release], wide: bool) -> String {
    let mut table = Table::new(["ID", "CURRENT", "HEALTH", "SOURCE", "CREATED", "REF"]);
    for r in releases {
        let reference = if wide {
            r.resolved_ref.clone()
        } else {
            r.resolved_ref.chars().take(12).collect()
        };
        table.row([
            r.id.clone(),
            if r.is_current { "*" } else { "" }.to_owned(),
            label::<ReleaseHealth>(r.health),
            source_text(r.source.as_ref()),
            short_time(r.create_time.as_ref()),
            reference,
        ]);
    }
    table.render()
}

fn drift_text(report: &DriftReport) -> String {
    let mut text = Details::new()
        .field("Environment", &report.environment_id)
        .field("Drift", label::<DriftStatus>(report.status))
        .field("Checked", short_time(report.check_time.as_ref()))
        .field_if("Job", &report.job_id)
        .render();
    if !report.items.is_empty() {
        text.push('\n');
        let mut table = Table::new(["CATEGORY", "NAME", "DETAIL"]);
        for item in &report.items {
            table.row([
                item.category.clone(),
                item.name.clone(),
                item.detail.clone(),
            ]);
        }
        text.push_str(&table.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_like_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn releases_mark_the_live_one_and_name_their_source() {
        let release = Release {
            id: "r1".into(),
            source: Some(ReleaseSource {
                source: Some(release_source::Source::Git(GitSource {
                    url: "https://example.com/site.git".into(),
                    r#ref: "v1".into(),
                })),
            }),
            resolved_ref: "0123456789abcdef0123".into(),
            health: pressluft_proto::v1::ReleaseHealth::Healthy as i32,
            is_current: true,
            ..Release::default()
        };
        assert_eq!(
            releases_table(std::slice::from_ref(&release), false),
            "ID  CURRENT  HEALTH   SOURCE                               CREATED  REF\n\
             r1  *        healthy  git https://example.com/site.git@v1  -        0123456789ab\n"
        );
        assert_eq!(message(&release)["health"], "RELEASE_HEALTH_HEALTHY");
    }
}
