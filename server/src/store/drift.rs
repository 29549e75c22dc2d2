//! Drift baselines and reports: read here; written by the jobs that take them.

use sqlx::FromRow;

use super::Store;
use crate::error::{Error, Result};
use crate::model::{DriftStatus, EnvironmentId, JobId};

/// A row of `drift_reports`.
#[derive(Debug, Clone, FromRow)]
pub struct DriftReportRecord {
    pub environment_id: EnvironmentId,
    pub status: DriftStatus,
    /// JSON array of {category, name, detail}.
    pub items: String,
    pub job_id: Option<JobId>,
    pub checked_at: i64,
}

impl Store {
    /// The newest drift baseline of production environment `source` (taken when a staging
    /// environment was cloned from it), as the fingerprint JSON.
    pub async fn latest_drift_baseline(
        &self,
        source: EnvironmentId,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM drift_baselines WHERE source_environment_id = ?
             ORDER BY recorded_at DESC LIMIT 1",
        )
        .bind(source)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|f| serde_json::from_str(&f).map_err(Error::internal))
            .transpose()
    }

    /// The newest drift baseline of `staging` against `production`.
    pub async fn drift_baseline_of(
        &self,
        staging: EnvironmentId,
        production: EnvironmentId,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM drift_baselines WHERE environment_id = ? AND source_environment_id = ?
             ORDER BY recorded_at DESC LIMIT 1",
        )
        .bind(staging)
        .bind(production)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|f| serde_json::from_str(&f).map_err(Error::internal))
            .transpose()
    }

    /// The latest drift report of an environment.
    pub async fn latest_drift_report(
        &self,
        env: EnvironmentId,
    ) -> Result<Option<DriftReportRecord>> {
        Ok(sqlx::query_as::<_, DriftReportRecord>(
            "SELECT environment_id, status, items, job_id, checked_at FROM drift_reports
             WHERE environment_id = ? ORDER BY checked_at DESC LIMIT 1",
        )
        .bind(env)
        .fetch_optional(&self.pool)
        .await?)
    }
}
