//! Handlers: what a Task calls through the Lambda JSON boundary, what it receives besides its payload,
//! and the error it returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The error a handler returns, as a Rust Lambda reports it: `{"errorType", "errorMessage"}` (read back
/// from an execution's cause too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionError {
    /// The error name workflows match in `Retry`/`Catch`.
    #[serde(rename = "errorType")]
    pub error_type: String,
    /// The message.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl FunctionError {
    /// An error with a type and a message.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        FunctionError {
            error_type: error_type.into(),
            error_message: error_message.into(),
        }
    }
}

/// What a handler receives besides its payload.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub(crate) elapsed_ms: Arc<AtomicU64>,
    /// The task token, for `.waitForTaskToken` tasks.
    pub task_token: Option<String>,
    /// The execution's ARN.
    pub execution_arn: String,
    /// The execution's virtual time when the task was called: what a call the handler makes is timed by
    /// in a world that models time (the local world's AWS).
    pub now: DateTime<Utc>,
}

impl TaskContext {
    /// Declares that the handler took `d` more of virtual time. The engine advances the execution's
    /// clock by it and applies `TimeoutSeconds` to it, so a handler that models a slow call (a 60-second
    /// sleep) costs no real time.
    pub fn advance(&self, d: Duration) {
        self.elapsed_ms
            .fetch_add(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// The virtual time now: when the task was called plus what the handler declared since.
    pub fn virtual_now(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::milliseconds(self.elapsed_ms.load(Ordering::Relaxed) as i64)
    }

    /// The virtual time the handler declared so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms.load(Ordering::Relaxed))
    }
}

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, FunctionError>> + Send>>;

/// A registered handler: the Lambda JSON boundary, payload in, result or error out.
pub type Handler = Arc<dyn Fn(Value, TaskContext) -> HandlerFuture + Send + Sync>;

/// The function name in a Lambda ARN, partial ARN or bare name, qualifier dropped.
pub fn function_name(reference: &str) -> &str {
    let parts: Vec<&str> = reference.split(':').collect();
    match parts.as_slice() {
        // arn:aws:lambda:region:account:function:name[:qualifier]
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        // account:function:name[:qualifier]
        [_, "function", name, ..] => name,
        // name:qualifier
        [name, _] => name,
        _ => reference,
    }
}
