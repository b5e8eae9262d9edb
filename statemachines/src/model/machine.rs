//! A state machine (top level, Parallel branch or Map processor): its states, their names and reachability.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ctx::{Ctx, ql};
use super::types::*;
use crate::error::ValidationError;

impl Ctx {
    /// Builds one scope (top level, branch, item processor). `owner` names the enclosing state for messages.
    pub(super) fn machine(
        &mut self,
        obj: &Map<String, Value>,
        inherited: QueryLanguage,
        owner: &str,
    ) -> Option<StateMachine> {
        let ctx = self;
        let where_ = |f: &str| {
            if owner.is_empty() {
                ValidationError::top(f, "is required")
            } else {
                ValidationError::field(owner, f, "is required")
            }
        };
        let Some(states) = obj.get("States").and_then(Value::as_object) else {
            ctx.push(where_("States"));
            return None;
        };
        let Some(start) = obj.get("StartAt").and_then(Value::as_str) else {
            ctx.push(where_("StartAt"));
            return None;
        };
        if states.is_empty() {
            ctx.push(ValidationError::top(
                "States",
                "must contain at least one state",
            ));
            return None;
        }
        let index: HashMap<Arc<str>, usize> = states
            .keys()
            .enumerate()
            .map(|(i, k)| (Arc::from(k.as_str()), i))
            .collect();
        let Some(&start_at) = index.get(start) else {
            let e = if owner.is_empty() {
                ValidationError::top("StartAt", format!("refers to missing state \"{start}\""))
            } else {
                ValidationError::field(
                    owner,
                    "StartAt",
                    format!("refers to missing state \"{start}\""),
                )
            };
            ctx.push(e);
            return None;
        };
        let mut out = Vec::with_capacity(states.len());
        for (name, body) in states {
            if name.is_empty() || name.chars().count() > 80 {
                ctx.push(ValidationError::state(
                    name,
                    "a state name must be 1 to 80 characters long",
                ));
            }
            match body.as_object() {
                Some(b) => {
                    if let Some(s) = ctx.state(name, b, inherited, &index) {
                        out.push(s);
                    }
                }
                None => ctx.push(ValidationError::state(name, "must be a JSON object")),
            }
        }
        if out.len() != states.len() {
            return None;
        }
        let sm = StateMachine {
            start_at,
            states: out,
            index,
            query_language: inherited,
            timeout_seconds: None,
        };
        let terminal = sm.states.iter().any(|s| {
            matches!(s.kind, Kind::Succeed | Kind::Fail { .. })
                || (s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }))
        });
        if !terminal {
            let e = if owner.is_empty() {
                ValidationError::top(
                    "States",
                    "no state ends the workflow (no End, Succeed or Fail)",
                )
            } else {
                ValidationError::state(
                    owner,
                    "no state of a branch ends it (no End, Succeed or Fail)",
                )
            };
            ctx.push(e);
        }
        for name in unreachable(&sm) {
            ctx.push(ValidationError::state(
                &name,
                "is not reachable from StartAt",
            ));
        }
        Some(sm)
    }
}

/// State names must be unique across the whole machine, nested branches and processors included.
pub(super) fn duplicate_names(sm: &StateMachine, seen: &mut HashMap<Arc<str>, ()>, ctx: &mut Ctx) {
    for st in &sm.states {
        if seen.insert(st.name.clone(), ()).is_some() {
            ctx.push(ValidationError::state(
                &st.name,
                "the state name appears more than once in the machine",
            ));
        }
        match &st.kind {
            Kind::Parallel { branches } => {
                branches.iter().for_each(|b| duplicate_names(b, seen, ctx))
            }
            Kind::Map(m) => duplicate_names(&m.processor, seen, ctx),
            _ => {}
        }
    }
}

/// Names of states no transition, `Default`, Choice rule or `Catch` reaches from `StartAt`.
pub fn unreachable(sm: &StateMachine) -> Vec<String> {
    let mut seen = vec![false; sm.states.len()];
    let mut stack = vec![sm.start_at];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(successors(&sm.states[i]));
    }
    sm.states
        .iter()
        .zip(seen)
        .filter(|(_, s)| !s)
        .map(|(st, _)| st.name.to_string())
        .collect()
}

/// Every state a state may go to next, including `Catch` targets.
pub fn successors(s: &State) -> Vec<usize> {
    let mut out: Vec<usize> = s.next.into_iter().collect();
    if let Kind::Choice { choices, default } = &s.kind {
        out.extend(choices.iter().map(|c| c.next));
        out.extend(*default);
    }
    out.extend(s.catch.iter().map(|c| c.next));
    out
}

/// A field that must hold a non-empty array of objects (`Choices`, `Branches`): the objects, with an error
/// pushed for each element that is not one; `None`, with an error, when the array is missing or empty.
pub(super) fn required_objects<'a>(
    b: &'a Map<String, Value>,
    name: &str,
    field: &str,
    element: &str,
    ctx: &mut Ctx,
) -> Option<Vec<&'a Map<String, Value>>> {
    let Some(items) = b
        .get(field)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        ctx.push(ValidationError::field(
            name,
            field,
            "is required and must be a non-empty array",
        ));
        return None;
    };
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        match item.as_object() {
            Some(o) => objects.push(o),
            None => ctx.push(ValidationError::field(
                name,
                field,
                format!("each {element} must be an object"),
            )),
        }
    }
    Some(objects)
}

impl Ctx {
    pub(super) fn sub_machine(
        &mut self,
        o: &Map<String, Value>,
        qlang: QueryLanguage,
        owner: &str,
    ) -> Option<StateMachine> {
        let ctx = self;
        let inner_ql = match o.get("QueryLanguage") {
            None => qlang,
            Some(q) => ql(q).unwrap_or(qlang),
        };
        ctx.machine(o, inner_ql, owner)
    }
}
