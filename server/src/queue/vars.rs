//! Builds a job's playbook variables from the database: `job`, `node`, `settings`, and where
//! they apply `site`, `env`, `source_env`, `envs` (`environment` is reserved by Ansible).
//! Secrets are unsealed here, travel to the playbook only in the 0600 extra-vars file, and
//! are listed for redaction.

use std::time::Duration;

use serde_json::{Value, json};

use crate::domains;
use crate::error::{Error, Result};
use crate::executor::{JobSpec, NodeTarget};
use crate::model::job::{EnvDeploy, JobParams, ReleaseSource};
use crate::model::{EnvironmentId, JobKind, drift};
use crate::queue::policy::releases_to_prune;
use crate::secrets::Secret;
use crate::state::AppState;
use crate::store::{EnvironmentWithSecrets, JobRecord, NodeWithSettings};

/// The spec of one attempt of `job` (whose parameters are `params`).
pub async fn job_spec(state: &AppState, job: &JobRecord, params: &JobParams) -> Result<JobSpec> {
    let store = &state.store;
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
            "wordpress_source_dir": state.config.wordpress_source_dir,
            "update_source_dir": state.config.update_source_dir,
            "firewall_allow_tcp": state.config.firewall_allow_tcp,
            "http_check_timeout": state.config.health_check_timeout.as_secs(),
            // Nodes check fetched URLs again (redirects, DNS changes): the same rule applies.
            "allow_private_networks": state.config.allow_private_networks,
            "acme": {
                "server": state.config.acme.directory_url,
                "email": state.config.acme.email,
                "ca_bundle": state.config.acme.ca_bundle,
            },
        },
    });
    if let Some(env_id) = job.environment_id {
        // The environment's row carries its site's name and slug: one read for both.
        let (env, site) = environment_vars(state, env_id, &mut secrets).await?;
        vars["env"] = env;
        vars["site"] = site;
    } else if let Some(site_id) = job.site_id {
        let site = store.site(site_id).await?;
        vars["site"] = json!({ "id": site.id.to_string(), "name": site.name, "slug": site.slug });
    }
    if let Some(source) = params.source_environment() {
        vars["source_env"] = environment_vars(state, source, &mut secrets).await?.0;
    }
    if let JobParams::SiteDelete(delete) = params {
        let mut envs = Vec::new();
        for id in &delete.environments {
            envs.push(environment_vars(state, *id, &mut secrets).await?.0);
        }
        vars["envs"] = Value::Array(envs);
    }
    add_kind_vars(
        state,
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
    state: &AppState,
    job: &JobRecord,
    params: &JobParams,
    vars: &mut Value,
    secrets: &mut Vec<Secret>,
    releases_to_keep: i64,
) -> Result<()> {
    let store = &state.store;
    if let JobParams::EnvDeploy(EnvDeploy {
        source: ReleaseSource::Upload { upload_id: id, .. },
    }) = params
    {
        let id = *id;
        // An uploaded archive travels from the control plane to the node with the job.
        let upload = crate::uploads::find(&state.config.data_dir, id).await?;
        vars["upload_path"] = json!(crate::uploads::archive_path(&state.config.data_dir, id));
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
        let target = crate::ops::backup_target(state).await?.ok_or_else(|| {
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
        let (key_type, key_blob) = state
            .control_plane_key
            .split_once(' ')
            .map(|(t, rest)| (t, rest.split(' ').next().unwrap_or_default()))
            .unwrap_or_default();
        vars["control_plane"] = json!({
            "key_type": key_type,
            "key_blob": key_blob,
            "addresses": state.config.control_plane_addresses,
        });
    }
    if let Some(env_id) = job.environment_id {
        domain_vars(state, env_id, params, vars).await?;
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
    state: &AppState,
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
    let env = state.store.environment(env_id).await?;
    let live = state.store.live_domains(env_id).await?;
    let domain = state.store.domain(id).await?;
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
    state: &AppState,
    id: EnvironmentId,
    secrets: &mut Vec<Secret>,
) -> Result<(Value, Value)> {
    let EnvironmentWithSecrets {
        env,
        db_password_enc,
        wp_salts_enc,
        site_name,
        site_slug,
    } = state.store.environment_with_secrets(id).await?;
    let password = state.secret_box.open(&db_password_enc)?;
    let salts = state.secret_box.open(&wp_salts_enc)?;
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
        "domains": domains::served(&state.store.live_domains(env.id).await?),
        "current_release_id": env.current_release_id.map(|r| r.to_string()),
    });
    let current_release = match env.current_release_id {
        Some(id) => {
            let r = state.store.release(id).await?;
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
