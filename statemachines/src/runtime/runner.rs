//! The interpreter's state: the runner of one execution, its lines of execution (branches), when a
//! state was entered, and the history events it records.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::Failure;
use crate::execution::{Execution, Inner};
use crate::history::EventType;
use crate::probe::Probe;
use crate::runtime::history::HistoryEventRef;
use crate::runtime::scope::Scope;

/// One line of execution.
pub(crate) struct Branch {
    pub(super) now: DateTime<Utc>,
    pub(super) scope: Arc<Scope>,
    pub(super) prev_event: u64,
    /// False in an EXPRESS execution, whose history AWS does not keep.
    pub(super) record: bool,
}

pub(crate) struct Runner {
    pub(super) inner: Arc<Inner>,
    pub(super) exec: Arc<Execution>,
}

/// When a state was entered: virtual time and the id of its `...StateEntered` event (0 without history).
#[derive(Clone, Copy)]
pub(super) struct Entered {
    pub(super) at: DateTime<Utc>,
    pub(super) id: u64,
}

/// Forgets a task token when its task ends, however it ends (answered, timed out, or stopped).
pub(super) struct TokenGuard<'a> {
    pub(super) inner: &'a Inner,
    pub(super) token: &'a str,
}

impl Drop for TokenGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut tokens) = self.inner.tokens.lock() {
            tokens.remove(self.token);
        }
    }
}

pub(super) type StepResult = Result<(Value, Option<usize>), Failure>;

impl Runner {
    pub(super) fn last_event_id(&self) -> u64 {
        self.exec.history.lock().expect("history lock").len() as u64
    }

    pub(super) fn event(&self, br: &mut Branch, event_type: EventType, details: Value) {
        if !self.inner.record_history || !br.record {
            return;
        }
        let mut h = self.exec.history.lock().expect("history lock");
        // The last slot under the quota is kept for the event that ends the execution.
        let ends = matches!(
            event_type,
            EventType::ExecutionSucceeded
                | EventType::ExecutionFailed
                | EventType::ExecutionTimedOut
                | EventType::ExecutionAborted
        );
        if !ends && h.len() + 1 >= self.inner.history_quota.load(Ordering::Relaxed) {
            self.exec.history_full.store(true, Ordering::Relaxed);
            return;
        }
        let id = h.len() as u64 + 1;
        h.push(HistoryEventRef::make(
            id,
            br.prev_event,
            br.now,
            event_type,
            details,
        ));
        br.prev_event = id;
    }

    /// The TestState probe, when this execution runs one state for the TestState API.
    pub(super) fn probe(&self) -> Option<&Probe> {
        self.exec.probe.as_deref()
    }

    pub(super) fn recording(&self, br: &Branch) -> bool {
        self.inner.record_history && br.record
    }
}
