//! Idempotent actions against moto: a retried task does its side effect once, a concurrent duplicate is
//! refused, a reused key with another payload is refused, a failed action may run again, and an abandoned
//! claim expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use opsplane_shared::ErrorName;
use opsplane_shared::OpsError;
use opsplane_shared::clock::ManualClock;
use opsplane_shared::idempotency::{Idempotency, IdempotencyKey, TaskContext};
use opsplane_shared::state::{BackupRecord, BackupStatus, StateStore};
use serde_json::{Value, json};

use crate::harness::World;
use crate::locks::bootstrapped;

fn key(world: &World, state: &str) -> IdempotencyKey {
    IdempotencyKey::for_task(&TaskContext {
        execution: format!(
            "arn:aws:states:us-east-1:123456789012:execution:backup:{}",
            world.name("run")
        ),
        state: state.into(),
        map_index: None,
    })
    .unwrap()
}

/// The side effect under test: writes one backup record with a fresh id, as a backup handler would.
async fn make_backup(store: &StateStore, env: &str) -> Result<Value, OpsError> {
    let id = uuid_like();
    let record = BackupRecord {
        environment: env.into(),
        id: id.clone(),
        created_at: Utc::now(),
        snapshot_ids: vec![format!("snap-{id}")],
        manifest_key: None,
        manifest_sha256: None,
        status: BackupStatus::InProgress,
        execution: None,
    };
    store.put(&record, 1).await?;
    Ok(json!({ "backup_id": id }))
}

fn uuid_like() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or(0),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

#[tokio::test]
async fn a_retried_action_does_its_side_effect_once() {
    let world = bootstrapped().await;
    let store = StateStore::from_config(&world.config, &world.clients);
    let idem = Idempotency::new(&store);
    let key = key(&world, "Snapshot");
    let payload = json!({"environment": "prod", "targets": ["rds"]});

    let first = idem
        .run_once(&key, &payload, Some(Duration::from_secs(60)), || {
            make_backup(&store, "prod")
        })
        .await
        .unwrap();
    let retry = idem
        .run_once(&key, &payload, Some(Duration::from_secs(60)), || {
            make_backup(&store, "prod")
        })
        .await
        .unwrap();
    assert_eq!(retry, first, "the retry returns the stored result");
    let made = store.latest::<BackupRecord>("prod", 10).await.unwrap();
    assert_eq!(made.len(), 1, "one backup record, not two");
    assert_eq!(json!(made[0].id), first["backup_id"]);

    // Another state of the same execution is another key: it runs.
    idem.run_once(&self::key(&world, "SnapshotAgain"), &payload, None, || {
        make_backup(&store, "prod")
    })
    .await
    .unwrap();
    assert_eq!(
        store
            .latest::<BackupRecord>("prod", 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_concurrent_duplicate_is_refused_and_a_reused_key_is_caught() {
    let world = bootstrapped().await;
    let store = StateStore::from_config(&world.config, &world.clients);
    let idem = Idempotency::new(&store);
    let key = key(&world, "Apply");
    let payload = json!({"environment": "prod"});
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();

    let first = {
        let (idem, key, payload) = (idem.clone(), key.clone(), payload.clone());
        tokio::spawn(async move {
            idem.run_once(&key, &payload, None, || async move {
                started_tx.send(()).unwrap();
                finish_rx.await.unwrap();
                Ok(json!({"applied": true}))
            })
            .await
        })
    };
    started_rx.await.unwrap();
    let runs = AtomicUsize::new(0);
    let dup = idem
        .run_once(&key, &payload, None, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(json!({}))
        })
        .await
        .unwrap_err();
    assert_eq!(dup.name(), ErrorName::AlreadyInProgress);
    let reused = idem
        .run_once(&key, &json!({"environment": "staging"}), None, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(json!({}))
        })
        .await
        .unwrap_err();
    assert_eq!(reused.name(), ErrorName::IdempotencyKeyReused);
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    finish_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), json!({"applied": true}));
    // After completion, the other payload is still refused and the same payload gets the result.
    let reused = idem
        .run_once(&key, &json!({"x": 1}), None, || async { Ok(json!({})) })
        .await
        .unwrap_err();
    assert_eq!(reused.name(), ErrorName::IdempotencyKeyReused);
    let again = idem
        .run_once(&key, &payload, None, || async {
            Ok(json!({"applied": "twice"}))
        })
        .await
        .unwrap();
    assert_eq!(again, json!({"applied": true}));
}

#[tokio::test]
async fn a_failed_action_runs_again_and_an_abandoned_claim_expires() {
    let world = bootstrapped().await;
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let store = StateStore::from_config(&world.config, &world.clients).with_clock(clock.clone());
    let idem = Idempotency::new(&store).with_action_timeout(Duration::from_secs(300));
    let payload = json!({"environment": "prod"});

    let failing = key(&world, "Verify");
    let err = idem
        .run_once(&failing, &payload, None, || async {
            Err(OpsError::NotReady("restoring".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.name(),
        ErrorName::NotReady,
        "the action's own error passes through"
    );
    let ok = idem
        .run_once(&failing, &payload, None, || async { Ok(json!(1)) })
        .await
        .unwrap();
    assert_eq!(ok, json!(1));

    // A claim whose handler died (simulated: the action never returns before the clock moves) blocks a
    // duplicate only until max(action timeout, remaining time).
    let abandoned = key(&world, "Teardown");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let stuck = {
        let (idem, key, payload) = (idem.clone(), abandoned.clone(), payload.clone());
        tokio::spawn(async move {
            idem.run_once(
                &key,
                &payload,
                Some(Duration::from_secs(600)),
                || async move {
                    started_tx.send(()).unwrap();
                    std::future::pending::<()>().await;
                    Ok(json!(null))
                },
            )
            .await
        })
    };
    started_rx.await.unwrap();
    clock.advance(Duration::from_secs(599));
    let refused = idem
        .run_once(&abandoned, &payload, None, || async { Ok(json!("early")) })
        .await
        .unwrap_err();
    assert_eq!(
        refused.name(),
        ErrorName::AlreadyInProgress,
        "the remaining time (600 s) outranks the 300 s timeout"
    );
    clock.advance(Duration::from_secs(2));
    let taken = idem
        .run_once(&abandoned, &payload, None, || async {
            Ok(json!("retried"))
        })
        .await
        .unwrap();
    assert_eq!(taken, json!("retried"));
    stuck.abort();
}
