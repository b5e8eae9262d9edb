//! The [`Executions`] port over the local engine: what a lock asks about its holder, what a rollback stops,
//! what approve/reject answer, what dispatch and `run --local` start, and the virtual-clock history a drill
//! measures its RTO from.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use opsplane_shared::future::BoxFuture;
use opsplane_shared::ports::Executions;
use opsplane_shared::ports::executions::{
    ExecutionDescription, ExecutionError, HistoryEvent, Started, execution_arn,
};
use opsplane_statemachines::{Engine, EngineError};
use serde_json::Value;

/// The local engine as the execution service.
#[derive(Clone)]
pub struct EngineExecutions(pub Engine);

fn engine_error(operation: &'static str, err: EngineError) -> ExecutionError {
    match err {
        EngineError::TaskDoesNotExist(token) => ExecutionError::TaskGone(token),
        EngineError::ExecutionDoesNotExist(arn) => ExecutionError::NoExecution(arn),
        EngineError::StateMachineDoesNotExist(arn) => ExecutionError::NoStateMachine(arn),
        other => ExecutionError::service(operation, other),
    }
}

/// One engine history event in the port's shape.
pub fn from_engine(e: &opsplane_statemachines::HistoryEvent) -> HistoryEvent {
    let text = |k: &str| e.details.get(k).and_then(Value::as_str).map(str::to_owned);
    let kind = e.event_type.to_string();
    let names_a_state = kind.ends_with("StateEntered") || kind.ends_with("StateExited");
    HistoryEvent {
        id: e.id as i64,
        previous_id: e.previous_event_id as i64,
        at: e.timestamp,
        state: if names_a_state { text("name") } else { None },
        kind,
        error: text("error"),
        cause: text("cause"),
        timeout_seconds: e.details.get("timeoutInSeconds").and_then(Value::as_u64),
    }
}

/// How long after a `StopExecution` `DescribeExecution` may still answer `RUNNING`, in the caller's virtual
/// time. AWS documents DescribeExecution as eventually consistent ("the results are best effort and may not
/// reflect very recent updates and changes", DescribeExecution API reference); the local world answers the
/// stale status until this much virtual time has passed since the stop.
pub const CONSISTENCY_LAG: chrono::Duration = chrono::Duration::seconds(1);

/// When each execution was stopped through this port, in its caller's virtual time. Keyed by execution ARN
/// (unique per engine and run), shared by every copy of the adapter.
fn stops() -> &'static Mutex<HashMap<String, DateTime<Utc>>> {
    static STOPS: OnceLock<Mutex<HashMap<String, DateTime<Utc>>>> = OnceLock::new();
    STOPS.get_or_init(Default::default)
}

impl Executions for EngineExecutions {
    fn describe<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionDescription, ExecutionError>> {
        Box::pin(async move {
            let d = self
                .0
                .describe_execution(execution_arn)
                .map_err(|e| engine_error("DescribeExecution", e))?;
            let stopped_at = stops()
                .lock()
                .expect("stops lock")
                .get(execution_arn)
                .copied();
            let now = crate::world::virtual_now(&self.0);
            if stopped_at.is_some_and(|at| now < at + CONSISTENCY_LAG) {
                return Ok(ExecutionDescription {
                    status: "RUNNING".to_owned(),
                    output: None,
                    error: None,
                    cause: None,
                });
            }
            Ok(ExecutionDescription {
                status: d.status.as_str().to_owned(),
                output: d.output,
                error: d.error,
                cause: d.cause,
            })
        })
    }

    fn start<'a>(
        &'a self,
        state_machine_arn: &'a str,
        name: &'a str,
        input: &'a Value,
    ) -> BoxFuture<'a, Result<Started, ExecutionError>> {
        Box::pin(async move {
            let arn = execution_arn(state_machine_arn, name);
            if self.0.describe_execution(&arn).is_ok() {
                return Ok(Started {
                    execution_arn: arn,
                    started: false,
                });
            }
            match self
                .0
                .start_execution(state_machine_arn, Some(name.to_owned()), input.clone())
            {
                Ok(execution_arn) => Ok(Started {
                    execution_arn,
                    started: true,
                }),
                Err(EngineError::ExecutionAlreadyExists(existing)) => Ok(Started {
                    execution_arn: existing,
                    started: false,
                }),
                Err(e) => Err(engine_error("StartExecution", e)),
            }
        })
    }

    fn stop<'a>(
        &'a self,
        execution_arn: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecutionError>> {
        Box::pin(async move {
            self.0
                .stop_execution(
                    execution_arn,
                    Some(error.to_owned()),
                    Some(cause.to_owned()),
                )
                .map_err(|e| engine_error("StopExecution", e))?;
            // The engine ends the execution on its own task; once it has, the only stale answer left is
            // the modelled one above, on the virtual clock, so what a caller sees does not depend on how
            // the runtime schedules that task.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.0.wait_for(execution_arn),
            )
            .await;
            let at = crate::world::virtual_now(&self.0);
            // The first stop counts: asking again (a retried task) does not make the answer staler.
            stops()
                .lock()
                .expect("stops lock")
                .entry(execution_arn.to_owned())
                .or_insert(at);
            Ok(())
        })
    }

    fn history<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<HistoryEvent>, ExecutionError>> {
        Box::pin(async move {
            let events = self
                .0
                .history(execution_arn)
                .map_err(|e| engine_error("GetExecutionHistory", e))?;
            Ok(events.iter().map(from_engine).collect())
        })
    }

    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        output: Value,
    ) -> BoxFuture<'a, Result<(), ExecutionError>> {
        Box::pin(async move {
            // Answered at the caller's virtual time: a person who answers later answers later.
            let at = crate::world::virtual_now(&self.0);
            self.0
                .send_task_success_at(task_token, output, Some(at))
                .map_err(|e| engine_error("SendTaskSuccess", e))
        })
    }

    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecutionError>> {
        Box::pin(async move {
            let at = crate::world::virtual_now(&self.0);
            self.0
                .send_task_failure_at(task_token, error, cause, Some(at))
                .map_err(|e| engine_error("SendTaskFailure", e))
        })
    }
}
