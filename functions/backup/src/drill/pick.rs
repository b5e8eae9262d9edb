//! Picking what to restore: the newest completed backup's snapshot, or a point in time.

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::domain::drill::{RestoreMode, RpoSource};
use opsplane_shared::state::{BackupRecord, BackupStatus};
use serde::{Deserialize, Serialize};

use super::validate::DrillPlan;
use crate::Deps;

/// `pick-snapshot`.
#[derive(Debug, Deserialize)]
pub struct PickInput {
    /// The plan.
    pub plan: DrillPlan,
}

/// What the drill restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    /// The snapshot (snapshot mode).
    pub snapshot_id: Option<String>,
    /// The recovery point: the snapshot's creation or the point in time.
    pub recovery_point: DateTime<Utc>,
    /// What the recovery point is.
    pub rpo_source: RpoSource,
    /// The manifest to verify against.
    pub manifest_key: Option<String>,
    /// The manifest's SHA-256 as recorded in the catalog.
    pub manifest_sha256: Option<String>,
}

/// Chooses the newest available opsplane snapshot of the instance, or its latest restorable time.
pub async fn pick_snapshot(deps: &Deps, input: PickInput) -> Result<Pick, OpsError> {
    let plan = &input.plan;
    let records: Vec<BackupRecord> = deps
        .state
        .latest(&plan.environment, 50)
        .await
        .map_err(OpsError::from)?;
    match plan.mode {
        RestoreMode::Snapshot => {
            let newest = deps
                .rds
                .manual_snapshots(Some(&plan.instance))
                .await?
                .into_iter()
                .filter(|s| s.info().is_ours(&plan.environment) && s.info().is_available())
                .filter(|s| s.created_at.is_some())
                .max_by_key(|s| s.created_at)
                .ok_or_else(|| {
                    OpsError::ResourceNotFound(format!(
                        "no available opsplane snapshot of {} in `{}`: run a backup first",
                        plan.instance, plan.environment
                    ))
                })?;
            let record = records.iter().find(|r| r.snapshot_ids.contains(&newest.id));
            Ok(Pick {
                recovery_point: newest.created_at.unwrap_or(plan.started_at),
                snapshot_id: Some(newest.id),
                rpo_source: RpoSource::Snapshot,
                manifest_key: record.and_then(|r| r.manifest_key.clone()),
                manifest_sha256: record.and_then(|r| r.manifest_sha256.clone()),
            })
        }
        RestoreMode::PointInTime => {
            let instance = deps.rds.instance(&plan.instance).await?.ok_or_else(|| {
                OpsError::ResourceNotFound(format!("instance {} does not exist", plan.instance))
            })?;
            let at = instance.latest_restorable_time.ok_or_else(|| {
                OpsError::ResourceNotFound(format!(
                    "instance {} has no latest restorable time (are automated backups on?)",
                    plan.instance
                ))
            })?;
            let record = records
                .iter()
                .find(|r| r.status == BackupStatus::Completed && r.manifest_key.is_some());
            Ok(Pick {
                snapshot_id: None,
                recovery_point: at,
                rpo_source: RpoSource::RestorePoint,
                manifest_key: record.and_then(|r| r.manifest_key.clone()),
                manifest_sha256: record.and_then(|r| r.manifest_sha256.clone()),
            })
        }
    }
}
