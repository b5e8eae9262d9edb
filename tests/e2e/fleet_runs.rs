//! Fleet runs in the realistic world: the backup of 1,000 RDS instances over 200 environments as child
//! executions paced within the RDS request budget (refused first by the default snapshot quota, then run
//! with it raised), and a simulated month of the nightly drill rotation.

use std::collections::BTreeSet;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use opsplane_fn_backup::fleet::RunSummary;
use opsplane_local::LocalPlane;
use opsplane_shared::clock::{Clock, ManualClock};
use opsplane_shared::domain::fleet::rotation::Compliance;
use opsplane_shared::state::{BackupRecord, BackupStatus, DrillRecord, DrillVerdict};
use opsplane_statemachines::error::MAX_HISTORY_EVENTS;
use opsplane_statemachines::{Description, Status};
use serde_json::{Value, json};

use crate::harness::{World, cost_per, root, unique};

/// A plane with `n` environments seeded from `fixture` (its `{env}` replaced), in a world with AWS's
/// defaults but `settings`.
struct Fleet {
    world: World,
    local: LocalPlane,
    environments: Vec<String>,
}

/// Where a fleet's plane runs.
enum Moto {
    /// The test binary's moto, shared with the other tests.
    Shared,
    /// A moto of its own: a thousand instances in the shared one would slow every other test's listings.
    Own,
}

impl Fleet {
    async fn new(fixture: &str, n: usize, settings: Value, moto: Moto) -> Self {
        let (world, local) = match moto {
            Moto::Shared => {
                let world = World::new().await;
                let (local, _) = LocalPlane::connect(world.config.clone())
                    .await
                    .expect("local plane over moto");
                (world, local)
            }
            Moto::Own => {
                let name = unique("fleet");
                let (local, _) =
                    LocalPlane::start(&root(), &format!("{name}-table"), &format!("{name}-bucket"))
                        .await
                        .expect("local plane over its own moto");
                (World::from_config(local.config.clone()).await, local)
            }
        };
        // Seeding makes every instance at one virtual instant, as no account's history does: RDS's throttle
        // is lifted while the fleet is made, and set back to AWS's before the run measured.
        local
            .world
            .configure(&json!({ "throttle": { "rds": null } }))
            .await
            .expect("world settings");
        let text = std::fs::read_to_string(root().join("tests/fixtures/specs").join(fixture))
            .expect("fixture");
        let prefix = unique("f");
        let environments: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:03}")).collect();
        let specs: Vec<String> = environments
            .iter()
            .map(|env| text.replace("{env}", env).replace("{retention_days}", "30"))
            .collect();
        local
            .seed_environments(&specs)
            .await
            .expect("seed the environments");
        let mut restored =
            json!({ "throttle": { "rds": { "burst": 300, "rate": 12.0 } }, "reset_meters": true });
        if let (Some(all), Some(extra)) = (restored.as_object_mut(), settings.as_object()) {
            all.extend(extra.clone());
        }
        local
            .world
            .configure(&restored)
            .await
            .expect("world settings");
        Self {
            world,
            local,
            environments,
        }
    }

    /// The backup function's clock set to `now` (the catalog's records and the retention's ages read it),
    /// with the engine's moved there too: days pass for the whole plane.
    fn days_pass_to(&self, now: DateTime<Utc>) {
        self.local.engine.advance_to(now);
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(now));
        self.local.register_functions(
            opsplane_fn_backup::Deps::new(self.local.config.clone(), &self.local.clients)
                .with_clock(clock),
        );
    }

    async fn run(&self, input: Value) -> Description {
        self.local
            .run("fleet", input)
            .await
            .expect("fleet execution")
    }

    /// The summary of a run that got to RecordRun, from the report it wrote.
    async fn summary(&self, run: &Description) -> RunSummary {
        let key =
            run.output.as_ref().expect("the run's output")["outcome"]["summary"]["report_key"]
                .as_str()
                .expect("the run's report")
                .to_owned();
        let report: Value = serde_json::from_slice(&self.world.object(&key).await).unwrap();
        serde_json::from_value(report["outcome"].clone()).unwrap()
    }

    /// Manual snapshots of this fleet's instances in moto.
    async fn snapshots(&self) -> usize {
        let mut n = 0;
        let mut pages = self
            .world
            .clients
            .rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            n += page
                .unwrap()
                .db_snapshots()
                .iter()
                .filter(|s| {
                    s.db_instance_identifier().is_some_and(|i| {
                        self.environments.iter().any(|e| i.starts_with(e.as_str()))
                    })
                })
                .count();
        }
        n
    }

    /// The largest history of any execution the plane ran.
    fn largest_history(&self) -> usize {
        self.local
            .engine
            .list_executions()
            .iter()
            .map(|arn| self.local.engine.history(arn).map_or(0, |h| h.len()))
            .max()
            .unwrap_or_default()
    }

    /// Transitions and Lambda invocations of every execution not in `before` (the run, its Map Run's
    /// children and the workflows they started), counted as Step Functions bills them.
    fn billed_since(&self, before: &BTreeSet<String>) -> (usize, usize) {
        let engine = &self.local.engine;
        engine
            .list_executions()
            .iter()
            .filter(|arn| !before.contains(*arn))
            .fold((0, 0), |(t, i), arn| {
                let (dt, di) = crate::harness::billed(engine, arn);
                (t + dt, i + di)
            })
    }

    /// Every execution so far.
    fn executions(&self) -> BTreeSet<String> {
        self.local.engine.list_executions().into_iter().collect()
    }

    /// Environments whose lock is held.
    async fn held_locks(&self) -> Vec<String> {
        let lock = self.local.lock();
        let mut held = Vec::new();
        for env in &self.environments {
            if lock.status(env).await.expect("lock status").is_some() {
                held.push(env.clone());
            }
        }
        held
    }
}

#[tokio::test]
async fn a_fleet_backup_of_1000_instances_is_refused_by_the_default_quota_then_runs_within_the_budget()
 {
    let fleet = Fleet::new("fleet-five.yaml", 200, json!({}), Moto::Own).await;

    // AWS's default quota holds 100 manual snapshots; the fleet needs 1,000. The run is refused before it
    // creates anything, naming the quota, the need and the fix.
    let refused = fleet.run(json!({ "operation": "backup" })).await;
    assert_eq!(refused.status, Status::Failed);
    assert_eq!(
        refused.error.as_deref(),
        Some("QuotaExceeded"),
        "{:?}",
        refused.cause
    );
    let cause = refused.cause.unwrap_or_default();
    assert!(cause.contains("ManualSnapshots"), "{cause}");
    assert!(cause.contains("needs 1000 manual DB snapshots"), "{cause}");
    assert!(
        cause.contains("raise the quota to at least 1000"),
        "{cause}"
    );
    assert_eq!(fleet.snapshots().await, 0, "nothing was created");
    let started = fleet.local.engine.list_executions().len();
    assert_eq!(started, 1, "no child execution was started");

    // With the quota raised, the same run backs up every instance.
    fleet
        .local
        .world
        .configure(&json!({ "quotas": { "manual_snapshots": 5000 }, "reset_meters": true }))
        .await
        .unwrap();
    let before = fleet.executions();
    let run = fleet.run(json!({ "operation": "backup" })).await;
    assert_eq!(
        run.status,
        Status::Succeeded,
        "{:?} {:?}",
        run.error,
        run.cause
    );
    let summary = fleet.summary(&run).await;
    assert_eq!(summary.succeeded, 200, "{summary:?}");
    assert!(
        summary.failed.is_empty(),
        "no run failed (by throttling or else): {:?}",
        summary.failed
    );
    assert_eq!(fleet.snapshots().await, 1000);
    for env in &fleet.environments {
        let records: Vec<BackupRecord> = fleet.local.state().latest(env, 1).await.unwrap();
        assert_eq!(records[0].status, BackupStatus::Completed, "{env}");
        assert_eq!(records[0].snapshot_ids.len(), 5, "{env}");
    }

    // Within AWS's limits: no request throttled, the busiest minute at or under the budget (4 a second by
    // default), no history near Step Functions' 25,000 events, every lock free.
    let counters = fleet.local.world.counters().await.unwrap();
    assert_eq!(counters.get("throttled.rds"), None, "{counters}");
    let rates = fleet.local.world.rates().await.unwrap();
    let rds = &rates["rds"];
    let peak = rds["peak_minute_rate"].as_f64().unwrap();
    assert!(
        peak <= 4.0,
        "the busiest minute spent {peak} RDS requests a second: {rds}"
    );
    assert!(rds["requests"].as_u64().unwrap() >= 1000, "{rds}");
    let largest = fleet.largest_history();
    assert!(
        largest < MAX_HISTORY_EVENTS / 10,
        "the largest history holds {largest} events"
    );
    // The parent's history holds the Map Run, not its 200 children's steps.
    let parent = fleet.local.engine.history(&run.execution_arn).unwrap();
    assert!(parent.len() < 100, "{}", parent.len());
    assert!(fleet.held_locks().await.is_empty());
    let (transitions, invocations) = fleet.billed_since(&before);
    println!(
        "BENCHMARK fleet backup: 1000 instances in 200 environments, {} s virtual, {:.2} RDS requests per \
         instance, busiest minute {peak} requests/s against a budget of 4, busiest second {}, {transitions} \
         transitions, {invocations} Lambda invocations, {}",
        (run.stop_date.unwrap() - run.start_date).num_seconds(),
        rds["requests"].as_f64().unwrap() / 1000.0,
        rds["peak_second"],
        cost_per(transitions, invocations, 1000, "instance"),
    );
}

#[tokio::test]
async fn a_simulated_month_of_the_drill_rotation_drills_every_instance_within_its_period() {
    // 15 environments of 2 instances, each to be drilled once in 30 days: one drill a night.
    let fleet = Fleet::new("fleet-rotation.yaml", 15, json!({}), Moto::Shared).await;
    let backup = fleet.run(json!({ "operation": "backup" })).await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);

    let start = fleet.local.engine.now() + Duration::hours(1);
    let mut last = None;
    for night in 0..30 {
        fleet.days_pass_to(start + Duration::days(night));
        let before = fleet.executions();
        fleet.local.world.reset_rates().await.unwrap();
        let run = fleet.run(json!({ "operation": "drill-rotation" })).await;
        assert_eq!(
            run.status,
            Status::Succeeded,
            "night {night}: {:?}",
            run.cause
        );
        let summary = fleet.summary(&run).await;
        assert_eq!(summary.succeeded, 1, "night {night}: {summary:?}");
        last = Some(summary);
        if night == 0 {
            let rates = fleet.local.world.rates().await.unwrap();
            let (transitions, invocations) = fleet.billed_since(&before);
            println!(
                "BENCHMARK drill rotation night: 1 of 30 instances drilled, {} s virtual, {} RDS requests, \
                 busiest minute {} requests/s, {transitions} transitions, {invocations} Lambda invocations, {}",
                (run.stop_date.unwrap() - run.start_date).num_seconds(),
                rates["rds"]["requests"],
                rates["rds"]["peak_minute_rate"],
                cost_per(transitions, invocations, 1, "drill"),
            );
        }
    }
    // Every instance was drilled once, none twice, and the last night's record says the fleet complies.
    let mut drilled = std::collections::BTreeMap::new();
    for env in &fleet.environments {
        let drills: Vec<DrillRecord> = fleet.local.state().latest(env, 10).await.unwrap();
        for d in drills {
            assert_eq!(d.verdict, DrillVerdict::Met, "{d:?}");
            *drilled
                .entry(d.instance.expect("the drilled instance"))
                .or_insert(0) += 1;
        }
    }
    assert_eq!(drilled.len(), 30, "{drilled:?}");
    assert!(drilled.values().all(|n| *n == 1), "{drilled:?}");
    let compliance: Compliance = last.and_then(|s| s.compliance).expect("compliance");
    assert_eq!(compliance.instances, 30);
    assert_eq!(compliance.drilled_within_period, 30, "{compliance:?}");
    assert_eq!(compliance.targets_met, 30, "{compliance:?}");
    assert!(compliance.complete());
    assert!(fleet.held_locks().await.is_empty());
    // No scratch instance is left behind.
    let instances = fleet
        .world
        .clients
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap();
    assert!(!instances.db_instances().iter().any(|i| {
        i.db_instance_identifier().is_some_and(|id| {
            id.starts_with("drill-") && fleet.environments.iter().any(|e| id.contains(e.as_str()))
        })
    }),);
}

#[tokio::test]
async fn plan_capacity_shows_the_fleets_steady_need_against_the_quota_it_would_pass() {
    // 20 environments of 5 instances keeping 7 days of nightly snapshots: 100 instances keep 8 each.
    let fleet = Fleet::new("fleet-five.yaml", 20, json!({}), Moto::Shared).await;
    let specs = opsplane_shared::aws::specs::SpecStore::new(
        fleet.world.clients.s3.clone(),
        fleet.world.config.bucket_name.clone(),
    );
    let rds = opsplane_shared::aws::rds::Rds::new(fleet.world.clients.rds.clone());
    let plan = opsplane_cli::capacity::plan(&specs, &rds, &fleet.world.config.region, 4.0)
        .await
        .unwrap();
    assert_eq!((plan.environments, plan.instances), (20, 100));
    let home = &plan.regions[0];
    assert_eq!(home.snapshots, 800);
    assert_eq!((home.quota, home.fits), (Some(100), Some(false)));
    let text = opsplane_cli::capacity::render(&plan);
    assert!(text.contains("OVER the quota of 100"), "{text}");
    assert!(text.contains("at least 800"), "{text}");
    // The request model of the run the budget paces: 20 backups, each its quota check, 5 snapshots, 8
    // polls, the manifest, a page of the Region's 100 instances, its own snapshots and 5 deletions.
    assert_eq!(
        plan.requests_per_backup_run,
        20 * (1 + 5 + 8 + 1 + 1 + 1 + 5)
    );
    assert_eq!(plan.backup_run_minutes, 2);
    // Nothing was created or changed by planning.
    assert_eq!(fleet.snapshots().await, 0);
}

#[tokio::test]
async fn a_fleet_backup_past_the_quota_prunes_what_retention_allows_first_then_runs() {
    // Two nightly backups ten days apart kept under a 30-day retention: 10 snapshots of 5 instances.
    let fleet = Fleet::new("fleet-prune.yaml", 1, json!({}), Moto::Shared).await;
    let start = fleet.local.engine.now();
    for day in [0, 10] {
        fleet.days_pass_to(start + Duration::days(day));
        let run = fleet.run(json!({ "operation": "backup" })).await;
        assert_eq!(run.status, Status::Succeeded, "day {day}: {:?}", run.cause);
    }
    assert_eq!(fleet.snapshots().await, 10);
    // The retention is shortened to 7 days and the quota set to 12: the next backup's 5 do not fit beside
    // the 10, but the first night's 5 have expired (not the newest of their instance): pruned first, they
    // make room, and the run goes on.
    let env = &fleet.environments[0];
    let text = std::fs::read_to_string(root().join("tests/fixtures/specs/fleet-prune.yaml"))
        .unwrap()
        .replace("{env}", env)
        .replace("{retention_days}", "7");
    opsplane_shared::aws::specs::SpecStore::new(
        fleet.world.clients.s3.clone(),
        fleet.world.config.bucket_name.clone(),
    )
    .put(&text)
    .await
    .unwrap();
    fleet
        .local
        .world
        .configure(&json!({ "quotas": { "manual_snapshots": 12 } }))
        .await
        .unwrap();
    fleet.days_pass_to(start + Duration::days(20));
    let run = fleet.run(json!({ "operation": "backup" })).await;
    assert_eq!(run.status, Status::Succeeded, "{:?}", run.cause);
    let plan = &run.output.as_ref().unwrap()["plan"];
    assert_eq!(plan["pruned"].as_array().map(Vec::len), Some(5), "{plan}");
    assert_eq!(plan["capacity"][0]["prunable"], 5, "{plan}");
    // The run's own retention then let the second night's go too (expired, no longer the newest).
    assert_eq!(fleet.snapshots().await, 5);
    assert!(fleet.held_locks().await.is_empty());
    // With nothing the rules let go (each instance's one snapshot is its newest), a quota of 9 cannot
    // hold the next 5 beside them: refused before anything is created or deleted.
    fleet
        .local
        .world
        .configure(&json!({ "quotas": { "manual_snapshots": 9 } }))
        .await
        .unwrap();
    let refused = fleet.run(json!({ "operation": "backup" })).await;
    assert_eq!(
        refused.error.as_deref(),
        Some("QuotaExceeded"),
        "{:?}",
        refused.cause
    );
    assert!(refused.cause.unwrap_or_default().contains("at least 10"));
    assert_eq!(fleet.snapshots().await, 5);
}
