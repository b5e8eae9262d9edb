//! Definition validation answered as `ValidateStateMachineDefinition` answers it:
//! `{"result": "OK" | "FAIL", "diagnostics": [{"severity", "code", "location", "message"}]}`, with
//! JSON-pointer locations, per state machine type.
//!
//! See the API reference: ValidateStateMachineDefinition
//! (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html)
//! and ValidateStateMachineDefinitionDiagnostic for the codes (`SCHEMA_VALIDATION_FAILED`,
//! `INVALID_JSON_DESCRIPTION`, `DUPLICATE_STATE_NAME`, ...). Messages follow the wording AWS uses where it
//! is known ("These fields are required: [States]", "The field 'RoleArn' is required but was missing");
//! AWS itself warns that wording may change, so callers should rely on `result`.

use serde::Serialize;
use serde_json::Value;

use crate::error::ValidationError;
use crate::model::{self, MachineType};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// The definition cannot be created.
    Error,
    /// The definition can be created but looks wrong.
    Warning,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// No error diagnostics.
    Ok,
    /// At least one error diagnostic.
    Fail,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// ERROR or WARNING.
    pub severity: Severity,
    /// AWS's code, e.g. `SCHEMA_VALIDATION_FAILED`.
    pub code: String,
    /// A JSON pointer into the definition, e.g. `/States/Publish/Resource` (`/` for the whole).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// OK or FAIL.
    pub result: Verdict,
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    /// The answer as JSON, in the API's shape.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Validates `text` as a state machine of type `machine_type`.
pub fn validate(text: &str, machine_type: MachineType) -> Validation {
    let errors = match serde_json::from_str::<Value>(text) {
        Err(e) => {
            return fail(vec![diagnostic(
                "INVALID_JSON_DESCRIPTION",
                "/",
                format!("The definition is not valid JSON: {e}"),
            )]);
        }
        Ok(v) => match model::parse_value_as(&v, machine_type) {
            Ok(_) => {
                return Validation {
                    result: Verdict::Ok,
                    diagnostics: Vec::new(),
                };
            }
            Err(e) => (v, e),
        },
    };
    let (definition, error) = errors;
    let mut diagnostics = Vec::new();
    // AWS reports the missing top-level fields in one diagnostic.
    let missing: Vec<&str> = ["StartAt", "States"]
        .into_iter()
        .filter(|f| definition.get(*f).is_none())
        .collect();
    if !missing.is_empty() && definition.is_object() {
        diagnostics.push(diagnostic(
            "SCHEMA_VALIDATION_FAILED",
            "/",
            format!("These fields are required: [{}]", missing.join(", ")),
        ));
    }
    for e in error.flatten() {
        if let ValidationError::Schema {
            message,
            state,
            field,
            ..
        } = &e
        {
            if state.is_none() && field.as_deref().is_some_and(|f| missing.contains(&f)) {
                continue;
            }
            let location = pointer(&definition, state.as_deref(), field.as_deref());
            let code = if message.starts_with("duplicate state name") {
                "DUPLICATE_STATE_NAME"
            } else {
                "SCHEMA_VALIDATION_FAILED"
            };
            diagnostics.push(diagnostic(
                code,
                &location,
                aws_message(field.as_deref(), message),
            ));
        } else {
            diagnostics.push(diagnostic("SCHEMA_VALIDATION_FAILED", "/", e.to_string()));
        }
    }
    fail(diagnostics)
}

fn fail(diagnostics: Vec<Diagnostic>) -> Validation {
    Validation {
        result: Verdict::Fail,
        diagnostics,
    }
}

fn diagnostic(code: &str, location: &str, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: code.to_string(),
        location: location.to_string(),
        message,
    }
}

/// AWS's wording for the problems whose wording is known; the engine's otherwise.
fn aws_message(field: Option<&str>, message: &str) -> String {
    match (field, message) {
        (Some("Credentials"), m) if m.contains("\"RoleArn\" is required") => {
            "The field 'RoleArn' is required but was missing".to_string()
        }
        (Some("Resource"), m) if m.ends_with(" is not a recognised service integration") => {
            let resource = m
                .trim_start_matches("the resource ")
                .trim_end_matches(" is not a recognised service integration");
            format!(
                "The resource provided {resource} is not recognized. The value is not a valid resource ARN, or the resource is not available in this region."
            )
        }
        (_, m)
            if m.starts_with("the value of \"")
                && m.contains("\" must be a valid JSONPath or a valid intrinsic function call") =>
        {
            let key = m["the value of \"".len()..]
                .split('"')
                .next()
                .unwrap_or_default();
            format!(
                "The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call"
            )
        }
        _ => message.to_string(),
    }
}

/// The JSON pointer of a field of a state, found wherever the state is nested (Parallel branches, Map
/// processors); the field's first segment only (`Catch.Next` points at `Catch`).
fn pointer(definition: &Value, state: Option<&str>, field: Option<&str>) -> String {
    let base = match state {
        None => String::new(),
        Some(s) => find_state(definition, s, "").unwrap_or_default(),
    };
    match field.and_then(|f| f.split('.').next()) {
        Some(f) => format!("{base}/{}", escape(f)),
        None if base.is_empty() => "/".to_string(),
        None => base,
    }
}

/// The JSON pointer of the state `name` in `definition`, wherever it is nested (Parallel branches, Map
/// processors): `/States/Recover/Branches/0/States/Restore`.
pub fn state_pointer(definition: &Value, name: &str) -> Option<String> {
    find_state(definition, name, "")
}

fn find_state(scope: &Value, name: &str, at: &str) -> Option<String> {
    let states = scope.get("States")?.as_object()?;
    if states.contains_key(name) {
        return Some(format!("{at}/States/{}", escape(name)));
    }
    for (k, s) in states {
        let here = format!("{at}/States/{}", escape(k));
        for (i, b) in s
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(p) = find_state(b, name, &format!("{here}/Branches/{i}")) {
                return Some(p);
            }
        }
        for field in ["ItemProcessor", "Iterator"] {
            if let Some(p) = s
                .get(field)
                .and_then(|sub| find_state(sub, name, &format!("{here}/{field}")))
            {
                return Some(p);
            }
        }
    }
    None
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_valid_definition_is_ok() {
        let v = validate(
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#,
            MachineType::Standard,
        );
        assert_eq!(v.to_json(), json!({"result": "OK", "diagnostics": []}));
    }

    #[test]
    fn missing_top_level_fields_are_named_together() {
        let v = validate(r#"{"Comment": "x"}"#, MachineType::Standard);
        assert_eq!(v.result, Verdict::Fail);
        assert_eq!(
            v.diagnostics[0],
            diagnostic(
                "SCHEMA_VALIDATION_FAILED",
                "/",
                "These fields are required: [StartAt, States]".into()
            )
        );
        let v = validate("{not json", MachineType::Standard);
        assert_eq!(v.diagnostics[0].code, "INVALID_JSON_DESCRIPTION");
    }

    #[test]
    fn locations_are_json_pointers_into_nested_states() {
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {}}}}]}}});
        let v = validate(&def.to_string(), MachineType::Standard);
        assert_eq!(
            v.diagnostics,
            vec![diagnostic(
                "SCHEMA_VALIDATION_FAILED",
                "/States/P/Branches/0/States/T/Credentials",
                "The field 'RoleArn' is required but was missing".into()
            )]
        );
    }

    #[test]
    fn known_problems_use_aws_wording() {
        let def = json!({"StartAt": "Q", "States": {"Q": {"Type": "Task", "End": true,
            "Resource": "arn:aws:states:::dynamodb:query"}}});
        let v = validate(&def.to_string(), MachineType::Standard);
        assert_eq!(v.diagnostics[0].location, "/States/Q/Resource");
        assert!(v.diagnostics[0].message.starts_with(
            "The resource provided arn:aws:states:::dynamodb:query is not recognized."
        ));
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true,
            "Parameters": {"x.$": "States.Format('a', "}}}});
        let v = validate(&def.to_string(), MachineType::Standard);
        assert_eq!(
            v.diagnostics[0].message,
            "The value for the field 'x.$' must be a valid JSONPath or a valid intrinsic function call"
        );
    }

    #[test]
    fn express_machines_refuse_callbacks_and_sync_jobs() {
        let def = |resource: &str| {
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true, "Resource": resource}}})
                .to_string()
        };
        let token = def("arn:aws:states:::sns:publish.waitForTaskToken");
        assert_eq!(validate(&token, MachineType::Standard).result, Verdict::Ok);
        let v = validate(&token, MachineType::Express);
        assert_eq!(
            v.diagnostics,
            vec![diagnostic(
                "SCHEMA_VALIDATION_FAILED",
                "/States/T/Resource",
                "Express state machine does not support '.waitForTaskToken' service integration"
                    .into()
            )]
        );
        let sync = def("arn:aws:states:::states:startExecution.sync:2");
        let v = validate(&sync, MachineType::Express);
        assert_eq!(
            v.diagnostics[0].message,
            "Express state machine does not support '.sync' service integration"
        );
    }
}
