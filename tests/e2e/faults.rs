//! Faults mid-workflow, on the real definitions and functions against moto: a function that panics or runs
//! past its task's `TimeoutSeconds` leaves no lock held and no drill instance alive; AWS throttling and 5xx
//! (injected with aws-smithy-mocks, which moto cannot produce) are retried with back-off and then named
//! `Throttled`; a moto that stops answering mid-run fails the workflow cleanly, and a re-run completes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::config::{AsyncSleep, SharedAsyncSleep, Sleep};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_fn_lock::LockDeps;
use opsplane_local::{LocalPlane, function_error};
use opsplane_shared::Config;
use opsplane_shared::aws::load_sdk_config;
use opsplane_shared::config::SdkSettings;

use opsplane_local::MotoServer;
use opsplane_shared::lock::DynamoDbLock;
use opsplane_shared::ports::Executions;
use opsplane_shared::ports::executions::ExecutionState;
use opsplane_shared::state::{BackupRecord, BackupStatus, StateStore};
use opsplane_statemachines::{Description, Engine, FunctionError, Status, TaskContext};
use serde_json::{Value, json};

use crate::backup::{Plane, deps};
use crate::drill::drill_instances;
use crate::harness::{root, unique};

/// How the wrapped function misbehaves on one action.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The handler panics (a crashed function).
    Panic,
    /// The handler declares this much virtual time, then does its work: past the task's `TimeoutSeconds`,
    /// the engine times the task out and discards the result, as Step Functions does.
    Slow(Duration),
}

/// Registers the backup function so that `action` misbehaves as `fault` and every other action is the real
/// function against moto.
fn backup_with_fault(plane: &Plane, action: &'static str, fault: Fault) {
    backup_probing_with_fault(plane, action, fault, ProbeSettings::default());
}

/// [`backup_with_fault`] with the probes set as `probe` says.
pub fn backup_probing_with_fault(
    plane: &Plane,
    action: &'static str,
    fault: Fault,
    probe: ProbeSettings,
) {
    let deps = Arc::new(deps(&plane.local, probe).with_history(Arc::new(
        opsplane_local::EngineExecutions(plane.engine.clone()),
    )));
    plane.engine.register_handler(
        opsplane_fn_backup::FUNCTION_NAME,
        move |input: Value, ctx: TaskContext| {
            let deps = deps.clone();
            async move {
                if input["action"] == action {
                    match fault {
                        Fault::Panic => panic!("injected: the backup function crashed in {action}"),
                        Fault::Slow(d) => ctx.advance(d),
                    }
                }
                opsplane_fn_backup::handle(&deps, input)
                    .await
                    .map_err(function_error)
            }
        },
    );
}

/// Registers the lock function so that `release` panics while `crash_release` is set.
fn lock_crashing_on_release(local: &LocalPlane, crash_release: Arc<AtomicBool>) {
    let lock = LockDeps::new(local.lock());
    local.engine.register_handler(
        opsplane_fn_lock::FUNCTION_NAME,
        move |input: Value, _ctx| {
            let lock = lock.clone();
            let crash = crash_release.load(Ordering::SeqCst) && input["action"] == "release";
            async move {
                if crash {
                    panic!("injected: the lock function crashed while releasing");
                }
                opsplane_fn_lock::handle(&lock, input)
                    .await
                    .map_err(function_error)
            }
        },
    );
}

/// Registers `workflow`'s deployed definition under a new name with `TimeoutSeconds` set on `state` (the
/// definitions bound time by their Lambda functions' own timeouts, which the local engine does not model).
fn with_task_timeout(engine: &Engine, workflow: &str, state: &str, seconds: u64) -> String {
    let text = workflow
        .parse::<opsplane_statemachines::Workflow>()
        .expect("a known workflow")
        .definition();
    let mut def: Value = serde_json::from_str(text).unwrap();
    let at = opsplane_statemachines::validate::state_pointer(&def, state)
        .unwrap_or_else(|| panic!("{workflow} has no state {state}"));
    let task = def.pointer_mut(&at).expect("the state's pointer");
    assert_eq!(task["Type"], "Task", "{state}");
    task["TimeoutSeconds"] = json!(seconds);
    let substitutions = opsplane_local::plane::substitutions();
    engine
        .register_state_machine(
            &unique(&format!("{workflow}-timeout-")),
            &def.to_string(),
            &substitutions,
        )
        .expect("the patched definition registers")
}

/// Names of the states whose task ended with `event` (e.g. `TaskTimedOut`), in order.
fn states_with_event(engine: &Engine, execution: &str, event: &str) -> Vec<String> {
    let history = engine.history(execution).unwrap();
    let mut current = String::new();
    let mut out = Vec::new();
    for e in &history {
        if e.event_type == "TaskStateEntered" {
            current = e.details["name"].as_str().unwrap_or_default().to_owned();
        }
        // A poll's `NotReady` answers are the world's statuses over time, not faults: left out.
        if e.event_type == event && e.details["error"] != "NotReady" {
            out.push(current.clone());
        }
    }
    out
}

fn failed_with(run: &Description, error: &str) {
    assert_eq!(
        run.status,
        Status::Failed,
        "{:?} {:?}",
        run.error,
        run.cause
    );
    assert_eq!(run.error.as_deref(), Some(error), "{:?}", run.cause);
}

async fn assert_recorded_failed(plane: &Plane) {
    let records: Vec<BackupRecord> = plane.store().latest(&plane.env, 5).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, BackupStatus::Failed);
}

#[tokio::test]
async fn a_backup_function_that_panics_mid_run_fails_the_backup_and_releases_the_lock() {
    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    // After the lock is taken and the snapshots exist.
    backup_with_fault(&plane, "export-eks", Fault::Panic);
    let run = plane.run_backup().await;
    // The engine kept running: the crash reached the definition as Lambda's own error name.
    failed_with(&run, "Lambda.Unknown");
    assert_eq!(
        states_with_event(&plane.engine, &run.execution_arn, "TaskFailed"),
        ["ExportEks"]
    );
    assert!(plane.lock_is_free().await, "the Catch path released it");
    assert_recorded_failed(&plane).await;
}

#[tokio::test]
async fn a_backup_task_past_its_timeout_fails_the_backup_and_releases_the_lock() {
    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    let machine = with_task_timeout(&plane.engine, "backup", "WriteManifest", 60);
    backup_with_fault(
        &plane,
        "write-manifest",
        Fault::Slow(Duration::from_secs(61)),
    );
    let run = plane
        .engine
        .run(&machine, json!({ "environment": plane.env }))
        .await
        .unwrap();
    failed_with(&run, "States.Timeout");
    assert_eq!(
        states_with_event(&plane.engine, &run.execution_arn, "TaskTimedOut"),
        ["WriteManifest"]
    );
    assert!(plane.lock_is_free().await, "the Catch path released it");
    assert_recorded_failed(&plane).await;
}

#[tokio::test]
async fn a_lock_left_by_a_crashed_release_is_taken_over_by_the_next_run() {
    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    let crash = Arc::new(AtomicBool::new(true));
    lock_crashing_on_release(&plane.local, crash.clone());
    backup_with_fault(&plane, "export-eks", Fault::Panic);
    let first = plane.run_backup().await;
    failed_with(&first, "Lambda.Unknown");
    // Both the step and the release crashed: the lock is still held, by an execution that no longer runs.
    let held = plane
        .local
        .lock()
        .status(&plane.env)
        .await
        .unwrap()
        .expect("the crashed release left the lock");
    assert_eq!(held.holder, first.execution_arn);

    crash.store(false, Ordering::SeqCst);
    plane.reregister(deps(&plane.local, ProbeSettings::default()));
    let second = plane.run_backup().await;
    assert_eq!(second.status, Status::Succeeded, "{:?}", second.cause);
    let history = plane.engine.history(&second.execution_arn).unwrap();
    let took_over = history
        .iter()
        .filter(|e| e.event_type == "TaskSucceeded")
        .find_map(|e| {
            e.details["output"]["Payload"]
                .get("took_over_from")
                .cloned()
        })
        .expect("the acquire's output");
    assert_eq!(
        took_over["holder"],
        json!(first.execution_arn),
        "{took_over}"
    );
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_drill_function_that_panics_after_the_restore_tears_the_instance_down() {
    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    assert_eq!(plane.run_backup().await.status, Status::Succeeded);
    backup_with_fault(&plane, "verify", Fault::Panic);
    let run = plane
        .engine
        .run(&plane.drill, json!({ "environment": plane.env }))
        .await
        .unwrap();
    assert_eq!(run.status, Status::Failed, "{:?}", run.cause);
    let failed = states_with_event(&plane.engine, &run.execution_arn, "TaskFailed");
    assert_eq!(failed, ["Verify"], "{:?}", run.cause);
    let entered: Vec<String> = plane
        .engine
        .history(&run.execution_arn)
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "TaskStateEntered")
        .filter_map(|e| e.details["name"].as_str().map(str::to_owned))
        .collect();
    assert!(entered.iter().any(|s| s == "Teardown"), "{entered:?}");
    assert!(drill_instances(&plane).await.is_empty(), "torn down");
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_drill_poll_past_its_timeout_tears_the_instance_down() {
    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    assert_eq!(plane.run_backup().await.status, Status::Succeeded);
    let machine = with_task_timeout(&plane.engine, "dr-drill", "WaitRestore", 60);
    backup_with_fault(
        &plane,
        "check-restore",
        Fault::Slow(Duration::from_secs(90)),
    );
    let run = plane
        .engine
        .run(&machine, json!({ "environment": plane.env }))
        .await
        .unwrap();
    assert_eq!(run.status, Status::Failed, "{:?}", run.cause);
    // A poll is idempotent: its timeout is retried twice before the drill gives up.
    assert_eq!(
        states_with_event(&plane.engine, &run.execution_arn, "TaskTimedOut"),
        ["WaitRestore", "WaitRestore", "WaitRestore"]
    );
    assert!(drill_instances(&plane).await.is_empty(), "torn down");
    assert!(plane.lock_is_free().await);
}

// ---- SDK throttling and 5xx: aws-smithy-mocks, since moto never throttles nor fails on its side ----

/// The SDK's back-off sleeps, recorded; every sleep still happens (the timeouts sleep through it too).
#[derive(Debug, Clone, Default)]
struct RecordingSleep(Arc<Mutex<Vec<Duration>>>);

impl AsyncSleep for RecordingSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        self.0.lock().unwrap().push(duration);
        Sleep::new(tokio::time::sleep(duration))
    }
}

impl RecordingSleep {
    /// The sleeps shorter than any timeout: the back-offs between attempts.
    fn backoffs(&self, settings: &SdkSettings) -> Vec<Duration> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|d| *d <= settings.max_backoff)
            .collect()
    }
}

/// Production's retry settings with back-offs short enough for a test (the timeouts are far longer).
fn fast_backoff() -> SdkSettings {
    SdkSettings {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..SdkSettings::default()
    }
}

/// A configuration whose clients are built as production builds them (`load_sdk_config`), with `settings`.
fn mock_config(settings: SdkSettings) -> Config {
    Config::local("http://127.0.0.1:9", "t-mock", "b-mock").with_sdk(settings)
}

async fn mocked_rds(
    rules: &[&Rule],
    settings: SdkSettings,
    sleep: &RecordingSleep,
) -> aws_sdk_rds::Client {
    let sdk = load_sdk_config(&mock_config(settings)).await;
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_rds::config::Builder::from(&sdk)
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .sleep_impl(SharedAsyncSleep::new(sleep.clone()))
        .build();
    aws_sdk_rds::Client::from_conf(conf)
}

async fn mocked_dynamodb(
    rules: &[&Rule],
    settings: SdkSettings,
    sleep: &RecordingSleep,
) -> aws_sdk_dynamodb::Client {
    let sdk = load_sdk_config(&mock_config(settings)).await;
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .sleep_impl(SharedAsyncSleep::new(sleep.clone()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

async fn mocked_s3(
    rules: &[&Rule],
    settings: SdkSettings,
    sleep: &RecordingSleep,
) -> aws_sdk_s3::Client {
    let sdk = load_sdk_config(&mock_config(settings)).await;
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .sleep_impl(SharedAsyncSleep::new(sleep.clone()))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

const RDS_THROTTLED: &str = r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
const RDS_UNAVAILABLE: &str = r#"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>We encountered an internal error. Please try again.</Message></Error><RequestId>2</RequestId></ErrorResponse>"#;
const RDS_BAD_PARAMETER: &str = r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>Invalid snapshot identifier</Message></Error><RequestId>3</RequestId></ErrorResponse>"#;
const DDB_THROUGHPUT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;
const DDB_INTERNAL: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#;
const S3_SLOW_DOWN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"#;

#[tokio::test]
async fn rds_throttling_and_5xx_are_retried_with_backoff_then_named_throttled() {
    let settings = fast_backoff();
    for (status, body, what) in [
        (400, RDS_THROTTLED, "Throttling"),
        (500, RDS_UNAVAILABLE, "InternalFailure"),
        (503, "", "503 without a body"),
    ] {
        let rule = mock!(aws_sdk_rds::Client::create_db_snapshot)
            .sequence()
            .http_status(status, Some(body.to_owned()))
            .repeatedly()
            .build();
        let sleep = RecordingSleep::default();
        let rds = opsplane_shared::aws::rds::Rds::new(mocked_rds(&[&rule], settings, &sleep).await);
        let err = rds
            .create_snapshot("db", "snap", &BTreeMap::new())
            .await
            .unwrap_err();
        let err = opsplane_shared::OpsError::from(err);
        assert_eq!(
            err.name().as_str(),
            "Throttled",
            "{what}: {}",
            err.full_message()
        );
        assert_eq!(
            rule.num_calls(),
            settings.max_attempts as usize,
            "{what}: every attempt was spent"
        );
        let backoffs = sleep.backoffs(&settings);
        assert_eq!(
            backoffs.len(),
            settings.max_attempts as usize - 1,
            "{what}: one back-off before each retry: {backoffs:?}"
        );
    }

    // A fault that clears is retried into success.
    let rule = mock!(aws_sdk_rds::Client::create_db_snapshot)
        .sequence()
        .http_status(503, None)
        .output(|| {
            aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotOutput::builder()
                .db_snapshot(
                    aws_sdk_rds::types::DbSnapshot::builder()
                        .db_snapshot_identifier("snap")
                        .db_instance_identifier("db")
                        .status("creating")
                        .build(),
                )
                .build()
        })
        .build();
    let sleep = RecordingSleep::default();
    let rds = opsplane_shared::aws::rds::Rds::new(mocked_rds(&[&rule], settings, &sleep).await);
    let snap = rds
        .create_snapshot("db", "snap", &BTreeMap::new())
        .await
        .expect("the second attempt succeeds");
    assert_eq!(snap.id, "snap");
    assert_eq!(rule.num_calls(), 2);
    assert_eq!(sleep.backoffs(&settings).len(), 1);

    // A client error is not retried and is not named Throttled.
    let rule = mock!(aws_sdk_rds::Client::create_db_snapshot)
        .sequence()
        .http_status(400, Some(RDS_BAD_PARAMETER.to_owned()))
        .repeatedly()
        .build();
    let sleep = RecordingSleep::default();
    let rds = opsplane_shared::aws::rds::Rds::new(mocked_rds(&[&rule], settings, &sleep).await);
    let err = rds
        .create_snapshot("db", "snap", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(
        opsplane_shared::OpsError::from(err).name().as_str(),
        "Internal"
    );
    assert_eq!(rule.num_calls(), 1);
    assert!(sleep.backoffs(&settings).is_empty());
}

#[tokio::test]
async fn the_lock_function_names_exhausted_dynamodb_throttling_and_5xx_throttled() {
    let settings = SdkSettings {
        max_attempts: 4,
        ..fast_backoff()
    };
    for (status, body) in [(400, DDB_THROUGHPUT), (500, DDB_INTERNAL)] {
        let rule = mock!(aws_sdk_dynamodb::Client::update_item)
            .sequence()
            .http_status(status, Some(body.to_owned()))
            .repeatedly()
            .build();
        // The environment's fence, read before the grant: none yet.
        let fence = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder().build()
        });
        let sleep = RecordingSleep::default();
        let dynamodb = mocked_dynamodb(&[&fence, &rule], settings, &sleep).await;
        let lock = DynamoDbLock::new(
            StateStore::new(dynamodb, "t-mock"),
            Arc::new(crate::harness::FixedExecutions::ENDED),
        );
        let err = opsplane_fn_lock::handle(
            &LockDeps::new(Arc::new(lock)),
            json!({"action": "acquire", "environment": "prod", "holder": "arn:aws:states:us-east-1:123456789012:execution:backup:run-1", "operation": "backup"}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.name().as_str(),
            "Throttled",
            "{status}: {}",
            err.full_message()
        );
        assert_eq!(rule.num_calls(), 4, "{status}");
        assert_eq!(sleep.backoffs(&settings).len(), 3, "{status}");
    }
}

#[tokio::test]
async fn s3_slow_down_and_5xx_on_manifest_writes_are_named_throttled() {
    let settings = fast_backoff();
    for (status, body) in [(503, S3_SLOW_DOWN), (500, "")] {
        let rule = mock!(aws_sdk_s3::Client::put_object)
            .sequence()
            .http_status(status, Some(body.to_owned()))
            .repeatedly()
            .build();
        let sleep = RecordingSleep::default();
        let objects = opsplane_shared::aws::objects::ObjectStore::new(
            mocked_s3(&[&rule], settings, &sleep).await,
            "b-mock".to_owned(),
        );
        let err = objects
            .put(
                "backups/prod/manifest.json",
                b"{}".to_vec(),
                "application/json",
            )
            .await
            .unwrap_err();
        let err = opsplane_shared::OpsError::from(err);
        assert_eq!(
            err.name().as_str(),
            "Throttled",
            "{status}: {}",
            err.full_message()
        );
        assert_eq!(rule.num_calls(), settings.max_attempts as usize, "{status}");
        assert_eq!(
            sleep.backoffs(&settings).len(),
            settings.max_attempts as usize - 1
        );
    }
}

// ---- moto stops answering mid-run ----

/// SDK settings that give up on a silent endpoint within about a second.
fn impatient() -> SdkSettings {
    SdkSettings {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        connect_timeout: Duration::from_millis(300),
        attempt_timeout: Duration::from_millis(400),
        operation_timeout: Duration::from_millis(1000),
    }
}

#[tokio::test]
async fn moto_stopping_mid_backup_fails_it_cleanly_and_a_rerun_completes() {
    // A moto of its own: suspending the shared one would stall every other test.
    let moto = Arc::new(MotoServer::start(&root()).expect("a dedicated moto"));
    let name = unique("m");
    let patient = Config::local(
        moto.endpoint(),
        format!("{name}-table"),
        format!("{name}-bucket"),
    );
    let env = unique("e");
    // The probe's secret is only named here (this test never probes), so any well-formed ARN does.
    let spec = std::fs::read_to_string(root().join("tests/fixtures/specs/drill.yaml"))
        .unwrap()
        .replace("{env}", &env)
        .replace(
            "{probe_secret}",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!probe-unused",
        );
    // Seeded with the default settings: a fresh moto loads each service on its first call, slowly.
    let (seeding, _) = LocalPlane::connect(patient.clone())
        .await
        .expect("local plane");
    seeding.seed_environment(&spec).await.expect("seed");
    let config = patient.with_sdk(impatient());
    let (local, _) = LocalPlane::connect(config.clone())
        .await
        .expect("local plane");
    // The plane's own clients: impatient, and in the plane's world of the model.
    let clients = local.clients.clone();

    // moto stops answering once the lock is held and the snapshots exist.
    let base = opsplane_fn_backup::Deps::new(config.clone(), &clients).with_history(Arc::new(
        opsplane_local::EngineExecutions(local.engine.clone()),
    ));
    let deps = Arc::new(base);
    let stopped = Arc::new(AtomicBool::new(false));
    {
        let moto = moto.clone();
        let stopped = stopped.clone();
        local.engine.register_handler(
            opsplane_fn_backup::FUNCTION_NAME,
            move |input: Value, _ctx| {
                let deps = deps.clone();
                let moto = moto.clone();
                let stopped = stopped.clone();
                async move {
                    if input["action"] == "export-eks" && !stopped.swap(true, Ordering::SeqCst) {
                        moto.suspend()
                            .map_err(|e| FunctionError::new("Test", e.to_string()))?;
                    }
                    opsplane_fn_backup::handle(&deps, input)
                        .await
                        .map_err(function_error)
                }
            },
        );
    }
    let first = local
        .run("backup", json!({ "environment": env }))
        .await
        .unwrap();
    let history = local.engine.history(&first.execution_arn).unwrap();
    moto.resume().expect("moto resumes");
    assert!(stopped.load(Ordering::SeqCst), "the fault was injected");
    assert_eq!(first.status, Status::Failed, "{:?}", first.cause);
    assert_eq!(
        first.error.as_deref(),
        Some("Internal"),
        "a named error, not a crash: {:?}",
        first.cause
    );
    assert!(
        first
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "the cause says the call got no answer: {:?}",
        first.cause
    );
    // Every step after the stop was attempted and failed with a name: the engine never hung. The outcome
    // event's publish (EventBridge, on the same stopped endpoint) fails too, and is caught. (The snapshot
    // polls' `NotReady` answers before the stop are the world's statuses, not faults.)
    let failed: Vec<&str> = history
        .iter()
        .filter(|e| e.event_type == "TaskFailed")
        .filter_map(|e| e.details["error"].as_str())
        .filter(|e| *e != "NotReady")
        .collect();
    assert!(
        failed.len() >= 2
            && failed
                .iter()
                .all(|e| *e == "Internal" || e.starts_with("EventBridge.")),
        "{failed:?}"
    );

    // moto is back with its state. The failed run's lock is either still held by an execution that no
    // longer runs (its release never reached moto) or released by a request moto serves late: the release
    // the client gave up on sits in moto's accept queue while it is stopped, and is served whenever moto's
    // threads reach it after the resume, possibly between any two reads below. So each read may see either
    // state, and only what both states share is asserted: a holder, if any, is the failed run, and the
    // re-run takes the lock at once (taking it over from that run, or finding it free).
    let lock = local.lock();
    if let Some(info) = lock.status(&env).await.unwrap() {
        assert_eq!(info.holder, first.execution_arn);
        assert!(matches!(
            EngineStatus(local.engine.clone()).state(&info.holder).await,
            ExecutionState::NotRunning { .. }
        ));
    }
    local.register_functions(opsplane_fn_backup::Deps::new(config.clone(), &clients));
    let second = local
        .run("backup", json!({ "environment": env }))
        .await
        .unwrap();
    assert_eq!(second.status, Status::Succeeded, "{:?}", second.cause);
    let took_over = local
        .engine
        .history(&second.execution_arn)
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "TaskSucceeded")
        .find_map(|e| {
            e.details["output"]["Payload"]
                .get("took_over_from")
                .cloned()
        })
        .expect("the acquire's output");
    assert!(
        took_over.is_null() || took_over["holder"] == json!(first.execution_arn),
        "the re-run found the lock free or took it over from the failed run: {took_over}"
    );
    assert!(
        lock.status(&env).await.unwrap().is_none(),
        "nothing left held"
    );
}

/// The local engine's view of whether an execution still runs.
struct EngineStatus(Engine);

impl EngineStatus {
    async fn state(&self, arn: &str) -> ExecutionState {
        opsplane_local::EngineExecutions(self.0.clone())
            .state(arn)
            .await
    }
}
