//! The DR drill's actions: validate, sweep orphans, pick, restore, check, verify, measure, teardown, report,
//! record.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::objects::sha256_hex;
use opsplane_shared::aws::rds::RestoreSource;
use opsplane_shared::domain::backup::{
    MANAGED_BY_VALUE, Manifest, TAG_DRILL, TAG_DRILL_SNAPSHOT, TAG_ENVIRONMENT, TAG_MANAGED_BY,
    key_timestamp,
};
use opsplane_shared::domain::drill::{
    Check, DrillPoint, DrillReport, Measurement, RestoreMode, RpoSource, Targets, Verdict,
    render_html, report_keys, restore_window, scratch_identifier,
};
use opsplane_shared::state::{BackupRecord, BackupStatus, DrillRecord, DrillVerdict};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::probe::probe_by_reference;
use crate::{Deps, short_id};

/// The state that requests the restore; RTO starts when it is entered.
pub const RESTORE_STATE: &str = "Restore";
/// The state that polls the restore; RTO ends when it exits.
pub const WAIT_RESTORE_STATE: &str = "WaitRestore";
/// Drill instances older than this are orphans when the sweep is not told otherwise.
pub const DEFAULT_ORPHAN_MINUTES: u64 = 360;
/// How many past drills the report's chart shows (this one included).
pub const CHART_DRILLS: u32 = 10;

/// `validate-drill`: the workflow's input and the execution.
#[derive(Debug, Deserialize)]
pub struct ValidateInput {
    /// The workflow's input, as given.
    pub input: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The drill's plan: everything later steps need, small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillPlan {
    /// The environment.
    pub environment: String,
    /// The drill's id (derived from the execution).
    pub drill_id: String,
    /// The report's key: timestamp and id (`20260101T000000Z-<id>`).
    pub ts: String,
    /// When the drill started: the reference for RPO.
    pub started_at: DateTime<Utc>,
    /// The source instance.
    pub instance: String,
    /// Snapshot or point in time.
    pub mode: RestoreMode,
    /// The scratch instance's identifier (known before the restore, so teardown always knows it).
    pub scratch_id: String,
    /// The scratch instance's class.
    pub instance_class: String,
    /// The targets.
    pub targets: Targets,
}

/// Checks the input against the spec; touches nothing.
pub async fn validate(deps: &Deps, input: ValidateInput) -> Result<DrillPlan, OpsError> {
    let obj = input.input.as_object().ok_or_else(|| {
        OpsError::invalid(
            "input",
            "must be an object like {\"environment\": \"prod\"}",
        )
    })?;
    for (key, value) in obj {
        // `github`: the caller's GitHub context, added by the dispatch function; kept in the history only.
        if key == "github" && value.is_object() {
            continue;
        }
        if !matches!(key.as_str(), "environment" | "mode" | "instance") {
            return Err(OpsError::invalid(
                key.clone(),
                "unknown field; the drill takes `environment`, and optionally `mode`, `instance` and the object `github`",
            ));
        }
    }
    let environment = obj
        .get("environment")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            OpsError::invalid(
                "environment",
                "required: the environment's name, e.g. \"prod\"",
            )
        })?;
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => RestoreMode::Snapshot,
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            OpsError::invalid(
                "mode",
                format!("{v} is not a mode: use \"snapshot\" or \"point-in-time\""),
            )
        })?,
    };
    let spec = deps.spec(environment).await?;
    let instance = match obj.get("instance") {
        None | Some(Value::Null) => {
            spec.rds
                .first()
                .map(|d| d.identifier.clone())
                .ok_or_else(|| {
                    OpsError::invalid(
                        "environment",
                        format!("the spec of `{environment}` has no rds instance to drill"),
                    )
                })?
        }
        Some(Value::String(i)) if spec.instance(i).is_some() => i.clone(),
        Some(v) => {
            return Err(OpsError::invalid(
                "instance",
                format!(
                    "{v} is not an instance of `{environment}`; one of {}",
                    spec.rds
                        .iter()
                        .map(|d| d.identifier.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let policy = spec.drill.as_ref().ok_or_else(|| {
        OpsError::invalid(
            "environment",
            format!("the spec of `{environment}` has no `drill` section: add rto_target_minutes, rpo_target_minutes and instance_class"),
        )
    })?;
    let started_at = deps.now();
    let drill_id = short_id(&input.execution);
    Ok(DrillPlan {
        environment: environment.to_owned(),
        scratch_id: scratch_identifier(&instance, &drill_id),
        // The id keeps two drills within one second apart; the timestamp first keeps keys in time order.
        ts: format!("{}-{drill_id}", key_timestamp(started_at)),
        drill_id,
        started_at,
        instance,
        mode,
        instance_class: policy.instance_class.clone(),
        targets: Targets::from(policy),
    })
}

/// `sweep-orphans`.
#[derive(Debug, Default, Deserialize)]
pub struct SweepInput {
    /// Only this environment's drill instances (every environment's when absent).
    #[serde(default)]
    pub environment: Option<String>,
    /// Drill instances older than this are deleted ([`DEFAULT_ORPHAN_MINUTES`] when absent).
    #[serde(default)]
    pub older_than_minutes: Option<u64>,
}

/// What the sweep deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOutput {
    /// Instances deleted.
    pub deleted: Vec<String>,
}

/// Deletes drill scratch instances (opsplane's drill tag and `ManagedBy=opsplane`) older than the limit, so a
/// drill whose execution died leaves no bill running. Nothing else is ever touched.
pub async fn sweep_orphans(deps: &Deps, input: SweepInput) -> Result<SweepOutput, OpsError> {
    let minutes = input.older_than_minutes.unwrap_or(DEFAULT_ORPHAN_MINUTES);
    if minutes == 0 {
        return Err(OpsError::invalid(
            "older_than_minutes",
            "must be at least 1: a running drill's instance must not be swept",
        ));
    }
    let cutoff = deps.now() - Duration::minutes(minutes as i64);
    let mut deleted = Vec::new();
    for i in deps.rds.instances_tagged(TAG_DRILL).await? {
        let ours = i.tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE);
        let old = i.created_at.is_some_and(|at| at < cutoff);
        if let Some(env) = &input.environment
            && i.tags.get(TAG_ENVIRONMENT) != Some(env)
        {
            continue;
        }
        if ours && old && i.status != "deleting" && deps.rds.delete_instance(&i.id).await? {
            tracing::warn!(instance = %i.id, drill = ?i.tags.get(TAG_DRILL), "orphaned drill instance deleted");
            deleted.push(i.id);
        }
    }
    Ok(SweepOutput { deleted })
}

/// `pick-snapshot`.
#[derive(Debug, Deserialize)]
pub struct PickInput {
    /// The plan.
    pub plan: DrillPlan,
}

/// What the drill restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    /// The snapshot (snapshot mode).
    pub snapshot_id: Option<String>,
    /// The recovery point: the snapshot's creation or the point in time.
    pub recovery_point: DateTime<Utc>,
    /// What the recovery point is.
    pub rpo_source: RpoSource,
    /// The manifest to verify against.
    pub manifest_key: Option<String>,
    /// The manifest's SHA-256 as recorded in the catalog.
    pub manifest_sha256: Option<String>,
}

/// Chooses the newest available opsplane snapshot of the instance, or its latest restorable time.
pub async fn pick_snapshot(deps: &Deps, input: PickInput) -> Result<Pick, OpsError> {
    let plan = &input.plan;
    let records: Vec<BackupRecord> = deps
        .state
        .latest(&plan.environment, 50)
        .await
        .map_err(OpsError::from)?;
    match plan.mode {
        RestoreMode::Snapshot => {
            let newest = deps
                .rds
                .manual_snapshots(Some(&plan.instance))
                .await?
                .into_iter()
                .filter(|s| s.info().is_ours(&plan.environment) && s.info().is_available())
                .filter(|s| s.created_at.is_some())
                .max_by_key(|s| s.created_at)
                .ok_or_else(|| {
                    OpsError::ResourceNotFound(format!(
                        "no available opsplane snapshot of {} in `{}`: run a backup first",
                        plan.instance, plan.environment
                    ))
                })?;
            let record = records.iter().find(|r| r.snapshot_ids.contains(&newest.id));
            Ok(Pick {
                recovery_point: newest.created_at.unwrap_or(plan.started_at),
                snapshot_id: Some(newest.id),
                rpo_source: RpoSource::Snapshot,
                manifest_key: record.and_then(|r| r.manifest_key.clone()),
                manifest_sha256: record.and_then(|r| r.manifest_sha256.clone()),
            })
        }
        RestoreMode::PointInTime => {
            let instance = deps.rds.instance(&plan.instance).await?.ok_or_else(|| {
                OpsError::ResourceNotFound(format!("instance {} does not exist", plan.instance))
            })?;
            let at = instance.latest_restorable_time.ok_or_else(|| {
                OpsError::ResourceNotFound(format!(
                    "instance {} has no latest restorable time (are automated backups on?)",
                    plan.instance
                ))
            })?;
            let record = records
                .iter()
                .find(|r| r.status == BackupStatus::Completed && r.manifest_key.is_some());
            Ok(Pick {
                snapshot_id: None,
                recovery_point: at,
                rpo_source: RpoSource::RestorePoint,
                manifest_key: record.and_then(|r| r.manifest_key.clone()),
                manifest_sha256: record.and_then(|r| r.manifest_sha256.clone()),
            })
        }
    }
}

/// `restore`.
#[derive(Debug, Deserialize)]
pub struct RestoreInput {
    /// The plan.
    pub plan: DrillPlan,
    /// What to restore.
    pub pick: Pick,
}

/// The scratch instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scratch {
    /// Its identifier.
    pub scratch_id: String,
    /// Its status right after the request.
    pub status: String,
}

/// The tags of a drill's scratch instance.
pub fn drill_tags(plan: &DrillPlan, snapshot: Option<&str>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (TAG_DRILL.to_owned(), plan.drill_id.clone()),
        (TAG_ENVIRONMENT.to_owned(), plan.environment.clone()),
        (TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
    ]);
    if let Some(s) = snapshot {
        tags.insert(TAG_DRILL_SNAPSHOT.to_owned(), s.to_owned());
    }
    tags
}

/// Restores the scratch instance: the drill's class, never public, no deletion protection, tagged.
pub async fn restore(deps: &Deps, input: RestoreInput) -> Result<Scratch, OpsError> {
    let plan = &input.plan;
    let source = match (&plan.mode, &input.pick.snapshot_id) {
        (RestoreMode::Snapshot, Some(s)) => RestoreSource::Snapshot(s.clone()),
        (RestoreMode::Snapshot, None) => {
            return Err(OpsError::invalid(
                "pick.snapshot_id",
                "snapshot mode needs a snapshot",
            ));
        }
        (RestoreMode::PointInTime, _) => RestoreSource::PointInTime {
            instance: plan.instance.clone(),
            at: input.pick.recovery_point,
        },
    };
    let tags = drill_tags(plan, input.pick.snapshot_id.as_deref());
    let i = deps
        .rds
        .restore(&source, &plan.scratch_id, &plan.instance_class, &tags)
        .await
        .map_err(|e| match e {
            opsplane_shared::aws::rds::RdsError::NotFound { .. } => {
                OpsError::RestoreFailed(e.to_string())
            }
            other => other.into(),
        })?;
    tracing::info!(scratch = %i.id, status = %i.status, "restore requested");
    Ok(Scratch {
        scratch_id: i.id,
        status: i.status,
    })
}

/// `check-restore`.
#[derive(Debug, Deserialize)]
pub struct CheckRestoreInput {
    /// The scratch instance.
    pub scratch_id: String,
}

/// The scratch instance, available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// Its identifier.
    pub scratch_id: String,
    /// Its endpoint, `host:port`.
    pub endpoint: String,
}

/// `NotReady` until the scratch instance is available with an endpoint; a failed restore is `RestoreFailed`.
pub async fn check_restore(deps: &Deps, input: CheckRestoreInput) -> Result<Restored, OpsError> {
    let i = deps.rds.instance(&input.scratch_id).await?.ok_or_else(|| {
        OpsError::RestoreFailed(format!(
            "scratch instance {} does not exist",
            input.scratch_id
        ))
    })?;
    match (i.status.as_str(), &i.endpoint) {
        ("available", Some((host, port))) => Ok(Restored {
            scratch_id: i.id,
            endpoint: format!("{host}:{port}"),
        }),
        (s, _)
            if s == "failed"
                || s.starts_with("incompatible")
                || s == "deleting"
                || s == "stopped" =>
        {
            Err(OpsError::RestoreFailed(format!(
                "scratch instance {} is {s}",
                i.id
            )))
        }
        (s, _) => Err(OpsError::NotReady(format!(
            "scratch instance {} is {s}",
            i.id
        ))),
    }
}

/// `verify`.
#[derive(Debug, Deserialize)]
pub struct VerifyInput {
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    pub pick: Pick,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Every check, passed.
    pub checks: Vec<Check>,
    /// The canary's newest write, when the probe ran one.
    pub canary_newest: Option<DateTime<Utc>>,
}

fn check(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed,
        detail: detail.into(),
    }
}

async fn verify_manifest(
    deps: &Deps,
    pick: &Pick,
    checks: &mut Vec<Check>,
) -> Result<(), OpsError> {
    let Some(key) = &pick.manifest_key else {
        checks.push(check(
            "manifest",
            false,
            "no catalog record names a manifest for what was restored",
        ));
        return Ok(());
    };
    let Some(bytes) = deps.objects.get(key).await? else {
        checks.push(check("manifest", false, format!("{key} does not exist")));
        return Ok(());
    };
    let digest = sha256_hex(&bytes);
    if let Some(expected) = &pick.manifest_sha256
        && expected != &digest
    {
        checks.push(check(
            "manifest",
            false,
            format!("{key}: SHA-256 {digest}, the catalog recorded {expected}"),
        ));
        return Ok(());
    }
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            checks.push(check(
                "manifest",
                false,
                format!("{key} is not a manifest: {e}"),
            ));
            return Ok(());
        }
    };
    checks.push(check("manifest", true, format!("{key} sha256 {digest}")));
    if let Some(snapshot) = &pick.snapshot_id {
        let listed = manifest
            .snapshots
            .iter()
            .any(|s| &s.snapshot_id == snapshot);
        checks.push(check(
            "snapshot-in-manifest",
            listed,
            format!(
                "{snapshot} {} in {key}",
                if listed { "is listed" } else { "is not listed" }
            ),
        ));
    }
    for o in manifest.all_objects() {
        let name = format!("object {}", o.key);
        match deps.objects.get(&o.key).await? {
            None => checks.push(check(name, false, "missing")),
            Some(b) => {
                let got = sha256_hex(&b);
                let ok = got == o.sha256 && b.len() as u64 == o.bytes;
                checks.push(check(
                    name,
                    ok,
                    if ok {
                        format!("sha256 {got}")
                    } else {
                        format!(
                            "sha256 {got} ({} bytes), manifest says {} ({} bytes)",
                            b.len(),
                            o.sha256,
                            o.bytes
                        )
                    },
                ));
            }
        }
    }
    Ok(())
}

/// Verifies the restore: the instance is available with an endpoint and private, the manifest's objects
/// exist with matching SHA-256, and the SQL probe answers. Any failed check is `RestoreFailed`, naming it.
pub async fn verify(deps: &Deps, input: VerifyInput) -> Result<Verification, OpsError> {
    let plan = &input.plan;
    let spec = deps.spec(&plan.environment).await?;
    let mut checks = Vec::new();
    let instance = deps.rds.instance(&plan.scratch_id).await?;
    let endpoint = match &instance {
        Some(i) if i.status == "available" && i.endpoint.is_some() => {
            let (h, p) = i.endpoint.clone().unwrap_or_default();
            checks.push(check(
                "instance-available",
                true,
                format!("{} at {h}:{p}", i.id),
            ));
            Some((h, p))
        }
        Some(i) => {
            checks.push(check(
                "instance-available",
                false,
                format!("{} is {} without endpoint", i.id, i.status),
            ));
            None
        }
        None => {
            checks.push(check(
                "instance-available",
                false,
                format!("{} does not exist", plan.scratch_id),
            ));
            None
        }
    };
    if let Some(i) = &instance {
        let private = i.publicly_accessible != Some(true);
        let deletable = i.deletion_protection != Some(true);
        checks.push(check(
            "scratch-settings",
            private && deletable && i.class == plan.instance_class,
            format!(
                "class {} (want {}), publicly accessible {:?}, deletion protection {:?}",
                i.class, plan.instance_class, i.publicly_accessible, i.deletion_protection
            ),
        ));
    }
    verify_manifest(deps, &input.pick, &mut checks).await?;
    let mut canary_newest = None;
    if let Some(probe) = spec.drill.as_ref().and_then(|d| d.probe.as_ref()) {
        let target = deps.probe_settings.endpoint_override.clone().or(endpoint);
        match target {
            None => checks.push(check("sql-probe", false, "no endpoint to connect to")),
            Some(endpoint) => {
                // Credentials resolved inside, used for one connection, never in an output.
                match probe_by_reference(
                    &deps.credentials,
                    deps.probe.as_ref(),
                    probe,
                    endpoint,
                    probe.canary_query.clone(),
                )
                .await
                {
                    Ok((answer, detail)) => {
                        checks.push(check("sql-probe", true, detail));
                        if probe.canary_query.is_some() {
                            checks.push(check(
                                "canary",
                                answer.canary_newest.is_some(),
                                match answer.canary_newest {
                                    Some(at) => format!("newest write {}", at.to_rfc3339()),
                                    None => "the canary query returned no timestamp".to_owned(),
                                },
                            ));
                        }
                        canary_newest = answer.canary_newest;
                    }
                    // The driver's message may quote what the server said; it goes into the report and
                    // the execution's output, so it comes back redacted like a log line.
                    Err(why) => checks.push(check("sql-probe", false, why)),
                }
            }
        }
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if !failed.is_empty() {
        return Err(OpsError::RestoreFailed(format!(
            "verification failed: {}",
            failed.join("; ")
        )));
    }
    Ok(Verification {
        checks,
        canary_newest,
    })
}

/// `measure`.
#[derive(Debug, Deserialize)]
pub struct MeasureInput {
    /// `$$.Execution.Id`.
    pub execution: String,
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    pub pick: Pick,
    /// What verification found.
    pub verify: Verification,
}

/// Measures RTO from the execution's events and RPO from the recovery point, against the targets.
pub async fn measure(deps: &Deps, input: MeasureInput) -> Result<Measurement, OpsError> {
    let events = crate::history::state_events(deps.history.as_ref(), &input.execution).await?;
    let (requested, available) = restore_window(&events, RESTORE_STATE, WAIT_RESTORE_STATE)
        .map_err(|e| OpsError::Internal(e.to_string()))?;
    Ok(opsplane_shared::domain::drill::measure(
        requested,
        available,
        input.plan.started_at,
        (input.pick.recovery_point, input.pick.rpo_source),
        input.verify.canary_newest,
        input.plan.targets,
    ))
}

/// `teardown` and `check-teardown`.
#[derive(Debug, Deserialize)]
pub struct TeardownInput {
    /// The plan (scratch id and drill id).
    pub plan: DrillPlan,
}

/// What teardown did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownOutput {
    /// Instances whose deletion was requested (or that are gone).
    pub deleted: Vec<String>,
}

/// Deletes the scratch instance and any other instance carrying this drill's tag, without final snapshot.
/// Safe to run when nothing was restored.
pub async fn teardown(deps: &Deps, input: TeardownInput) -> Result<TeardownOutput, OpsError> {
    let plan = &input.plan;
    let mut deleted = Vec::new();
    if deps.rds.delete_instance(&plan.scratch_id).await? {
        deleted.push(plan.scratch_id.clone());
    }
    for i in deps.rds.instances_tagged(TAG_DRILL).await? {
        if i.tags.get(TAG_DRILL) == Some(&plan.drill_id)
            && i.id != plan.scratch_id
            && i.status != "deleting"
            && deps.rds.delete_instance(&i.id).await?
        {
            deleted.push(i.id);
        }
    }
    tracing::info!(drill = %plan.drill_id, ?deleted, "drill torn down");
    Ok(TeardownOutput { deleted })
}

/// `NotReady` while an instance of this drill still exists.
pub async fn check_teardown(deps: &Deps, input: TeardownInput) -> Result<TeardownOutput, OpsError> {
    let plan = &input.plan;
    let left: Vec<String> = deps
        .rds
        .instances_tagged(TAG_DRILL)
        .await?
        .into_iter()
        .filter(|i| i.tags.get(TAG_DRILL) == Some(&plan.drill_id) || i.id == plan.scratch_id)
        .map(|i| format!("{} ({})", i.id, i.status))
        .collect();
    if left.is_empty() {
        Ok(TeardownOutput {
            deleted: vec![plan.scratch_id.clone()],
        })
    } else {
        Err(OpsError::NotReady(format!(
            "still deleting: {}",
            left.join(", ")
        )))
    }
}

/// The drill workflow's state as it reaches the report: what each step left, absent when it did not run.
#[derive(Debug, Clone, Deserialize)]
pub struct DrillState {
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    #[serde(default)]
    pub pick: Option<Pick>,
    /// Verification.
    #[serde(default)]
    pub verify: Option<Verification>,
    /// Measurement.
    #[serde(default)]
    pub measurement: Option<Measurement>,
    /// The error caught on the way (`{"Error", "Cause"}`).
    #[serde(default)]
    pub error: Option<Value>,
    /// Teardown.
    #[serde(default)]
    pub teardown: Option<TeardownOutput>,
    /// The error of a teardown that did not finish (the orphan sweep will catch the instance).
    #[serde(default)]
    pub teardown_error: Option<Value>,
    /// The report, once written.
    #[serde(default)]
    pub report: Option<ReportOutput>,
}

/// `report`.
#[derive(Debug, Deserialize)]
pub struct ReportInput {
    /// `$$.Execution.Id`.
    pub execution: String,
    /// The workflow's state.
    pub state: DrillState,
}

/// Where the report went and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOutput {
    /// The verdict (`passed`, `target-missed`, `restore-failed`).
    pub verdict: Verdict,
    /// The JSON report's key.
    pub json_key: String,
    /// The HTML report's key.
    pub html_key: String,
}

/// The error's message for people: Lambda's `Cause` is itself JSON with `errorMessage`.
fn error_text(error: &Value) -> String {
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("Error");
    let cause = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| cause.to_owned());
    format!("{name}: {message}")
}

/// One line in CloudWatch's Embedded Metric Format: RtoSeconds, RpoSeconds, DrillPassed by Environment.
pub fn emf_line(
    environment: &str,
    m: Option<&Measurement>,
    passed: bool,
    at: DateTime<Utc>,
) -> Value {
    let mut metrics = vec![json!({"Name": "DrillPassed", "Unit": "Count"})];
    let mut line = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "opsplane",
                "Dimensions": [["Environment"]],
                "Metrics": [],
            }],
        },
        "Environment": environment,
        "DrillPassed": if passed { 1 } else { 0 },
    });
    if let Some(m) = m {
        metrics.insert(0, json!({"Name": "RpoSeconds", "Unit": "Seconds"}));
        metrics.insert(0, json!({"Name": "RtoSeconds", "Unit": "Seconds"}));
        line["RtoSeconds"] = json!(m.rto_seconds);
        line["RpoSeconds"] = json!(m.rpo_seconds);
    }
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::Array(metrics);
    line
}

fn verdict_of(state: &DrillState) -> Verdict {
    match (&state.error, &state.teardown_error, &state.measurement) {
        (None, None, Some(m)) => Verdict::of(m),
        _ => Verdict::RestoreFailed,
    }
}

fn point_of(r: &DrillRecord) -> Option<DrillPoint> {
    Some(DrillPoint {
        ts: key_timestamp(r.started_at),
        rto_seconds: r.rto_seconds? as i64,
        rpo_seconds: r.rpo_seconds? as i64,
        verdict: match r.verdict {
            DrillVerdict::Met => Verdict::Passed,
            DrillVerdict::Missed => Verdict::TargetMissed,
            _ => Verdict::RestoreFailed,
        },
    })
}

/// Writes the report as JSON and HTML under `reports/drills/<env>/`, and the drill's metrics in EMF.
pub async fn report(deps: &Deps, input: ReportInput) -> Result<ReportOutput, OpsError> {
    let state = &input.state;
    let plan = &state.plan;
    let verdict = verdict_of(state);
    let mut checks = state
        .verify
        .as_ref()
        .map(|v| v.checks.clone())
        .unwrap_or_default();
    let error = state.error.as_ref().map(error_text);
    if let Some(e) = &error {
        checks.push(check("drill", false, e.clone()));
    }
    if let Some(e) = &state.teardown_error {
        checks.push(check("teardown", false, error_text(e)));
    }
    let local = deps.config.endpoint_url.is_some();
    let note = if local {
        "Local run: the workflow ran on the local engine's virtual clock against moto, which restores \
         instantly, so the RTO shown is the polling delay of the definition's Retry, measured from the \
         execution's events exactly as in AWS."
    } else {
        "RTO: restore requested to instance available, from the execution's events. RPO: drill start \
         minus the recovery point."
    };
    let report = DrillReport {
        environment: plan.environment.clone(),
        drill_id: plan.drill_id.clone(),
        execution: input.execution.clone(),
        started_at: plan.started_at,
        ts: plan.ts.clone(),
        mode: plan.mode,
        instance: plan.instance.clone(),
        snapshot_id: state.pick.as_ref().and_then(|p| p.snapshot_id.clone()),
        scratch_instance: Some(plan.scratch_id.clone()),
        verdict,
        measurement: state.measurement.clone(),
        checks,
        error,
        torn_down: state.teardown.is_some() && state.teardown_error.is_none(),
        note: note.to_owned(),
    };
    // The chart: previous drills from the catalog (oldest first), then this one.
    let previous: Vec<DrillRecord> = deps
        .state
        .latest(&plan.environment, CHART_DRILLS - 1)
        .await
        .map_err(OpsError::from)?;
    let mut points: Vec<DrillPoint> = previous
        .iter()
        .rev()
        .filter(|r| r.id != plan.drill_id)
        .filter_map(point_of)
        .collect();
    if let Some(m) = &state.measurement {
        points.push(DrillPoint {
            ts: plan.ts.clone(),
            rto_seconds: m.rto_seconds,
            rpo_seconds: m.rpo_seconds,
            verdict,
        });
    }
    let (json_key, html_key) = report_keys(&plan.environment, &plan.ts);
    let json_bytes = serde_json::to_vec_pretty(&report)
        .map_err(|e| OpsError::Internal(format!("serialising the report: {e}")))?;
    deps.objects
        .put(&json_key, json_bytes, "application/json")
        .await?;
    let html = render_html(&report, &points);
    deps.objects
        .put(&html_key, html.into_bytes(), "text/html; charset=utf-8")
        .await?;
    // EMF goes to stdout, which Lambda ships to CloudWatch Logs, where it becomes metrics.
    println!(
        "{}",
        emf_line(
            &plan.environment,
            state.measurement.as_ref(),
            verdict == Verdict::Passed,
            deps.now()
        )
    );
    tracing::info!(environment = %plan.environment, drill = %plan.drill_id, ?verdict, %json_key, "drill reported");
    Ok(ReportOutput {
        verdict,
        json_key,
        html_key,
    })
}

/// `record-drill`.
#[derive(Debug, Deserialize)]
pub struct RecordInput {
    /// The workflow's state, with the report.
    pub state: DrillState,
    /// The lock's fencing token.
    pub token: u64,
}

/// The record written.
#[derive(Debug, Clone, Serialize)]
pub struct RecordOutput {
    /// The drill id.
    pub id: String,
}

/// Writes the drill's catalog record, fenced by the lock's token.
pub async fn record(deps: &Deps, input: RecordInput) -> Result<RecordOutput, OpsError> {
    let state = &input.state;
    let plan = &state.plan;
    let report = state.report.as_ref().ok_or_else(|| {
        OpsError::invalid("state.report", "the drill is recorded after its report")
    })?;
    let record = DrillRecord {
        environment: plan.environment.clone(),
        id: plan.drill_id.clone(),
        started_at: plan.started_at,
        finished_at: Some(deps.now()),
        snapshot_id: state.pick.as_ref().and_then(|p| p.snapshot_id.clone()),
        rto_seconds: state
            .measurement
            .as_ref()
            .map(|m| m.rto_seconds.max(0) as u64),
        rpo_seconds: state
            .measurement
            .as_ref()
            .map(|m| m.rpo_seconds.max(0) as u64),
        rto_target_seconds: plan.targets.rto_seconds.max(0) as u64,
        rpo_target_seconds: plan.targets.rpo_seconds.max(0) as u64,
        verdict: match report.verdict {
            Verdict::Passed => DrillVerdict::Met,
            Verdict::TargetMissed => DrillVerdict::Missed,
            Verdict::RestoreFailed => DrillVerdict::Failed,
        },
        report_key: Some(report.json_key.clone()),
    };
    deps.state
        .put(&record, input.token)
        .await
        .map_err(OpsError::from)?;
    Ok(RecordOutput { id: record.id })
}

/// The drill reports of an environment stored in the bucket, oldest first, as `(json_key, html_key)`.
pub async fn report_keys_of(
    objects: &opsplane_shared::aws::objects::ObjectStore,
    environment: &str,
) -> Result<Vec<(String, String)>, OpsError> {
    let mut keys: Vec<String> = objects
        .list(&opsplane_shared::domain::drill::report_prefix(environment))
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".json"))
        .collect();
    // Keys end in a fixed-width UTC timestamp, so their order is the drills' order.
    keys.sort();
    Ok(keys
        .into_iter()
        .map(|json| {
            let html = format!("{}.html", json.trim_end_matches(".json"));
            (json, html)
        })
        .collect())
}

/// Reads a stored drill report.
pub async fn read_report(
    objects: &opsplane_shared::aws::objects::ObjectStore,
    json_key: &str,
) -> Result<DrillReport, OpsError> {
    let bytes = objects
        .get(json_key)
        .await?
        .ok_or_else(|| OpsError::ResourceNotFound(format!("report {json_key}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| OpsError::Internal(format!("{json_key} is not a drill report: {e}")))
}

/// One line per drill: when, verdict, RTO and RPO against their targets.
pub fn summary_line(r: &DrillReport) -> String {
    use opsplane_shared::domain::drill::human_duration;
    let figures = match &r.measurement {
        Some(m) => format!(
            "RTO {} (target {}, {}), RPO {} (target {}, {})",
            human_duration(m.rto_seconds),
            human_duration(m.targets.rto_seconds),
            if m.rto_met { "met" } else { "missed" },
            human_duration(m.rpo_seconds),
            human_duration(m.targets.rpo_seconds),
            if m.rpo_met { "met" } else { "missed" },
        ),
        None => format!(
            "not measured: {}",
            r.error
                .as_deref()
                .unwrap_or("the drill ended before measuring")
        ),
    };
    format!(
        "{}  {:<14}  {}  {}{}",
        r.ts,
        r.verdict.label(),
        r.instance,
        figures,
        if r.torn_down {
            ""
        } else {
            "  [scratch instance NOT torn down]"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_has_the_three_metrics_by_environment() {
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let m = opsplane_shared::domain::drill::measure(
            at,
            at + Duration::seconds(90),
            at,
            (at - Duration::seconds(30), RpoSource::Snapshot),
            None,
            Targets {
                rto_seconds: 1800,
                rpo_seconds: 300,
            },
        );
        let line = emf_line("prod", Some(&m), true, at);
        let cw = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "opsplane");
        assert_eq!(cw["Dimensions"], json!([["Environment"]]));
        let names: Vec<&str> = cw["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["RtoSeconds", "RpoSeconds", "DrillPassed"]);
        assert_eq!(cw["Metrics"][0]["Unit"], "Seconds");
        assert_eq!(cw["Metrics"][2]["Unit"], "Count");
        assert_eq!(
            (line["RtoSeconds"].as_i64(), line["RpoSeconds"].as_i64()),
            (Some(90), Some(30))
        );
        assert_eq!(line["DrillPassed"], 1);
        assert_eq!(line["Environment"], "prod");
        assert_eq!(line["_aws"]["Timestamp"], at.timestamp_millis());
        let failed = emf_line("prod", None, false, at);
        assert_eq!(failed["DrillPassed"], 0);
        assert!(failed.get("RtoSeconds").is_none());
        assert_eq!(
            failed["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn lambda_causes_are_unwrapped_for_people() {
        let e = json!({"Error": "RestoreFailed", "Cause": "{\"errorMessage\":\"restore failed: x\",\"errorType\":\"RestoreFailed\"}"});
        assert_eq!(error_text(&e), "RestoreFailed: restore failed: x");
        let e = json!({"Error": "States.Timeout", "Cause": "plain"});
        assert_eq!(error_text(&e), "States.Timeout: plain");
    }
}
