//! Conversions between store records / model enums and protobuf messages. Secrets are never
//! part of a record read here, so nothing secret can be converted into a response.

use pressluft_proto::v1 as pb;
use prost_types::{Duration as PbDuration, Timestamp};

use crate::model::{
    self, AuditResult, BackupScope, BackupStatus, BackupTrigger, DriftStatus, EnvironmentId,
    EnvironmentKind, EnvironmentStatus, JobEventKind, JobKind, JobStatus, NodeStatus,
    ReleaseHealth, ReleaseId, ReleaseSourceKind, SiteStatus, TlsStatus,
};
use crate::store::{
    AuditRecord, BackupRecord, DomainRecord, DriftReportRecord, EnvironmentRecord, JobEventRecord,
    JobRecord, NodeRecord, ReleaseRecord, SettingsRecord, SiteRecord, TokenRecord, UserRecord,
};

/// Unix milliseconds to a protobuf timestamp.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Optional unix milliseconds to an optional timestamp.
pub fn opt_ts(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(ts)
}

/// Seconds to a protobuf duration.
pub fn duration(secs: i64) -> PbDuration {
    PbDuration {
        seconds: secs,
        nanos: 0,
    }
}

fn id_or_empty(id: Option<impl ToString>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

macro_rules! enum_map {
    ($fn_to:ident, $fn_from:ident, $model:ty, $pb:ty { $($m:ident => $p:ident),* $(,)? }) => {
        /// Model enum to protobuf enum.
        pub fn $fn_to(v: $model) -> $pb {
            match v { $(<$model>::$m => <$pb>::$p),* }
        }
        /// Protobuf enum to model enum; `None` for UNSPECIFIED.
        pub fn $fn_from(v: $pb) -> Option<$model> {
            match v {
                $(<$pb>::$p => Some(<$model>::$m),)*
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    };
}

enum_map!(node_status, node_status_from, NodeStatus, pb::NodeStatus {
    Pending => Pending, Provisioning => Provisioning, Active => Active,
    Unreachable => Unreachable, Failed => Failed, Decommissioned => Decommissioned,
});
enum_map!(site_status, site_status_from, SiteStatus, pb::SiteStatus {
    Creating => Creating, Active => Active, Failed => Failed, Deleting => Deleting, Deleted => Deleted,
});
enum_map!(env_kind, env_kind_from, EnvironmentKind, pb::EnvironmentKind {
    Production => Production, Staging => Staging, Clone => Clone,
});
enum_map!(env_status, env_status_from, EnvironmentStatus, pb::EnvironmentStatus {
    Creating => Creating, Cloning => Cloning, Active => Active, Deploying => Deploying,
    Restoring => Restoring, Updating => Updating, Promoting => Promoting, Deleting => Deleting,
    Deleted => Deleted, Failed => Failed,
});
enum_map!(drift_status, drift_status_from, DriftStatus, pb::DriftStatus {
    Unknown => Unknown, Clean => Clean, Drifted => Drifted,
});
enum_map!(release_health, release_health_from, ReleaseHealth, pb::ReleaseHealth {
    Unknown => Unknown, Healthy => Healthy, Unhealthy => Unhealthy,
});
enum_map!(backup_scope, backup_scope_from, BackupScope, pb::BackupScope {
    Db => Db, Files => Files, Full => Full,
});
enum_map!(backup_status, backup_status_from, BackupStatus, pb::BackupStatus {
    Pending => Pending, Running => Running, Completed => Completed, Failed => Failed, Expired => Expired,
});
enum_map!(backup_trigger, backup_trigger_from, BackupTrigger, pb::BackupTrigger {
    Manual => Manual, Scheduled => Scheduled, PreRestore => PreRestore,
    PrePromote => PrePromote, PreUpdate => PreUpdate,
});
enum_map!(tls_status, tls_status_from, TlsStatus, pb::TlsStatus {
    Pending => Pending, Active => Active, Failed => Failed, Disabled => Disabled,
});
enum_map!(job_status, job_status_from, JobStatus, pb::JobStatus {
    Queued => Queued, Running => Running, Succeeded => Succeeded, Failed => Failed, Cancelled => Cancelled,
});
enum_map!(audit_result, audit_result_from, AuditResult, pb::AuditResult {
    Accepted => Accepted, Succeeded => Succeeded, Failed => Failed, Denied => Denied,
});
enum_map!(job_kind, job_kind_from, JobKind, pb::JobType {
    NodeProvision => NodeProvision, SiteCreate => SiteCreate, SiteDelete => SiteDelete,
    EnvCreate => EnvCreate, EnvDelete => EnvDelete, EnvDeploy => EnvDeploy, EnvUpdate => EnvUpdate,
    ReleaseRollback => ReleaseRollback, HealthCheck => HealthCheck, BackupCreate => BackupCreate,
    BackupCleanup => BackupCleanup, EnvRestore => EnvRestore, DriftCheck => DriftCheck,
    EnvPromote => EnvPromote, DomainAdd => DomainAdd, DomainRemove => DomainRemove,
    EnvCacheToggle => EnvCacheToggle, CachePurge => CachePurge, SiteImport => SiteImport,
});

/// Decodes a repeated enum field of i32s; unknown or UNSPECIFIED values are an error.
pub fn enum_list<P: TryFrom<i32>, M>(
    field: &'static str,
    values: &[i32],
    from: impl Fn(P) -> Option<M>,
) -> Result<Vec<M>, model::validate::Invalid> {
    values
        .iter()
        .map(|v| {
            P::try_from(*v)
                .ok()
                .and_then(&from)
                .ok_or(model::validate::Invalid {
                    field,
                    message: format!("{v} is not a valid value"),
                })
        })
        .collect()
}

pub fn user(u: &UserRecord) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        has_password: u.password_hash.is_some(),
        create_time: Some(ts(u.created_at)),
    }
}

pub fn api_token(t: &TokenRecord) -> pb::ApiToken {
    pb::ApiToken {
        id: t.id.to_string(),
        name: t.name.clone(),
        create_time: Some(ts(t.created_at)),
        expire_time: opt_ts(t.expires_at),
        last_use_time: opt_ts(t.last_used_at),
        revoke_time: opt_ts(t.revoked_at),
    }
}

pub fn node(n: &NodeRecord) -> pb::Node {
    pb::Node {
        id: n.id.to_string(),
        name: n.name.clone(),
        hostname: n.hostname.clone(),
        ssh_port: n.ssh_port as u32,
        ssh_user: n.ssh_user.clone(),
        public_ip: n.public_ip.clone(),
        is_local: n.is_local,
        host_key: n.host_key.clone(),
        host_key_fingerprint: crate::ssh::fingerprint(&n.host_key).unwrap_or_default(),
        status: node_status(n.status).into(),
        status_message: n.status_message.clone(),
        php_versions: n.php_versions(),
        last_seen_time: opt_ts(n.last_seen_at),
        create_time: Some(ts(n.created_at)),
        update_time: Some(ts(n.updated_at)),
        version: n.state_version,
    }
}

pub fn site(s: &SiteRecord, envs: &[EnvironmentRecord]) -> pb::Site {
    pb::Site {
        id: s.id.to_string(),
        name: s.name.clone(),
        slug: s.slug.clone(),
        status: site_status(s.status).into(),
        production_environment_id: id_or_empty(s.production_environment_id),
        environments: envs
            .iter()
            .filter(|e| e.site_id == s.id)
            .map(environment)
            .collect(),
        create_time: Some(ts(s.created_at)),
        update_time: Some(ts(s.updated_at)),
        version: s.state_version,
    }
}

pub fn environment(e: &EnvironmentRecord) -> pb::Environment {
    pb::Environment {
        id: e.id.to_string(),
        site_id: e.site_id.to_string(),
        name: e.name.clone(),
        kind: env_kind(e.kind).into(),
        status: env_status(e.status).into(),
        status_message: e.status_message.clone(),
        node_id: e.node_id.to_string(),
        linux_user: e.linux_user.clone(),
        linux_uid: e.linux_uid as u32,
        db_name: e.db_name.clone(),
        php_version: e.php_version.clone(),
        preview_url: e.preview_url.clone(),
        primary_domain: e.primary_domain.clone(),
        url: e.url(),
        current_release_id: id_or_empty(e.current_release_id),
        source_environment_id: id_or_empty(e.source_environment_id),
        drift_status: drift_status(e.drift_status).into(),
        drift_check_time: opt_ts(e.drift_checked_at),
        cache: Some(pb::CacheSettings {
            page_cache: e.page_cache,
            object_cache: e.object_cache,
        }),
        backup_schedule: Some(pb::BackupSchedule {
            enabled: e.backup_enabled,
            interval: Some(duration(e.backup_interval_secs)),
            scope: backup_scope(e.backup_scope).into(),
            retention: Some(duration(e.backup_retention_secs)),
        }),
        last_backup_time: opt_ts(e.last_backup_at),
        root_path: e.root_path(),
        create_time: Some(ts(e.created_at)),
        update_time: Some(ts(e.updated_at)),
        version: e.state_version,
    }
}

pub fn job(j: &JobRecord) -> pb::Job {
    pb::Job {
        id: j.id.to_string(),
        r#type: job_kind(j.kind).into(),
        status: job_status(j.status).into(),
        site_id: id_or_empty(j.site_id),
        environment_id: id_or_empty(j.environment_id),
        node_id: j.node_id.to_string(),
        summary: j.summary.clone(),
        attempt: j.attempts as i32,
        max_attempts: j.max_attempts as i32,
        run_after: Some(ts(j.run_after)),
        create_time: Some(ts(j.created_at)),
        start_time: opt_ts(j.started_at),
        finish_time: opt_ts(j.finished_at),
        progress: Some(pb::JobProgress {
            current_step: j.progress_current as i32,
            total_steps: j.progress_total as i32,
            step_name: j.progress_step.clone(),
        }),
        error_code: j.error_code.clone(),
        error_message: j.error_message.clone(),
        requested_by: j.requested_by.clone(),
        cancel_requested: j.cancel_requested,
        version: j.state_version,
    }
}

/// A recorded job event; the payload JSON was written by the store or the executor.
pub fn job_event(e: &JobEventRecord) -> pb::JobEvent {
    let p: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
    let text = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
    let int = |k: &str| p[k].as_i64().unwrap_or_default() as i32;
    let event = match e.kind {
        JobEventKind::State => pb::job_event::Event::StateChange(pb::JobStateChange {
            status: text("status")
                .parse::<JobStatus>()
                .map_or(pb::JobStatus::Unspecified, job_status)
                .into(),
            attempt: int("attempt"),
            error_code: text("error_code"),
            message: text("message"),
        }),
        JobEventKind::Step => pb::job_event::Event::Step(pb::JobStep {
            index: int("index"),
            total: int("total"),
            name: text("name"),
            status: step_status(&text("status")).into(),
        }),
        JobEventKind::Log => pb::job_event::Event::LogLine(pb::JobLogLine { text: text("text") }),
    };
    pb::JobEvent {
        sequence: e.seq,
        time: Some(ts(e.created_at)),
        event: Some(event),
    }
}

fn step_status(s: &str) -> pb::JobStepStatus {
    match s {
        "started" => pb::JobStepStatus::Started,
        "ok" => pb::JobStepStatus::Ok,
        "changed" => pb::JobStepStatus::Changed,
        "failed" => pb::JobStepStatus::Failed,
        "skipped" => pb::JobStepStatus::Skipped,
        _ => pb::JobStepStatus::Unspecified,
    }
}

pub fn release(r: &ReleaseRecord, current: Option<ReleaseId>) -> pb::Release {
    let s: serde_json::Value = serde_json::from_str(&r.source).unwrap_or_default();
    let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
    let source = match r.source_kind {
        ReleaseSourceKind::WordPress => {
            pb::release_source::Source::Wordpress(pb::WordPressSource {
                version: text("version"),
            })
        }
        ReleaseSourceKind::Git => pb::release_source::Source::Git(pb::GitSource {
            url: text("url"),
            r#ref: text("ref"),
        }),
        ReleaseSourceKind::Archive => pb::release_source::Source::Archive(pb::ArchiveSource {
            url: text("url"),
            sha256: text("sha256"),
        }),
        ReleaseSourceKind::Upload => pb::release_source::Source::Upload(pb::UploadSource {
            upload_id: text("upload_id"),
        }),
    };
    pb::Release {
        id: r.id.to_string(),
        environment_id: r.environment_id.to_string(),
        source: Some(pb::ReleaseSource {
            source: Some(source),
        }),
        resolved_ref: r.resolved_ref.clone(),
        updates: s["updates"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|u| pb::SoftwareUpdate {
                        kind: u["kind"].as_str().unwrap_or_default().to_owned(),
                        slug: u["slug"].as_str().unwrap_or_default().to_owned(),
                        from_version: u["from"].as_str().unwrap_or_default().to_owned(),
                        to_version: u["to"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        path: r.name.clone(),
        health: release_health(r.health).into(),
        is_current: current == Some(r.id),
        job_id: id_or_empty(r.job_id),
        create_time: Some(ts(r.created_at)),
        activate_time: opt_ts(r.activated_at),
    }
}

pub fn backup(b: &BackupRecord) -> pb::Backup {
    pb::Backup {
        id: b.id.to_string(),
        environment_id: b.environment_id.to_string(),
        site_id: b.site_id.to_string(),
        scope: backup_scope(b.scope).into(),
        status: backup_status(b.status).into(),
        trigger: backup_trigger(b.trigger_kind).into(),
        object_key: b.object_key.clone(),
        size_bytes: b.size_bytes,
        sha256: b.sha256.clone(),
        job_id: id_or_empty(b.job_id),
        create_time: Some(ts(b.created_at)),
        complete_time: opt_ts(b.completed_at),
        expire_time: opt_ts(b.expires_at),
    }
}

pub fn domain(d: &DomainRecord) -> pb::Domain {
    pb::Domain {
        id: d.id.to_string(),
        environment_id: d.environment_id.to_string(),
        hostname: d.hostname.clone(),
        is_primary: d.is_primary,
        tls_status: tls_status(d.tls_status).into(),
        tls_expire_time: opt_ts(d.tls_expires_at),
        tls_message: d.tls_message.clone(),
        create_time: Some(ts(d.created_at)),
        aliases: d.alias_list(),
        tls_check_time: opt_ts(d.tls_checked_at),
        tls_expires_soon: crate::domains::expires_soon(d.tls_expires_at, crate::model::now_ms()),
    }
}

pub fn drift_report(env: EnvironmentId, r: Option<&DriftReportRecord>) -> pb::DriftReport {
    let Some(r) = r else {
        return pb::DriftReport {
            environment_id: env.to_string(),
            status: pb::DriftStatus::Unknown.into(),
            ..pb::DriftReport::default()
        };
    };
    let items: Vec<serde_json::Value> = serde_json::from_str(&r.items).unwrap_or_default();
    pb::DriftReport {
        environment_id: r.environment_id.to_string(),
        status: drift_status(r.status).into(),
        check_time: Some(ts(r.checked_at)),
        items: items
            .iter()
            .map(|i| pb::DriftItem {
                category: i["category"].as_str().unwrap_or_default().to_owned(),
                name: i["name"].as_str().unwrap_or_default().to_owned(),
                detail: i["detail"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        job_id: id_or_empty(r.job_id),
    }
}

pub fn audit_event(a: &AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        id: a.id,
        time: Some(ts(a.at)),
        actor: a.actor.clone(),
        action: a.action.clone(),
        resource_type: a.resource_type.clone(),
        resource_id: a.resource_id.clone(),
        result: audit_result(a.result).into(),
        detail: a.detail.clone(),
        job_id: id_or_empty(a.job_id),
    }
}

pub fn settings(s: &SettingsRecord) -> pb::Settings {
    pb::Settings {
        preview_domain: s.preview_domain.clone(),
        default_node_id: id_or_empty(s.default_node_id),
        default_php_version: s.default_php_version.clone(),
        releases_to_keep: s.releases_to_keep as i32,
        backup_target: (!s.s3_endpoint.is_empty()).then(|| pb::BackupTarget {
            endpoint: s.s3_endpoint.clone(),
            bucket: s.s3_bucket.clone(),
            region: s.s3_region.clone(),
            path_prefix: s.s3_prefix.clone(),
            access_key_id: s.s3_access_key_id.clone(),
            verify_time: opt_ts(s.s3_verified_at),
        }),
        version: s.state_version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_enum_maps_both_ways() {
        for &k in JobKind::ALL {
            assert_eq!(job_kind_from(job_kind(k)), Some(k));
        }
        for &s in EnvironmentStatus::ALL {
            assert_eq!(env_status_from(env_status(s)), Some(s));
        }
        for &s in NodeStatus::ALL {
            assert_eq!(node_status_from(node_status(s)), Some(s));
        }
        for &s in JobStatus::ALL {
            assert_eq!(job_status_from(job_status(s)), Some(s));
        }
        assert_eq!(job_kind_from(pb::JobType::Unspecified), None);
    }

    #[test]
    fn timestamps() {
        let t = ts(1_500);
        assert_eq!((t.seconds, t.nanos), (1, 500_000_000));
    }
}
