//! Answering a deployment waiting for a person (`opsplane approve|reject EXECUTION [--reason]`).
//!
//! The pending approval is found by the execution ARN alone (`APPROVAL#<execution>` in the table, written by
//! the provision workflow's approval step with its task token). The decision is taken once (a conditional
//! write from `PENDING`), then sent through the [`Executions`] port: `SendTaskSuccess` resumes the deployment,
//! `SendTaskFailure` with `ApprovalRejected` ends it with nothing changed. Who decided and why is kept in
//! the record and the audit log.

use crate::ports::Executions;
use crate::ports::executions::ExecutionError;
use crate::state::{ApprovalRecord, ApprovalStatus, AuditEvent, StateError, StateStore};
use serde_json::json;
use thiserror::Error;

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The change goes ahead.
    Approve,
    /// The change is abandoned; nothing changes.
    Reject,
}

/// A decision could not be taken.
#[derive(Debug, Error)]
pub enum ApproveError {
    /// The execution never asked for approval.
    #[error(
        "execution {0} is not waiting for approval (no approval record): check the ARN with `opsplane lock status`"
    )]
    NotFound(String),
    /// It was decided already, or the workflow stopped waiting.
    #[error("the approval of {execution} is already {}{}: a decision is taken once", status.as_str(), by.as_deref().map(|b| format!(" (by {b})")).unwrap_or_default())]
    AlreadyDecided {
        /// The execution.
        execution: String,
        /// Its status.
        status: ApprovalStatus,
        /// Who decided.
        by: Option<String>,
    },
    /// The approver named a plan (its SHA-256) other than the one waiting: nothing was decided.
    #[error(
        "the plan waiting for {execution} has SHA-256 {waiting}, not {given}: look at it again (opsplane approve shows it); nothing was decided"
    )]
    PlanMismatch {
        /// The execution.
        execution: String,
        /// The hash of the plan waiting.
        waiting: String,
        /// The hash the approver gave.
        given: String,
    },
    /// The workflow no longer waits on its token (it timed out or was stopped).
    #[error("the workflow no longer waits for this decision; the approval is closed")]
    Gone(#[source] ExecutionError),
    /// The state table could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// Step Functions (or the local engine) refused the call.
    #[error(transparent)]
    Control(ExecutionError),
}

/// Takes the decision on `execution`'s pending approval and resumes or fails it; for the plan whose SHA-256
/// is `plan_sha256` when given: a decision taken on one plan is never applied to another (refused with
/// [`ApproveError::PlanMismatch`], nothing decided).
pub async fn decide(
    state: &StateStore,
    executions: &dyn Executions,
    execution: &str,
    decision: Decision,
    actor: &str,
    reason: Option<&str>,
    plan_sha256: Option<&str>,
) -> Result<ApprovalRecord, ApproveError> {
    let record = state
        .approval(execution)
        .await?
        .ok_or_else(|| ApproveError::NotFound(execution.to_owned()))?;
    if let Some(given) = plan_sha256
        && record.plan_sha256.as_deref() != Some(given)
    {
        return Err(ApproveError::PlanMismatch {
            execution: execution.to_owned(),
            waiting: record
                .plan_sha256
                .clone()
                .unwrap_or_else(|| "(none)".into()),
            given: given.to_owned(),
        });
    }
    let status = match decision {
        Decision::Approve => ApprovalStatus::Approved,
        Decision::Reject => ApprovalStatus::Rejected,
    };
    let already = |r: &ApprovalRecord| ApproveError::AlreadyDecided {
        execution: execution.to_owned(),
        status: r.status,
        by: r.decided_by.clone(),
    };
    if record.status != ApprovalStatus::Pending {
        return Err(already(&record));
    }
    if !state
        .decide_approval(execution, status, actor, reason)
        .await?
    {
        let now = state.approval(execution).await?.unwrap_or(record);
        return Err(already(&now));
    }
    let sent = match decision {
        Decision::Approve => {
            executions
                .send_task_success(
                    &record.task_token,
                    json!({ "approved_by": actor, "reason": reason }),
                )
                .await
        }
        Decision::Reject => {
            let cause = format!(
                "rejected by {actor}: {}; nothing was changed",
                reason.unwrap_or("no reason given")
            );
            executions
                .send_task_failure(&record.task_token, "ApprovalRejected", &cause)
                .await
        }
    };
    let result = match &sent {
        Ok(()) => "ok",
        Err(_) => "workflow_gone",
    };
    let event = AuditEvent::new(
        chrono::Utc::now(),
        actor,
        match decision {
            Decision::Approve => "approval.approve",
            Decision::Reject => "approval.reject",
        },
        Some(record.environment.clone()),
        result,
        json!({ "execution": execution, "reason": reason, "plan_sha256": record.plan_sha256 }),
    );
    state.append_audit(&event).await?;
    match sent {
        Ok(()) => {}
        Err(err @ ExecutionError::TaskGone(_)) => return Err(ApproveError::Gone(err)),
        Err(err) => return Err(ApproveError::Control(err)),
    }
    tracing::info!(execution, actor, ?decision, "approval decided");
    Ok(state.approval(execution).await?.unwrap_or(record))
}
