//! `domain add|list|remove` and `cache set|purge`.

use clap::{Subcommand, ValueEnum};
use pressluft_client::labels::{label, short_time};
use pressluft_proto::v1::{
    AddDomainRequest, Domain, ListDomainsRequest, PurgeCacheRequest, RemoveDomainRequest,
    TlsStatus, UpdateCacheSettingsRequest,
};
use serde_json::json;

use crate::all_pages;
use crate::error::CliError;
use crate::global::Ctx;
use crate::job::started;
use crate::output::{Details, Table, message, yes_no};
use crate::watch::WaitArgs;

const PAGE_SIZE: i32 = 500;

/// Subcommands of `pressluft domain`.
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a custom domain: DNS check, certificate (Let's Encrypt HTTP-01), redirects
    ///
    /// The first domain becomes the site's address (URLs are rewritten); others redirect to
    /// it. Point the name's A/AAAA record at the node first.
    ///
    /// Example: pressluft domain add ENV www.example.com --wait
    Add {
        /// Environment id
        env: String,
        /// Hostname, e.g. example.com
        hostname: String,
        /// Make it the primary domain (the first one always is)
        #[arg(long)]
        primary: bool,
        /// Skip the check that the name resolves to the node (private setups)
        #[arg(long)]
        skip_dns_check: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List an environment's domains with their certificate state
    List {
        /// Environment id
        env: String,
    },
    /// Remove a domain and its certificate (the primary falls back to the preview URL)
    Remove {
        /// Domain id
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// Subcommands of `pressluft cache`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Turn the page cache (nginx) and/or the object cache (Redis) on or off
    ///
    /// Example: pressluft cache set ENV --page on --object on --wait
    Set {
        /// Environment id
        env: String,
        /// nginx FastCGI page cache
        #[arg(long, value_enum, required_unless_present = "object")]
        page: Option<Switch>,
        /// Redis object cache
        #[arg(long, value_enum)]
        object: Option<Switch>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Empty an environment's page and object caches
    Purge {
        /// Environment id
        env: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Runs a `domain` subcommand.
pub async fn run(ctx: &Ctx, command: DomainCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        DomainCommand::Add {
            env,
            hostname,
            primary,
            skip_dns_check,
            wait,
        } => {
            let response = clients
                .site
                .add_domain(AddDomainRequest {
                    environment_id: env,
                    expected_version: 0,
                    hostname,
                    make_primary: primary,
                    skip_dns_check,
                })
                .await?
                .into_inner();
            let domain = response.domain.unwrap_or_default();
            let job = response.job.unwrap_or_default();
            wait.finish(
                ctx,
                &mut clients,
                &job.id,
                || domain_details(&domain) + &format!("Job:      {} ({})\n", job.id, job.summary),
                || json!({"domain": message(&domain), "job": message(&job)}),
            )
            .await
        }
        DomainCommand::List { env } => {
            let domains = all_pages!(
                |token| clients.site.list_domains(ListDomainsRequest {
                    environment_id: env.clone(),
                    page_size: PAGE_SIZE,
                    page_token: token,
                }),
                domains
            );
            ctx.emit(
                || domains_table(&domains, ctx.wide()),
                || json!({ "domains": domains.iter().map(message).collect::<Vec<_>>() }),
            )
        }
        DomainCommand::Remove { id, wait } => {
            let job = clients
                .site
                .remove_domain(RemoveDomainRequest {
                    domain_id: id,
                    expected_version: 0,
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
    }
}

/// Runs a `cache` subcommand.
pub async fn run_cache(ctx: &Ctx, command: CacheCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        CacheCommand::Set {
            env,
            page,
            object,
            wait,
        } => {
            let job = clients
                .site
                .update_cache_settings(UpdateCacheSettingsRequest {
                    environment_id: env,
                    expected_version: 0,
                    page_cache: page.map(|s| s == Switch::On),
                    object_cache: object.map(|s| s == Switch::On),
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
        CacheCommand::Purge { env, wait } => {
            let job = clients
                .site
                .purge_cache(PurgeCacheRequest {
                    environment_id: env,
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
    }
}

/// The certificate column: its state, and a warning when it expires within 14 days.
fn tls_text(d: &Domain) -> String {
    let state = label::<TlsStatus>(d.tls_status);
    if d.tls_expires_soon {
        format!("{state} (expires soon!)")
    } else {
        state
    }
}

fn domains_table(domains: &[Domain], wide: bool) -> String {
    let mut table = Table::new(["ID", "HOSTNAME", "PRIMARY", "TLS", "EXPIRES", "MESSAGE"]);
    for d in domains {
        let mut hostname = d.hostname.clone();
        if wide && !d.aliases.is_empty() {
            hostname = format!("{hostname} (+{})", d.aliases.join(", "));
        }
        table.row([
            d.id.clone(),
            hostname,
            if d.is_primary { "*" } else { "" }.to_owned(),
            tls_text(d),
            short_time(d.tls_expire_time.as_ref()),
            d.tls_message.clone(),
        ]);
    }
    table.render()
}

/// One domain as "Key: value" lines.
pub fn domain_details(d: &Domain) -> String {
    Details::new()
        .field("ID", &d.id)
        .field("Hostname", &d.hostname)
        .field_if("Aliases", d.aliases.join(", "))
        .field("Primary", yes_no(d.is_primary))
        .field("TLS", tls_text(d))
        .field("Expires", short_time(d.tls_expire_time.as_ref()))
        .field("Checked", short_time(d.tls_check_time.as_ref()))
        .field_if("Message", &d.tls_message)
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_warns_about_certificates_close_to_expiry() {
        let d = Domain {
            id: "d1".into(),
            hostname: "example.com".into(),
            aliases: vec!["www.example.com".into()],
            is_primary: true,
            tls_status: pressluft_proto::v1::TlsStatus::Active as i32,
            tls_expires_soon: true,
            ..Domain::default()
        };
        assert_eq!(
            domains_table(std::slice::from_ref(&d), false),
            "ID  HOSTNAME     PRIMARY  TLS                     EXPIRES  MESSAGE\n\
             d1  example.com  *        active (expires soon!)  -\n"
        );
        assert!(
            domains_table(std::slice::from_ref(&d), true)
                .contains("example.com (+www.example.com)")
        );
        assert_eq!(message(&d)["tls_status"], "TLS_STATUS_ACTIVE");
        assert!(domain_details(&d).contains("Aliases:   www.example.com\n"));
    }
}
