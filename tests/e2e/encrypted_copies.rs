//! Copies of encrypted snapshots to a second region: refused before any snapshot without a key of that
//! region; with one, encrypted with it there, and pruned there by the same retention as at home.

use std::sync::Arc;

use chrono::Utc;
use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_shared::clock::{Clock, ManualClock};
use opsplane_statemachines::Status;
use serde_json::{Value, json};

use crate::backup::{Plane, assert_fails_naming, deps};

const COPY_REGION: &str = "us-west-2";

/// The ids of a run's snapshots deleted by retention in `region`.
fn deleted_in(run: &Value, region: &str) -> Vec<String> {
    let regions = run["retention"]["regions"].as_array().unwrap();
    let outcome = regions
        .iter()
        .find(|r| r["region"] == region)
        .unwrap_or_else(|| panic!("retention in {region}: {regions:?}"));
    let mut ids: Vec<String> = outcome["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_encrypted_source_copied_without_a_key_of_the_copy_region_is_refused_before_any_snapshot()
 {
    let plane = Plane::new("encrypted-copies.yaml", ProbeSettings::default()).await;
    let without_key = std::fs::read_to_string(
        crate::harness::root().join("tests/fixtures/specs/encrypted-copies.yaml"),
    )
    .unwrap()
    .replace("{env}", &plane.env)
    .replace(
        &format!(", copy_kms_key_id: \"alias/{}-backups\"", plane.env),
        "",
    );
    plane.local.upload_spec(&without_key).await.unwrap();

    let run = plane.run_backup().await;
    assert_fails_naming(
        &run,
        "backup.copy_kms_key_id",
        &json!({ "environment": plane.env }),
    );
    let cause = run.cause.unwrap_or_default();
    assert!(
        cause.contains("is encrypted") && cause.contains(COPY_REGION),
        "{cause}"
    );
    let instance = format!("{}-db", plane.env);
    assert!(plane.snapshots(None, &instance).await.is_empty());
    assert!(
        plane
            .snapshots(Some(COPY_REGION), &instance)
            .await
            .is_empty()
    );
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn copies_are_encrypted_with_the_copy_regions_key_and_pruned_there() {
    let plane = Plane::new("encrypted-copies.yaml", ProbeSettings::default()).await;
    let instance = format!("{}-db", plane.env);
    let key = plane
        .local
        .world
        .account_key(COPY_REGION, &format!("{}-backups", plane.env))
        .await
        .unwrap();
    let mut copies = Vec::new();
    for _ in 0..2 {
        let run = plane.run_backup().await;
        assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
        let copy = run.output.as_ref().unwrap()["taken"]["snapshots"][0]["copy"]["snapshot_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let described = plane
            .rds_in(Some(COPY_REGION))
            .describe_db_snapshots()
            .db_snapshot_identifier(&copy)
            .send()
            .await
            .unwrap();
        let snapshot = &described.db_snapshots()[0];
        assert_eq!(snapshot.kms_key_id(), Some(key.as_str()), "{copy}");
        copies.push(copy);
        // Distinct creation times, so "newest" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A year later both are expired; keep_last=1 keeps only the newest backup, here and there.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(Utc::now() + chrono::Duration::days(365)));
    plane.reregister(deps(&plane.local, ProbeSettings::default()).with_clock(later));
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    copies.sort();
    assert_eq!(
        deleted_in(run.output.as_ref().unwrap(), COPY_REGION),
        copies
    );
    let left = plane.snapshots(Some(COPY_REGION), &instance).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!copies.iter().any(|c| left.contains_key(c)));
    assert!(plane.lock_is_free().await);
}
