//! Function invocations that outlive their Task.
//!
//! Step Functions does not end a Lambda invocation when the execution that made it is stopped, or when
//! its Task times out: the function runs on until it returns or Lambda ends it at the function's own
//! timeout, and its result is dropped (StopExecution and the Task state's `TimeoutSeconds` in the Step
//! Functions developer guide; Lambda's function timeout in the Lambda developer guide). A workflow that
//! stops another must therefore allow for a call that is still being made. The engine models it: every
//! handler call runs as its own task, which a stopped execution leaves running; once the execution has
//! ended and any task starts at a virtual time past the invocation's deadline (the Task's
//! `TimeoutSeconds`, which our definitions set just above the function's timeout), the invocation is
//! ended, as Lambda would have ended it by then.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// One invocation still running.
struct Running {
    id: u64,
    /// When Lambda ends it at the latest (epoch ms); `None` without a `TimeoutSeconds`: never modelled.
    deadline_ms: Option<i64>,
    /// The calling execution's end (`true` once it ended).
    ended: watch::Receiver<bool>,
    abort: AbortHandle,
}

/// The invocations of every execution of one engine that have not returned yet.
#[derive(Default)]
pub(crate) struct Invocations {
    next: AtomicU64,
    running: Mutex<Vec<Running>>,
}

impl Invocations {
    /// Records an invocation; returns the id [`Invocations::finished`] takes.
    pub(crate) fn started(
        &self,
        deadline: Option<DateTime<Utc>>,
        ended: watch::Receiver<bool>,
        abort: AbortHandle,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .expect("invocations lock")
            .push(Running {
                id,
                deadline_ms: deadline.map(|d| d.timestamp_millis()),
                ended,
                abort,
            });
        id
    }

    /// Forgets an invocation that returned.
    pub(crate) fn finished(&self, id: u64) {
        self.running
            .lock()
            .expect("invocations lock")
            .retain(|r| r.id != id);
    }

    /// Ends every invocation of an ended execution whose deadline is at or before `now_ms`: before a task
    /// runs at `now_ms`, Lambda has ended those. An invocation of a running execution is its Task's own
    /// business (its timeout fails the Task; the function still runs on, as on AWS).
    pub(crate) fn end_overdue(&self, now_ms: i64) {
        self.running.lock().expect("invocations lock").retain(|r| {
            let overdue = *r.ended.borrow() && r.deadline_ms.is_some_and(|d| d <= now_ms);
            if overdue {
                r.abort.abort();
            }
            !overdue
        });
    }
}
