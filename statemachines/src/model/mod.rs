//! The typed model of a definition, and the validation that builds it: what Step Functions rejects at
//! `CreateStateMachine` is rejected here, with the state and field named.

pub(crate) mod choice;
mod ctx;
mod express;
mod fields;
mod kinds;
mod machine;
mod map;
mod resource;
mod result_writer;
mod retry;
mod state;
mod targets;
mod template;
mod types;

use std::collections::HashMap;

use serde_json::Value;

use self::ctx::{Ctx, ql};
use self::machine::duplicate_names;
use crate::error::ValidationError;

pub use express::{MachineType, UnknownMachineType};
pub use machine::{successors, unreachable};
pub use resource::is_lambda_resource;
pub use template::jsonata_expr;
pub use types::*;

/// Parses and validates a definition.
pub fn parse(text: &str) -> Result<StateMachine, ValidationError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ValidationError::NotJson(e.to_string()))?;
    parse_value(&v)
}

/// Validates an already-parsed definition.
pub fn parse_value(v: &Value) -> Result<StateMachine, ValidationError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ValidationError::NotJson("not a JSON object".into()))?;
    let mut ctx = Ctx { errors: Vec::new() };
    let top_ql = match obj.get("QueryLanguage") {
        None => QueryLanguage::JsonPath,
        Some(q) => match ql(q) {
            Some(q) => q,
            None => {
                return Err(ValidationError::top(
                    "QueryLanguage",
                    "must be \"JSONPath\" or \"JSONata\"",
                ));
            }
        },
    };
    for key in obj.keys() {
        if ![
            "Comment",
            "StartAt",
            "States",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ]
        .contains(&key.as_str())
        {
            ctx.push(ValidationError::top(key, "is not a supported field"));
        }
    }
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(t) => match t.as_u64() {
            Some(t) => Some(t),
            None => {
                ctx.push(ValidationError::top(
                    "TimeoutSeconds",
                    "must be a non-negative integer",
                ));
                None
            }
        },
    };
    let sm = ctx.machine(obj, top_ql, "");
    if let Some(sm) = &sm {
        let mut seen = HashMap::new();
        duplicate_names(sm, &mut seen, &mut ctx);
    }
    match (sm, ctx.errors.len()) {
        (Some(mut sm), 0) => {
            sm.timeout_seconds = timeout_seconds;
            Ok(sm)
        }
        (_, 0) => Err(ValidationError::top("States", "is invalid")),
        (_, 1) => Err(ctx.errors.pop().expect("one error")),
        _ => Err(ValidationError::Many(ctx.errors)),
    }
}

/// Parses and validates a definition as a state machine of `machine_type`: an EXPRESS machine also
/// may not use `.waitForTaskToken` or `.sync` integrations.
pub fn parse_value_as(
    v: &Value,
    machine_type: MachineType,
) -> Result<StateMachine, ValidationError> {
    let parsed = parse_value(v);
    if machine_type == MachineType::Standard {
        return parsed;
    }
    let mut errors = Vec::new();
    express::express_errors(v, &mut errors);
    match (parsed, errors.len()) {
        (ok, 0) => ok,
        (Ok(_), 1) => Err(errors.remove(0)),
        (Ok(_), _) => Err(ValidationError::Many(errors)),
        (Err(e), _) => {
            let mut all = e.flatten();
            all.extend(errors);
            Err(ValidationError::Many(all))
        }
    }
}

#[cfg(test)]
mod tests;
