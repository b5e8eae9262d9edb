//! The operator CLI's library functions end to end: `run --local` on the plane with its progress line,
//! `watch` over the local engine's history, `history` against moto's table.

use std::time::Duration;

use chrono::Utc;
use opsplane_cli::history::history;
use opsplane_cli::run::{local, run_on_plane, workflow_input};
use opsplane_cli::watch::{LOCAL_FIRST_INTERVAL, follow};
use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_shared::lock::AcquireRequest;
use opsplane_shared::notify::console_url;
use opsplane_shared::state::{DeploymentRecord, DeploymentStatus};
use serde_json::json;

use crate::backup::Plane;
use crate::harness::root;

#[tokio::test]
async fn run_on_the_plane_shows_progress_and_reports_the_outcome() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    let mut progress = Vec::new();
    let input = workflow_input(&plane.env, None).unwrap();
    let ok = run_on_plane(&plane.local, "backup", input, &mut progress)
        .await
        .unwrap();
    assert!(ok.succeeded(), "{}", ok.summary);
    assert!(ok.summary["output"]["manifest"]["manifest_key"].is_string());
    let text = String::from_utf8(progress).unwrap();
    assert!(
        text.starts_with(&format!("started {}", ok.execution_arn)),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("[SUCCEEDED]"), "{text}");
    assert!(last.contains("state BackupSucceeded"), "{text}");

    let mut progress = Vec::new();
    let refused = run_on_plane(
        &plane.local,
        "backup",
        json!({"environment": plane.env, "extra": 1}),
        &mut progress,
    )
    .await
    .unwrap();
    assert!(!refused.succeeded());
    assert_eq!(refused.summary["error"], "InvalidInput");
    let text = String::from_utf8(progress).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("[FAILED]")
            && last.contains("state ValidationFailed  (3 states, 0 retries)  InvalidInput: ")
            && last.contains("field `extra`"),
        "{text}"
    );
}

#[tokio::test]
async fn run_local_starts_its_own_world_and_runs_the_demo_environment() {
    let mut progress = Vec::new();
    let outcome = local(&root(), "backup", "staging", None, None, &mut progress)
        .await
        .unwrap();
    assert!(outcome.succeeded(), "{}", outcome.summary);
    assert_eq!(outcome.summary["output"]["plan"]["environment"], "staging");
    let err = local(
        &root(),
        "backup",
        "staging",
        None,
        Some(json!({"environment": "prod"})),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--env is \"staging\""), "{err}");
}

#[tokio::test]
async fn watch_follows_a_drill_on_the_engine_to_its_failure() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    assert!(plane.run_backup().await.status == opsplane_statemachines::Status::Succeeded);
    let arn = plane
        .engine
        .start_execution(&plane.drill, None, json!({ "environment": plane.env }))
        .unwrap();
    let mut out = Vec::new();
    let p = follow(
        &opsplane_local::EngineExecutions(plane.engine.clone()),
        LOCAL_FIRST_INTERVAL,
        &arn,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(p.status, "FAILED");
    assert!(!p.succeeded());
    assert_eq!(p.current_state.as_deref(), Some("TargetMissed"));
    assert_eq!(p.error.as_ref().map(|e| e.0.as_str()), Some("TargetMissed"));
    // The virtual clock: the drill waits 300 s before its first restore poll.
    assert!(p.elapsed.num_seconds() >= 300, "{:?}", p.elapsed);
    let history = plane.engine.history(&arn).unwrap();
    let entered = history
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .count();
    assert_eq!(p.states_entered, entered);
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().count() >= 2, "one line per change: {text}");
    assert!(
        text.lines().last().unwrap().starts_with("[FAILED]"),
        "{text}"
    );
}

#[tokio::test]
async fn history_lists_deployments_backups_and_drills_newest_first_with_links() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    let backup = plane.run_backup().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let drill = plane
        .engine
        .run(&plane.drill, json!({ "environment": plane.env }))
        .await
        .unwrap();
    assert_eq!(drill.error.as_deref(), Some("TargetMissed"));

    // A deployment, written as the provision workflow writes one: under the lock, fenced by its token.
    let holder = "arn:aws:states:us-east-1:123456789012:execution:provision:gh-provision-1";
    let lock = plane.local.lock();
    let grant = lock
        .acquire(&AcquireRequest {
            environment: plane.env.clone(),
            holder: holder.to_owned(),
            operation: "provision".to_owned(),
            lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    let deploy = DeploymentRecord {
        environment: plane.env.clone(),
        id: "gh-provision-1".to_owned(),
        started_at: Utc::now(),
        finished_at: Some(Utc::now()),
        status: DeploymentStatus::Succeeded,
        spec_version: "v7".to_owned(),
        plan: json!({"changes": []}),
        execution: holder.to_owned(),
        actor: "repo:acme/infra:environment:staging".to_owned(),
        error: None,
    };
    plane.store().put(&deploy, grant.token).await.unwrap();
    lock.release(&plane.env, holder, grant.token).await.unwrap();

    let entries = history(&plane.store(), &plane.env, 10).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["deploy", "drill", "backup"]);
    assert!(entries.windows(2).all(|w| w[0].at >= w[1].at));
    assert_eq!(entries[0].status, "SUCCEEDED");
    assert_eq!(entries[1].status, "MISSED");
    assert_eq!(entries[2].status, "COMPLETED");
    assert_eq!(
        entries[2].execution.as_deref(),
        Some(backup.execution_arn.as_str())
    );
    let rendered = entries[2].render();
    assert!(
        rendered.contains(&console_url(&backup.execution_arn)),
        "{rendered}"
    );
    assert!(
        entries[0].render().contains("spec v7 by repo:acme/infra"),
        "{}",
        entries[0].render()
    );
    // The limit counts entries, newest first.
    assert_eq!(
        history(&plane.store(), &plane.env, 1).await.unwrap()[0].kind,
        "deploy"
    );
}

#[tokio::test]
async fn the_demo_runs_in_the_modelled_world_and_its_drill_rto_is_the_modelled_restore() {
    let figures = opsplane_cli::demo::run(&root()).await.expect("the demo");
    // The drill sees the restore at its first poll after the model's restore time: never before it, and at
    // most one polling interval after.
    assert!(
        figures.rto_seconds >= figures.modelled_restore_seconds
            && figures.rto_seconds
                <= figures.modelled_restore_seconds + figures.poll_interval_cap_seconds,
        "{figures:?}"
    );
    assert!(figures.modelled_restore_seconds > 300, "{figures:?}");
}
