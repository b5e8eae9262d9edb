use super::*;
use serde_json::json;

fn err(def: Value) -> String {
    parse_value(&def)
        .expect_err("should be rejected")
        .to_string()
}

fn ok(def: Value) -> StateMachine {
    parse_value(&def).expect("should be valid")
}

#[test]
fn transitions_must_exist_and_end() {
    let e = err(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}));
    assert_eq!(
        e,
        "State \"A\": field \"Next\": refers to missing state \"B\""
    );
    let e = err(json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}));
    assert!(
        e.contains("State \"A\": field \"Next\": is required"),
        "{e}"
    );
    let e =
        err(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": true}}}));
    assert!(e.contains("both \"Next\" and \"End\""), "{e}");
    let e = err(json!({"StartAt": "X", "States": {"A": {"Type": "Pass", "End": true}}}));
    assert!(e.contains("StartAt") && e.contains("\"X\""), "{e}");
    assert!(err(json!({"StartAt": "A"})).contains("\"States\""));
}

#[test]
fn unreachable_states_are_rejected() {
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}),
    );
    assert_eq!(e, "State \"B\": is not reachable from StartAt");
    ok(json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "End": true},
        "B": {"Type": "Succeed"}}}));
}

#[test]
fn field_combinations() {
    let e = err(json!({"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "A"}}}));
    assert!(
        e.contains("field \"Next\": is not supported by a Succeed state"),
        "{e}"
    );
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true}}}),
    );
    assert!(e.contains("exactly one of"), "{e}");
    let e = err(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$", "End": true}}}),
    );
    assert!(
        e.contains("field \"InputPath\": is a JSONPath field"),
        "{e}"
    );
    let e =
        err(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {}, "End": true}}}));
    assert!(e.contains("field \"Output\": is a JSONata field"), "{e}");
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "nope"}, "End": true}}}),
    );
    assert!(e.contains("State \"A\": field \"Parameters\""), "{e}");
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": true}}}),
    );
    assert!(e.contains("ResultPath"), "{e}");
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:query", "End": true}}}),
    );
    assert!(e.contains("field \"Resource\""), "{e}");
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
        "TimeoutSeconds": 5, "HeartbeatSeconds": 10, "End": true}}}),
    );
    assert!(e.contains("HeartbeatSeconds"), "{e}");
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
        "Retry": [{"ErrorEquals": ["States.ALL", "X"]}], "End": true}}}),
    );
    assert!(e.contains("States.ALL"), "{e}");
}

#[test]
fn choice_rules() {
    let e = err(json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": []}}}));
    assert!(e.contains("field \"Choices\""), "{e}");
    let e = err(
        json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "Next": "C"}]}}}),
    );
    assert!(e.contains("comparison operator"), "{e}");
    let sm = ok(json!({"StartAt": "C", "States": {"C": {"Type": "Choice",
        "Choices": [{"Variable": "$.a", "StringMatches": "x*", "Next": "D"}], "Default": "D"}, "D": {"Type": "Succeed"}}}));
    assert!(matches!(sm.states[0].kind, Kind::Choice { .. }));
}

#[test]
fn map_and_parallel_rules() {
    let e = err(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": true}}}),
    );
    assert!(e.contains("field \"Branches\""), "{e}");
    let e = err(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
        "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Out"}}}]}}}),
    );
    assert!(e.contains("refers to missing state \"Out\""), "{e}");
    let e = err(json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}}));
    assert!(e.contains("field \"ItemProcessor\""), "{e}");
    let map = |label: &str| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "Label": label,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "I",
            "States": {"I": {"Type": "Pass", "End": true}}}}}})
    };
    ok(map("fine_label-1"));
    assert!(err(map("bad label")).contains("Label"));
    assert!(err(map("")).contains("cannot be empty"));
    assert!(err(map(&"x".repeat(41))).contains("40 characters"));
    let e = err(
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}}}}),
    );
    assert!(e.contains("DISTRIBUTED"), "{e}");
}

#[test]
fn distributed_map_result_writer_label_and_execution_type() {
    let map = |extra: Value| {
        let mut m = json!({"Type": "Map", "End": true, "Label": "Run",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"StartAt": "M", "States": {"M": m}})
    };
    let spec = |sm: &StateMachine| match &sm.states[0].kind {
        Kind::Map(spec) => (**spec).clone(),
        _ => panic!("not a Map"),
    };
    let s3 = json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "b", "Prefix": "p"}}});
    let m = spec(&ok(map(s3)));
    let rw = m.result_writer.unwrap();
    assert_eq!(
        rw.resource.as_deref(),
        Some("arn:aws:states:::s3:putObject")
    );
    // Exported without a WriterConfig, results keep their metadata.
    assert_eq!(rw.transformation, Transformation::None);
    assert_eq!(m.label.as_deref(), Some("Run"));
    assert_eq!(m.execution_type, MachineType::Express);
    let preview = spec(&ok(map(
        json!({"ResultWriter": {"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSONL"}}}),
    )));
    let rw = preview.result_writer.unwrap();
    assert!(rw.resource.is_none() && rw.json_lines);
    assert_eq!(rw.transformation, Transformation::Flatten);
    let e = err(map(json!({"ResultWriter": {}})));
    assert!(e.contains("ResultWriter"), "{e}");
    let e = err(map(
        json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b"}}}),
    ));
    assert!(e.contains("ResultWriter.Resource"), "{e}");
    let e = err(map(
        json!({"ResultWriter": {"WriterConfig": {"Transformation": "SQUASH"}}}),
    ));
    assert!(e.contains("Transformation"), "{e}");
}

#[test]
fn query_languages_per_state() {
    let sm = ok(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input %}", "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"x.$": "$.y"}, "End": true}}}));
    assert_eq!(sm.states[0].query_language, QueryLanguage::Jsonata);
    assert!(matches!(sm.states[0].output, Some(Template::Jsonata(_))));
    assert_eq!(sm.states[1].query_language, QueryLanguage::JsonPath);
    let e = err(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
    );
    assert!(e.contains("QueryLanguage"), "{e}");
}

#[test]
fn names_unique_and_an_end_required() {
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Parallel", "End": true,
        "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}]}}}),
    );
    assert!(e.contains("more than once"), "{e}");
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}),
    );
    assert!(e.contains("no state ends the workflow"), "{e}");
    ok(
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createEndpoint", "End": true}}}),
    );
}

#[test]
fn credentials_need_a_role() {
    let e = err(
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {}, "End": true}}}),
    );
    assert!(e.contains("RoleArn"), "{e}");
}
