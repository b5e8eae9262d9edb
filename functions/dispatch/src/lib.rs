//! The dispatch Lambda, behind a function URL: starts a workflow for a GitHub Actions job that presents its
//! OIDC token instead of assuming a role.
//!
//! A request is `POST` with `Authorization: Bearer <GitHub OIDC token>` and a body
//! `{"workflow": "provision", "environment": "staging", "input": {...}}`. The token is verified
//! ([`jwt::Verifier`]: RS256 only, the issuer's JWKS, `iss`, `aud`, `exp`/`nbf`/`iat` with 60 s of leeway),
//! then the [`policy::Policy`] decides. An allowed request starts the workflow under a name derived from the
//! run (`gh-<workflow>-<env>-<run_id>-<run_attempt>`), so the same run again starts nothing and gets the
//! same execution back; the GitHub context goes into the execution's input (`github`) and the audit log.
//!
//! Answers: 201 (started) or 200 (already started) with `{"executionArn", "started", "name", "consoleUrl"}`;
//! 400 (bad body), 401 (token), 403 (policy), 405 (not POST), 503 (the issuer's keys unavailable), 500 with
//! `{"error", "reason"}`. A rejected request starts nothing; a 403 is written to the audit log (the caller is
//! known), a 401 only to the logs, so unauthenticated traffic cannot fill the table.
//!
//! Configuration (read in `main`, [`DispatchConfig::from_lookup`]):
//! - `OPSPLANE_OIDC_AUDIENCE` (required): the `aud` the tokens must carry (the workflow asks for it with
//!   `core.getIDToken(audience)`).
//! - `OPSPLANE_OIDC_ISSUER` (default `https://token.actions.githubusercontent.com`).
//! - `OPSPLANE_STATE_MACHINE_PREFIX` (required): `arn:aws:states:<region>:<account>:stateMachine:opsplane-`.
//! - `OPSPLANE_DISPATCH_POLICY`: a policy file's path; without it the policy is read once per cold start from
//!   `s3://<state bucket>/config/dispatch-policy.yaml`.

pub mod jwt;
pub mod policy;
pub mod start;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::HeaderValue;
use base64::Engine as _;
use opsplane_shared::domain::spec::validate_environment_name;
use opsplane_shared::state::{AuditEvent, StateStore};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::jwt::{AuthError, GithubClaims, Verifier, VerifyError};
use crate::policy::Policy;
use crate::start::{StartError, Starter};

/// The function's name, as deployed.
pub const FUNCTION_NAME: &str = "dispatch";

/// The dispatch function's own configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchConfig {
    /// The token issuer.
    pub issuer: String,
    /// The audience tokens must carry.
    pub audience: String,
    /// `arn:aws:states:<region>:<account>:stateMachine:opsplane-`; a workflow's state machine is this plus its name.
    pub state_machine_prefix: String,
    /// A policy file to read instead of the state bucket's `config/dispatch-policy.yaml`.
    pub policy_path: Option<String>,
}

/// The configuration is incomplete.
#[derive(Debug, Error)]
#[error("{name} is required: {what}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// What it holds.
    pub what: &'static str,
}

impl DispatchConfig {
    /// Reads the configuration through `lookup` (the process environment in `main`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            issuer: lookup("OPSPLANE_OIDC_ISSUER").unwrap_or_else(|| jwt::GITHUB_ISSUER.to_owned()),
            audience: lookup("OPSPLANE_OIDC_AUDIENCE").ok_or(ConfigError {
                name: "OPSPLANE_OIDC_AUDIENCE",
                what: "the audience the GitHub OIDC tokens are requested for",
            })?,
            state_machine_prefix: lookup("OPSPLANE_STATE_MACHINE_PREFIX").ok_or(ConfigError {
                name: "OPSPLANE_STATE_MACHINE_PREFIX",
                what: "the state machines' ARN without the workflow name, e.g. arn:aws:states:eu-west-1:123456789012:stateMachine:opsplane-",
            })?,
            policy_path: lookup("OPSPLANE_DISPATCH_POLICY"),
        })
    }
}

/// What the handler needs.
pub struct Deps {
    /// Token verification.
    pub verifier: Verifier,
    /// Who may start what.
    pub policy: Policy,
    /// Where executions start.
    pub executions: Starter,
    /// The audit log.
    pub state: StateStore,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("verifier", &self.verifier)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    /// The workflow to start, e.g. `provision`.
    pub workflow: String,
    /// The opsplane environment.
    pub environment: String,
    /// More input for the workflow (not `environment` or `github`, which dispatch sets).
    #[serde(default)]
    pub input: Option<Map<String, Value>>,
}

/// Why a request was refused, with the HTTP status it gets.
#[derive(Debug, Error)]
pub enum DispatchError {
    /// 405: only `POST` starts anything.
    #[error("method {0} not allowed: POST")]
    Method(String),
    /// 401: no acceptable token.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// 503: the issuer's keys could not be fetched.
    #[error("the token issuer's keys are unavailable: {0}")]
    KeysUnavailable(#[from] jwt::JwksError),
    /// 400: the body is not a dispatch request.
    #[error("invalid input: field `{field}`: {reason}")]
    InvalidInput {
        /// The field.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// 403: the policy does not allow it.
    #[error(transparent)]
    Forbidden(#[from] policy::Denied),
    /// 500: the workflow could not be started.
    #[error(transparent)]
    Start(#[from] StartError),
    /// 500: started, but the audit record could not be written; a retry returns the same execution.
    #[error("execution {execution_arn} started, but its audit record failed: {reason}")]
    Audit {
        /// The execution.
        execution_arn: String,
        /// The store's error.
        reason: String,
    },
}

impl DispatchError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            DispatchError::Method(_) => 405,
            DispatchError::Unauthorized(_) => 401,
            DispatchError::KeysUnavailable(_) => 503,
            DispatchError::InvalidInput { .. } => 400,
            DispatchError::Forbidden(_) => 403,
            DispatchError::Start(StartError::UnknownWorkflow(_)) => 400,
            DispatchError::Start(_) | DispatchError::Audit { .. } => 500,
        }
    }

    /// The stable name in the body's `error`.
    pub fn name(&self) -> &'static str {
        match self {
            DispatchError::Method(_) => "MethodNotAllowed",
            DispatchError::Unauthorized(_) => "Unauthorized",
            DispatchError::KeysUnavailable(_) => "Unavailable",
            DispatchError::InvalidInput { .. }
            | DispatchError::Start(StartError::UnknownWorkflow(_)) => "InvalidInput",
            DispatchError::Forbidden(_) => "Forbidden",
            DispatchError::Start(_) | DispatchError::Audit { .. } => "Internal",
        }
    }
}

impl From<VerifyError> for DispatchError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Auth(a) => DispatchError::Unauthorized(a),
            VerifyError::Jwks(j) => DispatchError::KeysUnavailable(j),
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> DispatchError {
    DispatchError::InvalidInput {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The execution name of a run: `gh-<workflow>-<env>-<run_id>-<run_attempt>`, at most 80 characters of
/// `[A-Za-z0-9_-]`. The same run and attempt always get the same name, so Step Functions starts it once.
pub fn execution_name(
    workflow: &str,
    environment: &str,
    run_id: &str,
    run_attempt: &str,
) -> String {
    let clean = opsplane_shared::domain::names::execution_name_part;
    // The run's part is kept whole; the names give way if the total is too long.
    let tail = format!("-{}-{}", clean(run_id), clean(run_attempt));
    let mut head = format!("gh-{}-{}", clean(workflow), clean(environment));
    head.truncate(80usize.saturating_sub(tail.len()));
    head + &tail
}

fn bearer(request: &LambdaFunctionUrlRequest) -> Result<&str, AuthError> {
    let value = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token.trim())
}

fn parse_body(request: &LambdaFunctionUrlRequest) -> Result<DispatchRequest, DispatchError> {
    let body = request.body.as_deref().unwrap_or_default();
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| invalid("body", "is marked base64 but does not decode"))?
    } else {
        body.as_bytes().to_vec()
    };
    let req: DispatchRequest = serde_json::from_slice(&bytes).map_err(|e| {
        invalid(
            "body",
            format!("{e}; expected {{\"workflow\": \"provision\", \"environment\": \"staging\", \"input\": {{}}}}"),
        )
    })?;
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !name_ok(&req.workflow) {
        return Err(invalid(
            "workflow",
            "a workflow name: lowercase letters, digits and '-', e.g. provision",
        ));
    }
    validate_environment_name(&req.environment).map_err(|r| invalid("environment", r))?;
    if let Some(input) = &req.input {
        for reserved in ["environment", "github"] {
            if input.contains_key(reserved) {
                return Err(invalid(
                    &format!("input.{reserved}"),
                    "is set by dispatch (from `environment` and the token); leave it out",
                ));
            }
        }
    }
    Ok(req)
}

/// The GitHub context recorded in the execution's input and the audit log.
pub fn github_context(claims: &GithubClaims) -> Value {
    json!({
        "subject": claims.sub,
        "repository": claims.repository,
        "environment": claims.environment,
        "actor": claims.actor,
        "sha": claims.sha,
        "ref": claims.git_ref,
        "workflow_ref": claims.workflow(),
        "run_id": claims.run_id,
        "run_attempt": claims.run_attempt,
        "event_name": claims.event_name,
    })
}

async fn audit(
    deps: &Deps,
    claims: &GithubClaims,
    action: &str,
    environment: &str,
    result: &str,
    details: Value,
) -> Result<(), String> {
    let mut all = github_context(claims);
    if let (Value::Object(all), Value::Object(more)) = (&mut all, details) {
        all.extend(more);
    }
    let event = AuditEvent::new(
        chrono::Utc::now(),
        claims.sub.clone(),
        action,
        Some(environment.to_owned()),
        result,
        all,
    );
    deps.state
        .append_audit(&event)
        .await
        .map_err(|e| e.to_string())
}

/// A dispatch that was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    /// The execution.
    pub execution_arn: String,
    /// Its name.
    pub name: String,
    /// `false` when the run had already started it.
    pub started: bool,
}

/// Verifies, authorizes and starts: the request as typed values, the answer or the refusal.
pub async fn dispatch(
    deps: &Deps,
    request: &LambdaFunctionUrlRequest,
) -> Result<Dispatched, DispatchError> {
    let method = request
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or("POST");
    if !method.eq_ignore_ascii_case("POST") {
        return Err(DispatchError::Method(method.to_owned()));
    }
    let claims = deps.verifier.verify(bearer(request)?).await?;
    let req = parse_body(request)?;
    if let Err(denied) = deps
        .policy
        .authorize(&claims, &req.workflow, &req.environment)
    {
        tracing::warn!(subject = claims.sub, workflow = req.workflow, environment = req.environment, reason = %denied, "dispatch denied");
        // Best effort: the refusal stands whether or not its record is written.
        if let Err(e) = audit(
            deps,
            &claims,
            "dispatch.denied",
            &req.environment,
            "denied",
            json!({ "workflow": req.workflow, "reason": denied.0 }),
        )
        .await
        {
            tracing::error!(error = e, "audit of a denied dispatch failed");
        }
        return Err(denied.into());
    }
    let name = execution_name(
        &req.workflow,
        &req.environment,
        &claims.run_id,
        &claims.run_attempt,
    );
    let mut input = req.input.clone().unwrap_or_default();
    input.insert("environment".into(), Value::String(req.environment.clone()));
    input.insert("github".into(), github_context(&claims));
    let started = deps
        .executions
        .start(&req.workflow, &name, &Value::Object(input))
        .await?;
    tracing::info!(
        subject = claims.sub,
        workflow = req.workflow,
        environment = req.environment,
        execution = started.execution_arn,
        started = started.started,
        "dispatched"
    );
    audit(
        deps,
        &claims,
        "dispatch.start",
        &req.environment,
        if started.started {
            "started"
        } else {
            "already_started"
        },
        json!({ "workflow": req.workflow, "execution": started.execution_arn }),
    )
    .await
    .map_err(|reason| DispatchError::Audit {
        execution_arn: started.execution_arn.clone(),
        reason,
    })?;
    Ok(Dispatched {
        execution_arn: started.execution_arn,
        name,
        started: started.started,
    })
}

fn response(status: u16, body: Value) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = i64::from(status);
    r.headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    r.body = Some(body.to_string());
    r
}

/// The function URL boundary: the HTTP request in, the HTTP response out.
pub async fn handle(deps: &Deps, request: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
    match dispatch(deps, &request).await {
        Ok(d) => response(
            if d.started { 201 } else { 200 },
            json!({
                "executionArn": d.execution_arn,
                "name": d.name,
                "started": d.started,
                "consoleUrl": opsplane_shared::notify::console_url(&d.execution_arn),
            }),
        ),
        Err(e) => {
            if matches!(e, DispatchError::Unauthorized(_)) {
                tracing::warn!(reason = %e, "dispatch unauthorized");
            } else if e.status() >= 500 {
                tracing::error!(error = %e, "dispatch failed");
            }
            let mut body = json!({ "error": e.name(), "reason": e.to_string() });
            if let DispatchError::Audit { execution_arn, .. } = &e {
                body["executionArn"] = Value::String(execution_arn.clone());
            }
            response(e.status(), body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_come_from_the_run_and_fit() {
        assert_eq!(
            execution_name("provision", "staging", "123", "2"),
            "gh-provision-staging-123-2"
        );
        let long = execution_name(&"w".repeat(60), &"e".repeat(40), "98765432101", "1");
        assert!(
            long.len() <= 80 && long.ends_with("-98765432101-1"),
            "{long}"
        );
    }

    fn request(body: &str) -> LambdaFunctionUrlRequest {
        let mut r = LambdaFunctionUrlRequest::default();
        r.body = Some(body.to_owned());
        r
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse_body(&request(
            r#"{"workflow": "provision", "environment": "staging", "input": {"x": 1}}"#,
        ));
        assert_eq!(ok.unwrap().workflow, "provision");
        for (body, field) in [
            (
                r#"{"workflow": "Provision!", "environment": "staging"}"#,
                "workflow",
            ),
            (
                r#"{"workflow": "provision", "environment": "Prod!"}"#,
                "environment",
            ),
            (
                r#"{"workflow": "provision", "environment": "prod", "input": {"github": {}}}"#,
                "input.github",
            ),
            (
                r#"{"workflow": "provision", "environment": "prod", "extra": 1}"#,
                "body",
            ),
            ("not json", "body"),
        ] {
            match parse_body(&request(body)) {
                Err(DispatchError::InvalidInput { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut r = request("");
        assert!(matches!(bearer(&r), Err(AuthError::MissingToken)));
        r.headers
            .insert("authorization", HeaderValue::from_static("Basic abc"));
        assert!(matches!(bearer(&r), Err(AuthError::MissingToken)));
        r.headers
            .insert("authorization", HeaderValue::from_static("Bearer a.b.c"));
        assert_eq!(bearer(&r).unwrap(), "a.b.c");
    }

    #[test]
    fn statuses_follow_the_refusal() {
        assert_eq!(
            DispatchError::Unauthorized(AuthError::Expired).status(),
            401
        );
        assert_eq!(
            DispatchError::Forbidden(policy::Denied("no".into())).status(),
            403
        );
        assert_eq!(invalid("body", "x").status(), 400);
    }
}
