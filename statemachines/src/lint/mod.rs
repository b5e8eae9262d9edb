//! Static checks of a definition: validity plus opsplane's safety rules.
//!
//! # Rules
//! - `valid`: the definition passes the same validation as `CreateStateMachine`.
//! - `lambda-retry`: every Task whose resource is a Lambda (a function ARN or
//!   `arn:aws:states:::lambda:invoke`) has `Retry` rules whose `ErrorEquals` cover
//!   `Lambda.ServiceException`, `Lambda.AWSLambdaException`, `Lambda.SdkClientException`,
//!   `Lambda.TooManyRequestsException` and `Lambda.ClientExecutionTimeoutException` (or `States.ALL`),
//!   the transient Lambda service errors AWS recommends retrying
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html>).
//! - `task-timeout`: every Task has `TimeoutSeconds` (or `TimeoutSecondsPath`). Without it Step Functions
//!   waits up to 99999999 seconds for a task that will never answer
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html>).
//! - `retry-shadowed`: no retrier is unreachable because every error it names is matched by an earlier one
//!   (retriers are tried in order and the first match wins: `States.ALL` matches everything but
//!   `States.Runtime`, `States.TaskFailed` everything but `States.Timeout`, `States.HeartbeatTimeout` and
//!   `States.Runtime`), so its intervals and attempts are never used.
//! - `fail-error-path`: a Fail state's `ErrorPath` and `CausePath` name a field that every path reaching
//!   it has set (a `ResultPath` or a `Catch`'s `ResultPath` writes it). A missing one fails the execution
//!   with `States.Runtime` instead, which no `Catch` can handle and which hides the real error.
//! - `release-catch`: a Task that releases a resource (`@releases(...)`) has a `Catch` for `States.ALL`, so
//!   a failed release cannot turn a finished run into a failure that skips its outcome.
//! - `whole-state`: no Task passes the whole state (`"x.$": "$"`) to its resource except the first state
//!   of the workflow (whose input is the execution's, already within the limit): the state grows as the
//!   run goes, and a large environment would pass the 256 KiB payload quota
//!   (<https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>).
//! - `path-ends`: from every state some path reaches an end (no loop without an exit).
//! - `resource-release`: a state marks that it takes or gives back a resource with a marker in its
//!   `Comment`: `@acquires(<resource>)` or `@releases(<resource>)`, e.g. `@acquires(lock)`. Every path
//!   leaving an acquiring state on success must pass a state that releases the same resource before it
//!   ends. Paths include `Catch` edges, and the error exit of any Task, Parallel or Map without a
//!   `Catch` for `States.ALL` (an uncaught error fails the execution while the resource is held). A Fail
//!   state reached before the release is a leak too. Each Parallel branch and Map processor is checked
//!   on its own: what it acquires it must release.
//! - `lease-budget`: the lock's lease outlasts the longest stretch the workflow may hold the lock without
//!   renewing it, counted from the definition's own timeouts and retry budgets ([`lease`]).

mod lease;

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use crate::error::names;
use crate::model::{
    self, Dynamic, Kind, PathField, QueryLanguage, Retrier, State, StateMachine, Template,
    is_lambda_resource,
};
use crate::path::{Root, Step};

/// The Lambda service errors every Lambda Task must retry.
pub const LAMBDA_SERVICE_ERRORS: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
];

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule: `valid`, `lambda-retry`, `task-timeout`, `retry-shadowed`, `fail-error-path`,
    /// `release-catch`, `whole-state`, `path-ends`, `resource-release`, `lease-budget`.
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
    lint_machine(&sm, true, &mut out);
    out
}

fn lint_machine(sm: &StateMachine, top: bool, out: &mut Vec<Finding>) {
    for (i, st) in sm.states.iter().enumerate() {
        lint_task(st, top && i == sm.start_at, out);
        shadowed_retriers(st, out);
    }
    fail_error_paths(sm, out);
    if top {
        lease::lease_budget(sm, out);
    }
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
            Kind::Parallel { branches } => {
                branches.iter().for_each(|b| lint_machine(b, false, out))
            }
            Kind::Map(m) => lint_machine(&m.processor, false, out),
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

/// `task-timeout`, `release-catch` and `whole-state` for one state (`first`: the workflow's first state).
fn lint_task(st: &State, first: bool, out: &mut Vec<Finding>) {
    let Kind::Task(t) = &st.kind else {
        return;
    };
    let finding = |rule: &'static str, message: String| Finding {
        rule,
        state: st.name.to_string(),
        message,
    };
    if t.timeout.is_none() {
        out.push(finding(
            "task-timeout",
            "has no TimeoutSeconds: a task that never answers would hold the execution for a year; set it a \
             little above the function's own timeout"
                .into(),
        ));
    }
    if !markers(st, "@releases(").is_empty() && !catches_all(st) {
        out.push(finding(
            "release-catch",
            "releases a resource without a Catch for States.ALL: a failed release would fail a finished run \
             before its outcome is published"
                .into(),
        ));
    }
    if !first && let Some(params) = &st.parameters {
        let mut fields = Vec::new();
        whole_state_fields(params, "", &mut fields);
        for field in fields {
            out.push(finding(
                "whole-state",
                format!(
                    "passes the whole state as `{field}`: the state grows with the run and could pass the \
                     256 KiB payload quota; pass only the fields the resource reads"
                ),
            ));
        }
    }
}

/// The fields of a template that take the whole input (`"x.$": "$"`).
fn whole_state_fields(t: &Template, at: &str, out: &mut Vec<String>) {
    match t {
        Template::Path(p) if p.root == Root::Input && p.steps.is_empty() => out.push(at.to_owned()),
        Template::Jsonata(e) if e.trim() == "$states.input" => out.push(at.to_owned()),
        Template::Object(fields) => {
            for (k, v) in fields {
                let name = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                whole_state_fields(v, &name, out);
            }
        }
        Template::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                whole_state_fields(v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Whether an error named `error` is matched by a retrier listing `names_list`, as Step Functions matches.
fn covered_by(names_list: &[String], error: &str) -> bool {
    names_list.iter().any(|n| {
        n == error
            || (n == names::ALL && error != names::RUNTIME)
            || (n == names::TASK_FAILED
                && ![names::TIMEOUT, names::HEARTBEAT_TIMEOUT, names::RUNTIME].contains(&error))
    })
}

/// `retry-shadowed`: retriers every error of which an earlier retrier already matches.
fn shadowed_retriers(st: &State, out: &mut Vec<Finding>) {
    for (i, r) in st.retry.iter().enumerate() {
        let earlier: &[Retrier] = &st.retry[..i];
        let Some(by) = earlier.iter().position(|e| {
            r.error_equals
                .iter()
                .all(|n| covered_by(&e.error_equals, n))
        }) else {
            // Each error may be taken by a different earlier retrier.
            if !r.error_equals.is_empty()
                && r.error_equals
                    .iter()
                    .all(|n| earlier.iter().any(|e| covered_by(&e.error_equals, n)))
            {
                out.push(shadowed(st, i, r, "earlier retriers"));
            }
            continue;
        };
        out.push(shadowed(st, i, r, &format!("retrier {}", by + 1)));
    }
}

fn shadowed(st: &State, i: usize, r: &Retrier, by: &str) -> Finding {
    Finding {
        rule: "retry-shadowed",
        state: st.name.to_string(),
        message: format!(
            "retrier {} ({}) is never used: {by} already match every error it names; put the more specific \
             retrier first",
            i + 1,
            r.error_equals.join(", ")
        ),
    }
}

/// The top-level fields a state's output is known to have, given the fields of its input (`None`: nothing
/// is known, as after a `ResultPath` of `$`).
fn output_fields(st: &State, input: &BTreeSet<String>) -> BTreeSet<String> {
    if st.query_language == QueryLanguage::Jsonata {
        return match &st.output {
            None if matches!(
                st.kind,
                Kind::Task(_) | Kind::Map(_) | Kind::Parallel { .. }
            ) =>
            {
                BTreeSet::new()
            }
            None => input.clone(),
            Some(t) => template_fields(t, input),
        };
    }
    let keeps_all = matches!(st.output_path, PathField::Default)
        || matches!(&st.output_path, PathField::Path(p) if p.root == Root::Input && p.steps.is_empty());
    if !keeps_all {
        return BTreeSet::new();
    }
    match &st.kind {
        Kind::Choice { .. } | Kind::Wait(_) | Kind::Succeed | Kind::Fail { .. } => input.clone(),
        _ => {
            // The result: a Pass state's `Result` or `Parameters`, or for a Pass without them its
            // (unfiltered) input; anything else's result is unknown here.
            let result = match (&st.kind, &st.parameters) {
                (Kind::Pass { result: Some(v) }, _) => v
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default(),
                (Kind::Pass { .. }, Some(t)) => template_fields(t, input),
                (Kind::Pass { .. }, None) if matches!(st.input_path, PathField::Default) => {
                    input.clone()
                }
                _ => BTreeSet::new(),
            };
            with_result_path(&st.result_path, input, result)
        }
    }
}

/// Where a result lands: the fields of the document `ResultPath` leaves.
fn with_result_path(
    path: &PathField,
    input: &BTreeSet<String>,
    result: BTreeSet<String>,
) -> BTreeSet<String> {
    match path {
        PathField::Null => input.clone(),
        PathField::Path(p) if p.root == Root::Input => match p.steps.first() {
            None => result,
            Some(Step::Field(f)) => {
                let mut out = input.clone();
                out.insert(f.clone());
                out
            }
            Some(_) => input.clone(),
        },
        _ => result,
    }
}

/// The top-level fields of a template's value, when it is an object (or the input passed on whole).
fn template_fields(t: &Template, input: &BTreeSet<String>) -> BTreeSet<String> {
    match t {
        Template::Object(fields) => fields.iter().map(|(k, _)| k.clone()).collect(),
        Template::Literal(v) => v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        Template::Jsonata(e) if e.trim() == "$states.input" => input.clone(),
        // `$merge([$states.input, {'name': ...}])`: the input with one field added, as definitions write a
        // JSONata state's `Output` in place of a `ResultPath`.
        Template::Jsonata(e) => match e
            .trim()
            .strip_prefix("$merge([$states.input, {'")
            .and_then(|rest| rest.split_once('\''))
        {
            Some((name, _)) => {
                let mut out = input.clone();
                out.insert(name.to_owned());
                out
            }
            None => BTreeSet::new(),
        },
        Template::Path(p) if p.root == Root::Input && p.steps.is_empty() => input.clone(),
        _ => BTreeSet::new(),
    }
}

/// The fields a `Catch` leaves for the state it goes to.
fn caught_fields(st: &State, c: &model::Catcher, input: &BTreeSet<String>) -> BTreeSet<String> {
    let error: BTreeSet<String> = ["Error".to_owned(), "Cause".to_owned()].into();
    if st.query_language == QueryLanguage::Jsonata {
        return match &c.output {
            None => error,
            Some(t) => template_fields(t, input),
        };
    }
    with_result_path(&c.result_path, input, error)
}

/// `fail-error-path`: for each state, the top-level fields every path into it has set (a must-analysis
/// over the machine's edges, success and `Catch`), then each Fail state's `ErrorPath` and `CausePath`.
fn fail_error_paths(sm: &StateMachine, out: &mut Vec<Finding>) {
    let n = sm.states.len();
    let mut known: Vec<Option<BTreeSet<String>>> = vec![None; n];
    known[sm.start_at] = Some(BTreeSet::new());
    let mut work = vec![sm.start_at];
    let flow = |to: usize, fields: BTreeSet<String>, known: &mut Vec<Option<BTreeSet<String>>>| {
        let merged = match &known[to] {
            None => fields,
            Some(have) => have.intersection(&fields).cloned().collect(),
        };
        if known[to].as_ref() != Some(&merged) {
            known[to] = Some(merged);
            return true;
        }
        false
    };
    while let Some(i) = work.pop() {
        let st = &sm.states[i];
        let input = known[i].clone().unwrap_or_default();
        let output = output_fields(st, &input);
        let mut edges: Vec<(usize, BTreeSet<String>)> =
            st.next.iter().map(|&j| (j, output.clone())).collect();
        if let Kind::Choice { choices, default } = &st.kind {
            edges.extend(choices.iter().map(|c| (c.next, output.clone())));
            edges.extend(default.iter().map(|&j| (j, output.clone())));
        }
        edges.extend(
            st.catch
                .iter()
                .map(|c| (c.next, caught_fields(st, c, &input))),
        );
        for (j, fields) in edges {
            if flow(j, fields, &mut known) {
                work.push(j);
            }
        }
    }
    for (i, st) in sm.states.iter().enumerate() {
        let (Kind::Fail { error, cause }, Some(have)) = (&st.kind, &known[i]) else {
            continue;
        };
        for (field, value) in [("ErrorPath", error), ("CausePath", cause)] {
            let Some(Dynamic::Path(p)) = value else {
                continue;
            };
            let Some(Step::Field(top)) = p.steps.first() else {
                continue;
            };
            if p.root == Root::Input && !have.contains(top) {
                out.push(Finding {
                    rule: "fail-error-path",
                    state: st.name.to_string(),
                    message: format!(
                        "{field} reads `{top}`, which some path reaching this state does not set: the \
                         execution would end States.Runtime instead of the error; have every Catch on the \
                         way write `{top}` (ResultPath \"$.{top}\")"
                    ),
                });
            }
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

    const RETRY: &str = r#"[{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]}]"#;
    const CATCH_ALL: &str = r#"[{"ErrorEquals": ["States.ALL"], "Next": "Done"}]"#;

    fn def(states: &str) -> String {
        format!(r#"{{"StartAt": "Lock", "States": {states}}}"#)
    }

    fn rules(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn clean_lock_workflow_passes() {
        let d = def(&format!(
            r#"{{
            "Lock": {{"Type": "Task", "Comment": "@acquires(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "TimeoutSeconds": 75, "Retry": {RETRY}, "Next": "Work"}},
            "Work": {{"Type": "Pass", "Next": "Unlock"}},
            "Unlock": {{"Type": "Task", "Comment": "@releases(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "TimeoutSeconds": 75, "Retry": {RETRY}, "Catch": {CATCH_ALL}, "Next": "Done"}},
            "Done": {{"Type": "Succeed"}}
        }}"#
        ));
        assert_eq!(lint(&d), vec![]);
    }

    #[test]
    fn uncaught_task_after_acquire_leaks() {
        let d = def(&format!(
            r#"{{
            "Lock": {{"Type": "Task", "Comment": "@acquires(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "TimeoutSeconds": 75, "Retry": {RETRY}, "Next": "Apply"}},
            "Apply": {{"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:apply", "TimeoutSeconds": 75, "Retry": {RETRY}, "Next": "Unlock"}},
            "Unlock": {{"Type": "Task", "Comment": "@releases(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "TimeoutSeconds": 75, "Retry": {RETRY}, "Catch": {CATCH_ALL}, "Next": "Done"}},
            "Done": {{"Type": "Succeed"}}
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
    fn the_client_execution_timeout_must_be_retried_too() {
        let old = r#"[{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]}]"#;
        let d = def(&format!(
            r#"{{"Lock": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "lock"}}, "TimeoutSeconds": 75, "Retry": {old}, "End": true}}}}"#
        ));
        let f = lint(&d);
        assert_eq!(rules(&f), ["lambda-retry"], "{f:?}");
        assert!(
            f[0].message
                .contains("Lambda.ClientExecutionTimeoutException"),
            "{}",
            f[0]
        );
    }

    #[test]
    fn a_task_without_a_timeout_is_flagged() {
        let d = def(&format!(
            r#"{{"Lock": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "lock"}}, "Retry": {RETRY}, "Next": "Notify"}},
                "Notify": {{"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "Parameters": {{"Entries": []}}, "TimeoutSecondsPath": "$.t", "End": true}}}}"#
        ));
        let f = lint(&d);
        assert_eq!(rules(&f), ["task-timeout"], "{f:?}");
        assert_eq!(f[0].state, "Lock");
    }

    #[test]
    fn a_retrier_shadowed_by_an_earlier_one_is_flagged() {
        // dr-drill's Teardown as it was: States.TaskFailed first swallows every Lambda service error.
        let shadowing = r#"[{"ErrorEquals": ["Internal", "States.TaskFailed"]}, {"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]}, {"ErrorEquals": ["Throttled"]}]"#;
        let task = |retry: &str| {
            def(&format!(
                r#"{{"Lock": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "f"}}, "TimeoutSeconds": 330, "Retry": {retry}, "End": true}}}}"#
            ))
        };
        let f = lint(&task(shadowing));
        assert_eq!(rules(&f), ["retry-shadowed", "retry-shadowed"], "{f:?}");
        assert!(f[0].message.starts_with("retrier 2 "), "{}", f[0]);
        assert!(f[1].message.starts_with("retrier 3 "), "{}", f[1]);
        // Split across two earlier retriers is shadowed too; the specific ones first is clean.
        let split = r#"[{"ErrorEquals": ["A"]}, {"ErrorEquals": ["B"]}, {"ErrorEquals": ["A", "B"]}, {"ErrorEquals": ["States.ALL"]}]"#;
        let f = lint(&task(split));
        assert_eq!(rules(&f), ["retry-shadowed"], "{f:?}");
        let ordered = r#"[{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]}, {"ErrorEquals": ["Throttled"]}, {"ErrorEquals": ["Internal", "States.TaskFailed"]}, {"ErrorEquals": ["States.Timeout"]}]"#;
        assert_eq!(lint(&task(ordered)), vec![]);
    }

    #[test]
    fn a_fail_state_reading_a_field_some_path_does_not_set_is_flagged() {
        // provision's record catch as it was: it wrote `record_error`, the Fail reads `error`.
        let machine = |record_catch: &str| {
            def(&format!(
                r#"{{
                "Lock": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "f"}}, "TimeoutSeconds": 75, "Retry": {RETRY}, "ResultPath": "$.lock", "Catch": [{{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}}], "Next": "Record"}},
                "Record": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "f"}}, "TimeoutSeconds": 75, "Retry": {RETRY}, "ResultPath": "$.record", "Catch": [{{"ErrorEquals": ["States.ALL"], "ResultPath": "{record_catch}", "Next": "Notify"}}], "Next": "Done"}},
                "Done": {{"Type": "Succeed"}},
                "Notify": {{"Type": "Task", "QueryLanguage": "JSONata", "Resource": "arn:aws:states:::events:putEvents", "Arguments": {{"Entries": []}}, "TimeoutSeconds": 30, "Output": "{{% $states.input %}}", "Catch": [{{"ErrorEquals": ["States.ALL"], "Output": "{{% $states.input %}}", "Next": "Failed"}}], "Next": "Failed"}},
                "Failed": {{"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}}
            }}"#
            ))
        };
        let f = lint(&machine("$.record_error"));
        assert_eq!(rules(&f), ["fail-error-path", "fail-error-path"], "{f:?}");
        assert_eq!(f[0].state, "Failed");
        assert!(f[0].message.contains("ErrorPath reads `error`"), "{}", f[0]);
        assert_eq!(lint(&machine("$.error")), vec![]);
        // A Catch with the default ResultPath leaves the error object itself: `$.Error` is there.
        let d = def(&format!(
            r#"{{"Lock": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "f"}}, "TimeoutSeconds": 75, "Retry": {RETRY}, "Catch": [{{"ErrorEquals": ["States.ALL"], "Next": "Failed"}}], "End": true}},
                "Failed": {{"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"}}}}"#
        ));
        assert_eq!(lint(&d), vec![]);
    }

    #[test]
    fn a_release_without_a_catch_is_flagged() {
        let d = def(&format!(
            r#"{{
            "Lock": {{"Type": "Task", "Comment": "@acquires(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "TimeoutSeconds": 75, "Retry": {RETRY}, "Next": "Unlock"}},
            "Unlock": {{"Type": "Task", "Comment": "@releases(lock)", "Resource": "arn:aws:lambda:us-east-1:1:function:lock", "TimeoutSeconds": 75, "Retry": {RETRY}, "Next": "Done"}},
            "Done": {{"Type": "Succeed"}}
        }}"#
        ));
        let f = lint(&d);
        assert_eq!(rules(&f), ["release-catch"], "{f:?}");
        assert_eq!(f[0].state, "Unlock");
    }

    #[test]
    fn passing_the_whole_state_is_flagged_after_the_first_state() {
        let d = def(&format!(
            r#"{{
            "Lock": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "f", "Payload": {{"input.$": "$"}}}}, "TimeoutSeconds": 75, "Retry": {RETRY}, "ResultPath": "$.v", "Next": "Record"}},
            "Record": {{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {{"FunctionName": "f", "Payload": {{"state.$": "$", "plan.$": "$.plan"}}}}, "TimeoutSeconds": 75, "Retry": {RETRY}, "End": true}}
        }}"#
        ));
        let f = lint(&d);
        assert_eq!(rules(&f), ["whole-state"], "{f:?}");
        assert_eq!(f[0].state, "Record");
        assert!(f[0].message.contains("`Payload.state`"), "{}", f[0]);
    }

    #[test]
    fn the_definitions_are_clean() {
        let defs = [
            ("backup", include_str!("../../definitions/backup.asl.json")),
            (
                "dr-drill",
                include_str!("../../definitions/dr-drill.asl.json"),
            ),
            ("drift", include_str!("../../definitions/drift.asl.json")),
            (
                "health-sweep",
                include_str!("../../definitions/health-sweep.asl.json"),
            ),
            (
                "provision",
                include_str!("../../definitions/provision.asl.json"),
            ),
            (
                "rollback",
                include_str!("../../definitions/rollback.asl.json"),
            ),
        ];
        let findings: Vec<String> = defs
            .iter()
            .flat_map(|(name, text)| lint(text).into_iter().map(move |f| format!("{name}: {f}")))
            .collect();
        assert!(findings.is_empty(), "{}", findings.join("\n"));
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
