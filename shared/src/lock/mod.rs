//! Lease locks, one per environment: the [`Lock`] port and its two backends.
//!
//! - [`DynamoDbLock`] (default): the lock is the item `pk=ENV#<env>, sk=LOCK`. Acquire is one conditional
//!   `UpdateItem`; renew and release are conditional on holder and token.
//! - [`S3Lock`]: the lock is the object `locks/<env>.lock`, written with `If-None-Match: *` / `If-Match`.
//!
//! Both issue a monotonic fencing token per grant and keep the counter when a lock is released (the item or
//! object stays, with no holder), so tokens never go back. Each grant is also above the environment's fence
//! and the DynamoDB lock item's token, so a backend switch or a lock deleted by hand never restarts the
//! sequence below tokens fenced writes have seen. The holder is an execution ARN: a lock whose
//! holder has stopped running (asked through [`Executions`]) is taken over at once, unless a function call
//! it made may still be running (a stopped execution does not stop it: until the call has ended or passed
//! its Task's timeout), and every takeover is written to the audit log. Leases are compared by time inside the condition (epoch milliseconds), never
//! left to DynamoDB's TTL, which deletes items late or (moto) never.

mod dynamodb;
mod s3;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::from_ms;

pub use dynamodb::DynamoDbLock;
pub use s3::S3Lock;

use crate::aws::Clients;
use crate::clock::rfc3339;
use crate::config::{Config, LockBackend};
use crate::error::{BoxError, OpsError};
use crate::future::BoxFuture;
use crate::ports::executions::Executions;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::state::{AuditEvent, LOCK_SK, StateError, StateStore, env_pk};

/// Shortest lease a caller may ask for.
pub const MIN_LEASE: Duration = Duration::from_secs(30);
/// Longest lease a caller may ask for (12 hours): longer work renews (the definitions renew on every poll).
pub const MAX_LEASE: Duration = Duration::from_secs(43_200);

/// A request to take an environment's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireRequest {
    /// The environment.
    pub environment: String,
    /// Who asks: the execution ARN.
    pub holder: String,
    /// What the holder will do (`deploy`, `backup`, ...), shown to whoever finds the lock held.
    pub operation: String,
    /// How long the lock lasts without a renewal.
    pub lease: Duration,
}

/// Why a previous holder lost the lock to a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum TakeoverReason {
    /// Its lease had ended and its execution was not known to run.
    LeaseExpired,
    /// Its execution is no longer running.
    HolderNotRunning {
        /// The execution's status, e.g. `ABORTED`.
        status: String,
    },
}

/// The holder a lock was taken over from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviousHolder {
    /// Its execution ARN.
    pub holder: String,
    /// Its operation.
    pub operation: String,
    /// Its fencing token (now older than the fence will accept).
    pub token: u64,
    /// Why it was taken over.
    #[serde(flatten)]
    pub reason: TakeoverReason,
}

/// A granted (or renewed) lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockGrant {
    /// The environment.
    pub environment: String,
    /// The holder.
    pub holder: String,
    /// The holder's operation.
    pub operation: String,
    /// The fencing token: pass it to every write that changes the environment.
    pub token: u64,
    /// When this holder acquired the lock.
    pub acquired_at: DateTime<Utc>,
    /// When the lease ends unless renewed.
    pub lease_expires_at: DateTime<Utc>,
    /// The holder this grant displaced, if any.
    pub took_over_from: Option<PreviousHolder>,
}

/// A held lock as seen by an observer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    /// The environment.
    pub environment: String,
    /// The holder.
    pub holder: String,
    /// Its operation.
    pub operation: String,
    /// Its fencing token.
    pub token: u64,
    /// When it acquired the lock.
    pub acquired_at: DateTime<Utc>,
    /// When its lease ends (possibly already past: an expired lock is taken over unless its holder still
    /// runs).
    pub lease_expires_at: DateTime<Utc>,
}

impl LockInfo {
    /// A held lock as a backend stores it, its times in epoch milliseconds.
    pub(crate) fn stored(
        environment: &str,
        holder: &str,
        operation: &str,
        token: u64,
        acquired_at_ms: i64,
        lease_expires_at_ms: i64,
    ) -> Self {
        Self {
            environment: environment.to_owned(),
            holder: holder.to_owned(),
            operation: operation.to_owned(),
            token,
            acquired_at: from_ms(acquired_at_ms),
            lease_expires_at: from_ms(lease_expires_at_ms),
        }
    }

    /// This lock as its holder was granted it, displacing `took_over_from`.
    pub(crate) fn granted(self, took_over_from: Option<PreviousHolder>) -> LockGrant {
        LockGrant {
            environment: self.environment,
            holder: self.holder,
            operation: self.operation,
            token: self.token,
            acquired_at: self.acquired_at,
            lease_expires_at: self.lease_expires_at,
            took_over_from,
        }
    }
}

/// How a lock stands, for the error that tells a holder it lost it.
fn standing(holder: Option<&str>, token: u64) -> String {
    match holder {
        Some(h) => format!("held by {h} with token {token}"),
        None if token == 0 => "the lock does not exist".to_owned(),
        None => format!("released (last token {token})"),
    }
}

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseOutcome {
    /// Whether this call released the caller's lock.
    pub released: bool,
    /// Why not, when it did not (already released, taken over, ...).
    pub reason: Option<String>,
}

impl ReleaseOutcome {
    fn released() -> Self {
        Self {
            released: true,
            reason: None,
        }
    }

    fn not_released(reason: impl Into<String>) -> Self {
        Self {
            released: false,
            reason: Some(reason.into()),
        }
    }
}

/// A lock operation failed.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another live holder has the lock.
    #[error(
        "environment `{environment}` is locked by {holder} for {operation} since {}",
        rfc3339(*since)
    )]
    Held {
        /// The environment.
        environment: String,
        /// The holder's execution ARN.
        holder: String,
        /// The holder's operation.
        operation: String,
        /// When it acquired the lock.
        since: DateTime<Utc>,
    },
    /// The caller no longer holds the lock (renew after a takeover, a token that is not current).
    #[error("lock on environment `{environment}` lost: {reason}")]
    Lost {
        /// The environment.
        environment: String,
        /// What was found instead.
        reason: String,
    },
    /// The stored lock cannot be read.
    #[error("lock of environment `{environment}` is malformed: {reason}")]
    Corrupt {
        /// The environment.
        environment: String,
        /// What is wrong.
        reason: String,
    },
    /// An AWS call failed.
    #[error("{operation} failed")]
    Aws {
        /// The AWS operation.
        operation: &'static str,
        /// Whether AWS throttled the call.
        throttled: bool,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// A state-store call (fence, audit) failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<LockError> for OpsError {
    fn from(err: LockError) -> Self {
        match err {
            LockError::Held {
                environment,
                holder,
                operation,
                since,
            } => OpsError::LockHeld {
                environment,
                holder,
                operation,
                since: rfc3339(since),
            },
            LockError::Lost {
                environment,
                reason,
            } => OpsError::LockLost {
                environment,
                reason,
            },
            LockError::Aws {
                operation,
                throttled: true,
                source,
            } => OpsError::Throttled { operation, source },
            LockError::Aws {
                operation, source, ..
            } => OpsError::Aws { operation, source },
            LockError::State(state) => state.into(),
            LockError::Corrupt { .. } => OpsError::Internal(err.to_string()),
        }
    }
}

/// An environment's lease lock.
pub trait Lock: Send + Sync {
    /// Takes the lock: free, holder not running (taken over), lease expired and holder not known to run
    /// (taken over), or already held by the same holder (a retried acquire: same token, lease extended).
    /// Otherwise [`LockError::Held`]: a holder whose execution still runs keeps its lock past its lease.
    fn acquire<'a>(
        &'a self,
        req: &'a AcquireRequest,
    ) -> BoxFuture<'a, Result<LockGrant, LockError>>;

    /// Extends the lease of the lock `holder` holds with `token`; [`LockError::Lost`] when it does not.
    fn renew<'a>(
        &'a self,
        environment: &'a str,
        holder: &'a str,
        token: u64,
        lease: Duration,
    ) -> BoxFuture<'a, Result<LockGrant, LockError>>;

    /// Releases the lock `holder` holds with `token`. Not holding it is not an error (cleanup paths and
    /// retries release twice): the outcome says `released: false` and why.
    fn release<'a>(
        &'a self,
        environment: &'a str,
        holder: &'a str,
        token: u64,
    ) -> BoxFuture<'a, Result<ReleaseOutcome, LockError>>;

    /// The lock of `environment` when held (possibly with an expired lease), else `None`.
    fn status<'a>(
        &'a self,
        environment: &'a str,
    ) -> BoxFuture<'a, Result<Option<LockInfo>, LockError>>;

    /// Every held lock.
    fn list(&self) -> BoxFuture<'_, Result<Vec<LockInfo>, LockError>>;

    /// Releases whatever holds `environment`'s lock, for an operator, and writes an audit event naming
    /// `actor` and `reason`. Returns the lock that was released, `None` when it was free.
    fn force_release<'a>(
        &'a self,
        environment: &'a str,
        actor: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Option<LockInfo>, LockError>>;
}

/// The lock a Task holds, passed as `lock` in its payload by every polling or mutating step of a workflow
/// that holds one. The handler renews it at the start of each call, retries included, so the lease need only
/// outlast the longest stretch between two calls (the definitions' `lease-budget` lint), not the whole run;
/// a renewal that finds the lock taken over fails `LockLost` before the call changes anything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldLock {
    /// The environment.
    pub environment: String,
    /// The holder: the execution ARN (`$$.Execution.Id`).
    pub holder: String,
    /// The token its acquire returned.
    pub token: u64,
    /// The lease each renewal grants.
    pub lease_seconds: u64,
}

impl HeldLock {
    /// Renews the lease through `lock`.
    pub async fn renew(&self, lock: &dyn Lock) -> Result<LockGrant, OpsError> {
        let lease = Duration::from_secs(self.lease_seconds);
        validate_lease(lease).map_err(|reason| OpsError::invalid("lock.lease_seconds", reason))?;
        let grant = lock
            .renew(&self.environment, &self.holder, self.token, lease)
            .await?;
        tracing::debug!(
            environment = self.environment,
            token = self.token,
            lease_expires_at = %rfc3339(grant.lease_expires_at),
            "lock renewed"
        );
        Ok(grant)
    }
}

/// Renews `held` when the payload carried it (see [`HeldLock`]).
pub async fn renew_held(lock: &dyn Lock, held: Option<&HeldLock>) -> Result<(), OpsError> {
    if let Some(held) = held {
        held.renew(lock).await?;
    }
    Ok(())
}

/// The lock backend `cfg` selects, over `clients`, asking `executions` about holders.
pub fn from_config(
    cfg: &Config,
    clients: &Clients,
    executions: Arc<dyn Executions>,
) -> Arc<dyn Lock> {
    with_store(
        cfg,
        clients,
        StateStore::from_config(cfg, clients),
        executions,
    )
}

/// The lock backend `cfg` selects, keeping its items in `store` (and reading time from its clock).
pub fn with_store(
    cfg: &Config,
    clients: &Clients,
    store: StateStore,
    executions: Arc<dyn Executions>,
) -> Arc<dyn Lock> {
    match cfg.lock_backend {
        LockBackend::DynamoDb => Arc::new(DynamoDbLock::new(store, executions)),
        LockBackend::S3 => Arc::new(S3Lock::new(
            clients.s3.clone(),
            cfg.bucket_name.clone(),
            store,
            executions,
        )),
    }
}

/// Checks an environment name: `^[a-z][a-z0-9-]{0,31}$`.
pub fn validate_environment(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && name.len() <= 32 {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not an environment name: use 1 to 32 characters of a-z, 0-9 and '-', starting with a letter"
        ))
    }
}

/// Checks a lease length against [`MIN_LEASE`]..=[`MAX_LEASE`].
pub fn validate_lease(lease: Duration) -> Result<(), String> {
    if (MIN_LEASE..=MAX_LEASE).contains(&lease) {
        Ok(())
    } else {
        Err(format!(
            "{} seconds is out of range: a lease is {} to {} seconds",
            lease.as_secs(),
            MIN_LEASE.as_secs(),
            MAX_LEASE.as_secs()
        ))
    }
}

/// Records a takeover in the audit log. The grant stands even if this fails: the lock's correctness does
/// not depend on the log, and failing the acquire would only make the caller retry into a re-acquire.
async fn audit_takeover(store: &StateStore, grant: &LockGrant) {
    let Some(prev) = &grant.took_over_from else {
        return;
    };
    let event = AuditEvent::new(
        store.clock().now(),
        grant.holder.clone(),
        "lock.takeover",
        Some(grant.environment.clone()),
        "ok",
        serde_json::json!({
            "previous": prev,
            "operation": grant.operation,
            "token": grant.token,
        }),
    )
    .with_execution(grant.holder.clone());
    if let Err(err) = store.append_audit(&event).await {
        tracing::error!(
            environment = grant.environment,
            error = %crate::error::OpsError::from(err).full_message(),
            "takeover not written to the audit log"
        );
    }
}

/// The lowest token a grant may give is one above this: the environment's fence (the newest token a fenced
/// write used, whichever backend granted it) and the DynamoDB lock item's token (tokens that backend issued,
/// which fenced writes also check, even when the S3 backend is configured now).
async fn token_floor(store: &StateStore, environment: &str) -> Result<u64, LockError> {
    let fence = store.meta(environment).await?.fence;
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(env_pk(environment)))
        .key("sk", AttributeValue::S(LOCK_SK.to_owned()))
        .projection_expression("#token")
        .expression_attribute_names("#token", "token")
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| StateError::aws("GetItem", e))?;
    let issued = out
        .item()
        .and_then(|i| i.get("token"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(fence.max(issued))
}

/// Logs and records an operator's forced release (both backends end `force_release` here).
async fn audit_force_release(
    store: &StateStore,
    environment: &str,
    actor: &str,
    reason: &str,
    released: Option<&LockInfo>,
) -> Result<(), LockError> {
    tracing::warn!(
        environment,
        actor,
        reason,
        released_holder = released.map(|l| l.holder.as_str()),
        "lock force-released"
    );
    let event = AuditEvent::new(
        store.clock().now(),
        actor,
        "lock.force_release",
        Some(environment.to_owned()),
        if released.is_some() { "ok" } else { "not_held" },
        serde_json::json!({ "reason": reason, "released": released }),
    );
    store.append_audit(&event).await?;
    Ok(())
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Implements [`Lock`] for a backend by boxing its inherent `*_inner` methods: the trait returns boxed
/// futures so that it can be a trait object, and both backends would otherwise repeat the same block.
macro_rules! lock_via_inner {
    ($backend:ty) => {
        impl $crate::lock::Lock for $backend {
            fn acquire<'a>(
                &'a self,
                req: &'a $crate::lock::AcquireRequest,
            ) -> $crate::future::BoxFuture<
                'a,
                Result<$crate::lock::LockGrant, $crate::lock::LockError>,
            > {
                Box::pin(self.acquire_inner(req))
            }

            fn renew<'a>(
                &'a self,
                environment: &'a str,
                holder: &'a str,
                token: u64,
                lease: std::time::Duration,
            ) -> $crate::future::BoxFuture<
                'a,
                Result<$crate::lock::LockGrant, $crate::lock::LockError>,
            > {
                Box::pin(self.renew_inner(environment, holder, token, lease))
            }

            fn release<'a>(
                &'a self,
                environment: &'a str,
                holder: &'a str,
                token: u64,
            ) -> $crate::future::BoxFuture<
                'a,
                Result<$crate::lock::ReleaseOutcome, $crate::lock::LockError>,
            > {
                Box::pin(self.release_inner(environment, holder, token))
            }

            fn status<'a>(
                &'a self,
                environment: &'a str,
            ) -> $crate::future::BoxFuture<
                'a,
                Result<Option<$crate::lock::LockInfo>, $crate::lock::LockError>,
            > {
                Box::pin(self.status_inner(environment))
            }

            fn list(
                &self,
            ) -> $crate::future::BoxFuture<
                '_,
                Result<Vec<$crate::lock::LockInfo>, $crate::lock::LockError>,
            > {
                Box::pin(self.list_inner())
            }

            fn force_release<'a>(
                &'a self,
                environment: &'a str,
                actor: &'a str,
                reason: &'a str,
            ) -> $crate::future::BoxFuture<
                'a,
                Result<Option<$crate::lock::LockInfo>, $crate::lock::LockError>,
            > {
                Box::pin(self.force_release_inner(environment, actor, reason))
            }
        }
    };
}
pub(crate) use lock_via_inner;

/// Whether another holder may take over a lock held by `holder`, and why; `None`: it may not. A holder
/// whose execution still runs keeps its lock even past its lease: a provision waiting days for an approval
/// or a poll waiting hours for RDS is still at work, and taking its lock would fail it `LockLost`
/// mid-change. A holder that has ended loses it at once; one the service cannot say anything about
/// (another account, aged out of history) only when its lease has ended.
///
/// A holder stopped (`ABORTED`) or timed out may have left a function call running: stopping an execution
/// does not stop a Lambda invocation (StopExecution, Step Functions API reference). Its lock is taken over
/// only once the call has ended or passed its Task's timeout (`now_ms`, epoch ms), as its history shows, so
/// that no call of the old holder lands after the new one begins.
pub(crate) async fn takeover(
    executions: &dyn crate::ports::executions::Executions,
    holder: &str,
    lease_expired: bool,
    now_ms: i64,
) -> Option<TakeoverReason> {
    use crate::ports::executions::{ExecutionState, running_tasks};
    match executions.state(holder).await {
        ExecutionState::Running => None,
        ExecutionState::NotRunning { status }
            if matches!(status.as_str(), "ABORTED" | "TIMED_OUT") =>
        {
            match executions.history(holder).await {
                Ok(history) => {
                    let running = running_tasks(&history)
                        .into_iter()
                        .find(|t| t.ends_by.timestamp_millis() > now_ms);
                    if let Some(task) = running {
                        tracing::info!(
                            holder,
                            state = task.state.as_deref().unwrap_or_default(),
                            ends_by = %rfc3339(task.ends_by),
                            "the stopped holder's function call may still run: its lock is kept until it ends"
                        );
                        return None;
                    }
                }
                // Without its history nothing says a call still runs; the holder has ended.
                Err(err) => {
                    tracing::warn!(holder, error = %err, "the stopped holder's history could not be read")
                }
            }
            Some(TakeoverReason::HolderNotRunning { status })
        }
        ExecutionState::NotRunning { status } if !lease_expired => {
            Some(TakeoverReason::HolderNotRunning { status })
        }
        ExecutionState::Unknown { .. } if !lease_expired => None,
        ExecutionState::NotRunning { .. } | ExecutionState::Unknown { .. } => {
            Some(TakeoverReason::LeaseExpired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names() {
        for ok in ["prod", "a", "staging-2", &"a".repeat(32)] {
            assert!(validate_environment(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Prod", "2prod", "-x", "a_b", "a.b", &"a".repeat(33)] {
            let err = validate_environment(bad).unwrap_err();
            assert!(err.contains("a-z, 0-9"), "{err}");
        }
    }

    #[test]
    fn lease_bounds() {
        assert!(validate_lease(Duration::from_secs(30)).is_ok());
        assert!(validate_lease(Duration::from_secs(43_200)).is_ok());
        assert!(validate_lease(Duration::from_secs(29)).is_err());
        assert!(
            validate_lease(Duration::from_secs(43_201))
                .unwrap_err()
                .contains("30 to 43200")
        );
    }

    #[test]
    fn errors_map_to_stable_names() {
        let held: OpsError = LockError::Held {
            environment: "prod".into(),
            holder: "arn:x".into(),
            operation: "deploy".into(),
            since: crate::clock::from_ms(0),
        }
        .into();
        assert_eq!(held.name(), crate::ErrorName::LockHeld);
        assert!(
            matches!(held, OpsError::LockHeld { ref since, .. } if since == "1970-01-01T00:00:00.000Z")
        );
        let lost: OpsError = LockError::Lost {
            environment: "prod".into(),
            reason: "r".into(),
        }
        .into();
        assert_eq!(lost.name(), crate::ErrorName::LockLost);
    }

    #[test]
    fn grants_serialise_the_takeover_reason_flat() {
        let prev = PreviousHolder {
            holder: "arn:old".into(),
            operation: "backup".into(),
            token: 4,
            reason: TakeoverReason::HolderNotRunning {
                status: "ABORTED".into(),
            },
        };
        let v = serde_json::to_value(&prev).unwrap();
        assert_eq!(v["reason"], "holder_not_running");
        assert_eq!(v["status"], "ABORTED");
        assert_eq!(v["token"], 4);
    }
}
