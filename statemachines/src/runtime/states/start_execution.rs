//! The `arn:aws:states:::states:startExecution` integration, built into the engine: a Task starts an
//! execution of another registered state machine on the same engine ("Start a new AWS Step Functions
//! state machine from a running execution",
//! https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html).
//!
//! - Request Response: the `StartExecution` answer, `{"ExecutionArn", "StartDate"}` with the SDK's
//!   response metadata, as soon as the child has started.
//! - `.sync`: waits for the child's end and returns its `DescribeExecution` answer (`Input` and
//!   `Output` as JSON text); `.sync:2` returns the same with `Input` and `Output` as JSON.
//!
//! The child starts at the Task's virtual time and, waited for, moves the Task's clock to its stop date
//! (through [`TaskContext::advance`], so the Task's `TimeoutSeconds` applies to it). A child that ends
//! FAILED, TIMED_OUT or ABORTED fails the Task with `States.TaskFailed`, its cause the child's
//! description as JSON text.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::error::{EngineError, Failure, names};
use crate::execution::{Execution, Started, Status};
use crate::handler::{FunctionError, TaskContext};
use crate::runtime::described::{Shape, described};
use crate::runtime::runner::Runner;

/// The resource, `.waitForTaskToken` already taken off.
const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

/// How the Task waits for the child.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern {
    /// Request Response: the child has started.
    Request,
    /// `.sync`: the child has ended; its output as JSON text.
    Sync,
    /// `.sync:2`: the child has ended; its output as JSON.
    Sync2,
}

/// The pattern of a `states:startExecution` resource; `None` for another resource.
pub(super) fn pattern(base: &str) -> Option<Pattern> {
    match base.strip_prefix(START_EXECUTION)? {
        "" => Some(Pattern::Request),
        ".sync" => Some(Pattern::Sync),
        ".sync:2" => Some(Pattern::Sync2),
        _ => None,
    }
}

/// What the Task waits on, and for `.sync` the `StartExecution` answer its `TaskSubmitted` event shows.
pub(super) type Call = (
    BoxFuture<'static, Result<Value, FunctionError>>,
    Option<Value>,
);

impl Runner {
    /// Starts the child execution the Task's `Parameters` (`Arguments`) describe: `StateMachineArn`,
    /// `Input` (a JSON value, or JSON text) and an optional `Name`.
    pub(super) fn start_execution(
        &self,
        pattern: Pattern,
        task: &str,
        args: &Value,
        ctx: &TaskContext,
    ) -> Result<Call, Failure> {
        let engine = Engine {
            inner: self.inner.clone(),
        };
        let arn = args
            .get("StateMachineArn")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Failure::runtime(format!(
                    "The task '{task}' of resource states:startExecution needs the parameter StateMachineArn"
                ))
            })?;
        // StartExecution takes its input as JSON text; the integration also takes a JSON value, and an
        // absent input is the empty object (API_StartExecution: "you still must include the two braces").
        let input = match args.get("Input") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
                service_error(
                    names::SFN_INVALID_EXECUTION_INPUT,
                    "InvalidExecutionInput",
                    &format!("Invalid Execution Input: {e}"),
                )
            })?,
            Some(v) => v.clone(),
        };
        let name = match args.get("Name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) if valid_name(n) => Some(n.clone()),
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_string);
                return Err(service_error(
                    names::SFN_INVALID_NAME,
                    "InvalidName",
                    &format!("Invalid Name: '{shown}'"),
                ));
            }
        };
        let machine = engine.machine(arn).map_err(|_| {
            service_error(
                names::SFN_STATE_MACHINE_DOES_NOT_EXIST,
                "StateMachineDoesNotExist",
                &format!("State Machine Does Not Exist: '{arn}'"),
            )
        })?;
        let at = ctx.now;
        let start = move || -> Result<_, Failure> {
            let exists = |arn: &str| {
                service_error(
                    names::SFN_EXECUTION_ALREADY_EXISTS,
                    "ExecutionAlreadyExists",
                    &format!("Execution Already Exists: '{arn}'"),
                )
            };
            // A name in use is the same execution only while it is open and was started with the same
            // input; a closed one's name cannot be used again (API_StartExecution, `name`).
            match engine.start_at(machine, name, input, at, None) {
                Ok(Started::New(e)) => Ok(e),
                Ok(Started::Existing(e)) if e.describe().status == Status::Running => Ok(e),
                Ok(Started::Existing(e)) => Err(exists(&e.arn)),
                Err(EngineError::ExecutionAlreadyExists(a)) => Err(exists(&a)),
                Err(e) => Err(Failure::runtime(e.to_string())),
            }
        };
        let started = |child: &Execution| {
            json!({
                "ExecutionArn": child.arn,
                "StartDate": child.start.timestamp_millis(),
            })
        };
        if pattern == Pattern::Request {
            // Started when the Task makes its call: a `.waitForTaskToken` child that answers at once
            // finds its task already waiting for the token.
            let ctx = ctx.clone();
            let call = async move {
                let child = start().map_err(|f| FunctionError::new(f.error, f.cause))?;
                Ok(with_sdk_metadata(started(&child), &ctx))
            };
            return Ok((call.boxed(), None));
        }
        let child = start()?;
        let submitted = started(&child);
        let shape = Shape {
            parsed: pattern == Pattern::Sync2,
            iso_dates: false,
            map_child: false,
        };
        let ctx = ctx.clone();
        let wait = async move {
            child.ended().await;
            let d = child.describe();
            let ran = d.stop_date.map_or(0, |t| (t - ctx.now).num_milliseconds());
            if ran > 0 {
                ctx.advance(Duration::from_millis(ran as u64));
            }
            let answer = described(&d, shape);
            if d.status == Status::Succeeded {
                Ok(answer)
            } else {
                Err(FunctionError::new(names::TASK_FAILED, answer.to_string()))
            }
        };
        Ok((wait.boxed(), Some(submitted)))
    }
}

/// An error of the Step Functions API as an optimised integration reports it: the error named
/// `StepFunctions.<Code>Exception`, the cause the service's message and the SDK's request details.
fn service_error(error: &str, code: &str, message: &str) -> Failure {
    Failure::new(
        error,
        format!(
            "{message} (Service: AWSStepFunctions; Status Code: 400; Error Code: {code}; Request ID: {}; Proxy: null)",
            uuid::Uuid::new_v4()
        ),
    )
}

/// Whether Step Functions accepts `name` for an execution: 1 to 80 characters, none of them
/// whitespace, `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /` or a control character
/// (API_StartExecution, `name`).
fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=80).contains(&count)
        && !name.chars().any(|c| {
            c.is_whitespace()
                || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
                || (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
        })
}

/// The SDK's response metadata a request-response integration adds to the API's answer, as recorded
/// on AWS for `states:startExecution`.
fn with_sdk_metadata(mut answer: Value, ctx: &TaskContext) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    // The HTTP body: `{"executionArn": ..., "startDate": <epoch seconds>}`.
    let body = json!({
        "executionArn": answer["ExecutionArn"],
        "startDate": answer["StartDate"].as_i64().unwrap_or_default() as f64 / 1000.0,
    });
    let len = body.to_string().len().to_string();
    let date = ctx.now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    answer["SdkHttpMetadata"] = json!({
        "AllHttpHeaders": {
            "Content-Length": [len],
            "Content-Type": ["application/x-amz-json-1.0"],
            "Date": [date],
            "connection": ["keep-alive"],
            "x-amzn-RequestId": [request_id],
        },
        "HttpHeaders": {
            "Content-Length": len,
            "Content-Type": "application/x-amz-json-1.0",
            "Date": date,
            "connection": "keep-alive",
            "x-amzn-RequestId": request_id,
        },
        "HttpStatusCode": 200,
    });
    answer["SdkResponseMetadata"] = json!({"RequestId": request_id});
    // AWS's order: ExecutionArn, SdkHttpMetadata, SdkResponseMetadata, StartDate.
    let start = answer
        .as_object_mut()
        .and_then(|m| m.remove("StartDate"))
        .unwrap_or_default();
    answer["StartDate"] = start;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_names() {
        assert!(pattern("arn:aws:states:::states:startExecution") == Some(Pattern::Request));
        assert!(pattern("arn:aws:states:::states:startExecution.sync") == Some(Pattern::Sync));
        assert!(pattern("arn:aws:states:::states:startExecution.sync:2") == Some(Pattern::Sync2));
        assert!(pattern("arn:aws:states:::sns:publish").is_none());
        assert!(valid_name("run-42_a"));
        assert!(!valid_name("has space"));
        assert!(!valid_name("a:b"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"x".repeat(81)));
    }
}
