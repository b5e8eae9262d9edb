//! A state's expressions: paths, payload templates, intrinsics, JSONata and `Assign`, evaluated against the
//! input, the context object and the variables in scope.

use serde_json::{Map, Value, json};

use super::runner::{Entered, Runner};
use crate::error::Failure;
use crate::model::{Dynamic, QueryLanguage, State, Template};
use crate::path::{Path, Root};
use crate::runtime::history::ts;
use crate::runtime::scope::Scope;

/// What is known while evaluating a state's expressions.
pub(super) struct Env<'a> {
    pub(super) runner: &'a Runner,
    pub(super) state: &'a State,
    pub(super) scope: &'a Scope,
    pub(super) entered: Entered,
    pub(super) retry_count: u32,
    pub(super) token: Option<&'a str>,
    pub(super) map_item: Option<(usize, &'a Value)>,
}

impl<'a> Env<'a> {
    /// The environment a state's expressions see: no task token and no Map item yet.
    pub(super) fn new(
        runner: &'a Runner,
        state: &'a State,
        scope: &'a Scope,
        entered: Entered,
        retry_count: u32,
    ) -> Self {
        Env {
            runner,
            state,
            scope,
            entered,
            retry_count,
            token: None,
            map_item: None,
        }
    }

    /// A JSONata state that produces no result of its own (Pass, Wait): `Assign` and `Output` both read the
    /// state's input, and the variables are set only once both have evaluated, so a failing `Output` leaves
    /// them untouched.
    pub(super) fn jsonata_pass_through(&self, raw: Value) -> Result<Value, Failure> {
        let assign = self
            .state
            .assign
            .as_ref()
            .map(|a| self.assign(a, &raw, None))
            .transpose()?;
        let out = match &self.state.output {
            Some(o) => self.ja_template(o, &raw, None, "Output")?,
            None => raw,
        };
        if let Some(a) = assign {
            self.scope.set_all(a);
        }
        Ok(out)
    }

    /// The preamble of AWS's runtime error causes.
    pub(super) fn prefix(&self) -> String {
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

    pub(super) fn context(&self) -> Value {
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
        if let Some(p) = self.runner.exec.probe.as_deref() {
            // TestState evaluates `$$` against the context it is given, else against one whose state
            // is named as the API names a lone state.
            if let Some(given) = &p.context {
                return given.clone();
            }
            if let Some(e) = c["Execution"].as_object_mut() {
                e.remove("RedriveCount");
            }
            c["State"]["Name"] = Value::String(p.state_name.clone());
        }
        if let Some(t) = self.token {
            c["Task"] = json!({ "Token": t });
        }
        if let Some((i, v)) = self.map_item {
            c["Map"] = json!({ "Item": { "Index": i, "Value": v } });
        }
        c
    }

    /// Evaluates a path; `None` when a definite path selects nothing.
    pub(super) fn select(&self, path: &Path, input: &Value) -> Result<Option<Value>, Failure> {
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

    pub(super) fn select_required(
        &self,
        path: &Path,
        input: &Value,
        field: &str,
    ) -> Result<Value, Failure> {
        self.select(path, input)?.ok_or_else(|| {
            Failure::runtime(format!(
                "{} Invalid path '{path}' : No results for path: {field}",
                self.prefix()
            ))
        })
    }

    pub(super) fn template(
        &self,
        t: &Template,
        input: &Value,
        field: &str,
    ) -> Result<Value, Failure> {
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
            Template::Jsonata(e) => return self.jsonata_value(e, input, None, field),
        })
    }

    pub(super) fn states_binding(&self, input: &Value, extra: Option<(&str, &Value)>) -> Value {
        let mut m = Map::new();
        m.insert("input".into(), input.clone());
        m.insert("context".into(), self.context());
        if let Some((k, v)) = extra {
            m.insert(k.into(), v.clone());
        }
        Value::Object(m)
    }

    pub(super) fn jsonata(
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

    pub(super) fn jsonata_value(
        &self,
        expr: &str,
        input: &Value,
        extra: Option<(&str, &Value)>,
        field: &str,
    ) -> Result<Value, Failure> {
        // A field whose expression evaluates to nothing cannot be given a value: AWS fails the state
        // with States.QueryEvaluationError and names the field.
        self.jsonata(expr, input, extra)?.ok_or_else(|| {
            Failure::query(format!(
                "{} The JSONata expression '{expr}' specified for the field '{field}' returned nothing (undefined).",
                self.prefix()
            ))
        })
    }

    /// Evaluates a `JSONata` template with `$states.<extra>` bound (e.g. `result`, `errorOutput`).
    pub(super) fn ja_template(
        &self,
        t: &Template,
        input: &Value,
        extra: Option<(&str, &Value)>,
        field: &str,
    ) -> Result<Value, Failure> {
        match t {
            Template::Literal(v) => Ok(v.clone()),
            Template::Jsonata(e) => self.jsonata_value(e, input, extra, field),
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
                            m.insert(k.clone(), self.ja_template(other, input, extra, field)?);
                        }
                    }
                }
                Ok(Value::Object(m))
            }
            Template::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|x| self.ja_template(x, input, extra, field))
                    .collect::<Result<_, _>>()?,
            )),
            Template::Path(_) | Template::Call(_) => self.template(t, input, field),
        }
    }

    pub(super) fn dynamic(
        &self,
        d: &Dynamic,
        input: &Value,
        field: &str,
    ) -> Result<Value, Failure> {
        match d {
            Dynamic::Value(v) => Ok(v.clone()),
            Dynamic::Path(p) => self.select_required(p, input, field),
            Dynamic::Jsonata(e) => self.jsonata_value(e, input, None, field),
            Dynamic::Call(c) => self.template(&Template::Call((**c).clone()), input, field),
        }
    }

    /// Evaluates `Assign` (both languages) and returns the new bindings without applying them, because
    /// every expression of a state sees the variables as they were when it was entered.
    pub(super) fn assign(
        &self,
        t: &Template,
        input: &Value,
        extra: Option<(&str, &Value)>,
    ) -> Result<Vec<(String, Value)>, Failure> {
        let v = match self.state.query_language {
            QueryLanguage::JsonPath => self.template(t, input, "Assign")?,
            QueryLanguage::Jsonata => self.ja_template(t, input, extra, "Assign")?,
        };
        Ok(match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => Vec::new(),
        })
    }
}
