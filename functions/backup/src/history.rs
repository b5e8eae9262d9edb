//! The state entered/exited events RTO is measured from, read through the [`Executions`] port (Step
//! Functions' history on AWS, the engine's virtual-clock history locally).

use opsplane_shared::OpsError;
use opsplane_shared::domain::drill::StateEvent;
use opsplane_shared::ports::Executions;

/// Every `...StateEntered` and `...StateExited` event of `execution_arn`, oldest first.
pub async fn state_events(
    executions: &dyn Executions,
    execution_arn: &str,
) -> Result<Vec<StateEvent>, OpsError> {
    let events = executions.history(execution_arn).await?;
    Ok(events
        .into_iter()
        .filter_map(|e| {
            let entered = e.is_state_entered();
            if !entered && !e.is_state_exited() {
                return None;
            }
            Some(StateEvent {
                at: e.at,
                state: e.state?,
                entered,
            })
        })
        .collect())
}
