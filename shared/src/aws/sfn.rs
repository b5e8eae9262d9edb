//! [`Executions`] over Step Functions: the one place opsplane calls the Step Functions API, with one error
//! mapping and the SDK's paginator for `GetExecutionHistory`.

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryError;
use aws_sdk_sfn::operation::stop_execution::StopExecutionError;

use crate::future::BoxFuture;
use crate::ports::executions::{
    ExecutionDescription, ExecutionError, Executions, HistoryEvent, Started, clip, execution_arn,
};

/// Step Functions through one client.
#[derive(Debug, Clone)]
pub struct SfnExecutions {
    client: aws_sdk_sfn::Client,
}

impl SfnExecutions {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

fn smithy_time(t: &aws_smithy_types::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// The error and cause of a failure event, whichever kind it is.
fn failure_of(e: &aws_sdk_sfn::types::HistoryEvent) -> (Option<String>, Option<String>) {
    let pair =
        |err: Option<&str>, cause: Option<&str>| (err.map(str::to_owned), cause.map(str::to_owned));
    if let Some(d) = e.execution_failed_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.execution_aborted_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.execution_timed_out_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.task_failed_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        return pair(d.error(), d.cause());
    }
    (None, None)
}

/// A refused call about one execution: `NoExecution` when Step Functions does not know it (`missing`
/// reads that off the operation's own error type), the service's error otherwise.
fn about_execution<E>(
    operation: &'static str,
    execution_arn: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
    missing: fn(&E) -> bool,
) -> ExecutionError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(e) if missing(e) => ExecutionError::NoExecution(execution_arn.to_owned()),
        _ => ExecutionError::service(operation, err),
    }
}

/// What a refused task answer means: a token that no longer waits (unknown, answered, timed out) is gone.
fn task_answer_error<E>(
    operation: &'static str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> ExecutionError
where
    E: TaskAnswerError + std::error::Error + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(e) if e.task_gone() => ExecutionError::TaskGone(e.to_string()),
        _ => ExecutionError::service(operation, err),
    }
}

/// `SendTaskSuccess` and `SendTaskFailure` name the same two refusals on two error types.
trait TaskAnswerError {
    fn task_gone(&self) -> bool;
}

impl TaskAnswerError for aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError {
    fn task_gone(&self) -> bool {
        self.is_task_does_not_exist() || self.is_task_timed_out()
    }
}

impl TaskAnswerError for aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError {
    fn task_gone(&self) -> bool {
        self.is_task_does_not_exist() || self.is_task_timed_out()
    }
}

/// One Step Functions history event in the port's shape.
pub fn from_sfn(e: &aws_sdk_sfn::types::HistoryEvent) -> HistoryEvent {
    let (error, cause) = failure_of(e);
    HistoryEvent {
        id: e.id(),
        previous_id: e.previous_event_id(),
        at: smithy_time(e.timestamp()),
        kind: e.r#type().as_str().to_owned(),
        state: e
            .state_entered_event_details()
            .map(|d| d.name().to_owned())
            .or_else(|| e.state_exited_event_details().map(|d| d.name().to_owned())),
        error,
        cause,
        timeout_seconds: e
            .task_scheduled_event_details()
            .and_then(|d| d.timeout_in_seconds())
            .or_else(|| {
                e.lambda_function_scheduled_event_details()
                    .and_then(|d| d.timeout_in_seconds())
            })
            .and_then(|t| u64::try_from(t).ok()),
    }
}

impl Executions for SfnExecutions {
    fn describe<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionDescription, ExecutionError>> {
        Box::pin(async move {
            if !execution_arn.starts_with("arn:") || !execution_arn.contains(":execution:") {
                return Err(ExecutionError::NotAnExecution(execution_arn.to_owned()));
            }
            let out = self
                .client
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
                .map_err(|err| {
                    about_execution(
                        "DescribeExecution",
                        execution_arn,
                        err,
                        DescribeExecutionError::is_execution_does_not_exist,
                    )
                })?;
            Ok(ExecutionDescription {
                status: out.status().as_str().to_owned(),
                output: out.output().and_then(|o| serde_json::from_str(o).ok()),
                error: out.error().map(str::to_owned),
                cause: out.cause().map(str::to_owned),
            })
        })
    }

    fn start<'a>(
        &'a self,
        state_machine_arn: &'a str,
        name: &'a str,
        input: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Started, ExecutionError>> {
        Box::pin(async move {
            let arn = execution_arn(state_machine_arn, name);
            // AWS answers a repeated name with ExecutionAlreadyExists once the first run has closed, and with
            // the running one otherwise (StartExecution API reference): asking first tells the two apart.
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
                Err(e) => return Err(ExecutionError::service("DescribeExecution", e)),
            }
            match self
                .client
                .start_execution()
                .state_machine_arn(state_machine_arn)
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
                    Err(ExecutionError::NoStateMachine(state_machine_arn.to_owned()))
                }
                Err(e) => Err(ExecutionError::service("StartExecution", e)),
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
            self.client
                .stop_execution()
                .execution_arn(execution_arn)
                .error(clip(error, 256))
                .cause(clip(cause, 32_768))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| {
                    about_execution(
                        "StopExecution",
                        execution_arn,
                        err,
                        StopExecutionError::is_execution_does_not_exist,
                    )
                })
        })
    }

    fn history<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<HistoryEvent>, ExecutionError>> {
        Box::pin(async move {
            let mut pages = self
                .client
                .get_execution_history()
                .execution_arn(execution_arn)
                .include_execution_data(false)
                // The largest page AWS serves: a 25,000-event history is 25 calls, not 250.
                .max_results(1000)
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|err| {
                    about_execution(
                        "GetExecutionHistory",
                        execution_arn,
                        err,
                        GetExecutionHistoryError::is_execution_does_not_exist,
                    )
                })?;
                out.extend(page.events().iter().map(from_sfn));
            }
            Ok(out)
        })
    }

    fn send_task_success<'a>(
        &'a self,
        task_token: &'a str,
        output: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ExecutionError>> {
        Box::pin(async move {
            self.client
                .send_task_success()
                .task_token(task_token)
                .output(output.to_string())
                .send()
                .await
                .map(|_| ())
                .map_err(|err| task_answer_error("SendTaskSuccess", err))
        })
    }

    fn send_task_failure<'a>(
        &'a self,
        task_token: &'a str,
        error: &'a str,
        cause: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecutionError>> {
        Box::pin(async move {
            self.client
                .send_task_failure()
                .task_token(task_token)
                .error(clip(error, 256))
                .cause(clip(cause, 32_768))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| task_answer_error("SendTaskFailure", err))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::executions::ExecutionState;

    #[tokio::test]
    async fn a_holder_that_is_not_an_execution_arn_is_unknown_without_a_call() {
        // The endpoint is unreachable: answering at all proves no request was made.
        let cfg = crate::Config::local("http://127.0.0.1:1", "t-1", "b-1");
        let clients = crate::aws::Clients::load(&cfg).await;
        let executions = SfnExecutions::new(clients.sfn);
        let state = executions.state("operator@laptop").await;
        assert!(matches!(state, ExecutionState::Unknown { .. }), "{state:?}");
    }
}
