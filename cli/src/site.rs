//! `site list|show|create|rename|delete`.

use clap::{Args, Subcommand};
use pressluft_client::labels::{label, short_time};
use pressluft_proto::v1::{
    CreateSiteRequest, CreateSiteResponse, DeleteSiteRequest, EnvironmentKind, EnvironmentStatus,
    GetSiteRequest, JobStatus, JobType, ListSitesRequest, Site, SiteStatus, UpdateSiteRequest,
};
use serde_json::json;

use crate::error::CliError;
use crate::global::Ctx;
use crate::output::{Details, Table, message, or_dash};
use crate::watch::WaitArgs;

/// Page size for listing everything (the server's maximum).
const PAGE_SIZE: i32 = 500;

/// Subcommands of `pressluft site`.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// List all sites
    List,
    /// Show one site with its environments
    Show {
        /// Site id
        id: String,
    },
    /// Create a site and start the site_create job installing WordPress
    ///
    /// Example: pressluft site create --name "Acme Shop" --slug acme --wait
    Create(CreateArgs),
    /// Give a site a new display name
    Rename {
        /// Site id
        id: String,
        /// New name
        name: String,
    },
    /// Delete a site: every environment is removed from its node (files, database, users)
    Delete {
        /// Site id
        id: String,
        /// Confirm without being asked (needed when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// Arguments of `pressluft site create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Human-readable name
    #[arg(long)]
    pub name: String,
    /// Unique DNS-safe slug (lowercase letters, digits, hyphens; 1-40 characters)
    #[arg(long)]
    pub slug: String,
    /// Node id for the production environment [default: the settings' default node]
    #[arg(long, value_name = "ID")]
    pub node: Option<String>,
    /// PHP version, e.g. 8.3 [default: the settings' default]
    #[arg(long, value_name = "VERSION")]
    pub php: Option<String>,
    /// WordPress version to install [default: latest]
    #[arg(long, value_name = "VERSION")]
    pub wp_version: Option<String>,
    /// Email of the first WordPress administrator
    #[arg(long, value_name = "EMAIL")]
    pub admin_email: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Runs a `site` subcommand.
pub async fn run(ctx: &Ctx, command: SiteCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        SiteCommand::List => {
            let sites = crate::all_pages!(
                |token| clients.site.list_sites(ListSitesRequest {
                    page_size: PAGE_SIZE,
                    page_token: token,
                    show_deleted: false,
                }),
                sites
            );
            ctx.emit(
                || sites_table(&sites),
                || json!({ "sites": sites.iter().map(message).collect::<Vec<_>>() }),
            )
        }
        SiteCommand::Show { id } => {
            let site = clients
                .site
                .get_site(GetSiteRequest { site_id: id })
                .await?
                .into_inner()
                .site
                .unwrap_or_default();
            ctx.emit(|| site_details(&site), || message(&site))
        }
        SiteCommand::Rename { id, name } => {
            let site = clients
                .site
                .update_site(UpdateSiteRequest {
                    site_id: id,
                    expected_version: 0,
                    name: Some(name),
                })
                .await?
                .into_inner()
                .site
                .unwrap_or_default();
            ctx.emit(|| site_details(&site), || message(&site))
        }
        SiteCommand::Delete { id, yes, wait } => delete(ctx, &mut clients, id, yes, wait).await,
        SiteCommand::Create(args) => {
            let response = clients
                .site
                .create_site(CreateSiteRequest {
                    name: args.name,
                    slug: args.slug,
                    node_id: args.node.unwrap_or_default(),
                    php_version: args.php.unwrap_or_default(),
                    wordpress_version: args.wp_version.unwrap_or_default(),
                    title: String::new(),
                    admin_email: args.admin_email.unwrap_or_default(),
                    admin_user: String::new(),
                })
                .await?
                .into_inner();
            let job_id = response.job.as_ref().map_or("", |job| job.id.as_str());
            args.wait
                .finish(
                    ctx,
                    &mut clients,
                    job_id,
                    || created_text(&response),
                    || message(&response),
                )
                .await
        }
    }
}

async fn delete(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
    yes: bool,
    wait: WaitArgs,
) -> Result<(), CliError> {
    if !yes {
        let site = clients
            .site
            .get_site(GetSiteRequest {
                site_id: id.clone(),
            })
            .await?
            .into_inner()
            .site
            .unwrap_or_default();
        crate::confirm(&format!(
            "Delete site {} ({}) and all its environments from their nodes?",
            site.slug, site.name
        ))?;
    }
    let job = clients
        .site
        .delete_site(DeleteSiteRequest {
            site_id: id,
            expected_version: 0,
        })
        .await?
        .into_inner()
        .job;
    crate::job::started(ctx, clients, &wait, job).await
}

/// The URL of the site's production environment, if it has one yet.
fn production_url(site: &Site) -> &str {
    site.environments
        .iter()
        .find(|env| env.id == site.production_environment_id)
        .map_or("", |env| env.url.as_str())
}

fn sites_table(sites: &[Site]) -> String {
    let mut table = Table::new(["ID", "SLUG", "NAME", "STATUS", "URL"]);
    for site in sites {
        table.row([
            site.id.clone(),
            site.slug.clone(),
            site.name.clone(),
            label::<SiteStatus>(site.status),
            or_dash(production_url(site)),
        ]);
    }
    table.render()
}

fn site_fields(site: &Site) -> Details {
    Details::new()
        .field("ID", &site.id)
        .field("Slug", &site.slug)
        .field("Name", &site.name)
        .field("Status", label::<SiteStatus>(site.status))
        .field("URL", or_dash(production_url(site)))
        .field("Created", short_time(site.create_time.as_ref()))
        .field("Updated", short_time(site.update_time.as_ref()))
        .field("Version", site.version.to_string())
}

fn site_details(site: &Site) -> String {
    let mut text = site_fields(site).render();
    text.push_str("\nEnvironments:\n");
    let mut table = Table::new(["ID", "NAME", "KIND", "STATUS", "NODE", "PHP", "URL"]);
    for env in &site.environments {
        table.row([
            env.id.clone(),
            env.name.clone(),
            label::<EnvironmentKind>(env.kind),
            label::<EnvironmentStatus>(env.status),
            or_dash(&env.node_id),
            or_dash(&env.php_version),
            or_dash(&env.url),
        ]);
    }
    text.push_str(&table.render());
    text
}

fn created_text(response: &CreateSiteResponse) -> String {
    let site = response.site.clone().unwrap_or_default();
    let job = response.job.clone().unwrap_or_default();
    let mut details = site_fields(&site);
    if !job.id.is_empty() {
        details = details.field(
            "Job",
            format!(
                "{} ({}, {})",
                job.id,
                label::<JobType>(job.r#type),
                label::<JobStatus>(job.status)
            ),
        );
    }
    details.render()
}

#[cfg(test)]
mod tests {
    use pressluft_proto::v1::{
        Environment, EnvironmentKind, EnvironmentStatus, Job, JobStatus, JobType, SiteStatus,
    };
    use prost_types::Timestamp;

    use super::*;

    fn site() -> Site {
        Site {
            id: "s1".into(),
            name: "My Blog".into(),
            slug: "blog".into(),
            status: SiteStatus::Active as i32,
            production_environment_id: "e1".into(),
            environments: vec![
                Environment {
                    id: "e1".into(),
                    site_id: "s1".into(),
                    name: "production".into(),
                    kind: EnvironmentKind::Production as i32,
                    status: EnvironmentStatus::Active as i32,
                    node_id: "n1".into(),
                    php_version: "8.3".into(),
                    url: "https://blog.example.com".into(),
                    ..Environment::default()
                },
                Environment {
                    id: "e2".into(),
                    site_id: "s1".into(),
                    name: "staging".into(),
                    kind: EnvironmentKind::Staging as i32,
                    status: EnvironmentStatus::Cloning as i32,
                    node_id: "n1".into(),
                    ..Environment::default()
                },
            ],
            create_time: Some(Timestamp {
                seconds: 1_764_091_743,
                nanos: 0,
            }),
            update_time: None,
            version: 2,
        }
    }

    #[test]
    fn table_shows_the_production_url() {
        let creating = Site {
            id: "s2".into(),
            name: "Shop".into(),
            slug: "shop".into(),
            status: SiteStatus::Creating as i32,
            ..Site::default()
        };
        assert_eq!(
            sites_table(&[site(), creating]),
            "ID  SLUG  NAME     STATUS    URL\n\
             s1  blog  My Blog  active    https://blog.example.com\n\
             s2  shop  Shop     creating  -\n"
        );
    }

    #[test]
    fn details_list_the_environments() {
        let text = site_details(&site());
        assert!(text.starts_with("ID:       s1\nSlug:     blog\n"), "{text}");
        assert!(
            text.contains("URL:      https://blog.example.com\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "Environments:\n\
                 ID  NAME        KIND        STATUS   NODE  PHP  URL\n\
                 e1  production  production  active   n1    8.3  https://blog.example.com\n\
                 e2  staging     staging     cloning  n1    -    -\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_nests_environments_in_the_canonical_mapping() {
        let value = message(&site());
        assert_eq!(value["status"], "SITE_STATUS_ACTIVE");
        assert_eq!(value["create_time"], "2025-11-25T17:29:03Z");
        assert!(value.get("update_time").is_none());
        assert_eq!(
            value["environments"][0]["kind"],
            "ENVIRONMENT_KIND_PRODUCTION"
        );
        assert_eq!(
            value["environments"][1]["status"],
            "ENVIRONMENT_STATUS_CLONING"
        );
        assert!(value["environments"][1].get("url").is_none());
        assert!(value["environments"][0].get("drift_status").is_none());
    }

    #[test]
    fn create_output_names_the_job() {
        let response = CreateSiteResponse {
            site: Some(site()),
            environment: site().environments.first().cloned(),
            job: Some(Job {
                id: "j1".into(),
                r#type: JobType::SiteCreate as i32,
                status: JobStatus::Queued as i32,
                ..Job::default()
            }),
        };
        assert!(created_text(&response).ends_with("Job:      j1 (site_create, queued)\n"));
        let value = message(&response);
        assert_eq!(value["job"]["type"], "JOB_TYPE_SITE_CREATE");
        assert_eq!(value["environment"]["id"], "e1");
        assert_eq!(value["site"]["slug"], "blog");
    }
}
