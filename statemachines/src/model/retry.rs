//! `Retry` and `Catch` rules: error names and retrier parameters.

use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::targets::Targets;
use super::template::template;
use super::types::*;
use crate::error::ValidationError;
use crate::path::Path;

pub(super) fn error_equals(
    state: &str,
    field: &str,
    v: Option<&Value>,
    ctx: &mut Ctx,
) -> Vec<String> {
    let Some(arr) = v.and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        ctx.push(ValidationError::field(
            state,
            field,
            "\"ErrorEquals\" is required and must be a non-empty array",
        ));
        return Vec::new();
    };
    let names: Vec<String> = arr
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    if names.len() != arr.len() {
        ctx.push(ValidationError::field(
            state,
            field,
            "\"ErrorEquals\" holds error name strings",
        ));
    }
    if names.iter().any(|n| n == crate::error::names::ALL) && names.len() > 1 {
        ctx.push(ValidationError::field(
            state,
            field,
            "\"States.ALL\" must appear alone in \"ErrorEquals\"",
        ));
    }
    names
}

pub(super) fn retrier(state: &str, r: &Value, ctx: &mut Ctx) -> Option<Retrier> {
    let Some(o) = r.as_object() else {
        ctx.push(ValidationError::field(
            state,
            "Retry",
            "each retrier must be an object",
        ));
        return None;
    };
    let errs = error_equals(state, "Retry", o.get("ErrorEquals"), ctx);
    let num = |k: &str, d: f64, ctx: &mut Ctx| -> f64 {
        match o.get(k) {
            None => d,
            Some(v) => v.as_f64().unwrap_or_else(|| {
                ctx.push(ValidationError::field(
                    state,
                    &format!("Retry.{k}"),
                    "must be a number",
                ));
                d
            }),
        }
    };
    let interval = num("IntervalSeconds", 1.0, ctx);
    let max_attempts = num("MaxAttempts", 3.0, ctx);
    let backoff = num("BackoffRate", 2.0, ctx);
    if interval < 1.0 || interval.fract() != 0.0 {
        ctx.push(ValidationError::field(
            state,
            "Retry.IntervalSeconds",
            "must be a positive integer",
        ));
    }
    if max_attempts < 0.0 || max_attempts.fract() != 0.0 {
        ctx.push(ValidationError::field(
            state,
            "Retry.MaxAttempts",
            "must be a non-negative integer",
        ));
    }
    if backoff < 1.0 {
        ctx.push(ValidationError::field(
            state,
            "Retry.BackoffRate",
            "must be at least 1.0",
        ));
    }
    let jitter_full = match o.get("JitterStrategy").and_then(Value::as_str) {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(other) => {
            ctx.push(ValidationError::field(
                state,
                "Retry.JitterStrategy",
                format!("\"{other}\" is not FULL or NONE"),
            ));
            false
        }
    };
    Some(Retrier {
        error_equals: errs,
        interval_seconds: interval,
        max_attempts: max_attempts as u32,
        backoff_rate: backoff,
        max_delay_seconds: o.get("MaxDelaySeconds").and_then(Value::as_f64),
        jitter_full,
    })
}

impl Ctx {
    /// A state's `Catch` rules; invalid catchers are left out, with an error each in `ctx`.
    pub(super) fn catchers(
        &mut self,
        name: &str,
        b: &Map<String, Value>,
        qlang: QueryLanguage,
        targets: &Targets<'_>,
    ) -> Vec<Catcher> {
        let ctx = self;
        match b.get("Catch") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for c in items {
                    let Some(o) = c.as_object() else {
                        ctx.push(ValidationError::field(
                            name,
                            "Catch",
                            "each catcher must be an object",
                        ));
                        continue;
                    };
                    let errs = error_equals(name, "Catch", o.get("ErrorEquals"), ctx);
                    let Some(n) = o.get("Next") else {
                        ctx.push(ValidationError::field(
                            name,
                            "Catch",
                            "each catcher needs \"Next\"",
                        ));
                        continue;
                    };
                    let Some(target) = targets.resolve(n, "Catch.Next", ctx) else {
                        continue;
                    };
                    let rp = match o.get("ResultPath") {
                        None => PathField::Default,
                        Some(Value::Null) => PathField::Null,
                        Some(Value::String(s)) => match Path::parse(s) {
                            Ok(p) if p.is_reference() => PathField::Path(p),
                            _ => {
                                ctx.push(ValidationError::field(
                                    name,
                                    "Catch.ResultPath",
                                    format!("\"{s}\" is not a valid reference path"),
                                ));
                                PathField::Default
                            }
                        },
                        Some(_) => {
                            ctx.push(ValidationError::field(
                                name,
                                "Catch.ResultPath",
                                "must be a string or null",
                            ));
                            PathField::Default
                        }
                    };
                    if qlang == QueryLanguage::Jsonata && o.contains_key("ResultPath") {
                        ctx.push(ValidationError::field(
                            name,
                            "Catch.ResultPath",
                            "is a JSONPath field and may not be used in a JSONata state",
                        ));
                    }
                    out.push(Catcher {
                        error_equals: errs,
                        next: target,
                        result_path: rp,
                        assign: o
                            .get("Assign")
                            .map(|v| template(v, qlang, name, "Catch.Assign", ctx)),
                        output: o
                            .get("Output")
                            .map(|v| template(v, qlang, name, "Catch.Output", ctx)),
                    });
                }
                out
            }
            Some(_) => {
                ctx.push(ValidationError::field(name, "Catch", "must be an array"));
                Vec::new()
            }
        }
    }
}
