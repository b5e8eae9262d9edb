//! Health checks on the local engine: a change whose health check fails is reverted to the last known good;
//! the sweep checks and records every environment.

use std::sync::Arc;

use opsplane_shared::aws::rds::Rds;
use opsplane_shared::state::{DeploymentStatus, HealthRecord};
use opsplane_statemachines::{Description, Status};
use serde_json::json;

use crate::provision::{Stage, assert_succeeded, healthy_endpoint, serve_health};

/// Provisions the dev example, then a change of instance class that breaks the service's `/health` once it
/// lands. Returns the failed run and the last known good spec version.
pub async fn a_change_that_breaks_health(stage: &Stage) -> (Description, String) {
    let db = format!("{}-db", stage.env);
    // The service breaks once the new instance class lands: /health asks moto on every request.
    let rds = Rds::new(stage.world.clients.rds.clone());
    let watched = db.clone();
    let url = serve_health(Arc::new(move || {
        let rds = rds.clone();
        let db = watched.clone();
        Box::pin(async move {
            match rds.actual(&db).await {
                Ok(Some(i)) if i.instance_class == "db.t4g.small" => 500,
                _ => 200,
            }
        })
    }))
    .await;
    let v1 = stage.example("dev", &url);
    let good = stage.upload(&v1).await;
    assert_succeeded(&stage.provision().await);

    stage
        .upload(&v1.replace(
            "instance_class: db.t4g.micro",
            "instance_class: db.t4g.small",
        ))
        .await;
    (stage.provision().await, good)
}

#[tokio::test]
async fn a_change_that_fails_its_health_check_is_reverted_to_the_last_known_good() {
    let stage = Stage::new().await;
    let db = format!("{}-db", stage.env);
    let (run, good) = a_change_that_breaks_health(&stage).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("HealthCheckFailed"),
        "{:?}",
        run.cause
    );
    assert!(run.cause.unwrap().contains("answered 500"));
    // Each poll met the world's statuses: the pre-change snapshot `creating`, the instance `modifying` on
    // the way to the change and again on the way back.
    let polls = crate::harness::not_ready_by_state(&stage.local.engine, &run.execution_arn);
    for state in ["WaitSnapshots", "WaitStable", "WaitReverted"] {
        assert!(polls.contains_key(state), "{state}: {polls:?}");
    }

    // Back on the last known good, recorded as rolled back, the lock released.
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.micro"
    );
    let deployments = stage.deployments().await;
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0].status, DeploymentStatus::RolledBack);
    assert!(
        deployments[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("HealthCheckFailed")
    );
    let meta = stage.store().meta(&stage.env).await.unwrap();
    assert_eq!(meta.last_known_good.unwrap().spec_version, good);
    assert_eq!(meta.in_force.unwrap().spec_version, good);
    assert!(stage.lock_is_free().await);
    // The failed check was recorded with its reason.
    let checks: Vec<HealthRecord> = stage.store().latest(&stage.env, 10).await.unwrap();
    assert_eq!(checks[0].verdict, "unhealthy");
    assert!(checks[0].reasons.to_string().contains("answered 500"));
}

#[tokio::test]
async fn the_sweep_checks_and_records_every_environment_and_never_fails_for_one() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    stage.upload(&stage.example("dev", &url)).await;
    assert_succeeded(&stage.provision().await);
    let healthy_env = stage.env.clone();

    // A second environment whose instance was never created: unhealthy, yet the sweep succeeds.
    let broken = Stage::new_sharing(&stage).await;
    broken.upload(&broken.example("dev", &url)).await;

    let run = stage.run("health-sweep", json!({})).await;
    assert_succeeded(&run);
    let results = run.output.as_ref().unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    let verdict = |env: &str| {
        results
            .iter()
            .find(|r| r["environment"] == env)
            .map(|r| r["verdict"].clone())
    };
    assert_eq!(verdict(&healthy_env), Some(json!("healthy")), "{results:?}");
    assert_eq!(
        verdict(&broken.env),
        Some(json!("unhealthy")),
        "{results:?}"
    );
    // The deployment's own check, then the sweep's.
    let recorded: Vec<HealthRecord> = stage.store().latest(&healthy_env, 10).await.unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].verdict, "healthy");
    assert_eq!(
        recorded[0].execution.as_deref(),
        Some(run.execution_arn.as_str())
    );
    let recorded: Vec<HealthRecord> = stage.store().latest(&broken.env, 10).await.unwrap();
    assert_eq!(recorded[0].verdict, "unhealthy");
    assert!(recorded[0].reasons.to_string().contains("does not exist"));
}
