//! History events as `GetExecutionHistory` returns them, and the types they take.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One history event, as `GetExecutionHistory` returns it.
#[derive(Debug, PartialEq, Serialize)]
pub struct HistoryEvent {
    /// 1-based id.
    pub id: u64,
    /// The event this one follows (0 for the first).
    pub previous_event_id: u64,
    /// When (virtual clock).
    pub timestamp: DateTime<Utc>,
    /// AWS's type name, e.g. `TaskStateEntered`.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The event's details (`name`, `input`, `output`, `error`, `cause`, `resource`, ...).
    pub details: Value,
}

impl Clone for HistoryEvent {
    fn clone(&self) -> Self {
        HistoryEvent {
            id: self.id,
            previous_event_id: self.previous_event_id,
            timestamp: self.timestamp,
            event_type: self.event_type.duplicate(),
            details: self.details.clone(),
        }
    }
}

/// Declares [`EventType`] from one list, so the variants, their AWS names and [`EventType::ALL`] agree.
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// The type of a history event, serialised (and dereferenced) as AWS's name for it, e.g.
        /// `TaskStateEntered`. See `HistoryEventType` in the Step Functions API reference
        /// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html).
        ///
        /// It is deliberately not `Clone`: it dereferences to its name, so code that reads events as
        /// text (`event_type.ends_with("StateEntered")`, `event_type.to_owned()`) gets a `&str` and a
        /// `String`, as it did when the field was a string.
        #[derive(Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            /// Every event type the engine records.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// AWS's name for it.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(EventType::$variant => stringify!($variant),)*
                }
            }

            /// The same event type (the enum is not `Clone`; see above).
            pub fn duplicate(&self) -> EventType {
                match self {
                    $(EventType::$variant => EventType::$variant,)*
                }
            }
        }
    };
}

event_types! {
    /// An execution started.
    ExecutionStarted,
    /// An execution succeeded.
    ExecutionSucceeded,
    /// An execution failed.
    ExecutionFailed,
    /// An execution exceeded its `TimeoutSeconds`.
    ExecutionTimedOut,
    /// An execution was stopped.
    ExecutionAborted,
    /// A JSONata expression or variable failed to evaluate.
    EvaluationFailed,
    /// A Pass state was entered.
    PassStateEntered,
    /// A Pass state was exited.
    PassStateExited,
    /// A Task state was entered.
    TaskStateEntered,
    /// A Task state was exited.
    TaskStateExited,
    /// A Choice state was entered.
    ChoiceStateEntered,
    /// A Choice state was exited.
    ChoiceStateExited,
    /// A Wait state was entered.
    WaitStateEntered,
    /// A Wait state was exited.
    WaitStateExited,
    /// A Succeed state was entered.
    SucceedStateEntered,
    /// A Succeed state was exited.
    SucceedStateExited,
    /// A Fail state was entered.
    FailStateEntered,
    /// A Fail state was exited.
    FailStateExited,
    /// A Parallel state was entered.
    ParallelStateEntered,
    /// A Parallel state started its branches.
    ParallelStateStarted,
    /// A Parallel state failed.
    ParallelStateFailed,
    /// A Parallel state was exited.
    ParallelStateExited,
    /// A Map state was entered.
    MapStateEntered,
    /// A Map state started its iterations.
    MapStateStarted,
    /// A Map state's iterations all succeeded.
    MapStateSucceeded,
    /// A Map state failed.
    MapStateFailed,
    /// A Map state was exited.
    MapStateExited,
    /// An inline Map iteration started.
    MapIterationStarted,
    /// An inline Map iteration succeeded.
    MapIterationSucceeded,
    /// An inline Map iteration failed.
    MapIterationFailed,
    /// A DISTRIBUTED Map's run started.
    MapRunStarted,
    /// A DISTRIBUTED Map's run succeeded.
    MapRunSucceeded,
    /// A DISTRIBUTED Map's run failed.
    MapRunFailed,
    /// A Lambda function (plain ARN resource) was scheduled.
    LambdaFunctionScheduled,
    /// A Lambda function started.
    LambdaFunctionStarted,
    /// A Lambda function succeeded.
    LambdaFunctionSucceeded,
    /// A Lambda function failed.
    LambdaFunctionFailed,
    /// A Lambda function timed out.
    LambdaFunctionTimedOut,
    /// A service integration task was scheduled.
    TaskScheduled,
    /// A service integration task started.
    TaskStarted,
    /// A service integration task succeeded.
    TaskSucceeded,
    /// A service integration task failed.
    TaskFailed,
    /// A service integration task timed out.
    TaskTimedOut,
    /// A `.waitForTaskToken` task's call returned: the task now waits for its token.
    TaskSubmitted,
}

impl std::ops::Deref for EventType {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_serialise_and_read_as_aws_names() {
        assert_eq!(
            serde_json::to_value(EventType::TaskStateEntered).unwrap(),
            serde_json::json!("TaskStateEntered")
        );
        assert!(EventType::MapIterationFailed.ends_with("Failed"));
        let name: String = EventType::LambdaFunctionScheduled.to_owned();
        assert_eq!(name, "LambdaFunctionScheduled");
        for t in EventType::ALL {
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::json!(t.as_str())
            );
            assert_eq!(&t.duplicate(), t);
        }
    }
}
