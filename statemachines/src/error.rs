//! The engine's errors: definition validation, API misuse, and the runtime failures a workflow sees as
//! Step Functions error names.

use serde_json::Value;

/// Error names Step Functions raises itself.
pub mod names {
    /// Matches every error name (except `States.Runtime`) in `Retry` and `Catch`.
    pub const ALL: &str = "States.ALL";
    /// A task failed; in `Retry`/`Catch` it matches everything but `States.Timeout`.
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A task ran longer than `TimeoutSeconds` or missed its heartbeat.
    pub const TIMEOUT: &str = "States.Timeout";
    /// A task missed its `HeartbeatSeconds`.
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    /// An unrecoverable runtime error (bad path, wrong type); never retried nor caught.
    pub const RUNTIME: &str = "States.Runtime";
    /// A state's output exceeded 256 KiB.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A JSONata expression failed or produced an unusable value.
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    /// No Choice rule matched and there is no `Default`.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// An intrinsic function failed.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// A Parallel or Map branch failed.
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    /// A distributed Map exceeded its tolerated failure threshold.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A distributed Map's `ItemReader` failed.
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    /// A DISTRIBUTED Map's `ResultWriter` could not write the Map Run's results to S3 ("ResultWriter
    /// (Map)", https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
    /// The task's resource could not be invoked.
    pub const PERMISSIONS: &str = "States.Permissions";
    /// `states:startExecution` named an execution that exists with another input, or that has ended
    /// (`StartExecution`, https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
    /// An optimised integration reports a service error as `<Service>.<Code>Exception`.
    pub const SFN_EXECUTION_ALREADY_EXISTS: &str = "StepFunctions.ExecutionAlreadyExistsException";
    /// `states:startExecution` named a state machine that does not exist.
    pub const SFN_STATE_MACHINE_DOES_NOT_EXIST: &str =
        "StepFunctions.StateMachineDoesNotExistException";
    /// `states:startExecution` was given an `Input` string that is not JSON.
    pub const SFN_INVALID_EXECUTION_INPUT: &str = "StepFunctions.InvalidExecutionInputException";
    /// `states:startExecution` was given a `Name` Step Functions does not accept.
    pub const SFN_INVALID_NAME: &str = "StepFunctions.InvalidNameException";
    /// A state's `ResultPath` cannot be applied to its input (e.g. a field set inside a string). AWS
    /// names it in "Error handling in Step Functions"
    /// (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html); unlike
    /// `States.Runtime`, `Retry` and `Catch` rules (`States.ALL` included) see it.
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
}

/// Most events an execution's history holds: a STANDARD execution that would write more fails
/// ("Step Functions service quotas": maximum execution history size, 25,000 events,
/// https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
pub const MAX_HISTORY_EVENTS: usize = 25_000;

/// Largest state input/output Step Functions accepts, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A failure raised inside a running workflow: an error name and a cause, as `Catch` sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The error name, e.g. `States.Timeout` or a Lambda's `errorType`.
    pub error: String,
    /// The human-readable cause.
    pub cause: String,
}

impl Failure {
    /// A failure with the given name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// A `States.Runtime` failure.
    pub fn runtime(cause: impl Into<String>) -> Self {
        Failure::new(names::RUNTIME, cause)
    }

    /// A `States.QueryEvaluationError` failure.
    pub fn query(cause: impl Into<String>) -> Self {
        Failure::new(names::QUERY_EVALUATION_ERROR, cause)
    }

    /// A `States.IntrinsicFailure` failure.
    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Failure::new(names::INTRINSIC_FAILURE, cause)
    }

    /// The error output a `Catch` passes on: `{"Error", "Cause"}`.
    pub fn to_output(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("Error".into(), Value::String(self.error.clone()));
        m.insert("Cause".into(), Value::String(self.cause.clone()));
        Value::Object(m)
    }
}

/// A definition that Step Functions would reject.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    /// The text is not JSON, or not a JSON object.
    #[error("the definition is not a valid JSON object: {0}")]
    NotJson(String),
    /// A field is missing, has the wrong type, or may not appear where it does.
    #[error("{location}: {message}")]
    Schema {
        /// Where: `State "Foo": field "Next"` or `the definition`.
        location: String,
        /// What is wrong.
        message: String,
        /// The state, when the problem is in one.
        state: Option<String>,
        /// The field (`Next`, `Catch.Next`), when the problem is in one.
        field: Option<String>,
    },
    /// Several problems at once.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<ValidationError>),
}

impl ValidationError {
    /// A problem with one field of one state.
    pub fn field(state: &str, field: &str, message: impl Into<String>) -> Self {
        ValidationError::Schema {
            location: format!("State \"{state}\": field \"{field}\""),
            message: message.into(),
            state: Some(state.to_string()),
            field: Some(field.to_string()),
        }
    }

    /// A problem with one state as a whole.
    pub fn state(state: &str, message: impl Into<String>) -> Self {
        ValidationError::Schema {
            location: format!("State \"{state}\""),
            message: message.into(),
            state: Some(state.to_string()),
            field: None,
        }
    }

    /// A problem with the top level of the definition.
    pub fn top(field: &str, message: impl Into<String>) -> Self {
        ValidationError::Schema {
            location: format!("the definition: field \"{field}\""),
            message: message.into(),
            state: None,
            field: Some(field.to_string()),
        }
    }

    /// Every individual problem.
    pub fn flatten(&self) -> Vec<ValidationError> {
        match self {
            ValidationError::Many(v) => v.iter().flat_map(|e| e.flatten()).collect(),
            e => vec![e.clone()],
        }
    }
}

/// Errors of the engine's API (not of the workflow).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The definition is invalid.
    #[error("invalid definition: {0}")]
    InvalidDefinition(#[from] ValidationError),
    /// A `${Name}` in the definition has no substitution.
    #[error("the definition uses ${{{0}}} but no substitution was given for it")]
    MissingSubstitution(String),
    /// No state machine has this ARN.
    #[error("no state machine {0}")]
    StateMachineDoesNotExist(String),
    /// No execution has this ARN.
    #[error("no execution {0}")]
    ExecutionDoesNotExist(String),
    /// `StartSyncExecution` on a STANDARD state machine, which AWS does not support.
    #[error("state machine {0} is STANDARD: StartSyncExecution runs EXPRESS state machines only")]
    StateMachineTypeNotSupported(String),
    /// `GetExecutionHistory` on an EXPRESS execution, which AWS does not support.
    #[error("execution {0} belongs to an EXPRESS state machine: its history is not kept")]
    ExpressHistory(String),
    /// An execution with this name exists with a different input.
    #[error("execution {0} already exists with a different input")]
    ExecutionAlreadyExists(String),
    /// The task token is unknown or its task already finished.
    #[error("task token {0} is not known or its task already finished")]
    TaskDoesNotExist(String),
    /// The output sent with `send_task_success` is too large.
    #[error("task output exceeds {MAX_PAYLOAD_BYTES} bytes")]
    PayloadTooLarge,
}
