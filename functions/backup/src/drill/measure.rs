//! Measuring the drill: RTO from the restore's state timestamps, RPO from the restored data or the snapshot.

use opsplane_shared::OpsError;
use opsplane_shared::domain::drill::{Measurement, restore_window};
use serde::Deserialize;

use super::pick::Pick;
use super::validate::DrillPlan;
use super::verify::Verification;
use crate::Deps;

/// The state that requests the restore; RTO starts when it is entered.
pub const RESTORE_STATE: &str = "Restore";
/// The state that polls the restore; RTO ends when it exits.
pub const WAIT_RESTORE_STATE: &str = "WaitRestore";

/// `measure`.
#[derive(Debug, Deserialize)]
pub struct MeasureInput {
    /// `$$.Execution.Id`.
    pub execution: String,
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    pub pick: Pick,
    /// What verification found.
    pub verify: Verification,
}

/// Measures RTO from the execution's events and RPO from the recovery point, against the targets.
pub async fn measure(deps: &Deps, input: MeasureInput) -> Result<Measurement, OpsError> {
    let events = crate::history::state_events(deps.history.as_ref(), &input.execution).await?;
    let (requested, available) = restore_window(&events, RESTORE_STATE, WAIT_RESTORE_STATE)
        .map_err(|e| OpsError::Internal(e.to_string()))?;
    Ok(opsplane_shared::domain::drill::measure(
        requested,
        available,
        input.plan.started_at,
        (input.pick.recovery_point, input.pick.rpo_source),
        input.verify.canary_newest,
        input.plan.targets,
    ))
}
