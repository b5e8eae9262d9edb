//! Payload templates and dynamic fields: JSONPath templates with `.$` keys and intrinsics, and JSONata
//! `{% ... %}` expressions.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::types::*;
use crate::error::ValidationError;
use crate::intrinsic::{self, Call};
use crate::path::Path;

/// A field given literally (`name`), by path (`path_name`, `JSONPath` only) or as `{% %}` (`JSONata`).
pub(super) fn dynamic(
    state: &str,
    b: &Map<String, Value>,
    name: &str,
    path_name: &str,
    qlang: QueryLanguage,
    ctx: &mut Ctx,
    numeric: bool,
) -> Option<Dynamic> {
    match (b.get(name), b.get(path_name)) {
        (Some(_), Some(_)) => {
            ctx.push(ValidationError::state(
                state,
                format!("has both \"{name}\" and \"{path_name}\""),
            ));
            None
        }
        (Some(v), None) => {
            if qlang == QueryLanguage::Jsonata
                && let Some(e) = v.as_str().and_then(jsonata_expr)
            {
                return Some(Dynamic::Jsonata(Arc::from(e)));
            }
            if numeric && !(v.is_number() || v.is_string()) {
                ctx.push(ValidationError::field(state, name, "has the wrong type"));
            }
            Some(Dynamic::Value(v.clone()))
        }
        (None, Some(p)) => {
            let Some(s) = p.as_str() else {
                ctx.push(ValidationError::field(state, path_name, "must be a string"));
                return None;
            };
            if intrinsic::looks_like_call(s) {
                match Call::parse(s) {
                    Ok(c) => return Some(Dynamic::Call(Box::new(c))),
                    Err(e) => {
                        ctx.push(ValidationError::field(state, path_name, e));
                        return None;
                    }
                }
            }
            match Path::parse(s) {
                Ok(p) => Some(Dynamic::Path(p)),
                Err(e) => {
                    ctx.push(ValidationError::field(state, path_name, e.to_string()));
                    None
                }
            }
        }
        (None, None) => None,
    }
}

/// Returns the expression inside `{% ... %}`, if `s` is one.
pub fn jsonata_expr(s: &str) -> Option<&str> {
    let t = s.strip_prefix("{%")?.strip_suffix("%}")?;
    Some(t.trim())
}

/// Compiles a template field.
pub(super) fn template(
    v: &Value,
    qlang: QueryLanguage,
    state: &str,
    field: &str,
    ctx: &mut Ctx,
) -> Template {
    match qlang {
        QueryLanguage::JsonPath => jp_template(v, state, field, ctx),
        QueryLanguage::Jsonata => ja_template(v),
    }
}

pub(super) fn is_static(t: &Template) -> bool {
    matches!(t, Template::Literal(_))
}

pub(super) fn jp_template(v: &Value, state: &str, field: &str, ctx: &mut Ctx) -> Template {
    match v {
        Value::Object(o) => {
            let mut fields = Vec::with_capacity(o.len());
            for (k, val) in o {
                if let Some(key) = k.strip_suffix(".$") {
                    let Some(s) = val.as_str() else {
                        ctx.push(ValidationError::field(
                            state,
                            field,
                            format!(
                                "the value of \"{k}\" must be a path or intrinsic function string"
                            ),
                        ));
                        continue;
                    };
                    let t = if intrinsic::looks_like_call(s) {
                        match Call::parse(s) {
                            Ok(c) => Template::Call(c),
                            Err(e) => {
                                ctx.push(ValidationError::field(state, field, format!("the value of \"{k}\" must be a valid JSONPath or a valid intrinsic function call: {e}")));
                                continue;
                            }
                        }
                    } else {
                        match Path::parse(s) {
                            Ok(p) => Template::Path(p),
                            Err(e) => {
                                ctx.push(ValidationError::field(state, field, format!("the value of \"{k}\" must be a valid JSONPath or a valid intrinsic function call: {e}")));
                                continue;
                            }
                        }
                    };
                    fields.push((key.to_string(), t));
                } else {
                    fields.push((k.clone(), jp_template(val, state, field, ctx)));
                }
            }
            if fields.iter().all(|(_, t)| is_static(t)) && !o.keys().any(|k| k.ends_with(".$")) {
                Template::Literal(v.clone())
            } else {
                Template::Object(fields)
            }
        }
        Value::Array(a) => {
            let items: Vec<Template> = a
                .iter()
                .map(|x| jp_template(x, state, field, ctx))
                .collect();
            if items.iter().all(is_static) {
                Template::Literal(v.clone())
            } else {
                Template::Array(items)
            }
        }
        other => Template::Literal(other.clone()),
    }
}

pub(super) fn ja_template(v: &Value) -> Template {
    match v {
        Value::String(s) => match jsonata_expr(s) {
            Some(e) => Template::Jsonata(Arc::from(e)),
            None => Template::Literal(v.clone()),
        },
        Value::Object(o) => {
            let fields: Vec<(String, Template)> =
                o.iter().map(|(k, x)| (k.clone(), ja_template(x))).collect();
            if fields.iter().all(|(_, t)| is_static(t)) {
                Template::Literal(v.clone())
            } else {
                Template::Object(fields)
            }
        }
        Value::Array(a) => {
            let items: Vec<Template> = a.iter().map(ja_template).collect();
            if items.iter().all(is_static) {
                Template::Literal(v.clone())
            } else {
                Template::Array(items)
            }
        }
        other => Template::Literal(other.clone()),
    }
}
