//! The DR drill on the local engine against moto, with the SQL probe against a real PostgreSQL.

use std::sync::Arc;

use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};
use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_shared::clock::{Clock, ManualClock};
use opsplane_shared::domain::backup::{TAG_DRILL, TAG_ENVIRONMENT, TAG_MANAGED_BY};
use opsplane_shared::domain::drill::{DrillReport, RpoSource, Verdict};
use opsplane_shared::state::{DrillRecord, DrillVerdict};
use opsplane_statemachines::{Description, Status};
use serde_json::{Value, json};

use crate::backup::{Plane, deps};
use crate::harness::unique;
use crate::postgres::{execute, postgres};

/// Probe settings that map every restored endpoint to the test's PostgreSQL.
pub fn to_postgres() -> ProbeSettings {
    ProbeSettings {
        endpoint_override: Some(("127.0.0.1".to_owned(), postgres().port())),
        ..ProbeSettings::default()
    }
}

/// Instances of the plane's environment carrying the drill tag.
pub async fn drill_instances(plane: &Plane) -> Vec<String> {
    plane
        .world
        .clients
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .iter()
        .filter(|i| {
            let tags = i.tag_list();
            tags.iter().any(|t| t.key() == Some(TAG_DRILL))
                && tags.iter().any(|t| {
                    t.key() == Some(TAG_ENVIRONMENT) && t.value() == Some(plane.env.as_str())
                })
        })
        .map(|i| i.db_instance_identifier().unwrap_or_default().to_owned())
        .collect()
}

/// When the first event of `state` whose type ends with `suffix` (`StateEntered`, `StateExited`) happened.
pub fn event_time(
    history: &[opsplane_statemachines::history::HistoryEvent],
    state: &str,
    suffix: &str,
) -> DateTime<Utc> {
    history
        .iter()
        .find(|e| e.event_type.ends_with(suffix) && e.details["name"] == state)
        .unwrap_or_else(|| panic!("{state} {suffix}"))
        .timestamp
}

/// Runs a drill that must succeed (or the test fails with its error and cause).
pub async fn run_drill_ok(plane: &Plane, input: Value) -> Description {
    let run = run_drill(plane, input).await;
    assert_eq!(
        run.status,
        Status::Succeeded,
        "{:?} {:?}",
        run.error,
        run.cause
    );
    run
}

pub async fn run_drill(plane: &Plane, input: Value) -> Description {
    plane
        .engine
        .run(&plane.drill, input)
        .await
        .expect("drill execution")
}

/// The text of the element with `id` in the report's HTML.
/// A report's HTML page as a document (its `<!DOCTYPE html>` allowed).
pub fn parse_html(html: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the report's HTML is well formed")
}

pub fn by_id(doc: &roxmltree::Document, id: &str) -> String {
    doc.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no element #{id} in the report"))
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// The drill report of the plane's environment (its one drill), JSON and HTML.
pub async fn report_of(plane: &Plane, key_suffix: &str) -> (DrillReport, String) {
    let keys: Vec<String> = plane
        .world
        .clients
        .s3
        .list_objects_v2()
        .bucket(&plane.world.config.bucket_name)
        .prefix(format!("reports/drills/{}/", plane.env))
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let json_key = keys
        .iter()
        .find(|k| k.ends_with(".json"))
        .expect("JSON report");
    let html_key = keys
        .iter()
        .find(|k| k.ends_with(".html"))
        .expect("HTML report");
    assert!(json_key.ends_with(key_suffix) || key_suffix.is_empty());
    let report: DrillReport = serde_json::from_slice(&plane.object(json_key).await).unwrap();
    let html = String::from_utf8(plane.object(html_key).await).unwrap();
    (report, html)
}

#[tokio::test]
async fn drill_restores_verifies_measures_tears_down_and_reports() {
    let plane = Plane::new("drill.yaml", to_postgres()).await;
    // The canary: the newest write the restored data holds, two minutes before the drill.
    let table = format!("canary-{}", plane.env);
    execute(&format!(
        "CREATE TABLE \"{table}\" (written_at timestamptz NOT NULL); \
         INSERT INTO \"{table}\" VALUES (now() - interval '1 hour'), (now() - interval '2 minutes');"
    ))
    .await;
    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);

    let run = run_drill_ok(&plane, json!({ "environment": plane.env })).await;
    let out = run.output.as_ref().unwrap();

    // RTO comes from the events: restore requested (Restore entered) to available (WaitRestore exited). The
    // world's model takes its restore time (on the engine's virtual clock); the drill sees it at the first
    // poll after that, so the RTO is at least the modelled time and at most one polling interval more.
    let history = plane.engine.history(&run.execution_arn).unwrap();
    let at = |state: &str, suffix: &str| event_time(&history, state, suffix);
    let from_events =
        (at("WaitRestore", "StateExited") - at("Restore", "StateEntered")).num_seconds();
    let m = &out["measurement"];
    assert_eq!(m["rto_seconds"].as_i64(), Some(from_events));
    let restore = plane.local.world.settings().await.unwrap()["durations"]["rds_restore"]
        .as_f64()
        .unwrap() as i64;
    // The restore's poll met a `creating` instance and the teardown's a `deleting` one.
    let polls = crate::harness::not_ready_by_state(&plane.engine, &run.execution_arn);
    assert!(
        polls.contains_key("WaitRestore") && polls.contains_key("WaitTeardown"),
        "{polls:?}"
    );
    let last_interval = last_poll_interval(&plane, &run.execution_arn, "WaitRestore");
    assert!(
        (restore..=restore + last_interval).contains(&from_events),
        "RTO {from_events} s: modelled restore {restore} s, last polling interval {last_interval} s"
    );
    // RPO comes from the canary's newest write (two minutes before the drill), not the snapshot.
    assert_eq!(m["rpo_source"], "canary");
    let rpo = m["rpo_seconds"].as_i64().unwrap();
    assert!((115..=180).contains(&rpo), "rpo {rpo}");
    assert_eq!(m["rto_met"], true);
    assert_eq!(m["rpo_met"], true);

    // Verification really ran: the probe against PostgreSQL and every manifest object.
    let checks = out["verify"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"sql-probe") && names.contains(&"canary"),
        "{names:?}"
    );
    assert!(
        names.iter().filter(|n| n.starts_with("object ")).count() >= 2,
        "{names:?}"
    );
    let probe = checks.iter().find(|c| c["name"] == "sql-probe").unwrap();
    assert!(
        probe["detail"]
            .as_str()
            .unwrap()
            .contains(&postgres().port().to_string())
    );

    // Torn down: no instance carrying the drill tag is left.
    assert!(drill_instances(&plane).await.is_empty());

    // Both reports, the HTML parsed for its figures.
    let (report, html) = report_of(&plane, "").await;
    assert_eq!(report.verdict, Verdict::Passed);
    assert!(report.torn_down);
    let rm = report.measurement.as_ref().unwrap();
    assert_eq!(rm.rto_seconds, from_events);
    assert_eq!(rm.rpo_source, RpoSource::Canary);
    let doc = parse_html(&html);
    assert_eq!(by_id(&doc, "verdict"), "passed");
    assert_eq!(by_id(&doc, "rto-seconds"), from_events.to_string());
    assert_eq!(by_id(&doc, "rpo-seconds"), rpo.to_string());
    assert_eq!(by_id(&doc, "rto-target-seconds"), "1800");
    assert_eq!(by_id(&doc, "rpo-target-seconds"), "300");
    assert_eq!(by_id(&doc, "torn-down"), "yes");
    let chart = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("drill-chart"))
        .expect("inline SVG chart");
    assert_eq!(
        chart
            .descendants()
            .filter(|n| n.attribute("class") == Some("rto-point"))
            .count(),
        1
    );
    assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));

    // The catalog record.
    let records: Vec<DrillRecord> = plane.store().latest(&plane.env, 5).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].verdict, DrillVerdict::Met);
    assert_eq!(records[0].rto_seconds, Some(from_events as u64));
    assert_eq!(
        records[0].report_key.as_deref(),
        out["report"]["json_key"].as_str()
    );
    assert!(plane.lock_is_free().await);

    // A second drill's chart shows both drills.
    let again = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(again.status, Status::Succeeded, "{:?}", again.cause);
    let html_key = again.output.as_ref().unwrap()["report"]["html_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let html = String::from_utf8(plane.object(&html_key).await).unwrap();
    assert_eq!(html.matches("class=\"rto-point\"").count(), 2);

    // What `opsplane report drill --env E` lists: both drills, oldest first, with their figures.
    let objects = opsplane_shared::aws::objects::ObjectStore::new(
        plane.world.clients.s3.clone(),
        plane.world.config.bucket_name.clone(),
    );
    let keys = opsplane_fn_backup::drill::report_keys_of(&objects, &plane.env)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].1, html_key);
    let first = opsplane_fn_backup::drill::read_report(&objects, &keys[0].0)
        .await
        .unwrap();
    let line = opsplane_fn_backup::drill::summary_line(&first);
    assert!(
        line.contains("passed") && line.contains("(target 30m 00s, met)"),
        "{line}"
    );
    // `opsplane report drill --env E --latest`: the newest drill's summary, and its page written locally.
    let out_dir = std::env::temp_dir().join(unique("report"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let listed = opsplane_cli::report::drill(&objects, &plane.env, false, &out_dir)
        .await
        .unwrap();
    assert_eq!(listed.text.lines().count(), 2);
    assert!(listed.html_file.is_none());
    let latest = opsplane_cli::report::drill(&objects, &plane.env, true, &out_dir)
        .await
        .unwrap();
    let file = latest.html_file.expect("--latest writes the page");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), html);
    assert!(latest.text.contains(&keys[1].0), "{}", latest.text);
    std::fs::remove_dir_all(&out_dir).unwrap();
    let none = opsplane_cli::report::drill(&objects, "no-such-env", true, &out_dir)
        .await
        .unwrap_err();
    assert_eq!(none.name().as_str(), "ResourceNotFound");
}

#[tokio::test]
async fn a_failed_verification_fails_the_drill_and_leaves_no_instance() {
    let plane = Plane::new("drill.yaml", to_postgres()).await;
    execute(&format!(
        "CREATE TABLE \"canary-{}\" (written_at timestamptz NOT NULL); INSERT INTO \"canary-{}\" VALUES (now());",
        plane.env, plane.env
    ))
    .await;
    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    // Inject the failure: the backed-up EKS export no longer matches its manifest hash.
    let manifest_key = backup.output.as_ref().unwrap()["manifest"]["manifest_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let eks_key = manifest_key.replace("manifest.json", "eks.json");
    plane
        .world
        .clients
        .s3
        .put_object()
        .bucket(&plane.world.config.bucket_name)
        .key(&eks_key)
        .body(b"{\"tampered\": true}".to_vec().into())
        .send()
        .await
        .unwrap();

    let run = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("RestoreFailed"),
        "{:?}",
        run.cause
    );
    // The restore did happen, and teardown removed it.
    let history = plane.engine.history(&run.execution_arn).unwrap();
    let entered: Vec<&str> = history
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .filter_map(|e| e.details["name"].as_str())
        .collect();
    for s in [
        "Restore",
        "WaitRestore",
        "Verify",
        "Teardown",
        "WaitTeardown",
        "Report",
    ] {
        assert!(entered.contains(&s), "{s} in {entered:?}");
    }
    assert!(!entered.contains(&"Measure"));
    assert!(drill_instances(&plane).await.is_empty());

    let (report, html) = report_of(&plane, "").await;
    assert_eq!(report.verdict, Verdict::RestoreFailed);
    assert!(report.torn_down);
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(
        failed
            .iter()
            .any(|c| c.detail.contains(&format!("object {eks_key}: sha256"))),
        "{failed:?}"
    );
    assert!(html.contains("restore failed"));
    let records: Vec<DrillRecord> = plane.store().latest(&plane.env, 5).await.unwrap();
    assert_eq!(records[0].verdict, DrillVerdict::Failed);
}

#[tokio::test]
async fn a_missed_target_fails_with_target_missed_after_teardown() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    assert_eq!(plane.run_backup().await.status, Status::Succeeded);
    let run = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("TargetMissed"),
        "{:?}",
        run.cause
    );
    assert!(drill_instances(&plane).await.is_empty());
    let (report, _) = report_of(&plane, "").await;
    assert_eq!(report.verdict, Verdict::TargetMissed);
    let m = report.measurement.unwrap();
    assert!(!m.rto_met && m.rpo_met);
}

#[tokio::test]
async fn point_in_time_drill_restores_to_the_latest_restorable_time() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    assert_eq!(plane.run_backup().await.status, Status::Succeeded);
    let run = run_drill(
        &plane,
        json!({ "environment": plane.env, "mode": "point-in-time" }),
    )
    .await;
    // The spec's one-minute RTO is missed; what matters here is where the restore came from.
    assert_eq!(
        run.error.as_deref(),
        Some("TargetMissed"),
        "{:?}",
        run.cause
    );
    let (report, _) = report_of(&plane, "").await;
    assert_eq!(report.snapshot_id, None);
    assert_eq!(
        report.measurement.unwrap().rpo_source,
        RpoSource::RestorePoint
    );
    assert!(drill_instances(&plane).await.is_empty());
}

#[tokio::test]
async fn drill_input_is_checked_before_anything_is_touched() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    for (input, field) in [
        (
            json!({"environment": plane.env, "mode": "yesterday"}),
            "mode",
        ),
        (
            json!({"environment": plane.env, "instance": "nope"}),
            "instance",
        ),
        // The retention fixture has no drill section.
        (json!({"environment": plane.env}), "environment"),
    ] {
        let run = run_drill(&plane, input.clone()).await;
        crate::backup::assert_fails_naming(&run, field, &input);
    }
    assert!(drill_instances(&plane).await.is_empty());
}

#[tokio::test]
async fn orphan_sweep_deletes_only_old_tagged_drill_instances() {
    let plane = Plane::new("retention.yaml", ProbeSettings::default()).await;
    let rds = &plane.world.clients.rds;
    let orphan = unique("orphan");
    let untagged = unique("bystander");
    for (id, tagged) in [(&orphan, true), (&untagged, false)] {
        let mut req = rds
            .create_db_instance()
            .db_instance_identifier(id.as_str())
            .db_instance_class("db.t4g.small")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("app")
            .master_user_password("not-a-secret-1")
            .tags(
                Tag::builder()
                    .key(TAG_ENVIRONMENT)
                    .value(&plane.env)
                    .build(),
            );
        if tagged {
            req = req
                .tags(Tag::builder().key(TAG_DRILL).value("dead-drill").build())
                .tags(Tag::builder().key(TAG_MANAGED_BY).value("opsplane").build());
        }
        req.send().await.unwrap();
    }
    let d = deps(&plane.local, ProbeSettings::default());
    let sweep =
        json!({"action": "sweep-orphans", "environment": plane.env, "older_than_minutes": 360});
    // Young: nothing is swept.
    let out = opsplane_fn_backup::handle(&d, sweep.clone()).await.unwrap();
    assert_eq!(out["deleted"], json!([]));
    // Seven hours later the tagged one is an orphan; the untagged one is never touched.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(Utc::now() + chrono::Duration::hours(7)));
    let out = opsplane_fn_backup::handle(&d.clone().with_clock(later), sweep)
        .await
        .unwrap();
    assert_eq!(out["deleted"], json!([orphan]));
    // The orphan is on its way out (`deleting` for the minutes RDS takes, then gone); the other is untouched.
    let left = rds.describe_db_instances().send().await.unwrap();
    let status = |id: &str| {
        left.db_instances()
            .iter()
            .find(|i| i.db_instance_identifier() == Some(id))
            .and_then(|i| i.db_instance_status().map(str::to_owned))
    };
    assert_eq!(status(&orphan).as_deref(), Some("deleting"));
    assert_eq!(status(&untagged).as_deref(), Some("available"));
    let zero = opsplane_fn_backup::handle(
        &d,
        json!({"action": "sweep-orphans", "older_than_minutes": 0}),
    )
    .await;
    assert_eq!(zero.unwrap_err().name().as_str(), "InvalidInput");
}

/// The transitions Step Functions bills for an execution: every state entered, plus every retry of a task
/// (each attempt after the first is a transition too).
pub fn transitions(plane: &Plane, execution: &str) -> usize {
    crate::harness::billed(&plane.engine, execution).0
}

/// Seconds between `state`'s last `NotReady` answer and the state's exit: the polling interval in force
/// when the resource became ready.
pub fn last_poll_interval(plane: &Plane, execution: &str, state: &str) -> i64 {
    let last = crate::harness::not_ready(&plane.engine, execution)
        .into_iter()
        .filter(|(s, _)| s == state)
        .map(|(_, at)| at)
        .next_back()
        .expect("a not-ready poll");
    let exited = plane
        .engine
        .history(execution)
        .unwrap()
        .into_iter()
        .find(|e| {
            e.event_type.ends_with("StateExited")
                && e.details["name"] == state
                && e.timestamp >= last
        })
        .expect("the state exited")
        .timestamp;
    (exited - last).num_seconds()
}

/// The Lambda invocations of an execution: every task attempt (each `TaskScheduled`; every task of these
/// definitions invokes a function).
pub fn lambda_invocations(plane: &Plane, execution: &str) -> usize {
    crate::harness::billed(&plane.engine, execution).1
}

/// Makes RDS in `plane`'s world as slow as the benchmark's figures assume: a snapshot or a copy takes
/// 10 minutes, a restore 25, a deletion 8.
async fn slow_rds(plane: &Plane) {
    plane
        .local
        .world
        .configure(&json!({ "durations": {
            "rds_snapshot_base": 600, "rds_snapshot_per_gib": 0,
            "rds_copy_pending": 0, "rds_copy_base": 600, "rds_copy_per_gib": 0,
            "rds_restore": 1500, "rds_delete": 480,
        }}))
        .await
        .expect("world settings");
}

/// The figures of docs/BENCHMARKS.md (Backups and DR drills): state transitions of a backup of three
/// instances with copies, and of a drill whose restore takes 25 minutes, under the definitions' polling.
#[tokio::test]
async fn state_transitions_of_a_backup_and_a_25_minute_drill() {
    let plane = Plane::new("three-instances.yaml", ProbeSettings::default()).await;
    slow_rds(&plane).await;
    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    let drill = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(drill.status, Status::Succeeded, "{:?}", drill.cause);
    let rto = drill.output.as_ref().unwrap()["measurement"]["rto_seconds"]
        .as_i64()
        .unwrap();
    // First poll after the 300 s wait, then 60, 90, 135, 202.5 and 300 s (capped) apart: the poll at
    // 1687.5 s is the first after 25 minutes.
    assert_eq!(rto, 1687);
    let (b, d) = (
        transitions(&plane, &backup.execution_arn),
        transitions(&plane, &drill.execution_arn),
    );
    // Backup: 11 states (the Parallel that snapshots both engines side by side, and the Redis Map's own,
    // with no group here) and the instance branch's 7; per instance its snapshot and its copy; one batched
    // poll of the three snapshots retried 6 times, one of the three copies retried 5 times.
    assert_eq!(b, 11 + 7 + 3 * 2 + 6 + 5);
    // Drill: 22 states (17 of the instance's, and the Parallel, its join, the instance branch's end and the
    // Redis branch's choice and end, with no group here); 7 restore polls retried; 6 teardown polls retried
    // (30, 75, 142.5, 243.75, 395.6 and 623.4 s after the deletion request).
    assert_eq!(d, 22 + 7 + 6);
    let (bi, di) = (
        lambda_invocations(&plane, &backup.execution_arn),
        lambda_invocations(&plane, &drill.execution_arn),
    );
    // Every state but the Map, Wait, Choice, Succeed and Fail states is a task.
    assert!(bi < b && di < d, "{bi} {di}");
    let backup_elapsed = (backup.stop_date.unwrap() - backup.start_date).num_seconds();
    let drill_elapsed = (drill.stop_date.unwrap() - drill.start_date).num_seconds();
    // List prices, us-east-1: Step Functions Standard $0.025 per 1,000 transitions; Lambda arm64 $0.20 per
    // 1M requests and $0.0000133334 per GB-s, here 128 MB billed 100 ms per invocation.
    let lambda = |n: usize| n as f64 * (0.20 / 1e6 + 0.125 * 0.1 * 0.000_013_333_4);
    println!(
        "BENCHMARK backup: {b} transitions, {bi} Lambda invocations, {backup_elapsed} s virtual, \
         ${:.6} transitions + ${:.6} Lambda per run; drill: {d} transitions, {di} Lambda invocations, \
         {drill_elapsed} s virtual, RTO {rto} s, ${:.6} transitions + ${:.6} Lambda per run",
        b as f64 * 0.000025,
        lambda(bi),
        d as f64 * 0.000025,
        lambda(di),
    );
    assert!(drill_instances(&plane).await.is_empty());
}

#[tokio::test]
async fn a_drill_without_any_backup_fails_reports_and_restores_nothing() {
    let plane = Plane::new("drill-tight-rto.yaml", ProbeSettings::default()).await;
    let run = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(
        run.error.as_deref(),
        Some("RestoreFailed"),
        "{:?}",
        run.cause
    );
    let history = plane.engine.history(&run.execution_arn).unwrap();
    assert!(
        !history
            .iter()
            .any(|e| e.event_type == "TaskStateEntered" && e.details["name"] == "Restore")
    );
    let (report, _) = report_of(&plane, "").await;
    assert_eq!(report.verdict, Verdict::RestoreFailed);
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("ResourceNotFound") && e.contains("run a backup first")),
        "{:?}",
        report.error
    );
    assert!(drill_instances(&plane).await.is_empty());
}

#[test]
fn both_definitions_are_lint_clean_and_teardown_guards_every_path() {
    for name in ["backup.asl.json", "dr-drill.asl.json"] {
        let text = std::fs::read_to_string(
            crate::harness::root()
                .join("statemachines/definitions")
                .join(name),
        )
        .unwrap();
        assert_eq!(opsplane_statemachines::lint::lint(&text), vec![], "{name}");
    }
    // Remove any one Catch between Restore and Teardown and the lint names the leak.
    let text = std::fs::read_to_string(
        crate::harness::root().join("statemachines/definitions/dr-drill.asl.json"),
    )
    .unwrap();
    for state in [
        "Restore",
        "WaitRestore",
        "Verify",
        "Measure",
        "RestoreCache",
        "WaitCacheRestore",
        "VerifyCache",
        "MeasureCache",
    ] {
        let mut def: Value = serde_json::from_str(&text).unwrap();
        let at = opsplane_statemachines::validate::state_pointer(&def, state).expect(state);
        def.pointer_mut(&at)
            .and_then(Value::as_object_mut)
            .unwrap()
            .remove("Catch");
        let findings = opsplane_statemachines::lint::lint(&def.to_string());
        let leaks: Vec<_> = findings
            .iter()
            .filter(|f| f.rule == "resource-release")
            .collect();
        // A restore's own failure takes nothing; every later state leaks the scratch resource.
        let resource = if state.contains("Cache") {
            "scratch-cache"
        } else {
            "scratch-instance"
        };
        if state.starts_with("Restore") {
            assert!(leaks.is_empty(), "{findings:?}");
        } else {
            assert!(
                leaks
                    .iter()
                    .any(|f| f.state == state && f.message.contains(resource)),
                "{state}: {findings:?}"
            );
        }
    }
}
