//! Static checks of a definition: validity plus opsplane's safety rules.
//!
//! # Rules
//! - `valid`: the definition passes the same validation as `CreateStateMachine`.
//! - `lambda-retry`: every Task whose resource is a Lambda (a function ARN or
//!   `arn:aws:states:::lambda:invoke`) has `Retry` rules whose `ErrorEquals` cover
//!   `Lambda.ServiceException`, `Lambda.AWSLambdaException`, `Lambda.SdkClientException` and
//!   `Lambda.TooManyRequestsException` (or `States.ALL`).
//! - `path-ends`: from every state some path reaches an end (no loop without an exit).
//! - `resource-release`: a state marks that it takes or gives back a resource with a marker in its
//!   `Comment`: `@acquires(<resource>)` or `@releases(<resource>)`, e.g. `@acquires(lock)`. Every path
//!   leaving an acquiring state on success must pass a state that releases the same resource before it
//!   ends. Paths include `Catch` edges, and the error exit of any Task, Parallel or Map without a
//!   `Catch` for `States.ALL` (an uncaught error fails the execution while the resource is held). A Fail
//!   state reached before the release is a leak too. Each Parallel branch and Map processor is checked
//!   on its own: what it acquires it must release.

use std::collections::HashSet;
use std::fmt;

use crate::error::names;
use crate::model::{self, Kind, State, StateMachine, is_lambda_resource};

/// The Lambda service errors every Lambda Task must retry.
pub const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule: `valid`, `lambda-retry`, `path-ends`, `resource-release`.
    pub rule: &'static str,
    /// The state concerned (empty for the definition as a whole).
    pub state: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.state.is_empty() {
            write!(f, "[{}] {}", self.rule, self.message)
        } else {
            write!(
                f,
                "[{}] State \"{}\": {}",
                self.rule, self.state, self.message
            )
        }
    }
}

/// Lints a definition's text; an empty result means it is clean.
pub fn lint(definition: &str) -> Vec<Finding> {
    let sm = match model::parse(definition) {
        Ok(sm) => sm,
        Err(e) => {
            return e
                .flatten()
                .into_iter()
                .map(|e| Finding {
                    rule: "valid",
                    state: String::new(),
                    message: e.to_string(),
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    lint_machine(&sm, &mut out);
    out
}

fn lint_machine(sm: &StateMachine, out: &mut Vec<Finding>) {
    for st in &sm.states {
        if let Kind::Task(t) = &st.kind
            && is_lambda_resource(&t.resource)
        {
            let missing: Vec<&str> = LAMBDA_SERVICE_ERRORS
                .iter()
                .copied()
                .filter(|e| {
                    !st.retry
                        .iter()
                        .any(|r| r.error_equals.iter().any(|n| n == e || n == names::ALL))
                })
                .collect();
            if !missing.is_empty() {
                out.push(Finding {
                    rule: "lambda-retry",
                    state: st.name.to_string(),
                    message: format!(
                        "a Lambda task must retry the Lambda service errors; not retried: {}",
                        missing.join(", ")
                    ),
                });
            }
        }
        match &st.kind {
            Kind::Parallel { branches } => branches.iter().for_each(|b| lint_machine(b, out)),
            Kind::Map(m) => lint_machine(&m.processor, out),
            _ => {}
        }
    }
    for name in model::unreachable(sm) {
        out.push(Finding {
            rule: "path-ends",
            state: name,
            message: "is not reachable from StartAt".into(),
        });
    }
    let ends = can_end(sm);
    for (i, st) in sm.states.iter().enumerate() {
        if !ends[i] {
            out.push(Finding {
                rule: "path-ends",
                state: st.name.to_string(),
                message: "no path from this state reaches an end".into(),
            });
        }
    }
    for (i, st) in sm.states.iter().enumerate() {
        for res in markers(st, "@acquires(") {
            check_release(sm, i, &res, out);
        }
    }
}

/// The resources named by `marker` (`@acquires(` or `@releases(`) in a state's `Comment`.
pub fn markers(st: &State, marker: &str) -> Vec<String> {
    let Some(c) = &st.comment else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = c.as_str();
    while let Some(p) = rest.find(marker) {
        let after = &rest[p + marker.len()..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn may_fail(st: &State) -> bool {
    matches!(
        st.kind,
        Kind::Task(_) | Kind::Parallel { .. } | Kind::Map(_)
    )
}

fn catches_all(st: &State) -> bool {
    st.catch
        .iter()
        .any(|c| c.error_equals.iter().any(|e| e == names::ALL))
}

/// For each state: can some path from it end (End, Succeed, Fail, or an uncaught error)?
fn can_end(sm: &StateMachine) -> Vec<bool> {
    let n = sm.states.len();
    let mut ends: Vec<bool> = sm
        .states
        .iter()
        .map(|s| {
            matches!(s.kind, Kind::Succeed | Kind::Fail { .. })
                || (s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }))
                || (may_fail(s) && !catches_all(s))
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if !ends[i] && model::successors(&sm.states[i]).iter().any(|&j| ends[j]) {
                ends[i] = true;
                changed = true;
            }
        }
    }
    ends
}

fn check_release(sm: &StateMachine, from: usize, res: &str, out: &mut Vec<Finding>) {
    let acquirer = &sm.states[from];
    let mut seen = HashSet::new();
    // The acquiring state's own failure means nothing was taken; its success path is what must release.
    let mut stack: Vec<usize> = acquirer.next.into_iter().collect();
    if acquirer.next.is_none() && !matches!(acquirer.kind, Kind::Choice { .. }) {
        out.push(Finding {
            rule: "resource-release",
            state: acquirer.name.to_string(),
            message: format!("acquires \"{res}\" and ends the execution without releasing it"),
        });
    }
    if let Kind::Choice { choices, default } = &acquirer.kind {
        stack.extend(choices.iter().map(|c| c.next));
        stack.extend(*default);
    }
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        let st = &sm.states[i];
        if markers(st, "@releases(").iter().any(|r| r == res) {
            continue;
        }
        let leak = |why: String| Finding {
            rule: "resource-release",
            state: st.name.to_string(),
            message: format!(
                "holds \"{res}\" (acquired in \"{}\") and {why}",
                acquirer.name
            ),
        };
        match &st.kind {
            Kind::Succeed => out.push(leak("succeeds without releasing it".into())),
            Kind::Fail { .. } => out.push(leak("fails the execution without releasing it".into())),
            _ => {}
        }
        if st.next.is_none()
            && !matches!(
                st.kind,
                Kind::Choice { .. } | Kind::Succeed | Kind::Fail { .. }
            )
        {
            out.push(leak("ends the execution without releasing it".into()));
        }
        if may_fail(st) && !catches_all(st) {
            out.push(leak("has no Catch for States.ALL: an error would fail the execution without releasing it".into()));
        }
        stack.extend(model::successors(st));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: &str = r#"[{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]}]"#;

    fn def(states: &str) -> String {
        format!(r#"{{"StartAt": "Lock", "States": {states}}}"#)
    }

    #[test]
    fn clean_lock_workflow_passes() {
        let d = def(&format!(
            r#"{{
            "Lock": {{"Type": "Task", "Comment": "@acquires(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "Retry": {RETRY}, "Next": "Work"}},
            "Work": {{"Type": "Pass", "Next": "Unlock"}},
            "Unlock": {{"Type": "Task", "Comment": "@releases(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "Retry": {RETRY}, "End": true}}
        }}"#
        ));
        assert_eq!(lint(&d), vec![]);
    }

    #[test]
    fn uncaught_task_after_acquire_leaks() {
        let d = def(&format!(
            r#"{{
            "Lock": {{"Type": "Task", "Comment": "@acquires(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "Retry": {RETRY}, "Next": "Apply"}},
            "Apply": {{"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:apply", "Retry": {RETRY}, "Next": "Unlock"}},
            "Unlock": {{"Type": "Task", "Comment": "@releases(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "Retry": {RETRY}, "End": true}}
        }}"#
        ));
        let f = lint(&d);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "resource-release");
        assert_eq!(f[0].state, "Apply");
    }

    #[test]
    fn catch_to_fail_without_release_leaks_and_missing_retry_is_reported() {
        let d = def(r#"{
            "Lock": {"Type": "Task", "Comment": "@acquires(lock)", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "lock"}, "Next": "Apply"},
            "Apply": {"Type": "Pass", "Next": "Unlock"},
            "Unlock": {"Type": "Pass", "Comment": "@releases(lock)", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Boom"},
            "Done": {"Type": "Succeed"},
            "Boom": {"Type": "Fail", "Error": "X"}
        }"#);
        let f = lint(&d);
        assert_eq!(f.iter().filter(|x| x.rule == "lambda-retry").count(), 1);
        assert_eq!(f.iter().filter(|x| x.rule == "resource-release").count(), 0);
    }

    #[test]
    fn loop_without_exit_and_invalid_definitions() {
        let d = r#"{"StartAt": "S", "States": {
            "S": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "Done"}], "Default": "A"},
            "Done": {"Type": "Succeed"},
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "A"}], "Default": "A"}}}"#;
        let f = lint(d);
        assert!(f.iter().any(|x| x.rule == "path-ends" && x.state == "A"));
        let f = lint(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nope"}}}"#);
        assert_eq!(f[0].rule, "valid");
        assert!(f[0].message.contains("Nope"));
    }
}
