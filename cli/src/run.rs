//! `opsplane run <workflow> --env E [--input FILE] [--wait] [--local]`: start a workflow, and follow it.
//!
//! Locally the workflow runs on the local engine against a fresh moto, so the environment is seeded from a
//! spec first, and the run is always followed to its end (the local world ends with the command). On AWS the
//! execution is started on the deployed state machine `opsplane-<workflow>` with a name derived from the
//! caller and the minute, so a repeated command within the minute starts nothing new (Step Functions answers
//! an identical `StartExecution` with the running execution); `--wait` follows it. Following shows a progress
//! line from the execution's history ([`crate::watch`]) and the outcome decides the exit code.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::plane::{LocalPlane, WORKFLOWS};
use crate::watch::{EngineHistory, SfnHistory, follow};

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
    if WORKFLOWS.iter().any(|(name, _)| *name == workflow) {
        return Ok(());
    }
    let known: Vec<&str> = WORKFLOWS.iter().map(|(name, _)| *name).collect();
    bail!("unknown workflow {workflow:?}: one of {}", known.join(", "))
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
        Some(other) => bail!("--input names environment {other}, but --env is {environment:?}"),
        None => {}
    }
    input.insert("environment".into(), Value::String(environment.to_owned()));
    Ok(Value::Object(input))
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
        &EngineHistory(plane.engine.clone()),
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
            "--spec is required for a local run of {environment:?}: a fresh local world has no environment but \
             the demo's {DEMO_ENVIRONMENT:?}"
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
            "--env {environment:?} does not match the spec's environment {:?}",
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

/// The ARN of the deployed state machine `opsplane-<workflow>`.
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
            .context("ListStateMachines")?;
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

/// Starts `workflow` on the deployed state machine with `input`, named for `actor` and the minute; returns
/// the execution's ARN.
pub async fn start_aws(
    client: &aws_sdk_sfn::Client,
    workflow: &str,
    environment: &str,
    input: &Value,
    actor: &str,
) -> Result<String> {
    let arn = state_machine_arn(client, workflow).await?;
    let name = execution_name(actor, environment, chrono::Utc::now());
    let started = client
        .start_execution()
        .state_machine_arn(&arn)
        .name(&name)
        .input(input.to_string())
        .send()
        .await
        .context("StartExecution")?;
    Ok(started.execution_arn().to_owned())
}

/// How the execution `execution_arn` stands now (`DescribeExecution`).
pub async fn describe_aws(client: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<RunOutcome> {
    let d = client
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .context("DescribeExecution")?;
    let status = d.status().as_str().to_owned();
    let output = d.output().and_then(|o| serde_json::from_str(o).ok());
    Ok(RunOutcome {
        execution_arn: execution_arn.to_owned(),
        summary: summary(
            &status,
            output,
            d.error().map(str::to_owned),
            d.cause().map(str::to_owned),
        ),
        status,
    })
}

/// Follows a deployed execution to its end (`GetExecutionHistory` with back-off) and describes it.
pub async fn wait_aws(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
    progress: &mut (dyn Write + Send),
) -> Result<RunOutcome> {
    follow(&SfnHistory(client.clone()), execution_arn, progress).await?;
    describe_aws(client, execution_arn).await
}

/// A Step Functions execution name (at most 80 characters of `[A-Za-z0-9_-]`) from who started it, for what,
/// and the minute.
pub fn execution_name(actor: &str, environment: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut name = format!(
        "cli-{}-{}-{}",
        clean(environment),
        clean(actor),
        at.format("%Y%m%dT%H%M")
    );
    name.truncate(80);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_valid_and_stable_within_a_minute() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T21:05:07Z")
            .unwrap()
            .to_utc();
        let later = chrono::DateTime::parse_from_rfc3339("2026-11-21T21:05:59Z")
            .unwrap()
            .to_utc();
        let name = execution_name("jane@host.example", "prod", at);
        assert_eq!(name, "cli-prod-jane-host-example-20261121T2105");
        assert_eq!(name, execution_name("jane@host.example", "prod", later));
        assert!(execution_name(&"x".repeat(200), "prod", at).len() <= 80);
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
    fn unknown_workflows_are_refused_with_the_list() {
        let err = check_workflow("deploy").unwrap_err().to_string();
        assert!(err.contains("backup") && err.contains("dr-drill"), "{err}");
        assert!(check_workflow("backup").is_ok());
    }
}
