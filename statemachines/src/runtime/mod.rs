//! The interpreter: runs a state machine's states on a virtual clock, records history events.
//!
//! Each branch of execution (the top level, every Parallel branch, every Map iteration) carries its own
//! virtual time; Wait states and retry intervals advance it, and a Parallel or Map joins its branches at
//! the latest of their times. Branches run as futures on the execution's own task (no spawn per state
//! or per iteration), so a state transition costs a function call, not a scheduler round trip.

mod described;
mod env;
mod history;
pub(crate) mod invocation;
mod io;
mod retry;
mod runner;
mod scope;
mod states;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::error::{Failure, MAX_PAYLOAD_BYTES, names};
use crate::execution::{Execution, Inner, Status};
use crate::history::EventType;
use crate::model::MachineType;
use crate::model::StateMachine;
use crate::runtime::history::{entered_event, exited_event};
use crate::runtime::io::exceeds;
use crate::runtime::runner::{Branch, Entered, Runner};
use crate::runtime::scope::Scope;

/// Runs one execution to its end and records the outcome.
pub(crate) async fn run_execution(inner: Arc<Inner>, exec: Arc<Execution>) {
    let runner = Runner {
        inner,
        exec: exec.clone(),
    };
    let mut br = Branch {
        now: exec.start,
        scope: Scope::new(None),
        prev_event: 0,
        // EXPRESS executions keep no history (AWS sends it to CloudWatch Logs instead).
        record: exec.machine.machine_type == MachineType::Standard,
    };
    runner.event(
        &mut br,
        EventType::ExecutionStarted,
        json!({
            "input": exec.input,
            "roleArn": format!("arn:aws:iam::{}:role/opsplane-local", runner.inner.account),
            "stateMachineArn": exec.machine.arn,
        }),
    );
    let mut abort = exec.abort.subscribe();
    let model = exec.machine.model.clone();
    let input = exec.input.clone();
    let (status, result, now) = {
        let run = runner.run_states(&model, input, &mut br);
        tokio::select! {
            r = run => {
                let r = r.and_then(|out| {
                    if exceeds(&out, MAX_PAYLOAD_BYTES) {
                        Err(Failure::new(names::DATA_LIMIT_EXCEEDED, "The execution output exceeds the maximum number of bytes service limit."))
                    } else {
                        Ok(out)
                    }
                });
                (None, r, None)
            }
            f = stop_requested(&mut abort) => (Some(Status::Aborted), Err(f), None),
        }
    };
    let now = now.unwrap_or(br.now);
    let timed_out = model
        .timeout_seconds
        .is_some_and(|t| (now - exec.start).num_milliseconds() > t as i64 * 1000);
    let (status, output, error, cause) = match (status, result) {
        (Some(s), Err(f)) => (s, None, Some(f.error), Some(f.cause)),
        (_, _) if timed_out => (
            Status::TimedOut,
            None,
            Some(names::TIMEOUT.to_string()),
            Some(String::new()),
        ),
        (_, Ok(v)) => (Status::Succeeded, Some(v), None, None),
        (_, Err(f)) => (Status::Failed, None, Some(f.error), Some(f.cause)),
    };
    // A Fail state without Error or Cause leaves them absent, as DescribeExecution shows.
    let error = error.filter(|e| !e.is_empty());
    let cause = cause.filter(|c| !c.is_empty());
    let mut br_end = Branch {
        now,
        scope: br.scope.clone(),
        prev_event: runner.last_event_id(),
        record: exec.machine.machine_type == MachineType::Standard,
    };
    match status {
        Status::Succeeded => runner.event(
            &mut br_end,
            EventType::ExecutionSucceeded,
            json!({"output": output}),
        ),
        Status::Failed => runner.event(
            &mut br_end,
            EventType::ExecutionFailed,
            json!({"error": error, "cause": cause}),
        ),
        Status::TimedOut => runner.event(
            &mut br_end,
            EventType::ExecutionTimedOut,
            json!({"error": error, "cause": cause}),
        ),
        _ => runner.event(
            &mut br_end,
            EventType::ExecutionAborted,
            json!({"error": error, "cause": cause}),
        ),
    }
    {
        let mut st = exec.state.lock().expect("state lock");
        st.status = status;
        st.output = output;
        st.error = error;
        st.cause = cause;
        st.stop_date = Some(now);
    }
    exec.done.send_replace(true);
}

/// Resolves when `stop_execution` is called, with its error and cause.
async fn stop_requested(abort: &mut tokio::sync::watch::Receiver<Option<Failure>>) -> Failure {
    loop {
        if let Some(f) = abort.borrow_and_update().clone() {
            return f;
        }
        if abort.changed().await.is_err() {
            return futures::future::pending().await;
        }
    }
}

/// The failure of an execution whose history reached its quota. `States.Runtime`, which no `Retry` or
/// `Catch` rule sees, as AWS ends such an execution whatever its error handling.
fn history_quota_failure(quota: usize) -> Failure {
    Failure::runtime(format!(
        "The execution reached the maximum number of history events ({quota}) and cannot continue."
    ))
}

/// Marks an execution whose run panicked as FAILED with `States.Runtime`.
pub(crate) fn record_crash(exec: &Execution) {
    if let Ok(mut st) = exec.state.lock()
        && st.status == Status::Running
    {
        st.status = Status::Failed;
        st.error = Some(names::RUNTIME.to_string());
        st.cause = Some("The local engine failed while running this execution.".to_string());
        st.stop_date = Some(Utc::now());
    }
    exec.done.send_replace(true);
}

impl Runner {
    pub(crate) fn run_states<'a>(
        &'a self,
        sm: &'a StateMachine,
        input: Value,
        br: &'a mut Branch,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        async move {
            let mut idx = sm.start_at;
            let mut input = input;
            loop {
                if self.exec.history_full.load(Ordering::Relaxed) {
                    return Err(history_quota_failure(
                        self.inner.history_quota.load(Ordering::Relaxed),
                    ));
                }
                let st = &sm.states[idx];
                let at = br.now;
                if self.recording(br) {
                    self.event(br, entered_event(st.type_name), json!({"name": &*st.name, "input": input}));
                }
                let entered = Entered { at, id: if self.recording(br) { br.prev_event } else { 0 } };
                let (out, next) = match self.run_state(st, input, br, entered).await {
                    Ok(r) => r,
                    Err(f) => {
                        if f.error == names::QUERY_EVALUATION_ERROR {
                            self.event(br, EventType::EvaluationFailed, json!({"state": &*st.name, "error": f.error, "cause": f.cause}));
                        }
                        return Err(f);
                    }
                };
                // A TestState run stops after its one state, naming where it would go next.
                if let Some(p) = self.probe()
                    && std::ptr::eq(sm, &*self.exec.machine.model)
                {
                    if let Some(n) = next {
                        p.next(&sm.states[n].name);
                    }
                    return Ok(out);
                }
                if exceeds(&out, MAX_PAYLOAD_BYTES) {
                    return Err(Failure::new(
                        names::DATA_LIMIT_EXCEEDED,
                        format!("The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.", st.name),
                    ));
                }
                if self.recording(br) {
                    self.event(br, exited_event(st.type_name), json!({"name": &*st.name, "output": out}));
                }
                // The machine's TimeoutSeconds bounds virtual time: a polling loop of Waits ends TIMED_OUT.
                if let Some(limit) = self.exec.machine.model.timeout_seconds
                    && (br.now - self.exec.start).num_milliseconds() > limit as i64 * 1000
                {
                    return Err(Failure::new(names::TIMEOUT, "The execution exceeded its TimeoutSeconds."));
                }
                match next {
                    Some(n) => {
                        idx = n;
                        input = out;
                    }
                    // A history that filled up during the last state still fails the execution.
                    None if self.exec.history_full.load(Ordering::Relaxed) => {
                        return Err(history_quota_failure(
                            self.inner.history_quota.load(Ordering::Relaxed),
                        ));
                    }
                    None => return Ok(out),
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
