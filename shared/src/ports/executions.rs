//! The Step Functions port: everything opsplane asks of the execution service, in one trait.
//!
//! A lock's holder is an execution ARN: when that execution has ended its lock is stale and is taken over at
//! once ([`Executions::state`]). A rollback stops an in-flight deployment ([`Executions::stop`]); `opsplane
//! approve|reject` answers the task token a deployment waits on; dispatch and `opsplane run` start
//! executions under idempotent names ([`Executions::start`]); a drill measures its RTO and `opsplane watch`
//! follows progress from the history ([`Executions::history`]).
//!
//! One adapter speaks to Step Functions (`crate::aws::sfn::SfnExecutions`), one to the local engine (the
//! local world's crate).

use chrono::{DateTime, Utc};

use crate::error::{BoxError, OpsError};
use crate::future::BoxFuture;

/// What the execution service says about an execution.
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

/// An execution that exists after a start: new, or the one the same name already had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The execution's ARN.
    pub execution_arn: String,
    /// `false` when an execution of that name already existed and nothing new was started.
    pub started: bool,
}

/// How an execution stands (`DescribeExecution`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionDescription {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// The output, once it succeeded.
    pub output: Option<serde_json::Value>,
    /// The error, once it failed.
    pub error: Option<String>,
    /// The cause, once it failed.
    pub cause: Option<String>,
}

/// One history event, as both worlds report it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// 1-based id.
    pub id: i64,
    /// The event this one follows in its branch (0 for the first).
    pub previous_id: i64,
    /// When (the engine's virtual clock locally).
    pub at: DateTime<Utc>,
    /// AWS's type name, e.g. `TaskStateEntered`.
    pub kind: String,
    /// The state's name, on `*StateEntered` / `*StateExited`.
    pub state: Option<String>,
    /// The error, on failures.
    pub error: Option<String>,
    /// The cause, on failures.
    pub cause: Option<String>,
    /// The task's `TimeoutSeconds`, on `TaskScheduled` / `LambdaFunctionScheduled`.
    pub timeout_seconds: Option<u64>,
}

impl HistoryEvent {
    /// Whether this event is a state being entered.
    pub fn is_state_entered(&self) -> bool {
        self.kind.ends_with("StateEntered")
    }

    /// Whether this event is a state being exited.
    pub fn is_state_exited(&self) -> bool {
        self.kind.ends_with("StateExited")
    }
}

/// A function call an execution made that has not returned, as far as its history tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    /// The Task state that made the call.
    pub state: Option<String>,
    /// When the call was scheduled.
    pub scheduled_at: DateTime<Utc>,
    /// When it has ended at the latest: the Task's `TimeoutSeconds` after it was scheduled, or Lambda's
    /// longest timeout (15 minutes, Lambda quotas) without one.
    pub ends_by: DateTime<Utc>,
}

/// The longest a Lambda invocation runs (Lambda quotas: function timeout, 900 seconds).
const LAMBDA_MAX_TIMEOUT_SECONDS: u64 = 900;

/// The calls of an execution that its history shows scheduled and never ended (succeeded, failed, timed
/// out, or, for a `.waitForTaskToken` task, submitted). Stopping an execution does not stop a function it
/// is running (StopExecution, Step Functions API reference): such a call may still change what it was
/// changing until `ends_by`.
pub fn running_tasks(history: &[HistoryEvent]) -> Vec<RunningTask> {
    use std::collections::HashMap;
    let mut entered: HashMap<i64, Option<String>> = HashMap::new();
    // Scheduled and started events, by id, to the id of the scheduling event.
    let mut scheduled_by: HashMap<i64, i64> = HashMap::new();
    let mut open: Vec<(i64, RunningTask)> = Vec::new();
    for e in history {
        let kind = e.kind.as_str();
        if e.is_state_entered() {
            entered.insert(e.id, e.state.clone());
        } else if kind == "TaskScheduled" || kind == "LambdaFunctionScheduled" {
            let timeout = e.timeout_seconds.unwrap_or(LAMBDA_MAX_TIMEOUT_SECONDS);
            scheduled_by.insert(e.id, e.id);
            open.push((
                e.id,
                RunningTask {
                    state: entered.get(&e.previous_id).cloned().flatten(),
                    scheduled_at: e.at,
                    ends_by: e.at + chrono::Duration::seconds(timeout as i64),
                },
            ));
        } else if let Some(&scheduled) = scheduled_by.get(&e.previous_id) {
            if kind == "TaskStarted" || kind == "LambdaFunctionStarted" {
                scheduled_by.insert(e.id, scheduled);
            } else if kind.starts_with("Task") || kind.starts_with("LambdaFunction") {
                // Succeeded, Failed, TimedOut, Submitted, StartFailed, SubmitFailed, ScheduleFailed.
                open.retain(|(id, _)| *id != scheduled);
            }
        }
    }
    open.into_iter().map(|(_, t)| t).collect()
}

/// A call to the execution service failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The task token is unknown or already answered (the task ended, timed out, or was answered once).
    #[error("task token is no longer valid: {0}")]
    TaskGone(String),
    /// The execution does not exist.
    #[error("execution {0} does not exist")]
    NoExecution(String),
    /// No state machine has that ARN (not deployed, or another account or region).
    #[error("no state machine {0}")]
    NoStateMachine(String),
    /// Not an execution ARN: nothing was asked.
    #[error("{0} is not a Step Functions execution ARN")]
    NotAnExecution(String),
    /// The service refused or failed the call.
    #[error("{operation} failed")]
    Service {
        /// The operation, e.g. `StartExecution`.
        operation: &'static str,
        /// The error.
        #[source]
        source: BoxError,
    },
}

impl ExecutionError {
    /// A service failure of `operation`.
    pub fn service<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ExecutionError::Service {
            operation,
            source: Box::new(err),
        }
    }
}

impl From<ExecutionError> for OpsError {
    fn from(err: ExecutionError) -> Self {
        match err {
            ExecutionError::TaskGone(_)
            | ExecutionError::NoExecution(_)
            | ExecutionError::NoStateMachine(_) => OpsError::ResourceNotFound(err.to_string()),
            ExecutionError::NotAnExecution(_) => OpsError::invalid("execution", err.to_string()),
            ExecutionError::Service { operation, source } => OpsError::Aws { operation, source },
        }
    }
}

/// The execution ARN a state machine gives an execution named `name`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Step Functions limits an error name to 256 characters and a cause to 32,768
/// (`StopExecution`, `SendTaskFailure` API references).
pub fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Starting, following, stopping and answering executions.
pub trait Executions: Send + Sync {
    /// `DescribeExecution`: how the execution named by `execution_arn` stands.
    fn describe<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionDescription, ExecutionError>>;

    /// Whether the execution named by `execution_arn` runs. Never fails: anything unclear (not an execution
    /// ARN, not found, no access, a failed call) is [`ExecutionState::Unknown`].
    fn state<'a>(&'a self, execution_arn: &'a str) -> BoxFuture<'a, ExecutionState> {
        Box::pin(async move {
            match self.describe(execution_arn).await {
                Ok(d) if d.status == "RUNNING" => ExecutionState::Running,
                Ok(d) => ExecutionState::NotRunning { status: d.status },
                Err(err) => {
                    // An execution that does not exist may live in another account or region, or may have
                    // aged out of history: not proof that nothing runs, so the lease decides.
                    let reason = crate::error::redacted_chain(&err);
                    tracing::warn!(execution_arn, %reason, "execution status unknown");
                    ExecutionState::Unknown { reason }
                }
            }
        })
    }

    /// `StartExecution` of `state_machine_arn` as `name` with `input`; a name already used starts nothing and
    /// returns that execution (AWS's name idempotency, whether the first run is open or closed).
    fn start<'a>(
        &'a self,
        state_machine_arn: &'a str,
        name: &'a str,
        input: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Started, ExecutionError>>;

    /// `StopExecution`: ends the execution ABORTED with `error` and `cause`. Stopping one that has already
    /// ended is not an error.
    fn stop<'a>(
        &'a self,
        execution_arn: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecutionError>>;

    /// Every history event of the execution so far, oldest first (`GetExecutionHistory`, all pages).
    fn history<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<HistoryEvent>, ExecutionError>>;

    /// `SendTaskSuccess`: resumes the task waiting on `task_token` with `output`.
    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        output: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ExecutionError>>;

    /// `SendTaskFailure`: fails the task waiting on `task_token` with `error` and `cause`.
    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecutionError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_arn_is_its_machines_with_the_name() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:1:stateMachine:opsplane-backup",
                "n1"
            ),
            "arn:aws:states:eu-west-1:1:execution:opsplane-backup:n1"
        );
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("ééé", 2), "éé");
    }

    fn event(id: i64, previous_id: i64, kind: &str, secs: i64) -> HistoryEvent {
        HistoryEvent {
            id,
            previous_id,
            at: DateTime::from_timestamp(secs, 0).unwrap(),
            kind: kind.into(),
            state: kind.ends_with("StateEntered").then(|| format!("S{id}")),
            error: None,
            cause: None,
            timeout_seconds: kind.ends_with("Scheduled").then_some(330),
        }
    }

    #[test]
    fn a_call_is_running_until_its_task_ends_or_is_submitted() {
        let ended = [
            event(1, 0, "TaskStateEntered", 0),
            event(2, 1, "TaskScheduled", 10),
            event(3, 2, "TaskStarted", 10),
            event(4, 3, "TaskSucceeded", 12),
            event(5, 4, "TaskStateEntered", 12),
            event(6, 5, "TaskScheduled", 12),
            event(7, 6, "TaskStarted", 12),
            event(8, 7, "TaskSubmitted", 13),
        ];
        assert!(running_tasks(&ended).is_empty());
        let mut stopped = ended.to_vec();
        stopped.extend([
            event(9, 8, "TaskStateEntered", 20),
            event(10, 9, "LambdaFunctionScheduled", 20),
            event(11, 10, "LambdaFunctionStarted", 20),
            event(12, 11, "ExecutionAborted", 21),
        ]);
        let running = running_tasks(&stopped);
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].state.as_deref(), Some("S9"));
        assert_eq!(running[0].ends_by.timestamp(), 20 + 330);
        let mut unbounded = stopped.clone();
        unbounded[9].timeout_seconds = None;
        assert_eq!(running_tasks(&unbounded)[0].ends_by.timestamp(), 20 + 900);
    }
}
