//! `plan-fleet`: what a fleet run does, in which order and at what pace.

use chrono::{DateTime, Duration, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::domain::backup::key_timestamp;
use opsplane_shared::domain::fleet::budget::{
    AccountShape, BackupShape, backup_requests, drill_requests, start_offsets,
};
use opsplane_shared::domain::fleet::capacity::RegionCapacity;
use opsplane_shared::domain::spec::EnvironmentSpec;
use opsplane_shared::sweep::sweep_environments;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::run_prefix;
use crate::{Deps, short_id};

/// `plan-fleet`: the workflow's input and the execution.
#[derive(Debug, Deserialize)]
pub struct PlanInput {
    /// The workflow's input: `{"operation": "backup" | "drill-rotation", "environments"?: [...]}`.
    pub input: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// `$$.State.EnteredTime`: the execution's clock, which the items' `not_before` (their Map Run
    /// children's `Wait`) are read against. Absent: the function's clock.
    #[serde(default)]
    pub entered: Option<DateTime<Utc>>,
}

/// What a fleet run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Every environment's backup.
    Backup,
    /// Tonight's share of the drill rotation.
    DrillRotation,
}

impl Operation {
    /// Its name in the input and in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Backup => "backup",
            Operation::DrillRotation => "drill-rotation",
        }
    }

    fn parse(value: Option<&Value>) -> Result<Self, OpsError> {
        match value.and_then(Value::as_str) {
            Some("backup") => Ok(Operation::Backup),
            Some("drill-rotation") => Ok(Operation::DrillRotation),
            _ => Err(OpsError::invalid(
                "operation",
                "must be \"backup\" (every environment's backup) or \"drill-rotation\" (tonight's drills)",
            )),
        }
    }
}

/// One child execution of the run: an environment's backup, or one instance's drill, not before a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The environment.
    pub environment: String,
    /// The instance drilled (drill rotation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// When it may start: its share of the request budget.
    pub not_before: DateTime<Utc>,
}

/// The run's plan: where its items are, how many run at once, and what was checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPlan {
    /// What the run does.
    pub operation: Operation,
    /// The run's id (derived from the execution).
    pub run_id: String,
    /// The run's key timestamp.
    pub ts: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The state bucket, where the items and results are.
    pub bucket: String,
    /// The items' key (a JSON array of [`Item`]), read by the Map's `ItemReader`.
    pub items_key: String,
    /// Where the Map's `ResultWriter` writes.
    pub results_prefix: String,
    /// How many child executions the run starts.
    pub items: usize,
    /// The Map's `MaxConcurrency`.
    pub max_concurrency: u64,
    /// The RDS requests per second the run may spend.
    pub budget: f64,
    /// The RDS requests the run is expected to make.
    pub estimated_requests: u64,
    /// Seconds from the run's start to its last item's start.
    pub paced_seconds: u64,
    /// The manual snapshot quota of each Region the run creates snapshots in.
    #[serde(default)]
    pub capacity: Vec<RegionCapacity>,
    /// Snapshots the retention rules deleted before the run to make room.
    #[serde(default)]
    pub pruned: Vec<String>,
    /// Environments left out: their spec does not load.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Drill rotation: instances whose period runs out before the next night that the nightly bound left
    /// for later.
    #[serde(default)]
    pub deferred: usize,
}

/// A Distributed Map runs at most this many child executions at once (Step Functions quotas).
const MAX_CHILDREN: u64 = 10_000;

/// Plans the run; touches nothing but the items object (and, when the quota needs it, the snapshots the
/// retention rules allow deleting).
pub async fn plan(deps: &Deps, input: PlanInput) -> Result<FleetPlan, OpsError> {
    let fields = input.input.as_object().ok_or_else(|| {
        OpsError::invalid(
            "input",
            "must be an object like {\"operation\": \"backup\"}",
        )
    })?;
    let operation = Operation::parse(fields.get("operation"))?;
    let mut rest = fields.clone();
    rest.remove("operation");
    let environments = sweep_environments(&deps.specs, &Value::Object(rest)).await?;
    let mut specs = Vec::with_capacity(environments.len());
    let mut skipped = Vec::new();
    for env in &environments {
        match deps.spec(env).await {
            Ok(spec) => specs.push(spec),
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "fleet run leaves out an environment whose spec does not load");
                skipped.push(format!("{env}: {e}"));
            }
        }
    }
    let started_at = deps.now();
    let run_id = short_id(&input.execution);
    let ts = format!("{}-{run_id}", key_timestamp(started_at));
    let budget = deps.config.fleet.rds_request_budget;
    let (items, requests, capacity, pruned, deferred) = match operation {
        Operation::Backup => {
            let (capacity, pruned) =
                super::capacity::check(deps, &specs, &input.execution, started_at).await?;
            let account = AccountShape {
                instances: specs.iter().map(|s| s.rds.len() as u64).sum(),
                manual_snapshots: capacity.first().map_or(0, |c| c.used + c.need),
            };
            let chosen: Vec<&EnvironmentSpec> = specs
                .iter()
                .filter(|s| !s.rds.is_empty() || s.eks.is_some() || !s.redis.is_empty())
                .collect();
            let requests: Vec<u64> = chosen
                .iter()
                .map(|s| backup_requests(BackupShape::of(s), account))
                .collect();
            let items: Vec<(String, Option<String>)> = chosen
                .iter()
                .map(|s| (s.environment.clone(), None))
                .collect();
            (items, requests, capacity, pruned, 0)
        }
        Operation::DrillRotation => {
            let night = super::rotation::tonight(deps, &specs, started_at).await?;
            let requests = vec![drill_requests(); night.chosen.len()];
            let items = night
                .chosen
                .into_iter()
                .map(|(env, instance)| (env, Some(instance)))
                .collect();
            (items, requests, Vec::new(), Vec::new(), night.deferred)
        }
    };
    let offsets = start_offsets(&requests, budget);
    let paced_from = input.entered.unwrap_or(started_at);
    let items: Vec<Item> = items
        .into_iter()
        .zip(&offsets)
        .map(|((environment, instance), offset)| Item {
            environment,
            instance,
            not_before: paced_from + Duration::milliseconds((offset * 1000.0).round() as i64),
        })
        .collect();
    let prefix = run_prefix(&ts, operation);
    let items_key = format!("{prefix}/items.json");
    let bytes = serde_json::to_vec(&items)
        .map_err(|e| OpsError::Internal(format!("serialising the run's items: {e}")))?;
    deps.objects
        .put(&items_key, bytes, "application/json")
        .await?;
    let plan = FleetPlan {
        operation,
        run_id,
        ts,
        started_at,
        bucket: deps.objects.bucket().to_owned(),
        items_key,
        results_prefix: format!("{prefix}/results"),
        items: items.len(),
        // Every item may be running (most of them waiting for their start): the pace, not the Map's
        // concurrency, is what bounds the request rate.
        max_concurrency: (items.len() as u64).clamp(1, MAX_CHILDREN),
        budget,
        estimated_requests: requests.iter().sum(),
        paced_seconds: offsets.last().map_or(0, |o| o.ceil() as u64),
        capacity,
        pruned,
        skipped,
        deferred,
    };
    tracing::info!(
        operation = operation.as_str(),
        items = plan.items,
        estimated_requests = plan.estimated_requests,
        paced_seconds = plan.paced_seconds,
        "fleet run planned"
    );
    Ok(plan)
}
