//! Each state type's step: Pass, Choice, Wait, Succeed and Fail here; Task, Parallel and Map run one
//! attempt at a time under their `Retry`/`Catch` rules.

use chrono::Utc;
use serde_json::{Value, json};

use crate::choice;
use crate::error::{Failure, names};
use crate::history::EventType;
use crate::model::{Dynamic, Kind, QueryLanguage, Rule, State, WaitSpec};
use crate::path::Path;
use crate::probe::Mock;
use crate::runtime::env::Env;
use crate::runtime::io::{apply_input_path, apply_output_path, apply_result_path};
use crate::runtime::runner::{Branch, Entered, Runner, StepResult};
use crate::runtime::scope::Scope;

mod map;
mod map_run;
mod result_writer;
mod start_execution;
mod task;

impl Runner {
    pub(in crate::runtime) async fn run_state(
        &self,
        st: &State,
        raw: Value,
        br: &mut Branch,
        entered: Entered,
    ) -> StepResult {
        let scope = br.scope.clone();
        let env = Env::new(self, st, &scope, entered, 0);
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let probe = self.probe();
        if let Some(p) = probe {
            p.record("input", &raw);
        }
        match &st.kind {
            Kind::Pass { result } => {
                if jsonata {
                    return Ok((env.jsonata_pass_through(raw)?, st.next));
                }
                let input = apply_input_path(&env, st, &raw)?;
                if let Some(p) = probe
                    && result.is_none()
                {
                    p.record("afterInputPath", &input);
                }
                // Parameters shape the effective input; a Result, when given, replaces it (ASL
                // specification, Pass state).
                let effective = match &st.parameters {
                    Some(p) => env.template(p, &input, "Parameters")?,
                    None => input,
                };
                if let Some(p) = probe {
                    // TestState reports a Pass state's `Result` as its result; without one, the
                    // input and parameter steps it went through.
                    match result {
                        Some(r) => p.record("result", r),
                        None => p.record("afterParameters", &effective),
                    }
                }
                let result = match result {
                    Some(r) => r.clone(),
                    None => effective,
                };
                if let Some(p) = probe {
                    p.record("afterResultSelector", &result);
                }
                if let Some(a) = &st.assign {
                    let vals = env.assign(a, &result, None)?;
                    scope.set_all(vals);
                }
                let out = apply_result_path(&env, st, raw, result)?;
                if let Some(p) = probe {
                    p.record("afterResultPath", &out);
                }
                Ok((apply_output_path(&env, st, out)?, st.next))
            }
            Kind::Succeed => {
                if jsonata {
                    let out = match &st.output {
                        Some(o) => env.ja_template(o, &raw, None, "Output")?,
                        None => raw,
                    };
                    return Ok((out, None));
                }
                let input = apply_input_path(&env, st, &raw)?;
                if let Some(p) = probe {
                    p.record("afterInputPath", &input);
                }
                Ok((apply_output_path(&env, st, input)?, None))
            }
            Kind::Fail { error, cause } => {
                if let Some(p) = probe
                    && !jsonata
                {
                    p.record("afterInputPath", &apply_input_path(&env, st, &raw)?);
                }
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
                if let Some(p) = probe
                    && !jsonata
                {
                    p.record("afterInputPath", &input);
                }
                let mut chosen = None;
                for c in choices {
                    let holds = match &c.rule {
                        Rule::Condition(t) => {
                            match env.ja_template(t, &input, None, "Condition")? {
                                Value::Bool(b) => b,
                                other => {
                                    return Err(Failure::query(format!(
                                        "{} The Condition field must evaluate to a boolean, not {other}",
                                        env.prefix()
                                    )));
                                }
                            }
                        }
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
                        Some(o) => env.ja_template(o, &input, None, "Output")?,
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

    pub(in crate::runtime) async fn attempt(
        &self,
        st: &State,
        raw: &Value,
        br: &mut Branch,
        entered: Entered,
        retry_count: u32,
    ) -> StepResult {
        let scope = br.scope.clone();
        let env = Env::new(self, st, &scope, entered, retry_count);
        let jsonata = st.query_language == QueryLanguage::Jsonata;
        let probe = self.probe();
        if let Some(p) = probe {
            p.record("input", raw);
        }
        let input = if jsonata {
            raw.clone()
        } else {
            apply_input_path(&env, st, raw)?
        };
        if let Some(p) = probe
            && !jsonata
            && matches!(st.kind, Kind::Task(_) | Kind::Map(_))
        {
            p.record("afterInputPath", &input);
        }
        let result = match &st.kind {
            Kind::Task(spec) => {
                let r = self.task(&env, st, spec, &input, br).await?;
                if let Some(p) = probe
                    && !jsonata
                {
                    p.record("result", &r);
                }
                r
            }
            // TestState's mock stands for the whole Parallel state's result.
            Kind::Parallel { .. } if probe.is_some_and(|p| p.mock.is_some()) => {
                match probe.and_then(|p| p.mock.clone()) {
                    Some(Mock::Error(f)) => return Err(f),
                    Some(Mock::Result(v)) => v,
                    None => Value::Null,
                }
            }
            Kind::Parallel { branches } => {
                let branch_input = match &st.parameters {
                    Some(p) if jsonata => env.ja_template(p, &input, None, "Arguments")?,
                    Some(p) => env.template(p, &input, "Parameters")?,
                    None => input.clone(),
                };
                if retry_count == 0 {
                    self.event(br, EventType::ParallelStateStarted, Value::Null);
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
                            EventType::ParallelStateFailed,
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
                            EventType::MapStateFailed,
                            json!({"error": f.error, "cause": f.cause}),
                        );
                    }
                    return Err(f);
                }
            },
            _ => unreachable!("only Task, Parallel and Map retry"),
        };
        let env = Env::new(self, st, &scope, entered, retry_count);
        if jsonata {
            let extra = Some(("result", &result));
            let assign = st
                .assign
                .as_ref()
                .map(|a| env.assign(a, raw, extra))
                .transpose()?;
            let out = match &st.output {
                Some(o) => env.ja_template(o, raw, extra, "Output")?,
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
        if let Some(p) = probe {
            p.record("afterResultSelector", &result);
        }
        if let Some(a) = &st.assign {
            let vals = env.assign(a, &result, None)?;
            scope.set_all(vals);
        }
        let out = apply_result_path(&env, st, raw.clone(), result)?;
        if let Some(p) = probe {
            p.record("afterResultPath", &out);
        }
        Ok((apply_output_path(&env, st, out)?, st.next))
    }
}
