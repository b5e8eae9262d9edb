//! Runs a conformance corpus file (JSON Lines of cases recorded against AWS) through the engine and
//! scores it. The corpus only measures the engine: nothing here depends on particular cases.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::{Engine, FunctionError, TaskContext};
use crate::model;
use crate::test_state::{TestStateRequest, test_state};
use crate::validate;

/// Result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: String,
    /// Passed (status plus exact output or error name).
    pub passed: bool,
    /// The secondary score: the cause matched too (failures only).
    pub cause_matched: Option<bool>,
    /// The case's feature groups.
    pub features: Vec<String>,
    /// Uses JSONata anywhere.
    pub jsonata: bool,
    /// Invalid definitions: the validation answer has AWS's shape (`result` FAIL, diagnostics with a
    /// code and a JSON-pointer location) and, where the recording carries AWS's diagnostic, its code,
    /// location and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_shape: Option<bool>,
    /// TestState cases: the inspection data matched too (secondary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection_matched: Option<bool>,
    /// History events: the engine's count and the recording's (secondary; executions only).
    pub history_events: Option<[u64; 2]>,
    /// The recorded cause, when the causes differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_cause: Option<String>,
    /// The engine's cause, when the causes differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_cause: Option<String>,
    /// What was expected, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// What the engine produced, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
}

/// Scores of one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file.
    pub file: String,
    /// Every case.
    pub cases: Vec<CaseResult>,
}

/// Passed and total of a group.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Score {
    /// Cases passed.
    pub passed: usize,
    /// Cases in the group.
    pub total: usize,
}

impl Score {
    /// Percentage passed (100 for an empty group).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.passed as f64 * 100.0 / self.total as f64
        }
    }

    fn add(&mut self, passed: bool) {
        self.total += 1;
        if passed {
            self.passed += 1;
        }
    }
}

impl Report {
    /// The whole file.
    pub fn total(&self) -> Score {
        let mut s = Score::default();
        self.cases.iter().for_each(|c| s.add(c.passed));
        s
    }

    /// Cases that use no JSONata.
    pub fn jsonpath_only(&self) -> Score {
        let mut s = Score::default();
        self.cases
            .iter()
            .filter(|c| !c.jsonata)
            .for_each(|c| s.add(c.passed));
        s
    }

    /// Cases with a Choice state (reported apart, as the corpus README asks) and the rest.
    pub fn choice_split(&self) -> (Score, Score) {
        let (mut with, mut without) = (Score::default(), Score::default());
        for c in &self.cases {
            if c.features.iter().any(|f| f == "Choice") {
                with.add(c.passed)
            } else {
                without.add(c.passed)
            }
        }
        (with, without)
    }

    /// Invalid definitions whose validation answer has AWS's shape.
    pub fn validation_shape(&self) -> Score {
        let mut s = Score::default();
        self.cases
            .iter()
            .filter_map(|c| c.validation_shape)
            .for_each(|m| s.add(m));
        s
    }

    /// Secondary score of TestState cases: inspection data matched.
    pub fn inspection(&self) -> Score {
        let mut s = Score::default();
        self.cases
            .iter()
            .filter_map(|c| c.inspection_matched)
            .for_each(|m| s.add(m));
        s
    }

    /// Secondary scores: causes matched (of failed executions) and history lengths matched.
    pub fn secondary(&self) -> (Score, Score) {
        let (mut cause, mut history) = (Score::default(), Score::default());
        for c in &self.cases {
            if let Some(m) = c.cause_matched {
                cause.add(m);
            }
            if let Some([ours, recorded]) = c.history_events {
                history.add(ours == recorded);
            }
        }
        (cause, history)
    }

    /// Per feature group.
    pub fn by_feature(&self) -> BTreeMap<String, Score> {
        let mut m: BTreeMap<String, Score> = BTreeMap::new();
        for c in &self.cases {
            for f in &c.features {
                m.entry(f.clone()).or_default().add(c.passed);
            }
        }
        m
    }
}

/// Registers the corpus's trivial Lambdas, by behaviour, under the names a case gives them.
pub fn register_trivial_lambdas(engine: &Engine, handlers: &serde_json::Map<String, Value>) {
    for (name, source) in handlers {
        let file = source
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".py");
        match file {
            "id_function" => engine.register_handler(name, |v, _| async move { Ok(v) }),
            "raise_exception" => engine.register_handler(name, |_, _| async move {
                Err(FunctionError::new(
                    "Exception",
                    "Some exception was raised.",
                ))
            }),
            "raise_custom_exception" => engine.register_handler(name, |_, _| async move {
                Err(FunctionError::new("CustomException", ""))
            }),
            "echo_function" => {
                engine.register_handler(
                    name,
                    |_, _| async move { Ok(json!({"Return": "HelloWorld"})) },
                )
            }
            "large_output_string" => engine.register_handler(name, |_, _| async move {
                Ok(Value::String("a".repeat(300 * 1024)))
            }),
            // Sleeps 60 s on AWS; here it declares 60 s of virtual time instead.
            "wait_60_seconds" => engine.register_handler(name, |v, ctx: TaskContext| async move {
                ctx.advance(Duration::from_secs(60));
                Ok(v)
            }),
            "return_bytes_str" => {
                engine.register_handler(name, |_, _| async move { Ok(json!("HelloWorld!")) })
            }
            "return_decorated_input" => engine.register_handler(name, |v, _| async move {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                Ok(Value::String(format!("input-event-{s}")))
            }),
            _ => {}
        }
    }
}

/// Deep equality where an expected string of the form `<name>`, or one containing a listed
/// placeholder, matches any value.
pub fn matches(expected: &Value, actual: &Value, placeholders: &[String]) -> bool {
    match (expected, actual) {
        (Value::String(e), _) if is_wildcard(e, placeholders) => true,
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter().all(|(k, v)| {
                    // The recordings replace per-run values (request ids, trace ids) with their key's name.
                    let normalised = v.as_str().is_some_and(|s| s == k);
                    a.get(k)
                        .is_some_and(|x| normalised || matches(v, x, placeholders))
                })
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y, placeholders))
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}

fn is_wildcard(s: &str, placeholders: &[String]) -> bool {
    (s.len() > 2
        && s.starts_with('<')
        && s.ends_with('>')
        && !s[1..s.len() - 1].contains(['<', '>']))
        || placeholders
            .iter()
            .any(|p| !p.is_empty() && s.contains(p.as_str()))
}

fn placeholders_of(case: &Value) -> Vec<String> {
    case.get("placeholders")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one case.
pub async fn run_case(case: &Value) -> CaseResult {
    let id = case
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let features: Vec<String> = case
        .get("features")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let definition = case.get("definition").cloned().unwrap_or(Value::Null);
    let jsonata =
        features.iter().any(|f| f == "JSONata") || definition.to_string().contains("JSONata");
    let expected = case.get("expected").cloned().unwrap_or(Value::Null);
    let placeholders = placeholders_of(case);
    let kind = case.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut result = CaseResult {
        id,
        passed: false,
        cause_matched: None,
        inspection_matched: None,
        validation_shape: None,
        history_events: None,
        expected_cause: None,
        actual_cause: None,
        features,
        jsonata,
        expected: None,
        actual: None,
    };

    if kind.starts_with("test_state") {
        run_test_state_case(case, &expected, &placeholders, &mut result).await;
        return result;
    }
    // The machine type is the case's when it records one; STANDARD otherwise.
    let machine_type = case
        .get("state_machine_type")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let validation = model::parse_value_as(&definition, machine_type);
    if kind == "invalid_definition"
        || expected.get("status").and_then(Value::as_str) == Some("REJECTED")
    {
        let answer = validate::validate(&definition.to_string(), machine_type);
        let recorded = expected
            .get("cause")
            .and_then(Value::as_str)
            .unwrap_or_default();
        result.validation_shape = Some(aws_shaped(&answer, recorded));
        result.passed = validation.is_err();
        if !result.passed {
            result.expected = Some(expected);
            result.actual = Some(json!({"status": "ACCEPTED"}));
        }
        return result;
    }
    if let Err(e) = validation {
        result.expected = Some(expected);
        result.actual = Some(json!({"status": "REJECTED", "cause": e.to_string()}));
        return result;
    }

    let engine = Engine::new();
    if let Some(h) = case.get("lambda_handlers").and_then(Value::as_object) {
        register_trivial_lambdas(&engine, h);
    }
    let input = case.get("input").cloned().unwrap_or(json!({}));
    let actual = match engine.register_state_machine(
        "conformance",
        &definition.to_string(),
        &HashMap::new(),
    ) {
        Err(e) => json!({"status": "REJECTED", "cause": e.to_string()}),
        Ok(arn) => {
            let run = engine.run(&arn, input);
            match tokio::time::timeout(Duration::from_secs(30), run).await {
                Err(_) => json!({"status": "TIMEOUT_LOCAL"}),
                Ok(Err(e)) => json!({"status": "ENGINE_ERROR", "cause": e.to_string()}),
                Ok(Ok(d)) => {
                    if let Some(n) = case.get("history_events").and_then(Value::as_u64) {
                        let events = engine
                            .history(&d.execution_arn)
                            .map(|h| h.len())
                            .unwrap_or(0);
                        result.history_events = Some([events as u64, n]);
                    }
                    let mut v = json!({"status": d.status.as_str()});
                    if let Some(o) = d.output {
                        v["output"] = o;
                    }
                    if let Some(e) = d.error {
                        v["error"] = Value::String(e);
                    }
                    if let Some(c) = d.cause {
                        v["cause"] = Value::String(c);
                    }
                    v
                }
            }
        }
    };
    let status_ok = expected.get("status") == actual.get("status");
    let passed = status_ok
        && match expected.get("status").and_then(Value::as_str) {
            Some("SUCCEEDED") => matches(
                expected.get("output").unwrap_or(&Value::Null),
                actual.get("output").unwrap_or(&Value::Null),
                &placeholders,
            ),
            _ => {
                let ok = matches(
                    expected.get("error").unwrap_or(&Value::Null),
                    actual.get("error").unwrap_or(&Value::Null),
                    &placeholders,
                );
                let cause_expected = match expected.get("cause") {
                    Some(Value::String(s)) => Value::String(s.clone()),
                    Some(other) => Value::String(other.to_string()),
                    None => Value::Null,
                };
                let actual_cause = actual.get("cause").unwrap_or(&Value::Null);
                let cause_ok = matches(&cause_expected, actual_cause, &placeholders);
                result.cause_matched = Some(cause_ok);
                if !cause_ok {
                    result.expected_cause = cause_expected.as_str().map(str::to_string);
                    result.actual_cause = actual_cause.as_str().map(str::to_string);
                }
                ok
            }
        };
    result.passed = passed;
    if !passed {
        result.expected = Some(expected);
        result.actual = Some(actual);
    }
    result
}

/// Whether a validation answer has AWS's shape and, when the recorded cause carries AWS's diagnostic
/// (`'CODE: message at /location'`), agrees with it.
pub fn aws_shaped(answer: &validate::Validation, recorded_cause: &str) -> bool {
    let well_formed = answer.result == validate::Verdict::Fail
        && !answer.diagnostics.is_empty()
        && answer
            .diagnostics
            .iter()
            .all(|d| !d.code.is_empty() && d.location.starts_with('/') && !d.message.is_empty());
    if !well_formed {
        return false;
    }
    let Some((code, message, location)) = recorded_diagnostic(recorded_cause) else {
        return true;
    };
    answer
        .diagnostics
        .iter()
        .any(|d| d.code == code && d.location == location && text_matches(&message, &d.message))
}

/// `CODE: message at /location` inside a recorded `InvalidDefinition` cause.
fn recorded_diagnostic(cause: &str) -> Option<(String, String, String)> {
    let start = cause.find("Invalid State Machine Definition: '")? + 35;
    let body = cause[start..].strip_suffix('\'')?;
    let (code, rest) = body.split_once(": ")?;
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return None;
    }
    let (message, location) = rest.rsplit_once(" at ")?;
    Some((code.to_string(), message.to_string(), location.to_string()))
}

/// Equal up to surrounding and repeated whitespace; a `<name>` in the recording matches any text.
fn text_matches(expected: &str, actual: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (expected, actual) = (norm(expected), norm(actual));
    // The literal pieces between `<name>` placeholders.
    let mut pieces = Vec::new();
    let mut rest = expected.as_str();
    while let Some(open) = rest.find('<') {
        match rest[open..].find('>') {
            Some(close) => {
                pieces.push(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    pieces.push(rest);
    if pieces.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) {
        return false;
    }
    let mut middle = &actual[first.len()..actual.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match middle.find(piece) {
            Some(i) => middle = &middle[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Runs a TestState case: `test_state_args` in the API's shape, with the case's definition and input.
/// Status, output, error and next state are compared; the inspection data is a secondary score.
async fn run_test_state_case(
    case: &Value,
    expected: &Value,
    placeholders: &[String],
    result: &mut CaseResult,
) {
    let mut args = case.get("test_state_args").cloned().unwrap_or(json!({}));
    args["definition"] = case.get("definition").cloned().unwrap_or(Value::Null);
    args["input"] = case.get("input").cloned().unwrap_or(Value::Null);
    let engine = Engine::new();
    if let Some(h) = case.get("lambda_handlers").and_then(Value::as_object) {
        register_trivial_lambdas(&engine, h);
    }
    let answer = match TestStateRequest::from_api(&args) {
        Err(e) => {
            json!({"status": "REJECTED", "error": "ValidationException", "cause": e.to_string()})
        }
        Ok(req) => {
            match tokio::time::timeout(Duration::from_secs(30), test_state(&engine, &req)).await {
                Err(_) => json!({"status": "TIMEOUT_LOCAL"}),
                Ok(Err(e)) => {
                    json!({"status": "REJECTED", "error": e.error_name(), "cause": e.to_string()})
                }
                Ok(Ok(r)) => {
                    let mut v = json!({"status": r.status.as_str()});
                    for (k, x) in [
                        ("output", r.output.clone()),
                        ("error", r.error.clone().map(Value::String)),
                        ("cause", r.cause.clone().map(Value::String)),
                        ("nextState", r.next_state.clone().map(Value::String)),
                    ] {
                        if let Some(x) = x {
                            v[k] = x;
                        }
                    }
                    if let Some(d) = r.inspection_data {
                        v["inspectionData"] = Value::Object(d);
                    }
                    v
                }
            }
        }
    };
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let passed = ["status", "output", "error", "nextState"]
        .iter()
        .all(|k| matches(&field(expected, k), &field(&answer, k), placeholders));
    if let Some(e) = expected.get("cause") {
        result.cause_matched = Some(matches(e, &field(&answer, "cause"), placeholders));
    }
    if let Some(e) = expected.get("inspectionData") {
        let a = parse_json_text(&field(&answer, "inspectionData"));
        result.inspection_matched = Some(matches(&parse_json_text(e), &a, placeholders));
    }
    result.passed = passed;
    if !passed {
        result.expected = Some(expected.clone());
        result.actual = Some(answer);
    }
}

/// Inspection data holds JSON text; the recordings hold some of it parsed. Both sides are parsed
/// field by field so that they compare as JSON.
fn parse_json_text(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = match x {
                        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| x.clone()),
                        Value::Object(_) => parse_json_text(x),
                        other => other.clone(),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs every case of a JSON Lines file.
pub async fn run_file(path: &std::path::Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut cases = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let case: Value =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        cases.push(run_case(&case).await);
    }
    Ok(Report {
        file: path.display().to_string(),
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_matching() {
        let ph = vec!["<uuid:".to_string()];
        assert!(matches(&json!({"a": "<timestamp>"}), &json!({"a": 5}), &[]));
        assert!(matches(
            &json!({"a": "x <uuid:1> y"}),
            &json!({"a": "anything"}),
            &ph
        ));
        assert!(!matches(&json!({"a": "x"}), &json!({"a": "y"}), &ph));
        assert!(!matches(&json!({"a": 1}), &json!({"a": 1, "b": 2}), &[]));
        assert!(matches(&json!(1.0), &json!(1), &[]));
    }

    #[test]
    fn recorded_diagnostics_are_compared_in_aws_shape() {
        let cause = "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The resource provided arn:<partition>:states:::x:y is not recognized. at /States/Q/Resource'";
        assert_eq!(
            recorded_diagnostic(cause),
            Some((
                "SCHEMA_VALIDATION_FAILED".into(),
                "The resource provided arn:<partition>:states:::x:y is not recognized.".into(),
                "/States/Q/Resource".into()
            ))
        );
        assert!(text_matches(
            "arn:<partition>:states:::x:y is  bad",
            "arn:aws:states:::x:y is bad"
        ));
        assert!(!text_matches(
            "arn:<partition>:states:::x:y",
            "arn:aws:states:::x:z"
        ));
        let answer = validate::validate(r#"{"StartAt": "A"}"#, model::MachineType::Standard);
        assert!(aws_shaped(
            &answer,
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: These fields are required: [States] at /'"
        ));
        assert!(!aws_shaped(
            &answer,
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt] at /'"
        ));
    }

    #[tokio::test]
    async fn runs_a_case() {
        let case = json!({
            "id": "t", "kind": "execution", "features": ["Pass"],
            "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"x": 1}, "End": true}}},
            "input": {}, "expected": {"status": "SUCCEEDED", "output": {"x": 1}}
        });
        assert!(run_case(&case).await.passed);
        let case = json!({
            "id": "t", "kind": "invalid_definition", "features": [],
            "definition": {"StartAt": "A"}, "expected": {"status": "REJECTED"}
        });
        assert!(run_case(&case).await.passed);
    }
}
