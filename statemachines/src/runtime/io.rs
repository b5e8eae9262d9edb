//! Input and output processing shared by the states: `InputPath`, `ResultPath`, `OutputPath`, payload
//! sizes and the shapes results take.

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::env::Env;
use crate::error::{Failure, names};
use crate::handler::FunctionError;
use crate::model::{Dynamic, PathField, State};
use crate::path::Root;

/// A number, or a string holding one (variables often carry numbers as strings).
pub(super) fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True when `v` serialised as JSON is longer than `limit` bytes; stops counting once it is.
pub(crate) fn exceeds(v: &Value, limit: usize) -> bool {
    fn size(v: &Value, budget: &mut isize) {
        if *budget < 0 {
            return;
        }
        match v {
            Value::Null => *budget -= 4,
            Value::Bool(b) => *budget -= if *b { 4 } else { 5 },
            Value::Number(n) => *budget -= n.to_string().len() as isize,
            Value::String(s) => *budget -= string_size(s),
            Value::Array(a) => {
                *budget -= 1 + a.len().max(1) as isize;
                for x in a {
                    size(x, budget);
                }
            }
            Value::Object(o) => {
                *budget -= 1 + o.len().max(1) as isize;
                for (k, x) in o {
                    *budget -= string_size(k) + 1;
                    size(x, budget);
                }
            }
        }
    }
    fn string_size(s: &str) -> isize {
        let escapes = s
            .bytes()
            .filter(|b| matches!(b, b'"' | b'\\') || *b < 0x20)
            .count();
        (s.len() + 2 + escapes) as isize
    }
    let mut budget = limit as isize;
    size(v, &mut budget);
    budget < 0
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn dyn_path(d: &Option<Dynamic>) -> String {
    match d {
        Some(Dynamic::Path(p)) => p.to_string(),
        _ => String::new(),
    }
}

pub(super) fn display_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A handler's error as the workflow sees it. A Lambda's cause is the JSON error document the Lambda
/// service returns; another integration's cause is its message.
pub(super) fn handler_failure(e: &FunctionError, lambda: bool) -> Failure {
    // Lambda.Unknown is raised by the service itself (the function crashed), with a plain cause.
    if !lambda || e.error_type == "Lambda.Unknown" {
        return Failure::new(e.error_type.clone(), e.error_message.clone());
    }
    let cause = json!({"errorMessage": e.error_message, "errorType": e.error_type, "requestId": uuid::Uuid::new_v4().to_string(), "stackTrace": []});
    Failure::new(e.error_type.clone(), cause.to_string())
}

/// `arn:aws:states:::lambda:invoke` wraps the function's result as the Lambda `Invoke` API returns it.
pub(super) fn wrap_invoke_result(payload: Value, log_tail: bool) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    let len = python_json_len(&payload).to_string();
    let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let mut out = json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "Connection": ["keep-alive"],
                "Content-Length": [len],
                "Content-Type": ["application/json"],
                "Date": [date],
                "X-Amz-Executed-Version": ["$LATEST"],
                "X-Amzn-Trace-Id": ["Root=1-00000000-000000000000000000000000;Sampled=0"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "x-amzn-RequestId": [request_id],
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Length": len,
                "Content-Type": "application/json",
                "Date": date,
                "X-Amz-Executed-Version": "$LATEST",
                "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    });
    if log_tail {
        // `LogType: Tail` returns the end of the invocation's log, base64-encoded.
        use base64::Engine as _;
        let log = base64::engine::general_purpose::STANDARD.encode(format!(
            "START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n"
        ));
        out["LogResult"] = json!(log);
        out["SdkHttpMetadata"]["AllHttpHeaders"]["X-Amz-Log-Result"] = json!([log]);
        out["SdkHttpMetadata"]["HttpHeaders"]["X-Amz-Log-Result"] = json!(log);
    }
    out
}

/// Length of the payload as the Lambda service reports it (`json.dumps` separators: `", "`, `": "`).
pub(super) fn python_json_len(v: &Value) -> usize {
    match v {
        Value::Array(a) => {
            2 + a.iter().map(python_json_len).sum::<usize>() + a.len().saturating_sub(1) * 2
        }
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, x)| Value::String(k.clone()).to_string().len() + 2 + python_json_len(x))
                .sum::<usize>()
                + o.len().saturating_sub(1) * 2
        }
        other => other.to_string().len(),
    }
}

pub(super) fn apply_input_path(env: &Env<'_>, st: &State, raw: &Value) -> Result<Value, Failure> {
    match &st.input_path {
        PathField::Default => Ok(raw.clone()),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) => env.select(p, raw)?.ok_or_else(|| {
            Failure::runtime(format!(
                "{} Invalid path '{p}' : No results for path: InputPath",
                env.prefix()
            ))
        }),
    }
}

pub(super) fn apply_result_path(
    env: &Env<'_>,
    st: &State,
    raw: Value,
    result: Value,
) -> Result<Value, Failure> {
    match &st.result_path {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw),
        PathField::Path(p) => p.assign(raw, result).map_err(|e| {
            Failure::new(
                names::RESULT_PATH_MATCH_FAILURE,
                format!("{} {e}", env.prefix()),
            )
        }),
    }
}

pub(super) fn apply_output_path(env: &Env<'_>, st: &State, out: Value) -> Result<Value, Failure> {
    match &st.output_path {
        PathField::Default => Ok(out),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) if p.steps.is_empty() && p.root == Root::Input => Ok(out),
        PathField::Path(p) => env.select(p, &out)?.ok_or_else(|| {
            Failure::runtime(format!(
                "{} Invalid path '{p}' : No results for path: OutputPath",
                env.prefix()
            ))
        }),
    }
}
