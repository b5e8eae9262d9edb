//! The type-specific part of each state: Pass, Succeed, Fail, Wait, Task, Choice and Parallel (Map has
//! its own module).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::machine::required_objects;
use super::resource::check_resource;
use super::targets::Targets;
use super::template::{dynamic, template};
use super::types::*;
use crate::error::ValidationError;

impl Ctx {
    /// What a state of type `type_name` holds beyond the common fields; `None` when it is invalid (the errors
    /// are in `ctx`).
    pub(super) fn kind(
        &mut self,
        type_name: &str,
        name: &str,
        b: &Map<String, Value>,
        qlang: QueryLanguage,
        targets: &Targets<'_>,
    ) -> Option<Kind> {
        let ctx = self;
        Some(match type_name {
            "Pass" => Kind::Pass {
                result: b.get("Result").cloned(),
            },
            "Succeed" => Kind::Succeed,
            "Fail" => {
                let error = dynamic(name, b, "Error", "ErrorPath", qlang, ctx, false);
                let cause = dynamic(name, b, "Cause", "CausePath", qlang, ctx, false);
                Kind::Fail { error, cause }
            }
            "Wait" => {
                let n = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
                    .iter()
                    .filter(|k| b.contains_key(**k))
                    .count();
                if n != 1 {
                    ctx.push(ValidationError::state(
                    name,
                    "a Wait state needs exactly one of \"Seconds\", \"Timestamp\", \"SecondsPath\", \"TimestampPath\"",
                ));
                    return None;
                }
                if let Some(s) = dynamic(name, b, "Seconds", "SecondsPath", qlang, ctx, true) {
                    if let Dynamic::Value(v) = &s
                        && v.as_u64().is_none()
                    {
                        ctx.push(ValidationError::field(
                            name,
                            "Seconds",
                            "must be a non-negative integer",
                        ));
                    }
                    Kind::Wait(WaitSpec::Seconds(s))
                } else if let Some(t) =
                    dynamic(name, b, "Timestamp", "TimestampPath", qlang, ctx, true)
                {
                    if let Dynamic::Value(v) = &t
                        && v.as_str()
                            .and_then(super::choice::parse_timestamp)
                            .is_none()
                    {
                        ctx.push(ValidationError::field(
                            name,
                            "Timestamp",
                            "must be an RFC 3339 timestamp",
                        ));
                    }
                    Kind::Wait(WaitSpec::Timestamp(t))
                } else {
                    return None;
                }
            }
            "Task" => {
                let Some(resource) = b.get("Resource").and_then(Value::as_str) else {
                    ctx.push(ValidationError::field(
                        name,
                        "Resource",
                        "is required and must be a string",
                    ));
                    return None;
                };
                check_resource(name, resource, ctx);
                if let Some(c) = b.get("Credentials") {
                    let ok = c
                        .as_object()
                        .is_some_and(|o| o.contains_key("RoleArn") || o.contains_key("RoleArn.$"));
                    if !ok {
                        ctx.push(ValidationError::field(
                            name,
                            "Credentials",
                            "the field \"RoleArn\" is required",
                        ));
                    }
                }
                let timeout = dynamic(
                    name,
                    b,
                    "TimeoutSeconds",
                    "TimeoutSecondsPath",
                    qlang,
                    ctx,
                    true,
                );
                let heartbeat = dynamic(
                    name,
                    b,
                    "HeartbeatSeconds",
                    "HeartbeatSecondsPath",
                    qlang,
                    ctx,
                    true,
                );
                for (f, d) in [
                    ("TimeoutSeconds", &timeout),
                    ("HeartbeatSeconds", &heartbeat),
                ] {
                    if let Some(Dynamic::Value(v)) = d
                        && v.as_u64().is_none_or(|x| x == 0)
                    {
                        ctx.push(ValidationError::field(
                            name,
                            f,
                            "must be a positive integer",
                        ));
                    }
                }
                if let (Some(Dynamic::Value(t)), Some(Dynamic::Value(h))) = (&timeout, &heartbeat)
                    && h.as_u64() >= t.as_u64()
                {
                    ctx.push(ValidationError::field(
                        name,
                        "HeartbeatSeconds",
                        "must be smaller than \"TimeoutSeconds\"",
                    ));
                }
                Kind::Task(Box::new(TaskSpec {
                    resource: resource.to_string(),
                    timeout,
                    heartbeat,
                }))
            }
            "Choice" => {
                let items = required_objects(b, name, "Choices", "choice", ctx)?;
                let mut choices = Vec::new();
                for o in items {
                    let Some(n) = o.get("Next") else {
                        ctx.push(ValidationError::field(
                            name,
                            "Choices",
                            "each choice rule needs \"Next\"",
                        ));
                        continue;
                    };
                    let Some(target) = targets.resolve(n, "Choices.Next", ctx) else {
                        continue;
                    };
                    let rule = if qlang == QueryLanguage::Jsonata {
                        match o.get("Condition") {
                            Some(c) => Rule::Condition(template(c, qlang, name, "Condition", ctx)),
                            None => {
                                ctx.push(ValidationError::field(
                                    name,
                                    "Choices",
                                    "each JSONata choice rule needs \"Condition\"",
                                ));
                                continue;
                            }
                        }
                    } else {
                        match super::choice::parse_rule(o, true) {
                            Ok(r) => r,
                            Err(m) => {
                                ctx.push(ValidationError::field(name, "Choices", m));
                                continue;
                            }
                        }
                    };
                    choices.push(Choice {
                        rule,
                        next: target,
                        assign: o
                            .get("Assign")
                            .map(|v| template(v, qlang, name, "Choices.Assign", ctx)),
                        output: o
                            .get("Output")
                            .map(|v| template(v, qlang, name, "Choices.Output", ctx)),
                    });
                }
                let default = b
                    .get("Default")
                    .and_then(|d| targets.resolve(d, "Default", ctx));
                Kind::Choice { choices, default }
            }
            "Parallel" => {
                let items = required_objects(b, name, "Branches", "branch", ctx)?;
                let mut branches = Vec::new();
                for o in items {
                    if let Some(sm) = ctx.sub_machine(o, qlang, name) {
                        branches.push(Arc::new(sm));
                    }
                }
                Kind::Parallel { branches }
            }
            "Map" => ctx.map_spec(name, b, qlang)?,
            _ => unreachable!("type checked above"),
        })
    }
}
