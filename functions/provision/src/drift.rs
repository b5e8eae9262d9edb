//! Drift: the plan of an environment's spec in force against what exists, never applied, with the policy
//! findings of what exists now (an instance made public behind opsplane's back).

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::observe::observe;
use opsplane_shared::domain::backup::key_timestamp;
use opsplane_shared::domain::plan::{Finding, Plan, Severity, existing_findings, plan};
use opsplane_shared::state::DriftRecord;
use serde::{Deserialize, Serialize};

use crate::{Deps, short_id};

/// One environment's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The environment.
    pub environment: String,
    /// The spec version compared with (in force, else the last known good, else the latest upload).
    pub spec_version: String,
    /// When it was checked.
    pub checked_at: DateTime<Utc>,
    /// Whether anything differs from the spec.
    pub drifted: bool,
    /// What it would take to return to the spec.
    pub plan: Plan,
    /// The policy findings of what exists now.
    pub existing: Vec<Finding>,
}

impl DriftReport {
    /// A short readable report.
    pub fn render(&self) -> String {
        let mut out = format!(
            "drift of {} against spec version {}: {}\n",
            self.environment,
            self.spec_version,
            if self.drifted { "DRIFTED" } else { "in sync" }
        );
        out.push_str(&self.plan.render_table());
        for f in &self.existing {
            let sev = match f.severity {
                Severity::Block => "BLOCK",
                Severity::Warn => "warn ",
            };
            out.push_str(&format!(
                "  {sev} {} [{}] now: {}\n",
                f.resource, f.rule, f.message
            ));
        }
        out
    }
}

/// Compares the environment with its spec in force; reads only.
pub async fn report(deps: &Deps, environment: &str) -> Result<DriftReport, OpsError> {
    let meta = deps.state.meta(environment).await?;
    let version = meta
        .in_force
        .map(|f| f.spec_version)
        .or(meta.last_known_good.map(|l| l.spec_version));
    let stored = deps.spec(environment, version.as_deref()).await?;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), &stored.spec).await?;
    let p = plan(&stored.spec, &actual);
    let existing = existing_findings(&actual);
    Ok(DriftReport {
        environment: environment.to_owned(),
        spec_version: stored.version,
        checked_at: deps.clock.now(),
        drifted: !p.changes.is_empty(),
        plan: p,
        existing,
    })
}

/// `drift`: one environment of the sweep.
#[derive(Debug, Deserialize)]
pub struct DriftInput {
    /// The environment.
    pub environment: String,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// What the sweep keeps of one environment's drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftSummary {
    /// The environment.
    pub environment: String,
    /// Whether it drifted.
    pub drifted: bool,
    /// How many changes it would take to return to the spec.
    pub changes: usize,
    /// How many blocking findings (plan and what exists).
    pub blocking: usize,
    /// The report object.
    pub report_key: String,
}

/// Checks one environment's drift, records it (`DRIFT#<ts>#<id>`) and writes the report object
/// `reports/drift/<env>/<ts>.json`. Never changes the environment.
pub async fn drift_action(deps: &Deps, input: DriftInput) -> Result<DriftSummary, OpsError> {
    let r = report(deps, &input.environment).await?;
    let id = short_id(&format!("{}#{}", input.execution, input.environment));
    let report_key = format!(
        "reports/drift/{}/{}-{id}.json",
        input.environment,
        key_timestamp(r.checked_at)
    );
    let body = serde_json::to_vec_pretty(&r)
        .map_err(|e| OpsError::Internal(format!("serialising the drift report: {e}")))?;
    deps.objects
        .put(&report_key, body, "application/json")
        .await?;
    let findings: Vec<&Finding> = r.plan.findings.iter().chain(&r.existing).collect();
    let blocking = findings
        .iter()
        .filter(|f| f.severity == Severity::Block)
        .count();
    let record = DriftRecord {
        environment: r.environment.clone(),
        id,
        checked_at: r.checked_at,
        spec_version: r.spec_version.clone(),
        drifted: r.drifted,
        changes: serde_json::to_value(&r.plan.changes).unwrap_or_default(),
        findings: serde_json::to_value(&findings).unwrap_or_default(),
        report_key: Some(report_key.clone()),
    };
    deps.state.put_observation(&record).await?;
    tracing::info!(
        environment = r.environment,
        drifted = r.drifted,
        changes = r.plan.changes.len(),
        blocking,
        "drift checked"
    );
    Ok(DriftSummary {
        environment: r.environment,
        drifted: r.drifted,
        changes: r.plan.changes.len(),
        blocking,
        report_key,
    })
}
