//! Whether a lock holder's execution is still running: the port and its Step Functions adapter.
//!
//! A lock's holder is an execution ARN. When that execution has ended (failed, aborted, timed out) its lock is
//! stale and may be taken over before the lease runs out, so nobody waits for a lease or runs `force-unlock`.

use std::future::Future;
use std::pin::Pin;

use aws_sdk_sfn::types::ExecutionStatus as SfnStatus;

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
