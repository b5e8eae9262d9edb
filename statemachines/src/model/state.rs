//! One state: its type, query language, transitions, input/output fields and error handling.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ctx::{Ctx, ql};
use super::fields::{COMMON, JSONATA_ONLY, JSONPATH_IO, JSONPATH_ONLY, allows};
use super::retry::retrier;
use super::targets::Targets;
use super::template::template;
use super::types::*;
use crate::error::ValidationError;
use crate::path::Path;

impl Ctx {
    pub(super) fn state(
        &mut self,
        name: &str,
        b: &Map<String, Value>,
        inherited: QueryLanguage,
        index: &HashMap<Arc<str>, usize>,
    ) -> Option<State> {
        let ctx = self;
        let Some(t) = b.get("Type").and_then(Value::as_str) else {
            ctx.push(ValidationError::field(
                name,
                "Type",
                "is required and must be a string",
            ));
            return None;
        };
        let type_name: &'static str = match t {
            "Pass" => "Pass",
            "Task" => "Task",
            "Choice" => "Choice",
            "Wait" => "Wait",
            "Succeed" => "Succeed",
            "Fail" => "Fail",
            "Parallel" => "Parallel",
            "Map" => "Map",
            other => {
                ctx.push(ValidationError::field(
                    name,
                    "Type",
                    format!("\"{other}\" is not a state type"),
                ));
                return None;
            }
        };
        let qlang = match b.get("QueryLanguage") {
            None => inherited,
            Some(q) => match ql(q) {
                Some(QueryLanguage::JsonPath) if inherited == QueryLanguage::Jsonata => {
                    ctx.push(ValidationError::field(
                        name,
                        "QueryLanguage",
                        "a state cannot use JSONPath when the state machine uses JSONata",
                    ));
                    QueryLanguage::JsonPath
                }
                Some(q) => q,
                None => {
                    ctx.push(ValidationError::field(
                        name,
                        "QueryLanguage",
                        "must be \"JSONPath\" or \"JSONata\"",
                    ));
                    inherited
                }
            },
        };
        let before = ctx.errors.len();
        for key in b.keys() {
            if COMMON.contains(&key.as_str()) {
                continue;
            }
            let io_field = JSONPATH_IO.contains(&key.as_str()) && type_name != "Fail";
            if !(allows(type_name, key) || io_field) {
                ctx.push(ValidationError::field(
                    name,
                    key,
                    format!("is not supported by a {type_name} state"),
                ));
                continue;
            }
            if qlang == QueryLanguage::Jsonata && JSONPATH_ONLY.contains(&key.as_str()) {
                ctx.push(ValidationError::field(
                    name,
                    key,
                    "is a JSONPath field and may not be used in a JSONata state",
                ));
            }
            if qlang == QueryLanguage::JsonPath && JSONATA_ONLY.contains(&key.as_str()) {
                ctx.push(ValidationError::field(
                    name,
                    key,
                    "is a JSONata field and may not be used in a JSONPath state",
                ));
            }
        }

        let targets = Targets { state: name, index };

        let terminal = matches!(type_name, "Choice" | "Succeed" | "Fail");
        let mut next = None;
        if !terminal {
            let end = b.get("End");
            match (b.get("Next"), end) {
                (Some(_), Some(Value::Bool(true))) => ctx.push(ValidationError::state(
                    name,
                    "has both \"Next\" and \"End\": a state takes one of them",
                )),
                (Some(n), _) => next = targets.resolve(n, "Next", ctx),
                (None, Some(Value::Bool(true))) => {}
                (None, _) => ctx.push(ValidationError::field(
                    name,
                    "Next",
                    "is required unless \"End\" is true",
                )),
            }
        }

        let path_field = |field: &str, reference: bool, ctx: &mut Ctx| -> PathField {
            match b.get(field) {
                None => PathField::Default,
                Some(Value::Null) => PathField::Null,
                Some(Value::String(s)) => match Path::parse(s) {
                    Ok(p) if reference && !p.is_reference() => {
                        ctx.push(ValidationError::field(
                            name,
                            field,
                            format!("\"{s}\" is not a valid reference path"),
                        ));
                        PathField::Default
                    }
                    Ok(p) => PathField::Path(p),
                    Err(e) => {
                        ctx.push(ValidationError::field(name, field, e.to_string()));
                        PathField::Default
                    }
                },
                Some(_) => {
                    ctx.push(ValidationError::field(
                        name,
                        field,
                        "must be a string or null",
                    ));
                    PathField::Default
                }
            }
        };
        let input_path = path_field("InputPath", false, ctx);
        let output_path = path_field("OutputPath", false, ctx);
        let result_path = path_field("ResultPath", true, ctx);
        let tmpl = |field: &str, ctx: &mut Ctx| -> Option<Template> {
            b.get(field).map(|v| template(v, qlang, name, field, ctx))
        };
        let parameters = if qlang == QueryLanguage::Jsonata {
            tmpl("Arguments", ctx)
        } else {
            tmpl("Parameters", ctx)
        };
        let result_selector = tmpl("ResultSelector", ctx);
        let output = tmpl("Output", ctx);
        let assign = match b.get("Assign") {
            Some(Value::Object(_)) => tmpl("Assign", ctx),
            Some(_) => {
                ctx.push(ValidationError::field(
                    name,
                    "Assign",
                    "must be a JSON object",
                ));
                None
            }
            None => None,
        };
        if let Some(Value::String(_)) = b.get("Parameters").filter(|_| type_name != "Map") {
            ctx.push(ValidationError::field(
                name,
                "Parameters",
                "must be a JSON object",
            ));
        }

        let retry = match b.get("Retry") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().filter_map(|r| retrier(name, r, ctx)).collect()
            }
            Some(_) => {
                ctx.push(ValidationError::field(name, "Retry", "must be an array"));
                Vec::new()
            }
        };
        let catch = ctx.catchers(name, b, qlang, &targets);

        let kind = ctx.kind(type_name, name, b, qlang, &targets)?;
        if ctx.errors.len() != before {
            return None;
        }
        Some(State {
            name: Arc::from(name),
            type_name,
            comment: b.get("Comment").and_then(Value::as_str).map(str::to_string),
            query_language: qlang,
            next,
            input_path,
            output_path,
            result_path,
            parameters,
            result_selector,
            output,
            assign,
            retry,
            catch,
            kind,
        })
    }
}
