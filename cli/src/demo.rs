//! `opsplane demo`: the main job on the local default. moto stands in for AWS; the workflows run on the local
//! engine with every handler in-process, exactly as the deployed definitions run on Step Functions.

use std::path::Path;

use anyhow::{Context, Result, bail};
use opsplane_statemachines::{Description, Status};
use serde_json::{Value, json};

use crate::plane::LocalPlane;

/// The environment the demo seeds and operates.
const SPEC: &str = include_str!("../demo/staging.yaml");

/// Runs the demo from the checkout at `root`: bootstrap, seed an environment, back it up, drill a restore.
/// Fails when a workflow does not succeed, so `make demo` exits non-zero on a broken build.
pub async fn run(root: &Path) -> Result<()> {
    let (plane, report) = LocalPlane::start(root, "opsplane", "opsplane-demo-state").await?;
    println!(
        "== local AWS world: moto on {}",
        plane.config.endpoint_url.as_deref().unwrap_or("?")
    );
    println!("== bootstrap\n{report}");

    let spec = plane
        .seed_environment(SPEC)
        .await
        .context("seeding the demo environment")?;
    println!(
        "== environment {}: {} RDS instance(s), EKS cluster {}",
        spec.environment,
        spec.rds.len(),
        spec.eks.as_ref().map_or("-", |e| e.cluster.as_str())
    );

    let input = json!({ "environment": spec.environment });
    for workflow in ["backup", "dr-drill"] {
        let run = plane.run(workflow, input.clone()).await?;
        print_run(&plane, workflow, &run)?;
        if run.status != Status::Succeeded {
            bail!(
                "{workflow} ended {}: {} {}",
                run.status.as_str(),
                run.error.as_deref().unwrap_or(""),
                run.cause.as_deref().unwrap_or("")
            );
        }
    }
    // moto's world ends with the demo: keep the drill's page where a browser can open it.
    let out_dir = root.join(".local").join("demo");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let objects = opsplane_shared::aws::objects::ObjectStore::new(
        plane.clients.s3.clone(),
        plane.config.bucket_name.clone(),
    );
    let report = crate::report::drill(&objects, &spec.environment, true, &out_dir).await?;
    if let Some(file) = report.html_file {
        println!("== drill report page: {}", file.display());
    }
    let lock = plane.lock().status(&spec.environment).await?;
    match lock {
        Some(held) if held.lease_expires_at > chrono::Utc::now() => {
            bail!(
                "the lock of {} is still held by {}",
                spec.environment,
                held.holder
            )
        }
        _ => println!("== lock of {}: free", spec.environment),
    }
    println!(
        "== done: table {}, bucket {}",
        plane.config.table_name, plane.config.bucket_name
    );
    Ok(())
}

fn print_run(plane: &LocalPlane, workflow: &str, run: &Description) -> Result<()> {
    let history = plane.engine.get_execution_history(&run.execution_arn)?;
    let transitions = history
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .count();
    let took = run
        .stop_date
        .map(|stop| stop - run.start_date)
        .unwrap_or_default();
    println!(
        "== {workflow}: {} in {}s of workflow time (virtual clock), {} state transitions, {} history events",
        run.status.as_str(),
        took.num_seconds(),
        transitions,
        history.len()
    );
    let output = run.output.clone().unwrap_or(Value::Null);
    for (label, pointer) in highlights(workflow) {
        if let Some(value) = output.pointer(pointer) {
            println!("   {label:<22} {}", compact(value));
        }
    }
    Ok(())
}

/// The fields of each workflow's output worth a line in the demo.
fn highlights(workflow: &str) -> &'static [(&'static str, &'static str)] {
    match workflow {
        "backup" => &[
            ("snapshots", "/manifest/snapshot_ids"),
            ("manifest", "/manifest/manifest_key"),
            ("manifest sha256", "/manifest/manifest_sha256"),
            ("EKS export", "/export/object/key"),
            ("catalog record", "/record/status"),
            ("retention", "/retention/regions"),
            ("lock token", "/lock/token"),
        ],
        "dr-drill" => &[
            ("restored from", "/pick/snapshot_id"),
            ("scratch instance", "/scratch/scratch_id"),
            ("RTO seconds", "/measurement/rto_seconds"),
            ("RPO seconds", "/measurement/rpo_seconds"),
            ("targets", "/measurement/targets"),
            ("verdict", "/report/verdict"),
            ("torn down", "/teardown/deleted"),
            ("report (JSON)", "/report/json_key"),
            ("report (HTML)", "/report/html_key"),
        ],
        _ => &[],
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
