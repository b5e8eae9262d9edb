//! History events: the event types a state records and the events themselves.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn entered_event(t: &str) -> &'static str {
    match t {
        "Pass" => "PassStateEntered",
        "Task" => "TaskStateEntered",
        "Choice" => "ChoiceStateEntered",
        "Wait" => "WaitStateEntered",
        "Succeed" => "SucceedStateEntered",
        "Fail" => "FailStateEntered",
        "Parallel" => "ParallelStateEntered",
        _ => "MapStateEntered",
    }
}

pub(super) fn exited_event(t: &str) -> &'static str {
    match t {
        "Pass" => "PassStateExited",
        "Task" => "TaskStateExited",
        "Choice" => "ChoiceStateExited",
        "Wait" => "WaitStateExited",
        "Succeed" => "SucceedStateExited",
        "Fail" => "FailStateExited",
        "Parallel" => "ParallelStateExited",
        _ => "MapStateExited",
    }
}

pub(super) struct HistoryEventRef;

impl HistoryEventRef {
    pub(super) fn make(
        id: u64,
        prev: u64,
        at: DateTime<Utc>,
        ty: &'static str,
        details: Value,
    ) -> crate::engine::HistoryEvent {
        crate::engine::HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp: at,
            event_type: ty,
            details,
        }
    }
}
