//! Following an execution: its history events, read through the [`Executions`] port (Step Functions or the
//! local engine), turned into a progress line (status, current state, elapsed time, retries) by a pure
//! function.

/// How often Step Functions' history is read at first: `GetExecutionHistory` is throttled per account and
/// region (Step Functions' API quotas, a token bucket), shared with the console and every other follower.
pub const AWS_FIRST_INTERVAL: Duration = Duration::from_secs(2);
/// How often the local engine's history is read at first: in-process, so only the terminal limits it.
pub const LOCAL_FIRST_INTERVAL: Duration = Duration::from_millis(20);

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use opsplane_shared::ports::Executions;

/// One history event, from either world.
pub use opsplane_shared::ports::executions::HistoryEvent as Event;

/// Where an execution stands, from its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// The most recently entered state that has not exited yet (the last entered once ended).
    pub current_state: Option<String>,
    /// From the start to the end, or to `now` while running.
    pub elapsed: chrono::Duration,
    /// States entered so far.
    pub states_entered: usize,
    /// Task attempts after the first (each a retry by a `Retry` rule).
    pub retries: usize,
    /// The state of the latest retry.
    pub last_retried: Option<String>,
    /// The execution's error and cause, once it failed.
    pub error: Option<(String, String)>,
}

impl Progress {
    /// Whether the execution has ended.
    pub fn ended(&self) -> bool {
        self.status != "RUNNING"
    }

    /// Whether it ended well.
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }

    /// One line for a terminal.
    pub fn line(&self) -> String {
        let secs = self.elapsed.num_seconds().max(0);
        let mut line = format!(
            "[{}] {:02}:{:02}:{:02}  state {}  ({} states, {} retries",
            self.status,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            self.current_state.as_deref().unwrap_or("-"),
            self.states_entered,
            self.retries,
        );
        if let Some(state) = &self.last_retried {
            line.push_str(&format!(", last in {state}"));
        }
        line.push(')');
        if let Some((error, cause)) = &self.error {
            line.push_str(&format!("  {error}: {cause}"));
        }
        line
    }
}

fn is_failure(kind: &str) -> bool {
    kind.ends_with("Failed") || kind.ends_with("TimedOut")
}

/// The progress an execution's events show at `now`.
pub fn progress(events: &[Event], now: DateTime<Utc>) -> Progress {
    let by_id: std::collections::HashMap<i64, &Event> = events.iter().map(|e| (e.id, e)).collect();
    let start = events
        .iter()
        .find(|e| e.kind == "ExecutionStarted")
        .map(|e| e.at);
    let mut status = "RUNNING".to_owned();
    let mut end = None;
    let mut error = None;
    let mut open: Vec<(String, i64)> = Vec::new();
    let mut last_entered = None;
    let mut states_entered = 0;
    let mut retries = 0;
    let mut last_retried = None;
    for e in events {
        match e.kind.as_str() {
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted" => {
                status = match e.kind.as_str() {
                    "ExecutionSucceeded" => "SUCCEEDED",
                    "ExecutionFailed" => "FAILED",
                    "ExecutionTimedOut" => "TIMED_OUT",
                    _ => "ABORTED",
                }
                .to_owned();
                end = Some(e.at);
                if e.kind != "ExecutionSucceeded" {
                    error = Some((
                        e.error.clone().unwrap_or_default(),
                        readable_cause(e.cause.as_deref().unwrap_or_default()),
                    ));
                }
            }
            kind if kind.ends_with("StateEntered") => {
                states_entered += 1;
                if let Some(name) = &e.state {
                    open.push((name.clone(), e.id));
                    last_entered = Some(name.clone());
                }
            }
            kind if kind.ends_with("StateExited") => {
                if let Some(name) = &e.state
                    && let Some(pos) = open.iter().rposition(|(n, _)| n == name)
                {
                    open.remove(pos);
                }
            }
            // A task scheduled right after a failure of its branch is a retry of that failure.
            kind if kind.ends_with("Scheduled")
                && by_id
                    .get(&e.previous_id)
                    .is_some_and(|p| is_failure(&p.kind)) =>
            {
                retries += 1;
                last_retried = state_of(&by_id, e.previous_id);
            }
            _ => {}
        }
    }
    let current_state = open.last().map(|(n, _)| n.clone()).or(last_entered);
    let elapsed = match start {
        Some(s) => end.unwrap_or(now) - s,
        None => chrono::Duration::zero(),
    };
    Progress {
        status,
        current_state,
        elapsed,
        states_entered,
        retries,
        last_retried,
        error,
    }
}

fn state_of(by_id: &std::collections::HashMap<i64, &Event>, mut id: i64) -> Option<String> {
    // Bounded walk back along the branch to the state the event belongs to.
    for _ in 0..10_000 {
        let e = by_id.get(&id)?;
        if e.kind.ends_with("StateEntered") {
            return e.state.clone();
        }
        id = e.previous_id;
    }
    None
}

/// Follows `execution_arn` to its end, writing a progress line to `out` whenever it changes; polls with
/// back-off (x1.5 up to 15 s while nothing happens, back to the first interval when something does).
pub async fn follow(
    executions: &dyn Executions,
    first: Duration,
    execution_arn: &str,
    out: &mut (dyn Write + Send),
) -> Result<Progress> {
    let mut interval = first;
    let mut seen = 0;
    let mut last_line = String::new();
    loop {
        let events = executions.history(execution_arn).await?;
        let p = progress(&events, Utc::now());
        // Elapsed time moves every poll; the line is rewritten only when something else did.
        let key = format!(
            "{} {:?} {} {}",
            p.status, p.current_state, p.states_entered, p.retries
        );
        if key != last_line {
            writeln!(out, "{}", p.line()).ok();
            last_line = key;
        }
        if p.ended() {
            return Ok(p);
        }
        if events.len() > seen {
            seen = events.len();
            interval = first;
        } else {
            interval = (interval.mul_f64(1.5)).min(Duration::from_secs(15));
        }
        tokio::time::sleep(interval).await;
    }
}

/// A failure's cause as a person reads it: a Lambda function's error arrives as its JSON payload
/// (`{"errorType", "errorMessage", ...}`), of which the message is what to show.
fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<opsplane_statemachines::FunctionError>(cause)
        .map(|e| e.error_message)
        .unwrap_or_else(|_| cause.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_errors_cause_shows_its_message_only() {
        let cause = r#"{"errorMessage":"alarm during the bake","errorType":"AlarmDuringBake","stackTrace":[]}"#;
        assert_eq!(readable_cause(cause), "alarm during the bake");
        assert_eq!(readable_cause("held by deploy"), "held by deploy");
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn ev(id: i64, prev: i64, s: i64, kind: &str, state: Option<&str>) -> Event {
        Event {
            id,
            previous_id: prev,
            at: at(s),
            kind: kind.to_owned(),
            state: state.map(str::to_owned),
            error: None,
            cause: None,
            timeout_seconds: None,
        }
    }

    #[test]
    fn a_running_execution_shows_its_state_elapsed_time_and_retries() {
        let events = vec![
            ev(1, 0, 0, "ExecutionStarted", None),
            ev(2, 1, 0, "TaskStateEntered", Some("ValidateInput")),
            ev(3, 2, 1, "TaskScheduled", None),
            ev(4, 3, 1, "TaskStarted", None),
            ev(5, 4, 2, "TaskSucceeded", None),
            ev(6, 5, 2, "TaskStateExited", Some("ValidateInput")),
            ev(7, 6, 2, "TaskStateEntered", Some("WaitSnapshot")),
            ev(8, 7, 3, "TaskScheduled", None),
            ev(9, 8, 3, "TaskStarted", None),
            ev(10, 9, 4, "TaskFailed", None),
            ev(11, 10, 34, "TaskScheduled", None),
            ev(12, 11, 34, "TaskStarted", None),
            ev(13, 12, 35, "TaskFailed", None),
            ev(14, 13, 80, "TaskScheduled", None),
        ];
        let p = progress(&events, at(95));
        assert_eq!(p.status, "RUNNING");
        assert_eq!(p.current_state.as_deref(), Some("WaitSnapshot"));
        assert_eq!(p.elapsed.num_seconds(), 95);
        assert_eq!(p.retries, 2);
        assert_eq!(p.last_retried.as_deref(), Some("WaitSnapshot"));
        assert_eq!(p.states_entered, 2);
        assert!(!p.ended());
        assert_eq!(
            p.line(),
            "[RUNNING] 00:01:35  state WaitSnapshot  (2 states, 2 retries, last in WaitSnapshot)"
        );
    }

    #[test]
    fn an_ended_execution_stops_the_clock_and_keeps_its_error() {
        let mut failed = ev(5, 4, 3725, "ExecutionFailed", None);
        failed.error = Some("LockHeld".into());
        failed.cause = Some("held by deploy".into());
        let events = vec![
            ev(1, 0, 0, "ExecutionStarted", None),
            ev(2, 1, 1, "TaskStateEntered", Some("AcquireLock")),
            ev(3, 2, 2, "TaskScheduled", None),
            ev(4, 3, 3, "TaskFailed", None),
            failed,
        ];
        let p = progress(&events, at(99_999));
        assert_eq!(p.status, "FAILED");
        assert!(p.ended() && !p.succeeded());
        assert_eq!(p.elapsed.num_seconds(), 3725);
        assert_eq!(
            p.retries, 0,
            "a failure not followed by a new attempt is no retry"
        );
        assert_eq!(p.current_state.as_deref(), Some("AcquireLock"));
        assert!(p.line().starts_with("[FAILED] 01:02:05"), "{}", p.line());
        assert!(
            p.line().ends_with("LockHeld: held by deploy"),
            "{}",
            p.line()
        );
    }

    #[test]
    fn parallel_iterations_count_retries_per_branch() {
        // Two Map iterations interleaved; only the second retries.
        let events = vec![
            ev(1, 0, 0, "ExecutionStarted", None),
            ev(2, 1, 0, "MapStateEntered", Some("Snapshots")),
            ev(3, 2, 0, "TaskStateEntered", Some("Poll")),
            ev(4, 2, 0, "TaskStateEntered", Some("Poll")),
            ev(5, 3, 1, "TaskScheduled", None),
            ev(6, 4, 1, "TaskScheduled", None),
            ev(7, 5, 2, "TaskSucceeded", None),
            ev(8, 6, 2, "TaskFailed", None),
            ev(9, 7, 2, "TaskStateExited", Some("Poll")),
            ev(10, 8, 32, "TaskScheduled", None),
        ];
        let p = progress(&events, at(40));
        assert_eq!(p.retries, 1);
        assert_eq!(p.current_state.as_deref(), Some("Poll"));
    }
}
