//! Pure rules: how an attempt's outcome ends the job (retry policy) and how a job's end moves
//! its resources. Tested exhaustively, independent of the database.

use std::time::Duration;

use crate::executor::Outcome;
use crate::model::drift::DriftItem;
use crate::model::job::{HealthCheck, JobParams};
use crate::model::report::JobReport;
use crate::model::{BackupEvent, EnvEvent, JobKind, NodeEvent, ReleaseHealth};
use crate::store::{DomainOutcome, JobEnd, ResourceEffects};

/// Retry settings.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Wait before attempt n+1 after a retryable failure of attempt n (the last entry repeats).
    pub backoff: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            backoff: vec![
                Duration::from_mins(1),
                Duration::from_mins(5),
                Duration::from_mins(15),
            ],
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: i64) -> Duration {
        let i = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        self.backoff
            .get(i)
            .or(self.backoff.last())
            .copied()
            .unwrap_or_default()
    }
}

/// How an attempt ended, as the job sees it.
pub fn decide(
    outcome: &Outcome,
    attempt: i64,
    max_attempts: i64,
    policy: &RetryPolicy,
    now_ms: i64,
) -> JobEnd {
    let retry_or_fail = |code: &str, message: String, retryable: bool| {
        if retryable && attempt < max_attempts {
            let delay = i64::try_from(policy.delay(attempt).as_millis()).unwrap_or(i64::MAX / 4);
            JobEnd::Retry {
                run_after: now_ms.saturating_add(delay),
                code: code.to_owned(),
                message,
            }
        } else if retryable && max_attempts > 1 {
            JobEnd::Failed {
                code: code.to_owned(),
                message: format!("{message}\n(giving up after {attempt} attempts)"),
            }
        } else {
            JobEnd::Failed {
                code: code.to_owned(),
                message,
            }
        }
    };
    match outcome {
        Outcome::Succeeded { .. } => JobEnd::Succeeded,
        Outcome::Failed {
            code,
            message,
            retryable,
            result,
        } => {
            // A playbook that put everything back (`rolled_back`) failed on its own terms: a
            // retry would repeat the same change and the same undo.
            let undone = result.as_ref().is_some_and(|r| r.rolled_back);
            // A playbook may name its failure (`error_code`, e.g. ACME_FAILED).
            let code = result
                .as_ref()
                .and_then(|r| r.error_code.as_deref())
                .unwrap_or(code);
            retry_or_fail(code, message.clone(), *retryable && !undone)
        }
        Outcome::TimedOut => retry_or_fail(
            "JOB_TIMEOUT",
            "the playbook ran past the job timeout and was stopped".into(),
            true,
        ),
        Outcome::Cancelled => JobEnd::Cancelled {
            message: "cancelled while running; the playbook was stopped".into(),
        },
        Outcome::Interrupted => JobEnd::Requeue,
    }
}

/// The resource changes for a job that ended (`end` is terminal).
/// `params` is `None` when the stored parameters could not be read (the job failed at setup).
pub fn effects(
    kind: JobKind,
    params: Option<&JobParams>,
    end: &JobEnd,
    result: Option<&JobReport>,
) -> ResourceEffects {
    let succeeded = matches!(end, JobEnd::Succeeded);
    let rolled_back = !succeeded && result.is_some_and(|r| r.rolled_back);
    let mut fx = ResourceEffects {
        report: result.cloned().unwrap_or_default(),
        // A release the job built: live when the job succeeded; a failed deploy reports its
        // unhealthy release so it is recorded (and never counted as good).
        release: result
            .and_then(|r| r.release.clone())
            .filter(|r| if succeeded { r.healthy } else { !r.healthy }),
        current_release: result
            .filter(|_| succeeded)
            .and_then(|r| r.current_release.clone()),
        pruned_releases: result
            .filter(|_| succeeded)
            .map(|r| r.pruned.clone())
            .unwrap_or_default(),
        ..ResourceEffects::default()
    };
    if matches!(end, JobEnd::Retry { .. } | JobEnd::Requeue) {
        return fx; // still owned by the job
    }
    result_effects(kind, params, end, result, &mut fx);
    let env_end = if succeeded {
        EnvEvent::Succeeded
    } else if rolled_back {
        EnvEvent::Reverted
    } else {
        EnvEvent::Failed
    };
    match kind {
        JobKind::NodeProvision => {
            fx.node = Some(if succeeded {
                NodeEvent::ProvisionSucceeded
            } else {
                NodeEvent::ProvisionFailed
            });
        }
        // A half-made environment is failed: it can be deleted, or reset once repaired.
        JobKind::SiteCreate | JobKind::EnvCreate | JobKind::SiteImport => {
            fx.environment = Some(if succeeded {
                EnvEvent::Succeeded
            } else {
                EnvEvent::Failed
            });
        }
        JobKind::SiteDelete => {
            fx.site_environments = Some(if succeeded {
                EnvEvent::Succeeded
            } else {
                EnvEvent::Failed
            });
        }
        JobKind::EnvDeploy
        | JobKind::ReleaseRollback
        | JobKind::EnvUpdate
        | JobKind::EnvRestore
        | JobKind::EnvPromote
        | JobKind::DomainAdd
        | JobKind::DomainRemove
        | JobKind::EnvCacheToggle
        | JobKind::EnvDelete => fx.environment = Some(env_end),
        JobKind::HealthCheck => {
            if succeeded
                && matches!(
                    params,
                    Some(JobParams::HealthCheck(HealthCheck { reset: true }))
                )
            {
                fx.environment = Some(EnvEvent::Reset);
            }
        }
        JobKind::BackupCreate => {
            fx.backup = Some(if succeeded {
                BackupEvent::Complete
            } else {
                BackupEvent::Fail
            });
        }
        // Read-only work leaves the environment as it was.
        JobKind::BackupCleanup | JobKind::DriftCheck | JobKind::CachePurge => {}
    }
    fx
}

/// What the playbook reported that a job of `kind` records (drift, caches, domains).
fn result_effects(
    kind: JobKind,
    params: Option<&JobParams>,
    end: &JobEnd,
    result: Option<&JobReport>,
    fx: &mut ResourceEffects,
) {
    let succeeded = matches!(end, JobEnd::Succeeded);
    match kind {
        JobKind::EnvCreate | JobKind::EnvPromote if succeeded => {
            fx.drift_baseline = result.and_then(|r| r.baseline.clone());
        }
        JobKind::DriftCheck if succeeded => fx.drift = drift_verdict(result),
        JobKind::EnvCacheToggle if succeeded => fx.caches = result.and_then(|r| r.caches),
        // A promotion refused for drift says what drifted.
        JobKind::EnvPromote => fx.drift = drift_verdict(result),
        JobKind::DomainAdd | JobKind::DomainRemove => {
            fx.domain = domain_outcome(kind, params, end, result);
        }
        _ => {}
    }
}

/// What a finished domain job did to its domain.
fn domain_outcome(
    kind: JobKind,
    params: Option<&JobParams>,
    end: &JobEnd,
    result: Option<&JobReport>,
) -> Option<DomainOutcome> {
    let id = params?.domain()?;
    let domain = result.and_then(|r| r.domain.as_ref());
    match (kind, end) {
        (JobKind::DomainAdd, JobEnd::Succeeded) => Some(DomainOutcome::Issued {
            id,
            expires_at: domain.and_then(|d| d.expires_at),
            primary: matches!(params, Some(JobParams::DomainAdd(add)) if add.make_primary),
        }),
        (JobKind::DomainAdd, JobEnd::Failed { message, .. }) => Some(DomainOutcome::IssueFailed {
            id,
            message: domain
                .map(|d| d.error.as_str())
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| message.lines().next().unwrap_or_default())
                .chars()
                .take(400)
                .collect(),
        }),
        (JobKind::DomainAdd, JobEnd::Cancelled { .. }) => Some(DomainOutcome::IssueFailed {
            id,
            message: "cancelled before the certificate was in place".into(),
        }),
        (JobKind::DomainRemove, JobEnd::Succeeded) => Some(DomainOutcome::Removed { id }),
        _ => None,
    }
}

/// The releases a successful deploy removes once its new release is live (`existing` newest
/// first). Kept: the new release, the release live before the deploy (the last good one:
/// always), and the newest other healthy releases up to `keep` in all. Unhealthy releases
/// never count toward `keep` and go.
pub fn releases_to_prune(
    existing: &[(String, ReleaseHealth)],
    current: Option<&str>,
    keep: usize,
) -> Vec<String> {
    let mut kept = 1 + usize::from(current.is_some());
    let mut prune = Vec::new();
    for (name, health) in existing {
        if Some(name.as_str()) == current {
            continue;
        }
        if *health != ReleaseHealth::Unhealthy && kept < keep {
            kept += 1;
        } else {
            prune.push(name.clone());
        }
    }
    prune
}

/// A drift check's verdict from the items the node reported (`None` when it reported none).
fn drift_verdict(result: Option<&JobReport>) -> Option<(bool, Vec<DriftItem>)> {
    let items = result?.drift_items.clone()?;
    Some((!items.is_empty(), items))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn pruning_keeps_the_newest_healthy_and_the_last_good_release() {
        use ReleaseHealth::{Healthy as H, Unhealthy as U};
        let rel = |list: &[(&str, ReleaseHealth)]| {
            list.iter()
                .map(|(n, h)| ((*n).to_owned(), *h))
                .collect::<Vec<_>>()
        };
        // r5 is live; keep 3: new + r5 + r4; r2 is unhealthy and does not count.
        let existing = rel(&[("r5", H), ("r4", H), ("r3", U), ("r2", H), ("r1", H)]);
        assert_eq!(
            releases_to_prune(&existing, Some("r5"), 3),
            ["r3", "r2", "r1"]
        );
        // Live release rolled back to an old one: it stays even though newer ones exist.
        assert_eq!(
            releases_to_prune(&existing, Some("r1"), 3),
            ["r4", "r3", "r2"]
        );
        // Never below the new and the last good release, whatever the setting.
        assert_eq!(
            releases_to_prune(&existing, Some("r5"), 1),
            ["r4", "r3", "r2", "r1"]
        );
        assert_eq!(
            releases_to_prune(&existing, Some("r5"), 0),
            ["r4", "r3", "r2", "r1"]
        );
        // Nothing live (the environment's first release failed): newest healthy ones stay.
        assert_eq!(
            releases_to_prune(&existing, None, 2),
            ["r4", "r3", "r2", "r1"]
        );
        assert_eq!(
            releases_to_prune(&existing, Some("r5"), 10),
            ["r3"],
            "unhealthy ones go"
        );
        assert!(releases_to_prune(&[], None, 5).is_empty());
    }

    fn failed(retryable: bool) -> Outcome {
        Outcome::Failed {
            code: "PLAYBOOK_FAILED".into(),
            message: "boom".into(),
            retryable,
            result: None,
        }
    }

    #[test]
    fn retries_follow_the_backoff_until_attempts_run_out() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&Outcome::Succeeded { result: None }, 1, 3, &p, 0),
            JobEnd::Succeeded
        );
        assert!(matches!(
            decide(&failed(true), 1, 3, &p, 1000),
            JobEnd::Retry {
                run_after: 61_000,
                ..
            }
        ));
        assert!(matches!(
            decide(&failed(true), 2, 3, &p, 0),
            JobEnd::Retry {
                run_after: 300_000,
                ..
            }
        ));
        assert!(matches!(
            decide(&failed(true), 3, 3, &p, 0),
            JobEnd::Failed { .. }
        ));
        assert!(matches!(
            decide(&failed(false), 1, 3, &p, 0),
            JobEnd::Failed { .. }
        ));
        // A failure the playbook undid itself is final, whatever its exit code.
        let undone = Outcome::Failed {
            code: "PLAYBOOK_FAILED".into(),
            message: "switched back".into(),
            retryable: true,
            result: Some(JobReport {
                rolled_back: true,
                ..JobReport::default()
            }),
        };
        assert!(matches!(
            decide(&undone, 1, 3, &p, 0),
            JobEnd::Failed { ref message, .. } if message == "switched back"
        ));
        assert!(
            matches!(decide(&Outcome::TimedOut, 1, 3, &p, 0), JobEnd::Retry { ref code, .. } if code == "JOB_TIMEOUT")
        );
        assert!(
            matches!(decide(&Outcome::TimedOut, 3, 3, &p, 0), JobEnd::Failed { ref code, .. } if code == "JOB_TIMEOUT")
        );
        assert!(matches!(
            decide(&Outcome::Cancelled, 1, 3, &p, 0),
            JobEnd::Cancelled { .. }
        ));
        assert_eq!(decide(&Outcome::Interrupted, 1, 3, &p, 0), JobEnd::Requeue);
        let short = RetryPolicy {
            backoff: vec![Duration::from_secs(2)],
        };
        assert!(
            matches!(
                decide(&failed(true), 2, 5, &short, 0),
                JobEnd::Retry {
                    run_after: 2000,
                    ..
                }
            ),
            "last delay repeats"
        );
    }

    #[test]
    fn every_job_kind_ends_its_resources() {
        let failed_end = JobEnd::Failed {
            code: "X".into(),
            message: String::new(),
        };
        for &kind in JobKind::ALL {
            let ok = effects(kind, None, &JobEnd::Succeeded, None);
            let bad = effects(kind, None, &failed_end, None);
            let cancelled = effects(
                kind,
                None,
                &JobEnd::Cancelled {
                    message: String::new(),
                },
                None,
            );
            assert_eq!(
                bad, cancelled,
                "{kind}: a cancelled run counts as a failed one"
            );
            // Every job that moved something into an in-progress state moves it out again.
            if kind.environment_operation().is_some()
                || matches!(kind, JobKind::SiteCreate | JobKind::EnvCreate)
            {
                let (ok_env, bad_env) = if kind == JobKind::SiteDelete {
                    (ok.site_environments, bad.site_environments)
                } else {
                    (ok.environment, bad.environment)
                };
                assert_eq!(ok_env, Some(EnvEvent::Succeeded), "{kind}");
                assert_eq!(bad_env, Some(EnvEvent::Failed), "{kind}");
            }
            let retry = effects(
                kind,
                None,
                &JobEnd::Retry {
                    run_after: 0,
                    code: String::new(),
                    message: String::new(),
                },
                None,
            );
            assert_eq!(
                retry,
                ResourceEffects::default(),
                "{kind}: a retry keeps resources in progress"
            );
        }
        let provision = effects(JobKind::NodeProvision, None, &failed_end, None);
        assert_eq!(provision.node, Some(NodeEvent::ProvisionFailed));
        let rolled = effects(
            JobKind::EnvDeploy,
            None,
            &failed_end,
            Some(&JobReport {
                rolled_back: true,
                ..JobReport::default()
            }),
        );
        assert_eq!(rolled.environment, Some(EnvEvent::Reverted));
        let create_rolled = effects(
            JobKind::SiteCreate,
            None,
            &failed_end,
            Some(&JobReport {
                rolled_back: true,
                ..JobReport::default()
            }),
        );
        assert_eq!(
            create_rolled.environment,
            Some(EnvEvent::Failed),
            "creation never reverts"
        );
        let reset = effects(
            JobKind::HealthCheck,
            Some(&JobParams::HealthCheck(HealthCheck { reset: true })),
            &JobEnd::Succeeded,
            None,
        );
        assert_eq!(reset.environment, Some(EnvEvent::Reset));
        assert_eq!(
            effects(
                JobKind::HealthCheck,
                Some(&JobParams::HealthCheck(HealthCheck { reset: true })),
                &failed_end,
                None
            )
            .environment,
            None
        );
        assert_eq!(
            effects(JobKind::BackupCreate, None, &failed_end, None).backup,
            Some(BackupEvent::Fail)
        );
    }
}
