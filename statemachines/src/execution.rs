//! Executions as the engine keeps them: status, description, the registered machines and task tokens.
//! The API in `engine` and the interpreter in `runtime` both work on these.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use crate::error::Failure;
use crate::handler::Handler;
use crate::history::HistoryEvent;
use crate::item_reader::ItemReader;
use crate::model::{MachineType, StateMachine};
use crate::probe::Probe;

/// Status of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Still running.
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Exceeded the machine's `TimeoutSeconds`.
    TimedOut,
    /// Stopped by `stop_execution`.
    Aborted,
}

impl Status {
    /// The AWS spelling: `RUNNING`, `SUCCEEDED`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// `DescribeExecution`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Description {
    /// The execution's ARN.
    pub execution_arn: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The execution's name.
    pub name: String,
    /// Current status.
    pub status: Status,
    /// The input.
    pub input: Value,
    /// The output, once SUCCEEDED.
    pub output: Option<Value>,
    /// The error name, once FAILED, TIMED_OUT or ABORTED.
    pub error: Option<String>,
    /// The cause.
    pub cause: Option<String>,
    /// Start (virtual clock; starts at real now).
    pub start_date: DateTime<Utc>,
    /// Stop (virtual clock).
    pub stop_date: Option<DateTime<Utc>>,
}

/// Adds an ended execution's (or state's) outcome to an API answer as AWS shapes it: `output` as JSON
/// text, `error` and `cause` as given, each only when present.
pub(crate) fn outcome_to_api(
    answer: &mut Value,
    output: Option<&Value>,
    error: Option<&str>,
    cause: Option<&str>,
) {
    let fields = [
        ("output", output.map(Value::to_string)),
        ("error", error.map(str::to_owned)),
        ("cause", cause.map(str::to_owned)),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            answer[name] = Value::String(value);
        }
    }
}

pub(crate) struct Machine {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) model: Arc<StateMachine>,
    /// EXPRESS executions keep no history the API can read, and so have no history quota.
    pub(crate) machine_type: MachineType,
}

pub(crate) struct ExecState {
    pub(crate) status: Status,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<String>,
    pub(crate) cause: Option<String>,
    pub(crate) stop_date: Option<DateTime<Utc>>,
}

pub(crate) struct Execution {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) machine: Arc<Machine>,
    pub(crate) input: Value,
    pub(crate) start: DateTime<Utc>,
    pub(crate) state: Mutex<ExecState>,
    pub(crate) history: Mutex<Vec<HistoryEvent>>,
    pub(crate) done: watch::Sender<bool>,
    pub(crate) abort: watch::Sender<Option<Failure>>,
    /// Set once the history reached its quota: the execution fails at its next step.
    pub(crate) history_full: AtomicBool,
    /// Set for a TestState run: the single state's mock, settings and observations.
    pub(crate) probe: Option<Arc<Probe>>,
}

impl Execution {
    /// `DescribeExecution`.
    pub(crate) fn describe(&self) -> Description {
        let st = self.state.lock().expect("state lock");
        Description {
            execution_arn: self.arn.clone(),
            state_machine_arn: self.machine.arn.clone(),
            name: self.name.clone(),
            status: st.status,
            input: self.input.clone(),
            output: st.output.clone(),
            error: st.error.clone(),
            cause: st.cause.clone(),
            start_date: self.start,
            stop_date: st.stop_date,
        }
    }

    /// Resolves once the execution is no longer RUNNING.
    pub(crate) async fn ended(&self) {
        let mut rx = self.done.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    }

    /// `StopExecution`: the execution ends ABORTED with this error and cause (empty: none).
    pub(crate) fn stop(&self, error: impl Into<String>, cause: impl Into<String>) {
        self.abort.send_replace(Some(Failure::new(error, cause)));
    }
}

/// What starting an execution under a name did.
pub(crate) enum Started {
    /// A new execution runs.
    New(Arc<Execution>),
    /// An execution of that name and input existed already (running or not).
    Existing(Arc<Execution>),
}

pub(crate) enum TokenReply {
    /// The task succeeded with this output, answered at this virtual time (if the caller has one).
    Success(Value, Option<DateTime<Utc>>),
    /// The task failed, answered at this virtual time (if the caller has one).
    Failure(Failure, Option<DateTime<Utc>>),
}

pub(crate) struct TokenSlot {
    pub(crate) reply: Option<oneshot::Sender<TokenReply>>,
    pub(crate) heartbeat: watch::Sender<u64>,
}

pub(crate) struct Inner {
    pub(crate) region: String,
    pub(crate) account: String,
    pub(crate) handlers: RwLock<HashMap<String, Handler>>,
    pub(crate) machines: RwLock<HashMap<String, Arc<Machine>>>,
    pub(crate) executions: RwLock<HashMap<String, Arc<Execution>>>,
    pub(crate) tokens: Mutex<HashMap<String, TokenSlot>>,
    pub(crate) item_reader: RwLock<Option<Arc<dyn ItemReader>>>,
    pub(crate) record_history: bool,
    /// Most history events a STANDARD execution may write (`usize::MAX`: no quota).
    pub(crate) history_quota: AtomicUsize,
    /// The latest virtual time any execution has called a task at (epoch ms): [`crate::Engine::now`].
    pub(crate) latest_ms: AtomicI64,
    /// Handler calls that have not returned, which a stopped execution leaves running.
    pub(crate) invocations: crate::runtime::invocation::Invocations,
    /// How many handler calls run at once, when bounded ([`crate::Engine::set_invocation_limit`]).
    pub(crate) invocation_slots: RwLock<Option<Arc<tokio::sync::Semaphore>>>,
}
