//! History events: the event types a state records and the events themselves.

use crate::history::EventType;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn entered_event(t: &str) -> EventType {
    match t {
        "Pass" => EventType::PassStateEntered,
        "Task" => EventType::TaskStateEntered,
        "Choice" => EventType::ChoiceStateEntered,
        "Wait" => EventType::WaitStateEntered,
        "Succeed" => EventType::SucceedStateEntered,
        "Fail" => EventType::FailStateEntered,
        "Parallel" => EventType::ParallelStateEntered,
        _ => EventType::MapStateEntered,
    }
}

pub(super) fn exited_event(t: &str) -> EventType {
    match t {
        "Pass" => EventType::PassStateExited,
        "Task" => EventType::TaskStateExited,
        "Choice" => EventType::ChoiceStateExited,
        "Wait" => EventType::WaitStateExited,
        "Succeed" => EventType::SucceedStateExited,
        "Fail" => EventType::FailStateExited,
        "Parallel" => EventType::ParallelStateExited,
        _ => EventType::MapStateExited,
    }
}

pub(super) struct HistoryEventRef;

impl HistoryEventRef {
    pub(super) fn make(
        id: u64,
        prev: u64,
        at: DateTime<Utc>,
        ty: EventType,
        details: Value,
    ) -> crate::history::HistoryEvent {
        crate::history::HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp: at,
            event_type: ty,
            details,
        }
    }
}
