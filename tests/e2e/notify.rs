//! Outcome events: the definitions' `Notify*` states publish to EventBridge on moto, which delivers them
//! through a rule on `source: opsplane` to an SQS queue the test reads.

use std::collections::BTreeMap;

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_shared::notify::{
    DETAIL_TYPE_APPROVAL, DETAIL_TYPE_OUTCOME, Outcome, OutcomeResult, SOURCE, console_url,
};
use opsplane_statemachines::Status;
use serde_json::{Value, json};

use crate::backup::Plane;
use crate::harness::World;
use crate::health::a_change_that_breaks_health;
use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

/// The dispatch function's addition to every input it starts.
fn github() -> Value {
    json!({ "repository": "acme/infra", "run_id": 42, "actor": "jane", "ref": "refs/heads/main" })
}

/// A rule on the default bus, targeting a queue; tests share moto's bus, so each rule matches its own test.
pub(crate) struct Subscription {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    rule: String,
    queue_url: String,
}

impl Subscription {
    /// Every event about one environment.
    pub(crate) async fn for_environment(world: &World, env: &str) -> Self {
        Self::for_environments(world, &[env]).await
    }

    /// One queue (per world) for the outcome events of every environment in `envs`.
    pub(crate) async fn for_environments(world: &World, envs: &[&str]) -> Self {
        Self::new(
            world,
            json!({ "source": [SOURCE], "detail": { "environment": envs } }),
        )
        .await
    }

    async fn new(world: &World, pattern: Value) -> Self {
        let sdk = opsplane_shared::aws::load_sdk_config(&world.config).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let events = world.clients.events.clone();
        let queue_url = sqs
            .create_queue()
            .queue_name(world.name("outcomes"))
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .unwrap()
            .to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .expect("queue arn");
        let rule = world.name("outcomes");
        events
            .put_rule()
            .name(&rule)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put rule");
        events
            .put_targets()
            .rule(&rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put targets");
        Self {
            events,
            sqs,
            rule,
            queue_url,
        }
    }

    /// Every event delivered since the last call, by execution ARN, in the order published.
    pub(crate) async fn received(&self) -> BTreeMap<String, Vec<Value>> {
        let mut all: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            if out.messages().is_empty() {
                return all;
            }
            for m in out.messages() {
                let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let arn = event["detail"]["execution_arn"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                all.entry(arn).or_default().push(event);
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .expect("delete message");
            }
        }
    }

    pub(crate) async fn remove(self) {
        self.events
            .remove_targets()
            .rule(&self.rule)
            .ids("queue")
            .send()
            .await
            .expect("remove targets");
        self.events
            .delete_rule()
            .name(&self.rule)
            .send()
            .await
            .expect("delete rule");
    }
}

/// The one event an execution published (and no other).
pub(crate) fn only(events: &BTreeMap<String, Vec<Value>>, execution: &str) -> Value {
    match events.get(execution).map(Vec::as_slice) {
        Some([event]) => event.clone(),
        other => panic!("{execution}: one event expected, got {other:#?}"),
    }
}

fn approval(event: &Value) -> Outcome {
    assert_eq!(event["source"], SOURCE);
    assert_eq!(event["detail-type"], DETAIL_TYPE_APPROVAL);
    serde_json::from_value(event["detail"].clone()).expect("the documented detail schema")
}

pub(crate) fn outcome(event: &Value) -> Outcome {
    assert_eq!(event["source"], SOURCE);
    assert_eq!(event["detail-type"], DETAIL_TYPE_OUTCOME);
    serde_json::from_value(event["detail"].clone()).expect("the documented detail schema")
}

#[tokio::test]
async fn backups_and_drills_publish_their_outcome_with_the_documented_detail() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    let sub = Subscription::for_environment(&plane.world, &plane.env).await;

    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    // The drill restores within minutes, but its fixture's RTO target is tighter.
    let drill = plane
        .engine
        .run(&plane.drill, json!({ "environment": plane.env }))
        .await
        .unwrap();
    assert_eq!(drill.error.as_deref(), Some("TargetMissed"));
    let refused = plane
        .engine
        .run(
            &plane.backup,
            json!({ "environment": plane.env, "extra": 1 }),
        )
        .await
        .unwrap();
    assert_eq!(refused.error.as_deref(), Some("InvalidInput"));

    let events = sub.received().await;
    assert_eq!(events.len(), 3, "{events:#?}");

    let event = &only(&events, &backup.execution_arn);
    let resources: Vec<&str> = event["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        resources.contains(&backup.execution_arn.as_str()),
        "{resources:?}"
    );
    assert!(resources.contains(&plane.backup.as_str()), "{resources:?}");
    let ok = outcome(event);
    assert_eq!(ok.version, "1");
    assert_eq!(ok.workflow, "backup");
    assert_eq!(ok.environment.as_deref(), Some(plane.env.as_str()));
    assert_eq!(ok.result, OutcomeResult::Succeeded);
    assert_eq!((ok.error, ok.cause), (None, None));
    assert_eq!(ok.console_url, console_url(&backup.execution_arn));
    assert!(ok.summary.contains("1 RDS snapshot(s)"), "{}", ok.summary);
    assert!(ok.summary.contains("manifest backups/"), "{}", ok.summary);
    // Step Functions writes times to the millisecond.
    assert_eq!(
        ok.started_at.timestamp_millis(),
        backup.start_date.timestamp_millis()
    );
    assert!(ok.finished_at >= ok.started_at && ok.finished_at <= backup.stop_date.unwrap());

    let missed = outcome(&only(&events, &drill.execution_arn));
    assert_eq!(missed.workflow, "dr-drill");
    assert_eq!(missed.result, OutcomeResult::TargetMissed);
    assert_eq!(missed.error.as_deref(), Some("TargetMissed"));
    assert_eq!(missed.cause, drill.cause);
    assert!(
        missed.summary.contains("missed a target"),
        "{}",
        missed.summary
    );
    assert!(
        missed.summary.contains("report reports/drills/"),
        "{}",
        missed.summary
    );

    let failed = outcome(&only(&events, &refused.execution_arn));
    assert_eq!(failed.workflow, "backup");
    assert_eq!(failed.result, OutcomeResult::Failed);
    assert_eq!(failed.error.as_deref(), Some("InvalidInput"));
    assert_eq!(failed.cause, refused.cause);
    assert!(failed.cause.unwrap().contains("`extra`"));

    sub.remove().await;
}

#[tokio::test]
async fn a_publish_that_fails_never_masks_the_outcome() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    // EventBridge refuses every entry: the bus does not exist.
    plane
        .engine
        .register_handler(opsplane_local::plane::PUT_EVENTS, {
            let events = plane.world.clients.events.clone();
            move |mut parameters: Value, ctx| {
                let events = events.clone();
                async move {
                    parameters["Entries"][0]["EventBusName"] = json!("no-such-bus");
                    opsplane_shared::aws::events::put_events_integration(
                        &events,
                        &parameters,
                        &ctx.execution_arn,
                    )
                    .await
                    .map_err(|e| {
                        opsplane_statemachines::FunctionError::new(e.error_name(), e.to_string())
                    })
                }
            }
        });
    let ok = plane.run_backup().await;
    assert_eq!(ok.status, Status::Succeeded, "{:?}", ok.cause);
    assert!(ok.output.unwrap()["manifest"]["manifest_key"].is_string());
    let refused = plane
        .engine
        .run(
            &plane.backup,
            json!({ "environment": plane.env, "extra": 1 }),
        )
        .await
        .unwrap();
    assert_eq!(refused.error.as_deref(), Some("InvalidInput"));
    // The publish was tried, retried, and failed each time.
    let history = plane.engine.history(&ok.execution_arn).unwrap();
    let failures: Vec<&str> = history
        .iter()
        .filter(|e| e.event_type == "TaskFailed")
        .filter_map(|e| e.details["error"].as_str())
        .filter(|e| *e != "NotReady")
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_provision_publishes_approval_waiting_before_it_waits_and_failed_when_rejected() {
    let stage = Stage::new().await;
    stage
        .upload(&stage.example("prod", &healthy_endpoint().await))
        .await;
    let sub = Subscription::for_environment(&stage.world, &stage.env).await;

    // Started as the dispatch function starts it, with its `github` object.
    let run = stage
        .local
        .start_workflow(
            "provision",
            json!({ "environment": stage.env, "github": github() }),
        )
        .unwrap();
    stage.pending_approval(&run).await;
    // Published before the wait began: a person can be told while the execution waits.
    let waiting = sub.received().await;
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    let asked = approval(&only(&waiting, &run));
    assert_eq!(asked.workflow, "provision");
    assert_eq!(asked.environment.as_deref(), Some(stage.env.as_str()));
    assert_eq!(asked.result, OutcomeResult::ApprovalWaiting);
    assert_eq!((asked.error, asked.cause), (None, None));
    assert!(
        asked
            .summary
            .contains(&format!("opsplane approve|reject {run}")),
        "{}",
        asked.summary
    );

    stage
        .local
        .reject(&run, "sam", Some("not during the sale"))
        .await
        .expect("reject");
    let rejected = stage.local.engine.wait_for(&run).await.unwrap();
    assert_eq!(rejected.error.as_deref(), Some("ApprovalRejected"));
    let events = sub.received().await;
    let failed = outcome(&only(&events, &run));
    assert_eq!(failed.workflow, "provision");
    assert_eq!(failed.result, OutcomeResult::Failed);
    assert_eq!(failed.error.as_deref(), Some("ApprovalRejected"));
    assert_eq!(failed.cause, rejected.cause);
    assert!(stage.lock_is_free().await);
    sub.remove().await;
}

#[tokio::test]
async fn a_provision_whose_health_check_fails_publishes_rolled_back() {
    let stage = Stage::new().await;
    let sub = Subscription::for_environment(&stage.world, &stage.env).await;
    let (run, _good) = a_change_that_breaks_health(&stage).await;
    assert_eq!(run.error.as_deref(), Some("HealthCheckFailed"));

    let events = sub.received().await;
    assert_eq!(
        events.len(),
        2,
        "the first provision's and the change's: {events:#?}"
    );
    let created = events
        .iter()
        .find(|(arn, _)| **arn != run.execution_arn)
        .map(|(_, e)| outcome(&e[0]))
        .unwrap();
    assert_eq!(created.result, OutcomeResult::Succeeded);
    assert!(
        created.summary.starts_with("Provisioned "),
        "{}",
        created.summary
    );
    let reverted = outcome(&only(&events, &run.execution_arn));
    assert_eq!(reverted.workflow, "provision");
    assert_eq!(reverted.environment.as_deref(), Some(stage.env.as_str()));
    assert_eq!(reverted.result, OutcomeResult::RolledBack);
    assert_eq!(reverted.error.as_deref(), Some("HealthCheckFailed"));
    assert_eq!(reverted.cause, run.cause);
    assert!(
        reverted
            .summary
            .contains("rolled back to the last known good"),
        "{}",
        reverted.summary
    );
    assert!(stage.lock_is_free().await);
    sub.remove().await;
}

#[tokio::test]
async fn a_rollback_publishes_rolled_back() {
    let stage = Stage::new().await;
    let db = format!("{}-db", stage.env);
    let good = stage
        .upload(&stage.example("dev", &healthy_endpoint().await))
        .await;
    assert_succeeded(&stage.provision().await);
    stage.set_class_behind_our_back(&db, "db.t4g.small").await;
    let sub = Subscription::for_environment(&stage.world, &stage.env).await;

    let run = stage
        .run(
            "rollback",
            json!({ "environment": stage.env, "reason": "bad change", "github": github() }),
        )
        .await;
    assert_succeeded(&run);
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.micro"
    );
    let events = sub.received().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let rolled = outcome(&only(&events, &run.execution_arn));
    assert_eq!(rolled.workflow, "rollback");
    assert_eq!(rolled.environment.as_deref(), Some(stage.env.as_str()));
    assert_eq!(rolled.result, OutcomeResult::RolledBack);
    assert_eq!((rolled.error, rolled.cause), (None, None));
    assert!(rolled.summary.contains(&good), "{}", rolled.summary);
    assert!(stage.lock_is_free().await);
    sub.remove().await;
}

#[tokio::test]
async fn sweeps_publish_their_outcome_and_accept_the_dispatch_input() {
    let stage = Stage::new().await;
    stage
        .upload(&stage.example("dev", &healthy_endpoint().await))
        .await;
    assert_succeeded(&stage.provision().await);
    // Sweeps name no environment; other tests' sweeps reach this queue too and are told apart by ARN.
    let sub = Subscription::new(
        &stage.world,
        json!({ "source": [SOURCE], "detail": { "workflow": ["health-sweep", "drift"] } }),
    )
    .await;

    let input = json!({ "environments": [stage.env], "github": github() });
    let health = stage.run("health-sweep", input.clone()).await;
    assert_succeeded(&health);
    let drift = stage.run("drift", input).await;
    assert_succeeded(&drift);
    let refused = stage
        .run(
            "drift",
            json!({ "environments": [stage.env], "github": "acme/infra" }),
        )
        .await;
    assert_eq!(refused.error.as_deref(), Some("InvalidInput"));

    let events = sub.received().await;
    let checked = outcome(&only(&events, &health.execution_arn));
    assert_eq!(checked.workflow, "health-sweep");
    assert_eq!(checked.environment, None);
    assert_eq!(checked.result, OutcomeResult::Succeeded);
    assert_eq!(
        checked.summary,
        "Checked 1 environment(s): 1 healthy, 0 not; every verdict recorded."
    );
    let drifted = outcome(&only(&events, &drift.execution_arn));
    assert_eq!(drifted.workflow, "drift");
    assert_eq!(drifted.result, OutcomeResult::Succeeded);
    assert!(
        drifted
            .summary
            .starts_with("Checked 1 environment(s) for drift: 0 drifted, 0 could not"),
        "{}",
        drifted.summary
    );
    let failed = outcome(&only(&events, &refused.execution_arn));
    assert_eq!(failed.result, OutcomeResult::Failed);
    assert_eq!(failed.error.as_deref(), Some("InvalidInput"));
    assert!(failed.cause.unwrap().contains("github"));
    sub.remove().await;
}

#[tokio::test]
async fn an_outcome_is_published_though_another_rule_on_it_targets_a_state_machine() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    let sub = Subscription::for_environment(&plane.world, &plane.env).await;
    // A second rule on the same events, whose target the local world cannot invoke (as the template's rules
    // on outcomes are): on AWS, PutEvents accepts the event and each target is delivered on its own.
    let events = &plane.world.clients.events;
    let rule = plane.world.name("to-a-machine");
    events
        .put_rule()
        .name(&rule)
        .event_pattern(
            json!({ "source": [SOURCE], "detail": { "environment": [plane.env] } }).to_string(),
        )
        .send()
        .await
        .expect("put rule");
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("machine")
                .arn(format!(
                    "arn:aws:states:us-east-1:123456789012:stateMachine:{rule}"
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put targets");

    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let published = outcome(&only(&sub.received().await, &run.execution_arn));
    assert_eq!(published.result, OutcomeResult::Succeeded);
    let counters = plane.local.world.counters().await.expect("world counters");
    assert_eq!(counters["undelivered.states"], 1, "{counters}");
    // Published at the first try: no retry of the Notify state.
    let history = plane.engine.history(&run.execution_arn).unwrap();
    assert!(
        history
            .iter()
            .filter(|e| e.event_type == "TaskFailed")
            .all(|e| e.details["error"] == "NotReady"),
        "{history:#?}"
    );

    events
        .remove_targets()
        .rule(&rule)
        .ids("machine")
        .send()
        .await
        .expect("remove targets");
    events
        .delete_rule()
        .name(&rule)
        .send()
        .await
        .expect("delete rule");
    sub.remove().await;
}
