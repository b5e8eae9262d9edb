//! The state store against moto: typed records, newest-first queries by environment and time range,
//! pagination, the fence on every environment write, last known good, and the audit log.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use opsplane_shared::clock::{Clock, ManualClock};
use opsplane_shared::state::{
    AuditEvent, BackupRecord, BackupStatus, DeploymentRecord, DeploymentStatus, DrillRecord,
    DrillVerdict, LastKnownGood, PageRequest, StateError, StateStore, TimeRange,
};
use serde_json::json;

use crate::locks::bootstrapped;

fn backup(env: &str, id: &str, minute: u32) -> BackupRecord {
    BackupRecord {
        environment: env.into(),
        id: id.into(),
        created_at: Utc.with_ymd_and_hms(2026, 5, 1, 10, minute, 0).unwrap(),
        snapshot_ids: vec![format!("{env}-{id}-rds"), format!("{env}-{id}-rds-2")],
        manifest_key: Some(format!("backups/{env}/{id}/manifest.json")),
        manifest_sha256: Some("ab".repeat(32)),
        status: BackupStatus::Completed,
        execution: Some("arn:aws:states:us-east-1:1:execution:backup:x".into()),
    }
}

#[tokio::test]
async fn records_come_back_typed_newest_first_paged_and_by_time_range() {
    let world = bootstrapped().await;
    let store = StateStore::from_config(&world.config, &world.clients);
    for (i, minute) in [5u32, 1, 9, 3, 7].into_iter().enumerate() {
        store
            .put(&backup("prod", &format!("b{i}"), minute), 1)
            .await
            .unwrap();
    }
    store.put(&backup("staging", "other", 8), 1).await.unwrap();

    let latest: Vec<BackupRecord> = store.latest("prod", 3).await.unwrap();
    let minutes: Vec<u32> = latest
        .iter()
        .map(|b| chrono::Timelike::minute(&b.created_at))
        .collect();
    assert_eq!(minutes, [9, 7, 5]);
    assert_eq!(
        latest[0],
        backup("prod", "b2", 9),
        "every field round-trips"
    );

    // Two items per page: 5 records are 3 pages, in order, nothing repeated or lost.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = store
            .list::<BackupRecord>("prod", TimeRange::all(), page.clone())
            .await
            .unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(
            got.items
                .into_iter()
                .map(|b| chrono::Timelike::minute(&b.created_at)),
        );
        match got.next {
            Some(cursor) => {
                page = PageRequest {
                    limit: Some(2),
                    cursor: Some(cursor),
                }
            }
            None => break,
        }
    }
    assert_eq!(seen, [9, 7, 5, 3, 1]);

    let range = TimeRange {
        from: Some(Utc.with_ymd_and_hms(2026, 5, 1, 10, 3, 0).unwrap()),
        to: Some(Utc.with_ymd_and_hms(2026, 5, 1, 10, 7, 0).unwrap()),
    };
    let within = store
        .list::<BackupRecord>("prod", range, PageRequest::default())
        .await
        .unwrap();
    let minutes: Vec<u32> = within
        .items
        .iter()
        .map(|b| chrono::Timelike::minute(&b.created_at))
        .collect();
    assert_eq!(minutes, [7, 5, 3], "both ends inclusive");

    // Kinds do not mix: drills and deployments of prod are separate queries.
    let drill = DrillRecord {
        environment: "prod".into(),
        id: "d1".into(),
        started_at: Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 0).unwrap(),
        finished_at: Some(Utc.with_ymd_and_hms(2026, 5, 2, 0, 20, 0).unwrap()),
        instance: Some("prod-db".into()),
        snapshot_id: Some("prod-b2-rds".into()),
        rto_seconds: Some(1200),
        rpo_seconds: Some(240),
        rto_target_seconds: 1800,
        rpo_target_seconds: 300,
        verdict: DrillVerdict::Met,
        report_key: Some("reports/drill/prod/x.json".into()),
    };
    store.put(&drill, 1).await.unwrap();
    let deploy = DeploymentRecord {
        environment: "prod".into(),
        id: "run-1".into(),
        started_at: Utc.with_ymd_and_hms(2026, 5, 3, 0, 0, 0).unwrap(),
        finished_at: None,
        status: DeploymentStatus::InProgress,
        spec_version: "v7".into(),
        plan: json!({"changes": [{"resource": "rds", "field": "allocated_storage_gb", "from": 100, "to": 200}]}),
        execution: "arn:aws:states:us-east-1:1:execution:provision:run-1".into(),
        actor: "github:acme/infra".into(),
        error: None,
    };
    store.put(&deploy, 1).await.unwrap();
    assert_eq!(
        store.latest::<DrillRecord>("prod", 10).await.unwrap(),
        vec![drill]
    );
    assert_eq!(
        store.latest::<DeploymentRecord>("prod", 10).await.unwrap(),
        vec![deploy]
    );
    assert_eq!(
        store
            .latest::<BackupRecord>("prod", 10)
            .await
            .unwrap()
            .len(),
        5
    );
    assert!(
        store
            .latest::<DrillRecord>("staging", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_write_with_an_older_token_changes_nothing() {
    let world = bootstrapped().await;
    let store = StateStore::from_config(&world.config, &world.clients);
    store.put(&backup("prod", "new", 1), 5).await.unwrap();
    let lkg = LastKnownGood {
        deployment_id: "run-5".into(),
        spec_version: "v5".into(),
        recorded_at: Utc::now(),
        spec_sha256: None,
    };
    store.set_last_known_good("prod", &lkg, 5).await.unwrap();

    let err = store.put(&backup("prod", "stale", 2), 4).await.unwrap_err();
    assert!(
        matches!(err, StateError::Fenced { token: 4, ref reason, .. } if reason.contains('5')),
        "{err:?}"
    );
    let stale_lkg = LastKnownGood {
        deployment_id: "run-4".into(),
        ..lkg.clone()
    };
    assert!(matches!(
        store.set_last_known_good("prod", &stale_lkg, 4).await,
        Err(StateError::Fenced { .. })
    ));
    let meta = store.meta("prod").await.unwrap();
    assert_eq!(meta.fence, 5);
    assert_eq!(meta.last_known_good, Some(lkg));
    let ids: Vec<String> = store
        .latest::<BackupRecord>("prod", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["new"]);
    // An equal token is the same holder writing again; a newer one raises the fence.
    store.put(&backup("prod", "same", 3), 5).await.unwrap();
    store.put(&backup("prod", "newer", 4), 6).await.unwrap();
    assert_eq!(store.meta("prod").await.unwrap().fence, 6);
    // Fences are per environment.
    store.put(&backup("dev", "first", 1), 1).await.unwrap();
}

#[tokio::test]
async fn audit_events_are_kept_per_day_newest_first() {
    let world = bootstrapped().await;
    let clock = Arc::new(ManualClock::at(
        Utc.with_ymd_and_hms(2026, 7, 1, 23, 59, 0).unwrap(),
    ));
    let store = StateStore::from_config(&world.config, &world.clients).with_clock(clock.clone());
    let event = |action: &str, env: &str| {
        AuditEvent::new(
            clock.now(),
            "alice@ops",
            action,
            Some(env.to_owned()),
            "ok",
            json!({"n": action}),
        )
    };
    store.append_audit(&event("first", "prod")).await.unwrap();
    clock.advance(Duration::from_secs(30));
    store.append_audit(&event("second", "dev")).await.unwrap();
    clock.advance(Duration::from_secs(60)); // the next day
    store.append_audit(&event("third", "prod")).await.unwrap();

    let day1 = Utc
        .with_ymd_and_hms(2026, 7, 1, 0, 0, 0)
        .unwrap()
        .date_naive();
    let all = store
        .audit_events(day1, None, PageRequest::default())
        .await
        .unwrap();
    let actions: Vec<_> = all.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["second", "first"]);
    let prod = store
        .audit_events(day1, Some("prod"), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(prod.items.len(), 1);
    assert_eq!(prod.items[0].details, json!({"n": "first"}));
    let today: Vec<_> = store
        .audit_today(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(today, ["third"]);
}
