//! The fleet report: every environment with a spec in one heat map, from what the catalog recorded (backups,
//! drills, health checks), stored in the state bucket and written locally by `opsplane report fleet`.

use chrono::Utc;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::specs::SpecStore;
use opsplane_shared::domain::fleet::{FleetReport, Level};

use opsplane_statemachines::Status;
use serde_json::json;

use crate::backup::Plane;
use crate::drill::{by_id, parse_html};
use crate::harness::unique;

#[tokio::test]
async fn the_fleet_report_shows_all_200_environments_with_what_was_recorded_of_each() {
    // One environment backed up and drilled (missing its tight RTO target).
    let plane = Plane::backed_up_and_drilled_past_its_target().await;
    // 199 more with a spec and nothing done yet.
    let bucket = &plane.world.config.bucket_name;
    let specs = SpecStore::new(plane.world.clients.s3.clone(), bucket.clone());
    let prefix = unique("f");
    for i in 0..199 {
        let env = format!("{prefix}-{i:03}");
        specs
            .put(&format!(
                "environment: {env}\nrds: [ {{ identifier: {env}-db, engine: postgres, instance_class: db.t4g.small }} ]\n\
                 drill: {{ rto_target_minutes: 30, rpo_target_minutes: 1440, instance_class: db.t4g.small }}\n"
            ))
            .await
            .expect("the spec");
    }

    // The health sweep of the drilled environment records its verdict, then writes the fleet's report.
    let sweep = plane
        .local
        .run("health-sweep", json!({ "environments": [plane.env] }))
        .await
        .unwrap();
    assert_eq!(sweep.status, Status::Succeeded, "{:?}", sweep.cause);
    let written = &sweep.output.as_ref().unwrap()["fleet"];
    let swept: FleetReport = serde_json::from_slice(
        &plane
            .object(
                &written["html_key"]
                    .as_str()
                    .expect("the sweep wrote the fleet report")
                    .replace(".html", ".json"),
            )
            .await,
    )
    .unwrap();
    assert_eq!(swept.rows.len(), 200);
    assert_eq!(written["counts"]["bad"], 200, "{written}");

    // `opsplane report fleet`, on demand.
    let objects = ObjectStore::new(plane.world.clients.s3.clone(), bucket.clone());
    let out_dir = std::env::temp_dir().join(unique("fleet"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = opsplane_cli::report::fleet(&specs, &plane.store(), &objects, &out_dir, Utc::now())
        .await
        .unwrap();
    let report = &out.report;
    assert_eq!(report.rows.len(), 200);
    let drilled = report
        .rows
        .iter()
        .find(|r| r.environment == plane.env)
        .expect("the drilled environment's row");
    assert_eq!(drilled.backup.level, Level::Good, "{:?}", drilled.backup);
    assert_eq!(drilled.rto.level, Level::Bad, "{:?}", drilled.rto);
    assert_eq!(drilled.drill.level, Level::Warn, "{:?}", drilled.drill);
    assert!(
        drilled.drill.text.starts_with("target missed"),
        "{:?}",
        drilled.drill
    );
    assert_ne!(drilled.health.level, Level::Unknown, "{:?}", drilled.health);
    // The sweep's report and the command's agree (but for how long ago things happened).
    let levels = |r: &opsplane_shared::domain::fleet::FleetRow| {
        [
            r.backup.level,
            r.rto.level,
            r.rpo.level,
            r.drill.level,
            r.health.level,
        ]
    };
    let from_sweep = swept
        .rows
        .iter()
        .find(|r| r.environment == plane.env)
        .unwrap();
    assert_eq!(levels(from_sweep), levels(drilled));
    let fresh = report
        .rows
        .iter()
        .find(|r| r.environment == format!("{prefix}-000"))
        .unwrap();
    assert_eq!(
        (fresh.backup.level, fresh.drill.level, fresh.health.level),
        (Level::Bad, Level::Unknown, Level::Unknown)
    );
    // One line per environment after the counts.
    assert_eq!(
        out.text.lines().filter(|l| l.contains(" backup ")).count(),
        200
    );

    // The page: 200 rows, the counts, stored in the bucket as written locally.
    let html = std::fs::read_to_string(&out.html_file).unwrap();
    let doc = parse_html(&html);
    let rows = doc
        .descendants()
        .filter(|n| n.attribute("id").is_some_and(|id| id.starts_with("env-")))
        .count();
    assert_eq!(rows, 200);
    assert_eq!(by_id(&doc, "count-bad"), "200 bad");
    assert_eq!(plane.object(&out.keys.1).await, html.into_bytes());
    let stored: FleetReport = serde_json::from_slice(&plane.object(&out.keys.0).await).unwrap();
    assert_eq!(&stored, report);
    std::fs::remove_dir_all(&out_dir).unwrap();
}
