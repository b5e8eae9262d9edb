//! Starting a workflow's execution, idempotently, through the [`Executions`] port: the state machine of
//! workflow `w` is `<prefix><w>` (the stack's `StateMachinePrefix`, e.g.
//! `arn:aws:states:<region>:<account>:stateMachine:opsplane-`; the local plane has its own prefix).

use std::sync::Arc;

use opsplane_shared::ports::Executions;
use opsplane_shared::ports::executions::ExecutionError;
pub use opsplane_shared::ports::executions::Started;
use serde_json::Value;
use thiserror::Error;

/// Starting failed.
#[derive(Debug, Error)]
pub enum StartError {
    /// No state machine is deployed for the workflow.
    #[error("no state machine for workflow {0}")]
    UnknownWorkflow(String),
    /// Step Functions (or the engine) refused or failed.
    #[error("starting the execution failed")]
    Service(#[source] ExecutionError),
}

/// Starts workflows by name on the state machines `<prefix><workflow>`.
#[derive(Clone)]
pub struct Starter {
    executions: Arc<dyn Executions>,
    state_machine_prefix: String,
}

impl std::fmt::Debug for Starter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starter")
            .field("state_machine_prefix", &self.state_machine_prefix)
            .finish_non_exhaustive()
    }
}

impl Starter {
    /// Starts through `executions` on the state machines named `<prefix><workflow>`.
    pub fn new(executions: Arc<dyn Executions>, state_machine_prefix: impl Into<String>) -> Self {
        Self {
            executions,
            state_machine_prefix: state_machine_prefix.into(),
        }
    }

    /// Starts `workflow` as `name` with `input`, or finds the execution already named `name`.
    pub async fn start(
        &self,
        workflow: &str,
        name: &str,
        input: &Value,
    ) -> Result<Started, StartError> {
        let machine = format!("{}{workflow}", self.state_machine_prefix);
        self.executions
            .start(&machine, name, input)
            .await
            .map_err(|e| match e {
                ExecutionError::NoStateMachine(_) => {
                    StartError::UnknownWorkflow(workflow.to_owned())
                }
                other => StartError::Service(other),
            })
    }
}
