//! Short, stable names for proto enums and timestamps, as clients show them.
//!
//! Enum values become their proto name without the type prefix, lowercased:
//! `NODE_STATUS_ACTIVE` is "active", `JOB_TYPE_NODE_PROVISION` is "`node_provision`" (the
//! playbook's name). A value this build does not know (a newer server) is "unknown(N)".

use pressluft_proto::v1::{
    BackupScope, BackupStatus, BackupTrigger, DriftStatus, EnvironmentKind, EnvironmentStatus,
    JobStatus, JobStepStatus, JobType, NodeStatus, ReleaseHealth, SiteStatus, TlsStatus,
};
use prost_types::Timestamp;

fn short(value: i32, name: Option<&'static str>, prefix: &str) -> String {
    match name {
        Some(name) => name
            .strip_prefix(prefix)
            .unwrap_or(name)
            .to_ascii_lowercase(),
        None => format!("unknown({value})"),
    }
}

/// "pending", "provisioning", "active", "unreachable", "failed", "decommissioned".
pub fn node_status(value: i32) -> String {
    let name = NodeStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "NODE_STATUS_")
}

/// "creating", "active", "failed", "deleting", "deleted".
pub fn site_status(value: i32) -> String {
    let name = SiteStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "SITE_STATUS_")
}

/// "creating", "cloning", "active", "deploying", ...
pub fn environment_status(value: i32) -> String {
    let name = EnvironmentStatus::try_from(value)
        .ok()
        .map(|v| v.as_str_name());
    short(value, name, "ENVIRONMENT_STATUS_")
}

/// "production", "staging", "clone".
pub fn environment_kind(value: i32) -> String {
    let name = EnvironmentKind::try_from(value)
        .ok()
        .map(|v| v.as_str_name());
    short(value, name, "ENVIRONMENT_KIND_")
}

/// "unknown", "clean", "drifted".
pub fn drift_status(value: i32) -> String {
    let name = DriftStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "DRIFT_STATUS_")
}

/// "unknown", "healthy", "unhealthy".
pub fn release_health(value: i32) -> String {
    let name = ReleaseHealth::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "RELEASE_HEALTH_")
}

/// "pending", "running", "completed", "failed", "expired".
pub fn backup_status(value: i32) -> String {
    let name = BackupStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "BACKUP_STATUS_")
}

/// "db", "files", "full".
pub fn backup_scope(value: i32) -> String {
    let name = BackupScope::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "BACKUP_SCOPE_")
}

/// "manual", "scheduled", "pre_restore", ...
pub fn backup_trigger(value: i32) -> String {
    let name = BackupTrigger::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "BACKUP_TRIGGER_")
}

/// "pending", "active", "failed", "disabled".
pub fn tls_status(value: i32) -> String {
    let name = TlsStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "TLS_STATUS_")
}

/// "queued", "running", "succeeded", "failed", "cancelled".
pub fn job_status(value: i32) -> String {
    let name = JobStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "JOB_STATUS_")
}

/// "started", "ok", "changed", "failed", "skipped".
pub fn job_step_status(value: i32) -> String {
    let name = JobStepStatus::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "JOB_STEP_STATUS_")
}

/// The job type as its playbook name: "`node_provision`", "`site_create`", ...
pub fn job_type(value: i32) -> String {
    let name = JobType::try_from(value).ok().map(|v| v.as_str_name());
    short(value, name, "JOB_TYPE_")
}

/// RFC 3339 in UTC, e.g. "2026-11-25T17:29:03.500Z"; `None` when unset.
pub fn rfc3339(time: Option<&Timestamp>) -> Option<String> {
    time.map(ToString::to_string)
}

/// RFC 3339 to the second, for tables: "2026-11-25T17:29:03Z"; "-" when unset.
pub fn short_time(time: Option<&Timestamp>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |time| {
            let mut time = *time;
            time.nanos = 0;
            time.to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_are_short_and_lowercase() {
        assert_eq!(node_status(NodeStatus::Active as i32), "active");
        assert_eq!(
            node_status(NodeStatus::Decommissioned as i32),
            "decommissioned"
        );
        assert_eq!(site_status(SiteStatus::Creating as i32), "creating");
        assert_eq!(
            environment_status(EnvironmentStatus::Deploying as i32),
            "deploying"
        );
        assert_eq!(environment_kind(EnvironmentKind::Staging as i32), "staging");
        assert_eq!(drift_status(DriftStatus::Drifted as i32), "drifted");
        assert_eq!(job_status(JobStatus::Cancelled as i32), "cancelled");
        assert_eq!(job_type(JobType::NodeProvision as i32), "node_provision");
        assert_eq!(job_step_status(JobStepStatus::Changed as i32), "changed");
        assert_eq!(job_status(0), "unspecified");
        assert_eq!(job_status(99), "unknown(99)");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let time = Timestamp {
            seconds: 1_764_091_743,
            nanos: 500_000_000,
        };
        assert_eq!(
            rfc3339(Some(&time)).as_deref(),
            Some("2025-11-25T17:29:03.500Z")
        );
        assert_eq!(short_time(Some(&time)), "2025-11-25T17:29:03Z");
        assert_eq!(rfc3339(None), None);
        assert_eq!(short_time(None), "-");
    }
}
