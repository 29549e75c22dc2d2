//! Builds a job's playbook variables from the database: `job`, `node`, `settings`, and where
//! they apply `site`, `env`, `source_env`, `envs` (`environment` is reserved by Ansible).
//! Secrets are unsealed here, travel to the playbook only in the 0600 extra-vars file, and
//! are listed for redaction.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{AcmeConfig, Config};
use crate::domains;
use crate::error::{Error, Result};
use crate::executor::{JobSpec, NodeTarget};
use crate::model::job::{EnvDeploy, JobParams, ReleaseSource};
use crate::model::{EnvironmentId, JobKind, drift};
use crate::queue::policy::releases_to_prune;
use crate::secrets::{Secret, SecretBox};
use crate::store::{EnvironmentWithSecrets, JobRecord, NodeWithSettings, Store};

/// What a job's variables are built from: the store, the key that opens its secrets, and the
/// control plane's own settings that playbooks see.
#[derive(Debug, Clone)]
pub struct JobSources {
    pub store: Store,
    pub secret_box: SecretBox,
    pub settings: PlaybookSettings,
}

/// The part of the server's configuration that reaches playbooks.
#[derive(Debug, Clone)]
pub struct PlaybookSettings {
    pub data_dir: PathBuf,
    pub wordpress_source_dir: Option<PathBuf>,
    pub update_source_dir: Option<PathBuf>,
    pub firewall_allow_tcp: Vec<u16>,
    pub health_check_timeout: Duration,
    pub allow_private_networks: bool,
    pub acme: AcmeConfig,
    pub control_plane_addresses: Vec<String>,
    /// The control plane's SSH public key as an authorized_keys line.
    pub control_plane_key: String,
}

impl PlaybookSettings {
    pub fn new(config: &Config, control_plane_key: String) -> Self {
        Self {
            data_dir: config.data_dir.clone(),
            wordpress_source_dir: config.wordpress_source_dir.clone(),
            update_source_dir: config.update_source_dir.clone(),
            firewall_allow_tcp: config.firewall_allow_tcp.clone(),
            health_check_timeout: config.health_check_timeout,
            allow_private_networks: config.allow_private_networks,
            acme: config.acme(),
            control_plane_addresses: config.control_plane_addresses.clone(),
            control_plane_key,
        }
    }
}

/// The spec of one attempt of `job` (whose parameters are `params`).
pub async fn job_spec(
    sources: &JobSources,
    job: &JobRecord,
    params: &JobParams,
) -> Result<JobSpec> {
    let store = &sources.store;
    let config = &sources.settings;
    let NodeWithSettings {
        node,
        releases_to_keep,
        preview_domain,
    } = store.node_with_settings(job.node_id).await?;
    let mut secrets = Vec::new();
    let mut vars = json!({
        "job": { "id": job.id.to_string(), "type": job.kind.as_str(), "params": params.to_json() },
        "node": {
            "id": node.id.to_string(),
            "name": node.name,
            "public_ip": node.public_ip,
            "is_local": node.is_local,
        },
        "settings": {
            "releases_to_keep": releases_to_keep,
            "preview_domain": preview_domain,
            "wordpress_source_dir": config.wordpress_source_dir,
            "update_source_dir": config.update_source_dir,
            "firewall_allow_tcp": config.firewall_allow_tcp,
            "http_check_timeout": config.health_check_timeout.as_secs(),
            // Nodes check fetched URLs again (redirects, DNS changes): the same rule applies.
            "allow_private_networks": config.allow_private_networks,
            "acme": {
                "server": config.acme.directory_url,
                "email": config.acme.email,
                "ca_bundle": config.acme.ca_bundle,
            },
        },
    });
    if let Some(env_id) = job.environment_id {
        // The environment's row carries its site's name and slug: one read for both.
        let (env, site) = environment_vars(sources, env_id, &mut secrets).await?;
        vars["env"] = env;
        vars["site"] = site;
    } else if let Some(site_id) = job.site_id {
        let site = store.site(site_id).await?;
        vars["site"] = json!({ "id": site.id.to_string(), "name": site.name, "slug": site.slug });
    }
    if let Some(source) = params.source_environment() {
        vars["source_env"] = environment_vars(sources, source, &mut secrets).await?.0;
    }
    if let JobParams::SiteDelete(delete) = params {
        let mut envs = Vec::new();
        for id in &delete.environments {
            envs.push(environment_vars(sources, *id, &mut secrets).await?.0);
        }
        vars["envs"] = Value::Array(envs);
    }
    add_kind_vars(
        sources,
        job,
        params,
        &mut vars,
        &mut secrets,
        releases_to_keep,
    )
    .await?;
    // A release created by this job gets a name that sorts by time and stays the same when
    // the job is retried: the time-ordered head and the random tail of the job's UUIDv7.
    let id = job.id.0.simple().to_string();
    vars["release_name"] = json!(format!("{}-{}", &id[..12], &id[28..]));
    Ok(JobSpec {
        job_id: job.id,
        kind: job.kind,
        attempt: job.attempts,
        node: NodeTarget {
            hostname: node.hostname,
            port: u16::try_from(node.ssh_port)
                .map_err(|_| Error::internal("a stored SSH port is out of range"))?,
            user: node.ssh_user,
            host_key: node.host_key,
        },
        vars,
        secrets,
        timeout: Duration::from_secs(u64::try_from(job.timeout_secs).unwrap_or(1800)),
    })
}

/// Variables only some job kinds need: an uploaded archive's path, the backup target, the
/// releases a deploy prunes.
async fn add_kind_vars(
    sources: &JobSources,
    job: &JobRecord,
    params: &JobParams,
    vars: &mut Value,
    secrets: &mut Vec<Secret>,
    releases_to_keep: i64,
) -> Result<()> {
    let store = &sources.store;
    let config = &sources.settings;
    if let JobParams::EnvDeploy(EnvDeploy {
        source: ReleaseSource::Upload { upload_id: id, .. },
    }) = params
    {
        let id = *id;
        // An uploaded archive travels from the control plane to the node with the job.
        let upload = crate::uploads::find(&config.data_dir, id).await?;
        vars["upload_path"] = json!(crate::uploads::archive_path(&config.data_dir, id));
        vars["upload_sha256"] = json!(upload.sha256);
    }
    if matches!(
        job.kind,
        JobKind::EnvCreate | JobKind::DriftCheck | JobKind::EnvPromote
    ) {
        // What the fingerprint leaves out (the rules live in model::drift).
        vars["drift"] = json!({
            "volatile_options": drift::VOLATILE_OPTIONS.join(","),
            "volatile_usermeta": drift::VOLATILE_USERMETA.join(","),
            "table_prefix": drift::TABLE_PREFIX,
        });
    }
    if job.kind.uses_backup_storage() {
        let target = crate::ops::backup_target(store, &sources.secret_box)
            .await?
            .ok_or_else(|| {
                Error::precondition(
                    crate::error::Reason::BackupTargetMissing,
                    "no backup target is configured: set one with SetBackupTarget",
                )
            })?;
        let config = target.rclone_config();
        vars["backup_target"] = json!({
            "rclone_config": config.expose(),
            // New objects go under the prefix; recorded object keys are relative to the bucket.
            "remote": target.remote_path(""),
            "bucket_remote": format!("{}:{}/", crate::s3::REMOTE, target.bucket),
            "prefix": target.prefix,
            "bucket": target.bucket,
            "plain_http": target.endpoint.starts_with("http://"),
        });
        secrets.push(target.secret_access_key);
    }
    if job.kind == JobKind::NodeProvision {
        // The node trusts this key only from these addresses (empty: the address the job's
        // own connection comes from), with `restrict` (see docs/security.md).
        let (key_type, key_blob) = config
            .control_plane_key
            .split_once(' ')
            .map(|(t, rest)| (t, rest.split(' ').next().unwrap_or_default()))
            .unwrap_or_default();
        vars["control_plane"] = json!({
            "key_type": key_type,
            "key_blob": key_blob,
            "addresses": config.control_plane_addresses,
        });
    }
    if let Some(env_id) = job.environment_id {
        domain_vars(store, env_id, params, vars).await?;
    }
    if job.kind == JobKind::EnvDeploy
        && let Some(env_id) = job.environment_id
    {
        // What goes once the new release is live (names only: the node deletes, the job's
        // end marks them pruned).
        let existing: Vec<_> = store
            .list_releases(env_id, 500, None)
            .await?
            .items
            .into_iter()
            .map(|r| (r.name, r.health))
            .collect();
        let current = vars["env"]["current_release"]["name"].as_str();
        let keep = usize::try_from(releases_to_keep).unwrap_or(1);
        vars["prune_releases"] = json!(releases_to_prune(&existing, current, keep));
    }
    Ok(())
}

/// A domain job's domain and the server blocks before, during and after it
/// (`domains::plan`); nothing for other jobs.
async fn domain_vars(
    store: &Store,
    env_id: EnvironmentId,
    params: &JobParams,
    vars: &mut Value,
) -> Result<()> {
    let (id, make_primary) = match params {
        JobParams::DomainAdd(add) => (add.domain_id, Some(add.make_primary)),
        JobParams::DomainRemove(remove) => (Some(remove.domain_id), None),
        _ => return Ok(()),
    };
    let id = id.ok_or_else(|| Error::internal("a domain job without its domain"))?;
    let env = store.environment(env_id).await?;
    let live = store.live_domains(env_id).await?;
    let domain = store.domain(id).await?;
    let change = match make_primary {
        Some(make_primary) => domains::Change::Add {
            domain: &domain,
            make_primary,
        },
        None => domains::Change::Remove { domain: &domain },
    };
    let plan = domains::plan(&live, &env.preview_url, change);
    vars["domain"] = json!({
        "id": domain.id.to_string(),
        "hostname": domain.hostname,
        "names": domain.names(),
        "has_certificate": domain.tls_expires_at.is_some(),
    });
    vars["domains_issuing"] = json!(plan.issuing);
    vars["domains_after"] = json!(plan.after);
    vars["url_after"] = json!(plan.url_after);
    Ok(())
}

/// An environment's variables (secrets unsealed and listed for redaction) and its site's.
async fn environment_vars(
    sources: &JobSources,
    id: EnvironmentId,
    secrets: &mut Vec<Secret>,
) -> Result<(Value, Value)> {
    let EnvironmentWithSecrets {
        env,
        db_password_enc,
        wp_salts_enc,
        site_name,
        site_slug,
    } = sources.store.environment_with_secrets(id).await?;
    let password = sources.secret_box.open(&db_password_enc)?;
    let salts = sources.secret_box.open(&wp_salts_enc)?;
    let salts: Value = serde_json::from_str(salts.expose())
        .map_err(|_| Error::internal("stored salts are not JSON"))?;
    if let Some(map) = salts.as_object() {
        secrets.extend(map.values().filter_map(Value::as_str).map(Secret::new));
    }
    let mut vars = json!({
        "id": env.id.to_string(),
        "name": env.name,
        "kind": env.kind.as_str(),
        "linux_user": env.linux_user,
        "linux_uid": env.linux_uid,
        "db_name": env.db_name,
        "db_user": env.db_user,
        "db_password": password.expose(),
        // Every table's prefix (`$table_prefix`): playbooks never spell a table name without it.
        "table_prefix": drift::TABLE_PREFIX,
        "wp_salts": salts,
        "php_version": env.php_version,
        "root": env.root_path(),
        "preview_url": env.preview_url,
        "url": env.url(),
        "primary_domain": env.primary_domain,
        "page_cache": env.page_cache,
        "object_cache": env.object_cache,
        "domains": domains::served(&sources.store.live_domains(env.id).await?),
        "current_release_id": env.current_release_id.map(|r| r.to_string()),
    });
    let current_release = match env.current_release_id {
        Some(id) => {
            let r = sources.store.release(id).await?;
            json!({
                "id": r.id.to_string(),
                "name": r.name,
                "source_kind": r.source_kind.as_str(),
                "source": serde_json::from_str::<Value>(&r.source).unwrap_or(Value::Null),
                "resolved_ref": r.resolved_ref,
            })
        }
        None => Value::Null,
    };
    vars["current_release"] = current_release;
    let site = json!({ "id": env.site_id.to_string(), "name": site_name, "slug": site_slug });
    secrets.push(password);
    Ok((vars, site))
}
