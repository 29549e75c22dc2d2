//! Domain operations that do more than one store call: choosing defaults, generating and
//! sealing secrets, and building job parameters. Handlers validate; these decide.

use serde_json::json;

use crate::error::{Error, Reason, Result};
use crate::model::job::{self, JobParams, PreBackup};
use crate::model::placement;
use crate::model::{BackupTrigger, EnvironmentId, EnvironmentKind, NodeId, SiteId, drift};
use crate::s3::S3Target;
use crate::secrets::{Secret, SecretBox, random_alphanumeric};
use crate::store::{
    BackupTargetUpdate, EnvironmentRecord, JobRecord, NewEnvironment, NewJob, NewSite, SiteRecord,
    Store,
};

/// The eight WordPress keys and salts.
const WP_SALT_NAMES: [&str; 8] = [
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
];

/// A validated CreateSite request.
#[derive(Debug, Clone)]
pub struct CreateSite {
    pub name: String,
    pub slug: String,
    pub node_id: Option<NodeId>,
    pub php_version: Option<String>,
    pub wordpress_version: String,
    pub title: Option<String>,
    pub admin_email: Option<String>,
    pub admin_user: String,
}

/// Creates a site: picks the node and PHP version, generates the environment's secrets
/// (sealed before they reach the store) and queues the site_create job.
pub async fn create_site(
    store: &Store,
    secret_box: &SecretBox,
    actor_email: &str,
    actor: &str,
    input: CreateSite,
) -> Result<(SiteRecord, EnvironmentRecord, JobRecord)> {
    let settings = store.settings().await?;
    let node_id = match input.node_id.or(settings.default_node_id) {
        Some(id) => id,
        None => placement::place_site(&store.node_loads().await?)?,
    };
    let node = store.node(node_id).await?;
    let php_version = php_version_for(
        &node.php_versions(),
        input.php_version,
        &settings.default_php_version,
    )?;
    let env = new_environment(
        secret_box,
        "production",
        EnvironmentKind::Production,
        node.id,
        php_version.clone(),
        None,
    )?;
    let params = JobParams::SiteCreate(job::SiteCreate {
        wordpress_version: input.wordpress_version,
        title: input.title.unwrap_or_else(|| input.name.clone()),
        admin_email: input.admin_email.unwrap_or_else(|| actor_email.to_owned()),
        admin_user: input.admin_user,
        php_version,
    });
    let summary = format!("create site {} on {}", input.slug, node.name);
    let job = NewJob::new(params, summary, actor);
    store
        .create_site(
            &NewSite {
                name: input.name,
                slug: input.slug,
            },
            &env,
            &settings.preview_domain,
            job,
        )
        .await
}

/// A validated CreateEnvironment request.
#[derive(Debug, Clone)]
pub struct CreateEnvironment {
    pub site_id: SiteId,
    pub source_id: EnvironmentId,
    pub name: String,
    pub kind: EnvironmentKind,
    pub node_id: Option<NodeId>,
}

/// Clones `source` into a new environment of `site` and queues the env_create job.
pub async fn create_environment(
    store: &Store,
    secret_box: &SecretBox,
    actor: &str,
    input: CreateEnvironment,
) -> Result<(EnvironmentRecord, JobRecord)> {
    let CreateEnvironment {
        site_id,
        source_id,
        name,
        kind,
        node_id,
    } = input;
    let settings = store.settings().await?;
    let source = store.environment(source_id).await?;
    if source.site_id != site_id {
        return Err(Error::not_found("environment", &source_id));
    }
    let node = store.node(node_id.unwrap_or(source.node_id)).await?;
    if node.id != source.node_id {
        // The clone copies files and the database locally; moving them between nodes is a
        // transfer job of its own.
        return Err(Error::Invalid(crate::model::validate::Invalid {
            field: "node_id",
            message:
                "a clone is made on its source's node; cloning to another node is not supported"
                    .into(),
        }));
    }
    let env = new_environment(
        secret_box,
        &name,
        kind,
        node.id,
        source.php_version.clone(),
        Some(source.id),
    )?;
    let params = JobParams::EnvCreate(job::EnvCreate {
        source_environment_id: source.id,
    });
    let job = NewJob::new(params, format!("clone {} to {name}", source.name), actor);
    store
        .create_environment(site_id, &env, &settings.preview_domain, job)
        .await
}

fn new_environment(
    secret_box: &SecretBox,
    name: &str,
    kind: EnvironmentKind,
    node_id: NodeId,
    php_version: String,
    source: Option<EnvironmentId>,
) -> Result<NewEnvironment> {
    let salts: serde_json::Map<String, serde_json::Value> = WP_SALT_NAMES
        .iter()
        .map(|n| ((*n).to_owned(), json!(random_alphanumeric(64).expose())))
        .collect();
    Ok(NewEnvironment {
        name: name.to_owned(),
        kind,
        node_id,
        php_version,
        db_password_sealed: secret_box.seal(&random_alphanumeric(32))?,
        wp_salts_sealed: secret_box
            .seal(&Secret::new(serde_json::Value::Object(salts).to_string()))?,
        source_environment_id: source,
    })
}

/// Queues the restore of `backup_id` into `env_id` (env_restore, with its pre-restore backup).
/// Only a completed backup of the same environment, or of the site's production into another
/// environment of the site when `allow_from_production` is set.
pub async fn restore_backup(
    store: &Store,
    actor: &str,
    env_id: EnvironmentId,
    expected_version: i64,
    backup_id: crate::model::BackupId,
    allow_from_production: bool,
) -> Result<JobRecord> {
    let backup = store.backup(backup_id).await?;
    let env = store.environment(env_id).await?;
    let mut rewrite_from = String::new();
    if backup.status != crate::model::BackupStatus::Completed {
        return Err(Error::precondition(
            Reason::BackupNotRestorable,
            format!(
                "the backup is {}; only completed backups restore",
                backup.status
            ),
        ));
    }
    if backup.environment_id != env.id {
        let source = store.environment(backup.environment_id).await?;
        let from_production = source.site_id == env.site_id
            && source.kind == EnvironmentKind::Production
            && env.kind != EnvironmentKind::Production;
        if !(from_production && allow_from_production) {
            return Err(Error::precondition(
                Reason::BackupNotRestorable,
                if from_production {
                    "the backup is production's: set allow_from_production to restore it here"
                } else {
                    "the backup belongs to another environment"
                },
            ));
        }
        // Production's database names production's URLs: rewritten after the import.
        rewrite_from = source.url();
    }
    let summary = format!("restore backup {} into {}", backup.id, env.name);
    let params = JobParams::EnvRestore(job::EnvRestore {
        backup_id_restored: backup.id,
        object_key: backup.object_key,
        sha256: backup.sha256,
        scope: backup.scope,
        rewrite_from,
        pre_backup: PreBackup::new(BackupTrigger::PreRestore),
    });
    let job = NewJob::new(params, summary, actor);
    store
        .enqueue_environment_job(env_id, expected_version, job)
        .await
}

/// Queues a drift check of production environment `env_id` against its newest baseline.
pub async fn check_drift(
    store: &Store,
    actor: &str,
    env_id: EnvironmentId,
    preset: crate::model::drift::Preset,
) -> Result<JobRecord> {
    let env = store.environment(env_id).await?;
    if env.kind != EnvironmentKind::Production {
        return Err(Error::Invalid(crate::model::validate::Invalid {
            field: "environment_id",
            message: "drift is checked on the production environment".into(),
        }));
    }
    let baseline = store
        .latest_drift_baseline(env_id)
        .await?
        .ok_or_else(|| {
            Error::precondition(
                Reason::NoDriftBaseline,
                "there is no baseline yet: it is taken when a staging environment is cloned from production",
            )
        })?;
    let params = JobParams::DriftCheck(job::DriftCheck {
        preset,
        baseline,
        ignored_tables: drift::ignored_tables(preset, drift::TABLE_PREFIX),
    });
    let summary = format!("check {} for drift ({})", env.name, preset.as_str());
    let job = NewJob::new(params, summary, actor);
    store.enqueue_environment_job(env_id, 0, job).await
}

/// Queues the promotion of `source_id` (staging) into its site's production, gated by a drift
/// check against that staging's baseline and a pre-promotion backup (both inside the job).
pub async fn promote(
    store: &Store,
    actor: &str,
    source_id: EnvironmentId,
    expected_version: i64,
    preset: crate::model::drift::Preset,
) -> Result<JobRecord> {
    let source = store.environment(source_id).await?;
    if source.kind == EnvironmentKind::Production {
        return Err(Error::Invalid(crate::model::validate::Invalid {
            field: "source_environment_id",
            message: "promote a staging environment into production, not production itself".into(),
        }));
    }
    if source.status != crate::model::EnvironmentStatus::Active {
        return Err(Error::precondition(
            Reason::EnvironmentNotActive,
            format!("the staging environment is {}", source.status),
        ));
    }
    let site = store.site(source.site_id).await?;
    let production = site
        .production_environment_id
        .ok_or_else(|| Error::not_found("environment", &"production"))?;
    let baseline = store
        .drift_baseline_of(source_id, production)
        .await?
        .ok_or_else(|| {
            Error::precondition(
                Reason::NoDriftBaseline,
                "this environment has no baseline against production: it was not cloned from it",
            )
        })?;
    let params = JobParams::EnvPromote(job::EnvPromote {
        source_environment_id: source_id,
        preset,
        baseline,
        ignored_tables: drift::ignored_tables(preset, drift::TABLE_PREFIX),
        pre_backup: PreBackup::new(BackupTrigger::PrePromote),
    });
    let summary = format!(
        "promote {} to production ({})",
        source.name,
        preset.as_str()
    );
    let job = NewJob::new(params, summary, actor);
    store
        .enqueue_environment_job(production, expected_version, job)
        .await
}

/// Saves a backup target once a test upload through it worked (the secret sealed).
pub async fn set_backup_target(
    store: &Store,
    secret_box: &SecretBox,
    rclone: &std::path::Path,
    expected_version: i64,
    target: &S3Target,
) -> Result<crate::store::SettingsRecord> {
    target.probe(rclone).await?;
    let update = BackupTargetUpdate {
        endpoint: target.endpoint.clone(),
        bucket: target.bucket.clone(),
        region: target.region.clone(),
        prefix: target.prefix.clone(),
        access_key_id: target.access_key_id.clone(),
        secret_sealed: secret_box.seal(&target.secret_access_key)?,
    };
    store.set_backup_target(expected_version, &update).await
}

/// The configured backup target with its secret unsealed, if one is set.
pub async fn backup_target(store: &Store, secret_box: &SecretBox) -> Result<Option<S3Target>> {
    let settings = store.settings().await?;
    if settings.s3_endpoint.is_empty() {
        return Ok(None);
    }
    let sealed = store.backup_target_secret().await?;
    Ok(Some(S3Target {
        endpoint: settings.s3_endpoint,
        bucket: settings.s3_bucket,
        region: settings.s3_region,
        prefix: settings.s3_prefix,
        access_key_id: settings.s3_access_key_id,
        secret_access_key: secret_box.open(&sealed)?,
    }))
}

/// The PHP version of a new environment: the one asked for, which a provisioned node must have;
/// else the default when the node has it, else the node's newest.
fn php_version_for(installed: &[String], asked: Option<String>, default: &str) -> Result<String> {
    match asked {
        Some(v) if installed.is_empty() || installed.contains(&v) => Ok(v),
        Some(v) => Err(Error::precondition(
            Reason::PhpVersionUnavailable,
            format!(
                "PHP {v} is not installed on the node (it has {})",
                installed.join(", ")
            ),
        )),
        None if installed.is_empty() || installed.iter().any(|i| i == default) => {
            Ok(default.to_owned())
        }
        None => Ok(installed
            .iter()
            .max_by(|a, b| version_key(a).cmp(&version_key(b)))
            .cloned()
            .unwrap_or_default()),
    }
}

fn version_key(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_version_follows_the_node() {
        let node = vec!["8.2".to_owned()];
        assert_eq!(php_version_for(&node, None, "8.3").expect("ok"), "8.2");
        assert_eq!(
            php_version_for(&[], None, "8.3").expect("ok"),
            "8.3",
            "unprovisioned node: the default"
        );
        assert_eq!(
            php_version_for(&["8.2".into(), "8.3".into()], None, "8.3").expect("ok"),
            "8.3"
        );
        assert_eq!(
            php_version_for(&["8.1".into(), "8.10".into()], None, "8.3").expect("ok"),
            "8.10"
        );
        assert!(php_version_for(&node, Some("8.3".into()), "8.3").is_err());
        assert_eq!(
            php_version_for(&node, Some("8.2".into()), "8.3").expect("ok"),
            "8.2"
        );
    }
}
