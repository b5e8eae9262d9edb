//! Tearing down the scratch instance on every path, and checking that it is gone.

use opsplane_shared::OpsError;
use opsplane_shared::domain::backup::TAG_DRILL;
use serde::{Deserialize, Serialize};

use super::validate::DrillPlan;
use crate::Deps;

/// `teardown` and `check-teardown`.
#[derive(Debug, Deserialize)]
pub struct TeardownInput {
    /// The plan (scratch id and drill id).
    pub plan: DrillPlan,
}

/// What teardown did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownOutput {
    /// Instances whose deletion was requested (or that are gone).
    pub deleted: Vec<String>,
}

/// Deletes the scratch instance and any other instance carrying this drill's tag, without final snapshot.
/// Safe to run when nothing was restored.
pub async fn teardown(deps: &Deps, input: TeardownInput) -> Result<TeardownOutput, OpsError> {
    let plan = &input.plan;
    let mut deleted = Vec::new();
    if deps.rds.delete_instance(&plan.scratch_id).await? {
        deleted.push(plan.scratch_id.clone());
    }
    for i in deps.rds.instances_tagged(TAG_DRILL).await? {
        if i.tags.get(TAG_DRILL) == Some(&plan.drill_id)
            && i.id != plan.scratch_id
            && i.status != "deleting"
            && deps.rds.delete_instance(&i.id).await?
        {
            deleted.push(i.id);
        }
    }
    tracing::info!(drill = %plan.drill_id, ?deleted, "drill torn down");
    Ok(TeardownOutput { deleted })
}

/// `NotReady` while an instance of this drill still exists.
pub async fn check_teardown(deps: &Deps, input: TeardownInput) -> Result<TeardownOutput, OpsError> {
    let plan = &input.plan;
    let left: Vec<String> = deps
        .rds
        .instances_tagged(TAG_DRILL)
        .await?
        .into_iter()
        .filter(|i| i.tags.get(TAG_DRILL) == Some(&plan.drill_id) || i.id == plan.scratch_id)
        .map(|i| format!("{} ({})", i.id, i.status))
        .collect();
    if left.is_empty() {
        Ok(TeardownOutput {
            deleted: vec![plan.scratch_id.clone()],
        })
    } else {
        Err(OpsError::NotReady(format!(
            "still deleting: {}",
            left.join(", ")
        )))
    }
}
