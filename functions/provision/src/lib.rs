//! The provision Lambda: every step of `provision.asl.json` (validate, plan, approval request, pre-change
//! snapshots, apply, convergence, revert to the last known good, record), the revert and record steps of
//! `rollback.asl.json`, and drift detection (`drift.asl.json`, `opsplane drift`).
//!
//! One function, dispatched on the input's `action`. Every action is a plain async function over a typed
//! input; [`handle`] is the JSON boundary Lambda (and the local engine) calls. Every AWS mutation is preceded
//! by a fence check with the caller's lock token, so a holder that lost the lock (a deployment a rollback
//! stopped and took over from) changes nothing.

pub mod apply;
pub mod bake;
pub mod drift;
pub mod references;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::alarms::Alarms;
use opsplane_shared::aws::ec2_resources::Ec2Resources;
use opsplane_shared::aws::eks::Eks;
use opsplane_shared::aws::elasticache::Caches;
use opsplane_shared::aws::keys::Keys;
use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::aws::observe::observe;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::aws::specs::{SpecStore, SpecStoreError, StoredSpec};
use opsplane_shared::boundary::{parse_action, to_value};
use opsplane_shared::clock::{Clock, SystemClock, rfc3339};
use opsplane_shared::domain::backup::{MANAGED_BY_VALUE, TAG_ENVIRONMENT, TAG_MANAGED_BY};
pub use opsplane_shared::domain::names::short_id;
use opsplane_shared::domain::plan::{Plan, changes_sha256, plan};
use opsplane_shared::domain::spec::validate_environment_name;
use opsplane_shared::lock::Lock;
use opsplane_shared::secrets::{SecretSource, SecretsManager, parse_secret};
use opsplane_shared::state::{
    ApprovalRecord, ApprovalStatus, DeploymentRecord, DeploymentStatus, InForce, LastKnownGood,
    StateStore,
};
use opsplane_shared::sweep::{SweepInput, sweep_environments};
use opsplane_shared::{Config, OpsError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function's name, as registered on the local engine and deployed.
pub const FUNCTION_NAME: &str = "provision";
/// The tag naming the deployment a pre-change snapshot was taken for (retention knows it too).
pub use opsplane_shared::domain::backup::TAG_DEPLOYMENT;

/// What the handler needs: adapters over the AWS clients and the clock.
#[derive(Clone)]
pub struct Deps {
    /// Where state lives.
    pub config: Config,
    /// RDS.
    pub rds: Rds,
    /// EKS.
    pub eks: Eks,
    /// ElastiCache: the Redis replication groups.
    pub caches: Caches,
    /// Secrets Manager: a new replication group's AUTH token, read by reference when it is made.
    pub secrets: SecretsManager,
    /// The specs (versioned).
    pub specs: SpecStore,
    /// The state bucket (drift reports).
    pub objects: ObjectStore,
    /// Records, fence, last known good, approvals.
    pub state: StateStore,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The environment lock, renewed by every polling and mutating step.
    pub lock: Arc<dyn Lock>,
    /// The environment's CloudWatch alarms, watched during a bake.
    pub alarms: Alarms,
    /// KMS: whether the keys a spec names exist.
    pub keys: Keys,
    /// Cloud Control: whether the security groups, subnets and launch templates a spec names exist.
    pub ec2: Ec2Resources,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// The production wiring: every adapter over `clients`, the wall clock.
    pub fn new(config: Config, clients: &Clients) -> Self {
        Self {
            rds: Rds::new(clients.rds.clone()),
            eks: Eks::new(clients.eks.clone()),
            caches: Caches::new(clients.elasticache.clone()),
            secrets: SecretsManager::new(clients.secrets_manager.clone()),
            specs: SpecStore::new(clients.s3.clone(), config.bucket_name.clone()),
            objects: ObjectStore::new(clients.s3.clone(), config.bucket_name.clone()),
            state: StateStore::from_config(&config, clients),
            clock: Arc::new(SystemClock),
            lock: opsplane_shared::lock::from_config(
                &config,
                clients,
                Arc::new(SfnExecutions::new(clients.sfn.clone())),
            ),
            alarms: Alarms::new(clients.cloudwatch.clone()),
            keys: Keys::new(clients.kms.clone()),
            ec2: Ec2Resources::new(clients.cloudcontrol.clone()),
            config,
        }
    }

    /// The environment's spec at `version` (latest when `None`).
    pub async fn spec(
        &self,
        environment: &str,
        version: Option<&str>,
    ) -> Result<StoredSpec, OpsError> {
        validate_environment_name(environment).map_err(|r| OpsError::invalid("environment", r))?;
        match self.specs.get(environment, version).await {
            Ok(s) => Ok(s),
            // A version that does not exist is the caller's mistake about that field.
            Err(err @ SpecStoreError::Missing { .. }) if version.is_some() => {
                Err(OpsError::invalid("spec_version", err.to_string()))
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// The tags every resource opsplane creates carries: the spec's, `ManagedBy=opsplane` and the environment.
pub fn resource_tags(
    spec: &opsplane_shared::domain::spec::EnvironmentSpec,
) -> std::collections::BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.entry(TAG_MANAGED_BY.to_owned())
        .or_insert_with(|| MANAGED_BY_VALUE.to_owned());
    tags.insert(TAG_ENVIRONMENT.to_owned(), spec.environment.clone());
    tags
}

/// A replication group's AUTH token from the secret `arn` (a string, or JSON with `password`), read only
/// when the group is made and sent only to ElastiCache.
async fn auth_token(deps: &Deps, arn: &str) -> Result<String, OpsError> {
    let secret = deps.secrets.secret_string(arn).await?;
    let (_, token) = parse_secret(arn, &secret)?;
    Ok(token.expose().to_owned())
}

/// Parses an action's input; a malformed one is `InvalidInput` naming the field serde complains about.
pub fn parse<T: DeserializeOwned>(input: Value) -> Result<T, OpsError> {
    opsplane_shared::error::parse_input(input, "")
}

/// `validate`: the workflow's input as given, and the execution.
#[derive(Debug, Deserialize)]
pub struct ValidateInput {
    /// The workflow's input.
    pub input: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The provision workflow's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// The environment.
    pub environment: String,
    /// The S3 version of `specs/<env>/spec.yaml` to apply; the latest when absent.
    #[serde(default)]
    pub spec_version: Option<String>,
    /// Who asks (GitHub subject, operator); the execution when absent.
    #[serde(default)]
    pub actor: Option<String>,
    /// The caller's GitHub context, added by the dispatch function; kept in the execution's input only.
    #[serde(default)]
    pub github: Option<serde_json::Map<String, Value>>,
}

/// `github`, when present, must be an object: the dispatch function's GitHub context. Checked before the
/// typed parse so that the error names the field.
fn check_github(input: &Value) -> Result<(), OpsError> {
    match input.get("github") {
        Some(github) if !github.is_object() => Err(OpsError::invalid(
            "github",
            "must be an object: the GitHub context the dispatch function adds",
        )),
        _ => Ok(()),
    }
}

/// One deployment's identity, carried through the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The environment.
    pub environment: String,
    /// The spec version applied (pinned at validation, so what is approved is what is applied).
    pub spec_version: String,
    /// The deployment's id (derived from the execution).
    pub deployment_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Who asked.
    pub actor: String,
    /// How long an approval may take, seconds (the spec's `approval.timeout_minutes`).
    pub approval_timeout_seconds: u64,
    /// How long the change bakes after its health check (the spec's `rollback.bake_minutes`).
    #[serde(default)]
    pub bake_minutes: u32,
    /// For a rollback: the deployment an alarm blamed, which leaves the known-good history.
    #[serde(default)]
    pub blamed: Option<BlamedDeployment>,
}

/// The deployment a rollback undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlamedDeployment {
    /// Its id.
    pub deployment_id: String,
    /// The spec version it applied (`None` for a deployment stopped before it recorded one).
    #[serde(default)]
    pub spec_version: Option<String>,
}

/// Checks the input and pins the spec version; touches nothing.
pub async fn validate(deps: &Deps, input: ValidateInput) -> Result<Deployment, OpsError> {
    if !input.input.is_object() {
        return Err(OpsError::invalid(
            "input",
            "must be an object like {\"environment\": \"prod\", \"spec_version\": \"<S3 version id>\"}",
        ));
    }
    check_github(&input.input)?;
    let req: ProvisionRequest = parse(input.input)?;
    if req
        .spec_version
        .as_deref()
        .is_some_and(|v| v.trim().is_empty())
    {
        return Err(OpsError::invalid(
            "spec_version",
            "must be an S3 version id of specs/<env>/spec.yaml; leave it out for the latest",
        ));
    }
    let stored = deps
        .spec(&req.environment, req.spec_version.as_deref())
        .await?;
    Ok(Deployment {
        environment: req.environment,
        spec_version: stored.version,
        deployment_id: short_id(&input.execution),
        started_at: deps.clock.now(),
        actor: req.actor.unwrap_or(input.execution),
        approval_timeout_seconds: u64::from(stored.spec.approval.timeout_minutes) * 60,
        bake_minutes: stored.spec.rollback.bake_minutes,
        blamed: None,
    })
}

/// `plan`: which spec version to plan.
#[derive(Debug, Deserialize)]
pub struct PlanInput {
    /// The environment.
    pub environment: String,
    /// The spec version.
    pub spec_version: String,
}

/// Plans the spec version against what RDS and EKS describe. A blocked plan fails with `PolicyViolation`
/// listing every blocking finding.
pub async fn plan_action(deps: &Deps, input: PlanInput) -> Result<Plan, OpsError> {
    let stored = deps
        .spec(&input.environment, Some(&input.spec_version))
        .await?;
    references::check(deps, &stored.spec).await?;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), &stored.spec).await?;
    let p = plan(&stored.spec, &actual);
    tracing::info!(
        environment = input.environment,
        spec_version = input.spec_version,
        changes = p.changes.len(),
        blocked = p.blocked,
        needs_approval = p.needs_approval,
        "planned"
    );
    if p.blocked {
        let reasons: Vec<String> = p
            .blocking()
            .map(|f| format!("{} [{}] {}", f.resource, f.rule, f.message))
            .collect();
        return Err(OpsError::PolicyViolation(format!(
            "the plan for `{}` is blocked and nothing was changed: {}",
            input.environment,
            reasons.join("; ")
        )));
    }
    Ok(p)
}

/// `request-approval`: the task token the workflow waits on.
#[derive(Debug, Deserialize)]
pub struct ApprovalInput {
    /// The environment.
    pub environment: String,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// `$$.Task.Token`.
    pub task_token: String,
    /// The plan waiting.
    pub plan: Value,
    /// How long the workflow waits, seconds.
    pub timeout_seconds: u64,
}

/// Records the pending approval, keyed by the execution, with the token that resumes it.
pub async fn request_approval(deps: &Deps, input: ApprovalInput) -> Result<Value, OpsError> {
    if input.task_token.is_empty() {
        return Err(OpsError::invalid(
            "task_token",
            "required: pass \"task_token.$\": \"$$.Task.Token\" from a .waitForTaskToken task",
        ));
    }
    let now = deps.clock.now();
    let plan_sha256 = changes_sha256(input.plan.get("changes").unwrap_or(&Value::Null));
    let record = ApprovalRecord {
        execution: input.execution.clone(),
        environment: input.environment.clone(),
        task_token: input.task_token,
        plan: input.plan,
        plan_sha256: Some(plan_sha256.clone()),
        requested_at: now,
        expires_at: now
            + chrono::Duration::seconds(
                i64::try_from(input.timeout_seconds).unwrap_or(i64::MAX / 2),
            ),
        status: ApprovalStatus::Pending,
        decided_by: None,
        reason: None,
        decided_at: None,
    };
    deps.state.put_approval(&record).await?;
    tracing::info!(
        environment = input.environment,
        execution = input.execution,
        timeout_seconds = input.timeout_seconds,
        "waiting for approval: opsplane approve|reject EXECUTION"
    );
    Ok(json!({ "requested": true, "expires_at": record.expires_at, "plan_sha256": plan_sha256 }))
}

/// `record`: how a deployment (or rollback) ended.
#[derive(Debug, Deserialize)]
pub struct RecordInput {
    /// The deployment.
    pub deployment: Deployment,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// The lock's fencing token.
    pub token: u64,
    /// How the deployment ended.
    pub outcome: Outcome,
    /// The plan applied, if there was one.
    #[serde(default)]
    pub plan: Value,
    /// The error, as Step Functions caught it (`{"Error", "Cause"}`).
    #[serde(default)]
    pub error: Option<Value>,
    /// The revert's output, when the environment was reverted.
    #[serde(default)]
    pub revert: Option<Value>,
    /// The workflow's whole state (`"state.$": "$"`): `plan`, `error` and `revert` are taken from it when
    /// not given, since a failure path cannot know which of them exist.
    #[serde(default)]
    pub state: Option<Value>,
}

/// How a deployment ended, as the definition's record steps say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied and healthy; its bake begins.
    Baking,
    /// Applied, healthy and baked: the last known good.
    Succeeded,
    /// Failed; nothing was reverted.
    Failed,
    /// Failed and reverted to the last known good.
    RolledBack,
}

fn error_text(error: &Value) -> String {
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("Error");
    let cause = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if cause.is_empty() {
        name.to_owned()
    } else {
        format!("{name}: {cause}")
    }
}

/// Writes the deployment record, fenced; a healthy deployment becomes the last known good, and the spec
/// version in force follows what was applied (the new one, or the last known good after a revert).
pub async fn record(deps: &Deps, mut input: RecordInput) -> Result<Value, OpsError> {
    if let Some(state) = input.state.take() {
        let field = |name: &str| state.get(name).filter(|v| !v.is_null()).cloned();
        if input.plan.is_null() {
            input.plan = field("plan").unwrap_or_default();
        }
        input.error = input.error.or_else(|| field("error"));
        input.revert = input.revert.or_else(|| field("revert"));
    }
    let d = &input.deployment;
    let now = deps.clock.now();
    let status = match input.outcome {
        Outcome::Baking => DeploymentStatus::Baking,
        Outcome::Succeeded => DeploymentStatus::Succeeded,
        Outcome::Failed => DeploymentStatus::Failed,
        Outcome::RolledBack => DeploymentStatus::RolledBack,
    };
    let reverted_to = input
        .revert
        .as_ref()
        .filter(|r| r.get("reverted").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("spec_version"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let record = DeploymentRecord {
        environment: d.environment.clone(),
        id: d.deployment_id.clone(),
        started_at: d.started_at,
        finished_at: Some(now),
        status,
        spec_version: d.spec_version.clone(),
        plan: input.plan.clone(),
        execution: input.execution.clone(),
        actor: d.actor.clone(),
        error: input.error.as_ref().map(error_text),
    };
    let in_force = match status {
        DeploymentStatus::Baking | DeploymentStatus::Succeeded => Some(d.spec_version.clone()),
        DeploymentStatus::RolledBack => reverted_to.clone(),
        _ => None,
    }
    .map(|spec_version| InForce {
        spec_version,
        deployment_id: d.deployment_id.clone(),
        applied_at: now,
    });
    let known_good = match (status, &reverted_to) {
        (DeploymentStatus::Succeeded, _) => Some(known_good_with(deps, d, now).await?),
        (DeploymentStatus::RolledBack, Some(to)) => Some(known_good_back_to(deps, d, to).await?),
        _ => None,
    };
    let lkg = known_good.as_ref().and_then(|k| k.first().cloned());
    deps.state
        .record_deployment(
            &record,
            in_force.as_ref(),
            known_good.as_deref(),
            input.token,
        )
        .await?;
    // An approval nobody answered (timeout, a failure while waiting) is closed, so it cannot be answered
    // later against a finished workflow.
    if deps.state.approval(&input.execution).await?.is_some() {
        deps.state
            .decide_approval(
                &input.execution,
                ApprovalStatus::Closed,
                &input.execution,
                Some(
                    &record
                        .error
                        .clone()
                        .unwrap_or_else(|| "the workflow went on".into()),
                ),
            )
            .await?;
    }
    let bake_until = (status == DeploymentStatus::Baking)
        .then(|| now + chrono::Duration::minutes(i64::from(d.bake_minutes)));
    Ok(json!({
        "status": status,
        "last_known_good": lkg.map(|l| l.spec_version),
        "in_force": in_force.map(|f| f.spec_version),
        "bake_until": bake_until.map(rfc3339),
    }))
}

/// The environment's known-good history with deployment `d` first: one entry per spec version (its latest
/// deployment), as many as the spec keeps.
async fn known_good_with(
    deps: &Deps,
    d: &Deployment,
    now: DateTime<Utc>,
) -> Result<Vec<LastKnownGood>, OpsError> {
    let stored = deps.spec(&d.environment, Some(&d.spec_version)).await?;
    let mut history = deps.state.meta(&d.environment).await?.known_good;
    history.retain(|k| k.spec_version != d.spec_version);
    history.insert(
        0,
        LastKnownGood {
            deployment_id: d.deployment_id.clone(),
            spec_version: d.spec_version.clone(),
            recorded_at: now,
            spec_sha256: Some(opsplane_shared::aws::objects::sha256_hex(
                stored.text.as_bytes(),
            )),
        },
    );
    history.truncate(stored.spec.rollback.keep_known_good as usize);
    Ok(history)
}

/// The known-good history after going back to `to`: the blamed deployment leaves it and `to` leads it, so it
/// is the last known good again. Unchanged when `to` already leads and nothing is blamed.
async fn known_good_back_to(
    deps: &Deps,
    d: &Deployment,
    to: &str,
) -> Result<Vec<LastKnownGood>, OpsError> {
    let mut history = deps.state.meta(&d.environment).await?.known_good;
    if let Some(blamed) = d.blamed.as_ref().and_then(|b| b.spec_version.as_ref()) {
        history.retain(|k| &k.spec_version != blamed);
    }
    if let Some(i) = history.iter().position(|k| k.spec_version == to) {
        let entry = history.remove(i);
        history.insert(0, entry);
    }
    Ok(history)
}

opsplane_shared::actions! {
    /// The provision function's input: one variant per step of the definitions that call it.
    pub enum Action {
        /// Checks the workflow's input and pins the spec version.
        "validate" => Validate(ValidateInput),
        /// Plans the pinned spec against what exists.
        "plan" => Plan(PlanInput),
        /// Stores the plan and the task token a person answers.
        "request-approval" => RequestApproval(ApprovalInput),
        /// Pre-change snapshots of every instance about to change.
        "snapshot" => Snapshot(apply::SnapshotInput),
        /// Polls the pre-change snapshots.
        "check-snapshots" => CheckSnapshots(apply::Snapshots),
        /// Applies the plan, fenced by the lock's token.
        "apply" => Apply(apply::ApplyInput),
        /// Polls until what was applied is stable.
        "check-stable" => CheckStable(apply::ApplyInput),
        /// Reverts to the last known good.
        "revert" => Revert(apply::RevertInput),
        /// Watches the environment's alarms until the bake ends.
        "bake" => Bake(bake::BakeInput),
        /// Records the deployment.
        "record" => Record(RecordInput),
        /// The environments a sweep covers.
        "list-environments" => ListEnvironments(SweepInput),
        /// Plans an environment without applying (drift).
        "drift" => Drift(drift::DriftInput),
    }
}

/// The JSON boundary: parses the action and returns its output as JSON.
pub async fn handle(deps: &Deps, input: Value) -> Result<Value, OpsError> {
    let action: Action = parse_action(input)?;
    tracing::info!(action = action.name(), "provision function invoked");
    match action {
        Action::Validate(i) => to_value(validate(deps, i).await?),
        Action::Plan(i) => to_value(plan_action(deps, i).await?),
        Action::RequestApproval(i) => request_approval(deps, i).await,
        Action::Snapshot(i) => to_value(apply::snapshot(deps, i).await?),
        Action::CheckSnapshots(i) => to_value(apply::check_snapshots(deps, i).await?),
        Action::Apply(i) => to_value(apply::apply(deps, i).await?),
        Action::CheckStable(i) => to_value(apply::check_stable(deps, i).await?),
        Action::Revert(i) => to_value(apply::revert(deps, i).await?),
        Action::Bake(i) => to_value(bake::bake(deps, i).await?),
        Action::Record(i) => record(deps, i).await,
        Action::ListEnvironments(i) => {
            let environments = sweep_environments(&deps.specs, &i.input).await?;
            Ok(json!({ "environments": environments }))
        }
        Action::Drift(i) => to_value(drift::drift_action(deps, i).await?),
    }
}

opsplane_shared::function!(Deps, FUNCTION_NAME, handle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_readable_text() {
        assert_eq!(
            error_text(&json!({"Error": "HealthCheckFailed", "Cause": "500"})),
            "HealthCheckFailed: 500"
        );
        assert_eq!(
            error_text(&json!({"Error": "States.Timeout"})),
            "States.Timeout"
        );
    }

    #[test]
    fn unknown_request_fields_are_named() {
        let err = parse::<ProvisionRequest>(json!({"environment": "dev", "extra": 1})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "extra"),
            "{err}"
        );
        let err = parse::<ProvisionRequest>(json!({})).unwrap_err();
        assert!(matches!(err, OpsError::InvalidInput { ref field, .. } if field == "environment"));
    }

    #[test]
    fn the_dispatch_functions_github_object_is_accepted_and_nothing_else_new() {
        let input =
            json!({"environment": "dev", "github": {"repository": "acme/infra", "run_id": 42}});
        check_github(&input).unwrap();
        let req = parse::<ProvisionRequest>(input).unwrap();
        assert_eq!(req.environment, "dev");
        assert_eq!(req.github.unwrap()["repository"], "acme/infra");
        let err = check_github(&json!({"environment": "dev", "github": "acme/infra"})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "github"),
            "{err}"
        );
        let err =
            parse::<ProvisionRequest>(json!({"environment": "dev", "gitlab": {}})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "gitlab"),
            "{err}"
        );
    }
}
