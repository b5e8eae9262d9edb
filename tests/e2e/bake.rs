//! A deployment's bake: after its health check it watches the environment's alarms for the spec's
//! `rollback.bake_minutes` (virtual time), and becomes the last known good only when the bake ends quietly.

use std::sync::Arc;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use opsplane_shared::state::DeploymentStatus;
use opsplane_statemachines::Status;

use crate::harness::SetsAlarmAfter;
use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

/// Creates the environment's API alarm, in `OK`.
pub async fn api_alarm(stage: &Stage) -> String {
    let name = format!("{}-api-5xx", stage.env);
    stage
        .local
        .clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("put the alarm");
    name
}

#[tokio::test]
async fn a_deployment_whose_bake_sees_no_alarm_becomes_the_last_known_good() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let spec = stage.example("staging", &url);
    assert!(spec.contains("bake_minutes: 10"));
    api_alarm(&stage).await;
    let version = stage.upload(&spec).await;
    let run = stage.provision().await;
    assert_succeeded(&run);

    // Ten minutes of polls, a minute apart, none of which found an alarm.
    let polls = crate::harness::not_ready_by_state(&stage.local.engine, &run.execution_arn);
    assert!(polls.get("Bake").is_some_and(|n| *n >= 9), "{polls:?}");
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.last_known_good.unwrap().spec_version, version);
    assert_eq!(meta.known_good.len(), 1);
    assert_eq!(
        meta.known_good[0].spec_sha256.as_deref(),
        Some(opsplane_shared::aws::objects::sha256_hex(spec.as_bytes()).as_str())
    );
    let deployments = stage.deployments().await;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].status, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn an_alarm_ten_minutes_into_the_bake_rolls_back_to_the_previous_last_known_good() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let db = format!("{}-db", stage.env);
    let v1 = stage.example("staging", &url);
    let good = stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);
    let alarm = api_alarm(&stage).await;

    // A larger class ships, is healthy, and starts its bake; ten minutes in, the API alarm fires.
    let bad = stage
        .upload(&v1.replace(
            "instance_class: db.t4g.medium",
            "instance_class: db.t4g.large",
        ))
        .await;
    let fires = SetsAlarmAfter {
        config: stage.local.config.clone(),
        name: alarm,
        operation: "DescribeAlarms",
        state: StateValue::Alarm,
        after: chrono::Duration::minutes(10),
        when: Arc::default(),
    };
    let clients = stage.local.clients.clone().with_interceptor(fires.clone());
    stage.local.register(stage.local.provision_deps(&clients));
    let run = stage.provision().await;

    assert!(fires.when.reached().is_some(), "the alarm never fired");
    assert_eq!(run.status, Status::Failed, "{:?}", run.cause);
    let cause = run.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("AlarmDuringBake") || run.error.as_deref() == Some("AlarmDuringBake"),
        "{:?} {cause}",
        run.error
    );
    // Back on the previous last known good; the baked change never became one.
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.medium"
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.last_known_good.unwrap().spec_version, good);
    assert!(meta.known_good.iter().all(|k| k.spec_version != bad));
    assert_eq!(meta.in_force.unwrap().spec_version, good);
    let latest = &stage.deployments().await[0];
    assert_eq!(latest.spec_version, bad);
    assert_eq!(latest.status, DeploymentStatus::RolledBack);
    assert!(
        latest
            .error
            .as_deref()
            .is_some_and(|e| e.contains("AlarmDuringBake")),
        "{:?}",
        latest.error
    );
    assert!(stage.lock_is_free().await);
}
