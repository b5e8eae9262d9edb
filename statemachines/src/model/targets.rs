//! Transition targets (`Next`, `Default`, a choice's or catcher's `Next`) resolved to state indexes.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::ctx::Ctx;
use crate::error::ValidationError;

/// Resolves transition targets (`Next`, `Default`, a catcher's `Next`) of one state to state indexes.
pub(super) struct Targets<'a> {
    /// The state whose transitions these are, for messages.
    pub(super) state: &'a str,
    /// State name to index, in the enclosing scope.
    pub(super) index: &'a HashMap<Arc<str>, usize>,
}

impl Targets<'_> {
    /// The index of the state `target` names; an error naming `field` when it is missing or not a name.
    pub(super) fn resolve(&self, target: &Value, field: &str, ctx: &mut Ctx) -> Option<usize> {
        let name = self.state;
        let index = self.index;
        match target.as_str() {
            Some(t) => match index.get(t) {
                Some(&i) => Some(i),
                None => {
                    ctx.push(ValidationError::field(
                        name,
                        field,
                        format!("refers to missing state \"{t}\""),
                    ));
                    None
                }
            },
            None => {
                ctx.push(ValidationError::field(name, field, "must be a state name"));
                None
            }
        }
    }
}
