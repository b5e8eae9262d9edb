//! `opsplane run <workflow> --env E [--input FILE] [--wait] [--local]`: start a workflow, and follow it.
//!
//! Locally the workflow runs on the local engine against a fresh moto, so the environment is seeded from a
//! spec first, and the run is always followed to its end (the local world ends with the command). On AWS the
//! execution is started on the deployed state machine `opsplane-<workflow>` (its ARN from
//! `--state-machine-arn` or `OPSPLANE_STATE_MACHINE_PREFIX`, else listed) with a name derived from the
//! caller and the minute, so a repeated command within the minute starts nothing new (Step Functions answers
//! an identical `StartExecution` with the running execution); `--wait` follows it. Following shows a progress
//! line from the execution's history ([`crate::watch`]) and the outcome decides the exit code.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use opsplane_local::{EngineExecutions, LocalPlane};
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::domain::names::execution_name_part;
use opsplane_shared::ports::Executions;
use opsplane_statemachines::Workflow;

use crate::watch::{AWS_FIRST_INTERVAL, LOCAL_FIRST_INTERVAL, follow};

/// The spec seeded for a local run when none is given: the demo's environment.
pub const DEMO_SPEC: &str = include_str!("../demo/staging.yaml");
/// The demo environment's name.
pub const DEMO_ENVIRONMENT: &str = "staging";

/// How an execution ended, as printed by `opsplane run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The execution's ARN.
    pub execution_arn: String,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// `{"status", "output"}` or `{"status", "error", "cause"}`.
    pub summary: Value,
}

impl RunOutcome {
    /// Whether the workflow succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

fn check_workflow(workflow: &str) -> Result<()> {
    workflow.parse::<Workflow>()?;
    Ok(())
}

fn summary(
    status: &str,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
) -> Value {
    match output {
        Some(output) if status == "SUCCEEDED" => json!({ "status": status, "output": output }),
        _ => json!({ "status": status, "error": error, "cause": cause }),
    }
}

/// The workflow's input: `{"environment": E}` plus the fields of `extra` (an `--input` file's object), which
/// may repeat the environment but not name another.
pub fn workflow_input(environment: &str, extra: Option<Value>) -> Result<Value> {
    let mut input = match extra {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => bail!("--input must hold a JSON object, not {other}"),
    };
    match input.get("environment") {
        Some(Value::String(e)) if e == environment => {}
        Some(other) => bail!("--input names environment {other}, but --env is \"{environment}\""),
        None => {}
    }
    input.insert("environment".into(), Value::String(environment.to_owned()));
    Ok(Value::Object(input))
}

/// Which known-good version a manual rollback goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The known-good deployment before the one in force.
    Previous,
    /// A known-good spec version.
    Version(String),
}

/// The rollback workflow's input for `opsplane rollback`: the environment, the target and the reason. Who
/// acts is not said here: the workflow records the execution (started under the caller's verified AWS
/// identity), or the dispatch function the verified GitHub subject.
pub fn rollback_input(environment: &str, target: &RollbackTarget, reason: &str) -> Result<Value> {
    if reason.trim().is_empty() {
        bail!("--reason must say why the environment is rolled back");
    }
    let mut input = json!({ "environment": environment, "reason": reason });
    match target {
        RollbackTarget::Previous => input["previous"] = Value::Bool(true),
        RollbackTarget::Version(v) => input["to"] = Value::String(v.clone()),
    }
    Ok(input)
}

/// Starts `workflow` on `plane` with `input` and follows it to its end, writing progress to `progress`.
pub async fn run_on_plane(
    plane: &LocalPlane,
    workflow: &str,
    input: Value,
    progress: &mut (dyn Write + Send),
) -> Result<RunOutcome> {
    let machine = plane.state_machine(workflow)?;
    let execution_arn = plane.engine.start_execution(machine, None, input)?;
    writeln!(progress, "started {execution_arn}").ok();
    follow(
        &EngineExecutions(plane.engine.clone()),
        LOCAL_FIRST_INTERVAL,
        &execution_arn,
        progress,
    )
    .await?;
    let d = plane.engine.wait_for(&execution_arn).await?;
    let status = d.status.as_str().to_owned();
    Ok(RunOutcome {
        execution_arn,
        summary: summary(&status, d.output, d.error, d.cause),
        status,
    })
}

/// Runs `workflow` for `environment` on the local engine against a fresh moto started from `root`'s `.venv`,
/// after seeding the environment from `spec_yaml` (the demo's spec when `None` and the environment is the
/// demo's). A drill is preceded by a backup, since a fresh world has nothing to restore.
pub async fn local(
    root: &Path,
    workflow: &str,
    environment: &str,
    spec_yaml: Option<String>,
    extra_input: Option<Value>,
    progress: &mut (dyn Write + Send),
) -> Result<RunOutcome> {
    check_workflow(workflow)?;
    let input = workflow_input(environment, extra_input)?;
    let spec_yaml = match spec_yaml {
        Some(text) => text,
        None if environment == DEMO_ENVIRONMENT => DEMO_SPEC.to_owned(),
        None => bail!(
            "--spec is required for a local run of \"{environment}\": a fresh local world has no environment but \
             the demo's \"{DEMO_ENVIRONMENT}\""
        ),
    };
    let (plane, _report) = LocalPlane::start(root, "opsplane", "opsplane-local-state").await?;
    // A provision creates the environment itself: its spec is only uploaded.
    let spec = if workflow == "provision" {
        plane.upload_spec(&spec_yaml).await?.spec
    } else {
        plane.seed_environment(&spec_yaml).await?
    };
    if spec.environment != environment {
        bail!(
            "--env \"{environment}\" does not match the spec's environment \"{}\"",
            spec.environment
        );
    }
    if workflow == "dr-drill" {
        // A fresh local world holds no backup, and a drill restores the newest one: take it first.
        writeln!(
            progress,
            "a fresh local world has no backup of {environment}: running backup first"
        )
        .ok();
        let backup = run_on_plane(
            &plane,
            "backup",
            json!({ "environment": environment }),
            progress,
        )
        .await?;
        if !backup.succeeded() {
            bail!(
                "the backup before the drill ended {}: {}",
                backup.status,
                backup.summary["cause"].as_str().unwrap_or_default()
            );
        }
    }
    run_on_plane(&plane, workflow, input, progress).await
}

/// Environment variable holding the deployed state machines' ARN without the workflow name
/// (`arn:<partition>:states:<region>:<account>:stateMachine:opsplane-`, the stack's `StateMachinePrefix` output).
pub const ENV_STATE_MACHINE_PREFIX: &str = "OPSPLANE_STATE_MACHINE_PREFIX";

/// Whether `arn` is a state machine's ARN: `arn:<partition>:states:<region>:<account>:stateMachine:<name>`.
fn check_state_machine_arn(arn: &str) -> Result<()> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 7
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "states"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5] == "stateMachine"
        && !parts[6].is_empty()
        && parts[6]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        bail!(
            "\"{arn}\" is not a state machine ARN: arn:<partition>:states:<region>:<account>:stateMachine:<name>"
        );
    }
    Ok(())
}

/// The ARN of `workflow`'s state machine from the prefix in [`ENV_STATE_MACHINE_PREFIX`].
pub fn arn_from_prefix(prefix: &str, workflow: &str) -> Result<String> {
    check_workflow(workflow)?;
    let arn = format!("{prefix}{workflow}");
    check_state_machine_arn(&arn).with_context(|| {
        format!(
            "{ENV_STATE_MACHINE_PREFIX}=\"{prefix}\" plus the workflow is not a state machine ARN \
             (the stack's StateMachinePrefix output is arn:aws:states:<region>:<account>:stateMachine:opsplane-)"
        )
    })?;
    Ok(arn)
}

/// The deployed state machine that runs `workflow`: `explicit` (`--state-machine-arn`) as given, else
/// `prefix` ([`ENV_STATE_MACHINE_PREFIX`]) plus the workflow, neither of which calls AWS, so that a role
/// allowed only `StartExecution` on the state machine can start it; else the one named `opsplane-<workflow>`
/// found with `ListStateMachines`.
pub async fn resolve_state_machine(
    client: &aws_sdk_sfn::Client,
    workflow: &str,
    explicit: Option<&str>,
    prefix: Option<&str>,
) -> Result<String> {
    check_workflow(workflow)?;
    if let Some(arn) = explicit {
        check_state_machine_arn(arn).context("--state-machine-arn")?;
        return Ok(arn.to_owned());
    }
    if let Some(prefix) = prefix {
        return arn_from_prefix(prefix, workflow);
    }
    state_machine_arn(client, workflow).await
}

/// The ARN of the deployed state machine `opsplane-<workflow>`, found with `ListStateMachines`.
pub async fn state_machine_arn(client: &aws_sdk_sfn::Client, workflow: &str) -> Result<String> {
    check_workflow(workflow)?;
    let wanted = format!("opsplane-{workflow}");
    let mut next = None;
    loop {
        let page = client
            .list_state_machines()
            .set_next_token(next)
            .send()
            .await
            .with_context(|| {
                format!(
                    "ListStateMachines (to find {wanted}; set {ENV_STATE_MACHINE_PREFIX} or \
                     --state-machine-arn where listing is not allowed)"
                )
            })?;
        if let Some(found) = page.state_machines().iter().find(|m| m.name() == wanted) {
            return Ok(found.state_machine_arn().to_owned());
        }
        match page.next_token() {
            Some(token) => next = Some(token.to_owned()),
            None => bail!(
                "no state machine named {wanted}: deploy the control plane first (README, Deploying)"
            ),
        }
    }
}

/// Starts the deployed state machine `state_machine_arn` (see [`resolve_state_machine`]) with `input`, named
/// for `actor`, `environment`, the minute and a random suffix; returns the execution's ARN.
pub async fn start_aws(
    client: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    environment: &str,
    input: &Value,
    actor: &str,
) -> Result<String> {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let name = execution_name(actor, environment, chrono::Utc::now(), &random[..8]);
    let started = SfnExecutions::new(client.clone())
        .start(state_machine_arn, &name, input)
        .await
        .context("StartExecution")?;
    Ok(started.execution_arn)
}

/// How the execution `execution_arn` stands now (`DescribeExecution`).
pub async fn describe_aws(client: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<RunOutcome> {
    let d = SfnExecutions::new(client.clone())
        .describe(execution_arn)
        .await
        .context("DescribeExecution")?;
    Ok(RunOutcome {
        execution_arn: execution_arn.to_owned(),
        summary: summary(&d.status, d.output, d.error, d.cause),
        status: d.status,
    })
}

/// Follows a deployed execution to its end (`GetExecutionHistory` with back-off) and describes it.
pub async fn wait_aws(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
    progress: &mut (dyn Write + Send),
) -> Result<RunOutcome> {
    let executions = SfnExecutions::new(client.clone());
    follow(&executions, AWS_FIRST_INTERVAL, execution_arn, progress).await?;
    describe_aws(client, execution_arn).await
}

/// A Step Functions execution name (at most 80 characters of `[A-Za-z0-9_-]`) from who started it, for what,
/// the minute and `suffix` (random per start, see [`start_aws`]). A name is unique per state machine for 90
/// days, even after the execution ends, so without the suffix a second run by the same person in the same
/// minute (a quick retry after a failure) would be refused `ExecutionAlreadyExists`.
/// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html>
pub fn execution_name(
    actor: &str,
    environment: &str,
    at: chrono::DateTime<chrono::Utc>,
    suffix: &str,
) -> String {
    let clean = execution_name_part;
    let suffix = format!("-{}", clean(suffix));
    let mut name = format!(
        "cli-{}-{}-{}",
        clean(environment),
        clean(actor),
        at.format("%Y%m%dT%H%M")
    );
    // The suffix is what keeps two names apart: the readable part gives way to it.
    name.truncate(80usize.saturating_sub(suffix.len()));
    name.push_str(&suffix);
    name.truncate(80);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_valid_and_differ_within_a_minute() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T21:05:07Z")
            .unwrap()
            .to_utc();
        let name = execution_name("jane@host.example", "prod", at, "0a1b2c3d");
        assert_eq!(name, "cli-prod-jane-host-example-20261121T2105-0a1b2c3d");
        // A second run in the same minute gets another name.
        assert_ne!(
            name,
            execution_name("jane@host.example", "prod", at, "9f8e7d6c")
        );
        let long = execution_name(&"x".repeat(200), "prod", at, "0a1b2c3d");
        assert!(long.len() <= 80, "{long}");
        assert!(long.ends_with("-0a1b2c3d"), "{long}");
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{long}"
        );
    }

    #[test]
    fn input_files_add_fields_but_never_another_environment() {
        assert_eq!(
            workflow_input("prod", Some(json!({"mode": "point-in-time"}))).unwrap(),
            json!({"environment": "prod", "mode": "point-in-time"})
        );
        assert_eq!(
            workflow_input("prod", None).unwrap(),
            json!({"environment": "prod"})
        );
        assert!(workflow_input("prod", Some(json!({"environment": "staging"}))).is_err());
        assert!(workflow_input("prod", Some(json!([1]))).is_err());
    }

    #[test]
    fn the_prefix_names_the_workflows_state_machine() {
        let prefix = "arn:aws:states:eu-west-1:123456789012:stateMachine:opsplane-";
        assert_eq!(
            arn_from_prefix(prefix, "provision").unwrap(),
            "arn:aws:states:eu-west-1:123456789012:stateMachine:opsplane-provision"
        );
        assert!(arn_from_prefix(prefix, "deploy").is_err());
        for bad in [
            "opsplane-",
            "arn:aws:states:eu-west-1:123456789012:execution:opsplane-",
            "arn:aws:states:eu-west-1:12345:stateMachine:opsplane-",
            "arn:aws:lambda:eu-west-1:123456789012:stateMachine:opsplane-",
            "arn:aws:states::123456789012:stateMachine:opsplane-",
        ] {
            let err = format!("{:#}", arn_from_prefix(bad, "provision").unwrap_err());
            assert!(err.contains(ENV_STATE_MACHINE_PREFIX), "{bad}: {err}");
        }
        assert!(
            check_state_machine_arn("arn:aws:states:eu-west-1:123456789012:stateMachine:x:1")
                .is_err()
        );
    }

    #[test]
    fn unknown_workflows_are_refused_with_the_list() {
        let err = check_workflow("deploy").unwrap_err().to_string();
        assert!(err.contains("backup") && err.contains("dr-drill"), "{err}");
        assert!(check_workflow("backup").is_ok());
    }
}
