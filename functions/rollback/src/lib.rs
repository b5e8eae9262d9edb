//! The rollback Lambda: the first steps of `rollback.asl.json`. The revert itself, its convergence and its
//! record are the provision function's (the same plan and apply path as a deployment), the health check
//! the health-check function's.
//!
//! - `resolve`: the raw EventBridge "CloudWatch Alarm State Change" event, or a manual request
//!   `{"environment", "reason", "actor"?}`, to the environment whose spec claims the alarm, and its last
//!   known good. Nothing is touched before this succeeds. An alarm CloudWatch mutes (an alarm mute rule) is
//!   resolved again with `after_mute` once its window ends, and acts only if it is still in ALARM.
//! - `claim`: one rollback per incident (alarm name and state-change time): every other execution started
//!   by a copy of the same event learns it is a duplicate and ends without changing anything.
//! - `stop-inflight`: the environment's running provision (the lock's holder) is stopped, so its lock is
//!   stale and the rollback takes it over.

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_alarms::{CloudWatchAlarmData, CloudWatchAlarmStateValue};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::alarms::Alarms;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::aws::specs::SpecStore;
use opsplane_shared::boundary::{parse_action, to_value};
use opsplane_shared::clock::{Clock, SystemClock, rfc3339};
use opsplane_shared::domain::rollback::{incident_id, resolve_environment};
use opsplane_shared::domain::spec::{
    DEFAULT_ROLLBACK_WINDOW_MINUTES, EnvironmentSpec, validate_environment_name,
};
use opsplane_shared::idempotency::{Idempotency, IdempotencyKey, TaskContext};
use opsplane_shared::lock::Lock;
use opsplane_shared::ports::Executions;
use opsplane_shared::ports::executions::{ExecutionState, running_tasks};
use opsplane_shared::state::{ApprovalStatus, AuditEvent, DeploymentRecord, StateStore};

use crate::blame::{Blamed, Verdict, judge};
use crate::mute::muted;
use opsplane_shared::{Config, OpsError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The function's name, as registered on the local engine and deployed.
pub const FUNCTION_NAME: &str = "rollback";
pub mod blame;
mod mute;

/// The EventBridge detail type of an alarm's state change.
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";
/// The error a stopped deployment ends with.
pub const STOPPED_ERROR: &str = "RollbackStarted";

/// What the handler needs.
#[derive(Clone)]
pub struct Deps {
    /// The specs (alarm mappings).
    pub specs: SpecStore,
    /// The last known good, approvals.
    pub state: StateStore,
    /// The environment lock (who holds it).
    pub lock: Arc<dyn Lock>,
    /// Whether the holder still runs, and stopping it.
    pub executions: Arc<dyn Executions>,
    /// One rollback per incident.
    pub idempotency: Idempotency,
    /// Whether CloudWatch mutes the alarm, and whether it still holds.
    pub alarms: Alarms,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

impl Deps {
    /// The production wiring over `clients`: Step Functions for executions, the configured lock backend.
    pub fn new(config: Config, clients: &Clients) -> Self {
        Self::with_executions(
            config,
            clients,
            Arc::new(SfnExecutions::new(clients.sfn.clone())),
        )
    }

    /// The wiring with another execution service (the local engine's).
    pub fn with_executions(
        config: Config,
        clients: &Clients,
        executions: Arc<dyn Executions>,
    ) -> Self {
        let state = StateStore::from_config(&config, clients);
        Self {
            specs: SpecStore::new(clients.s3.clone(), config.bucket_name.clone()),
            idempotency: Idempotency::new(&state),
            lock: opsplane_shared::lock::from_config(&config, clients, executions.clone()),
            state,
            executions,
            alarms: Alarms::new(clients.cloudwatch.clone()),
            clock: Arc::new(SystemClock),
        }
    }
}

/// `resolve`: the workflow's input as given.
#[derive(Debug, Deserialize)]
pub struct ResolveInput {
    /// The raw event or manual request.
    pub input: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// Set by `AwaitMuteEnd`: the alarm was muted when it fired; it acts only once no mute rule holds it
    /// and only if it is still in ALARM.
    #[serde(default)]
    pub after_mute: bool,
}

/// A manual rollback request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRequest {
    /// The environment.
    pub environment: String,
    /// Why (kept in the record and the audit).
    pub reason: String,
    /// Who asks.
    #[serde(default)]
    pub actor: Option<String>,
    /// The known-good spec version to go back to (one of the environment's known-good history).
    #[serde(default)]
    pub to: Option<String>,
    /// Go back to the known-good deployment before the one in force.
    #[serde(default)]
    pub previous: bool,
    /// The caller's GitHub context, added by the dispatch function; kept in the execution's input only.
    #[serde(default)]
    pub github: Option<serde_json::Map<String, Value>>,
}

/// Parses a manual request; `github`, when present, must be an object (checked first, so that the error
/// names the field).
fn parse_manual(input: &Value) -> Result<ManualRequest, OpsError> {
    if input.get("github").is_some_and(|g| !g.is_object()) {
        return Err(OpsError::invalid(
            "github",
            "must be an object: the GitHub context the dispatch function adds",
        ));
    }
    opsplane_shared::error::parse_input(input.clone(), "")
}

/// The resolved rollback, shaped as the provision function's deployment (so its `record` takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The environment.
    pub environment: String,
    /// The last known good spec version the environment goes back to.
    pub spec_version: String,
    /// This rollback's id.
    pub deployment_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Who asked: `alarm:<name>` or the manual actor.
    pub actor: String,
    /// Unused by a rollback (it never waits for approval); kept for the deployment's shape.
    pub approval_timeout_seconds: u64,
    /// The incident (alarm and state-change time); `None` for a manual request.
    pub incident: Option<String>,
    /// Why.
    pub reason: String,
    /// Whether the environment is rolled back, or a person decides.
    pub decision: Decision,
    /// The deployment an alarm blames, if one.
    #[serde(default)]
    pub blamed: Option<Blamed>,
    /// What was found when nothing is rolled back (the latest deployments).
    #[serde(default)]
    pub finding: Option<String>,
}

/// What the workflow does with a resolved trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Roll the environment back to `spec_version`.
    RollBack,
    /// No deployment to blame: publish `AlarmWithoutRecentChange` and change nothing.
    AskAPerson,
    /// Nothing to do: CloudWatch holds the alarm's actions back (a suppressed composite alarm), the alarm
    /// left ALARM while it was muted, or the deployment it blames was rolled back already.
    NothingToDo,
    /// CloudWatch mutes the alarm (an alarm mute rule): nothing is done until the mute window ends, when
    /// the alarm is resolved again (`after_mute`).
    AwaitMute,
}

async fn all_specs(deps: &Deps) -> Result<Vec<EnvironmentSpec>, OpsError> {
    let mut specs = Vec::new();
    for env in deps.specs.environments().await? {
        match deps.specs.get(&env, None).await {
            Ok(s) => specs.push(s.spec),
            // One broken spec must not stop another environment's rollback.
            Err(err) => {
                tracing::warn!(environment = env, error = %err, "spec skipped while resolving an alarm")
            }
        }
    }
    Ok(specs)
}

/// Resolves the trigger to an environment and its last known good; changes nothing.
pub async fn resolve(deps: &Deps, input: ResolveInput) -> Result<Resolved, OpsError> {
    let obj = input.input.as_object().ok_or_else(|| {
        OpsError::invalid(
            "input",
            "must be a CloudWatch Alarm State Change event or {\"environment\", \"reason\"}",
        )
    })?;
    let (environment, actor, incident, reason, target) = if obj.contains_key("detail-type") {
        // EventBridge delivers the alarm event as it is; only a caller adds a GitHub context. An alarm-shaped
        // input carrying one was sent through the dispatch function by a job, which must not choose the
        // environment by naming an alarm: its rule allowed the environment in its request, not the alarm's.
        if obj.contains_key("github") {
            return Err(OpsError::invalid(
                "github",
                "an alarm event reaches rollback from EventBridge only, and EventBridge adds no GitHub context; a job asks for {\"environment\", \"reason\"}",
            ));
        }
        // Refused for what it is before its detail is read: a configuration change (or any other kind of
        // event) is not a malformed alarm.
        let detail_type = obj
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if detail_type != ALARM_DETAIL_TYPE {
            return Err(OpsError::invalid(
                "detail-type",
                format!("\"{detail_type}\"; only \"{ALARM_DETAIL_TYPE}\" events start a rollback"),
            ));
        }
        let event: EventBridgeEvent<CloudWatchAlarmData<Value, Value>> =
            opsplane_shared::error::parse_input(input.input.clone(), "")?;
        let alarm = event.detail.alarm_name.clone();
        let state =
            event.detail.state.as_ref().ok_or_else(|| {
                OpsError::invalid("detail.state", "required: the alarm's new state")
            })?;
        if state.value != CloudWatchAlarmStateValue::Alarm {
            return Err(OpsError::invalid(
                "detail.state.value",
                format!(
                    "{}: only a transition to ALARM rolls back (the rule should filter on it)",
                    serde_json::to_value(&state.value)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            ));
        }
        // CloudWatch holds this composite alarm's actions back (its suppressor alarm, or the suppressor's
        // wait or extension period): opsplane acts on it no more than CloudWatch does.
        let held_back = state.actions_suppressed_by.as_ref().map(|by| {
            format!(
                "CloudWatch holds the actions of {alarm} back ({by}: {})",
                state
                    .actions_suppressed_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            )
        });
        let specs = all_specs(deps).await?;
        let environment = resolve_environment(&alarm, &specs)
            .map_err(|e| OpsError::invalid("detail.alarmName", e.to_string()))?;
        let window = specs
            .iter()
            .find(|s| s.environment == environment)
            .map_or(DEFAULT_ROLLBACK_WINDOW_MINUTES, |s| {
                s.rollback.window_minutes
            });
        // An input that names an environment besides the alarm acts on that one or on none.
        if let Some(named) = obj.get("environment")
            && named.as_str() != Some(environment.as_str())
        {
            return Err(OpsError::invalid(
                "environment",
                format!(
                    "the alarm {alarm} belongs to `{environment}`, not to the environment this input names; nothing was changed"
                ),
            ));
        }
        let held_back = match held_back {
            Some(why) => Some(Target::HeldBack(why)),
            None => {
                let mute_detail = obj.get("detail").and_then(|d| d.get("muteDetail"));
                muted(deps, &alarm, mute_detail, input.after_mute).await?
            }
        };
        (
            environment,
            format!("alarm:{alarm}"),
            Some(incident_id(&alarm, state.timestamp)),
            format!(
                "alarm {alarm} in ALARM since {}: {}",
                rfc3339(state.timestamp),
                state.reason
            ),
            held_back.unwrap_or(Target::Blame {
                alarm_at: state.timestamp,
                window,
            }),
        )
    } else {
        let req = parse_manual(&input.input)?;
        validate_environment_name(&req.environment)
            .map_err(|r| OpsError::invalid("environment", r))?;
        if req.reason.trim().is_empty() {
            return Err(OpsError::invalid(
                "reason",
                "must say why the environment is rolled back",
            ));
        }
        // The spec must exist: an environment opsplane does not know is a typo, not a rollback.
        deps.specs.get(&req.environment, None).await?;
        let target = match (req.to, req.previous) {
            (Some(_), true) => {
                return Err(OpsError::invalid(
                    "to",
                    "name a version or ask for the previous one, not both",
                ));
            }
            (Some(to), false) => Target::Version(to),
            (None, true) => Target::Previous,
            (None, false) => Target::LastKnownGood,
        };
        (
            req.environment,
            req.actor.unwrap_or_else(|| input.execution.clone()),
            None,
            req.reason,
            target,
        )
    };
    let meta = deps.state.meta(&environment).await?;
    let none_good = || {
        OpsError::ResourceNotFound(format!(
            "environment `{environment}` has no last known good deployment: nothing to roll back to, nothing was changed"
        ))
    };
    let known: Vec<&str> = meta
        .known_good
        .iter()
        .map(|k| k.spec_version.as_str())
        .collect();
    // What the environment stays on when nothing is rolled back, and goes back to when nothing else is named.
    let lkg = meta
        .last_known_good
        .as_ref()
        .map(|l| l.spec_version.clone());
    let staying = || lkg.clone().unwrap_or_default();
    let (decision, spec_version, blamed, finding) = match target {
        Target::LastKnownGood => (
            Decision::RollBack,
            lkg.clone().ok_or_else(none_good)?,
            None,
            None,
        ),
        Target::Version(to) => {
            if !known.contains(&to.as_str()) {
                return Err(OpsError::invalid(
                    "to",
                    format!(
                        "spec version {to} is not one of `{environment}`'s known-good deployments ({}); nothing was changed",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            (Decision::RollBack, to, None, None)
        }
        Target::Previous => {
            let current = meta.in_force.as_ref().map(|f| f.spec_version.as_str());
            let previous = meta
                .known_good
                .iter()
                .find(|k| Some(k.spec_version.as_str()) != current)
                .ok_or_else(|| {
                    OpsError::invalid(
                        "previous",
                        format!(
                            "`{environment}` has no known-good deployment before the one in force; nothing was changed"
                        ),
                    )
                })?;
            (
                Decision::RollBack,
                previous.spec_version.clone(),
                None,
                None,
            )
        }
        Target::HeldBack(why) => (Decision::NothingToDo, staying(), None, Some(why)),
        Target::Muted(why) => (Decision::AwaitMute, staying(), None, Some(why)),
        Target::Blame { alarm_at, window } => {
            let latest: Vec<DeploymentRecord> = deps.state.latest(&environment, 5).await?;
            // A provision holding the lock is the deployment running now (applying, or waiting for approval).
            let running = match deps.lock.status(&environment).await? {
                Some(held)
                    if held.operation == "provision"
                        && deps.executions.state(&held.holder).await == ExecutionState::Running =>
                {
                    Some(held.holder)
                }
                _ => None,
            };
            match judge(
                alarm_at,
                window,
                running.as_deref(),
                &latest,
                &meta.known_good,
            ) {
                Verdict::RollBack { blamed, to } => (Decision::RollBack, to, Some(blamed), None),
                Verdict::AlreadyRolledBack { why } => {
                    (Decision::NothingToDo, staying(), None, Some(why))
                }
                Verdict::AskAPerson { why } => (Decision::AskAPerson, staying(), None, Some(why)),
            }
        }
    };
    tracing::info!(
        environment,
        incident,
        actor,
        spec_version,
        decision = ?decision,
        "rollback resolved"
    );
    if decision == Decision::RollBack {
        let event = AuditEvent::new(
            deps.clock.now(),
            actor.clone(),
            "rollback.requested",
            Some(environment.clone()),
            "ok",
            json!({
                "to": spec_version,
                "blamed": blamed,
                "reason": reason,
                "incident": incident,
            }),
        )
        .with_execution(input.execution.clone());
        deps.state.append_audit(&event).await?;
    }
    Ok(Resolved {
        environment,
        spec_version,
        deployment_id: hex::encode(&Sha256::digest(input.execution.as_bytes())[..5]),
        started_at: deps.clock.now(),
        actor,
        approval_timeout_seconds: 0,
        incident,
        reason,
        decision,
        blamed,
        finding,
    })
}

/// What a trigger asks the environment to go back to.
pub(crate) enum Target {
    /// The last known good (a manual request naming nothing).
    LastKnownGood,
    /// A known-good version named by a person.
    Version(String),
    /// The known-good deployment before the one in force.
    Previous,
    /// Nothing: CloudWatch holds the alarm's actions back, or it no longer holds (`why`).
    HeldBack(String),
    /// Nothing yet: CloudWatch mutes the alarm (`why`); resolved again when the window ends.
    Muted(String),
    /// Whatever the alarm that fired at `alarm_at` blames within `window` minutes.
    Blame {
        alarm_at: DateTime<Utc>,
        window: u32,
    },
}

/// `claim`: this execution's incident.
#[derive(Debug, Deserialize)]
pub struct ClaimInput {
    /// The resolved rollback.
    pub rollback: Resolved,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// Whether this execution owns the incident's rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Another execution already rolls this incident back: this one ends without changing anything.
    pub duplicate: bool,
    /// The execution that owns the rollback.
    pub owner: String,
}

/// Claims the incident: the first execution owns it; every other copy of the event is a duplicate.
pub async fn claim(deps: &Deps, input: ClaimInput) -> Result<Claim, OpsError> {
    let Some(incident) = &input.rollback.incident else {
        return Ok(Claim {
            duplicate: false,
            owner: input.execution,
        });
    };
    // The key is the incident's, not the task's: every execution started by a copy of the event shares it.
    let key = IdempotencyKey::for_task(&TaskContext {
        execution: format!("rollback:{}", input.rollback.environment),
        state: incident.clone(),
        map_index: None,
    })?
    .claimed_by(&input.execution);
    let payload = json!({ "environment": input.rollback.environment, "incident": incident });
    let me = input.execution.clone();
    // The claim names this execution, so a claim it already wrote (a lost response the SDK retried, or a
    // retried Claim task) is still its own and never makes the owner a duplicate of itself.
    let outcome = deps
        .idempotency
        .run_once(&key, &payload, None, || async move {
            Ok(json!({ "owner": me }))
        })
        .await;
    let owner = match outcome {
        Ok(v) => v
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        // Another copy (another execution: ours would have been recognised) is claiming it this very
        // moment: it owns the rollback.
        Err(OpsError::AlreadyInProgress(_)) => String::from("another execution"),
        Err(e) => return Err(e),
    };
    let duplicate = owner != input.execution;
    tracing::info!(
        environment = input.rollback.environment,
        incident,
        owner,
        duplicate,
        "incident claimed"
    );
    Ok(Claim { duplicate, owner })
}

/// `stop-inflight`: the rollback's environment.
#[derive(Debug, Deserialize)]
pub struct StopInput {
    /// The resolved rollback.
    pub rollback: Resolved,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// What `stop-inflight` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// The provision execution stopped, if one ran.
    pub stopped: Option<String>,
}

/// Stops the environment's running provision, if it holds the lock, and closes its pending approval.
///
/// Step Functions answers `DescribeExecution` eventually consistently, so right after `StopExecution` the
/// provision may still be reported running. Then the answer is `NotReady` and the definition asks again a
/// few seconds later (no Lambda sleeps through the wait). The retry finds the provision ended by this
/// rollback's own stop (`ABORTED` with [`STOPPED_ERROR`] and a cause naming this rollback) and reports it
/// as stopped, so the outcome does not depend on which attempt saw the end.
pub async fn stop_inflight(deps: &Deps, input: StopInput) -> Result<Stopped, OpsError> {
    let env = &input.rollback.environment;
    let Some(held) = deps.lock.status(env).await? else {
        return Ok(Stopped { stopped: None });
    };
    if held.holder == input.execution || held.operation != "provision" {
        return Ok(Stopped { stopped: None });
    }
    let cause = format!(
        "stopped by rollback {} of `{env}`: {}",
        input.execution, input.rollback.reason
    );
    if deps.executions.state(&held.holder).await != ExecutionState::Running {
        if !stopped_by(deps, &held.holder, &input.execution).await? {
            return Ok(Stopped { stopped: None });
        }
    } else {
        deps.executions
            .stop(&held.holder, STOPPED_ERROR, &cause)
            .await?;
        tracing::warn!(
            environment = env,
            stopped = held.holder,
            "in-flight provision stopped"
        );
        if deps.executions.state(&held.holder).await == ExecutionState::Running {
            return Err(OpsError::NotReady(format!(
                "{} is still reported running after StopExecution",
                held.holder
            )));
        }
    }
    // Conditional on the approval being pending: a retry closes nothing twice.
    if deps.state.approval(&held.holder).await?.is_some() {
        deps.state
            .decide_approval(
                &held.holder,
                ApprovalStatus::Closed,
                &input.execution,
                Some(&cause),
            )
            .await?;
    }
    // A stopped execution does not stop the function it was running: an `apply` mid-call may still land a
    // change. The lock is taken over (and the revert planned) only once that call has ended or Lambda has
    // ended it (its Task's timeout); until then the definition asks again.
    let now = deps.clock.now();
    let history = deps.executions.history(&held.holder).await?;
    if let Some(task) = running_tasks(&history)
        .into_iter()
        .filter(|t| t.ends_by > now)
        .max_by_key(|t| t.ends_by)
    {
        return Err(OpsError::NotReady(format!(
            "{}'s task {} may still be calling AWS until {} (stopping an execution does not stop the \
             function it runs); the rollback goes on after it",
            held.holder,
            task.state.as_deref().unwrap_or("(unnamed)"),
            rfc3339(task.ends_by),
        )));
    }
    Ok(Stopped {
        stopped: Some(held.holder),
    })
}

/// Whether `holder` ended because rollback `rollback` stopped it.
async fn stopped_by(deps: &Deps, holder: &str, rollback: &str) -> Result<bool, OpsError> {
    let d = deps.executions.describe(holder).await?;
    Ok(d.status == "ABORTED"
        && d.error.as_deref() == Some(STOPPED_ERROR)
        && d.cause.as_deref().is_some_and(|c| c.contains(rollback)))
}

opsplane_shared::actions! {
    /// The rollback function's input: one variant per step of `rollback.asl.json` that calls it.
    pub enum Action {
        /// The environment an alarm or a manual request names, and its last known good.
        "resolve" => Resolve(ResolveInput),
        /// One rollback per incident.
        "claim" => Claim(ClaimInput),
        /// Stops the environment's in-flight provision.
        "stop-inflight" => StopInflight(StopInput),
    }
}

/// The JSON boundary: parses the action and returns its output as JSON.
pub async fn handle(deps: &Deps, input: Value) -> Result<Value, OpsError> {
    let action: Action = parse_action(input)?;
    tracing::info!(action = action.name(), "rollback function invoked");
    match action {
        Action::Resolve(i) => to_value(resolve(deps, i).await?),
        Action::Claim(i) => to_value(claim(deps, i).await?),
        Action::StopInflight(i) => to_value(stop_inflight(deps, i).await?),
    }
}

opsplane_shared::function!(Deps, FUNCTION_NAME, handle);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, OpsError> {
        opsplane_shared::error::parse_input(input, "")
    }

    const EVENT: &str = include_str!("../../../tests/fixtures/events/alarm-staging.json");

    #[test]
    fn the_real_event_shape_parses() {
        let event: EventBridgeEvent<CloudWatchAlarmData<Value, Value>> =
            serde_json::from_str(EVENT).unwrap();
        assert_eq!(event.detail_type, ALARM_DETAIL_TYPE);
        assert_eq!(event.detail.alarm_name, "{env}-api-5xx");
        let state = event.detail.state.unwrap();
        assert_eq!(state.value, CloudWatchAlarmStateValue::Alarm);
        assert_eq!(state.timestamp.timestamp_subsec_millis(), 989);
    }

    #[test]
    fn manual_requests_accept_the_dispatch_functions_github_object_and_nothing_else_new() {
        let req = parse_manual(&json!({
            "environment": "staging",
            "reason": "bad deploy",
            "github": {"repository": "acme/infra", "run_id": 42}
        }))
        .unwrap();
        assert_eq!(req.environment, "staging");
        assert_eq!(req.github.unwrap()["run_id"], 42);
        let err =
            parse_manual(&json!({"environment": "s", "reason": "r", "github": [1]})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "github"),
            "{err}"
        );
        let err =
            parse_manual(&json!({"environment": "s", "reason": "r", "gitlab": {}})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "gitlab"),
            "{err}"
        );
    }

    #[test]
    fn manual_requests_name_unknown_fields() {
        let err = parse::<ManualRequest>(json!({"environment": "s", "reason": "r", "why": 1}))
            .unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "why"),
            "{err}"
        );
    }
}
