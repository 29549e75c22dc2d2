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

/// A proto enum of the contract: its values' names (`NODE_STATUS_ACTIVE`).
pub trait ProtoEnum: TryFrom<i32> {
    /// The value's name in the proto file.
    fn proto_name(&self) -> &'static str;
}

macro_rules! proto_enums {
    ($($name:ident),* $(,)?) => {$(
        impl ProtoEnum for $name {
            fn proto_name(&self) -> &'static str {
                self.as_str_name()
            }
        }
    )*};
}

proto_enums!(
    BackupScope,
    BackupStatus,
    BackupTrigger,
    DriftStatus,
    EnvironmentKind,
    EnvironmentStatus,
    JobStatus,
    JobStepStatus,
    JobType,
    NodeStatus,
    ReleaseHealth,
    SiteStatus,
    TlsStatus,
);

/// The short label of `value` of enum `E`: its name without the enum's prefix (the zero
/// value's name up to `UNSPECIFIED`), lowercased: "active", "node_provision", "unspecified".
pub fn label<E: ProtoEnum>(value: i32) -> String {
    let Ok(known) = E::try_from(value) else {
        return format!("unknown({value})");
    };
    let name = known.proto_name();
    let prefix = E::try_from(0)
        .map(|zero| zero.proto_name().trim_end_matches("UNSPECIFIED"))
        .unwrap_or_default();
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
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
        assert_eq!(label::<NodeStatus>(NodeStatus::Active as i32), "active");
        assert_eq!(
            label::<NodeStatus>(NodeStatus::Decommissioned as i32),
            "decommissioned"
        );
        assert_eq!(label::<SiteStatus>(SiteStatus::Creating as i32), "creating");
        assert_eq!(
            label::<EnvironmentStatus>(EnvironmentStatus::Deploying as i32),
            "deploying"
        );
        assert_eq!(
            label::<EnvironmentKind>(EnvironmentKind::Staging as i32),
            "staging"
        );
        assert_eq!(label::<DriftStatus>(DriftStatus::Drifted as i32), "drifted");
        assert_eq!(label::<JobStatus>(JobStatus::Cancelled as i32), "cancelled");
        assert_eq!(
            label::<JobType>(JobType::NodeProvision as i32),
            "node_provision"
        );
        assert_eq!(
            label::<JobStepStatus>(JobStepStatus::Changed as i32),
            "changed"
        );
        assert_eq!(label::<JobStatus>(0), "unspecified");
        assert_eq!(label::<JobStatus>(99), "unknown(99)");
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
