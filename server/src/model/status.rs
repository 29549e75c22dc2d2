//! State enums and their transitions.
//!
//! Each enum's `as_str` is exactly the value the migration's CHECK constraint allows; the unit
//! tests round-trip every variant. Transitions are pure functions so the rules can be tested
//! exhaustively, independent of the database.

// Transition tables read best with one rule per arm, even when two rules share a target.
#![allow(clippy::match_same_arms)]

use std::fmt;
use std::str::FromStr;

/// Error for a string that names no variant of a state enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

/// A state change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} cannot go from {from} on {event}")]
pub struct IllegalTransition {
    pub kind: &'static str,
    pub from: &'static str,
    pub event: String,
}

macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident ($kind:literal) { $($(#[$vdoc:meta])* $variant:ident => $s:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The database (and CHECK constraint) spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Self::$variant),)*
                    _ => Err(UnknownVariant { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        // Job parameters carry these in JSON with the database spelling.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

str_enum!(
    /// Lifecycle of a node.
    NodeStatus("node status") {
        Pending => "pending",
        Provisioning => "provisioning",
        Active => "active",
        Unreachable => "unreachable",
        Failed => "failed",
        Decommissioned => "decommissioned",
    }
);

str_enum!(
    /// Lifecycle of a site; derived from its production environment (see [`SiteStatus::mirror`]).
    SiteStatus("site status") {
        Creating => "creating",
        Active => "active",
        Failed => "failed",
        Deleting => "deleting",
        Deleted => "deleted",
    }
);

str_enum!(
    /// What an environment is for.
    EnvironmentKind("environment kind") {
        Production => "production",
        Staging => "staging",
        Clone => "clone",
    }
);

str_enum!(
    /// Lifecycle of an environment.
    EnvironmentStatus("environment status") {
        Creating => "creating",
        Cloning => "cloning",
        Active => "active",
        Deploying => "deploying",
        Restoring => "restoring",
        Updating => "updating",
        Promoting => "promoting",
        Deleting => "deleting",
        Deleted => "deleted",
        Failed => "failed",
    }
);

str_enum!(
    /// Result of the last drift check.
    DriftStatus("drift status") {
        Unknown => "unknown",
        Clean => "clean",
        Drifted => "drifted",
    }
);

str_enum!(
    /// Health of a release.
    ReleaseHealth("release health") {
        Unknown => "unknown",
        Healthy => "healthy",
        Unhealthy => "unhealthy",
    }
);

str_enum!(
    /// Where a release's code comes from.
    ReleaseSourceKind("release source") {
        WordPress => "wordpress",
        Git => "git",
        Archive => "archive",
        Upload => "upload",
    }
);

str_enum!(
    /// What a backup contains.
    BackupScope("backup scope") {
        Db => "db",
        Files => "files",
        Full => "full",
    }
);

str_enum!(
    /// Lifecycle of a backup.
    BackupStatus("backup status") {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Expired => "expired",
    }
);

str_enum!(
    /// Why a backup was taken.
    BackupTrigger("backup trigger") {
        Manual => "manual",
        Scheduled => "scheduled",
        PreRestore => "pre_restore",
        PrePromote => "pre_promote",
        PreUpdate => "pre_update",
    }
);

str_enum!(
    /// Certificate state of a domain.
    TlsStatus("TLS status") {
        Pending => "pending",
        Active => "active",
        Failed => "failed",
        Disabled => "disabled",
    }
);

str_enum!(
    /// Lifecycle of a job.
    JobStatus("job status") {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

str_enum!(
    /// Whether a job is serialised per site or exclusive on its node.
    JobScope("job scope") {
        Site => "site",
        Node => "node",
    }
);

str_enum!(
    /// Kind of token.
    TokenKind("token kind") {
        Session => "session",
        Api => "api",
    }
);

str_enum!(
    /// Outcome recorded by an audit event.
    AuditResult("audit result") {
        Accepted => "accepted",
        Succeeded => "succeeded",
        Failed => "failed",
        Denied => "denied",
    }
);

str_enum!(
    /// Kind of a recorded job event.
    JobEventKind("job event kind") {
        State => "state",
        Step => "step",
        Log => "log",
    }
);

str_enum!(
    /// What a job does; each kind runs the playbook of the same name.
    JobKind("job type") {
        NodeProvision => "node_provision",
        SiteCreate => "site_create",
        SiteDelete => "site_delete",
        EnvCreate => "env_create",
        EnvDelete => "env_delete",
        EnvDeploy => "env_deploy",
        EnvUpdate => "env_update",
        ReleaseRollback => "release_rollback",
        HealthCheck => "health_check",
        BackupCreate => "backup_create",
        BackupCleanup => "backup_cleanup",
        EnvRestore => "env_restore",
        DriftCheck => "drift_check",
        EnvPromote => "env_promote",
        DomainAdd => "domain_add",
        DomainRemove => "domain_remove",
        EnvCacheToggle => "env_cache_toggle",
        CachePurge => "cache_purge",
        SiteImport => "site_import",
    }
);

impl JobKind {
    /// Node-scoped jobs are exclusive with every other job on their node.
    pub const fn scope(self) -> JobScope {
        match self {
            Self::NodeProvision => JobScope::Node,
            _ => JobScope::Site,
        }
    }

    /// The in-progress environment state this job puts its environment into, when it has one.
    /// Jobs that read (backups, drift checks, health checks, cache purges) change no state.
    pub const fn environment_operation(self) -> Option<EnvOperation> {
        match self {
            Self::EnvDeploy | Self::ReleaseRollback => Some(EnvOperation::Deploy),
            Self::EnvUpdate | Self::DomainAdd | Self::DomainRemove | Self::EnvCacheToggle => {
                Some(EnvOperation::Update)
            }
            Self::EnvRestore => Some(EnvOperation::Restore),
            Self::EnvPromote => Some(EnvOperation::Promote),
            Self::EnvDelete | Self::SiteDelete => Some(EnvOperation::Delete),
            Self::NodeProvision
            | Self::SiteCreate
            | Self::SiteImport
            | Self::EnvCreate
            | Self::HealthCheck
            | Self::BackupCreate
            | Self::BackupCleanup
            | Self::DriftCheck
            | Self::CachePurge => None,
        }
    }

    /// Jobs that read or write backup objects get the backup target's configuration.
    pub const fn uses_backup_storage(self) -> bool {
        matches!(
            self,
            Self::BackupCreate
                | Self::BackupCleanup
                | Self::EnvRestore
                | Self::EnvPromote
                | Self::EnvUpdate
        )
    }
}

fn illegal(kind: &'static str, from: &'static str, event: impl fmt::Debug) -> IllegalTransition {
    IllegalTransition {
        kind,
        from,
        event: format!("{event:?}"),
    }
}

/// Work that moves an active environment into an in-progress state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvOperation {
    Deploy,
    Restore,
    Update,
    Promote,
    Delete,
}

/// Something that happens to an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvEvent {
    /// A job starts work on an active environment (a failed one may only be deleted).
    Begin(EnvOperation),
    /// The job finished successfully.
    Succeeded,
    /// The job failed or was cancelled, but the environment is as it was before (nothing ran,
    /// or the playbook rolled back). Not possible for creation: a half-made environment fails.
    Reverted,
    /// The job left the environment in an unknown state.
    Failed,
    /// Creation was cancelled before anything ran on the node: the environment never existed.
    Discarded,
    /// An explicit reset re-validated a failed environment.
    Reset,
}

impl EnvironmentStatus {
    /// Whether a job owns the environment in this state.
    pub const fn is_in_progress(self) -> bool {
        matches!(
            self,
            Self::Creating
                | Self::Cloning
                | Self::Deploying
                | Self::Restoring
                | Self::Updating
                | Self::Promoting
                | Self::Deleting
        )
    }

    /// The state machine of an environment.
    pub fn transition(self, event: EnvEvent) -> Result<Self, IllegalTransition> {
        use EnvEvent as E;
        use EnvironmentStatus as S;
        let next = match (self, event) {
            (S::Active, E::Begin(op)) => match op {
                EnvOperation::Deploy => S::Deploying,
                EnvOperation::Restore => S::Restoring,
                EnvOperation::Update => S::Updating,
                EnvOperation::Promote => S::Promoting,
                EnvOperation::Delete => S::Deleting,
            },
            (S::Failed, E::Begin(EnvOperation::Delete)) => S::Deleting,
            (S::Deleting, E::Succeeded) => S::Deleted,
            (s, E::Succeeded) if s.is_in_progress() => S::Active,
            (
                S::Deploying | S::Restoring | S::Updating | S::Promoting | S::Deleting,
                E::Reverted,
            ) => S::Active,
            (s, E::Failed) if s.is_in_progress() => S::Failed,
            (S::Creating | S::Cloning, E::Discarded) => S::Deleted,
            (S::Failed, E::Reset) => S::Active,
            _ => return Err(illegal("environment", self.as_str(), event)),
        };
        Ok(next)
    }
}

impl SiteStatus {
    /// A site's status mirrors its production environment.
    pub const fn mirror(production: EnvironmentStatus) -> Self {
        use EnvironmentStatus as E;
        match production {
            E::Creating | E::Cloning => Self::Creating,
            E::Active | E::Deploying | E::Restoring | E::Updating | E::Promoting => Self::Active,
            E::Deleting => Self::Deleting,
            E::Deleted => Self::Deleted,
            E::Failed => Self::Failed,
        }
    }
}

/// Something that happens to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEvent {
    /// A node_provision job was queued.
    ProvisionRequested,
    /// Provisioning finished successfully.
    ProvisionSucceeded,
    /// Provisioning failed.
    ProvisionFailed,
    /// A queued provisioning was cancelled before it ran: back to where the node was.
    ProvisionDiscarded { previous: NodeStatus },
    /// A contact failed.
    ContactFailed,
    /// A contact succeeded.
    ContactSucceeded,
    /// The node is retired.
    Decommission,
}

impl NodeStatus {
    /// What a reachability check's outcome means for a node in this state: an active node
    /// that did not answer is unreachable, an unreachable one that answered is active again;
    /// nodes being set up, failed or retired are not the check's to change.
    pub const fn contact_event(self, answered: bool) -> Option<NodeEvent> {
        match (self, answered) {
            (Self::Active, false) => Some(NodeEvent::ContactFailed),
            (Self::Unreachable, true) => Some(NodeEvent::ContactSucceeded),
            _ => None,
        }
    }

    /// The state machine of a node.
    pub fn transition(self, event: NodeEvent) -> Result<Self, IllegalTransition> {
        use NodeEvent as E;
        use NodeStatus as S;
        let next = match (self, event) {
            (S::Pending | S::Active | S::Unreachable | S::Failed, E::ProvisionRequested) => {
                S::Provisioning
            }
            (S::Provisioning, E::ProvisionSucceeded) => S::Active,
            (S::Provisioning, E::ProvisionFailed) => S::Failed,
            (
                S::Provisioning,
                E::ProvisionDiscarded {
                    previous: previous @ (S::Pending | S::Active | S::Unreachable | S::Failed),
                },
            ) => previous,
            (S::Active, E::ContactFailed) => S::Unreachable,
            (S::Unreachable, E::ContactSucceeded) => S::Active,
            (S::Pending | S::Active | S::Unreachable | S::Failed, E::Decommission) => {
                S::Decommissioned
            }
            _ => return Err(illegal("node", self.as_str(), event)),
        };
        Ok(next)
    }

    /// Whether new work may be queued for environments on this node. Work may queue behind a
    /// pending or running provisioning; it starts once the node is active.
    pub const fn accepts_work(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Provisioning | Self::Active | Self::Unreachable
        )
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTransition {
    /// A worker claimed it.
    Claim,
    /// Its playbook succeeded.
    Succeed,
    /// Its attempt failed; `retry` when attempts remain and the failure is retryable (a lease
    /// that expired after a crash counts as a retryable failure).
    Fail { retry: bool },
    /// A user cancelled it.
    Cancel,
}

impl JobStatus {
    /// Whether the job has ended.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The state machine of a job.
    pub fn transition(self, event: JobTransition) -> Result<Self, IllegalTransition> {
        use JobStatus as S;
        use JobTransition as T;
        let next = match (self, event) {
            (S::Queued, T::Claim) => S::Running,
            (S::Queued | S::Running, T::Cancel) => S::Cancelled,
            (S::Running, T::Succeed) => S::Succeeded,
            (S::Running, T::Fail { retry: true }) => S::Queued,
            (S::Running, T::Fail { retry: false }) => S::Failed,
            _ => return Err(illegal("job", self.as_str(), event)),
        };
        Ok(next)
    }
}

/// Something that happens to a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupEvent {
    Start,
    Complete,
    Fail,
    Expire,
}

impl BackupStatus {
    /// The state machine of a backup.
    pub fn transition(self, event: BackupEvent) -> Result<Self, IllegalTransition> {
        use BackupEvent as E;
        use BackupStatus as S;
        let next = match (self, event) {
            (S::Pending, E::Start) => S::Running,
            (S::Running, E::Complete) => S::Completed,
            (S::Pending | S::Running, E::Fail) => S::Failed,
            (S::Completed, E::Expire) => S::Expired,
            _ => return Err(illegal("backup", self.as_str(), event)),
        };
        Ok(next)
    }
}

/// Something that happens to a domain's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEvent {
    Issued,
    IssueFailed,
    Disable,
    Retry,
}

impl TlsStatus {
    /// The state machine of a domain's certificate.
    pub fn transition(self, event: TlsEvent) -> Result<Self, IllegalTransition> {
        use TlsEvent as E;
        use TlsStatus as S;
        let next = match (self, event) {
            (S::Pending | S::Active | S::Failed, E::Issued) => S::Active,
            (S::Pending | S::Active | S::Failed, E::IssueFailed) => S::Failed,
            (S::Pending | S::Active | S::Failed, E::Disable) => S::Disabled,
            (S::Failed | S::Disabled, E::Retry) => S::Pending,
            _ => return Err(illegal("domain certificate", self.as_str(), event)),
        };
        Ok(next)
    }
}

/// Something that happens to a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseEvent {
    ChecksPassed,
    ChecksFailed,
}

impl ReleaseHealth {
    /// Health checks run before and after the switch: a healthy release can still fail its
    /// post-switch check, but an unhealthy one never becomes healthy again.
    pub fn transition(self, event: ReleaseEvent) -> Result<Self, IllegalTransition> {
        use ReleaseEvent as E;
        use ReleaseHealth as S;
        let next = match (self, event) {
            (S::Unknown | S::Healthy, E::ChecksPassed) => S::Healthy,
            (S::Unknown | S::Healthy, E::ChecksFailed) => S::Unhealthy,
            _ => return Err(illegal("release", self.as_str(), event)),
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant round-trips through its database spelling, and the spelling appears in
    /// the migration's CHECK constraint.
    #[test]
    fn enums_round_trip_and_match_the_schema() {
        let schema = include_str!("../../../migrations/0001_init.sql");
        macro_rules! check {
            ($($t:ty),*) => {$(
                for &v in <$t>::ALL {
                    let s = v.as_str();
                    assert_eq!(s.parse::<$t>().expect("parses"), v);
                    assert!(schema.contains(&format!("'{s}'")), "{s} missing from schema");
                }
            )*};
        }
        check!(
            NodeStatus,
            SiteStatus,
            EnvironmentKind,
            EnvironmentStatus,
            DriftStatus,
            ReleaseHealth,
            ReleaseSourceKind,
            BackupScope,
            BackupStatus,
            BackupTrigger,
            TlsStatus,
            JobStatus,
            JobScope,
            TokenKind,
            AuditResult,
            JobEventKind,
            JobKind
        );
        assert!("bogus".parse::<NodeStatus>().is_err());
    }

    fn env_events() -> Vec<EnvEvent> {
        let ops = [
            EnvOperation::Deploy,
            EnvOperation::Restore,
            EnvOperation::Update,
            EnvOperation::Promote,
            EnvOperation::Delete,
        ];
        let mut events: Vec<EnvEvent> = ops.into_iter().map(EnvEvent::Begin).collect();
        events.extend([
            EnvEvent::Succeeded,
            EnvEvent::Reverted,
            EnvEvent::Failed,
            EnvEvent::Discarded,
            EnvEvent::Reset,
        ]);
        events
    }

    /// The full table of legal environment transitions; everything else is rejected.
    #[test]
    fn environment_transitions_are_exhaustively_specified() {
        use EnvOperation as O;
        use EnvironmentStatus as S;
        let expected = |from: S, event: EnvEvent| -> Option<S> {
            match (from, event) {
                (S::Active, EnvEvent::Begin(O::Deploy)) => Some(S::Deploying),
                (S::Active, EnvEvent::Begin(O::Restore)) => Some(S::Restoring),
                (S::Active, EnvEvent::Begin(O::Update)) => Some(S::Updating),
                (S::Active, EnvEvent::Begin(O::Promote)) => Some(S::Promoting),
                (S::Active | S::Failed, EnvEvent::Begin(O::Delete)) => Some(S::Deleting),
                (S::Deleting, EnvEvent::Succeeded) => Some(S::Deleted),
                (
                    S::Creating
                    | S::Cloning
                    | S::Deploying
                    | S::Restoring
                    | S::Updating
                    | S::Promoting,
                    EnvEvent::Succeeded,
                ) => Some(S::Active),
                (
                    S::Deploying | S::Restoring | S::Updating | S::Promoting | S::Deleting,
                    EnvEvent::Reverted,
                ) => Some(S::Active),
                (s, EnvEvent::Failed) if s.is_in_progress() => Some(S::Failed),
                (S::Creating | S::Cloning, EnvEvent::Discarded) => Some(S::Deleted),
                (S::Failed, EnvEvent::Reset) => Some(S::Active),
                _ => None,
            }
        };
        for &from in S::ALL {
            for event in env_events() {
                assert_eq!(
                    from.transition(event).ok(),
                    expected(from, event),
                    "{from} on {event:?}"
                );
            }
        }
        // Terminal and failed states never leave without the explicit events.
        for event in env_events() {
            assert!(S::Deleted.transition(event).is_err());
        }
    }

    #[test]
    fn every_in_progress_state_can_end() {
        for &s in EnvironmentStatus::ALL.iter().filter(|s| s.is_in_progress()) {
            assert!(s.transition(EnvEvent::Failed).is_ok());
            assert!(s.transition(EnvEvent::Succeeded).is_ok());
        }
    }

    #[test]
    fn site_mirrors_production() {
        assert_eq!(
            SiteStatus::mirror(EnvironmentStatus::Deploying),
            SiteStatus::Active
        );
        assert_eq!(
            SiteStatus::mirror(EnvironmentStatus::Creating),
            SiteStatus::Creating
        );
        assert_eq!(
            SiteStatus::mirror(EnvironmentStatus::Failed),
            SiteStatus::Failed
        );
        assert_eq!(
            SiteStatus::mirror(EnvironmentStatus::Deleted),
            SiteStatus::Deleted
        );
    }

    #[test]
    fn node_transitions_are_exhaustively_specified() {
        use NodeStatus as S;
        let mut events = vec![
            NodeEvent::ProvisionRequested,
            NodeEvent::ProvisionSucceeded,
            NodeEvent::ProvisionFailed,
            NodeEvent::ContactFailed,
            NodeEvent::ContactSucceeded,
            NodeEvent::Decommission,
        ];
        events.extend(
            S::ALL
                .iter()
                .map(|&p| NodeEvent::ProvisionDiscarded { previous: p }),
        );
        let expected = |from: S, event: NodeEvent| -> Option<S> {
            match (from, event) {
                (
                    S::Pending | S::Active | S::Unreachable | S::Failed,
                    NodeEvent::ProvisionRequested,
                ) => Some(S::Provisioning),
                (S::Provisioning, NodeEvent::ProvisionSucceeded) => Some(S::Active),
                (S::Provisioning, NodeEvent::ProvisionFailed) => Some(S::Failed),
                (S::Provisioning, NodeEvent::ProvisionDiscarded { previous })
                    if !matches!(previous, S::Provisioning | S::Decommissioned) =>
                {
                    Some(previous)
                }
                (S::Active, NodeEvent::ContactFailed) => Some(S::Unreachable),
                (S::Unreachable, NodeEvent::ContactSucceeded) => Some(S::Active),
                (S::Pending | S::Active | S::Unreachable | S::Failed, NodeEvent::Decommission) => {
                    Some(S::Decommissioned)
                }
                _ => None,
            }
        };
        for &from in S::ALL {
            for &event in &events {
                assert_eq!(
                    from.transition(event).ok(),
                    expected(from, event),
                    "{from} on {event:?}"
                );
            }
        }
    }

    #[test]
    fn job_transitions_are_exhaustively_specified() {
        use JobStatus as S;
        let events = [
            JobTransition::Claim,
            JobTransition::Succeed,
            JobTransition::Fail { retry: true },
            JobTransition::Fail { retry: false },
            JobTransition::Cancel,
        ];
        let expected = |from: S, event: JobTransition| -> Option<S> {
            match (from, event) {
                (S::Queued, JobTransition::Claim) => Some(S::Running),
                (S::Queued | S::Running, JobTransition::Cancel) => Some(S::Cancelled),
                (S::Running, JobTransition::Succeed) => Some(S::Succeeded),
                (S::Running, JobTransition::Fail { retry }) => {
                    Some(if retry { S::Queued } else { S::Failed })
                }
                _ => None,
            }
        };
        for &from in S::ALL {
            for event in events {
                assert_eq!(
                    from.transition(event).ok(),
                    expected(from, event),
                    "{from} on {event:?}"
                );
            }
            assert_eq!(
                from.is_terminal(),
                matches!(from, S::Succeeded | S::Failed | S::Cancelled)
            );
        }
    }

    #[test]
    fn backup_tls_and_release_transitions() {
        use BackupEvent as B;
        use ReleaseEvent as R;
        use TlsEvent as T;
        for &from in BackupStatus::ALL {
            for event in [B::Start, B::Complete, B::Fail, B::Expire] {
                let expected = match (from, event) {
                    (BackupStatus::Pending, B::Start) => Some(BackupStatus::Running),
                    (BackupStatus::Running, B::Complete) => Some(BackupStatus::Completed),
                    (BackupStatus::Pending | BackupStatus::Running, B::Fail) => {
                        Some(BackupStatus::Failed)
                    }
                    (BackupStatus::Completed, B::Expire) => Some(BackupStatus::Expired),
                    _ => None,
                };
                assert_eq!(from.transition(event).ok(), expected, "{from} on {event:?}");
            }
        }
        for &from in TlsStatus::ALL {
            for event in [T::Issued, T::IssueFailed, T::Disable, T::Retry] {
                let live = !matches!(from, TlsStatus::Disabled);
                let expected = match event {
                    T::Issued if live => Some(TlsStatus::Active),
                    T::IssueFailed if live => Some(TlsStatus::Failed),
                    T::Disable if live => Some(TlsStatus::Disabled),
                    T::Retry if matches!(from, TlsStatus::Failed | TlsStatus::Disabled) => {
                        Some(TlsStatus::Pending)
                    }
                    _ => None,
                };
                assert_eq!(from.transition(event).ok(), expected, "{from} on {event:?}");
            }
        }
        for &from in ReleaseHealth::ALL {
            for event in [R::ChecksPassed, R::ChecksFailed] {
                let expected = match (from, event) {
                    (ReleaseHealth::Unhealthy, _) => None,
                    (_, R::ChecksPassed) => Some(ReleaseHealth::Healthy),
                    (_, R::ChecksFailed) => Some(ReleaseHealth::Unhealthy),
                };
                assert_eq!(from.transition(event).ok(), expected, "{from} on {event:?}");
            }
        }
    }

    #[test]
    fn job_kinds_map_to_scopes_and_operations() {
        assert_eq!(JobKind::NodeProvision.scope(), JobScope::Node);
        for &k in JobKind::ALL
            .iter()
            .filter(|k| **k != JobKind::NodeProvision)
        {
            assert_eq!(k.scope(), JobScope::Site, "{k}");
        }
        assert_eq!(
            JobKind::EnvDeploy.environment_operation(),
            Some(EnvOperation::Deploy)
        );
        assert_eq!(JobKind::BackupCreate.environment_operation(), None);
    }
}
