//! Restoring into a scratch instance tagged as the drill's, and polling until it is available.

use std::collections::BTreeMap;

use opsplane_shared::OpsError;
use opsplane_shared::aws::rds::RestoreSource;
use opsplane_shared::domain::backup::{
    MANAGED_BY_VALUE, TAG_DRILL, TAG_DRILL_SNAPSHOT, TAG_ENVIRONMENT, TAG_MANAGED_BY,
};
use opsplane_shared::domain::drill::RestoreMode;
use serde::{Deserialize, Serialize};

use super::pick::Pick;
use super::validate::DrillPlan;
use crate::Deps;

/// `restore`.
#[derive(Debug, Deserialize)]
pub struct RestoreInput {
    /// The plan.
    pub plan: DrillPlan,
    /// What to restore.
    pub pick: Pick,
}

/// The scratch instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scratch {
    /// Its identifier.
    pub scratch_id: String,
    /// Its status right after the request.
    pub status: String,
}

/// The tags of a drill's scratch instance.
pub fn drill_tags(plan: &DrillPlan, snapshot: Option<&str>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (TAG_DRILL.to_owned(), plan.drill_id.clone()),
        (TAG_ENVIRONMENT.to_owned(), plan.environment.clone()),
        (TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
    ]);
    if let Some(s) = snapshot {
        tags.insert(TAG_DRILL_SNAPSHOT.to_owned(), s.to_owned());
    }
    tags
}

/// Restores the scratch instance: the drill's class, never public, no deletion protection, tagged, where
/// the plan places it (the source's DB subnet group, security groups, parameter and option groups, or the
/// spec's `drill.placement`), so that the probe reaches it as it reaches the source and the measured RTO
/// is the one a real recovery would see. Without them RDS would put it in the default VPC, or refuse where
/// the account has none.
pub async fn restore(deps: &Deps, input: RestoreInput) -> Result<Scratch, OpsError> {
    let plan = &input.plan;
    let source = match (&plan.mode, &input.pick.snapshot_id) {
        (RestoreMode::Snapshot, Some(s)) => RestoreSource::Snapshot(s.clone()),
        (RestoreMode::Snapshot, None) => {
            return Err(OpsError::invalid(
                "pick.snapshot_id",
                "snapshot mode needs a snapshot",
            ));
        }
        (RestoreMode::PointInTime, _) => RestoreSource::PointInTime {
            instance: plan.instance.clone(),
            at: input.pick.recovery_point,
        },
    };
    let tags = drill_tags(plan, input.pick.snapshot_id.as_deref());
    let i = deps
        .rds
        .restore(
            &source,
            &plan.scratch_id,
            &plan.instance_class,
            &plan.network,
            &tags,
        )
        .await
        .map_err(|e| match e {
            opsplane_shared::aws::rds::RdsError::NotFound { .. } => {
                OpsError::RestoreFailed(e.to_string())
            }
            other => other.into(),
        })?;
    tracing::info!(scratch = %i.id, status = %i.status, "restore requested");
    Ok(Scratch {
        scratch_id: i.id,
        status: i.status,
    })
}

/// `check-restore`.
#[derive(Debug, Deserialize)]
pub struct CheckRestoreInput {
    /// The scratch instance.
    pub scratch_id: String,
}

/// The scratch instance, available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// Its identifier.
    pub scratch_id: String,
    /// Its endpoint, `host:port`.
    pub endpoint: String,
}

/// `NotReady` until the scratch instance is available with an endpoint; a failed restore is `RestoreFailed`.
pub async fn check_restore(deps: &Deps, input: CheckRestoreInput) -> Result<Restored, OpsError> {
    let i = deps.rds.instance(&input.scratch_id).await?.ok_or_else(|| {
        OpsError::RestoreFailed(format!(
            "scratch instance {} does not exist",
            input.scratch_id
        ))
    })?;
    match (i.status.as_str(), &i.endpoint) {
        ("available", Some((host, port))) => Ok(Restored {
            scratch_id: i.id,
            endpoint: format!("{host}:{port}"),
        }),
        (s, _)
            if s == "failed"
                || s.starts_with("incompatible")
                || s == "deleting"
                || s == "stopped" =>
        {
            Err(OpsError::RestoreFailed(format!(
                "scratch instance {} is {s}",
                i.id
            )))
        }
        (s, _) => Err(OpsError::NotReady(format!(
            "scratch instance {} is {s}",
            i.id
        ))),
    }
}
