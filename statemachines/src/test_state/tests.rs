use serde_json::json;

use super::*;

fn request(definition: Value, input: Value) -> TestStateRequest {
    TestStateRequest {
        definition,
        input,
        inspection_level: InspectionLevel::Debug,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_pass_state_reports_each_processing_step() {
    let engine = Engine::new();
    let req = request(
        json!({"Type": "Pass", "InputPath": "$.a", "Parameters": {"y.$": "$.x"},
            "ResultPath": "$.r", "Next": "After"}),
        json!({"a": {"x": 1}}),
    );
    let r = test_state(&engine, &req).await.unwrap();
    assert_eq!(r.status, TestStatus::Succeeded);
    assert_eq!(r.output, Some(json!({"a": {"x": 1}, "r": {"y": 1}})));
    assert_eq!(r.next_state.as_deref(), Some("After"));
    let data = r.inspection_data.unwrap();
    assert_eq!(data["afterInputPath"], json!("{\"x\":1}"));
    assert_eq!(data["afterParameters"], json!("{\"y\":1}"));
    assert_eq!(
        data["afterResultPath"],
        json!("{\"a\":{\"x\":1},\"r\":{\"y\":1}}")
    );
    // INFO reports no inspection data.
    let info = TestStateRequest {
        inspection_level: InspectionLevel::Info,
        ..req
    };
    assert_eq!(
        test_state(&engine, &info).await.unwrap().inspection_data,
        None
    );
}

#[tokio::test]
async fn a_choice_names_the_state_it_would_go_to() {
    let engine = Engine::new();
    let def = json!({"Type": "Choice", "Default": "Low",
        "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "High"}]});
    let r = test_state(&engine, &request(def.clone(), json!({"n": 11})))
        .await
        .unwrap();
    assert_eq!(r.next_state.as_deref(), Some("High"));
    let r = test_state(&engine, &request(def, json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(r.next_state.as_deref(), Some("Low"));
}

fn failing_task() -> Value {
    json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true,
        "Parameters": {"FunctionName": "f"},
        "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 3}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]})
}

#[tokio::test]
async fn a_retrier_with_attempts_left_makes_the_error_retriable() {
    let engine = Engine::new();
    let mut req = request(failing_task(), json!({}));
    req.mock = Some(Mock::Error(Failure::new("Boom", "it broke")));
    req.retrier_retry_count = 2;
    let r = test_state(&engine, &req).await.unwrap();
    assert_eq!(r.status, TestStatus::Retriable);
    assert_eq!(r.error.as_deref(), Some("Boom"));
    let data = r.inspection_data.unwrap();
    assert_eq!(
        data["errorDetails"],
        json!({"retryBackoffIntervalSeconds": 4, "retryIndex": 0})
    );

    // With the attempts used up, the catcher takes the error.
    req.retrier_retry_count = 3;
    let r = test_state(&engine, &req).await.unwrap();
    assert_eq!(r.status, TestStatus::CaughtError);
    assert_eq!(r.next_state.as_deref(), Some("Handle"));
    assert_eq!(
        r.output,
        Some(json!({"Error": "Boom", "Cause": "it broke"}))
    );
}

#[tokio::test]
async fn a_mocked_result_replaces_the_task_response() {
    let engine = Engine::new();
    let mut req = request(failing_task(), json!({}));
    req.mock = Some(Mock::Result(json!({"ok": true})));
    let r = test_state(&engine, &req).await.unwrap();
    assert_eq!(r.status, TestStatus::Succeeded);
    assert_eq!(r.output, Some(json!({"ok": true})));
}

#[tokio::test]
async fn invalid_calls_are_rejected_as_aws_does() {
    let engine = Engine::new();
    let mut req = request(json!({"Type": "Pass", "End": true}), json!({}));
    req.mock = Some(Mock::Result(json!(1)));
    let e = test_state(&engine, &req).await.unwrap_err();
    assert_eq!(e.error_name(), "ValidationException");
    assert_eq!(
        e.to_string(),
        "State type 'Pass' is not supported when a mock is specified"
    );

    let parallel = json!({"Type": "Parallel", "End": true,
        "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}]});
    let mut req = request(parallel, json!({}));
    req.mock = Some(Mock::Result(json!({"not": "an array"})));
    let e = test_state(&engine, &req).await.unwrap_err();
    assert_eq!(e.to_string(), "Mocked result must be an array.");

    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}});
    let mut req = request(machine, json!({}));
    req.state_name = Some("Missing".into());
    let e = test_state(&engine, &req).await.unwrap_err();
    assert_eq!(e.to_string(), "State not found in definition");
}

#[tokio::test]
async fn a_mocked_map_fails_past_its_tolerated_failures() {
    let engine = Engine::new();
    let map = json!({"Type": "Map", "End": true, "ToleratedFailureCount": 1,
        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}});
    let mut req = request(map, json!([1, 2, 3]));
    req.mock = Some(Mock::Result(json!([1, 2, 3])));
    req.map_iteration_failure_count = Some(1);
    assert_eq!(
        test_state(&engine, &req).await.unwrap().status,
        TestStatus::Succeeded
    );
    req.map_iteration_failure_count = Some(2);
    let r = test_state(&engine, &req).await.unwrap();
    assert_eq!(r.status, TestStatus::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
}

#[test]
fn reads_the_api_shape() {
    let req = TestStateRequest::from_api(&json!({
        "definition": "{\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::lambda:invoke\", \"End\": true}",
        "input": "{\"a\": 1}",
        "inspectionLevel": "TRACE",
        "mock": {"errorOutput": {"error": "E", "cause": "C"}},
        "stateConfiguration": {"retrierRetryCount": 2}
    }))
    .unwrap();
    assert_eq!(req.input, json!({"a": 1}));
    assert_eq!(req.inspection_level, InspectionLevel::Trace);
    assert_eq!(req.mock, Some(Mock::Error(Failure::new("E", "C"))));
    assert_eq!(req.retrier_retry_count, 2);
    assert!(TestStateRequest::from_api(&json!({"inspectionLevel": "LOUD"})).is_err());
}
