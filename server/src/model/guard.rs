//! Business rules that decide whether a request may start work, as pure functions of the
//! state they look at. The store calls them inside the transaction that reads that state and
//! makes the change, so the decision and the change are atomic; the rules themselves live
//! here, where every case is a row of a table test.

use pressluft_proto::v1::ErrorReason;

use super::{
    EnvOperation, EnvironmentKind, EnvironmentStatus, JobKind, NodeStatus, SiteStatus,
    validate::Invalid,
};

/// A request a rule refused: why, for clients, and what to tell the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: ErrorReason,
    pub message: String,
}

fn refuse<T>(reason: ErrorReason, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        reason,
        message: message.into(),
    })
}

/// Whether a job of `kind` may start on an environment of `env_kind` in `status` (`reset`: a
/// health check that re-validates a failed environment), and the operation it enters.
pub fn environment_job(
    env_kind: EnvironmentKind,
    status: EnvironmentStatus,
    kind: JobKind,
    reset: bool,
) -> Result<Option<EnvOperation>, Refusal> {
    use EnvironmentStatus::{Active, Failed};
    match kind.environment_operation() {
        Some(EnvOperation::Delete) if env_kind == EnvironmentKind::Production => refuse(
            ErrorReason::ProductionEnvironment,
            "the production environment is deleted with its site (DeleteSite)",
        ),
        Some(EnvOperation::Delete) if matches!(status, Active | Failed) => {
            Ok(Some(EnvOperation::Delete))
        }
        Some(EnvOperation::Delete) => refuse(
            ErrorReason::EnvironmentNotActive,
            format!("the environment is {status}"),
        ),
        None if kind == JobKind::HealthCheck && reset => {
            if status == Failed {
                Ok(None)
            } else {
                refuse(
                    ErrorReason::EnvironmentNotFailed,
                    format!("only a failed environment can be reset; this one is {status}"),
                )
            }
        }
        op if status == Active => Ok(op),
        _ => refuse(
            ErrorReason::EnvironmentNotActive,
            format!("the environment is {status}; it must be active"),
        ),
    }
}

/// Whether an environment can be added to a site in `site` status, cloned from a source
/// environment (`Some(status)`, already checked to be of the same site).
pub fn new_environment(site: SiteStatus, source: Option<EnvironmentStatus>) -> Result<(), Refusal> {
    if site != SiteStatus::Active {
        return refuse(
            ErrorReason::SiteNotActive,
            format!("the site is {site}; environments can be added to active sites only"),
        );
    }
    match source {
        Some(status) if status != EnvironmentStatus::Active => refuse(
            ErrorReason::EnvironmentNotActive,
            format!("the source environment is {status}"),
        ),
        _ => Ok(()),
    }
}

/// Whether a site in `status` may be deleted.
pub fn site_delete(status: SiteStatus) -> Result<(), Refusal> {
    if matches!(status, SiteStatus::Deleting | SiteStatus::Deleted) {
        return refuse(
            ErrorReason::SiteNotActive,
            format!("the site is already {status}"),
        );
    }
    Ok(())
}

/// Whether a node in `status` may be provisioned.
pub fn provision(status: NodeStatus) -> Result<(), Refusal> {
    match status {
        NodeStatus::Provisioning => refuse(
            ErrorReason::NodeBusy,
            "the node is already being provisioned",
        ),
        NodeStatus::Decommissioned => {
            refuse(ErrorReason::NodeNotReady, "the node is decommissioned")
        }
        _ => Ok(()),
    }
}

/// Whether a node named `name` in `status` takes a new environment.
pub fn node_takes_environments(name: &str, status: NodeStatus) -> Result<(), Refusal> {
    if status.accepts_work() {
        return Ok(());
    }
    refuse(
        ErrorReason::NodeNotReady,
        format!("node {name} is {status}; it accepts no new environments"),
    )
}

/// Whether an environment in `status` may change its backup schedule.
pub fn backup_schedule_change(status: EnvironmentStatus) -> Result<(), Refusal> {
    if matches!(
        status,
        EnvironmentStatus::Deleting | EnvironmentStatus::Deleted
    ) {
        return refuse(
            ErrorReason::EnvironmentNotActive,
            format!("the environment is {status}"),
        );
    }
    Ok(())
}

/// The bounds of a backup schedule: an interval from `min_interval` seconds to 31 days and a
/// retention from `min_retention` seconds to 10 years.
pub fn backup_schedule_bounds(
    interval: i64,
    retention: i64,
    min_interval: i64,
    min_retention: i64,
) -> Result<(), Invalid> {
    if !(min_interval..=31 * 86_400).contains(&interval) {
        return Err(Invalid {
            field: "schedule.interval",
            message: format!("must be between {min_interval} seconds and 31 days"),
        });
    }
    if !(min_retention..=3_650 * 86_400).contains(&retention) {
        return Err(Invalid {
            field: "schedule.retention",
            message: format!("must be between {min_retention} seconds and 10 years"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_jobs_start_only_from_the_states_their_rule_allows() {
        use EnvironmentKind::{Production as P, Staging as S};
        use EnvironmentStatus::{Active, Deploying, Failed};
        use ErrorReason as R;
        let ok = |op| Ok::<_, ErrorReason>(op);
        let table = [
            // (env kind, status, job, reset) -> operation entered, or the refusal's reason
            (
                S,
                Active,
                JobKind::EnvDelete,
                false,
                ok(Some(EnvOperation::Delete)),
            ),
            (
                S,
                Failed,
                JobKind::EnvDelete,
                false,
                ok(Some(EnvOperation::Delete)),
            ),
            (
                S,
                Deploying,
                JobKind::EnvDelete,
                false,
                Err(R::EnvironmentNotActive),
            ),
            (
                P,
                Active,
                JobKind::EnvDelete,
                false,
                Err(R::ProductionEnvironment),
            ),
            (
                P,
                Active,
                JobKind::EnvDeploy,
                false,
                ok(Some(EnvOperation::Deploy)),
            ),
            (
                P,
                Failed,
                JobKind::EnvDeploy,
                false,
                Err(R::EnvironmentNotActive),
            ),
            (
                P,
                Active,
                JobKind::EnvRestore,
                false,
                ok(Some(EnvOperation::Restore)),
            ),
            (
                P,
                Active,
                JobKind::DomainAdd,
                false,
                ok(Some(EnvOperation::Update)),
            ),
            (P, Active, JobKind::BackupCreate, false, ok(None)),
            (
                P,
                Deploying,
                JobKind::CachePurge,
                false,
                Err(R::EnvironmentNotActive),
            ),
            (P, Failed, JobKind::HealthCheck, true, ok(None)),
            (
                P,
                Active,
                JobKind::HealthCheck,
                true,
                Err(R::EnvironmentNotFailed),
            ),
            (P, Active, JobKind::HealthCheck, false, ok(None)),
            (
                P,
                Failed,
                JobKind::HealthCheck,
                false,
                Err(R::EnvironmentNotActive),
            ),
        ];
        for (env_kind, status, kind, reset, expected) in table {
            let got = environment_job(env_kind, status, kind, reset).map_err(|r| r.reason);
            assert_eq!(got, expected, "{env_kind} {status} {kind} reset={reset}");
        }
    }

    #[test]
    fn sites_nodes_and_schedules_follow_their_rules() {
        use EnvironmentStatus as E;
        let reason = |r: Result<(), Refusal>| r.err().map(|r| r.reason);
        assert_eq!(reason(new_environment(SiteStatus::Active, None)), None);
        assert_eq!(
            reason(new_environment(SiteStatus::Active, Some(E::Active))),
            None
        );
        assert_eq!(
            reason(new_environment(SiteStatus::Active, Some(E::Cloning))),
            Some(ErrorReason::EnvironmentNotActive)
        );
        assert_eq!(
            reason(new_environment(SiteStatus::Failed, None)),
            Some(ErrorReason::SiteNotActive)
        );
        assert_eq!(reason(site_delete(SiteStatus::Failed)), None);
        assert_eq!(
            reason(site_delete(SiteStatus::Deleting)),
            Some(ErrorReason::SiteNotActive)
        );
        assert_eq!(reason(provision(NodeStatus::Failed)), None);
        assert_eq!(
            reason(provision(NodeStatus::Provisioning)),
            Some(ErrorReason::NodeBusy)
        );
        assert_eq!(
            reason(provision(NodeStatus::Decommissioned)),
            Some(ErrorReason::NodeNotReady)
        );
        assert_eq!(
            reason(node_takes_environments("n", NodeStatus::Active)),
            None
        );
        assert_eq!(
            reason(node_takes_environments("n", NodeStatus::Decommissioned)),
            Some(ErrorReason::NodeNotReady)
        );
        assert_eq!(reason(backup_schedule_change(E::Failed)), None);
        assert_eq!(
            reason(backup_schedule_change(E::Deleted)),
            Some(ErrorReason::EnvironmentNotActive)
        );
        let field = |r: Result<(), Invalid>| r.err().map(|i| i.field);
        assert_eq!(field(backup_schedule_bounds(3600, 86_400, 60, 3600)), None);
        assert_eq!(
            field(backup_schedule_bounds(59, 86_400, 60, 3600)),
            Some("schedule.interval")
        );
        assert_eq!(
            field(backup_schedule_bounds(32 * 86_400, 86_400, 60, 3600)),
            Some("schedule.interval")
        );
        assert_eq!(
            field(backup_schedule_bounds(3600, 3599, 60, 3600)),
            Some("schedule.retention")
        );
        assert_eq!(
            field(backup_schedule_bounds(3600, 3_651 * 86_400, 60, 3600)),
            Some("schedule.retention")
        );
    }
}
