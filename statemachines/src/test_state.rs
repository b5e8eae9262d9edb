//! The TestState API: runs one state on an input, with its work optionally mocked, and reports its
//! output or error, the state it would go to next, and (at DEBUG and TRACE levels) its data after
//! each processing step.
//!
//! Follows "Using TestState API to test a state in Step Functions"
//! (https://docs.aws.amazon.com/step-functions/latest/dg/test-state-isolation.html) and the `TestState`
//! action of the API reference (https://docs.aws.amazon.com/step-functions/latest/apireference/API_TestState.html):
//! the state runs once; a retrier with attempts left makes it `RETRIABLE`, a catcher `CAUGHT_ERROR`;
//! Pass, Wait, Choice, Succeed and Fail states take no mock; a Map or Parallel state's mocked result
//! must be an array.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::engine::{Engine, Status};
use crate::error::{EngineError, Failure, ValidationError};
use crate::execution::outcome_to_api;
use crate::model;
pub use crate::probe::Mock;
use crate::probe::{Ending, Probe};

/// The name TestState gives a state passed on its own (its error locations read `/States/StateName`).
pub const LONE_STATE_NAME: &str = "StateName";

/// How much TestState reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InspectionLevel {
    /// Status, output, error and next state.
    #[default]
    Info,
    /// Also the data after each processing step (`inspectionData`).
    Debug,
    /// Also HTTP requests and responses of HTTP tasks (the engine has none, so as DEBUG).
    Trace,
}

/// An inspection level that is none of INFO, DEBUG, TRACE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown inspection level \"{0}\": expected INFO, DEBUG or TRACE")]
pub struct UnknownInspectionLevel(pub String);

impl FromStr for InspectionLevel {
    type Err = UnknownInspectionLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "INFO" => Ok(InspectionLevel::Info),
            "DEBUG" => Ok(InspectionLevel::Debug),
            "TRACE" => Ok(InspectionLevel::Trace),
            other => Err(UnknownInspectionLevel(other.to_string())),
        }
    }
}

/// One TestState call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestStateRequest {
    /// A state definition, or a whole state machine with [`TestStateRequest::state_name`] naming the state.
    pub definition: Value,
    /// The state to test within a state machine definition.
    pub state_name: Option<String>,
    /// The state's input.
    pub input: Value,
    /// How much to report.
    pub inspection_level: InspectionLevel,
    /// What the state's work returns instead of running.
    pub mock: Option<Mock>,
    /// Retries the matching retrier already made (`stateConfiguration.retrierRetryCount`).
    pub retrier_retry_count: u32,
    /// Map iterations to count as failed (`stateConfiguration.mapIterationFailureCount`).
    pub map_iteration_failure_count: Option<u64>,
    /// The context object (`$$`) to evaluate against, instead of the engine's.
    pub context: Option<Value>,
}

/// A request that is not a valid TestState call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TestStateError {
    /// The call itself is invalid (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// The definition is not valid ASL (`InvalidDefinition`).
    #[error("Invalid State Machine Definition: {0}")]
    InvalidDefinition(ValidationError),
    /// The engine could not run the state.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl TestStateError {
    /// The error name AWS answers with.
    pub fn error_name(&self) -> &'static str {
        match self {
            TestStateError::Validation(_) => "ValidationException",
            TestStateError::InvalidDefinition(_) => "InvalidDefinition",
            TestStateError::Engine(_) => "InternalError",
        }
    }
}

/// How the tested state ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TestStatus {
    /// It produced an output.
    Succeeded,
    /// It failed and nothing would retry or catch the error.
    Failed,
    /// A retrier with attempts left matched the error.
    Retriable,
    /// A catcher took the error.
    CaughtError,
}

impl TestStatus {
    /// AWS's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            TestStatus::Succeeded => "SUCCEEDED",
            TestStatus::Failed => "FAILED",
            TestStatus::Retriable => "RETRIABLE",
            TestStatus::CaughtError => "CAUGHT_ERROR",
        }
    }
}

/// What TestState answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TestStateResponse {
    /// How the state ended.
    pub status: TestStatus,
    /// Its output (SUCCEEDED, or the catcher's output when CAUGHT_ERROR).
    pub output: Option<Value>,
    /// The error name, unless SUCCEEDED.
    pub error: Option<String>,
    /// The cause, unless SUCCEEDED.
    pub cause: Option<String>,
    /// The state it would go to next.
    pub next_state: Option<String>,
    /// The data after each step, at DEBUG and TRACE levels; data fields are JSON text, as AWS returns them.
    pub inspection_data: Option<Map<String, Value>>,
}

impl TestStateResponse {
    /// The response as the API returns it (`output` as JSON text).
    pub fn to_api(&self) -> Value {
        let mut v = json!({ "status": self.status.as_str() });
        outcome_to_api(
            &mut v,
            self.output.as_ref(),
            self.error.as_deref(),
            self.cause.as_deref(),
        );
        if let Some(n) = &self.next_state {
            v["nextState"] = Value::String(n.clone());
        }
        if let Some(d) = &self.inspection_data {
            v["inspectionData"] = Value::Object(d.clone());
        }
        v
    }
}

/// A TestState request in the API's JSON shape that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A field holds JSON text that does not parse.
    #[error("the field \"{field}\" is not valid JSON: {message}")]
    NotJson {
        /// The field.
        field: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The inspection level is unknown.
    #[error(transparent)]
    Level(#[from] UnknownInspectionLevel),
}

impl TestStateRequest {
    /// Reads a request in the API's shape: `definition`, `input`, `context` and `mock.result` may be JSON
    /// text or JSON; `inspectionLevel`, `stateName`, `mock.errorOutput` and `stateConfiguration` as AWS
    /// names them.
    pub fn from_api(v: &Value) -> Result<Self, RequestError> {
        let json_field =
            |field: &'static str, x: Option<&Value>| -> Result<Option<Value>, RequestError> {
                match x {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => {
                        serde_json::from_str(s)
                            .map(Some)
                            .map_err(|e| RequestError::NotJson {
                                field,
                                message: e.to_string(),
                            })
                    }
                    Some(other) => Ok(Some(other.clone())),
                }
            };
        let mock = match v.get("mock") {
            Some(m) => match (m.get("result"), m.get("errorOutput")) {
                (Some(r), _) => json_field("mock.result", Some(r))?.map(Mock::Result),
                (None, Some(e)) => Some(Mock::Error(Failure::new(
                    e.get("error").and_then(Value::as_str).unwrap_or_default(),
                    e.get("cause").and_then(Value::as_str).unwrap_or_default(),
                ))),
                (None, None) => None,
            },
            None => None,
        };
        let config = v.get("stateConfiguration");
        Ok(TestStateRequest {
            definition: json_field("definition", v.get("definition"))?.unwrap_or(Value::Null),
            state_name: v
                .get("stateName")
                .and_then(Value::as_str)
                .map(str::to_string),
            input: json_field("input", v.get("input"))?.unwrap_or_else(|| json!({})),
            inspection_level: match v.get("inspectionLevel").and_then(Value::as_str) {
                Some(l) => l.parse()?,
                None => InspectionLevel::Info,
            },
            mock,
            retrier_retry_count: config
                .and_then(|c| c.get("retrierRetryCount"))
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32,
            map_iteration_failure_count: config
                .and_then(|c| c.get("mapIterationFailureCount"))
                .and_then(Value::as_u64),
            context: json_field("context", v.get("context"))?,
        })
    }
}

/// The state to run: its name, its definition, and the query language it inherits.
struct Target {
    name: String,
    state: Map<String, Value>,
    query_language: Option<Value>,
}

fn target(req: &TestStateRequest) -> Result<Target, TestStateError> {
    let not_found = || TestStateError::Validation("State not found in definition".into());
    let def = req.definition.as_object();
    let is_machine = def.is_some_and(|d| d.contains_key("States") || d.contains_key("StartAt"));
    if !is_machine {
        if req.state_name.is_some() {
            return Err(not_found());
        }
        let state = def.cloned().ok_or_else(|| {
            TestStateError::Validation("The definition must be a JSON object".into())
        })?;
        return Ok(Target {
            name: LONE_STATE_NAME.to_string(),
            state,
            query_language: None,
        });
    }
    // A whole state machine is validated as a whole first, as CreateStateMachine would.
    model::parse_value(&req.definition).map_err(TestStateError::InvalidDefinition)?;
    let d = def.expect("checked to be an object");
    let name = match &req.state_name {
        Some(n) => n.clone(),
        None => d
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(not_found)?
            .to_string(),
    };
    let state = d
        .get("States")
        .and_then(|s| s.get(&name))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(not_found)?;
    Ok(Target {
        name,
        state,
        query_language: d.get("QueryLanguage").cloned(),
    })
}

/// The states a state may go to: `Next`, `Default`, and the `Next` of its choices and catchers.
fn transitions(state: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(n) = v.and_then(Value::as_str)
            && !out.iter().any(|o| o == n)
        {
            out.push(n.to_string());
        }
    };
    add(state.get("Next"));
    add(state.get("Default"));
    for list in ["Choices", "Catch"] {
        for item in state
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(item.get("Next"));
        }
    }
    out
}

fn check_mock(state: &Map<String, Value>, mock: &Mock) -> Result<(), TestStateError> {
    let t = state
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match t {
        "Pass" | "Wait" | "Choice" | "Succeed" | "Fail" => Err(TestStateError::Validation(
            format!("State type '{t}' is not supported when a mock is specified"),
        )),
        "Map" | "Parallel" if matches!(mock, Mock::Result(v) if !v.is_array()) => Err(
            TestStateError::Validation("Mocked result must be an array.".into()),
        ),
        _ => Ok(()),
    }
}

/// Runs one state as TestState does, on `engine` (whose handlers serve unmocked Tasks).
pub async fn test_state(
    engine: &Engine,
    req: &TestStateRequest,
) -> Result<TestStateResponse, TestStateError> {
    let Target {
        name,
        state,
        query_language,
    } = target(req)?;
    if let Some(m) = &req.mock {
        check_mock(&state, m)?;
    }
    // The state runs inside a machine of its own; the states it may go to are stand-ins the run
    // never enters (it stops after the tested state and reports where it would go).
    let mut states = Map::new();
    for t in transitions(&state) {
        states.insert(t, json!({"Type": "Succeed"}));
    }
    states.insert(name.clone(), Value::Object(state));
    let mut machine = json!({"StartAt": name, "States": states});
    if let Some(q) = query_language {
        machine["QueryLanguage"] = q;
    }
    let machine_name = format!("test-state-{}", uuid::Uuid::new_v4());
    let arn = engine
        .register_state_machine(&machine_name, &machine.to_string(), &HashMap::new())
        .map_err(|e| match e {
            EngineError::InvalidDefinition(v) => TestStateError::InvalidDefinition(v),
            other => TestStateError::Engine(other),
        })?;
    let probe = Arc::new(Probe {
        mock: req.mock.clone(),
        retrier_retry_count: req.retrier_retry_count,
        map_iteration_failure_count: req.map_iteration_failure_count,
        context: req.context.clone(),
        state_name: name,
        inspect: req.inspection_level != InspectionLevel::Info,
        observed: Default::default(),
    });
    let exec = engine.start_with(&arn, None, req.input.clone(), Some(probe.clone()))?;
    let d = engine.wait_for(&exec).await?;
    let observed = std::mem::take(&mut *probe.observed.lock().expect("probe lock"));
    let inspection_data = probe.inspect.then_some(observed.data);
    let (status, output, error, cause) = match (observed.ending, d.status) {
        (Ending::Caught, _) => {
            let f = observed.caught.unwrap_or_else(|| Failure::new("", ""));
            (
                TestStatus::CaughtError,
                d.output,
                Some(f.error),
                Some(f.cause),
            )
        }
        (Ending::Retriable, _) => (TestStatus::Retriable, None, d.error, d.cause),
        (Ending::Plain, Status::Succeeded) => (TestStatus::Succeeded, d.output, None, None),
        (Ending::Plain, _) => (TestStatus::Failed, None, d.error, d.cause),
    };
    Ok(TestStateResponse {
        status,
        next_state: if status == TestStatus::Failed || status == TestStatus::Retriable {
            None
        } else {
            observed.next_state
        },
        output,
        error,
        cause,
        inspection_data,
    })
}

#[cfg(test)]
mod tests;
