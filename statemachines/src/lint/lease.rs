//! `lease-budget`: a lock's lease outlasts the longest stretch the workflow may hold it without renewing it.
//!
//! The lease is the `lease_seconds` of the Task marked `@acquires(lock)`. A Task renews the lock when its
//! payload carries `lock` (the handler renews at the start of every call, each retry included, to the
//! `lease_seconds` the object names, else the acquire's). Durations are the definition's own worst case:
//! a Task's every attempt runs to its `TimeoutSeconds` and every retrier uses all its attempts at their
//! longest interval (Step Functions' Retry: `IntervalSeconds × BackoffRate^n`, capped by
//! `MaxDelaySeconds`; FULL jitter only shortens); a Wait lasts its `Seconds`; a Parallel or Map lasts its
//! longest branch, and a Map whose processor never renews runs an unknown number of waves, which no lease
//! covers. A stretch starts when the lock is acquired and at each renewing call; it ends at the next
//! renewing call, at a `@releases(lock)` state, or at the end. Two calls of one renewing Task are at most
//! its timeout plus its longest interval apart.
//!
//! A Task whose timeout is set at run time (`TimeoutSecondsPath`, a wait for a person) cannot be covered by
//! any lease. While it waits the execution is RUNNING and a running holder is never taken over; should its
//! status be unknown and the lease end, another workflow may take the lock, so the Task's `Next` must renew
//! before anything changes (the renewal then fails with `LockLost`). Its stretch ends where it starts.

use std::collections::HashMap;

use super::{Finding, markers};
use crate::model::{Dynamic, Kind, Retrier, State, StateMachine, Template, WaitSpec, successors};

const RULE: &str = "lease-budget";
const RESOURCE: &str = "lock";

/// Checks every stretch of `sm` against its lease.
pub(super) fn lease_budget(sm: &StateMachine, out: &mut Vec<Finding>) {
    let Some((acquire, lease)) = acquired(sm) else {
        return;
    };
    let mut check = Check {
        out,
        memo: HashMap::new(),
    };
    let origin = &sm.states[acquire];
    let from_grant = match origin.next {
        Some(next) => check.until_renewal(sm, next, 0.0),
        None => 0.0,
    };
    check.against(origin, lease, from_grant, "the lock is acquired");
    check.renewing_tasks(sm, lease, 0.0);
}

struct Check<'a> {
    out: &'a mut Vec<Finding>,
    /// Longest time to the next renewal from a state, by (machine, state index); `None` while visiting.
    memo: HashMap<(*const StateMachine, usize), Option<f64>>,
}

impl Check<'_> {
    fn against(&mut self, st: &State, lease: f64, longest: f64, from: &str) {
        if longest <= lease {
            return;
        }
        let longest = if longest.is_finite() {
            format!("up to {} s", longest.ceil())
        } else {
            "an unbounded time".to_owned()
        };
        self.out.push(Finding {
            rule: RULE,
            state: st.name.to_string(),
            message: format!(
                "the lock's lease ({lease} s) may end before it is renewed: after {from}, {longest} may pass \
                 (every attempt at its timeout, every retry at its longest interval); renew on the way (a \
                 Task whose payload carries `lock`) or lengthen the lease"
            ),
        });
    }

    /// Every renewing Task of `sm` and its branches: the gap between two of its calls, and the stretch
    /// after its last call. `after` is what follows the end of `sm` (a branch's continuation).
    fn renewing_tasks(&mut self, sm: &StateMachine, lease: f64, after: f64) {
        for (i, st) in sm.states.iter().enumerate() {
            match &st.kind {
                Kind::Task(t) if renews(st) => {
                    let lease = renewed_lease(st).unwrap_or(lease);
                    let timeout = seconds(t.timeout.as_ref());
                    let gap = timeout + st.retry.iter().map(longest_interval).fold(0.0, f64::max);
                    self.against(st, lease, gap, "one of its calls");
                    let tail = timeout + self.next_of(sm, i, after);
                    self.against(st, lease, tail, "its last call");
                }
                Kind::Task(t) if runtime_bound(t.timeout.as_ref()) => {
                    let renewed = st.next.is_some_and(|n| renews(&sm.states[n]));
                    if !renewed {
                        self.out.push(Finding {
                            rule: RULE,
                            state: st.name.to_string(),
                            message: "waits for a time set at run time while the lock is held, and its Next \
                                      does not renew it: the lease may have ended during the wait; renew \
                                      right after it (a Task whose payload carries `lock`)"
                                .into(),
                        });
                    }
                }
                Kind::Parallel { branches } => {
                    let cont = self.next_of(sm, i, after);
                    for b in branches {
                        self.renewing_tasks(b, lease, cont);
                    }
                }
                Kind::Map(m) => {
                    let cont = self.next_of(sm, i, after);
                    self.renewing_tasks(&m.processor, lease, cont);
                }
                _ => {}
            }
        }
    }

    /// The longest time to the next renewal after state `i` ends (its successors, else `after`).
    fn next_of(&mut self, sm: &StateMachine, i: usize, after: f64) -> f64 {
        let next = successors(&sm.states[i]);
        if next.is_empty() {
            return after;
        }
        next.into_iter()
            .map(|j| self.until_renewal(sm, j, after))
            .fold(0.0, f64::max)
    }

    /// The longest time from entering state `i` of `sm` until the lock is renewed or released.
    fn until_renewal(&mut self, sm: &StateMachine, i: usize, after: f64) -> f64 {
        let key = (sm as *const StateMachine, i);
        match self.memo.get(&key) {
            Some(Some(v)) => return *v,
            // A loop that holds the lock without renewing it.
            Some(None) => return f64::INFINITY,
            None => {}
        }
        self.memo.insert(key, None);
        let st = &sm.states[i];
        let v = if renews(st) || markers(st, "@releases(").iter().any(|r| r == RESOURCE) {
            0.0
        } else {
            match &st.kind {
                Kind::Task(t) if runtime_bound(t.timeout.as_ref()) => 0.0,
                Kind::Succeed | Kind::Fail { .. } => after,
                _ => {
                    let cont = self.next_of(sm, i, after);
                    match &st.kind {
                        Kind::Parallel { branches } => branches
                            .iter()
                            .map(|b| self.until_renewal(b, b.start_at, cont))
                            .fold(0.0, f64::max),
                        Kind::Map(m) if !renews_anywhere(&m.processor) => f64::INFINITY,
                        Kind::Map(m) => {
                            self.until_renewal(&m.processor, m.processor.start_at, cont)
                        }
                        _ => duration(st) + cont,
                    }
                }
            }
        };
        self.memo.insert(key, Some(v));
        v
    }
}

/// The `@acquires(lock)` Task and its literal `lease_seconds`.
fn acquired(sm: &StateMachine) -> Option<(usize, f64)> {
    sm.states.iter().enumerate().find_map(|(i, st)| {
        if !markers(st, "@acquires(").iter().any(|r| r == RESOURCE) {
            return None;
        }
        let lease = payload(st)
            .and_then(|p| field(p, "lease_seconds"))
            .and_then(literal_seconds)?;
        Some((i, lease))
    })
}

/// Whether `st` renews the lock on every call: its payload carries `lock`.
fn renews(st: &State) -> bool {
    matches!(st.kind, Kind::Task(_)) && payload(st).and_then(|p| field(p, RESOURCE)).is_some()
}

fn renews_anywhere(sm: &StateMachine) -> bool {
    sm.states.iter().any(|st| match &st.kind {
        Kind::Parallel { branches } => branches.iter().any(|b| renews_anywhere(b)),
        Kind::Map(m) => renews_anywhere(&m.processor),
        _ => renews(st),
    })
}

/// The `lease_seconds` a renewing Task names literally in its `lock`.
fn renewed_lease(st: &State) -> Option<f64> {
    payload(st)
        .and_then(|p| field(p, RESOURCE))
        .and_then(|l| field(l, "lease_seconds"))
        .and_then(literal_seconds)
}

/// A part of a template: a template, or a literal value inside one (a literal object stays a value).
#[derive(Clone, Copy)]
enum Part<'a> {
    Template(&'a Template),
    Value(&'a serde_json::Value),
}

/// A Lambda Task's `Payload`, else its whole `Parameters`/`Arguments`.
fn payload(st: &State) -> Option<Part<'_>> {
    let p = Part::Template(st.parameters.as_ref()?);
    Some(field(p, "Payload").unwrap_or(p))
}

fn field<'a>(part: Part<'a>, name: &str) -> Option<Part<'a>> {
    let named = |k: &str| k == name || k.strip_suffix(".$") == Some(name);
    match part {
        Part::Template(Template::Object(fields)) => fields
            .iter()
            .find(|(k, _)| named(k))
            .map(|(_, v)| Part::Template(v)),
        Part::Template(Template::Literal(v)) | Part::Value(v) => v
            .as_object()?
            .iter()
            .find(|(k, _)| named(k))
            .map(|(_, v)| Part::Value(v)),
        Part::Template(_) => None,
    }
}

fn literal_seconds(part: Part<'_>) -> Option<f64> {
    match part {
        Part::Template(Template::Literal(v)) | Part::Value(v) => v.as_f64(),
        Part::Template(_) => None,
    }
}

/// Whether a Task's timeout is only known at run time.
fn runtime_bound(timeout: Option<&Dynamic>) -> bool {
    matches!(timeout, Some(d) if !matches!(d, Dynamic::Value(_)))
}

/// A literal timeout; none (Step Functions then waits 99999999 s) or one set at run time is unbounded.
fn seconds(timeout: Option<&Dynamic>) -> f64 {
    match timeout {
        Some(Dynamic::Value(v)) => v.as_f64().unwrap_or(f64::INFINITY),
        _ => f64::INFINITY,
    }
}

/// How long a state itself may last, its retries included.
fn duration(st: &State) -> f64 {
    match &st.kind {
        Kind::Task(t) => {
            let attempts = 1.0
                + st.retry
                    .iter()
                    .map(|r| f64::from(r.max_attempts))
                    .sum::<f64>();
            attempts * seconds(t.timeout.as_ref())
                + st.retry.iter().map(total_intervals).sum::<f64>()
        }
        Kind::Wait(WaitSpec::Seconds(Dynamic::Value(v))) => v.as_f64().unwrap_or(0.0),
        Kind::Wait(_) => f64::INFINITY,
        _ => 0.0,
    }
}

fn interval(r: &Retrier, n: u32) -> f64 {
    let i = r.interval_seconds * r.backoff_rate.powi(n as i32);
    r.max_delay_seconds.map_or(i, |cap| i.min(cap))
}

fn total_intervals(r: &Retrier) -> f64 {
    (0..r.max_attempts).map(|n| interval(r, n)).sum()
}

fn longest_interval(r: &Retrier) -> f64 {
    (0..r.max_attempts)
        .map(|n| interval(r, n))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::lint::lint;

    /// A Lambda Task retrying Lambda's service errors (6 attempts from 2 s, doubling: 126 s in all).
    fn task(payload: Value, timeout: u64, next: &str) -> Value {
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": timeout,
            "Parameters": {"FunctionName": "f", "Payload": payload},
            "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
                "Lambda.ClientExecutionTimeoutException"], "IntervalSeconds": 2, "MaxAttempts": 6,
                "BackoffRate": 2}],
            "ResultPath": null, "Next": next})
    }

    fn acquire(lease: u64, next: &str) -> Value {
        let mut t = task(
            json!({"action": "acquire", "lease_seconds": lease}),
            60,
            next,
        );
        t["Comment"] = json!("@acquires(lock)");
        t
    }

    fn release() -> Value {
        let mut t = task(json!({"action": "release"}), 60, "Done");
        t["Comment"] = json!("@releases(lock)");
        t["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "Next": "Done"}]);
        t
    }

    fn renewing(timeout: u64, lease: u64, next: &str) -> Value {
        let lock = json!({"environment.$": "$.env", "holder.$": "$$.Execution.Id", "token.$": "$.lock.token",
            "lease_seconds": lease});
        let mut t = task(json!({"action": "poll", "lock": lock}), timeout, next);
        t["Retry"].as_array_mut().unwrap().push(
            json!({"ErrorEquals": ["NotReady"], "IntervalSeconds": 60, "BackoffRate": 2, "MaxDelaySeconds": 600, "MaxAttempts": 50}),
        );
        t
    }

    fn findings(states: Value) -> Vec<String> {
        let def = json!({"StartAt": "Acquire", "States": states});
        lint(&def.to_string())
            .into_iter()
            .filter(|f| f.rule == "lease-budget" || f.rule == "valid")
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn a_lease_must_outlast_the_work_up_to_the_release() {
        // Work: 7 attempts of 300 s and 126 s of retry intervals = 2226 s before the release.
        let states = |lease| {
            json!({"Acquire": acquire(lease, "Work"), "Work": task(json!({}), 300, "Release"),
                "Release": release(), "Done": {"Type": "Succeed"}})
        };
        assert!(findings(states(2226)).is_empty());
        let found = findings(states(2225));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("\"Acquire\"") && found[0].contains("up to 2226 s"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn a_poll_that_renews_on_every_call_needs_a_lease_of_one_call_and_one_interval() {
        // Polling for hours: 51 attempts, intervals up to 600 s. Each call renews, so the lease covers one
        // call (300 s) and the longest interval (600 s), then what follows the last call.
        let states = |lease| {
            json!({"Acquire": acquire(lease, "Poll"), "Poll": renewing(300, lease, "Release"),
                "Release": release(), "Done": {"Type": "Succeed"}})
        };
        assert!(
            findings(states(900)).is_empty(),
            "{:?}",
            findings(states(900))
        );
        let found = findings(states(899));
        assert!(
            found
                .iter()
                .any(|f| f.contains("\"Poll\"") && f.contains("one of its calls")),
            "{found:?}"
        );
    }

    #[test]
    fn a_wait_set_at_run_time_is_followed_by_a_renewal() {
        let wait = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "TimeoutSecondsPath": "$.timeout", "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}},
            "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
                "Lambda.ClientExecutionTimeoutException"]}],
            "ResultPath": null, "Next": "Change"});
        let states = |change: Value| {
            json!({"Acquire": acquire(3600, "Approval"), "Approval": wait.clone(), "Change": change,
                "Release": release(), "Done": {"Type": "Succeed"}})
        };
        assert!(findings(states(renewing(300, 3600, "Release"))).is_empty());
        let found = findings(states(task(json!({}), 300, "Release")));
        assert!(
            found
                .iter()
                .any(|f| f.contains("\"Approval\"") && f.contains("set at run time")),
            "{found:?}"
        );
    }

    #[test]
    fn a_map_that_never_renews_holds_the_lock_for_unknown_waves() {
        let map = |inner: Value| {
            json!({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": null,
                "ItemProcessor": {"StartAt": "Each", "States": {"Each": inner}}, "Next": "Release"})
        };
        let mut plain = task(json!({}), 60, "x");
        plain.as_object_mut().unwrap().remove("Next");
        plain["End"] = json!(true);
        let mut renews = renewing(60, 3600, "x");
        renews.as_object_mut().unwrap().remove("Next");
        renews["End"] = json!(true);
        let states = |m: Value| json!({"Acquire": acquire(43_200, "Items"), "Items": m, "Release": release(), "Done": {"Type": "Succeed"}});
        let found = findings(states(map(plain)));
        assert!(
            found.iter().any(|f| f.contains("an unbounded time")),
            "{found:?}"
        );
        assert!(findings(states(map(renews))).is_empty());
    }
}
