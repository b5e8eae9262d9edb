//! `opsplane demo`: the whole control plane on the local default. moto stands in for AWS; the workflows run on
//! the local engine with every handler in-process, exactly as the deployed definitions run on Step Functions.
//!
//! The story: provision dev, staging and prod from `examples/` (prod's approval given by the demo's operator),
//! back every environment up, drill a restore of prod, then ship a bad change to staging. Its deployment
//! succeeds (the health check passes) and starts its bake; the 5xx rate of the API climbs and the CloudWatch
//! alarm on it fires during the bake: the deployment is reverted to the last known good and never becomes
//! one, and the alarm event (delivered twice) finds the change rolled back already. Every step is checked:
//! the demo exits non-zero when one does not end as expected.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use opsplane_shared::aws::rds::Rds;
use opsplane_statemachines::{Description, Status};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::progress::ProgressLine;
use crate::watch::{LOCAL_FIRST_INTERVAL, follow};

use opsplane_local::{EngineExecutions, LocalPlane};

/// The example environments, as a platform team writes them.
const EXAMPLES: [(&str, &str); 3] = [
    ("dev", include_str!("../../examples/dev.yaml")),
    ("staging", include_str!("../../examples/staging.yaml")),
    ("prod", include_str!("../../examples/prod.yaml")),
];
/// The bad change: staging's database squeezed onto a burstable micro instance.
const BAD_CLASS: &str = "db.t4g.micro";
/// The alarm CloudWatch raises when staging's API answers 5xx (named in staging's `alarms` mapping).
const STAGING_ALARM: &str = "acme-staging-api-5xx";
/// The demo's own outputs: reports and the run summary.
const OUT_DIR: &str = "opsplane-out";

/// One finished workflow, for the summary table.
struct Row {
    workflow: &'static str,
    environment: String,
    result: String,
    workflow_time: chrono::Duration,
    wall: Duration,
    transitions: usize,
}

/// The drill's figures as the demo saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillFigures {
    /// The drill's RTO, from its execution's events.
    pub rto_seconds: i64,
    /// How long the local world's model takes to restore.
    pub modelled_restore_seconds: i64,
    /// The longest interval between two polls of the restore (`WaitRestore`'s `MaxDelaySeconds`).
    pub poll_interval_cap_seconds: i64,
}

/// Runs the demo from the checkout at `root`. Fails when any step does not end as expected (the drill's RTO
/// outside the modelled restore time plus one polling interval included), so `make demo` exits non-zero on a
/// broken build.
pub async fn run(root: &Path) -> Result<DrillFigures> {
    let started = Instant::now();
    let (plane, report) = LocalPlane::start(root, "opsplane", "opsplane-demo-state").await?;
    step(&format!(
        "local AWS world: moto on {}",
        plane.config.endpoint_url.as_deref().unwrap_or("?")
    ));
    println!("{report}");

    // What the environments' load balancers would answer: `/health/<env>` is 200 "ok". Under the bad change
    // staging's health endpoint still answers 200, but its API's 5xx rate climbs: the CloudWatch alarm on it
    // goes to ALARM.
    create_alarm(&plane.clients.cloudwatch, STAGING_ALARM).await?;
    let app = App::start(
        Rds::new(plane.clients.rds.clone()),
        plane.clients.cloudwatch.clone(),
    )
    .await?;
    step(&format!(
        "the environments' health endpoints: http://{}/health/<env>",
        app.addr
    ));

    let mut rows = Vec::new();
    let mut specs = Vec::new();
    for (env, yaml) in EXAMPLES {
        // The examples' subnet group is `acme-<env>-db`: the world's network of `acme-<env>`.
        let (region, name) = (&plane.config.region, format!("acme-{env}"));
        let network = plane.world.network(region, &name).await?;
        let subnets = plane.world.subnets(region, &name).await?;
        let redis_secret = redis_auth_secret(&plane, &name).await?;
        let placed = Placed {
            groups: &network.security_group_ids,
            subnets: &subnets,
            redis_secret: &redis_secret,
        };
        specs.push((env, localise(yaml, env, &app.addr, &placed)?));
    }

    // 1. Provision every environment from its spec; prod waits for a person's approval.
    for (env, yaml) in &specs {
        let stored = plane.upload_spec(yaml).await?;
        plane.provide_account_keys(&stored.spec).await?;
        step(&format!("provision {env}: examples/{env}.yaml"));
        let t = Instant::now();
        let run = if *env == "prod" {
            provision_with_approval(&plane, env).await?
        } else {
            followed(&plane, "provision", json!({ "environment": env })).await?
        };
        rows.push(expect(
            &plane,
            "provision",
            env,
            run,
            Status::Succeeded,
            t.elapsed(),
        )?);
        show(&plane, yaml).await?;
    }

    // 2. A second provision of dev plans nothing: what exists is what the spec asks for.
    step("provision dev again: nothing to change");
    let t = Instant::now();
    let run = followed(&plane, "provision", json!({ "environment": "dev" })).await?;
    rows.push(expect(
        &plane,
        "provision",
        "dev",
        run,
        Status::Succeeded,
        t.elapsed(),
    )?);

    // 3. Back up every environment.
    for (env, _) in &specs {
        step(&format!("backup {env}"));
        let t = Instant::now();
        let run = followed(&plane, "backup", json!({ "environment": env })).await?;
        let output = run.output.clone().unwrap_or(Value::Null);
        rows.push(expect(
            &plane,
            "backup",
            env,
            run,
            Status::Succeeded,
            t.elapsed(),
        )?);
        detail("snapshots", output.pointer("/manifest/snapshot_ids"));
        detail("manifest", output.pointer("/manifest/manifest_key"));
    }

    // 4. A DR drill of prod: a real restore, measured, torn down.
    step(
        "dr-drill prod: restore the newest backup to a scratch instance and its Redis group beside it, verify, \
         measure, tear down",
    );
    let t = Instant::now();
    let run = followed(&plane, "dr-drill", json!({ "environment": "prod" })).await?;
    let wall = t.elapsed();
    let output = run.output.clone().unwrap_or(Value::Null);
    if run.status != Status::Succeeded {
        // The report says which check failed; show it before failing.
        let objects = opsplane_shared::aws::objects::ObjectStore::new(
            plane.clients.s3.clone(),
            plane.config.bucket_name.clone(),
        );
        if let Ok(report) = crate::report::drill(&objects, "prod", false, &root.join(OUT_DIR)).await
        {
            print!("{}", report.text);
        }
    }
    rows.push(expect(
        &plane,
        "dr-drill",
        "prod",
        run,
        Status::Succeeded,
        wall,
    )?);
    for (label, pointer) in [
        ("restored from", "/pick/snapshot_id"),
        ("RTO seconds", "/measurement/rto_seconds"),
        ("RPO seconds", "/measurement/rpo_seconds"),
        ("verdict", "/report/verdict"),
        ("torn down", "/teardown/deleted"),
        ("Redis snapshot", "/cache/pick/snapshot_id"),
        ("Redis RTO (s)", "/cache/measurement/rto_seconds"),
        ("Redis RPO (s)", "/cache/measurement/rpo_seconds"),
        ("Redis torn down", "/cache/teardown/deleted"),
    ] {
        detail(label, output.pointer(pointer));
    }
    let figures = DrillFigures {
        rto_seconds: output
            .pointer("/measurement/rto_seconds")
            .and_then(Value::as_i64)
            .context("the drill measured no RTO")?,
        modelled_restore_seconds: plane.world.settings().await?["durations"]["rds_restore"]
            .as_f64()
            .unwrap_or_default() as i64,
        poll_interval_cap_seconds: poll_interval_cap("dr-drill", "WaitRestore")?,
    };
    println!(
        "   from the model   the local world restores in {} s (AWS's typical figure, docs/LOCAL-WORLD.md); \
         the RTO is that plus the wait for the drill's next poll (at most {} s)",
        figures.modelled_restore_seconds, figures.poll_interval_cap_seconds
    );
    anyhow::ensure!(
        (figures.modelled_restore_seconds
            ..=figures.modelled_restore_seconds + figures.poll_interval_cap_seconds)
            .contains(&figures.rto_seconds),
        "the drill's RTO ({} s) is not the modelled restore ({} s) plus at most one polling interval",
        figures.rto_seconds,
        figures.modelled_restore_seconds
    );

    // 5. A bad change to staging. Its deployment succeeds and bakes; during the bake the API's 5xx alarm
    //    fires: the deployment reverts to the last known good and never becomes one. The alarm event, which
    //    EventBridge delivers at least once, finds it rolled back already.
    let (_, staging_yaml) = specs
        .iter()
        .find(|(env, _)| *env == "staging")
        .expect("staging is an example");
    let good_class = primary_class(staging_yaml)?;
    let bad = staging_yaml.replacen(
        &format!("instance_class: {good_class}"),
        &format!("instance_class: {BAD_CLASS}"),
        1,
    );
    ensure!(
        bad != *staging_yaml,
        "staging's spec has no instance class to change"
    );
    let good_version = plane
        .state()
        .last_known_good("staging")
        .await?
        .map(|l| l.spec_version)
        .unwrap_or_default();
    let bad_version = plane.upload_spec(&bad).await?.version;
    *app.bad.lock().await = Some(("staging".to_owned(), BAD_CLASS.to_owned()));
    step(&format!(
        "bad change to staging: acme-staging-db {good_class} -> {BAD_CLASS}; healthy, then it bakes"
    ));
    let t = Instant::now();
    let deploy = followed(&plane, "provision", json!({ "environment": "staging" })).await?;
    ensure!(
        app.alarm.load(std::sync::atomic::Ordering::SeqCst),
        "staging's API never met the bad change"
    );
    println!(
        "   CloudWatch alarm {STAGING_ALARM} -> ALARM during the bake (the API's 5xx rate under {BAD_CLASS})"
    );
    let mut row = expect(
        &plane,
        "provision",
        "staging",
        deploy,
        Status::Failed,
        t.elapsed(),
    )?;
    row.result = "ROLLED BACK: alarm during its bake".to_owned();
    rows.push(row);
    step(
        "the alarm's EventBridge event starts the rollback workflow, twice (at-least-once delivery)",
    );
    let event = alarm_event(STAGING_ALARM, plane.engine.now());
    let rollback_started = Instant::now();
    let first = plane.start_workflow("rollback", event.clone())?;
    let second = plane.start_workflow("rollback", event)?;
    let (a, b) = (
        plane.engine.wait_for(&first).await?,
        plane.engine.wait_for(&second).await?,
    );
    let rollback_wall = rollback_started.elapsed();
    // Whichever claimed the incident first found the change rolled back already; the other found the
    // incident claimed. Neither changed anything.
    let (done, dup) = if entered(&plane, &a.execution_arn, "AlreadyRollingBack")? {
        (b, a)
    } else {
        (a, b)
    };
    ensure!(
        entered(&plane, &done.execution_arn, "NothingToDo")?,
        "the alarm event did not find the change rolled back already"
    );
    let output = done.output.clone().unwrap_or(Value::Null);
    let mut row = expect(
        &plane,
        "rollback",
        "staging",
        done,
        Status::Succeeded,
        rollback_wall,
    )?;
    row.result = "SUCCEEDED: already rolled back, nothing done".to_owned();
    rows.push(row);
    let mut row = expect(
        &plane,
        "rollback",
        "staging",
        dup,
        Status::Succeeded,
        rollback_wall,
    )?;
    row.result = "SUCCEEDED: same event again, nothing done".to_owned();
    rows.push(row);
    detail("found", output.pointer("/rollback/finding"));
    let meta = plane.state().meta("staging").await?;
    ensure!(
        meta.last_known_good
            .as_ref()
            .map(|l| l.spec_version.as_str())
            == Some(good_version.as_str())
            && meta
                .known_good
                .iter()
                .all(|k| k.spec_version != bad_version),
        "the bad change became a known-good deployment"
    );
    let class_now = Rds::new(plane.clients.rds.clone())
        .actual("acme-staging-db")
        .await?
        .map(|i| i.instance_class)
        .unwrap_or_default();
    ensure!(
        class_now == good_class,
        "acme-staging-db is {class_now} after the rollback; the last known good is {good_class}"
    );
    println!("   acme-staging-db is back on {class_now}: the last known good");

    // Nothing may be left locked.
    for (env, _) in &specs {
        if let Some(held) = plane.lock().status(env).await? {
            ensure!(
                held.lease_expires_at <= chrono::Utc::now(),
                "the lock of {env} is still held by {}",
                held.holder
            );
        }
    }

    // moto's world ends with the demo: keep the reports where a browser can open them.
    let out_dir = root.join(OUT_DIR);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let objects = opsplane_shared::aws::objects::ObjectStore::new(
        plane.clients.s3.clone(),
        plane.config.bucket_name.clone(),
    );
    let drill = crate::report::drill(&objects, "prod", true, &out_dir).await?;
    if let Some(file) = &drill.html_file {
        mark_modelled(file)?;
    }
    let summary = summary_table(&rows);
    std::fs::write(out_dir.join("summary.txt"), &summary)
        .with_context(|| format!("writing {}/summary.txt", out_dir.display()))?;

    step("summary");
    print!("{summary}");
    println!("locks: every environment's lock is free");
    if let Some(file) = drill.html_file {
        println!("DR drill report (HTML): {}", file.display());
    }
    println!(
        "drill figures: RTO and RPO are in the report; on AWS the drill also writes them as metrics \
         (RtoSeconds, RpoSeconds, DrillPassed in namespace opsplane) to its function's log, shown here with \
         RUST_LOG={}=info",
        opsplane_shared::telemetry::METRICS_TARGET
    );
    println!("summary: {}/summary.txt", out_dir.display());
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(figures)
}

/// The longest wait between two polls of `state` in `workflow`: its `NotReady` retrier's `MaxDelaySeconds`.
fn poll_interval_cap(workflow: &str, state: &str) -> Result<i64> {
    let workflow: opsplane_statemachines::Workflow = workflow.parse()?;
    let definition: Value = serde_json::from_str(workflow.definition())?;
    let at = opsplane_statemachines::validate::state_pointer(&definition, state)
        .with_context(|| format!("{workflow} has no state {state}"))?;
    definition
        .pointer(&format!("{at}/Retry"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r["ErrorEquals"] == json!(["NotReady"]))
        .and_then(|r| r["MaxDelaySeconds"].as_i64())
        .with_context(|| format!("{state} of {workflow} has no capped NotReady retrier"))
}

/// Runs a workflow to its end with the progress line on stderr (live on a terminal, plain lines otherwise), so
/// that stdout keeps the demo's own story.
async fn followed(plane: &LocalPlane, workflow: &str, input: Value) -> Result<Description> {
    let execution = plane.start_workflow(workflow, input)?;
    let mut line = ProgressLine::stderr();
    follow(
        &EngineExecutions(plane.engine.clone()),
        LOCAL_FIRST_INTERVAL,
        &execution,
        &mut line,
    )
    .await?;
    drop(line);
    Ok(plane.engine.wait_for(&execution).await?)
}

/// Starts prod's provision, waits until it asks for approval, approves it visibly, and waits for the end.
async fn provision_with_approval(plane: &LocalPlane, env: &str) -> Result<Description> {
    let execution = plane.start_workflow("provision", json!({ "environment": env }))?;
    let state = plane.state();
    let deadline = Instant::now() + Duration::from_secs(60);
    let approval = loop {
        if let Some(record) = state.approval(&execution).await? {
            break record;
        }
        let now = plane.engine.describe_execution(&execution)?;
        if now.status != Status::Running {
            bail!(
                "provision {env} ended {} before asking for approval: {} {}",
                now.status.as_str(),
                now.error.as_deref().unwrap_or(""),
                now.cause.as_deref().unwrap_or("")
            );
        }
        ensure!(
            Instant::now() < deadline,
            "provision {env} never asked for approval"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let changes = approval
        .plan
        .get("changes")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    println!(
        "   approval waiting: {changes} change(s) to {env}, until {}",
        approval.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    println!("   $ opsplane approve {execution} --reason \"reviewed the plan\"");
    plane
        .approve(&execution, "demo-operator", Some("reviewed the plan"))
        .await?;
    Ok(plane.engine.wait_for(&execution).await?)
}

/// Checks a run ended as expected and turns it into a summary row.
fn expect(
    plane: &LocalPlane,
    workflow: &'static str,
    environment: &str,
    run: Description,
    expected: Status,
    wall: Duration,
) -> Result<Row> {
    let history = plane.engine.history(&run.execution_arn)?;
    let transitions = history
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .count();
    let workflow_time = run
        .stop_date
        .map(|stop| stop - run.start_date)
        .unwrap_or_default();
    if run.status != expected {
        bail!(
            "{workflow} {environment} ended {} (expected {}): {} {}",
            run.status.as_str(),
            expected.as_str(),
            run.error.as_deref().unwrap_or(""),
            run.cause.as_deref().unwrap_or("")
        );
    }
    println!(
        "   {}: {} state transitions, {}s of workflow time",
        run.status.as_str(),
        transitions,
        workflow_time.num_seconds()
    );
    Ok(Row {
        workflow,
        environment: environment.to_owned(),
        result: run.status.as_str().to_owned(),
        workflow_time,
        wall,
        transitions,
    })
}

/// The world's security groups and subnets an example's stand for, and the secret its Redis AUTH token is in.
struct Placed<'a> {
    groups: &'a [String],
    subnets: &'a [String],
    redis_secret: &'a str,
}

/// The AUTH token of `environment`'s Redis groups: a random one in a secret under `opsplane/`, as the
/// operator keeps it. Its ARN (Secrets Manager adds a random suffix to the name).
async fn redis_auth_secret(plane: &LocalPlane, environment: &str) -> Result<String> {
    let made = plane
        .clients
        .secrets_manager
        .create_secret()
        .name(format!("opsplane/{environment}/redis-auth"))
        .secret_string(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
        .send()
        .await
        .with_context(|| format!("the Redis AUTH token of {environment}"))?;
    made.arn
        .with_context(|| format!("CreateSecret for {environment} returned no ARN"))
}

/// The examples name their real health endpoints and their account's security groups and subnets; the demo
/// points them at its own endpoint and its world's network (their Redis groups' AUTH token in the world's
/// Secrets Manager), and leaves the SQL and Redis probes out (the demo runs without a PostgreSQL or Redis
/// server).
fn localise(
    yaml: &str,
    env: &str,
    addr: &std::net::SocketAddr,
    placed: &Placed<'_>,
) -> Result<String> {
    let mut doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(yaml).with_context(|| format!("examples/{env}.yaml"))?;
    let map = doc
        .as_mapping_mut()
        .ok_or_else(|| anyhow!("examples/{env}.yaml is not a mapping"))?;
    let health = serde_yaml_ng::to_value(json!({
        "http": [{ "url": format!("http://{addr}/health/{env}"), "expect_status": 200,
                   "timeout_ms": 5000, "body_contains": "ok" }]
    }))?;
    map.insert("health".into(), health);
    let groups = serde_yaml_ng::to_value(placed.groups)?;
    for db in map
        .get_mut("rds")
        .and_then(serde_yaml_ng::Value::as_sequence_mut)
        .into_iter()
        .flatten()
        .filter_map(serde_yaml_ng::Value::as_mapping_mut)
    {
        if db.contains_key("vpc_security_group_ids") {
            db.insert("vpc_security_group_ids".into(), groups.clone());
        }
    }
    if let Some(eks) = map
        .get_mut("eks")
        .and_then(serde_yaml_ng::Value::as_mapping_mut)
        .filter(|eks| eks.contains_key("subnet_ids"))
    {
        eks.insert(
            "subnet_ids".into(),
            serde_yaml_ng::to_value(placed.subnets)?,
        );
    }
    for group in map
        .get_mut("redis")
        .and_then(serde_yaml_ng::Value::as_sequence_mut)
        .into_iter()
        .flatten()
        .filter_map(serde_yaml_ng::Value::as_mapping_mut)
    {
        group.insert("security_group_ids".into(), groups.clone());
        if group.contains_key("auth_token_secret") {
            group.insert("auth_token_secret".into(), placed.redis_secret.into());
        }
    }
    if let Some(drill) = map
        .get_mut("drill")
        .and_then(serde_yaml_ng::Value::as_mapping_mut)
    {
        drill.remove("probe");
        drill.remove("redis_probe");
    }
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// The instance class of a spec's first RDS instance.
fn primary_class(yaml: &str) -> Result<String> {
    let spec = opsplane_shared::domain::spec::EnvironmentSpec::parse(yaml)
        .map_err(|e| anyhow!("staging's spec: {e}"))?;
    spec.rds
        .first()
        .map(|db| db.instance_class.clone())
        .ok_or_else(|| anyhow!("staging's spec has no RDS instance"))
}

/// A "CloudWatch Alarm State Change" event as EventBridge delivers it to the rollback workflow.
fn alarm_event(alarm: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
    let ts = at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "configuration": { "description": "5xx rate of the staging API above 5% for 2 minutes" },
            "previousState": { "reason": "Threshold Crossed", "timestamp": ts, "value": "OK" },
            "state": { "reason": "Threshold Crossed: 2 out of the last 2 datapoints were greater than the threshold (5.0)",
                       "timestamp": ts, "value": "ALARM" }
        }
    })
}

/// What the demo's figures are: the local world's model of AWS, not a measurement of AWS.
const MODELLED: &str = "Local world: workflow times, the RTO and the RPO come from opsplane's model of AWS on \
     the engine's virtual clock (durations from AWS's typical figures, docs/LOCAL-WORLD.md), not from AWS.";

/// Marks the demo's copy of the drill report as modelled: a banner at the top of its page.
fn mark_modelled(file: &std::path::Path) -> Result<()> {
    let html =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let banner = format!("<body>\n<p class=\"modelled\"><strong>{MODELLED}</strong></p>");
    std::fs::write(file, html.replacen("<body>", &banner, 1))
        .with_context(|| format!("writing {}", file.display()))
}

fn summary_table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<10} {:<9} {:<42} {:>14} {:>9} {:>11}\n",
        "workflow", "env", "result", "workflow time", "wall", "transitions"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<10} {:<9} {:<42} {:>13}s {:>8.2}s {:>11}\n",
            r.workflow,
            r.environment,
            r.result,
            r.workflow_time.num_seconds(),
            r.wall.as_secs_f64(),
            r.transitions
        ));
    }
    out.push_str(MODELLED);
    out.push('\n');
    out
}

/// Whether the execution entered the state.
fn entered(plane: &LocalPlane, execution: &str, state: &str) -> Result<bool> {
    Ok(plane.engine.history(execution)?.iter().any(|e| {
        e.event_type.ends_with("StateEntered")
            && e.details.get("name").and_then(Value::as_str) == Some(state)
    }))
}

fn step(what: &str) {
    println!("== {what}");
}

fn detail(label: &str, value: Option<&Value>) {
    if let Some(value) = value {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("   {label:<16} {text}");
    }
}

/// Prints what RDS now describes for the instances of a spec.
async fn show(plane: &LocalPlane, yaml: &str) -> Result<()> {
    let spec =
        opsplane_shared::domain::spec::EnvironmentSpec::parse(yaml).map_err(|e| anyhow!("{e}"))?;
    let rds = Rds::new(plane.clients.rds.clone());
    for db in &spec.rds {
        if let Some(actual) = rds.actual(&db.identifier).await? {
            println!(
                "   {:<24} {:<10} {} multi-AZ {}",
                actual.identifier,
                actual.status,
                actual.instance_class,
                opsplane_shared::domain::readable::yes_no(actual.multi_az)
            );
        }
    }
    Ok(())
}

/// The environments' application, as their load balancers answer `/health`.
struct App {
    addr: std::net::SocketAddr,
    /// `(environment, instance class)` under which that environment's API starts answering 5xx.
    bad: Arc<Mutex<Option<(String, String)>>>,
    /// Set once the API met the bad class, when CloudWatch's alarm on its 5xx rate went to ALARM.
    alarm: Arc<AtomicBool>,
}

impl App {
    async fn start(rds: Rds, cloudwatch: aws_sdk_cloudwatch::Client) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let bad: Arc<Mutex<Option<(String, String)>>> = Arc::default();
        let alarm = Arc::new(AtomicBool::new(false));
        let (bad_in, alarm_in) = (bad.clone(), alarm.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (bad, alarm, rds, cloudwatch) = (
                    bad_in.clone(),
                    alarm_in.clone(),
                    rds.clone(),
                    cloudwatch.clone(),
                );
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let env = request
                        .split_whitespace()
                        .nth(1)
                        .and_then(|path| path.strip_prefix("/health/"))
                        .unwrap_or("")
                        .to_owned();
                    let degraded = match bad.lock().await.clone() {
                        Some((bad_env, class)) if bad_env == env => {
                            let id = format!("acme-{env}-db");
                            matches!(rds.actual(&id).await, Ok(Some(db)) if db.instance_class == class)
                        }
                        _ => false,
                    };
                    // The health endpoint still answers: the damage shows in the API's 5xx rate, over
                    // minutes, which CloudWatch's alarm catches (set before the answer, as the rate has
                    // climbed by the time the deployment's bake looks).
                    if degraded && !alarm.swap(true, Ordering::SeqCst) {
                        let _ = cloudwatch
                            .set_alarm_state()
                            .alarm_name(STAGING_ALARM)
                            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                            .state_reason(
                                "Threshold Crossed: 2 out of the last 2 datapoints [41.0, 37.0] were greater than the threshold (5.0)",
                            )
                            .send()
                            .await;
                    }
                    let (status, body) = ("200 OK", "ok");
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(Self { addr, bad, alarm })
    }
}

/// Creates CloudWatch's alarm on the 5xx count of an environment's API (in `OK` until the API degrades).
async fn create_alarm(cloudwatch: &aws_sdk_cloudwatch::Client, name: &str) -> Result<()> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .alarm_description("5xx rate of the staging API above 5% for 2 minutes")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(2)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .with_context(|| format!("creating the CloudWatch alarm {name}"))?;
    Ok(())
}
