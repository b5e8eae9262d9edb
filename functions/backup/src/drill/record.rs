//! Recording the drill's outcome in the state store, fenced by the environment's lock.

use opsplane_shared::OpsError;
use opsplane_shared::domain::drill::Verdict;
use opsplane_shared::state::{DrillRecord, DrillVerdict};
use serde::{Deserialize, Serialize};

use super::report::DrillState;
use crate::Deps;

/// `record-drill`.
#[derive(Debug, Deserialize)]
pub struct RecordInput {
    /// The workflow's state, with the report.
    pub state: DrillState,
    /// The lock's fencing token.
    pub token: u64,
}

/// The record written.
#[derive(Debug, Clone, Serialize)]
pub struct RecordOutput {
    /// The drill id.
    pub id: String,
}

/// Writes the drill's catalog record, fenced by the lock's token.
pub async fn record(deps: &Deps, input: RecordInput) -> Result<RecordOutput, OpsError> {
    let state = &input.state;
    let plan = &state.plan;
    let report = state.report.as_ref().ok_or_else(|| {
        OpsError::invalid("state.report", "the drill is recorded after its report")
    })?;
    let record = DrillRecord {
        environment: plan.environment.clone(),
        id: plan.drill_id.clone(),
        started_at: plan.started_at,
        finished_at: Some(deps.now()),
        instance: Some(plan.instance.clone()),
        snapshot_id: state
            .steps
            .pick
            .as_ref()
            .and_then(|p| p.snapshot_id.clone()),
        rto_seconds: state
            .steps
            .measurement
            .as_ref()
            .map(|m| m.rto_seconds.max(0) as u64),
        rpo_seconds: state
            .steps
            .measurement
            .as_ref()
            .map(|m| m.rpo_seconds.max(0) as u64),
        rto_target_seconds: plan.targets.rto_seconds.max(0) as u64,
        rpo_target_seconds: plan.targets.rpo_seconds.max(0) as u64,
        verdict: match report.verdict {
            Verdict::Passed => DrillVerdict::Met,
            Verdict::TargetMissed => DrillVerdict::Missed,
            Verdict::RestoreFailed => DrillVerdict::Failed,
        },
        report_key: Some(report.json_key.clone()),
    };
    deps.state
        .put(&record, input.token)
        .await
        .map_err(OpsError::from)?;
    Ok(RecordOutput { id: record.id })
}
