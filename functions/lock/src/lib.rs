//! The `lock` function: acquire, renew and release an environment's lease lock.
//!
//! Input, as the definitions send it:
//! - `{"action": "acquire", "environment": "prod", "holder": "<execution ARN>", "operation": "backup",
//!   "lease_seconds": 900}` → `{"environment", "holder", "operation", "token", "acquired_at",
//!   "lease_expires_at", "took_over_from": null | {"holder", "operation", "token", "reason", ...}}`
//! - `{"action": "renew", "environment", "holder", "token", "lease_seconds"}` → the same shape
//! - `{"action": "release", "environment", "holder", "token"}` → `{"released": true | false, "reason"}`
//!
//! `lease_seconds` is optional (900). Failures: `LockHeld` (with holder, operation, since), `LockLost`,
//! `InvalidInput` naming the field and what is allowed; bad input is refused before any AWS call.

use std::sync::Arc;
use std::time::Duration;

use opsplane_shared::OpsError;
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::boundary::parse_action;
use opsplane_shared::clock::rfc3339;
use opsplane_shared::config::Config;
use opsplane_shared::lock::{self, AcquireRequest, Lock, LockGrant};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// The function's name, as registered on the local engine and deployed.
pub const FUNCTION_NAME: &str = "lock";
/// The lease used when the input has no `lease_seconds`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(900);
/// The longest holder and operation strings accepted (an execution ARN is at most 2048 characters).
const MAX_HOLDER_LEN: usize = 2048;
const MAX_OPERATION_LEN: usize = 64;

/// What the handler needs.
#[derive(Clone)]
pub struct LockDeps {
    /// The lock backend.
    pub lock: Arc<dyn Lock>,
}

impl LockDeps {
    /// Dependencies over `lock`.
    pub fn new(lock: Arc<dyn Lock>) -> Self {
        Self { lock }
    }

    /// The backend `cfg` selects, asking Step Functions whether holders still run.
    pub fn from_config(cfg: &Config, clients: &Clients) -> Self {
        let executions = Arc::new(SfnExecutions::new(clients.sfn.clone()));
        Self::new(lock::from_config(cfg, clients, executions))
    }
}

/// A lease in whole seconds; anything else is refused with the range, naming `lease_seconds`.
fn lease_seconds<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "must be a whole number of seconds from 30 to 43200, not {v}"
                ))
            }),
    }
}

/// A fencing token: the positive integer acquire returned.
fn token<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().filter(|t| *t > 0).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be the positive integer `token` returned by acquire, not {v}"
            ))
        }),
    }
}

/// Checks what every action names: the environment and the holder (an execution ARN).
fn check_holder(environment: &str, holder: &str) -> Result<(), OpsError> {
    lock::validate_environment(environment)
        .map_err(|reason| OpsError::invalid("environment", reason))?;
    if holder.trim().is_empty() || holder.len() > MAX_HOLDER_LEN {
        return Err(OpsError::invalid(
            "holder",
            format!(
                "must be the execution ARN ($$.Execution.Id), 1 to {MAX_HOLDER_LEN} characters"
            ),
        ));
    }
    Ok(())
}

/// `acquire`: take the lock for an operation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AcquireInput {
    /// The environment.
    pub environment: String,
    /// Who asks: the execution ARN (`$$.Execution.Id`).
    pub holder: String,
    /// The operation (backup, provision, ...).
    pub operation: String,
    /// The lease; [`DEFAULT_LEASE`] when absent.
    #[serde(default, deserialize_with = "lease_seconds")]
    pub lease_seconds: Option<Duration>,
}

/// `renew`: extend the lease of a held lock.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RenewInput {
    /// The environment.
    pub environment: String,
    /// Who holds it: the execution ARN.
    pub holder: String,
    /// The token acquire returned.
    #[serde(default, deserialize_with = "token")]
    pub token: Option<u64>,
    /// The new lease; [`DEFAULT_LEASE`] when absent.
    #[serde(default, deserialize_with = "lease_seconds")]
    pub lease_seconds: Option<Duration>,
}

/// `release`: free a held lock.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReleaseInput {
    /// The environment.
    pub environment: String,
    /// Who holds it: the execution ARN.
    pub holder: String,
    /// The token acquire returned.
    #[serde(default, deserialize_with = "token")]
    pub token: Option<u64>,
}

opsplane_shared::actions! {
    /// The lock function's input.
    pub enum Action {
        /// Takes the lock.
        "acquire" => Acquire(AcquireInput),
        /// Extends the lease.
        "renew" => Renew(RenewInput),
        /// Frees the lock.
        "release" => Release(ReleaseInput),
    }
}

fn lease(lease: Option<Duration>) -> Result<Duration, OpsError> {
    let lease = lease.unwrap_or(DEFAULT_LEASE);
    lock::validate_lease(lease).map_err(|reason| OpsError::invalid("lease_seconds", reason))?;
    Ok(lease)
}

fn required_token(token: Option<u64>) -> Result<u64, OpsError> {
    token.ok_or_else(|| {
        OpsError::invalid("token", "is required: pass the `token` returned by acquire")
    })
}

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Acquire(AcquireRequest),
    Renew {
        environment: String,
        holder: String,
        token: u64,
        lease: Duration,
    },
    Release {
        environment: String,
        holder: String,
        token: u64,
    },
}

/// The typed input checked against the lock's rules; refused before any AWS call.
fn parse(input: Value) -> Result<Request, OpsError> {
    match parse_action::<Action>(input)? {
        Action::Acquire(a) => {
            check_holder(&a.environment, &a.holder)?;
            if a.operation.trim().is_empty() || a.operation.len() > MAX_OPERATION_LEN {
                return Err(OpsError::invalid(
                    "operation",
                    format!(
                        "must name the operation (deploy, backup, ...), 1 to {MAX_OPERATION_LEN} characters"
                    ),
                ));
            }
            Ok(Request::Acquire(AcquireRequest {
                environment: a.environment,
                holder: a.holder,
                operation: a.operation,
                lease: lease(a.lease_seconds)?,
            }))
        }
        Action::Renew(r) => {
            check_holder(&r.environment, &r.holder)?;
            Ok(Request::Renew {
                token: required_token(r.token)?,
                lease: lease(r.lease_seconds)?,
                environment: r.environment,
                holder: r.holder,
            })
        }
        Action::Release(r) => {
            check_holder(&r.environment, &r.holder)?;
            Ok(Request::Release {
                token: required_token(r.token)?,
                environment: r.environment,
                holder: r.holder,
            })
        }
    }
}

/// Handles one event.
pub async fn handle(deps: &LockDeps, input: Value) -> Result<Value, OpsError> {
    let request = parse(input)?;
    match request {
        Request::Acquire(req) => {
            let grant = deps.lock.acquire(&req).await?;
            Ok(grant_json(&grant))
        }
        Request::Renew {
            environment,
            holder,
            token,
            lease,
        } => {
            let grant = deps.lock.renew(&environment, &holder, token, lease).await?;
            Ok(grant_json(&grant))
        }
        Request::Release {
            environment,
            holder,
            token,
        } => {
            let outcome = deps.lock.release(&environment, &holder, token).await?;
            Ok(json!({ "released": outcome.released, "reason": outcome.reason }))
        }
    }
}

opsplane_shared::function!(LockDeps, FUNCTION_NAME, handle);

fn grant_json(grant: &LockGrant) -> Value {
    json!({
        "environment": grant.environment,
        "holder": grant.holder,
        "operation": grant.operation,
        "token": grant.token,
        "acquired_at": rfc3339(grant.acquired_at),
        "lease_expires_at": rfc3339(grant.lease_expires_at),
        "took_over_from": grant.took_over_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsplane_shared::ErrorName;

    fn field_of(err: OpsError) -> String {
        match err {
            OpsError::InvalidInput { field, .. } => field,
            other => panic!("expected InvalidInput, got {other}"),
        }
    }

    #[test]
    fn acquire_input_is_read_with_the_default_lease() {
        let req = parse(
            json!({"action": "acquire", "environment": "prod", "holder": "arn:x",
                                "operation": "backup"}),
        )
        .unwrap();
        assert_eq!(
            req,
            Request::Acquire(AcquireRequest {
                environment: "prod".into(),
                holder: "arn:x".into(),
                operation: "backup".into(),
                lease: DEFAULT_LEASE,
            })
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = json!({"action": "acquire", "environment": "prod", "holder": "arn:x",
                          "operation": "backup", "lease_seconds": 900, "token": 3});
        let cases = [
            ("action", json!("lock"), "acquire, renew, release"),
            ("environment", json!("Prod_1"), "a-z, 0-9"),
            ("holder", json!(""), "execution ARN"),
            ("operation", json!(""), "name the operation"),
            ("lease_seconds", json!(10), "30 to 43200"),
            ("lease_seconds", json!(43_201), "30 to 43200"),
            ("lease_seconds", json!("900"), "whole number"),
        ];
        for (field, value, expect) in cases {
            let mut input = base.clone();
            input[field] = value;
            let err = parse(input.clone()).unwrap_err();
            assert_eq!(err.name(), ErrorName::InvalidInput);
            assert!(err.to_string().contains(expect), "{field}: {err}");
            assert_eq!(field_of(err), field);
        }
        for missing in ["action", "environment", "holder", "operation"] {
            let mut input = base.clone();
            input.as_object_mut().unwrap().remove(missing);
            assert_eq!(field_of(parse(input.clone()).unwrap_err()), missing);
        }
        assert_eq!(field_of(parse(json!([1])).unwrap_err()), "input");
    }

    #[test]
    fn renew_and_release_need_a_positive_token() {
        for action in ["renew", "release"] {
            let input = json!({"action": action, "environment": "prod", "holder": "arn:x"});
            assert!(
                parse(input.clone())
                    .unwrap_err()
                    .to_string()
                    .contains("returned by acquire")
            );
            let mut zero = input.clone();
            zero["token"] = json!(0);
            assert_eq!(field_of(parse(zero.clone()).unwrap_err()), "token");
            let mut ok = input.clone();
            ok["token"] = json!(5);
            assert!(parse(ok.clone()).is_ok());
        }
    }
}
