//! The DR drill of an environment with an RDS instance and a Redis replication group: both restored side by
//! side, the group's scratch copy in the source's network PINGed over TLS with its AUTH token by a real Redis
//! server, its canary key giving the real RPO, both engines' RTO and RPO in the report, and no scratch group
//! left on success or with a failure injected at any of its steps.

use chrono::{Duration, Utc};
use opsplane_shared::aws::elasticache::Caches;
use opsplane_shared::domain::backup::{TAG_DRILL, TAG_ENVIRONMENT};
use opsplane_shared::domain::drill::{RpoSource, Verdict};
use opsplane_statemachines::Status;
use serde_json::json;

use crate::backup::{Plane, deps};
use crate::drill::{
    by_id, drill_instances, event_time, parse_html, report_of, run_drill, run_drill_ok,
};
use crate::faults::{Fault, backup_probing_with_fault};
use crate::redis_server::{command, to_redis};

/// The replication groups a drill of the plane's environment left (any status).
async fn drill_groups(plane: &Plane) -> Vec<String> {
    Caches::new(plane.world.clients.elasticache.clone())
        .groups_named("drill-")
        .await
        .expect("describe the groups")
        .into_iter()
        .filter(|g| {
            g.tags.contains_key(TAG_DRILL) && g.tags.get(TAG_ENVIRONMENT) == Some(&plane.env)
        })
        .map(|g| format!("{} ({})", g.id, g.status))
        .collect()
}

/// A plane of `redis-drill.yaml` probing the test's Redis, backed up once, its canary written `age` before.
async fn backed_up(age: Duration) -> Plane {
    let plane = Plane::new("redis-drill.yaml", Default::default()).await;
    plane.reregister(deps(&plane.local, to_redis(&plane.local)));
    let written = (Utc::now() - age).to_rfc3339();
    assert_eq!(
        command(&["SET", &format!("canary:{}", plane.env), &written]).await,
        "+OK\r\n"
    );
    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    plane
}

#[tokio::test]
async fn a_drill_restores_the_redis_snapshot_beside_the_instance_probes_it_and_reports_both_engines()
 {
    let plane = backed_up(Duration::minutes(2)).await;
    let sub = crate::notify::Subscription::for_environment(&plane.world, &plane.env).await;
    let run = run_drill_ok(&plane, json!({ "environment": plane.env })).await;
    let out = run.output.as_ref().unwrap();

    // Each engine's RTO from its own states' events; the two restores overlap in time.
    let history = plane.engine.history(&run.execution_arn).unwrap();
    let at = |state: &str, suffix: &str| event_time(&history, state, suffix);
    let cache = &out["cache"];
    assert_eq!(
        cache["measurement"]["rto_seconds"].as_i64(),
        Some(
            (at("WaitCacheRestore", "StateExited") - at("RestoreCache", "StateEntered"))
                .num_seconds()
        )
    );
    assert!(at("RestoreCache", "StateEntered") < at("WaitRestore", "StateExited"));
    assert!(at("Restore", "StateEntered") < at("WaitCacheRestore", "StateExited"));
    // The world's restore takes its modelled time; the drill sees it at the first poll after that.
    let restore = plane.local.world.settings().await.unwrap()["durations"]["elasticache_restore"]
        .as_f64()
        .unwrap() as i64;
    let rto = cache["measurement"]["rto_seconds"].as_i64().unwrap();
    assert!(
        (restore..=restore + 300).contains(&rto),
        "{rto} for {restore}"
    );

    // The report: both engines, the Redis checks passed, its RPO from the canary read over TLS.
    let (report, html) = report_of(&plane, "").await;
    assert_eq!(report.verdict, Verdict::Passed);
    assert!(report.measurement.is_some(), "the instance's figures");
    let c = report.cache.expect("the Redis part");
    assert_eq!(c.replication_group, format!("{}-cache", plane.env));
    assert_eq!(c.verdict, Verdict::Passed);
    assert!(c.torn_down);
    let m = c.measurement.expect("the Redis figures");
    assert_eq!(m.rpo_source, RpoSource::Canary);
    assert!((118..=180).contains(&m.rpo_seconds), "{}", m.rpo_seconds);
    let check = |name: &str| {
        c.checks
            .iter()
            .find(|x| x.name == name)
            .unwrap_or_else(|| panic!("no {name} check in {:?}", c.checks))
            .clone()
    };
    for name in [
        "cache-available",
        "cache-settings",
        "manifest",
        "cache-snapshot-in-manifest",
        "redis-probe",
        "cache-canary",
    ] {
        assert!(check(name).passed, "{:?}", check(name));
    }
    let probe = check("redis-probe").detail;
    assert!(
        probe.contains("over TLS") && probe.contains("AUTH token"),
        "{probe}"
    );
    assert!(
        !probe.contains(crate::redis_server::redis().token()),
        "{probe}"
    );
    let doc = parse_html(&html);
    let text = |id: &str| by_id(&doc, id);
    assert_eq!(text("redis-rto-seconds"), m.rto_seconds.to_string());
    assert_eq!(text("redis-rpo-seconds"), m.rpo_seconds.to_string());
    assert_eq!(text("redis-verdict"), "passed");
    // Both engines' recovery by phase, the restore phase being the RTO.
    for (phases, rto) in [
        (
            &report.phases,
            report.measurement.as_ref().unwrap().rto_seconds,
        ),
        (&c.phases, m.rto_seconds),
    ] {
        let named: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(named, ["restore", "verify", "measure", "teardown"]);
        assert_eq!(phases[0].seconds, rto);
    }
    assert!(!text("redis-phase-teardown").is_empty());
    assert!(!text("phase-restore").is_empty());
    assert!(text("rto-seconds").parse::<i64>().is_ok());

    assert!(drill_groups(&plane).await.is_empty(), "torn down");
    assert!(drill_instances(&plane).await.is_empty(), "torn down");

    // The outcome event gives both engines' figures.
    let events = sub.received().await;
    let event = crate::notify::only(&events, &run.execution_arn);
    let summary = event["detail"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "Redis {}-cache: RTO {} s, RPO {} s",
            plane.env, m.rto_seconds, m.rpo_seconds
        )),
        "{summary}"
    );
}

#[tokio::test]
async fn a_stale_canary_misses_the_rpo_target_after_the_group_is_torn_down() {
    // The canary's newest write is an hour old: restored and verified, but the RPO is missed.
    let plane = backed_up(Duration::hours(1)).await;
    let run = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(
        run.error.as_deref(),
        Some("TargetMissed"),
        "{:?}",
        run.cause
    );
    let (report, _) = report_of(&plane, "").await;
    let c = report.cache.unwrap();
    assert_eq!(c.verdict, Verdict::TargetMissed);
    assert!(!c.measurement.unwrap().rpo_met);
    assert!(drill_groups(&plane).await.is_empty());
}

#[tokio::test]
async fn an_unknown_replication_group_is_refused_before_anything_is_touched() {
    let plane = Plane::new("redis-drill.yaml", Default::default()).await;
    let run = run_drill(
        &plane,
        json!({ "environment": plane.env, "replication_group": "nope" }),
    )
    .await;
    assert_eq!(run.error.as_deref(), Some("InvalidInput"));
    assert!(
        run.cause
            .as_deref()
            .is_some_and(|c| c.contains("replication_group") && c.contains("-cache")),
        "{:?}",
        run.cause
    );
    assert!(drill_groups(&plane).await.is_empty());
}

#[tokio::test]
async fn a_failure_at_any_redis_step_leaves_no_scratch_group_and_no_scratch_instance() {
    for action in [
        "pick-cache-snapshot",
        "restore-cache",
        "check-cache-restore",
        "verify-cache",
        "measure-cache",
    ] {
        let plane = backed_up(Duration::minutes(2)).await;
        backup_probing_with_fault(&plane, action, Fault::Panic, to_redis(&plane.local));
        let run = run_drill(&plane, json!({ "environment": plane.env })).await;
        assert_eq!(run.status, Status::Failed, "{action}: {:?}", run.cause);
        assert_eq!(run.error.as_deref(), Some("RestoreFailed"), "{action}");
        let (report, _) = report_of(&plane, "").await;
        let c = report.cache.expect("the Redis part");
        assert_eq!(c.verdict, Verdict::RestoreFailed, "{action}");
        // A crashed function is Lambda.Unknown, as AWS reports it.
        assert!(
            c.error
                .as_deref()
                .is_some_and(|e| e.starts_with("Lambda.Unknown")),
            "{action}: {:?}",
            c.error
        );
        // The instance's part is unharmed by the cache's failure: restored, verified, measured.
        assert!(report.measurement.is_some(), "{action}");
        assert!(c.torn_down && report.torn_down, "{action}");
        assert!(drill_groups(&plane).await.is_empty(), "{action}");
        assert!(drill_instances(&plane).await.is_empty(), "{action}");
        assert!(plane.lock_is_free().await, "{action}");
    }
}

#[tokio::test]
async fn the_health_check_pings_each_group_with_its_token_over_tls() {
    let plane = Plane::new("redis-drill.yaml", Default::default()).await;
    plane.reregister(deps(&plane.local, to_redis(&plane.local)));
    assert_eq!(
        plane.health_reasons("redis-ping").await,
        Vec::<serde_json::Value>::new()
    );

    // The token rotated in the secret but not on the server: AUTH is refused and the group is unhealthy,
    // the reason naming the refusal and never the token.
    let wrong = "not-the-token-of-this-group-0123";
    plane
        .world
        .clients
        .secrets_manager
        .put_secret_value()
        .secret_id(format!("opsplane/{}/redis-auth", plane.env))
        .secret_string(wrong)
        .send()
        .await
        .unwrap();
    let reasons = plane.health_reasons("redis-ping").await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    let message = reasons[0]["message"].as_str().unwrap();
    assert_eq!(reasons[0]["verdict"], "unhealthy", "{reasons:?}");
    assert!(
        message.contains("AUTH") && message.contains("WRONGPASS"),
        "{message}"
    );
    assert!(!message.contains(wrong), "{message}");
}

#[tokio::test]
async fn retention_keeps_the_redis_snapshot_a_live_drill_group_was_restored_from() {
    use opsplane_shared::clock::{Clock, ManualClock};
    use opsplane_shared::domain::backup::{MANAGED_BY_VALUE, TAG_DRILL_SNAPSHOT, TAG_MANAGED_BY};
    use std::sync::Arc;

    let plane = Plane::new("redis-drill.yaml", Default::default()).await;
    let caches = Caches::new(plane.world.clients.elasticache.clone());
    let group = format!("{}-cache", plane.env);
    let mut names = Vec::new();
    for _ in 0..2 {
        let run = plane.run_backup().await;
        assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
        let manifest = &run.output.as_ref().unwrap()["manifest"]["snapshot_ids"];
        let name = manifest
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str())
            .find(|s| caches_snapshot(s, &group))
            .expect("the cache snapshot")
            .to_owned();
        names.push(name);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A drill that died left its scratch group, restored from the older snapshot.
    let held = names[0].clone();
    let mut scratch = plane.spec.redis[0].clone();
    scratch.replication_group_id = format!("drill-0000000000-{}", plane.env);
    scratch.auth_token_secret = None;
    let tags = std::collections::BTreeMap::from([
        (TAG_DRILL.to_owned(), "0000000000".to_owned()),
        (TAG_DRILL_SNAPSHOT.to_owned(), held.clone()),
        (TAG_ENVIRONMENT.to_owned(), plane.env.clone()),
        (TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
    ]);
    caches
        .restore(&scratch, &held, &tags, None)
        .await
        .expect("the scratch group");

    // A year later both are expired: the newer goes, the one the drill group holds stays.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(Utc::now() + Duration::days(365)));
    plane.reregister(deps(&plane.local, Default::default()).with_clock(later));
    let run = plane.run_backup().await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let pruned = &run.output.as_ref().unwrap()["retention"]["caches"];
    let deleted: Vec<String> = serde_json::from_value(pruned["deleted"].clone()).unwrap();
    assert_eq!(deleted, vec![names[1].clone()], "{pruned}");
    let left: Vec<String> = caches
        .manual_snapshots()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(left.contains(&held), "{left:?}");
}

/// Whether `name` is one of our snapshots of the replication group `group`.
fn caches_snapshot(name: &str, group: &str) -> bool {
    name.starts_with(&format!("opsplane-{group}-"))
}

#[tokio::test]
async fn the_orphan_sweep_deletes_only_old_drill_groups_of_ours() {
    use opsplane_shared::clock::{Clock, ManualClock};
    use opsplane_shared::domain::backup::{MANAGED_BY_VALUE, TAG_MANAGED_BY};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let plane = Plane::new("redis-drill.yaml", Default::default()).await;
    let caches = Caches::new(plane.world.clients.elasticache.clone());
    let orphan = format!("drill-0000000000-{}", plane.env);
    let foreign = format!("drill-1111111111-{}", plane.env);
    for (id, ours) in [(&orphan, true), (&foreign, false)] {
        let mut group = plane.spec.redis[0].clone();
        group.replication_group_id = id.clone();
        group.auth_token_secret = None;
        let mut tags = BTreeMap::from([
            (TAG_DRILL.to_owned(), "dead-drill".to_owned()),
            (TAG_ENVIRONMENT.to_owned(), plane.env.clone()),
        ]);
        if ours {
            tags.insert(TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
        }
        caches.create(&group, &tags, None).await.unwrap();
    }
    let d = deps(&plane.local, Default::default());
    let sweep =
        json!({"action": "sweep-orphans", "environment": plane.env, "older_than_minutes": 360});
    // Young: nothing is swept.
    let out = opsplane_fn_backup::handle(&d, sweep.clone()).await.unwrap();
    assert_eq!(out["deleted"], json!([]));
    // Seven hours later ours is an orphan; the one not managed by opsplane is never touched.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::at(Utc::now() + Duration::hours(7)));
    let out = opsplane_fn_backup::handle(&d.clone().with_clock(later), sweep)
        .await
        .unwrap();
    assert_eq!(out["deleted"], json!([orphan]));
    let status =
        |g: Option<opsplane_shared::domain::plan::ActualReplicationGroup>| g.map(|g| g.status);
    assert_eq!(
        status(caches.actual(&orphan).await.unwrap()).as_deref(),
        Some("deleting")
    );
    assert_eq!(
        status(caches.actual(&foreign).await.unwrap()).as_deref(),
        Some("available")
    );
}
