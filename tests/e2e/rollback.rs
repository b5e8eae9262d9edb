//! Alarm-driven rollback on the local engine: a CloudWatch alarm for staging stops the staging provision
//! waiting at approval and rolls staging back to its last known good; five copies of the event start one
//! rollback.

use opsplane_shared::notify::OutcomeResult;
use opsplane_shared::state::{ApprovalStatus, DeploymentStatus};
use opsplane_statemachines::Status;
use serde_json::Value;

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
        .upload(
            &v1.replace(
                "approval: { required: false }",
                "approval: { required: true }",
            )
            .replace(
                "instance_class: db.t4g.medium",
                "instance_class: db.t4g.large",
            ),
        )
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
    let runs: Vec<String> = (0..5)
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
