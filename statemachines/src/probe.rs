//! What the interpreter needs to run one state for the TestState API: the mock that stands in for the
//! state's work, the simulated retry and iteration counts, and where it leaves what it observed
//! (inspection data, the next state, and whether the error was retriable or caught).
//!
//! The interpreter consults a probe only when an execution carries one, so ordinary executions pay a
//! field check. Behaviour follows "Using TestState API to test a state in Step Functions"
//! (https://docs.aws.amazon.com/step-functions/latest/dg/test-state-isolation.html).

use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::error::Failure;

/// What a mock makes the tested state's work return.
#[derive(Debug, Clone, PartialEq)]
pub enum Mock {
    /// The result of the Task's integration, or of the Map or Parallel state as a whole.
    Result(Value),
    /// The error the work raises.
    Error(Failure),
}

/// How the tested state ended when it did not simply succeed or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Ending {
    /// It succeeded, or failed with no retrier or catcher taking the error.
    #[default]
    Plain,
    /// A retrier with attempts left matched the error: the state would run again.
    Retriable,
    /// A catcher took the error.
    Caught,
}

/// The TestState run's settings and observations.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// The mocked work, if any.
    pub(crate) mock: Option<Mock>,
    /// Retries already made by the matching retrier (`stateConfiguration.retrierRetryCount`).
    pub(crate) retrier_retry_count: u32,
    /// Failed Map iterations to simulate (`stateConfiguration.mapIterationFailureCount`).
    pub(crate) map_iteration_failure_count: Option<u64>,
    /// The context object to evaluate `$$` against, replacing the engine's.
    pub(crate) context: Option<Value>,
    /// The name the context object gives the state.
    pub(crate) state_name: String,
    /// Record inspection data (DEBUG and TRACE levels).
    pub(crate) inspect: bool,
    pub(crate) observed: Mutex<Observed>,
}

/// What the run observed.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// `inspectionData`: the state's data after each processing step.
    pub(crate) data: Map<String, Value>,
    /// The state the tested one transitions to.
    pub(crate) next_state: Option<String>,
    /// How it ended.
    pub(crate) ending: Ending,
    /// The error a catcher took.
    pub(crate) caught: Option<Failure>,
}

impl Probe {
    /// Records one inspection field. Data fields are JSON text, as the API returns them.
    pub(crate) fn record(&self, field: &str, value: &Value) {
        if self.inspect {
            self.record_raw(field, Value::String(value.to_string()));
        }
    }

    /// Records one inspection field as it is (numbers, `errorDetails`).
    pub(crate) fn record_raw(&self, field: &str, value: Value) {
        if self.inspect {
            self.observed
                .lock()
                .expect("probe lock")
                .data
                .insert(field.to_string(), value);
        }
    }

    /// Sets how the state ended.
    pub(crate) fn end(&self, ending: Ending) {
        self.observed.lock().expect("probe lock").ending = ending;
    }

    /// Records that a catcher took `failure`.
    pub(crate) fn catch(&self, failure: Failure) {
        let mut o = self.observed.lock().expect("probe lock");
        o.ending = Ending::Caught;
        o.caught = Some(failure);
    }

    /// Sets the state the tested one transitions to.
    pub(crate) fn next(&self, name: &str) {
        self.observed.lock().expect("probe lock").next_state = Some(name.to_string());
    }
}
