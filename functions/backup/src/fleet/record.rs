//! `record-fleet-run`: the run's outcome read from what the Map Run's `ResultWriter` wrote (a manifest
//! naming the files of succeeded, failed and pending child executions), stored as
//! `reports/fleet/runs/<ts>-<operation>.json`, with the drill rotation's compliance and a fresh fleet report.

use opsplane_shared::OpsError;
use opsplane_shared::domain::fleet::rotation::{Compliance, compliance};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{FleetPlan, Operation};
use crate::Deps;

/// `record-fleet-run`.
#[derive(Debug, Deserialize)]
pub struct RecordInput {
    /// The run's plan.
    pub plan: FleetPlan,
    /// The Map's `ResultWriterDetails`: where its manifest is.
    pub results: ResultWriterDetails,
}

/// Where a Map Run's results were written (`ResultWriterDetails`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultWriterDetails {
    /// The bucket.
    pub bucket: String,
    /// The manifest's key.
    pub key: String,
}

/// One child that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Its environment.
    pub environment: String,
    /// The instance drilled, for the rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The error the workflow it ran ended with (its own, not the Map Run's wrapper).
    pub error: String,
    /// Why.
    pub cause: String,
}

/// The run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// What ran.
    pub operation: Operation,
    /// The run's id.
    pub run_id: String,
    /// Child executions that succeeded.
    pub succeeded: usize,
    /// Those that did not.
    pub failed: Vec<Failure>,
    /// How many did not (for the definition's Choice).
    pub failed_count: usize,
    /// Items never started (the Map Run stopped first).
    pub pending: usize,
    /// The run's report.
    pub report_key: String,
    /// The fleet's drill compliance after a rotation night.
    #[serde(default)]
    pub compliance: Option<Compliance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Manifest {
    result_files: ResultFiles,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct ResultFiles {
    #[serde(default)]
    succeeded: Vec<ResultFile>,
    #[serde(default)]
    failed: Vec<ResultFile>,
    #[serde(default)]
    pending: Vec<ResultFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResultFile {
    key: String,
}

/// A child execution as the result files describe it; its `Input` and `Cause` are JSON text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Child {
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

/// Reads the run's results, writes its report and returns its outcome.
pub async fn record(deps: &Deps, input: RecordInput) -> Result<RunSummary, OpsError> {
    let plan = &input.plan;
    if input.results.bucket != deps.objects.bucket() {
        return Err(OpsError::invalid(
            "results.Bucket",
            format!(
                "the run's results are written to the state bucket {}, not {}",
                deps.objects.bucket(),
                input.results.bucket
            ),
        ));
    }
    let manifest: Manifest = read_json(deps, &input.results.key).await?;
    let files = manifest.result_files;
    let mut succeeded = 0;
    for f in &files.succeeded {
        succeeded += read_json::<Vec<Value>>(deps, &f.key).await?.len();
    }
    let mut failed = Vec::new();
    for f in &files.failed {
        for child in read_json::<Vec<Child>>(deps, &f.key).await? {
            failed.push(failure(child));
        }
    }
    let mut pending = 0;
    for f in &files.pending {
        pending += read_json::<Vec<Value>>(deps, &f.key).await?.len();
    }
    let compliance = match plan.operation {
        Operation::Backup => None,
        Operation::DrillRotation => {
            let mut specs = Vec::new();
            for env in deps.specs.environments().await? {
                if let Ok(spec) = deps.spec(&env).await {
                    specs.push(spec);
                }
            }
            let candidates = super::rotation::candidates(deps, &specs).await?;
            Some(compliance(&candidates, deps.now()))
        }
    };
    let report_key = format!(
        "reports/fleet/runs/{}-{}.json",
        plan.ts,
        plan.operation.as_str()
    );
    let summary = RunSummary {
        operation: plan.operation,
        run_id: plan.run_id.clone(),
        succeeded,
        failed_count: failed.len(),
        failed,
        pending,
        report_key: report_key.clone(),
        compliance,
    };
    let report = serde_json::json!({ "plan": plan, "outcome": summary });
    let bytes = serde_json::to_vec_pretty(&report)
        .map_err(|e| OpsError::Internal(format!("serialising the run's report: {e}")))?;
    deps.objects
        .put(&report_key, bytes, "application/json")
        .await?;
    // The heat map people look at shows the run's effect at once, not at the next health sweep.
    let fleet = opsplane_shared::fleet::gather(&deps.specs, &deps.state, deps.now()).await?;
    opsplane_shared::fleet::store(&deps.objects, &fleet).await?;
    tracing::info!(
        operation = plan.operation.as_str(),
        succeeded = summary.succeeded,
        failed = summary.failed_count,
        pending = summary.pending,
        %report_key,
        "fleet run recorded"
    );
    Ok(summary)
}

async fn read_json<T: serde::de::DeserializeOwned>(deps: &Deps, key: &str) -> Result<T, OpsError> {
    let bytes = deps.objects.get(key).await?.ok_or_else(|| {
        OpsError::ResourceNotFound(format!(
            "s3://{}/{key}, written by the run's Map, is missing",
            deps.objects.bucket()
        ))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        OpsError::Internal(format!(
            "s3://{}/{key} is not what a Map Run writes: {e}",
            deps.objects.bucket()
        ))
    })
}

/// A failed child: its item, and the error of the workflow it started (the child's cause is that
/// workflow's description as `states:startExecution.sync` fails with it).
fn failure(child: Child) -> Failure {
    let input: Value = child
        .input
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let item = &input["item"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let nested: Value = child
        .cause
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let (error, cause) = match (text(&nested["Error"]), text(&nested["Cause"])) {
        (Some(e), c) => (e, c.unwrap_or_default()),
        (None, _) => (
            child.error.unwrap_or_else(|| "Unknown".to_owned()),
            child.cause.unwrap_or_default(),
        ),
    };
    Failure {
        environment: text(&item["environment"]).unwrap_or_default(),
        instance: text(&item["instance"]),
        error,
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_child_is_told_by_the_error_of_the_workflow_it_ran() {
        let nested =
            serde_json::json!({"Status": "FAILED", "Error": "LockHeld", "Cause": "prod is held"});
        let child = Child {
            input: Some(
                r#"{"item": {"environment": "prod", "not_before": "x"}, "operation": "backup"}"#
                    .into(),
            ),
            error: Some("States.TaskFailed".into()),
            cause: Some(nested.to_string()),
        };
        let f = failure(child);
        assert_eq!(f.environment, "prod");
        assert_eq!(f.error, "LockHeld");
        assert_eq!(f.cause, "prod is held");
        let plain = failure(Child {
            input: None,
            error: Some("States.Timeout".into()),
            cause: Some("took too long".into()),
        });
        assert_eq!(
            (plain.error.as_str(), plain.cause.as_str()),
            ("States.Timeout", "took too long")
        );
    }
}
