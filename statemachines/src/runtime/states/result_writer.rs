//! A DISTRIBUTED Map's results: shaped by `WriterConfig.Transformation`, and with a `ResultWriter`
//! resource written to S3 through the engine's S3 port as AWS writes them ("ResultWriter (Map)",
//! https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html):
//!
//! - `<Prefix>/<MapRunId>/SUCCEEDED_0.json`, `FAILED_0.json` (failed, timed out and aborted children)
//!   and `PENDING_0.json` (items never started because the Map Run failed), each written when it has
//!   something to hold;
//! - `<Prefix>/<MapRunId>/manifest.json`: `{"DestinationBucket", "MapRunArn", "ResultFiles": {"FAILED":
//!   [{"Key", "Size"}], "PENDING": [...], "SUCCEEDED": [...]}}`.
//!
//! The Map's result is then `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`, the key the
//! manifest's. A write that fails fails the Map with `States.ResultWriterFailed`.

use serde_json::{Map, Value, json};

use super::map_run::{MapRun, Outcome};
use crate::error::{Failure, names};
use crate::execution::{Description, Status};
use crate::model::{QueryLanguage, ResultWriterSpec, State, Transformation};
use crate::runtime::described::{Shape, described};
use crate::runtime::env::Env;
use crate::runtime::runner::Runner;

/// A child execution as the NONE transformation shows it: its description, input and output as JSON
/// text, dates in ISO-8601.
const AS_WRITTEN: Shape = Shape {
    parsed: false,
    iso_dates: true,
    map_child: true,
};

/// The children's results under `t`. A failed child is always its description: "If a child workflow
/// execution fails, Step Functions returns its execution result unchanged" (as with NONE).
pub(super) fn shaped(children: &[Description], t: Transformation) -> Vec<Value> {
    let mut out = Vec::with_capacity(children.len());
    for d in children {
        match (d.status, t, &d.output) {
            (Status::Succeeded, Transformation::Compact, o) => {
                out.push(o.clone().unwrap_or(Value::Null));
            }
            (Status::Succeeded, Transformation::Flatten, Some(Value::Array(items))) => {
                out.extend(items.iter().cloned());
            }
            (Status::Succeeded, Transformation::Flatten, o) => {
                out.push(o.clone().unwrap_or(Value::Null));
            }
            _ => out.push(described(d, AS_WRITTEN)),
        }
    }
    out
}

impl Runner {
    /// Writes the Map Run's results and manifest; answers the Map's result.
    pub(super) async fn write_results(
        &self,
        env: &Env<'_>,
        st: &State,
        rw: &ResultWriterSpec,
        input: &Value,
        run: &MapRun,
        outcome: &Outcome,
    ) -> Result<Value, Failure> {
        let failed = |cause: String| Failure::new(names::RESULT_WRITER_FAILED, cause);
        let params = match &rw.parameters {
            Some(p) if st.query_language == QueryLanguage::Jsonata => {
                env.ja_template(p, input, None, "Arguments")?
            }
            Some(p) => env.template(p, input, "ResultWriter.Parameters")?,
            None => Value::Object(Map::new()),
        };
        let bucket = params
            .get("Bucket")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("The ResultWriter needs \"Bucket\"".into()))?;
        let prefix = match params.get("Prefix").and_then(Value::as_str) {
            None | Some("") => String::new(),
            Some(p) if p.ends_with('/') => p.to_string(),
            Some(p) => format!("{p}/"),
        };
        let port = self.inner.item_reader.read().expect("reader lock").clone();
        let port = port.ok_or_else(|| failed("No S3 port is configured in the engine".into()))?;
        let (succeeded, unsucceeded): (Vec<Description>, Vec<Description>) = outcome
            .children
            .iter()
            .cloned()
            .partition(|d| d.status == Status::Succeeded);
        let pending = outcome
            .pending
            .iter()
            .map(|i| json!({"Input": i.to_string(), "InputDetails": {"Included": true}}))
            .collect();
        let files = [
            ("FAILED", shaped(&unsucceeded, Transformation::None)),
            ("PENDING", pending),
            ("SUCCEEDED", shaped(&succeeded, rw.transformation)),
        ];
        let base = format!("{prefix}{}/", run.id);
        let mut result_files = Map::new();
        for (status, results) in files {
            let mut listed = Vec::new();
            if !results.is_empty() {
                let key = format!("{base}{status}_0.json");
                let body = if rw.json_lines {
                    let lines: Vec<String> = results.iter().map(Value::to_string).collect();
                    lines.join("\n")
                } else {
                    Value::Array(results).to_string()
                };
                let size = body.len();
                port.put_object(bucket, &key, body.into_bytes())
                    .await
                    .map_err(failed)?;
                listed.push(json!({"Key": key, "Size": size}));
            }
            result_files.insert(status.into(), Value::Array(listed));
        }
        let manifest = json!({
            "DestinationBucket": bucket,
            "MapRunArn": run.arn,
            "ResultFiles": result_files,
        });
        let key = format!("{base}manifest.json");
        port.put_object(bucket, &key, manifest.to_string().into_bytes())
            .await
            .map_err(failed)?;
        Ok(json!({
            "MapRunArn": run.arn,
            "ResultWriterDetails": {"Bucket": bucket, "Key": key},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn child(status: Status, output: Option<Value>) -> Description {
        Description {
            execution_arn: "arn:c".into(),
            state_machine_arn: "arn:m".into(),
            name: "c".into(),
            status,
            input: json!(1),
            output,
            error: None,
            cause: None,
            start_date: Utc::now(),
            stop_date: Some(Utc::now()),
        }
    }

    #[test]
    fn transformations() {
        let children = [
            child(Status::Succeeded, Some(json!([1, 2]))),
            child(Status::Succeeded, Some(json!(3))),
            child(Status::Failed, None),
        ];
        let compact = shaped(&children, Transformation::Compact);
        assert_eq!(compact[..2], [json!([1, 2]), json!(3)]);
        assert_eq!(compact[2]["Status"], json!("FAILED"));
        let flat = shaped(&children, Transformation::Flatten);
        assert_eq!(flat[..3], [json!(1), json!(2), json!(3)]);
        let none = shaped(&children, Transformation::None);
        assert_eq!(none[0]["Output"], json!("[1,2]"));
        assert_eq!(none[0]["Input"], json!("1"));
    }
}
