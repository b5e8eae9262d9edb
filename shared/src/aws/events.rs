//! EventBridge: the outcome events of workflows.
//!
//! Deployed, the definitions publish through Step Functions' optimized integration
//! `arn:aws:states:::events:putEvents`. [`put_events_integration`] gives that integration's semantics over the
//! SDK so the local engine publishes the same events to moto: `Detail` may be a JSON object (serialised to
//! the string `PutEvents` takes), the execution's and state machine's ARNs are appended to every entry's
//! `Resources`, and a non-zero `FailedEntryCount` fails the task with `EventBridge.FailedEntry`.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{Value, json};
use thiserror::Error;

use crate::error::BoxError;

/// The error name of a `PutEvents` response with failed entries, as Step Functions reports it.
pub const FAILED_ENTRY: &str = "EventBridge.FailedEntry";

/// Publishing through the `events:putEvents` integration failed.
#[derive(Debug, Error)]
pub enum PutEventsError {
    /// The task's parameters are not a `PutEvents` request (no `Entries`, a field of the wrong type).
    #[error("invalid events:putEvents parameters: {0}")]
    InvalidParameters(String),
    /// EventBridge refused or failed the call itself.
    #[error("EventBridge PutEvents failed: {}", DisplayErrorContext(source.as_ref()))]
    Aws {
        /// The error code EventBridge returned, when it returned one.
        code: Option<String>,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The call succeeded but some entries were not accepted.
    #[error("{count} of the events were not accepted: {first}")]
    FailedEntries {
        /// How many entries failed.
        count: i32,
        /// The first failed entry's error code and message.
        first: String,
    },
}

impl PutEventsError {
    /// The error name the task fails with, as Step Functions names the integration's errors.
    pub fn error_name(&self) -> String {
        match self {
            PutEventsError::InvalidParameters(_) => "States.Runtime".to_owned(),
            PutEventsError::Aws { code, .. } => format!(
                "EventBridge.{}",
                code.as_deref().unwrap_or("EventBridgeException")
            ),
            PutEventsError::FailedEntries { .. } => FAILED_ENTRY.to_owned(),
        }
    }
}

/// The state machine ARN of an execution ARN (`...:execution:<machine>:<name>` → `...:stateMachine:<machine>`).
pub fn state_machine_arn(execution_arn: &str) -> Option<String> {
    let (head, rest) = execution_arn.split_once(":execution:")?;
    let (machine, _name) = rest.split_once(':')?;
    Some(format!("{head}:stateMachine:{machine}"))
}

fn entry(value: &Value, resources: &[String]) -> Result<PutEventsRequestEntry, PutEventsError> {
    let text = |field: &str| -> Result<Option<String>, PutEventsError> {
        match value.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(PutEventsError::InvalidParameters(format!(
                "Entries[].{field} must be a string, not {other}"
            ))),
        }
    };
    let detail = match value.get("Detail") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Step Functions serialises a JSON Detail for the caller.
        Some(object @ Value::Object(_)) => Some(object.to_string()),
        Some(other) => {
            return Err(PutEventsError::InvalidParameters(format!(
                "Entries[].Detail must be an object or a string, not {other}"
            )));
        }
    };
    let mut all_resources: Vec<String> = match value.get("Resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| {
                r.as_str().map(str::to_owned).ok_or_else(|| {
                    PutEventsError::InvalidParameters(format!(
                        "Entries[].Resources must hold strings, not {r}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(PutEventsError::InvalidParameters(format!(
                "Entries[].Resources must be an array, not {other}"
            )));
        }
    };
    all_resources.extend(resources.iter().cloned());
    Ok(PutEventsRequestEntry::builder()
        .set_source(text("Source")?)
        .set_detail_type(text("DetailType")?)
        .set_detail(detail)
        .set_event_bus_name(text("EventBusName")?)
        .set_trace_header(text("TraceHeader")?)
        .set_resources(Some(all_resources))
        .build())
}

/// Runs the task `arn:aws:states:::events:putEvents` with `parameters` for `execution_arn` and returns the
/// task's result, `{"Entries": [{"EventId"}], "FailedEntryCount": 0}`.
pub async fn put_events_integration(
    client: &aws_sdk_eventbridge::Client,
    parameters: &Value,
    execution_arn: &str,
) -> Result<Value, PutEventsError> {
    let entries = parameters
        .get("Entries")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            PutEventsError::InvalidParameters("Entries must be a non-empty array".to_owned())
        })?;
    let resources: Vec<String> = std::iter::once(execution_arn.to_owned())
        .chain(state_machine_arn(execution_arn))
        .collect();
    let entries = entries
        .iter()
        .map(|e| entry(e, &resources))
        .collect::<Result<Vec<_>, _>>()?;
    let out = client
        .put_events()
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| PutEventsError::Aws {
            code: aws_sdk_eventbridge::error::ProvideErrorMetadata::code(&e).map(str::to_owned),
            source: Box::new(e),
        })?;
    let results: Vec<Value> = out
        .entries()
        .iter()
        .map(|r| match r.event_id() {
            Some(id) => json!({ "EventId": id }),
            None => json!({ "ErrorCode": r.error_code(), "ErrorMessage": r.error_message() }),
        })
        .collect();
    if out.failed_entry_count() > 0 {
        let first = out
            .entries()
            .iter()
            .find(|r| r.event_id().is_none())
            .map(|r| {
                format!(
                    "{}: {}",
                    r.error_code().unwrap_or("unknown"),
                    r.error_message().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        tracing::warn!(
            failed = out.failed_entry_count(),
            first,
            "outcome events not accepted"
        );
        return Err(PutEventsError::FailedEntries {
            count: out.failed_entry_count(),
            first,
        });
    }
    tracing::info!(
        events = results.len(),
        execution = execution_arn,
        "outcome events published"
    );
    Ok(json!({ "Entries": results, "FailedEntryCount": 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_arn_comes_from_the_execution_arn() {
        assert_eq!(
            state_machine_arn("arn:aws:states:us-east-1:123456789012:execution:backup:run-1")
                .as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:backup")
        );
        assert_eq!(state_machine_arn("not-an-arn"), None);
    }

    #[test]
    fn entries_take_an_object_detail_and_get_the_execution_resources() {
        let e = entry(
            &json!({"Source": "opsplane", "DetailType": "t", "Detail": {"a": 1}, "EventBusName": "default"}),
            &["arn:x".to_owned()],
        )
        .unwrap();
        assert_eq!(e.detail(), Some(r#"{"a":1}"#));
        assert_eq!(e.resources(), ["arn:x".to_owned()]);
        assert_eq!(e.event_bus_name(), Some("default"));
    }

    #[test]
    fn malformed_entries_are_refused_with_the_field() {
        let err = entry(&json!({"Source": 1}), &[]).unwrap_err();
        assert!(err.to_string().contains("Source"), "{err}");
        assert_eq!(err.error_name(), "States.Runtime");
        let err = entry(&json!({"Detail": [1]}), &[]).unwrap_err();
        assert!(err.to_string().contains("Detail"), "{err}");
    }
}
