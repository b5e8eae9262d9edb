//! The interpreter: runs a state machine's states on a virtual clock, records history events.
//!
//! Each branch of execution (the top level, every Parallel branch, every Map iteration) carries its own
//! virtual time; Wait states and retry intervals advance it, and a Parallel or Map joins its branches at
//! the latest of their times. Branches run as futures on the execution's own task (no spawn per state
//! or per iteration), so a state transition costs a function call, not a scheduler round trip.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value, json};

use crate::choice;
use crate::engine::{
    Execution, FunctionError, Inner, Status, TaskContext, TokenReply, TokenSlot, function_name,
};
use crate::error::{Failure, MAX_PAYLOAD_BYTES, names};
use crate::model::{
    Catcher, Dynamic, Kind, MapSpec, PathField, QueryLanguage, Retrier, Rule, State, StateMachine,
    Template, WaitSpec,
};
use crate::path::{Path, Root};

/// Variables visible to a branch: its own, then its parents'.
pub(crate) struct Scope {
    parent: Option<Arc<Scope>>,
    vars: Mutex<HashMap<String, Value>>,
}

impl Scope {
    fn new(parent: Option<Arc<Scope>>) -> Arc<Scope> {
        Arc::new(Scope {
            parent,
            vars: Mutex::new(HashMap::new()),
        })
    }

    fn get(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.lock().expect("vars lock").get(name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.get(name))
    }

    fn all(&self, out: &mut Vec<(String, Value)>) {
        if let Some(p) = &self.parent {
            p.all(out);
        }
        for (k, v) in self.vars.lock().expect("vars lock").iter() {
            out.retain(|(n, _)| n != k);
            out.push((k.clone(), v.clone()));
        }
    }

    fn set_all(&self, vals: Vec<(String, Value)>) {
        let mut vars = self.vars.lock().expect("vars lock");
        for (k, v) in vals {
            vars.insert(k, v);
        }
    }
}

/// One line of execution.
pub(crate) struct Branch {
    now: DateTime<Utc>,
    scope: Arc<Scope>,
    prev_event: u64,
    /// False inside a DISTRIBUTED Map: its iterations are child executions with their own histories.
    record: bool,
}

pub(crate) struct Runner {
    inner: Arc<Inner>,
    exec: Arc<Execution>,
}

/// When a state was entered: virtual time and the id of its `...StateEntered` event (0 without history).
#[derive(Clone, Copy)]
struct Entered {
    at: DateTime<Utc>,
    id: u64,
}

/// What is known while evaluating a state's expressions.
struct Env<'a> {
    runner: &'a Runner,
    state: &'a State,
    scope: &'a Scope,
    entered: Entered,
    retry_count: u32,
    token: Option<&'a str>,
    map_item: Option<(usize, &'a Value)>,
}

impl Env<'_> {
    /// A JSONata state that produces no result of its own (Pass, Wait): `Assign` and `Output` both read the
    /// state's input, and the variables are set only once both have evaluated, so a failing `Output` leaves
    /// them untouched.
    fn jsonata_pass_through(&self, raw: Value) -> Result<Value, Failure> {
        let assign = self
            .state
            .assign
            .as_ref()
            .map(|a| self.assign(a, &raw, None))
            .transpose()?;
        let out = match &self.state.output {
            Some(o) => self.ja_template(o, &raw, None)?,
            None => raw,
        };
        if let Some(a) = assign {
            self.scope.set_all(a);
        }
        Ok(out)
    }

    /// The preamble of AWS's runtime error causes.
    fn prefix(&self) -> String {
        if self.entered.id == 0 {
            format!(
                "An error occurred while executing the state '{}'.",
                self.state.name
            )
        } else {
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}).",
                self.state.name, self.entered.id
            )
        }
    }

    fn context(&self) -> Value {
        let exec = &self.runner.exec;
        let mut c = json!({
            "Execution": {
                "Id": exec.arn,
                "Input": exec.input,
                "Name": exec.name,
                "RoleArn": format!("arn:aws:iam::{}:role/opsplane-local", self.runner.inner.account),
                "StartTime": ts(exec.start),
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": ts(self.entered.at),
                "Name": &*self.state.name,
                "RetryCount": self.retry_count,
            },
            "StateMachine": {
                "Id": exec.machine.arn,
                "Name": exec.machine.name,
            },
        });
        if let Some(t) = self.token {
            c["Task"] = json!({ "Token": t });
        }
        if let Some((i, v)) = self.map_item {
            c["Map"] = json!({ "Item": { "Index": i, "Value": v } });
        }
        c
    }

    /// Evaluates a path; `None` when a definite path selects nothing.
    fn select(&self, path: &Path, input: &Value) -> Result<Option<Value>, Failure> {
        match &path.root {
            Root::Input => Ok(path.select(input)),
            Root::Context => Ok(path.select(&self.context())),
            Root::Var(name) => match self.scope.get(name) {
                Some(v) => Ok(path.select(&v)),
                None => Err(Failure::runtime(format!(
                    "The JSONPath '{path}' could not be found: no variable named '{name}'"
                ))),
            },
        }
    }

    fn select_required(&self, path: &Path, input: &Value, field: &str) -> Result<Value, Failure> {
        self.select(path, input)?.ok_or_else(|| {
            Failure::runtime(format!(
                "{} Invalid path '{path}' : No results for path: {field}",
                self.prefix()
            ))
        })
    }

    fn template(&self, t: &Template, input: &Value, field: &str) -> Result<Value, Failure> {
        Ok(match t {
            Template::Literal(v) => v.clone(),
            Template::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, v) in fields {
                    m.insert(k.clone(), self.template(v, input, field)?);
                }
                Value::Object(m)
            }
            Template::Array(items) => {
                Value::Array(items.iter().map(|x| self.template(x, input, field)).collect::<Result<_, _>>()?)
            }
            Template::Path(p) => self.select(p, input)?.ok_or_else(|| {
                Failure::runtime(format!(
                    "{} The JSONPath '{p}' specified for the field '{field}' could not be found in the input",
                    self.prefix()
                ))
            })?,
            Template::Call(c) => c.eval(&mut |p: &Path| {
                self.select(p, input)?
                    .ok_or_else(|| Failure::runtime(format!("The JSONPath '{p}' could not be found in the input")))
            })?,
            Template::Jsonata(e) => return self.jsonata_value(e, input, None),
        })
    }

    fn states_binding(&self, input: &Value, extra: Option<(&str, &Value)>) -> Value {
        let mut m = Map::new();
        m.insert("input".into(), input.clone());
        m.insert("context".into(), self.context());
        if let Some((k, v)) = extra {
            m.insert(k.into(), v.clone());
        }
        Value::Object(m)
    }

    fn jsonata(
        &self,
        expr: &str,
        input: &Value,
        extra: Option<(&str, &Value)>,
    ) -> Result<Option<Value>, Failure> {
        let states = self.states_binding(input, extra);
        let mut vars = Vec::new();
        self.scope.all(&mut vars);
        let mut bindings: Vec<(&str, &Value)> = vars.iter().map(|(k, v)| (k.as_str(), v)).collect();
        bindings.push(("states", &states));
        crate::jsonata::eval(expr, &bindings)
    }

    fn jsonata_value(
        &self,
        expr: &str,
        input: &Value,
        extra: Option<(&str, &Value)>,
    ) -> Result<Value, Failure> {
        self.jsonata(expr, input, extra)?.ok_or_else(|| {
            Failure::query(format!(
                "{} The JSONata expression '{expr}' returned nothing (undefined).",
                self.prefix()
            ))
        })
    }

    /// Evaluates a `JSONata` template with `$states.<extra>` bound (e.g. `result`, `errorOutput`).
    fn ja_template(
        &self,
        t: &Template,
        input: &Value,
        extra: Option<(&str, &Value)>,
    ) -> Result<Value, Failure> {
        match t {
            Template::Literal(v) => Ok(v.clone()),
            Template::Jsonata(e) => self.jsonata_value(e, input, extra),
            Template::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, v) in fields {
                    match v {
                        // Fields whose expression is undefined are left out, as JSONata does.
                        Template::Jsonata(e) => {
                            if let Some(x) = self.jsonata(e, input, extra)? {
                                m.insert(k.clone(), x);
                            }
                        }
                        other => {
                            m.insert(k.clone(), self.ja_template(other, input, extra)?);
                        }
                    }
                }
                Ok(Value::Object(m))
            }
            Template::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|x| self.ja_template(x, input, extra))
                    .collect::<Result<_, _>>()?,
            )),
            Template::Path(_) | Template::Call(_) => self.template(t, input, "Arguments"),
        }
    }

    fn dynamic(&self, d: &Dynamic, input: &Value, field: &str) -> Result<Value, Failure> {
        match d {
            Dynamic::Value(v) => Ok(v.clone()),
            Dynamic::Path(p) => self.select_required(p, input, field),
            Dynamic::Jsonata(e) => self.jsonata_value(e, input, None),
            Dynamic::Call(c) => self.template(&Template::Call((**c).clone()), input, field),
        }
    }

    /// Evaluates `Assign` (both languages) and returns the new bindings without applying them, because
    /// every expression of a state sees the variables as they were when it was entered.
    fn assign(
        &self,
        t: &Template,
        input: &Value,
        extra: Option<(&str, &Value)>,
    ) -> Result<Vec<(String, Value)>, Failure> {
        let v = match self.state.query_language {
            QueryLanguage::JsonPath => self.template(t, input, "Assign")?,
            QueryLanguage::Jsonata => self.ja_template(t, input, extra)?,
        };
        Ok(match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => Vec::new(),
        })
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

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
        record: true,
    };
    runner.event(
        &mut br,
        "ExecutionStarted",
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
        record: true,
    };
    match status {
        Status::Succeeded => {
            runner.event(&mut br_end, "ExecutionSucceeded", json!({"output": output}))
        }
        Status::Failed => runner.event(
            &mut br_end,
            "ExecutionFailed",
            json!({"error": error, "cause": cause}),
        ),
        Status::TimedOut => runner.event(
            &mut br_end,
            "ExecutionTimedOut",
            json!({"error": error, "cause": cause}),
        ),
        _ => runner.event(
            &mut br_end,
            "ExecutionAborted",
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

/// Forgets a task token when its task ends, however it ends (answered, timed out, or stopped).
struct TokenGuard<'a> {
    inner: &'a Inner,
    token: &'a str,
}

impl Drop for TokenGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut tokens) = self.inner.tokens.lock() {
            tokens.remove(self.token);
        }
    }
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

type StepResult = Result<(Value, Option<usize>), Failure>;

fn matches_error(names_list: &[String], error: &str) -> bool {
    names_list.iter().any(|n| {
        n == error
            || (n == names::ALL && error != names::RUNTIME)
            || (n == names::TASK_FAILED
                && error != names::TIMEOUT
                && error != names::RUNTIME
                && error != names::HEARTBEAT_TIMEOUT)
    })
}

/// The delay before retry number `attempt` (0-based) of a retrier, jitter applied.
pub(crate) fn retry_delay(r: &Retrier, attempt: u32) -> Duration {
    let mut secs = r.interval_seconds * r.backoff_rate.powi(attempt as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max);
    }
    if r.jitter_full {
        secs *= fastrand::f64();
    }
    Duration::from_secs_f64(secs.max(0.0))
}

impl Runner {
    fn last_event_id(&self) -> u64 {
        self.exec.history.lock().expect("history lock").len() as u64
    }

    fn event(&self, br: &mut Branch, event_type: &'static str, details: Value) {
        if !self.inner.record_history || !br.record {
            return;
        }
        let mut h = self.exec.history.lock().expect("history lock");
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

    fn recording(&self, br: &Branch) -> bool {
        self.inner.record_history && br.record
    }

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
                            self.event(br, "EvaluationFailed", json!({"state": &*st.name, "error": f.error, "cause": f.cause}));
                        }
                        return Err(f);
                    }
                };
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
                    None => return Ok(out),
                }
            }
        }
        .boxed()
    }

    async fn run_state(
        &self,
        st: &State,
        raw: Value,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let scope = br.scope.clone();
        let env = Env {
            runner: self,
            state: st,
            scope: &scope,
            entered,
            retry_count: 0,
            token: None,
            map_item: None,
        };
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        match &st.kind {
            Kind::Pass { result } => {
                if jsonata {
                    return Ok((env.jsonata_pass_through(raw)?, st.next));
                }
                let input = apply_input_path(&env, st, &raw)?;
                let result = match (&st.parameters, result) {
                    (Some(p), _) => env.template(p, &input, "Parameters")?,
                    (None, Some(r)) => r.clone(),
                    (None, None) => input,
                };
                if let Some(a) = &st.assign {
                    let vals = env.assign(a, &result, None)?;
                    scope.set_all(vals);
                }
                let out = apply_result_path(&env, st, raw, result)?;
                Ok((apply_output_path(&env, st, out)?, st.next))
            }
            Kind::Succeed => {
                if jsonata {
                    let out = match &st.output {
                        Some(o) => env.ja_template(o, &raw, None)?,
                        None => raw,
                    };
                    return Ok((out, None));
                }
                let input = apply_input_path(&env, st, &raw)?;
                Ok((apply_output_path(&env, st, input)?, None))
            }
            Kind::Fail { error, cause } => {
                let text = |d: &Option<Dynamic>, field: &str| -> Result<String, Failure> {
                    Ok(match d {
                        None => String::new(),
                        Some(d) => match env.dynamic(d, &raw, field)? {
                            Value::String(s) => s,
                            other if jsonata => {
                                return Err(Failure::query(format!(
                                    "The {field} field must evaluate to a string, not {other}"
                                )));
                            }
                            other => other.to_string(),
                        },
                    })
                };
                let e = text(error, "ErrorPath")?;
                let c = text(cause, "CausePath")?;
                Err(Failure::new(e, c))
            }
            Kind::Wait(spec) => {
                let input = if jsonata {
                    raw.clone()
                } else {
                    apply_input_path(&env, st, &raw)?
                };
                let until = match spec {
                    WaitSpec::Seconds(d) => {
                        let v = env.dynamic(d, &input, "SecondsPath")?;
                        let field = match d {
                            Dynamic::Path(p) => format!("{p} == {v}"),
                            _ => v.to_string(),
                        };
                        let problem = match v.as_f64() {
                            Some(x) if x.fract() != 0.0 => Some("cannot be parsed as a long value"),
                            Some(x) if x < 0.0 => Some("references a negative value"),
                            Some(_) => None,
                            None => Some("does not reference a valid integer value"),
                        };
                        if let Some(problem) = problem {
                            let cause = format!(
                                "{} The SecondsPath parameter {problem}: {field}",
                                env.prefix()
                            );
                            return Err(if jsonata {
                                Failure::query(cause)
                            } else {
                                Failure::runtime(cause)
                            });
                        }
                        let secs = v.as_f64().unwrap_or_default();
                        br.now + chrono::Duration::milliseconds((secs * 1000.0) as i64)
                    }
                    WaitSpec::Timestamp(d) => {
                        let v = env.dynamic(d, &input, "TimestampPath")?;
                        let t = v.as_str().and_then(choice::parse_timestamp).ok_or_else(|| {
                            let f = Failure::runtime(format!(
                                "{} The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {v}",
                                env.prefix()
                            ));
                            if jsonata { Failure::query(f.cause) } else { f }
                        })?;
                        t.with_timezone(&Utc)
                    }
                };
                if until > br.now {
                    br.now = until;
                }
                // A long wait still lets a stop request or other branches in.
                tokio::task::yield_now().await;
                if jsonata {
                    return Ok((env.jsonata_pass_through(raw)?, st.next));
                }
                if let Some(a) = &st.assign {
                    let vals = env.assign(a, &input, None)?;
                    scope.set_all(vals);
                }
                Ok((apply_output_path(&env, st, input)?, st.next))
            }
            Kind::Choice { choices, default } => {
                let input = if jsonata {
                    raw.clone()
                } else {
                    apply_input_path(&env, st, &raw)?
                };
                let mut chosen = None;
                for c in choices {
                    let holds = match &c.rule {
                        Rule::Condition(t) => match env.ja_template(t, &input, None)? {
                            Value::Bool(b) => b,
                            other => {
                                return Err(Failure::query(format!(
                                    "{} The Condition field must evaluate to a boolean, not {other}",
                                    env.prefix()
                                )));
                            }
                        },
                        rule => choice::eval(rule, &mut |p: &Path| env.select(p, &input))?,
                    };
                    if holds {
                        chosen = Some(c);
                        break;
                    }
                }
                let next = match (chosen, default) {
                    (Some(c), _) => c.next,
                    (None, Some(d)) => *d,
                    (None, None) => {
                        return Err(Failure::new(
                            names::NO_CHOICE_MATCHED,
                            format!(
                                "No Matches! at state '{}' (no choice rule matched and there is no Default)",
                                st.name
                            ),
                        ));
                    }
                };
                let assign_t = chosen
                    .and_then(|c| c.assign.as_ref())
                    .or(st.assign.as_ref());
                let output_t = chosen
                    .and_then(|c| c.output.as_ref())
                    .or(st.output.as_ref());
                let assign = assign_t.map(|a| env.assign(a, &input, None)).transpose()?;
                let out = if jsonata {
                    match output_t {
                        Some(o) => env.ja_template(o, &input, None)?,
                        None => input,
                    }
                } else {
                    apply_output_path(&env, st, input)?
                };
                if let Some(a) = assign {
                    scope.set_all(a);
                }
                Ok((out, Some(next)))
            }
            Kind::Task(_) | Kind::Parallel { .. } | Kind::Map(_) => {
                self.run_with_retry(st, raw, br, entered).await
            }
        }
    }

    /// Runs a Task, Parallel or Map with its `Retry` and `Catch` rules.
    async fn run_with_retry(
        &self,
        st: &State,
        raw: Value,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let mut attempts = vec![0u32; st.retry.len()];
        let mut retry_count = 0u32;
        loop {
            let result = self.attempt(st, &raw, br, entered, retry_count).await;
            let failure = match result {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if let Some((i, r)) = st
                .retry
                .iter()
                .enumerate()
                .find(|(_, r)| matches_error(&r.error_equals, &failure.error))
                && attempts[i] < r.max_attempts
            {
                let delay = retry_delay(r, attempts[i]);
                attempts[i] += 1;
                retry_count += 1;
                br.now += chrono::Duration::from_std(delay).unwrap_or_default();
                tokio::task::yield_now().await;
                continue;
            }
            if let Some(c) = st
                .catch
                .iter()
                .find(|c| matches_error(&c.error_equals, &failure.error))
            {
                return self.caught(st, c, raw, &failure, br, entered);
            }
            return Err(failure);
        }
    }

    fn caught(
        &self,
        st: &State,
        c: &Catcher,
        raw: Value,
        failure: &Failure,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let scope = br.scope.clone();
        let env = Env {
            runner: self,
            state: st,
            scope: &scope,
            entered,
            retry_count: 0,
            token: None,
            map_item: None,
        };
        let err_out = failure.to_output();
        if st.query_language == QueryLanguage::Jsonata {
            let extra = Some(("errorOutput", &err_out));
            let assign = c
                .assign
                .as_ref()
                .map(|a| env.assign(a, &raw, extra))
                .transpose()?;
            let out = match &c.output {
                Some(o) => env.ja_template(o, &raw, extra)?,
                None => err_out.clone(),
            };
            if let Some(a) = assign {
                scope.set_all(a);
            }
            return Ok((out, Some(c.next)));
        }
        if let Some(a) = &c.assign {
            let vals = env.assign(a, &err_out, None)?;
            scope.set_all(vals);
        }
        let out = match &c.result_path {
            PathField::Default => err_out,
            PathField::Null => raw,
            PathField::Path(p) => p.assign(raw, err_out).map_err(Failure::runtime)?,
        };
        Ok((out, Some(c.next)))
    }

    async fn attempt(
        &self,
        st: &State,
        raw: &Value,
        br: &mut Branch,
        entered: Entered,
        retry_count: u32,
    ) -> StepResult {
        let scope = br.scope.clone();
        let env = Env {
            runner: self,
            state: st,
            scope: &scope,
            entered,
            retry_count,
            token: None,
            map_item: None,
        };
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let input = if jsonata {
            raw.clone()
        } else {
            apply_input_path(&env, st, raw)?
        };
        let result = match &st.kind {
            Kind::Task(spec) => self.task(&env, st, spec, &input, br).await?,
            Kind::Parallel { branches } => {
                let branch_input = match &st.parameters {
                    Some(p) if jsonata => env.ja_template(p, &input, None)?,
                    Some(p) => env.template(p, &input, "Parameters")?,
                    None => input.clone(),
                };
                if retry_count == 0 {
                    self.event(br, "ParallelStateStarted", Value::Null);
                }
                let start = br.now;
                let (prev, record) = (br.prev_event, br.record);
                let futs = branches.iter().map(|b| {
                    let bi = branch_input.clone();
                    let scope = Scope::new(Some(br.scope.clone()));
                    async move {
                        let mut sub = Branch {
                            now: start,
                            scope,
                            prev_event: prev,
                            record,
                        };
                        match self.run_states(b, bi, &mut sub).await {
                            Ok(v) => Ok((v, sub.now)),
                            Err(f) => Err((f, sub.now)),
                        }
                    }
                });
                // The first branch to fail fails the state and the others are abandoned, as on AWS
                // (a branch waiting for a callback must not hold the failure back).
                let results = futures::future::try_join_all(futs).await;
                let mut out = Vec::new();
                match results {
                    Ok(done) => {
                        for (v, t) in done {
                            br.now = br.now.max(t);
                            out.push(v);
                        }
                    }
                    Err((f, t)) => {
                        br.now = br.now.max(t);
                        self.event(
                            br,
                            "ParallelStateFailed",
                            json!({"error": f.error, "cause": f.cause}),
                        );
                        return Err(f);
                    }
                }
                Value::Array(out)
            }
            Kind::Map(spec) => match self.map(&env, st, spec, &input, br).await {
                Ok(v) => v,
                Err(f) => {
                    // Failures inside the iterations were recorded where they happened; a failure of the
                    // Map's own configuration shows up as MapStateFailed on a DISTRIBUTED Map.
                    if f.error == names::QUERY_EVALUATION_ERROR
                        || (spec.distributed && f.error == names::RUNTIME)
                    {
                        self.event(
                            br,
                            "MapStateFailed",
                            json!({"error": f.error, "cause": f.cause}),
                        );
                    }
                    return Err(f);
                }
            },
            _ => unreachable!("only Task, Parallel and Map retry"),
        };
        let env = Env {
            runner: self,
            state: st,
            scope: &scope,
            entered,
            retry_count,
            token: None,
            map_item: None,
        };
        if jsonata {
            let extra = Some(("result", &result));
            let assign = st
                .assign
                .as_ref()
                .map(|a| env.assign(a, raw, extra))
                .transpose()?;
            let out = match &st.output {
                Some(o) => env.ja_template(o, raw, extra)?,
                None => result,
            };
            if let Some(a) = assign {
                scope.set_all(a);
            }
            return Ok((out, st.next));
        }
        let result = match &st.result_selector {
            Some(t) => env.template(t, &result, "ResultSelector")?,
            None => result,
        };
        if let Some(a) = &st.assign {
            let vals = env.assign(a, &result, None)?;
            scope.set_all(vals);
        }
        let out = apply_result_path(&env, st, raw.clone(), result)?;
        Ok((apply_output_path(&env, st, out)?, st.next))
    }

    async fn task(
        &self,
        env: &Env<'_>,
        st: &State,
        spec: &crate::model::TaskSpec,
        input: &Value,
        br: &mut Branch,
    ) -> Result<Value, Failure> {
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let resource = spec.resource.as_str();
        let (base, wait_token) = match resource.strip_suffix(".waitForTaskToken") {
            Some(b) => (b, true),
            None => (resource, false),
        };
        let token = wait_token.then(|| uuid::Uuid::new_v4().to_string());
        let env = Env {
            token: token.as_deref(),
            ..*env
        };
        let args = match &st.parameters {
            Some(p) if jsonata => env.ja_template(p, input, None)?,
            Some(p) => env.template(p, input, "Parameters")?,
            None => input.clone(),
        };
        let secs = |d: &Option<Dynamic>, field: &str| -> Result<Option<u64>, Failure> {
            match d {
                None => Ok(None),
                Some(d) => {
                    let v = env.dynamic(d, input, field)?;
                    v.as_u64().filter(|x| *x > 0).map(Some).ok_or_else(|| {
                        Failure::runtime(format!("The {field} field refers to value {v} which is not a valid positive integer"))
                    })
                }
            }
        };
        let timeout = secs(&spec.timeout, "TimeoutSecondsPath")?;
        let heartbeat = secs(&spec.heartbeat, "HeartbeatSecondsPath")?;

        let lambda_invoke = base == "arn:aws:states:::lambda:invoke";
        let plain_lambda = base.contains(":lambda:") && base.contains(":function:");
        let (handler_key, payload) = if lambda_invoke {
            let f = args
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Failure::runtime(format!(
                        "The task '{}' of resource lambda:invoke needs the parameter FunctionName",
                        st.name
                    ))
                })?;
            // An absent or null Payload reaches the function as an empty event.
            let payload = args
                .get("Payload")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            (function_name(f).to_string(), payload)
        } else if plain_lambda {
            (function_name(base).to_string(), args.clone())
        } else {
            (base.to_string(), args.clone())
        };
        let (scheduled, started, succeeded, failed, timed_out) = if plain_lambda {
            (
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionSucceeded",
                "LambdaFunctionFailed",
                "LambdaFunctionTimedOut",
            )
        } else {
            (
                "TaskScheduled",
                "TaskStarted",
                "TaskSucceeded",
                "TaskFailed",
                "TaskTimedOut",
            )
        };
        if self.recording(br) {
            self.event(br, scheduled, json!({"resource": resource, "parameters": args, "timeoutInSeconds": timeout, "heartbeatInSeconds": heartbeat}));
            self.event(br, started, json!({"resource": resource}));
        }
        let handler = self
            .inner
            .handlers
            .read()
            .expect("handlers lock")
            .get(&handler_key)
            .cloned();
        let Some(handler) = handler else {
            let f = if lambda_invoke || plain_lambda {
                Failure::new(
                    "Lambda.ResourceNotFoundException",
                    format!(
                        "Function not found: arn:aws:lambda:{}:{}:function:{handler_key} (no handler registered)",
                        self.inner.region, self.inner.account
                    ),
                )
            } else {
                Failure::new(
                    names::RUNTIME,
                    format!("No handler is registered for the resource {resource}"),
                )
            };
            self.event(br, failed, json!({"error": f.error, "cause": f.cause}));
            return Err(f);
        };
        let ctx = TaskContext {
            elapsed_ms: Arc::new(AtomicU64::new(0)),
            task_token: token.clone(),
            execution_arn: self.exec.arn.clone(),
        };
        let limit = timeout.map(Duration::from_secs);
        // A handler that panics is a crashed function: AWS reports it as Lambda.Unknown.
        let call = std::panic::AssertUnwindSafe(handler(payload, ctx.clone())).catch_unwind().map(|r| {
            r.unwrap_or_else(|_| {
                Err(FunctionError::new(
                    "Lambda.Unknown",
                    "The cause could not be determined because Lambda did not return an error type.",
                ))
            })
        });
        let outcome: Result<Value, Failure> = if let Some(tok) = &token {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (hb_tx, mut hb_rx) = tokio::sync::watch::channel(0u64);
            let _slot = TokenGuard {
                inner: &self.inner,
                token: tok,
            };
            self.inner.tokens.lock().expect("tokens lock").insert(
                tok.clone(),
                TokenSlot {
                    reply: Some(tx),
                    heartbeat: hb_tx,
                },
            );
            match call.await {
                Err(e) => Err(handler_failure(&e, lambda_invoke || plain_lambda)),
                Ok(_) => {
                    let wait = async {
                        match rx.await {
                            Ok(TokenReply::Success(v)) => Ok(v),
                            Ok(TokenReply::Failure(f)) => Err(f),
                            Err(_) => Err(Failure::new(
                                names::TASK_FAILED,
                                "the task token was dropped",
                            )),
                        }
                    };
                    let heartbeat_guard = async {
                        match heartbeat {
                            None => futures::future::pending::<Failure>().await,
                            Some(h) => loop {
                                match tokio::time::timeout(Duration::from_secs(h), hb_rx.changed())
                                    .await
                                {
                                    Ok(Ok(())) => continue,
                                    Ok(Err(_)) => {
                                        break futures::future::pending::<Failure>().await;
                                    }
                                    Err(_) => break Failure::new(names::HEARTBEAT_TIMEOUT, ""),
                                }
                            },
                        }
                    };
                    let overall = async {
                        match limit {
                            Some(l) => {
                                tokio::time::sleep(l).await;
                                Failure::new(names::TIMEOUT, "")
                            }
                            None => futures::future::pending().await,
                        }
                    };
                    tokio::select! {
                        r = wait => r,
                        f = heartbeat_guard => Err(f),
                        f = overall => Err(f),
                    }
                }
            }
        } else {
            let r = match limit {
                Some(l) => tokio::time::timeout(l, call).await.ok(),
                None => Some(call.await),
            };
            match r {
                None => Err(Failure::new(names::TIMEOUT, "")),
                Some(Err(e)) => Err(handler_failure(&e, lambda_invoke || plain_lambda)),
                Some(Ok(v)) => {
                    if limit.is_some_and(|l| ctx.elapsed() > l) {
                        Err(Failure::new(names::TIMEOUT, ""))
                    } else {
                        Ok(v)
                    }
                }
            }
        };
        let spent = match limit {
            Some(l) => ctx.elapsed().min(l),
            None => ctx.elapsed(),
        };
        br.now += chrono::Duration::from_std(spent).unwrap_or_default();
        let outcome = outcome.and_then(|v| {
            if exceeds(&v, MAX_PAYLOAD_BYTES) {
                Err(Failure::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!("The state/task '{resource}' returned a result with a size exceeding the maximum number of bytes service limit."),
                ))
            } else {
                Ok(v)
            }
        });
        match outcome {
            Ok(v) => {
                let result = if lambda_invoke && !wait_token {
                    let tail = args.get("LogType").and_then(Value::as_str) == Some("Tail");
                    wrap_invoke_result(v, tail)
                } else {
                    v
                };
                if self.recording(br) {
                    self.event(
                        br,
                        succeeded,
                        json!({"resource": resource, "output": result}),
                    );
                }
                Ok(result)
            }
            Err(f) => {
                if self.recording(br) {
                    let ty = if f.error == names::TIMEOUT || f.error == names::HEARTBEAT_TIMEOUT {
                        timed_out
                    } else {
                        failed
                    };
                    self.event(
                        br,
                        ty,
                        json!({"resource": resource, "error": f.error, "cause": f.cause}),
                    );
                }
                Err(f)
            }
        }
    }

    async fn map(
        &self,
        env: &Env<'_>,
        st: &State,
        spec: &MapSpec,
        input: &Value,
        br: &mut Branch,
    ) -> Result<Value, Failure> {
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let name = &*st.name;
        let prefix = env.prefix();
        let rt = |m: String| Failure::runtime(format!("{prefix} {m}"));
        let items: Vec<Value> = if let Some(reader) = &spec.item_reader {
            let params = match &reader.parameters {
                Some(p) if jsonata => env.ja_template(p, input, None)?,
                Some(p) => env.template(p, input, "ItemReader.Parameters")?,
                None => Value::Object(Map::new()),
            };
            let port = self.inner.item_reader.read().expect("reader lock").clone();
            let Some(port) = port else {
                return Err(Failure::new(
                    names::ITEM_READER_FAILED,
                    "No ItemReader port is configured in the engine",
                ));
            };
            crate::item_reader::read_items(
                port.as_ref(),
                &reader.resource,
                &params,
                &reader.reader_config,
            )
            .await
            .map_err(|e| Failure::new(names::ITEM_READER_FAILED, e))?
        } else {
            let v = if jsonata {
                match &spec.items {
                    Some(t) => env.ja_template(t, input, None)?,
                    None => input.clone(),
                }
            } else {
                match &spec.items_path {
                    PathField::Path(p) => env.select(p, input)?.ok_or_else(|| {
                        rt(format!(
                            "Invalid path '{p}' : No results for path: ItemsPath"
                        ))
                    })?,
                    _ => input.clone(),
                }
            };
            match v {
                Value::Array(a) => a,
                other => {
                    let msg = match (&spec.items, jsonata) {
                        (Some(Template::Jsonata(e)), true) => format!(
                            "The JSONata expression '{e}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {other}",
                            json_type(&other)
                        ),
                        _ => format!("Map state input must be an array, got {other}"),
                    };
                    return Err(if jsonata {
                        Failure::query(rt(msg).cause)
                    } else {
                        rt(msg)
                    });
                }
            }
        };
        let int_field = |d: &Option<Dynamic>, field: &str| -> Result<Option<Value>, Failure> {
            d.as_ref().map(|d| env.dynamic(d, input, field)).transpose()
        };
        let max_conc = match int_field(&spec.max_concurrency, "MaxConcurrencyPath")? {
            None => 0,
            Some(v) => match as_number(&v)
                .and_then(|x| (x >= 0.0 && x.fract() == 0.0).then_some(x as u64))
            {
                Some(n) => n as usize,
                None => {
                    return Err(rt(format!(
                        "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {}",
                        display_plain(&v),
                        dyn_path(&spec.max_concurrency)
                    )));
                }
            },
        };
        let tolerated_count = match int_field(
            &spec.tolerated_failure_count,
            "ToleratedFailureCountPath",
        )? {
            None => None,
            Some(v) => match as_number(&v).filter(|x| x.fract() == 0.0) {
                Some(n) if n < 0.0 => {
                    return Err(rt("ToleratedFailureCount cannot be negative.".into()));
                }
                Some(n) => Some(n as usize),
                None => {
                    return Err(rt(format!(
                        "The ToleratedFailureCountPath field refers to value \"{}\" which is not a valid integer: {}",
                        display_plain(&v),
                        dyn_path(&spec.tolerated_failure_count)
                    )));
                }
            },
        };
        let tolerated_pct = match int_field(
            &spec.tolerated_failure_percentage,
            "ToleratedFailurePercentagePath",
        )? {
            None => None,
            Some(v) => match as_number(&v) {
                Some(p) if !(0.0..=100.0).contains(&p) => {
                    return Err(rt(
                        "ToleratedFailurePercentage must be between 0 and 100.".into()
                    ));
                }
                Some(p) => Some(p),
                None => {
                    return Err(rt(format!(
                        "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {}",
                        display_plain(&v),
                        dyn_path(&spec.tolerated_failure_percentage)
                    )));
                }
            },
        };
        // Batching groups items as `{"Items": [...]}` per child execution.
        let items = match &spec.item_batcher {
            Some(b) => {
                let size = b
                    .get("MaxItemsPerBatch")
                    .and_then(Value::as_u64)
                    .unwrap_or(items.len().max(1) as u64)
                    .max(1) as usize;
                let base = b.get("BatchInput").cloned();
                items
                    .chunks(size)
                    .map(|c| {
                        let mut m = Map::new();
                        if let Some(Value::Object(bi)) = &base {
                            m.insert("BatchInput".into(), Value::Object(bi.clone()));
                        }
                        m.insert("Items".into(), Value::Array(c.to_vec()));
                        Value::Object(m)
                    })
                    .collect()
            }
            None => items,
        };
        let n = items.len();
        if self.recording(br) && env.retry_count == 0 {
            self.event(br, "MapStateStarted", json!({"length": n}));
            if spec.distributed {
                self.event(br, "MapRunStarted", Value::Null);
            }
        }
        let start = br.now;
        let processor = spec.processor.clone();
        let parent_scope = br.scope.clone();
        let limit = if max_conc == 0 { n.max(1) } else { max_conc };
        let (prev, record) = (br.prev_event, self.recording(br) && !spec.distributed);
        let iterations = futures::stream::iter(items.into_iter().enumerate())
            .map(|(i, item)| {
                let processor = processor.clone();
                let parent_scope = parent_scope.clone();
                async move {
                    let item_input = match &spec.item_selector {
                        None => item,
                        Some(t) => {
                            let ienv = Env {
                                map_item: Some((i, &item)),
                                token: None,
                                ..*env
                            };
                            if jsonata {
                                ienv.ja_template(t, input, None)?
                            } else {
                                ienv.template(t, input, "ItemSelector")?
                            }
                        }
                    };
                    let mut sub = Branch {
                        now: start,
                        scope: Scope::new(Some(parent_scope)),
                        prev_event: prev,
                        record,
                    };
                    if record {
                        self.event(
                            &mut sub,
                            "MapIterationStarted",
                            json!({"name": name, "index": i}),
                        );
                    }
                    let r = self.run_states(&processor, item_input, &mut sub).await;
                    if record {
                        let ty = if r.is_ok() {
                            "MapIterationSucceeded"
                        } else {
                            "MapIterationFailed"
                        };
                        self.event(&mut sub, ty, json!({"name": name, "index": i}));
                    }
                    Ok::<_, Failure>((r, sub.now))
                }
            })
            .buffered(limit);
        futures::pin_mut!(iterations);
        let mut out = Vec::with_capacity(n);
        let mut failures = 0usize;
        let mut first_failure: Option<Failure> = None;
        while let Some(r) = iterations.next().await {
            let (r, t) = r?;
            br.now = br.now.max(t);
            match r {
                Ok(v) => out.push(v),
                Err(f) => {
                    if !spec.distributed {
                        self.event(
                            br,
                            "MapStateFailed",
                            json!({"error": f.error, "cause": f.cause}),
                        );
                        return Err(f);
                    }
                    failures += 1;
                    out.push(Value::Null);
                    first_failure.get_or_insert(f);
                }
            }
        }
        if failures > 0 {
            let by_count = tolerated_count.is_some_and(|c| failures <= c);
            let by_pct = tolerated_pct.is_some_and(|p| (failures as f64) * 100.0 / (n as f64) <= p);
            if !(by_count || by_pct) {
                let f = Failure::new(
                    names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                );
                self.event(
                    br,
                    "MapRunFailed",
                    json!({"error": f.error, "cause": f.cause}),
                );
                self.event(
                    br,
                    "MapStateFailed",
                    json!({"error": f.error, "cause": f.cause}),
                );
                return Err(f);
            }
        }
        if self.recording(br) {
            if spec.distributed {
                self.event(br, "MapRunSucceeded", Value::Null);
            }
            self.event(br, "MapStateSucceeded", Value::Null);
        }
        Ok(Value::Array(out))
    }
}

/// A number, or a string holding one (variables often carry numbers as strings).
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True when `v` serialised as JSON is longer than `limit` bytes; stops counting once it is.
pub(crate) fn exceeds(v: &Value, limit: usize) -> bool {
    fn size(v: &Value, budget: &mut isize) {
        if *budget < 0 {
            return;
        }
        match v {
            Value::Null => *budget -= 4,
            Value::Bool(b) => *budget -= if *b { 4 } else { 5 },
            Value::Number(n) => *budget -= n.to_string().len() as isize,
            Value::String(s) => *budget -= string_size(s),
            Value::Array(a) => {
                *budget -= 1 + a.len().max(1) as isize;
                for x in a {
                    size(x, budget);
                }
            }
            Value::Object(o) => {
                *budget -= 1 + o.len().max(1) as isize;
                for (k, x) in o {
                    *budget -= string_size(k) + 1;
                    size(x, budget);
                }
            }
        }
    }
    fn string_size(s: &str) -> isize {
        let escapes = s
            .bytes()
            .filter(|b| matches!(b, b'"' | b'\\') || *b < 0x20)
            .count();
        (s.len() + 2 + escapes) as isize
    }
    let mut budget = limit as isize;
    size(v, &mut budget);
    budget < 0
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn dyn_path(d: &Option<Dynamic>) -> String {
    match d {
        Some(Dynamic::Path(p)) => p.to_string(),
        _ => String::new(),
    }
}

fn display_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A handler's error as the workflow sees it. A Lambda's cause is the JSON error document the Lambda
/// service returns; another integration's cause is its message.
fn handler_failure(e: &FunctionError, lambda: bool) -> Failure {
    // Lambda.Unknown is raised by the service itself (the function crashed), with a plain cause.
    if !lambda || e.error_type == "Lambda.Unknown" {
        return Failure::new(e.error_type.clone(), e.error_message.clone());
    }
    let cause = json!({"errorMessage": e.error_message, "errorType": e.error_type, "requestId": uuid::Uuid::new_v4().to_string(), "stackTrace": []});
    Failure::new(e.error_type.clone(), cause.to_string())
}

/// `arn:aws:states:::lambda:invoke` wraps the function's result as the Lambda `Invoke` API returns it.
fn wrap_invoke_result(payload: Value, log_tail: bool) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    let len = python_json_len(&payload).to_string();
    let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let mut out = json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "Connection": ["keep-alive"],
                "Content-Length": [len],
                "Content-Type": ["application/json"],
                "Date": [date],
                "X-Amz-Executed-Version": ["$LATEST"],
                "X-Amzn-Trace-Id": ["Root=1-00000000-000000000000000000000000;Sampled=0"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "x-amzn-RequestId": [request_id],
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Length": len,
                "Content-Type": "application/json",
                "Date": date,
                "X-Amz-Executed-Version": "$LATEST",
                "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    });
    if log_tail {
        // `LogType: Tail` returns the end of the invocation's log, base64-encoded.
        use base64::Engine as _;
        let log = base64::engine::general_purpose::STANDARD.encode(format!(
            "START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n"
        ));
        out["LogResult"] = json!(log);
        out["SdkHttpMetadata"]["AllHttpHeaders"]["X-Amz-Log-Result"] = json!([log]);
        out["SdkHttpMetadata"]["HttpHeaders"]["X-Amz-Log-Result"] = json!(log);
    }
    out
}

/// Length of the payload as the Lambda service reports it (`json.dumps` separators: `", "`, `": "`).
fn python_json_len(v: &Value) -> usize {
    match v {
        Value::Array(a) => {
            2 + a.iter().map(python_json_len).sum::<usize>() + a.len().saturating_sub(1) * 2
        }
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, x)| Value::String(k.clone()).to_string().len() + 2 + python_json_len(x))
                .sum::<usize>()
                + o.len().saturating_sub(1) * 2
        }
        other => other.to_string().len(),
    }
}

fn apply_input_path(env: &Env<'_>, st: &State, raw: &Value) -> Result<Value, Failure> {
    match &st.input_path {
        PathField::Default => Ok(raw.clone()),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) => env.select(p, raw)?.ok_or_else(|| {
            Failure::runtime(format!(
                "{} Invalid path '{p}' : No results for path: InputPath",
                env.prefix()
            ))
        }),
    }
}

fn apply_result_path(
    env: &Env<'_>,
    st: &State,
    raw: Value,
    result: Value,
) -> Result<Value, Failure> {
    match &st.result_path {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw),
        PathField::Path(p) => p
            .assign(raw, result)
            .map_err(|e| Failure::runtime(format!("{} {e}", env.prefix()))),
    }
}

fn apply_output_path(env: &Env<'_>, st: &State, out: Value) -> Result<Value, Failure> {
    match &st.output_path {
        PathField::Default => Ok(out),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) if p.steps.is_empty() && p.root == Root::Input => Ok(out),
        PathField::Path(p) => env.select(p, &out)?.ok_or_else(|| {
            Failure::runtime(format!(
                "{} Invalid path '{p}' : No results for path: OutputPath",
                env.prefix()
            ))
        }),
    }
}

fn entered_event(t: &str) -> &'static str {
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

fn exited_event(t: &str) -> &'static str {
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

struct HistoryEventRef;

impl HistoryEventRef {
    fn make(
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::json;

    use super::*;
    use crate::engine::{Description, Engine};
    use crate::model::Retrier;

    async fn run(engine: &Engine, def: Value, input: Value) -> Description {
        let arn = engine
            .register_state_machine("t", &def.to_string(), &HashMap::new())
            .unwrap();
        engine.run(&arn, input).await.unwrap()
    }

    #[tokio::test]
    async fn pass_applies_paths_in_order() {
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.in",
            "Parameters": {"v.$": "$.x", "c": 1}, "ResultPath": "$.out", "OutputPath": "$.out", "End": true}}});
        let d = run(&Engine::new(), def, json!({"in": {"x": 5}})).await;
        assert_eq!(d.status, Status::Succeeded);
        assert_eq!(d.output, Some(json!({"v": 5, "c": 1})));
    }

    #[tokio::test]
    async fn missing_path_is_a_runtime_error() {
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$.nope"}, "End": true}}});
        let d = run(&Engine::new(), def, json!({})).await;
        assert_eq!(d.status, Status::Failed);
        assert_eq!(d.error.as_deref(), Some(names::RUNTIME));
    }

    #[tokio::test]
    async fn choice_takes_rule_or_default_or_fails() {
        let def = json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}]},
            "Big": {"Type": "Succeed"}}});
        let engine = Engine::new();
        assert_eq!(
            run(&engine, def.clone(), json!({"n": 2})).await.status,
            Status::Succeeded
        );
        let d = run(&engine, def, json!({"n": 0})).await;
        assert_eq!(d.error.as_deref(), Some(names::NO_CHOICE_MATCHED));
    }

    #[tokio::test]
    async fn wait_runs_on_the_virtual_clock() {
        let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}}});
        let started = std::time::Instant::now();
        let d = run(&Engine::new(), def, json!({"s": 1800})).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(d.status, Status::Succeeded);
        assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 1800);
    }

    #[tokio::test]
    async fn wait_until_timestamp() {
        let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": "2999-01-01T00:00:00Z", "End": true}}});
        let d = run(&Engine::new(), def, json!({})).await;
        assert_eq!(
            d.stop_date.unwrap().to_rfc3339(),
            "2999-01-01T00:00:00+00:00"
        );
    }

    #[tokio::test]
    async fn machine_timeout_ends_a_polling_loop() {
        let def = json!({"TimeoutSeconds": 300, "StartAt": "W", "States": {
            "W": {"Type": "Wait", "Seconds": 60, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": true, "Next": "End"}], "Default": "W"},
            "End": {"Type": "Succeed"}}});
        let d = run(&Engine::new(), def, json!({"done": false})).await;
        assert_eq!(
            (d.status, d.error.as_deref()),
            (Status::TimedOut, Some(names::TIMEOUT))
        );
    }

    #[tokio::test]
    async fn fail_takes_error_and_cause_from_paths() {
        let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}});
        let d = run(&Engine::new(), def, json!({"e": "Boom", "c": "because"})).await;
        assert_eq!(
            (d.status, d.error.as_deref(), d.cause.as_deref()),
            (Status::Failed, Some("Boom"), Some("because"))
        );
    }

    #[tokio::test]
    async fn parallel_joins_at_the_latest_branch() {
        let branch = |s: u64| {
            let name = format!("W{s}");
            json!({"StartAt": name, "States": {name.clone(): {"Type": "Wait", "Seconds": s, "End": true}}})
        };
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [branch(10), branch(60)], "End": true}}});
        let d = run(&Engine::new(), def, json!({"x": 1})).await;
        assert_eq!(d.output, Some(json!([{"x": 1}, {"x": 1}])));
        assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 60);
    }

    #[tokio::test]
    async fn a_failing_branch_does_not_wait_for_a_stuck_one() {
        let engine = Engine::new();
        engine.register_handler("stuck", |_, _| async move {
            futures::future::pending::<Result<Value, FunctionError>>().await
        });
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:stuck", "End": true}}},
            {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Broken"}}}]}}});
        let d = tokio::time::timeout(Duration::from_secs(5), run(&engine, def, json!({})))
            .await
            .expect("finishes");
        assert_eq!(d.error.as_deref(), Some("Broken"));
    }

    #[tokio::test]
    async fn inline_map_selects_items_and_fails_on_first_failure() {
        let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 2,
            "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
        let d = run(&Engine::new(), def, json!({"xs": ["a", "b"]})).await;
        assert_eq!(
            d.output,
            Some(json!([{"v": "a", "i": 0}, {"v": "b", "i": 1}]))
        );
        let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
            "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}, "End": true}}});
        assert_eq!(
            run(&Engine::new(), def, json!([1])).await.error.as_deref(),
            Some("E")
        );
    }

    #[tokio::test]
    async fn distributed_map_tolerates_failures_up_to_the_threshold() {
        let def = |count: u64| {
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ToleratedFailureCount": count,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "F"}], "Default": "P"},
                "F": {"Type": "Fail", "Error": "E"}, "P": {"Type": "Pass", "End": true}}}, "End": true}}})
        };
        let engine = Engine::new();
        assert_eq!(
            run(&engine, def(1), json!([0, 1])).await.status,
            Status::Succeeded
        );
        let d = run(&engine, def(0), json!([0, 1])).await;
        assert_eq!(
            d.error.as_deref(),
            Some(names::EXCEED_TOLERATED_FAILURE_THRESHOLD)
        );
    }

    #[tokio::test]
    async fn distributed_map_reads_items_through_the_port() {
        let engine = Engine::new();
        let store = Arc::new(crate::item_reader::MemoryItemReader::new());
        store.put("b", "k.json", "[1, 2]");
        engine.set_item_reader(store);
        let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
                "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
        assert_eq!(
            run(&engine, def, json!({"key": "k.json"})).await.output,
            Some(json!([1, 2]))
        );
    }

    #[tokio::test]
    async fn lambda_invoke_wraps_the_payload_and_plain_arn_does_not() {
        let engine = Engine::new();
        engine.register_handler("echo", |v, _| async move { Ok(v) });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:echo:$LATEST", "Payload.$": "$"}, "End": true}}});
        let d = run(&engine, def, json!({"a": 1})).await;
        let out = d.output.unwrap();
        assert_eq!(
            (out["Payload"].clone(), out["StatusCode"].clone()),
            (json!({"a": 1}), json!(200))
        );
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:echo", "End": true}}});
        assert_eq!(
            run(&engine, def, json!({"a": 1})).await.output,
            Some(json!({"a": 1}))
        );
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:missing", "End": true}}});
        assert_eq!(
            run(&engine, def, json!({})).await.error.as_deref(),
            Some("Lambda.ResourceNotFoundException")
        );
    }

    #[tokio::test]
    async fn retry_then_catch_with_result_path() {
        let engine = Engine::new();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        engine.register_handler("flaky", move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Err(FunctionError::new("NotReady", "later")) }
        });
        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:flaky",
                "Retry": [{"ErrorEquals": ["NotReady"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Done"}], "End": true},
            "Done": {"Type": "Pass", "End": true}}});
        let d = run(&engine, def, json!({"x": 1})).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            d.output.as_ref().unwrap()["err"]["Error"],
            json!("NotReady")
        );
        assert_eq!(d.output.as_ref().unwrap()["x"], json!(1));
        // 2 s, then 2 * 3 = 6 s of virtual waiting.
        assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 8);
    }

    #[test]
    fn retry_delays_back_off_cap_and_jitter() {
        let r = Retrier {
            error_equals: vec![],
            interval_seconds: 1.0,
            max_attempts: 5,
            backoff_rate: 2.0,
            max_delay_seconds: Some(5.0),
            jitter_full: false,
        };
        let secs: Vec<u64> = (0..4).map(|n| retry_delay(&r, n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 5]);
        let j = Retrier {
            jitter_full: true,
            ..r
        };
        assert!((0..50).all(|n| retry_delay(&j, n % 3) <= Duration::from_secs(4)));
    }

    #[test]
    fn payload_size_limit() {
        assert!(!exceeds(&json!({"a": "x".repeat(100)}), 200));
        assert!(exceeds(&json!({"a": "x".repeat(300)}), 200));
        let v = json!({"k": [1, "two", null, true]});
        assert!(!exceeds(&v, v.to_string().len()));
        assert!(exceeds(&v, v.to_string().len() - 1));
    }

    #[test]
    fn error_matching_rules() {
        let all = vec![names::ALL.to_string()];
        let failed = vec![names::TASK_FAILED.to_string()];
        assert!(matches_error(&all, "Anything"));
        assert!(!matches_error(&all, names::RUNTIME));
        assert!(matches_error(&failed, "Lambda.Unknown"));
        assert!(!matches_error(&failed, names::TIMEOUT));
        assert!(matches_error(&["X".to_string()], "X"));
    }

    #[tokio::test]
    async fn virtual_handler_duration_hits_the_timeout() {
        let engine = Engine::new();
        engine.register_handler("slow", |v, ctx: TaskContext| async move {
            ctx.advance(Duration::from_secs(60));
            Ok(v)
        });
        let def = |t: u64| {
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "TimeoutSeconds": t,
            "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "End": true}}})
        };
        assert_eq!(
            run(&engine, def(10), json!({})).await.error.as_deref(),
            Some(names::TIMEOUT)
        );
        let d = run(&engine, def(120), json!({})).await;
        assert_eq!(d.status, Status::Succeeded);
        assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 60);
    }

    #[tokio::test]
    async fn service_integrations_run_handlers_registered_by_resource() {
        let engine = Engine::new();
        engine.register_handler(
            "arn:aws:states:::aws-sdk:rds:describeDBInstances",
            |v, _| async move {
                match v["DbInstanceIdentifier"].as_str() {
                    Some("db1") => Ok(json!({"DbInstances": [{"DbInstanceStatus": "available"}]})),
                    _ => Err(FunctionError::new(
                        "Rds.DbInstanceNotFoundException",
                        "DBInstance not found",
                    )),
                }
            },
        );
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:rds:describeDBInstances",
            "Parameters": {"DbInstanceIdentifier.$": "$.id"}, "ResultSelector": {"status.$": "$.DbInstances[0].DbInstanceStatus"}, "End": true}}});
        assert_eq!(
            run(&engine, def.clone(), json!({"id": "db1"})).await.output,
            Some(json!({"status": "available"}))
        );
        let d = run(&engine, def, json!({"id": "nope"})).await;
        assert_eq!(
            (d.error.as_deref(), d.cause.as_deref()),
            (
                Some("Rds.DbInstanceNotFoundException"),
                Some("DBInstance not found")
            )
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_is_lambda_unknown() {
        let engine = Engine::new();
        engine.register_handler("boom", |_, _| async move {
            if true {
                panic!("handler bug");
            }
            Ok(Value::Null)
        });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:boom", "End": true}}});
        assert_eq!(
            run(&engine, def, json!({})).await.error.as_deref(),
            Some("Lambda.Unknown")
        );
    }

    #[tokio::test]
    async fn oversized_results_exceed_the_data_limit() {
        let engine = Engine::new();
        engine.register_handler("big", |_, _| async move {
            Ok(Value::String("x".repeat(MAX_PAYLOAD_BYTES)))
        });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:big", "End": true}}});
        assert_eq!(
            run(&engine, def, json!({})).await.error.as_deref(),
            Some(names::DATA_LIMIT_EXCEEDED)
        );
    }

    #[tokio::test]
    async fn task_token_callbacks() {
        let engine = Engine::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        engine.register_handler("approve", move |_, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(ctx.task_token.unwrap()).unwrap();
                Ok(Value::Null)
            }
        });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "approve", "Payload": {"token.$": "$$.Task.Token"}}, "End": true}}});
        let arn = engine
            .register_state_machine("cb", &def.to_string(), &HashMap::new())
            .unwrap();
        let exec = engine
            .start_execution(&arn, Some("one".into()), json!({}))
            .unwrap();
        let token = rx.recv().await.unwrap();
        engine.send_task_heartbeat(&token).unwrap();
        assert!(engine.is_running(&exec));
        engine
            .send_task_success(&token, json!({"approved": true}))
            .unwrap();
        assert_eq!(
            engine.wait_for(&exec).await.unwrap().output,
            Some(json!({"approved": true}))
        );
        assert!(engine.send_task_failure(&token, "E", "late").is_err());
    }

    #[tokio::test]
    async fn stop_idempotent_start_and_history() {
        let engine = Engine::new();
        engine.register_handler("hang", |_, _| async move {
            futures::future::pending::<Result<Value, FunctionError>>().await
        });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:hang", "End": true}}});
        let arn = engine
            .register_state_machine("h", &def.to_string(), &HashMap::new())
            .unwrap();
        let exec = engine
            .start_execution(&arn, Some("n".into()), json!({"a": 1}))
            .unwrap();
        assert_eq!(
            engine
                .start_execution(&arn, Some("n".into()), json!({"a": 1}))
                .unwrap(),
            exec
        );
        assert!(
            engine
                .start_execution(&arn, Some("n".into()), json!({"a": 2}))
                .is_err()
        );
        while !engine
            .get_execution_history(&exec)
            .unwrap()
            .iter()
            .any(|e| e.event_type == "LambdaFunctionStarted")
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        engine
            .stop_execution(&exec, Some("Stopped".into()), Some("by test".into()))
            .unwrap();
        let d = engine.wait_for(&exec).await.unwrap();
        assert_eq!(
            (d.status, d.error.as_deref()),
            (Status::Aborted, Some("Stopped"))
        );
        let types: Vec<&str> = engine
            .get_execution_history(&exec)
            .unwrap()
            .iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(types.first(), Some(&"ExecutionStarted"));
        assert_eq!(types.last(), Some(&"ExecutionAborted"));
        assert!(types.contains(&"TaskStateEntered"));
    }

    #[tokio::test]
    async fn history_links_events_and_names_states() {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}});
        let engine = Engine::new();
        let arn = engine
            .register_state_machine("hist", &def.to_string(), &HashMap::new())
            .unwrap();
        let exec = engine.start_execution(&arn, None, json!({})).unwrap();
        engine.wait_for(&exec).await.unwrap();
        let h = engine.get_execution_history(&exec).unwrap();
        let types: Vec<&str> = h.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded"
            ]
        );
        assert!(h.windows(2).all(|w| w[1].previous_event_id == w[0].id));
        assert_eq!(h[1].details["name"], json!("A"));
    }

    #[tokio::test]
    async fn jsonata_states_use_arguments_output_and_assign() {
        let engine = Engine::new();
        engine.register_handler("echo", |v, _| async move { Ok(v) });
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
            "A": {"Type": "Pass", "Assign": {"n": "{% $states.input.n + 1 %}"}, "Output": {"seen": "{% $states.input.n %}"}, "Next": "T"},
            "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:echo", "Arguments": {"v": "{% $n %}"},
                "Output": "{% $states.result.v * 10 %}", "End": true}}});
        let d = run(&engine, def, json!({"n": 1})).await;
        assert_eq!(d.output, Some(json!(20)));
    }

    #[tokio::test]
    async fn jsonpath_variables_are_scoped_to_branches() {
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "M"},
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Parameters": {"outer.$": "$x", "item.$": "$"}, "End": true}}},
                "End": true}}});
        let d = run(&Engine::new(), def, json!([7])).await;
        assert_eq!(d.output, Some(json!([{"outer": 1, "item": 7}])));
    }
}
