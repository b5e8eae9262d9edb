//! Outcome events: the definitions' `Notify*` states publish to EventBridge on moto, which delivers them
//! through a rule on `source: opsplane` to an SQS queue the test reads.

use std::collections::BTreeMap;

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_shared::notify::{DETAIL_TYPE_OUTCOME, Outcome, OutcomeResult, SOURCE, console_url};
use opsplane_statemachines::Status;
use serde_json::{Value, json};

use crate::backup::Plane;

/// A rule on the default bus for this test's environment only (tests share moto's bus), targeting a queue.
struct Subscription {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    rule: String,
    queue_url: String,
}

impl Subscription {
    async fn new(plane: &Plane) -> Self {
        let sdk = opsplane_shared::aws::load_sdk_config(&plane.world.config).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let events = plane.world.clients.events.clone();
        let queue_url = sqs
            .create_queue()
            .queue_name(plane.world.name("outcomes"))
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
        let rule = plane.world.name("outcomes");
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

    /// Every event delivered so far, by execution ARN.
    async fn received(&self) -> BTreeMap<String, Value> {
        let mut all = BTreeMap::new();
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
                assert!(all.insert(arn, event).is_none(), "one event per execution");
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

    async fn remove(self) {
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

fn outcome(event: &Value) -> Outcome {
    assert_eq!(event["source"], SOURCE);
    assert_eq!(event["detail-type"], DETAIL_TYPE_OUTCOME);
    serde_json::from_value(event["detail"].clone()).expect("the documented detail schema")
}

#[tokio::test]
async fn backups_and_drills_publish_their_outcome_with_the_documented_detail() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    let sub = Subscription::new(&plane).await;

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

    let event = &events[&backup.execution_arn];
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

    let missed = outcome(&events[&drill.execution_arn]);
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

    let failed = outcome(&events[&refused.execution_arn]);
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
        .register_handler(opsplane_cli::plane::PUT_EVENTS, {
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
    let history = plane
        .engine
        .get_execution_history(&ok.execution_arn)
        .unwrap();
    let failures: Vec<&str> = history
        .iter()
        .filter(|e| e.event_type == "TaskFailed")
        .filter_map(|e| e.details["error"].as_str())
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(plane.lock_is_free().await);
}
