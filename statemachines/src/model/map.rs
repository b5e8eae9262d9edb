//! The Map state: inline and DISTRIBUTED, items, selectors, readers, batching and tolerated failures.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::MachineType;
use super::ctx::Ctx;
use super::template::{dynamic, template};
use super::types::*;
use crate::error::ValidationError;
use crate::path::Path;

impl Ctx {
    pub(super) fn map_spec(
        &mut self,
        name: &str,
        b: &Map<String, Value>,
        qlang: QueryLanguage,
    ) -> Option<Kind> {
        let ctx = self;
        let (proc_field, proc) = match (b.get("ItemProcessor"), b.get("Iterator")) {
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (Some(_), Some(_)) => {
                ctx.push(ValidationError::state(
                    name,
                    "has both \"ItemProcessor\" and \"Iterator\"",
                ));
                return None;
            }
            (None, None) => {
                ctx.push(ValidationError::field(name, "ItemProcessor", "is required"));
                return None;
            }
        };
        let Some(po) = proc.as_object() else {
            ctx.push(ValidationError::field(
                name,
                proc_field,
                "must be an object",
            ));
            return None;
        };
        let mut distributed = false;
        let mut execution_type = MachineType::Standard;
        if let Some(cfg) = po.get("ProcessorConfig") {
            match cfg.get("Mode").and_then(Value::as_str) {
                None | Some("INLINE") => {}
                Some("DISTRIBUTED") => distributed = true,
                Some(other) => ctx.push(ValidationError::field(
                    name,
                    "ItemProcessor.ProcessorConfig.Mode",
                    format!("\"{other}\" is not INLINE or DISTRIBUTED"),
                )),
            }
            if let Some(et) = cfg.get("ExecutionType").and_then(Value::as_str) {
                match et.parse() {
                    Ok(t) => execution_type = t,
                    Err(_) => ctx.push(ValidationError::field(
                        name,
                        "ItemProcessor.ProcessorConfig.ExecutionType",
                        format!("\"{et}\" is not STANDARD or EXPRESS"),
                    )),
                }
            }
        }
        if let Some(label) = b.get("Label") {
            match label.as_str() {
                Some(l) => {
                    if l.is_empty() {
                        ctx.push(ValidationError::field(name, "Label", "cannot be empty"));
                    } else if l.chars().count() > 40 {
                        ctx.push(ValidationError::field(
                            name,
                            "Label",
                            "cannot exceed 40 characters",
                        ));
                    } else if let Some(c) = l.chars().find(|&c| {
                        c.is_whitespace()
                            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
                            || (c as u32) < 0x20
                            || (0x7f..=0x9f).contains(&(c as u32))
                    }) {
                        ctx.push(ValidationError::field(
                            name,
                            "Label",
                            format!("contains invalid character {c:?}"),
                        ));
                    }
                    if !distributed {
                        ctx.push(ValidationError::field(
                            name,
                            "Label",
                            "is only supported by a DISTRIBUTED Map",
                        ));
                    }
                }
                None => ctx.push(ValidationError::field(name, "Label", "must be a string")),
            }
        }
        for f in ["ItemReader", "ItemBatcher", "ResultWriter"] {
            if b.contains_key(f) && !distributed {
                ctx.push(ValidationError::field(
                    name,
                    f,
                    "is only supported by a DISTRIBUTED Map",
                ));
            }
        }
        if b.contains_key("ItemSelector") && b.contains_key("Parameters") {
            ctx.push(ValidationError::state(
                name,
                "has both \"ItemSelector\" and \"Parameters\"",
            ));
        }
        let processor = ctx.sub_machine(po, qlang, name)?;
        let selector_field = if b.contains_key("ItemSelector") {
            "ItemSelector"
        } else {
            "Parameters"
        };
        let item_selector = b
            .get(selector_field)
            .map(|v| template(v, qlang, name, selector_field, ctx));
        let items_path = match b.get("ItemsPath") {
            None => PathField::Default,
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p) => PathField::Path(p),
                Err(e) => {
                    ctx.push(ValidationError::field(name, "ItemsPath", e.to_string()));
                    PathField::Default
                }
            },
            Some(_) => {
                ctx.push(ValidationError::field(
                    name,
                    "ItemsPath",
                    "must be a string",
                ));
                PathField::Default
            }
        };
        let items = b
            .get("Items")
            .map(|v| template(v, qlang, name, "Items", ctx));
        let item_reader = match b.get("ItemReader") {
            None => None,
            Some(r) => {
                let Some(resource) = r.get("Resource").and_then(Value::as_str) else {
                    ctx.push(ValidationError::field(
                        name,
                        "ItemReader.Resource",
                        "is required",
                    ));
                    return None;
                };
                let params = r.get("Parameters").or_else(|| r.get("Arguments"));
                Some(ItemReaderSpec {
                    resource: resource.to_string(),
                    parameters: params
                        .map(|p| template(p, qlang, name, "ItemReader.Parameters", ctx)),
                    reader_config: r.get("ReaderConfig").cloned().unwrap_or(Value::Null),
                })
            }
        };
        let max_concurrency = dynamic(
            name,
            b,
            "MaxConcurrency",
            "MaxConcurrencyPath",
            qlang,
            ctx,
            true,
        );
        let tolerated_failure_count = dynamic(
            name,
            b,
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            qlang,
            ctx,
            true,
        );
        let tolerated_failure_percentage = dynamic(
            name,
            b,
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            qlang,
            ctx,
            true,
        );
        if let Some(Dynamic::Value(v)) = &max_concurrency
            && v.as_u64().is_none()
        {
            ctx.push(ValidationError::field(
                name,
                "MaxConcurrency",
                "must be a non-negative integer",
            ));
        }
        if let Some(Dynamic::Value(v)) = &tolerated_failure_percentage
            && !v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p))
        {
            ctx.push(ValidationError::field(
                name,
                "ToleratedFailurePercentage",
                "must be between 0 and 100",
            ));
        }
        let result_writer = match b.get("ResultWriter") {
            Some(rw) if distributed => ctx.result_writer(name, rw, qlang),
            _ => None,
        };
        Some(Kind::Map(Box::new(MapSpec {
            processor: Arc::new(processor),
            distributed,
            items_path,
            items,
            item_selector,
            item_reader,
            item_batcher: b.get("ItemBatcher").cloned(),
            max_concurrency,
            tolerated_failure_count,
            tolerated_failure_percentage,
            label: b.get("Label").and_then(Value::as_str).map(str::to_string),
            execution_type,
            result_writer,
        })))
    }
}
