//! The drill's report: the verdict, its JSON and HTML in S3, the EMF metrics line, and reading reports back.

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::domain::backup::key_timestamp;
use opsplane_shared::domain::drill::{
    CACHE_PHASES, CacheReport, Check, DATABASE_PHASES, DrillPoint, DrillReport, Measurement,
    StateEvent, Verdict, phases, render_html, report_keys,
};
use opsplane_shared::state::{DrillRecord, DrillVerdict};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cache::CachePick;
use super::pick::Pick;
use super::teardown::TeardownOutput;
use super::validate::DrillPlan;
use super::verify::Verification;
use crate::Deps;

/// How many past drills the report's chart shows (this one included).
pub const CHART_DRILLS: u32 = 30;

/// What one engine's steps of the drill left (the instance's, or the Redis group's), each absent when it
/// did not run.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "P: Deserialize<'de>"))]
pub struct Steps<P> {
    /// What was restored.
    #[serde(default)]
    pub pick: Option<P>,
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
    /// The error of a teardown that did not finish (the orphan sweep will catch the scratch resource).
    #[serde(default)]
    pub teardown_error: Option<Value>,
}

impl<P> Default for Steps<P> {
    fn default() -> Self {
        Self {
            pick: None,
            verify: None,
            measurement: None,
            error: None,
            teardown: None,
            teardown_error: None,
        }
    }
}

/// What one engine's part of the drill amounts to.
struct Outcome {
    verdict: Verdict,
    checks: Vec<Check>,
    error: Option<String>,
    torn_down: bool,
}

impl<P> Steps<P> {
    /// The verdict, the checks with the errors as failed checks (`<prefix>drill`, `<prefix>teardown`),
    /// the error for people, and whether no scratch resource is left.
    fn outcome(&self, prefix: &str) -> Outcome {
        let mut checks = self
            .verify
            .as_ref()
            .map(|v| v.checks.clone())
            .unwrap_or_default();
        let error = self.error.as_ref().map(error_text);
        if let Some(e) = &error {
            checks.push(Check::new(format!("{prefix}drill"), false, e.clone()));
        }
        if let Some(e) = &self.teardown_error {
            checks.push(Check::new(
                format!("{prefix}teardown"),
                false,
                error_text(e),
            ));
        }
        let verdict = match (&self.error, &self.teardown_error, &self.measurement) {
            (None, None, Some(m)) => Verdict::of(m),
            _ => Verdict::RestoreFailed,
        };
        Outcome {
            verdict,
            checks,
            error,
            // Nothing to tear down when nothing was picked (nothing was restored).
            torn_down: (self.teardown.is_some() || self.pick.is_none())
                && self.teardown_error.is_none(),
        }
    }
}

/// The drill workflow's state as it reaches the report: the plan, what each step left, and the report.
#[derive(Debug, Clone, Deserialize)]
pub struct DrillState {
    /// The plan.
    pub plan: DrillPlan,
    /// What the instance's steps left.
    #[serde(flatten)]
    pub steps: Steps<Pick>,
    /// The report, once written.
    #[serde(default)]
    pub report: Option<ReportOutput>,
    /// What the Redis steps left, when the drill has a replication group.
    #[serde(default)]
    pub cache: Option<Steps<CachePick>>,
}

/// The Redis part of the report, from its steps' outputs.
fn cache_report(
    plan: &DrillPlan,
    steps: Option<&Steps<CachePick>>,
    events: &[StateEvent],
) -> Option<CacheReport> {
    let cache = plan.cache.as_ref()?;
    let none = Steps::default();
    let steps = steps.unwrap_or(&none);
    let o = steps.outcome("cache-");
    Some(CacheReport {
        replication_group: cache.source.clone(),
        snapshot_id: steps.pick.as_ref().map(|p| p.snapshot_id.clone()),
        scratch_group: cache.scratch.replication_group_id.clone(),
        verdict: o.verdict,
        measurement: steps.measurement.clone(),
        checks: o.checks,
        error: o.error,
        torn_down: o.torn_down,
        phases: phases(events, &CACHE_PHASES),
    })
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
    let own = state.steps.outcome("");
    // The phases come from the execution's events; a history that cannot be read costs the timeline, not
    // the report.
    let events = match crate::history::state_events(deps.history.as_ref(), &input.execution).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "the drill's history could not be read: no timeline");
            Vec::new()
        }
    };
    let cache = cache_report(plan, state.cache.as_ref(), &events);
    // The drill passes only when every engine's part does.
    let verdict = cache
        .as_ref()
        .map_or(own.verdict, |c| own.verdict.worst(c.verdict));
    let local = deps.config.endpoint_url.is_some();
    let note = if local {
        "Local run: the workflow ran on the local engine's virtual clock against opsplane's model of AWS \
         (moto behind it), where a restore takes AWS's typical time (docs/LOCAL-WORLD.md); the RTO is \
         measured from the execution's events exactly as in AWS, to the first poll that saw the instance \
         available."
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
        snapshot_id: state
            .steps
            .pick
            .as_ref()
            .and_then(|p| p.snapshot_id.clone()),
        scratch_instance: Some(plan.scratch_id.clone()),
        verdict,
        measurement: state.steps.measurement.clone(),
        checks: own.checks,
        error: own.error,
        torn_down: own.torn_down,
        note: note.to_owned(),
        cache,
        phases: phases(&events, &DATABASE_PHASES),
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
    if let Some(m) = &state.steps.measurement {
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
    // EMF goes to the handler's log (stderr), which Lambda ships to CloudWatch Logs, where it becomes
    // metrics; stdout belongs to whatever runs the handler in-process (the CLI).
    opsplane_shared::telemetry::emit_metrics(&emf_line(
        &plan.environment,
        state.steps.measurement.as_ref(),
        verdict == Verdict::Passed,
        deps.now(),
    ));
    tracing::info!(environment = %plan.environment, drill = %plan.drill_id, ?verdict, %json_key, "drill reported");
    Ok(ReportOutput {
        verdict,
        json_key,
        html_key,
    })
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

/// RTO and RPO against their targets, or why they were not measured.
fn figures(m: Option<&Measurement>, error: Option<&str>) -> String {
    use opsplane_shared::domain::drill::human_duration;
    match m {
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
            error.unwrap_or("the drill ended before measuring")
        ),
    }
}

/// One line per drill: when, verdict, RTO and RPO against their targets, for the instance and the Redis
/// replication group.
pub fn summary_line(r: &DrillReport) -> String {
    let cache = r
        .cache
        .as_ref()
        .map(|c| {
            format!(
                "; Redis {} {}{}",
                c.replication_group,
                figures(c.measurement.as_ref(), c.error.as_deref()),
                if c.torn_down {
                    ""
                } else {
                    "  [scratch replication group NOT torn down]"
                }
            )
        })
        .unwrap_or_default();
    format!(
        "{}  {:<14}  {}  {}{}{cache}",
        opsplane_shared::domain::readable::timestamp(r.started_at),
        r.verdict.label(),
        r.instance,
        figures(r.measurement.as_ref(), r.error.as_deref()),
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
    use chrono::Duration;
    use opsplane_shared::domain::drill::{RpoSource, Targets};

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
