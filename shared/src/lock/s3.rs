//! The S3 lock backend: the object `locks/<env>.lock` in the state bucket.
//!
//! The body is JSON: a random owner token (one per acquire, renew or release call, the same across the
//! SDK's retries of one PUT), holder, operation, fencing token and lease, in epoch milliseconds. A new lock
//! is created with `If-None-Match: *`; every later change is a PUT with `If-Match: <etag>` of the version
//! just read, so two writers cannot both succeed. Release writes a body without a holder (the object
//! stays) so the token counter survives. Every grant is above the environment's fence and the DynamoDB lock
//! item's token as well as the object's: a lock whose object was deleted by hand, or an environment whose
//! lock was on DynamoDB until now, never counts again below tokens fenced writes have seen.
//!
//! A 412 is not proof of losing: when the SDK retried a PUT whose first attempt succeeded but whose
//! response was lost, the retry is refused because of our own write. So on a 412 the object is read back
//! and counts as ours when it carries our owner token. A 409 `ConditionalRequestConflict` (a concurrent
//! conditional write in flight) is retried with back-off. Each grant also raises the environment's fence in
//! DynamoDB, so writes fenced by an older token fail even before the new holder writes anything.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde::{Deserialize, Serialize};

use super::{
    AcquireRequest, LockError, LockGrant, LockInfo, PreviousHolder, ReleaseOutcome,
    audit_force_release, audit_takeover, lease_ms, standing, token_floor,
};
use crate::clock::from_ms;
use crate::ports::executions::Executions;
use crate::state::{StateError, StateStore};

/// How many times acquire re-reads and re-decides when the object changes under it.
const ROUNDS: usize = 4;
/// How many times a PUT answered 409 ConditionalRequestConflict is sent again.
const CONFLICT_RETRIES: u32 = 5;
/// The key prefix of lock objects.
pub const LOCK_PREFIX: &str = "locks/";

/// The lock object's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    owner: String,
    holder: Option<String>,
    operation: Option<String>,
    token: u64,
    acquired_at_ms: i64,
    lease_expires_at_ms: i64,
}

impl Body {
    fn info(&self, environment: &str) -> Option<LockInfo> {
        self.holder
            .as_ref()
            .map(|holder| self.held_by(environment, holder))
    }

    /// This body as the lock `holder` holds.
    fn held_by(&self, environment: &str, holder: &str) -> LockInfo {
        LockInfo::stored(
            environment,
            holder,
            self.operation.as_deref().unwrap_or_default(),
            self.token,
            self.acquired_at_ms,
            self.lease_expires_at_ms,
        )
    }

    fn describe(&self) -> String {
        standing(self.holder.as_deref(), self.token)
    }

    fn released(&self, owner: String, now: i64) -> Self {
        Self {
            owner,
            holder: None,
            operation: None,
            token: self.token,
            acquired_at_ms: self.acquired_at_ms,
            lease_expires_at_ms: now.min(self.lease_expires_at_ms),
        }
    }
}

/// The precondition of a PUT.
#[derive(Debug, Clone)]
enum Precondition {
    /// `If-None-Match: *`: the object must not exist.
    Absent,
    /// `If-Match: <etag>`: the object must be the version read.
    Matches(String),
}

/// How a conditional PUT ended.
enum Put {
    Written,
    /// 412 (or 404 for `If-Match` on a deleted object): another version is there, perhaps our own.
    Refused,
}

/// The S3-backed [`Lock`].
#[derive(Clone)]
pub struct S3Lock {
    s3: aws_sdk_s3::Client,
    bucket: String,
    store: StateStore,
    executions: Arc<dyn Executions>,
}

impl std::fmt::Debug for S3Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Lock")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn new_owner() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl S3Lock {
    /// A lock over objects in `bucket`, raising fences and writing audit events through `store` (whose
    /// clock it uses), asking `executions` whether holders still run.
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        store: StateStore,
        executions: Arc<dyn Executions>,
    ) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
            store,
            executions,
        }
    }

    /// The object key of an environment's lock.
    pub fn key(environment: &str) -> String {
        format!("{LOCK_PREFIX}{environment}.lock")
    }

    async fn read(&self, environment: &str) -> Result<Option<(Body, String)>, LockError> {
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(Self::key(environment))
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(s3_err("GetObject", err)),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| LockError::Aws {
                operation: "GetObject",
                throttled: false,
                source: Box::new(e),
            })?
            .into_bytes();
        let body: Body = serde_json::from_slice(&bytes).map_err(|e| LockError::Corrupt {
            environment: environment.to_owned(),
            reason: format!("{} is not a lock object: {e}", Self::key(environment)),
        })?;
        Ok(Some((body, etag)))
    }

    async fn put(
        &self,
        environment: &str,
        body: &Body,
        pre: &Precondition,
    ) -> Result<Put, LockError> {
        let bytes = serde_json::to_vec(body).expect("a lock body serialises");
        let mut attempt = 0;
        loop {
            let mut req = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(Self::key(environment))
                .content_type("application/json")
                .body(ByteStream::from(bytes.clone()));
            req = match pre {
                Precondition::Absent => req.if_none_match("*"),
                Precondition::Matches(etag) => req.if_match(etag),
            };
            match req.send().await {
                Ok(_) => return Ok(Put::Written),
                Err(err) => {
                    let status = err.raw_response().map(|r| r.status().as_u16());
                    let code = err.code().map(str::to_owned);
                    if status == Some(412) || code.as_deref() == Some("PreconditionFailed") {
                        return Ok(Put::Refused);
                    }
                    if matches!(pre, Precondition::Matches(_))
                        && (status == Some(404) || code.as_deref() == Some("NoSuchKey"))
                    {
                        return Ok(Put::Refused);
                    }
                    let conflict = status == Some(409)
                        || code.as_deref() == Some("ConditionalRequestConflict");
                    if conflict && attempt < CONFLICT_RETRIES {
                        attempt += 1;
                        let backoff = Duration::from_millis(25 * (1 << attempt) + jitter_ms(25));
                        tracing::debug!(
                            environment,
                            attempt,
                            ?backoff,
                            "S3 conditional write conflict; retrying"
                        );
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    return Err(s3_err("PutObject", err));
                }
            }
        }
    }

    /// A PUT that counts a refusal as success when the object now carries our owner token.
    async fn put_checked(
        &self,
        environment: &str,
        body: &Body,
        pre: &Precondition,
    ) -> Result<Result<(), Option<Body>>, LockError> {
        match self.put(environment, body, pre).await? {
            Put::Written => Ok(Ok(())),
            Put::Refused => match self.read(environment).await? {
                Some((now, _)) if now.owner == body.owner => {
                    tracing::info!(
                        environment,
                        "conditional PUT refused, but the object is our own earlier attempt"
                    );
                    Ok(Ok(()))
                }
                other => Ok(Err(other.map(|(b, _)| b))),
            },
        }
    }

    async fn acquire_inner(&self, req: &AcquireRequest) -> Result<LockGrant, LockError> {
        let env = req.environment.as_str();
        let owner = new_owner();
        let mut last: Option<Body> = None;
        for _ in 0..ROUNDS {
            let now = self.store.clock().now_ms();
            let exp = now + lease_ms(req.lease);
            let current = self.read(env).await?;
            // Above the fence and the DynamoDB lock's tokens too: the object may have been deleted by hand,
            // or the DynamoDB backend may have granted tokens since this object was last written.
            let floor = token_floor(&self.store, env).await?;
            let (pre, token, acquired_at, took_over_from) = match &current {
                None => (Precondition::Absent, floor + 1, now, None),
                Some((cur, etag)) => match &cur.holder {
                    Some(h) if *h == req.holder && cur.token >= floor => (
                        Precondition::Matches(etag.clone()),
                        cur.token,
                        cur.acquired_at_ms,
                        None,
                    ),
                    // Ours but below the floor (granted before the other backend's tokens): a new grant.
                    Some(h) if *h == req.holder => (
                        Precondition::Matches(etag.clone()),
                        cur.token.max(floor) + 1,
                        now,
                        None,
                    ),
                    None => (
                        Precondition::Matches(etag.clone()),
                        cur.token.max(floor) + 1,
                        now,
                        None,
                    ),
                    Some(h) => {
                        let expired = cur.lease_expires_at_ms < now;
                        let Some(reason) =
                            super::takeover(self.executions.as_ref(), h, expired, now).await
                        else {
                            return Err(LockError::Held {
                                environment: env.to_owned(),
                                holder: h.clone(),
                                operation: cur.operation.clone().unwrap_or_default(),
                                since: from_ms(cur.acquired_at_ms),
                            });
                        };
                        let prev = PreviousHolder {
                            holder: h.clone(),
                            operation: cur.operation.clone().unwrap_or_default(),
                            token: cur.token,
                            reason,
                        };
                        (
                            Precondition::Matches(etag.clone()),
                            cur.token.max(floor) + 1,
                            now,
                            Some(prev),
                        )
                    }
                },
            };
            let body = Body {
                owner: owner.clone(),
                holder: Some(req.holder.clone()),
                operation: Some(req.operation.clone()),
                token,
                acquired_at_ms: acquired_at,
                lease_expires_at_ms: exp,
            };
            match self.put_checked(env, &body, &pre).await? {
                Ok(()) => {
                    self.store.raise_fence(env, token).await.map_err(|e| match e {
                        StateError::Fenced { reason, .. } => LockError::Lost {
                            environment: env.to_owned(),
                            reason: format!(
                                "granted token {token} but the environment's fence is newer ({reason}); \
                                 the lock object was reset: release it with `opsplane lock release --force`"
                            ),
                        },
                        other => LockError::State(other),
                    })?;
                    let grant = body.held_by(env, &req.holder).granted(took_over_from);
                    tracing::info!(
                        environment = env,
                        holder = grant.holder,
                        token,
                        took_over_from = grant.took_over_from.as_ref().map(|p| p.holder.as_str()),
                        "lock acquired"
                    );
                    audit_takeover(&self.store, &grant).await;
                    return Ok(grant);
                }
                Err(now_there) => last = now_there,
            }
        }
        let cur = last.unwrap_or(Body {
            owner: String::new(),
            holder: None,
            operation: None,
            token: 0,
            acquired_at_ms: 0,
            lease_expires_at_ms: 0,
        });
        Err(LockError::Held {
            environment: env.to_owned(),
            holder: cur.holder.unwrap_or_default(),
            operation: cur.operation.unwrap_or_default(),
            since: from_ms(cur.acquired_at_ms),
        })
    }

    async fn renew_inner(
        &self,
        environment: &str,
        holder: &str,
        token: u64,
        lease: Duration,
    ) -> Result<LockGrant, LockError> {
        let lost = |found: String| LockError::Lost {
            environment: environment.to_owned(),
            reason: format!("{holder} with token {token} no longer holds it: {found}"),
        };
        let Some((cur, etag)) = self.read(environment).await? else {
            return Err(lost("the lock does not exist".into()));
        };
        if cur.holder.as_deref() != Some(holder) || cur.token != token {
            return Err(lost(cur.describe()));
        }
        let now = self.store.clock().now_ms();
        let body = Body {
            owner: new_owner(),
            lease_expires_at_ms: now + lease_ms(lease),
            ..cur
        };
        match self
            .put_checked(environment, &body, &Precondition::Matches(etag))
            .await?
        {
            Ok(()) => Ok(body.held_by(environment, holder).granted(None)),
            Err(found) => Err(lost(
                found.map_or("the lock does not exist".into(), |b| b.describe()),
            )),
        }
    }

    async fn release_inner(
        &self,
        environment: &str,
        holder: &str,
        token: u64,
    ) -> Result<ReleaseOutcome, LockError> {
        let not_ours = |found: String| {
            let reason = format!("not held by {holder} with token {token}: {found}");
            tracing::info!(environment, holder, token, reason, "nothing to release");
            ReleaseOutcome::not_released(reason)
        };
        let Some((cur, etag)) = self.read(environment).await? else {
            return Ok(not_ours("the lock does not exist".into()));
        };
        if cur.holder.as_deref() != Some(holder) || cur.token != token {
            return Ok(not_ours(cur.describe()));
        }
        let body = cur.released(new_owner(), self.store.clock().now_ms());
        match self
            .put_checked(environment, &body, &Precondition::Matches(etag))
            .await?
        {
            Ok(()) => {
                tracing::info!(environment, holder, token, "lock released");
                Ok(ReleaseOutcome::released())
            }
            Err(found) => Ok(not_ours(
                found.map_or("the lock does not exist".into(), |b| b.describe()),
            )),
        }
    }

    async fn force_release_inner(
        &self,
        environment: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<LockInfo>, LockError> {
        let mut released = None;
        for _ in 0..ROUNDS {
            let Some((cur, etag)) = self.read(environment).await? else {
                break;
            };
            let Some(info) = cur.info(environment) else {
                break;
            };
            let body = cur.released(new_owner(), self.store.clock().now_ms());
            if self
                .put_checked(environment, &body, &Precondition::Matches(etag))
                .await?
                .is_ok()
            {
                released = Some(info);
                break;
            }
        }
        audit_force_release(&self.store, environment, actor, reason, released.as_ref()).await?;
        Ok(released)
    }

    async fn status_inner(&self, environment: &str) -> Result<Option<LockInfo>, LockError> {
        Ok(self
            .read(environment)
            .await?
            .and_then(|(body, _)| body.info(environment)))
    }

    async fn list_inner(&self) -> Result<Vec<LockInfo>, LockError> {
        let mut envs = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(LOCK_PREFIX)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| s3_err("ListObjectsV2", e))?;
            for obj in page.contents() {
                if let Some(env) = obj
                    .key()
                    .and_then(|k| k.strip_prefix(LOCK_PREFIX))
                    .and_then(|k| k.strip_suffix(".lock"))
                {
                    envs.push(env.to_owned());
                }
            }
            token = page
                .next_continuation_token
                .filter(|_| page.is_truncated == Some(true));
            if token.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for env in envs {
            if let Some((body, _)) = self.read(&env).await?
                && let Some(info) = body.info(&env)
            {
                out.push(info);
            }
        }
        Ok(out)
    }
}

/// A little jitter so that conflicting writers do not retry in lockstep.
fn jitter_ms(max_ms: u64) -> u64 {
    u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % max_ms.max(1)
}

fn s3_err<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> LockError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    LockError::Aws {
        operation,
        throttled: crate::aws::is_transient(&err),
        source: Box::new(err),
    }
}

super::lock_via_inner!(S3Lock);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_body_keeps_the_token_and_drops_the_holder() {
        let held = Body {
            owner: "o1".into(),
            holder: Some("arn:x".into()),
            operation: Some("deploy".into()),
            token: 7,
            acquired_at_ms: 1,
            lease_expires_at_ms: 10_000,
        };
        let rel = held.released("o2".into(), 500);
        assert_eq!(rel.token, 7);
        assert_eq!(rel.holder, None);
        assert_eq!(rel.info("prod"), None);
        assert_eq!(rel.lease_expires_at_ms, 500);
        assert_eq!(S3Lock::key("prod"), "locks/prod.lock");
    }
}
