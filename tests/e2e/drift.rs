//! Drift on the local engine: a change made behind opsplane's back shows up on demand and in the workflow's
//! record and report.

use opsplane_shared::state::DriftRecord;
use serde_json::json;

use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

#[tokio::test]
async fn an_instance_class_changed_in_moto_is_reported_and_recorded_as_drift() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    stage.upload(&stage.example("dev", &url)).await;
    assert_succeeded(&stage.provision().await);
    let db = format!("{}-db", stage.env);

    let deps = opsplane_fn_provision::Deps::new(stage.world.config.clone(), &stage.world.clients);
    let before = opsplane_fn_provision::drift::report(&deps, &stage.env)
        .await
        .unwrap();
    assert!(!before.drifted, "{}", before.render());

    stage.set_class_behind_our_back(&db, "db.t4g.large").await;

    // On demand (what `opsplane drift --env E` prints).
    let now = opsplane_fn_provision::drift::report(&deps, &stage.env)
        .await
        .unwrap();
    assert!(now.drifted);
    let change = &now.plan.changes[0];
    assert_eq!(change.field, "instance_class");
    assert_eq!(change.from.as_deref(), Some("db.t4g.large"));
    assert_eq!(change.to, "db.t4g.micro");
    assert!(
        now.render().contains("db.t4g.large -> db.t4g.micro"),
        "{}",
        now.render()
    );

    // The scheduled workflow records it and writes the report; it never applies.
    let run = stage.run("drift", json!({})).await;
    assert_succeeded(&run);
    let results = &run.output.as_ref().unwrap()["results"];
    assert_eq!(results[0]["environment"], stage.env.as_str());
    assert_eq!(results[0]["drifted"], true);
    let records: Vec<DriftRecord> = stage.store().latest(&stage.env, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].drifted);
    assert_eq!(records[0].changes[0]["field"], "instance_class");
    let key = records[0].report_key.clone().unwrap();
    assert!(key.starts_with(&format!("reports/drift/{}/", stage.env)));
    let report = stage
        .world
        .clients
        .s3
        .get_object()
        .bucket(&stage.world.config.bucket_name)
        .key(&key)
        .send()
        .await
        .expect("the report object")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["plan"]["changes"][0]["from"], "db.t4g.large");
    assert_eq!(
        stage.instance(&db).await.unwrap().instance_class,
        "db.t4g.large",
        "drift never applies"
    );
}
