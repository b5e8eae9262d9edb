//! Executions: whether a lock holder's execution is still running ([`ExecutionStatus`]), and acting on one
//! ([`ExecutionControl`]: stop it, answer its task token), each with its Step Functions adapter. The local
//! engine's adapters live in the CLI's local plane.
//!
//! A lock's holder is an execution ARN. When that execution has ended (failed, aborted, timed out) its lock is
//! stale and may be taken over before the lease runs out, so nobody waits for a lease or runs `force-unlock`.

use std::future::Future;
use std::pin::Pin;

use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;

use crate::error::{BoxError, OpsError};

/// A boxed, sendable future: the return type of the ports' methods, so they can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the execution service says about a holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    /// The execution is running: its lock must be respected until the lease ends.
    Running,
    /// The execution has ended; `status` is the service's word for how (e.g. `ABORTED`, `FAILED`).
    NotRunning {
        /// The terminal status as reported.
        status: String,
    },
    /// The service could not say (not an execution ARN, not found, no access, a failed call). Treated like
    /// [`ExecutionState::Running`]: only the lease may end such a lock.
    Unknown {
        /// Why the status is unknown.
        reason: String,
    },
}

/// Asks the execution service whether an execution is running.
pub trait ExecutionStatus: Send + Sync {
    /// The state of the execution named by `execution_arn`. Never fails: anything unclear is
    /// [`ExecutionState::Unknown`].
    fn state<'a>(&'a self, execution_arn: &'a str) -> BoxFuture<'a, ExecutionState>;
}

/// [`ExecutionStatus`] over Step Functions' `DescribeExecution`.
#[derive(Debug, Clone)]
pub struct SfnExecutionStatus {
    client: aws_sdk_sfn::Client,
}

impl SfnExecutionStatus {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl ExecutionStatus for SfnExecutionStatus {
    fn state<'a>(&'a self, execution_arn: &'a str) -> BoxFuture<'a, ExecutionState> {
        Box::pin(async move {
            if !execution_arn.starts_with("arn:") || !execution_arn.contains(":execution:") {
                return ExecutionState::Unknown {
                    reason: format!("{execution_arn:?} is not a Step Functions execution ARN"),
                };
            }
            match self
                .client
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
            {
                Ok(out) => match out.status() {
                    SfnStatus::Running => ExecutionState::Running,
                    other => ExecutionState::NotRunning {
                        status: other.as_str().to_owned(),
                    },
                },
                Err(err) => {
                    // An execution that does not exist may live in another account or region, or may have
                    // aged out of history: not proof that nothing runs, so the lease decides.
                    let reason = aws_sdk_sfn::error::DisplayErrorContext(&err).to_string();
                    tracing::warn!(execution_arn, %reason, "execution status unknown");
                    ExecutionState::Unknown { reason }
                }
            }
        })
    }
}

/// Acting on an execution failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The task token is unknown or already answered (the task ended, timed out, or was answered once).
    #[error("task token is no longer valid: {0}")]
    TaskGone(String),
    /// The execution does not exist.
    #[error("execution {0} does not exist")]
    NoExecution(String),
    /// The service refused or failed the call.
    #[error("{operation} failed")]
    Service {
        /// The operation.
        operation: &'static str,
        /// The error.
        #[source]
        source: BoxError,
    },
}

impl From<ControlError> for OpsError {
    fn from(err: ControlError) -> Self {
        match err {
            ControlError::TaskGone(_) | ControlError::NoExecution(_) => {
                OpsError::ResourceNotFound(err.to_string())
            }
            ControlError::Service { operation, source } => OpsError::Aws { operation, source },
        }
    }
}

/// Stops executions and answers their task tokens: what a rollback does to an in-flight deployment, and what
/// `opsplane approve|reject` does to one waiting for a person.
pub trait ExecutionControl: Send + Sync {
    /// `StopExecution`: ends the execution ABORTED with `error` and `cause`. Stopping one that has already
    /// ended is not an error.
    fn stop<'a>(
        &'a self,
        execution_arn: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// `SendTaskSuccess`: resumes the task waiting on `task_token` with `output`.
    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        output: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// `SendTaskFailure`: fails the task waiting on `task_token` with `error` and `cause`.
    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>>;
}

/// [`ExecutionControl`] over Step Functions.
#[derive(Debug, Clone)]
pub struct SfnExecutionControl {
    client: aws_sdk_sfn::Client,
}

impl SfnExecutionControl {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

fn service<E>(operation: &'static str, err: E) -> ControlError
where
    E: std::error::Error + Send + Sync + 'static,
{
    ControlError::Service {
        operation,
        source: Box::new(err),
    }
}

/// Step Functions limits a cause to 32768 characters and an error to 256.
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl ExecutionControl for SfnExecutionControl {
    fn stop<'a>(
        &'a self,
        execution_arn: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            match self
                .client
                .stop_execution()
                .execution_arn(execution_arn)
                .error(clip(error, 256))
                .cause(clip(cause, 32_768))
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => match err.as_service_error() {
                    Some(e) if e.is_execution_does_not_exist() => {
                        Err(ControlError::NoExecution(execution_arn.to_owned()))
                    }
                    _ => Err(service("StopExecution", err)),
                },
            }
        })
    }

    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        output: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            match self
                .client
                .send_task_success()
                .task_token(task_token)
                .output(output.to_string())
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => match err.as_service_error() {
                    Some(e) if e.is_task_does_not_exist() || e.is_task_timed_out() => {
                        Err(ControlError::TaskGone(e.to_string()))
                    }
                    _ => Err(service("SendTaskSuccess", err)),
                },
            }
        })
    }

    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            match self
                .client
                .send_task_failure()
                .task_token(task_token)
                .error(clip(error, 256))
                .cause(clip(cause, 32_768))
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => match err.as_service_error() {
                    Some(e) if e.is_task_does_not_exist() || e.is_task_timed_out() => {
                        Err(ControlError::TaskGone(e.to_string()))
                    }
                    _ => Err(service("SendTaskFailure", err)),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_holder_that_is_not_an_execution_arn_is_unknown_without_a_call() {
        // The endpoint is unreachable: answering at all proves no request was made.
        let cfg = crate::Config::local("http://127.0.0.1:1", "t-1", "b-1");
        let clients = crate::aws::Clients::load(&cfg).await;
        let status = SfnExecutionStatus::new(clients.sfn);
        let state = status.state("operator@laptop").await;
        assert!(matches!(state, ExecutionState::Unknown { .. }), "{state:?}");
    }
}
