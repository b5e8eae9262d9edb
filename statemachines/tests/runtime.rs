//! The interpreter driven through the engine's public API: every state type, Retry/Catch, handlers,
//! task tokens, history and variables.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use opsplane_statemachines::engine::{Description, Engine, FunctionError, Status, TaskContext};
use opsplane_statemachines::error::{MAX_PAYLOAD_BYTES, names};
use serde_json::{Value, json};

/// Waits until `exec` has called its function.
async fn function_started(engine: &Engine, exec: &str) {
    while !engine
        .history(exec)
        .unwrap()
        .iter()
        .any(|e| e.event_type == "LambdaFunctionStarted")
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(engine: &Engine, def: Value, input: Value) -> Description {
    let arn = engine
        .register_state_machine("t", &def.to_string(), &HashMap::new())
        .unwrap();
    engine.run(&arn, input).await.unwrap()
}

#[tokio::test]
async fn pass_applies_paths_in_order() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.in",
        "Parameters": {"v.$": "$.x", "c": 1}, "ResultPath": "$.out", "OutputPath": "$.out", "End": true}}});
    let d = run(&Engine::new(), def, json!({"in": {"x": 5}})).await;
    assert_eq!(d.status, Status::Succeeded);
    assert_eq!(d.output, Some(json!({"v": 5, "c": 1})));
}

#[tokio::test]
async fn missing_path_is_a_runtime_error() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$.nope"}, "End": true}}});
    let d = run(&Engine::new(), def, json!({})).await;
    assert_eq!(d.status, Status::Failed);
    assert_eq!(d.error.as_deref(), Some(names::RUNTIME));
}

#[tokio::test]
async fn choice_takes_rule_or_default_or_fails() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}]},
        "Big": {"Type": "Succeed"}}});
    let engine = Engine::new();
    assert_eq!(
        run(&engine, def.clone(), json!({"n": 2})).await.status,
        Status::Succeeded
    );
    let d = run(&engine, def, json!({"n": 0})).await;
    assert_eq!(d.error.as_deref(), Some(names::NO_CHOICE_MATCHED));
}

#[tokio::test]
async fn wait_runs_on_the_virtual_clock() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}}});
    let started = std::time::Instant::now();
    let d = run(&Engine::new(), def, json!({"s": 1800})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(d.status, Status::Succeeded);
    assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 1800);
}

#[tokio::test]
async fn wait_until_timestamp() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": "2999-01-01T00:00:00Z", "End": true}}});
    let d = run(&Engine::new(), def, json!({})).await;
    assert_eq!(
        d.stop_date.unwrap().to_rfc3339(),
        "2999-01-01T00:00:00+00:00"
    );
}

#[tokio::test]
async fn machine_timeout_ends_a_polling_loop() {
    let def = json!({"TimeoutSeconds": 300, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 60, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": true, "Next": "End"}], "Default": "W"},
        "End": {"Type": "Succeed"}}});
    let d = run(&Engine::new(), def, json!({"done": false})).await;
    assert_eq!(
        (d.status, d.error.as_deref()),
        (Status::TimedOut, Some(names::TIMEOUT))
    );
}

#[tokio::test]
async fn fail_takes_error_and_cause_from_paths() {
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}});
    let d = run(&Engine::new(), def, json!({"e": "Boom", "c": "because"})).await;
    assert_eq!(
        (d.status, d.error.as_deref(), d.cause.as_deref()),
        (Status::Failed, Some("Boom"), Some("because"))
    );
}

#[tokio::test]
async fn parallel_joins_at_the_latest_branch() {
    let branch = |s: u64| {
        let name = format!("W{s}");
        json!({"StartAt": name, "States": {name.clone(): {"Type": "Wait", "Seconds": s, "End": true}}})
    };
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [branch(10), branch(60)], "End": true}}});
    let d = run(&Engine::new(), def, json!({"x": 1})).await;
    assert_eq!(d.output, Some(json!([{"x": 1}, {"x": 1}])));
    assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 60);
}

#[tokio::test]
async fn a_failing_branch_does_not_wait_for_a_stuck_one() {
    let engine = Engine::new();
    engine.register_handler("stuck", |_, _| async move {
        futures::future::pending::<Result<Value, FunctionError>>().await
    });
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:stuck", "End": true}}},
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Broken"}}}]}}});
    let d = tokio::time::timeout(Duration::from_secs(5), run(&engine, def, json!({})))
        .await
        .expect("finishes");
    assert_eq!(d.error.as_deref(), Some("Broken"));
}

#[tokio::test]
async fn inline_map_selects_items_and_fails_on_first_failure() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 2,
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
    let d = run(&Engine::new(), def, json!({"xs": ["a", "b"]})).await;
    assert_eq!(
        d.output,
        Some(json!([{"v": "a", "i": 0}, {"v": "b", "i": 1}]))
    );
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
        "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}, "End": true}}});
    assert_eq!(
        run(&Engine::new(), def, json!([1])).await.error.as_deref(),
        Some("E")
    );
}

#[tokio::test]
async fn distributed_map_tolerates_failures_up_to_the_threshold() {
    let def = |count: u64| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ToleratedFailureCount": count,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "F"}], "Default": "P"},
            "F": {"Type": "Fail", "Error": "E"}, "P": {"Type": "Pass", "End": true}}}, "End": true}}})
    };
    let engine = Engine::new();
    assert_eq!(
        run(&engine, def(1), json!([0, 1])).await.status,
        Status::Succeeded
    );
    let d = run(&engine, def(0), json!([0, 1])).await;
    assert_eq!(
        d.error.as_deref(),
        Some(names::EXCEED_TOLERATED_FAILURE_THRESHOLD)
    );
}

#[tokio::test]
async fn distributed_map_reads_items_through_the_port() {
    let engine = Engine::new();
    let store = Arc::new(opsplane_statemachines::item_reader::MemoryItemReader::new());
    store.put("b", "k.json", "[1, 2]");
    engine.set_item_reader(store);
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
    assert_eq!(
        run(&engine, def, json!({"key": "k.json"})).await.output,
        Some(json!([1, 2]))
    );
}

#[tokio::test]
async fn lambda_invoke_wraps_the_payload_and_plain_arn_does_not() {
    let engine = Engine::new();
    engine.register_handler("echo", |v, _| async move { Ok(v) });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:echo:$LATEST", "Payload.$": "$"}, "End": true}}});
    let d = run(&engine, def, json!({"a": 1})).await;
    let out = d.output.unwrap();
    assert_eq!(
        (out["Payload"].clone(), out["StatusCode"].clone()),
        (json!({"a": 1}), json!(200))
    );
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:echo", "End": true}}});
    assert_eq!(
        run(&engine, def, json!({"a": 1})).await.output,
        Some(json!({"a": 1}))
    );
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:missing", "End": true}}});
    assert_eq!(
        run(&engine, def, json!({})).await.error.as_deref(),
        Some("Lambda.ResourceNotFoundException")
    );
}

#[tokio::test]
async fn retry_then_catch_with_result_path() {
    let engine = Engine::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    engine.register_handler("flaky", move |_, _| {
        c.fetch_add(1, Ordering::SeqCst);
        async move { Err(FunctionError::new("NotReady", "later")) }
    });
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:flaky",
            "Retry": [{"ErrorEquals": ["NotReady"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Done"}], "End": true},
        "Done": {"Type": "Pass", "End": true}}});
    let d = run(&engine, def, json!({"x": 1})).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        d.output.as_ref().unwrap()["err"]["Error"],
        json!("NotReady")
    );
    assert_eq!(d.output.as_ref().unwrap()["x"], json!(1));
    // 2 s, then 2 * 3 = 6 s of virtual waiting.
    assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 8);
}

#[tokio::test]
async fn virtual_handler_duration_hits_the_timeout() {
    let engine = Engine::new();
    engine.register_handler("slow", |v, ctx: TaskContext| async move {
        ctx.advance(Duration::from_secs(60));
        Ok(v)
    });
    let def = |t: u64| {
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "TimeoutSeconds": t,
        "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "End": true}}})
    };
    assert_eq!(
        run(&engine, def(10), json!({})).await.error.as_deref(),
        Some(names::TIMEOUT)
    );
    let d = run(&engine, def(120), json!({})).await;
    assert_eq!(d.status, Status::Succeeded);
    assert_eq!((d.stop_date.unwrap() - d.start_date).num_seconds(), 60);
}

#[tokio::test]
async fn service_integrations_run_handlers_registered_by_resource() {
    let engine = Engine::new();
    engine.register_handler(
        "arn:aws:states:::aws-sdk:rds:describeDBInstances",
        |v, _| async move {
            match v["DbInstanceIdentifier"].as_str() {
                Some("db1") => Ok(json!({"DbInstances": [{"DbInstanceStatus": "available"}]})),
                _ => Err(FunctionError::new(
                    "Rds.DbInstanceNotFoundException",
                    "DBInstance not found",
                )),
            }
        },
    );
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:rds:describeDBInstances",
        "Parameters": {"DbInstanceIdentifier.$": "$.id"}, "ResultSelector": {"status.$": "$.DbInstances[0].DbInstanceStatus"}, "End": true}}});
    assert_eq!(
        run(&engine, def.clone(), json!({"id": "db1"})).await.output,
        Some(json!({"status": "available"}))
    );
    let d = run(&engine, def, json!({"id": "nope"})).await;
    assert_eq!(
        (d.error.as_deref(), d.cause.as_deref()),
        (
            Some("Rds.DbInstanceNotFoundException"),
            Some("DBInstance not found")
        )
    );
}

#[tokio::test]
async fn a_panicking_handler_is_lambda_unknown() {
    let engine = Engine::new();
    engine.register_handler("boom", |_, _| async move {
        if true {
            panic!("handler bug");
        }
        Ok(Value::Null)
    });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:boom", "End": true}}});
    assert_eq!(
        run(&engine, def, json!({})).await.error.as_deref(),
        Some("Lambda.Unknown")
    );
}

#[tokio::test]
async fn oversized_results_exceed_the_data_limit() {
    let engine = Engine::new();
    engine.register_handler("big", |_, _| async move {
        Ok(Value::String("x".repeat(MAX_PAYLOAD_BYTES)))
    });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:big", "End": true}}});
    assert_eq!(
        run(&engine, def, json!({})).await.error.as_deref(),
        Some(names::DATA_LIMIT_EXCEEDED)
    );
}

#[tokio::test]
async fn task_token_callbacks() {
    let engine = Engine::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    engine.register_handler("approve", move |_, ctx: TaskContext| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.task_token.unwrap()).unwrap();
            Ok(Value::Null)
        }
    });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "approve", "Payload": {"token.$": "$$.Task.Token"}}, "End": true}}});
    let arn = engine
        .register_state_machine("cb", &def.to_string(), &HashMap::new())
        .unwrap();
    let exec = engine
        .start_execution(&arn, Some("one".into()), json!({}))
        .unwrap();
    let token = rx.recv().await.unwrap();
    engine.send_task_heartbeat(&token).unwrap();
    assert!(engine.is_running(&exec));
    engine
        .send_task_success(&token, json!({"approved": true}))
        .unwrap();
    assert_eq!(
        engine.wait_for(&exec).await.unwrap().output,
        Some(json!({"approved": true}))
    );
    assert!(engine.send_task_failure(&token, "E", "late").is_err());
}

#[tokio::test]
async fn stop_idempotent_start_and_history() {
    let engine = Engine::new();
    engine.register_handler("hang", |_, _| async move {
        futures::future::pending::<Result<Value, FunctionError>>().await
    });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:hang", "End": true}}});
    let arn = engine
        .register_state_machine("h", &def.to_string(), &HashMap::new())
        .unwrap();
    let exec = engine
        .start_execution(&arn, Some("n".into()), json!({"a": 1}))
        .unwrap();
    assert_eq!(
        engine
            .start_execution(&arn, Some("n".into()), json!({"a": 1}))
            .unwrap(),
        exec
    );
    assert!(
        engine
            .start_execution(&arn, Some("n".into()), json!({"a": 2}))
            .is_err()
    );
    function_started(&engine, &exec).await;
    engine
        .stop_execution(&exec, Some("Stopped".into()), Some("by test".into()))
        .unwrap();
    let d = engine.wait_for(&exec).await.unwrap();
    assert_eq!(
        (d.status, d.error.as_deref()),
        (Status::Aborted, Some("Stopped"))
    );
    let types: Vec<&str> = engine
        .history(&exec)
        .unwrap()
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionAborted"));
    assert!(types.contains(&"TaskStateEntered"));
}

#[tokio::test]
async fn history_links_events_and_names_states() {
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}});
    let engine = Engine::new();
    let arn = engine
        .register_state_machine("hist", &def.to_string(), &HashMap::new())
        .unwrap();
    let exec = engine.start_execution(&arn, None, json!({})).unwrap();
    engine.wait_for(&exec).await.unwrap();
    let h = engine.history(&exec).unwrap();
    let types: Vec<&str> = h.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert!(h.windows(2).all(|w| w[1].previous_event_id == w[0].id));
    assert_eq!(h[1].details["name"], json!("A"));
}

#[tokio::test]
async fn jsonata_states_use_arguments_output_and_assign() {
    let engine = Engine::new();
    engine.register_handler("echo", |v, _| async move { Ok(v) });
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"n": "{% $states.input.n + 1 %}"}, "Output": {"seen": "{% $states.input.n %}"}, "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:echo", "Arguments": {"v": "{% $n %}"},
            "Output": "{% $states.result.v * 10 %}", "End": true}}});
    let d = run(&engine, def, json!({"n": 1})).await;
    assert_eq!(d.output, Some(json!(20)));
}

#[tokio::test]
async fn jsonpath_variables_are_scoped_to_branches() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "M"},
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Parameters": {"outer.$": "$x", "item.$": "$"}, "End": true}}},
            "End": true}}});
    let d = run(&Engine::new(), def, json!([7])).await;
    assert_eq!(d.output, Some(json!([{"outer": 1, "item": 7}])));
}

#[tokio::test]
async fn a_pass_result_replaces_the_parameters() {
    let engine = Engine::new();
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true,
        "Parameters": {"from.$": "$.a"}, "Result": {"fixed": true}, "ResultPath": "$.r"}}});
    let d = run(&engine, def, json!({"a": 1})).await;
    assert_eq!(d.output, Some(json!({"a": 1, "r": {"fixed": true}})));
}

#[tokio::test]
async fn an_inline_map_past_the_history_quota_fails_the_execution() {
    use opsplane_statemachines::error::MAX_HISTORY_EVENTS;
    let engine = Engine::new();
    // Four events an iteration (started, entered, exited, succeeded): 7,000 items need 28,000.
    let def = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "End": true,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}},
        "Caught": {"Type": "Succeed"}}});
    let items: Vec<u32> = (0..7_000).collect();
    let d = run(&engine, def, json!(items)).await;
    assert_eq!(d.status, Status::Failed);
    assert_eq!(d.error.as_deref(), Some(names::RUNTIME));
    assert!(
        d.cause
            .unwrap()
            .contains("maximum number of history events")
    );
    let history = engine.history(&d.execution_arn).unwrap();
    assert_eq!(history.len(), MAX_HISTORY_EVENTS);
    assert_eq!(history.last().unwrap().event_type, "ExecutionFailed");
}

#[tokio::test]
async fn express_machines_keep_no_readable_history() {
    use opsplane_statemachines::model::MachineType;
    let engine = Engine::new();
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let arn = engine
        .register_state_machine_as("x", &def.to_string(), &HashMap::new(), MachineType::Express)
        .unwrap();
    let d = engine.run(&arn, json!({"a": 1})).await.unwrap();
    assert_eq!(d.output, Some(json!({"a": 1})));
    assert!(engine.history(&d.execution_arn).is_err());

    let callback = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}}});
    assert!(
        engine
            .register_state_machine_as(
                "y",
                &callback.to_string(),
                &HashMap::new(),
                MachineType::Express
            )
            .is_err()
    );
    assert!(
        engine
            .register_state_machine("y", &callback.to_string(), &HashMap::new())
            .is_ok()
    );
}

#[tokio::test]
async fn a_result_path_that_cannot_apply_is_caught_as_a_match_failure() {
    let engine = Engine::new();
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "ResultPath": "$.text.inner", "End": true,
            "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": true}}});
    let d = run(&engine, def, json!({"text": "a string"})).await;
    assert_eq!(d.status, Status::Succeeded);
    assert_eq!(
        d.output.unwrap()["Error"],
        json!(names::RESULT_PATH_MATCH_FAILURE)
    );
}

#[tokio::test]
async fn a_jsonata_field_that_evaluates_to_nothing_is_a_query_error_naming_the_field() {
    let engine = Engine::new();
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": "{% $states.input.missing %}", "End": true}}});
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.error.as_deref(), Some(names::QUERY_EVALUATION_ERROR));
    assert!(
        d.cause
            .unwrap()
            .contains("specified for the field 'Output' returned nothing")
    );
    engine.register_handler("f", |v, _| async move { Ok(v) });
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true,
            "Arguments": "{% $states.input.missing %}"}}});
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.error.as_deref(), Some(names::QUERY_EVALUATION_ERROR));
    assert!(d.cause.unwrap().contains("field 'Arguments'"));
}

#[tokio::test]
async fn lambda_invoke_payloads_keep_the_json_value() {
    let engine = Engine::new();
    for (name, value) in [
        ("scalar", json!(42)),
        ("text", json!("hi")),
        ("list", json!([1, "a"])),
        ("empty", json!({})),
    ] {
        let v = value.clone();
        engine.register_handler(name, move |_, _| {
            let v = v.clone();
            async move { Ok(v) }
        });
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": name}, "OutputPath": "$.Payload"}}});
        let d = run(&engine, def, json!({})).await;
        assert_eq!(d.output, Some(value), "{name}");
    }
}

#[tokio::test]
async fn an_oversized_state_output_names_the_state() {
    let engine = Engine::new();
    let big = "x".repeat(MAX_PAYLOAD_BYTES);
    let def =
        json!({"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": big, "End": true}}});
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.error.as_deref(), Some(names::DATA_LIMIT_EXCEEDED));
    assert_eq!(
        d.cause.as_deref(),
        Some(
            "The state/task 'Big' returned a result with a size exceeding the maximum number of bytes service limit."
        )
    );
}

#[tokio::test]
async fn the_history_quota_can_be_set_and_lifted() {
    let engine = Engine::new();
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "C"},
        "C": {"Type": "Pass", "End": true}}});
    // Started, then entered/exited per state, then succeeded: 8 events.
    engine.set_history_quota(Some(5));
    let d = run(&engine, def.clone(), json!({})).await;
    assert_eq!(d.error.as_deref(), Some(names::RUNTIME));
    assert!(d.cause.unwrap().contains("(5)"));
    engine.set_history_quota(None);
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.status, Status::Succeeded);
}

#[tokio::test]
async fn a_history_that_fills_in_the_last_state_still_fails() {
    let engine = Engine::new();
    engine.register_handler("f", |v, _| async move { Ok(v) });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f"}}});
    // Started, entered, scheduled: the quota is reached inside the only state.
    engine.set_history_quota(Some(4));
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.error.as_deref(), Some(names::RUNTIME));
    assert_eq!(engine.history(&d.execution_arn).unwrap().len(), 4);
}

/// Sets its flag when dropped: tells whether a handler's future was ended before it returned.
struct DroppedFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DroppedFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_stopped_execution_leaves_its_running_invocation_until_its_deadline() {
    let engine = Engine::new();
    let release = Arc::new(tokio::sync::Notify::new());
    let returned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (release, returned, dropped) = (release.clone(), returned.clone(), dropped.clone());
        engine.register_handler("slow", move |_, _| {
            let (release, returned, dropped) = (release.clone(), returned.clone(), dropped.clone());
            async move {
                let _guard = DroppedFlag(dropped);
                release.notified().await;
                returned.store(true, Ordering::SeqCst);
                Ok(json!({}))
            }
        });
    }
    engine.register_handler("quick", |_, _| async move { Ok(json!({})) });
    let slow = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "TimeoutSeconds": 60,
        "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "End": true}}});
    let arn = engine
        .register_state_machine("slow", &slow.to_string(), &HashMap::new())
        .unwrap();
    let started = |engine: Engine, arn: String| async move {
        let exec = engine.start_execution(&arn, None, json!({})).unwrap();
        function_started(&engine, &exec).await;
        exec
    };

    // Stopped mid-call, the call goes on and returns (its result is dropped).
    let exec = started(engine.clone(), arn.clone()).await;
    engine.stop_execution(&exec, None, None).unwrap();
    assert_eq!(
        engine.wait_for(&exec).await.unwrap().status,
        Status::Aborted
    );
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the call was cut off by the stop"
    );
    release.notify_one();
    while !returned.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Stopped mid-call again; a task that starts 120 s later (virtual) finds it ended: Lambda's timeout
    // (at most the Task's 60 s) has passed.
    returned.store(false, Ordering::SeqCst);
    dropped.store(false, Ordering::SeqCst);
    let exec = started(engine.clone(), arn).await;
    engine.stop_execution(&exec, None, None).unwrap();
    engine.wait_for(&exec).await.unwrap();
    let later = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 120, "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:quick", "End": true}}});
    assert_eq!(
        run(&engine, later, json!({})).await.status,
        Status::Succeeded
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the call outlived its deadline"
    );
    release.notify_one();
    tokio::task::yield_now().await;
    assert!(!returned.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_task_token_answered_later_in_virtual_time_ends_the_wait_then() {
    let engine = Engine::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    engine.register_handler("ask", move |_, ctx: TaskContext| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.task_token.unwrap()).unwrap();
            Ok(Value::Null)
        }
    });
    let def = json!({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "TimeoutSeconds": 43200, "Parameters": {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}},
            "ResultPath": null, "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime"}, "End": true}}});
    let arn = engine
        .register_state_machine("later", &def.to_string(), &HashMap::new())
        .unwrap();
    let answer = |hours: i64| {
        let (engine, arn) = (engine.clone(), arn.clone());
        async move {
            let exec = engine.start_execution(&arn, None, json!({})).unwrap();
            let started = engine.describe_execution(&exec).unwrap().start_date;
            (exec, started + chrono::Duration::hours(hours))
        }
    };

    // Answered ten hours on: the next state is entered ten hours after the start.
    let (exec, at) = answer(10).await;
    let token = rx.recv().await.unwrap();
    engine
        .send_task_success_at(&token, json!({}), Some(at))
        .unwrap();
    let d = engine.wait_for(&exec).await.unwrap();
    assert_eq!(d.status, Status::Succeeded);
    let entered: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(d.output.unwrap()["at"].clone()).unwrap();
    assert_eq!(entered.timestamp_millis(), at.timestamp_millis());

    // Answered after its 12-hour timeout: the task had timed out.
    let (exec, at) = answer(13).await;
    let token = rx.recv().await.unwrap();
    engine
        .send_task_success_at(&token, json!({}), Some(at))
        .unwrap();
    let d = engine.wait_for(&exec).await.unwrap();
    assert_eq!(
        (d.status, d.error.as_deref()),
        (Status::Failed, Some(names::TIMEOUT))
    );
}
