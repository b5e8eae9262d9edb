//! Alarm-driven rollback on the local engine: a CloudWatch alarm for staging stops the staging provision
//! waiting at approval and rolls staging back to its last known good; five copies of the event start one
//! rollback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_cloudwatch::types::StateValue;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use opsplane_shared::notify::OutcomeResult;
use opsplane_shared::state::{ApprovalStatus, DeploymentStatus};
use opsplane_statemachines::Status;
use serde_json::{Value, json};

use crate::harness::root;
use crate::notify::{Subscription, only, outcome};
use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

#[tokio::test]
async fn an_alarm_stops_the_running_provision_and_five_copies_roll_back_once() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = stage.example("staging", &url);
    let good = stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.medium"
    );

    // A change that needs approval is in flight, holding the lock...
    stage
        .upload(&Stage::staging_resize_needing_approval(&v1))
        .await;
    let inflight = stage
        .local
        .start_workflow("provision", serde_json::json!({ "environment": stage.env }))
        .unwrap();
    stage.pending_approval(&inflight).await;
    // ...and the database has been resized by hand during the incident.
    stage.set_class_behind_our_back(&db, "db.t4g.xlarge").await;

    let sub = Subscription::for_environment(&stage.world, &stage.env).await;

    // The alarm fires; EventBridge delivers the event five times.
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/events/alarm-staging.json"))
            .unwrap()
            .replace("{env}", &stage.env),
    )
    .unwrap();
    let done = deliver(&stage, &event, 5).await;
    for d in &done {
        assert_succeeded(d);
    }
    let owners: Vec<&Value> = done
        .iter()
        .map(|d| &d.output.as_ref().unwrap()["claim"]["duplicate"])
        .collect();
    assert_eq!(
        owners.iter().filter(|o| **o == &Value::Bool(false)).count(),
        1,
        "exactly one execution rolls back: {owners:?}"
    );
    let owner = done
        .iter()
        .find(|d| d.output.as_ref().unwrap()["claim"]["duplicate"] == false)
        .unwrap();
    // The stopped provision was still reported running right after the stop (DescribeExecution is
    // eventually consistent), and the revert met a `modifying` instance before it was back on its last
    // known good.
    let polls = crate::harness::not_ready_by_state(&stage.local.engine, &owner.execution_arn);
    assert!(
        polls.contains_key("StopInflight") && polls.contains_key("WaitReverted"),
        "{polls:?}"
    );
    let out = owner.output.as_ref().unwrap();
    assert_eq!(out["inflight"]["stopped"], inflight.as_str());
    assert_eq!(
        out["rollback"]["actor"],
        format!("alarm:{}-api-5xx", stage.env)
    );

    // The in-flight provision was stopped before it changed anything; its approval is closed.
    let stopped = stage.local.engine.describe_execution(&inflight).unwrap();
    assert_eq!(stopped.status, Status::Aborted);
    let approval = stage.store().approval(&inflight).await.unwrap().unwrap();
    assert_eq!(approval.status, ApprovalStatus::Closed);

    // Staging is back on its last known good, and exactly one rollback was recorded.
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.medium"
    );
    let rolled_back: Vec<_> = stage
        .deployments()
        .await
        .into_iter()
        .filter(|d| d.status == DeploymentStatus::RolledBack)
        .collect();
    assert_eq!(rolled_back.len(), 1);
    assert_eq!(rolled_back[0].execution, owner.execution_arn);
    assert_eq!(rolled_back[0].spec_version, good);
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.in_force.unwrap().spec_version, good);
    assert!(stage.lock_is_free().await);

    // One event per copy: the owner's `rolled_back`, the others' `succeeded` having done nothing; the
    // stopped provision publishes nothing.
    let events = sub.received().await;
    assert_eq!(events.len(), 5, "{events:#?}");
    for d in &done {
        let event = outcome(&only(&events, &d.execution_arn));
        assert_eq!(event.workflow, "rollback");
        assert_eq!(event.environment.as_deref(), Some(stage.env.as_str()));
        if d.execution_arn == owner.execution_arn {
            assert_eq!(event.result, OutcomeResult::RolledBack);
            assert!(event.summary.contains(&good), "{}", event.summary);
        } else {
            assert_eq!(event.result, OutcomeResult::Succeeded);
            assert!(
                event.summary.starts_with("Nothing done")
                    && event.summary.contains("already rolled back by"),
                "{}",
                event.summary
            );
        }
    }
    sub.remove().await;
}

/// An HTTP client that holds one operation's requests until released: a call still being made when its
/// execution is stopped.
#[derive(Debug, Clone)]
struct Held {
    inner: SharedHttpClient,
    action: &'static str,
    gate: Arc<Gate>,
}

/// Where a held call stands.
#[derive(Debug, Default)]
struct Gate {
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
    /// Sent to AWS after its release.
    sent: AtomicBool,
    /// Ended (its invocation ended) before it was released.
    ended: AtomicBool,
}

/// Marks the gate's call ended unless it was sent.
struct Ending(Arc<Gate>);

impl Drop for Ending {
    fn drop(&mut self) {
        if !self.0.sent.load(Ordering::SeqCst) {
            self.0.ended.store(true, Ordering::SeqCst);
        }
    }
}

impl HttpClient for Held {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(HeldConnector {
            inner: self.inner.http_connector(settings, components),
            action: self.action,
            gate: self.gate.clone(),
        })
    }
}

#[derive(Debug)]
struct HeldConnector {
    inner: SharedHttpConnector,
    action: &'static str,
    gate: Arc<Gate>,
}

impl HttpConnector for HeldConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // RDS speaks the query protocol: the action is in the form body.
        let action = format!("Action={}&", self.action);
        let held = request
            .body()
            .bytes()
            .is_some_and(|b| b.starts_with(action.as_bytes()));
        if !held {
            return self.inner.call(request);
        }
        let (inner, gate) = (self.inner.clone(), self.gate.clone());
        HttpConnectorFuture::new(async move {
            let _ending = Ending(gate.clone());
            gate.reached.notify_one();
            gate.release.notified().await;
            gate.sent.store(true, Ordering::SeqCst);
            inner.call(request).await
        })
    }
}

/// Staging on db.t4g.medium, and a deployment to db.t4g.large started whose `ModifyDBInstance` is held on its
/// way to RDS: the stage, the spec version deployed first, the running deployment and the held call's gate.
async fn deployment_mid_apply() -> (Stage, String, String, Arc<Gate>) {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let v1 = stage.example("staging", &url);
    let good = stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    stage
        .upload(&v1.replace(
            "instance_class: db.t4g.medium",
            "instance_class: db.t4g.large",
        ))
        .await;
    let gate = Arc::new(Gate::default());
    let rds = &stage.local.clients.rds;
    let held = Held {
        // moto is plain HTTP on loopback.
        inner: aws_smithy_http_client::Builder::new().build_http(),
        action: "ModifyDBInstance",
        gate: gate.clone(),
    };
    let mut clients = stage.local.clients.clone();
    clients.rds =
        aws_sdk_rds::Client::from_conf(rds.config().to_builder().http_client(held).build());
    stage.local.register(stage.local.provision_deps(&clients));
    let deployment = stage
        .local
        .start_workflow("provision", json!({ "environment": stage.env }))
        .unwrap();
    gate.reached.notified().await;
    (stage, good, deployment, gate)
}

#[tokio::test]
async fn a_rollback_waits_until_the_stopped_deployments_running_call_has_ended() {
    // The deployment's resize is on its way to RDS when the rollback stops the deployment.
    let (stage, good, deployment, gate) = deployment_mid_apply().await;
    let db = format!("{}-db", stage.env);
    let rollback = stage
        .local
        .start_workflow(
            "rollback",
            json!({ "environment": stage.env, "reason": "5xx after the resize" }),
        )
        .unwrap();
    let done = stage.local.engine.wait_for(&rollback).await.unwrap();
    assert_succeeded(&done);
    assert_eq!(
        done.output.as_ref().unwrap()["inflight"]["stopped"],
        deployment.as_str()
    );
    // Only now may the held call go on, if its invocation still runs.
    gate.release.notify_one();
    while !gate.sent.load(Ordering::SeqCst) && !gate.ended.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Staging is on its last known good: the resize never reached RDS after the revert.
    let (class, pending) = stage.class_and_pending(&db).await;
    assert_eq!(class.as_deref(), Some("db.t4g.medium"));
    assert_eq!(pending, None);
    // The rollback waited for the deployment's Apply (its Task's timeout, the longest Lambda lets the call
    // run), by which time the call had ended without reaching RDS; the revert came after it.
    let waits: Vec<String> = stage
        .local
        .engine
        .history(&rollback)
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "TaskFailed" && e.details["error"] == "NotReady")
        .map(|e| e.details["cause"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        waits
            .iter()
            .any(|w| w.contains("task Apply may still be calling AWS")),
        "the rollback took over while Apply could still be running: {waits:?}"
    );
    assert!(gate.ended.load(Ordering::SeqCst) && !gate.sent.load(Ordering::SeqCst));
    let stopped = stage.local.engine.describe_execution(&deployment).unwrap();
    assert_eq!(stopped.status, Status::Aborted);
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.in_force.unwrap().spec_version, good);
    assert!(stage.lock_is_free().await);
}

/// The staging alarm event, its state changed to ALARM at `at`.
fn alarm_at(env: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/events/alarm-staging.json"))
            .unwrap()
            .replace("{env}", env),
    )
    .unwrap();
    event["detail"]["state"]["timestamp"] =
        json!(at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
    event
}

/// Starts `copies` executions of the rollback workflow for `event` and waits for them all.
async fn deliver(
    stage: &Stage,
    event: &Value,
    copies: usize,
) -> Vec<opsplane_statemachines::Description> {
    let runs: Vec<String> = (0..copies)
        .map(|_| {
            stage
                .local
                .start_workflow("rollback", event.clone())
                .unwrap()
        })
        .collect();
    let mut done = Vec::new();
    for r in &runs {
        done.push(stage.local.engine.wait_for(r).await.unwrap());
    }
    done
}

/// Staging deployed twice (db.t4g.medium, then db.t4g.large), both baked and known good: the stage, the
/// database, the two spec versions, and when the second deployment finished.
async fn staging_deployed_twice() -> (Stage, String, String, String, chrono::DateTime<chrono::Utc>)
{
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = stage.example("staging", &url);
    let first = stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    let second = stage
        .upload(&v1.replace(
            "instance_class: db.t4g.medium",
            "instance_class: db.t4g.large",
        ))
        .await;
    assert_succeeded(&stage.provision().await);
    let finished = stage.deployments().await[0].finished_at.unwrap();
    (stage, db, first, second, finished)
}

#[tokio::test]
async fn an_alarm_two_days_after_the_latest_deployment_rolls_nothing_back_and_asks_a_person() {
    let (stage, db, _, v2, finished) = staging_deployed_twice().await;
    let sub = Subscription::for_environment(&stage.world, &stage.env).await;

    let event = alarm_at(&stage.env, finished + chrono::Duration::days(2));
    let done = deliver(&stage, &event, 5).await;
    for d in &done {
        assert_succeeded(d);
    }

    // Nothing rolled back: the class is v2's, v2 is still the last known good, no rollback recorded.
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.large"
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.last_known_good.unwrap().spec_version, v2);
    assert!(
        stage
            .deployments()
            .await
            .iter()
            .all(|d| d.status != DeploymentStatus::RolledBack)
    );
    // One event asks a person, naming the latest deployment; the four copies did nothing.
    let events = sub.received().await;
    assert_eq!(events.len(), 5, "{events:#?}");
    let asks: Vec<_> = done
        .iter()
        .map(|d| outcome(&only(&events, &d.execution_arn)))
        .filter(|e| e.result == OutcomeResult::AlarmWithoutRecentChange)
        .collect();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].error.as_deref(), Some("AlarmWithoutRecentChange"));
    assert!(asks[0].summary.contains(&v2), "{}", asks[0].summary);
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn an_alarm_within_the_window_after_a_promoted_deployment_goes_back_to_the_one_before() {
    let (stage, db, good, bad, finished) = staging_deployed_twice().await;
    assert_eq!(
        stage
            .store()
            .meta(&stage.env)
            .await
            .unwrap()
            .last_known_good
            .unwrap()
            .spec_version,
        bad
    );

    // Thirty minutes after the bake ended (inside the 60-minute window), the API alarm fires.
    let event = alarm_at(&stage.env, finished + chrono::Duration::minutes(30));
    let done = deliver(&stage, &event, 3).await;
    for d in &done {
        assert_succeeded(d);
    }
    let owner = done
        .iter()
        .find(|d| d.output.as_ref().unwrap()["claim"]["duplicate"] == false)
        .unwrap();
    let out = owner.output.as_ref().unwrap();
    assert_eq!(out["rollback"]["spec_version"], good.as_str());
    assert_eq!(out["rollback"]["blamed"]["spec_version"], bad.as_str());

    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.medium"
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.last_known_good.unwrap().spec_version, good);
    assert_eq!(meta.in_force.unwrap().spec_version, good);
    assert!(meta.known_good.iter().all(|k| k.spec_version != bad));
    let rolled_back: Vec<_> = stage
        .deployments()
        .await
        .into_iter()
        .filter(|d| d.status == DeploymentStatus::RolledBack)
        .collect();
    assert_eq!(rolled_back.len(), 1);
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_rollback_to_an_older_known_good_version_restores_it_through_the_workflow_audited() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = stage.example("staging", &url);
    let first = stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    for class in ["db.t4g.large", "db.t4g.xlarge"] {
        stage
            .upload(&v1.replace(
                "instance_class: db.t4g.medium",
                &format!("instance_class: {class}"),
            ))
            .await;
        assert_succeeded(&stage.provision().await);
    }
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.known_good.len(), 3);

    // What `opsplane rollback --env <env> --to <first> --reason ...` starts.
    let target = opsplane_cli::run::RollbackTarget::Version(first.clone());
    let input =
        opsplane_cli::run::rollback_input(&stage.env, &target, "the first class was enough")
            .unwrap();
    let run = stage.local.start_workflow("rollback", input).unwrap();
    let done = stage.local.engine.wait_for(&run).await.unwrap();
    assert_succeeded(&done);

    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.medium"
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.in_force.unwrap().spec_version, first);
    assert_eq!(meta.last_known_good.unwrap().spec_version, first);
    let day = serde_json::from_value::<chrono::DateTime<chrono::Utc>>(
        done.output.as_ref().unwrap()["rollback"]["started_at"].clone(),
    )
    .unwrap()
    .date_naive();
    let audited: Vec<_> = stage
        .store()
        .audit_day(day, Some(&stage.env))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "rollback.requested")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].details["to"], first.as_str());
    assert_eq!(audited[0].execution.as_deref(), Some(run.as_str()));

    // A version that is not known good is refused, naming the field, and changes nothing.
    let target = opsplane_cli::run::RollbackTarget::Version("no-such-version".into());
    let input = opsplane_cli::run::rollback_input(&stage.env, &target, "typo").unwrap();
    let refused = stage
        .local
        .engine
        .wait_for(&stage.local.start_workflow("rollback", input).unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status, Status::Failed);
    assert!(
        refused
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("to") && c.contains("known-good")),
        "{:?}",
        refused.cause
    );
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_suppressed_composite_alarm_and_a_configuration_change_roll_nothing_back() {
    let (stage, db, _, latest, finished) = staging_deployed_twice().await;
    let fixture = |file: &str| -> Value {
        let mut event: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("tests/fixtures/events").join(file))
                .unwrap()
                .replace("{env}", &stage.env),
        )
        .unwrap();
        // Five minutes after the latest deployment: a plain alarm would roll it back.
        event["detail"]["state"]["timestamp"] = json!(
            (finished + chrono::Duration::minutes(5))
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
        );
        event
    };

    // CloudWatch holds the composite alarm's actions back: so does opsplane.
    let suppressed = deliver(
        &stage,
        &fixture("alarm-state-change-composite-suppressed.json"),
        1,
    )
    .await;
    assert_succeeded(&suppressed[0]);
    let out = suppressed[0].output.as_ref().unwrap();
    assert_eq!(out["rollback"]["decision"], "nothing_to_do");
    assert!(
        out["rollback"]["finding"]
            .as_str()
            .is_some_and(|f| f.contains("WaitPeriod")),
        "{out}"
    );

    // A configuration change is refused for what it is, naming its detail-type.
    let changed = deliver(&stage, &fixture("alarm-configuration-change.json"), 1).await;
    assert_eq!(changed[0].status, Status::Failed);
    assert!(
        changed[0]
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("detail-type") && c.contains("Configuration Change")),
        "{:?}",
        changed[0].cause
    );

    // Nothing rolled back.
    assert_nothing_rolled_back(&stage, &db, &latest).await;
}

#[tokio::test]
async fn a_lock_whose_stopped_holder_may_still_be_calling_aws_is_taken_over_only_after_that_call_ended()
 {
    let (stage, _, deployment, gate) = deployment_mid_apply().await;

    // A person stops the deployment by hand while its Apply is on its way to RDS.
    stage
        .local
        .engine
        .stop_execution(&deployment, Some("Stopped".into()), None)
        .unwrap();
    stage.local.engine.wait_for(&deployment).await.unwrap();
    let backup = |clock: Arc<dyn opsplane_shared::clock::Clock>| {
        let store = stage.store().with_clock(clock);
        opsplane_shared::lock::with_store(
            &stage.local.config,
            &stage.local.clients,
            store,
            stage.local.executions(),
        )
    };
    let request = opsplane_shared::lock::AcquireRequest {
        environment: stage.env.clone(),
        holder: "arn:aws:states:us-east-1:123456789012:execution:backup:after-the-stop".into(),
        operation: "backup".into(),
        lease: std::time::Duration::from_secs(3600),
    };
    let scheduled = stage
        .local
        .engine
        .history(&deployment)
        .unwrap()
        .iter()
        .rev()
        .find(|e| e.event_type == "TaskScheduled")
        .map(|e| e.timestamp)
        .unwrap();
    let at = |secs: i64| -> Arc<dyn opsplane_shared::clock::Clock> {
        Arc::new(opsplane_shared::clock::ManualClock::at(
            scheduled + chrono::Duration::seconds(secs),
        ))
    };
    // Until Apply's 330 s have passed its call may still land: the lock stays with the stopped holder.
    let refused = backup(at(60)).acquire(&request).await.unwrap_err();
    assert!(
        matches!(refused, opsplane_shared::lock::LockError::Held { ref holder, .. } if *holder == deployment),
        "{refused:?}"
    );
    let granted = backup(at(331)).acquire(&request).await.expect("taken over");
    assert_eq!(granted.took_over_from.unwrap().holder, deployment);
    gate.release.notify_one();
}

/// Sets alarm `name` to `state` now.
async fn set_alarm(stage: &Stage, name: &str, state: StateValue) {
    stage
        .local
        .clients
        .cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("Threshold Crossed: set by the test")
        .send()
        .await
        .expect("set the alarm's state");
}

/// Mutes alarm `name` with a one-time alarm mute rule (planned maintenance) from the start of the engine's
/// current virtual minute for two hours; returns when the window ends.
async fn mute_for_two_hours(stage: &Stage, name: &str) -> chrono::DateTime<chrono::Utc> {
    use aws_sdk_cloudwatch::types::{MuteTargets, Rule, Schedule};
    use chrono::Timelike;
    let opens = stage
        .local
        .engine
        .now()
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    stage
        .local
        .clients
        .cloudwatch
        .put_alarm_mute_rule()
        .name(format!("{name}-maintenance"))
        .rule(
            Rule::builder()
                .schedule(
                    Schedule::builder()
                        .expression(format!("at({})", opens.format("%Y-%m-%dT%H:%M")))
                        .duration("PT2H")
                        .build(),
                )
                .build(),
        )
        .mute_targets(MuteTargets::builder().alarm_names(name).build())
        .send()
        .await
        .expect("put the mute rule");
    opens + chrono::Duration::hours(2)
}

/// The virtual time `execution` entered state `name`, if it did.
fn entered(stage: &Stage, execution: &str, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    stage
        .local
        .engine
        .history(execution)
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "TaskStateEntered" && e.details["name"] == name)
        .map(|e| e.timestamp)
}

#[tokio::test]
async fn a_muted_alarm_still_in_alarm_when_its_mute_window_ends_rolls_back_once_then() {
    let (stage, db, first, _, finished) = staging_deployed_twice().await;
    let alarm = crate::bake::api_alarm(&stage).await;
    set_alarm(&stage, &alarm, StateValue::Alarm).await;
    let ends = mute_for_two_hours(&stage, &alarm).await;

    // Five minutes after the latest deployment: unmuted, it would roll back at once. Delivered twice.
    let done = deliver(
        &stage,
        &alarm_at(&stage.env, finished + chrono::Duration::minutes(5)),
        2,
    )
    .await;
    for d in &done {
        assert_succeeded(d);
    }
    let owner: Vec<_> = done
        .iter()
        .filter(|d| d.output.as_ref().unwrap()["claim"]["duplicate"] == false)
        .collect();
    assert_eq!(owner.len(), 1, "exactly one execution acts");
    let owner = owner[0];
    let out = owner.output.as_ref().unwrap();
    assert_eq!(out["rollback"]["decision"], "roll_back", "{out}");

    // Nothing was done while the alarm was muted: the first resolve saw the rule, the re-check was asked
    // until the window ended, and the revert started after it.
    let first_look = &stage.local.engine.history(&owner.execution_arn).unwrap();
    let muted = first_look
        .iter()
        .find(|e| e.event_type == "TaskStateExited" && e.details["name"] == "Resolve")
        .map(|e| e.details["output"].to_string())
        .unwrap_or_default();
    assert!(
        muted.contains("await_mute") && muted.contains("maintenance"),
        "{muted}"
    );
    let polls = crate::harness::not_ready_by_state(&stage.local.engine, &owner.execution_arn);
    assert!(
        polls.get("AwaitMuteEnd").is_some_and(|n| *n >= 20),
        "{polls:?}"
    );
    let reverted = entered(&stage, &owner.execution_arn, "Revert").expect("a revert");
    assert!(
        reverted >= ends,
        "reverted at {reverted}, mute ends at {ends}"
    );

    // Then back on the known-good version before the blamed deployment, once.
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.medium"
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.in_force.unwrap().spec_version, first);
    let rolled_back = stage
        .deployments()
        .await
        .into_iter()
        .filter(|d| d.status == DeploymentStatus::RolledBack)
        .count();
    assert_eq!(rolled_back, 1);
    assert!(stage.lock_is_free().await);
}

#[tokio::test]
async fn a_muted_alarm_that_recovers_before_its_mute_window_ends_rolls_nothing_back() {
    let (stage, db, _, latest, finished) = staging_deployed_twice().await;
    let alarm = crate::bake::api_alarm(&stage).await;
    set_alarm(&stage, &alarm, StateValue::Alarm).await;
    let ends = mute_for_two_hours(&stage, &alarm).await;
    // An hour into the maintenance window the alarm is back to OK.
    let recovers = crate::harness::SetsAlarmAfter {
        config: stage.local.config.clone(),
        name: alarm.clone(),
        operation: "ListAlarmMuteRules",
        state: StateValue::Ok,
        after: chrono::Duration::hours(1),
        when: Arc::default(),
    };
    let clients = stage
        .local
        .clients
        .clone()
        .with_interceptor(recovers.clone());
    stage.local.register(stage.local.rollback_deps(&clients));

    let done = deliver(
        &stage,
        &alarm_at(&stage.env, finished + chrono::Duration::minutes(5)),
        1,
    )
    .await;
    assert!(
        recovers.when.reached().is_some(),
        "the alarm never recovered"
    );
    assert_succeeded(&done[0]);
    let out = done[0].output.as_ref().unwrap();
    assert_eq!(out["rollback"]["decision"], "nothing_to_do", "{out}");
    assert!(
        out["rollback"]["finding"]
            .as_str()
            .is_some_and(|f| f.contains("left ALARM while muted")),
        "{out}"
    );
    // It looked again only once the window had ended, and nothing was rolled back.
    let decided = stage
        .local
        .engine
        .history(&done[0].execution_arn)
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "TaskStateExited" && e.details["name"] == "AwaitMuteEnd")
        .map(|e| e.timestamp)
        .expect("the re-check ended");
    assert!(decided >= ends, "decided at {decided}, mute ends at {ends}");
    assert_nothing_rolled_back(&stage, &db, &latest).await;
}

/// Staging still runs its latest deployment (`db.t4g.large`, spec version `latest`), and its lock is free.
async fn assert_nothing_rolled_back(stage: &Stage, db: &str, latest: &str) {
    assert_eq!(
        stage.instance(db).await.unwrap().instance_class,
        "db.t4g.large"
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.in_force.unwrap().spec_version, latest);
    assert!(stage.lock_is_free().await);
}
