//! Executions started by executions: the `states:startExecution` integration, and a DISTRIBUTED Map's
//! Map Run, whose children run as executions of their own on the virtual clock, and its ResultWriter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsplane_statemachines::engine::{Description, Engine, Status};
use opsplane_statemachines::error::{MAX_HISTORY_EVENTS, names};
use opsplane_statemachines::item_reader::{ItemReader, MemoryItemReader};
use serde_json::{Value, json};

fn register(engine: &Engine, name: &str, def: Value) -> String {
    engine
        .register_state_machine(name, &def.to_string(), &HashMap::new())
        .unwrap()
}

async fn run(engine: &Engine, def: Value, input: Value) -> Description {
    let arn = register(engine, "t", def);
    engine.run(&arn, input).await.unwrap()
}

fn seconds(d: &Description) -> i64 {
    (d.stop_date.unwrap() - d.start_date).num_seconds()
}

/// A child that waits ten minutes, then answers its input with a mark.
fn waiting_child(engine: &Engine) -> String {
    register(
        engine,
        "child",
        json!({"StartAt": "W", "States": {
            "W": {"Type": "Wait", "Seconds": 600, "Next": "P"},
            "P": {"Type": "Pass", "Parameters": {"got.$": "$", "by.$": "$$.Execution.Name"}, "End": true}}}),
    )
}

fn start_task(resource: &str, params: Value) -> Value {
    json!({"Type": "Task", "Resource": format!("arn:aws:states:::states:startExecution{resource}"),
        "Parameters": params, "End": true})
}

#[tokio::test]
async fn start_execution_sync2_returns_the_parsed_output_and_takes_the_child_time() {
    let engine = Engine::new();
    let child = waiting_child(&engine);
    let def = json!({"StartAt": "Before", "States": {
        "Before": {"Type": "Wait", "Seconds": 60, "Next": "Start"},
        "Start": start_task(".sync:2", json!({"StateMachineArn": child, "Input": {"x": 1}, "Name": "kid-1"}))}});
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let out = d.output.clone().unwrap();
    assert_eq!(out["Output"], json!({"got": {"x": 1}, "by": "kid-1"}));
    assert_eq!(out["Input"], json!({"x": 1}));
    assert_eq!(out["Status"], json!("SUCCEEDED"));
    assert_eq!(out["Name"], json!("kid-1"));
    assert_eq!(out["StateMachineArn"], json!(child));
    let kid = out["ExecutionArn"].as_str().unwrap();
    assert!(kid.ends_with(":execution:child:kid-1"), "{kid}");
    // The parent waited 60 s, then the child's 600 s.
    assert_eq!(seconds(&d), 660);
    // The child started at the parent's virtual time, not at the engine's latest.
    let c = engine.describe_execution(kid).unwrap();
    assert_eq!((c.start_date - d.start_date).num_seconds(), 60);
    assert_eq!(out["StartDate"], json!(c.start_date.timestamp_millis()));
    assert_eq!(
        out["StopDate"],
        json!(d.stop_date.unwrap().timestamp_millis())
    );
    let types: Vec<String> = engine
        .history(&d.execution_arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type.to_string())
        .filter(|t| t.starts_with("Task"))
        .collect();
    assert_eq!(
        types,
        [
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "TaskStateExited"
        ]
    );
}

#[tokio::test]
async fn start_execution_sync_returns_the_output_as_text_and_plain_returns_at_once() {
    let engine = Engine::new();
    let child = waiting_child(&engine);
    let d = run(
        &engine,
        json!({"StartAt": "S", "States": {"S": start_task(".sync", json!({"StateMachineArn": child, "Input": "{\"x\": 2}"}))}}),
        json!({}),
    )
    .await;
    let out = d.output.clone().unwrap();
    let text = out["Output"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["got"],
        json!({"x": 2})
    );
    assert_eq!(out["Input"], json!("{\"x\":2}"));
    assert_eq!(out["OutputDetails"], json!({"Included": true}));

    let d = run(
        &engine,
        json!({"StartAt": "S", "States": {"S": start_task("", json!({"StateMachineArn": child}))}}),
        json!({}),
    )
    .await;
    let out = d.output.clone().unwrap();
    assert!(
        out["ExecutionArn"]
            .as_str()
            .unwrap()
            .contains(":execution:child:")
    );
    assert!(out["StartDate"].is_i64());
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], json!(200));
    // The parent did not wait for the child's ten minutes.
    assert_eq!(seconds(&d), 0);
    let c = engine
        .wait_for(out["ExecutionArn"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(c.input, json!({}));
    assert_eq!(seconds(&c), 600);
}

#[tokio::test]
async fn a_failing_child_fails_the_task_with_its_description_and_is_caught() {
    let engine = Engine::new();
    let child = register(
        &engine,
        "failing",
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "it broke"}}}),
    );
    let def = json!({"StartAt": "S", "States": {
        "S": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child, "Input": {"a": 1}},
            "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}}});
    let d = run(&engine, def.clone(), json!({})).await;
    assert_eq!(d.status, Status::Succeeded);
    let err = &d.output.unwrap()["err"];
    assert_eq!(err["Error"], json!(names::TASK_FAILED));
    let cause: Value = serde_json::from_str(err["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["Status"], json!("FAILED"));
    assert_eq!(cause["Error"], json!("Boom"));
    assert_eq!(cause["Cause"], json!("it broke"));
    assert_eq!(cause["Input"], json!({"a": 1}));
    assert!(cause.get("Output").is_none());
    let failed = engine
        .history(&d.execution_arn)
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "TaskFailed")
        .unwrap();
    assert_eq!(failed.details["error"], json!(names::TASK_FAILED));

    // Uncaught, the parent fails with the same error.
    let mut uncaught = def;
    uncaught["States"]["S"]
        .as_object_mut()
        .unwrap()
        .remove("Catch");
    uncaught["States"].as_object_mut().unwrap().remove("Caught");
    let d = run(&engine, uncaught, json!({})).await;
    assert_eq!(d.status, Status::Failed);
    assert_eq!(d.error.as_deref(), Some(names::TASK_FAILED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_answers_its_parents_task_token() {
    let engine = Engine::new();
    let answerer = engine.clone();
    engine.register_handler("answer", move |v: Value, _| {
        let engine = answerer.clone();
        async move {
            let token = v["token"].as_str().unwrap_or_default();
            engine
                .send_task_success(token, json!({"answered": true}))
                .map_err(|e| opsplane_statemachines::FunctionError::new("E", e.to_string()))?;
            Ok(json!({}))
        }
    });
    let child = register(
        &engine,
        "answering",
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "End": true,
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:answer"}}}),
    );
    let def = json!({"StartAt": "S", "States": {"S": start_task(".waitForTaskToken",
        json!({"StateMachineArn": child, "Input": {"token.$": "$$.Task.Token"}}))}});
    for _ in 0..20 {
        let d = run(&engine, def.clone(), json!({})).await;
        assert_eq!(d.output, Some(json!({"answered": true})), "{d:?}");
    }
}

#[tokio::test]
async fn a_child_running_past_the_task_timeout_times_the_task_out() {
    let engine = Engine::new();
    let child = waiting_child(&engine);
    let def = json!({"StartAt": "S", "States": {"S": {"Type": "Task", "End": true, "TimeoutSeconds": 300,
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child}}}});
    let d = run(&engine, def, json!({})).await;
    assert_eq!(d.error.as_deref(), Some(names::TIMEOUT));
    // The task gave up at its timeout, on the virtual clock.
    assert_eq!(seconds(&d), 300);
}

#[tokio::test]
async fn start_execution_names_and_machines_follow_the_api() {
    let engine = Engine::new();
    // A child that waits for a callback stays RUNNING until it is answered.
    let tokens = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = tokens.clone();
    engine.register_handler(
        "arn:aws:states:::sqs:sendMessage",
        move |_, ctx: opsplane_statemachines::TaskContext| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(ctx.task_token.unwrap());
                Ok(json!({}))
            }
        },
    );
    let child = register(
        &engine,
        "held",
        json!({"StartAt": "H", "States": {"H": {"Type": "Task", "End": true,
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}}}}}),
    );
    let held = engine
        .start_execution(&child, Some("same".into()), json!({"k": 1}))
        .unwrap();
    let sync = |input: Value| {
        json!({"StartAt": "S", "States": {"S": start_task(".sync:2",
            json!({"StateMachineArn": child, "Name": "same", "Input": input}))}})
    };
    // Another input under a running execution's name.
    let d = run(&engine, sync(json!({"k": 2})), json!({})).await;
    assert_eq!(
        d.error.as_deref(),
        Some(names::SFN_EXECUTION_ALREADY_EXISTS)
    );
    assert!(d.cause.unwrap().contains(&held));
    // The same input: the running execution is the one started, and the task waits for it.
    let arn = register(&engine, "t", sync(json!({"k": 1})));
    let parent = engine.start_execution(&arn, None, json!({})).unwrap();
    while tokens.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(engine.is_running(&parent));
    let token = tokens.lock().unwrap()[0].clone();
    engine
        .send_task_success(&token, json!({"ok": true}))
        .unwrap();
    let d = engine.wait_for(&parent).await.unwrap();
    assert_eq!(d.output.unwrap()["Output"], json!({"ok": true}));
    assert_eq!(tokens.lock().unwrap().len(), 1);
    // A closed execution's name cannot be used again, whatever the input.
    let d = run(&engine, sync(json!({"k": 1})), json!({})).await;
    assert_eq!(
        d.error.as_deref(),
        Some(names::SFN_EXECUTION_ALREADY_EXISTS)
    );
    // No such state machine.
    let d = run(
        &engine,
        json!({"StartAt": "S", "States": {"S": start_task(".sync",
            json!({"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nope"}))}}),
        json!({}),
    )
    .await;
    assert_eq!(
        d.error.as_deref(),
        Some(names::SFN_STATE_MACHINE_DOES_NOT_EXIST)
    );
    assert!(d.cause.unwrap().starts_with("State Machine Does Not Exist"));
}

fn distributed(processor: Value, extra: Value) -> Value {
    let mut map = json!({"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}}});
    for (k, v) in processor.as_object().unwrap() {
        map["ItemProcessor"][k] = v.clone();
    }
    for (k, v) in extra.as_object().unwrap() {
        map[k] = v.clone();
    }
    json!({"StartAt": "M", "States": {"M": map}})
}

fn children_of(engine: &Engine, machine: &str) -> Vec<String> {
    let marker = format!(":execution:{machine}:");
    engine
        .list_executions()
        .into_iter()
        .filter(|a| a.contains(&marker))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_map_runs_its_items_as_child_executions_in_waves() {
    let engine = Engine::new();
    let def = distributed(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}),
        json!({"MaxConcurrency": 10,
            "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"}}),
    );
    let items: Vec<u32> = (0..300).collect();
    let d = run(&engine, def, json!(items)).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let out = d.output.clone().unwrap();
    assert_eq!(out.as_array().unwrap().len(), 300);
    assert_eq!(out[7], json!({"i": 7, "v": 7}));
    // 300 items, 10 at a time, 60 s each: 30 waves.
    assert_eq!(seconds(&d), 30 * 60);
    let children = children_of(&engine, "t/M");
    assert_eq!(children.len(), 300);
    let mut starts = Vec::new();
    for c in &children {
        let h = engine.history(c).unwrap();
        let types: Vec<&str> = h.iter().map(|e| &*e.event_type).collect();
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "WaitStateEntered",
                "WaitStateExited",
                "ExecutionSucceeded"
            ]
        );
        let cd = engine.describe_execution(c).unwrap();
        assert_eq!(seconds(&cd), 60);
        starts.push((cd.start_date - d.start_date).num_seconds());
    }
    starts.sort();
    starts.dedup();
    assert_eq!(starts, (0..30).map(|w| w * 60).collect::<Vec<_>>());
    // The parent keeps the Map Run's events only.
    let types: Vec<String> = engine
        .history(&d.execution_arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type.to_string())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_items_take_the_earliest_free_slot_in_virtual_time() {
    let def = distributed(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$", "End": true}}}),
        json!({"MaxConcurrency": 2}),
    );
    for _ in 0..10 {
        let engine = Engine::new();
        let d = run(&engine, def.clone(), json!([100, 10, 10, 10])).await;
        // One slot runs the 100-second item; the other the three 10-second ones, back to back.
        assert_eq!(seconds(&d), 100);
        let mut starts: Vec<(i64, i64)> = children_of(&engine, "t/M")
            .iter()
            .map(|c| engine.describe_execution(c).unwrap())
            .map(|c| ((c.start_date - d.start_date).num_seconds(), seconds(&c)))
            .collect();
        starts.sort();
        assert_eq!(starts, [(0, 10), (0, 100), (10, 10), (20, 10)]);
    }
}

#[tokio::test]
async fn a_child_past_the_history_quota_is_a_failed_item() {
    let engine = Engine::new();
    // Four events an inline iteration: 7,000 items need 28,000, past the child's own quota.
    let def = |tolerated: u32| {
        distributed(
            json!({"StartAt": "Inner", "States": {"Inner": {"Type": "Map", "ItemsPath": "$.n", "End": true,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}),
            json!({"ToleratedFailureCount": tolerated}),
        )
    };
    let big: Vec<u32> = (0..7_000).collect();
    let items = json!([{"n": big}, {"n": [1, 2]}]);
    let d = run(&engine, def(1), items.clone()).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let out = d.output.clone().unwrap();
    assert_eq!(out[1], json!([1, 2]));
    // A failed child shows as its description.
    assert_eq!(out[0]["Status"], json!("FAILED"));
    assert_eq!(out[0]["Error"], json!(names::RUNTIME));
    let failed = out[0]["ExecutionArn"].as_str().unwrap();
    assert_eq!(engine.history(failed).unwrap().len(), MAX_HISTORY_EVENTS);
    // The parent's history stays small.
    assert!(engine.history(&d.execution_arn).unwrap().len() < 12);

    let d = run(&engine, def(0), items).await;
    assert_eq!(d.status, Status::Failed);
    assert_eq!(
        d.error.as_deref(),
        Some(names::EXCEED_TOLERATED_FAILURE_THRESHOLD)
    );
}

#[tokio::test]
async fn a_result_writer_writes_the_map_run_to_s3() {
    let engine = Engine::new();
    let store = Arc::new(MemoryItemReader::new());
    engine.set_item_reader(store.clone());
    let def = distributed(
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "P"},
            "F": {"Type": "Fail", "Error": "Two", "Cause": "two is bad"},
            "P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": true}}}),
        json!({"ToleratedFailureCount": 1,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "out", "Prefix.$": "$.prefix"}},
            "ItemsPath": "$.items"}),
    );
    let d = run(&engine, def, json!({"prefix": "runs", "items": [1, 2, 3]})).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let out = d.output.clone().unwrap();
    let run_arn = out["MapRunArn"].as_str().unwrap();
    assert!(run_arn.starts_with("arn:aws:states:us-east-1:123456789012:mapRun:t/M:"));
    let run_id = run_arn.rsplit(':').next().unwrap();
    let key = format!("runs/{run_id}/manifest.json");
    assert_eq!(
        out["ResultWriterDetails"],
        json!({"Bucket": "out", "Key": key})
    );
    let read =
        |key: &str| -> Value { serde_json::from_slice(&store.get("out", key).unwrap()).unwrap() };
    let size = |key: &str| store.get("out", key).unwrap().len();
    let (ok_key, failed_key) = (
        format!("runs/{run_id}/SUCCEEDED_0.json"),
        format!("runs/{run_id}/FAILED_0.json"),
    );
    assert_eq!(
        read(&key),
        json!({"DestinationBucket": "out", "MapRunArn": run_arn, "ResultFiles": {
            "FAILED": [{"Key": failed_key, "Size": size(&failed_key)}],
            "PENDING": [],
            "SUCCEEDED": [{"Key": ok_key, "Size": size(&ok_key)}]}})
    );
    let ok = read(&ok_key);
    assert_eq!(ok.as_array().unwrap().len(), 2);
    assert_eq!(ok[0]["Output"], json!("{\"v\":1}"));
    assert_eq!(ok[1]["Input"], json!("3"));
    assert_eq!(ok[0]["Status"], json!("SUCCEEDED"));
    assert!(ok[0]["StartDate"].as_str().unwrap().ends_with('Z'));
    let failed = read(&failed_key);
    assert_eq!(failed[0]["Error"], json!("Two"));
    assert_eq!(failed[0]["Status"], json!("FAILED"));
    assert!(
        engine
            .describe_execution(failed[0]["ExecutionArn"].as_str().unwrap())
            .is_ok()
    );
}

#[tokio::test]
async fn a_failed_map_run_writes_its_unstarted_items_as_pending() {
    let engine = Engine::new();
    let store = Arc::new(MemoryItemReader::new());
    engine.set_item_reader(store.clone());
    let def = distributed(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "No"}}}),
        json!({"MaxConcurrency": 1, "ItemSelector": {"item.$": "$$.Map.Item.Value"},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "out", "Prefix": "p/"}}}),
    );
    let d = run(&engine, def, json!(["a", "b", "c"])).await;
    assert_eq!(
        d.error.as_deref(),
        Some(names::EXCEED_TOLERATED_FAILURE_THRESHOLD)
    );
    // The first child failed; the other two never started.
    assert_eq!(children_of(&engine, "t/M").len(), 1);
    let keys: Vec<String> = store
        .list_objects("out", "p/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let manifest = keys.iter().find(|k| k.ends_with("/manifest.json")).unwrap();
    let manifest: Value = serde_json::from_slice(&store.get("out", manifest).unwrap()).unwrap();
    assert_eq!(manifest["ResultFiles"]["SUCCEEDED"], json!([]));
    let pending = manifest["ResultFiles"]["PENDING"][0]["Key"]
        .as_str()
        .unwrap();
    assert!(pending.starts_with("p/") && pending.ends_with("/PENDING_0.json"));
    let pending: Value = serde_json::from_slice(&store.get("out", pending).unwrap()).unwrap();
    assert_eq!(pending[1]["Input"], json!("{\"item\":\"c\"}"));
}

#[tokio::test]
async fn results_past_the_payload_limit_need_a_result_writer() {
    let engine = Engine::new();
    engine.set_item_reader(Arc::new(MemoryItemReader::new()));
    let processor = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"s": "x".repeat(1000)}, "End": true}}});
    let items: Vec<u32> = (0..300).collect();
    // 300 results of a kilobyte are more than a state's 256 KiB.
    let d = run(
        &engine,
        distributed(processor.clone(), json!({})),
        json!(items),
    )
    .await;
    assert_eq!(d.error.as_deref(), Some(names::DATA_LIMIT_EXCEEDED));
    let writer = json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "big"}}});
    let d = run(&engine, distributed(processor, writer), json!(items)).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    assert!(
        d.output.unwrap()["ResultWriterDetails"]["Key"]
            .as_str()
            .unwrap()
            .starts_with("big/")
    );
}

#[tokio::test]
async fn a_result_writer_without_an_s3_port_fails_the_map() {
    let engine = Engine::new();
    let def = distributed(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "out", "Prefix": "p"}}}),
    );
    let d = run(&engine, def, json!([1])).await;
    assert_eq!(d.error.as_deref(), Some(names::RESULT_WRITER_FAILED));
}

#[tokio::test]
async fn stopping_the_parent_aborts_its_running_children() {
    let engine = Engine::new();
    engine.register_handler("arn:aws:states:::sqs:sendMessage", |_, _| async {
        Ok(json!({}))
    });
    let def = distributed(
        json!({"StartAt": "H", "States": {"H": {"Type": "Task", "End": true,
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}}}}}),
        json!({}),
    );
    let arn = register(&engine, "t", def);
    let parent = engine.start_execution(&arn, None, json!([1, 2])).unwrap();
    while children_of(&engine, "t/M").len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    engine.stop_execution(&parent, None, None).unwrap();
    assert_eq!(
        engine.wait_for(&parent).await.unwrap().status,
        Status::Aborted
    );
    for c in children_of(&engine, "t/M") {
        assert_eq!(engine.wait_for(&c).await.unwrap().status, Status::Aborted);
    }
}

#[tokio::test]
async fn a_child_execution_runs_its_own_distributed_map() {
    let engine = Engine::new();
    let inner = distributed(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        json!({"ItemsPath": "$.xs", "Label": "Inner"}),
    );
    let def = distributed(
        json!({"StartAt": "N", "States": {"N": inner["States"]["M"].clone()}}),
        json!({"Label": "Outer"}),
    );
    let d = run(&engine, def, json!([{"xs": [1, 2]}, {"xs": [3]}])).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    assert_eq!(d.output, Some(json!([[1, 2], [3]])));
    assert_eq!(children_of(&engine, "t/Outer").len(), 2);
    assert_eq!(children_of(&engine, "t/Outer/Inner").len(), 3);
}
