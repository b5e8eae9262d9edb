//! A DISTRIBUTED Map's `ResultWriter`: where the Map Run's results go and how they are shaped
//! ("ResultWriter (Map)", https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).

use serde_json::Value;

use super::ctx::Ctx;
use super::template::template;
use super::types::{QueryLanguage, ResultWriterSpec, Transformation};
use crate::error::ValidationError;

/// The one S3 action a `ResultWriter` invokes.
const PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";

impl Ctx {
    pub(super) fn result_writer(
        &mut self,
        name: &str,
        rw: &Value,
        qlang: QueryLanguage,
    ) -> Option<ResultWriterSpec> {
        let Some(o) = rw.as_object() else {
            self.push(ValidationError::field(
                name,
                "ResultWriter",
                "must be an object",
            ));
            return None;
        };
        let resource = o.get("Resource").and_then(Value::as_str);
        let params = o.get("Parameters").or_else(|| o.get("Arguments"));
        let config = o.get("WriterConfig");
        // The field takes `WriterConfig`, or `Resource` and `Parameters`, or all three.
        if resource.is_some() != params.is_some() || (resource.is_none() && config.is_none()) {
            self.push(ValidationError::field(
                name,
                "ResultWriter",
                "needs WriterConfig, or Resource and Parameters, or all three",
            ));
            return None;
        }
        if let Some(r) = resource
            && r != PUT_OBJECT
        {
            self.push(ValidationError::field(
                name,
                "ResultWriter.Resource",
                format!("the resource {r} is not supported: a ResultWriter invokes {PUT_OBJECT}"),
            ));
        }
        let text = |field: &str| config.and_then(|c| c.get(field)).and_then(Value::as_str);
        // Exported to S3 without a WriterConfig, the results keep their workflow metadata (NONE);
        // kept in the state's output they are the outputs alone (COMPACT).
        let transformation = match text("Transformation") {
            None if resource.is_some() => Transformation::None,
            None | Some("COMPACT") => Transformation::Compact,
            Some("NONE") => Transformation::None,
            Some("FLATTEN") => Transformation::Flatten,
            Some(other) => {
                self.push(ValidationError::field(
                    name,
                    "ResultWriter.WriterConfig.Transformation",
                    format!("\"{other}\" is not NONE, COMPACT or FLATTEN"),
                ));
                Transformation::None
            }
        };
        let json_lines = match text("OutputType") {
            None | Some("JSON") => false,
            Some("JSONL") => true,
            Some(other) => {
                self.push(ValidationError::field(
                    name,
                    "ResultWriter.WriterConfig.OutputType",
                    format!("\"{other}\" is not JSON or JSONL"),
                ));
                false
            }
        };
        Some(ResultWriterSpec {
            resource: resource.map(str::to_string),
            parameters: params.map(|p| template(p, qlang, name, "ResultWriter.Parameters", self)),
            transformation,
            json_lines,
        })
    }
}
