//! What a job is asked to do: its parameters, one type per job type, and what it acts on.
//!
//! The store keeps the parameters as JSON in the job's `params` column (the object inside
//! `params` below, keyed by the job's `kind` column) and the playbooks read them as
//! `job.params`. [`JobParams::to_json`] and [`JobParams::from_json`] are the only places that
//! (de)serialise them; everything else matches on the variants.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::drift::Preset;
use super::{
    BackupId, BackupScope, BackupTrigger, DomainId, EnvironmentId, JobKind, NodeId, NodeStatus,
    ReleaseId, SiteId,
};

/// The parameters of one job, a variant per job type (the variant is the job's type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "params", rename_all = "snake_case")]
pub enum JobParams {
    NodeProvision(NodeProvision),
    SiteCreate(SiteCreate),
    SiteDelete(SiteDelete),
    SiteImport {},
    EnvCreate(EnvCreate),
    EnvDelete(EnvDelete),
    EnvDeploy(EnvDeploy),
    EnvUpdate(EnvUpdate),
    ReleaseRollback(ReleaseRollback),
    HealthCheck(HealthCheck),
    BackupCreate(BackupCreate),
    BackupCleanup(BackupCleanup),
    EnvRestore(EnvRestore),
    DriftCheck(DriftCheck),
    EnvPromote(EnvPromote),
    DomainAdd(DomainAdd),
    DomainRemove(DomainRemove),
    EnvCacheToggle(EnvCacheToggle),
    CachePurge {},
}

/// Stored parameters that do not fit their job type (a damaged row, or a row written by a
/// version with another contract).
#[derive(Debug, thiserror::Error)]
#[error("the parameters of a {kind} job do not match its type: {reason}")]
pub struct BadParams {
    pub kind: JobKind,
    pub reason: String,
}

impl JobParams {
    /// The job type these parameters belong to.
    pub const fn kind(&self) -> JobKind {
        match self {
            Self::NodeProvision(_) => JobKind::NodeProvision,
            Self::SiteCreate(_) => JobKind::SiteCreate,
            Self::SiteDelete(_) => JobKind::SiteDelete,
            Self::SiteImport {} => JobKind::SiteImport,
            Self::EnvCreate(_) => JobKind::EnvCreate,
            Self::EnvDelete(_) => JobKind::EnvDelete,
            Self::EnvDeploy(_) => JobKind::EnvDeploy,
            Self::EnvUpdate(_) => JobKind::EnvUpdate,
            Self::ReleaseRollback(_) => JobKind::ReleaseRollback,
            Self::HealthCheck(_) => JobKind::HealthCheck,
            Self::BackupCreate(_) => JobKind::BackupCreate,
            Self::BackupCleanup(_) => JobKind::BackupCleanup,
            Self::EnvRestore(_) => JobKind::EnvRestore,
            Self::DriftCheck(_) => JobKind::DriftCheck,
            Self::EnvPromote(_) => JobKind::EnvPromote,
            Self::DomainAdd(_) => JobKind::DomainAdd,
            Self::DomainRemove(_) => JobKind::DomainRemove,
            Self::EnvCacheToggle(_) => JobKind::EnvCacheToggle,
            Self::CachePurge {} => JobKind::CachePurge,
        }
    }

    /// The JSON object stored in the `params` column and handed to the playbook.
    pub fn to_json(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("params").unwrap_or_default(),
            // Every variant serialises to a tagged object (see the round-trip test).
            _ => Value::Null,
        }
    }

    /// The parameters of a `kind` job from its stored JSON object.
    pub fn from_json(kind: JobKind, stored: &str) -> Result<Self, BadParams> {
        let bad = |reason: String| BadParams { kind, reason };
        let params: Value = serde_json::from_str(stored).map_err(|e| bad(e.to_string()))?;
        let tagged = serde_json::json!({ "type": kind.as_str(), "params": params });
        serde_json::from_value(tagged).map_err(|e| bad(e.to_string()))
    }

    /// The backup this job takes before it changes anything (restore, promote, update).
    pub const fn pre_backup(&self) -> Option<&PreBackup> {
        match self {
            Self::EnvRestore(p) => Some(&p.pre_backup),
            Self::EnvPromote(p) => Some(&p.pre_backup),
            Self::EnvUpdate(p) => Some(&p.pre_backup),
            _ => None,
        }
    }

    /// See [`Self::pre_backup`].
    pub const fn pre_backup_mut(&mut self) -> Option<&mut PreBackup> {
        match self {
            Self::EnvRestore(p) => Some(&mut p.pre_backup),
            Self::EnvPromote(p) => Some(&mut p.pre_backup),
            Self::EnvUpdate(p) => Some(&mut p.pre_backup),
            _ => None,
        }
    }

    /// The other environment the job reads (a clone's source, a promotion's staging).
    pub const fn source_environment(&self) -> Option<EnvironmentId> {
        match self {
            Self::EnvCreate(p) => Some(p.source_environment_id),
            Self::EnvPromote(p) => Some(p.source_environment_id),
            _ => None,
        }
    }

    /// The domain a domain job works on (known once the job is queued).
    pub const fn domain(&self) -> Option<DomainId> {
        match self {
            Self::DomainAdd(p) => p.domain_id,
            Self::DomainRemove(p) => Some(p.domain_id),
            _ => None,
        }
    }

    /// The backup a backup_create job takes.
    pub const fn backup(&self) -> Option<BackupId> {
        match self {
            Self::BackupCreate(p) => Some(p.backup_id),
            _ => None,
        }
    }
}

/// What a queued job acts on, as stored in its row. A request says which resource it means;
/// the store completes the rest (the environment's site and node) in the queuing transaction,
/// so no job is ever written with a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTarget {
    /// The node itself (provisioning).
    Node(NodeId),
    /// A whole site, run on its production environment's node (site delete, backup cleanup).
    Site { site: SiteId, node: NodeId },
    /// One environment of a site.
    Environment {
        site: SiteId,
        environment: EnvironmentId,
        node: NodeId,
    },
}

impl JobTarget {
    /// From a job row's columns.
    pub const fn from_columns(
        node: NodeId,
        site: Option<SiteId>,
        environment: Option<EnvironmentId>,
    ) -> Self {
        match (site, environment) {
            (Some(site), Some(environment)) => Self::Environment {
                site,
                environment,
                node,
            },
            (Some(site), None) => Self::Site { site, node },
            _ => Self::Node(node),
        }
    }

    pub const fn node(self) -> NodeId {
        match self {
            Self::Node(node) | Self::Site { node, .. } | Self::Environment { node, .. } => node,
        }
    }

    pub const fn site(self) -> Option<SiteId> {
        match self {
            Self::Node(_) => None,
            Self::Site { site, .. } | Self::Environment { site, .. } => Some(site),
        }
    }

    pub const fn environment(self) -> Option<EnvironmentId> {
        match self {
            Self::Environment { environment, .. } => Some(environment),
            _ => None,
        }
    }
}

/// node_provision: the node's status before, restored if the job is cancelled unstarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeProvision {
    pub previous_node_status: NodeStatus,
}

/// site_create: what WordPress is installed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCreate {
    pub wordpress_version: String,
    pub title: String,
    pub admin_email: String,
    pub admin_user: String,
    pub php_version: String,
}

/// site_delete: the environments it removes (filled in when queued); the failed ones go back
/// to failed if the job is cancelled before it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDelete {
    #[serde(default)]
    pub environments: Vec<EnvironmentId>,
    #[serde(default)]
    pub failed_environments: Vec<EnvironmentId>,
}

/// env_create: the environment cloned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvCreate {
    pub source_environment_id: EnvironmentId,
}

/// env_delete: whether the environment was failed (it returns there if cancelled unstarted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvDelete {
    #[serde(default)]
    pub was_failed: bool,
}

/// env_deploy: where the release comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvDeploy {
    pub source: ReleaseSource,
}

/// Where a release's code comes from (validated by the API before it is queued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReleaseSource {
    Wordpress {
        version: String,
    },
    Git {
        url: String,
        #[serde(rename = "ref")]
        git_ref: String,
    },
    Archive {
        url: String,
        /// The expected SHA-256 (null: not checked).
        sha256: Option<String>,
    },
    Upload {
        upload_id: uuid::Uuid,
        sha256: String,
        file_name: String,
    },
}

/// A backup taken inside a job before it changes anything; its row is made when the job is
/// queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreBackup {
    #[serde(rename = "pre_backup")]
    pub trigger: BackupTrigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_backup_id: Option<BackupId>,
}

impl PreBackup {
    pub const fn new(trigger: BackupTrigger) -> Self {
        Self {
            trigger,
            pre_backup_id: None,
        }
    }
}

/// env_update: what is updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvUpdate {
    /// Empty: core stays.
    pub core_version: String,
    pub plugins: Vec<String>,
    pub all_plugins: bool,
    pub themes: Vec<String>,
    pub all_themes: bool,
    #[serde(flatten)]
    pub pre_backup: PreBackup,
}

/// release_rollback: the release switched back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRollback {
    pub release_id: ReleaseId,
    pub release_name: String,
}

/// health_check: `reset` re-validates a failed environment (active again if it passes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(default)]
    pub reset: bool,
}

/// backup_create: the backup row it fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCreate {
    pub backup_id: BackupId,
    pub scope: BackupScope,
    pub trigger: BackupTrigger,
}

/// backup_cleanup: the expired objects it deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCleanup {
    pub backups: Vec<ExpiredBackup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredBackup {
    pub id: BackupId,
    pub object_key: String,
}

/// env_restore: the backup restored and, when it is production's, the URL rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvRestore {
    pub backup_id_restored: BackupId,
    pub object_key: String,
    pub sha256: String,
    pub scope: BackupScope,
    /// Empty: no rewrite.
    pub rewrite_from: String,
    #[serde(flatten)]
    pub pre_backup: PreBackup,
}

/// drift_check: the baseline compared and what the preset leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftCheck {
    pub preset: Preset,
    /// The fingerprint taken at the clone, handed to the node as it was recorded.
    pub baseline: Value,
    /// Comma-separated table names with the prefix.
    pub ignored_tables: String,
}

/// env_promote: the staging environment promoted, gated by a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvPromote {
    pub source_environment_id: EnvironmentId,
    pub preset: Preset,
    pub baseline: Value,
    pub ignored_tables: String,
    #[serde(flatten)]
    pub pre_backup: PreBackup,
}

/// domain_add: the hostname asked for; the domain row and whether it becomes the primary are
/// decided when the job is queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainAdd {
    pub hostname: String,
    pub aliases: Vec<String>,
    pub make_primary: bool,
    pub skip_dns_check: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<DomainId>,
}

/// domain_remove: the domain, and what the playbook must know of it (filled in when queued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRemove {
    pub domain_id: DomainId,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub was_primary: bool,
    #[serde(default)]
    pub has_certificate: bool,
}

impl DomainRemove {
    pub const fn new(domain_id: DomainId) -> Self {
        Self {
            domain_id,
            hostname: String::new(),
            was_primary: false,
            has_certificate: false,
        }
    }
}

/// env_cache_toggle: each cache switched on or off, or left (None, null for the playbook).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvCacheToggle {
    pub page_cache: Option<bool>,
    pub object_cache: Option<bool>,
}

impl Serialize for Preset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Preset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown preset {text:?}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// One value of every job type, with every optional part filled.
    pub fn every_job() -> Vec<JobParams> {
        let env = EnvironmentId::new();
        let pre = PreBackup {
            trigger: BackupTrigger::PreUpdate,
            pre_backup_id: Some(BackupId::new()),
        };
        vec![
            JobParams::NodeProvision(NodeProvision {
                previous_node_status: NodeStatus::Active,
            }),
            JobParams::SiteCreate(SiteCreate {
                wordpress_version: "6.6".into(),
                title: "Shop".into(),
                admin_email: "a@example.com".into(),
                admin_user: "admin".into(),
                php_version: "8.2".into(),
            }),
            JobParams::SiteDelete(SiteDelete {
                environments: vec![env],
                failed_environments: vec![env],
            }),
            JobParams::SiteImport {},
            JobParams::EnvCreate(EnvCreate {
                source_environment_id: env,
            }),
            JobParams::EnvDelete(EnvDelete { was_failed: true }),
            JobParams::EnvDeploy(EnvDeploy {
                source: ReleaseSource::Git {
                    url: "https://git.example.com/x.git".into(),
                    git_ref: "main".into(),
                },
            }),
            JobParams::EnvUpdate(EnvUpdate {
                core_version: "6.7".into(),
                plugins: vec!["akismet".into()],
                all_plugins: false,
                themes: vec![],
                all_themes: true,
                pre_backup: pre.clone(),
            }),
            JobParams::ReleaseRollback(ReleaseRollback {
                release_id: ReleaseId::new(),
                release_name: "0192-abc".into(),
            }),
            JobParams::HealthCheck(HealthCheck { reset: true }),
            JobParams::BackupCreate(BackupCreate {
                backup_id: BackupId::new(),
                scope: BackupScope::Full,
                trigger: BackupTrigger::Manual,
            }),
            JobParams::BackupCleanup(BackupCleanup {
                backups: vec![ExpiredBackup {
                    id: BackupId::new(),
                    object_key: "s/p/1.tar".into(),
                }],
            }),
            JobParams::EnvRestore(EnvRestore {
                backup_id_restored: BackupId::new(),
                object_key: "s/p/1.tar".into(),
                sha256: "ab".repeat(32),
                scope: BackupScope::Db,
                rewrite_from: "https://prod.example.com".into(),
                pre_backup: pre.clone(),
            }),
            JobParams::DriftCheck(DriftCheck {
                preset: Preset::CommerceProtect,
                baseline: json!({"items": []}),
                ignored_tables: "wp_posts".into(),
            }),
            JobParams::EnvPromote(EnvPromote {
                source_environment_id: env,
                preset: Preset::ContentProtect,
                baseline: json!({"items": [1]}),
                ignored_tables: "wp_posts".into(),
                pre_backup: pre,
            }),
            JobParams::DomainAdd(DomainAdd {
                hostname: "shop.example.com".into(),
                aliases: vec!["www.shop.example.com".into()],
                make_primary: true,
                skip_dns_check: false,
                domain_id: Some(DomainId::new()),
            }),
            JobParams::DomainRemove(DomainRemove {
                domain_id: DomainId::new(),
                hostname: "shop.example.com".into(),
                was_primary: true,
                has_certificate: true,
            }),
            JobParams::EnvCacheToggle(EnvCacheToggle {
                page_cache: Some(true),
                object_cache: None,
            }),
            JobParams::CachePurge {},
        ]
    }

    #[test]
    fn every_job_type_has_parameters_that_round_trip_through_the_column() {
        let jobs = every_job();
        let kinds: Vec<JobKind> = jobs.iter().map(JobParams::kind).collect();
        for kind in JobKind::ALL {
            assert!(kinds.contains(kind), "{kind} has no example");
        }
        for params in jobs {
            let stored = params.to_json();
            assert!(stored.is_object(), "{stored}");
            let back = JobParams::from_json(params.kind(), &stored.to_string()).expect("decodes");
            assert_eq!(back, params);
        }
    }

    #[test]
    fn the_stored_shape_is_what_the_playbooks_read() {
        // The keys below are read by playbooks as job.params.*.
        let update = every_job()
            .into_iter()
            .find(|p| p.kind() == JobKind::EnvUpdate)
            .expect("update");
        let json = update.to_json();
        assert_eq!(json["pre_backup"], "pre_update");
        assert!(json["pre_backup_id"].is_string());
        assert_eq!(json["core_version"], "6.7");
        let toggle = JobParams::EnvCacheToggle(EnvCacheToggle::default()).to_json();
        assert_eq!(toggle, json!({"page_cache": null, "object_cache": null}));
        let deploy = JobParams::EnvDeploy(EnvDeploy {
            source: ReleaseSource::Wordpress {
                version: "latest".into(),
            },
        });
        assert_eq!(
            deploy.to_json(),
            json!({"source": {"kind": "wordpress", "version": "latest"}})
        );
        assert_eq!(JobParams::CachePurge {}.to_json(), json!({}));
    }

    #[test]
    fn parameters_of_another_type_or_shape_are_refused() {
        let deploy = r#"{"source": {"kind": "ftp", "url": "x"}}"#;
        assert!(JobParams::from_json(JobKind::EnvDeploy, deploy).is_err());
        assert!(JobParams::from_json(JobKind::EnvCreate, "{}").is_err());
        assert!(JobParams::from_json(JobKind::EnvCreate, "not json").is_err());
        let restore = r#"{"backup_id": "nope"}"#;
        assert!(JobParams::from_json(JobKind::BackupCreate, restore).is_err());
        // Optional parts may be absent in rows queued before they were filled in.
        assert_eq!(
            JobParams::from_json(JobKind::EnvDelete, "{}").expect("decodes"),
            JobParams::EnvDelete(EnvDelete { was_failed: false })
        );
    }

    /// The first key after each `job.params.` in `text`.
    fn keys_read(text: &str) -> Vec<String> {
        text.match_indices("job.params.")
            .map(|(at, m)| {
                text[at + m.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_playbook_reads_only_parameters_its_job_type_has() {
        let playbooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        for params in every_job() {
            let kind = params.kind();
            let path = playbooks.join(format!("{kind}.yml"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                // Import is queued by no API call yet (ImportSite answers UNIMPLEMENTED).
                assert_eq!(kind, JobKind::SiteImport, "{} is missing", path.display());
                continue;
            };
            let stored = params.to_json();
            for key in keys_read(&text) {
                assert!(
                    stored.get(&key).is_some(),
                    "{kind}.yml reads job.params.{key}, which {kind} parameters do not have"
                );
            }
        }
        // Roles take their inputs as role variables, never from a job's parameters.
        let mut dirs = vec![playbooks.join("roles")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("roles") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    assert!(
                        keys_read(&text).is_empty(),
                        "{} reads job.params",
                        path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn a_target_reads_back_from_its_columns() {
        let (node, site, env) = (NodeId::new(), SiteId::new(), EnvironmentId::new());
        for target in [
            JobTarget::Node(node),
            JobTarget::Site { site, node },
            JobTarget::Environment {
                site,
                environment: env,
                node,
            },
        ] {
            assert_eq!(
                JobTarget::from_columns(target.node(), target.site(), target.environment()),
                target
            );
        }
    }
}
