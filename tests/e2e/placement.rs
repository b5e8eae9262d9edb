//! Drills restore where the source lives: beside the source instance (its DB subnet group and security
//! groups, read when the drill starts), or where the spec's `drill.placement` says when the source cannot
//! be read; without either the drill refuses before restoring anything.

use opsplane_shared::aws::rds::{Network, Rds};
use opsplane_shared::aws::specs::SpecStore;
use opsplane_statemachines::{Description, Status};
use serde_json::json;

use crate::backup::{Plane, assert_fails_naming};
use crate::drill::{drill_instances, report_of, run_drill, run_drill_ok, to_postgres};
use crate::harness::root;
use crate::postgres::execute;

/// A plane whose one instance (`<env>-db`) was backed up, its canary written two minutes before.
async fn backed_up() -> Plane {
    let plane = Plane::new("drill.yaml", to_postgres()).await;
    let table = format!("canary-{}", plane.env);
    execute(&format!(
        "CREATE TABLE \"{table}\" (written_at timestamptz NOT NULL); \
         INSERT INTO \"{table}\" VALUES (now() - interval '2 minutes');"
    ))
    .await;
    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    plane
}

/// The source instance's network, then the source deleted (a day ago on the world's clock, so it is gone
/// by now): its snapshots stay.
async fn delete_source(plane: &Plane) -> Network {
    let rds = Rds::new(plane.local.clients.rds.clone());
    let source = format!("{}-db", plane.env);
    let network = rds.instance(&source).await.unwrap().unwrap().network;
    opsplane_local::world::at(
        plane.engine.now() - chrono::Duration::days(1),
        rds.delete_instance(&source),
    )
    .await
    .unwrap();
    assert_eq!(rds.instance(&source).await.unwrap(), None, "gone by now");
    network
}

/// A new version of the spec placing the drill in `subnet_group` behind `security_group`.
async fn place(plane: &Plane, subnet_group: &str, security_group: &str) {
    let secret = plane
        .spec
        .drill
        .as_ref()
        .and_then(|d| d.probe.as_ref())
        .and_then(|p| p.secret_arn.clone())
        .expect("drill.yaml names a probe secret");
    let text = std::fs::read_to_string(root().join("tests/fixtures/specs/drill-placed.yaml"))
        .unwrap()
        .replace("{env}", &plane.env)
        .replace("{probe_secret}", &secret)
        .replace("{subnet_group}", subnet_group)
        .replace("{security_group}", security_group);
    SpecStore::new(
        plane.local.clients.s3.clone(),
        plane.world.config.bucket_name.clone(),
    )
    .put(&text)
    .await
    .expect("spec stored");
}

/// The names of the states `run` entered, in order.
fn entered(plane: &Plane, run: &Description) -> Vec<String> {
    plane
        .engine
        .history(&run.execution_arn)
        .unwrap()
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .filter_map(|e| e.details["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_drill_whose_source_is_gone_and_names_no_placement_fails_before_restoring() {
    let plane = backed_up().await;
    delete_source(&plane).await;
    let input = json!({ "environment": plane.env });
    let run = run_drill(&plane, input.clone()).await;
    assert_fails_naming(&run, "drill.placement", &input);
    let cause = run.cause.clone().unwrap_or_default();
    assert!(cause.contains("cannot be read"), "{cause}");
    assert!(
        !entered(&plane, &run).iter().any(|s| s == "Restore"),
        "nothing restored"
    );
    assert!(drill_instances(&plane).await.is_empty());
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_drill_whose_source_is_gone_restores_where_its_placement_says_and_its_probe_passes() {
    let plane = backed_up().await;
    let network = delete_source(&plane).await;
    place(
        &plane,
        network.subnet_group.as_deref().unwrap(),
        &network.security_group_ids[0],
    )
    .await;
    let run = run_drill_ok(&plane, json!({ "environment": plane.env })).await;
    let checks = &run.output.as_ref().unwrap()["verify"]["checks"];
    let probe = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sql-probe")
        .expect("the SQL probe ran");
    assert_eq!(probe["passed"], json!(true), "{probe}");
    assert!(drill_instances(&plane).await.is_empty(), "torn down");
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn a_drill_placed_behind_a_group_that_shuts_the_probe_out_fails_its_probe_and_tears_down() {
    let plane = backed_up().await;
    let rds = Rds::new(plane.local.clients.rds.clone());
    let source = rds
        .instance(&format!("{}-db", plane.env))
        .await
        .unwrap()
        .unwrap();
    let closed = plane
        .local
        .world
        .closed_security_group(&plane.local.config.region, &format!("{}-closed", plane.env))
        .await
        .unwrap();
    place(
        &plane,
        source.network.subnet_group.as_deref().unwrap(),
        &closed,
    )
    .await;
    let run = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("RestoreFailed"),
        "{:?}",
        run.cause
    );
    // The probe timed out behind the closed group: the report's failed check says so.
    let (report, _) = report_of(&plane, "").await;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.detail.as_str())
        .collect();
    assert!(
        failed
            .iter()
            .any(|d| d.contains("sql-probe: could not connect") && d.contains(&closed)),
        "{failed:?}"
    );
    assert!(report.torn_down);
    let states = entered(&plane, &run);
    for s in ["Restore", "Verify", "Teardown", "Report"] {
        assert!(states.iter().any(|e| e == s), "{s} in {states:?}");
    }
    assert!(drill_instances(&plane).await.is_empty(), "torn down");
    assert!(plane.lock_is_free().await);
}
