//! Starting executions, idempotently: the port, Step Functions, and (feature `local`) the local engine.

#[cfg(feature = "local")]
use std::collections::HashMap;

use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::Value;
use thiserror::Error;

use crate::jwt::BoxFuture;

/// An execution that exists after a start: new, or the one the same name already had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The execution's ARN.
    pub execution_arn: String,
    /// `false` when an execution of that name already existed and nothing new was started.
    pub started: bool,
}

/// Starting failed.
#[derive(Debug, Error)]
pub enum StartError {
    /// No state machine is deployed for the workflow.
    #[error("no state machine for workflow {0:?}")]
    UnknownWorkflow(String),
    /// Step Functions (or the engine) refused or failed.
    #[error("{operation} failed: {message}")]
    Service {
        /// The operation, e.g. `StartExecution`.
        operation: &'static str,
        /// What it said.
        message: String,
    },
}

/// Starts a workflow's execution under a name; a name already used starts nothing and returns that execution.
pub trait Executions: Send + Sync {
    /// Starts `workflow` as `name` with `input`, or finds the execution named `name`.
    fn start<'a>(
        &'a self,
        workflow: &'a str,
        name: &'a str,
        input: &'a Value,
    ) -> BoxFuture<'a, Result<Started, StartError>>;
}

/// The execution ARN a state machine gives an execution named `name`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Step Functions: the state machine of workflow `w` is `<prefix><w>` (e.g. `arn:...:stateMachine:opsplane-`).
#[derive(Debug, Clone)]
pub struct SfnExecutions {
    client: aws_sdk_sfn::Client,
    state_machine_prefix: String,
}

impl SfnExecutions {
    /// Step Functions through `client`, state machines named `<prefix><workflow>`.
    pub fn new(client: aws_sdk_sfn::Client, state_machine_prefix: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_prefix: state_machine_prefix.into(),
        }
    }
}

impl Executions for SfnExecutions {
    fn start<'a>(
        &'a self,
        workflow: &'a str,
        name: &'a str,
        input: &'a Value,
    ) -> BoxFuture<'a, Result<Started, StartError>> {
        Box::pin(async move {
            let machine = format!("{}{workflow}", self.state_machine_prefix);
            let arn = execution_arn(&machine, name);
            // AWS answers a repeated name with ExecutionAlreadyExists once the first run has closed, and with
            // the running one otherwise: asking first tells the two apart.
            match self
                .client
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
            {
                Ok(_) => {
                    return Ok(Started {
                        execution_arn: arn,
                        started: false,
                    });
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_execution_does_not_exist()) => {}
                Err(e) => {
                    return Err(StartError::Service {
                        operation: "DescribeExecution",
                        message: DisplayErrorContext(&e).to_string(),
                    });
                }
            }
            match self
                .client
                .start_execution()
                .state_machine_arn(&machine)
                .name(name)
                .input(input.to_string())
                .send()
                .await
            {
                Ok(out) => Ok(Started {
                    execution_arn: out.execution_arn().to_owned(),
                    started: true,
                }),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_execution_already_exists()) =>
                {
                    Ok(Started {
                        execution_arn: arn,
                        started: false,
                    })
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
                {
                    Err(StartError::UnknownWorkflow(workflow.to_owned()))
                }
                Err(e) => Err(StartError::Service {
                    operation: "StartExecution",
                    message: DisplayErrorContext(&e).to_string(),
                }),
            }
        })
    }
}

/// The local engine, with the state machine ARN of each workflow.
#[cfg(feature = "local")]
#[derive(Debug, Clone)]
pub struct EngineExecutions {
    engine: opsplane_statemachines::Engine,
    machines: HashMap<String, String>,
}

#[cfg(feature = "local")]
impl EngineExecutions {
    /// Executions on `engine`, workflow name → state machine ARN.
    pub fn new(engine: opsplane_statemachines::Engine, machines: HashMap<String, String>) -> Self {
        Self { engine, machines }
    }
}

#[cfg(feature = "local")]
impl Executions for EngineExecutions {
    fn start<'a>(
        &'a self,
        workflow: &'a str,
        name: &'a str,
        input: &'a Value,
    ) -> BoxFuture<'a, Result<Started, StartError>> {
        Box::pin(async move {
            let machine = self
                .machines
                .get(workflow)
                .ok_or_else(|| StartError::UnknownWorkflow(workflow.to_owned()))?;
            let arn = execution_arn(machine, name);
            if self.engine.describe_execution(&arn).is_ok() {
                return Ok(Started {
                    execution_arn: arn,
                    started: false,
                });
            }
            match self
                .engine
                .start_execution(machine, Some(name.to_owned()), input.clone())
            {
                Ok(execution_arn) => Ok(Started {
                    execution_arn,
                    started: true,
                }),
                Err(opsplane_statemachines::EngineError::ExecutionAlreadyExists(existing)) => {
                    Ok(Started {
                        execution_arn: existing,
                        started: false,
                    })
                }
                Err(e) => Err(StartError::Service {
                    operation: "StartExecution",
                    message: e.to_string(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_follow_the_state_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:1:stateMachine:opsplane-provision",
                "gh-1"
            ),
            "arn:aws:states:eu-west-1:1:execution:opsplane-provision:gh-1"
        );
    }
}
