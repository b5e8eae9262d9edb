//! The dispatch Lambda, behind a function URL: starts a workflow for a GitHub Actions job that presents its
//! OIDC token instead of assuming a role.
//!
//! A request is `POST` with `Authorization: Bearer <GitHub OIDC token>` and a body
//! `{"workflow": "provision", "environment": "staging", "input": {...}}`. The token is verified
//! ([`jwt::Verifier`]: RS256 only, the issuer's JWKS, `iss`, `aud`, `exp`/`nbf`/`iat` with 60 s of leeway,
//! the limits of [`hygiene`], the subject in either of GitHub's formats, [`subject`]), the input is checked
//! against the workflow's [`schema`], then the [`policy::Policy`] decides by repository id. An allowed
//! request records the token's one use ([`replay`]) and starts the workflow under a name derived from the
//! repository and the run (`gh-<repository_id>-<workflow>-<env>-<run_id>-<run_attempt>`); the GitHub context
//! goes into the execution's input (`github`) and the audit log.
//!
//! Answers: 201 (started) or 200 (this token's own request again) with
//! `{"executionArn", "started", "name", "consoleUrl"}`; 400 (bad body), 401 (token), 403 (policy), 405 (not
//! POST), 409 (the token was used for another request, or another job of the run started that workflow for
//! that environment), 413 (body too large), 503 (the issuer's keys unavailable), 500 with
//! `{"error", "reason"}`. A rejected request starts nothing; a 403 or 409 is written to the audit log once
//! per token and at most [`denials::DEFAULT_PER_MINUTE`] times per repository and minute ([`denials`]), a 401
//! only to the logs, so no caller can fill the table.
//!
//! Configuration (read in `main`, [`DispatchConfig::from_lookup`]):
//! - `OPSPLANE_OIDC_AUDIENCE` (required): the `aud` the tokens must carry (the workflow asks for it with
//!   `core.getIDToken(audience)`); this stack's own, never the shared `opsplane` (any stack's tokens would
//!   then be good here).
//! - `OPSPLANE_OIDC_MAX_LIFETIME_SECONDS` (default 900): the longest `exp - iat` accepted.
//! - `OPSPLANE_OIDC_AUDIENCE_LISTS` (`true` to accept an `aud` list containing the audience; default refused).
//! - `OPSPLANE_OIDC_ISSUER` (default `https://token.actions.githubusercontent.com`).
//! - `OPSPLANE_STATE_MACHINE_PREFIX` (required): `arn:aws:states:<region>:<account>:stateMachine:opsplane-`.
//! - `OPSPLANE_DISPATCH_POLICY`: a policy file's path; without it the policy is read once per cold start from
//!   `s3://<state bucket>/config/dispatch-policy.yaml`.

pub mod denials;
pub mod hygiene;
pub mod jwt;
pub mod policy;
pub mod replay;
pub mod schema;
pub mod start;
pub mod subject;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::HeaderValue;
use base64::Engine as _;
use opsplane_shared::domain::spec::validate_environment_name;
use opsplane_shared::state::{AuditEvent, StateError, StateStore};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::denials::{DenialBudget, clip, clip_all};
use crate::jwt::{AuthError, GithubClaims, Verifier, VerifyError};
use crate::policy::Policy;
use crate::replay::{ReplayError, TokenUse, TokenUses, request_fingerprint};
use crate::schema::SchemaError;
use crate::start::{StartError, Starter};

/// The function's name, as deployed.
pub const FUNCTION_NAME: &str = "dispatch";
/// The audience every stack used to default to: public, shared by all stacks, so never accepted.
pub const SHARED_AUDIENCE: &str = "opsplane";

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
    /// The longest token lifetime (`exp - iat`) accepted, seconds.
    pub max_lifetime_seconds: i64,
    /// Whether an `aud` list containing the audience is accepted.
    pub audience_lists: bool,
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
            audience: lookup("OPSPLANE_OIDC_AUDIENCE")
                .filter(|a| a != SHARED_AUDIENCE)
                .ok_or(ConfigError {
                    name: "OPSPLANE_OIDC_AUDIENCE",
                    what: "this stack's own audience the GitHub OIDC tokens are requested for (not the shared `opsplane`, which every stack's tokens carry), e.g. opsplane:<account>:<region>:<stack>",
                })?,
            state_machine_prefix: lookup("OPSPLANE_STATE_MACHINE_PREFIX").ok_or(ConfigError {
                name: "OPSPLANE_STATE_MACHINE_PREFIX",
                what: "the state machines' ARN without the workflow name, e.g. arn:aws:states:eu-west-1:123456789012:stateMachine:opsplane-",
            })?,
            policy_path: lookup("OPSPLANE_DISPATCH_POLICY"),
            max_lifetime_seconds: match lookup("OPSPLANE_OIDC_MAX_LIFETIME_SECONDS") {
                None => hygiene::DEFAULT_MAX_LIFETIME_SECONDS,
                Some(v) => v.parse().ok().filter(|s| *s > 0).ok_or(ConfigError {
                    name: "OPSPLANE_OIDC_MAX_LIFETIME_SECONDS",
                    what: "a positive number of seconds, e.g. 900",
                })?,
            },
            audience_lists: match lookup("OPSPLANE_OIDC_AUDIENCE_LISTS").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => {
                    return Err(ConfigError {
                        name: "OPSPLANE_OIDC_AUDIENCE_LISTS",
                        what: "true or false",
                    });
                }
            },
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
    /// One use per token.
    pub uses: TokenUses,
    /// Which refusals are recorded.
    pub denials: DenialBudget,
}

impl Deps {
    /// The handler's deps over `state`'s table, with the default refusal budget.
    pub fn new(verifier: Verifier, policy: Policy, executions: Starter, state: StateStore) -> Self {
        Self {
            verifier,
            policy,
            executions,
            uses: TokenUses::new(&state),
            denials: DenialBudget::new(&state, denials::DEFAULT_PER_MINUTE),
            state,
        }
    }
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
    /// The caller's fields of the workflow's input ([`schema`]); what decides the environment and who acts is
    /// set by dispatch.
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
    /// 413: the body is larger than [`hygiene::MAX_BODY_BYTES`].
    #[error("request body larger than {} bytes", hygiene::MAX_BODY_BYTES)]
    TooLarge,
    /// 403: the policy does not allow it.
    #[error(transparent)]
    Forbidden(#[from] policy::Denied),
    /// 409: the token was already used for another request.
    #[error(transparent)]
    TokenReused(ReplayError),
    /// 409: another job (another token) of the same run already started this workflow for this environment.
    #[error(
        "another job of run {run_id} (attempt {run_attempt}) already started this workflow for this environment; a run attempt starts a workflow for an environment once"
    )]
    RunAlreadyStarted {
        /// The existing execution (logged, never answered: it is another job's).
        execution_arn: String,
        /// The run.
        run_id: String,
        /// Its attempt.
        run_attempt: String,
    },
    /// 500: the token's use could not be recorded; nothing was started.
    #[error("recording the token's use failed; nothing was started: {0}")]
    Ledger(StateError),
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
            DispatchError::TooLarge => 413,
            DispatchError::Forbidden(_) => 403,
            DispatchError::TokenReused(_) | DispatchError::RunAlreadyStarted { .. } => 409,
            DispatchError::Start(StartError::UnknownWorkflow(_)) => 400,
            DispatchError::Start(_) | DispatchError::Audit { .. } | DispatchError::Ledger(_) => 500,
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
            DispatchError::TooLarge => "PayloadTooLarge",
            DispatchError::Forbidden(_) => "Forbidden",
            DispatchError::TokenReused(_) => "TokenReused",
            DispatchError::RunAlreadyStarted { .. } => "RunAlreadyStarted",
            DispatchError::Start(_) | DispatchError::Audit { .. } | DispatchError::Ledger(_) => {
                "Internal"
            }
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

impl From<SchemaError> for DispatchError {
    fn from(e: SchemaError) -> Self {
        invalid(&e.field(), e.to_string())
    }
}

impl From<ReplayError> for DispatchError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Store(s) => DispatchError::Ledger(s),
            reused => DispatchError::TokenReused(reused),
        }
    }
}

/// The execution name of a run: `gh-<repository_id>-<workflow>-<env>-<run_id>-<run_attempt>`, at most 80
/// characters of `[A-Za-z0-9_-]`. It binds the repository (by id: run ids are per repository), the workflow,
/// the environment and the run's attempt, so Step Functions starts each once; GitHub's tokens carry no job
/// id, so two jobs of one run asking for the same workflow and environment get the same name, and the
/// second is refused rather than handed the first one's execution.
pub fn execution_name(
    repository_id: &str,
    workflow: &str,
    environment: &str,
    run_id: &str,
    run_attempt: &str,
) -> String {
    let clean = opsplane_shared::domain::names::execution_name_part;
    // The run's part is kept whole; the names give way if the total is too long.
    let tail = format!("-{}-{}", clean(run_id), clean(run_attempt));
    let mut head = format!(
        "gh-{}-{}-{}",
        clean(repository_id),
        clean(workflow),
        clean(environment)
    );
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

/// The body is within [`hygiene::MAX_BODY_BYTES`] (before it is decoded or parsed).
fn check_body_size(request: &LambdaFunctionUrlRequest) -> Result<(), DispatchError> {
    let body = request.body.as_deref().unwrap_or_default();
    // Base64 carries 3 bytes in 4 characters.
    let decoded = if request.is_base64_encoded {
        body.len() / 4 * 3
    } else {
        body.len()
    };
    if decoded > hygiene::MAX_BODY_BYTES {
        return Err(DispatchError::TooLarge);
    }
    Ok(())
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
    schema::check_input(&req.workflow, req.input.as_ref())?;
    Ok(req)
}

/// The GitHub context recorded in the execution's input and the audit log.
pub fn github_context(claims: &GithubClaims) -> Value {
    json!({
        "subject": claims.sub,
        "repository": claims.repository,
        "repository_id": claims.repository_id,
        "repository_owner_id": claims.repository_owner_id,
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

/// Records a refusal of a verified caller (403, 409) within the [`DenialBudget`], with every string the
/// caller chose clipped; best effort: the refusal stands whether or not its record is written.
async fn audit_refusal(
    deps: &Deps,
    claims: &GithubClaims,
    req: &DispatchRequest,
    err: &DispatchError,
) {
    tracing::warn!(
        subject = clip(&claims.sub),
        repository_id = claims.repository_id.as_deref(),
        workflow = req.workflow,
        environment = req.environment,
        reason = clip(&err.to_string()),
        "dispatch refused"
    );
    match deps.denials.admit(claims).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                "refusal not audited: already recorded for this token, or the repository's budget for this minute is spent"
            );
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "refusal budget unavailable; refusal not audited");
            return;
        }
    }
    let mut clipped = claims.clone();
    clipped.sub = clip(&claims.sub);
    let details = clip_all(json!({
        "workflow": req.workflow,
        "reason": err.to_string(),
        "error": err.name(),
    }));
    let mut all = clip_all(github_context(&clipped));
    if let (Value::Object(all), Value::Object(more)) = (&mut all, details) {
        all.extend(more);
    }
    let event = AuditEvent::new(
        chrono::Utc::now(),
        clipped.sub,
        "dispatch.denied",
        Some(req.environment.clone()),
        "denied",
        all,
    );
    if let Err(e) = deps.state.append_audit(&event).await {
        tracing::error!(error = %e, "audit of a refused dispatch failed");
    }
}

/// A dispatch that was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    /// The execution.
    pub execution_arn: String,
    /// Its name.
    pub name: String,
    /// `false` when this token's own request had already started it.
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
        return Err(DispatchError::Method(method.chars().take(16).collect()));
    }
    check_body_size(request)?;
    let claims = deps.verifier.verify(bearer(request)?).await?;
    let req = parse_body(request)?;
    match authorized(deps, &claims, &req).await {
        Ok(d) => Ok(d),
        Err(
            e @ (DispatchError::Forbidden(_)
            | DispatchError::TokenReused(_)
            | DispatchError::RunAlreadyStarted { .. }),
        ) => {
            audit_refusal(deps, &claims, &req, &e).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// The policy, the token's one use, the start and its record, for a verified caller and a checked request.
async fn authorized(
    deps: &Deps,
    claims: &GithubClaims,
    req: &DispatchRequest,
) -> Result<Dispatched, DispatchError> {
    deps.policy
        .authorize(claims, &req.workflow, &req.environment)?;
    let repository_id = claims.repository_id.as_deref().unwrap_or_default();
    let name = execution_name(
        repository_id,
        &req.workflow,
        &req.environment,
        &claims.run_id,
        &claims.run_attempt,
    );
    let caller = req.input.clone().unwrap_or_default();
    let fingerprint = request_fingerprint(
        &req.workflow,
        &req.environment,
        &Value::Object(caller.clone()),
    );
    let token_use = deps.uses.claim(claims, &fingerprint, &name).await?;
    let input = schema::build_input(
        &req.workflow,
        &req.environment,
        caller,
        &claims.sub,
        github_context(claims),
    )?;
    let started = deps.executions.start(&req.workflow, &name, &input).await?;
    if !started.started && token_use == TokenUse::First {
        // This token's first request, and yet the execution exists: another job's token of the same run
        // started it. Handing it back would let this job claim an execution it did not start.
        return Err(DispatchError::RunAlreadyStarted {
            execution_arn: started.execution_arn,
            run_id: claims.run_id.clone(),
            run_attempt: claims.run_attempt.clone(),
        });
    }
    tracing::info!(
        subject = clip(&claims.sub),
        workflow = req.workflow,
        environment = req.environment,
        execution = started.execution_arn,
        started = started.started,
        "dispatched"
    );
    audit(
        deps,
        claims,
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
            execution_name("456789", "provision", "staging", "123", "2"),
            "gh-456789-provision-staging-123-2"
        );
        let long = execution_name(
            "456789",
            &"w".repeat(60),
            &"e".repeat(40),
            "98765432101",
            "1",
        );
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
            r#"{"workflow": "rollback", "environment": "staging", "input": {"reason": "5xx"}}"#,
        ));
        assert_eq!(ok.unwrap().workflow, "rollback");
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
                r#"{"workflow": "provision", "environment": "prod", "input": {"actor": "ceo"}}"#,
                "input.actor",
            ),
            (
                r#"{"workflow": "provision", "environment": "prod", "input": {"spec_version": "v1"}}"#,
                "input.spec_version",
            ),
            (
                r#"{"workflow": "deploy-all", "environment": "prod"}"#,
                "workflow",
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
        assert_eq!(DispatchError::TooLarge.status(), 413);
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let big = request(&format!(
            r#"{{"workflow": "rollback", "environment": "staging", "input": {{"reason": "{}"}}}}"#,
            "x".repeat(hygiene::MAX_BODY_BYTES)
        ));
        assert!(matches!(
            check_body_size(&big),
            Err(DispatchError::TooLarge)
        ));
        assert!(check_body_size(&request("{}")).is_ok());
    }

    #[test]
    fn the_shared_audience_is_not_a_configuration() {
        let lookup = |audience: &'static str| {
            move |k: &str| match k {
                "OPSPLANE_OIDC_AUDIENCE" => Some(audience.to_owned()),
                "OPSPLANE_STATE_MACHINE_PREFIX" => {
                    Some("arn:aws:states:eu-west-1:1:stateMachine:opsplane-".to_owned())
                }
                _ => None,
            }
        };
        let err = DispatchConfig::from_lookup(lookup(SHARED_AUDIENCE)).unwrap_err();
        assert_eq!(err.name, "OPSPLANE_OIDC_AUDIENCE");
        let ok = DispatchConfig::from_lookup(lookup("opsplane:1:eu-west-1:ops")).unwrap();
        assert_eq!(
            ok.max_lifetime_seconds,
            hygiene::DEFAULT_MAX_LIFETIME_SECONDS
        );
        assert!(!ok.audience_lists);
    }
}
